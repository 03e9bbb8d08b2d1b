/*
 * str.c - slice comparison and the nginx number/size/time syntaxes.
 */
#include "core/str.h"

int str_caseeq(struct str a, struct str b)
{
    if (a.len != b.len)
        return 0;
    for (size_t i = 0; i < a.len; i++)
        if (sy_tolower((unsigned char)a.p[i]) != sy_tolower((unsigned char)b.p[i]))
            return 0;
    return 1;
}

int str_to_u64(struct str s, uint64_t max, uint64_t *out)
{
    if (s.len == 0)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c < '0' || c > '9')
            return -1;
        if (v > (max - (c - '0')) / 10)
            return -1;
        v = v * 10 + (c - '0');
    }
    *out = v;
    return 0;
}

int str_to_size(struct str s, uint64_t *out)
{
    if (s.len == 0)
        return -1;
    uint64_t mult = 1;
    switch (s.p[s.len - 1]) {
    case 'k': case 'K': mult = 1024; s.len--; break;
    case 'm': case 'M': mult = 1024 * 1024; s.len--; break;
    case 'g': case 'G': mult = 1024ULL * 1024 * 1024; s.len--; break;
    default: break;
    }
    uint64_t v;
    if (str_to_u64(s, (UINT64_MAX / 2) / mult, &v) < 0)
        return -1;
    *out = v * mult;
    return 0;
}

int str_to_msec(struct str s, uint64_t *out)
{
    /* A sequence of <number><unit> groups, optionally separated by spaces. */
    uint64_t total = 0;
    size_t i = 0;
    int groups = 0;
    while (i < s.len) {
        while (i < s.len && s.p[i] == ' ')
            i++;
        if (i == s.len)
            break;
        uint64_t v = 0;
        size_t start = i;
        while (i < s.len && s.p[i] >= '0' && s.p[i] <= '9') {
            if (v > 1000000000ULL)
                return -1;
            v = v * 10 + (uint64_t)(s.p[i] - '0');
            i++;
        }
        if (i == start)
            return -1;
        uint64_t mult = 1000; /* bare number = seconds */
        if (i < s.len && s.p[i] != ' ') {
            if (s.p[i] == 'm' && i + 1 < s.len && s.p[i + 1] == 's') {
                mult = 1;
                i += 2;
            } else {
                switch (s.p[i]) {
                case 's': mult = 1000; break;
                case 'm': mult = 60000; break;
                case 'h': mult = 3600000; break;
                case 'd': mult = 86400000; break;
                case 'w': mult = 604800000; break;
                case 'M': mult = 2592000000ULL; break;
                case 'y': mult = 31536000000ULL; break;
                default: return -1;
                }
                i++;
            }
        }
        total += v * mult;
        groups++;
    }
    if (groups == 0)
        return -1;
    *out = total;
    return 0;
}

int str_has_token(struct str list, const char *needle)
{
    size_t nlen = strlen(needle);
    size_t i = 0;
    while (i < list.len) {
        while (i < list.len && (list.p[i] == ' ' || list.p[i] == '\t' || list.p[i] == ','))
            i++;
        size_t start = i;
        while (i < list.len && list.p[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (list.p[end - 1] == ' ' || list.p[end - 1] == '\t'))
            end--;
        if (end - start == nlen && str_caseeq((struct str){list.p + start, nlen},
                                              (struct str){needle, nlen}))
            return 1;
    }
    return 0;
}

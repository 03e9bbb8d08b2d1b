/*
 * byteranges.c - several ranges of one response (byteranges.h).
 */
#include "http/byteranges.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static int digits(const char **p, const char *end, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    while (*p < end && **p >= '0' && **p <= '9') {
        if (v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(**p - '0');
        (*p)++;
    }
    *out = v;
    return *p > s ? 0 : -1;
}

static void blanks(const char **p, const char *end)
{
    while (*p < end && (**p == ' ' || **p == '\t'))
        (*p)++;
}

enum byteranges_rc byteranges_parse(struct str v, uint64_t len, struct byterange *out,
                                    unsigned *n, int64_t max)
{
    *n = 0;
    if (v.len < 6 || strncasecmp(v.p, "bytes=", 6) != 0)
        return BYTERANGES_IGNORE;
    const char *p = v.p + 6, *end = v.p + v.len;
    uint64_t total = 0;
    for (;;) {
        blanks(&p, end);
        uint64_t from = 0, to = 0;
        int suffix = 0;
        if (p < end && *p == '-') {
            suffix = 1;
            p++;
            blanks(&p, end);
            if (digits(&p, end, &to) < 0)
                return BYTERANGES_UNSATISFIABLE; /* malformed: nginx's 416 */
        } else {
            if (digits(&p, end, &from) < 0)
                return BYTERANGES_UNSATISFIABLE; /* malformed: nginx's 416 */
            blanks(&p, end);
            if (p >= end || *p++ != '-')
                return BYTERANGES_UNSATISFIABLE; /* malformed: nginx's 416 */
            blanks(&p, end);
            if (p < end && *p >= '0' && *p <= '9') {
                if (digits(&p, end, &to) < 0)
                    return BYTERANGES_UNSATISFIABLE; /* malformed: nginx's 416 */
                if (to < from)
                    return BYTERANGES_UNSATISFIABLE; /* malformed: nginx's 416 */
            } else {
                to = UINT64_MAX;
            }
        }
        blanks(&p, end);
        if (p < end && *p != ',')
            return BYTERANGES_UNSATISFIABLE; /* malformed: nginx's 416 */
        if (suffix) {
            if (to == 0) {
                from = 1; /* "-0": nothing of it */
                to = 0;
            } else {
                from = to < len ? len - to : 0;
                to = len ? len - 1 : 0;
            }
        } else if (to >= len) {
            to = len ? len - 1 : 0;
        }
        if (len && from <= to && from < len) {
            if (*n == BYTERANGES_MAX || (int64_t)*n >= max)
                return BYTERANGES_IGNORE;
            out[(*n)++] = (struct byterange){from, to};
            total += to - from + 1;
        }
        if (p >= end)
            break;
        p++; /* ',' */
    }
    if (*n == 0)
        return BYTERANGES_UNSATISFIABLE;
    if (total > len)
        return BYTERANGES_IGNORE; /* overlapping: a way to make a response grow */
    return BYTERANGES_OK;
}

int byteranges_multipart(struct arena *a, int fd, off_t base, uint64_t len,
                         const struct byterange *ranges, unsigned n, struct str ctype,
                         char **body, size_t *blen, struct str *content_type)
{
    static unsigned serial;
    char boundary[16];
    snprintf(boundary, sizeof(boundary), "%010u", ++serial);
    char ct_line[300] = "";
    if (ctype.len && ctype.len < 256)
        snprintf(ct_line, sizeof(ct_line), "Content-Type: %.*s\r\n", (int)ctype.len, ctype.p);
    size_t size = 0;
    for (unsigned i = 0; i < n; i++)
        size += 2 + 2 + 10 + 2 + strlen(ct_line) + 60 + (size_t)(ranges[i].to - ranges[i].from + 1);
    size += 2 + 2 + 10 + 4;
    if (size > BYTERANGES_MEMORY_MAX)
        return -1;
    char *out = arena_alloc(a, size);
    if (!out)
        return -1;
    size_t o = 0;
    for (unsigned i = 0; i < n; i++) {
        uint64_t part = ranges[i].to - ranges[i].from + 1;
        o += (size_t)snprintf(out + o, size - o,
                              "\r\n--%s\r\n%sContent-Range: bytes %llu-%llu/%llu\r\n\r\n", boundary,
                              ct_line, (unsigned long long)ranges[i].from,
                              (unsigned long long)ranges[i].to, (unsigned long long)len);
        if (o + part > size)
            return -1;
        uint64_t got = 0;
        while (got < part) {
            ssize_t r = pread(fd, out + o + got, (size_t)(part - got),
                              base + (off_t)(ranges[i].from + got));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                return -1;
            got += (uint64_t)r;
        }
        o += (size_t)part;
    }
    o += (size_t)snprintf(out + o, size - o, "\r\n--%s--\r\n", boundary);
    char *ct = arena_printf(a, "multipart/byteranges; boundary=%s", boundary);
    if (!ct)
        return -1;
    *body = out;
    *blen = o;
    *content_type = str_from_cstr(ct);
    return 0;
}

/*
 * str.h - borrowed byte slices and the number/size/time parsers shared by the
 * configuration and HTTP layers.
 *
 * A `struct str` never owns its bytes: it points into a buffer, an arena or a
 * string literal owned by someone else, and is not NUL-terminated unless the
 * owner guarantees it.
 */
#ifndef SY_CORE_STR_H
#define SY_CORE_STR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct str {
    const char *p; /* borrowed */
    size_t len;
};

#define STR_LIT(lit) ((struct str){(lit), sizeof(lit) - 1})
#define STR_NULL ((struct str){NULL, 0})

static inline struct str str_from_cstr(const char *s)
{
    return (struct str){s, s ? strlen(s) : 0};
}

static inline int str_eq(struct str a, struct str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* ASCII case-insensitive comparison (header names, tokens). */
int str_caseeq(struct str a, struct str b);

/* Inline so that the length of a literal `b` is known at compile time and a
 * length mismatch costs nothing (header-name checks run per header). */
static inline int str_caseeq_cstr(struct str a, const char *b)
{
    struct str bs = str_from_cstr(b);
    return a.len == bs.len && str_caseeq(a, bs);
}

/* ASCII lower-case of one byte, without locale. */
static inline unsigned char sy_tolower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

/*
 * Parse a non-negative decimal integer that fills the whole slice.
 * Returns 0 and stores the value, or -1 on empty input, a non-digit or overflow
 * beyond `max`.
 */
int str_to_u64(struct str s, uint64_t max, uint64_t *out);

/*
 * nginx size syntax: "1024", "16k", "16K", "1m", "1g". Returns 0 or -1.
 */
int str_to_size(struct str s, uint64_t *out);

/*
 * nginx time syntax in milliseconds: "500ms", "60", "60s", "1m", "1h 30m",
 * "1d", "1w"; a bare number means seconds. Returns 0 or -1.
 */
int str_to_msec(struct str s, uint64_t *out);

/* Does the slice contain `needle` as a comma-separated, case-insensitive token? */
int str_has_token(struct str list, const char *needle);

#endif

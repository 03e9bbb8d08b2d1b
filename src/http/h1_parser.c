/*
 * h1_parser.c - strict HTTP/1.x head parser, framing analysis and chunked
 * decoder (RFC 9112, RFC 9110). See h1_parser.h for the contracts.
 *
 * This module owns nothing but one constant table: every function works on
 * caller memory, allocates nothing and keeps no global state, so it can be
 * fuzzed in isolation and called from any worker.
 *
 * Parsing is a single forward pass over the bytes. Each step either accepts
 * the byte, runs out of input (-2: the bytes so far are a valid prefix) or
 * rejects (-1). Because the head parsers re-scan from the start on every call,
 * "reject as early as possible" simply means "check each byte when it is
 * first looked at": no decision is deferred to a later call.
 *
 * Strictness choices (the ones that matter for request smuggling):
 *   - A head line ends in CRLF or in a lone LF (RFC 9112 §2.2 allows a
 *     recipient to take LF as the terminator; nginx and HAProxy do, and simple
 *     clients send it). A CR that is not followed by LF is an error anywhere.
 *     The head sent on is rebuilt with CRLF, so the bare LF never travels.
 *   - Chunked framing is CRLF only (size lines, the CRLF after the data,
 *     trailer lines, the final empty line): RFC 9112 §7.1 has no such
 *     allowance (erratum 7633), and nginx refuses a bare LF there since 1.29.4
 *     because chunk framing is message framing: an intermediary in front of
 *     us that reads a chunk line up to CRLF would see different chunks.
 *   - No obs-fold, no whitespace between a field name and its colon.
 *   - Only HTTP/1.0 and HTTP/1.1; HTTP/0.9 simple requests are refused.
 *   - Content-Length: one header, one plain decimal value; never with TE.
 *   - Transfer-Encoding: exactly one header whose value is "chunked".
 */
#include "http/h1_parser.h"

#include <string.h>

/* ------------------------------------------------------------------------
 * Character classes
 *
 * One 256-entry table of bit flags, computed at compile time from readable
 * predicates so no hand-typed table can drift from the RFC grammar.
 * ------------------------------------------------------------------------ */

#define CC_TCHAR 0x01u  /* token character (RFC 9110 §5.6.2) */
#define CC_VALUE 0x02u  /* field-value byte: VCHAR, obs-text, SP, HTAB */
#define CC_TARGET 0x04u /* request-target byte: > 0x20 and != 0x7f */
#define CC_HEX 0x08u    /* HEXDIG */
#define CC_HOST 0x10u   /* reg-name byte: unreserved / sub-delims (RFC 3986) */
#define CC_QDTEXT 0x20u /* quoted-string text: qdtext (RFC 9110 §5.6.4) */
#define CC_DIGIT 0x40u  /* DIGIT */
#define CC_ALPHA 0x80u  /* ALPHA */

#define P_DIGIT(c) ((c) >= '0' && (c) <= '9')
#define P_ALPHA(c) (((c) >= 'A' && (c) <= 'Z') || ((c) >= 'a' && (c) <= 'z'))
#define P_HEX(c) (P_DIGIT(c) || ((c) >= 'A' && (c) <= 'F') || ((c) >= 'a' && (c) <= 'f'))
#define P_TSYM(c)                                                                                  \
    ((c) == '!' || (c) == '#' || (c) == '$' || (c) == '%' || (c) == '&' || (c) == '\'' ||          \
     (c) == '*' || (c) == '+' || (c) == '-' || (c) == '.' || (c) == '^' || (c) == '_' ||           \
     (c) == '`' || (c) == '|' || (c) == '~')
#define P_TCHAR(c) (P_DIGIT(c) || P_ALPHA(c) || P_TSYM(c))
#define P_VALUE(c) ((c) == '\t' || ((c) >= 0x20 && (c) != 0x7f))
#define P_TARGET(c) ((c) > 0x20 && (c) != 0x7f)
#define P_SUBDELIM(c)                                                                              \
    ((c) == '!' || (c) == '$' || (c) == '&' || (c) == '\'' || (c) == '(' || (c) == ')' ||          \
     (c) == '*' || (c) == '+' || (c) == ',' || (c) == ';' || (c) == '=')
#define P_HOST(c)                                                                                  \
    (P_DIGIT(c) || P_ALPHA(c) || (c) == '-' || (c) == '.' || (c) == '_' || (c) == '~' ||           \
     P_SUBDELIM(c))
#define P_QDTEXT(c) (P_VALUE(c) && (c) != '"' && (c) != '\\')

#define CLS(c)                                                                                     \
    ((P_TCHAR(c) ? CC_TCHAR : 0u) | (P_VALUE(c) ? CC_VALUE : 0u) |                                 \
     (P_TARGET(c) ? CC_TARGET : 0u) | (P_HEX(c) ? CC_HEX : 0u) | (P_HOST(c) ? CC_HOST : 0u) |      \
     (P_QDTEXT(c) ? CC_QDTEXT : 0u) | (P_DIGIT(c) ? CC_DIGIT : 0u) | (P_ALPHA(c) ? CC_ALPHA : 0u))
#define R4(b) CLS(b), CLS((b) + 1), CLS((b) + 2), CLS((b) + 3)
#define R16(b) R4(b), R4((b) + 4), R4((b) + 8), R4((b) + 12)
#define R64(b) R16(b), R16((b) + 16), R16((b) + 32), R16((b) + 48)

static const unsigned char h1_cc[256] = {R64(0), R64(64), R64(128), R64(192)};

#define IS(c, cls) (h1_cc[(unsigned char)(c)] & (cls))
#define IS_OWS(c) ((c) == ' ' || (c) == '\t')

/*
 * Skip a run of field-value bytes (CC_VALUE) or request-target bytes
 * (CC_TARGET): returns the first byte outside the class, or `end`. Both
 * classes are ranges (>= 0x20 or > 0x20, minus DEL, plus HTAB for values),
 * so SSE2 checks 16 bytes per step; header values (User-Agent, Cookie,
 * Accept) are the longest runs in a request head.
 */
#ifdef __SSE2__
#include <emmintrin.h>
static inline const unsigned char *skip_range(const unsigned char *p, const unsigned char *end,
                                              int value)
{
    const __m128i lo = _mm_set1_epi8(value ? 0x20 : 0x21);
    const __m128i del = _mm_set1_epi8(0x7f);
    const __m128i tab = _mm_set1_epi8('\t');
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i ok = _mm_cmpeq_epi8(_mm_max_epu8(v, lo), v); /* v >= lo, unsigned */
        ok = _mm_andnot_si128(_mm_cmpeq_epi8(v, del), ok);
        if (value)
            ok = _mm_or_si128(ok, _mm_cmpeq_epi8(v, tab));
        unsigned bad = (unsigned)_mm_movemask_epi8(ok) ^ 0xffffu;
        if (bad)
            return p + __builtin_ctz(bad);
        p += 16;
    }
    const unsigned cls = value ? CC_VALUE : CC_TARGET;
    while (p < end && IS(*p, cls))
        p++;
    return p;
}
#else
static inline const unsigned char *skip_range(const unsigned char *p, const unsigned char *end,
                                              int value)
{
    const unsigned cls = value ? CC_VALUE : CC_TARGET;
    while (p < end && IS(*p, cls))
        p++;
    return p;
}
#endif

/* Value of a hex digit already known to be one (CC_HEX). */
static inline unsigned hex_val(unsigned char c)
{
    return c <= '9' ? (unsigned)(c - '0') : (unsigned)((c | 0x20) - 'a' + 10);
}

/* Up to this many empty lines may precede a request line (RFC 9112 §2.2). */
#define H1_MAX_LEADING_EMPTY 8

/* Largest Content-Length or chunk size accepted: 2^62. */
#define H1_MAX_BODY ((uint64_t)1 << 62)

#define H1_MAX_CHUNK_DIGITS 16
#define H1_MAX_CHUNK_EXT 4096
#define H1_MAX_TRAILERS 16384

const char *h1_error_str(enum h1_error e)
{
    switch (e) {
    case H1_E_NONE:
        return "no error";
    case H1_E_BAD_METHOD:
        return "invalid method";
    case H1_E_BAD_TARGET:
        return "invalid request target";
    case H1_E_BAD_VERSION:
        return "invalid http version";
    case H1_E_VERSION_NOT_SUPP:
        return "http version not supported";
    case H1_E_BAD_LINE_END:
        return "cr not followed by lf";
    case H1_E_BAD_HEADER_NAME:
        return "invalid header name";
    case H1_E_BAD_HEADER_VALUE:
        return "invalid header value";
    case H1_E_OBS_FOLD:
        return "obsolete line folding";
    case H1_E_TOO_MANY_HEADERS:
        return "too many headers";
    case H1_E_BAD_STATUS:
        return "invalid status line";
    case H1_E_BAD_CHUNK:
        return "invalid chunked encoding";
    }
    return "unknown error";
}

const char *h1_framing_error_str(enum h1_framing_error e)
{
    switch (e) {
    case H1_FE_NONE:
        return "no error";
    case H1_FE_BAD_CL:
        return "invalid content-length";
    case H1_FE_DUP_CL:
        return "multiple content-length values";
    case H1_FE_CL_AND_TE:
        return "both content-length and transfer-encoding";
    case H1_FE_BAD_TE:
        return "unsupported transfer-encoding";
    case H1_FE_DUP_HOST:
        return "multiple host headers";
    case H1_FE_BAD_HOST:
        return "invalid host";
    }
    return "unknown error";
}

/* Record the reason and return -1 (keeps the error paths to one line). */
static inline ssize_t fail(enum h1_error *err, enum h1_error e)
{
    *err = e;
    return -1;
}

/* Case-insensitive compare of n bytes against a lower-case literal. */
static int ci_eq_lower(const char *p, const char *lower, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (sy_tolower((unsigned char)p[i]) != (unsigned char)lower[i])
            return 0;
    return 1;
}

#define SLICE_IS(s, lit) ((s).len == sizeof(lit) - 1 && ci_eq_lower((s).p, (lit), sizeof(lit) - 1))

/* ------------------------------------------------------------------------
 * Well-known header names
 * ------------------------------------------------------------------------ */

unsigned h1_header_id(struct str n)
{
#define ID(lit, id) \
    if (ci_eq_lower(n.p, lit, sizeof(lit) - 1)) \
        return id;
    /* dispatch on length, then on the first letter: one compare at most */
    switch (n.len) {
    case 2: ID("te", H1_H_TE) break;
    case 4:
        if ((n.p[0] | 0x20) == 'h') {
            ID("host", H1_H_HOST)
        } else {
            ID("date", H1_H_DATE)
        }
        break;
    case 5: ID("x-pad", H1_H_X_PAD) break;
    case 6:
        if ((n.p[0] | 0x20) == 's') {
            ID("server", H1_H_SERVER)
        } else {
            ID("expect", H1_H_EXPECT)
        }
        break;
    case 7:
        if ((n.p[0] | 0x20) == 'u') {
            ID("upgrade", H1_H_UPGRADE)
        } else {
            ID("trailer", H1_H_TRAILER)
        }
        break;
    case 10:
        if ((n.p[0] | 0x20) == 'c') {
            ID("connection", H1_H_CONNECTION)
        } else {
            ID("keep-alive", H1_H_KEEP_ALIVE)
        }
        break;
    case 14:
        if ((n.p[0] | 0x20) == 'c') {
            ID("content-length", H1_H_CONTENT_LENGTH)
        } else {
            ID("http2-settings", H1_H_HTTP2_SETTINGS)
        }
        break;
    case 15:
        if ((n.p[8] | 0x20) == 'e') {
            ID("x-accel-expires", H1_H_X_ACCEL_EXPIRES)
        } else {
            ID("x-accel-charset", H1_H_X_ACCEL_CHARSET)
        }
        break;
    case 16:
        if ((n.p[0] | 0x20) == 'p') {
            ID("proxy-connection", H1_H_PROXY_CONNECTION)
        } else {
            ID("x-accel-redirect", H1_H_X_ACCEL_REDIRECT)
        }
        break;
    case 17:
        if ((n.p[0] | 0x20) == 't') {
            ID("transfer-encoding", H1_H_TRANSFER_ENCODING)
        } else {
            ID("x-accel-buffering", H1_H_X_ACCEL_BUFFERING)
        }
        break;
    case 18: ID("x-accel-limit-rate", H1_H_X_ACCEL_LIMIT_RATE) break;
    default: break;
    }
    return H1_H_OTHER;
#undef ID
}

/* ------------------------------------------------------------------------
 * Authority validation (Host header, CONNECT and absolute-form targets)
 * ------------------------------------------------------------------------ */

/*
 * Validate host [ ":" port ] from RFC 3986: host is an IP-literal in brackets
 * or a non-empty reg-name / IPv4address; port is up to five digits <= 65535.
 * With `need_port`, the port must be present and non-empty (CONNECT).
 * Userinfo ("@"), paths, spaces and controls are all rejected.
 */
static int authority_valid(const unsigned char *p, size_t n, int need_port)
{
    size_t i = 0;

    if (n == 0)
        return 0;
    if (p[0] == '[') {
        /* IPv6address or IPvFuture: their union of bytes, then ']' */
        for (i = 1; i < n && p[i] != ']'; i++)
            if (!IS(p[i], CC_HOST) && p[i] != ':')
                return 0;
        if (i == n || i == 1)
            return 0;
        i++;
    } else {
        while (i < n) {
            if (IS(p[i], CC_HOST)) {
                i++;
            } else if (p[i] == '%') {
                if (n - i < 3 || !IS(p[i + 1], CC_HEX) || !IS(p[i + 2], CC_HEX))
                    return 0;
                i += 3;
            } else {
                break;
            }
        }
        if (i == 0)
            return 0;
    }
    if (i == n)
        return !need_port;
    if (p[i] != ':')
        return 0;
    i++;
    if (n - i > 5 || (need_port && i == n))
        return 0;
    unsigned port = 0;
    for (; i < n; i++) {
        if (!IS(p[i], CC_DIGIT))
            return 0;
        port = port * 10 + (unsigned)(p[i] - '0');
    }
    return port <= 65535;
}

/*
 * Check the form of a complete request-target against its method (RFC 9112
 * §3.2): CONNECT takes authority-form only, "*" is for OPTIONS only, all other
 * requests use origin-form or an http(s) absolute-form with a valid authority.
 */
static int target_form_valid(struct str method, const unsigned char *t, size_t n)
{
    if (method.len == 7 && memcmp(method.p, "CONNECT", 7) == 0)
        return authority_valid(t, n, 1);
    if (t[0] == '/')
        return 1;
    if (t[0] == '*')
        return n == 1 && method.len == 7 && memcmp(method.p, "OPTIONS", 7) == 0;

    size_t i;
    if (n > 7 && ci_eq_lower((const char *)t, "http://", 7))
        i = 7;
    else if (n > 8 && ci_eq_lower((const char *)t, "https://", 8))
        i = 8;
    else
        return 0;
    size_t a = i;
    while (i < n && t[i] != '/' && t[i] != '?' && t[i] != '#')
        i++;
    return authority_valid(t + a, i - a, 0);
}

/*
 * Could the `avail` bytes at p begin an absolute-form target, "http://" or
 * "https://" (case-insensitive)? Lets a wrong scheme fail on its first byte.
 */
static int scheme_prefix_ok(const unsigned char *p, size_t avail)
{
    static const char http[] = "http://", https[] = "https://";
    size_t n7 = avail < 7 ? avail : 7, n8 = avail < 8 ? avail : 8;
    return ci_eq_lower((const char *)p, http, n7) || ci_eq_lower((const char *)p, https, n8);
}

/* ------------------------------------------------------------------------
 * Shared pieces of the request and response heads
 * ------------------------------------------------------------------------ */

/* Does `c` end a version? term is SP (status line) or LF, which stands
 * for the line end of a request line: CR or LF. */
static inline int version_end(unsigned char c, unsigned char term)
{
    return term == '\n' ? c == '\r' || c == '\n' : c == term;
}

/*
 * Parse "HTTP/D.D" at *pp followed by `term`: the line end (term '\n': CR or
 * LF, for a request line) or SP (a status line); the terminator is left
 * unconsumed. Returns 0 with *minor set, -2 when the input ends first, -1
 * with *err set otherwise. A well-formed version whose major is 2..9 is "not
 * supported" (505); all other deviations, including major 0, are "bad
 * version".
 */
static ssize_t parse_version(const unsigned char **pp, const unsigned char *end, unsigned char term,
                             int *minor, enum h1_error *err)
{
    static const char http[] = "HTTP/";
    const unsigned char *p = *pp;

    /* The common case in one compare: "HTTP/1.1" or "HTTP/1.0" then term. */
    if (end - p > 8 && memcmp(p, "HTTP/1.", 7) == 0 && (p[7] == '1' || p[7] == '0') &&
        version_end(p[8], term)) {
        *minor = p[7] - '0';
        *pp = p + 8;
        return 0;
    }
    for (size_t i = 0; i < 5; i++, p++) {
        if (p == end)
            return -2;
        if (*p != (unsigned char)http[i])
            return fail(err, H1_E_BAD_VERSION);
    }
    /* "D.D", checked byte by byte so a bad prefix fails at once */
    if (p == end)
        return -2;
    unsigned char major = *p++;
    if (major < '1' || major > '9')
        return fail(err, H1_E_BAD_VERSION);
    if (p == end)
        return -2;
    if (*p++ != '.')
        return fail(err, H1_E_BAD_VERSION);
    if (p == end)
        return -2;
    unsigned char mi = *p++;
    if (!IS(mi, CC_DIGIT))
        return fail(err, H1_E_BAD_VERSION);
    if (major != '1') {
        if (p == end)
            return -2;
        return fail(err, version_end(*p, term) ? H1_E_VERSION_NOT_SUPP : H1_E_BAD_VERSION);
    }
    /* RFC 9110 §2.5: a higher minor version of a major we implement is
     * processed as the highest minor we implement (1.1). */
    if (p == end)
        return -2;
    if (!version_end(*p, term))
        return fail(err, H1_E_BAD_VERSION); /* "HTTP/1.10", "HTTP/1.1 " */
    *minor = mi == '0' ? 0 : 1;
    *pp = p;
    return 0;
}

/*
 * Consume the line end at *pp, which callers have seen is a CR or an LF: a
 * lone LF, or CRLF. Returns 0, -2 if the input stops after a CR, or -1 (bad
 * line end) when a CR is not followed by LF: a lone CR never ends a line,
 * since parsers that take it for one and parsers that do not would split the
 * head differently.
 */
static inline ssize_t parse_eol(const unsigned char **pp, const unsigned char *end,
                                enum h1_error *err)
{
    const unsigned char *p = *pp;
    if (*p == '\n') {
        *pp = p + 1;
        return 0;
    }
    if (p + 1 == end)
        return -2;
    if (p[1] != '\n')
        return fail(err, H1_E_BAD_LINE_END);
    *pp = p + 2;
    return 0;
}

/*
 * Parse header lines from p up to and including the empty line (each line
 * ending in CRLF or a lone LF, in any mix). Stores at
 * most `cap` headers in hdrs[] and their number in *count. Returns the head
 * length measured from `buf`, -2 or -1 (with *err).
 */
static ssize_t parse_headers(const unsigned char *buf, const unsigned char *p,
                             const unsigned char *end, struct h1_header *hdrs, size_t cap,
                             size_t *count, enum h1_error *err)
{
    size_t n = 0;

    for (;;) {
        if (p == end)
            return -2;
        unsigned char c = *p;
        if (c == '\r' || c == '\n') {
            ssize_t r = parse_eol(&p, end, err);
            if (r < 0)
                return r;
            *count = n;
            return p - buf;
        }
        if (!IS(c, CC_TCHAR)) {
            if (IS_OWS(c))
                return fail(err, H1_E_OBS_FOLD);
            return fail(err, H1_E_BAD_HEADER_NAME);
        }
        if (n == cap)
            return fail(err, H1_E_TOO_MANY_HEADERS);

        /* field-name ":" : no whitespace allowed before the colon */
        const unsigned char *name = p;
        while (p < end && IS(*p, CC_TCHAR))
            p++;
        if (p == end)
            return -2;
        if (*p != ':')
            return fail(err, H1_E_BAD_HEADER_NAME);
        hdrs[n].name = (struct str){(const char *)name, (size_t)(p - name)};
        hdrs[n].id = h1_header_id(hdrs[n].name);
        p++;

        /* OWS field-value OWS CRLF */
        while (p < end && IS_OWS(*p))
            p++;
        const unsigned char *value = p;
        p = skip_range(p, end, 1);
        if (p == end)
            return -2;
        if (*p != '\r' && *p != '\n')
            return fail(err, H1_E_BAD_HEADER_VALUE);
        const unsigned char *vend = p;
        while (vend > value && IS_OWS(vend[-1]))
            vend--;
        hdrs[n].value = (struct str){(const char *)value, (size_t)(vend - value)};
        ssize_t r = parse_eol(&p, end, err);
        if (r < 0)
            return r;
        n++;
    }
}

/* ------------------------------------------------------------------------
 * Request head
 * ------------------------------------------------------------------------ */

ssize_t h1_parse_request(const char *buf_, size_t len, struct h1_request *req, enum h1_error *err)
{
    const unsigned char *buf = (const unsigned char *)buf_;
    const unsigned char *p = buf, *end = buf + len;
    size_t cap = req->nheaders;
    ssize_t r;

    *err = H1_E_NONE;
    req->method = STR_NULL;
    req->target = STR_NULL;
    req->minor_version = -1;
    req->line_done = 0;

    /* Skip a bounded number of empty lines (CRLF or LF) sent before the
     * request line. */
    for (unsigned empty = 0;; empty++) {
        if (p == end)
            return -2;
        if (*p != '\r' && *p != '\n')
            break;
        if (empty == H1_MAX_LEADING_EMPTY)
            return fail(err, H1_E_BAD_METHOD);
        if ((r = parse_eol(&p, end, err)) < 0)
            return r;
    }

    /* method SP */
    const unsigned char *m = p;
    while (p < end && IS(*p, CC_TCHAR))
        p++;
    if (p == end)
        return -2;
    if (*p != ' ' || p == m)
        return fail(err, H1_E_BAD_METHOD);
    struct str method = {(const char *)m, (size_t)(p - m)};
    p++;

    /*
     * request-target SP. The first byte already tells most forms apart, so a
     * wrong one is refused without waiting for the whole target.
     */
    const unsigned char *t = p;
    if (p == end)
        return -2;
    int is_connect = method.len == 7 && memcmp(method.p, "CONNECT", 7) == 0;
    if (!IS(*p, CC_TARGET))
        return fail(err, H1_E_BAD_TARGET);
    if (!is_connect && *p != '/' && *p != '*' && !scheme_prefix_ok(p, (size_t)(end - p)))
        return fail(err, H1_E_BAD_TARGET);
    if (*p == '*' && !(method.len == 7 && memcmp(method.p, "OPTIONS", 7) == 0))
        return fail(err, H1_E_BAD_TARGET);
    p = skip_range(p, end, 0);
    if (p == end)
        return -2;
    if (*p != ' ') {
        /* "GET /\r\n" is an HTTP/0.9 simple request, which we do not speak */
        if (*p == '\r' || *p == '\n')
            return fail(err, H1_E_BAD_VERSION);
        return fail(err, H1_E_BAD_TARGET);
    }
    if (!target_form_valid(method, t, (size_t)(p - t)))
        return fail(err, H1_E_BAD_TARGET);
    struct str target = {(const char *)t, (size_t)(p - t)};
    p++;

    /* HTTP-version (CR)LF */
    int minor;
    if ((r = parse_version(&p, end, '\n', &minor, err)) < 0)
        return r;
    if ((r = parse_eol(&p, end, err)) < 0)
        return r;

    req->method = method;
    req->target = target;
    req->minor_version = minor;
    req->line_done = 1;

    size_t count;
    r = parse_headers(buf, p, end, req->headers, cap, &count, err);
    if (r > 0)
        req->nheaders = count;
    return r;
}

/* ------------------------------------------------------------------------
 * Response head
 * ------------------------------------------------------------------------ */

ssize_t h1_parse_response(const char *buf_, size_t len, struct h1_response *resp,
                          enum h1_error *err)
{
    const unsigned char *buf = (const unsigned char *)buf_;
    const unsigned char *p = buf, *end = buf + len;
    size_t cap = resp->nheaders;
    ssize_t r;
    int minor;

    *err = H1_E_NONE;
    resp->minor_version = -1;
    resp->status = 0;
    resp->reason = STR_NULL;

    /* HTTP-version SP */
    if ((r = parse_version(&p, end, ' ', &minor, err)) < 0)
        return r;
    p++;

    /* status-code: exactly three digits, 100..999 */
    int status = 0;
    for (int i = 0; i < 3; i++, p++) {
        if (p == end)
            return -2;
        if (!IS(*p, CC_DIGIT) || (i == 0 && *p == '0'))
            return fail(err, H1_E_BAD_STATUS);
        status = status * 10 + (*p - '0');
    }

    /* [ SP reason-phrase ] (CR)LF; "HTTP/1.1 200\r\n" is accepted too */
    if (p == end)
        return -2;
    const unsigned char *reason = p;
    if (*p == ' ') {
        reason = ++p;
        while (p < end && IS(*p, CC_VALUE))
            p++;
        if (p == end)
            return -2;
    }
    if (*p != '\r' && *p != '\n')
        return fail(err, H1_E_BAD_STATUS);
    struct str rs = {(const char *)reason, (size_t)(p - reason)};
    if ((r = parse_eol(&p, end, err)) < 0)
        return r;

    resp->minor_version = minor;
    resp->status = status;
    resp->reason = rs;

    size_t count;
    r = parse_headers(buf, p, end, resp->headers, cap, &count, err);
    if (r > 0)
        resp->nheaders = count;
    return r;
}

/* ------------------------------------------------------------------------
 * Framing analysis
 * ------------------------------------------------------------------------ */

/* Trim OWS from both ends of a slice. */
static struct str trim_ows(struct str s)
{
    while (s.len && IS_OWS(s.p[0])) {
        s.p++;
        s.len--;
    }
    while (s.len && IS_OWS(s.p[s.len - 1]))
        s.len--;
    return s;
}

/*
 * Content-Length = 1*DIGIT. A comma means a list of values (what a proxy
 * that joined duplicate headers would produce) and is reported as such.
 */
static enum h1_framing_error parse_content_length(struct str v, uint64_t *out)
{
    v = trim_ows(v);
    if (memchr(v.p, ',', v.len) != NULL)
        return H1_FE_DUP_CL;
    if (v.len == 0)
        return H1_FE_BAD_CL;
    uint64_t n = 0;
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.p[i];
        if (!IS(c, CC_DIGIT))
            return H1_FE_BAD_CL;
        if (n > (H1_MAX_BODY - (c - '0')) / 10)
            return H1_FE_BAD_CL;
        n = n * 10 + (c - '0');
    }
    *out = n;
    return H1_FE_NONE;
}

/* Set H1_F_CONN_* for each known option in a Connection list. */
static unsigned connection_flags(struct str v)
{
    unsigned flags = 0;
    size_t i = 0;

    while (i < v.len) {
        size_t start = i;
        while (i < v.len && v.p[i] != ',')
            i++;
        struct str tok = trim_ows((struct str){v.p + start, i - start});
        if (SLICE_IS(tok, "close"))
            flags |= H1_F_CONN_CLOSE;
        else if (SLICE_IS(tok, "keep-alive"))
            flags |= H1_F_CONN_KEEPALIVE;
        else if (SLICE_IS(tok, "upgrade"))
            flags |= H1_F_CONN_UPGRADE;
        i++; /* skip the comma */
    }
    return flags;
}

int h1_analyze_headers(const struct h1_header *headers, size_t n, struct h1_info *info,
                       enum h1_framing_error *ferr)
{
    enum h1_framing_error fe = H1_FE_NONE;
    unsigned hosts = 0;

    memset(info, 0, sizeof(*info));
    *ferr = H1_FE_NONE;

    for (size_t i = 0; i < n; i++) {
        struct str name = headers[i].name;
        struct str value = headers[i].value;

        /* dispatch on length first: most headers are rejected by one compare */
        switch (name.len) {
        case 4:
            if (!SLICE_IS(name, "host"))
                break;
            if (++hosts > 1) {
                fe = H1_FE_DUP_HOST;
                goto fail;
            }
            value = trim_ows(value);
            if (value.len && !authority_valid((const unsigned char *)value.p, value.len, 0)) {
                fe = H1_FE_BAD_HOST;
                goto fail;
            }
            info->flags |= H1_F_HAS_HOST;
            info->host = value;
            break;
        case 6:
            if (SLICE_IS(name, "expect") && SLICE_IS(trim_ows(value), "100-continue"))
                info->flags |= H1_F_EXPECT_CONTINUE;
            break;
        case 7:
            if (SLICE_IS(name, "upgrade") && !(info->flags & H1_F_HAS_UPGRADE)) {
                info->flags |= H1_F_HAS_UPGRADE;
                info->upgrade = trim_ows(value);
            }
            break;
        case 10:
            if (SLICE_IS(name, "connection"))
                info->flags |= connection_flags(value);
            break;
        case 14:
            if (!SLICE_IS(name, "content-length"))
                break;
            if (info->flags & H1_F_HAS_CL) {
                fe = H1_FE_DUP_CL;
                goto fail;
            }
            if ((fe = parse_content_length(value, &info->content_length)) != H1_FE_NONE)
                goto fail;
            info->flags |= H1_F_HAS_CL;
            break;
        case 17:
            if (!SLICE_IS(name, "transfer-encoding"))
                break;
            /*
             * A second header would combine into "chunked, chunked" or a list
             * with another coding: neither is a single final "chunked".
             */
            if ((info->flags & H1_F_HAS_TE) || !SLICE_IS(trim_ows(value), "chunked")) {
                fe = H1_FE_BAD_TE;
                goto fail;
            }
            info->flags |= H1_F_HAS_TE | H1_F_CHUNKED;
            break;
        default:
            break;
        }
    }
    if ((info->flags & H1_F_HAS_CL) && (info->flags & H1_F_HAS_TE)) {
        fe = H1_FE_CL_AND_TE;
        goto fail;
    }
    return 0;

fail:
    *ferr = fe;
    return -1;
}

/* ------------------------------------------------------------------------
 * Chunked decoder
 *
 *   SIZE_START -hex-> SIZE -CR-> SIZE_LF -LF-> DATA (size > 0) -> DATA_CR -> DATA_LF
 *        ^                                                                   |
 *        +-------------------------------------------------------------------+
 *   SIZE -SP/HTAB-> SIZE_BWS -';'-> EXT_* ... -CR-> SIZE_LF
 *   SIZE_LF -LF, size == 0-> TR_START -CR-> TR_END_LF -LF-> DONE
 *                              | name ':' value CRLF (TR_NAME, TR_VALUE, TR_LF)
 * ------------------------------------------------------------------------ */

enum h1_chunk_state {
    CK_SIZE_START = 0, /* first hex digit of a chunk-size (zero-init start) */
    CK_SIZE,           /* further hex digits */
    CK_SIZE_BWS,       /* whitespace after the size: only ';' may follow */
    CK_EXT_PRE_NAME,   /* after ';': BWS, then the extension name */
    CK_EXT_NAME,       /* in an extension name */
    CK_EXT_NAME_WS,    /* whitespace after a name: '=' or ';' must follow */
    CK_EXT_PRE_VAL,    /* after '=': BWS, then a token or quoted-string */
    CK_EXT_TVAL,       /* in a token value */
    CK_EXT_QVAL,       /* in a quoted-string value */
    CK_EXT_QVAL_ESC,   /* after a backslash in a quoted-string */
    CK_EXT_AFTER_Q,    /* right after the closing quote */
    CK_EXT_POST_WS,    /* whitespace after a value: only ';' may follow */
    CK_SIZE_LF,        /* CR of the size line seen, LF expected */
    CK_DATA,           /* copying `remaining` bytes of chunk data */
    CK_DATA_CR,        /* CR expected after the chunk data */
    CK_DATA_LF,        /* LF expected after the chunk data */
    CK_TR_START,       /* start of a trailer line or of the final CRLF */
    CK_TR_NAME,        /* in a trailer field name */
    CK_TR_VALUE,       /* in a trailer field value */
    CK_TR_LF,          /* LF expected after a trailer line */
    CK_TR_END_LF,      /* LF expected to end the body */
    CK_DONE,           /* body complete; further bytes are leftover */
    CK_ERROR,          /* invalid encoding; sticky */
};

ssize_t h1_decode_chunked(struct h1_chunked *d, char *buf, size_t *len)
{
    size_t src = 0, dst = 0, n = *len;

    if (d->state == CK_ERROR) {
        *len = 0;
        return -1;
    }
    if (d->state == CK_DONE) {
        /* everything after a finished body belongs to the next message */
        *len = 0;
        return (ssize_t)n;
    }

    while (src < n) {
        if (d->state == CK_DATA) {
            size_t take = n - src;
            if (d->remaining < take)
                take = (size_t)d->remaining;
            if (dst != src)
                memmove(buf + dst, buf + src, take);
            dst += take;
            src += take;
            d->remaining -= take;
            if (d->remaining == 0)
                d->state = CK_DATA_CR;
            continue;
        }

        unsigned char c = (unsigned char)buf[src++];

        /*
         * Bound the extension text of a size line (from the byte after the
         * digits up to the CR) and the trailer field lines (CRLFs included,
         * the final empty line excluded).
         */
        if (d->state >= CK_SIZE_BWS && d->state <= CK_EXT_POST_WS) {
            if (c != '\r' && ++d->ext_len > H1_MAX_CHUNK_EXT)
                goto bad;
        } else if (d->state >= CK_TR_START && d->state <= CK_TR_LF) {
            if ((d->state != CK_TR_START || c != '\r') && ++d->trailer_len > H1_MAX_TRAILERS)
                goto bad;
            if (d->tr && (d->state != CK_TR_START || c != '\r') && d->tr_len < d->tr_cap)
                d->tr[d->tr_len++] = (char)c;
        }

        switch ((enum h1_chunk_state)d->state) {
        case CK_SIZE_START:
        case CK_SIZE:
            if (IS(c, CC_HEX)) {
                unsigned v = hex_val(c);
                if (d->hex_digits == H1_MAX_CHUNK_DIGITS || d->remaining > (H1_MAX_BODY - v) / 16)
                    goto bad;
                d->remaining = d->remaining * 16 + v;
                d->hex_digits++;
                d->state = CK_SIZE;
                break;
            }
            if (d->state == CK_SIZE_START)
                goto bad;
            d->ext_len = 1;
            if (c == '\r')
                d->state = CK_SIZE_LF;
            else if (c == ';')
                d->state = CK_EXT_PRE_NAME;
            else if (IS_OWS(c))
                d->state = CK_SIZE_BWS;
            else
                goto bad;
            break;
        case CK_SIZE_BWS:
            if (c == ';')
                d->state = CK_EXT_PRE_NAME;
            else if (!IS_OWS(c))
                goto bad;
            break;
        case CK_EXT_PRE_NAME:
            if (IS(c, CC_TCHAR))
                d->state = CK_EXT_NAME;
            else if (!IS_OWS(c))
                goto bad;
            break;
        case CK_EXT_NAME:
            if (IS(c, CC_TCHAR))
                break;
            if (c == '=')
                d->state = CK_EXT_PRE_VAL;
            else if (c == ';')
                d->state = CK_EXT_PRE_NAME;
            else if (c == '\r')
                d->state = CK_SIZE_LF;
            else if (IS_OWS(c))
                d->state = CK_EXT_NAME_WS;
            else
                goto bad;
            break;
        case CK_EXT_NAME_WS:
            if (c == '=')
                d->state = CK_EXT_PRE_VAL;
            else if (c == ';')
                d->state = CK_EXT_PRE_NAME;
            else if (!IS_OWS(c))
                goto bad;
            break;
        case CK_EXT_PRE_VAL:
            if (c == '"')
                d->state = CK_EXT_QVAL;
            else if (IS(c, CC_TCHAR))
                d->state = CK_EXT_TVAL;
            else if (!IS_OWS(c))
                goto bad;
            break;
        case CK_EXT_TVAL:
            if (IS(c, CC_TCHAR))
                break;
            if (c == ';')
                d->state = CK_EXT_PRE_NAME;
            else if (c == '\r')
                d->state = CK_SIZE_LF;
            else if (IS_OWS(c))
                d->state = CK_EXT_POST_WS;
            else
                goto bad;
            break;
        case CK_EXT_QVAL:
            if (c == '"')
                d->state = CK_EXT_AFTER_Q;
            else if (c == '\\')
                d->state = CK_EXT_QVAL_ESC;
            else if (!IS(c, CC_QDTEXT))
                goto bad;
            break;
        case CK_EXT_QVAL_ESC:
            /* quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text ) */
            if (!IS(c, CC_VALUE))
                goto bad;
            d->state = CK_EXT_QVAL;
            break;
        case CK_EXT_AFTER_Q:
            if (c == ';')
                d->state = CK_EXT_PRE_NAME;
            else if (c == '\r')
                d->state = CK_SIZE_LF;
            else if (IS_OWS(c))
                d->state = CK_EXT_POST_WS;
            else
                goto bad;
            break;
        case CK_EXT_POST_WS:
            if (c == ';')
                d->state = CK_EXT_PRE_NAME;
            else if (!IS_OWS(c))
                goto bad;
            break;
        case CK_SIZE_LF:
            if (c != '\n')
                goto bad;
            d->hex_digits = 0;
            d->ext_len = 0;
            d->state = d->remaining ? CK_DATA : CK_TR_START;
            break;
        case CK_DATA_CR:
            if (c != '\r')
                goto bad;
            d->state = CK_DATA_LF;
            break;
        case CK_DATA_LF:
            if (c != '\n')
                goto bad;
            d->state = CK_SIZE_START;
            break;
        case CK_TR_START:
            if (c == '\r')
                d->state = CK_TR_END_LF;
            else if (IS(c, CC_TCHAR))
                d->state = CK_TR_NAME;
            else
                goto bad; /* includes obs-fold and bare LF (CRLF only here) */
            break;
        case CK_TR_NAME:
            if (c == ':')
                d->state = CK_TR_VALUE;
            else if (!IS(c, CC_TCHAR))
                goto bad;
            break;
        case CK_TR_VALUE:
            if (c == '\r')
                d->state = CK_TR_LF;
            else if (!IS(c, CC_VALUE))
                goto bad;
            break;
        case CK_TR_LF:
            if (c != '\n')
                goto bad;
            d->state = CK_TR_START;
            break;
        case CK_TR_END_LF: {
            if (c != '\n')
                goto bad;
            size_t left = n - src;
            if (left && dst != src)
                memmove(buf + dst, buf + src, left);
            d->state = CK_DONE;
            *len = dst;
            return (ssize_t)left;
        }
        case CK_DATA:
        case CK_DONE:
        case CK_ERROR:
            goto bad; /* unreachable: handled above */
        }
    }
    *len = dst;
    return -2;

bad:
    d->state = CK_ERROR;
    *len = dst;
    return -1;
}

size_t h1_parse_trailers(const char *tr, size_t len, struct h1_header *out, size_t max)
{
    size_t n = 0, i = 0;
    while (i < len && n < max) {
        const char *line = tr + i;
        const char *end = memchr(line, '\n', len - i);
        if (!end)
            break; /* cut short by the copy's room */
        size_t ll = (size_t)(end - line);
        i += ll + 1;
        if (ll && line[ll - 1] == '\r')
            ll--;
        const char *colon = memchr(line, ':', ll);
        if (!colon || colon == line)
            continue;
        struct str name = {line, (size_t)(colon - line)};
        const char *v = colon + 1, *ve = line + ll;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        out[n].name = name;
        out[n].value = (struct str){v, (size_t)(ve - v)};
        out[n].id = h1_header_id(name);
        n++;
    }
    return n;
}

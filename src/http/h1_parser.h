/*
 * h1_parser.h - strict, incremental HTTP/1.x message-head parser and chunked
 * decoder (RFC 9112). Pure functions: no I/O, no allocation, no globals.
 *
 * The parsers are restartable the simple way (picohttpparser's contract): the
 * caller passes the whole buffered head every time more bytes arrive, and the
 * parser returns
 *      > 0  the length of the complete head, its final empty line included;
 *       -2  incomplete: call again with more bytes;
 *       -1  invalid: `*err` says why (the caller maps it to a status).
 * For any prefix of a valid head the result is -2, never -1.
 *
 * Every name/value is a slice into the caller's buffer: valid only while that
 * buffer is not moved. Header values are trimmed of surrounding SP/HTAB.
 *
 * Line ends in a head (request or status line, header lines, the empty line
 * that ends the head, empty lines before a request line) are CRLF or a lone
 * LF, mixed freely (RFC 9112 §2.2, as nginx); a CR not followed by LF is
 * invalid. Chunked framing (h1_decode_chunked) takes CRLF only.
 */
#ifndef SY_HTTP_H1_PARSER_H
#define SY_HTTP_H1_PARSER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/str.h"

/*
 * Header names the proxy looks at on every message, recognised once by the
 * parser (h1_header.id) so later checks are integer compares instead of
 * case-insensitive string compares. Anything else is H1_H_OTHER.
 */
enum h1_hdr_id {
    H1_H_OTHER = 0,
    H1_H_HOST,
    H1_H_CONNECTION,
    H1_H_KEEP_ALIVE,
    H1_H_PROXY_CONNECTION,
    H1_H_TE,
    H1_H_TRAILER,
    H1_H_TRANSFER_ENCODING,
    H1_H_UPGRADE,
    H1_H_CONTENT_LENGTH,
    H1_H_EXPECT,
    H1_H_HTTP2_SETTINGS,
    H1_H_DATE,
    H1_H_SERVER,
    H1_H_X_PAD,
    H1_H_X_ACCEL_EXPIRES,
    H1_H_X_ACCEL_REDIRECT,
    H1_H_X_ACCEL_LIMIT_RATE,
    H1_H_X_ACCEL_BUFFERING,
    H1_H_X_ACCEL_CHARSET,
};

struct h1_header {
    struct str name;
    struct str value;
    unsigned id;            /* enum h1_hdr_id of name, set by the parsers */
};

/* The id of a header name (case-insensitive); H1_H_OTHER when not listed. */
unsigned h1_header_id(struct str name);

/* Hop-by-hop headers (RFC 9110 §7.6.1 and the de-facto ones nginx drops). */
static inline int h1_hop_by_hop(unsigned id)
{
    return id >= H1_H_CONNECTION && id <= H1_H_UPGRADE;
}

enum h1_error {
    H1_E_NONE = 0,
    H1_E_BAD_METHOD,        /* empty method or non-token byte in it */
    H1_E_BAD_TARGET,        /* empty target, control byte/space in it, bad form */
    H1_E_BAD_VERSION,       /* not "HTTP/1.0" or "HTTP/1.1" (HTTP/0.9 included) */
    H1_E_VERSION_NOT_SUPP,  /* well-formed "HTTP/x.y" with another major (505) */
    H1_E_BAD_LINE_END,      /* a CR not followed by LF (a lone LF ends a line) */
    H1_E_BAD_HEADER_NAME,   /* empty name, non-token byte, space before colon */
    H1_E_BAD_HEADER_VALUE,  /* NUL, CR, LF or other control byte in a value */
    H1_E_OBS_FOLD,          /* line folding (a header line starting with SP/HTAB) */
    H1_E_TOO_MANY_HEADERS,  /* more headers than the caller's array holds */
    H1_E_BAD_STATUS,        /* response: status not three digits, bad reason */
    H1_E_BAD_CHUNK,         /* chunked: bad size, extension, missing CRLF, overflow */
};

/* Human-readable reason for logs, e.g. "invalid header name". */
const char *h1_error_str(enum h1_error e);

struct h1_request {
    struct str method;
    struct str target;      /* request-target as sent: origin, absolute, authority or "*" */
    int minor_version;      /* 0 or 1 */
    struct h1_header *headers; /* caller-provided array */
    size_t nheaders;        /* in: capacity of `headers`; out: number parsed */
    int line_done;          /* out: 1 once the request line was complete (for 414 vs 431) */
};

struct h1_response {
    int minor_version;
    int status;             /* 100..999 */
    struct str reason;
    struct h1_header *headers;
    size_t nheaders;        /* in: capacity; out: count */
};

/*
 * Parse a request head from buf[0..len). Up to 8 leading empty lines (CRLF or
 * LF) before the request line are skipped as RFC 9112 §2.2 allows; they count
 * in the result.
 * Methods must be tokens; targets may not contain bytes <= 0x20 or 0x7f.
 * `nheaders` is written only on success (> 0): after -2 or -1 it still holds
 * the capacity, so the caller can call again without resetting it. method,
 * target and minor_version are set whenever line_done is 1, even on -2/-1.
 */
ssize_t h1_parse_request(const char *buf, size_t len, struct h1_request *req, enum h1_error *err);

/*
 * Parse a response head ("HTTP/1.1 200 OK\r\n..."): same contract, including
 * `nheaders` being written only on success and lone LFs ending lines. The
 * reason phrase may be empty ("HTTP/1.1 200\r\n"); it is not trimmed.
 */
ssize_t h1_parse_response(const char *buf, size_t len, struct h1_response *resp,
                          enum h1_error *err);

/*
 * Message framing and connection semantics derived from a parsed header list
 * (RFC 9112 §6.3, RFC 9110 §7.6.1). Filled by h1_analyze_headers().
 */
#define H1_F_CONN_CLOSE      0x0001u /* Connection: close */
#define H1_F_CONN_KEEPALIVE  0x0002u /* Connection: keep-alive */
#define H1_F_CONN_UPGRADE    0x0004u /* Connection: upgrade */
#define H1_F_CHUNKED         0x0008u /* Transfer-Encoding ends in exactly "chunked" */
#define H1_F_HAS_CL          0x0010u /* a valid Content-Length is present */
#define H1_F_HAS_TE          0x0020u /* Transfer-Encoding header present at all */
#define H1_F_EXPECT_CONTINUE 0x0040u /* Expect: 100-continue */
#define H1_F_HAS_HOST        0x0080u /* exactly one Host header */
#define H1_F_HAS_UPGRADE     0x0100u /* Upgrade header present */

enum h1_framing_error {
    H1_FE_NONE = 0,
    H1_FE_BAD_CL,          /* Content-Length not a plain decimal, or > 2^62 */
    H1_FE_DUP_CL,          /* several Content-Length values (even equal ones) */
    H1_FE_CL_AND_TE,       /* both Content-Length and Transfer-Encoding */
    H1_FE_BAD_TE,          /* Transfer-Encoding other than a single final "chunked" */
    H1_FE_DUP_HOST,        /* more than one Host header */
    H1_FE_BAD_HOST,        /* Host value not a valid authority */
};

const char *h1_framing_error_str(enum h1_framing_error e);

struct h1_info {
    unsigned flags;        /* H1_F_* */
    uint64_t content_length; /* valid when H1_F_HAS_CL */
    struct str host;       /* Host value (slice), when H1_F_HAS_HOST */
    struct str upgrade;    /* Upgrade value (slice), when H1_F_HAS_UPGRADE */
};

/*
 * Derive framing from headers[0..n). Strict: anything ambiguous is an error
 * (returns -1 and sets *ferr); 0 on success. Used for requests and responses
 * alike; for requests the caller additionally requires HAS_HOST for 1.1.
 */
int h1_analyze_headers(const struct h1_header *headers, size_t n, struct h1_info *info,
                       enum h1_framing_error *ferr);

/*
 * Incremental chunked-body decoder, decoding in place (picohttpparser's
 * phr_decode_chunked contract). Zero-initialise before the first call.
 *
 * On each call buf[0..*len) holds not-yet-decoded bytes; on return the decoded
 * payload occupies buf[0..*len) (possibly 0 bytes) and the result is
 *      >= 0  the body (last chunk and trailers) is complete; the value is the
 *            number of bytes that followed the body in the input, which have
 *            been moved to buf[*len .. *len + result) for the caller;
 *       -2   more input needed (everything given was consumed);
 *       -1   invalid chunked encoding.
 * Chunk sizes over 2^62, more than 16 hex digits, extensions longer than 4096
 * bytes or trailers longer than 16384 bytes in total are invalid. Every line
 * of the framing (size lines, the end of each chunk's data, trailer lines,
 * the final empty line) must end in CRLF: a bare LF is invalid here, unlike
 * in a head (RFC 9112 §7.1; nginx since 1.29.4).
 * Trailer fields are validated like header lines and then discarded, or,
 * when `tr` is set, their lines ("name: value\r\n"...) are also copied
 * there as far as `tr_cap` allows (tr_len says how much; a field that did
 * not fit whole is cut: h1_parse_trailers() drops it).
 * After -1 every later call returns -1; after completion every later call
 * returns all its input as leftover (*len = 0, result = input length).
 */
struct h1_chunked {
    int state;
    uint64_t remaining;    /* bytes left in the current chunk's data */
    unsigned hex_digits;
    unsigned ext_len;
    unsigned trailer_len;
    int saw_cr;
    char *tr;              /* optional: where the trailer lines are copied */
    unsigned tr_cap, tr_len;
};

ssize_t h1_decode_chunked(struct h1_chunked *dec, char *buf, size_t *len);

/*
 * The fields of trailer lines copied by h1_decode_chunked() (`tr`,`len`):
 * up to `max` into out[] (slices of tr, names as sent, values without
 * surrounding whitespace). Returns the count.
 */
size_t h1_parse_trailers(const char *tr, size_t len, struct h1_header *out, size_t max);

#endif

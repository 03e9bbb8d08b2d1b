/*
 * static.h - serving files from disk: root/alias, index, try_files, MIME
 * type, conditional requests (304), single ranges (206/416) and path safety.
 *
 * The module decides; the HTTP session does the I/O. static_handle() resolves
 * the request to one action: send this open file (range) with these headers,
 * answer this status, or redirect internally to another URI or named
 * location (the session re-routes and calls again, bounded by a loop limit).
 */
#ifndef SY_HTTP_STATIC_H
#define SY_HTTP_STATIC_H

#include <sys/types.h>
#include <time.h>

#include "conf/conf.h"
#include "core/str.h"

struct arena;

/* Values of loc_conf.disable_symlinks (nginx's off | on | if_not_owner). */
#define STATIC_SYMLINKS_OFF          0 /* follow symlinks (nginx default) */
#define STATIC_SYMLINKS_ON           1 /* no symlink in any path component */
#define STATIC_SYMLINKS_IF_NOT_OWNER 2 /* symlinks only when link and target have the same owner */

/* Evaluate a template in the current request's context (the session supplies it). */
typedef int static_eval_fn(void *ctx, const struct tmpl *t, struct str *out);

/*
 * A precompressed variant of a file (gzip_static, brotli_static): the file
 * with `suffix` appended ("a.js.gz") is sent instead of the file when it
 * is a regular file, for GET and HEAD of a URI not ending in '/'. A
 * `probe_only` variant is only looked for (static_result.variant_seen).
 */
struct static_variant {
    struct str suffix;          /* ".gz", ".br" */
    int probe_only;
    int coding;                 /* the caller's tag (its Content-Encoding) */
};

struct static_input {
    struct str uri;             /* normalised, decoded path ($uri) */
    struct str method;          /* only GET and HEAD serve files; others -> 405 */
    const struct location *loc; /* matched location (alias replaces loc->pattern) */
    const struct loc_conf *lc;
    const char *prefix;         /* -p prefix ending in '/', for a relative root */
    struct str if_modified_since, if_none_match, if_match, if_unmodified_since;
    struct str range, if_range; /* empty slices when the header is absent */
    static_eval_fn *eval;
    void *eval_ctx;
    /* When not NULL: may a file of this type be answered in part (Range)?
     * 0 when a filter rewrites the whole body (SSI, as nginx's clear of
     * allow_ranges): the whole file is sent with 200. */
    int (*ranges_ok)(void *eval_ctx, struct str content_type);
    int no_ranges;              /* max_ranges 0: no ranges (and no Accept-Ranges) */
    int64_t max_ranges;         /* max_ranges N (0: no limit) */
    int in_try_files;           /* internal: set by the session on re-entry? leave 0 */
    const struct static_variant *variants; /* tried in order before the file itself */
    unsigned nvariants;
};

enum static_action {
    STATIC_SEND,                /* send `fd` [offset, offset+length) with status 200 or 206 */
    STATIC_STATUS,              /* answer `status` with the standard error page
                                   (400/403/404/405/412/416/500, or a try_files "=code");
                                   416 carries content_range */
    STATIC_NOT_MODIFIED,        /* 304 with last_modified/etag; no type, length or Accept-Ranges */
    STATIC_REDIRECT,            /* 301 to `location` (directory without trailing slash) */
    STATIC_INTERNAL,            /* re-route to URI `target` (index or try_files fallback); `args` may be set */
    STATIC_NAMED,               /* continue in named location `target` (without '@') */
    STATIC_AUTOINDEX,           /* list the directory `dir` (autoindex on, no index file;
                                   GET and HEAD): src/http/autoindex.c */
};

struct static_result {
    enum static_action action;
    int status;                 /* 200, 206, 304, 301, 403, 404, 405, 412, 416, 500 */
    int fd;                     /* STATIC_SEND: open file, owned by the caller afterwards */
    off_t offset, length;       /* byte range to send */
    off_t file_size;
    struct str content_type;    /* from types / default_type */
    struct str target;          /* STATIC_INTERNAL / STATIC_NAMED: new URI or name */
    struct str args;            /* STATIC_INTERNAL: query from the fallback URI ("/x?a=b") */
    int args_replace;           /* STATIC_INTERNAL: 1 = set the request's $args to `args`, even
                                   when empty (try_files fallback, as nginx); 0 = keep the
                                   current $args (index redirect) */
    struct str location;        /* STATIC_REDIRECT: URI percent-escaped (as nginx) with '/' appended (arena) */
    /* header values (arena-allocated; empty when not applicable) */
    struct str last_modified;   /* "Wed, 21 Oct 2015 07:28:00 GMT" */
    struct str etag;            /* "\"<mtime hex>-<size hex>\"" like nginx */
    struct str content_range;   /* "bytes 0-99/1234" for 206, "bytes * /1234" (no space) for 416 */
    int accept_ranges;          /* send "Accept-Ranges: bytes" (with 200 only, as nginx) */
    const struct static_variant *variant; /* the precompressed variant sent, or NULL */
    int variant_seen;           /* a probe_only variant exists */
    struct str dir;             /* STATIC_AUTOINDEX: the directory's path, without a
                                   trailing '/' (NUL-terminated, arena) */
    const char *body;           /* STATIC_SEND of several ranges: the multipart/byteranges
                                   body (arena; fd is -1 then), content_type its type */
    size_t body_len;
};

/*
 * Decide how to answer a request for a static location. Never blocks on the
 * network; does file-system calls (open/fstat). All strings in the result
 * live in `a`. Returns 0; -1 only on allocation failure.
 * Ownership: on STATIC_SEND the caller owns and must close result->fd (HEAD
 * included); for every other action fd is -1. Never touches the connection.
 * Behaviour notes (nginx's): try_files runs before the method check; methods
 * other than GET/HEAD/POST get 405; POST gets 404/301 like GET and 405 only
 * when a regular file is found. STATIC_REDIRECT's location is the path only
 * (the session adds scheme/host and "?args").
 */
int static_handle(const struct static_input *in, struct static_result *out, struct arena *a);

/*
 * `uri` percent-escaped as nginx escapes a URI it puts into a Location
 * (NGX_ESCAPE_URI: controls, space, " # % < > ? \ ^ ` { | }, DEL, 8-bit),
 * then "/": the target of a directory redirect. NUL-terminated, in arena
 * `a`, length in *len; NULL when out of memory.
 */
char *static_dir_location(struct arena *a, struct str uri, size_t *len);

#endif

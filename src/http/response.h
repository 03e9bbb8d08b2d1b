/*
 * response.h - building response heads and the standard error pages.
 */
#ifndef SY_HTTP_RESPONSE_H
#define SY_HTTP_RESPONSE_H

#include "http/stream.h"

/* Reason phrase for a status ("Not Found"); "" when unknown. */
const char *http_reason(int status);

/* Append a response header (copied into the request arena). 0 or -1. */
int resp_add(struct request *r, struct str name, struct str value);
/* Find a header added so far (case-insensitive); NULL slice when absent. */
struct str resp_get(const struct request *r, const char *name);
/* Remove every header called `name` (case-insensitive). */
void resp_remove(struct request *r, const char *name);
/* nginx's ngx_http_weak_etag, for a body a filter changes: a strong ETag
 * becomes W/"..."; one that is not a quoted string is dropped. */
void resp_weaken_etag(struct request *r);

/* What a protocol needs to write the head after resp_finalize(). */
struct resp_final {
    int has_server;             /* r->resp has Server (proxy_pass_header, add_header) */
    int has_date;               /* likewise Date */
    const char *server;         /* our Server value otherwise (server_tokens) */
    size_t bytes;               /* total length of names and values in r->resp */
};

/*
 * The protocol-neutral last step before a protocol writes a response head:
 * add_header directives of the location (always-flag aware) are appended to
 * r->resp, every value is made safe (no CR/LF/NUL), and `f` says whether
 * Server and Date are already there. 0, or -1 (out of memory).
 */
int resp_finalize(struct client_stream *s, struct resp_final *f);

/* The standard error page body for `status` (static), and its length. */
const char *resp_error_page(int status, int server_tokens, size_t *len);

/* Does nginx close the connection after answering this status? */
int resp_status_closes(int status);

#endif

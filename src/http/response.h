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

/*
 * Serialise the head: status line, Server, Date, the headers added with
 * resp_add(), add_header directives of the location (always-flag aware),
 * Connection/Keep-Alive. Allocated in the request arena. 0 or -1.
 */
int resp_build_head(struct client_stream *s, char **out, size_t *outlen);

/* The standard error page body for `status` (static), and its length. */
const char *resp_error_page(int status, int server_tokens, size_t *len);

/* Does nginx close the connection after answering this status? */
int resp_status_closes(int status);

#endif

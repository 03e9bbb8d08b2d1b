/*
 * vars_eval.h - evaluating variables and templates for a request.
 */
#ifndef SY_HTTP_VARS_EVAL_H
#define SY_HTTP_VARS_EVAL_H

#include "conf/vars.h"
#include "http/stream.h"

enum tmpl_escape {
    TMPL_ESC_NONE,              /* raw values */
    TMPL_ESC_LOG,               /* nginx log escaping: " \ and non-printables as \xHH */
    TMPL_ESC_JSON,              /* log_format escape=json */
};

/*
 * Value of one variable for session `s`'s current request. Sets *found = 0 for
 * a variable with no value (nginx "not found": "" in templates, "-" in logs).
 * The slice is valid until the request arena is reset.
 */
struct str var_value(struct client_stream *s, const struct var_ref *v, int *found);

/* Evaluate a template into the request arena. 0, or -1 on allocation failure. */
int tmpl_eval(struct client_stream *s, const struct tmpl *t, struct str *out);

/* Evaluate with escaping of variable values (access logs). */
int tmpl_eval_esc(struct client_stream *s, const struct tmpl *t, enum tmpl_escape esc,
                  struct str *out);

/*
 * Upstream attempts, recorded by the proxy for the $upstream_* variables
 * (nginx's order and values):
 *  - upstream_pass_begin() when a request starts being proxied: from the
 *    second proxied pass of one request on (an error_page or other internal
 *    redirect to a proxied location) it adds the " : " separator;
 *  - upstream_try_begin() when a server is picked (or none is live: `peer` is
 *    then the group's name); it ends the previous try's response time;
 *  - the proxy fills the returned try (connect/header times, status, bytes);
 *  - upstream_try_end() when the proxying ends: the last try's response time.
 * The try lives in the request arena; NULL on allocation failure (the
 * variables then miss that try, the request goes on).
 */
void upstream_pass_begin(struct request *r);
struct upstream_try *upstream_try_begin(struct request *r, const char *peer);
void upstream_try_end(struct request *r);

/* The current (last) try, or NULL when none or the last is a separator. */
struct upstream_try *upstream_try_last(struct request *r);

/*
 * Format one $upstream_* list into `out` (arena): one value per try, ", "
 * between tries and " : " across a separator, as nginx. `field` is one of
 * enum upstream_field. Returns 0, or -1 when there is no try (not found).
 * Exposed for unit tests.
 */
enum upstream_field {
    UF_ADDR, UF_STATUS, UF_CONNECT_TIME, UF_HEADER_TIME, UF_RESPONSE_TIME,
    UF_RESPONSE_LENGTH, UF_BYTES_RECEIVED, UF_BYTES_SENT,
};
int upstream_list(struct arena *a, const struct upstream_try *t, unsigned n,
                  enum upstream_field field, int64_t open_ms, struct str *out);

/*
 * The user name of an "Authorization: Basic" value, as nginx's $remote_user
 * decodes it (base64, up to the first ':'); in the arena. -1 when the value
 * is not Basic credentials with a non-empty user name and a ':'.
 */
int basic_auth_user(struct arena *a, struct str value, struct str *user);

/*
 * `set` on a builtin nginx lets it change (conf/vars.h VAR_SET_BUILTIN):
 * `id` without the flag. $args: the request's arguments become `v` (the
 * proxied URI is then rebuilt from $uri and them, as nginx).
 */
void var_set_builtin(struct client_stream *s, unsigned id, struct str v);

/* Find a request header (case-insensitive); NULL slice when absent. */
struct str req_header(const struct request *r, const char *name);

/*
 * A tunnel's access-log line is made at the switch (101) and written when
 * the tunnel ends. Where a value is only known then, the line holds a mark:
 * TUNNEL_MARK, a letter, an optional decimal base and ';'. The letters:
 *   'd' $tunnel_duration, 'c' $tunnel_bytes_from_client,
 *   'u' $tunnel_bytes_from_upstream, 'r' $tunnel_close_reason;
 * and, as nginx logs an upgraded request when it ends:
 *   'T' $request_time (base: the request's start, wall-clock ms),
 *   'K' $connection_time (base: the connection's start, loop ms),
 *   'R' the last try's $upstream_response_time (base: its start, loop ms),
 *   'B' $bytes_sent, 'b' $body_bytes_sent, 'X' the last try's
 *       $upstream_bytes_received (base + bytes from the upstream),
 *   'S' the last try's $upstream_bytes_sent (base + bytes from the client),
 *   'C' $request_completion, 'M' $msec, 'L' $time_local, 'I' $time_iso8601.
 * Made by http/vars_eval.c, filled in by proxy/tunnel.c.
 */
#define TUNNEL_MARK '\001'

#endif

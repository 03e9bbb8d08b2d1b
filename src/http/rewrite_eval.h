/*
 * rewrite_eval.h - evaluating a `rewrite` replacement the way nginx's script
 * engine does: captures escaped where nginx escapes them, the literal '?'
 * that starts new arguments, the trailing '?' that drops the old ones, and
 * the partial unescaping of redirect targets.
 */
#ifndef SY_HTTP_REWRITE_EVAL_H
#define SY_HTTP_REWRITE_EVAL_H

#include "http/stream.h"

struct rw_eval {
    struct str uri;     /* internal rewrite: the new $uri; redirect: the whole target,
                           the request's arguments already appended when they apply */
    struct str args;    /* internal rewrite: the new $args (NULL slice = none) */
};

/*
 * Does the replacement `raw` (the configured text) make a redirect by itself?
 * nginx: it starts with "http://", "https://" or "$scheme".
 */
int rw_is_url(struct str raw);

/*
 * Evaluate replacement `t` after a successful rewrite match (the captures in
 * s->req.caps). `redirect` chooses nginx's redirect mode: no argument split,
 * captures always escaped (when the request URI carried %-escapes or '+'),
 * then %XX of printable bytes other than '%' decoded up to the first '?'.
 * Otherwise captures are escaped only inside the arguments part. The
 * request's arguments are added unless `t` ends with '?'. 0, or -1 on
 * allocation failure.
 */
int rw_eval_replacement(struct client_stream *s, const struct tmpl *t, int redirect,
                        struct rw_eval *out);

#endif

/*
 * auth_request.c - the access phase's sub-request (see auth_request.h).
 *
 * While the sub-request runs, the parent stream's handler hooks are ours:
 * a client that goes away (HTTP/1: its FIN; HTTP/2: RST_STREAM or the
 * connection's end) ends the parent, and the parent's end cancels the
 * sub-request (its upstream connection closed, its memory given back).
 */
#include "http/auth_request.h"

#include <string.h>

#include "conf/runtime.h"
#include "core/log.h"
#include "http/access.h"
#include "http/response.h"
#include "http/subrequest.h"
#include "http/vars_eval.h"

/* Per request, in its arena, while an auth sub-request runs. */
struct auth_request_ctx {
    struct client_stream *child;
    int code;                   /* satisfy any: the refusal so far */
    const struct access_conf *ac; /* the rules that started it */
};

static struct auth_request_ctx *ctx_of(const struct client_stream *s)
{
    return s->req.auth_request;
}

int auth_request_saved_code(const struct client_stream *s)
{
    const struct auth_request_ctx *ctx = ctx_of(s);
    return ctx ? ctx->code : 0;
}

/* The parent's client went away while the sub-request runs (unless the
 * sub-request's location says proxy_ignore_client_abort, as nginx's
 * broken-connection check of its upstream). */
static void parent_event(struct client_stream *s, int timed_out)
{
    const struct auth_request_ctx *arc = ctx_of(s);
    if (timed_out || !s->ops->client_gone(s))
        return;
    if (arc && arc->child && arc->child->req.lc && arc->child->req.lc->proxy_ignore_client_abort)
        return;
    char ctx[1500];
    stream_log_ctx(s, ctx, sizeof(ctx));
    sy_log(LOG_LVL_INFO, "*%llu client prematurely closed connection while waiting for the "
           "auth request%s", stream_conn_id(s), ctx);
    s->req.status = 499;
    s->ops->abort(s, "client closed during auth_request");
}

/* The parent ends (abort, RST_STREAM, connection closed): drop the child. */
static void parent_abort(struct client_stream *s)
{
    struct auth_request_ctx *ctx = ctx_of(s);
    if (!ctx || !ctx->child)
        return;
    struct client_stream *child = ctx->child;
    ctx->child = NULL;
    subrequest_cancel(child);
}

/* auth_request_set: evaluated in the sub-request, stored in the parent. */
static int set_variables(struct client_stream *s, struct client_stream *child,
                         const struct access_conf *ac)
{
    struct request *r = &s->req;
    for (unsigned i = 0; i < ac->nvars; i++) {
        const struct auth_request_var *av = &ac->vars[i];
        struct str v;
        if (tmpl_eval(child, &av->value, &v) < 0)
            return -1;
        struct str copy = v.len ? arena_str(&r->arena, v) : STR_LIT("");
        if (v.len && !copy.p)
            return -1;
        if (av->var->id & VAR_SET_BUILTIN)
            var_set_builtin(s, av->var->id & ~VAR_SET_BUILTIN, copy);
        else if (r->set_vals && av->var->id < r->rt->gen->vars.nset_slots)
            r->set_vals[av->var->id] = copy; /* the child shares set_vals */
    }
    return 0;
}

/* The sub-request's WWW-Authenticate headers go to the client with the 401. */
static int copy_challenges(struct client_stream *s, struct client_stream *child)
{
    struct request *r = &s->req, *c = &child->req;
    for (unsigned i = 0; i < c->nresp; i++) {
        if (!str_caseeq(c->resp[i].name, STR_LIT("www-authenticate")))
            continue;
        struct str v = arena_str(&r->arena, c->resp[i].value);
        if (!v.p || resp_add(r, STR_LIT("WWW-Authenticate"), v) < 0)
            return -1;
    }
    return 0;
}

static void auth_done(struct client_stream *s, struct client_stream *child, int status)
{
    struct auth_request_ctx *ctx = ctx_of(s);
    ctx->child = NULL;
    s->on_event = NULL;
    s->on_abort = NULL;
    const struct access_conf *ac = ctx->ac;
    int rc;
    if (set_variables(s, child, ac) < 0)
        rc = 500;
    else if (status == 403)
        rc = 403;
    else if (status == 401)
        rc = copy_challenges(s, child) < 0 ? 500 : 401;
    else if (status >= 200 && status < 300)
        rc = ACCESS_OK;
    else {
        char lctx[1500];
        stream_log_ctx(s, lctx, sizeof(lctx));
        sy_log(LOG_LVL_ERR, "*%llu auth request unexpected status: %d%s", stream_conn_id(s),
               status, lctx);
        rc = 500;
    }
    http_access_resume(s, rc);
}

int auth_request_start(struct client_stream *s, const struct access_conf *ac, int code)
{
    struct request *r = &s->req;
    if (!ac->auth_request.len)
        return ACCESS_DECLINED;
    struct auth_request_ctx *ctx = arena_calloc(&r->arena, sizeof(*ctx));
    if (!ctx)
        return 500;
    ctx->code = code;
    r->auth_request = ctx;
    ctx->ac = ac;
    s->on_event = parent_event;
    s->on_abort = parent_abort;
    struct client_stream *child = subrequest_start(s, ac->auth_request, auth_done);
    if (!child) {
        s->on_event = NULL;
        s->on_abort = NULL;
        return 500;
    }
    ctx->child = child;
    return ACCESS_WAIT;
}

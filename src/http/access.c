/*
 * access.c - the access phase (see access.h): limit_except, allow/deny and
 * satisfy, driving auth_basic (auth_basic.c) and auth_request
 * (auth_request.c) in nginx's order.
 *
 * nginx runs one handler after another; with `satisfy all` the first that
 * refuses ends the phase, with `satisfy any` the first that allows ends it
 * and a refusal is only remembered (401 wins over 403) for the end of the
 * phase. A handler that is not configured (declined) does not count.
 */
#include "http/access.h"

#include <string.h>
#include <sys/socket.h>

#include "core/log.h"
#include "http/auth_request.h"
#include "http/phases.h"
#include "http/realip.h"
#include "http/subrequest.h"

/* What combine() says. */
#define STEP_NEXT 0             /* on to the next handler */
#define STEP_ALLOW (-1)         /* allowed: the phase is over */

const struct loc_conf *http_limit_except(const struct request *r, const struct loc_conf *lc)
{
    const struct access_conf *ac = lc->access;
    /* only the location that wrote limit_except has lmt_lc (access_conf_merge) */
    if (ac && ac->lmt_lc && !(access_method_bit(r->method) & ac->lmt_methods))
        return ac->lmt_lc;
    return lc;
}

static void log_ctx_line(struct client_stream *s, enum log_level lvl, const char *what)
{
    char ctx[1500];
    stream_log_ctx(s, ctx, sizeof(ctx));
    sy_log(lvl, "*%llu %s%s", stream_conn_id(s), what, ctx);
}

static int rule_matches(const struct access_rule *rule, const uint8_t *a, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if ((a[k] & rule->mask[k]) != rule->addr[k])
            return 0;
    return 1;
}

/* The first rule of `family` that matches the address (n bytes); -1 none. */
static int first_match(const struct access_conf *ac, int family, const uint8_t *a, size_t n)
{
    for (unsigned i = 0; i < ac->nrules; i++)
        if (ac->rules[i].family == family && (family == AF_UNIX || rule_matches(&ac->rules[i], a, n)))
            return (int)i;
    return -1;
}

static int has_family(const struct access_conf *ac, int family)
{
    for (unsigned i = 0; i < ac->nrules; i++)
        if (ac->rules[i].family == family)
            return 1;
    return 0;
}

/* allow/deny (ngx_http_access_handler): the real client's address. */
static int access_rules(struct client_stream *s, const struct access_conf *ac)
{
    if (!ac->nrules)
        return ACCESS_DECLINED;
    const union conn_addr *ca = realip_client(s);
    int hit = -1;
    switch (ca->sa.sa_family) {
    case AF_INET:
        hit = first_match(ac, AF_INET, (const uint8_t *)&ca->in.sin_addr, 4);
        break;
    case AF_INET6: {
        const uint8_t *b = ca->in6.sin6_addr.s6_addr;
        /* an IPv4-mapped client meets the IPv4 rules when there are any */
        if (IN6_IS_ADDR_V4MAPPED(&ca->in6.sin6_addr) && has_family(ac, AF_INET))
            hit = first_match(ac, AF_INET, b + 12, 4);
        else
            hit = first_match(ac, AF_INET6, b, 16);
        break;
    }
    case AF_UNIX:
        hit = first_match(ac, AF_UNIX, NULL, 0);
        break;
    }
    if (hit < 0)
        return ACCESS_DECLINED;
    if (!ac->rules[hit].deny)
        return ACCESS_OK;
    if (ac->satisfy == SATISFY_ALL)
        log_ctx_line(s, LOG_LVL_ERR, "access forbidden by rule");
    return 403;
}

/* satisfy any allowed the request: no challenge is sent after all. */
static void drop_challenges(struct request *r)
{
    unsigned k = 0;
    for (unsigned i = 0; i < r->nresp; i++)
        if (!str_caseeq(r->resp[i].name, STR_LIT("www-authenticate")))
            r->resp[k++] = r->resp[i];
    r->nresp = k;
}

/* One handler's answer under `satisfy` (ngx_http_core_access_phase). */
static int combine(struct client_stream *s, const struct access_conf *ac, int rc, int *code)
{
    if (rc == ACCESS_DECLINED)
        return STEP_NEXT;
    if (ac->satisfy == SATISFY_ALL)
        return rc == ACCESS_OK ? STEP_NEXT : rc;
    if (rc == ACCESS_OK) {
        *code = 0;
        drop_challenges(&s->req);
        return STEP_ALLOW;
    }
    if (rc == 401 || rc == 403) {
        if (*code != 401)
            *code = rc;
        return STEP_NEXT;
    }
    return rc;
}

/* The end of the phase: what satisfy any remembered (nginx's post-access
 * phase, which logs a remembered 403 as a rule's refusal). */
static int phase_result(struct client_stream *s, int step, int code)
{
    if (step == STEP_ALLOW)
        return 0;
    if (step != STEP_NEXT)
        return step;
    if (code == 403)
        log_ctx_line(s, LOG_LVL_ERR, "access forbidden by rule");
    return code;
}

int http_access_phase(struct client_stream *s)
{
    if (subrequest_is(s))
        return 0;
    const struct access_conf *ac = s->req.lc->access;
    if (!ac)
        return 0;
    int code = 0;
    int step = combine(s, ac, access_rules(s, ac), &code);
    if (step != STEP_NEXT)
        return phase_result(s, step, code);
    step = combine(s, ac, auth_basic_check(s, ac), &code);
    if (step != STEP_NEXT)
        return phase_result(s, step, code);
    int rc = auth_request_start(s, ac, code);
    if (rc == ACCESS_WAIT)
        return ACCESS_WAIT;
    step = combine(s, ac, rc, &code);
    return phase_result(s, step, code);
}

uint64_t http_access_delay(struct client_stream *s)
{
    const struct access_conf *ac = s->req.lc->access;
    if (!ac || !ac->auth_delay)
        return 0;
    log_ctx_line(s, LOG_LVL_INFO, "delaying unauthorized request");
    return ac->auth_delay;
}

void http_access_resume(struct client_stream *s, int rc)
{
    const struct access_conf *ac = s->req.lc->access;
    int code = auth_request_saved_code(s);
    int step = combine(s, ac, rc, &code); /* before phase_result reads code */
    http_phase_access_done(s, phase_result(s, step, code));
}

/*
 * runtime.c - wiring of the layers at startup (see runtime.h).
 */
#include "proc/runtime.h"

#include <string.h>

#include "http/router.h"
#include "proxy/balance.h"
#include "tls/tls.h"

static void gen_tls_free(struct generation *g)
{
    tls_gen_free(g->tls);
    g->tls = NULL;
}

/* SNI: the server by server_name; the regex captures are not needed here. */
static const struct server_conf *sni_find_server(const struct listen_conf *l, struct str host)
{
    struct regex_caps caps;
    memset(&caps, 0, sizeof(caps));
    return router_find_server(l, host, &caps);
}

static const struct gen_hooks gen_hooks = {tls_gen_load, gen_tls_free};
static const struct rt_hooks rt_hooks = {balance_rt_create, balance_rt_destroy};

void runtime_hooks_install(void)
{
    gen_set_hooks(&gen_hooks);
    rt_set_hooks(&rt_hooks);
    tls_set_server_finder(sni_find_server);
}

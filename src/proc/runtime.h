/*
 * runtime.h - wiring of the layers at startup.
 *
 * Lower layers call up only through hooks (ARCHITECTURE.md: a lower layer
 * that must call up takes a callback). proc, the top layer, installs them:
 *   conf  gen_load's extra step: the TLS contexts (tls_gen_load/free);
 *   conf  rt_create/rt_release's upstream state (proxy/balance.h);
 *   tls   the SNI server lookup (http/router.h's router_find_server).
 * The runtime itself (struct gen_rt) is conf/runtime.h's.
 */
#ifndef SY_PROC_RUNTIME_H
#define SY_PROC_RUNTIME_H

#include "conf/runtime.h"

/* Install every hook. Call once before loading a configuration (main does;
 * unit tests that load a generation with TLS or upstreams do too). */
void runtime_hooks_install(void);

#endif

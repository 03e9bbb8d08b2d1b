/*
 * listener.h - a listening socket of the worker, and the configuration a
 * client connection accepted on it runs under.
 */
#ifndef SY_CLIENT_LISTENER_H
#define SY_CLIENT_LISTENER_H

#include <sys/socket.h>

#include "conf/runtime.h"
#include "core/loop.h"
#include "http/stream.h"

/* A listening socket of the worker (runtime side of a listen_conf). */
struct listener {
    struct handle h;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    const char *text;           /* "127.0.0.1:8080" (owned by the worker) */
    unsigned listen_index;      /* index into the current generation's listens */
    int paused;                 /* out of worker_connections: not accepting */
};

/* The listen_conf of a connection's address in the current generation (a
 * reload changes it for the next request); NULL when there is none. */
static inline const struct listen_conf *client_current_listen(const struct client_conn *cc)
{
    if (!rt_current || !rt_current->gen->http || !cc->lst)
        return NULL;
    if (cc->lst->listen_index >= rt_current->gen->http->nlistens)
        return NULL;
    return rt_current->gen->http->listens[cc->lst->listen_index];
}

#endif

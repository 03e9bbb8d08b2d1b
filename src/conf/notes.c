/*
 * notes.c - explaining, at `-t`, where Switchyard runs a configuration
 * differently from nginx on purpose (docs/websocket.md):
 *   - a proxied location without the three "magic lines" that nginx needs
 *     for WebSocket (the seed's first configuration): Switchyard upgrades
 *     automatically;
 *   - a `proxy_set_header Connection` (the `$connection_upgrade` map idiom, or
 *     a constant "upgrade"): on nginx it disables upstream keep-alive for
 *     ordinary requests or sends "Connection: upgrade" on requests that are
 *     not upgrades; Switchyard sets Connection itself.
 */
#include "conf/notes.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Does a location look like it serves WebSockets? (to keep notes relevant) */
static int looks_like_websocket(struct str pattern, const struct proxy_pass *pp)
{
    static const char *const hints[] = {"ws", "socket", "cable", "realtime", "live", "hub",
                                         "stream", "events", "push", "notify", NULL};
    char buf[256];
    size_t n = pattern.len < sizeof(buf) - 1 ? pattern.len : sizeof(buf) - 1;
    memcpy(buf, pattern.p, n);
    buf[n] = '\0';
    for (int i = 0; hints[i]; i++) {
        if (strcasestr(buf, hints[i]))
            return 1;
        if (pp && pp->has_uri && pp->uri.len < sizeof(buf)) {
            char u[256];
            memcpy(u, pp->uri.p, pp->uri.len);
            u[pp->uri.len] = '\0';
            if (strcasestr(u, hints[i]))
                return 1;
        }
    }
    return 0;
}

static const struct header_tmpl *find_set_header(const struct loc_conf *lc, const char *name)
{
    for (unsigned i = 0; i < lc->nproxy_set_headers; i++)
        if (str_caseeq_cstr(lc->proxy_set_headers[i].name, name))
            return &lc->proxy_set_headers[i];
    return NULL;
}

static void note_location(const struct location *loc, void (*emit)(const char *msg),
                          unsigned *quiet)
{
    const struct loc_conf *lc = loc->lc;
    char msg[1024];
    if (lc->proxy_pass && lc->websocket_auto) {
        const struct header_tmpl *up = find_set_header(lc, "upgrade");
        const struct header_tmpl *conn = find_set_header(lc, "connection");
        if (!up) {
            if (looks_like_websocket(loc->pattern, lc->proxy_pass)) {
                snprintf(msg, sizeof(msg),
                         "location \"%.*s\" in %s:%u: on nginx, WebSocket upgrades through this "
                         "location would fail (it needs \"proxy_http_version 1.1\" and "
                         "\"proxy_set_header Upgrade/Connection\"); Switchyard upgrades "
                         "automatically",
                         (int)loc->pattern.len, loc->pattern.p, loc->file ? loc->file : "?",
                         loc->line);
                emit(msg);
            } else {
                (*quiet)++;
            }
        }
        if (conn && (!conn->value.constant || str_caseeq_cstr(conn->value.raw, "upgrade"))) {
            snprintf(msg, sizeof(msg),
                     "location \"%.*s\" in %s:%u: on nginx, \"proxy_set_header Connection %.*s\" "
                     "would disable upstream keep-alive for ordinary requests (or send "
                     "\"Connection: upgrade\" on requests that are not upgrades); Switchyard sets "
                     "Connection itself: \"upgrade\" for WebSocket upgrades, keep-alive for the rest",
                     (int)loc->pattern.len, loc->pattern.p, loc->file ? loc->file : "?", loc->line,
                     (int)conn->value.raw.len, conn->value.raw.p);
            emit(msg);
        }
    }
    for (unsigned i = 0; i < loc->nchildren; i++)
        note_location(&loc->children[i], emit, quiet);
}

void conf_websocket_notes(const struct generation *g, void (*emit)(const char *msg))
{
    if (!g->http)
        return;
    unsigned quiet = 0;
    for (unsigned s = 0; s < g->http->nservers; s++) {
        const struct server_conf *srv = g->http->servers[s];
        for (unsigned i = 0; i < srv->nlocations; i++)
            note_location(&srv->locations[i], emit, &quiet);
        for (unsigned i = 0; i < srv->nnamed; i++)
            note_location(&srv->named[i], emit, &quiet);
    }
    if (quiet) {
        char msg[256];
        snprintf(msg, sizeof(msg),
                 "%u other proxied location%s would not pass WebSocket upgrades on nginx; "
                 "Switchyard upgrades automatically there too",
                 quiet, quiet == 1 ? "" : "s");
        emit(msg);
    }
}

/*
 * notes.h - `switchyard -t` notes: configuration that nginx would run
 * differently, explained (WebSocket upgrades, Connection maps).
 */
#ifndef SY_CONF_NOTES_H
#define SY_CONF_NOTES_H

#include "conf/conf.h"

/* Call `emit(msg)` once per note about `g` (messages are NUL-terminated, transient). */
void conf_websocket_notes(const struct generation *g, void (*emit)(const char *msg));

#endif

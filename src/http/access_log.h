/*
 * access_log.h - writing access-log lines at the end of each request.
 */
#ifndef SY_HTTP_ACCESS_LOG_H
#define SY_HTTP_ACCESS_LOG_H

#include "http/stream.h"

/*
 * Write one line per access_log of the request's location, formatted with
 * its log_format (escaped as configured). Lines are written with one write()
 * each, so nothing is held in memory and nothing is lost on exit; a full disk
 * loses the line, never blocks traffic.
 */
void access_log_write(struct client_stream *s);

#endif

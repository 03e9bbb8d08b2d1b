/*
 * h1_proxy_protocol.h - reading the PROXY protocol header of a client
 * connection accepted on a `listen ... proxy_protocol` address.
 */
#ifndef SY_CLIENT_H1_PROXY_PROTOCOL_H
#define SY_CLIENT_H1_PROXY_PROTOCOL_H

struct h1_session;

/*
 * Read the PROXY header of `s` from its socket, without ever taking a byte
 * that follows it. Returns 1 when the header was consumed (s->cc.pp holds what
 * it said; the socket's next byte is the client's first: an HTTP request or
 * a TLS ClientHello), 0 when more bytes are needed (READY_R cleared: wait for
 * the next readable event), or -1 when the connection must be closed (the
 * reason was logged). Never closes or frees `s` itself.
 */
int h1_pp_read(struct h1_session *s);

/* Log that the header did not arrive within client_header_timeout. */
void h1_pp_log_timeout(struct h1_session *s);

#endif

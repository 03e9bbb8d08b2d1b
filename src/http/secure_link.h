/*
 * secure_link.h - $secure_link and $secure_link_expires (nginx's
 * ngx_http_secure_link_module).
 *
 * With secure_link + secure_link_md5: $secure_link is "1" when the hash
 * (base64url MD5, before the comma of the secure_link value) is the MD5 of
 * the secure_link_md5 value and the link has not expired, "0" when it
 * matches but expired, not found (empty) otherwise. With
 * secure_link_secret: the URI is /PREFIX/HASH/LINK and $secure_link is
 * LINK when HASH is the hex MD5 of LINK followed by the secret.
 */
#ifndef SY_HTTP_SECURE_LINK_H
#define SY_HTTP_SECURE_LINK_H

#include "http/stream.h"

/* $secure_link; *found = 0 when it has no value. */
struct str secure_link_value(struct client_stream *s, int *found);
/* $secure_link_expires: the expiry the link carries ("" when none). */
struct str secure_link_expires(struct client_stream *s, int *found);

#endif

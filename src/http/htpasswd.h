/*
 * htpasswd.h - the password files of auth_basic (nginx's
 * ngx_http_auth_basic_module and ngx_crypt): finding a user's line and
 * checking a password against the hash written there.
 *
 * Hash formats: crypt(3) from libxcrypt ($1$ MD5, $5$ SHA-256, $6$
 * SHA-512, $2y$/$2b$ bcrypt, $y$ yescrypt, and whatever else it knows),
 * $apr1$ (APR's MD5 variant, what `htpasswd -m` writes), {SHA} (base64 of
 * SHA-1), {SSHA} (base64 of SHA-1 of password+salt, the salt appended) and
 * {PLAIN}. Pure functions, no allocation beyond the caller's buffers.
 */
#ifndef SY_HTTP_HTPASSWD_H
#define SY_HTTP_HTPASSWD_H

#include <stddef.h>

#include "core/str.h"

/*
 * Find `user`'s line in an htpasswd file's text, as nginx scans it: lines
 * "user:hash[:anything]", '#' comments and lines starting with CR skipped,
 * the first line whose name equals `user` (case-sensitive) wins. The hash
 * (slice into `text`) ends at ':', CR, LF or the end. 1 found, 0 not.
 */
int htpasswd_find(struct str text, struct str user, struct str *hash);

/*
 * Does `password` match `hash` (one of the formats above)? 1 yes, 0 no
 * (also for a setting crypt(3) cannot use), -1 the hash cannot be computed
 * at all (nginx answers 500). Comparisons take the same time whatever
 * matches.
 */
int htpasswd_check(struct str password, struct str hash);

/* The APR MD5 hash ("$apr1$salt$...", NUL-terminated, at most 37+1 bytes)
 * of `password` with the salt of `setting` (up to 8 characters after the
 * magic, ending at '$'). Exposed for the unit tests. */
void htpasswd_apr1(struct str password, struct str setting, char out[64]);

/* Decode standard base64 (padding optional, no white space) into `out`
 * (room for len*3/4 bytes). The decoded length, or -1 when invalid. */
long htpasswd_b64_decode(const char *in, size_t len, unsigned char *out);

#endif

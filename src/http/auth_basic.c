/*
 * auth_basic.c - HTTP Basic authentication against an htpasswd file, as
 * nginx's ngx_http_auth_basic_module: the same answers (401 with
 * `WWW-Authenticate: Basic realm="..."`, 403 for a missing file, 500 for an
 * unreadable one) and the same error-log lines.
 *
 * The file named without variables was read when the configuration loaded
 * (conf/access.c); a name with variables is read here, per request, as
 * nginx reads every one.
 */
#include "http/access.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "conf/snapshot.h"
#include "core/log.h"
#include "http/htpasswd.h"
#include "http/response.h"
#include "http/vars_eval.h"

#define USER_FILE_MAX (64u << 20)

static void log_line(struct client_stream *s, enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void log_line(struct client_stream *s, enum log_level lvl, const char *fmt, ...)
{
    char what[1024], ctx[1500];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    stream_log_ctx(s, ctx, sizeof(ctx));
    sy_log(lvl, "*%llu %s%s", stream_conn_id(s), what, ctx);
}

int auth_basic_challenge(struct client_stream *s, struct str realm)
{
    struct request *r = &s->req;
    char *v = arena_printf(&r->arena, "Basic realm=\"%.*s\"", (int)realm.len, realm.p);
    if (!v || resp_add(r, STR_LIT("WWW-Authenticate"), str_from_cstr(v)) < 0)
        return 500;
    return 401;
}

/*
 * The credentials of the Authorization header (ngx_http_auth_basic_user):
 * "Basic" (any case), spaces, base64 of "user:password" with a non-empty
 * user. 0 and the two slices (arena), or -1.
 */
static int credentials(struct request *r, struct str *user, struct str *pass)
{
    struct str v = req_header(r, "authorization");
    if (v.len < 6 || strncasecmp(v.p, "Basic ", 6) != 0)
        return -1;
    v.p += 6;
    v.len -= 6;
    while (v.len && v.p[0] == ' ') {
        v.p++;
        v.len--;
    }
    if (!v.len)
        return -1;
    unsigned char *d = arena_alloc(&r->arena, v.len * 3 / 4 + 3);
    if (!d)
        return -1;
    long n = htpasswd_b64_decode(v.p, v.len, d);
    if (n <= 0)
        return -1;
    size_t colon = 0;
    while (colon < (size_t)n && d[colon] != ':')
        colon++;
    if (colon == 0 || colon == (size_t)n)
        return -1;
    *user = (struct str){(const char *)d, colon};
    *pass = (struct str){(const char *)d + colon + 1, (size_t)n - colon - 1};
    return 0;
}

/* The file's open() failed (at load, or now): nginx's answer to that. */
static int file_failed(struct client_stream *s, const char *path, int err)
{
    int missing = err == ENOENT;
    log_line(s, missing ? LOG_LVL_ERR : LOG_LVL_CRIT, "open() \"%s\" failed (%d: %s)", path, err,
             strerror(err));
    return missing ? 403 : 500;
}

/* Check the password against the user's line of `text` (file `path`). */
static int check_in(struct client_stream *s, struct str text, const char *path, struct str user,
                    struct str pass, struct str realm)
{
    struct str hash;
    if (!htpasswd_find(text, user, &hash)) {
        log_line(s, LOG_LVL_ERR, "user \"%.*s\" was not found in \"%s\"", (int)user.len, user.p,
                 path);
        return auth_basic_challenge(s, realm);
    }
    int ok = htpasswd_check(pass, hash);
    if (ok < 0)
        return 500;
    if (ok)
        return ACCESS_OK;
    log_line(s, LOG_LVL_ERR, "user \"%.*s\": password mismatch", (int)user.len, user.p);
    return auth_basic_challenge(s, realm);
}

/* auth_basic_user_file with variables: read the file now, as nginx. */
static int check_per_request(struct client_stream *s, const struct access_conf *ac,
                             struct str user, struct str pass, struct str realm)
{
    struct request *r = &s->req;
    struct str name;
    if (tmpl_eval(s, ac->user_file, &name) < 0)
        return 500;
    char *path = arena_strndup(&r->arena, name.p, name.len);
    if (!path)
        return 500;
    char *bytes = NULL;
    size_t len = 0;
    const char *what;
    if (snap_read_file(path, USER_FILE_MAX, &bytes, &len, &what) != 0)
        return file_failed(s, path, errno ? errno : EIO);
    int rc = check_in(s, (struct str){bytes, len}, path, user, pass, realm);
    OPENSSL_cleanse(bytes, len);
    free(bytes);
    return rc;
}

int auth_basic_check(struct client_stream *s, const struct access_conf *ac)
{
    struct request *r = &s->req;
    if (!ac->realm || (!ac->file && !ac->user_file))
        return ACCESS_DECLINED;
    struct str realm;
    if (tmpl_eval(s, ac->realm, &realm) < 0)
        return 500;
    if (str_eq(realm, STR_LIT("off")))
        return ACCESS_DECLINED;
    struct str user, pass;
    if (credentials(r, &user, &pass) < 0) {
        log_line(s, LOG_LVL_INFO, "no user/password was provided for basic authentication");
        return auth_basic_challenge(s, realm);
    }
    if (ac->user_file)
        return check_per_request(s, ac, user, pass, realm);
    if (ac->file->err)
        return file_failed(s, ac->file->path, ac->file->err);
    return check_in(s, ac->file->text, ac->file->path, user, pass, realm);
}

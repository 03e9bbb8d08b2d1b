/*
 * empty_gif.c - the empty_gif handler (empty_gif.h).
 */
#include "http/empty_gif.h"

#include <string.h>
#include <time.h>

#include "http/response.h"
#include "http/vars_eval.h"

/* A 1x1 GIF89a whose one pixel is the transparent colour. */
const unsigned char empty_gif_bytes[] = {
    'G', 'I', 'F', '8', '9', 'a',           /* header */
    0x01, 0x00, 0x01, 0x00,                 /* width 1, height 1 */
    0x80, 0x01, 0x00,                       /* global 2-colour table, background #1 */
    0x00, 0x00, 0x00, 0xff, 0xff, 0xff,     /* #0 black, #1 white */
    0x21, 0xf9, 0x04, 0x01, 0x00, 0x00,     /* graphic control: #1 transparent */
    0x01, 0x00,
    0x2c, 0x00, 0x00, 0x00, 0x00,           /* image descriptor at 0,0 */
    0x01, 0x00, 0x01, 0x00, 0x00,           /* 1x1, no local table */
    0x02, 0x02, 0x4c, 0x01, 0x00,           /* LZW code size 2, one data block */
    0x3b,                                   /* trailer */
};
const size_t empty_gif_len = sizeof(empty_gif_bytes);

/* nginx's last_modified_time */
#define EMPTY_GIF_MTIME 23349600LL
#define EMPTY_GIF_LAST_MODIFIED "Mon, 28 Sep 1970 06:00:00 GMT"

/* An IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") as seconds; -1 otherwise. */
static long long imf_time(struct str v)
{
    char buf[64];
    if (!v.p || v.len >= sizeof(buf))
        return -1;
    memcpy(buf, v.p, v.len);
    buf[v.len] = '\0';
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *end = strptime(buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end)
        return -1;
    return (long long)timegm(&tm);
}

int empty_gif_prepare(struct client_stream *s)
{
    struct request *r = &s->req;
    if (!str_eq(r->method, STR_LIT("GET")) && !str_eq(r->method, STR_LIT("HEAD")))
        return 405;
    /* nginx's not-modified filter: `exact` wants the date itself, `before`
     * any date from it on, `off` never answers 304 */
    long long ims = imf_time(req_header(r, "if-modified-since"));
    int mode = r->lc->if_modified_since;
    int not_modified = ims >= 0 && mode != 0 &&
                       (ims == EMPTY_GIF_MTIME || (mode == 2 && ims > EMPTY_GIF_MTIME));
    r->status = not_modified ? 304 : 200;
    if (resp_add(r, STR_LIT("Content-Type"), STR_LIT("image/gif")) < 0 ||
        resp_add(r, STR_LIT("Last-Modified"), STR_LIT(EMPTY_GIF_LAST_MODIFIED)) < 0)
        return -1;
    return r->status;
}

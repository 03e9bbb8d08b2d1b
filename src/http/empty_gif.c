/*
 * empty_gif.c - the empty_gif handler (empty_gif.h).
 */
#include "http/empty_gif.h"

#include <strings.h>

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

/* nginx's last_modified_time 23349600 */
#define EMPTY_GIF_LAST_MODIFIED "Mon, 28 Sep 1970 06:00:00 GMT"

int empty_gif_prepare(struct client_stream *s)
{
    struct request *r = &s->req;
    if (!str_eq(r->method, STR_LIT("GET")) && !str_eq(r->method, STR_LIT("HEAD")))
        return 405;
    /* A client revalidating sends the date back as it got it; nginx's
     * not-modified filter then answers 304 (compared as dates there). */
    struct str ims = req_header(r, "if-modified-since");
    int not_modified = r->lc->if_modified_since != 0 && ims.p &&
                       ims.len == sizeof(EMPTY_GIF_LAST_MODIFIED) - 1 &&
                       strncasecmp(ims.p, EMPTY_GIF_LAST_MODIFIED, ims.len) == 0;
    r->status = not_modified ? 304 : 200;
    if (resp_add(r, STR_LIT("Content-Type"), STR_LIT("image/gif")) < 0 ||
        resp_add(r, STR_LIT("Last-Modified"), STR_LIT(EMPTY_GIF_LAST_MODIFIED)) < 0)
        return -1;
    return r->status;
}

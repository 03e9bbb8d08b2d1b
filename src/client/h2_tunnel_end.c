/*
 * h2_tunnel_end.c - an HTTP/2 stream as one end of a tunnel (WebSocket over
 * HTTP/2, RFC 8441): the relay reads the stream's DATA and writes into its
 * response body, within the stream's and the connection's windows.
 *
 * The end outlives neither side silently: when the stream goes (client
 * RST_STREAM, connection closed) the end forgets it and wakes the tunnel,
 * which then sees the end of the stream (both directions had ended) or an
 * error (it was reset); when the tunnel is done (close), the stream ends
 * with END_STREAM after what was written, the client gets a moment to end
 * its side (else RST_STREAM), and the end is freed.
 */
#include "client/h2_internal.h"

#include <stdlib.h>
#include <string.h>

#include "proxy/tunnel_end.h"

struct h2_tunnel_end {
    struct tunnel_end end;      /* first member */
    struct h2_stream *hs;       /* NULL once the stream is gone */
    struct buf *in;             /* DATA left when the stream went */
    int clean;                  /* the stream ended both ways before it went */
};

static ssize_t he_recv(struct tunnel_end *e, void *buf, size_t len)
{
    struct h2_tunnel_end *he = (struct h2_tunnel_end *)e;
    struct h2_stream *hs = he->hs;
    struct buf **in = hs ? &hs->in : &he->in;
    if (*in && buf_len(*in)) {
        size_t n = buf_len(*in) < len ? buf_len(*in) : len;
        memcpy(buf, buf_head(*in), n);
        buf_consume(*in, n);
        if (buf_len(*in) == 0) {
            buf_put(*in);
            *in = NULL;
        }
        if (hs) {
            /* The window opens by what the tunnel took, no sooner. */
            nghttp2_session_consume(hs->sess->ng, hs->id, n);
            h2_session_schedule(hs->sess);
        }
        return (ssize_t)n;
    }
    if (!hs)
        return he->clean ? 0 : SY_ERR;
    if (hs->client_done)
        return 0;
    if (hs->reset)
        return SY_ERR;
    e->ready &= ~TUNNEL_END_R;
    return SY_AGAIN;
}

static ssize_t he_writev(struct tunnel_end *e, const struct iovec *iov, int iovcnt)
{
    struct h2_tunnel_end *he = (struct h2_tunnel_end *)e;
    struct h2_stream *hs = he->hs;
    if (!hs || hs->reset || hs->out_eof)
        return SY_ERR;
    size_t taken = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (!iov[i].iov_len)
            continue;
        if (!hs->out && !(hs->out = buf_get()))
            return taken ? (ssize_t)taken : SY_ERR;
        if (buf_room(hs->out) < iov[i].iov_len)
            buf_compact(hs->out);
        size_t k = buf_room(hs->out) < iov[i].iov_len ? buf_room(hs->out) : iov[i].iov_len;
        memcpy(buf_tail(hs->out), iov[i].iov_base, k);
        hs->out->last += (uint32_t)k;
        taken += k;
        if (k < iov[i].iov_len)
            break;
    }
    if (taken == 0) {
        /* Full: the windows are shut or the peer reads slowly. The data
         * source wakes us when it drains the buffer. */
        hs->writer_blocked = 1;
        e->ready &= ~TUNNEL_END_W;
        return SY_AGAIN;
    }
    if (hs->deferred) {
        hs->deferred = 0;
        nghttp2_session_resume_data(hs->sess->ng, hs->id);
    }
    h2_session_schedule(hs->sess);
    return (ssize_t)taken;
}

static void he_shutdown_wr(struct tunnel_end *e)
{
    struct h2_tunnel_end *he = (struct h2_tunnel_end *)e;
    struct h2_stream *hs = he->hs;
    if (!hs || hs->out_eof)
        return;
    hs->out_eof = 1; /* END_STREAM after the bytes written */
    if (hs->deferred) {
        hs->deferred = 0;
        nghttp2_session_resume_data(hs->sess->ng, hs->id);
    }
    h2_session_schedule(hs->sess);
}

static void he_close(struct tunnel_end *e)
{
    struct h2_tunnel_end *he = (struct h2_tunnel_end *)e;
    struct h2_stream *hs = he->hs;
    if (hs) {
        hs->tend = NULL;
        if (hs->reset || hs->sess->closed) {
            /* nothing to say on this stream any more */
        } else {
            /* The tunnel is over (it sent its close frames, or the peers
             * did): what is written goes out with END_STREAM, as a socket
             * end's close is a FIN; a client that has not ended its side
             * gets a moment to, then the stream is reset. */
            if (!hs->out_eof) {
                hs->out_eof = 1;
                if (hs->deferred) {
                    hs->deferred = 0;
                    nghttp2_session_resume_data(hs->sess->ng, hs->id);
                }
            }
            if (!hs->client_done)
                timer_set(&hs->timer, H2_TUNNEL_LINGER_MS);
        }
        h2_session_schedule(hs->sess);
    }
    buf_put(he->in);
    free(he);
}

static const struct tunnel_end_ops h2_tunnel_end_ops = {
    .name = "h2 stream",
    .recv = he_recv,
    .writev = he_writev,
    .shutdown_wr = he_shutdown_wr,
    .close = he_close,
    .splice_fd = NULL,
};

struct tunnel_end *h2_tunnel_end_new(struct h2_stream *hs)
{
    struct h2_tunnel_end *he = calloc(1, sizeof(*he));
    if (!he)
        return NULL;
    he->end.ops = &h2_tunnel_end_ops;
    he->hs = hs;
    hs->tend = he;
    /* Bytes may already be there; the response can take bytes at once. */
    he->end.ready = TUNNEL_END_W | (hs->in || hs->client_done ? TUNNEL_END_R : 0);
    return &he->end;
}

void h2_tunnel_end_ready(struct h2_stream *hs, unsigned events)
{
    if (hs->tend)
        tunnel_end_ready_post(&hs->tend->end, events);
}

void h2_tunnel_end_stream_gone(struct h2_stream *hs)
{
    struct h2_tunnel_end *he = hs->tend;
    if (!he)
        return;
    he->clean = hs->client_done && hs->end_sent;
    he->in = hs->in; /* what the client sent last is still relayed */
    hs->in = NULL;
    he->hs = NULL;
    hs->tend = NULL;
    tunnel_end_ready_post(&he->end, TUNNEL_END_R | TUNNEL_END_W);
}

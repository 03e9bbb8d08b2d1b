/*
 * compress.h - response compression: the gzip and Brotli response filter
 * (nginx's ngx_http_gzip_module with the gzip_* checks of its core module,
 * and ngx_brotli's filter), and the choice of precompressed files
 * (gzip_static, brotli_static). Settings: conf/gzip.h (lc->compress).
 *
 * The filter (a struct resp_filter_type, http/filter.h) decides at head
 * time, as nginx's header filters do: status 200, 403 or 404; no
 * Content-Encoding yet; not header-only (HEAD, 204, 304); the length
 * unknown or at least *_min_length; the type in *_types. Such a response
 * is "eligible" and gets Vary: Accept-Encoding with gzip_vary on, whether or
 * not it is compressed. Then the client's Accept-Encoding (q-values,
 * RFC 9110 12.5.3) picks br or gzip; gzip also passes gzip_http_version,
 * gzip_proxied (requests with Via), gzip_disable (User-Agent) as nginx.
 * A compressed response loses Content-Length (it is streamed: chunked on
 * HTTP/1.1) and Accept-Ranges, and its ETag becomes weak.
 *
 * The body is compressed as it is written, through one 16 KiB output
 * buffer and the encoder's own state: memory per response is bounded
 * whatever the body's size. What the handler wrote is flushed (Z_SYNC_FLUSH,
 * BROTLI_OPERATION_FLUSH) when a streaming source pauses (the upstream had
 * nothing more to read), so server-sent events arrive event by event.
 */
#ifndef SY_HTTP_COMPRESS_H
#define SY_HTTP_COMPRESS_H

#include "http/filter.h"
#include "http/static.h"

extern const struct resp_filter_type compress_filter_type;

/* Content codings, as chosen by compress_accept(). */
enum compress_coding {
    COMPRESS_NONE = 0,
    COMPRESS_GZIP = 1,
    COMPRESS_BR = 2,
};

/*
 * Negotiate Accept-Encoding `ae` between the codings in `offer` (a mask of
 * 1 << COMPRESS_GZIP, 1 << COMPRESS_BR): the coding with the highest
 * q-value (an explicit entry, else "*"), Brotli on a tie; COMPRESS_NONE when
 * none has q > 0. `q_out`, when not NULL, gets each coding's q (0..1000).
 */
enum compress_coding compress_accept(struct str ae, unsigned offer, int q_out[3]);

/*
 * gzip_static / brotli_static for a static request: fills `v` (up to
 * COMPRESS_MAX_VARIANTS, best first) and returns how many static_handle()
 * tries before the file itself. With gzip_static on, a client that cannot
 * take gzip gets a probe-only variant when gzip_vary is on, so that a .gz
 * that exists still gives Vary (nginx).
 */
#define COMPRESS_MAX_VARIANTS 3
unsigned compress_static_variants(struct client_stream *st, struct static_variant *v);

/* After static_handle(): Content-Encoding for a variant sent (or answered
 * 304), and the Vary note (filter.h) as nginx's gzip_static and ngx_brotli
 * set it. 0, or -1 (out of memory). */
int compress_static_result(struct client_stream *st, const struct static_result *res);

/*
 * $gzip_ratio / $brotli_ratio: input bytes over output bytes of this
 * response's compression by `coding`, "%.2f" as nginx writes it, into `out`.
 * 0 (not found) unless that coding compressed the response to its end.
 */
int compress_ratio(const struct client_stream *st, enum compress_coding coding, char *out,
                   size_t cap);

#endif

/*
 * fuzz_h1_chunked.c - libFuzzer target for h1_decode_chunked().
 *
 * The input is decoded three ways: in one call, in two calls split at a
 * point derived from the data, and (for small inputs) one byte per call.
 * All three must agree on the outcome, the decoded payload and the bytes left
 * over after the body. The payload can never be longer than the input, and
 * the leftover must be the untouched tail of the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1_parser.h"

/* Invariant violations abort so libFuzzer records the input as a crash. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct outcome {
    ssize_t rc; /* -2, -1, or the number of bytes left after the body */
    char *body; /* decoded payload (malloc'd, `size` bytes) */
    size_t body_len;
};

/* Feed data[0..size) in pieces of at most `step` bytes (0: one piece). */
static void decode(const uint8_t *data, size_t size, size_t first, size_t step, struct outcome *o)
{
    struct h1_chunked d;
    memset(&d, 0, sizeof(d));
    o->rc = -2;
    o->body = malloc(size + 1);
    o->body_len = 0;
    CHECK(o->body != NULL);

    size_t pos = 0;
    int pieces = 0;
    while (pos < size || pieces == 0) {
        size_t n = size - pos;
        if (pieces == 0 && first < n)
            n = first;
        else if (pieces > 0 && step && step < n)
            n = step;
        pieces++;
        char *piece = malloc(n ? n : 1);
        CHECK(piece != NULL);
        memcpy(piece, data + pos, n);
        size_t len = n;
        ssize_t r = h1_decode_chunked(&d, piece, &len);
        CHECK(r >= -2);
        CHECK(len <= n);
        memcpy(o->body + o->body_len, piece, len);
        o->body_len += len;
        pos += n;
        if (r >= 0) {
            CHECK(len + (size_t)r <= n);
            /* the leftover is the input's tail, moved right after the payload */
            CHECK(memcmp(piece + len, data + pos - (size_t)r, (size_t)r) == 0);
            o->rc = r + (ssize_t)(size - pos);
            free(piece);
            return;
        }
        free(piece);
        if (r == -1) {
            o->rc = -1;
            return;
        }
        if (pos == size)
            break;
    }
}

static void same(const struct outcome *a, const struct outcome *b)
{
    CHECK(a->rc == b->rc);
    if (a->rc != -1) {
        CHECK(a->body_len == b->body_len);
        CHECK(memcmp(a->body, b->body, a->body_len) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct outcome one, two, bytes;

    decode(data, size, size, 0, &one);
    CHECK(one.body_len <= size);
    if (one.rc >= 0)
        CHECK(one.body_len + (size_t)one.rc <= size);

    size_t split = size ? ((size_t)data[0] * 131 + (size_t)data[size - 1]) % (size + 1) : 0;
    decode(data, size, split, 0, &two);
    same(&one, &two);

    if (size <= 4096) {
        decode(data, size, 1, 1, &bytes);
        same(&one, &bytes);
        free(bytes.body);
    }
    free(one.body);
    free(two.body);
    return 0;
}

/*
 * fuzz_proxy_protocol.c - libFuzzer target for pp_parse() (PROXY protocol
 * v1/v2 headers).
 *
 * Besides memory safety, the contract the connection side relies on:
 *   - a result is PP_NEED_MORE, PP_ERROR (with a reason) or a length within
 *     the input;
 *   - fed growing prefixes, the outcome moves only forward: NEED_MORE for a
 *     while, then either an error that stays an error, or a length L that
 *     appears first at the prefix of exactly L bytes and never changes (the
 *     header is self-delimiting: no byte after it is ever needed or counted);
 *   - NEED_MORE never happens with PP_MAX_HEADER bytes in hand (the peek
 *     buffer's size), so a waiting connection always ends up deciding;
 *   - the addresses reported do not depend on what follows the header.
 * Every prefix is fed from an exactly-sized heap copy so ASan sees overreads.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/proxy_protocol.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ssize_t parse_copy(const uint8_t *data, size_t n, struct pp_result *r)
{
    uint8_t *p = malloc(n ? n : 1);
    CHECK(p != NULL);
    if (n)
        memcpy(p, data, n);
    ssize_t rc = pp_parse(p, n, r);
    free(p);
    if (rc == PP_ERROR)
        CHECK(r->reason != NULL);
    else if (rc != PP_NEED_MORE)
        CHECK(rc > 0 && (size_t)rc <= n);
    if (rc == PP_NEED_MORE)
        CHECK(n < PP_MAX_HEADER);
    return rc;
}

/* The outcome for prefix `n`, checked against the one for a shorter prefix. */
static void step(const uint8_t *data, size_t n, ssize_t *prev, struct pp_result *first)
{
    struct pp_result r;
    ssize_t rc = parse_copy(data, n, &r);
    if (*prev == PP_ERROR) {
        CHECK(rc == PP_ERROR);
    } else if (*prev > 0) {
        CHECK(rc == *prev);
        CHECK(memcmp(&r.addrs, &first->addrs, sizeof(r.addrs)) == 0);
        CHECK(r.version == first->version);
    } else if (rc > 0) {
        CHECK((size_t)rc == n); /* decided at exactly its own length */
        *first = r;
    }
    *prev = rc;
}

/* step() to prefix `n` after a gap: a length decided inside the gap is only
 * checkable at its own size, so visit that size (and the one before) first. */
static void jump(const uint8_t *data, size_t n, ssize_t *prev, struct pp_result *first)
{
    struct pp_result r;
    if (*prev == PP_NEED_MORE) {
        ssize_t rc = parse_copy(data, n, &r);
        if (rc > 0 && (size_t)rc < n) {
            step(data, (size_t)rc - 1, prev, first);
            step(data, (size_t)rc, prev, first);
        }
    }
    step(data, n, prev, first);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 2 * PP_MAX_HEADER)
        return 0;
    ssize_t prev = PP_NEED_MORE;
    struct pp_result first;
    memset(&first, 0, sizeof(first));
    if (size <= 300) {
        for (size_t n = 0; n <= size; n++)
            step(data, n, &prev, &first);
        return 0;
    }
    /* Long inputs: every prefix up to 160 bytes (all of v1, a v2 fixed part
     * and addresses), then points derived from the data, then the whole. */
    for (size_t n = 0; n <= 160; n++)
        step(data, n, &prev, &first);
    size_t pts[8];
    for (int i = 0; i < 8; i++)
        pts[i] = 161 + (size_t)((data[i] << 8 | data[8 + i]) % (size - 161));
    for (int i = 0; i < 8; i++)
        for (int j = i + 1; j < 8; j++)
            if (pts[j] < pts[i]) {
                size_t t = pts[i];
                pts[i] = pts[j];
                pts[j] = t;
            }
    for (int i = 0; i < 8; i++)
        jump(data, pts[i], &prev, &first);
    jump(data, size, &prev, &first);
    return 0;
}

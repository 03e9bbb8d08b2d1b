/*
 * fuzz_byteranges.c - libFuzzer target for http/byteranges.c, the parser of
 * a client's Range header with several ranges (untrusted).
 *
 * Checked properties: byteranges_parse() never reads outside the value
 * (ASan), returns one of its three codes, and every range it keeps is inside
 * the response (from <= to < len), no more than asked by `max`; the ranges
 * add up to at most the response's length.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/byteranges.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint64_t len = (uint64_t)data[0] * 37 + data[1]; /* 0 .. ~9.7 KB */
    int64_t max = data[0] % 5 ? (int64_t)(data[1] % 8) + 1 : INT64_MAX;
    char *v = malloc(size - 2 + 1);
    if (!v)
        return 0;
    memcpy(v, data + 2, size - 2);
    struct byterange rg[BYTERANGES_MAX];
    unsigned n = 0;
    enum byteranges_rc rc = byteranges_parse((struct str){v, size - 2}, len, rg, &n, max);
    if (rc != BYTERANGES_IGNORE && rc != BYTERANGES_OK && rc != BYTERANGES_UNSATISFIABLE)
        abort();
    if (rc == BYTERANGES_OK) {
        uint64_t total = 0;
        if (n == 0 || n > BYTERANGES_MAX || (int64_t)n > max)
            abort();
        for (unsigned i = 0; i < n; i++) {
            if (rg[i].from > rg[i].to || rg[i].to >= len)
                abort();
            total += rg[i].to - rg[i].from + 1;
        }
        if (total > len)
            abort();
    }
    free(v);
    return 0;
}

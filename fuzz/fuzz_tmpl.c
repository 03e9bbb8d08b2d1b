/*
 * fuzz_tmpl.c - libFuzzer target for the variable template compiler
 * (conf/vars.c: tmpl_compile, var_lookup and the registry).
 *
 * Build: see the Makefile (`make fuzz-smoke`, `make fuzz`):
 *   clang-14 -g -O1 -fsanitize=fuzzer,address,undefined -Isrc -D_GNU_SOURCE \
 *       fuzz/fuzz_tmpl.c src/conf/vars.c src/core/arena.c src/core/str.c
 *
 * Each input is compiled twice against one registry (once with forward
 * references allowed, as while loading, once without) after a few `set`
 * variables were defined. On success the template must describe its input
 * exactly: every literal lies inside the stored copy, in order, and the
 * literals plus the variable references ("$" + name, or "${" + name + "}")
 * cover every byte; a constant template has no '$' at all.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/vars.h"
#include "core/arena.h"

static void check(const struct tmpl *t)
{
    const char *base = t->raw.p;
    size_t len = t->raw.len;
    if (t->constant) {
        assert(!t->segs && !memchr(base, '$', len));
        return;
    }
    assert(t->segs && t->nsegs > 0);
    const char *at = base;
    for (unsigned i = 0; i < t->nsegs; i++) {
        const struct tmpl_seg *s = &t->segs[i];
        assert(s->lit.p >= at && s->lit.p + s->lit.len <= base + len);
        assert(s->lit.p == at); /* no byte skipped before a literal */
        at = s->lit.p + s->lit.len;
        if (!s->var) {
            assert(i == t->nsegs - 1); /* only the trailing literal has no variable */
            break;
        }
        assert(at < base + len && *at == '$');
        at++;
        assert(at < base + len);
        if (*at >= '1' && *at <= '9') {
            at++; /* $1..$9: exactly one digit */
        } else {
            int bracket = *at == '{';
            at += bracket;
            const char *name = at;
            while (at < base + len && ((*at >= 'a' && *at <= 'z') || (*at >= 'A' && *at <= 'Z') ||
                                       (*at >= '0' && *at <= '9') || *at == '_'))
                at++;
            assert(at > name); /* a name was required */
            if (bracket) {
                assert(at < base + len && *at == '}');
                at++;
            }
        }
    }
    assert(at == base + len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct arena a;
    arena_init(&a, 0);
    struct var_registry reg;
    memset(&reg, 0, sizeof(reg));
    static const char *const sets[] = {"foo", "with_underscore", "x1"};
    for (unsigned i = 0; i < sizeof(sets) / sizeof(sets[0]); i++)
        var_define_set(&reg, &a, str_from_cstr(sets[i]));
    struct str text = {(const char *)data, size};
    for (int forward = 0; forward < 2; forward++) {
        reg.allow_forward = forward;
        struct tmpl t;
        const char *err = NULL;
        if (tmpl_compile(&t, &reg, &a, text, &err) == 0) {
            assert(t.raw.len == size && memcmp(t.raw.p, data, size) == 0);
            check(&t);
        } else {
            assert(err && *err);
        }
    }
    (void)var_first_unresolved(&reg);
    arena_destroy(&a);
    return 0;
}

/*
 * test_vars.c - conf/vars.c: builtin names, the registry (lookup, prefix
 * forms, captures, set/map/named-capture definitions, forward references)
 * and tmpl_compile (literals, $name, ${name}, $1..$9, errors); and the pure
 * helpers of http/vars_eval.c: the $upstream_* lists (upstream_list) and
 * the $remote_user decoder (basic_auth_user).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conf/vars.h"
#include "core/arena.h"
#include "http/vars_eval.h"

struct fx {
    struct arena a;
    struct var_registry reg;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    arena_init(&f->a, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    arena_destroy(&f->a);
    free(f);
    return 0;
}

static const struct var_ref *lookup(struct fx *f, const char *name, const char **err)
{
    *err = NULL;
    return var_lookup(&f->reg, &f->a, str_from_cstr(name), err);
}

static void assert_str(struct str s, const char *want)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%.*s", (int)s.len, s.p ? s.p : "");
    assert_string_equal(buf, want);
}

/* --------------------------------------------------------------- builtins */

static void test_builtin_names(void **state)
{
    struct fx *f = *state;
    assert_string_equal(var_builtin_name(VB_HOST), "host");
    assert_string_equal(var_builtin_name(VB_PROXY_ADD_X_FORWARDED_FOR),
                        "proxy_add_x_forwarded_for");
    assert_string_equal(var_builtin_name(VB_TUNNEL_DURATION), "tunnel_duration");
    assert_string_equal(var_builtin_name(VB_HTTP_USER_AGENT), "http_user_agent");
    assert_string_equal(var_builtin_name(VB_SSL_SERVER_NAME), "ssl_server_name");
    assert_null(var_builtin_name(VB_SENT_HTTP_CONTENT_TYPE_UNUSED));
    assert_null(var_builtin_name(VB__COUNT));

    /* every named builtin resolves to itself, with the same id */
    for (unsigned i = 0; i < VB__COUNT; i++) {
        const char *n = var_builtin_name((enum var_builtin)i);
        if (!n)
            continue;
        const char *err;
        const struct var_ref *v = lookup(f, n, &err);
        assert_non_null(v);
        assert_int_equal(v->kind, VAR_BUILTIN);
        assert_int_equal(v->id, i);
    }
    /* the unused slot is not a name */
    const char *err;
    const struct var_ref *v = lookup(f, "sent_http_content_type_unused", &err);
    assert_int_equal(v->kind, VAR_SENT_HTTP); /* just a $sent_http_ header name */
}

/* --------------------------------------------------------------- lookup */

static void test_lookup_kinds(void **state)
{
    struct fx *f = *state;
    static const struct {
        const char *name;
        enum var_kind kind;
        const char *suffix;
        unsigned id;
    } cases[] = {
        {"http_x_forwarded_for", VAR_HTTP, "x_forwarded_for", 0},
        {"HTTP_Upgrade", VAR_HTTP, "upgrade", 0},
        {"arg_Page", VAR_ARG, "Page", 0},
        {"cookie_sid", VAR_COOKIE, "sid", 0},
        {"sent_http_content_type", VAR_SENT_HTTP, "content_type", 0},
        {"upstream_http_location", VAR_UPSTREAM_HTTP, "location", 0},
        {"upstream_cookie_x", VAR_UPSTREAM_COOKIE, "x", 0},
        {"upstream_trailer_grpc_status", VAR_UPSTREAM_TRAILER, "grpc_status", 0},
        {"sent_trailer_x", VAR_SENT_TRAILER, "x", 0},
        {"upstream_bytes_received", VAR_BUILTIN, "upstream_bytes_received",
         VB_UPSTREAM_BYTES_RECEIVED},
        {"upstream_cache_status", VAR_BUILTIN, "upstream_cache_status", VB_UPSTREAM_CACHE_STATUS},
        {"ssl_client_verify", VAR_BUILTIN, "ssl_client_verify", VB_SSL_CLIENT_VERIFY},
        {"binary_remote_addr", VAR_BUILTIN, "binary_remote_addr", VB_BINARY_REMOTE_ADDR},
        {"1", VAR_CAPTURE, "1", 1},
        {"9", VAR_CAPTURE, "9", 9},
        {"Host", VAR_BUILTIN, "host", VB_HOST},
        {"http_referer", VAR_BUILTIN, "http_referer", VB_HTTP_REFERER},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *err;
        const struct var_ref *v = lookup(f, cases[i].name, &err);
        assert_non_null(v);
        assert_int_equal(v->kind, cases[i].kind);
        assert_str(v->name, cases[i].suffix);
        assert_int_equal(v->id, cases[i].id);
    }
    /* one ref per name, case-insensitively */
    const char *err;
    assert_ptr_equal(lookup(f, "HOST", &err), lookup(f, "host", &err));
    assert_ptr_equal(lookup(f, "http_upgrade", &err), lookup(f, "Http_UPGRADE", &err));
    /* arg_ suffixes are case-sensitive */
    assert_ptr_not_equal(lookup(f, "arg_a", &err), lookup(f, "arg_A", &err));
}

static void test_lookup_unknown(void **state)
{
    struct fx *f = *state;
    const char *err;
    assert_null(lookup(f, "foo", &err));
    assert_string_equal(err, "unknown \"foo\" variable");
    /* near misses and nginx variables Switchyard does not have */
    static const char *const unknown[] = {"upstream_byte_sent", "ssl_client_foo",
                                          "proxy_protocol_tlv_aws_vpce_id", "gzip_ratios",
                                          "ssl_sigalg", "upstream_trailer"};
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
        assert_null(lookup(f, unknown[i], &err));
    assert_null(lookup(f, "0", &err));
    assert_string_equal(err, "unknown \"0\" variable");
    assert_null(var_first_unresolved(&f->reg));
}

static void test_forward_references(void **state)
{
    struct fx *f = *state;
    const char *err;
    f->reg.allow_forward = 1;
    f->reg.cur_file = "/x.conf";
    f->reg.cur_line = 7;
    const struct var_ref *a = lookup(f, "later_set", &err);
    const struct var_ref *b = lookup(f, "later_map", &err);
    const struct var_ref *c = lookup(f, "cap", &err);
    const struct var_ref *d = lookup(f, "never", &err);
    assert_non_null(a);
    assert_true(a->unresolved);
    assert_string_equal(a->file, "/x.conf");
    assert_int_equal(a->line, 7);
    assert_ptr_equal(var_first_unresolved(&f->reg), a);

    const struct var_ref *s = var_define_set(&f->reg, &f->a, STR_LIT("later_set"));
    assert_ptr_equal(s, a);
    assert_int_equal(a->kind, VAR_SET);
    assert_false(a->unresolved);
    assert_int_equal(a->id, 0);

    static const int map_marker = 0;
    const struct var_ref *m =
        var_define_map(&f->reg, &f->a, STR_LIT("later_map"), (const void *)&map_marker, &err);
    assert_ptr_equal(m, b);
    assert_int_equal(b->kind, VAR_MAP);
    assert_ptr_equal(b->map, (const void *)&map_marker);

    const struct var_ref *n = var_define_named_capture(&f->reg, &f->a, STR_LIT("cap"), &err);
    assert_ptr_equal(n, c);
    assert_int_equal(c->kind, VAR_NAMED_CAPTURE);

    assert_ptr_equal(var_first_unresolved(&f->reg), d);
    assert_str(d->full, "never");
}

static void test_definitions(void **state)
{
    struct fx *f = *state;
    const char *err;
    /* set slots are numbered; re-defining finds the same slot */
    const struct var_ref *a = var_define_set(&f->reg, &f->a, STR_LIT("a"));
    const struct var_ref *b = var_define_set(&f->reg, &f->a, STR_LIT("b"));
    assert_int_equal(a->id, 0);
    assert_int_equal(b->id, 1);
    assert_ptr_equal(var_define_set(&f->reg, &f->a, STR_LIT("A")), a);
    assert_int_equal(f->reg.nset_slots, 2);
    /* builtins are not assignable; prefix forms become set variables (nginx) */
    assert_null(var_define_set(&f->reg, &f->a, STR_LIT("host")));
    /* $limit_rate is changeable (nginx), as $args */
    const struct var_ref *lr = var_define_set(&f->reg, &f->a, STR_LIT("limit_rate"));
    assert_non_null(lr);
    assert_int_equal(lr->id, VAR_SET_BUILTIN | VB_LIMIT_RATE);
    assert_int_equal(f->reg.limit_rate_assigned, 1);
    /* $args is changeable: a setter ref apart, reading $args stays the builtin */
    const struct var_ref *sa = var_define_set(&f->reg, &f->a, STR_LIT("Args"));
    assert_non_null(sa);
    assert_int_equal(sa->id, VAR_SET_BUILTIN | VB_ARGS);
    const char *aerr;
    const struct var_ref *ra = lookup(f, "args", &aerr);
    assert_int_equal(ra->kind, VAR_BUILTIN);
    assert_ptr_not_equal(ra, sa);
    assert_null(var_define_set(&f->reg, &f->a, STR_LIT("1")));
    const struct var_ref *h = lookup(f, "http_x", &err);
    assert_int_equal(h->kind, VAR_HTTP);
    assert_ptr_equal(var_define_set(&f->reg, &f->a, STR_LIT("http_x")), h);
    assert_int_equal(h->kind, VAR_SET);

    /* maps */
    static const int mk = 0;
    static const int mk2 = 0;
    const struct var_ref *m1 =
        var_define_map(&f->reg, &f->a, STR_LIT("m"), (const void *)&mk, &err);
    assert_non_null(m1);
    /* nginx: a later map of the same variable wins (one ref, new map) */
    assert_ptr_equal(var_define_map(&f->reg, &f->a, STR_LIT("m"), (const void *)&mk2, &err), m1);
    assert_ptr_equal(m1->map, (const void *)&mk2);
    assert_null(var_define_map(&f->reg, &f->a, STR_LIT("uri"), (const void *)&mk, &err));
    assert_string_equal(err, "the duplicate \"uri\" variable");
    assert_null(var_define_set(&f->reg, &f->a, STR_LIT("m")));

    /* named captures keep their spelling; the same name twice is one ref */
    const struct var_ref *c1 = var_define_named_capture(&f->reg, &f->a, STR_LIT("Year"), &err);
    assert_non_null(c1);
    assert_str(c1->name, "Year");
    assert_ptr_equal(var_define_named_capture(&f->reg, &f->a, STR_LIT("Year"), &err), c1);
    assert_null(var_define_named_capture(&f->reg, &f->a, STR_LIT("remote_addr"), &err));
    assert_string_equal(err, "the duplicate \"remote_addr\" variable");
}

/* --------------------------------------------------------------- templates */

/* Render a template as "lit|$var|lit..." for comparison. */
static void render(const struct tmpl *t, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    if (t->constant) {
        snprintf(out, cap, "=%.*s", (int)t->raw.len, t->raw.p);
        return;
    }
    for (unsigned i = 0; i < t->nsegs; i++) {
        const struct tmpl_seg *s = &t->segs[i];
        o += (size_t)snprintf(out + o, cap - o, "%.*s", (int)s->lit.len, s->lit.p);
        if (s->var)
            o +=
                (size_t)snprintf(out + o, cap - o, "{%.*s}", (int)s->var->full.len, s->var->full.p);
    }
}

static void test_tmpl_compile(void **state)
{
    struct fx *f = *state;
    static const struct {
        const char *in;
        const char *want; /* "=..." constant, else lit{var}lit */
        unsigned nsegs;
    } cases[] = {
        {"", "=", 0},
        {"plain text", "=plain text", 0},
        {"$host", "{host}", 1},
        {"${host}", "{host}", 1},
        {"a$host", "a{host}", 1},
        {"$host:$server_port", "{host}:{server_port}", 2},
        {"${host}suffix", "{host}suffix", 2},
        {"$hostsuffix$uri", "{hostsuffix}{uri}", 2},
        {"/img/$1/$2.png", "/img/{1}/{2}.png", 3},
        {"$10", "{1}0", 2},
        {"http://$http_host$request_uri", "http://{http_host}{request_uri}", 2},
        {"$arg_Q-$cookie_a", "{arg_Q}-{cookie_a}", 2},
        {"${HOST}", "{host}", 1},
    };
    f->reg.allow_forward = 1; /* "$hostsuffix" is a forward reference */
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tmpl t;
        const char *err = NULL;
        assert_int_equal(tmpl_compile(&t, &f->reg, &f->a, str_from_cstr(cases[i].in), &err), 0);
        char buf[256];
        render(&t, buf, sizeof(buf));
        assert_string_equal(buf, cases[i].want);
        assert_int_equal(t.nsegs, cases[i].nsegs);
        assert_str(t.raw, cases[i].in);
        if (t.constant)
            assert_null(t.segs);
    }
}

static void test_tmpl_errors(void **state)
{
    struct fx *f = *state;
    static const struct {
        const char *in;
        const char *err;
    } cases[] = {
        {"$", "invalid variable name"},
        {"a$", "invalid variable name"},
        {"a$-b", "invalid variable name"},
        {"$ x", "invalid variable name"},
        {"${}", "invalid variable name"},
        {"$$", "invalid variable name"},
        {"${x", "the closing bracket in \"x\" variable is missing"},
        {"${ab-c}", "the closing bracket in \"ab\" variable is missing"},
        {"$nosuch", "unknown \"nosuch\" variable"},
        {"x$0", "unknown \"0\" variable"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tmpl t;
        const char *err = NULL;
        assert_int_equal(tmpl_compile(&t, &f->reg, &f->a, str_from_cstr(cases[i].in), &err), -1);
        assert_non_null(err);
        assert_string_equal(err, cases[i].err);
    }
}

static void test_tmpl_shares_refs(void **state)
{
    struct fx *f = *state;
    struct tmpl a, b;
    const char *err;
    assert_int_equal(tmpl_compile(&a, &f->reg, &f->a, STR_LIT("$host/$uri"), &err), 0);
    assert_int_equal(tmpl_compile(&b, &f->reg, &f->a, STR_LIT("${uri}"), &err), 0);
    assert_ptr_equal(a.segs[1].var, b.segs[0].var);
    assert_int_equal(f->reg.nrefs, 2);
}

/* --------------------------------------------------------------- $upstream_* lists */

static struct upstream_try try_of(const char *peer, int status, int64_t ct, int64_t ht, int64_t rt,
                                  uint64_t sent, uint64_t recv, uint64_t head)
{
    struct upstream_try t = {peer, status, 1000, ct, ht, rt, sent, recv, head, 0};
    return t;
}

static void assert_list(struct fx *f, const struct upstream_try *t, unsigned n,
                        enum upstream_field field, int64_t open_ms, const char *want)
{
    struct str out;
    assert_int_equal(upstream_list(&f->a, t, n, field, open_ms, &out), 0);
    assert_str(out, want);
}

static void test_upstream_lists(void **state)
{
    struct fx *f = *state;
    struct str out;
    assert_int_equal(upstream_list(&f->a, NULL, 0, UF_ADDR, -1, &out), -1); /* not found */

    /* a refused try, then one that answered; a second pass after " : " */
    struct upstream_try t[4];
    t[0] = try_of("127.0.0.1:1", 502, -1, -1, 0, 0, 0, 0);
    t[1] = try_of("127.0.0.1:2", 200, 1, 12, 1234, 80, 150, 100);
    t[2] = try_of(NULL, 0, -1, -1, 0, 0, 0, 0);
    t[3] = try_of("backend", 0, -1, -1, -1, 0, 0, 0);
    assert_list(f, t, 4, UF_ADDR, -1, "127.0.0.1:1, 127.0.0.1:2 : backend");
    assert_list(f, t, 4, UF_STATUS, -1, "502, 200 : -");
    assert_list(f, t, 4, UF_CONNECT_TIME, -1, "-, 0.001 : -");
    assert_list(f, t, 4, UF_HEADER_TIME, -1, "-, 0.012 : -");
    assert_list(f, t, 4, UF_RESPONSE_TIME, -1, "0.000, 1.234 : -");
    /* the last try still running: the time so far */
    assert_list(f, t, 4, UF_RESPONSE_TIME, 3500, "0.000, 1.234 : 2.500");
    assert_list(f, t, 4, UF_BYTES_SENT, -1, "0, 80 : 0");
    assert_list(f, t, 4, UF_BYTES_RECEIVED, -1, "0, 150 : 0");
    /* the body: what came after the head, once a head was read */
    assert_list(f, t, 4, UF_RESPONSE_LENGTH, -1, "0, 50 : 0");
    assert_list(f, t, 2, UF_ADDR, -1, "127.0.0.1:1, 127.0.0.1:2");
    /* a separator last (a pass that made no try) prints nothing after " : " */
    assert_list(f, t, 3, UF_STATUS, -1, "502, 200 : ");
}

static void test_basic_auth_user(void **state)
{
    struct fx *f = *state;
    static const struct {
        const char *header, *user; /* NULL: not found */
    } cases[] = {
        {"Basic dXNlcjpwYXNz", "user"},     {"BASIC dXNlcjpwYXNz", "user"},
        {"Basic   dXNlcjpwYXNz", "user"},   {"Basic dTpw", "u"},
        {"Basic dTp3eA", "u"},              {"Basic dTp3eA==", "u"},
        {"Basic dXNlcjo=", "user"},         {"Basic OnBhc3M=", NULL},
        {"Basic dXNlcg==", NULL},           {"Basic !!!!", NULL},
        {"Basic d", NULL},                  {"Basic ", NULL},
        {"Bearer dXNlcjpwYXNz", NULL},      {"Basic", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct str user;
        int rc = basic_auth_user(&f->a, str_from_cstr(cases[i].header), &user);
        if (!cases[i].user) {
            assert_int_equal(rc, -1);
            continue;
        }
        assert_int_equal(rc, 0);
        assert_str(user, cases[i].user);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_builtin_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lookup_kinds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lookup_unknown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forward_references, setup, teardown),
        cmocka_unit_test_setup_teardown(test_definitions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tmpl_compile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tmpl_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tmpl_shares_refs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upstream_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_basic_auth_user, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

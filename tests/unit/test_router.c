/*
 * test_router.c - http/router.c against nginx's rules: location precedence
 * (including the nginx documentation example and nested locations),
 * server_name precedence, URI normalisation vectors and map lookups.
 *
 * The configuration structs are built by hand here (no config loader), with
 * regexes compiled directly through PCRE2, the way the loader will.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pcre2.h>

#include "http/router.h"

/* ------------------------------------------------------------- helpers */

/* Every compiled regex, freed by the group teardown. */
static pcre2_code *compiled[256];
static unsigned ncompiled;

static void *re_compile(const char *pattern, int caseless)
{
    int err;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                                   caseless ? PCRE2_CASELESS : 0, &err, &off, NULL);
    assert_non_null(re);
    assert_true(ncompiled < sizeof(compiled) / sizeof(compiled[0]));
    compiled[ncompiled++] = re;
    return re;
}

static int teardown_all(void **state)
{
    (void)state;
    for (unsigned i = 0; i < ncompiled; i++)
        pcre2_code_free(compiled[i]);
    ncompiled = 0;
    router_thread_cleanup();
    return 0;
}

static struct location loc(enum loc_match m, const char *pattern)
{
    struct location l;
    memset(&l, 0, sizeof(l));
    l.match = m;
    l.pattern = str_from_cstr(pattern);
    if (m == LOC_REGEX || m == LOC_REGEX_ICASE)
        l.re = re_compile(pattern, m == LOC_REGEX_ICASE);
    return l;
}

static void nest(struct location *parent, struct location *children, unsigned n)
{
    parent->children = children;
    parent->nchildren = n;
}

static struct server_conf server(struct location *locs, unsigned nlocs)
{
    struct server_conf s;
    memset(&s, 0, sizeof(s));
    s.locations = locs;
    s.nlocations = nlocs;
    return s;
}

#define NELEM(a) ((unsigned)(sizeof(a) / sizeof((a)[0])))

/* Sentinel so tests can see whether router touched the captures. */
static void caps_reset(struct regex_caps *c)
{
    memset(c, 0, sizeof(*c));
    c->n = -7;
}

static const struct location *find(const struct server_conf *s, const char *uri,
                                   struct regex_caps *caps)
{
    return router_find_location(s, str_from_cstr(uri), caps);
}

/* Text of capture group `i`, or "<unset>". */
static const char *cap_text(const struct regex_caps *c, int i)
{
    static char buf[256];
    if (i >= c->n || c->ov[2 * i] == PCRE2_UNSET)
        return "<unset>";
    size_t len = c->ov[2 * i + 1] - c->ov[2 * i];
    assert_true(len < sizeof(buf));
    memcpy(buf, c->subject + c->ov[2 * i], len);
    buf[len] = '\0';
    return buf;
}

/* ------------------------------------------------------------ locations */

/*
 * nginx documentation, "location" directive:
 *   location = / { A }  location / { B }  location /documents/ { C }
 *   location ^~ /images/ { D }  location ~* \.(gif|jpg|jpeg)$ { E }
 */
static void test_location_doc_example(void **state)
{
    (void)state;
    struct location l[] = {
        loc(LOC_EXACT, "/"),
        loc(LOC_PREFIX, "/"),
        loc(LOC_PREFIX, "/documents/"),
        loc(LOC_PREFIX_NOREGEX, "/images/"),
        loc(LOC_REGEX_ICASE, "\\.(gif|jpg|jpeg)$"),
    };
    struct server_conf s = server(l, NELEM(l));
    struct regex_caps caps;

    caps_reset(&caps);
    assert_ptr_equal(find(&s, "/", &caps), &l[0]);
    assert_ptr_equal(find(&s, "/index.html", &caps), &l[1]);
    assert_ptr_equal(find(&s, "/documents/document.html", &caps), &l[2]);
    assert_ptr_equal(find(&s, "/images/1.gif", &caps), &l[3]);
    assert_int_equal(caps.n, -7); /* no regex matched: captures untouched */

    const char *uri = "/documents/1.jpg";
    assert_ptr_equal(find(&s, uri, &caps), &l[4]);
    assert_int_equal(caps.n, 2);
    assert_ptr_equal(caps.subject, uri);
    assert_ptr_equal(caps.re, l[4].re);
    assert_string_equal(cap_text(&caps, 0), ".jpg");
    assert_string_equal(cap_text(&caps, 1), "jpg");

    /* more groups than ROUTER_MAX_CAPS: the first ten pairs are kept */
    struct location many[] = {loc(LOC_REGEX, "^/(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)$")};
    struct server_conf s_many = server(many, 1);
    caps_reset(&caps);
    assert_ptr_equal(find(&s_many, "/abcdefghijk", &caps), &many[0]);
    assert_int_equal(caps.n, ROUTER_MAX_CAPS);
    assert_string_equal(cap_text(&caps, 9), "i");
    /* an unset group inside the set range */
    struct location opt[] = {loc(LOC_REGEX, "^/(x)?(y)$")};
    struct server_conf s_opt = server(opt, 1);
    caps_reset(&caps);
    assert_ptr_equal(find(&s_opt, "/y", &caps), &opt[0]);
    assert_int_equal(caps.n, 3);
    assert_string_equal(cap_text(&caps, 1), "<unset>");
    assert_string_equal(cap_text(&caps, 2), "y");

    /* ~* is case-insensitive; prefixes are not */
    assert_ptr_equal(find(&s, "/DOCUMENTS/1.JPG", NULL), &l[4]);
    assert_ptr_equal(find(&s, "/Images/2.txt", NULL), &l[1]);
    assert_ptr_equal(find(&s, "/Images/2.gif", NULL), &l[4]);
    /* the "=" location only matches the whole URI */
    assert_ptr_equal(find(&s, "/x", NULL), &l[1]);
}

static void test_location_exact_and_prefix(void **state)
{
    (void)state;
    struct location l[] = {
        loc(LOC_PREFIX, "/a"),      loc(LOC_EXACT, "/a/b"),
        loc(LOC_PREFIX, "/a/b"), /* same text as the "=": exact wins for "/a/b" */
        loc(LOC_PREFIX, "/a/b/c/"), loc(LOC_EXACT, "/only"),
    };
    struct server_conf s = server(l, NELEM(l));

    assert_ptr_equal(find(&s, "/a/b", NULL), &l[1]);
    assert_ptr_equal(find(&s, "/a/bc", NULL), &l[2]);
    assert_ptr_equal(find(&s, "/a/b/c/d", NULL), &l[3]);
    assert_ptr_equal(find(&s, "/a/b/c", NULL), &l[2]);
    assert_ptr_equal(find(&s, "/ab", NULL), &l[0]);
    assert_ptr_equal(find(&s, "/only", NULL), &l[4]);
    /* no "location /": nothing matches, the caller answers 404 */
    assert_null(find(&s, "/only/more", NULL));
    assert_null(find(&s, "/", NULL));
    assert_null(find(&s, "/A/b", NULL));
}

/* Longest prefix wins whatever the config order. */
static void test_location_longest_prefix_any_order(void **state)
{
    (void)state;
    struct location l[] = {
        loc(LOC_PREFIX, "/"),
        loc(LOC_PREFIX, "/x/y/"),
        loc(LOC_PREFIX, "/x/"),
    };
    struct server_conf s = server(l, NELEM(l));
    assert_ptr_equal(find(&s, "/x/y/z", NULL), &l[1]);
    assert_ptr_equal(find(&s, "/x/z", NULL), &l[2]);
    assert_ptr_equal(find(&s, "/q", NULL), &l[0]);
}

static void test_location_regex_order(void **state)
{
    (void)state;
    struct location l[] = {
        loc(LOC_PREFIX, "/"),
        loc(LOC_PREFIX, "/api/v1/long/prefix/"),
        loc(LOC_REGEX, "^/api/(v[0-9]+)"),
        loc(LOC_REGEX, "/v1/"),
        loc(LOC_PREFIX_NOREGEX, "/api/v1/static/"),
    };
    struct server_conf s = server(l, NELEM(l));
    struct regex_caps caps;

    /* first regex in config order wins, even over a longer prefix */
    caps_reset(&caps);
    assert_ptr_equal(find(&s, "/api/v1/long/prefix/x", &caps), &l[2]);
    assert_string_equal(cap_text(&caps, 1), "v1");
    assert_ptr_equal(find(&s, "/x/v1/y", NULL), &l[3]);
    /* ^~ as the longest prefix stops the regex search */
    assert_ptr_equal(find(&s, "/api/v1/static/a", NULL), &l[4]);
    /* regex ~ is case-sensitive */
    assert_ptr_equal(find(&s, "/API/V1/", NULL), &l[0]);
    /* but a ^~ that is not the longest prefix does not stop anything */
    struct location l2[] = {
        loc(LOC_PREFIX_NOREGEX, "/s/"),
        loc(LOC_PREFIX, "/s/deeper/"),
        loc(LOC_REGEX, "\\.js$"),
    };
    struct server_conf s2 = server(l2, NELEM(l2));
    assert_ptr_equal(find(&s2, "/s/deeper/a.js", NULL), &l2[2]);
    assert_ptr_equal(find(&s2, "/s/a.js", NULL), &l2[0]);
}

static void test_location_nested(void **state)
{
    (void)state;
    /*
     * location ~ \.php$ { TOP_PHP }          (before /a/ in the file)
     * location /a/ {
     *     location ~ \.php$ { A_PHP }
     *     location /a/b/ { A_B }
     *     location = /a/x { A_X }
     * }
     * location ~ \.css$ { TOP_CSS }
     * location /n/ { location ^~ /n/static/ { N_STATIC } }
     * location ^~ /s/ { location ~ \.js$ { S_JS } }
     * location ~ \.js$ { TOP_JS }
     * location ~ ^/r/ { location ~ \.png$ { R_PNG } }
     */
    struct location a_kids[] = {
        loc(LOC_REGEX, "\\.php$"),
        loc(LOC_PREFIX, "/a/b/"),
        loc(LOC_EXACT, "/a/x"),
    };
    struct location n_kids[] = {loc(LOC_PREFIX_NOREGEX, "/n/static/")};
    struct location s_kids[] = {loc(LOC_REGEX, "\\.js$")};
    struct location r_kids[] = {loc(LOC_REGEX, "\\.png$")};
    struct location l[] = {
        loc(LOC_REGEX, "\\.php$"), loc(LOC_PREFIX, "/a/"),         loc(LOC_REGEX, "\\.css$"),
        loc(LOC_PREFIX, "/n/"),    loc(LOC_PREFIX_NOREGEX, "/s/"), loc(LOC_REGEX, "\\.js$"),
        loc(LOC_REGEX, "^/r/"),    loc(LOC_PREFIX, "/"),
    };
    nest(&l[1], a_kids, NELEM(a_kids));
    nest(&l[3], n_kids, NELEM(n_kids));
    nest(&l[4], s_kids, NELEM(s_kids));
    nest(&l[6], r_kids, NELEM(r_kids));
    struct server_conf s = server(l, NELEM(l));

    /* nested regexes of the matched prefix come before top-level ones */
    assert_ptr_equal(find(&s, "/a/f.php", NULL), &a_kids[0]);
    assert_ptr_equal(find(&s, "/b/f.php", NULL), &l[0]);
    assert_ptr_equal(find(&s, "/a/b/c", NULL), &a_kids[1]);
    assert_ptr_equal(find(&s, "/a/b/c.php", NULL), &a_kids[0]);
    assert_ptr_equal(find(&s, "/a/x", NULL), &a_kids[2]);
    assert_ptr_equal(find(&s, "/a/q", NULL), &l[1]);
    /* a nested prefix without regex match falls back to top-level regexes */
    assert_ptr_equal(find(&s, "/a/b/c.css", NULL), &l[2]);
    /*
     * nginx: a nested ^~ only stops the regexes of its own level; the
     * enclosing level (whose best prefix /n/ is not ^~) still tries its own.
     */
    assert_ptr_equal(find(&s, "/n/static/x.css", NULL), &l[2]);
    assert_ptr_equal(find(&s, "/n/static/x.txt", NULL), &n_kids[0]);
    /* a top-level ^~ hides top-level regexes but not its nested ones */
    assert_ptr_equal(find(&s, "/s/a.js", NULL), &s_kids[0]);
    assert_ptr_equal(find(&s, "/s/a.css", NULL), &l[4]);
    assert_ptr_equal(find(&s, "/t/a.js", NULL), &l[5]);
    /* a matched regex location searches its own nested locations */
    assert_ptr_equal(find(&s, "/r/a.png", NULL), &r_kids[0]);
    assert_ptr_equal(find(&s, "/r/a.txt", NULL), &l[6]);
}

static void test_location_named(void **state)
{
    (void)state;
    struct location named[] = {loc(LOC_NAMED, "fallback"), loc(LOC_NAMED, "other")};
    /* a stray named location among the others must never match a URI */
    struct location l[] = {loc(LOC_NAMED, "/"), loc(LOC_PREFIX, "/x/")};
    struct server_conf s = server(l, NELEM(l));
    s.named = named;
    s.nnamed = NELEM(named);

    assert_null(find(&s, "/", NULL));
    assert_null(find(&s, "/fallback", NULL));
    assert_ptr_equal(find(&s, "/x/1", NULL), &l[1]);
    assert_ptr_equal(router_find_named(&s, STR_LIT("fallback")), &named[0]);
    assert_ptr_equal(router_find_named(&s, STR_LIT("other")), &named[1]);
    assert_ptr_equal(router_find_named(&s, STR_LIT("@other")), &named[1]);
    assert_null(router_find_named(&s, STR_LIT("Fallback")));
    assert_null(router_find_named(&s, STR_LIT("fall")));
    assert_null(router_find_named(&s, STR_LIT("")));
    assert_null(router_find_location(NULL, STR_LIT("/"), NULL));
}

/* -------------------------------------------------------------- servers */

static struct server_name sn_exact(const char *name)
{
    return (struct server_name){SN_EXACT, str_from_cstr(name), NULL, 0};
}

/* "*.example.com" -> sn_head("example.com", 0); ".example.com" -> dot = 1 */
static struct server_name sn_head(const char *stored, int dot)
{
    return (struct server_name){SN_WILD_HEAD, str_from_cstr(stored), NULL, dot};
}

/* "www.example.*" -> sn_tail("www.example.") */
static struct server_name sn_tail(const char *stored)
{
    return (struct server_name){SN_WILD_TAIL, str_from_cstr(stored), NULL, 0};
}

static struct server_name sn_re(const char *re)
{
    return (struct server_name){SN_REGEX, str_from_cstr(re), re_compile(re, 0), 0};
}

static struct server_conf named_server(struct server_name *names, unsigned n)
{
    struct server_conf s;
    memset(&s, 0, sizeof(s));
    s.names = names;
    s.nnames = n;
    return s;
}

static const struct server_conf *host(const struct listen_conf *l, const char *h)
{
    return router_find_server(l, str_from_cstr(h), NULL);
}

static void test_server_precedence(void **state)
{
    (void)state;
    struct server_name n_first[] = {sn_exact("first.test")};
    struct server_name n_exact[] = {sn_exact("example.com"), sn_exact("www.example.org")};
    struct server_name n_def[] = {sn_exact("default.test")};
    struct server_name n_head[] = {sn_head("example.com", 0)};
    struct server_name n_head_long[] = {sn_head("sub.example.com", 0)};
    struct server_name n_dot[] = {sn_head("example.org", 1)};
    struct server_name n_tail[] = {sn_tail("www.example.")};
    struct server_name n_tail_short[] = {sn_tail("www.")};
    struct server_name n_re1[] = {sn_re("^(?<user>[a-z]+)\\.users\\.net$")};
    struct server_name n_re2[] = {sn_re("\\.net$")};
    struct server_name n_v6[] = {sn_exact("[::1]")};

    struct server_conf first = named_server(n_first, 1), exact = named_server(n_exact, 2),
                       def = named_server(n_def, 1), head = named_server(n_head, 1),
                       head_long = named_server(n_head_long, 1), dot = named_server(n_dot, 1),
                       tail = named_server(n_tail, 1), tail_short = named_server(n_tail_short, 1),
                       re1 = named_server(n_re1, 1), re2 = named_server(n_re2, 1),
                       v6 = named_server(n_v6, 1);
    const struct server_conf *servers[] = {&first, &exact,      &def, &head, &head_long, &dot,
                                           &tail,  &tail_short, &re1, &re2,  &v6};
    struct listen_conf l;
    memset(&l, 0, sizeof(l));
    l.servers = servers;
    l.nservers = NELEM(servers);
    l.default_server_set = 1;
    l.default_server = &def;

    /* exact; case, port and trailing dot ignored */
    assert_ptr_equal(host(&l, "example.com"), &exact);
    assert_ptr_equal(host(&l, "EXAMPLE.Com"), &exact);
    assert_ptr_equal(host(&l, "example.com."), &exact);
    assert_ptr_equal(host(&l, "example.com:8080"), &exact);
    assert_ptr_equal(host(&l, "example.com.:80"), &exact);
    assert_ptr_equal(host(&l, "first.test"), &first);

    /* leading wildcards: longest wins, at least one label needed */
    assert_ptr_equal(host(&l, "a.example.com"), &head);
    assert_ptr_equal(host(&l, "A.B.Example.COM:443"), &head);
    assert_ptr_equal(host(&l, "x.sub.example.com"), &head_long);
    assert_ptr_equal(host(&l, "sub.example.com"), &head);
    assert_ptr_equal(host(&l, "xexample.com"), &def);
    /* ".example.org" matches the bare name too; exact still beats it */
    assert_ptr_equal(host(&l, "example.org"), &dot);
    assert_ptr_equal(host(&l, "a.example.org"), &dot);
    assert_ptr_equal(host(&l, "www.example.org"), &exact);

    /* leading wildcard before trailing, trailing before regex */
    assert_ptr_equal(host(&l, "www.example.com"), &head);
    assert_ptr_equal(host(&l, "www.example.net"), &tail);
    assert_ptr_equal(host(&l, "www.example.co.uk"), &tail);
    assert_ptr_equal(host(&l, "WWW.foo"), &tail_short);
    assert_ptr_equal(host(&l, "www.example"), &tail_short);
    assert_ptr_equal(host(&l, "www"), &def);

    /* regexes in config order, with captures */
    struct regex_caps caps;
    caps_reset(&caps);
    const char *h = "bob.users.net:8080";
    assert_ptr_equal(router_find_server(&l, str_from_cstr(h), &caps), &re1);
    assert_int_equal(caps.n, 2);
    assert_ptr_equal(caps.subject, h);
    assert_ptr_equal(caps.re, n_re1[0].re);
    assert_string_equal(cap_text(&caps, 0), "bob.users.net");
    assert_string_equal(cap_text(&caps, 1), "bob");
    assert_ptr_equal(host(&l, "x.y.users.net"), &re2);
    assert_ptr_equal(host(&l, "x.net"), &re2);

    /* nothing matches: the default server */
    caps_reset(&caps);
    assert_ptr_equal(router_find_server(&l, STR_LIT("unknown.test"), &caps), &def);
    assert_int_equal(caps.n, -7);
    assert_ptr_equal(host(&l, ""), &def);
    assert_ptr_equal(host(&l, ":8080"), &def);
    assert_ptr_equal(router_find_server(&l, STR_NULL, NULL), &def);

    /* IPv6 literal */
    assert_ptr_equal(host(&l, "[::1]:8080"), &v6);
    assert_ptr_equal(host(&l, "[::1]"), &v6);
    assert_ptr_equal(host(&l, "[::2]:8080"), &def);

    /* without default_server the first server of the address is the default */
    l.default_server_set = 0;
    l.default_server = NULL;
    assert_ptr_equal(host(&l, "unknown.test"), &first);
}

static void test_server_edge_cases(void **state)
{
    (void)state;
    struct server_name n_a[] = {sn_exact("a.test")};
    struct server_name n_empty[] = {sn_exact("")};
    struct server_name n_dup1[] = {sn_exact("dup.test"), sn_head("d.test", 1)};
    struct server_name n_dup2[] = {sn_exact("dup.test"), sn_exact("d.test")};
    struct server_name n_wild1[] = {sn_head("w.test", 0), sn_tail("www.w.")};
    struct server_name n_wild2[] = {sn_head("w.test", 0), sn_tail("www.w.")};
    struct server_name n_re_any[] = {sn_re("^$"), sn_re("^(.*)\\.test$")};
    struct server_name n_re_second[] = {sn_re("^r")};
    struct server_conf a = named_server(n_a, 1), empty = named_server(n_empty, 1),
                       dup1 = named_server(n_dup1, 2), dup2 = named_server(n_dup2, 2),
                       re_any = named_server(n_re_any, 2), re_second = named_server(n_re_second, 1),
                       wild1 = named_server(n_wild1, 2), wild2 = named_server(n_wild2, 2);
    const struct server_conf *servers[] = {&a,     &empty, &dup1,   &dup2,
                                           &wild1, &wild2, &re_any, &re_second};
    struct listen_conf l;
    memset(&l, 0, sizeof(l));
    l.servers = servers;
    l.nservers = NELEM(servers);
    l.default_server = &a;

    /* server_name "" takes requests without a Host (nginx looks "" up) */
    assert_ptr_equal(host(&l, ""), &empty);
    /* conflicting names: the first server in config order keeps the name */
    assert_ptr_equal(host(&l, "dup.test"), &dup1);
    assert_ptr_equal(host(&l, "d.test"), &dup1);
    assert_ptr_equal(host(&l, "x.w.test"), &wild1);
    assert_ptr_equal(host(&l, "www.w.org"), &wild1);
    /* regexes: first match in config order (server by server, name by name) */
    struct regex_caps caps;
    caps_reset(&caps);
    assert_ptr_equal(router_find_server(&l, STR_LIT("r.test"), &caps), &re_any);
    assert_string_equal(cap_text(&caps, 1), "r");
    assert_ptr_equal(host(&l, "rest.example"), &re_second);
    assert_ptr_equal(host(&l, "zzz"), &a);

    /* a single server is always chosen */
    const struct server_conf *one[] = {&re_second};
    struct listen_conf l1;
    memset(&l1, 0, sizeof(l1));
    l1.servers = one;
    l1.nservers = 1;
    assert_ptr_equal(host(&l1, "whatever"), &re_second);
    assert_ptr_equal(host(&l1, ""), &re_second);

    /* regexes never see an empty host, even "^$" */
    const struct server_conf *two[] = {&a, &re_any};
    struct listen_conf l2;
    memset(&l2, 0, sizeof(l2));
    l2.servers = two;
    l2.nservers = 2;
    assert_ptr_equal(host(&l2, ""), &a);
    assert_ptr_equal(host(&l2, ":80"), &a);

    struct listen_conf none;
    memset(&none, 0, sizeof(none));
    assert_null(host(&none, "x"));
    assert_null(router_find_server(NULL, STR_LIT("x"), NULL));
}

/* -------------------------------------------------------- normalisation */

struct norm_case {
    const char *in;
    const char *out; /* NULL: error */
};

static void test_normalize_vectors(void **state)
{
    (void)state;
    static const struct norm_case cases[] = {
        {"/", "/"},
        {"", "/"},
        {"/index.html", "/index.html"},
        {"/a/../b", "/b"},
        {"/a/./b", "/a/b"},
        {"//a///b", "/a/b"},
        {"/a//../b", "/b"},
        {"/a/%2e%2e/b", "/b"},
        {"/a/%2E%2e/b", "/b"},
        {"/a/.%2e/b", "/b"},
        {"/a/%2e/b", "/a/b"},
        {"/a%2Fb", "/a/b"},
        {"/a%2F%2Fb", "/a/b"},
        {"/a/b%2F..%2Fc", "/a/c"},
        {"/a/b/..", "/a/"},
        {"/a/b/.", "/a/b/"},
        {"/a/.", "/a/"},
        {"/.", "/"},
        {"/./", "/"},
        {"/a/b/../../", "/"},
        {"/a/b/../..", "/"},
        {"/a/..b", "/a/..b"},
        {"/a/b..", "/a/b.."},
        {"/a/.../b", "/a/.../b"},
        {"/a/.b/", "/a/.b/"},
        {"/a.b/c", "/a.b/c"},
        {"/%41%42c", "/ABc"},
        {"/caf%C3%A9", "/caf\xC3\xA9"},
        {"/%25", "/%"},
        {"/%2541", "/%41"}, /* no double decoding */
        {"/%252e%252e/x", "/%2e%2e/x"},
        {"/a%3Fb", "/a?b"}, /* decoded '?' is data */
        {"/a%23b", "/a#b"}, /* decoded '#' is data */
        {"/a#frag", "/a"},
        {"/a/..#x", "/"},
        {"/a?x", "/a"},
        {"/a+b c", "/a+b c"},
        /* errors */
        {"/..", NULL},
        {"/../", NULL},
        {"/../a", NULL},
        {"/a/../..", NULL},
        {"/a/b/../../../c", NULL},
        {"/%2e%2e", NULL},
        {"/%2e%2e/x", NULL},
        {"//..", NULL},
        {"/%zz", NULL},
        {"/a%g0", NULL},
        {"/a%", NULL},
        {"/a%4", NULL},
        {"/a%00b", NULL},
        {"/%00", NULL},
        {"a/b", NULL},
        {"%2Fa", NULL},
    };
    char out[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct norm_case *c = &cases[i];
        memset(out, 'X', sizeof(out));
        ssize_t n = router_normalize_uri(str_from_cstr(c->in), out, sizeof(out));
        if (c->out == NULL) {
            if (n != -1)
                fail_msg("\"%s\": expected error, got \"%.*s\"", c->in, (int)(n < 0 ? 0 : n), out);
            continue;
        }
        if (n < 0)
            fail_msg("\"%s\": expected \"%s\", got error", c->in, c->out);
        if ((size_t)n != strlen(c->out) || memcmp(out, c->out, (size_t)n) != 0)
            fail_msg("\"%s\": expected \"%s\", got \"%.*s\"", c->in, c->out, (int)n, out);
    }
}

static void test_normalize_buffers(void **state)
{
    (void)state;
    char out[8];
    /* raw NUL inside the slice */
    assert_int_equal(router_normalize_uri((struct str){"/a\0b", 4}, out, sizeof(out)), -1);
    /* output too large for the buffer */
    assert_int_equal(router_normalize_uri(STR_LIT("/abcdefghij"), out, sizeof(out)), -1);
    assert_int_equal(router_normalize_uri(STR_LIT("/abcdefg"), out, 8), 8);
    assert_int_equal(router_normalize_uri(STR_LIT("/abcdefg"), out, 7), -1);
    assert_int_equal(router_normalize_uri(STR_LIT(""), out, 0), -1);
    /* fits once decoded */
    assert_int_equal(router_normalize_uri(STR_LIT("/%41%42%43%44"), out, 5), 5);
    assert_memory_equal(out, "/ABCD", 5);
    /* the slice need not be NUL-terminated */
    assert_int_equal(router_normalize_uri((struct str){"/a/b/..XYZ", 7}, out, sizeof(out)), 3);
    assert_memory_equal(out, "/a/", 3);

    /* in place */
    char buf[] = "//x/./y/%2e%2e/z%41/..";
    ssize_t n = router_normalize_uri(str_from_cstr(buf), buf, sizeof(buf));
    assert_int_equal(n, 3);
    assert_memory_equal(buf, "/x/", 3);
    char buf2[] = "/a%2Fb%2Fc/%7Euser";
    n = router_normalize_uri(str_from_cstr(buf2), buf2, sizeof(buf2));
    assert_int_equal(n, 12);
    assert_memory_equal(buf2, "/a/b/c/~user", 12);
}

/* ----------------------------------------------------------------- maps */

static int entry_cmp(const void *a, const void *b)
{
    return map_key_cmp(((const struct map_entry *)a)->key, ((const struct map_entry *)b)->key);
}

static struct map_entry entry(const char *key, const char *value)
{
    struct map_entry e;
    memset(&e, 0, sizeof(e));
    e.key = str_from_cstr(key);
    e.value.raw = str_from_cstr(value);
    e.value.constant = 1;
    return e;
}

static struct map_regex mregex(const char *re, int caseless, const char *value)
{
    struct map_regex r;
    memset(&r, 0, sizeof(r));
    r.re = re_compile(re, caseless);
    r.value.raw = str_from_cstr(value);
    r.value.constant = 1;
    return r;
}

/* Evaluate and return the constant value text. */
static const char *mf(const struct map_conf *m, const char *key, struct regex_caps *caps)
{
    static char buf[128];
    const struct tmpl *t = map_find(m, str_from_cstr(key), caps);
    assert_non_null(t);
    snprintf(buf, sizeof(buf), "%.*s", (int)t->raw.len, t->raw.p);
    return buf;
}

static void test_map_key_cmp(void **state)
{
    (void)state;
    assert_int_equal(map_key_cmp(STR_LIT("abc"), STR_LIT("ABC")), 0);
    assert_true(map_key_cmp(STR_LIT("ab"), STR_LIT("abc")) < 0);
    assert_true(map_key_cmp(STR_LIT("abd"), STR_LIT("ABC")) > 0);
    assert_true(map_key_cmp(STR_LIT(""), STR_LIT("a")) < 0);
    assert_int_equal(map_key_cmp(STR_NULL, STR_LIT("")), 0);
    assert_true(map_key_cmp(STR_LIT("B"), STR_LIT("a")) > 0);
    assert_true(map_key_cmp(STR_LIT("\xff"), STR_LIT("a")) > 0);
}

static void test_map_plain(void **state)
{
    (void)state;
    struct map_entry exact[] = {
        entry("websocket", "upgrade"), entry("apple", "fruit"), entry("", "empty"),
        entry("banana", "yellow"),     entry("b", "letter"),    entry("zz", "last"),
    };
    qsort(exact, NELEM(exact), sizeof(exact[0]), entry_cmp);
    struct map_regex rx[] = {
        mregex("^img-(\\d+)$", 0, "image"),
        mregex("^img", 0, "img-any"),
        mregex("^(?<word>[a-z]+)$", 1, "word"),
    };
    struct map_conf m;
    memset(&m, 0, sizeof(m));
    m.exact = exact;
    m.nexact = NELEM(exact);
    m.regex = rx;
    m.nregex = NELEM(rx);
    m.deflt.raw = STR_LIT("dflt");
    m.deflt.constant = 1;

    struct regex_caps caps;
    caps_reset(&caps);
    assert_string_equal(mf(&m, "banana", &caps), "yellow");
    assert_string_equal(mf(&m, "BaNaNa", &caps), "yellow"); /* nginx: case-insensitive */
    assert_string_equal(mf(&m, "b", &caps), "letter");
    assert_string_equal(mf(&m, "zz", &caps), "last");
    assert_string_equal(mf(&m, "WebSocket", &caps), "upgrade");
    assert_string_equal(mf(&m, "", &caps), "empty");
    assert_int_equal(caps.n, -7);

    const char *key = "img-42";
    assert_string_equal(mf(&m, key, &caps), "image");
    assert_int_equal(caps.n, 2);
    assert_ptr_equal(caps.subject, key);
    assert_ptr_equal(caps.re, rx[0].re);
    assert_string_equal(cap_text(&caps, 1), "42");
    /* first matching regex in order */
    assert_string_equal(mf(&m, "img-x", NULL), "img-any");
    assert_string_equal(mf(&m, "Grape", &caps), "word");
    assert_string_equal(cap_text(&caps, 1), "Grape");
    assert_string_equal(mf(&m, "bananas!", NULL), "dflt");
    /* no trailing-dot stripping without `hostnames` */
    assert_string_equal(mf(&m, "apple.", NULL), "dflt");

    /* empty source value: exact "" only, regexes are not tried (nginx) */
    struct map_regex rx2[] = {mregex("^.*$", 0, "any")};
    struct map_conf m2;
    memset(&m2, 0, sizeof(m2));
    m2.regex = rx2;
    m2.nregex = 1;
    m2.deflt.raw = STR_LIT("dflt2");
    m2.deflt.constant = 1;
    assert_string_equal(mf(&m2, "", NULL), "dflt2");
    assert_string_equal(mf(&m2, "x", NULL), "any");

    /* an empty map returns its default ("" when none was given) */
    struct map_conf m3;
    memset(&m3, 0, sizeof(m3));
    m3.deflt.raw = STR_LIT("");
    m3.deflt.constant = 1;
    assert_ptr_equal(map_find(&m3, STR_LIT("x"), NULL), &m3.deflt);
}

static void test_map_hostnames(void **state)
{
    (void)state;
    /* map $host $v { hostnames; example.com exact; .example.net dotnet;
     *   *.example.com head; *.sub.example.com headlong; www.example.* tail;
     *   www.* tailshort; ~\.org$ org; default dflt; } */
    struct map_entry exact[] = {
        entry("example.com", "exact"),
        entry("example.net", "dotnet"), /* bare name of ".example.net" */
    };
    qsort(exact, NELEM(exact), sizeof(exact[0]), entry_cmp);
    struct map_entry head[] = {
        entry("example.com", "head"),
        entry("sub.example.com", "headlong"),
        entry("example.net", "dotnet"),
    };
    struct map_entry tail[] = {entry("www.", "tailshort"), entry("www.example.", "tail")};
    struct map_regex rx[] = {mregex("^(.+)\\.org$", 0, "org")};
    struct map_conf m;
    memset(&m, 0, sizeof(m));
    m.hostnames = 1;
    m.exact = exact;
    m.nexact = NELEM(exact);
    m.wild_head = head;
    m.nwild_head = NELEM(head);
    m.wild_tail = tail;
    m.nwild_tail = NELEM(tail);
    m.regex = rx;
    m.nregex = NELEM(rx);
    m.deflt.raw = STR_LIT("dflt");
    m.deflt.constant = 1;

    assert_string_equal(mf(&m, "example.com", NULL), "exact");
    assert_string_equal(mf(&m, "Example.COM.", NULL), "exact");
    assert_string_equal(mf(&m, "a.example.com", NULL), "head");
    assert_string_equal(mf(&m, "a.b.example.com", NULL), "head");
    assert_string_equal(mf(&m, "sub.example.com", NULL), "head");
    assert_string_equal(mf(&m, "a.sub.example.com", NULL), "headlong");
    assert_string_equal(mf(&m, "www.example.com", NULL), "head"); /* head before tail */
    assert_string_equal(mf(&m, "www.example.io", NULL), "tail");
    assert_string_equal(mf(&m, "www.example.co.uk.", NULL), "tail");
    assert_string_equal(mf(&m, "www.foo", NULL), "tailshort");
    assert_string_equal(mf(&m, "www", NULL), "dflt");
    assert_string_equal(mf(&m, "example.net", NULL), "dotnet");
    assert_string_equal(mf(&m, "x.example.net", NULL), "dotnet");
    assert_string_equal(mf(&m, "xexample.com", NULL), "dflt");

    struct regex_caps caps;
    caps_reset(&caps);
    assert_string_equal(mf(&m, "www.foo.org", &caps), "tailshort"); /* tail before regex */
    assert_int_equal(caps.n, -7);
    assert_string_equal(mf(&m, "foo.org.", &caps), "org");
    assert_int_equal(caps.n, 2);
    assert_string_equal(cap_text(&caps, 1), "foo"); /* trailing dot dropped */
    assert_string_equal(mf(&m, "nothing.io", NULL), "dflt");
    assert_string_equal(mf(&m, "", NULL), "dflt");
    assert_string_equal(mf(&m, ".", NULL), "dflt");
}

/* ------------------------------------------------------------------ main */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_location_doc_example),
        cmocka_unit_test(test_location_exact_and_prefix),
        cmocka_unit_test(test_location_longest_prefix_any_order),
        cmocka_unit_test(test_location_regex_order),
        cmocka_unit_test(test_location_nested),
        cmocka_unit_test(test_location_named),
        cmocka_unit_test(test_server_precedence),
        cmocka_unit_test(test_server_edge_cases),
        cmocka_unit_test(test_normalize_vectors),
        cmocka_unit_test(test_normalize_buffers),
        cmocka_unit_test(test_map_key_cmp),
        cmocka_unit_test(test_map_plain),
        cmocka_unit_test(test_map_hostnames),
    };
    return cmocka_run_group_tests(tests, NULL, teardown_all);
}

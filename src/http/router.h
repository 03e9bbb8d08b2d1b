/*
 * router.h - choosing the server{} and location{} for a request, with nginx's
 * precedence rules. Pure functions over the immutable configuration.
 */
#ifndef SY_HTTP_ROUTER_H
#define SY_HTTP_ROUTER_H

#include <stddef.h>
#include <sys/types.h>

#include "conf/conf.h"
#include "core/str.h"

/*
 * Regex captures of the last successful match (location, server_name or if),
 * for $1..$9 and named captures. `subject` is borrowed: it must stay valid
 * while the captures are used (the request arena copy of the URI or host).
 */
#define ROUTER_MAX_CAPS 10
struct regex_caps {
    const char *subject;
    const void *re;             /* pcre2_code * that matched, for named captures */
    int n;                      /* number of pairs set in ov (0 = no match recorded) */
    size_t ov[2 * ROUTER_MAX_CAPS];
};

/*
 * Server for a Host (lower-cased, port and trailing dot removed by the caller
 * or not; router strips ":port" and one trailing '.' itself) on listening
 * address `l`. nginx order: exact name, longest leading wildcard, longest
 * trailing wildcard, first matching regex (config order), then the default
 * server of `l`. An empty host selects the default server. Regex captures of a
 * matching server_name regex are stored in `caps` when not NULL.
 *
 * Details (nginx behaviour): exact and wildcard names compare ASCII
 * case-insensitively; a ".example.com" name (dot_form) also matches
 * "example.com" and then counts as an exact name (first server in config
 * order wins, as nginx ignores the later "conflicting server name"). An empty
 * host still matches an exact `server_name ""` (nginx looks "" up in its name
 * hash; regexes are skipped) before falling back to the default server. For
 * "[::1]:8080" the host is "[::1]". Regexes run on `host` itself minus port
 * and trailing dot, and caps->subject borrows it: pass a lower-cased copy
 * that outlives the captures (nginx matches the lower-cased host). A PCRE2
 * matching error counts as no match. Returns NULL only when `l` has no server.
 */
const struct server_conf *router_find_server(const struct listen_conf *l, struct str host,
                                             struct regex_caps *caps);

/*
 * Location for a normalised URI path (decoded, dot-segments removed, no
 * query). nginx order: exact "=" match wins at once; otherwise remember the
 * longest prefix (searching nested locations of that prefix); if it is "^~"
 * stop; otherwise try regexes in config order (nested ones of the longest
 * prefix first, as nginx does); first regex match wins, else the longest
 * prefix. Returns NULL when nothing matches (the caller answers 404).
 *
 * Details (nginx's ngx_http_core_find_location): "=" locations match only the
 * whole URI; prefix matching is case-sensitive; after a regex location
 * matches, its own nested locations are searched too. A "^~" only stops the
 * regex search of the level where it won: a nested "^~" does not hide the
 * enclosing level's regexes, and a top-level "^~" does not hide regexes
 * nested inside it. Named locations are never matched. `caps` is written only
 * when a regex matched (otherwise left as it was, so server_name captures
 * survive, as in nginx); caps->subject borrows `uri`. A PCRE2 matching error
 * counts as no match. No allocation (see router_thread_cleanup).
 */
const struct location *router_find_location(const struct server_conf *s, struct str uri,
                                            struct regex_caps *caps);

/*
 * router_find_location(), and nginx's auto_redirect: when `uri` ("/dir") has
 * no location of its own but a prefix or exact location "/dir/" with
 * proxy_pass exists, that location is returned and *auto_redirect set to 1:
 * the caller answers 301 to "/dir/". `auto_redirect` may be NULL (no check).
 */
const struct location *router_find_location_ex(const struct server_conf *s, struct str uri,
                                               struct regex_caps *caps, int *auto_redirect);

/* Named location "@name" (name given without '@'; a leading '@' is also
 * accepted); NULL if none. */
const struct location *router_find_named(const struct server_conf *s, struct str name);

/*
 * Normalise a request path as nginx does before matching: percent-decode
 * (except that "%2F" stays decoded as '/' like nginx), merge "//" (merge_slashes
 * on), resolve "." and ".." segments. Writes into out[0..cap) and returns the
 * length, or -1 when the path escapes above "/" or is invalid (400).
 * `path` is the part of the request target before '?'.
 *
 * Details (nginx's ngx_http_parse_complex_uri): a decoded byte is handled as
 * if it had been sent literally ("%2e%2e" is "..", "%2F" is '/'), except that
 * a decoded '%', '#' or '?' is plain data (no double decoding). Errors (-1):
 * a bad or truncated escape ("%zz", "%4"), a decoded or raw NUL, ".." above
 * the root, a path not starting with '/', or `cap` too small. An empty path
 * gives "/". A raw '#' or '?' ends the path. A final "/." or "/.." segment
 * keeps its slash ("/a/b/.." -> "/a/"). The output is never longer than the
 * input (except "" -> "/"), and `out` may be `path.p` itself (in place).
 */
ssize_t router_normalize_uri(struct str path, char *out, size_t cap);

/* The same with nginx's merge_slashes setting (off keeps "//"). */
ssize_t router_normalize_uri_opts(struct str path, char *out, size_t cap, int merge_slashes);

/*
 * Map lookup: evaluate map `m` for the already-evaluated source value `key`;
 * returns the template of the value that applies (the default when nothing
 * matches). Captures of a matching regex go to `caps` when not NULL.
 *
 * Details (nginx's ngx_http_map_find): exact keys compare ASCII
 * case-insensitively in every map (nginx lower-cases keys and the value), so
 * m->exact must be sorted with map_key_cmp(). With `hostnames`, one trailing
 * '.' of `key` is dropped, then: exact key, longest wild_head ("example.com"
 * matches "x.example.com", "a.b.example.com"), longest wild_tail
 * ("www.example." matches "www.example.com"). A ".example.com" key must also
 * be entered in m->exact as "example.com" (nginx matches the bare name too).
 * Regexes are tried only for a non-empty key, in config order, on the key as
 * given; caps->subject borrows `key`. Never returns NULL.
 */
const struct tmpl *map_find(const struct map_conf *m, struct str key, struct regex_caps *caps);

/*
 * Free the calling thread's PCRE2 match data, which the router creates on the
 * first regex match and reuses for every later one (workers are single
 * threaded). Optional, at thread/process exit; the next match re-creates it.
 */
void router_thread_cleanup(void);

/*
 * Run PCRE2 regex `re` over `subj` with the router's reusable match data.
 * Returns 1 on a match (filling `caps` when not NULL; caps->subject borrows
 * subj.p, which must outlive the captures), 0 otherwise (no match, PCRE2
 * error or no memory). Used by if/rewrite too, so captures work alike.
 */
int router_regex_match(const void *re, struct str subj, struct regex_caps *caps);

#endif

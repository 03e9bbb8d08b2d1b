/*
 * ssi.c - server-side includes (see ssi.h): the command parser, the
 * commands, and the response filter.
 */
#include "http/ssi.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf/conf.h"
#include "conf/runtime.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/loop.h"
#include "http/response.h"
#include "http/subrequest.h"
#include "http/vars_eval.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

/* ------------------------------------------------------------ the parser */

enum {
    ST_START = 0,
    ST_TAG,             /* "<" seen */
    ST_COMMENT0,        /* "<!" */
    ST_COMMENT1,        /* "<!-" */
    ST_SHARP,           /* "<!--" */
    ST_PRECOMMAND,
    ST_COMMAND,
    ST_PREPARAM,
    ST_PARAM,
    ST_PREEQUAL,
    ST_PREVALUE,
    ST_DQ_VALUE,
    ST_SQ_VALUE,
    ST_QUOTED_SYMBOL,
    ST_POSTPARAM,
    ST_END0,
    ST_END1,
    ST_ERROR,
    ST_ERROR_END0,
    ST_ERROR_END1,
};

void ssi_parser_init(struct ssi_parser *p, size_t value_max)
{
    memset(p, 0, sizeof(*p));
    p->value_max = value_max;
}

void ssi_parser_free(struct ssi_parser *p)
{
    free(p->values);
    p->values = NULL;
    p->values_cap = p->values_len = 0;
}

struct str ssi_param_value(const struct ssi_parser *p, unsigned i)
{
    const struct ssi_param *pa = &p->params[i];
    return (struct str){p->values ? p->values + pa->voff : "", pa->vlen};
}

static int is_space(char c)
{
    return c == ' ' || c == '\r' || c == '\n' || c == '\t';
}

static struct ssi_param *cur_param(struct ssi_parser *p)
{
    return p->nparams && p->nparams <= SSI_MAX_PARAMS ? &p->params[p->nparams - 1] : NULL;
}

static struct str cur_key(struct ssi_parser *p)
{
    struct ssi_param *pa = cur_param(p);
    return pa ? (struct str){pa->key, pa->key_len} : STR_LIT("");
}

static struct str cur_value(struct ssi_parser *p)
{
    struct ssi_param *pa = cur_param(p);
    return pa ? ssi_param_value(p, p->nparams - 1) : STR_LIT("");
}

/* Append a byte to the value being read. 0, or -1: it is too long (p->msg). */
static int value_add(struct ssi_parser *p, char ch)
{
    if (p->cur_vlen == p->value_max) {
        struct str v = cur_value(p), k = cur_key(p);
        snprintf(p->msg, sizeof(p->msg),
                 "too long \"%.*s%c...\" value of \"%.*s\" parameter in \"%s\" SSI command",
                 (int)(v.len > 200 ? 200 : v.len), v.p, ch, (int)k.len, k.p, p->command);
        return -1;
    }
    p->cur_vlen++;
    struct ssi_param *pa = cur_param(p);
    if (!pa)
        return 0; /* beyond SSI_MAX_PARAMS: counted, not kept */
    if (p->values_len == p->values_cap) {
        size_t cap = p->values_cap ? p->values_cap * 2 : 256;
        char *n = realloc(p->values, cap);
        if (!n) {
            snprintf(p->msg, sizeof(p->msg), "out of memory in \"%s\" SSI command", p->command);
            return -1;
        }
        p->values = n;
        p->values_cap = cap;
    }
    p->values[p->values_len++] = ch;
    pa->vlen++;
    return 0;
}

/* A mismatch in "<!--#": the bytes matched so far are text. */
static enum ssi_event prefix_text(struct ssi_parser *p, struct str *text, char ch,
                                  const char **s)
{
    *text = (struct str){"<!--", p->looked};
    if (ch == '<') {
        (*s)++;
        p->looked = 1;
        p->state = ST_TAG;
    } else {
        p->looked = 0;
        p->state = ST_START;
    }
    return SSI_EV_TEXT;
}

static enum ssi_event log_error(struct ssi_parser *p, int state)
{
    p->state = state;
    return SSI_EV_LOG;
}

enum ssi_event ssi_parse(struct ssi_parser *p, const char **pos, const char *end,
                         struct str *text)
{
    const char *s = *pos;
    enum ssi_event ev = SSI_EV_MORE;
    while (s < end && ev == SSI_EV_MORE) {
        if (p->state == ST_START) {
            const char *lt = memchr(s, '<', (size_t)(end - s));
            const char *stop = lt ? lt : end;
            if (stop > s) {
                *text = (struct str){s, (size_t)(stop - s)};
                s = stop;
                ev = SSI_EV_TEXT;
                break;
            }
            s++;
            p->state = ST_TAG;
            p->looked = 1;
            continue;
        }
        char ch = *s;
        switch (p->state) {
        case ST_TAG:
        case ST_COMMENT0:
        case ST_COMMENT1:
        case ST_SHARP: {
            static const char want[] = "!--#";
            int idx = p->state - ST_TAG;
            if (ch != want[idx]) {
                ev = prefix_text(p, text, ch, &s);
                continue;
            }
            if (idx == 3) {
                p->looked = 0;
                p->state = ST_PRECOMMAND;
            } else {
                p->looked++;
                p->state++;
            }
            break;
        }
        case ST_PRECOMMAND:
            if (is_space(ch))
                break;
            p->command[0] = ch;
            p->command[1] = '\0';
            p->command_len = 1;
            p->nparams = 0;
            p->values_len = 0;
            p->state = ST_COMMAND;
            break;
        case ST_COMMAND:
            if (is_space(ch)) {
                p->state = ST_PREPARAM;
            } else if (ch == '-') {
                p->state = ST_END0;
            } else if (p->command_len == SSI_COMMAND_LEN) {
                snprintf(p->msg, sizeof(p->msg), "the \"%s%c...\" SSI command is too long",
                         p->command, ch);
                ev = log_error(p, ST_ERROR);
            } else {
                p->command[p->command_len++] = ch;
                p->command[p->command_len] = '\0';
            }
            break;
        case ST_PREPARAM:
            if (is_space(ch))
                break;
            if (ch == '-') {
                p->state = ST_END0;
                break;
            }
            p->nparams++;
            p->cur_vlen = 0;
            if (p->nparams <= SSI_MAX_PARAMS) {
                struct ssi_param *pa = cur_param(p);
                pa->key[0] = ch;
                pa->key[1] = '\0';
                pa->key_len = 1;
                pa->voff = p->values_len;
                pa->vlen = 0;
            }
            p->state = ST_PARAM;
            break;
        case ST_PARAM:
            if (is_space(ch)) {
                p->state = ST_PREEQUAL;
            } else if (ch == '=') {
                p->state = ST_PREVALUE;
            } else if (ch == '-') {
                struct str k = cur_key(p);
                snprintf(p->msg, sizeof(p->msg),
                         "unexpected \"-\" symbol after \"%.*s\" parameter in \"%s\" SSI command",
                         (int)k.len, k.p, p->command);
                ev = log_error(p, ST_ERROR_END0);
            } else {
                struct ssi_param *pa = cur_param(p);
                if (pa && pa->key_len == SSI_PARAM_LEN) {
                    snprintf(p->msg, sizeof(p->msg),
                             "too long \"%s%c...\" parameter in \"%s\" SSI command", pa->key, ch,
                             p->command);
                    ev = log_error(p, ST_ERROR);
                } else if (pa) {
                    pa->key[pa->key_len++] = ch;
                    pa->key[pa->key_len] = '\0';
                }
            }
            break;
        case ST_PREEQUAL:
            if (is_space(ch))
                break;
            if (ch == '=') {
                p->state = ST_PREVALUE;
            } else {
                struct str k = cur_key(p);
                snprintf(p->msg, sizeof(p->msg),
                         "unexpected \"%c\" symbol after \"%.*s\" parameter in \"%s\" SSI command",
                         ch, (int)k.len, k.p, p->command);
                ev = log_error(p, ch == '-' ? ST_ERROR_END0 : ST_ERROR);
            }
            break;
        case ST_PREVALUE:
            if (is_space(ch))
                break;
            if (ch == '"') {
                p->state = ST_DQ_VALUE;
            } else if (ch == '\'') {
                p->state = ST_SQ_VALUE;
            } else {
                struct str k = cur_key(p);
                snprintf(p->msg, sizeof(p->msg),
                         "unexpected \"%c\" symbol before value of \"%.*s\" parameter in \"%s\" "
                         "SSI command",
                         ch, (int)k.len, k.p, p->command);
                ev = log_error(p, ch == '-' ? ST_ERROR_END0 : ST_ERROR);
            }
            break;
        case ST_DQ_VALUE:
        case ST_SQ_VALUE:
            if (ch == (p->state == ST_DQ_VALUE ? '"' : '\'')) {
                p->state = ST_POSTPARAM;
                break;
            }
            if (ch == '\\') {
                /* the backslash stays; the next byte is taken as it is */
                p->saved_state = p->state;
                p->state = ST_QUOTED_SYMBOL;
            }
            if (value_add(p, ch) < 0)
                ev = log_error(p, ST_ERROR);
            break;
        case ST_QUOTED_SYMBOL:
            p->state = p->saved_state;
            if (value_add(p, ch) < 0)
                ev = log_error(p, ST_ERROR);
            break;
        case ST_POSTPARAM:
            if (is_space(ch)) {
                p->state = ST_PREPARAM;
            } else if (ch == '-') {
                p->state = ST_END0;
            } else {
                struct str v = cur_value(p), k = cur_key(p);
                snprintf(p->msg, sizeof(p->msg),
                         "unexpected \"%c\" symbol after \"%.*s\" value of \"%.*s\" parameter in "
                         "\"%s\" SSI command",
                         ch, (int)(v.len > 200 ? 200 : v.len), v.p, (int)k.len, k.p, p->command);
                ev = log_error(p, ST_ERROR);
            }
            break;
        case ST_END0:
        case ST_END1:
            if (ch == (p->state == ST_END0 ? '-' : '>')) {
                if (p->state == ST_END0) {
                    p->state = ST_END1;
                } else {
                    p->state = ST_START;
                    ev = SSI_EV_COMMAND;
                }
            } else {
                snprintf(p->msg, sizeof(p->msg), "unexpected \"%c\" symbol in \"%s\" SSI command",
                         ch, p->command);
                ev = log_error(p, ST_ERROR);
            }
            break;
        case ST_ERROR:
            if (ch == '-')
                p->state = ST_ERROR_END0;
            break;
        case ST_ERROR_END0:
            p->state = ch == '-' ? ST_ERROR_END1 : ST_ERROR;
            break;
        case ST_ERROR_END1:
            if (ch == '>') {
                p->state = ST_START;
                ev = SSI_EV_ERROR;
            } else {
                p->state = ST_ERROR;
            }
            break;
        }
        s++;
    }
    *pos = s;
    return ev;
}

/* ------------------------------------------------------------ per-request state */

/* A variable of the `set` command (or of a regex's named capture). */
struct ssi_var {
    struct ssi_var *next;
    char *name;                 /* lower-case */
    size_t name_len;
    char *value;
    size_t len;
};

/* What a block/endblock pair held (for stub=). */
struct ssi_block {
    struct ssi_block *next;
    char *name;
    char *data;
    size_t len, cap;
};

/* What the main request's SSI shares with the SSI of its sub-requests. */
struct ssi_shared {
    struct ssi_var *vars;
    struct ssi_block *blocks;
    size_t blocks_bytes;        /* bounded by SSI_BLOCKS_MAX */
    int blocks_full;            /* that was logged */
    char *subject;              /* the last regex match's subject (malloc) */
    int ncaps;
    size_t ov[20];
};

#define SSI_BLOCKS_MAX (64 * 1024)
#define SSI_MAX_DEPTH 50        /* nested sub-requests (nginx's NGX_HTTP_MAX_SUBREQUESTS) */
#define SSI_SET_MAX 4096        /* include set=: nginx's subrequest_output_buffer_size (4k) */

enum { ENC_NONE, ENC_URL, ENC_ENTITY };
enum { COND_IF = 1, COND_ELSE = 2 };

struct ssi {
    struct resp_filter f;       /* first: the chain's view */
    const struct ssi_conf *conf;
    struct ssi_parser p;
    struct buf *out;            /* text and command output not yet taken downstream */
    const char *extra;          /* command output too big for `out`, written after it */
    size_t extra_len;
    struct ssi_shared own, *shared;
    /* the running include */
    struct client_stream *child;
    int starting;               /* inside subrequest_start: the child's bytes wait */
    int child_wrote;            /* the child gave body bytes (stub= is not used) */
    struct ssi_block *stub;     /* its stub= block */
    struct ssi_var *set_var;    /* its set= variable */
    char *set_buf;              /* its body so far (malloc, SSI_SET_MAX) */
    size_t set_len;
    int set_overflow;
    struct posted kick;         /* the child goes on (room downstream, or after its start) */
    struct posted wake;         /* the handler goes on (the child ended) */
    int last_in;                /* the handler's whole body was taken */
    int finished;               /* downstream has the end */
    /* the commands' state (nginx's ctx) */
    int output, output_chosen, conditional, block, encoding;
    struct ssi_block *cur_block;
    char *errmsg;               /* NULL: the default */
    size_t errmsg_len;
    char *timefmt;              /* NULL: the default */
};

static const char default_errmsg[] = "[an error occurred while processing the directive]";
static const char default_timefmt[] = "%A, %d-%b-%Y %H:%M:%S %Z";

static struct request *req(struct ssi *s)
{
    return &s->f.st->req;
}

static void ssi_log(struct ssi *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ssi_log(struct ssi *s, const char *fmt, ...)
{
    char msg[600], ctx[1500];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    stream_log_ctx(s->f.st, ctx, sizeof(ctx));
    sy_log(LOG_LVL_ERR, "*%llu %s while sending response to client%s", stream_conn_id(s->f.st),
           msg, ctx);
}

/* ------------------------------------------------------------ output */

/* Push `out`, then `extra`, downstream. SY_OK (both empty), SY_AGAIN,
 * SY_ERR (the stream ended: `s` may be gone). */
static int push_data(struct ssi *s)
{
    while (s->out && buf_len(s->out)) {
        struct iovec iov = {buf_head(s->out), buf_len(s->out)};
        ssize_t w = resp_filter_next_write(&s->f, &iov, 1, 0);
        if (w < 0 && w != SY_AGAIN)
            return SY_ERR;
        if (w <= 0)
            return SY_AGAIN;
        buf_consume(s->out, (size_t)w);
    }
    if (s->out)
        s->out->pos = s->out->last = 0;
    while (s->extra_len) {
        struct iovec iov = {(void *)s->extra, s->extra_len};
        ssize_t w = resp_filter_next_write(&s->f, &iov, 1, 0);
        if (w < 0 && w != SY_AGAIN)
            return SY_ERR;
        if (w <= 0)
            return SY_AGAIN;
        s->extra += w;
        s->extra_len -= (size_t)w;
    }
    return SY_OK;
}

/* Everything held goes downstream; while an include runs, its child is
 * told there may be room; after the handler's last byte, the end. */
static int settle(struct ssi *s)
{
    int rc = push_data(s);
    if (rc != SY_OK)
        return rc;
    if (s->child) {
        loop_post(&s->kick);
        return SY_AGAIN;
    }
    if (s->last_in && !s->finished) {
        ssize_t w = resp_filter_next_write(&s->f, NULL, 0, 1);
        if (w == SY_AGAIN)
            return SY_AGAIN;
        if (w < 0)
            return SY_ERR;
        s->finished = 1;
    }
    return SY_OK;
}

/* Command output (`v` lives in the request arena, the conf or `s`). */
static void emit(struct ssi *s, struct str v)
{
    if (!v.len)
        return;
    if (!s->extra_len && s->out && buf_room(s->out) >= v.len) {
        memcpy(buf_tail(s->out), v.p, v.len);
        s->out->last += (uint32_t)v.len;
        return;
    }
    if (s->extra_len) {
        /* two pieces waiting: join them in the arena */
        char *j = arena_alloc(&req(s)->arena, s->extra_len + v.len);
        if (!j)
            return;
        memcpy(j, s->extra, s->extra_len);
        memcpy(j + s->extra_len, v.p, v.len);
        s->extra = j;
        s->extra_len += v.len;
        return;
    }
    s->extra = v.p;
    s->extra_len = v.len;
}

static void emit_error(struct ssi *s)
{
    if (s->conf->silent_errors)
        return;
    if (s->errmsg)
        emit(s, (struct str){s->errmsg, s->errmsg_len});
    else
        emit(s, STR_LIT(default_errmsg));
}

/* Text held in a block (block/endblock), bounded. */
static void block_add(struct ssi *s, struct str t)
{
    struct ssi_block *b = s->cur_block;
    if (!b || !t.len)
        return;
    if (s->shared->blocks_bytes + t.len > SSI_BLOCKS_MAX) {
        if (!s->shared->blocks_full)
            ssi_log(s, "too big SSI block \"%s\" (blocks keep at most %d bytes)", b->name,
                    SSI_BLOCKS_MAX);
        s->shared->blocks_full = 1;
        return;
    }
    if (b->len + t.len > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + t.len)
            cap *= 2;
        char *n = realloc(b->data, cap);
        if (!n)
            return;
        b->data = n;
        b->cap = cap;
    }
    memcpy(b->data + b->len, t.p, t.len);
    b->len += t.len;
    s->shared->blocks_bytes += t.len;
}

/* ------------------------------------------------------------ variables */

static struct ssi_var *var_find(struct ssi *s, struct str name)
{
    for (struct ssi_var *v = s->shared->vars; v; v = v->next)
        if (v->name_len == name.len && memcmp(v->name, name.p, name.len) == 0)
            return v;
    return NULL;
}

static struct ssi_var *var_get_or_add(struct ssi *s, struct str name)
{
    struct ssi_var *v = var_find(s, name);
    if (v)
        return v;
    v = calloc(1, sizeof(*v));
    if (!v || !(v->name = malloc(name.len + 1))) {
        free(v);
        return NULL;
    }
    memcpy(v->name, name.p, name.len);
    v->name[name.len] = '\0';
    v->name_len = name.len;
    v->next = s->shared->vars;
    s->shared->vars = v;
    return v;
}

static int var_assign(struct ssi_var *v, struct str value)
{
    char *n = malloc(value.len ? value.len : 1);
    if (!n)
        return -1;
    memcpy(n, value.p, value.len);
    free(v->value);
    v->value = n;
    v->len = value.len;
    return 0;
}

static void lower(char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (char)sy_tolower((unsigned char)p[i]);
}

/* $date_local / $date_gmt with config timefmt (the SSI module's variables). */
static int date_var(struct ssi *s, struct str name, struct str *out)
{
    int gmt = str_eq(name, STR_LIT("date_gmt"));
    if (!gmt && !str_eq(name, STR_LIT("date_local")))
        return 0;
    time_t now = (time_t)(loop_wall_ms() / 1000);
    const char *fmt = s->timefmt ? s->timefmt : default_timefmt;
    if (strcmp(fmt, "%s") == 0) {
        char *v = arena_printf(&req(s)->arena, "%lld", (long long)now);
        *out = v ? str_from_cstr(v) : STR_LIT("");
        return 1;
    }
    struct tm tm;
    if (gmt)
        gmtime_r(&now, &tm);
    else
        localtime_r(&now, &tm);
    char buf[2048];
    size_t n = strftime(buf, sizeof(buf), fmt, &tm);
    *out = arena_str(&req(s)->arena, (struct str){buf, n});
    return 1;
}

/* A variable's value by name (lower-cased): SSI's own first (captures,
 * `set`), then the request's. 1 found, 0 not found. */
static int var_value_by_name(struct ssi *s, struct str name, struct str *out)
{
    struct ssi_shared *sh = s->shared;
    if (name.len == 1 && name.p[0] >= '0' && name.p[0] <= '9') {
        int i = name.p[0] - '0';
        if (i < sh->ncaps) {
            *out = (struct str){sh->subject + sh->ov[2 * i], sh->ov[2 * i + 1] - sh->ov[2 * i]};
            return 1;
        }
    }
    struct ssi_var *v = var_find(s, name);
    if (v) {
        *out = (struct str){v->value ? v->value : "", v->len};
        return 1;
    }
    if (date_var(s, name, out))
        return 1;
    struct request *r = req(s);
    struct var_ref tmp;
    const struct var_ref *ref = var_find_runtime(&r->rt->gen->vars, &r->arena, name, &tmp);
    if (!ref)
        return 0;
    int found = 1;
    *out = var_value(s->f.st, ref, &found);
    return found;
}

/* Backslashes in a literal: "\\", "\'", "\"", "\$" lose theirs; others stay. */
static size_t unescape(const char *in, size_t n, char *out, size_t *used, int stop_at_dollar)
{
    size_t o = 0, i = 0;
    int quoted = 0;
    for (; i < n; i++) {
        char ch = in[i];
        if (!quoted) {
            if (ch == '\\') {
                quoted = 1;
                continue;
            }
            if (stop_at_dollar && ch == '$')
                break;
        } else {
            quoted = 0;
            if (ch != '\\' && ch != '\'' && ch != '"' && ch != '$')
                out[o++] = '\\';
        }
        out[o++] = ch;
    }
    *used = i;
    return o;
}

#define EVAL_PREFIX 1           /* a relative URI gets the directory of the request's */

/*
 * nginx's ngx_http_ssi_evaluate_string: "$name" and "${name}" replaced by
 * their values (none when not found), backslash escapes, and with
 * EVAL_PREFIX the directory of the request's URI before a value that does
 * not start with '/'. 0, or -1 (logged: an SSI error).
 */
static int evaluate(struct ssi *s, struct str text, int flags, struct str *out)
{
    struct request *r = req(s);
    /* a part (literal or variable) takes at least one byte of the text */
    struct part { const char *p; size_t len; } *parts;
    unsigned np = 0;
    char *lit = arena_alloc(&r->arena, text.len + 1);
    parts = arena_alloc(&r->arena, (text.len + 1) * sizeof(*parts));
    if (!lit || !parts)
        return -1;
    size_t litpos = 0, i = 0, total = 0;
    while (i < text.len) {
        struct str part;
        if (text.p[i] == '$') {
            size_t start;
            int bracket = 0;
            if (++i == text.len)
                goto invalid;
            if (text.p[i] == '{') {
                bracket = 1;
                if (++i == text.len)
                    goto invalid;
            }
            start = i;
            size_t nlen = 0;
            for (; i < text.len; i++, nlen++) {
                char ch = text.p[i];
                if (ch == '}' && bracket) {
                    i++;
                    bracket = 0;
                    break;
                }
                if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                      (ch >= '0' && ch <= '9') || ch == '_'))
                    break;
            }
            if (bracket) {
                ssi_log(s, "the closing bracket in \"%.*s\" variable is missing", (int)nlen,
                        text.p + start);
                return -1;
            }
            if (nlen == 0)
                goto invalid;
            char *name = arena_strndup(&r->arena, text.p + start, nlen);
            if (!name)
                return -1;
            lower(name, nlen);
            if (!var_value_by_name(s, (struct str){name, nlen}, &part))
                continue;
        } else {
            size_t used;
            size_t o = unescape(text.p + i, text.len - i, lit + litpos, &used, 1);
            part = (struct str){lit + litpos, o};
            litpos += o;
            i += used;
        }
        parts[np].p = part.p;
        parts[np].len = part.len;
        np++;
        total += part.len;
    }
    size_t prefix = 0;
    if (flags & EVAL_PREFIX) {
        for (unsigned k = 0; k < np; k++) {
            if (!parts[k].len)
                continue;
            if (parts[k].p[0] != '/')
                for (prefix = r->uri.len; prefix; prefix--)
                    if (r->uri.p[prefix - 1] == '/')
                        break;
            break;
        }
    }
    char *o = arena_alloc(&r->arena, prefix + total + 1);
    if (!o)
        return -1;
    memcpy(o, r->uri.p, prefix);
    size_t n = prefix;
    for (unsigned k = 0; k < np; k++) {
        memcpy(o + n, parts[k].p, parts[k].len);
        n += parts[k].len;
    }
    o[n] = '\0';
    *out = (struct str){o, n};
    return 0;
invalid:
    ssi_log(s, "invalid variable name in \"%.*s\"", (int)text.len, text.p);
    return -1;
}

/* ------------------------------------------------------------ regex (if expr) */

/* 1 match (captures kept for $0..$9, named ones become variables), 0 no
 * match, -1 error (logged). `pattern` and `subj` are NUL-terminated. */
static int regex_match(struct ssi *s, struct str pattern, struct str subj)
{
    int err;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern.p, pattern.len, 0, &err, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof(msg));
        ssi_log(s, "pcre2_compile() failed: %s in \"%.*s\" at \"%s\"", (char *)msg,
                (int)pattern.len, pattern.p, pattern.p + off);
        return -1;
    }
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md) {
        pcre2_code_free(re);
        return -1;
    }
    int rc = pcre2_match(re, (PCRE2_SPTR)subj.p, subj.len, 0, 0, md, NULL);
    int result = 0;
    if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) {
        ssi_log(s, "pcre2_match() failed: %d on \"%.*s\" using \"%.*s\"", rc, (int)subj.len,
                subj.p, (int)pattern.len, pattern.p);
        result = -1;
    } else if (rc >= 0) {
        struct ssi_shared *sh = s->shared;
        char *copy = malloc(subj.len + 1);
        if (copy) {
            memcpy(copy, subj.p, subj.len + 1);
            free(sh->subject);
            sh->subject = copy;
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            int n = rc == 0 ? 10 : rc > 10 ? 10 : rc;
            sh->ncaps = n;
            for (int i = 0; i < 2 * n; i++)
                sh->ov[i] = ov[i] == PCRE2_UNSET ? 0 : ov[i];
            uint32_t count = 0, esize = 0;
            PCRE2_SPTR table = NULL;
            pcre2_pattern_info(re, PCRE2_INFO_NAMECOUNT, &count);
            pcre2_pattern_info(re, PCRE2_INFO_NAMEENTRYSIZE, &esize);
            pcre2_pattern_info(re, PCRE2_INFO_NAMETABLE, &table);
            for (uint32_t k = 0; k < count; k++) {
                PCRE2_SPTR e = table + k * esize;
                unsigned idx = ((unsigned)e[0] << 8) | e[1];
                char name[64];
                snprintf(name, sizeof(name), "%s", (const char *)e + 2);
                lower(name, strlen(name));
                struct ssi_var *v = var_get_or_add(s, str_from_cstr(name));
                if (v && ov[2 * idx] != PCRE2_UNSET)
                    var_assign(v, (struct str){subj.p + ov[2 * idx],
                                               ov[2 * idx + 1] - ov[2 * idx]});
            }
        }
        result = 1;
    }
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return result;
}

/* ------------------------------------------------------------ commands */

enum { CMD_OK = 0, CMD_ERROR = -1, CMD_WAIT = 1 };

#define NPARAMS 5
struct ssi_param_def {
    const char *name;
    int index;
    int mandatory;
};

struct ssi_cmd {
    const char *name;
    int (*handler)(struct ssi *s, struct str *v);  /* v[index]; .p NULL when absent */
    const struct ssi_param_def *params;
    int conditional;            /* COND_*: only inside if (elif, else) or after else (endif) */
    int block;                  /* runs while output is off (endblock) */
};

/* nginx's ngx_http_escape_uri table for NGX_ESCAPE_HTML */
static const uint32_t url_html_escape[] = {
    0xffffffff, 0x500000ad, 0x50000000, 0xb8000001,
    0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
};

static struct str encode(struct ssi *s, struct str v, int enc)
{
    size_t extra = 0;
    if (enc == ENC_URL) {
        for (size_t i = 0; i < v.len; i++) {
            unsigned char c = (unsigned char)v.p[i];
            if (url_html_escape[c >> 5] & (1u << (c & 0x1f)))
                extra += 2;
        }
    } else if (enc == ENC_ENTITY) {
        for (size_t i = 0; i < v.len; i++)
            switch (v.p[i]) {
            case '<': case '>': extra += 3; break;
            case '&': extra += 4; break;
            case '"': extra += 5; break;
            default: break;
            }
    }
    if (!extra)
        return v;
    char *o = arena_alloc(&req(s)->arena, v.len + extra);
    if (!o)
        return STR_NULL;
    size_t n = 0;
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.p[i];
        if (enc == ENC_URL) {
            if (url_html_escape[c >> 5] & (1u << (c & 0x1f))) {
                o[n++] = '%';
                o[n++] = hex[c >> 4];
                o[n++] = hex[c & 0xf];
            } else {
                o[n++] = (char)c;
            }
            continue;
        }
        const char *e = c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;"
                        : c == '"' ? "&quot;" : NULL;
        if (e) {
            memcpy(o + n, e, strlen(e));
            n += strlen(e);
        } else {
            o[n++] = (char)c;
        }
    }
    return (struct str){o, n};
}

enum { ECHO_VAR, ECHO_DEFAULT, ECHO_ENCODING };

static int cmd_echo(struct ssi *s, struct str *v)
{
    char *name = (char *)v[ECHO_VAR].p;
    lower(name, v[ECHO_VAR].len);
    struct str value;
    if (!var_value_by_name(s, v[ECHO_VAR], &value)) {
        if (!v[ECHO_DEFAULT].p)
            value = STR_LIT("(none)");
        else
            value = v[ECHO_DEFAULT];
    }
    if (!value.len)
        return CMD_OK;
    struct str enc = v[ECHO_ENCODING];
    if (enc.p) {
        if (str_eq(enc, STR_LIT("none")))
            s->encoding = ENC_NONE;
        else if (str_eq(enc, STR_LIT("url")))
            s->encoding = ENC_URL;
        else if (str_eq(enc, STR_LIT("entity")))
            s->encoding = ENC_ENTITY;
        else
            ssi_log(s, "unknown encoding \"%.*s\" in the \"echo\" command", (int)enc.len, enc.p);
    }
    value = encode(s, value, s->encoding);
    if (!value.p)
        return CMD_ERROR;
    emit(s, value); /* stable until it is written: nothing runs before */
    return CMD_OK;
}

enum { CONFIG_ERRMSG, CONFIG_TIMEFMT };

static char *dup_str(struct str v)
{
    char *c = malloc(v.len + 1);
    if (c) {
        memcpy(c, v.p, v.len);
        c[v.len] = '\0';
    }
    return c;
}

static int cmd_config(struct ssi *s, struct str *v)
{
    if (v[CONFIG_TIMEFMT].p) {
        char *t = dup_str(v[CONFIG_TIMEFMT]);
        if (!t)
            return CMD_ERROR;
        free(s->timefmt);
        s->timefmt = t;
    }
    if (v[CONFIG_ERRMSG].p) {
        char *e = dup_str(v[CONFIG_ERRMSG]);
        if (!e)
            return CMD_ERROR;
        free(s->errmsg);
        s->errmsg = e;
        s->errmsg_len = v[CONFIG_ERRMSG].len;
    }
    return CMD_OK;
}

enum { SET_VAR, SET_VALUE };

static int cmd_set(struct ssi *s, struct str *v)
{
    struct str value;
    if (evaluate(s, v[SET_VALUE], 0, &value) < 0)
        return CMD_ERROR;
    lower((char *)v[SET_VAR].p, v[SET_VAR].len);
    struct ssi_var *var = var_get_or_add(s, v[SET_VAR]);
    if (!var || var_assign(var, value) < 0)
        return CMD_ERROR;
    return CMD_OK;
}

enum { IF_EXPR };

static int expr_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '$' || c == '{' ||
           c == '}' || c == '_' || c == '"' || c == '\'';
}

static int cmd_if(struct ssi *s, struct str *v)
{
    if (strcmp(s->p.command, "if") == 0 && s->conditional) {
        ssi_log(s, "the \"if\" command inside the \"if\" command");
        return CMD_ERROR;
    }
    if (s->output_chosen) {
        s->output = 0;
        return CMD_OK;
    }
    struct str expr = v[IF_EXPR];
    char *e = (char *)expr.p, *p = e, *last = e + expr.len;
    for (; p < last; p++) {
        if (*p >= 'A' && *p <= 'Z') {
            *p |= 0x20;
            continue;
        }
        if (!expr_char(*p))
            break;
    }
    struct str left = {e, (size_t)(p - e)};
    while (p < last && *p == ' ')
        p++;
    if (evaluate(s, left, 0, &left) < 0)
        return CMD_ERROR;
    int match;
    if (p == last) {
        match = left.len > 0;
    } else {
        int negative;
        if (*p == '=') {
            negative = 0;
            p++;
        } else if (p + 1 < last && p[0] == '!' && p[1] == '=') {
            negative = 1;
            p += 2;
        } else {
            goto invalid;
        }
        while (p < last && *p == ' ')
            p++;
        int regex = 0;
        if (p < last - 1 && *p == '/') {
            if (last[-1] != '/')
                goto invalid;
            regex = 1;
            last--;
            p++;
        } else if (p < last - 1 && p[0] == '\\' && p[1] == '/') {
            p++;
        }
        struct str right = {p, (size_t)(last - p)};
        if (evaluate(s, right, 0, &right) < 0)
            return CMD_ERROR;
        int eq;
        if (regex) {
            int rc = regex_match(s, right, left);
            if (rc < 0)
                return CMD_ERROR;
            eq = rc;
        } else {
            eq = str_eq(left, right);
        }
        match = negative ? !eq : eq;
    }
    if (match) {
        s->output = 1;
        s->output_chosen = 1;
    } else {
        s->output = 0;
    }
    s->conditional = COND_IF;
    return CMD_OK;
invalid:
    ssi_log(s, "invalid expression in \"%.*s\"", (int)expr.len, expr.p);
    return CMD_ERROR;
}

static int cmd_else(struct ssi *s, struct str *v)
{
    (void)v;
    s->output = !s->output_chosen;
    s->conditional = COND_ELSE;
    return CMD_OK;
}

static int cmd_endif(struct ssi *s, struct str *v)
{
    (void)v;
    s->output = 1;
    s->output_chosen = 0;
    s->conditional = 0;
    return CMD_OK;
}

enum { BLOCK_NAME };

static int cmd_block(struct ssi *s, struct str *v)
{
    struct ssi_block *b = calloc(1, sizeof(*b));
    if (!b || !(b->name = dup_str(v[BLOCK_NAME]))) {
        free(b);
        return CMD_ERROR;
    }
    /* appended: the first block of a name is the one stub= finds (nginx) */
    struct ssi_block **tail = &s->shared->blocks;
    while (*tail)
        tail = &(*tail)->next;
    *tail = b;
    s->cur_block = b;
    s->output = 0;
    s->block = 1;
    return CMD_OK;
}

static int cmd_endblock(struct ssi *s, struct str *v)
{
    (void)v;
    s->output = 1;
    s->block = 0;
    s->cur_block = NULL;
    return CMD_OK;
}

enum { INC_VIRTUAL, INC_FILE, INC_WAIT, INC_SET, INC_STUB };

/* nginx's ngx_http_parse_unsafe_uri: the query split off; "..", NUL refused. */
static int split_uri(struct ssi *s, struct str *uri, struct str *args)
{
    const char *p = uri->p;
    size_t len = uri->len;
    *args = STR_NULL;
    if (len >= 2 && p[0] == '.' && p[1] == '.' && (len == 2 || p[2] == '/'))
        goto unsafe;
    for (size_t i = 0; i < len; i++) {
        char ch = p[i];
        if (ch == '?') {
            *args = (struct str){p + i + 1, len - i - 1};
            uri->len = i;
            break;
        }
        if (ch == '\0')
            goto unsafe;
        if (ch == '/' && len - i > 2 && p[i + 1] == '.' && p[i + 2] == '.' &&
            (len - i == 3 || p[i + 3] == '/' || p[i + 3] == '?'))
            goto unsafe;
    }
    return 0;
unsafe:
    ssi_log(s, "unsafe URI \"%.*s\" was detected", (int)uri->len, uri->p);
    return -1;
}

static void include_done(struct client_stream *parent, struct client_stream *child, int status);
static ssize_t sink_write(void *ctx, struct client_stream *child, const struct iovec *iov, int n,
                          int last);

static int cmd_include(struct ssi *s, struct str *v)
{
    struct str uri = v[INC_VIRTUAL], file = v[INC_FILE], wait = v[INC_WAIT];
    struct str set = v[INC_SET], stub = v[INC_STUB];
    if (uri.p && file.p) {
        ssi_log(s, "inclusion may be either virtual=\"%.*s\" or file=\"%.*s\"", (int)uri.len,
                uri.p, (int)file.len, file.p);
        return CMD_ERROR;
    }
    if (!uri.p && !file.p) {
        ssi_log(s, "no parameter in \"include\" SSI command");
        return CMD_ERROR;
    }
    if (set.p && stub.p) {
        ssi_log(s, "\"set\" and \"stub\" cannot be used together in \"include\" SSI command");
        return CMD_ERROR;
    }
    if (wait.p) {
        if (!uri.p) {
            ssi_log(s, "\"wait\" cannot be used with file=\"%.*s\"", (int)file.len, file.p);
            return CMD_ERROR;
        }
        if (!str_caseeq(wait, STR_LIT("no")) && !str_caseeq(wait, STR_LIT("yes"))) {
            ssi_log(s, "invalid value \"%.*s\" in the \"wait\" parameter", (int)wait.len,
                    wait.p);
            return CMD_ERROR;
        }
    }
    if (!uri.p)
        uri = file;
    if (evaluate(s, uri, EVAL_PREFIX, &uri) < 0)
        return CMD_ERROR;
    struct str args;
    if (split_uri(s, &uri, &args) < 0)
        return CMD_ERROR;
    s->stub = NULL;
    s->set_var = NULL;
    if (stub.p) {
        for (struct ssi_block *b = s->shared->blocks; b && !s->stub; b = b->next)
            if (strlen(b->name) == stub.len && memcmp(b->name, stub.p, stub.len) == 0)
                s->stub = b;
        if (!s->stub) {
            ssi_log(s, "\"stub\"=\"%.*s\" for \"include\" not found", (int)stub.len, stub.p);
            return CMD_ERROR;
        }
    }
    if (set.p) {
        lower((char *)set.p, set.len);
        s->set_var = var_get_or_add(s, set);
        if (!s->set_var)
            return CMD_ERROR;
    }
    /* nginx: at most 50 levels of sub-requests below a request's
     * (NGX_HTTP_MAX_SUBREQUESTS): a page that includes itself ends there */
    unsigned depth = 0;
    for (struct client_stream *a = s->f.st; subrequest_is(a); a = subrequest_parent(a))
        depth++;
    if (depth > SSI_MAX_DEPTH) {
        ssi_log(s, "subrequests cycle while processing \"%.*s\"", (int)uri.len, uri.p);
        return CMD_ERROR;
    }
    s->child_wrote = 0;
    s->set_len = 0;
    s->set_overflow = 0;
    struct subrequest_sink sink = {sink_write, s};
    s->starting = 1;
    struct client_stream *child =
        subrequest_start_body(s->f.st, uri, args, include_done, &sink);
    s->starting = 0;
    if (!child)
        return CMD_ERROR;
    s->child = child;
    return CMD_WAIT;
}

static const struct ssi_param_def include_params[] = {
    {"virtual", INC_VIRTUAL, 0}, {"file", INC_FILE, 0}, {"wait", INC_WAIT, 0},
    {"set", INC_SET, 0},         {"stub", INC_STUB, 0}, {NULL, 0, 0}};
static const struct ssi_param_def echo_params[] = {
    {"var", ECHO_VAR, 1}, {"default", ECHO_DEFAULT, 0}, {"encoding", ECHO_ENCODING, 0},
    {NULL, 0, 0}};
static const struct ssi_param_def config_params[] = {
    {"errmsg", CONFIG_ERRMSG, 0}, {"timefmt", CONFIG_TIMEFMT, 0}, {NULL, 0, 0}};
static const struct ssi_param_def set_params[] = {
    {"var", SET_VAR, 1}, {"value", SET_VALUE, 1}, {NULL, 0, 0}};
static const struct ssi_param_def if_params[] = {{"expr", IF_EXPR, 1}, {NULL, 0, 0}};
static const struct ssi_param_def block_params[] = {{"name", BLOCK_NAME, 1}, {NULL, 0, 0}};
static const struct ssi_param_def no_params[] = {{NULL, 0, 0}};

static const struct ssi_cmd commands[] = {
    {"include", cmd_include, include_params, 0, 0},
    {"echo", cmd_echo, echo_params, 0, 0},
    {"config", cmd_config, config_params, 0, 0},
    {"set", cmd_set, set_params, 0, 0},
    {"if", cmd_if, if_params, 0, 0},
    {"elif", cmd_if, if_params, COND_IF, 0},
    {"else", cmd_else, no_params, COND_IF, 0},
    {"endif", cmd_endif, no_params, COND_ELSE, 0},
    {"block", cmd_block, block_params, 0, 0},
    {"endblock", cmd_endblock, no_params, 0, 1},
    {NULL, NULL, NULL, 0, 0},
};

/* A command met inside a block: its text goes into the block (nginx
 * writes it back as <!--#name key="value" ... -->). */
static void block_command(struct ssi *s)
{
    struct ssi_parser *p = &s->p;
    block_add(s, STR_LIT("<!--#"));
    block_add(s, (struct str){p->command, p->command_len});
    unsigned n = p->nparams < SSI_MAX_PARAMS ? p->nparams : SSI_MAX_PARAMS;
    for (unsigned i = 0; i < n; i++) {
        block_add(s, STR_LIT(" "));
        block_add(s, (struct str){p->params[i].key, p->params[i].key_len});
        block_add(s, STR_LIT("=\""));
        block_add(s, ssi_param_value(p, i));
        block_add(s, STR_LIT("\""));
    }
    block_add(s, STR_LIT(" -->"));
}

/* A whole command: nginx's checks, then its handler. SY_OK, or SY_AGAIN
 * (an include started: the rest waits for it). */
static int run_command(struct ssi *s)
{
    struct ssi_parser *p = &s->p;
    const struct ssi_cmd *cmd = commands;
    while (cmd->name && strcmp(cmd->name, p->command) != 0)
        cmd++;
    if (!cmd->name) {
        if (s->output) {
            ssi_log(s, "invalid SSI command: \"%s\"", p->command);
            emit_error(s);
        }
        return SY_OK;
    }
    if (!s->output && !cmd->block) {
        if (s->block) {
            block_command(s);
            return SY_OK;
        }
        if (!cmd->conditional)
            return SY_OK;
    }
    if (cmd->conditional && (s->conditional == 0 || s->conditional > cmd->conditional)) {
        ssi_log(s, "invalid context of SSI command: \"%s\"", p->command);
        emit_error(s);
        return SY_OK;
    }
    if (p->nparams > SSI_MAX_PARAMS) {
        ssi_log(s, "too many SSI command parameters: \"%s\"", p->command);
        emit_error(s);
        return SY_OK;
    }
    struct str v[NPARAMS];
    memset(v, 0, sizeof(v));
    for (unsigned i = 0; i < p->nparams; i++) {
        const struct ssi_param_def *d = cmd->params;
        while (d->name && strcmp(d->name, p->params[i].key) != 0)
            d++;
        if (!d->name) {
            ssi_log(s, "invalid parameter name: \"%s\" in \"%s\" SSI command", p->params[i].key,
                    p->command);
            emit_error(s);
            return SY_OK;
        }
        if (v[d->index].p) {
            ssi_log(s, "duplicate \"%s\" parameter in \"%s\" SSI command", p->params[i].key,
                    p->command);
            emit_error(s);
            return SY_OK;
        }
        v[d->index] = ssi_param_value(p, i);
        if (!v[d->index].p)
            v[d->index].p = "";
    }
    for (const struct ssi_param_def *d = cmd->params; d->name; d++)
        if (d->mandatory && !v[d->index].p) {
            ssi_log(s, "mandatory \"%s\" parameter is absent in \"%s\" SSI command", d->name,
                    p->command);
            emit_error(s);
            return SY_OK;
        }
    int rc = cmd->handler(s, v);
    if (rc == CMD_ERROR)
        emit_error(s);
    return rc == CMD_WAIT ? SY_AGAIN : SY_OK;
}

/* ------------------------------------------------------------ includes */

/* The included request's body: captured for set=, else written in place
 * (after what the document wrote before the command). */
static ssize_t sink_write(void *ctx, struct client_stream *child, const struct iovec *iov, int n,
                          int last)
{
    struct ssi *s = ctx;
    (void)last;
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    if (s->stub && child->req.status >= 300 && !child->req.proxy)
        return (ssize_t)total; /* nginx writes the stub instead of its own error page */
    if (s->set_var) {
        for (int i = 0; i < n && !s->set_overflow; i++) {
            if (s->set_len + iov[i].iov_len > SSI_SET_MAX) {
                s->set_overflow = 1;
                break;
            }
            if (!s->set_buf && !(s->set_buf = malloc(SSI_SET_MAX))) {
                s->set_overflow = 1;
                break;
            }
            memcpy(s->set_buf + s->set_len, iov[i].iov_base, iov[i].iov_len);
            s->set_len += iov[i].iov_len;
        }
        return (ssize_t)total;
    }
    if (s->starting) {
        /* inside subrequest_start(): go on from the loop, not this stack */
        loop_post(&s->kick);
        return SY_AGAIN;
    }
    int rc = push_data(s);
    if (rc != SY_OK)
        return rc;
    if (!total)
        return 0;
    ssize_t w = resp_filter_next_write(&s->f, iov, n, 0);
    if (w > 0)
        s->child_wrote = 1;
    return w;
}

static void include_done(struct client_stream *parent, struct client_stream *child, int status)
{
    (void)child;
    struct ssi *s = (struct ssi *)http_filters_find(parent, &ssi_filter_type);
    if (!s || !s->child)
        return;
    s->child = NULL;
    loop_unpost(&s->kick);
    if (s->set_var) {
        if (s->set_overflow)
            ssi_log(s, "too big subrequest response");
        /* nginx keeps the body of a response below 300 */
        else if (status < 300 && s->set_len)
            var_assign(s->set_var, (struct str){s->set_buf, s->set_len});
        s->set_var = NULL;
    }
    if (s->stub && !s->child_wrote && s->stub->len)
        emit(s, (struct str){s->stub->data, s->stub->len});
    s->stub = NULL;
    loop_post(&s->wake);
}

/* The child ended: the handler's on_event drives the document on. */
static void wake_posted(struct posted *p)
{
    struct ssi *s = container_of(p, struct ssi, wake);
    struct client_stream *st = s->f.st;
    if (st->on_event)
        st->on_event(st, 0);
}

static void kick_posted(struct posted *p)
{
    struct ssi *s = container_of(p, struct ssi, kick);
    if (s->child)
        subrequest_resume(s->child);
}

/* ------------------------------------------------------------ the filter */

/* One parser event. SY_OK, SY_AGAIN (stop: downstream is full, or an
 * include runs), SY_ERR (the stream ended). */
static int step(struct ssi *s, const char **pos, const char *end)
{
    if (buf_room(s->out) < 8 || s->extra_len) {
        int rc = push_data(s);
        if (rc != SY_OK)
            return rc;
    }
    struct str text;
    switch (ssi_parse(&s->p, pos, end, &text)) {
    case SSI_EV_MORE:
        return SY_OK;
    case SSI_EV_TEXT:
        if (s->output) {
            size_t room = buf_room(s->out);
            size_t k = text.len < room ? text.len : room;
            memcpy(buf_tail(s->out), text.p, k);
            s->out->last += (uint32_t)k;
            if (k < text.len)
                *pos = text.p + k; /* input text (a held prefix always fits) */
        } else if (s->block) {
            block_add(s, text);
        }
        return SY_OK;
    case SSI_EV_LOG:
        ssi_log(s, "%s", s->p.msg);
        return SY_OK;
    case SSI_EV_ERROR:
        emit_error(s);
        return SY_OK;
    case SSI_EV_COMMAND:
        return run_command(s);
    }
    return SY_OK;
}

static ssize_t ssi_write(struct resp_filter *f, const struct iovec *iov, int n, int last)
{
    struct ssi *s = (struct ssi *)f;
    int rc = settle(s);
    if (rc != SY_OK)
        return rc;
    if (s->finished)
        return 0;
    size_t taken = 0;
    for (int i = 0; i < n; i++) {
        const char *pos = iov[i].iov_base, *end = pos + iov[i].iov_len;
        while (pos < end) {
            const char *before = pos;
            rc = step(s, &pos, end);
            taken += (size_t)(pos - before);
            if (rc == SY_ERR)
                return SY_ERR;
            if (rc == SY_AGAIN)
                return taken ? (ssize_t)taken : SY_AGAIN;
        }
    }
    if (last)
        s->last_in = 1; /* a command cut by the end is dropped, as nginx */
    rc = settle(s);
    if (rc == SY_ERR)
        return SY_ERR;
    if (rc == SY_AGAIN && !taken)
        return SY_AGAIN;
    return (ssize_t)taken;
}

static int ssi_write_done(struct resp_filter *f)
{
    struct ssi *s = (struct ssi *)f;
    return s->finished && resp_filter_next_done(f);
}

/* The client has room: held output goes, a running include goes on. */
static int ssi_resume(struct resp_filter *f)
{
    return settle((struct ssi *)f);
}

static void shared_free(struct ssi_shared *sh)
{
    while (sh->vars) {
        struct ssi_var *v = sh->vars;
        sh->vars = v->next;
        free(v->name);
        free(v->value);
        free(v);
    }
    while (sh->blocks) {
        struct ssi_block *b = sh->blocks;
        sh->blocks = b->next;
        free(b->name);
        free(b->data);
        free(b);
    }
    free(sh->subject);
    sh->subject = NULL;
}

static void ssi_close(struct resp_filter *f)
{
    struct ssi *s = (struct ssi *)f;
    if (s->child) {
        struct client_stream *child = s->child;
        s->child = NULL;
        subrequest_cancel(child);
    }
    loop_unpost(&s->kick);
    loop_unpost(&s->wake);
    ssi_parser_free(&s->p);
    buf_put(s->out);
    shared_free(&s->own);
    free(s->errmsg);
    free(s->timefmt);
    free(s->set_buf);
    free(s);
}

static int ssi_wanted(const struct loc_conf *lc)
{
    return lc->ssi.enable;
}

/* The SSI state the main request shares with its sub-requests. */
static struct ssi_shared *main_shared(struct client_stream *st)
{
    struct client_stream *m = st;
    while (subrequest_is(m))
        m = subrequest_parent(m);
    if (m == st)
        return NULL;
    struct ssi *ms = (struct ssi *)http_filters_find(m, &ssi_filter_type);
    return ms ? ms->shared : NULL;
}

static struct resp_filter *ssi_open(struct client_stream *st, struct resp_filter_head *h)
{
    struct request *r = &st->req;
    const struct ssi_conf *sc = &r->lc->ssi;
    if (!sc->enable || h->length == 0 || h->header_only ||
        !compress_types_match(sc->types, resp_get(r, "content-type")))
        return NULL;
    if (!subrequest_is(st)) {
        resp_remove(r, "content-length");
        resp_remove(r, "accept-ranges");
        if (!sc->last_modified) {
            resp_remove(r, "last-modified");
            resp_remove(r, "etag");
        } else {
            resp_weaken_etag(r);
        }
    }
    if (h->head_request) {
        h->length = 0;
        return NULL;
    }
    struct ssi *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    if (!(s->out = buf_get())) {
        free(s);
        return NULL;
    }
    h->length = STREAM_LEN_UNKNOWN;
    s->conf = sc;
    ssi_parser_init(&s->p, sc->value_len);
    s->shared = main_shared(st);
    if (!s->shared)
        s->shared = &s->own;
    s->output = 1;
    s->encoding = ENC_ENTITY;
    s->kick.cb = kick_posted;
    s->wake.cb = wake_posted;
    return &s->f;
}

const struct resp_filter_type ssi_filter_type = {
    .name = "ssi",
    .wanted = ssi_wanted,
    .open = ssi_open,
    .write = ssi_write,
    .write_done = ssi_write_done,
    .resume = ssi_resume,
    .close = ssi_close,
};

/*
 * lexer.c - nginx configuration tokenizer (see lexer.h for the rules).
 *
 * Owns nothing but the cursor in struct conf_lexer: input bytes are borrowed,
 * tokens are slices of them, and unescaping writes into caller memory. Every
 * read is bounds-checked against lx->end, so any byte sequence is safe input.
 */
#include "conf/lexer.h"

#include <stdio.h>
#include <string.h>

void conf_lex_init(struct conf_lexer *lx, const char *text, size_t len)
{
    lx->p = text;
    lx->end = text + len;
    lx->line = 1;
    lx->failed = 0;
    lx->msg[0] = '\0';
}

const char *conf_tok_name(enum conf_tok_type type)
{
    switch (type) {
    case CONF_TOK_WORD:
        return "word";
    case CONF_TOK_SEMI:
        return ";";
    case CONF_TOK_LBRACE:
        return "{";
    case CONF_TOK_RBRACE:
        return "}";
    case CONF_TOK_EOF:
        return "end of file";
    case CONF_TOK_ERROR:
        return "error";
    }
    return "?";
}

/* The separators nginx knows; other control bytes (VT, FF) are word bytes. */
static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Record an error: the message is kept in lx->msg and the lexer stays failed. */
static enum conf_tok_type lex_fail(struct conf_lexer *lx, struct conf_token *t, unsigned line,
                                   const char *msg)
{
    snprintf(lx->msg, sizeof(lx->msg), "%s", msg);
    lx->failed = 1;
    t->type = CONF_TOK_ERROR;
    t->line = line;
    return CONF_TOK_ERROR;
}

/* nginx's `unexpected "c"`; a NUL gets a readable message of its own. */
static enum conf_tok_type lex_unexpected(struct conf_lexer *lx, struct conf_token *t,
                                         unsigned char c)
{
    char msg[32];
    if (c == '\0')
        return lex_fail(lx, t, lx->line, "unexpected NUL byte");
    snprintf(msg, sizeof(msg), "unexpected \"%c\"", c);
    return lex_fail(lx, t, lx->line, msg);
}

/* A word that outgrew CONF_LEX_MAX_TOKEN: nginx's two "too long" messages. */
static enum conf_tok_type lex_too_long(struct conf_lexer *lx, struct conf_token *t,
                                       const char *start, unsigned start_line, char quote)
{
    char msg[80];
    if (quote)
        snprintf(msg, sizeof(msg),
                 "too long parameter, probably missing terminating \"%c\" character", quote);
    else
        snprintf(msg, sizeof(msg), "too long parameter \"%.10s...\" started", start);
    return lex_fail(lx, t, start_line, msg);
}

/*
 * Scan a bare word starting at lx->p. It ends before whitespace, ';' or '{'
 * (unless the '{' follows '$'), or at end of input.
 */
static enum conf_tok_type lex_bare(struct conf_lexer *lx, struct conf_token *t)
{
    const char *start = lx->p, *q = lx->p;
    int variable = 0; /* the previous byte was '$' (or a "${" run) */

    while (q < lx->end) {
        unsigned char c = (unsigned char)*q;
        if ((size_t)(q - start) > CONF_LEX_MAX_TOKEN)
            return lex_too_long(lx, t, start, t->line, 0);
        if (c == '{' && variable) {
            q++; /* "${": stays a variable run, so "${{" is one word too */
            continue;
        }
        variable = 0;
        if (c == '\0') {
            lx->p = q;
            return lex_unexpected(lx, t, c);
        }
        if (c == '\\') {
            /* The escaped byte can be anything but NUL, even a newline. */
            q++;
            if (q == lx->end)
                break;
            if (*q == '\0') {
                lx->p = q;
                return lex_unexpected(lx, t, '\0');
            }
            if (*q == '\n')
                lx->line++;
            q++;
            continue;
        }
        if (c == '$') {
            variable = 1;
            q++;
            continue;
        }
        if (is_space(c) || c == ';' || c == '{')
            break;
        q++;
    }
    if ((size_t)(q - start) > CONF_LEX_MAX_TOKEN)
        return lex_too_long(lx, t, start, t->line, 0);
    lx->p = q;
    t->type = CONF_TOK_WORD;
    t->p = start;
    t->len = (size_t)(q - start);
    return CONF_TOK_WORD;
}

/*
 * Scan a quoted word; lx->p is at the opening quote. Only the closing quote
 * and backslash are special inside. End of input before the closing quote
 * yields EOF with `partial` set, as nginx reports it as an unexpected end.
 */
static enum conf_tok_type lex_quoted(struct conf_lexer *lx, struct conf_token *t)
{
    char quote = *lx->p;
    const char *start = lx->p + 1, *q = start;

    for (;;) {
        if ((size_t)(q - start) > CONF_LEX_MAX_TOKEN)
            return lex_too_long(lx, t, start, t->line, quote);
        if (q == lx->end) {
            lx->p = q;
            t->type = CONF_TOK_EOF;
            t->line = lx->line;
            t->partial = 1;
            return CONF_TOK_EOF;
        }
        unsigned char c = (unsigned char)*q;
        if (c == '\0') {
            lx->p = q;
            return lex_unexpected(lx, t, c);
        }
        if (c == '\n')
            lx->line++;
        if (c == '\\') {
            /* Skip the escaped byte; the next loop turn re-checks bounds, so
             * a backslash as the last input byte reaches the EOF branch. */
            q++;
            if (q < lx->end) {
                if (*q == '\0') {
                    lx->p = q;
                    return lex_unexpected(lx, t, '\0');
                }
                if (*q == '\n')
                    lx->line++;
                q++;
            }
            continue;
        }
        if (c == (unsigned char)quote)
            break;
        q++;
    }

    t->type = CONF_TOK_WORD;
    t->p = start;
    t->len = (size_t)(q - start);
    t->quoted = 1;
    lx->p = q + 1;

    /* nginx's need_space: only a separator, a terminator or ')' may follow. */
    if (lx->p < lx->end) {
        unsigned char c = (unsigned char)*lx->p;
        if (!is_space(c) && c != ';' && c != '{' && c != ')')
            return lex_unexpected(lx, t, c);
    }
    return CONF_TOK_WORD;
}

enum conf_tok_type conf_lex_next(struct conf_lexer *lx, struct conf_token *t)
{
    memset(t, 0, sizeof(*t));
    if (lx->failed) {
        t->type = CONF_TOK_ERROR;
        t->line = lx->line;
        return CONF_TOK_ERROR;
    }

    /* Skip separators and comments. */
    for (;;) {
        if (lx->p >= lx->end) {
            t->type = CONF_TOK_EOF;
            t->line = lx->line;
            return CONF_TOK_EOF;
        }
        unsigned char c = (unsigned char)*lx->p;
        if (c == '\n') {
            lx->line++;
            lx->p++;
        } else if (is_space(c)) {
            lx->p++;
        } else if (c == '#') {
            /* The comment ends before the newline, which the loop counts. */
            const char *nl = memchr(lx->p, '\n', (size_t)(lx->end - lx->p));
            lx->p = nl ? nl : lx->end;
        } else {
            break;
        }
    }

    t->line = lx->line;
    switch (*lx->p) {
    case ';':
        lx->p++;
        return t->type = CONF_TOK_SEMI;
    case '{':
        lx->p++;
        return t->type = CONF_TOK_LBRACE;
    case '}':
        lx->p++;
        return t->type = CONF_TOK_RBRACE;
    case '"':
    case '\'':
        return lex_quoted(lx, t);
    default:
        return lex_bare(lx, t);
    }
}

size_t conf_lex_unescape(const char *src, size_t len, char *dst)
{
    size_t i = 0, o = 0;

    while (i < len) {
        char c = src[i];
        if (c == '\\' && i + 1 < len) {
            char e = src[i + 1];
            char out = 0;
            switch (e) {
            case '"':
            case '\'':
            case '\\':
                out = e;
                break;
            case 'n':
                out = '\n';
                break;
            case 't':
                out = '\t';
                break;
            case 'r':
                out = '\r';
                break;
            }
            if (out) {
                dst[o++] = out;
                i += 2;
                continue;
            }
            /* Unknown escape: keep the backslash; the next byte is copied as
             * itself on the next turn (it cannot be a backslash here). */
        }
        dst[o++] = c;
        i++;
    }
    dst[o] = '\0';
    return o;
}

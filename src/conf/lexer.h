/*
 * lexer.h - tokenizer for nginx configuration syntax.
 *
 * The lexer owns the token rules only (what a word, a quote, an escape, a
 * comment and a "$var"/"${var}" are, and which line each token starts on).
 * It never allocates: tokens are slices of the caller's input, and
 * conf_lex_unescape() turns a slice into the final string in a buffer the
 * caller provides. Which token may follow which ("unexpected ';'", blocks,
 * include) is parse.c's business.
 *
 * Rules, as in nginx's ngx_conf_read_token():
 *   - space, tab, CR and LF separate tokens; only LF counts lines;
 *   - ';' '{' '}' are tokens of their own at the start of a token; inside an
 *     unquoted word ';' and '{' end the word while '}' and '#' are part of it
 *     ("a}" and "a#b" are single words);
 *   - '#' at the start of a token comments out the rest of the line;
 *   - a word starting with '"' or '\'' runs to the matching unescaped quote;
 *     the next byte must then be whitespace, ';', '{' or ')' (a ')' starts a
 *     new word, for "if ($a = "b")"), anything else is `unexpected "x"`;
 *   - a backslash protects the next byte from being a separator or quote;
 *   - '{' right after '$' belongs to the word: "${var}" is one word.
 * Deliberate differences: a NUL byte outside comments is an error (tokens
 * become C strings, so it would silently truncate them), and a word longer
 * than CONF_LEX_MAX_TOKEN bytes is an error (nginx's limit is 4 KiB).
 */
#ifndef SY_CONF_LEXER_H
#define SY_CONF_LEXER_H

#include <stddef.h>

/* Longest raw word accepted (quotes excluded, escapes not yet folded). */
#define CONF_LEX_MAX_TOKEN (1024 * 1024)

enum conf_tok_type {
    CONF_TOK_WORD = 0, /* a word, bare or quoted; see conf_token.p/len */
    CONF_TOK_SEMI,     /* ';' ends a simple directive */
    CONF_TOK_LBRACE,   /* '{' opens a block */
    CONF_TOK_RBRACE,   /* '}' closes a block */
    CONF_TOK_EOF,      /* end of input (see conf_token.partial) */
    CONF_TOK_ERROR     /* malformed input; message in conf_lexer.msg */
};

struct conf_lexer {
    const char *p;   /* borrowed: next byte to read */
    const char *end; /* borrowed: one past the last byte of input */
    unsigned line;   /* line of the byte at p, starting at 1 */
    int failed;      /* set once an error was returned: the lexer stays stuck */
    char msg[96];    /* CONF_TOK_ERROR: message without location, e.g. `unexpected "x"` */
};

struct conf_token {
    enum conf_tok_type type;
    const char *p;         /* WORD: raw bytes (borrowed from input), quotes stripped */
    size_t len;            /* WORD: length of the raw bytes */
    unsigned line;         /* line the token starts on; for EOF the last line; for
                              ERROR the line to report */
    unsigned char quoted;  /* WORD: 1 when written as "..." or '...' */
    unsigned char partial; /* EOF: 1 when input ended inside a quoted word */
};

/*
 * Start lexing `len` bytes at `text` (need not be NUL-terminated; the bytes
 * are borrowed and must outlive every token taken from them). Lines count
 * from 1.
 */
void conf_lex_init(struct conf_lexer *lx, const char *text, size_t len);

/*
 * Read the next token into *t and return its type. Never reads outside
 * [text, text + len). After CONF_TOK_EOF or CONF_TOK_ERROR, further calls
 * keep returning the same kind of result (EOF again, or an error).
 * A bare word cut short by the end of input is returned as a WORD; the EOF
 * that follows tells the parser the directive was unterminated.
 */
enum conf_tok_type conf_lex_next(struct conf_lexer *lx, struct conf_token *t);

/*
 * Fold escapes in the raw word src[0..len) into dst, which must hold len + 1
 * bytes; dst is NUL-terminated. \" \' \\ become the character, \n \t \r the
 * control character, and any other "\x" stays as both characters (nginx).
 * Returns the folded length (<= len).
 */
size_t conf_lex_unescape(const char *src, size_t len, char *dst);

/* Name of a token type for tests and debug logs ("word", ";", ...). */
const char *conf_tok_name(enum conf_tok_type type);

#endif

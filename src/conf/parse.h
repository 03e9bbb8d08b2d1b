/*
 * parse.h - nginx configuration syntax -> generic block tree.
 *
 * The lexer follows nginx's rules: tokens separated by whitespace; ';' ends a
 * directive, '{' opens a block, '}' closes it; '#' starts a comment to end of
 * line (outside quotes); single- and double-quoted strings with backslash
 * escapes (\" \' \\ \n \t \r; any other "\x" keeps both characters, as nginx
 * does); "$var" and "${var}" are kept verbatim in the token (variables are
 * compiled later, see vars.h). `include FILE|GLOB;` is expanded while
 * parsing: a relative path is taken relative to the prefix directory given to
 * conf_parse_file(); a glob that matches nothing is not an error (nginx), a
 * plain file that does not exist is. Include depth is bounded (cycles error).
 * Limits: 32 nested includes, 128 nested blocks, 65536 files per parse,
 * 256 MiB per file, 1 MiB per token (CONF_LEX_MAX_TOKEN in lexer.h).
 *
 * This layer knows no directive: it only builds the tree. directives.c turns
 * the tree into a configuration generation.
 */
#ifndef SY_CONF_PARSE_H
#define SY_CONF_PARSE_H

#include <stddef.h>

struct arena;

struct conf_node {
    const char *name;          /* directive name (first token), NUL-terminated */
    char **args;               /* the remaining tokens, NUL-terminated, unquoted */
    unsigned char *quoted;     /* quoted[i] = 1 when args[i] was written in quotes */
    unsigned nargs;
    const char *file;          /* file the directive was read from */
    unsigned line;             /* line of the directive's first token */
    unsigned end_line;         /* line of the ';' or '{' that ended the directive: where
                                  nginx locates every message about it (its handler runs
                                  when that token is read), e.g. `directive "listen" is
                                  not terminated by ";"` names the line of the '{' */
    unsigned close_line;       /* blocks: line of the closing '}' (where nginx locates
                                  checks made after the block, e.g. "no servers are
                                  inside upstream"); 0 for simple directives */
    int is_block;              /* 1 when the directive opened a { } block */
    struct conf_node *children;/* first child, in order (blocks only) */
    struct conf_node *next;    /* next sibling */
};
/* args[nargs] is NULL; args and quoted are never NULL, even when nargs == 0. */

/*
 * Parse the file at `path`. `prefix` is the directory that relative include
 * paths start from (nginx's conf prefix); when NULL, the directory of `path`.
 * Every node, string and file name is allocated from `a`.
 * Returns the root's first child (NULL for an empty file) and sets *ok = 1; on
 * error returns NULL, sets *ok = 0 and writes an nginx-style message to
 * err[0..errlen), e.g.
 *     unexpected "}" in /etc/switchyard/switchyard.conf:12
 *     unexpected end of file, expecting "}" in /etc/x.conf:40
 *     open() "/etc/x/missing.conf" failed (2: No such file or directory) in /etc/x.conf:3
 * (no "emerg" prefix: the caller adds the log level). As in nginx, a syntax
 * error names the line of the offending token and an include error the line
 * of the include's ';'.
 */
struct conf_node *conf_parse_file(const char *path, const char *prefix, struct arena *a,
                                  int *ok, char *err, size_t errlen);

/*
 * Parse directives from a string (the -g command-line option), same rules;
 * `name` is used as the file name in nodes and messages (e.g. "command line").
 */
struct conf_node *conf_parse_string(const char *text, const char *name, const char *prefix,
                                    struct arena *a, int *ok, char *err, size_t errlen);

/*
 * Flags for conf_parse_mem().
 * CONF_PARSE_CMDLINE: nginx's -g rules for the text itself: a block is an
 *   error ("block directives are not supported in -g option"), messages end
 *   in "in command line" without a line, and an unterminated directive is
 *   `unexpected end of parameter, expecting ";"`.
 * CONF_PARSE_NO_INCLUDE: `include` is an error ("\"include\" directive is not
 *   allowed here") after its argument checks; for untrusted text and fuzzing.
 */
#define CONF_PARSE_CMDLINE 0x1
#define CONF_PARSE_NO_INCLUDE 0x2

/*
 * Parse `len` bytes at `text` (need not be NUL-terminated; may contain any
 * byte, a NUL outside comments is an error). Same rules and results as
 * conf_parse_string(), plus `flags`. For -g:
 *     conf_parse_mem(arg, strlen(arg), "command line", prefix, CONF_PARSE_CMDLINE,
 *                    a, &ok, err, sizeof(err));
 * Files included from -g text are ordinary files (blocks allowed), as in nginx.
 */
struct conf_node *conf_parse_mem(const char *text, size_t len, const char *name, const char *prefix,
                                 unsigned flags, struct arena *a, int *ok, char *err,
                                 size_t errlen);

/*
 * The files a parse read, for `-T` (nginx prints each configuration file as
 * read). Zero-initialise a `struct conf_read_files` and pass it to the _ex
 * functions; every file opened (the top-level file, each include, each glob
 * match -- also those holding only comments or nothing) is appended once, in
 * the order first opened, with the bytes as read. A file opened again (included
 * twice) is not appended again. One list may be passed to several parses (the
 * -g text, then the main file), as nginx keeps one dump per cycle. Paths and
 * bytes live in the parse's arena. Entries appended by a parse that fails stay
 * (they were read).
 */
struct conf_read_file {
    const char *path;            /* as opened (include paths prefix-joined) */
    const char *text;            /* the bytes as read; NUL-terminated */
    size_t len;
    struct conf_read_file *next; /* next file opened, NULL at the end */
};

struct conf_read_files {
    struct conf_read_file *head; /* first file opened; NULL when none */
    struct conf_read_file *tail;
    unsigned n;                  /* entries in the list */
    /* private: path index for de-duplication (arena) */
    struct conf_read_file **index;
    unsigned index_cap;
};

/* conf_parse_file() that also records the files read into `files` (may be NULL). */
struct conf_node *conf_parse_file_ex(const char *path, const char *prefix, struct arena *a,
                                     struct conf_read_files *files, int *ok, char *err,
                                     size_t errlen);

/* conf_parse_mem() that also records the files it includes into `files` (may be NULL);
 * the text itself is not a file and is not recorded. */
struct conf_node *conf_parse_mem_ex(const char *text, size_t len, const char *name,
                                    const char *prefix, unsigned flags, struct arena *a,
                                    struct conf_read_files *files, int *ok, char *err,
                                    size_t errlen);

#endif

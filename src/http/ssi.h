/*
 * ssi.h - server-side includes: nginx's ngx_http_ssi_filter_module as a
 * response filter (http/filter.h). Settings: conf/ssi.h (lc->ssi).
 *
 * The filter takes a response whose location has `ssi on` and whose type is
 * in ssi_types (text/html always), unless the head says it has no body. It
 * parses the body as it streams, with a small state that survives between
 * writes (a command may be split anywhere: only the command's name, its
 * parameters -- each value at most ssi_value_length bytes -- and the up to
 * three bytes of a "<!--#" prefix are kept), and writes the text around
 * commands through one output buffer. The response loses Content-Length
 * (its length is unknown: chunked on HTTP/1.1) and Accept-Ranges, and
 * Last-Modified and ETag unless ssi_last_modified is on (then the ETag is
 * weakened), as nginx.
 *
 * Commands (nginx's syntax, parameters, messages): include virtual= /
 * file= (a sub-request whose body is written in place, one at a time in
 * document order; wait= accepted; set= captures a body of at most 4 KiB
 * into a variable; stub= names a block to output when the included request
 * gives no body), echo var= [default=] [encoding=none|url|entity], set
 * var= value=, if expr= / elif / else / endif, config errmsg= timefmt=,
 * block name= / endblock. A failing command writes the error message
 * ("[an error occurred while processing the directive]", or config errmsg)
 * unless ssi_silent_errors is on; an unknown command is an error too.
 *
 * The parser is exposed for the unit tests.
 */
#ifndef SY_HTTP_SSI_H
#define SY_HTTP_SSI_H

#include <stddef.h>

#include "core/str.h"
#include "http/filter.h"

extern const struct resp_filter_type ssi_filter_type;

#define SSI_MAX_PARAMS 16
#define SSI_COMMAND_LEN 32
#define SSI_PARAM_LEN 32

struct ssi_param {
    char key[SSI_PARAM_LEN + 1];
    size_t key_len;
    size_t voff, vlen;          /* the value, in the parser's `values` */
};

/* The state of one body's parse (nginx's ngx_http_ssi_parse states). */
struct ssi_parser {
    int state, saved_state;
    unsigned looked;            /* bytes of "<!--" matched (held back from the text) */
    char command[SSI_COMMAND_LEN + 1];
    size_t command_len;
    struct ssi_param params[SSI_MAX_PARAMS];
    unsigned nparams;           /* may exceed SSI_MAX_PARAMS (only the first are kept) */
    char *values;               /* parameter values, one after another (malloc) */
    size_t values_len, values_cap;
    size_t value_max;           /* ssi_value_length */
    size_t cur_vlen;            /* length of the value being read */
    char msg[400];              /* SSI_EV_LOG: what went wrong */
};

enum ssi_event {
    SSI_EV_MORE,                /* the input is used up */
    SSI_EV_TEXT,                /* *text: bytes to output (input, or a held prefix) */
    SSI_EV_COMMAND,             /* a whole command: command, params */
    SSI_EV_ERROR,               /* a malformed command ended ("-->"): write the error message */
    SSI_EV_LOG,                 /* a malformed command was seen: log p->msg (error level) */
};

void ssi_parser_init(struct ssi_parser *p, size_t value_max);
void ssi_parser_free(struct ssi_parser *p);

/*
 * Parse from *pos (advanced past what was used) to `end`, up to the next
 * event. A SSI_EV_TEXT from the input may be written in part: set *pos back
 * to text->p + the count written, and call again.
 */
enum ssi_event ssi_parse(struct ssi_parser *p, const char **pos, const char *end,
                         struct str *text);

/* The value of parameter `i` (< SSI_MAX_PARAMS, < nparams). */
struct str ssi_param_value(const struct ssi_parser *p, unsigned i);

#endif

/*
 * vars_eval.h - evaluating variables and templates for a request.
 */
#ifndef SY_HTTP_VARS_EVAL_H
#define SY_HTTP_VARS_EVAL_H

#include "conf/vars.h"
#include "http/request.h"

enum tmpl_escape {
    TMPL_ESC_NONE,              /* raw values */
    TMPL_ESC_LOG,               /* nginx log escaping: " \ and non-printables as \xHH */
    TMPL_ESC_JSON,              /* log_format escape=json */
};

/*
 * Value of one variable for session `s`'s current request. Sets *found = 0 for
 * a variable with no value (nginx "not found": "" in templates, "-" in logs).
 * The slice is valid until the request arena is reset.
 */
struct str var_value(struct h1_session *s, const struct var_ref *v, int *found);

/* Evaluate a template into the request arena. 0, or -1 on allocation failure. */
int tmpl_eval(struct h1_session *s, const struct tmpl *t, struct str *out);

/* Evaluate with escaping of variable values (access logs). */
int tmpl_eval_esc(struct h1_session *s, const struct tmpl *t, enum tmpl_escape esc,
                  struct str *out);

/* Find a request header (case-insensitive); NULL slice when absent. */
struct str req_header(const struct request *r, const char *name);

#endif

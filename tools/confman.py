#!/usr/bin/python3
"""Generate switchyard.conf(5) (roff, man macros) on standard output.

Usage: tools/confman.py DIRECTIVES.tsv docs/directives.md

DIRECTIVES.tsv is the directive table as build/tools/dump-directives prints
it (name, contexts, min and max arguments, block): the table decides which
directives the page has and their contexts; docs/directives.md gives each
one's syntax, default and description (the entry "### `name`"), and the
sections they are grouped in. A directive of the table without an entry in
the document is an error (tests/unit/test_directives.c checks the same), so
the page always lists every directive the parser accepts.
"""
import re
import sys
import time

SEE_ALSO = "switchyard (8), nginx (8)"


def esc_text(s):
    """Escape plain text for roff (not at line start: see line())."""
    s = s.replace("\\", "\\e")
    out = []
    for ch in s:
        if ord(ch) < 128:
            out.append(ch)
        elif ch == "\u2014":
            out.append("\\(em")
        elif ch == "\u2013":
            out.append("\\(en")
        else:
            out.append("\\[u%04X]" % ord(ch))
    return "".join(out)


def esc_code(s):
    return esc_text(s).replace("-", "\\-")


def inline(s):
    """Markdown inline markup (code, bold, italics, links) to roff escapes."""
    s = s.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    out = []
    i = 0
    for m in re.finditer(r"(`+)(.+?)\1", s):
        out.append(inline_plain(s[i:m.start()]))
        out.append("\\fB" + esc_code(m.group(2).strip()) + "\\fR")
        i = m.end()
    out.append(inline_plain(s[i:]))
    return "".join(out)


def inline_plain(s):
    s = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", s)   # links: their text
    s = esc_text(s)
    s = re.sub(r"\*\*(.+?)\*\*", r"\\fB\1\\fR", s)
    s = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"\\fI\1\\fR", s)
    return s


def line(s):
    """A text line: never starting with a control character or a space."""
    s = s.lstrip()
    if s.startswith((".", "'")):
        s = "\\&" + s
    return s


class Page:
    def __init__(self):
        self.out = []

    def emit(self, *lines):
        self.out.extend(lines)

    def verbatim(self, lines):
        self.emit(".PP", ".RS 4", ".nf")
        for t in lines:
            t = esc_text(t)
            self.emit("\\&" + t if t else "")
        self.emit(".fi", ".RE")

    def body(self, text):
        """Markdown block content (paragraphs, lists, code, tables)."""
        lines = text.split("\n")
        i = 0
        para = []

        def flush():
            if para:
                # one line: a `code span` may continue on the next line
                self.emit(".PP", line(inline(" ".join(p.strip() for p in para))))
                para.clear()

        while i < len(lines):
            ln = lines[i]
            if ln.startswith("```"):
                flush()
                j = i + 1
                while j < len(lines) and not lines[j].startswith("```"):
                    j += 1
                self.verbatim(lines[i + 1:j])
                i = j + 1
                continue
            if ln.startswith("    ") and not para and ln.strip():
                flush()
                j = i
                block = []
                while j < len(lines) and (lines[j].startswith("    ") or not lines[j].strip()):
                    block.append(lines[j][4:])
                    j += 1
                while block and not block[-1].strip():
                    block.pop()
                self.verbatim(block)
                i = j
                continue
            if ln.startswith("|"):
                flush()
                rows = []
                while i < len(lines) and lines[i].startswith("|"):
                    cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                    if not all(re.fullmatch(r":?-+:?", c) for c in cells if c):
                        rows.append(cells)
                    i += 1
                self.table(rows)
                continue
            m = re.match(r"(\s*)([-*]|\d+\.)\s+(.*)", ln)
            if m and (not para or not ln.startswith(" ") or m.group(1)):
                flush()
                mark = "\\(bu" if m.group(2) in "-*" else m.group(2)
                item = [m.group(3)]
                i += 1
                while i < len(lines) and lines[i].strip() and lines[i].startswith(" ") \
                        and not re.match(r"\s*([-*]|\d+\.)\s", lines[i]):
                    item.append(lines[i])
                    i += 1
                if m.group(1):
                    self.emit(".RS %d" % len(m.group(1)))
                self.emit(".IP %s %d" % (mark, 4 if mark != "\\(bu" else 2),
                          line(inline(" ".join(p.strip() for p in item))))
                if m.group(1):
                    self.emit(".RE")
                continue
            if ln.startswith("#### "):
                flush()
                self.emit(".PP", "\\fB" + inline(ln[5:].strip()) + "\\fR")
                i += 1
                continue
            if ln.startswith("<!--"):
                while i < len(lines) and "-->" not in lines[i]:
                    i += 1
                i += 1
                continue
            if not ln.strip():
                flush()
            else:
                para.append(ln)
            i += 1
        flush()

    def table(self, rows):
        """A Markdown table: the header row in bold, then a tagged paragraph
        per row (first cell as the tag)."""
        if not rows:
            return
        head, rest = rows[0], rows[1:]
        self.emit(".PP", "\\fB" + line(inline(" | ".join(head))) + "\\fR")
        for r in rest:
            self.emit(".TP", line(inline(r[0])) or "\\&")
            self.emit(line(inline("; ".join(c for c in r[1:] if c))) or "\\&")


def parse_doc(doc):
    """(intro, [(section title, text)]) split at the "## " headings."""
    parts = re.split(r"^## (.+)$", doc, flags=re.M)
    intro = parts[0]
    return intro, [(parts[k].strip(), parts[k + 1]) for k in range(1, len(parts), 2)]


def entries(text):
    """(text before the first entry, [(heading, body)]) at "### " headings."""
    parts = re.split(r"^### (.+)$", text, flags=re.M)
    return parts[0], [(parts[k].strip(), parts[k + 1]) for k in range(1, len(parts), 2)]


def directive_entry(page, name, info, body):
    ctx, lo, hi, block = info
    page.emit(".TP", "\\fB" + esc_code(name) + "\\fR")
    syntax, default, rest = [], [], []
    for ln in body.strip("\n").split("\n"):
        if ln.startswith("**Syntax:**"):
            syntax.append(ln[len("**Syntax:**"):].strip())
        elif ln.startswith("**Default:**"):
            default.append(ln[len("**Default:**"):].strip())
        elif ln.startswith("**Context:**"):
            continue  # from the table
        else:
            rest.append(ln)
    if syntax and syntax[0] == "":  # "**Syntax:**" then indented lines
        syntax = syntax[1:]
    page.emit(".PD 0")
    for s in syntax:
        page.emit("Syntax: " + inline(s.rstrip()).replace("\n", " "))
        page.emit(".br")
    for d in default:
        page.emit("Default: " + inline(d.rstrip()))
        page.emit(".br")
    args = "%s%s" % (lo if hi == str(lo) else "%s or more" % lo if hi == "many"
                     else "%s to %s" % (lo, hi), ", and a block" if block == "block" else "")
    page.emit("Context: " + ", ".join("\\fB" + esc_code(c) + "\\fR" for c in ctx.split(",")) +
              "; arguments: " + args + ".")
    page.emit(".PD")
    page.emit(".RS")
    page.body("\n".join(rest))
    page.emit(".RE")


def main():
    table = {}
    order = []
    with open(sys.argv[1]) as f:
        for ln in f:
            name, ctx, lo, hi, block = ln.rstrip("\n").split("\t")
            table[name] = (ctx, lo, hi, block)
            order.append(name)
    with open(sys.argv[2]) as f:
        doc = f.read()
    version = "unknown"
    try:
        with open("src/core/version.h") as f:
            m = re.search(r'#define SY_VERSION "([^"]+)"', f.read())
            version = m.group(1) if m else version
    except OSError:
        pass

    intro, sections = parse_doc(doc)
    page = Page()
    date = time.strftime("%Y-%m-%d", time.gmtime(int(__import__("os").environ.get(
        "SOURCE_DATE_EPOCH", time.time()))))
    page.emit('.\\" Generated by tools/confman.py from the directive table and',
              '.\\" docs/directives.md: edit those, not this file.',
              '.TH SWITCHYARD.CONF 5 "%s" "switchyard %s" "File Formats Manual"' % (date, version),
              ".SH NAME", "switchyard.conf \\- Switchyard configuration file",
              ".SH SYNOPSIS", "\\fI/etc/switchyard/switchyard.conf\\fR",
              ".SH DESCRIPTION")
    # The introduction without its title, table of contents and the note
    # about the unit test.
    keep = []
    for ln in intro.split("\n"):
        if ln.startswith("# ") or re.match(r"- \[.*\]\(#", ln):
            continue
        keep.append(ln)
    text = "\n".join(keep)
    text = re.sub(r"\nThis file is checked by.*?fails the build's tests\.\n", "\n", text, flags=re.S)
    page.body(text)
    page.body("Each directive below gives its syntax, default and the contexts it may "
              "appear in, with the number of arguments the parser accepts.")

    done = set()
    page.emit(".SH DIRECTIVES")
    variables = None
    for title, text in sections:
        if title == "Variables":
            variables = text
            continue
        pre, ents = entries(text)
        page.emit(".SS " + esc_text(title))
        page.body(pre)
        for head, body in ents:
            m = re.fullmatch(r"`([^`$]+)`", head)
            if m and m.group(1) in table:
                directive_entry(page, m.group(1), table[m.group(1)], body)
                done.add(m.group(1))
            elif m:
                sys.exit("confman: docs/directives.md documents `%s`, which the table "
                         "does not have" % m.group(1))
            else:
                page.emit(".PP", "\\fB" + inline(head) + "\\fR")
                page.body(body)
    missing = [n for n in order if n not in done]
    if missing:
        sys.exit("confman: no entry in docs/directives.md for: " + ", ".join(missing))
    if variables:
        page.emit(".SH VARIABLES")
        pre, ents = entries(variables)
        page.body(pre)
        for head, body in ents:
            page.emit(".SS " + inline(head).replace("\\fB", "").replace("\\fR", ""))
            page.body(body)
    page.emit(".SH FILES",
              ".TP", "\\fI/etc/switchyard/switchyard.conf\\fR",
              "The main configuration file (the default of \\fB\\-c\\fR in the installed "
              "binary); \\fI/etc/switchyard/conf.d/*.conf\\fR are included by the default one.",
              ".TP", "\\fI/etc/switchyard/mime.types\\fR",
              "File name extensions to MIME types (\\fBinclude mime.types;\\fR).",
              ".SH SEE ALSO", "\\fBswitchyard\\fR(8), \\fBnginx\\fR(8)",
              ".PP", "docs/directives.md, docs/operations.md in the source tree.")
    sys.stdout.write("\n".join(page.out) + "\n")


if __name__ == "__main__":
    main()

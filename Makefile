# Switchyard build. `make` builds build/switchyard; `make check` installs what is
# missing and runs every test; `make run` starts the bundled demo.

CC       ?= cc
PREFIX   ?= /usr/local
DESTDIR  ?=
BUILD    := build
PYTHON   := /usr/bin/python3
SANITIZE ?=
# pytest workers; tests are independent and each starts its own processes
JOBS     ?= 4

WARN     := -Wall -Wextra -Werror -Wshadow -Wmissing-prototypes -Wstrict-prototypes
CFLAGS   ?= -O2 -g
ALL_CFLAGS := -std=gnu11 $(CPPFLAGS) $(CFLAGS) $(WARN) -Isrc -D_GNU_SOURCE -MMD -MP
LDLIBS   := -lssl -lcrypto -lpcre2-8 -lnghttp2 -lz -lbrotlienc -lcrypt
ifneq ($(SANITIZE),)
ALL_CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS    += -fsanitize=$(SANITIZE)
endif

SRCS      := $(shell find src -name '*.c' | sort)
# The status page (src/http/status_page.html) is compiled in as a byte array.
GEN_OBJS  := $(BUILD)/obj/gen/status_page_html.o
OBJS      := $(SRCS:%.c=$(BUILD)/obj/%.o) $(GEN_OBJS)
LIB_OBJS  := $(filter-out $(BUILD)/obj/src/main.o,$(OBJS))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all run check layers unit integration e2e install install-files man deb package clean deps fuzz-smoke fuzz bench scale sanitize stress h2spec

all: $(BUILD)/switchyard

# Rebuild everything when the compiler flags change (e.g. SANITIZE=...).
$(BUILD)/.flags: FORCE
	@mkdir -p $(BUILD)
	@echo '$(CC) $(ALL_CFLAGS) $(LDFLAGS)' | cmp -s - $@ || echo '$(CC) $(ALL_CFLAGS) $(LDFLAGS)' > $@
FORCE:

$(BUILD)/obj/%.o: %.c $(BUILD)/.flags
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/gen/status_page_html.c: src/http/status_page.html
	@mkdir -p $(dir $@)
	@{ echo '/* generated from $< by the Makefile: do not edit */'; \
	  echo '#include "http/status_page.h"'; \
	  echo 'const unsigned char status_page_html[] = {'; \
	  od -An -v -tx1 $< | sed -e 's/\([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	  echo '};'; \
	  echo 'const size_t status_page_html_len = sizeof(status_page_html);'; } > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c $(BUILD)/.flags
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/switchyard: $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $(OBJS) $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes $(LDFLAGS) -o $@ $< $(LIB_OBJS) $(LDLIBS) -lcmocka

deps:
	@scripts/install-deps

# Includes point down the layers only (ARCHITECTURE.md; docs/architecture.md)
layers:
	@scripts/check-layers

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

integration: all
	$(PYTHON) -m pytest -q -n $(JOBS) tests/integration

# Chromium (playwright-core) over https/wss through Switchyard; screenshots in
# build/e2e-screenshots/
e2e: all
	$(PYTHON) -m pytest -q tests/e2e

# With SANITIZE=... (e.g. make check SANITIZE=address,undefined) everything is
# built with those sanitizers and the suites run against that build; the scale
# test, the benchmark and the Debian package test (`package`: it builds the
# .deb, installs it with apt-get and purges it) are skipped. Without
# it, the integration suite also runs once against an ASan+UBSan build.
check: layers deps
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) fuzz-smoke
	$(MAKE) integration
	$(MAKE) h2spec
	$(MAKE) e2e
ifeq ($(SANITIZE),)
	$(MAKE) sanitize
	$(MAKE) package
	$(MAKE) scale
	$(MAKE) bench QUICK=1
endif

# The unit tests and the integration suite against an ASan+UBSan build in
# $(BUILD)/sanitize (unit test binaries in $(BUILD)/sanitize/tests/): any
# sanitizer report, leaks at exit included (LeakSanitizer), fails the unit
# test binary, or the integration test that started the process.
SAN_BUILD := $(BUILD)/sanitize
SAN_MAKE  := $(MAKE) BUILD=$(SAN_BUILD) SANITIZE=address,undefined CFLAGS='-O1 -g'
SAN_ENV   := ASAN_OPTIONS=detect_leaks=1 SWITCHYARD_BIN=$(abspath $(SAN_BUILD))/switchyard
sanitize:
	ASAN_OPTIONS=detect_leaks=1 $(SAN_MAKE) all unit
	$(SAN_ENV) $(PYTHON) -m pytest -q -n $(JOBS) tests/integration

# The integration suite N times in a row (pytest -n $(JOBS) each time), then
# every test that failed at least once with its count (tests/stress.py); logs
# of each run in $(BUILD)/stress/. Fails if any test failed. With SANITIZE=...
# it runs against a sanitizer build in $(BUILD)/sanitize, as `sanitize` does.
N ?= 10
STRESS := $(PYTHON) tests/stress.py --runs $(N) --jobs $(JOBS) --out $(BUILD)/stress tests/integration
ifneq ($(SANITIZE),)
stress:
	$(MAKE) BUILD=$(SAN_BUILD) SANITIZE=$(SANITIZE) CFLAGS='-O1 -g' all
	$(SAN_ENV) $(STRESS)
else
stress: all
	$(STRESS)
endif

# 100,000 idle WebSockets through one Switchyard (bench/scale.py), alone:
# it saturates both cores for about 30 s. SY_SCALE_CONNS=N to change N.
scale: all bench-tools
	BUILD=$(BUILD) $(PYTHON) -m pytest -q -s tests/scale

# ---- HTTP/2 conformance (issue 13): h2spec (2.6.0 source) built from the shared tools
# with Debian's Go (../shared/tools/build-h2spec; scripts/install-deps installs
# the Go packages). ../shared is looked for next to this checkout, then next to
# the main checkout of a git worktree, then at /work/shared (the project machines'
# place for it); SHARED=DIR overrides. Part of `make check`.
GIT_COMMON  := $(shell git rev-parse --path-format=absolute --git-common-dir 2>/dev/null)
SHARED_DIRS := $(SHARED) $(abspath $(CURDIR)/../shared) $(if $(GIT_COMMON),$(abspath $(GIT_COMMON)/../../shared)) /work/shared
BUILD_H2SPEC := $(firstword $(wildcard $(addsuffix /tools/build-h2spec,$(SHARED_DIRS))))

$(BUILD)/h2spec:
	@if [ -z "$(BUILD_H2SPEC)" ]; then \
	    echo "h2spec: tools/build-h2spec not found in any of: $(SHARED_DIRS)" >&2; \
	    echo "h2spec: check out the shared tools next to the repo, or make SHARED=/path/to/shared" >&2; \
	    exit 1; fi
	@if [ -d "$(dir $(BUILD_H2SPEC))h2spec-src/cmd/h2spec" ]; then \
	    $(BUILD_H2SPEC) $@; \
	else \
	    echo "h2spec: the shared source has no cmd/h2spec; building tests/conformance/h2spec-cmd against it"; \
	    $(MAKE) --no-print-directory H2SPEC_SRC=$(dir $(BUILD_H2SPEC))h2spec-src h2spec-from-lib; \
	fi

# The same build as tools/build-h2spec (Debian's Go, GOPATH mode, Debian's Go
# libraries, nothing downloaded) with our own main package.
.PHONY: h2spec-from-lib
h2spec-from-lib:
	@command -v go >/dev/null 2>&1 || { echo "h2spec: no Go toolchain: run scripts/install-deps" >&2; exit 1; }
	@set -e; gp=$$(mktemp -d); trap 'rm -rf "$$gp"' EXIT; \
	mkdir -p "$$gp/src/github.com/summerwind"; \
	cp -r "$(H2SPEC_SRC)" "$$gp/src/github.com/summerwind/h2spec"; chmod -R u+w "$$gp/src"; \
	mkdir -p "$$gp/src/github.com/summerwind/h2spec/cmd/h2spec"; \
	cp tests/conformance/h2spec-cmd/main.go "$$gp/src/github.com/summerwind/h2spec/cmd/h2spec/"; \
	mkdir -p $(BUILD); \
	cd "$$gp/src/github.com/summerwind/h2spec" && \
	GOPATH="$$gp:/usr/share/gocode" GO111MODULE=off GOCACHE="$$gp/cache" GOFLAGS= \
	    go build -o $(abspath $(BUILD))/h2spec ./cmd/h2spec; \
	echo "h2spec: $(abspath $(BUILD))/h2spec"

# h2spec's 146 cases against a TLS `listen ... ssl http2` and an h2c
# `listen ... http2` listener, each proxying to a real HTTP/1.1 origin; JUnit
# reports in $(BUILD)/h2spec-*.xml. SWITCHYARD_BIN=/usr/sbin/nginx for nginx.
h2spec: all $(BUILD)/h2spec
	H2SPEC=$(abspath $(BUILD)/h2spec) H2SPEC_REPORTS=$(abspath $(BUILD)) $(PYTHON) -m pytest -q -n 2 tests/conformance

# ---- fuzzing (clang-14 libFuzzer + ASan/UBSan), see fuzz/README.md
FUZZ_CC    := clang-14
FUZZ_FLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Isrc -D_GNU_SOURCE
FUZZ_TIME  ?= 60
FUZZ_SMOKE_TIME ?= 20
FUZZ_TARGETS := h1_request h1_response h1_chunked conf ws_frame tmpl proxy_protocol dns byteranges
fuzz_src_h1_request  := src/http/h1_parser.c src/core/str.c
fuzz_src_h1_response := src/http/h1_parser.c src/core/str.c
fuzz_src_h1_chunked  := src/http/h1_parser.c src/core/str.c
fuzz_src_conf        := src/conf/parse.c src/conf/snapshot.c src/conf/lexer.c src/core/arena.c src/core/str.c
fuzz_src_ws_frame    := src/proxy/ws_frame.c
fuzz_src_tmpl        := src/conf/vars.c src/core/arena.c src/core/str.c
fuzz_src_proxy_protocol := src/core/proxy_protocol.c
fuzz_src_dns         := src/proxy/dns_wire.c
fuzz_src_byteranges  := src/http/byteranges.c src/core/arena.c src/core/str.c
fuzz_libs_ws_frame   := -lcrypto

.SECONDEXPANSION:
$(BUILD)/fuzz/fuzz_%: fuzz/fuzz_%.c $$(fuzz_src_$$*)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< $(fuzz_src_$*) $(fuzz_libs_$*)

FUZZ_BINS := $(FUZZ_TARGETS:%=$(BUILD)/fuzz/fuzz_%)

# Replay every seed (and kept crasher) and fuzz each target briefly: fails on
# any crash, leak or sanitizer report.
fuzz-smoke: $(FUZZ_BINS)
	@set -e; for t in $(FUZZ_TARGETS); do \
	    echo "== fuzz $$t"; \
	    $(BUILD)/fuzz/fuzz_$$t -runs=0 fuzz/corpus/$$t >/dev/null 2>$(BUILD)/fuzz/$$t.log || { cat $(BUILD)/fuzz/$$t.log; exit 1; }; \
	    rm -rf $(BUILD)/fuzz/work_$$t; mkdir -p $(BUILD)/fuzz/work_$$t; cp fuzz/corpus/$$t/* $(BUILD)/fuzz/work_$$t/; \
	    $(BUILD)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SMOKE_TIME) -dict=fuzz/http.dict $(BUILD)/fuzz/work_$$t >/dev/null 2>$(BUILD)/fuzz/$$t.log || { cat $(BUILD)/fuzz/$$t.log; exit 1; }; \
	done

fuzz: $(FUZZ_BINS)
	@set -e; for t in $(FUZZ_TARGETS); do \
	    echo "== fuzz $$t for $(FUZZ_TIME)s"; \
	    mkdir -p $(BUILD)/fuzz/work_$$t; cp -n fuzz/corpus/$$t/* $(BUILD)/fuzz/work_$$t/ 2>/dev/null || true; \
	    $(BUILD)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_TIME) -dict=fuzz/http.dict \
	        -artifact_prefix=$(BUILD)/fuzz/$$t- $(BUILD)/fuzz/work_$$t; \
	done

run: deps all
	scripts/run-demo

# ---- benchmark: Switchyard vs nginx, HAProxy, Caddy, h2o and a floor relay,
# see bench/README.md. `make bench QUICK=1` is a 2-minute smoke version;
# BENCH_ARGS="--baseline OLD_BINARY" adds a before/after table.
include bench/tools/tools.mk

$(BUILD)/bench/sy-floor: bench/floor/sy-floor.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -o $@ $<

bench: all bench-tools $(BUILD)/bench/sy-floor
	@scripts/install-deps --bench
	BUILD=$(BUILD) $(PYTHON) bench/run.py $(if $(QUICK),--quick) $(BENCH_ARGS)

# ---- installation (docs/operations.md). `make install` puts under
# $(DESTDIR): the binary (built with the installed configuration's path as its
# default -c), the systemd unit, the logrotate file, switchyard(8) and
# switchyard.conf(5), and a default configuration with mime.types and an
# empty conf.d/ -- an existing switchyard.conf or mime.types is kept.
SBINDIR      ?= $(PREFIX)/sbin
SYSCONFDIR   ?= $(PREFIX)/etc
DATADIR      ?= $(PREFIX)/share/switchyard
MANDIR       ?= $(PREFIX)/share/man
UNITDIR      ?= $(PREFIX)/lib/systemd/system
LOGROTATEDIR ?= $(SYSCONFDIR)/logrotate.d
LOGDIR       ?= /var/log/switchyard
RUNDIR       ?= /run
# the workers' user and group (nginx takes the group named as the user when
# none is given: there is no group "nobody" on Debian, "nogroup" instead)
SY_USER      ?= nobody
SY_GROUP     ?= $(shell getent group nogroup >/dev/null 2>&1 && echo nogroup || echo nobody)
CONFDIR      := $(SYSCONFDIR)/switchyard
INST         := $(BUILD)/install
MAN_PAGES    := man/switchyard.8 $(BUILD)/man/switchyard.conf.5
INSTALL_DEFS := -DSY_PREFIX='"$(DATADIR)/"' -DSY_CONF_PATH='"$(CONFDIR)/switchyard.conf"'
SUBST := sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
             -e 's|@LOGDIR@|$(LOGDIR)|g' -e 's|@RUNDIR@|$(RUNDIR)|g' -e 's|@USER@|$(SY_USER) $(SY_GROUP)|g'

# Rebuild the installed binary and files when a path changes.
$(INST)/.paths: FORCE
	@mkdir -p $(INST)
	@echo "$(SBINDIR) $(SYSCONFDIR) $(DATADIR) $(LOGDIR) $(RUNDIR) $(SY_USER) $(SY_GROUP)" | cmp -s - $@ || \
	    echo "$(SBINDIR) $(SYSCONFDIR) $(DATADIR) $(LOGDIR) $(RUNDIR) $(SY_USER) $(SY_GROUP)" > $@

$(INST)/main.o: src/main.c $(INST)/.paths $(BUILD)/.flags
	$(CC) $(ALL_CFLAGS) $(INSTALL_DEFS) -c $< -o $@

$(INST)/switchyard: $(INST)/main.o $(LIB_OBJS)
	$(CC) $(LDFLAGS) -o $@ $(INST)/main.o $(LIB_OBJS) $(LDLIBS)

$(INST)/switchyard.service: dist/systemd/switchyard.service.in $(INST)/.paths
	$(SUBST) $< > $@
$(INST)/logrotate: dist/logrotate/switchyard.in $(INST)/.paths
	$(SUBST) $< > $@
$(INST)/switchyard.conf: dist/switchyard.conf.in $(INST)/.paths
	$(SUBST) $< > $@

INSTALL_FILES := $(INST)/switchyard $(INST)/switchyard.service $(INST)/logrotate \
                 $(INST)/switchyard.conf $(MAN_PAGES)

install-files: $(INSTALL_FILES)

install: install-files
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(LOGROTATEDIR) \
	    $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(CONFDIR)/conf.d \
	    $(DESTDIR)$(LOGDIR)
	install -m 755 $(INST)/switchyard $(DESTDIR)$(SBINDIR)/switchyard
	install -m 644 $(INST)/switchyard.service $(DESTDIR)$(UNITDIR)/switchyard.service
	install -m 644 $(INST)/logrotate $(DESTDIR)$(LOGROTATEDIR)/switchyard
	install -m 644 man/switchyard.8 $(DESTDIR)$(MANDIR)/man8/switchyard.8
	install -m 644 $(BUILD)/man/switchyard.conf.5 $(DESTDIR)$(MANDIR)/man5/switchyard.conf.5
	@for f in switchyard.conf:$(INST)/switchyard.conf mime.types:conf/mime.types; do \
	    dst=$(DESTDIR)$(CONFDIR)/$${f%%:*}; \
	    if [ -e "$$dst" ]; then echo "install: keeping the existing $$dst"; \
	    else echo "install -m 644 $${f#*:} $$dst"; install -m 644 "$${f#*:}" "$$dst"; fi; \
	done

# ---- the Debian package (debian/, docs/operations.md): built with Debian's
# tools (dpkg-buildpackage, debhelper) from a copy of the sources in
# $(BUILD)/deb/, where dpkg-buildpackage leaves the .deb; lintian must report
# no error and no warning. `make package` (part of `make check`) then
# installs it with apt-get, tries it and purges it (tests/package/).
DEB_DIR  := $(BUILD)/deb
DEB_SRC  := Makefile src tools man dist debian docs conf bench/tools/tools.mk
deb:
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)/switchyard
	tar -cf - $(DEB_SRC) | tar -C $(DEB_DIR)/switchyard -xf -
	cd $(DEB_DIR)/switchyard && dpkg-buildpackage -us -uc -b
	lintian --fail-on error,warning $(DEB_DIR)/switchyard_*.deb
	@ls $(DEB_DIR)/switchyard_*.deb

package: deb
	$(PYTHON) -m pytest -q tests/package

# ---- man pages: switchyard(8) is written by hand (man/switchyard.8);
# switchyard.conf(5) is generated from the directive table (every module's,
# src/conf/directive_table.c) by tools/dump-directives, with each entry's
# text taken from docs/directives.md (tools/confman.py).
$(BUILD)/tools/dump-directives: tools/dump-directives.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_OBJS) $(LDLIBS)

$(BUILD)/man/switchyard.conf.5: $(BUILD)/tools/dump-directives tools/confman.py docs/directives.md
	@mkdir -p $(dir $@)
	$(BUILD)/tools/dump-directives > $(BUILD)/man/directives.tsv
	$(PYTHON) tools/confman.py $(BUILD)/man/directives.tsv docs/directives.md > $@.tmp
	mv $@.tmp $@

man: $(MAN_PAGES)

clean:
	rm -rf $(BUILD)

-include $(OBJS:.o=.d) $(UNIT_BINS:=.d)

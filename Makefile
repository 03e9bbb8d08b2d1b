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
ALL_CFLAGS := -std=gnu11 $(CFLAGS) $(WARN) -Isrc -D_GNU_SOURCE -MMD -MP
LDLIBS   := -lssl -lcrypto -lpcre2-8
ifneq ($(SANITIZE),)
ALL_CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS    += -fsanitize=$(SANITIZE)
endif

SRCS      := $(shell find src -name '*.c' | sort)
OBJS      := $(SRCS:%.c=$(BUILD)/obj/%.o)
LIB_OBJS  := $(filter-out $(BUILD)/obj/src/main.o,$(OBJS))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all run check unit integration install clean deps fuzz-smoke fuzz bench

all: $(BUILD)/switchyard

# Rebuild everything when the compiler flags change (e.g. SANITIZE=...).
$(BUILD)/.flags: FORCE
	@mkdir -p $(BUILD)
	@echo '$(CC) $(ALL_CFLAGS) $(LDFLAGS)' | cmp -s - $@ || echo '$(CC) $(ALL_CFLAGS) $(LDFLAGS)' > $@
FORCE:

$(BUILD)/obj/%.o: %.c $(BUILD)/.flags
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/switchyard: $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $(OBJS) $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes $(LDFLAGS) -o $@ $< $(LIB_OBJS) $(LDLIBS) -lcmocka

deps:
	@scripts/install-deps

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

integration: all
	$(PYTHON) -m pytest -q -n $(JOBS) tests/integration

check: deps
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) integration

run: deps all
	scripts/run-demo

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/share/switchyard/conf
	install -m 755 $(BUILD)/switchyard $(DESTDIR)$(PREFIX)/sbin/switchyard
	cp -r conf/. $(DESTDIR)$(PREFIX)/share/switchyard/conf/

clean:
	rm -rf $(BUILD)

-include $(OBJS:.o=.d)

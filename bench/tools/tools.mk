# bench/tools/tools.mk - the benchmark's origin server and WebSocket load
# generator. Included by the top Makefile; also usable alone:
#     make -f bench/tools/tools.mk BUILD=/tmp/benchtools
# Variables are prefixed BT_ so as not to collide with the includer's.
# BT_SANITIZE=address builds them with that sanitizer.

BUILD ?= build
BT_CC ?= $(or $(CC),cc)
BT_DIR := bench/tools
BT_OBJ := $(BUILD)/bench/obj
BT_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -MMD -MP
BT_LDLIBS := -lssl -lcrypto -lpthread -lm
BT_SANITIZE ?=
ifneq ($(BT_SANITIZE),)
BT_CFLAGS += -fsanitize=$(BT_SANITIZE) -fno-omit-frame-pointer
BT_LDFLAGS := -fsanitize=$(BT_SANITIZE)
endif

BT_BACKEND_OBJS := $(addprefix $(BT_OBJ)/,sy-backend.o httpreq.o wsproto.o)
BT_LOAD_OBJS := $(addprefix $(BT_OBJ)/,sy-load.o load_opts.o load_net.o load_conn.o load_run.o hist.o wsproto.o)
BT_H2_OBJS := $(addprefix $(BT_OBJ)/,sy-h2.o hist.o wsproto.o)

# Included before the includer's first rule, this file must not become the
# default goal; alone, bench-tools is.
ifeq ($(firstword $(MAKEFILE_LIST)),$(lastword $(MAKEFILE_LIST)))
.DEFAULT_GOAL := bench-tools
endif

.PHONY: bench-tools
bench-tools: $(BUILD)/bench/sy-backend $(BUILD)/bench/sy-load $(BUILD)/bench/sy-h2 \
	$(BUILD)/bench/tls-conn-mem

$(BT_OBJ)/%.o: $(BT_DIR)/%.c
	@mkdir -p $(dir $@)
	$(BT_CC) $(BT_CFLAGS) -c $< -o $@

$(BUILD)/bench/sy-backend: $(BT_BACKEND_OBJS)
	$(BT_CC) $(BT_LDFLAGS) -o $@ $^ $(BT_LDLIBS)

$(BUILD)/bench/sy-load: $(BT_LOAD_OBJS)
	$(BT_CC) $(BT_LDFLAGS) -o $@ $^ $(BT_LDLIBS)

# idle HTTP/2 connections and RFC 8441 WebSockets (libnghttp2)
$(BUILD)/bench/sy-h2: $(BT_H2_OBJS)
	$(BT_CC) $(BT_LDFLAGS) -o $@ $^ -lnghttp2 $(BT_LDLIBS)

# OpenSSL's memory per idle server connection, by allocation site
$(BUILD)/bench/tls-conn-mem: $(BT_OBJ)/tls-conn-mem.o
	$(BT_CC) $(BT_LDFLAGS) -o $@ $^ $(BT_LDLIBS)

-include $(BT_BACKEND_OBJS:.o=.d) $(BT_LOAD_OBJS:.o=.d) $(BT_OBJ)/sy-h2.d $(BT_OBJ)/tls-conn-mem.d

# Ephemeral — build, run and test. `make run` and `make test` install what is missing first.
#
#   make            build every program into build/
#   make run        install missing Debian packages, build, run the stack on http://127.0.0.1:8080
#   make test       install, build, run unit, fuzz-corpus, end-to-end and browser tests, then
#                   the unit tests and a subset of end-to-end tests on an ASan + UBSan build
#   make sanitize   every test against an ASan + UBSan build (build-san/)
#   make oomtest    every unit test once per N with the N-th allocation failing (ASan + UBSan)
#   make bench      relay throughput and small-want rate (docs/BENCHMARKS.md)
#   make fuzz       run every libFuzzer target for FUZZ_SECONDS each
#   make format     clang-format every C file in place

CC      ?= gcc
BUILD   ?= build
SAN     ?=
PKGS    := libzmq libwebsockets jansson openssl
WARN    := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Werror
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE $(WARN) -Icommon
ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS  += $(PKG_CFLAGS)

COMMON_SRC  := $(wildcard common/*.c)
HUB_SRC     := $(wildcard hub/*.c)
GW_SRC      := $(wildcard ws-gateway/*.c)
FCGI_SRC    := $(wildcard frontend-fcgi/*.c)
CTL_SRC     := tools/ephemeral-ctl.c
CLI_SRC     := $(wildcard cli/*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

# tests/unit/oom.c counts our code's allocations and fails the N-th (EPH_OOM_FAIL=N): the unit
# tests always link it; OOM=1 links it into the programs too (make oomtest's end-to-end flow).
OOM_WRAP  := -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup \
	     -Wl,--wrap=zmq_msg_init_size,--wrap=zmq_msg_init_data,--wrap=zmq_msg_copy
OOM_OBJ   := $(call obj,tests/unit/oom.c)
PROG_OOM  := $(if $(filter 1,$(OOM)),$(OOM_OBJ))
# test_map's stress test makes 10,000 allocations of the map alone (40 min of runs): left out of
# make oomtest unless OOM_BINS names it (the registry's sweep goes through the map's paths).
OOM_BINS  ?= test_!(map)

PROGRAMS := $(BUILD)/ephemeral-hub $(BUILD)/ephemeral-gateway $(BUILD)/ephemeral-fcgi \
	    $(BUILD)/ephemeral-ctl $(if $(CLI_SRC),$(BUILD)/ephemeral)

.PHONY: all deps run test sanitize oomtest bench fuzz format format-check clean unit
.PHONY: install uninstall
all: $(PROGRAMS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libcommon.a: $(call obj,$(COMMON_SRC))
	ar rcs $@ $^

$(BUILD)/ephemeral-hub: $(call obj,$(HUB_SRC)) $(PROG_OOM) $(BUILD)/libcommon.a
	$(CC) $(LDFLAGS) $(if $(PROG_OOM),$(OOM_WRAP)) -o $@ $^ $(PKG_LIBS)

$(BUILD)/ephemeral-gateway: $(call obj,$(GW_SRC)) $(PROG_OOM) $(BUILD)/libcommon.a
	$(CC) $(LDFLAGS) $(if $(PROG_OOM),$(OOM_WRAP)) -o $@ $^ $(PKG_LIBS) -lev

$(BUILD)/ephemeral-fcgi: $(call obj,$(FCGI_SRC)) $(BUILD)/libcommon.a
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lfcgi

$(BUILD)/ephemeral-ctl: $(call obj,$(CTL_SRC)) $(BUILD)/libcommon.a
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/ephemeral: $(call obj,$(CLI_SRC)) $(BUILD)/libcommon.a
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# Unit tests: tests/unit/test_<name>.c, each linked with the module it tests (everything but
# the program's main.c), cmocka, tests/unit/hubfx.c (a `struct hub` set up as main.c does), and
# tests/unit/oom.c, through which our code's allocations go (-Wl,--wrap) so that a test, or
# `make oomtest`, can make the N-th one fail.
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
HUBFX_OBJ := $(call obj,tests/unit/hubfx.c)
$(HUBFX_OBJ): CFLAGS += -Ihub
LIB_OBJS  := $(call obj,$(filter-out %/main.c,$(HUB_SRC) $(GW_SRC) $(FCGI_SRC) $(CLI_SRC))) \
	     $(HUBFX_OBJ)
# Tools the end-to-end tests run (outside $(BUILD)/tests, whose every file is a unit test).
TEST_TOOLS := $(patsubst tests/tools/%.c,$(BUILD)/test-tools/%,$(wildcard tests/tools/*.c))
unit: $(OOM_OBJ) $(UNIT_BINS) $(TEST_TOOLS)
$(BUILD)/test-tools/%: tests/tools/%.c $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)
$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJS) $(OOM_OBJ) $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Ihub -Iws-gateway -Ifrontend-fcgi -Itests/unit $(LDFLAGS) \
		$(OOM_WRAP) -o $@ \
		$^ $(PKG_LIBS) -lfcgi -lcmocka -lev

deps:
	@scripts/deps.sh

run: deps
	@$(MAKE) --no-print-directory all
	@scripts/run.sh

test: deps
	@$(MAKE) --no-print-directory all unit
	@scripts/test.sh

sanitize: deps
	@$(MAKE) --no-print-directory BUILD=build-san SAN=1 CC=clang all unit
	@BUILD=build-san scripts/test.sh unit fuzz e2e browser

oomtest: deps
	@$(MAKE) --no-print-directory BUILD=build-san SAN=1 CC=clang unit
	@$(MAKE) --no-print-directory BUILD=build-oom SAN=1 OOM=1 CC=clang all
	@BUILD=build-san OOM_FLOW_BUILD=build-oom OOM_BINS='$(OOM_BINS)' scripts/oomtest.sh

bench: deps
	@$(MAKE) --no-print-directory all
	@scripts/bench.sh

fuzz: deps
	@scripts/fuzz.sh run

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	@clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

# make install: programs, web pages, settings, web server configurations and systemd units, with
# the paths inside them set for PREFIX; DESTDIR stages it for a package. (scripts/install.sh)
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
DATADIR    ?= $(PREFIX)/share/ephemeral
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
UNITDIR    ?= $(PREFIX)/lib/systemd/system
DOCDIR     ?= $(PREFIX)/share/doc/ephemeral
MANDIR     ?= $(PREFIX)/share/man
INSTALL_VARS = DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)" BINDIR="$(BINDIR)" DATADIR="$(DATADIR)" \
	SYSCONFDIR="$(SYSCONFDIR)" UNITDIR="$(UNITDIR)" DOCDIR="$(DOCDIR)" MANDIR="$(MANDIR)" \
	BUILD="$(BUILD)"

install: all
	@$(INSTALL_VARS) scripts/install.sh

uninstall:
	@$(INSTALL_VARS) scripts/install.sh --uninstall

clean:
	rm -rf build build-san build-fuzz build-oom

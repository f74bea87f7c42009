# SPDX-License-Identifier: LGPL-2.1-or-later
# Haven's entry points: all (default), deps, check, unit, fuzz, system, bench,
# demo. One non-recursive build: libhaven.a, the programs, the cmocka tests. A
# second build tree (SANITIZE=1) holds the same code under ASan+UBSan; a third
# (build-fuzz/) holds libhaven and the libFuzzer targets, built by clang.

BUILD    ?= build
SANITIZE ?= 0
CC       ?= cc
NODE     ?= node

ifeq ($(SANITIZE),1)
  BUILD    := build-asan
  OPTFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
              -fno-sanitize-recover=all
  SANFLAGS := -fsanitize=address,undefined
else
  OPTFLAGS := -O2 -g
  SANFLAGS :=
endif

WARNFLAGS := -Wall -Wextra -Werror -Wformat-security -Wmissing-declarations \
             -Wshadow -Wno-unused-parameter
# Recursive (=) so pkg-config runs only when a rule needs it: `make deps`
# must work before the -dev packages exist.
pkgcflags = $(shell pkg-config --cflags $(1))
pkglibs   = $(shell pkg-config --libs $(1))

LIB_PKGS  := libsystemd json-c sqlite3 gnutls
CPPFLAGS  += -D_GNU_SOURCE -Idaemons/lib/include
CFLAGS    += -std=gnu11 $(OPTFLAGS) $(WARNFLAGS) -MMD -MP
LDFLAGS   += $(SANFLAGS) -Wl,--as-needed

.PHONY: all deps check unit sim fuzz system bench demo lab-down clean lint format webui webui-check
.DEFAULT_GOAL := all

# ==== libhaven ====

LIB_SRCS := $(wildcard daemons/lib/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
LIBHAVEN := $(BUILD)/libhaven.a

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(call pkgcflags,$(ALL_PKGS)) -c -o $@ $<

$(LIBHAVEN): $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

# ==== Programs ====
# Each program: NAME_SRCS (its folder) and NAME_PKGS (pkg-config modules on
# top of libhaven's).

PROGRAMS := haven-lab-init haven-domaind haven-bench-cpg haven-bench-domain haven-bench-store

haven-lab-init_SRCS := $(wildcard tests/lab/init/*.c)
haven-lab-init_PKGS :=

haven-bench-domain_SRCS := $(wildcard tests/bench/domain/*.c)
haven-bench-domain_PKGS :=

haven-bench-cpg_SRCS := $(wildcard tests/bench/cpg/*.c)
haven-bench-cpg_PKGS := libcpg

haven-bench-store_SRCS := tests/bench/store/main.c \
                          daemons/domaind/domaind-store.c \
                          daemons/domaind/domaind-schema.c
haven-bench-store_PKGS := nettle

haven-domaind_SRCS := $(wildcard daemons/domaind/*.c)
haven-domaind_PKGS := libcpg libvotequorum nettle libcrypt

PROGRAMS += havenctl
havenctl_SRCS := $(wildcard daemons/ctl/*.c)
havenctl_PKGS :=

# The fencing driver; --device-op runs the native APC driver (net-snmp) in a
# child process, fence-agents metadata is read with libxml2.
PROGRAMS += haven-fenced
haven-fenced_SRCS := $(wildcard daemons/fenced/*.c)
haven-fenced_PKGS := netsnmp libxml-2.0

# The native APC driver, run by haven-fenced once per operation: its own
# small program so that a child starts in a few milliseconds.
PROGRAMS += haven-fence-apc
haven-fence-apc_SRCS := daemons/fence-apc/main.c daemons/fenced/fenced-apc.c
haven-fence-apc_PKGS := netsnmp

# The lab's APC power strip: an embedded net-snmp master agent.
PROGRAMS += haven-pdusim
haven-pdusim_SRCS := $(wildcard tests/lab/pdusim/*.c)
haven-pdusim_PKGS := netsnmp-agent

# The API server. wslay ships no pkg-config file: NAME_LIBS adds plain -l.
PROGRAMS += haven-httpd
haven-httpd_SRCS := $(wildcard daemons/httpd/*.c)
haven-httpd_PKGS := libmicrohttpd libcrypt
haven-httpd_LIBS := -lwslay

# The VM controller: node agent (libvirt) and HA manager.
PROGRAMS += haven-vmd
haven-vmd_SRCS := $(wildcard daemons/vmd/*.c)
haven-vmd_PKGS := libvirt libxml-2.0 uuid libnl-route-3.0

# The HA scenario simulator and the placement benchmark: the decision core
# (daemons/vmd/vmd-decide.c, pure C) and no daemon around it.
PROGRAMS += haven-ha-sim
haven-ha-sim_SRCS := $(wildcard tests/ha-sim/*.c) daemons/vmd/vmd-decide.c
haven-ha-sim_PKGS :=

PROGRAMS += haven-bench-ha-place
haven-bench-ha-place_SRCS := tests/bench/ha-place/main.c daemons/vmd/vmd-decide.c
haven-bench-ha-place_PKGS :=

# The bare libmicrohttpd server the API benchmark compares httpd with.
PROGRAMS += haven-bench-api-bare
haven-bench-api-bare_SRCS := $(wildcard tests/bench/api/*.c)
haven-bench-api-bare_PKGS := libmicrohttpd

ALL_PKGS := $(LIB_PKGS) $(sort $(foreach p,$(PROGRAMS),$($(p)_PKGS))) cmocka

define program_template
$(BUILD)/bin/$(1): $$($(1)_SRCS:%.c=$(BUILD)/%.o) $(LIBHAVEN)
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(call pkglibs,$(LIB_PKGS) $$($(1)_PKGS)) $$($(1)_LIBS)
endef
$(foreach p,$(PROGRAMS),$(eval $(call program_template,$(p))))

PROGRAM_BINS := $(PROGRAMS:%=$(BUILD)/bin/%)

# ==== Unit tests (cmocka) ====

# Each tests/unit/test-NAME.c links libhaven, plus test-NAME_EXTRA (the
# daemon sources it tests, built as for their program) and test-NAME_PKGS
# (the pkg-config modules those need).

UNIT_SRCS  := $(wildcard tests/unit/test-*.c)
UNIT_NAMES := $(UNIT_SRCS:tests/unit/%.c=%)
UNIT_BINS  := $(UNIT_NAMES:%=$(BUILD)/tests/%)

test-domaind-store_EXTRA := daemons/domaind/domaind-store.c \
                            daemons/domaind/domaind-schema.c
test-domaind-store_PKGS  := nettle

test-domaind-cluster_EXTRA := $(filter-out daemons/domaind/main.c,$(wildcard daemons/domaind/*.c))
test-domaind-cluster_PKGS  := libcpg libvotequorum nettle libcrypt

test-ctl_EXTRA := $(filter-out daemons/ctl/main.c,$(wildcard daemons/ctl/*.c))
test-ctl_PKGS  :=

test-fenced-apc_EXTRA := daemons/fenced/fenced-apc.c
test-fenced-apc_PKGS  := netsnmp

test-fenced_EXTRA := $(filter-out daemons/fenced/main.c,$(wildcard daemons/fenced/*.c))
test-fenced_PKGS  := netsnmp libxml-2.0

test-fenced-agent_EXTRA := daemons/fenced/fenced-agent.c
test-fenced-agent_PKGS  := libxml-2.0

test-httpd_EXTRA := $(filter-out daemons/httpd/main.c,$(wildcard daemons/httpd/*.c))
test-httpd_PKGS  := libmicrohttpd libcrypt
test-httpd_LIBS  := -lwslay

test-vmd-decide_EXTRA := daemons/vmd/vmd-decide.c
test-vmd-decide_PKGS  :=

test-vmd-xml_EXTRA := daemons/vmd/vmd-xml.c
test-vmd-xml_PKGS  := libxml-2.0 uuid

test-vmd-rows_EXTRA := daemons/vmd/vmd-rows.c daemons/vmd/vmd-decide.c daemons/vmd/vmd-xml.c
test-vmd-rows_PKGS  := libxml-2.0 uuid

test-vmd-libvirt_EXTRA := daemons/vmd/vmd-libvirt.c daemons/vmd/vmd-xml.c
test-vmd-libvirt_PKGS  := libvirt libxml-2.0 uuid

test-vmd-net_EXTRA := daemons/vmd/vmd-net.c daemons/vmd/vmd-xml.c
test-vmd-net_PKGS  := libnl-route-3.0 libxml-2.0 uuid

ALL_PKGS += $(sort $(foreach t,$(UNIT_NAMES),$($(t)_PKGS)))

define unit_template
$(BUILD)/tests/$(1): $(BUILD)/tests/unit/$(1).o $$($(1)_EXTRA:%.c=$(BUILD)/%.o) $(LIBHAVEN)
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(call pkglibs,$(LIB_PKGS) $$($(1)_PKGS) cmocka) $$($(1)_LIBS)
endef
$(foreach t,$(UNIT_NAMES),$(eval $(call unit_template,$(t))))

# The native APC driver's tests run against the lab's PDU simulator; the
# API's fencing routes against the real haven-fenced and the simulator.
$(BUILD)/tests/test-fenced-apc: | $(BUILD)/bin/haven-pdusim
$(BUILD)/tests/test-httpd: | $(BUILD)/bin/haven-fenced $(BUILD)/bin/haven-fence-apc $(BUILD)/bin/haven-pdusim $(BUILD)/bin/haven-domaind
$(BUILD)/tests/test-ctl-vm: | $(BUILD)/bin/havenctl

all: $(PROGRAM_BINS) $(UNIT_BINS) webui

# ==== Web UI ====
# webui/: npm ci from the committed lock file (the only step that needs the
# npm registry), then an offline, reproducible build into webui/dist, which
# haven-httpd serves (--ui-dir; the lab's services.json points there).
NPM        ?= npm
WEBUI_SRCS := $(shell find webui/src webui/scripts -type f 2>/dev/null) webui/build.mjs webui/package.json

webui/node_modules/.package-lock.json: webui/package-lock.json webui/package.json
	cd webui && $(NPM) ci --no-audit --no-fund

webui/dist/index.html: webui/node_modules/.package-lock.json $(WEBUI_SRCS)
	cd webui && $(NPM) run build

webui: webui/dist/index.html

webui-check: webui
	cd webui && $(NPM) run check-i18n && $(NPM) run size

unit: $(UNIT_BINS)
	tools/run-unit $(UNIT_BINS)

# The HA decision core's scenarios in simulated time (docs/ha.md).
sim: $(BUILD)/bin/haven-ha-sim
	$(BUILD)/bin/haven-ha-sim tests/ha-sim/scenarios

# ==== Fuzz targets (libFuzzer) ====
# Each tests/fuzz/fuzz-NAME.c links against its own libhaven, built by clang
# with coverage and ASan+UBSan (any sanitizer report is a crash). `make fuzz`
# runs each for FUZZ_SECONDS on a fresh corpus in build-fuzz/corpus/NAME,
# seeded from tests/fuzz/corpus/NAME/; crash inputs go to
# build-fuzz/artifacts/. A crash, leak or hang fails the target.

FUZZ_BUILD   := build-fuzz
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 20
FUZZ_CFLAGS  := -std=gnu11 -g -O1 -fno-omit-frame-pointer \
                -fno-sanitize-recover=all $(WARNFLAGS) -MMD -MP
FUZZ_LIB_SAN := -fsanitize=fuzzer-no-link,address,undefined
FUZZ_SAN     := -fsanitize=fuzzer,address,undefined

FUZZ_LIBHAVEN := $(FUZZ_BUILD)/libhaven.a
FUZZ_SRCS     := $(wildcard tests/fuzz/fuzz-*.c)
FUZZ_NAMES    := $(FUZZ_SRCS:tests/fuzz/%.c=%)
FUZZ_BINS     := $(FUZZ_NAMES:%=$(FUZZ_BUILD)/tests/%)

$(FUZZ_BUILD)/daemons/lib/%.o: daemons/lib/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) $(FUZZ_LIB_SAN) \
	  $(call pkgcflags,$(LIB_PKGS)) -c -o $@ $<

$(FUZZ_LIBHAVEN): $(LIB_SRCS:%.c=$(FUZZ_BUILD)/%.o)
	@rm -f $@
	ar rcs $@ $^

# A target that fuzzes daemon code names it in fuzz-NAME_EXTRA (built with
# coverage like libhaven) and its pkg-config modules in fuzz-NAME_PKGS.
fuzz-fence-agent_EXTRA := daemons/fenced/fenced-agent.c
fuzz-fence-agent_PKGS  := libxml-2.0
fuzz-apc-answer_EXTRA  := daemons/fenced/fenced-apc.c
fuzz-apc-answer_PKGS   := netsnmp
fuzz-httpd_EXTRA := $(filter-out daemons/httpd/main.c,$(wildcard daemons/httpd/*.c))
fuzz-httpd_PKGS  := libmicrohttpd libcrypt
fuzz-httpd_LIBS  := -lwslay

FUZZ_PKGS := $(LIB_PKGS) $(sort $(foreach t,$(FUZZ_NAMES),$($(t)_PKGS)))

$(FUZZ_BUILD)/daemons/%.o: daemons/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) $(FUZZ_LIB_SAN) \
	  $(call pkgcflags,$(FUZZ_PKGS)) -c -o $@ $<

$(FUZZ_BUILD)/tests/fuzz/%.o: tests/fuzz/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) $(FUZZ_SAN) \
	  $(call pkgcflags,$(FUZZ_PKGS)) -c -o $@ $<

define fuzz_template
$(FUZZ_BUILD)/tests/$(1): $(FUZZ_BUILD)/tests/fuzz/$(1).o \
    $$($(1)_EXTRA:%.c=$(FUZZ_BUILD)/%.o) $(FUZZ_LIBHAVEN)
	$(FUZZ_CC) $(FUZZ_SAN) -o $$@ $$^ $$(call pkglibs,$(LIB_PKGS) $$($(1)_PKGS)) $$($(1)_LIBS)
endef
$(foreach t,$(FUZZ_NAMES),$(eval $(call fuzz_template,$(t))))

# One run per target, one after the other (libFuzzer prints its stats at
# the end of each). -timeout bounds a single input: a hang is a failure.
fuzz: $(FUZZ_BINS)
	@set -e; for t in $(FUZZ_NAMES); do \
	  corpus=$(FUZZ_BUILD)/corpus/$$t; \
	  rm -rf $$corpus; mkdir -p $$corpus $(FUZZ_BUILD)/artifacts; \
	  if [ -d tests/fuzz/corpus/$$t ]; then \
	    cp -R tests/fuzz/corpus/$$t/. $$corpus/; fi; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS)s"; \
	  $(FUZZ_BUILD)/tests/$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	    -print_final_stats=1 -artifact_prefix=$(FUZZ_BUILD)/artifacts/$$t- \
	    $$corpus; \
	done

-include $(shell find $(FUZZ_BUILD) -name '*.d' 2>/dev/null)

# ==== Entry points ====

deps:
	tools/deps

# deps first in its own make, so the rest sees the installed pkg-config files.
check:
	$(MAKE) deps
	$(MAKE) all
	$(MAKE) webui-check
	$(MAKE) unit
	$(MAKE) SANITIZE=1 unit
	$(MAKE) sim
	$(MAKE) SANITIZE=1 sim
	tests/lab/guest-image-test
	$(MAKE) fuzz
	$(MAKE) system

# The system tests' own npm packages (playwright-core for the browser tests).
tests/system/node_modules/.package-lock.json: tests/system/package-lock.json tests/system/package.json
	cd tests/system && $(NPM) ci --no-audit --no-fund

system: all tests/system/node_modules/.package-lock.json
	$(NODE) --test --test-concurrency=1 tests/system/

bench: all
	tools/run-bench $(ONLY)

demo:
	$(MAKE) deps
	$(MAKE) all
	tests/lab/haven-lab demo $(DEMO)

lab-down:
	tests/lab/haven-lab down

# cppcheck 2.10 cannot see __attribute__((cleanup)): the variables it takes
# for leaked are listed one by one in tools/cppcheck-suppressions.xml.
# "information" makes an entry there that no longer matches an error
# (unmatchedSuppression). System headers are not searched (slow, noisy):
# tools/cppcheck-json-c.cfg describes the json-c macros cppcheck needs.
lint:
	cppcheck --quiet --error-exitcode=1 \
	  --enable=warning,performance,portability,information \
	  --suppress=missingIncludeSystem \
	  --library=tools/cppcheck-json-c.cfg \
	  --suppress-xml=tools/cppcheck-suppressions.xml \
	  --inline-suppr -Idaemons/lib/include daemons tests/lab/init tests/lab/pdusim

format:
	clang-format -i $(LIB_SRCS) $(wildcard daemons/lib/include/haven/*.h)

clean:
	rm -rf build build-asan build-fuzz webui/dist

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

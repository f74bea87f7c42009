# SPDX-License-Identifier: LGPL-2.1-or-later
# Haven's entry points: all (default), deps, check, unit, system, bench, demo.
# One non-recursive build: libhaven.a, the programs, the cmocka tests. A
# second build tree (SANITIZE=1) holds the same code under ASan+UBSan.

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

LIB_PKGS  := libsystemd json-c sqlite3
CPPFLAGS  += -D_GNU_SOURCE -Idaemons/lib/include
CFLAGS    += -std=gnu11 $(OPTFLAGS) $(WARNFLAGS) -MMD -MP
LDFLAGS   += $(SANFLAGS)

.PHONY: all deps check unit system bench demo lab-down clean lint format
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

PROGRAMS := haven-lab-init

haven-lab-init_SRCS := $(wildcard tests/lab/init/*.c)
haven-lab-init_PKGS :=

ALL_PKGS := $(LIB_PKGS) $(sort $(foreach p,$(PROGRAMS),$($(p)_PKGS))) cmocka

define program_template
$(BUILD)/bin/$(1): $$($(1)_SRCS:%.c=$(BUILD)/%.o) $(LIBHAVEN)
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(call pkglibs,$(LIB_PKGS) $$($(1)_PKGS))
endef
$(foreach p,$(PROGRAMS),$(eval $(call program_template,$(p))))

PROGRAM_BINS := $(PROGRAMS:%=$(BUILD)/bin/%)

# ==== Unit tests (cmocka) ====

UNIT_SRCS := $(wildcard tests/unit/test-*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIBHAVEN)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(call pkglibs,$(LIB_PKGS) cmocka)

all: $(PROGRAM_BINS) $(UNIT_BINS)

unit: $(UNIT_BINS)
	tools/run-unit $(UNIT_BINS)

# ==== Entry points ====

deps:
	tools/deps

# deps first in its own make, so the rest sees the installed pkg-config files.
check:
	$(MAKE) deps
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) SANITIZE=1 unit
	$(MAKE) system

system: all
	$(NODE) --test --test-concurrency=1 tests/system/

bench: all
	tools/run-bench $(ONLY)

demo:
	$(MAKE) deps
	$(MAKE) all
	tests/lab/haven-lab demo $(DEMO)

lab-down:
	tests/lab/haven-lab down

lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --inline-suppr -Idaemons/lib/include daemons tests/lab/init

format:
	clang-format -i $(LIB_SRCS) $(wildcard daemons/lib/include/haven/*.h)

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

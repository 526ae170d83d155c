# leakwatch build: clang -> .bpf.o -> bpftool skeleton -> one binary.
#
#   make            build build/leakwatch
#   make run        install what is missing, build, run the agent (root)
#   make test       install what is missing, build, run every test (root)
#   make deps       install build and test dependencies (Debian 12, root)
#   make bench      classifier, capture, gate and blocking benchmarks (tools/), root
#   make asan       unit tests under AddressSanitizer + UBSan
#   make fuzz       libFuzzer targets (clang), short run of each
#   make format     clang-format the C sources
#   make install    binary, man page, docs, systemd unit, /etc/leakwatch (files
#                   that are absent only), /var/lib/leakwatch; DESTDIR, PREFIX
#   make uninstall  undo make install (see the target for what stays)
#   make deb        build/leakwatch_VERSION_ARCH.deb from the built binary

BUILD   ?= build
ARCH    ?= $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
CLANG   ?= clang
BPFTOOL ?= bpftool
CC      ?= cc
STRIP   ?= $(shell command -v llvm-strip 2>/dev/null)

# OPT and SAN (sanitizers, make asan) can be set on the command line without
# dropping the flags the build needs
OPT     ?= -O2 -g
CFLAGS  := $(OPT) $(SAN) -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter \
	   -Iuser -Ibpf -I$(BUILD) -I/usr/include/hs -MMD -MP
LDLIBS  := -lbpf -lelf -lcapstone -lz -lyaml -lhs -lnghttp2 -ljansson -lsqlite3 -lcrypto -lm -pthread

BPF_CFLAGS := -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) \
	      -Ivmlinux/$(ARCH) -Ibpf -Wall -Werror

BPF_SRCS  := $(wildcard bpf/*.bpf.c)
BPF_OBJS  := $(patsubst bpf/%.bpf.c,$(BUILD)/%.bpf.o,$(BPF_SRCS))
SKELS     := $(patsubst bpf/%.bpf.c,$(BUILD)/%.skel.h,$(BPF_SRCS))
USER_SRCS := $(shell find user -name '*.c' | sort)
USER_OBJS := $(patsubst user/%.c,$(BUILD)/obj/%.o,$(USER_SRCS))
# everything but main: linked into unit tests as well
LIB_OBJS  := $(filter-out $(BUILD)/obj/main.o,$(USER_OBJS))

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))

.PHONY: all clean deps run test unit bench asan fuzz format install uninstall deb FORCE \
	_deps _run _test _bench
.DEFAULT_GOAL := all

all: $(BUILD)/leakwatch

$(BUILD)/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.h) vmlinux/$(ARCH)/vmlinux.h | $(BUILD)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@
	$(if $(STRIP),$(STRIP) -g $@)

$(BUILD)/%.skel.h: $(BUILD)/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $*_bpf > $@.tmp && mv $@.tmp $@

# user objects may include any skeleton
$(BUILD)/obj/%.o: user/%.c $(SKELS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# the built-in rule pack is embedded with .incbin (user/classify/builtin.c)
$(BUILD)/obj/classify/builtin.o: policies/rules/builtin.yaml

# benchmark floor: empty probes on the same call sites (tools/bench)
$(BUILD)/empty.bpf.o: tools/bench/empty.bpf.c vmlinux/$(ARCH)/vmlinux.h | $(BUILD)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/empty_probes: tools/bench/empty_probes.c $(BUILD)/empty.skel.h $(BUILD)/obj/capture/elfsym.o
	$(CC) $(CFLAGS) $< $(BUILD)/obj/capture/elfsym.o -o $@ $(LDFLAGS) $(LDLIBS)

$(BUILD)/classify_bench: tools/bench/classify_bench.c $(LIB_OBJS)
	$(CC) $(CFLAGS) $< $(LIB_OBJS) -o $@ $(LDFLAGS) $(LDLIBS)

$(BUILD)/leakwatch: $(USER_OBJS)
	$(CC) $(SAN) $^ -o $@ $(LDFLAGS) $(LDLIBS)

$(BUILD):
	mkdir -p $@

# `leakwatch version` and the package version: tools/version.sh. The stamp
# changes only with the version, so only main.o follows it.
ifeq ($(origin VERSION),undefined)
VERSION := $(shell tools/version.sh)
endif
$(BUILD)/version: FORCE | $(BUILD)
	@echo '$(VERSION)' | cmp -s - $@ || echo '$(VERSION)' > $@
$(BUILD)/obj/main.o: $(BUILD)/version
$(BUILD)/obj/main.o: CFLAGS += -DLW_VERSION='"$(VERSION)"'

# the man page is docs/reference.md
$(BUILD)/leakwatch.8: docs/reference.md tools/md2man.py $(BUILD)/version
	python3 tools/md2man.py --version '$(VERSION)' \
		--date "$$(git log -1 --format=%cs 2>/dev/null || date -u +%F)" < $< > $@.tmp
	mv $@.tmp $@

# ---- tests ---------------------------------------------------------------
CMOCKA_LIBS := -lcmocka

$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(LIB_OBJS) -o $@ $(LDFLAGS) $(LDLIBS) $(CMOCKA_LIBS)

unit: $(UNIT_BINS)
	@for t in $(UNIT_BINS); do $$t || exit 1; done

# AddressSanitizer + UBSan build of the unit tests, in its own directory
asan:
	$(MAKE) BUILD=$(BUILD)/asan OPT="-O1 -g" \
		SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" unit

# libFuzzer: every fuzz/fuzz_*.c against the library objects, all built with
# clang and ASan/UBSan in their own directory; FUZZ_SECONDS per target.
FUZZ_SRCS    := $(wildcard fuzz/fuzz_*.c)
FUZZ_SECONDS ?= 10
fuzz:
	$(MAKE) BUILD=$(BUILD)/fuzz CC=clang OPT="-O1 -g" \
		SAN="-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer" fuzz-bins
	@for f in $(patsubst fuzz/%.c,%,$(FUZZ_SRCS)); do \
		mkdir -p $(BUILD)/fuzz/corpus/$$f; \
		echo "fuzz $$f: $(FUZZ_SECONDS)s"; \
		$(BUILD)/fuzz/bin/$$f -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -rss_limit_mb=2048 \
			$(BUILD)/fuzz/corpus/$$f $(wildcard fuzz/seeds/$$f) >$(BUILD)/fuzz/$$f.log 2>&1 || \
			{ tail -40 $(BUILD)/fuzz/$$f.log; exit 1; }; \
		tail -1 $(BUILD)/fuzz/$$f.log; \
	done

FUZZ_BINS := $(patsubst fuzz/%.c,$(BUILD)/bin/%,$(FUZZ_SRCS))
fuzz-bins: $(FUZZ_BINS)
$(BUILD)/bin/fuzz_%: fuzz/fuzz_%.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer $< $(LIB_OBJS) -o $@ $(LDFLAGS) $(LDLIBS)

format:
	clang-format -i $$(find user bpf tests/unit tools fuzz -name '*.[ch]' -not -name vmlinux.h)

clean:
	rm -rf $(BUILD)

# ---- install, package -----------------------------------------------------
# Root only for what it writes: `make install` into / needs it, into a
# DESTDIR you own it does not, `make deb` never does.
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
DOCDIR  ?= $(PREFIX)/share/doc/leakwatch
# Debian 12 keeps packaged units in /lib (usrmerge maps it to /usr/lib);
# /usr/local/lib/systemd/system is on systemd's search path for the rest
UNITDIR ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)
# compiled into the binary (user/cmd/agentconf.h, user/act/fpkey.h), so
# PREFIX does not move them
CONFDIR  := /etc/leakwatch
STATEDIR := /var/lib/leakwatch
# the policy set `make run` uses, but the built-in rule pack, which is in
# the binary: a copy in /etc would override the rules of every later
# version with this version's
POLICY_FILES := $(sort $(wildcard policies/*.yaml policies/*.yml policies/lists/*.yaml \
	policies/lists/*.yml) $(filter-out policies/rules/builtin.yaml,$(wildcard \
	policies/rules/*.yaml policies/rules/*.yml)))
# source:destination under CONFDIR
CONF_FILES := deploy/leakwatch.yaml:leakwatch.yaml $(foreach f,$(POLICY_FILES),$(f):$(f))
DOC_FILES := README.md $(sort $(wildcard docs/*.md))

# Configuration is installed only where absent: a reinstall never replaces
# an administrator's edits (the package's conffiles do the same through dpkg).
install: all $(BUILD)/leakwatch.8
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(DOCDIR) \
		$(DESTDIR)$(UNITDIR)
	install -m 0755 $(BUILD)/leakwatch $(DESTDIR)$(BINDIR)/leakwatch
	install -m 0644 $(BUILD)/leakwatch.8 $(DESTDIR)$(MANDIR)/man8/leakwatch.8
	install -m 0644 $(DOC_FILES) $(DESTDIR)$(DOCDIR)/
	sed 's|@BINDIR@|$(BINDIR)|g' deploy/systemd/leakwatch.service.in \
		> $(DESTDIR)$(UNITDIR)/leakwatch.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/leakwatch.service
	install -d -m 0700 $(DESTDIR)$(STATEDIR)
	@set -e; for f in $(CONF_FILES); do \
		src=$${f%%:*}; dst='$(DESTDIR)$(CONFDIR)'/$${f#*:}; \
		if [ -e "$$dst" ]; then echo "kept $$dst: it exists (this version's: $$src)"; \
		else echo "install $$src $$dst"; install -D -m 0644 "$$src" "$$dst"; fi; \
	done
	@if [ -z '$(DESTDIR)' ] && [ -d /run/systemd/system ]; then \
		systemctl daemon-reload; \
		echo "start it with: systemctl enable --now leakwatch"; \
	fi

# Removes what install wrote. Configuration files go only when unchanged;
# /var/lib/leakwatch only when empty: the alert store and the fingerprint
# key are the record of what leaked, and uninstalling software must not
# destroy it (delete the directory yourself).
uninstall:
	@if [ -z '$(DESTDIR)' ] && [ -d /run/systemd/system ]; then \
		systemctl disable --now leakwatch.service 2>/dev/null || true; \
	fi
	rm -f $(DESTDIR)$(BINDIR)/leakwatch $(DESTDIR)$(MANDIR)/man8/leakwatch.8 \
		$(DESTDIR)$(UNITDIR)/leakwatch.service \
		$(addprefix $(DESTDIR)$(DOCDIR)/,$(notdir $(DOC_FILES)))
	@rmdir $(DESTDIR)$(DOCDIR) 2>/dev/null || true
	@set -e; for f in $(CONF_FILES); do \
		src=$${f%%:*}; dst='$(DESTDIR)$(CONFDIR)'/$${f#*:}; \
		if cmp -s "$$src" "$$dst"; then echo "rm $$dst"; rm -f "$$dst"; \
		elif [ -e "$$dst" ]; then echo "kept $$dst: changed since install"; fi; \
	done
	@for d in $$(printf '%s\n' $(sort $(dir $(POLICY_FILES))) | sort -r) ''; do \
		rmdir '$(DESTDIR)$(CONFDIR)'/$$d 2>/dev/null || true; \
	done
	@if [ -d '$(DESTDIR)$(STATEDIR)' ] && ! rmdir '$(DESTDIR)$(STATEDIR)' 2>/dev/null; then \
		echo "kept $(DESTDIR)$(STATEDIR): the alert store and fingerprint key"; \
	fi
	@if [ -z '$(DESTDIR)' ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi

# A binary package from the built tree: make install into a staging root,
# then tools/mkdeb.sh (dpkg-deb; no root, no debian/ source package). The
# package and its staging tree go to DEBDIR.
DEBDIR ?= $(BUILD)
deb: all $(BUILD)/leakwatch.8
	rm -rf $(DEBDIR)/deb $(DEBDIR)/leakwatch_*.deb
	$(MAKE) --no-print-directory install DESTDIR=$(abspath $(DEBDIR))/deb/debian/leakwatch \
		PREFIX=/usr VERSION='$(VERSION)' >/dev/null
	tools/mkdeb.sh $(DEBDIR)/deb/debian/leakwatch '$(VERSION)' $(DEBDIR)

# ---- targets that need root ------------------------------------------------
# As a normal user they re-run themselves through sudo, or say why they cannot.
deps run test bench:
	@if [ "$$(id -u)" = 0 ]; then \
		$(MAKE) --no-print-directory _$@; \
	elif command -v sudo >/dev/null 2>&1; then \
		exec sudo $(MAKE) --no-print-directory _$@; \
	else \
		echo "make $@: needs root (it loads eBPF programs) and sudo is not installed;" \
		     "run 'make $@' as root" >&2; exit 1; \
	fi

_deps:
	tools/deps.sh

_run: _deps
	$(MAKE) --no-print-directory all
	$(BUILD)/leakwatch run --policy policies

_test: _deps
	$(MAKE) --no-print-directory all $(UNIT_BINS)
	tests/run.sh

_bench: _deps
	$(MAKE) --no-print-directory all $(BUILD)/empty_probes $(BUILD)/classify_bench
	tools/bench-classify.sh
	tools/bench-capture.sh
	tools/bench-gates.sh
	tools/bench-block.sh

-include $(USER_OBJS:.o=.d) $(UNIT_BINS:=.d)

# hutch: plain Makefile with pkg-config.  Every module folder's *.c is part of
# the program; tests/unit/t_*.c are unit tests linked against the same objects.
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
LIBEXECDIR ?= $(PREFIX)/libexec/hutch
DATADIR ?= $(PREFIX)/share/hutch
MANDIR  ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  ?= $(PREFIX)/share/zsh/site-functions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
DESTDIR ?=
CC      ?= cc
CLANG   ?= clang
VERSION := 0.1.0

PKGS    := jansson yaml-0.1 libcurl libmnl libnftnl libcap libcrypto zlib liblzma libzstd
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
# libcurl and libcrypto: headers only, dlopen()ed on first use (src/lazy.h)
LAZY_PKGS  := libcurl libcrypto
PKG_LIBS   := $(shell pkg-config --libs $(filter-out $(LAZY_PKGS),$(PKGS)))

CFLAGS  ?= -O2 -g
WARN    := -std=c17 -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes \
           -Wmissing-prototypes -Wswitch-enum
HARDEN  := -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE
ifneq ($(WERROR)$(CI),)
WARN    += -Werror
endif
CPPFLAGS += -D_GNU_SOURCE -I. -DHUTCH_VERSION='"$(VERSION)"' -DHUTCH_DATADIR='"$(DATADIR)"' \
            -DHUTCH_LIBEXECDIR='"$(LIBEXECDIR)"'
ALL_CFLAGS = $(WARN) $(HARDEN) $(CFLAGS) $(PKG_CFLAGS)
LDFLAGS += -pie -Wl,-z,relro,-z,now

B       := build
MODULES := src qmp net share images
MAINS   := src/main.c src/helper_main.c
LIB_SRC := $(filter-out $(MAINS),$(foreach m,$(MODULES),$(wildcard $(m)/*.c)))
LIB_OBJ := $(LIB_SRC:%.c=$(B)/%.o)
UNIT_SRC := $(wildcard tests/unit/t_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(B)/fuzz/%)
HELPER_SRC := $(wildcard tests/helpers/*.c)
HELPER_BIN := $(HELPER_SRC:tests/helpers/%.c=$(B)/tests/%)

.PHONY: all check check-load unit fuzz fuzz-run bench demo install uninstall clean asan analyze format deps

all: hutch hutch-helper hutch.1

# the man page comes from the verb table (src/cmd.c), like `hutch help VERB`
hutch.1: hutch
	./hutch __man > $@.tmp && mv $@.tmp $@

hutch: $(B)/src/main.o $(LIB_OBJ)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

# The privileged helper (net/privd.h): its main plus what the linker pulls
# out of the library, so it holds only the modules its operations use.
hutch-helper: $(B)/src/helper_main.o $(B)/libhutch.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -Wl,--gc-sections -o $@ $< $(B)/libhutch.a $(PKG_LIBS)

$(B)/libhutch.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(B)/tests/%: tests/unit/%.c $(B)/libhutch.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(B)/libhutch.a $(PKG_LIBS)

$(B)/tests/%: tests/helpers/%.c $(B)/libhutch.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(B)/libhutch.a $(PKG_LIBS)

# libFuzzer targets: the module sources are compiled once with the fuzzer's
# instrumentation into $(B)/fuzz-obj, then each fuzz_*.c links against them.
FUZZ_FLAGS := -g -O1 -fsanitize=fuzzer-no-link,address,undefined
FUZZ_OBJ := $(LIB_SRC:%.c=$(B)/fuzz-obj/%.o)
$(B)/fuzz-obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CLANG) $(CPPFLAGS) -std=c17 $(FUZZ_FLAGS) $(PKG_CFLAGS) -MMD -MP -c -o $@ $<
$(B)/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJ)
	@mkdir -p $(dir $@)
	$(CLANG) $(CPPFLAGS) -std=c17 -g -O1 -fsanitize=fuzzer,address,undefined $(PKG_CFLAGS) -o $@ $< $(FUZZ_OBJ) $(PKG_LIBS)

unit: $(UNIT_BIN) $(HELPER_BIN)
fuzz: $(FUZZ_BIN)

.PRECIOUS: $(FUZZ_OBJ)

# Short fuzz runs (FUZZ_SECONDS each) over every target; corpora in tests/fuzz/corpus/<name>.
FUZZ_SECONDS ?= 20
fuzz-run: fuzz
	@set -e; for f in $(FUZZ_BIN); do n=$$(basename $$f); \
	  mkdir -p $(B)/fuzz/corpus-$$n; \
	  seeds=tests/fuzz/corpus/$$n; [ -d $$seeds ] || seeds=; \
	  echo "fuzz: $$n for $(FUZZ_SECONDS)s"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -max_len=4096 $(B)/fuzz/corpus-$$n $$seeds >$(B)/fuzz/$$n.log 2>&1 \
	    || { tail -40 $(B)/fuzz/$$n.log; exit 1; }; done

# Long runs: every target for FUZZ_LONG_SECONDS (10 minutes) in turn, the
# corpus kept in build/fuzz/corpus-<name> between runs, crashes under build/fuzz/.
FUZZ_LONG_SECONDS ?= 600
.PHONY: fuzz-long
fuzz-long: fuzz
	@set -e; for f in $(FUZZ_BIN); do n=$$(basename $$f); \
	  mkdir -p $(B)/fuzz/corpus-$$n; \
	  seeds=tests/fuzz/corpus/$$n; [ -d $$seeds ] || seeds=; \
	  echo "fuzz-long: $$n for $(FUZZ_LONG_SECONDS)s"; \
	  $$f -max_total_time=$(FUZZ_LONG_SECONDS) -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
	    -artifact_prefix=$(B)/fuzz/$$n- $(B)/fuzz/corpus-$$n $$seeds >$(B)/fuzz/$$n-long.log 2>&1 \
	    || { tail -40 $(B)/fuzz/$$n-long.log; exit 1; }; \
	  grep -o 'Done [0-9]* runs' $(B)/fuzz/$$n-long.log; done

# tests/run: the tiers in parallel (JOBS = cores + 1), one log per test in
# build/test-logs; TESTS='tests/net/*' for some, EXCLUDE=... to leave some out
check: hutch hutch-helper hutch.1 unit
	bash tests/run

# the same with every core kept busy beside it (stress-ng --cpu N), as CI does
# for the network and VM tiers (.ci/run)
check-load: hutch hutch-helper hutch.1 unit
	bash tests/lib/under-load.sh bash tests/run

bench: hutch hutch-helper unit
	bash tests/bench/run

demo:
	bash scripts/demo.sh

asan:
	$(MAKE) B=build-asan CFLAGS='-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer' \
	  LDFLAGS='-fsanitize=address,undefined' HARDEN='-fstack-protector-strong -fPIE' hutch hutch-helper unit

analyze:
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability --inline-suppr \
	  -D_GNU_SOURCE -I. $(MODULES)
	clang-tidy --quiet $(LIB_SRC) src/main.c -- $(CPPFLAGS) -std=c17 $(PKG_CFLAGS)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

# The helper is installed without privileges; `sudo hutch setup` gives it
# its group, mode and file capabilities (see README).
install: hutch hutch-helper hutch.1
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR)/recipes $(DESTDIR)$(LIBEXECDIR) \
	  $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(FISHCOMPDIR)
	install -m 0755 hutch $(DESTDIR)$(BINDIR)/hutch
	install -m 0755 hutch-helper $(DESTDIR)$(LIBEXECDIR)/hutch-helper
	install -m 0644 hutch.1 $(DESTDIR)$(MANDIR)/man1/hutch.1
	./hutch completion bash > $(DESTDIR)$(BASHCOMPDIR)/hutch
	./hutch completion zsh > $(DESTDIR)$(ZSHCOMPDIR)/_hutch
	./hutch completion fish > $(DESTDIR)$(FISHCOMPDIR)/hutch.fish
	if [ -d images/recipes ]; then cp -r images/recipes/. $(DESTDIR)$(DATADIR)/recipes/; fi

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/hutch $(DESTDIR)$(LIBEXECDIR)/hutch-helper \
	  $(DESTDIR)$(LIBEXECDIR)/hutch-helper.conf $(DESTDIR)$(MANDIR)/man1/hutch.1 \
	  $(DESTDIR)$(BASHCOMPDIR)/hutch $(DESTDIR)$(ZSHCOMPDIR)/_hutch $(DESTDIR)$(FISHCOMPDIR)/hutch.fish
	-rmdir $(DESTDIR)$(LIBEXECDIR)
	rm -rf $(DESTDIR)$(DATADIR)

deps:
	bash scripts/install-deps.sh

clean:
	rm -rf $(B) build-asan hutch hutch-helper hutch.1

-include $(LIB_OBJ:.o=.d) $(B)/src/main.d $(B)/src/helper_main.d

# Test guests built from Debian packages by images/recipes/ (cached: the
# recipes do nothing when their output is up to date).
.PHONY: tiny debian-image
tiny:
	@bash images/recipes/tiny.sh $(B)/guests/tiny

debian-image:
	@bash images/recipes/debian-12.sh $(B)/guests/debian-12

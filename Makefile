# kotak: one static binary.  OpenWrt passes CC/CFLAGS/LDFLAGS in the
# environment, Buildroot on the command line; both work because the flags
# kotak itself needs live in KOTAK_CFLAGS/KOTAK_LDFLAGS.
VERSION   := 0.1.0
, := ,
PREFIX    ?= /usr
DESTDIR   ?=
PYTHON    ?= /usr/bin/python3
DEFCONFIG ?= configs/defconfig
export KCONFIG_CONFIG := .config

# Debian's cross compilers link glibc: for their triples (and no explicit CC)
# kotak is built with the musl toolchain that scripts/toolchain.sh makes from
# Debian's sources, through `make cross` (mk/cross.mk), and copied to ./kotak.
DEB_ARCH_mips-linux-gnu-      := mips
DEB_ARCH_mipsel-linux-gnu-    := mipsel
DEB_ARCH_arm-linux-gnueabihf- := arm
DEB_ARCH := $(if $(filter default,$(origin CC)),$(DEB_ARCH_$(CROSS_COMPILE)))

# Compiler: an explicit CC wins; else $(CROSS_COMPILE)gcc; else musl-gcc
# when installed (static musl is the product), else cc.
ifeq ($(origin CC),default)
  ifneq ($(CROSS_COMPILE),)
    CC := $(CROSS_COMPILE)gcc
  else
    CC := $(if $(shell command -v musl-gcc 2>/dev/null),musl-gcc,cc)
  endif
endif
STRIP ?= $(CROSS_COMPILE)strip
# gcc-ar: an archive of LTO objects needs the compiler's plugin for its index
ifeq ($(origin AR),default)
  AR := $(if $(shell command -v $(CROSS_COMPILE)gcc-ar 2>/dev/null),$(CROSS_COMPILE)gcc-ar,$(CROSS_COMPILE)ar)
endif

CFLAGS  ?= -Os -fno-asynchronous-unwind-tables -fno-unwind-tables
LDFLAGS ?=
# kotak's own objects are built -Os whatever CFLAGS says (Buildroot passes
# -O2, which made the binary 340,796 bytes): size is the product.  A
# packager who wants another level on purpose: make KOTAK_OPT=-O2.
KOTAK_OPT ?= -Os
# What kotak needs whatever the packager passes: static, sections collected.
KOTAK_CFLAGS  := -std=c99 -D_DEFAULT_SOURCE -D_XOPEN_SOURCE=700 -D_FILE_OFFSET_BITS=64 -DKOTAK_VERSION=\"$(VERSION)\" \
		 -Wall -Wextra -Wundef -Wno-unused-parameter -Wno-format-truncation -Werror=incompatible-pointer-types \
		 -ffunction-sections -fdata-sections -Ibuild -Isrc
KOTAK_STATIC ?= -static
KOTAK_LDFLAGS := $(KOTAK_STATIC) -Wl,--gc-sections -Wl,-z,noseparate-code -Wl,--build-id=none \
		 -Wl,-z,common-page-size=64 -Wl,-z,norelro
# common-page-size=64: no 0-4 KiB hole before the data segment (the file size
# jumped by up to 4 KiB as code changed).  norelro, after the packager's
# LDFLAGS: OpenWrt passes -z relro, which in a static binary only pads the
# file to the next 64 KiB boundary on MIPS (32 KB): neither musl nor uClibc-ng
# applies PT_GNU_RELRO outside their dynamic loaders, so it protected nothing.

# Link-time optimisation of kotak's objects and BearSSL (LTO=n: off; auto:
# when the compiler can, tried once on a one-line program).  One partition:
# the smallest code (-608 bytes on mips against the default partitioning)
# and a reproducible link.  Measured on mips musl: 296,436 -> 287,412 bytes.
# BearSSL stays out of it when the packager builds kotak's objects as MIPS16:
# LTO would turn BearSSL into MIPS16 too (README "Cross builds").
LTO ?= auto
lto_flags = $(if $(filter-out auto,$(LTO)),$(if $(filter y,$(LTO)),-flto -flto-partition=one),$(shell \
	printf 'int main(void){return 0;}\n' | $(1) -flto -static -x c - -o /dev/null 2>/dev/null && echo -flto -flto-partition=one))
KOTAK_LTO = $(eval KOTAK_LTO := $$(call lto_flags,$$(CC)))$(KOTAK_LTO)
# MIPS16=1: kotak's own objects as MIPS16e (-43 KiB of code on mips musl;
# the protocol paths show no measurable cost), BearSSL MIPS32 still.  What
# OpenWrt's USE_MIPS16 does through CFLAGS; kotak's own cross builds turn it
# on for MIPS targets (mk/cross.mk), Buildroot's package when asked.  Only
# for a CPU with the MIPS16e ASE (24K, 34K, 74K, 1004K cores: most MIPS
# routers); without it IMAP and RPC do not fit in 300 KiB (README "Size").
ifeq ($(MIPS16),1)
  override CFLAGS += -mips16 -minterlink-mips16
endif
# BearSSL: MIPS32 whatever the packager's CFLAGS say (crypto speed: MIPS16
# executes 1.5-2.1x the instructions); LTO only if kotak is not MIPS16.
BEARSSL_CFLAGS = $(filter-out -mips16,$(CFLAGS))
BEARSSL_LTO = $(if $(filter -mips16,$(CFLAGS)),,$(KOTAK_LTO))
# MIPS: a static binary needs no PIC; without -mno-abicalls every call and
# global goes through the GOT (measured: 317,024 -> 285,608 bytes on mips musl).
# A packager may add -mips16 (OpenWrt's USE_MIPS16) for about 50 KiB more.
TARGET_FLAGS_FOR = $(if $(findstring mips,$(1)),-mno-abicalls -fno-pic)
KOTAK_TFLAGS := $(if $(KOTAK_STATIC),$(call TARGET_FLAGS_FOR,$(shell $(CC) -dumpmachine 2>/dev/null)))

SRCS := $(sort $(wildcard src/*.c))
LIBSRCS := $(filter-out src/main.c,$(SRCS))
OBJS := $(SRCS:src/%.c=build/%.o)
LIBOBJS := $(LIBSRCS:src/%.c=build/%.o)
UNITS := $(patsubst tests/unit/%.c,build/%,$(wildcard tests/unit/test_*.c))

all: kotak

# TLS: BearSSL from source (never committed), built with the same compiler
# into build/bearssl; BEARSSL_SRC names a packager's unpacked tree.  A
# packager's own BearSSL (Buildroot's package): BEARSSL_INC=its headers
# BEARSSL_LIB=its libbearssl.a (or -lbearssl with KOTAK_STATIC=).
TLS := $(shell grep -q '^CONFIG_TLS=y' .config 2>/dev/null && echo y || \
	 { test -f .config || grep -q '^CONFIG_TLS=y' $(DEFCONFIG) && echo y; })
ifeq ($(TLS),y)
BEARSSL_SRC ?= $(eval BEARSSL_SRC := $$(shell scripts/bearssl.sh src))$(BEARSSL_SRC)
BEARSSL_INC ?= $(BEARSSL_SRC)/inc
BEARSSL_LIB ?= build/bearssl/libbearssl.a
KOTAK_CFLAGS += -isystem $(BEARSSL_INC)
endif

# build/cc.stamp names the compiler the objects in build/ were made with:
# switching compilers (or to a Debian triple) rebuilds instead of mixing.
CCSTAMP := build/cc.stamp
CCID    := $(CC) $(DEB_ARCH) $(KOTAK_TFLAGS) $(CFLAGS) $(KOTAK_OPT) LTO=$(LTO) $(KOTAK_CFLAGS)
$(shell mkdir -p build; echo '$(CCID)' | cmp -s - $(CCSTAMP) || echo '$(CCID)' > $(CCSTAMP))

ifneq ($(DEB_ARCH),)
kotak: $(CCSTAMP) build/config.h FORCE
	@$(MAKE) --no-print-directory cross ARCH=$(DEB_ARCH) CROSS_COMPILE=
	cp build-$(DEB_ARCH)/kotak $@
	@echo '$(CCID)' > $(CCSTAMP)	# the sub-make wrote the host's id
else
kotak: $(OBJS) $(filter-out -l%,$(BEARSSL_LIB)) $(CCSTAMP)
	$(CC) $(KOTAK_TFLAGS) $(CFLAGS) $(KOTAK_OPT) $(KOTAK_LTO) $(LDFLAGS) $(KOTAK_LDFLAGS) -o $@ $(OBJS) $(BEARSSL_LIB)
endif
FORCE:

# scripts/fmtcheck.py first: every printf format must be one src/libk.c's
# formatter handles (any libc's does too), else the build stops here
# (--libk when the config has LIBK: no source may bypass src/libk.h).  A
# packager's build without python3 skips it: kotak's own builds and CI check.
FMTCHECK = $(if $(wildcard $(PYTHON)),$(PYTHON) scripts/fmtcheck.py $$(grep -qs 'define ENABLE_LIBK 1' $(1) && echo --libk) -,cat >/dev/null)
build/%.o: src/%.c build/config.h $(wildcard src/*.h) $(CCSTAMP) | build
	@$(CC) $(KOTAK_CFLAGS) $(KOTAK_TFLAGS) $(CFLAGS) -E $< | $(call FMTCHECK,build/config.h)
	$(CC) $(KOTAK_CFLAGS) $(KOTAK_TFLAGS) $(CFLAGS) $(KOTAK_OPT) $(KOTAK_LTO) -c -o $@ $<

build/bearssl/libbearssl.a: $(CCSTAMP) | build
	@rm -rf build/bearssl
	BEARSSL_SRC=$(BEARSSL_SRC) scripts/bearssl.sh lib build/bearssl "$(CC)" "$(AR)" $(KOTAK_TFLAGS) $(BEARSSL_CFLAGS) $(BEARSSL_LTO) -ffunction-sections -fdata-sections

build:
	@mkdir -p build

# Kconfig: the first build seeds .config from the committed defconfig
# without a prompt; symbols it does not name take their defaults.  The
# header comes from scripts/genconfig.sh (awk): no python3-kconfiglib is
# needed to build, only for menuconfig/defconfig/savedefconfig.
.config: $(DEFCONFIG)
	@test -f .config || cp $(DEFCONFIG) .config
	@touch .config
build/config.h: .config Kconfig scripts/genconfig.sh | build
	scripts/genconfig.sh Kconfig .config $@
	@touch $@

defconfig:
	$(PYTHON) -m defconfig --kconfig Kconfig $(DEFCONFIG)
menuconfig:
	$(PYTHON) -m menuconfig Kconfig
savedefconfig:
	$(PYTHON) -m savedefconfig --kconfig Kconfig --out $(DEFCONFIG)

size: kotak
	@$(STRIP) -s -o build/kotak.stripped kotak
	@s=$$(stat -c %s build/kotak.stripped); \
	 echo "kotak: $$s bytes stripped ($$((s / 1024)) KiB of the 300 KiB budget), CC=$(CC)"
	@nm --size-sort -S kotak 2>/dev/null | tail -n 12 || true
	@$(MAKE) --no-print-directory size-cross	# mk/cross.mk: targets whose toolchain is cached

install: kotak
	install -d $(DESTDIR)$(PREFIX)/sbin
	install -m 0755 kotak $(DESTDIR)$(PREFIX)/sbin/kotak

# Unit tests link the daemon's objects (all but main.o); their own code uses
# the libc's stdio and printf (LIBK_NOMAP: no src/libk.h name mapping).
build/libkotak.a: $(LIBOBJS)
	$(AR) rcs $@ $^
build/test_%: tests/unit/test_%.c tests/unit/t.h build/libkotak.a $(BEARSSL_LIB)
	$(CC) $(KOTAK_CFLAGS) -DLIBK_NOMAP -O1 -g -o $@ $< build/libk.o build/libkotak.a $(BEARSSL_LIB)
# The store's unit test builds its IMAP-only parts in (FOLDER_TEST) while IMAP is off.
STORE := src/folder.c src/mailbox.c src/mbox.c src/stream.c
build/test_mailbox: tests/unit/test_mailbox.c tests/unit/t.h build/libkotak.a $(BEARSSL_LIB) $(STORE)
	$(CC) $(KOTAK_CFLAGS) -DLIBK_NOMAP -DFOLDER_TEST -O1 -g -o $@ $< $(STORE) build/libk.o build/libkotak.a $(BEARSSL_LIB)
unit: $(UNITS)
	@for t in $(UNITS); do ./$$t || exit 1; done

# ASan+UBSan build of the same sources with the host compiler.
# A test build: KOTAK_TEST_HOOKS turns on the environment hooks the tests
# use to stop kotak between two steps (never in what ships).
ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -DKOTAK_TEST_HOOKS=1
asan: build/config.h
	@mkdir -p build-asan
	$(if $(BEARSSL_LIB),BEARSSL_SRC=$(BEARSSL_SRC) scripts/bearssl.sh lib build-asan/bearssl gcc ar -O1 -g -fsanitize=address$(,)undefined -DBR_LE_UNALIGNED=0 -DBR_BE_UNALIGNED=0)
	gcc $(KOTAK_CFLAGS) $(ASAN_FLAGS) -o build-asan/kotak $(SRCS) $(if $(BEARSSL_LIB),build-asan/bearssl/libbearssl.a)
	gcc $(KOTAK_CFLAGS) $(ASAN_FLAGS) -DLIBK_NOMAP -o build-asan/test_libk tests/unit/test_libk.c src/libk.c	# glibc's side

# IMAP and RPC are in configs/defconfig; for a config without them make test
# builds them on (configs/imap_defconfig, configs/rpc_defconfig) and runs
# their tests against those builds.
imap-builds:
	@$(MAKE) --no-print-directory cross ARCH=x86_64 XCONFIG=imap
	@test -f build-asan/bearssl/libbearssl.a || ! test -n "$(BEARSSL_LIB)" || $(MAKE) --no-print-directory asan
	gcc -Ibuild-x86_64-imap $(KOTAK_CFLAGS) $(ASAN_FLAGS) -o build-asan/kotak-imap $(SRCS) $(if $(BEARSSL_LIB),build-asan/bearssl/libbearssl.a)

rpc-builds:
	@$(MAKE) --no-print-directory cross ARCH=x86_64 XCONFIG=rpc
	@test -f build-asan/bearssl/libbearssl.a || ! test -n "$(BEARSSL_LIB)" || $(MAKE) --no-print-directory asan
	gcc -Ibuild-x86_64-rpc $(KOTAK_CFLAGS) $(ASAN_FLAGS) -o build-asan/kotak-rpc $(SRCS) $(if $(BEARSSL_LIB),build-asan/bearssl/libbearssl.a)

# Build tools first (fresh Debian 12, as root): musl-gcc, kconfiglib.
deps:
	@tests/deps.sh

test: deps
	@$(MAKE) --no-print-directory kotak asan $(UNITS)
	@tests/all.sh

lint:
	@tests/lint.sh

DEMO := $(CURDIR)/demo
run: kotak
	@mkdir -p $(DEMO)/data
	@test -f $(DEMO)/kotak.conf || printf "config kotak 'main'\n\toption hostname 'mail.demo.lan'\n\tlist domain 'demo.lan'\n\toption data_dir '$(DEMO)/data'\n\toption users_file '$(DEMO)/users'\n\toption dns_server '127.0.0.1:5353'\n\tlist cleartext_auth_net '127.0.0.0/8'\n\nconfig listen\n\toption proto 'smtp'\n\toption address '127.0.0.1'\n\toption port '2525'\n\nconfig listen\n\toption proto 'pop3'\n\toption address '127.0.0.1'\n\toption port '1110'\n\nconfig listen\n\toption proto 'imap'\n\toption address '127.0.0.1'\n\toption port '1143'\n\nconfig alias\n\toption name 'postmaster'\n\tlist to 'demo'\n" > $(DEMO)/kotak.conf
	@test -f $(DEMO)/users || echo demo | ./kotak -c $(DEMO)/kotak.conf user add demo
	./kotak -c $(DEMO)/kotak.conf

clean:
	rm -rf build build-* kotak

# Cross builds, qemu tests and the size gate (issue 6) live in mk/.
-include $(wildcard mk/*.mk)

.PHONY: FORCE deps all imap-builds defconfig menuconfig savedefconfig size install unit asan test lint run clean

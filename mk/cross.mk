# mk/cross.mk: cross builds, tests under qemu-user and the size gate (issue 6).
# Included by the top Makefile.  Everything here lives in build-ARCH[-minimal]/
# and never touches build/, kotak, or .config.
#
#   make cross ARCH=A            static kotak for A in build-A/kotak
#   make cross ARCH=A XCONFIG=minimal   the same with configs/minimal_defconfig
#                                (build-A-minimal/, its own .config and config.h)
#   make cross ARCH=A XFLAGS=openwrt   with OpenWrt's package flags (MIPS16
#                                for kotak's objects, SSP, FORTIFY, relro) in
#                                build-A-openwrt/ (A: a MIPS target)
#   make cross ARCH=A XFLAGS=mips32    kotak's objects MIPS32 too (a CPU
#                                without MIPS16e), in build-A-mips32/
#   make test-cross ARCH=A       unit tests + integration suite under qemu-user
#   make size-gate               fails when mips musl or uClibc-ng, default or
#                                OpenWrt flags, is over 300 KiB
#   make size                    (top Makefile) also prints size-cross below
#
# A: x86_64 (host musl-gcc), mips, mipsel, arm, mips-sf (soft-float musl, run
# on qemu -cpu 24Kc), mips-uclibc.  The C libraries are built once per machine
# by scripts/toolchain.sh into $(KOTAK_CACHE)/sysroot/A.
KOTAK_CACHE ?= /var/cache/kotak
ARCH        ?= mips
XCONFIG     ?=
XFLAGS      ?=
SIZE_BUDGET := 307200
SIZE_ARCHES := x86_64 mips mips-uclibc arm mipsel mips-sf
# the size gate: (target, flags) pairs; "default" is kotak's own CFLAGS
GATE        := mips:default mips:openwrt mips-uclibc:default mips-uclibc:openwrt

# What a router gets: OpenWrt's default package flags for mips_24kc
# (TARGET_CFLAGS with CONFIG_USE_MIPS16, PKG_SSP, PKG_FORTIFY_SOURCE 1,
# PKG_RELRO full).  kotak takes -mips16 for its own objects only: BearSSL
# stays MIPS32 (BEARSSL_CFLAGS), and -z norelro follows LDFLAGS.
OPENWRT_CFLAGS  := -Os -pipe -mno-branch-likely -mips32r2 -mtune=24kc -fno-caller-saves \
		   -mips16 -minterlink-mips16 -fstack-protector -D_FORTIFY_SOURCE=1
OPENWRT_LDFLAGS := -Wl,-z,now -Wl,-z,relro
# kotak's own MIPS builds take MIPS16 for kotak's objects too (MIPS16=0:
# MIPS32 throughout): with IMAP and RPC in, MIPS32 code is over the 300 KiB
# budget (357,064 bytes on mips musl) and MIPS16 is what OpenWrt builds its
# MIPS packages with anyway (CONFIG_USE_MIPS16).  BearSSL stays MIPS32
# (BEARSSL_CFLAGS drops -mips16): crypto keeps its speed.  A CPU without the
# MIPS16e ASE needs MIPS16=0 and a config without IMAP or RPC (README "Size").
MIPS16 ?= $(if $(filter mips%,$(ARCH)),1,0)
ifeq ($(XFLAGS),openwrt)
  override CFLAGS  := $(OPENWRT_CFLAGS)
  override LDFLAGS := $(OPENWRT_LDFLAGS)
else ifeq ($(XFLAGS),mips32)
  MIPS16 := 0
else ifneq ($(XFLAGS),)
  $(error XFLAGS=$(XFLAGS): only openwrt and mips32 are known)
endif
# (only in the cross rules below: the host build in build/ never sees it)
XISA := $(if $(filter 1,$(MIPS16)),$(if $(filter -mips16,$(CFLAGS)),,-mips16 -minterlink-mips16))
X_INTEG_openwrt      := tests/integ/test_smtp.py tests/integ/test_tls.py

X_TRIPLE_mips        := mips-linux-gnu
X_TRIPLE_mips-sf     := mips-linux-gnu
X_TRIPLE_mips-uclibc := mips-linux-gnu
X_TRIPLE_mipsel      := mipsel-linux-gnu
X_TRIPLE_arm         := arm-linux-gnueabihf
X_QEMU_mips          := qemu-mips-static
X_QEMU_mips-sf       := qemu-mips-static -cpu 24Kc
X_QEMU_mips-uclibc   := qemu-mips-static
X_QEMU_mipsel        := qemu-mipsel-static
X_QEMU_arm           := qemu-arm-static
# mips-sf under -cpu 24Kc runs a subset (the whole suite runs on mips):
# every SMTP command path, spool, delivery and mbox; see README "Cross builds".
# mips (big-endian, kotak's objects MIPS16): every protocol's own suite and
# what parses or stores binary data; the load, timing and client-interop
# suites (abuse, hostile, multi-session, slow relays, faults, power cuts,
# external clients) run on x86-64 only: under qemu they took half of CI's
# cross time and test nothing byte-order or ISA dependent beyond these.
X_INTEG_mips         := $(addprefix tests/integ/,test_smtp.py test_delivery.py test_pop3.py test_imap.py \
			test_imap_mime.py test_tls.py test_relay.py test_smarthost.py test_auth.py test_config.py \
			test_cli.py test_sendmail.py test_dns_resolver.py test_rpc.py test_smtp_dark.py)
X_INTEG_mips-sf      := tests/integ/test_smtp.py tests/integ/test_delivery.py

XDIR    := build-$(ARCH)$(if $(XCONFIG),-$(XCONFIG))$(if $(XFLAGS),-$(XFLAGS))
XARGS   := ARCH=$(ARCH) XCONFIG=$(XCONFIG) XFLAGS=$(XFLAGS)
XSR     := $(KOTAK_CACHE)/sysroot/$(ARCH)
ifeq ($(ARCH),x86_64)
  XCC    := $(if $(shell command -v musl-gcc 2>/dev/null),musl-gcc,cc)
  XPFX   :=
  XSTAMP :=
else
  XCC    := $(XSR)/bin/$(ARCH)-cc
  XPFX   := $(X_TRIPLE_$(ARCH))-
  XSTAMP := $(XSR)/.stamp
endif
XQEMU   := $(X_QEMU_$(ARCH))
XAR     := $(XPFX)gcc-ar
# LTO as the top Makefile's, tried with this target's compiler (lazily: the
# wrapper exists once scripts/toolchain.sh has run)
XLTO     = $(eval XLTO := $$(call lto_flags,$$(XCC)))$(XLTO)
XBLTO    = $(if $(filter -mips16,$(CFLAGS) $(XISA)),,$(XLTO))
XTFLAGS := $(call TARGET_FLAGS_FOR,$(X_TRIPLE_$(ARCH)))
# the default config shares build/config.h with the host build; a named one
# gets its own header in $(XDIR), found first through -I$(XDIR)
XHDR    := $(if $(XCONFIG),$(XDIR)/config.h,build/config.h)
XINC    := $(if $(XCONFIG),-I$(XDIR))
XOBJS   := $(SRCS:src/%.c=$(XDIR)/%.o)
XLIBOBJS := $(LIBSRCS:src/%.c=$(XDIR)/%.o)
XUNITS  := $(patsubst tests/unit/%.c,$(XDIR)/%,$(wildcard tests/unit/test_*.c))
# TLS as the config says: BearSSL built for the target with the same compiler
XTLS    := $(if $(XCONFIG),$(shell grep -qs '^CONFIG_TLS=y' $(XDIR)/.config && echo y),$(TLS))
XBEARSSL := $(if $(filter y,$(XTLS)),$(XDIR)/bearssl/libbearssl.a)

# The toolchain first (a no-op when cached), then the build proper: a
# recursive make, so that the objects see the toolchain's fresh .stamp.
cross:
	@$(if $(XSTAMP),scripts/toolchain.sh $(ARCH) >/dev/null)
	@$(MAKE) --no-print-directory xbuild $(XARGS)

# (the config header first: the recursive make reads CONFIG_TLS from it)
xbuild: $(XHDR)
	@$(MAKE) --no-print-directory $(XDIR)/kotak $(XARGS)

$(XDIR):
	@mkdir -p $@

ifneq ($(XSTAMP),)
$(XSTAMP):
	scripts/toolchain.sh $(ARCH) >/dev/null
endif

# $(XDIR)/cc.stamp names the compiler and flags: a change rebuilds all
XCCID = $(XCC) $(XTFLAGS) $(CFLAGS) $(XISA) $(KOTAK_OPT) $(LDFLAGS) $(XLTO) $(KOTAK_CFLAGS)
$(XDIR)/cc.stamp: FORCE | $(XDIR)
	@echo '$(XCCID)' | cmp -s - $@ || echo '$(XCCID)' > $@

$(XDIR)/%.o: src/%.c $(XHDR) $(wildcard src/*.h) $(XSTAMP) $(XDIR)/cc.stamp | $(XDIR)
	@$(XCC) $(XINC) $(KOTAK_CFLAGS) $(XTFLAGS) $(CFLAGS) $(XISA) -E $< | $(call FMTCHECK,$(XHDR))
	$(XCC) $(XINC) $(KOTAK_CFLAGS) $(XTFLAGS) $(CFLAGS) $(XISA) $(KOTAK_OPT) $(XLTO) -c -o $@ $<

$(XDIR)/kotak: $(XOBJS) $(XBEARSSL)
	$(XCC) $(XTFLAGS) $(CFLAGS) $(XISA) $(KOTAK_OPT) $(XLTO) $(LDFLAGS) $(KOTAK_LDFLAGS) -Wl,-Map=$@.map -o $@ $(XOBJS) $(XBEARSSL)
	@$(XPFX)strip -s -o $@.stripped $@

# rebuilt from scratch when the toolchain changed
$(XDIR)/bearssl/libbearssl.a: $(XSTAMP) $(XDIR)/cc.stamp | $(XDIR)
	@rm -rf $(XDIR)/bearssl
	BEARSSL_SRC=$(BEARSSL_SRC) scripts/bearssl.sh lib $(XDIR)/bearssl "$(XCC)" "$(XAR)" \
		$(XTFLAGS) $(BEARSSL_CFLAGS) $(XBLTO) -ffunction-sections -fdata-sections

$(XDIR)/libkotak.a: $(XLIBOBJS)
	@rm -f $@
	$(XAR) rcs $@ $^

$(XDIR)/test_%: tests/unit/test_%.c tests/unit/t.h $(XDIR)/libkotak.a $(XBEARSSL)
	$(XCC) $(XINC) $(KOTAK_CFLAGS) -DLIBK_NOMAP $(XTFLAGS) -O1 -g $(LDFLAGS) $(KOTAK_LDFLAGS) -o $@ $< \
		$(XDIR)/libk.o $(XDIR)/libkotak.a $(XBEARSSL)

# kotak's modules compiled alone without LTO, for make size's per-module
# table (after LTO the modules' code is mixed)
XMODS := $(SRCS:src/%.c=$(XDIR)/mod/%.o)
$(XDIR)/mod/%.o: src/%.c $(XHDR) $(wildcard src/*.h) $(XSTAMP) $(XDIR)/cc.stamp
	@mkdir -p $(@D)
	@$(XCC) $(XINC) $(KOTAK_CFLAGS) $(XTFLAGS) $(CFLAGS) $(XISA) -c -o $@ $<
xmods: $(XHDR)
	@$(MAKE) --no-print-directory $(XMODS) $(XARGS)

xunits: $(XHDR)
	@$(MAKE) --no-print-directory $(XUNITS) $(XARGS)

# A named config: its own .config seeded from configs/NAME_defconfig (the
# main .config is never read or written), then its own header.
# (XDEFCONFIG: another defconfig file for it, as scripts/featcost.sh uses)
XDEFCONFIG ?= configs/$(XCONFIG)_defconfig
ifneq ($(XCONFIG),)
$(XDIR)/config.h: $(XDEFCONFIG) Kconfig scripts/genconfig.sh | $(XDIR)
	@cp $< $(@D)/.config
	@scripts/genconfig.sh Kconfig $(@D)/.config $@
	@touch $@
endif

# ---- tests under qemu-user
test-cross:
	@$(if $(XSTAMP),scripts/toolchain.sh $(ARCH) >/dev/null)
	@$(MAKE) --no-print-directory xbuild xunits $(XARGS)
	@scripts/test-cross.sh --arch $(ARCH)$(if $(XFLAGS),-$(XFLAGS)) --dir $(XDIR) --qemu "$(XQEMU)" \
		--objdump "$(XPFX)objdump" --probe "$(if $(XSTAMP),$(XSR)/typeprobe)" --cc "$(XCC)" \
		$(if $(XFLAGS),$(X_INTEG_$(XFLAGS)),$(X_INTEG_$(ARCH)))

# ---- sizes: each target whose toolchain is in the cache, default and minimal
size-cross:
	@echo "config: default (kotak's CFLAGS; on MIPS kotak's objects MIPS16, BearSSL MIPS32), minimal (configs/minimal_defconfig), openwrt (default config, OpenWrt's mips_24kc flags), mips32 (default config, all MIPS32: a CPU without MIPS16e)"
	@printf '%-12s %-10s %-8s %9s %6s %s\n' target libc config bytes "%" "of the 300 KiB budget (307,200 bytes)"
	@for a in $(SIZE_ARCHES); do \
	   if [ $$a != x86_64 ] && [ ! -f $(KOTAK_CACHE)/sysroot/$$a/.stamp ]; then \
	     echo "$$a: no toolchain in $(KOTAK_CACHE)/sysroot (scripts/toolchain.sh $$a)"; continue; fi; \
	   for c in default minimal $$(case $$a in mips*) echo openwrt mips32;; esac); do \
	     x=$$([ $$c = minimal ] && echo minimal); f=$$(case $$c in openwrt|mips32) echo $$c;; esac); \
	     d=build-$$a$${x:+-$$x}$${f:+-$$f}; \
	     mkdir -p $$d; \
	     $(MAKE) --no-print-directory -s xbuild ARCH=$$a XCONFIG=$$x XFLAGS=$$f >$$d/size.log 2>&1 || \
	       { printf '%-12s %-10s %-8s %s\n' $$a "" $$c "BUILD FAILED ($$d/size.log): $$(grep -m1 -E 'error|undefined reference' $$d/size.log | cut -c1-90)"; continue; }; \
	     s=$$(stat -c %s $$d/kotak.stripped); \
	     printf '%-12s %-10s %-8s %9d %5d%% %s\n' $$a \
	       $$(case $$a in *uclibc) echo uClibc-ng;; *) echo musl;; esac) $$c $$s \
	       $$((s * 100 / $(SIZE_BUDGET))) \
	       "$$([ $$s -gt $(SIZE_BUDGET) ] && echo OVER BUDGET || echo "$$(( ($(SIZE_BUDGET) - s) / 1024 )) KiB left")"; \
	   done; \
	 done
	@if [ -f build-mips/kotak ] && $(MAKE) --no-print-directory -s xmods ARCH=mips XCONFIG= >build-mips/size.log 2>&1; then \
	   echo "where the bytes go, mips musl default (loaded sections by origin, from build-mips/kotak.map):"; \
	   $(PYTHON) scripts/sizemap.py build-mips/kotak.map; \
	   echo "per-module sizes, mips musl default (build-mips/mod/*.o, without LTO; flash = text+data; delta since the last make size):"; \
	   mips-linux-gnu-size build-mips/mod/*.o | \
	     awk 'NR > 1 { f = $$6; sub(/.*\//, "", f); printf "%d %d %d %d %s\n", $$1 + $$2, $$1, $$2, $$3, f }' | \
	     sort -n >build-mips/modules.now; \
	   printf '  %8s %8s %6s %8s  %-14s %s\n' flash text data bss module delta; \
	   awk 'FILENAME != "build-mips/modules.now" { old[$$5] = $$1; next } \
	        { d = ($$5 in old) ? $$1 - old[$$5] : 0; \
	          printf "  %8d %8d %6d %8d  %-14s %s\n", $$1, $$2, $$3, $$4, $$5, d ? sprintf("%+d", d) : ""; t += $$1 } \
	        END { printf "  %8d  all kotak modules (before LTO and --gc-sections)\n", t }' \
	     $$(test -f build-mips/modules.last && echo build-mips/modules.last) build-mips/modules.now; \
	   mv build-mips/modules.now build-mips/modules.last; \
	   echo "largest code and data symbols, mips musl default (bss left out):"; \
	   mips-linux-gnu-nm --size-sort -S build-mips/kotak | awk '$$3 !~ /^[bB]$$/' | tail -n 12; \
	 fi

# CI: each (target, flags) of GATE must stay within 300 KiB.  Prints a tally
# line for tests/all.sh.
size-gate:
	@p=0; f=0; for g in $(GATE); do \
	   a=$${g%%:*}; x=$${g#*:}; [ $$x = default ] && x=; d=build-$$a$${x:+-$$x}; mkdir -p $$d; \
	   what="$$a $$(case $$a in *uclibc) echo uClibc-ng;; *) echo musl;; esac) $${x:-default} flags"; \
	   if ! $(MAKE) --no-print-directory cross ARCH=$$a XCONFIG= XFLAGS=$$x >$$d/gate.log 2>&1; then \
	     tail -n 5 $$d/gate.log; echo "FAIL size-gate: $$what does not build ($$d/gate.log)"; f=$$((f + 1)); continue; fi; \
	   s=$$(stat -c %s $$d/kotak.stripped); \
	   if [ $$s -gt $(SIZE_BUDGET) ]; then \
	     echo "FAIL size-gate: $$what is $$s bytes stripped, over the $(SIZE_BUDGET)-byte budget by $$((s - $(SIZE_BUDGET)))"; \
	     f=$$((f + 1)); \
	   else \
	     echo "PASS size-gate: $$what is $$s bytes stripped ($$(( ($(SIZE_BUDGET) - s) / 1024 )) KiB under 300 KiB)"; \
	     p=$$((p + 1)); \
	   fi; \
	 done; echo "$$p passed, $$f failed"; [ $$f -eq 0 ]

clean-cross:
	rm -rf build-x86_64* build-mips* build-mipsel* build-arm*

.PHONY: cross xbuild xmods xunits test-cross size-cross size-gate clean-cross

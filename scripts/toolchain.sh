#!/usr/bin/env bash
# scripts/toolchain.sh TARGET        TARGET: mips mipsel arm mips-sf mips-uclibc
#
# Builds a static C library for TARGET from Debian's source package with
# Debian's cross gcc (../shared/BUILD-NOTES.md §2.2, §3.2, §3.3) into
#   ${KOTAK_CACHE:-/var/cache/kotak}/sysroot/TARGET
# with a musl-gcc-like specs wrapper bin/TARGET-cc, and prints the wrapper's
# path on the last line of stdout.  The sysroot is keyed by the C library's
# Debian source version, the cross gcc version and this recipe's version
# (file .stamp): an unchanged key means nothing is done, so CI runs on one
# machine build each toolchain once.  Idempotent; concurrent runs for the
# same target wait for each other (flock).  As root on Debian it installs
# missing packages by name and adds a deb-src entry (BUILD-NOTES §0).
#
# Safe while others compile with the cached sysroot: sysroot/TARGET is a
# symlink to a complete build, sysroot/TARGET.VERSION, whose wrapper and
# specs name that versioned directory.  A new key builds a new version
# beside it, probes it, and only then swaps the symlink in one rename(2)
# (the first time, over the directory an older recipe left: renameat2
# RENAME_EXCHANGE).  A compiler run that started before the swap finishes
# with the old version, which stays until the next rebuild.
#
# musl is built without PIC (-fno-pic -fno-pie, and -mno-abicalls on MIPS):
# Debian's cross gcc makes PIE by default, so musl's configure otherwise
# puts PIC objects in libc.a, where every call goes through the GOT: 9 KB
# of a static MIPS binary that needs none of it.
#
# Last, a probe (scripts/typeprobe.c) is built with the wrapper and run under
# qemu-user: it prints the type widths (off_t, time_t), byte order and libc,
# and fails when off_t is not 64-bit under -D_FILE_OFFSET_BITS=64.
#   musl 1.2.3: ~50 s per target; uClibc-ng 1.0.35: ~3.5 min (2 cores).
set -euo pipefail

RECIPE=2        # bump when the build steps below change: forces a rebuild
# 2: musl without PIC; uClibc-ng with SSP (-fstack-protector, as OpenWrt and
#    Buildroot builds with SSP have); versioned sysroot behind a symlink
# run from make (mk/cross.mk): the caller's ARCH=... and flags must not reach
# the C library's own make
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES ARCH CFLAGS LDFLAGS CC
T=${1:-}
CACHE=${KOTAK_CACHE:-/var/cache/kotak}
here=$(cd "$(dirname "$0")" && pwd)

EXTRA="" QCPU=""
case "$T" in
mips)        TRIPLE=mips-linux-gnu      LIBC=musl   QEMU=qemu-mips-static ;;
mipsel)      TRIPLE=mipsel-linux-gnu    LIBC=musl   QEMU=qemu-mipsel-static ;;
arm)         TRIPLE=arm-linux-gnueabihf LIBC=musl   QEMU=qemu-arm-static ;;
mips-sf)     TRIPLE=mips-linux-gnu      LIBC=musl   QEMU=qemu-mips-static
             EXTRA=-msoft-float QCPU=24Kc ;;   # FPU-less 24Kc (Atheros/QCA)
mips-uclibc) TRIPLE=mips-linux-gnu      LIBC=uclibc QEMU=qemu-mips-static ;;
*) echo "usage: $0 mips|mipsel|arm|mips-sf|mips-uclibc" >&2; exit 2 ;;
esac
LINK=$CACHE/sysroot/$T          # what everyone uses: a symlink to a version
CCW=$LINK/bin/$T-cc
JOBS=$(nproc 2>/dev/null || echo 2)

say() { echo "toolchain $T: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

# ---- packages (by name, only when missing)
apt_install() {
	local want=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || want+=("$p")
	done
	[ ${#want[@]} -eq 0 ] && return 0
	[ "$(id -u)" = 0 ] && command -v apt-get >/dev/null ||
		die "please install: ${want[*]}"
	say "installing ${want[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${want[@]}" >/dev/null ||
		{ apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null &&
		  apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${want[@]}" >/dev/null; } ||
		die "apt-get install ${want[*]} failed"
}

# deb-src: a copy of the existing deb entry (BUILD-NOTES §0), then update.
have_debsrc() {
	grep -qsE '^(Types:.*deb-src|deb-src )' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
		/etc/apt/sources.list.d/*.sources
}
ensure_debsrc() {
	if ! have_debsrc; then
		[ "$(id -u)" = 0 ] || die "no deb-src entry in /etc/apt (add one, BUILD-NOTES §0)"
		[ -f /etc/apt/sources.list.d/debian.sources ] ||
			die "no /etc/apt/sources.list.d/debian.sources to copy a deb-src entry from"
		say "adding /etc/apt/sources.list.d/debian-src.sources"
		sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
			> /etc/apt/sources.list.d/debian-src.sources
		apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null
	fi
	if ! apt-cache showsrc "$1" 2>/dev/null | grep -q '^Version:'; then
		apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null
	fi
}

lib_pkg=linux-libc-dev-$(case $TRIPLE in mips-*) echo mips;; mipsel-*) echo mipsel;; arm-*) echo armhf;; esac)-cross
apt_install gcc-"$TRIPLE" "$lib_pkg" qemu-user-static dpkg-dev
[ "$LIBC" = uclibc ] && apt_install uclibc-source

# ---- the key: C library source version + compiler + recipe
if [ "$LIBC" = musl ]; then
	ensure_debsrc musl
	SRCVER=$(apt-cache showsrc musl | sed -n 's/^Version: //p' | sort -V | tail -n 1)
else
	SRCVER=$(dpkg-query -W -f='${Version}' uclibc-source)
fi
[ -n "$SRCVER" ] || die "cannot tell the $LIBC source version"
KEY="$LIBC $SRCVER $TRIPLE-gcc $("$TRIPLE-gcc" -dumpfullversion) ${EXTRA:-hard-float} recipe $RECIPE"

mkdir -p "$CACHE/sysroot" "$CACHE/src"
exec 9>"$CACHE/sysroot/.lock-$T"
flock 9
if [ -x "$CCW" ] && [ "$(cat "$LINK/.stamp" 2>/dev/null)" = "$KEY" ]; then
	echo "$CCW"
	exit 0
fi

# the new version: built, probed, then swapped in; removed if anything fails
SR=$LINK.$(date +%Y%m%d%H%M%S).$$
trap 'rm -rf "$SR"' EXIT
say "building ($KEY) into $SR"
start=$(date +%s)
B=$CACHE/build/$T
rm -rf "$B"
mkdir -p "$B" "$SR/bin"
NOPIC="-fno-pic -fno-pie"
# MIPS: only -mno-abicalls makes the code non-PIC (abicalls implies __PIC__)
case $TRIPLE in mips*) NOPIC="$NOPIC -mno-abicalls" ;; esac

# kernel headers of the cross package, for the C library and for programs
kheaders() {
	local d
	mkdir -p "$1"
	for d in $(dpkg -L "$lib_pkg" | grep "^/usr/$TRIPLE/include/[^/]*\$"); do
		[ -d "$d" ] && cp -a "$d" "$1/"
	done
}

if [ "$LIBC" = musl ]; then
	# the unpacked source is shared by every musl target (own lock)
	S=$CACHE/src/musl_$SRCVER
	(
		flock 8
		if [ ! -f "$S/.done" ]; then
			rm -rf "$S"; mkdir -p "$S"
			cd "$S"
			apt-get source -q "musl=$SRCVER" >/dev/null 2>"$S/.log" ||
				{ cat "$S/.log" >&2; exit 1; }
			touch .done
		fi
	) 8>"$CACHE/src/.lock-musl" || die "apt-get source musl=$SRCVER failed"
	src=$(find "$S" -mindepth 1 -maxdepth 1 -type d -name 'musl-*' | head -n 1)
	[ -n "$src" ] || die "no musl-* directory in $S"
	cp -a "$src/." "$B/"
	cd "$B"
	# configure picks SUBARCH from the compiler (-sf with -msoft-float, hf on armhf)
	CC="$TRIPLE-gcc${EXTRA:+ $EXTRA}" CFLAGS="-Os $NOPIC" ./configure --target="$TRIPLE" \
		--prefix="$SR" --disable-shared --enable-wrapper=gcc >"$B/.configure.log" 2>&1 ||
		{ tail -n 20 "$B/.configure.log" >&2; die "musl configure failed"; }
	! grep -q '^AOBJS = $(LOBJS)' config.mak || die "musl's configure chose PIC objects for libc.a"
	# the PIE start files (Scrt1.o, rcrt1.o: never used by kotak's static
	# link) are built with -fPIC, which MIPS allows only with abicalls
	case $TRIPLE in mips*)
		echo 'obj/crt/Scrt1.o obj/crt/rcrt1.o: CFLAGS_ALL += -mabicalls' >>config.mak ;;
	esac
	make -j"$JOBS" >"$B/.make.log" 2>&1 || { tail -n 30 "$B/.make.log" >&2; die "musl make failed"; }
	make install >>"$B/.make.log" 2>&1 || { tail -n 30 "$B/.make.log" >&2; die "musl install failed"; }
	kheaders "$SR/include"
	# static start files: musl's specs name the PIE ones (Scrt1.o,
	# crtbeginS.o), whose PIC code, called through a pointer from
	# non-PIC libc code, finds no $t9 to set up its $gp from on MIPS
	sed -i -e 's,/Scrt1\.o,/crt1.o,' -e 's,crtbeginS\.o,crtbeginT.o,' -e 's,crtendS\.o,crtend.o,' \
		"$SR/lib/musl-gcc.specs"
	# configure's own musl-gcc quotes "gcc -msoft-float" as one word
	# (BUILD-NOTES §3.3): ours passes the extra flag separately.  And the
	# non-PIC flags: on MIPS, PIC (abicalls) code called from non-abicalls
	# libc code through a pointer (main, from __libc_start_main) finds no
	# $t9 to set up its $gp from, and crashes; a program's -f/-m flags
	# after these still win.
	cat >"$SR/bin/$T-cc" <<EOF
#!/bin/sh
# $T: $KEY
exec $TRIPLE-gcc${EXTRA:+ $EXTRA} $NOPIC "\$@" -specs "$SR/lib/musl-gcc.specs"
EOF
else
	tarball=$(dpkg -L uclibc-source | grep -E '\.tar\.(xz|gz|bz2)$' | head -n 1)
	[ -n "$tarball" ] || die "no tarball in package uclibc-source"
	kheaders "$B/kheaders"
	tar -C "$B" -xf "$tarball"
	cd "$B"/uClibc-ng-*/ 2>/dev/null || cd "$B"/uclibc*/ || die "no uClibc-ng directory in $tarball"
	make ARCH=mips defconfig >"$B/.make.log" 2>&1
	setopt() {	# setopt NAME VALUE: replace NAME's line in .config
		sed -i -e "/^$1=/d" -e "/^# $1 is not set/d" .config
		echo "$1=$2" >>.config
	}
	setopt KERNEL_HEADERS "\"$B/kheaders\""
	setopt CROSS_COMPILER_PREFIX "\"$TRIPLE-\""
	setopt RUNTIME_PREFIX '"/"'
	setopt DEVEL_PREFIX '"/usr/"'
	# static linking needs libdl's objects in libc.a: HAVE_SHARED=y (§2.2)
	for o in HAVE_SHARED DOPIC UCLIBC_HAS_IPV6 UCLIBC_HAS_RESOLVER_SUPPORT \
		UCLIBC_SUSV3_LEGACY UCLIBC_SUSV4_LEGACY UCLIBC_HAS_UTMPX UCLIBC_HAS_LIBUTIL \
		UCLIBC_HAS_NFTW UCLIBC_HAS_PRINTF_M_SPEC UCLIBC_HAS_WCHAR DO_C99_MATH \
		UCLIBC_HAS_FOPEN_EXCLUSIVE_MODE UCLIBC_HAS_THREADS_NATIVE UCLIBC_HAS_BSD_RES_CLOSE \
		UCLIBC_HAS_SSP; do
		setopt "$o" y
	done
	{ yes "" || true; } | make ARCH=mips oldconfig >>"$B/.make.log" 2>&1
	make ARCH=mips -j"$JOBS" >>"$B/.make.log" 2>&1 || { tail -n 30 "$B/.make.log" >&2; die "uClibc-ng make failed"; }
	make ARCH=mips install DESTDIR="$SR" >>"$B/.make.log" 2>&1 ||
		{ tail -n 30 "$B/.make.log" >&2; die "uClibc-ng install failed"; }
	cp -a "$B/kheaders/." "$SR/usr/include/"
	cat >"$SR/usr/lib/uclibc-gcc.specs" <<EOF
%rename cpp_options old_cpp_options

*cpp_options:
-nostdinc -isystem $SR/usr/include -isystem include%s %(old_cpp_options)

*cc1:
%(cc1_cpu) -nostdinc -isystem $SR/usr/include -isystem include%s

*link_libgcc:
-L$SR/usr/lib -L .%s

*libgcc:
libgcc.a%s %:if-exists(libgcc_eh.a%s)

*startfile:
$SR/usr/lib/crt1.o $SR/usr/lib/crti.o crtbeginT.o%s

*endfile:
crtend.o%s $SR/usr/lib/crtn.o

*link:
-nostdlib -static %{rdynamic:-export-dynamic}
EOF
	cat >"$SR/bin/$T-cc" <<EOF
#!/bin/sh
# $T: $KEY
exec $TRIPLE-gcc -static -no-pie "\$@" -specs "$SR/usr/lib/uclibc-gcc.specs"
EOF
fi
chmod 0755 "$SR/bin/$T-cc"

# ---- probe: build and run under qemu; record what it prints
"$SR/bin/$T-cc" -std=c99 -D_DEFAULT_SOURCE -D_FILE_OFFSET_BITS=64 -Os -static -o "$SR/typeprobe" \
	"$here/typeprobe.c" || die "probe does not build"
"$QEMU" ${QCPU:+-cpu $QCPU} "$SR/typeprobe" >"$SR/probe.txt" || {
	cat "$SR/probe.txt" >&2; die "probe failed under $QEMU${QCPU:+ -cpu $QCPU}"; }
sed "s/^/toolchain $T: /" "$SR/probe.txt" >&2
cd /
rm -rf "$B"
echo "$KEY" >"$SR/.stamp"

# ---- swap it in: one rename of a symlink (readers see the old or the new)
prev=$(readlink "$LINK" 2>/dev/null || true)
ln -s "$(basename "$SR")" "$LINK.new.$$"
if [ -d "$LINK" ] && [ ! -L "$LINK" ]; then
	# a directory from recipe 1: exchanged atomically with the symlink
	/usr/bin/python3 - "$LINK.new.$$" "$LINK" <<'EOF' || die "cannot swap $LINK in"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.renameat2(-100, sys.argv[1].encode(), -100, sys.argv[2].encode(), 2) != 0:  # RENAME_EXCHANGE
    sys.exit(os.strerror(ctypes.get_errno()))
EOF
	prev=$(basename "$LINK").old.$$
	mv -T "$LINK.new.$$" "$LINK.old.$$"
else
	mv -Tf "$LINK.new.$$" "$LINK"
fi
trap - EXIT
# keep the version just replaced (a compiler may still be using it), drop older ones
for d in "$LINK".*; do
	case $(basename "$d") in "$(basename "$SR")"|"$prev") ;; *) rm -rf "$d" ;; esac
done
say "done in $(( $(date +%s) - start )) s: $LINK -> $(basename "$SR")"
echo "$CCW"

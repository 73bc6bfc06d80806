#!/usr/bin/env bash
# make test: unit tests, the integration suite against the static binary
# and again against the ASan+UBSan build, and the fuzz corpus replay.
# Sums every part's "N passed, N failed[, N skipped]" into the last line.
set -u
cd "$(dirname "$0")/.."
P=0 F=0 S=0
# Every FAIL line, repeated above the count: CI keeps only the output's tail.
FAILS=$(mktemp)
trap 'rm -f "$FAILS"' EXIT
tally() {	# $1 = label, rest = command; reads the command's last count line
	local out line p f s
	echo "== $1"
	out=$(mktemp)
	"${@:2}" 2>&1 | tee "$out"
	local rc=${PIPESTATUS[0]}
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
	grep -E '^FAIL' "$out" | cut -c1-300 | sed "s|^|[$1] |" >>"$FAILS"
	rm -f "$out"
	if [ -z "$line" ]; then
		echo "FAIL $1: no result line (exit $rc)" | tee -a "$FAILS"
		F=$((F + 1))
		return
	fi
	p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
	f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
	s=$(echo "$line" | sed -nE 's/.* ([0-9]+) skipped.*/\1/p')
	P=$((P + p)) F=$((F + f)) S=$((S + ${s:-0}))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "FAIL $1: exit $rc" | tee -a "$FAILS"
		F=$((F + 1))
	fi
}
for t in build/test_*; do
	[ -x "$t" ] && tally "unit $(basename "$t")" "$t"
done
if [ -x tests/fuzz/replay.sh ]; then
	tally "fuzz corpus replay" tests/fuzz/replay.sh
fi
# kotak rpc and the web UIs need Kconfig RPC (in configs/defconfig).  A config
# without it gets them against builds with it (configs/rpc_defconfig), static
# and ASan+UBSan.
rpcbin=./kotak
if ! ./kotak -V 2>/dev/null | grep -q '+rpc'; then
	rpcbin=build-x86_64-rpc/kotak
	if make --no-print-directory rpc-builds >build/rpc-builds.log 2>&1; then
		tally "integration RPC=y (static)" tests/run.sh --bin "$rpcbin" --label rpc tests/integ/test_rpc.py
		tally "integration RPC=y (ASan+UBSan)" env ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
			UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 tests/run.sh --bin build-asan/kotak-rpc \
			--label rpc-asan tests/integ/test_rpc.py
	else
		tail -n 20 build/rpc-builds.log
		echo "FAIL build with RPC=y (make rpc-builds)" | tee -a "$FAILS"
		F=$((F + 1))
	fi
fi
tally "board (packages, LuCI app, web page in Chromium)" tests/board/run.sh --bin "$rpcbin"
tally "lint (C feature tests, Python compiles)" tests/lint.sh
tally "fmtcheck: printf formats src/libk.c cannot format are refused" tests/fmtcheck.sh
tally "unit test_libk against glibc, ASan+UBSan" build-asan/test_libk
tally "integration (static binary)" tests/run.sh --bin ./kotak --label static
tally "integration (ASan+UBSan)" env ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 tests/run.sh --bin build-asan/kotak --label asan
# IMAP is in the default build: the suites above ran its tests.  A config
# without it (make test on a packager's .config) still gets them against a
# build with it (configs/imap_defconfig), static and ASan+UBSan.
IMAPT="tests/integ/test_imap.py tests/integ/test_imap_mime.py tests/integ/test_imap_clients.py tests/integ/test_imap_multi.py tests/integ/test_hostile.py"
if ! ./kotak -V 2>/dev/null | grep -q '+imap'; then
	if make --no-print-directory imap-builds >build/imap-builds.log 2>&1; then
		# shellcheck disable=SC2086
		tally "integration IMAP=y (static)" tests/run.sh --bin build-x86_64-imap/kotak --label imap $IMAPT
		# shellcheck disable=SC2086
		tally "integration IMAP=y (ASan+UBSan)" env ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
			UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 tests/run.sh --bin build-asan/kotak-imap \
			--label imap-asan $IMAPT
	else
		tail -n 20 build/imap-builds.log
		echo "FAIL build with IMAP=y (make imap-builds)" | tee -a "$FAILS"
		F=$((F + 1))
	fi
fi
# Router targets (README "Cross builds"), in CI (CI=true) or with KOTAK_CROSS=1:
# mips big-endian musl under qemu-user, the soft-float build on an FPU-less
# 24Kc, the build with OpenWrt's flags (kotak's objects MIPS16: unit tests,
# SMTP and TLS under qemu), and the 300 KiB size gate on mips musl and
# uClibc-ng, default and OpenWrt flags.  Toolchains are cached in
# /var/cache/kotak.
if { [ -n "${CI:-}" ] && [ "${CI}" != false ]; } || [ "${KOTAK_CROSS:-0}" = 1 ]; then
	tally "cross mips (qemu-user)" make --no-print-directory test-cross ARCH=mips
	tally "cross mips-sf (qemu -cpu 24Kc)" make --no-print-directory test-cross ARCH=mips-sf
	tally "cross mips, OpenWrt flags (qemu-user)" make --no-print-directory test-cross ARCH=mips XFLAGS=openwrt
	tally "size gate (mips musl and uClibc-ng, default and OpenWrt flags, 300 KiB)" \
		make --no-print-directory size-gate
fi
if [ -s "$FAILS" ]; then
	echo "== what failed"
	cat "$FAILS"
fi
if [ "$S" -gt 0 ]; then
	echo "$P passed, $F failed, $S skipped"
else
	echo "$P passed, $F failed"
fi
[ "$F" -eq 0 ]

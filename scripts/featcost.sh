#!/usr/bin/env bash
# scripts/featcost.sh [ARCH [XFLAGS]]: what each Kconfig feature costs.
#
# Builds the default config for ARCH (default mips), then the default config
# with each feature turned off (and what depends on it; a feature off by
# default is turned on instead), and prints the difference in stripped
# bytes: the figures Kconfig's help quotes.
# Each variant builds in build-ARCH-cost-FEATURE/ (make cross XCONFIG=...
# XDEFCONFIG=...), so a run takes a few minutes per feature.
#   scripts/featcost.sh mips            # mips musl, kotak's flags
#   scripts/featcost.sh mips openwrt    # with OpenWrt's flags (MIPS16)
set -u
cd "$(dirname "$0")/.."
A=${1:-mips}
X=${2:-}
FEATURES=${FEATURES:-"RELAY_VERIFY RELAY POP3 IMAP RPC TLS IPV6 SYSLOG LIBK"}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

size() {	# size NAME DEFCONFIG: stripped bytes of that build, or "failed"
	local d=build-$A-cost-$1${X:+-$X}
	if make --no-print-directory cross ARCH="$A" XFLAGS="$X" XCONFIG="cost-$1" XDEFCONFIG="$2" \
		>"$tmp/$1.log" 2>&1 && [ -f "$d/kotak.stripped" ]; then
		stat -c %s "$d/kotak.stripped"
	else
		echo failed
		tail -n 5 "$tmp/$1.log" >&2
	fi
}

base=$(size default configs/defconfig)
printf '%-14s %9s %9s   (%s%s, stripped bytes)\n' feature bytes cost "$A" "${X:+, $X flags}"
printf '%-14s %9s\n' "default" "$base"
for f in $FEATURES; do
	grep -q "^config $f\$" Kconfig || continue
	# on in the default config: measured off; off (IMAP today): measured on
	if grep -q "^#define ENABLE_$f 1" "build-$A-cost-default${X:+-$X}/config.h"; then
		on=1
		{ grep -v "^CONFIG_$f=" configs/defconfig; echo "# CONFIG_$f is not set"; } >"$tmp/$f"
	else
		on=0
		{ grep -v "CONFIG_$f[= ]" configs/defconfig; echo "CONFIG_$f=y"; } >"$tmp/$f"
	fi
	s=$(size "$f" "$tmp/$f")
	if [ "$s" = failed ] || [ "$base" = failed ]; then
		printf '%-14s %9s\n' "$f" failed
	elif [ $on = 1 ]; then
		printf '%-14s %9s %+9d   (off: %s bytes)\n' "$f" "" $((base - s)) "$s"
	else
		printf '%-14s %9s %+9d   (on: %s bytes; off by default)\n' "$f" "" $((s - base)) "$s"
	fi
done

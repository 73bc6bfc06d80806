#!/usr/bin/env bash
# scripts/test-cross.sh --arch A --dir DIR --qemu "QEMU [ARGS]" [--objdump OBJDUMP]
#                       [--probe TYPEPROBE] [--cc CC] [tests/integ/test_x.py ...]
#
# What `make test-cross ARCH=A` runs once it has built DIR/kotak and the unit
# tests DIR/test_* for A (mk/cross.mk):
#   1. the type probe of A's toolchain under qemu (off_t must be 64-bit;
#      prints the time_t width and byte order);
#   2. on MIPS, no floating-point instruction anywhere in the linked binary
#      (BUILD-NOTES §3.3; see README "Cross builds");
#   3. each unit test DIR/test_x under qemu;
#   4. the integration suite (tests/run.sh) through DIR/kotak-qemu, a wrapper
#      that execs qemu, so the PID the tests signal or kill -9 is the guest's.
# Last line: "N passed, N failed[, N skipped]" summed over all parts; exit 1
# on any failure.
set -u
cd "$(dirname "$0")/.." || exit 1
root=$PWD
arch="" dir="" qemu="" objdump="" probe="" cc="" files=()
while [ $# -gt 0 ]; do
	case "$1" in
	--arch) arch=$2; shift 2 ;;
	--dir) dir=$2; shift 2 ;;
	--qemu) qemu=$2; shift 2 ;;
	--objdump) objdump=$2; shift 2 ;;
	--probe) probe=$2; shift 2 ;;
	--cc) cc=$2; shift 2 ;;
	*) files+=("$1"); shift ;;
	esac
done
[ -n "$arch" ] && [ -n "$dir" ] || { echo "usage: $0 --arch A --dir DIR --qemu QEMU"; exit 2; }
P=0 F=0 S=0
pass() { echo "PASS $arch $1"; P=$((P + 1)); }
fail() { echo "FAIL $arch $1"; F=$((F + 1)); }
start=$(date +%s)

# 1. type probe
if [ -n "$probe" ]; then
	echo "== $arch: type probe ($qemu)"
	# shellcheck disable=SC2086
	if out=$($qemu "$probe" 2>&1); then
		echo "$out" | sed 's/^/    /'
		pass "probe: off_t is 64-bit, $(echo "$out" | grep -o 'sizeof(time_t)=[0-9]*')"
	else
		echo "$out" | sed 's/^/    /'
		fail "probe"
	fi
fi

# 2. floating point (MIPS): none in the whole binary.  An FPU-less CPU (the
# 24Kc of many Atheros/QCA routers) traps on any FP instruction, wherever it
# is, and Debian's libgcc.a has no soft-float multilib: its soft-fp helpers
# (__adddf3 ...) are hard-float code even in the -msoft-float build.  musl's
# printf engine (%f) has FP instructions and calls them; with Kconfig LIBK
# kotak links neither (the objects themselves are LTO bytecode: the linked
# binary is what there is to look at).
FPRE='[[:space:]](lwc1|swc1|ldc1|sdc1|lwxc1|swxc1|ldxc1|sdxc1|mtc1|mfc1|mthc1|mfhc1|ctc1|cfc1|bc1[ft]l?|(add|sub|mul|div|abs|neg|mov|sqrt|madd|msub)[.][sdp]|cvt[.][a-z]+[.][a-z]+|(trunc|round|ceil|floor)[.][wl][.][sd]|c[.][a-z]+[.][sd])[[:space:]]'
# The mnemonic only ("addr:<TAB>bytes<TAB>mnemonic<TAB>operands"): the bytes
# column can spell one (MIPS16 "1e00 cfc1" is a jalx).
fp_funcs() {	# fp_funcs FILE...: "count function" for each function with FP instructions
	"$objdump" -d "$@" 2>/dev/null | awk -v re="$FPRE" '
		/^[0-9a-f]+ <.*>:$/ { fn = $2; sub(/^</, "", fn); sub(/>:$/, "", fn); next }
		split($0, w, "\t") >= 3 && (" " w[3] " ") ~ re { c[fn]++ }
		END { for (f in c) print c[f], f }' | sort -k2
}
case "$arch" in
mips*)
	echo "== $arch: floating-point instructions ($objdump -d $dir/kotak)"
	# the check must see FP where there is some: a program multiplying
	# doubles, linked by the same compiler (soft-float: libgcc's __muldf3)
	if [ -n "$cc" ]; then
		printf 'volatile double x = 3;\nint main(void) { x = x * 1.5; return (int)x; }\n' >"$dir/fpcanary.c"
		if $cc -O1 -static -o "$dir/fpcanary" "$dir/fpcanary.c" 2>/dev/null &&
		    [ -n "$(fp_funcs "$dir/fpcanary")" ]; then
			pass "the floating-point check sees the FP code of a program using double"
		else
			fail "the floating-point check sees no FP in a program using double"
		fi
	fi
	all=$(fp_funcs "$dir/kotak")
	if [ -z "$all" ]; then
		pass "no floating-point instruction in $dir/kotak"
	else
		echo "$all" | sed 's/^/    FP instructions in: /'
		fail "floating-point instructions in $dir/kotak ($(echo "$all" | awk '{printf "%s ", $2}'))"
	fi
	;;
esac

# 3. unit tests
for t in "$dir"/test_*; do
	[ -x "$t" ] || continue
	case "$t" in *.o|*.c) continue ;; esac
	echo "== $arch: unit $(basename "$t")"
	# shellcheck disable=SC2086
	out=$($qemu "$t" 2>&1)
	rc=$?
	echo "$out"
	line=$(echo "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
	if [ -z "$line" ]; then
		fail "unit $(basename "$t"): no result line (exit $rc$([ $rc = 132 ] && echo ": SIGILL, floating point on an FPU-less CPU?"))"
		continue
	fi
	p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed*}
	P=$((P + p)) F=$((F + f))
	[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && fail "unit $(basename "$t"): exit $rc"
done

# 4. integration suite through an exec-ing wrapper
w=$root/$dir/kotak-qemu
cat >"$w" <<EOF
#!/bin/sh
# run.sh --bin target: the guest runs in this very process (exec), so the
# tests' signals and kill -9 reach it
exec $qemu $root/$dir/kotak "\$@"
EOF
chmod 0755 "$w"
out=$(mktemp)
# a failure under qemu is hard to reproduce: print kotak's log tail with it
export KT_VERBOSE=${KT_VERBOSE:-1}
tests/run.sh --bin "$w" --label "$arch" "${files[@]}" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
rm -f "$out"
if [ -z "$line" ]; then
	fail "integration: no result line (exit $rc)"
else
	p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed*}
	s=$(echo "$line" | sed -nE 's/.* ([0-9]+) skipped.*/\1/p')
	P=$((P + p)) F=$((F + f)) S=$((S + ${s:-0}))
	[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && fail "integration: exit $rc"
fi

echo "== $arch: $(( $(date +%s) - start )) s under ${qemu:-no qemu}"
if [ "$S" -gt 0 ]; then
	echo "$P passed, $F failed, $S skipped"
else
	echo "$P passed, $F failed"
fi
[ "$F" -eq 0 ]

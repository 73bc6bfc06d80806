#!/usr/bin/env bash
# The config header without kconfiglib (scripts/genconfig.sh, awk) equals
# kconfiglib's (scripts/genconfig.py) for the committed defconfigs and for
# packagers' fragments: missing symbols, unmet dependencies, out-of-range
# values, symbols switched off.
set -u
cd "$(dirname "$0")/../.."
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
if ! /usr/bin/python3 -c 'import kconfiglib' 2>/dev/null; then
	echo "SKIP genconfig: python3-kconfiglib (the reference) is not installed"
	exit 0
fi
n=0
check() {	# name, fragment text
	n=$((n + 1))
	printf '%s' "$2" > "$t/frag$n"
	/usr/bin/python3 - "$t/frag$n" "$t/full$n" <<'PY' || { echo "FAIL genconfig $1: kconfiglib"; return; }
import sys, kconfiglib
k = kconfiglib.Kconfig("Kconfig", warn=False)
k.load_config(sys.argv[1])
k.write_config(sys.argv[2])
PY
	/usr/bin/python3 scripts/genconfig.py Kconfig "$t/full$n" "$t/ref$n.h" >/dev/null 2>&1
	if ! scripts/genconfig.sh Kconfig "$t/frag$n" "$t/awk$n.h" 2>"$t/err"; then
		echo "FAIL genconfig $1: $(cat "$t/err")"
	elif ! diff <(tail -n +2 "$t/ref$n.h") <(tail -n +2 "$t/awk$n.h") >"$t/diff"; then
		echo "FAIL genconfig $1: differs from kconfiglib: $(tr '\n' ' ' <"$t/diff" | cut -c1-300)"
	else
		echo "PASS genconfig $1"
	fi
}
check defconfig "$(cat configs/defconfig)"
check minimal_defconfig "$(cat configs/minimal_defconfig)"
check empty ""
check no_tls $'# CONFIG_TLS is not set\n'
check no_relay_slots_set $'# CONFIG_RELAY is not set\nCONFIG_RELAY_SLOTS=8\n'
check ints $'CONFIG_RELAY_SLOTS=8\nCONFIG_MAX_CONNS=64\nCONFIG_TLS_OBUF=100\nCONFIG_IBUF=99999999\n'
check imap_and_off $'CONFIG_IMAP=y\n# CONFIG_RPC is not set\n# CONFIG_SYSLOG is not set\nCONFIG_IPV6=n\n'
check later_wins $'CONFIG_POP3=y\n# CONFIG_POP3 is not set\n'
# the awk refuses what it cannot evaluate instead of guessing
printf 'config X\n\tbool "x"\n\tselect Y\n' > "$t/Kbad"
if scripts/genconfig.sh "$t/Kbad" /dev/null "$t/bad.h" 2>/dev/null; then
	echo "FAIL genconfig select: accepted a Kconfig feature it does not implement"
else
	echo "PASS genconfig refuses unsupported Kconfig"
fi

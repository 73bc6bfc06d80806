#!/usr/bin/env bash
# tests/board/run.sh [--bin PATH] [test ...]: the checks of board/ (packages,
# LuCI app, the plain web page in a real browser) and of the build host
# independence (config header without kconfiglib).  Each test_* file prints
# PASS/FAIL/SKIP lines; the last line here is "N passed, N failed".
# Installs what they need by Debian package name (root on Debian 12).
set -u
cd "$(dirname "$0")/../.."
bin=./kotak
while [ $# -gt 0 ]; do
	case "$1" in
	--bin) bin=$2; shift 2 ;;
	*) break ;;
	esac
done
case "$bin" in /*) ;; *) bin="$PWD/$bin" ;; esac
export KOTAK_BIN="$bin"
files=("$@")
[ ${#files[@]} -gt 0 ] || files=(tests/board/test_*)

# command -> Debian package
missing=""
for p in node:nodejs busybox:busybox chromium:chromium chromedriver:chromium-driver \
	shellcheck:shellcheck unshare:util-linux rsync:rsync file:file qemu-mips-static:qemu-user-static; do
	command -v "${p%%:*}" >/dev/null 2>&1 || missing="$missing ${p#*:}"
done
/usr/bin/python3 -c 'import selenium' 2>/dev/null || missing="$missing python3-selenium"
/usr/bin/python3 -c 'import kconfiglib' 2>/dev/null || missing="$missing python3-kconfiglib"
if [ -n "$missing" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	echo "board: installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null || echo "board: apt-get update failed" >&2
	# shellcheck disable=SC2086
	apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $missing >/dev/null ||
		echo "board: apt-get install failed:$missing" >&2
fi

pass=0 fail=0 skip=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for f in "${files[@]}"; do
	echo "-- $(basename "$f")"
	case "$f" in
	*.py) timeout -k 5 300 /usr/bin/python3 "$f" >"$out" 2>&1 ;;
	*) timeout -k 5 300 bash "$f" >"$out" 2>&1 ;;
	esac
	rc=$?
	cat "$out"
	p=$(grep -c '^PASS ' "$out"); x=$(grep -c '^FAIL ' "$out"); s=$(grep -c '^SKIP ' "$out")
	pass=$((pass + p)) fail=$((fail + x)) skip=$((skip + s))
	if [ $rc -ne 0 ] && [ "$x" -eq 0 ]; then
		echo "FAIL $(basename "$f"): exited $rc"
		fail=$((fail + 1))
	fi
done
line="$pass passed, $fail failed"
[ $skip -gt 0 ] && line="$line, $skip skipped"
echo "$line"
[ $fail -eq 0 ]

#!/usr/bin/env bash
# tests/run.sh [--bin PATH] [--label NAME] [tests/integ/test_x.py ...]
#
# Runs kotak's integration tests (tests/integ/test_*.py, Python stdlib only)
# against the binary PATH (default ./kotak).  Each test prints
# "PASS name", "FAIL name: reason" or "SKIP name: reason"; the last line of
# this script is "N passed, N failed" (", N skipped" when any), exit 1 on any
# failure.  As root on Debian it first installs missing tools with apt-get.
# All traffic stays on 127.0.0.1 / ::1.
set -u

here=$(cd "$(dirname "$0")" && pwd)
bin=./kotak
label=integ
files=()

while [ $# -gt 0 ]; do
	case "$1" in
	--bin) bin=$2; shift 2 ;;
	--bin=*) bin=${1#--bin=}; shift ;;
	--label) label=$2; shift 2 ;;
	--label=*) label=${1#--label=}; shift ;;
	-h|--help) sed -n '2,9p' "$0"; exit 0 ;;
	*) files+=("$1"); shift ;;
	esac
done

# ---- tools: command -> Debian package
need_pkgs() {
	local pairs="python3:python3 swaks:swaks mutt:mutt curl:curl tmux:tmux
		openssl:openssl mount:mount timeout:coreutils dnsmasq:dnsmasq-base fetchmail:fetchmail
		strace:strace dovecot:dovecot-imapd mbsync:isync offlineimap:offlineimap3"
	local p cmd pkg out=""
	for p in $pairs; do
		cmd=${p%%:*}; pkg=${p#*:}
		command -v "$cmd" >/dev/null 2>&1 || out="$out $pkg"
	done
	echo "${out# }"
}

missing=$(need_pkgs)
if [ -n "$missing" ]; then
	if [ "$(id -u)" = 0 ] && [ -f /etc/debian_version ] && command -v apt-get >/dev/null; then
		echo "run.sh: installing:$missing"
		export DEBIAN_FRONTEND=noninteractive
		apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null ||
			echo "run.sh: apt-get update failed" >&2
		# shellcheck disable=SC2086
		apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $missing >/dev/null ||
			echo "run.sh: apt-get install failed:$missing" >&2
	else
		echo "run.sh: missing tools (tests using them will SKIP):$missing" >&2
	fi
fi

if ! command -v python3 >/dev/null 2>&1; then
	echo "run.sh: python3 is required"
	echo "0 passed, 1 failed"
	exit 1
fi

case "$bin" in /*) ;; *) bin="$PWD/$bin" ;; esac
if [ ! -x "$bin" ]; then
	echo "FAIL binary: $bin does not exist or is not executable"
	echo "0 passed, 1 failed"
	exit 1
fi
export KOTAK_BIN="$bin"
export PYTHONDONTWRITEBYTECODE=1
export PYTHONUNBUFFERED=1

if [ ${#files[@]} -eq 0 ]; then
	files=("$here"/integ/test_*.py)
fi

pass=0 fail=0 skip=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT
start=$(date +%s)
echo "== $label: kotak integration tests, binary $bin"
for f in "${files[@]}"; do
	name=$(basename "$f" .py)
	echo "-- $name"
	# one file may not hang the suite, nor a slow machine fail it: test_pop3
	# under ASan took 139 s with both cores busy (before its kill -9 test
	# went from 400 to 200 ms a step), and 150 s was the limit
	t0=$(date +%s)
	timeout -k 5 240 python3 "$f" >"$out" 2>&1
	rc=$?
	cat "$out"
	echo "-- $name: $(( $(date +%s) - t0 )) s"
	p=$(grep -c '^PASS ' "$out")
	x=$(grep -c '^FAIL ' "$out")
	s=$(grep -c '^SKIP ' "$out")
	pass=$((pass + p)); fail=$((fail + x)); skip=$((skip + s))
	if [ $rc -ne 0 ] && [ "$x" -eq 0 ]; then
		if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
			echo "FAIL $name: timed out"
		else
			echo "FAIL $name: exited $rc"
		fi
		fail=$((fail + 1))
	fi
done
echo "== $label: $(( $(date +%s) - start )) s"
line="$pass passed, $fail failed"
[ "$skip" -gt 0 ] && line="$line, $skip skipped"
echo "$line"
[ "$fail" -eq 0 ]

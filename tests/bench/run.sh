#!/usr/bin/env bash
# tests/bench/run.sh [ARGS...]: runs every benchmark in tests/bench
# (tests/bench/*_bench.sh, in name order: pop3, relay, smtp, tls) with ARGS,
# one after the other; each takes --keep, smtp and relay also --strict.
# Benchmarks are not tests: `make test` does not run them.  A Makefile
# target can be simply `bench: kotak ; tests/bench/run.sh`.
# Exit: non-zero when any benchmark failed (its own exit code is shown).
set -u
here=$(cd "$(dirname "$0")" && pwd)
rc=0 n=0
for b in "$here"/*_bench.sh; do
	[ -e "$b" ] || continue
	n=$((n + 1))
	echo "== $(basename "$b")"
	bash "$b" "$@"
	r=$?
	if [ "$r" -ne 0 ]; then
		echo "== $(basename "$b"): exit $r"
		rc=1
	fi
done
[ "$n" -gt 0 ] || { echo "no benchmarks in $here"; exit 1; }
exit $rc

#!/usr/bin/env bash
# tests/fuzz/replay.sh: build every fuzz target without libFuzzer (gcc,
# ASan+UBSan, tests/fuzz/standalone.c as main) into build-fuzz/replay/
# and run each over its committed corpus, tests/fuzz/corpus/TARGET/ (the
# _small variants too).  For `make test` (tests/all.sh): a few seconds,
# no clang needed.  Each target is one test; the last line is
# "N passed, N failed".  FUZZ_CC picks the compiler (default gcc).
set -u
cd "$(dirname "$0")/../.."
pass=0 fail=0

mkdir -p build-fuzz
if ! tests/fuzz/build.sh replay >build-fuzz/replay.log 2>&1; then
	cat build-fuzz/replay.log
	rm -f build-fuzz/replay.log
	echo "FAIL fuzz build"
	echo "0 passed, 1 failed"
	exit 1
fi
rm -f build-fuzz/replay.log
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
for b in $(cd build-fuzz/replay && ls fuzz_* | grep -v '\.'); do
	seeds=tests/fuzz/corpus/${b%_small}
	if out=$(./build-fuzz/replay/"$b" "$seeds" 2>&1); then
		echo "PASS fuzz replay $b: $(echo "$out" | tail -n 1 | sed 's/.*: //')"
		pass=$((pass + 1))
	else
		echo "$out" | tail -n 30
		echo "FAIL fuzz replay $b"
		fail=$((fail + 1))
	fi
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]

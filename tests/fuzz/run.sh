#!/usr/bin/env bash
# tests/fuzz/run.sh [TARGET...]: build kotak's libFuzzer targets into
# build-fuzz/ (clang, ASan+UBSan) and run each for FUZZ_SECS seconds
# (default 30), one after the other on one core.  TARGET is a name like
# fuzz_data or fuzz_data_small; default: all of them.
#
# Seeds come from tests/fuzz/corpus/TARGET/ (the _small variants share
# their target's seeds); what the fuzzer finds goes to build-fuzz/corpus/
# (kept between runs, not committed) and crash inputs to
# build-fuzz/crashes/.  Exit 1 if any target crashed or failed to build.
# Env: FUZZ_SECS, FUZZ_MAX_LEN (default 4096), FUZZ_CC (default clang).
set -u
cd "$(dirname "$0")/../.."
secs=${FUZZ_SECS:-30}
maxlen=${FUZZ_MAX_LEN:-4096}

if ! tests/fuzz/build.sh libfuzzer; then
	echo "run.sh: build failed (clang with libclang-rt (libFuzzer) needed:" \
	    "apt-get install clang libclang-rt-14-dev)" >&2
	exit 1
fi
if [ $# -gt 0 ]; then
	bins="$*"
else
	bins=$(cd build-fuzz && ls fuzz_* | grep -v '\.' )
fi

mkdir -p build-fuzz/crashes
fail=0 failed="" summary=""
for b in $bins; do
	seeds=tests/fuzz/corpus/${b%_small}
	work=build-fuzz/corpus/$b
	mkdir -p "$work"
	log=build-fuzz/$b.log
	echo "== $b: ${secs}s"
	./build-fuzz/"$b" -max_total_time="$secs" -max_len="$maxlen" -timeout=10 \
	    -print_final_stats=1 -artifact_prefix=build-fuzz/crashes/"$b"- \
	    "$work" "$seeds" >"$log" 2>&1
	rc=$?
	grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' "$log" | tail -n 2 | sed 's/^/   /'
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2)
	corp=$(grep -oE 'corp: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2)
	if [ $rc -ne 0 ]; then
		echo "FAIL $b (exit $rc): see $log"
		grep -E 'ERROR|invariant|SUMMARY|Test unit written|^[a-z].*: .*differs|reply|stalls' "$log" | head -n 8 | sed 's/^/   /'
		fail=1
		failed="$failed $b"
		res=CRASH
	else
		echo "ok   $b"
		res=ok
	fi
	summary="$summary$(printf '%-22s %6ss %10s %6s %6s  %s' "$b" "$secs" "${execs:-?}" "${cov:-?}" "${corp:-?}" "$res")
"
done
echo "== summary (ASan+UBSan, libFuzzer)"
printf '%-22s %7s %10s %6s %6s  %s\n' target time execs cov corpus result
printf '%s' "$summary"
if [ $fail -ne 0 ]; then
	echo "run.sh: crashes in:$failed"
	exit 1
fi
echo "run.sh: no crashes"

#!/usr/bin/env bash
# tests/lint.sh (make lint; make test runs it): checks no compiler makes.
#  - C: a feature is tested with #if ENABLE_X, never #ifdef (an ENABLE_X
#    defined 0 would count as on);
#  - Python (tests, benches, scripts): every file compiles (a syntax error
#    in a bench or a test helper shows nowhere else until it runs).
# Last line "N passed, N failed".
cd "$(dirname "$0")/.."
p=0 f=0
if out=$(grep -nE '#if(n?def| defined).*(ENABLE|CONFIG)_' src/*.c src/*.h); then
	echo "$out"
	echo "FAIL lint C: use #if ENABLE_X, not #ifdef"
	f=$((f + 1))
else
	echo "PASS lint C: features tested with #if ENABLE_X"
	p=$((p + 1))
fi
n=0 bad=0
for py in $(find tests scripts board -name '*.py' | sort); do
	n=$((n + 1))
	if ! err=$(python3 -c 'import sys; compile(open(sys.argv[1], "rb").read(), sys.argv[1], "exec")' "$py" 2>&1); then
		echo "$err" | tail -n 3
		echo "  $py does not compile"
		bad=$((bad + 1))
	fi
done
if [ $bad -eq 0 ]; then
	echo "PASS lint Python: $n files compile"
	p=$((p + 1))
else
	echo "FAIL lint Python: $bad of $n files do not compile"
	f=$((f + 1))
fi
echo "$p passed, $f failed"
[ "$f" -eq 0 ]

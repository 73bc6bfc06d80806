#!/usr/bin/env bash
# tests/bench/abuse_bench.sh: issue 14's figures (README "Holding up under
# abuse"): a 1,000-connection flood, password guessing from 1, 100 and 1,000
# addresses, a tarpit MX; see abuse_bench.py.  Arguments are ignored (run.sh
# passes --keep/--strict to every benchmark).  About 3.5 minutes.
exec python3 "$(dirname "$0")/abuse_bench.py"

#!/usr/bin/env bash
# tests/bench/rpc_bench.sh [--keep]: how long `kotak rpc call status` takes
# while the daemon holds 100 open SMTP sessions and 1,000 queued messages
# (deferred: the relay's resolver is 127.0.0.1:9, where nothing answers).
# Prints min, median, 90th percentile and max wall time of RUNS (50) calls,
# each a fresh process as rpcd or the CGI starts it.  Goal (issue 13): well
# under 50 ms.  Loopback only; needs ./kotak (BIN=... for another).
set -eu
cd "$(dirname "$0")/../.."
exec python3 - "$@" <<'PY'
import json, os, statistics, subprocess, sys, time
sys.path.insert(0, "tests/integ")
os.environ.setdefault("KOTAK_BIN", os.path.abspath(os.environ.get("BIN", "kotak")))
import kt

runs = int(os.environ.get("RUNS", "50"))
k = kt.Kotak(users=("admin",), main={"max_sessions": "128", "max_sessions_per_ip": "128", "login_timeout": "300"})
if "--keep" in sys.argv:
    k.keep = True
try:
    t0 = time.time()
    for i in range(1000):
        r = kt.run_kotak(["-c", k.conf, "sendmail", "u%d@remote%d.example" % (i, i % 20)],
                         stdin=b"Subject: bench\n\nqueued for the status benchmark\n")
        assert r.returncode == 0, r.stderr
    print("queued 1000 messages in %.1f s" % (time.time() - t0))
    # from 100 addresses: one address may not hold the last quarter of the slots
    conns = [k.connect(src="127.0.1.%d" % (i + 1)) for i in range(100)]
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        out = subprocess.run([kt.BIN, "-c", k.conf, "rpc", "call", "status"], input=b"{}",
                             stdout=subprocess.PIPE, check=True).stdout
        times.append((time.perf_counter() - t) * 1000)
    st = json.loads(out)
    assert st["sessions"]["smtp"] == 100 and st["queue"]["messages"] == 1000, st
    times.sort()
    print("status with %d SMTP sessions and %d queued (%d deferred): %d calls, "
          "min %.1f ms, median %.1f ms, p90 %.1f ms, max %.1f ms" % (
              st["sessions"]["smtp"], st["queue"]["messages"], st["queue"]["deferred"], runs,
              times[0], statistics.median(times), times[int(runs * 0.9) - 1], times[-1]))
    for c in conns:
        c.close()
finally:
    k.cleanup()
PY

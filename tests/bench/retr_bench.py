#!/usr/bin/env python3
"""Server CPU for a 20 MB POP3 RETR (plain, loopback), 5 RETRs.

The CPU kotak spends (utime + stime from /proc/PID/stat, 10 ms ticks)
while one client reads a 20 MB message; the client's own reading time is
not counted.  Usage: tests/bench/retr_bench.py [--tls] [KOTAK_BINARY ...]
(default ./kotak; name two binaries to compare them, alternating; --tls:
over POP3S)."""

import os
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "integ"))
tls = "--tls" in sys.argv
bins = [os.path.abspath(b) for b in sys.argv[1:] if b != "--tls"] or [os.path.join(here, "..", "..", "kotak")]
os.environ["KOTAK_BIN"] = bins[0]
sys.argv = sys.argv[:1]
import kt  # noqa: E402
import test_pop3  # noqa: E402


def cpu_ms(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) * 1000 // os.sysconf("SC_CLK_TCK")


def run(binary):
    kt.BIN = binary
    k = test_pop3.KP(protos=("smtp", "pop3", "pop3s"), clear=False) if tls else test_pop3.KP()
    try:
        test_pop3.big_mailbox(k, n=1, each=20000000)
        cpu, wall = [], []
        for _ in range(5):
            p = k.pop(proto="pop3s" if tls else "pop3")
            c0, t0 = cpu_ms(k.proc.pid), time.monotonic()
            p._putcmd("RETR 1")
            p.file.readline()
            n = 0
            while True:
                line = p.file.readline()
                if line == b".\r\n" or not line:
                    break
                n += len(line)
            wall.append(time.monotonic() - t0)
            cpu.append(cpu_ms(k.proc.pid) - c0)
            p.quit()
        print("%s%s: %d bytes; server CPU ms %s; client wall median %.3f s" %
              (binary, " (POP3S)" if tls else "", n, cpu, sorted(wall)[2]))
    finally:
        k.cleanup()


for rnd in range(2 if len(bins) > 1 else 1):
    for b in bins:
        run(b)

#!/usr/bin/env python3
"""The longest loop stall while a 100 MB mailbox is reindexed, resynced and
expunged (issue 11: at most 50 ms).

kotak is one select() loop: while a callback works, nobody else is served.
A client on SMTP sends NOOP after NOOP on one connection and records each
round trip; the longest one during a phase, less the usual round trip, is
how long the loop stood still.  Phases, on a 100 MB INBOX of 5,000
messages of 20 KB (page cache warm; files in a temp dir):
  reindex  the first POP3 login on the mbox without an index
  resync   another program removes message 2, rewriting the file in place
           (as mutt does) under an open POP3 session, which then RETRs
  expunge  a new POP3 session: DELE 1 (all 100 MB after it move), QUIT and
           close at once
Usage: tests/bench/stall_bench.py [KOTAK_BINARY]   (default ./kotak; run
it on an older build to compare).  Loopback only."""

import os
import poplib
import socket
import subprocess
import sys
import tempfile
import threading
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "integ"))
if len(sys.argv) > 1:
    os.environ["KOTAK_BIN"] = os.path.abspath(sys.argv[1])
import kt  # noqa: E402

N, EACH = 5000, 20000


class Pinger(threading.Thread):
    def __init__(self, port):
        threading.Thread.__init__(self, daemon=True)
        self.s = socket.create_connection((kt.LOOPBACK, port))
        self.f = self.s.makefile("rb")
        self.f.readline()
        self.s.sendall(b"EHLO bench\r\n")
        while not self.f.readline().startswith(b"250 "):
            pass
        self.lat = []
        self.stop = False
        self.mark = 0

    def run(self):
        while not self.stop:
            t = time.monotonic()
            self.s.sendall(b"NOOP\r\n")
            self.f.readline()
            self.lat.append((t, time.monotonic() - t))
            time.sleep(0.0005)

    def worst(self, t0, t1):
        v = [d for t, d in self.lat if t0 <= t <= t1]
        return max(v) if v else 0.0

    def usual(self):
        v = sorted(d for _, d in self.lat[:200])
        return v[len(v) // 2] if v else 0.0


def mbox_bytes():
    pad = b"x" * 76 + b"\n"
    out = []
    for i in range(N):
        h = b"From s%d@example.org Thu Nov 26 12:00:00 2026\nFrom: s@example.org\nSubject: m%d\n\n" % (i, i)
        out.append(h + pad * ((EACH - len(h)) // len(pad)) + b"\n")
    return b"".join(out)


def main():
    k = kt.KotakTls(protos=("smtp", "pop3"), lists={"cleartext_auth_net": ["127.0.0.0/8"]},
                    users=("alice",), start=False)
    try:
        path = os.path.join(k.data_dir, "mail", "alice", "INBOX")
        os.makedirs(os.path.dirname(path), mode=0o700)
        data = mbox_bytes()
        with open(path, "wb") as f:
            f.write(data)
        os.sync()                                   # the bench's own writes out of the way
        k.start()
        if os.environ.get("STALL_STRACE"):
            st = subprocess.Popen(["strace", "-f", "-tt", "-T", "-e", "trace=fsync,fdatasync,sync_file_range,ftruncate,rename,unlink",
                                   "-o", os.environ["STALL_STRACE"], "-p", str(k.proc.pid)])
            time.sleep(0.5)
        ping = Pinger(k.addr_of("smtp")[1])
        ping.start()
        time.sleep(0.3)
        res = {}

        def pop():
            p = poplib.POP3(kt.LOOPBACK, k.addr_of("pop3")[1], timeout=120)
            p.user("alice")
            p.pass_(kt.DEFAULT_PASSWORD)
            return p

        t0 = time.monotonic()
        p = pop()                                   # reindex: no index yet
        res["reindex"] = (t0, time.monotonic())
        # resync: another program removes message 2 under the session
        m1 = data.index(b"\n\nFrom ", 0) + 2
        m2 = data.index(b"\n\nFrom ", m1) + 2
        with open(path, "r+b") as f:
            f.seek(m1)
            f.write(data[m2:])
            f.truncate()
        os.sync()
        time.sleep(1.1)                             # a new second: an mtime kotak can see
        t0 = time.monotonic()
        p.retr(3)
        res["resync"] = (t0, time.monotonic())
        p.quit()
        # expunge: DELE 1, QUIT and close without reading the answer
        p = pop()
        p.dele(1)
        os.sync()
        size = os.path.getsize(path)
        t0 = time.monotonic()
        p._putcmd("QUIT")
        p.sock.close()
        kt.wait_for(lambda: os.path.getsize(path) < size - EACH // 2, 120, interval=0.01, what="expunged")
        time.sleep(0.2)
        res["expunge"] = (t0, time.monotonic())
        ping.stop = True
        ping.join(5)
        base = ping.usual()
        print("kotak %s: usual NOOP round trip %.2f ms" % (kt.BIN, base * 1000))
        for ph in ("reindex", "resync", "expunge"):
            a, b = res[ph]
            print("  %-8s %6.2f s, longest loop stall %7.1f ms" % (ph, b - a, (ping.worst(a, b) - base) * 1000))
            if os.environ.get("STALL_DEBUG"):
                print("   ", sorted(((round(d * 1000, 1), round(t - a, 3)) for t, d in ping.lat if a <= t <= b), reverse=True)[:5])
    finally:
        k.cleanup()


if __name__ == "__main__":
    main()

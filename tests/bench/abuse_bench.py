#!/usr/bin/env python3
"""tests/bench/abuse_bench.py: the figures of README "Holding up under
abuse" (issue 14), on the real binary, loopback only (127.x sources).

  flood    5 addresses open 1,000 connections and hold them: how long a
           client from another address waits for its greeting, how many
           slots other addresses can still get
  guess    wrong SMTP AUTH passwords for BENCH_SECS (60) seconds from 1,
           100 and 1,000 addresses, each address retrying a second after
           each answer: passwords checked per minute (kotak's "auth failed"
           log lines)
  tarpit   6 messages for a domain whose MX accepts and never greets are
           queued, then one for another domain: how long that one takes to
           reach its MX (dnsmasq on 127.0.12.53, peers on 127.0.12.x)

During each, a probe session from its own address sends NOOP every 10 ms:
its longest round trip is the longest the loop kept everyone waiting
("stall"; it includes this machine's scheduling noise).

  python3 tests/bench/abuse_bench.py [flood] [guess] [tarpit]
  KOTAK_BIN=/path/to/kotak BENCH_SECS=60 ...    (another binary: a before/after)
"""

import asyncio
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integ"))
import kt  # noqa: E402

SECS = int(os.environ.get("BENCH_SECS", "60"))


class Probe:
    """NOOP every 10 ms on its own session; the longest round trip."""

    def __init__(self, k):
        self.c = k.session(src="127.0.99.1", timeout=30)
        self.worst = 0.0
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop:
            t0 = time.monotonic()
            self.c.ok("NOOP", 250, timeout=30)
            self.worst = max(self.worst, time.monotonic() - t0)
            time.sleep(0.01)

    def done(self):
        self.stop = True
        self.t.join(30)
        self.c.close()
        return self.worst


def flood():
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    k = kt.Kotak(users=("alice",))
    probe = Probe(k)
    socks = []
    for i in range(1000):
        s = socket.socket()
        s.bind(("127.0.1.%d" % (1 + i % 5), 0))
        s.setblocking(False)
        s.connect_ex(k.listens[0])
        socks.append(s)
        if i % 50 == 49:
            time.sleep(0.01)
    waits = []
    for i in range(20):
        t0 = time.monotonic()
        try:
            c = k.connect(src="127.0.2.%d" % (i + 1), timeout=10)
            c.close()
        except (OSError, kt.Closed, AssertionError):
            pass        # not greeted within 10 s
        waits.append(time.monotonic() - t0)
    held = []
    for i in range(200):
        try:
            c = k.connect(src="127.0.3.%d" % (i + 1), greet=False, timeout=10)
            if c.reply(timeout=10).code != 220:
                c.close()
                break
        except (OSError, kt.Closed):
            break
        held.append(c)
    stall = probe.done()
    refused = len(re.findall(r"session refused ip=127\.0\.1\.", k.log()))
    print("flood: 5 addresses, 1,000 connections (%d refused): greeting of another address "
          "median %.3f s, worst %.3f s; slots left for other addresses %d of %d; longest stall %.3f s"
          % (refused, sorted(waits)[len(waits) // 2], max(waits), len(held), 100, stall))
    for c in held:
        c.close()
    for s in socks:
        s.close()
    k.cleanup()


async def guesser(host, port, src, until, counts):
    while time.monotonic() < until:
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(host, port, local_addr=(src, 0)), 10)
        except (OSError, asyncio.TimeoutError):
            await asyncio.sleep(1)
            continue
        try:
            g = await asyncio.wait_for(r.readline(), 10)
            if not g.startswith(b"220"):
                counts["refused"] += 1
                continue
            w.write(b"EHLO guess.example\r\n")
            while True:
                ln = await asyncio.wait_for(r.readline(), 10)
                if not ln or ln[3:4] == b" ":
                    break
            w.write(b"AUTH PLAIN %s\r\n" % kt.sasl_plain("alice", "guess%d" % counts["n"]).encode())
            counts["n"] += 1
            ln = await asyncio.wait_for(r.readline(), 90)
            counts[ln[:3].decode(errors="replace") or "closed"] = counts.get(ln[:3].decode(errors="replace"), 0) + 1
        except (OSError, asyncio.TimeoutError):
            pass
        finally:
            w.close()
        await asyncio.sleep(1)


def guess():
    for n in (1, 100, 1000):
        k = kt.KotakTls(users=("alice",), protos=("smtp",), lists={"cleartext_auth_net": ["127.0.0.0/8"]})
        probe = Probe(k)
        counts = {"n": 0, "refused": 0}
        until = time.monotonic() + SECS
        srcs = ["127.%d.%d.%d" % (20 + i // 62500, (i // 250) % 250, i % 250 + 1) for i in range(n)]

        async def all_():
            await asyncio.gather(*(guesser(k.host, k.port, s, until, counts) for s in srcs))
        asyncio.run(all_())
        stall = probe.done()
        checked = k.log().count("auth failed ip=127.")
        print("guess: %4d address(es), %d s: %d passwords checked (%.1f a minute); answers %s; "
              "longest stall %.3f s" % (n, SECS, checked, checked * 60.0 / SECS,
                                        {c: v for c, v in counts.items() if c != "n"}, stall))
        k.cleanup()


def tarpit():
    if shutil.which("dnsmasq") is None:
        print("tarpit: dnsmasq not installed")
        return
    d = tempfile.mkdtemp(prefix="kt-bench-")
    dns_ip, good, bad = "127.0.12.53", "127.0.12.1", "127.0.12.2"
    port = kt.free_port(good)
    dport = kt.free_port(dns_ip)
    a = ["dnsmasq", "--no-resolv", "--no-hosts", "--no-poll", "--conf-file=/dev/null", "--keep-in-foreground",
         "--pid-file=", "--port=%d" % dport, "--listen-address=" + dns_ip, "--bind-interfaces", "--local=/test/",
         "--mx-host=good.test,mx.good.test,10", "--host-record=mx.good.test," + good,
         "--mx-host=tarpit.test,mx.tarpit.test,10", "--host-record=mx.tarpit.test," + bad]
    if os.geteuid() == 0:
        a.append("--user=root")
    dns = subprocess.Popen(a, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    held, got = [], []
    lt = socket.socket()
    lt.bind((bad, port))
    lt.listen(64)
    threading.Thread(target=lambda: [held.append(lt.accept()) for _ in iter(int, 1)], daemon=True).start()
    ls = socket.socket()
    ls.bind((good, port))
    ls.listen(16)

    def sink():
        while True:
            c, _ = ls.accept()
            f = c.makefile("rb")
            c.sendall(b"220 sink\r\n")
            for ln in f:
                v = ln[:4].upper()
                if v == b"DATA":
                    c.sendall(b"354 go\r\n")
                    for b in f:
                        if b == b".\r\n":
                            break
                    got.append(time.monotonic())
                    c.sendall(b"250 ok\r\n")
                elif v == b"QUIT":
                    c.sendall(b"221 bye\r\n")
                    break
                else:
                    c.sendall(b"250 ok\r\n")
            c.close()
    threading.Thread(target=sink, daemon=True).start()
    k = kt.Kotak(users=("alice",), main={"dns_server": "%s:%d" % (dns_ip, dport), "relay_port": port})
    k.write_config(k.config_text().replace("config kotak 'main'\n",
                                           "config kotak 'main'\n\tlist relay_net '127.0.0.1/32'\n", 1))
    k.restart()
    probe = Probe(k)
    for i in range(6):
        k.send(["u%d@tarpit.test" % i], kt.msg("tarpit%d" % i), sender="alice@" + kt.DOMAIN)
    end = time.monotonic() + 10
    while len(held) < 2 and time.monotonic() < end:
        time.sleep(0.05)
    time.sleep(1)
    t0 = time.monotonic()
    k.send(["x@good.test"], kt.msg("unrelated"), sender="alice@" + kt.DOMAIN)
    end = time.monotonic() + 120
    while not got and time.monotonic() < end:
        time.sleep(0.01)
    stall = probe.done()
    print("tarpit: 6 messages for a tarpit MX queued (it holds %d sessions): another domain's message "
          "reached its MX after %s; longest stall %.3f s"
          % (len(held), "%.3f s" % (got[0] - t0) if got else "more than 120 s (never)", stall))
    k.cleanup()
    dns.terminate()
    dns.wait(5)
    shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    todo = sys.argv[1:] or ["flood", "guess", "tarpit"]
    print("kotak %s, %s" % (kt.BIN, time.strftime("%Y-%m-%d")))
    for t in todo:
        {"flood": flood, "guess": guess, "tarpit": tarpit}[t]()
    for k in list(kt.Kotak.live):
        k.cleanup()

#!/usr/bin/env python3
"""One slow remote domain must not stall the relay (issue 14): a
per-destination limit on the outbound slots, connect and greeting timeouts
of the relay's own, and a bound on one attempt over all MX hosts.

dnsmasq answers for .test on a loopback address only (--no-resolv,
--local=/test/), kotak asks it alone (option dns_server); MX hosts are
127.0.11.x: a tarpit that accepts and never greets, and a plain SMTP sink.
Nothing leaves loopback."""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kt  # noqa: E402
from kt import test, check, eq  # noqa: E402

DNS_IP = "127.0.11.53"
GOOD = "127.0.11.1"
TARPITS = ["127.0.11.%d" % (10 + i) for i in range(8)]
BLACKHOLE = "127.0.11.30"
ENV = {}


class Tarpit:
    """Accepts connections and never says a word; counts them."""

    def __init__(self, ip, port):
        self.conns = 0
        self.held = []
        self.s = socket.socket()
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.s.bind((ip, port))
        self.s.listen(64)
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while True:
            try:
                c, _ = self.s.accept()
            except OSError:
                return
            self.conns += 1
            self.held.append(c)


class Blackhole:
    """A listener whose accept queue is full and never drained: the kernel
    drops every further SYN, so a connect to it never completes (a host
    that does not answer)."""

    def __init__(self, ip, port):
        self.s = socket.socket()
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.s.bind((ip, port))
        self.s.listen(0)
        self.fill = socket.create_connection((ip, port), timeout=5)


class Sink:
    """A minimal SMTP server that accepts everything; subjects it got."""

    def __init__(self, ip, port):
        self.subjects = []
        self.s = socket.socket()
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.s.bind((ip, port))
        self.s.listen(16)
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while True:
            try:
                c, _ = self.s.accept()
            except OSError:
                return
            threading.Thread(target=self.session, args=(c,), daemon=True).start()

    def session(self, c):
        f = c.makefile("rb")
        say = lambda t: c.sendall(t.encode() + b"\r\n")
        try:
            say("220 sink ESMTP")
            while True:
                ln = f.readline()
                if not ln:
                    return
                v = ln[:4].upper()
                if v == b"EHLO":
                    say("250-sink\r\n250 8BITMIME")
                elif v == b"DATA":
                    say("354 go")
                    raw = b""
                    while not raw.endswith(b"\r\n.\r\n"):
                        d = f.readline()
                        if not d:
                            return
                        raw += d
                    m = re.search(rb"Subject: (\S+)", raw)
                    self.subjects.append(m.group(1).decode() if m else "")
                    say("250 2.0.0 Ok")
                elif v == b"QUIT":
                    say("221 bye")
                    return
                else:
                    say("250 Ok")
        except OSError:
            pass
        finally:
            c.close()


def setup():
    if shutil.which("dnsmasq") is None:
        return
    d = tempfile.mkdtemp(prefix="kt-slow-")
    kt.at_exit(lambda: shutil.rmtree(d, ignore_errors=True))
    dport = kt.free_port(DNS_IP)
    a = ["dnsmasq", "--no-resolv", "--no-hosts", "--no-poll", "--conf-file=/dev/null",
         "--keep-in-foreground", "--pid-file=", "--port=%d" % dport, "--listen-address=" + DNS_IP,
         "--bind-interfaces", "--local=/test/", "--log-facility=-",
         "--mx-host=good.test,mx.good.test,10", "--host-record=mx.good.test," + GOOD,
         "--mx-host=tarpit.test,mx.tarpit.test,10", "--host-record=mx.tarpit.test," + TARPITS[0],
         "--mx-host=blackhole.test,mx.blackhole.test,10", "--host-record=mx.blackhole.test," + BLACKHOLE]
    for i, ip in enumerate(TARPITS):     # eight MX hosts, all tarpits
        a += ["--mx-host=many.test,mx%d.many.test,%d" % (i, 10 + i), "--host-record=mx%d.many.test,%s" % (i, ip)]
    if os.geteuid() == 0:
        a.append("--user=root")
    p = subprocess.Popen(a, stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, "dnsmasq.log"), "wb"))

    def stop():
        p.terminate()
        p.wait(5)
    kt.at_exit(stop)
    time.sleep(0.3)
    check(p.poll() is None, "dnsmasq exited: %s" % open(os.path.join(d, "dnsmasq.log")).read()[-400:])
    for _ in range(50):
        port = kt.free_port(GOOD)
        try:
            ENV["sink"] = Sink(GOOD, port)
            ENV["tarpits"] = [Tarpit(ip, port) for ip in TARPITS]
            ENV["blackhole"] = Blackhole(BLACKHOLE, port)
            break
        except OSError:
            continue
    ENV["port"] = port
    ENV["dns"] = "%s:%d" % (DNS_IP, dport)


def relay_kotak(**main):
    if not ENV:
        raise kt.Skip("dnsmasq not installed")
    m = {"dns_server": ENV["dns"], "relay_port": ENV["port"], "retry_min": 60, "retry_max": 60}
    m.update(main)
    k = kt.Kotak(users=("alice",), main=m)
    k.write_config(k.config_text().replace("config kotak 'main'\n",
                                           "config kotak 'main'\n\tlist relay_net '127.0.0.1/32'\n", 1))
    k.restart()
    kt.after_test(k.cleanup)
    return k


def queue(k, rcpt, subject):
    eq(k.send([rcpt], kt.msg(subject=subject, sender="alice@" + kt.DOMAIN), sender="alice@" + kt.DOMAIN).code,
       250, "queued for %s" % rcpt)


@test(timeout=90)
def tarpit_domain_does_not_stall_other_mail():
    """The issue's goal: with a tarpit domain in the queue, mail to another
    domain leaves within seconds (it waited for the 300 s greeting timeout
    of every slot)."""
    k = relay_kotak()
    tp = ENV["tarpits"][0]
    n0 = tp.conns
    for i in range(6):
        queue(k, "u%d@tarpit.test" % i, "tarpit%d" % i)
    kt.wait_for(lambda: tp.conns - n0 >= 2, 15, what="the tarpit holding relay slots")
    time.sleep(0.5)     # room for more tarpit sessions, were they allowed
    t0 = time.monotonic()
    queue(k, "someone@good.test", "unrelated")
    kt.wait_for(lambda: "unrelated" in ENV["sink"].subjects, 15, what="the unrelated message at its MX")
    took = time.monotonic() - t0
    check(took < 10, "the unrelated message took %.1f s" % took)
    eq(tp.conns - n0, 2, "sessions the tarpit got (half the 4 relay slots)")
    if os.environ.get("KT_VERBOSE"):
        print("unrelated message delivered %.2f s after queueing" % took)


@test(timeout=60)
def one_attempt_is_bounded_over_all_mx_hosts():
    """8 tarpit MX hosts: one attempt opens at most 2 sessions (it tried
    every host and address, 8 x relay_greeting_timeout)."""
    k = relay_kotak(relay_greeting_timeout=1)
    before = sum(t.conns for t in ENV["tarpits"])
    queue(k, "x@many.test", "many")
    kt.wait_for(lambda: re.search(r"to=<x@many.test> .*status=deferred", k.log()), 20,
                what="the attempt deferred")
    time.sleep(1.5)
    eq(sum(t.conns for t in ENV["tarpits"]) - before, 2, "sessions in one attempt over 8 MX hosts")
    check("attempt ends after 2 address(es), 2 session(s)" in k.log(), "no attempt-end line in the log")


@test(timeout=60)
def one_attempt_is_bounded_in_time():
    k = relay_kotak(relay_greeting_timeout=60, relay_attempt_timeout=2)
    t0 = time.monotonic()
    queue(k, "y@tarpit.test", "bounded")
    kt.wait_for(lambda: re.search(r"to=<y@tarpit.test> .*status=deferred", k.log()), 20,
                what="the attempt deferred")
    took = time.monotonic() - t0
    check(took < 10, "deferred after %.1f s (relay_attempt_timeout 2, greeting 60)" % took)


@test(timeout=60)
def connect_to_a_silent_host_has_its_own_timeout():
    """A host that never answers the SYN costs relay_connect_timeout, not
    the greeting's or the attempt's time."""
    k = relay_kotak(relay_connect_timeout=2, relay_greeting_timeout=60, relay_attempt_timeout=300)
    t0 = time.monotonic()
    queue(k, "z@blackhole.test", "silent")
    kt.wait_for(lambda: re.search(r"to=<z@blackhole.test> .*status=deferred", k.log()), 30,
                what="the attempt deferred")
    took = time.monotonic() - t0
    check(took < 10, "deferred after %.1f s (relay_connect_timeout 2, greeting 60)" % took)
    check("connection timed out" in k.log(), "no connect timeout in the log")


if __name__ == "__main__":
    sys.exit(kt.main(setup))

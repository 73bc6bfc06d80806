#!/usr/bin/env python3
"""kotak's own DNS resolver (src/dns.c) against a real dnsmasq and against
scripted fake servers, through the test driver tests/unit/dnsq.c.

dnsmasq (Debian package dnsmasq-base) serves only its own records on
127.0.0.53 (--no-resolv, --local=/test/: it never forwards anywhere); the
fake servers are Python sockets on 127.0.0.1.  One test runs dnsmasq on
port 53 inside a network namespace of its own (unshare -n) to try the
resolv.conf path with the default port.  No query leaves loopback."""

import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kt  # noqa: E402
from kt import test, check, eq  # noqa: E402

DNS_IP = "127.0.0.53"
ENV = {}


def dnsmasq_args(ip, port):
    a = ["dnsmasq", "--no-resolv", "--no-hosts", "--no-poll", "--conf-file=/dev/null",
         "--keep-in-foreground", "--pid-file=", "--port=%d" % port, "--listen-address=" + ip,
         "--bind-interfaces", "--local=/test/", "--log-facility=-",
         "--mx-host=mx.test,mx1.mx.test,10", "--mx-host=mx.test,mx3.mx.test,10",
         "--mx-host=mx.test,mx2.mx.test,20",
         "--host-record=mx1.mx.test,192.0.2.1,2001:db8::1", "--host-record=host.test,192.0.2.5",
         "--dns-rr=nullmx.test,15,000000",       # RFC 7505: preference 0, exchange "."
         "--cname=alias.test,host.test", "--cname=mxalias.test,mx.test"]
    # 40 MX records: over 512 bytes, so UDP answers come truncated
    a += ["--mx-host=big.test,mx%d.big.test,%d" % (i, i) for i in range(1, 41)]
    if os.geteuid() == 0:
        a.append("--user=root")
    return a


def setup():
    d = tempfile.mkdtemp(prefix="kt-dns-")
    kt.at_exit(lambda: shutil.rmtree(d, ignore_errors=True))
    ENV["dir"] = d
    # built here so that it tracks the sources; with the ASan binary's run, under ASan too
    exe = os.path.join(d, "dnsq")
    srcs = [os.path.join(kt.ROOT, p) for p in
            ("tests/unit/dnsq.c", "src/dns.c", "src/util.c", "src/log.c", "src/libk.c")]
    cmd = ["cc", "-std=c99", "-D_DEFAULT_SOURCE", "-I" + os.path.join(kt.ROOT, "build"),
           "-I" + os.path.join(kt.ROOT, "src"), "-o", exe] + srcs
    if "asan" in kt.BIN:
        cmd[1:1] = ["-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    check(r.returncode == 0, "building dnsq: %s" % r.stdout.decode(errors="replace")[-600:])
    ENV["dnsq"] = exe
    if shutil.which("dnsmasq") is None:
        return
    port = kt.free_port(DNS_IP)
    p = subprocess.Popen(dnsmasq_args(DNS_IP, port), stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(d, "dnsmasq.log"), "wb"))

    def stop():
        p.terminate()
        p.wait(5)
    kt.at_exit(stop)
    ENV["server"] = "%s:%d" % (DNS_IP, port)
    kt.wait_for(lambda: p.poll() is not None or "host.test a OK" in dnsq("a", "host.test", check_rc=False),
                what="dnsmasq to answer")
    check(p.poll() is None, "dnsmasq exited: %s" % open(os.path.join(d, "dnsmasq.log")).read()[-400:])


def need_dnsmasq():
    if "server" not in ENV:
        raise kt.Skip("dnsmasq not installed (Debian package dnsmasq-base)")


def dnsq(qtype, *names, server=None, check_rc=True, timeout=30):
    srv = server or ENV.get("server")
    argv = [ENV["dnsq"]] + (srv if isinstance(srv, list) else [srv]) + [qtype] + list(names)
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    out = r.stdout.decode()
    if check_rc:
        eq(r.returncode, 0, "dnsq exit (stderr %r)" % r.stderr.decode()[-300:])
    return out


def results(out):
    """{name: (status, [record lines])} and the stats dict."""
    res, stats, cur = {}, {}, None
    for ln in out.splitlines():
        if ln.startswith("stats "):
            stats = dict(kv.split("=") for kv in ln.split()[1:])
            stats = {k: int(v) for k, v in stats.items()}
        elif ln.startswith("  "):
            res[cur][1].append(ln.strip())
        elif ln:
            f = ln.split()
            cur = f[0]
            res[cur] = (f[2], [])
    return res, stats


@test
def mx_sorted_equal_preferences_shuffled():
    need_dnsmasq()
    firsts = set()
    for _ in range(30):
        res, _ = results(dnsq("mx", "mx.test"))
        st, rr = res["mx.test"]
        eq(st, "OK", "status")
        eq(sorted(rr[:2]), ["mx 10 mx1.mx.test", "mx 10 mx3.mx.test"], "preference 10 first")
        eq(rr[2], "mx 20 mx2.mx.test", "preference 20 last")
        firsts.add(rr[0])
        if len(firsts) == 2:
            break
    eq(len(firsts), 2, "both orders of the equal preferences seen")


@test
def routing_answers():
    """Null MX, no MX (implicit MX: A/AAAA), NXDOMAIN, bad name, A, AAAA."""
    need_dnsmasq()
    res, st = results(dnsq("mx", "nullmx.test", "host.test", "nosuch.test", "bad..name"))
    eq(res["nullmx.test"][0], "NULLMX", "null MX")
    eq(res["host.test"][0], "NODATA", "no MX")
    eq(res["nosuch.test"][0], "NXDOMAIN", "nonexistent domain")
    eq(res["bad..name"][0], "PERMFAIL", "malformed name")
    eq(st["sent"], 3, "queries sent (none for the bad name)")
    res, _ = results(dnsq("a", "mx1.mx.test", "host.test"))
    eq(res["mx1.mx.test"], ("OK", ["a 192.0.2.1"]), "A")
    res, _ = results(dnsq("aaaa", "mx1.mx.test", "host.test"))
    eq(res["mx1.mx.test"], ("OK", ["aaaa 2001:db8::1"]), "AAAA")
    eq(res["host.test"][0], "NODATA", "AAAA of a v4-only host")


@test
def cname_followed():
    need_dnsmasq()
    res, _ = results(dnsq("a", "alias.test"))
    eq(res["alias.test"], ("OK", ["a 192.0.2.5"]), "A through a CNAME")
    res, _ = results(dnsq("mx", "mxalias.test"))
    eq(res["mxalias.test"][0], "OK", "MX through a CNAME")
    eq(len(res["mxalias.test"][1]), 3, "MX records")


@test
def truncated_answer_over_tcp():
    need_dnsmasq()
    res, st = results(dnsq("mx", "big.test"))
    st_, rr = res["big.test"]
    eq(st_, "OK", "status")
    eq(rr, ["mx %d mx%d.big.test" % (i, i) for i in range(1, 17)], "the 16 best MX, in order")
    eq(st["tcp"], 1, "TCP retries")


# ---- scripted fake servers: fakedns.py

from fakedns import FakeDNS, answer, mx  # noqa: E402,F401


@test
def forged_answers_ignored():
    def script(q):
        bad_id = bytearray(answer(q, rrs=[mx(1, "evil.test")]))
        bad_id[0] ^= 0x5a
        other_q = bytearray(answer(q, rrs=[mx(1, "evil.test")]))
        other_q[13] ^= 0x01                    # first letter of the name
        return [bytes(bad_id), bytes(other_q), answer(q, rrs=[mx(10, "good.test")])]
    f = FakeDNS(script)
    res, st = results(dnsq("mx", "example.test", server="127.0.0.1:%d" % f.port))
    eq(res["example.test"], ("OK", ["mx 10 good.test"]), "the real answer")
    eq(st["ignored"], 2, "forged answers counted")


@test
def servfail_is_temporary_and_not_retried_there():
    f = FakeDNS(lambda q: [answer(q, flags=0x8182)])
    res, _ = results(dnsq("mx", "example.test", server="127.0.0.1:%d" % f.port))
    eq(res["example.test"][0], "TEMPFAIL", "SERVFAIL")
    eq(len(f.queries), 1, "queries to the failing server")


@test(timeout=60)
def timeout_retries_with_fresh_port_and_id():
    f = FakeDNS(lambda q: [])
    t0 = time.monotonic()
    res, st = results(dnsq("a", "example.test", server="127.0.0.1:%d" % f.port))
    took = time.monotonic() - t0
    eq(res["example.test"][0], "TEMPFAIL", "no answer")
    eq(len(f.queries), 3, "attempts")
    check(3.5 <= took <= 9, "3 attempts 2 s apart took %.1f s" % took)
    ports = {p[1] for _, p in f.queries}
    ids = {q[:2] for q, _ in f.queries}
    check(len(ports) >= 2 and len(ids) >= 2, "ports %s ids %s" % (ports, ids))


@test
def refused_port_fails_fast():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    t0 = time.monotonic()
    res, _ = results(dnsq("mx", "example.test", server="127.0.0.1:%d" % port))
    eq(res["example.test"][0], "TEMPFAIL", "nobody there")
    check(time.monotonic() - t0 < 2, "ECONNREFUSED should end it at once")


@test
def resolv_conf_in_own_netns():
    """dns_init(NULL)'s path: nameserver lines, default port 53, in a network
    namespace that has nothing but lo."""
    need_dnsmasq()
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        raise kt.Skip("needs root, unshare and ip")
    conf = os.path.join(ENV["dir"], "resolv.conf")
    with open(conf, "w") as fp:
        fp.write("# kotak test\nsearch example.org\nnameserver 127.0.0.1\noptions edns0\n")
    args = " ".join("'%s'" % a for a in dnsmasq_args("127.0.0.1", 53))
    script = ("ip link set lo up || exit 3; %s & p=$!; "
              "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 0.2; "
              "'%s' -f '%s' mx mx.test nosuch.test > '%s/ns.out' && break; done; "
              "kill $p; wait $p; cat '%s/ns.out'") % (args, ENV["dnsq"], conf, ENV["dir"], ENV["dir"])
    r = subprocess.run(["unshare", "-n", "sh", "-c", script], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    if r.returncode == 3 or b"Operation not permitted" in r.stderr:
        raise kt.Skip("cannot make a network namespace here")
    res, _ = results(r.stdout.decode())
    check("mx.test" in res, "no answer in the namespace: %r %r" % (r.stdout[-300:], r.stderr[-300:]))
    eq(res["mx.test"][0], "OK", "MX via resolv.conf")
    eq(res["nosuch.test"][0], "NXDOMAIN", "NXDOMAIN via resolv.conf")


if __name__ == "__main__":
    sys.exit(kt.main(setup))

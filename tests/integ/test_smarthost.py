#!/usr/bin/env python3
"""TLS in the relay client (src/smtp_out.c over src/tls.c): opportunistic
STARTTLS to MX hosts, and the smarthost route with AUTH over verified TLS.

A network of loopback peers, as in test_relay.py: dnsmasq serves .test on
127.0.0.53 only (--no-resolv: it never forwards), kotak's resolver asks it
alone.  The smarthost is a second kotak (submission with STARTTLS, smtps,
AUTH; its self-signed certificate is the client's ca_file); an MX with TLS
is a third kotak; scripted Python peers play the broken ones.  Nothing
leaves loopback."""

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

DNS_IP = "127.0.0.53"
SH_IP, NOTLS_IP, MX_IP, BROKEN_IP, PIPE_IP = "127.0.0.21", "127.0.0.22", "127.0.0.23", "127.0.0.24", "127.0.0.25"
HOSTS = {"smarthost.test": SH_IP, "wrongname.test": SH_IP, "nostarttls.test": NOTLS_IP,
         "mx.tls.test": MX_IP, "mx.broken.test": BROKEN_IP, "mx.pipe.test": PIPE_IP,
         "sh465.test": "127.0.0.26"}
MX = [("tls.test", "mx.tls.test", 10), ("broken.test", "mx.broken.test", 10), ("pipe.test", "mx.pipe.test", 10)]
ENV = {}
SH = None       # the smarthost kotak
MXK = None      # the MX kotak (offers STARTTLS)
PEERS = {}


class Peer:
    """A scripted SMTP server that logs every command line.  starttls:
    offer STARTTLS, answer 220 and then send garbage instead of TLS.  Reads
    with recv() itself, so a transaction records the bytes that had already
    arrived behind its MAIL command (PIPELINING).  RCPT to nobody*: 550."""

    def __init__(self, ip, port, ehlo=("SIZE 10000000", "8BITMIME"), starttls=False):
        self.ip, self.port, self.ext, self.starttls = ip, port, list(ehlo), starttls
        self.cmds = []
        self.txs = []
        self.msgs = []
        self.conns = 0
        self.s = socket.socket()
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.s.bind((ip, port))
        self.s.listen(8)
        threading.Thread(target=self._serve, daemon=True).start()

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass

    def _serve(self):
        while True:
            try:
                c, _ = self.s.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(c,), daemon=True).start()

    def _session(self, c):
        self.conns += 1
        c.settimeout(20)
        buf = [b""]

        def readline():
            while b"\n" not in buf[0]:
                d = c.recv(65536)
                if not d:
                    return b""
                buf[0] += d
            ln, buf[0] = buf[0].split(b"\n", 1)
            return ln + b"\n"

        def say(t):
            c.sendall(t.encode() + b"\r\n")
        try:
            say("220 %s ESMTP scripted" % self.ip)
            tx = None
            while True:
                ln = readline()
                if not ln:
                    return
                cmd = ln.decode(errors="replace").rstrip("\r\n")
                self.cmds.append(cmd)
                v = cmd[:4].upper()
                if v == "EHLO":
                    ext = self.ext + (["STARTTLS"] if self.starttls else [])
                    say("\r\n".join(["250-" + self.ip] + ["250-" + e for e in ext[:-1]] + ["250 " + ext[-1]]))
                elif v == "STAR" and self.starttls:
                    say("220 2.0.0 go ahead")
                    c.sendall(b"this is not a TLS record at all\r\n" * 4)
                    time.sleep(1)
                    return
                elif v == "AUTH":
                    say("535 5.7.8 no")
                elif v == "MAIL":
                    tx = {"from": re.search(r"<(.*?)>", cmd).group(1), "rcpts": [], "ahead": buf[0]}
                    self.txs.append(tx)
                    say("250 2.1.0 Ok")
                elif v == "RCPT":
                    a = re.search(r"<(.*?)>", cmd).group(1)
                    if a.startswith("nobody"):
                        say("550 5.1.1 no such user")
                        continue
                    tx["rcpts"].append(a)
                    say("250 2.1.5 Ok")
                elif v == "DATA":
                    if not tx or not tx["rcpts"]:
                        say("554 5.5.1 no valid recipients")
                        continue
                    say("354 go ahead")
                    raw = b""
                    while not raw.endswith(b"\r\n.\r\n"):
                        chunk = readline()
                        if not chunk:
                            return
                        raw += chunk
                    tx["data"] = raw
                    self.msgs.append(tx)
                    say("250 2.0.0 Ok: queued")
                elif v == "QUIT":
                    say("221 bye")
                    return
                else:
                    say("502 what")
        except OSError:
            pass
        finally:
            c.close()


class Client(kt.Kotak):
    """The kotak under test: relays for 127.0.0.1 through the test's DNS."""

    def config_text(self):
        t = super().config_text()
        return t.replace("config kotak 'main'\n", "config kotak 'main'\n\tlist relay_net '127.0.0.1/32'\n", 1)


def common_port(ips):
    for _ in range(50):
        p = kt.free_port(ips[0])
        ok = True
        for ip in ips:
            s = socket.socket()
            try:
                s.bind((ip, p))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            return p
    raise AssertionError("no common free port")


def setup():
    global SH, MXK
    if shutil.which("dnsmasq") is None:
        return
    d = tempfile.mkdtemp(prefix="kt-sh-")
    ENV["dir"] = d
    kt.at_exit(lambda: shutil.rmtree(d, ignore_errors=True))
    dport = kt.free_port(DNS_IP)
    a = ["dnsmasq", "--no-resolv", "--no-hosts", "--no-poll", "--conf-file=/dev/null",
         "--keep-in-foreground", "--pid-file=", "--port=%d" % dport, "--listen-address=" + DNS_IP,
         "--bind-interfaces", "--local=/test/", "--log-facility=-"]
    a += ["--mx-host=%s,%s,%d" % m for m in MX]
    a += ["--host-record=%s,%s" % (h, ip) for h, ip in HOSTS.items()]
    if os.geteuid() == 0:
        a.append("--user=root")
    p = subprocess.Popen(a, stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, "dnsmasq.log"), "wb"))

    def stop():
        p.terminate()
        p.wait(5)
    kt.at_exit(stop)
    time.sleep(0.3)
    check(p.poll() is None, "dnsmasq exited: %s" % open(os.path.join(d, "dnsmasq.log")).read()[-400:])
    ENV["dns"] = "%s:%d" % (DNS_IP, dport)
    rport = common_port([MX_IP, BROKEN_IP, PIPE_IP])
    ENV["relay_port"] = rport
    # the smarthost: submission (STARTTLS) and smtps, AUTH, delivers far.test locally
    ls = [(SH_IP, kt.free_port(SH_IP), "submission"), (SH_IP, kt.free_port(SH_IP), "smtps")]
    if kt.have_ipv6_loopback():
        ls.append(("::1", kt.free_port("::1"), "submission"))
    SH = kt.KotakTls(listen=ls,
                     hostname="smarthost.test", domains=("far.test",), users=("relay", "bob", "admin"),
                     main={"auth_any_sender": "1"})
    kt.at_exit(SH.cleanup)
    ENV["ca"] = os.path.join(SH.data_dir, "tls", "cert.pem")
    check(os.path.exists(ENV["ca"]), "the smarthost's self-signed certificate")
    # an MX that offers STARTTLS: a kotak for tls.test
    MXK = kt.Kotak(listen=[(MX_IP, rport)], hostname="mx.tls.test", domains=("tls.test",),
                   users=("carol", "admin"))
    kt.at_exit(MXK.cleanup)
    PEERS["broken"] = Peer(BROKEN_IP, rport, starttls=True)
    PEERS["pipe"] = Peer(PIPE_IP, rport, ehlo=("PIPELINING", "SIZE 10000000"))
    PEERS["notls"] = Peer(NOTLS_IP, kt.free_port(NOTLS_IP), ehlo=("AUTH PLAIN LOGIN", "SIZE 1000000"))
    for pr in PEERS.values():
        kt.at_exit(pr.close)
    # a CA that did not sign the smarthost's certificate
    ENV["other_ca"], _ = kt.make_cert(d, "other", cn="smarthost.test")


def need():
    if SH is None:
        raise kt.Skip("dnsmasq not installed (Debian package dnsmasq-base)")


def pwfile(password=kt.DEFAULT_PASSWORD, mode=0o600):
    fd, path = tempfile.mkstemp(prefix="pw-", dir=ENV["dir"])
    os.write(fd, (password + "\n").encode())
    os.close(fd)
    os.chmod(path, mode)
    return path


def client(smarthost=None, password=kt.DEFAULT_PASSWORD, **main):
    m = {"dns_server": ENV["dns"], "relay_port": str(ENV["relay_port"]), "retry_min": "2", "retry_max": "3"}
    if smarthost:
        m.update({"smarthost": smarthost, "smarthost_user": "relay", "smarthost_password_file": pwfile(password),
                  "ca_file": ENV["ca"]})
    m.update(main)
    k = Client(main=m)
    kt.after_test(k.cleanup)
    return k


def send(k, rcpt, subject):
    rcpts = rcpt if isinstance(rcpt, list) else [rcpt]
    r = k.send(rcpts, kt.msg(subject=subject, sender="alice@example.lan", to=rcpts[0]), sender="alice@example.lan")
    eq(r.code, 250, "reply to the final dot")


def stored(k, user, subject, timeout=15):
    def find():
        for raw in k.messages(user):
            if b"Subject: " + subject.encode() in raw:
                return raw
        return None
    return kt.wait_for(find, timeout=timeout, what="%s in %s's mbox" % (subject, user))


def sh_logins(user="relay"):
    return len(re.findall(r"auth user=%s\b" % user, SH.log()))


def deferred(k, rcpt, pattern, timeout=15):
    return kt.wait_for(lambda: re.search(r"to=<%s> .*status=deferred \(.*%s" % (re.escape(rcpt), pattern), k.log()),
                       timeout=timeout, what="a deferral matching %r" % pattern)


@test
def smarthost_implicit_tls_with_auth():
    need()
    k = client("smarthost.test:%d" % SH.addr_of("smtps")[1], smarthost_tls="implicit")
    send(k, "bob@far.test", "sh-implicit")
    raw = stored(SH, "bob", "sh-implicit")
    check(re.search(rb"with ESMTPSA id", raw), "Received: says ESMTPSA: %r" % raw[:400])
    check(b"Authenticated sender: relay" in raw, "logged in as relay")
    check(re.search(r"TLS with smarthost\.test\[127\.0\.0\.21\] \(certificate verified\)", k.log()), "TLS log line")
    kt.wait_for(lambda: re.search(r"to=<bob@far\.test> relay=smarthost\.test\[127\.0\.0\.21\] status=sent", k.log()),
                what="the status=sent log line")


@test
def smarthost_starttls_with_auth():
    need()
    k = client("smarthost.test:%d" % SH.addr_of("submission")[1])
    send(k, "bob@far.test", "sh-starttls")
    raw = stored(SH, "bob", "sh-starttls")
    check(re.search(rb"with ESMTPSA id", raw), "Received: says ESMTPSA: %r" % raw[:400])
    kt.wait_for(lambda: not k.spool_files("queue"), timeout=10, what="an empty queue")


@test
def smarthost_by_address_literal_unverified():
    need()
    k = client("%s:%d" % (SH_IP, SH.addr_of("submission")[1]), smarthost_verify="0", ca_file="/nonexistent")
    send(k, "bob@far.test", "sh-literal")
    stored(SH, "bob", "sh-literal")
    check("certificate verified" not in k.log(), "claims a verification it did not do")


@test
def smarthost_wrong_ca_defers_without_password():
    need()
    n = sh_logins()
    k = client("smarthost.test:%d" % SH.addr_of("submission")[1], ca_file=ENV["other_ca"])
    send(k, "bob@far.test", "sh-wrongca")
    deferred(k, "bob@far.test", r"TLS handshake with smarthost\.test\[127\.0\.0\.21\] failed .*not trusted")
    eq(sh_logins(), n, "logins at the smarthost")
    check(not [m for m in SH.messages("bob") if b"sh-wrongca" in m], "delivered anyway")
    check(k.spool_files("queue"), "the message stays queued")


@test
def smarthost_name_mismatch_defers():
    need()
    n = sh_logins()
    k = client("wrongname.test:%d" % SH.addr_of("submission")[1])
    send(k, "bob@far.test", "sh-wrongname")
    deferred(k, "bob@far.test", r"TLS handshake with wrongname\.test\[127\.0\.0\.21\] failed")
    eq(sh_logins(), n, "logins at the smarthost")


@test
def smarthost_unverified_accepts_any_certificate():
    need()
    k = client("wrongname.test:%d" % SH.addr_of("submission")[1], smarthost_verify="0")
    send(k, "bob@far.test", "sh-noverify")
    stored(SH, "bob", "sh-noverify")


@test(timeout=60)
def smarthost_wrong_password_pauses_the_route():
    need()
    fails = len(re.findall(r"auth failed ip=\S+ user=relay", SH.log()))
    k = client("smarthost.test:%d" % SH.addr_of("submission")[1], password="wrong")
    send(k, "bob@far.test", "sh-badpw-1")
    kt.wait_for(lambda: "smarthost login rejected" in k.log(), timeout=20, what="the login rejection")
    deferred(k, "bob@far.test", r"rejected the login: 535")
    check(re.search(r"smarthost login rejected by smarthost\.test\[127\.0\.0\.21\] for user relay \(535 .*\):"
                    r" pausing the smarthost route for 900 s", k.log()), "the warning: %s" % k.log_tail(5))
    eq(len(re.findall(r"auth failed ip=\S+ user=relay", SH.log())), fails + 1, "failed logins at the smarthost")
    conns = len(re.findall(r"smtp \S+ connect ip=", SH.log()))
    send(k, "bob@far.test", "sh-badpw-2")
    deferred(k, "bob@far.test", r"smarthost route paused")
    # both messages come round again (retry_max 3 s) and stay paused
    time.sleep(4)
    eq(len(re.findall(r"smtp \S+ connect ip=", SH.log())), conns, "sessions at the smarthost during the pause")
    eq(k.log().count("smarthost login rejected"), 1, "warnings")
    # fixed password and a reload: the route opens again
    with open(k.main["smarthost_password_file"], "w") as f:
        f.write(kt.DEFAULT_PASSWORD + "\n")
    k.hup()
    time.sleep(0.3)
    k.usr1()
    stored(SH, "bob", "sh-badpw-1", timeout=20)
    stored(SH, "bob", "sh-badpw-2", timeout=20)


@test
def bad_password_file_on_reload_keeps_the_running_one():
    # issue 14: a reload with a password file it must refuse left empty
    # passwords: the smarthost got AUTH with an empty password and the route
    # paused.  A reload is all or nothing.
    need()
    k = client("smarthost.test:%d" % SH.addr_of("submission")[1])
    fails = len(re.findall(r"auth failed ip=\S+ user=relay", SH.log()))
    os.chmod(k.main["smarthost_password_file"], 0o644)
    k.hup()
    kt.wait_for(lambda: "keeping the whole running config" in k.log(), 10, what="the refused reload")
    send(k, "bob@far.test", "sh-reload-bad-pwfile")
    stored(SH, "bob", "sh-reload-bad-pwfile", timeout=20)
    eq(len(re.findall(r"auth failed ip=\S+ user=relay", SH.log())), fails, "failed logins at the smarthost")


@test(timeout=90)
def waiting_messages_start_when_places_free():
    """More messages than the relay holds (RELAY_SLOTS x 4 = 16 by default)
    handed over at once, all deferred at once by the paused route: those
    that waited in memory are tried as soon as places free, not at the
    queue's next directory scan a minute later."""
    need()
    n = 40
    k = client("smarthost.test:%d" % SH.addr_of("submission")[1], password="wrong",
               retry_min="300", retry_max="300")
    send(k, "bob@far.test", "sh-wait-0")
    deferred(k, "bob@far.test", r"rejected the login: 535")
    c = k.session()
    for i in range(1, n):
        c.ok("MAIL FROM:<alice@example.lan>", 250)
        c.ok("RCPT TO:<bob@far.test>", 250)
        c.ok("DATA", 354)
        c.send(kt.msg(subject="sh-wait-%d" % i) + b".\r\n")
        eq(c.reply(timeout=10).code, 250, "final dot")
    c.close()
    paused = lambda t: t.count("status=deferred (451 4.7.0 smarthost route paused")
    # the first deferrals: all n - 1, or none more for a second (a glibc
    # build may leave one for the next scan: queue.c job_start compares the
    # file's mtime with a coarse time())
    last = -1
    for _ in range(20):
        cur = paused(k.log())
        if cur >= n - 1 or cur == last:
            break
        last = cur
        time.sleep(1.0)
    off = len(k.log())
    k.usr1()                # every message to the relay in one pass
    t0 = time.monotonic()
    kt.wait_for(lambda: paused(k.log()[off:]) >= n, timeout=15, what="all %d messages tried again" % n)
    check(time.monotonic() - t0 < 10, "took %.1f s" % (time.monotonic() - t0))


@test
def smarthost_without_starttls_gets_no_password():
    need()
    p = PEERS["notls"]
    k = client("nostarttls.test:%d" % p.port, smarthost_verify="0")
    send(k, "bob@far.test", "sh-notls")
    deferred(k, "bob@far.test", r"offers no STARTTLS")
    check(p.conns >= 1, "the smarthost was not even asked")
    check(not [c for c in p.cmds if c.upper().startswith(("AUTH", "MAIL"))], "sent in cleartext: %r" % p.cmds)


@test
def smarthost_password_file_must_be_private():
    need()
    conf_dir = tempfile.mkdtemp(dir=ENV["dir"])
    pw = pwfile(mode=0o644)
    k = Client(main={"dns_server": ENV["dns"], "smarthost": "smarthost.test", "smarthost_user": "relay",
                     "smarthost_password_file": pw, "ca_file": ENV["ca"]}, start=False, dir=conf_dir)
    kt.after_test(k.cleanup)
    r = kt.run_kotak(["-c", k.conf, "-t"])
    eq(r.returncode, 1, "kotak -t with a world-readable password file")
    check(b"0644" in r.stderr and b"refused" in r.stderr, "message: %r" % r.stderr)
    os.chmod(pw, 0o600)
    r = kt.run_kotak(["-c", k.conf, "-t"])
    eq(r.returncode, 0, "kotak -t with mode 0600: %r" % r.stderr)


@test
def mx_opportunistic_starttls():
    need()
    k = client()
    send(k, "carol@tls.test", "mx-tls")
    raw = stored(MXK, "carol", "mx-tls")
    check(re.search(rb"by mx\.tls\.test \(kotak\) with ESMTPS id", raw), "Received: says ESMTPS: %r" % raw[:400])
    check(re.search(r"TLS with mx\.tls\.test\[127\.0\.0\.23\]", k.log()), "TLS log line")
    check("certificate verified" not in k.log(), "an MX is never verified")


@test
def mx_broken_tls_defers():
    need()
    p = PEERS["broken"]
    n = len(p.msgs)
    k = client()
    send(k, "x@broken.test", "mx-broken")
    deferred(k, "x@broken.test", r"TLS handshake with mx\.broken\.test\[127\.0\.0\.24\] failed")
    eq(len(p.msgs), n, "messages sent in cleartext without relay_tls_fallback")


@test
def mx_broken_tls_falls_back_when_allowed():
    need()
    p = PEERS["broken"]
    k = client(relay_tls_fallback="1")
    send(k, "y@broken.test", "mx-fallback")
    t = kt.wait_for(lambda: [m for m in p.msgs if b"mx-fallback" in m["data"]], timeout=15, what="the cleartext retry")
    eq(t[0]["rcpts"], ["y@broken.test"], "recipients")
    kt.wait_for(lambda: re.search(r"to=<y@broken\.test> relay=mx\.broken\.test\[127\.0\.0\.24\] status=sent",
                                  k.log()), what="the status=sent log line")


@test
def mx_pipelining_one_write():
    need()
    p = PEERS["pipe"]
    k = client()
    n = k.count("alice")
    send(k, ["a@pipe.test", "nobody@pipe.test", "b@pipe.test"], "pipe-1")
    t = kt.wait_for(lambda: [m for m in p.msgs if b"pipe-1" in m["data"]], timeout=15, what="the message")[0]
    eq(t["rcpts"], ["a@pipe.test", "b@pipe.test"], "accepted recipients")
    eq(t["ahead"], b"RCPT TO:<a@pipe.test>\r\nRCPT TO:<nobody@pipe.test>\r\nRCPT TO:<b@pipe.test>\r\nDATA\r\n",
       "what came with MAIL FROM")
    check(b"Subject: pipe-1" in t["data"], "the body")
    k.wait_count("alice", n + 1, timeout=15)    # the DSN for nobody@
    check(b"nobody@pipe.test" in k.messages("alice")[-1], "DSN names the refused recipient")


@test
def mx_pipelining_no_recipient_taken():
    need()
    p = PEERS["pipe"]
    k = client()
    n = k.count("alice")
    before = len(p.txs)
    send(k, ["nobody1@pipe.test", "nobody2@pipe.test"], "pipe-none")
    k.wait_count("alice", n + 1, timeout=15)
    eq(len(p.txs), before + 1, "transactions")
    check(p.txs[-1]["ahead"].endswith(b"DATA\r\n"), "DATA pipelined: %r" % p.txs[-1]["ahead"])
    check(not [m for m in p.msgs if b"pipe-none" in m["data"]], "a message without recipients")
    kt.wait_for(lambda: not k.spool_files("queue"), timeout=10, what="an empty queue")


@test
def no_pipelining_without_the_keyword():
    need()
    p = PEERS["broken"]     # offers no PIPELINING (and broken TLS: relay_tls_fallback)
    k = client(relay_tls_fallback="1")
    send(k, ["one@broken.test", "two@broken.test"], "nopipe")
    t = kt.wait_for(lambda: [m for m in p.txs if m["from"] == "alice@example.lan" and m.get("data")
                             and b"nopipe" in m["data"]], timeout=15, what="the message")[0]
    eq(t["ahead"], b"", "bytes sent before the reply to MAIL")


@test
def smarthost_ipv6_literal():
    need()
    if not kt.have_ipv6_loopback():
        raise kt.Skip("no IPv6 loopback")
    port = [p for a, p, pr in SH.listens if a == "::1"][0]
    k = client("[::1]:%d" % port, smarthost_verify="0")
    send(k, "bob@far.test", "sh-v6")
    stored(SH, "bob", "sh-v6")
    kt.wait_for(lambda: re.search(r"to=<bob@far\.test> relay=::1\[::1\] status=sent", k.log()), what="sent over ::1")


@test
def smarthost_port_465_is_implicit_tls():
    need()
    ip = HOSTS["sh465.test"]
    s = socket.socket()
    try:
        s.bind((ip, 465))
    except OSError as e:
        raise kt.Skip("cannot bind %s:465 (%s)" % (ip, e))
    finally:
        s.close()
    sh = kt.KotakTls(listen=[(ip, 465, "smtps")], hostname="sh465.test", domains=("far.test",),
                     users=("relay", "bob", "admin"), main={"auth_any_sender": "1"})
    kt.after_test(sh.cleanup)
    k = client("sh465.test:465", ca_file=os.path.join(sh.data_dir, "tls", "cert.pem"))
    send(k, "bob@far.test", "sh-465")
    raw = stored(sh, "bob", "sh-465")
    check(re.search(rb"with ESMTPSA id", raw), "Received: says ESMTPSA: %r" % raw[:400])


class RouteClient(Client):
    route = ""

    def config_text(self):
        return super().config_text() + self.route


@test
def per_domain_smarthost_route():
    need()
    k = RouteClient(main={"dns_server": ENV["dns"], "relay_port": str(ENV["relay_port"])}, start=False)
    kt.after_test(k.cleanup)
    k.route = ("config route\n\tlist domain 'other.test'\n\tlist domain 'FAR.test'\n"
               "\toption smarthost 'smarthost.test:%d'\n\toption smarthost_user 'relay'\n"
               "\toption smarthost_password_file '%s'\n\toption ca_file_is_global 'x'\n" % (
                   SH.addr_of("submission")[1], pwfile()))
    k.write_config()
    r = kt.run_kotak(["-c", k.conf, "-t"])
    check(r.returncode == 1 and b"unknown option 'ca_file_is_global' in config route" in r.stderr,
          "kotak -t: %r" % r.stderr)
    k.route = k.route.replace("\toption ca_file_is_global 'x'\n", "")
    k.main["ca_file"] = ENV["ca"]
    k.write_config()
    k.start()
    send(k, "bob@far.test", "route-far")        # the route's smarthost, with AUTH
    send(k, "carol@tls.test", "route-mx")       # any other domain: its MX
    raw = stored(SH, "bob", "route-far")
    check(re.search(rb"with ESMTPSA id", raw), "through the smarthost with AUTH")
    raw = stored(MXK, "carol", "route-mx")
    check(re.search(rb"by mx\.tls\.test \(kotak\) with ESMTPS id", raw), "straight to the MX")


@test
def route_needs_domain_and_smarthost():
    need()
    k = RouteClient(main={"dns_server": ENV["dns"]}, start=False)
    kt.after_test(k.cleanup)
    k.route = "config route\n\tlist domain 'x.test'\n"
    k.write_config()
    r = kt.run_kotak(["-c", k.conf, "-t"])
    check(r.returncode == 1 and b"config route #1 needs list domain and option smarthost" in r.stderr,
          "kotak -t: %r" % r.stderr)
    k.route = "config route\n\tlist domain 'x.test'\n\toption smarthost 'a b'\n"
    k.write_config()
    r = kt.run_kotak(["-c", k.conf, "-t"])
    check(r.returncode == 1 and b"config route #1: option smarthost: 'a b'" in r.stderr, "kotak -t: %r" % r.stderr)


class SlowPeer(Peer):
    """A Peer whose greeting comes after `delay` seconds."""

    def __init__(self, ip, port, delay, **kw):
        self.delay, self.accepted = delay, 0
        Peer.__init__(self, ip, port, **kw)

    def _session(self, c):
        self.accepted += 1
        time.sleep(self.delay)
        Peer._session(self, c)


@test(timeout=60)
def reload_ends_smarthost_sessions_before_auth():
    """A SIGHUP while a smarthost session waits for its greeting (before
    AUTH): the route it looked up may now name another host, user or
    password, so that session ends (deferred) and sends nothing more."""
    need()
    port = kt.free_port("127.0.0.26")
    slow = SlowPeer("127.0.0.26", port, 3, ehlo=("AUTH PLAIN LOGIN", "SIZE 1000000"))
    kt.after_test(slow.close)
    k = client(smarthost="127.0.0.26:%d" % port, smarthost_verify="0")
    send(k, "bob@far.test", "reload-mid-session")
    kt.wait_for(lambda: slow.accepted >= 1, 5, what="the connection to the smarthost")
    k.hup()
    deferred(k, "bob@far.test", "configuration reloaded")
    time.sleep(3.5)     # the greeting comes: kotak must be gone from that session
    eq(slow.cmds, [], "commands sent on the session that began before the reload")


if __name__ == "__main__":
    sys.exit(kt.main(setup))

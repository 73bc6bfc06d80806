#!/usr/bin/env python3
"""SMTP AUTH (RFC 4954) and submission: PLAIN and LOGIN only under TLS (or
cleartext_auth_net), the per-IP brake on failed logins, the 3-strike close,
unknown users costing what wrong passwords cost, submission/smtps requiring
AUTH, sender ownership, relaying for logged-in users, Received: ESMTPSA.

The brake remembers failures per client address for 15 minutes, so each test
that fails logins uses its own source address in 127.0.0.0/8 (src_ip())."""

import os
import re
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kt  # noqa: E402
from kt import test, check, eq  # noqa: E402

K = None
PW = kt.DEFAULT_PASSWORD
USERS = ("alice", "bob", "carol", "admin")
ALIASES = {"postmaster": ["admin"], "al": ["alice"], "sales": ["alice", "bob"],
           "info": ["carol@example.lan"], "chief": ["al"]}
_next_ip = [10]


# The budget of failed logins shared by all addresses (option
# auth_fail_rate, tested in test_abuse.py) would refuse most of the many
# failures these tests make from many addresses: they lift it.
NOBUDGET = {"auth_fail_rate": 0}


def setup():
    global K
    K = kt.KotakTls(users=USERS, aliases=ALIASES, protos=("smtp", "submission", "smtps"), main=dict(NOBUDGET))


def src_ip():
    """A source address of its own (127.0.0.10, .11, ...): a clean brake."""
    _next_ip[0] += 1
    return "127.0.0.%d" % _next_ip[0]


def login(c, user, password=PW, code=235, timeout=None):
    return c.ok("AUTH PLAIN " + kt.sasl_plain(user, password), code, timeout=timeout)


def timed(fn, *a, **kw):
    t = time.monotonic()
    r = fn(*a, **kw)
    return r, time.monotonic() - t


def own_instance(**kw):
    kw.setdefault("users", USERS)
    kw.setdefault("aliases", ALIASES)
    kw["main"] = dict(NOBUDGET, **kw.get("main", {}))
    k = kt.KotakTls(**kw)
    kt.after_test(k.cleanup)
    return k


def deliver(c, sender, rcpts, subject, code=250):
    """MAIL/RCPT/DATA on an open session; returns the reply to the dot."""
    c.ok("MAIL FROM:<%s>" % sender, 250)
    for r in rcpts:
        c.ok("RCPT TO:<%s>" % r, 250)
    c.ok("DATA", 354)
    c.send(kt.msg(subject, sender=sender, to=rcpts[0]) + b".\r\n")
    r = c.reply(timeout=10)
    eq(r.code, code, "reply to the final dot (%r)" % r.text)
    return r


def received_of(stored):
    fields, _ = kt.split_headers(stored.split(b"\n", 1)[1])
    return [f for f in fields if f.lower().startswith(b"received:")]


def queue_files(k):
    return [f for f in k.spool_files("queue") if not f.startswith(".")]


# ---------------------------------------------------------------- cleartext

@test
def cleartext_ehlo_lacks_auth_and_auth_538():
    for proto in ("smtp", "submission"):
        c = K.connect(proto=proto)
        kw = kt.ehlo_keywords(c.ok("EHLO client.example.org", 250))
        check(not any(k.startswith("AUTH") for k in kw), "%s: AUTH in cleartext EHLO: %r" % (proto, kw))
        c.ok("AUTH PLAIN " + kt.sasl_plain("alice", PW), 538, enh="5.7.11")
        c.ok("AUTH LOGIN", 538, enh="5.7.11")
        c.ok("AUTH PLAIN", 538, enh="5.7.11")
        c.ok("NOOP", 250)                          # no 334 dialogue was opened
        if proto == "submission":
            c.ok("MAIL FROM:<alice@example.lan>", 530, enh="5.7.0")
        c.close()
    check("auth failed" not in K.log(), "a refused cleartext AUTH was counted as a failed login")


@test
def cleartext_auth_net_allows():
    k = own_instance(protos=("smtp", "submission"), lists={"cleartext_auth_net": ["127.0.0.0/8"]})
    for proto in ("smtp", "submission"):
        c = k.connect(proto=proto)
        kw = kt.ehlo_keywords(c.ok("EHLO client.example.org", 250))
        check("AUTH PLAIN LOGIN" in kw, "%s: EHLO lacks AUTH with cleartext_auth_net: %r" % (proto, kw))
        check("STARTTLS" in kw, "%s: STARTTLS still offered: %r" % (proto, kw))
        login(c, "alice")
        deliver(c, "alice@example.lan", ["bob@example.lan"], "cleartext net " + proto)
        c.close()
    stored = k.wait_count("bob", 2)[-1]
    check(re.search(rb"with ESMTPA id", stored), "Received of a cleartext login: %r" % received_of(stored))


@test
def cleartext_auth_net_matches_only_listed():
    k = own_instance(protos=("smtp",), lists={"cleartext_auth_net": ["127.0.0.2/32", "10.0.0.0/8", "fd00::/8"]})
    c = k.connect(src="127.0.0.2")
    check("AUTH PLAIN LOGIN" in kt.ehlo_keywords(c.ok("EHLO client.example.org", 250)), "127.0.0.2: no AUTH")
    login(c, "alice")
    c.close()
    c = k.connect(src="127.0.0.3")
    check(not any(x.startswith("AUTH") for x in kt.ehlo_keywords(c.ok("EHLO client.example.org", 250))),
          "127.0.0.3 is not listed but gets AUTH")
    c.ok("AUTH PLAIN " + kt.sasl_plain("alice", PW), 538)
    c.close()


@test
def cleartext_auth_net_bad_value_refused():
    k = own_instance(protos=("smtp",), start=False, users=(), lists={"cleartext_auth_net": ["127.0.0.0/33"]})
    r = kt.run_kotak(["-c", k.conf, "-t"])
    eq(r.returncode, 1, "kotak -t with cleartext_auth_net 127.0.0.0/33")
    check(b"cleartext_auth_net" in r.stderr and re.search(rb":\d+: ", r.stderr), "message: %r" % r.stderr)


# ---------------------------------------------------------------- mechanisms

@test
def auth_plain_initial_response():
    c = K.tls_session()
    r = login(c, "alice")
    eq(r.enh(), "2.7.0", "enhanced code of 235")
    c.ok("AUTH PLAIN " + kt.sasl_plain("alice", PW), 503)     # already authenticated
    c.close()
    check(re.search(r"ip=127\.0\.0\.1 auth user=alice", K.log()), "no log line for the login")


@test
def auth_plain_challenge():
    c = K.tls_session(proto="smtps")
    r = c.ok("AUTH PLAIN", 334)
    eq(r.text, "334 ", "PLAIN challenge")
    c.ok(kt.sasl_plain("bob", PW), 235)
    c.close()
    c = K.tls_session(proto="smtps")
    c.ok("AUTH PLAIN =", 334)                                # "=": empty initial response
    c.ok(kt.sasl_plain("bob", PW, authzid="bob"), 235)        # authzid = authcid is fine
    c.close()


@test
def auth_login_dialogue():
    c = K.tls_session(proto="submission")
    eq(c.ok("AUTH LOGIN", 334).text, "334 VXNlcm5hbWU6", "Username: challenge")
    eq(c.ok(kt.b64("carol"), 334).text, "334 UGFzc3dvcmQ6", "Password: challenge")
    c.ok(kt.b64(PW), 235)
    c.close()
    c = K.tls_session(proto="submission")
    eq(c.ok("AUTH LOGIN " + kt.b64("carol"), 334).text, "334 UGFzc3dvcmQ6", "LOGIN with initial response")
    c.ok(kt.b64(PW), 235)
    c.close()


@test
def auth_mechanism_names_case_insensitive():
    c = K.tls_session()
    c.ok("auth plain " + kt.sasl_plain("alice", PW), 235)
    c.close()
    c = K.tls_session()
    c.ok("Auth Login", 334)
    c.close()


@test
def auth_cancel_and_errors():
    ip = src_ip()
    c = K.tls_session(src=ip)
    c.ok("AUTH CRAM-MD5", 504, enh="5.5.4")
    c.ok("AUTH", 504)
    c.ok("AUTH PLAIN", 334)
    c.ok("*", 501)                                           # cancelled (RFC 4954 4)
    c.ok("AUTH LOGIN", 334)
    c.ok("*", 501)
    c.ok("NOOP", 250)
    check("auth failed ip=%s" % ip not in K.log(), "a cancelled AUTH counted as a failure")
    login(c, "alice")
    c.close()


@test
def auth_needs_ehlo_and_no_transaction():
    c = K.connect(proto="smtps")
    c.ok("AUTH PLAIN " + kt.sasl_plain("alice", PW), 503)    # before EHLO
    c.ok("HELO client.example.org", 250)
    c.ok("AUTH PLAIN " + kt.sasl_plain("alice", PW), 503)    # HELO is not EHLO
    c.ok("EHLO client.example.org", 250)
    login(c, "alice")
    c.close()
    c = K.tls_session()
    c.ok("MAIL FROM:<x@example.org>", 250)
    c.ok("AUTH PLAIN " + kt.sasl_plain("alice", PW), 503)    # mid-transaction
    c.ok("RSET", 250)
    login(c, "alice")
    c.close()


@test
def auth_plain_bad_forms_fail():
    ip = src_ip()
    c = K.tls_session(src=ip)
    r, dt = timed(c.ok, "AUTH PLAIN " + kt.sasl_plain("alice", PW, authzid="bob"), 535, timeout=15)
    c.close()                                                # authzid other than authcid
    c = K.tls_session(src=src_ip())
    c.ok("AUTH PLAIN !!!notbase64", 535, timeout=15)
    c.close()
    c = K.tls_session(src=src_ip())
    c.ok("AUTH PLAIN " + kt.b64("alice" + PW), 535, timeout=15)   # no NULs
    c.close()


@test
def auth_user_case_and_password_exact():
    # user names are matched as stored; a password is matched exactly
    c = K.tls_session(src=src_ip())
    c.ok("AUTH PLAIN " + kt.sasl_plain("alice", PW.upper()), 535, timeout=15)
    c.close()
    c = K.tls_session(src=src_ip())
    c.ok("AUTH PLAIN " + kt.sasl_plain("alice", PW + " "), 535, timeout=15)
    c.close()


@test
def auth_state_dropped_by_starttls():
    # RFC 3207 4.2: nothing of the cleartext session survives STARTTLS
    k = own_instance(protos=("submission",), lists={"cleartext_auth_net": ["127.0.0.0/8"]})
    c = k.connect()
    c.ok("EHLO client.example.org", 250)
    login(c, "alice")
    kt.smtp_starttls(c)
    c.ok("MAIL FROM:<alice@example.lan>", 530)
    login(c, "alice")
    c.ok("MAIL FROM:<alice@example.lan>", 250)
    c.close()


# ---------------------------------------------------------------- failures and the brake

@test(timeout=60)
def wrong_password_brake_per_ip():
    a, b = src_ip(), "127.0.0.2"                   # no other test fails logins from .2
    c = K.tls_session(src=a)
    r, t1 = timed(login, c, "alice", "wrong", 535, timeout=15)
    eq(r.enh(), "5.7.8", "enhanced code")
    check(0.9 <= t1 <= 3.5, "first failure answered after %.2f s, want about 2" % t1)
    check(re.search(r"auth failed ip=%s user=alice" % re.escape(a), K.log()),
          "no 'auth failed ip=%s user=alice' log line" % a)
    # a second failure from the same address (new session) waits longer;
    # meanwhile another address logs in at once
    res = {}

    def other():
        t = time.monotonic()
        c2 = K.tls_session(src=b)
        t_tls = time.monotonic()
        login(c2, "bob")
        res["login"] = time.monotonic() - t_tls
        deliver(c2, "bob@example.lan", ["alice@example.lan"], "during brake")
        res["all"] = time.monotonic() - t
        c2.close()
    c.close()
    c = K.tls_session(src=a)
    c.send("AUTH PLAIN " + kt.sasl_plain("alice", "wrong2") + "\r\n")
    t0 = time.monotonic()
    time.sleep(0.3)
    th = threading.Thread(target=other)
    th.start()
    r = c.reply(timeout=15)
    t2 = time.monotonic() - t0
    th.join(15)
    eq(r.code, 535, "second failure")
    check(t2 >= 2.5, "second failure from the same address answered after %.2f s" % t2)
    check("login" in res, "the login from %s did not finish" % b)
    check(res["login"] < 1.0, "login from another address took %.2f s during the brake" % res["login"])
    check(res["all"] < 3.0, "session from another address took %.2f s" % res["all"])
    c.ok("NOOP", 250)                                        # the session goes on
    c.close()


@test(timeout=60)
def three_failures_close_session():
    a = src_ip()
    c = K.tls_session(src=a)
    times = []
    for i in range(3):
        t = time.monotonic()
        r = c.cmd("AUTH PLAIN " + kt.sasl_plain("bob", "bad%d" % i), timeout=20)
        times.append(time.monotonic() - t)
        eq(r.code, 535, "failure %d" % (i + 1))
    rest = c.replies_until_close(20)
    check(rest and rest[0].code == 421 and rest[0].enh() == "4.7.0", "after 3 failures: %r" % rest)
    check(c.eof, "session not closed after 3 failures")
    c.close()
    check(times[1] > times[0] + 1 and times[2] > times[1] + 1, "the brake does not grow: %s" % times)
    eq(len(re.findall(r"auth failed ip=%s user=bob" % re.escape(a), K.log())), 3, "log lines")
    # a correct login from that address works and clears the count
    c = K.tls_session(src=a)
    login(c, "bob", timeout=40)
    c.close()
    c = K.tls_session(src=a)
    r, dt = timed(login, c, "bob", "bad", 535, timeout=20)
    # 2 to 3 s; not cleared it would be the 5th failure's 16 s
    check(dt <= 8, "after a good login the brake starts again at 2 s: took %.2f" % dt)
    c.close()


@test(timeout=60)
def brake_cannot_be_skipped_by_reconnecting():
    # A held 535 is no brake if a good password is answered at once: a
    # client that gives up after 0.3 s knows the guess was wrong and tries
    # again on a new connection at full speed.
    a = src_ip()
    c = K.tls_session(src=a)
    login(c, "alice", "guess1", 535, timeout=15)
    c.close()
    n0 = K.log().count("auth failed ip=%s " % a)
    t0 = time.monotonic()
    for i in range(3):
        c = K.tls_session(src=a)
        c.send("AUTH PLAIN " + kt.sasl_plain("alice", "guess%d" % (i + 2)) + "\r\n")
        time.sleep(0.3)
        c.close()
    took = time.monotonic() - t0
    time.sleep(0.5)
    n = K.log().count("auth failed ip=%s " % a) - n0
    c = K.tls_session(src=a)
    r, dt = timed(login, c, "alice", PW, (235, 535), timeout=40)
    c.close()
    check(not (n >= 3 and dt < 1.0),
          "from one address %d guesses were checked in %.1f s and a right password is then answered "
          "in %.2f s: the brake only delays the 535, so it can be skipped by reconnecting" % (n, took, dt))


@test(timeout=40)
def brake_longer_than_timeout():
    # option timeout below the brake: the held session must neither make the
    # loop spin nor be timed out for the server's own delay
    k = own_instance(protos=("smtp",), main={"timeout": 3}, lists={"cleartext_auth_net": ["127.0.0.0/8"]})
    tck = os.sysconf("SC_CLK_TCK")

    def cpu():
        f = open("/proc/%d/stat" % k.proc.pid).read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / tck
    a = src_ip()
    c = k.connect(src=a)
    c.ok("EHLO client.example.org", 250)
    login(c, "alice", "bad", 535, timeout=10)
    c.close()
    c = k.connect(src=a)
    c.ok("EHLO client.example.org", 250)
    c0 = cpu()
    r, dt = timed(login, c, "alice", "bad2", 535, timeout=20)     # held about 4 s
    used = cpu() - c0
    check(dt >= 2.5, "second failure answered after %.1f s" % dt)
    check(used < 0.5, "kotak used %.2f s of CPU during a %.1f s brake (busy loop)" % (used, dt))
    r = c.cmd("NOOP")
    eq(r.code, 250, "a command right after the held 535 (timed out for the server's own delay?)")
    c.close()


@test(timeout=60)
def unknown_user_costs_like_wrong_password():
    k = own_instance(protos=("smtp",), lists={"cleartext_auth_net": ["127.0.0.0/8"]})
    tck = os.sysconf("SC_CLK_TCK")

    def cpu():
        f = open("/proc/%d/stat" % k.proc.pid).read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / tck

    def batch(user, pw, n, net):
        cs = []
        for i in range(n):
            c = k.connect(src="127.%d.%d.%d" % (net, i // 200, i % 200 + 1))
            c.ok("EHLO client.example.org", 250)
            cs.append(c)
        c0, t0 = cpu(), time.monotonic()
        for c in cs:
            c.send("AUTH PLAIN " + kt.sasl_plain(user, pw) + "\r\n")
        texts = set()
        for c in cs:
            r = c.reply(timeout=40)
            texts.add(r.text)
        wall = time.monotonic() - t0
        for c in cs:
            c.close()
        return cpu() - c0, wall, texts

    n = 60
    res = {}
    for rnd in range(2):
        for name, user, pw, net in (("wrong", "alice", "nope", 10), ("unknown", "nosuchuser", "nope", 20),
                                    ("right", "bob", PW, 30)):
            cpu_s, wall, texts = batch(user, pw, n, net + rnd)
            res.setdefault(name, [0, 0, set()])
            res[name][0] += cpu_s
            res[name][1] += wall
            res[name][2] |= texts
    eq(res["wrong"][2], res["unknown"][2], "replies for a wrong password and an unknown user")
    w, u, g = res["wrong"][0], res["unknown"][0], res["right"][0]
    print("    cpu for %d logins: wrong password %.2f s, unknown user %.2f s, right %.2f s" % (2 * n, w, u, g))
    check(w > 0.05, "too little CPU to compare (%.2f s)" % w)
    check(1 / 3 <= u / w <= 3, "CPU: unknown user %.3f s vs wrong password %.3f s" % (u, w))
    check(1 / 3 <= g / w <= 3, "CPU: right password %.3f s vs wrong password %.3f s" % (g, w))
    wu, ww = res["unknown"][1], res["wrong"][1]
    check(1 / 3 <= wu / ww <= 3, "wall time: unknown user %.2f s vs wrong password %.2f s" % (wu, ww))
    check(re.search(r"auth failed ip=127\.20\.0\.1 user=nosuchuser", k.log()), "no log line for the unknown user")


@test
def log_line_cannot_be_forged():
    # fail2ban-style tools read "auth failed ip=..." lines: a user name with
    # a line break must not make one for an address of the client's choice
    a = src_ip()
    c = K.tls_session(src=a)
    login(c, "evil\nkotak: auth failed ip=6.6.6.6 user=root", "bad", 535, timeout=15)
    c.close()
    c = K.tls_session(src=a)
    c.ok("AUTH LOGIN " + kt.b64("evil2\r\nkotak: auth failed ip=6.6.6.7 user=root"), 334)
    c.ok(kt.b64("bad"), 535, timeout=15)
    c.close()
    log = K.log()
    check(re.search(r"auth failed ip=%s user=evil" % re.escape(a), log), "no log line for the failure")
    for ip in ("6.6.6.6", "6.6.6.7"):
        check(not re.search(r"^kotak: auth failed ip=%s" % re.escape(ip), log, re.M),
              "a user name forged the log line 'auth failed ip=%s' (fail2ban would ban it)" % ip)


# ---------------------------------------------------------------- submission rules

@test
def submission_requires_auth():
    for proto in ("submission", "smtps"):
        c = K.tls_session(proto=proto)
        c.ok("MAIL FROM:<alice@example.lan>", 530, enh="5.7.0")
        c.ok("RCPT TO:<alice@example.lan>", 503)
        login(c, "alice")
        c.ok("MAIL FROM:<alice@example.lan>", 250)
        c.close()
    # the MX port takes mail from strangers without AUTH, under TLS too
    c = K.tls_session(proto="smtp")
    c.ok("MAIL FROM:<stranger@example.org>", 250)
    c.ok("RCPT TO:<alice@example.lan>", 250)
    c.ok("RCPT TO:<someone@remote.example>", 554, enh="5.7.1")
    c.close()


@test
def authenticated_remote_recipient_stays_queued():
    n = K.count("alice")
    before = set(queue_files(K))
    c = K.tls_session(proto="submission")
    login(c, "alice")
    r = deliver(c, "alice@example.lan", ["friend@remote.example", "alice@example.lan"], "to remote")
    c.close()
    K.wait_count("alice", n + 1)                             # the local copy is delivered
    time.sleep(1.0)
    new = set(queue_files(K)) - before
    eq(len(new), 1, "new queue files (%r)" % sorted(new))
    qf = os.path.join(K.data_dir, "spool", "queue", new.pop())
    data = open(qf, "rb").read()
    check(b"friend@remote.example" in data, "remote recipient not in the queue file")
    # its resolver points at a dead loopback port: the relay defers it
    kt.wait_for(lambda: re.search(r"to=<friend@remote\.example> .*status=deferred", K.log()), timeout=30,
                what="the relay's deferral of the remote recipient")
    check(os.path.exists(qf), "queue file removed")


@test
def relay_needs_auth_on_mx_port():
    c = K.tls_session()
    c.ok("MAIL FROM:<alice@example.lan>", 250)
    c.ok("RCPT TO:<x@remote.example>", 554)
    c.ok("RSET", 250)
    login(c, "alice")
    c.ok("MAIL FROM:<alice@example.lan>", 250)
    c.ok("RCPT TO:<x@remote.example>", 250)
    c.close()


@test
def sender_must_be_owned():
    c = K.tls_session(proto="submission")
    login(c, "alice")
    for s in ("bob@example.lan", "alice@remote.example", "info@example.lan", "postmaster@example.lan",
              "nosuch@example.lan", "alice@sub.example.lan"):
        c.ok("MAIL FROM:<%s>" % s, 553, enh="5.7.1")
    for s in ("alice@example.lan", "al@example.lan", "sales@example.lan", "chief@example.lan"):
        c.ok("MAIL FROM:<%s>" % s, 250)                      # own name, aliases leading to alice
        c.ok("RSET", 250)
    c.close()
    c = K.tls_session(proto="smtps")
    login(c, "carol")
    c.ok("MAIL FROM:<info@example.lan>", 250)                # alias with a user@domain target
    c.close()


@test
def sender_ownership_case_insensitive():
    c = K.tls_session(proto="submission")
    login(c, "alice")
    c.ok("MAIL FROM:<Alice@Example.LAN>", 250)
    c.ok("RSET", 250)
    c.ok("MAIL FROM:<AL@example.lan>", 250)
    c.close()


@test
def auth_any_sender_lifts_check():
    k = own_instance(protos=("submission",), main={"auth_any_sender": 1})
    n = k.count("bob")
    c = k.tls_session(proto="submission")
    login(c, "alice")
    deliver(c, "boss@remote.example", ["bob@example.lan"], "any sender")
    c.ok("MAIL FROM:<bob@example.lan>", 250)
    c.close()
    stored = k.wait_count("bob", n + 1)[-1]
    check(b"(Authenticated sender: alice)" in stored, "Received lacks the login: %r" % received_of(stored))
    c = k.tls_session(proto="submission")
    c.ok("MAIL FROM:<boss@remote.example>", 530)             # still needs AUTH
    c.close()


@test
def received_header_records_auth():
    n = K.count("bob")
    c = K.tls_session(proto="submission")
    login(c, "alice")
    deliver(c, "alice@example.lan", ["bob@example.lan"], "received auth")
    c.close()
    c = K.tls_session(proto="smtp")                          # TLS, no AUTH
    deliver(c, "x@example.org", ["bob@example.lan"], "received tls")
    c.close()
    c = K.connect()
    c.ok("EHLO client.example.org", 250)
    deliver(c, "x@example.org", ["bob@example.lan"], "received plain")
    c.close()
    msgs = K.wait_count("bob", n + 3)[-3:]
    rec = [received_of(m)[0].decode() for m in msgs]
    check("with ESMTPSA id" in rec[0] and "(Authenticated sender: alice)" in rec[0],
          "Received after AUTH: %r" % rec[0])
    check("with ESMTPS id" in rec[1] and "Authenticated" not in rec[1], "Received under TLS: %r" % rec[1])
    check("with ESMTP id" in rec[2] and "Authenticated" not in rec[2], "Received in cleartext: %r" % rec[2])
    check(re.match(r"Received: from client\.example\.org \(unknown \[127\.0\.0\.1\]\)", rec[0]),
          "Received from-part: %r" % rec[0])


@test
def auth_user_as_alias_name_fails():
    # an alias is not a login
    c = K.tls_session(src=src_ip())
    login(c, "al", PW, 535, timeout=15)
    c.close()


@test
def users_reload_password_change():
    k = own_instance(protos=("smtps",))
    r = kt.run_kotak(["-c", k.conf, "user", "passwd", "alice"], stdin=b"n3w-pass\n")
    eq(r.returncode, 0, "user passwd (%s)" % r.stderr.decode())
    k.hup()
    time.sleep(0.5)
    c = k.tls_session(proto="smtps")
    login(c, "alice", "n3w-pass")
    c.close()
    c = k.tls_session(proto="smtps", src=src_ip())
    login(c, "alice", PW, 535, timeout=15)
    c.close()


if __name__ == "__main__":
    sys.exit(kt.main(setup))

#!/usr/bin/env python3
"""Holding up under abuse (issue 14): many and slow clients, refusals in
each protocol's own words, per-address shares and per-protocol reserves of
the session slots, pre-login idle limits, the DATA deadline.

Load is bounded (at most 1,000 connections, from 127.0.x.y sources) and
every timed check waits for a condition with a generous margin; the one
1-second bound is the issue's goal, and without the fix the client it
measures is never greeted at all."""

import os
import re
import resource
import select
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kt  # noqa: E402
from kt import test, check, eq  # noqa: E402


def have(feature):
    r = kt.run_kotak(["-V"])
    return ("+" + feature).encode() in r.stdout + r.stderr


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= n


class Flood:
    """Opens n connections from the given sources in a background thread,
    as fast as connect() goes, and holds them open without a word."""

    def __init__(self, addr, sources, n):
        self.addr, self.sources, self.n = addr, sources, n
        self.socks = []
        self.opened = 0
        self.err = None
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()
        kt.after_test(self.close)

    def run(self):
        try:
            pend = []
            for i in range(self.n):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.bind((self.sources[i % len(self.sources)], 0))
                s.setblocking(False)
                s.connect_ex(self.addr)
                pend.append(s)
                self.socks.append(s)
                # at most 64 handshakes in flight: a loopback SYN flood is
                # not what this measures (the kernel would drop SYNs)
                while len(pend) >= 64:
                    _, w, _ = select.select([], pend, [], 5)
                    for x in w:
                        pend.remove(x)
                        self.opened += 1
                    if not w:
                        raise AssertionError("flood: connects stalled")
            while pend:
                _, w, _ = select.select([], pend, [], 5)
                for x in w:
                    pend.remove(x)
                    self.opened += 1
                if not w:
                    raise AssertionError("flood: connects stalled")
        except Exception as e:      # reported by the test
            self.err = e

    def close(self):
        self.t.join(30)
        for s in self.socks:
            s.close()
        self.socks = []


def greet_time(k, src, addr=None):
    t0 = time.monotonic()
    c = k.connect(src=src, greet=False, addr=addr, timeout=10)
    r = c.reply(timeout=10)
    return c, r, time.monotonic() - t0


@test(timeout=120)
def five_addresses_with_1000_connections_lock_nobody_out():
    """The issue's goal: while 5 addresses open 1,000 connections, a client
    from another address is greeted within 1 s and its mail is accepted."""
    if not raise_nofile(1200):
        raise kt.Skip("cannot raise RLIMIT_NOFILE to 1200")
    k = kt.Kotak(users=("alice",))
    kt.after_test(k.cleanup)
    srcs = ["127.0.1.%d" % i for i in range(1, 6)]
    f = Flood(k.listens[0], srcs, 1000)
    kt.wait_for(lambda: f.opened >= 50 or f.err, 60, what="50 flood connections")
    # probe all through the flood: a full listen backlog drops a SYN only
    # now and then, and the client then waits for its 1 s retransmission
    worst, probes = 0, 0
    while f.t.is_alive() or probes < 3:
        c, r, dt = greet_time(k, "127.0.2.%d" % (probes % 200 + 1))
        eq(r.code, 220, "greeting of a client from another address during the flood")
        worst = max(worst, dt)
        probes += 1
        c.close()
        time.sleep(0.01)
    f.t.join(60)
    check(f.err is None, "flood: %s" % f.err)
    eq(f.opened, 1000, "flood connections opened")
    c, r, dt = greet_time(k, "127.0.2.9")
    worst = max(worst, dt)
    eq(r.code, 220, "greeting after the flood's 1,000 connections")
    check(worst < 1.0, "a client from another address waited %.2f s for its greeting (goal: 1 s)" % worst)
    c.ok("EHLO client.example.org", 250)
    c.ok("MAIL FROM:<x@example.org>", 250)
    c.ok("RCPT TO:<alice@%s>" % kt.DOMAIN, 250)
    c.ok("DATA", 354)
    c.send(kt.dot_stuff(kt.msg("through the flood")) + b".\r\n")
    eq(c.reply(timeout=15).code, 250, "mail from the other address")
    c.close()
    k.wait_count("alice", 1)
    # the flood was held back by the per-address rules, not by luck
    log = k.log()
    check("reason=share" in log or "reason=per-ip" in log, "no per-address refusal in the log")
    # how many more addresses still get a slot while the flood holds on
    free = []
    for i in range(200):
        c = k.connect(src="127.0.3.%d" % (i + 1), greet=False, timeout=10)
        r = c.reply(timeout=10)
        if r.code != 220:
            eq(r.code, 421, "refusal beyond the slots")
            c.close()
            break
        free.append(c)
    check(len(free) >= 20, "only %d slots left for other addresses under the flood" % len(free))
    if os.environ.get("KT_VERBOSE"):
        print("greeting under the flood: worst %.3f s over %d probes; slots left for others: %d"
              % (worst, probes, len(free)))
    for c in free:
        c.close()


@test
def beyond_the_cap_smtp_gets_421_and_pop3_gets_err():
    if not have("pop3"):
        raise kt.Skip("kotak built without POP3")
    k = kt.KotakTls(protos=("smtp", "pop3"), main={"max_sessions": 8, "max_sessions_per_ip": 2})
    kt.after_test(k.cleanup)
    held = []
    # per address: POP3 clients get a POP3 answer, SMTP clients an SMTP one
    for i in range(2):
        c = k.connect(proto="pop3", greet=False)
        check(c.line().startswith("+OK"), "POP3 greeting")
        held.append(c)
    c = k.connect(proto="pop3", greet=False)
    ln = c.line()
    check(ln.startswith("-ERR ") and "Too many connections from your address" in ln,
          "POP3 session over max_sessions_per_ip got %r, want -ERR" % ln)
    check(c.wait_closed(5), "refused POP3 session not closed")
    c = k.connect(proto="smtp", greet=False)
    r = c.reply()
    eq(r.code, 421, "SMTP session over max_sessions_per_ip")
    # in total: the 9th session is refused in its protocol's words, at once
    for i in range(6 - 2):
        held.append(k.connect(proto="smtp", src="127.0.4.%d" % (i + 1)))
    for i in range(2):
        c = k.connect(proto="pop3", src="127.0.4.%d" % (i + 10), greet=False)
        check(c.line().startswith("+OK"), "POP3 greeting")
        held.append(c)
    eq(len(held), 8, "sessions held")
    c = k.connect(proto="smtp", src="127.0.4.20", greet=False)
    r = c.reply(timeout=3)
    check(r.code == 421 and "Too many connections" in r.text, "9th session (SMTP): %r" % r.text)
    c = k.connect(proto="pop3", src="127.0.4.21", greet=False)
    ln = c.line(timeout=3)
    check(ln.startswith("-ERR [SYS/TEMP] Too many connections"), "9th session (POP3): %r" % ln)
    held.pop().close()
    c = kt.wait_for(lambda: slot(k, "127.0.4.22"), 5, 0.1, "a session once one closed")
    c.close()
    for h in held:
        h.close()


def slot(k, src, proto="smtp"):
    c = k.connect(proto=proto, src=src, greet=False)
    ln = c.line(timeout=3)
    if ln.startswith("220") or ln.startswith("+OK") or ln.startswith("* OK"):
        return c
    c.close()
    return None


@test
def imap_refused_in_its_words_and_keeps_its_reserve():
    """IMAP (an IMAP=y build): beyond a cap a session gets an untagged
    BYE, and an SMTP flood from many addresses leaves IMAP its share."""
    if not have("imap"):
        raise kt.Skip("kotak built without IMAP")
    k = kt.KotakTls(protos=("smtp", "imap"), main={"max_sessions": 16, "max_sessions_per_ip": 2})
    kt.after_test(k.cleanup)
    held = [slot(k, kt.LOOPBACK, "imap") for _ in range(2)]
    check(all(held), "IMAP greetings")
    c = k.connect(proto="imap", greet=False)
    ln = c.line(timeout=3)
    check(ln.startswith("* BYE [UNAVAILABLE] Too many connections from your address"),
          "IMAP session over max_sessions_per_ip got %r" % ln)
    check(c.wait_closed(5), "refused IMAP session not closed")
    for h in held:
        h.close()
    time.sleep(0.3)
    n = 0
    for i in range(20):     # one each: no per-address rule applies
        c = slot(k, "127.0.6.%d" % (i + 1))
        if c:
            held.append(c)
            n += 1
    eq(n, 16 - 16 // 8, "SMTP sessions taken by 20 addresses (the rest kept for IMAP)")
    for i in range(2):
        c = slot(k, "127.0.6.%d" % (40 + i), proto="imap")
        check(c is not None, "IMAP session %d during the SMTP flood" % (i + 1))
        held.append(c)
    c = k.connect(proto="imap", src="127.0.6.50", greet=False)
    ln = c.line(timeout=3)
    check(ln.startswith("* BYE [UNAVAILABLE] Too many connections"), "17th session (IMAP): %r" % ln)
    for h in held:
        h.close()


@test
def smtp_flood_from_many_addresses_leaves_pop3_its_reserve():
    if not have("pop3"):
        raise kt.Skip("kotak built without POP3")
    k = kt.KotakTls(protos=("smtp", "pop3"), lists={"cleartext_auth_net": ["127.0.0.0/8"]},
                    main={"max_sessions": 16})
    kt.after_test(k.cleanup)
    held, refused = [], 0
    for i in range(20):     # one each: no per-address rule applies
        c = slot(k, "127.0.5.%d" % (i + 1))
        if c:
            held.append(c)
        else:
            refused += 1
    eq(len(held), 16 - 16 // 8, "SMTP sessions taken by 20 addresses (the rest kept for POP3)")
    check("reason=reserve" in k.log(), "no reserve refusal logged")
    for i in range(2):
        c = slot(k, "127.0.5.%d" % (40 + i), proto="pop3")
        check(c is not None, "POP3 session %d during the SMTP flood" % (i + 1))
        held.append(c)
    c.send(b"USER alice\r\n")
    check(c.line().startswith("+OK"), "USER")
    c.send(b"PASS %s\r\n" % kt.DEFAULT_PASSWORD.encode())
    check(c.line(timeout=10).startswith("+OK"), "POP3 login during the SMTP flood")
    for h in held:
        h.close()


@test
def idle_before_login_is_cut_sooner():
    if not have("pop3"):
        raise kt.Skip("kotak built without POP3")
    k = kt.KotakTls(protos=("smtp", "pop3"), lists={"cleartext_auth_net": ["127.0.0.0/8"]},
                    main={"login_timeout": 2, "timeout": 60})
    kt.after_test(k.cleanup)
    t0 = time.monotonic()
    s = k.connect()
    s.ok("EHLO client.example.org", 250)
    p = k.connect(proto="pop3", greet=False)
    p.line()
    q = k.connect(proto="pop3", greet=False)
    q.line()
    q.send(b"USER alice\r\nPASS %s\r\n" % kt.DEFAULT_PASSWORD.encode())
    check(q.line().startswith("+OK") and q.line(timeout=10).startswith("+OK"), "POP3 login")
    # a logged-in SMTP session and one inside a transaction are not strangers
    a = k.connect()
    a.ok("EHLO client.example.org", 250)
    a.ok("MAIL FROM:<x@example.org>", 250)
    r = s.replies_until_close(15)
    check(r and r[-1].code == 421, "idle SMTP session before MAIL: %r" % r)
    check(p.wait_closed(15), "idle POP3 session before login not closed")
    check(b"-ERR" in p.buf, "POP3: no -ERR before the close: %r" % p.buf)
    check(time.monotonic() - t0 < 20, "pre-login sessions cut after %.1f s (login_timeout 2, timeout 60)"
          % (time.monotonic() - t0))
    q.send(b"NOOP\r\n")
    check(q.line().startswith("+OK"), "logged-in POP3 session still there")
    a.ok("RSET", 250)


@test
def data_trickle_cannot_keep_a_session():
    k = kt.Kotak(users=("alice",), main={"data_timeout": 2})
    kt.after_test(k.cleanup)
    c = k.session()
    c.ok("MAIL FROM:<x@example.org>", 250)
    c.ok("RCPT TO:<alice@%s>" % kt.DOMAIN, 250)
    c.ok("DATA", 354)
    t0 = time.monotonic()
    closed = False
    while time.monotonic() - t0 < 12:     # one byte every 0.4 s: each within data_timeout
        try:
            c.send(b"x")
        except OSError:
            closed = True
            break
        if c.wait_closed(0.4):
            closed = True
            break
    check(closed, "a trickle of a byte every 0.4 s kept DATA open for 12 s (data_timeout 2)")
    check(b"421 4.4.2" in c.buf, "no 421 4.4.2 before the close: %r" % c.buf)
    eq(k.count("alice"), 0, "messages stored")


# ---------------------------------------------------------------- password guessing

def guesser(k, src, until, out):
    """SMTP AUTH with a wrong password from src, again and again until the
    monotonic time until; counts the replies by code in out."""
    while time.monotonic() < until:
        try:
            c = k.connect(src=src, timeout=40)
            c.ok("EHLO guesser.example.org", 250)
            r = c.cmd("AUTH PLAIN " + kt.sasl_plain("alice", "guess%f" % time.monotonic()), timeout=40)
            out[r.code] = out.get(r.code, 0) + 1
            c.close()
            if r.code == 454:
                time.sleep(0.5)
        except (OSError, kt.Closed, AssertionError):
            time.sleep(0.2)


@test(timeout=90)
def guessing_from_100_addresses_stays_near_one_address_rate():
    # clients may log in without TLS here
    k = kt.KotakTls(users=("alice",), protos=("smtp",), lists={"cleartext_auth_net": ["127.0.0.0/8"]})
    kt.after_test(k.cleanup)
    # alice logged in before from her address: the guessers must not lock her out
    c = k.session(src="127.0.7.1")
    c.ok("AUTH PLAIN " + kt.sasl_plain("alice", kt.DEFAULT_PASSWORD), 235)
    c.close()
    t0 = time.monotonic()
    out = {}
    ts = [threading.Thread(target=guesser, args=(k, "127.0.8.%d" % (i + 1), t0 + 20, out), daemon=True)
          for i in range(100)]
    for t in ts:
        t.start()
    kt.wait_for(lambda: out.get(454), 15, what="a guess refused over the shared budget")
    c = k.session(src="127.0.7.1", timeout=10)
    t1 = time.monotonic()
    c.ok("AUTH PLAIN " + kt.sasl_plain("alice", kt.DEFAULT_PASSWORD), 235)
    check(time.monotonic() - t1 < 5, "alice's login from her usual address took %.1f s" % (time.monotonic() - t1))
    c.close()
    for t in ts:
        t.join(60)
    checked = k.log().count("auth failed ip=127.0.8.")
    # shared budget: a burst of 5, then one per 12 s: 6 or 7 in 20 s (was about 400)
    check(checked <= 12, "%d passwords checked from 100 addresses in 20 s" % checked)
    check(out.get(454, 0) > 0, "no guess was refused: %r" % out)


@test(timeout=60)
def unknown_recipients_cost_growing_delays():
    k = kt.Kotak(users=("alice",))
    kt.after_test(k.cleanup)
    c = k.session(timeout=30)
    c.ok("MAIL FROM:<x@example.org>", 250)
    took = []
    for i in range(3):
        t0 = time.monotonic()
        c.ok("RCPT TO:<nobody%d@%s>" % (i, kt.DOMAIN), 550, timeout=30)
        took.append(time.monotonic() - t0)
    # holds of 1, 2 and 3 s, each at least that long (n to n + 1 s on the
    # loop's whole-second clock); a fixed 1 s delay holds the third 1 to 2 s
    check(took[2] >= 2.9, "3 unknown recipients answered after %s s (want a growing delay)"
          % ["%.1f" % x for x in took])
    c.ok("RCPT TO:<alice@%s>" % kt.DOMAIN, 250, timeout=30)
    c.ok("DATA", 354)
    c.send(kt.dot_stuff(kt.msg("after probes")) + b".\r\n")
    eq(c.reply(timeout=15).code, 250, "the message after the unknown recipients")
    # and they count toward max_errors, as Postfix's hard error limit
    k2 = kt.Kotak(users=("alice",), main={"max_errors": 2})
    kt.after_test(k2.cleanup)
    c = k2.session(timeout=30)
    c.ok("MAIL FROM:<x@example.org>", 250)
    c.ok("RCPT TO:<nobody@%s>" % kt.DOMAIN, 550, timeout=30)
    c.send("RCPT TO:<nobody2@%s>\r\n" % kt.DOMAIN)
    rs = c.replies_until_close(30)
    eq([r.code for r in rs], [550, 421], "replies to the second unknown recipient (max_errors 2)")


@test
def users_file_rounds_capped_at_load():
    k = kt.Kotak(users=("alice",), start=False)
    kt.after_test(k.cleanup)
    with open(k.users_file, "a") as f:
        f.write("# a costly one\nbob:$6$rounds=2000000$saltsalt$" + "x" * 86 + "\n")
    r = kt.run_kotak(["-c", k.conf, "-t"])
    err = (r.stdout + r.stderr).decode()
    eq(r.returncode, 1, "kotak -t with rounds=2000000 (%s)" % err.strip())
    check("%s:3:" % k.users_file in err and "rounds" in err, "error does not name file:line: %r" % err)
    with open(k.users_file, "w") as f:
        f.write("bob:$6$rounds=20000$saltsalt$" + "x" * 86 + "\n")
    eq(kt.run_kotak(["-c", k.conf, "-t"]).returncode, 0, "kotak -t with rounds=20000")


@test
def pop3_over_the_shared_budget_gets_sys_temp():
    if not have("pop3"):
        raise kt.Skip("kotak built without POP3")
    k = kt.KotakTls(users=("alice",), protos=("smtp", "pop3"), main={"auth_fail_rate": 1},
                    lists={"cleartext_auth_net": ["127.0.0.0/8"]})
    kt.after_test(k.cleanup)
    p = k.connect(proto="pop3", src="127.0.9.1", greet=False)
    p.line()
    p.send(b"USER alice\r\nPASS wrong\r\n")
    check(p.line().startswith("+OK"), "USER")
    check(p.line(timeout=15).startswith("-ERR [AUTH]"), "a first wrong password is checked")
    q = k.connect(proto="pop3", src="127.0.9.2", greet=False)
    q.line()
    q.send(b"USER alice\r\nPASS %s\r\n" % kt.DEFAULT_PASSWORD.encode())
    check(q.line().startswith("+OK"), "USER")
    ln = q.line(timeout=15)
    check(ln.startswith("-ERR [SYS/TEMP]"), "a stranger's password over the budget (1 a minute): %r" % ln)
    eq(k.log().count("auth failed"), 1, "passwords checked and failed")


# ---------------------------------------------------------------- parsing and protocol

@test
def forged_flag_headers_dropped_whatever_the_blanks():
    k = kt.Kotak(users=("alice",))
    kt.after_test(k.cleanup)
    hdrs = ["X-Status" + " " * 18 + ": F", "Status" + "\t" * 30 + ": RO",
            "X-Keywords" + " \t" * 3000 + ": $Important", "X-UID   : 99"]
    eq(k.send(["alice@" + kt.DOMAIN], kt.msg("forged", headers=hdrs)).code, 250, "message")
    m = k.wait_count("alice", 1)[0]
    head = m.split(b"\n\n", 1)[0]
    for name in (b"X-Status", b"\nStatus", b"X-Keywords", b"X-UID"):
        check(name not in head, "%r stored: %r" % (name, head[-300:]))
    check(b"Subject: forged" in head, "the rest of the header is kept")


@test
def body_after_a_refused_pipelined_data_never_runs_as_commands():
    k = kt.Kotak(users=("alice", "bob"))
    kt.after_test(k.cleanup)
    c = k.session(timeout=15)
    c.send("MAIL FROM:<x@example.org>\r\nRCPT TO:<nobody@{0}>\r\nDATA\r\n"
           "MAIL FROM:<x@example.org>\r\nRCPT TO:<bob@{0}>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\n"
           .format(kt.DOMAIN))
    rs = c.replies_until_close(15)
    codes = [r.code for r in rs]
    check(codes[:2] == [250, 550] and 554 in codes[2:], "replies: %r" % [r.text for r in rs])
    check("5.5.0" in rs[-1].text, "last reply: %r" % rs[-1].text)
    time.sleep(0.5)
    eq(k.count("bob"), 0, "messages stored for bob (the body ran as commands)")
    # legal pipelining after EHLO still works: MAIL, RCPT and DATA in one go
    c = k.session()
    c.send("MAIL FROM:<x@example.org>\r\nRCPT TO:<bob@%s>\r\nDATA\r\n" % kt.DOMAIN)
    eq([c.reply().code for _ in range(3)], [250, 250, 354], "pipelined group")
    c.send(kt.dot_stuff(kt.msg("pipelined")) + b".\r\nQUIT\r\n")
    eq(c.reply(timeout=15).code, 250, "message")
    eq(c.reply().code, 221, "QUIT pipelined after the final dot")
    k.wait_count("bob", 1)


@test
def input_before_the_greeting_or_after_helo_is_refused():
    import signal
    k = kt.Kotak(users=("alice",))
    kt.after_test(k.cleanup)
    # before the greeting: kotak stopped, the client talks first
    k.proc.send_signal(signal.SIGSTOP)
    try:
        c = k.connect(greet=False)
        c.send(b"EHLO early.example.org\r\n")
        time.sleep(0.2)
    finally:
        k.proc.send_signal(signal.SIGCONT)
    rs = c.replies_until_close(10)
    check(rs and rs[-1].code == 554 and "5.5.0" in rs[-1].text, "early talker: %r" % [r.text for r in rs])
    # EHLO must be the last command of a group
    c = k.connect()
    c.send(b"EHLO x.example.org\r\nMAIL FROM:<x@example.org>\r\n")
    rs = c.replies_until_close(10)
    check(rs and rs[-1].code == 554, "commands behind EHLO: %r" % [r.text for r in rs])
    # after HELO nothing may be pipelined
    c = k.connect()
    c.ok("HELO x.example.org", 250)
    c.send("MAIL FROM:<x@example.org>\r\nRCPT TO:<alice@%s>\r\n" % kt.DOMAIN)
    rs = c.replies_until_close(10)
    check(rs and rs[-1].code == 554, "pipelining after HELO: %r" % [r.text for r in rs])
    # one command at a time after HELO is fine
    c = k.connect()
    c.ok("HELO x.example.org", 250)
    c.ok("MAIL FROM:<x@example.org>", 250)
    c.ok("RCPT TO:<alice@%s>" % kt.DOMAIN, 250)


# ---------------------------------------------------------------- operator mistakes

def bad_configs(k):
    """(name, path, what the error must say): each must fail -t, start and
    reload with it."""
    d = k.dir
    good = k.config_text()
    out = []

    def put(name, data, want):
        p = os.path.join(d, name)
        with open(p, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        out.append((name, p, want))
    put("nul.conf", b"\0" * 4096, "nul.conf:1:")
    out.append(("/dev/zero", "/dev/zero", "not a regular file"))
    out.append(("a directory", d, "not a regular file"))
    put("host.conf", good.replace("option hostname '%s'" % kt.HOSTNAME, "option hostname ''"),
        "host.conf:2: option hostname")
    put("loop.conf", good + "config alias\n\toption name la\n\tlist to lb\n"
        "config alias\n\toption name lb\n\tlist to 'x@example.lan'\n\tlist to la\n", "loop.conf:")
    put("dots.conf", good + "config alias\n\toption name dots\n\tlist to '../etc'\n", "dots.conf:")
    return out


@test(timeout=60)
def config_mistakes_are_errors_at_check_start_and_reload():
    k = kt.Kotak(users=("alice",))
    kt.after_test(k.cleanup)
    for name, path, want in bad_configs(k):
        try:
            r = kt.run_kotak(["-c", path, "-t"], timeout=5)
        except kt.subprocess.TimeoutExpired:
            raise AssertionError("kotak -c %s -t did not finish in 5 s" % name)
        err = (r.stdout + r.stderr).decode(errors="replace")
        check(r.returncode == 1 and want in err, "-t with %s: rc %d, %r" % (name, r.returncode, err))
        try:
            r = kt.run_kotak(["-c", path], timeout=5)
        except kt.subprocess.TimeoutExpired:
            raise AssertionError("kotak started with %s" % name)
        err = (r.stdout + r.stderr).decode(errors="replace")
        check(r.returncode == 1 and want in err, "start with %s: rc %d, %r" % (name, r.returncode, err))
    # reload: the running config stays (the loop and the dots add a domain too)
    good = k.config_text()
    for name, path, want in bad_configs(k):
        if not name.endswith(".conf"):
            continue
        data = open(path).read().replace("list domain '%s'" % kt.DOMAIN,
                                         "list domain '%s'\n\tlist domain 'new.example'" % kt.DOMAIN)
        k.write_config(data)
        n = k.log().count("keeping the old config")
        k.hup()
        kt.wait_for(lambda: k.log().count("keeping the old config") > n, 5, what="the reload refused")
        last = [ln for ln in k.log().splitlines() if "keeping the old config" in ln][-1]
        check(re.search(r"kotak\.conf:\d+: ", last), "reload error for %s without FILE:LINE: %r" % (name, last))
        c = k.session()
        c.ok("MAIL FROM:<x@example.org>", 250)
        c.ok("RCPT TO:<alice@new.example>", 554)
        c.close()
    k.write_config(good)


@test
def reload_is_all_or_nothing():
    """A users file that cannot be used makes the whole reload fail: the new
    domain of the same reload is not taken either."""
    k = kt.Kotak(users=("alice",))
    kt.after_test(k.cleanup)
    k.domains.append("new.example")
    k.write_config()
    with open(k.users_file, "a") as f:
        f.write("bob:$6$rounds=999999999$salt$" + "x" * 86 + "\n")
    k.hup()
    kt.wait_for(lambda: "keeping the whole running config" in k.log(), 5, what="the reload refused")
    c = k.session()
    c.ok("MAIL FROM:<x@example.org>", 250)
    c.ok("RCPT TO:<alice@new.example>", 554)
    c.ok("RCPT TO:<alice@%s>" % kt.DOMAIN, 250)
    c.close()
    # fixed: the next reload takes it all
    with open(k.users_file) as f:
        lines = [ln for ln in f if not ln.startswith("bob:")]
    with open(k.users_file, "w") as f:
        f.writelines(lines)
    k.user_add("carol")
    k.hup()
    kt.wait_for(lambda: "reloaded" in k.log(), 5, what="the reload")
    c = k.session()
    c.ok("MAIL FROM:<x@example.org>", 250)
    c.ok("RCPT TO:<carol@new.example>", 250)
    c.close()


@test
def inherited_descriptors_are_closed():
    k = kt.Kotak(users=("alice",), start=False)
    kt.after_test(k.cleanup)
    r, w = os.pipe()
    logf = open(k.log_path, "ab")
    p = kt.subprocess.Popen([kt.BIN, "-c", k.conf], stdin=kt.subprocess.DEVNULL, stdout=logf, stderr=logf,
                            pass_fds=(w,))
    k.proc = p
    k.logf = logf
    os.close(w)
    k.wait_ready()
    ready, _, _ = select.select([r], [], [], 5)
    check(ready and os.read(r, 1) == b"", "kotak still holds the write end of a pipe it inherited")
    os.close(r)


@test
def test_hooks_only_in_test_builds():
    if b"+test-hooks" in kt.run_kotak(["-V"]).stdout:
        raise kt.Skip("a test build (make asan): it has the hooks")
    with open(kt.BIN, "rb") as f:
        data = f.read()
    check(b"KOTAK_TEST_" not in data, "the shipped binary names a test hook (%d times)" % data.count(b"KOTAK_TEST_"))


if __name__ == "__main__":
    sys.exit(kt.main())

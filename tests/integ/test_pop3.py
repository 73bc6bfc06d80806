#!/usr/bin/env python3
"""POP3 and the mailbox layer on the real binary: poplib, fetchmail, curl,
raw dialogs for the corners, concurrent writers, kill -9 and ENOSPC during
an expunge.  Loopback only; plain POP3 is allowed for 127.0.0.0/8 through
`list cleartext_auth_net`."""

import fcntl
import hashlib
import mailbox
import os
import poplib
import re
import shutil
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kt  # noqa: E402
from kt import test, check, eq  # noqa: E402

PW = kt.DEFAULT_PASSWORD


def have_pop3():
    r = kt.run_kotak(["-V"])
    return b"+pop3" in r.stdout


class KP(kt.KotakTls):
    """kotak with smtp + pop3 (+ pop3s) listeners."""

    def __init__(self, protos=("smtp", "pop3"), clear=True, env=None, **kw):
        if not have_pop3():
            raise kt.Skip("kotak built without POP3")
        self.env = env or {}
        lists = {"cleartext_auth_net": ["127.0.0.0/8"]} if clear else {}
        kt.KotakTls.__init__(self, protos=protos, lists=lists, **kw)

    def wait_ready(self, timeout=8.0):
        for host, port, proto in self.listens:
            end = time.monotonic() + timeout
            while True:
                if self.proc.poll() is not None:
                    raise AssertionError("kotak exited: %s" % " | ".join(self.log_tail(5)))
                try:
                    c = kt.Smtp(host, port, timeout=2)
                    if proto in ("smtps", "pop3s"):
                        kt.smtp_wrap_tls(c, timeout=2)
                    c.line(2)
                    c.close()
                    break
                except (OSError, kt.Closed, AssertionError):
                    if time.monotonic() > end:
                        raise AssertionError("no listener %s:%d" % (host, port))
                    time.sleep(0.05)

    def pport(self, proto="pop3"):
        return self.addr_of(proto)[1]

    def pop(self, user="alice", pw=PW, proto="pop3"):
        if proto == "pop3s":
            p = poplib.POP3_SSL(kt.LOOPBACK, self.pport(proto), context=kt.tls_client_context(), timeout=30)
        else:
            p = poplib.POP3(kt.LOOPBACK, self.pport(proto), timeout=30)
        if user:
            p.user(user)
            p.pass_(pw)
        return p

    def raw(self, proto="pop3", timeout=10):
        return Raw(self.pport(proto), timeout)

    def mbox(self, user="alice"):
        return os.path.join(self.data_dir, "mail", user, "INBOX")

    def deliver(self, n, user="alice", body=None, subject="m"):
        for i in range(n):
            b = body if body is not None else ("body of %s%d\r\n" % (subject, i)).encode()
            r = self.send(["%s@%s" % (user, kt.DOMAIN)], kt.msg("%s%d" % (subject, i), b))
            eq(r.code, 250, "delivery")

    def wait_mail(self, n, user="alice"):
        return self.wait_count(user, n, timeout=20)


class Raw:
    """A raw POP3 dialog (text lines)."""

    def __init__(self, port, timeout=10):
        self.c = kt.Smtp(kt.LOOPBACK, port, timeout=timeout)
        self.greet = self.c.line()

    def cmd(self, line, timeout=None):
        self.c.send(line + "\r\n")
        return self.c.line(timeout)

    def ok(self, line, timeout=None):
        r = self.cmd(line, timeout)
        check(r.startswith("+OK"), "%s -> %r" % (line, r))
        return r

    def multi(self, timeout=None):
        out = []
        while True:
            ln = self.c.line(timeout)
            if ln == ".":
                return out
            out.append(ln[1:] if ln.startswith(".") else ln)

    def login(self, user="alice", pw=PW):
        self.ok("USER " + user)
        return self.ok("PASS " + pw)

    def close(self):
        self.c.close()


def stored(k, user="alice"):
    """The messages as POP3 must send them: From_ line off, separator off,
    mboxrd unquoted, split in lines."""
    out = []
    for m in k.messages(user):
        body = m[m.index(b"\n") + 1:]
        if body.endswith(b"\n\n"):
            body = body[:-1]
        out.append(kt.mboxrd_unquote(body))
    return out


def lines_of(body):
    ls = body.split(b"\n")
    if ls and ls[-1] == b"":
        ls.pop()
    return [l[:-1] if l.endswith(b"\r") else l for l in ls]


def foreign_append(path, data):
    """Append as another MDA does: dotlock (O_EXCL) + fcntl write lock."""
    lock = path + ".lock"
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    for _ in range(200):
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
            break
        except FileExistsError:
            time.sleep(0.01)
    else:
        raise AssertionError("dotlock busy for 2 s")
    try:
        with open(path, "ab") as f:
            fcntl.lockf(f, fcntl.LOCK_EX)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            fcntl.lockf(f, fcntl.LOCK_UN)
    finally:
        os.unlink(lock)


FROM_LINE = b"From other@example.org Thu Nov 26 12:00:00 2026\n"


# --------------------------------------------------------------------------

@test
def capa_and_login():
    k = KP()
    r = k.raw()
    check(r.greet.startswith("+OK"), r.greet)
    r.ok("CAPA")
    caps = r.multi()
    for c in ("TOP", "UIDL", "USER", "SASL PLAIN", "RESP-CODES", "PIPELINING"):
        check(c in caps, "CAPA lacks %s: %r" % (c, caps))
    check(r.cmd("STAT").startswith("-ERR"), "STAT before login")
    check(r.cmd("PASS x").startswith("-ERR"), "PASS without USER")
    r.login()
    eq(r.cmd("STAT"), "+OK 0 0", "STAT of an empty mailbox")
    r.ok("NOOP")
    check(r.cmd("RETR 1").startswith("-ERR"), "RETR of nothing")
    check("USER" not in (r.ok("CAPA") and r.multi()), "USER after login")
    r.ok("QUIT")
    check(r.c.wait_closed(), "closed after QUIT")


@test(timeout=60)
def poplib_retrieve():
    k = KP()
    k.deliver(3, body=b"From the start\r\n>From quoted\r\n.dot line\r\n..two\r\nlast\r\n")
    k.wait_mail(3)
    want = stored(k)
    p = k.pop()
    n, total = p.stat()
    eq(n, 3, "STAT count")
    resp, listing, _ = p.list()
    sizes = [int(l.split()[1]) for l in listing]
    eq(total, sum(sizes), "STAT octets vs LIST")
    for i in range(3):
        resp, lines, octets = p.retr(i + 1)
        eq(lines, lines_of(want[i]), "RETR %d content" % (i + 1))
        eq(int(resp.split()[1]), sum(len(l) + 2 for l in lines), "octets in +OK")
        eq(sizes[i], sum(len(l) + 2 for l in lines), "LIST size = what RETR sends")
        check(b"From the start" in lines and b">From quoted" in lines and b".dot line" in lines
              and b"..two" in lines, "body lines round-trip: %r" % lines[-6:])
    u = [l.split()[1].decode() for l in p.uidl()[1]]
    for x in u:
        check(re.match(r"^[0-9A-F]{16}$", x), "UIDL format %r" % x)
    eq([int(x[:8], 16) for x in u], [1, 2, 3], "UIDs")
    eq(len(set(x[8:] for x in u)), 1, "one UIDVALIDITY")
    p.quit()
    check(os.path.exists(os.path.join(os.path.dirname(k.mbox()), ".INBOX.idx")), "index written")


@test(timeout=60)
def uidl_stable():
    k = KP()
    k.deliver(4)
    k.wait_mail(4)
    p = k.pop()
    u1 = p.uidl()[1]
    p.quit()
    k.restart()
    k.wait_ready()
    p = k.pop()
    eq(p.uidl()[1], u1, "UIDL after a restart")
    p.dele(2)
    p.quit()
    k.deliver(1, subject="n")
    k.wait_mail(4)
    p = k.pop()
    u2 = p.uidl()[1]
    eq([l.split()[1] for l in u2[:3]], [u1[0].split()[1], u1[2].split()[1], u1[3].split()[1]],
       "UIDL of kept messages after DELE")
    eq(int(u2[3].split()[1][:8], 16), 5, "a new message gets a new UID, never a reused one")
    p.quit()


@test
def dele_then_drop():
    k = KP()
    k.deliver(3)
    k.wait_mail(3)
    before = k.mbox_bytes("alice")
    r = k.raw()
    r.login()
    r.ok("DELE 1")
    r.ok("DELE 2")
    check(r.cmd("RETR 1").startswith("-ERR"), "RETR of a deleted message")
    eq(r.cmd("STAT").split()[1], "1", "STAT after DELE")
    r.close()   # no QUIT
    time.sleep(0.3)
    eq(k.mbox_bytes("alice"), before, "mbox after a dropped session")
    r = k.raw()
    r.login()
    eq(r.cmd("STAT").split()[1], "3", "messages after a dropped session")
    r.ok("DELE 3")
    r.ok("RSET")
    r.ok("QUIT")
    check(r.c.wait_closed(), "QUIT closes")
    eq(k.mbox_bytes("alice"), before, "mbox after RSET")


@test(timeout=60)
def dele_quit():
    k = KP()
    k.deliver(5)
    k.wait_mail(5)
    p = k.pop()
    u = p.uidl()[1]
    for i in (1, 3, 5):
        p.dele(i)
    check(p.quit().startswith(b"+OK"), "QUIT")
    msgs = kt.read_mbox(k.mbox())
    eq([m["Subject"] for m in msgs], ["m1", "m3"], "messages left (Python mailbox)")
    p = k.pop()
    eq([l.split()[1] for l in p.uidl()[1]], [u[1].split()[1], u[3].split()[1]], "UIDL after expunge")
    eq(p.stat()[0], 2, "STAT")
    resp, lines, _ = p.retr(2)
    check(b"Subject: m3" in lines, "message 2 is m3")
    for i in (1, 2):
        p.dele(i)
    p.quit()
    eq(k.mbox_bytes("alice"), b"", "all deleted: empty mbox")
    p = k.pop()
    eq(p.stat(), (0, 0), "empty")
    p.quit()


@test
def top():
    k = KP()
    k.deliver(1, body=b"one\r\ntwo\r\nthree\r\n")
    k.wait_mail(1)
    want = lines_of(stored(k)[0])
    blank = want.index(b"")
    p = k.pop()
    eq(p.top(1, 0)[1], want[:blank + 1], "TOP 1 0: headers and the blank line")
    eq(p.top(1, 2)[1], want[:blank + 3], "TOP 1 2")
    eq(p.top(1, 100)[1], want, "TOP past the end")
    p.quit()
    r = k.raw()
    r.login()
    check(r.cmd("TOP 1").startswith("-ERR"), "TOP without lines")
    check(r.cmd("TOP 2 0").startswith("-ERR"), "TOP of no message")
    r.ok("QUIT")


@test
def no_final_newline():
    k = KP()
    k.deliver(1)
    k.wait_mail(1)
    foreign_append(k.mbox(), FROM_LINE + b"Subject: nonl\n\nline one\n>From q\nno newline here")
    p = k.pop()
    eq(p.stat()[0], 2, "messages")
    resp, lines, octets = p.retr(2)
    eq(lines, [b"Subject: nonl", b"", b"line one", b"From q", b"no newline here"], "RETR")
    eq(int(p.list(2).split()[2]), sum(len(l) + 2 for l in lines), "LIST size")
    p.quit()
    # a session on the unchanged mailbox (the index current, nothing
    # scanned) ends the message at the same byte (fuzz_mailbox found
    # the last byte lost there)
    p = k.pop()
    eq(p.retr(2)[1], lines, "RETR in the next session")
    p.quit()
    # kotak delivers after it: the foreign message must stay whole, the new one separate
    k.deliver(1, subject="after")
    k.wait_count("alice", 3)
    p = k.pop()
    n = p.stat()[0]
    last = p.retr(2)[1][-1]
    p.quit()
    eq(n, 3, "messages")
    eq(last, b"no newline here", "the foreign message still ends the same")


@test
def from_line_ends_the_file():
    """A foreign writer cut off after a From_ line: an empty message that
    RETR serves (it once said -ERR forever), and a long From_ line."""
    k = KP()
    k.deliver(1)
    k.wait_mail(1)
    long_from = b"From " + b"x" * 700 + b"@example.org Thu Nov 26 12:00:00 2026\n"
    foreign_append(k.mbox(), long_from + b"Subject: long\n\nbody\n\n" + FROM_LINE.rstrip(b"\n"))
    p = k.pop()
    eq(p.stat()[0], 3, "messages")
    eq(p.retr(2)[1], [b"Subject: long", b"", b"body"], "RETR after a 700-byte From_ line")
    eq(p.retr(3)[1], [], "RETR of the cut-off message")
    eq(p.list(3).split()[2], b"0", "its LIST size")
    p.quit()


@test(timeout=120)
def huge_message():
    k = KP(users=("alice", "bob"))
    k.deliver(1, user="bob")
    body = b"".join(b"%07d %s\n" % (i, b"x" * 60) for i in range(300000))   # ~20.7 MB
    body += b"From inside\n>From quoted\n.dot\n"
    foreign_append(k.mbox(), FROM_LINE + b"Subject: huge\n\n" + body + b"\n")
    k.wait_mail(1, user="bob")
    rss0 = rss(k)
    s = kt.Smtp(kt.LOOPBACK, k.pport(), timeout=60)
    s.line()
    for ln in ("USER alice", "PASS " + PW):
        s.send(ln + "\r\n")
        check(s.line().startswith("+OK"), ln)
    s.send(b"LIST 1\r\n")
    size = int(s.line().split()[2])
    s.send(b"RETR 1\r\n")
    check(s.line().startswith("+OK"), "RETR")
    # the loop is not held: bob is served while alice's RETR waits for her to read
    time.sleep(0.3)
    t0 = time.monotonic()
    p2 = k.pop("bob")
    eq(p2.stat()[0], 1, "bob's STAT during the RETR")
    p2.quit()
    check(time.monotonic() - t0 < 2, "another session waited %.1fs" % (time.monotonic() - t0))
    h = hashlib.sha256()
    data = s.buf
    while True:
        d = s.s.recv(1 << 20)
        check(d, "connection closed mid-message")
        data += d
        if data.endswith(b"\r\n.\r\n") or len(data) > 30 << 20:
            break
    body_wire = data[:-5].replace(b"\r\n..", b"\r\n.")
    got = len(body_wire) + 2
    eq(got, size, "octets sent vs LIST")
    want = (b"Subject: huge\n\n" + body).replace(b"\nFrom inside", b"\nFrom inside").replace(b">From quoted", b"From quoted")
    check(body_wire + b"\r\n" == want.replace(b"\n", b"\r\n"), "20 MB message content")
    s.send(b"QUIT\r\n")
    s.line()
    grow = rss(k) - rss0
    check(grow < 2 << 20, "RSS grew by %d KiB during a 20 MB RETR" % (grow >> 10))


def rss(k):
    with open("/proc/%d/status" % k.proc.pid) as f:
        for ln in f:
            if ln.startswith("VmHWM:"):
                return int(ln.split()[1]) * 1024
    return 0


@test(timeout=60)
def concurrent_delivery():
    k = KP()
    k.deliver(2)
    k.wait_mail(2)
    p = k.pop()
    eq(p.stat()[0], 2, "STAT")
    k.deliver(1, subject="during")          # delivery is not blocked by the open session
    k.wait_mail(3)
    eq(p.stat()[0], 2, "the session keeps its view")
    p.dele(1)
    p.quit()
    msgs = kt.read_mbox(k.mbox())
    eq([m["Subject"] for m in msgs], ["m1", "during0"], "mail delivered during the session is kept")
    p = k.pop()
    eq(p.stat()[0], 2, "next session shows it")
    p.quit()


@test(timeout=90)
def foreign_writer_while_delivering():
    k = KP()
    n = 40
    errs = []

    def other():
        try:
            for i in range(n):
                foreign_append(k.mbox(), FROM_LINE + b"Subject: f%d\n\nforeign %d\n\n" % (i, i))
                time.sleep(0.005)
        except Exception as e:
            errs.append(e)

    t = threading.Thread(target=other)
    t.start()
    k.deliver(n, subject="k")
    t.join()
    check(not errs, "foreign writer: %r" % errs)
    k.usr1()    # a delivery that met the foreign lock was deferred: retry now
    k.wait_mail(2 * n)
    subj = sorted(m["Subject"] for m in kt.read_mbox(k.mbox()))
    eq(subj, sorted(["f%d" % i for i in range(n)] + ["k%d" % i for i in range(n)]), "all messages")
    p = k.pop()
    eq(p.stat()[0], 2 * n, "POP3 sees all")
    uids = [int(l.split()[1][:8], 16) for l in p.uidl()[1]]
    eq(uids, list(range(1, 2 * n + 1)), "UIDs")
    p.quit()


def foreign_rewrite(path, keep):
    """Rewrite the mbox in place as mutt does (dotlock + fcntl), keeping the
    messages whose index is in keep."""
    lock = path + ".lock"
    fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    try:
        with open(path, "r+b") as f:
            fcntl.lockf(f, fcntl.LOCK_EX)
            msgs = kt.mbox_split(f.read())
            f.seek(0)
            f.write(b"".join(m for i, m in enumerate(msgs) if i in keep))
            f.truncate()
            fcntl.lockf(f, fcntl.LOCK_UN)
    finally:
        os.unlink(lock)


@test(timeout=60)
def rewritten_during_session():
    k = KP()
    k.deliver(4)
    k.wait_mail(4)
    want = stored(k)
    p = k.pop()
    u = p.uidl()[1]
    foreign_rewrite(k.mbox(), (1, 2, 3))        # another program removed message 1
    eq(p.retr(3)[1], lines_of(want[2]), "RETR after the rewrite: the right message")
    try:
        r = p.retr(1)
        raise AssertionError("RETR of a removed message: %r" % (r[0],))
    except poplib.error_proto as e:
        check(b"removed" in e.args[0], "RETR 1: %r" % e.args[0])
    eq(p.uidl()[1], u, "UIDL unchanged")
    p.dele(2)
    check(p.quit().startswith(b"+OK"), "QUIT")
    eq([m["Subject"] for m in kt.read_mbox(k.mbox())], ["m2", "m3"], "after the expunge")
    p = k.pop()
    eq([l.split()[1] for l in p.uidl()[1]], [u[2].split()[1], u[3].split()[1]], "UIDs kept")
    p.quit()


@test
def in_use():
    k = KP()
    k.deliver(1)
    k.wait_mail(1)
    a = k.raw()
    a.login()
    b = k.raw()
    b.ok("USER alice")
    r = b.cmd("PASS " + PW)
    check(r.startswith("-ERR [IN-USE]"), "second login: %r" % r)
    a.ok("QUIT")
    a.c.wait_closed()
    b.login()
    b.ok("QUIT")


@test(timeout=60)
def cleartext_refused_then_stls():
    k = KP(clear=False)
    r = k.raw()
    r.ok("CAPA")
    caps = r.multi()
    check("USER" not in caps and not any(c.startswith("SASL") for c in caps), "CAPA offers a login: %r" % caps)
    check("STLS" in caps, "STLS advertised: %r" % caps)
    eq(r.cmd("USER alice"), "-ERR Cleartext authentication disallowed.", "USER")
    eq(r.cmd("AUTH PLAIN " + kt.sasl_plain("alice", PW)), "-ERR Cleartext authentication disallowed.", "AUTH")
    r.ok("QUIT")
    p = poplib.POP3(kt.LOOPBACK, k.pport(), timeout=20)
    p.stls(kt.tls_client_context())
    check("USER" in p.capa(), "USER after STLS")
    p.user("alice")
    p.pass_(PW)
    eq(p.stat(), (0, 0), "STAT over STLS")
    p.quit()


@test(timeout=60)
def pop3s():
    k = KP(protos=("smtp", "pop3", "pop3s"))
    k.deliver(1)
    k.wait_mail(1)
    p = k.pop(proto="pop3s")
    eq(p.stat()[0], 1, "STAT over pop3s")
    check(b"Subject: m0" in p.retr(1)[1], "RETR over pop3s")
    check("STLS" not in p.capa(), "no STLS inside TLS")
    p.quit()
    # a 3 MB RETR leaves in bursts of TLS records (tls_flush): the same
    # lines as over plain POP3
    big_mailbox(k, n=1, each=3000000)
    p = k.pop(proto="pop3s")
    eq(p.stat()[0], 2, "STAT over pop3s after the big message")
    got = p.retr(2)[1]
    p.quit()
    p = k.pop()
    want = p.retr(2)[1]
    p.quit()
    check(len(want) > 140000 and got == want, "the 3 MB message over pop3s: %d lines, plain %d" % (len(got), len(want)))


@test(timeout=60)
def auth_plain_and_brake():
    k = KP()
    r = k.raw()
    r.ok("AUTH PLAIN " + kt.sasl_plain("alice", PW))
    r.ok("QUIT")
    r = k.raw()
    check(r.cmd("AUTH PLAIN").startswith("+"), "continuation")
    r.ok(kt.sasl_plain("alice", PW))
    r.ok("QUIT")
    r = k.raw()
    r.ok("AUTH")
    eq(r.multi(), ["PLAIN"], "AUTH lists PLAIN")
    check(r.cmd("AUTH PLAIN").startswith("+"), "continuation")
    check(r.cmd("*").startswith("-ERR"), "aborted")
    fails = 0
    t0 = time.monotonic()
    try:
        for i in range(3):
            r.ok("USER alice")
            x = r.cmd("PASS wrong", timeout=60)
            check(x.startswith("-ERR [AUTH]"), "bad password: %r" % x)
            fails += 1
    except kt.Closed:
        pass
    eq(fails, 3, "three failures answered")
    check(time.monotonic() - t0 > 1.5, "failed logins are slowed down")
    check(r.c.wait_closed(), "closed after 3 failures")


@test
def limits():
    k = KP()
    r = k.raw()
    eq(r.cmd("NOOP " + "x" * 300), "-ERR Line too long.", "long line")
    r.ok("CAPA")
    r.multi()
    check(r.cmd("FOO").startswith("-ERR"), "unknown command")
    r.close()
    k2 = KP(main={"max_errors": 3})
    r = k2.raw()
    for i in range(3):
        r.cmd("BAD%d" % i)
    check(r.c.wait_closed(), "closed after max_errors")


@test(timeout=60)
def pipelining():
    k = KP()
    k.deliver(3)
    k.wait_mail(3)
    r = k.raw()
    r.c.send("USER alice\r\nPASS %s\r\nSTAT\r\nLIST\r\nUIDL\r\nRETR 1\r\nNOOP\r\nQUIT\r\n" % PW)
    check(r.c.line().startswith("+OK"), "USER")
    check(r.c.line().startswith("+OK"), "PASS")
    check(r.c.line().startswith("+OK 3 "), "STAT")
    r.c.line()
    eq(len(r.multi()), 3, "LIST")
    r.c.line()
    eq(len(r.multi()), 3, "UIDL")
    r.c.line()
    check(any("Subject: m0" in l for l in r.multi()), "RETR")
    check(r.c.line().startswith("+OK"), "NOOP")
    check(r.c.line().startswith("+OK"), "QUIT")


@test(timeout=60)
def curl_pop3():
    if not kt.tool("curl"):
        raise kt.Skip("no curl")
    k = KP()
    k.deliver(2)
    k.wait_mail(2)
    url = "pop3://127.0.0.1:%d/" % k.pport()
    out = subprocess.run(["curl", "-s", "-u", "alice:" + PW, url], stdout=subprocess.PIPE, timeout=20).stdout
    eq(len(out.splitlines()), 2, "curl LIST: %r" % out)
    out = subprocess.run(["curl", "-s", "-u", "alice:" + PW, url + "2"], stdout=subprocess.PIPE,
                         timeout=20).stdout
    check(b"Subject: m1" in out, "curl RETR: %r" % out[:200])


def fetchmail(k, tmp, keep):
    rc = os.path.join(tmp, "fetchmailrc")
    out = os.path.join(tmp, "out")
    os.makedirs(out, exist_ok=True)
    mda = os.path.join(tmp, "mda.py")
    with open(mda, "w") as f:
        f.write("import sys, os, time\nd = sys.stdin.buffer.read()\n"
                "open(os.path.join(%r, '%%d.%%d' %% (time.time_ns(), os.getpid())), 'wb').write(d)\n" % out)
    with open(rc, "w") as f:
        f.write("set no bouncemail\nset no syslog\n"
                "poll 127.0.0.1 service %d protocol pop3 uidl auth password timeout 20\n"
                "  user 'alice' there with password '%s' is 'root' here\n"
                "  sslproto '' %s mda \"%s %s\"\n" % (k.pport(), PW, "keep" if keep else "fetchall nokeep",
                                                      sys.executable, mda))
    os.chmod(rc, 0o600)
    env = dict(os.environ, HOME=tmp, FETCHMAILHOME=tmp)
    r = subprocess.run(["fetchmail", "-f", rc, "--nodetach", "-v"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, env=env, timeout=60)
    check(r.returncode in (0, 1), "fetchmail rc %d: %s" % (r.returncode, r.stdout[-600:]))
    return sorted(os.listdir(out))


@test(timeout=120)
def fetchmail_keep_and_nokeep():
    if not kt.tool("fetchmail"):
        raise kt.Skip("no fetchmail (apt-get install fetchmail)")
    k = KP()
    k.deliver(3)
    k.wait_mail(3)
    tmp = os.path.join(k.dir, "fm")
    os.makedirs(tmp)
    eq(len(fetchmail(k, tmp, True)), 3, "first keep run fetches 3")
    eq(len(fetchmail(k, tmp, True)), 3, "second keep run fetches nothing new (UIDL)")
    eq(k.count("alice"), 3, "kept on the server")
    k.deliver(1, subject="new")
    k.wait_mail(4)
    eq(len(fetchmail(k, tmp, True)), 4, "keep run after new mail fetches only it")
    got = fetchmail(k, tmp, False)
    check(len(got) >= 4, "nokeep run")
    eq(k.mbox_bytes("alice"), b"", "nokeep deleted everything")
    files = [open(os.path.join(tmp, "out", x), "rb").read() for x in got]
    check(all(b"Subject: " in f for f in files), "fetched messages")


def big_mailbox(k, n=12, each=150000):
    data = b""
    for i in range(n):
        body = b"".join(b"%s line %d of big%d\n" % (b">From" if j % 50 == 0 else b"x", j, i)
                        for j in range(each // 20))
        data += FROM_LINE + b"Subject: big%d\n\n" % i + body + b"\n"
    foreign_append(k.mbox(), data)


def check_after_crash(k, deleted, n):
    """Every kept message once and whole; the deleted ones all there or all gone."""
    msgs = kt.read_mbox(k.mbox())
    subj = [m["Subject"] for m in msgs]
    for i in range(n):
        c = subj.count("big%d" % i)
        if i in deleted:
            check(c in (0, 1), "deleted big%d appears %d times" % (i, c))
        else:
            eq(c, 1, "copies of big%d (%r)" % (i, subj))
    gone = [subj.count("big%d" % i) for i in deleted]
    check(len(set(gone)) == 1, "deleted messages partly removed: %r" % gone)
    for m in msgs:
        i = int(m["Subject"][3:])
        body = m.get_payload(decode=False)
        check(body.count("\n") == 150000 // 20 and body.endswith("of big%d\n" % i),
              "big%d damaged (%d lines)" % (i, body.count("\n")))


@test(timeout=140)
def kill9_during_expunge():
    kt.need_test_hooks()
    steps = ["lock", "journal", "journal-done", "truncated", "append", "trim", "appended"]
    for st in steps:
        k = KP(env={"KOTAK_TEST_EXPUNGE_DELAY_MS": "200"})
        big_mailbox(k)
        p = k.pop()
        p.dele(1)
        p.dele(4)
        p._putcmd("QUIT")
        end = time.monotonic() + 30
        while "expunge step %s" % st not in k.log():
            check(time.monotonic() < end, "no step %s in the log" % st)
            time.sleep(0.02)
        k.kill9()
        p.close()
        k.env = {}
        k.start()
        # recovery runs at start: the kept messages are back in the mbox
        # before any POP3 login (mutt sees them)
        jr = os.path.join(os.path.dirname(k.mbox()), ".INBOX.exp")
        end = time.monotonic() + 5
        while os.path.exists(jr) and time.monotonic() < end:
            time.sleep(0.05)
        check(not os.path.exists(jr), "journal still there %s after a restart at %s" % (jr, st))
        check_after_crash(k, (0, 3), 12)
        p = k.pop()
        n = p.stat()[0]
        p.quit()
        check(n in (10, 12), "after kill -9 at %s: %d messages" % (st, n))
        check_after_crash(k, (0, 3), 12)
        check(not os.path.exists(os.path.join(os.path.dirname(k.mbox()), ".INBOX.exp")),
              "journal left after recovery")
        k.cleanup()


@test(timeout=60)
def enospc_during_expunge():
    if not kt.is_root():
        raise kt.Skip("needs root to mount a tmpfs")
    mnt = os.path.join("/tmp", "kt-pop3-enospc-%d" % os.getpid())
    os.makedirs(mnt)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", mnt])
    if r.returncode:
        os.rmdir(mnt)
        raise kt.Skip("cannot mount tmpfs")
    try:
        k = KP(data_dir=os.path.join(mnt, "data"))
        big_mailbox(k, n=8, each=150000)     # ~1.2 MB
        before = k.mbox_bytes("alice")
        fill = os.path.join(mnt, "fill")
        with open(fill, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        os.truncate(fill, os.path.getsize(fill) - 300000)   # room for the index, not for the journal
        p = k.pop()
        p.dele(1)
        try:
            resp = p.quit()
        except poplib.error_proto as e:
            resp = str(e).encode()
        # the delete is a tombstone in the index (it fits): done for POP3 and
        # IMAP; the bytes wait in the mbox until a compaction finds room
        check(resp.startswith(b"+OK"), "QUIT with a full disk: %r" % resp)
        eq(k.mbox_bytes("alice"), before, "mbox unchanged after ENOSPC")
        os.unlink(fill)
        p = k.pop()
        eq(p.stat()[0], 7, "the deleted message stays deleted")
        p.dele(1)
        check(p.quit().startswith(b"+OK"), "QUIT with room")
        eq(len(kt.read_mbox(k.mbox())), 6, "both removed from the mbox once there is room")
        k.cleanup()
    finally:
        subprocess.run(["umount", "-l", mnt])
        shutil.rmtree(mnt, ignore_errors=True)


@test(timeout=60)
def uidl_and_flags_of_a_dovecot_mbox_kept():
    """An mbox that Dovecot 2.3 (this machine's, Debian dovecot-imapd) wrote
    after flags were set and a message appended over IMAP: kotak's first
    index takes its X-IMAPbase/X-UID (so POP3 UIDLs are Dovecot's
    %08Xu%08Xv), Status/X-Status flags and X-Keywords keywords."""
    import dovecot
    mb = b"".join(b"From s%d@example.org Thu Nov 26 12:00:0%d 2026\nFrom: a@b\nSubject: m%d\n\nbody %d\n\n"
                  % (i, i, i, i) for i in range(5))
    d = dovecot.Dovecot(mb)
    try:
        c = dovecot.RawImap(d.port)
        c.cmd("LOGIN u pw")
        r, _ = c.cmd("SELECT INBOX")
        uv = int(re.search(rb"UIDVALIDITY (\d+)", r).group(1))
        c.cmd("STORE 2 +FLAGS (\\Seen \\Flagged)")
        c.cmd("STORE 3 +FLAGS ($Forwarded work)")
        c.cmd("STORE 1 +FLAGS (\\Deleted)")
        c.cmd("EXPUNGE")        # UIDs 2..5 stay: not 1..4 any more
        m = b"From: x@y\r\nSubject: appended\r\n\r\nhello\r\n"
        c.cmd(b"APPEND INBOX (\\Seen \\Answered) {%d+}\r\n%s" % (len(m), m))
        r, _ = c.cmd("UID FETCH 1:* (UID)")
        uids = [int(u) for u in re.findall(rb"UID (\d+)", r)]
        c.cmd("CLOSE")
        c.cmd("LOGOUT")
        c.close()
        with open(os.path.join(d.dir, "home/mail/INBOX"), "rb") as f:
            data = f.read()
    finally:
        d.stop()
    check(b"X-UID: 6" in data and b"X-IMAPbase:" in data, "Dovecot wrote no UIDs: %r" % data[:300])
    eq(uids, [2, 3, 4, 5, 6], "Dovecot's UIDs")
    k = KP()
    os.makedirs(os.path.dirname(k.mbox()), mode=0o700, exist_ok=True)
    with open(k.mbox(), "wb") as f:
        f.write(data)
    p = k.pop()
    got = [ln.split()[1].decode() for ln in p.uidl()[1]]
    eq(got, ["%08X%08X" % (u, uv) for u in uids], "UIDLs, as Dovecot's pop3_uidl_format %08Xu%08Xv")
    p.quit()
    # flags and keywords in kotak's index (version 2: 64-byte header,
    # 24-byte records: off, size, uid, hash, flags, xflags, keywords)
    with open(os.path.join(os.path.dirname(k.mbox()), ".INBOX.idx"), "rb") as f:
        idx = f.read()
    # host byte order of the target (big-endian MIPS under qemu): the magic
    # "KTI2" says which
    bo = ">" if idx[:4] == b"KTI2" else "<"
    magic, iuv, nextuid, count = struct.unpack(bo + "IIII", idx[:16])
    eq((magic, iuv, nextuid, count), (0x4b544932, uv, 7, 5), "index header")
    recs = [struct.unpack(bo + "QIIIBBH", idx[64 + 24 * i:88 + 24 * i]) for i in range(count)]
    imap = b"+imap" in kt.run_kotak(["-V"]).stdout     # keywords are IMAP's (Kconfig)
    kwp = os.path.join(os.path.dirname(k.mbox()), ".INBOX.kw")
    kws = open(kwp, "rb").read().split() if imap else [b""] * 16
    flags = {r[2]: (r[4] & 0x1f, sorted(kws[b].decode() for b in range(16) if r[6] >> b & 1)) for r in recs}
    eq(flags[2], (0x01 | 0x04, []), "UID 2: \\Seen \\Flagged")
    eq(flags[3], (0, ["$Forwarded", "work"] if imap else []), "UID 3: keywords")
    eq(flags[6], (0x01 | 0x02, []), "UID 6: \\Seen \\Answered")
    # new mail continues after Dovecot's UIDs
    k.deliver(1)
    k.wait_mail(6)
    p = k.pop()
    eq(p.uidl()[1][-1].split()[1].decode(), "%08X%08X" % (7, uv), "the next UID")
    p.quit()


@test(timeout=90)
def mutt_over_pop3():
    """mutt (in tmux) reads the INBOX over POP3, deletes one message and
    quits: that message is gone from the mbox, the others are intact."""
    if not (kt.tool("mutt") and kt.tool("tmux")):
        raise kt.Skip("mutt or tmux not installed")
    k = KP()
    k.deliver(3, subject="muttpop")
    k.wait_mail(3)
    sock = "ktp%d" % os.getpid()
    home = os.path.join(k.dir, "mhome")
    os.makedirs(home)
    rc = os.path.join(home, "muttrc")
    with open(rc, "w") as f:
        f.write("set pop_user=alice\nset pop_pass='%s'\nset ssl_starttls=no\nset ssl_force_tls=no\n"
                "set pop_authenticators='user'\nset delete=yes\nset confirmappend=no\n"
                "set sort=date-sent\nset folder=%s\nset spoolfile=%s/none\n" % (PW, home, home))
    env = dict(os.environ, HOME=home, TERM="xterm", LANG="C.UTF-8")
    cmd = "mutt -n -F %s -f pop://alice@127.0.0.1:%d/" % (rc, k.pport())

    def screen():
        return subprocess.run(["tmux", "-L", sock, "capture-pane", "-p", "-t", "0"],
                              stdout=subprocess.PIPE, env=env, timeout=5).stdout.decode()

    def keys(*k):
        subprocess.run(["tmux", "-L", sock, "send-keys", "-t", "0"] + list(k), env=env, timeout=5,
                       stderr=subprocess.DEVNULL)
    try:
        subprocess.run(["tmux", "-L", sock, "new-session", "-d", "-x", "150", "-y", "30", cmd],
                       env=env, check=True, timeout=10)
        s = kt.wait_for(lambda: (lambda x: x if "muttpop2" in x else None)(screen()), 15, 0.2,
                        "mutt's index over POP3")
        check("muttpop0" in s and "muttpop1" in s, "mutt index: %r" % s)
        # open the second message, then delete the first and quit (purge)
        keys("j", "Enter")
        s = kt.wait_for(lambda: (lambda x: x if "body of muttpop1" in x else None)(screen()), 15, 0.2,
                        "mutt pager showing muttpop1 (RETR)")
        keys("q")
        time.sleep(0.3)
        keys("k", "d")
        time.sleep(0.3)
        keys("q")  # delete=yes: no purge question
        kt.wait_for(lambda: k.count("alice") == 2, 15, 0.2, "the deleted message gone at QUIT")
        subj = sorted(m["Subject"] for m in kt.read_mbox(k.mbox()))
        eq(subj, ["muttpop1", "muttpop2"], "messages left in the mbox")
    finally:
        subprocess.run(["tmux", "-L", sock, "kill-server"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=5)


# ---- found by review: other programs rewriting the mbox under a session

def rewrite_locked(path, fn):
    """Rewrite the mbox in place as mutt does: dotlock + lockf, same inode."""
    lock = path + ".lock"
    os.close(os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        with open(path, "r+b") as f:
            fcntl.lockf(f, fcntl.LOCK_EX)
            msgs = fn(kt.mbox_split(f.read()))
            f.seek(0)
            f.write(b"".join(msgs))
            f.truncate()
            fcntl.lockf(f, fcntl.LOCK_UN)
    finally:
        os.unlink(lock)


def add_status(msgs, i):
    """'Status: RO' at the end of message i's header (over 256 bytes: its hash holds)."""
    h = msgs[i].index(b"\n\n")
    msgs[i] = msgs[i][:h] + b"\nStatus: RO" + msgs[i][h:]
    return msgs


@test(timeout=60)
def replaced_by_rename_then_expunge_keeps_messages():
    """Python's mailbox.mbox removes message 1 and adds a bigger one: flush()
    writes a new file and renames it over INBOX.  The POP3 session opened
    before deletes its message 2 and quits: nothing kept may be lost (the
    expunge must see that the file is another one)."""
    k = KP()
    k.deliver(4)
    k.wait_mail(4)
    p = k.pop()
    eq(len(p.list()[1]), 4, "messages")
    mb = mailbox.mbox(k.mbox(), create=False)
    mb.lock()
    mb.remove(mb.keys()[0])
    m = mailbox.mboxMessage(kt.msg("big", b"x" * 5000 + b"\r\n"))
    m.set_from("other@example.org", time.gmtime())
    mb.add(m)
    mb.flush()
    mb.unlock()
    mb.close()
    before = {x["Subject"]: x.as_bytes() for x in kt.read_mbox(k.mbox())}
    p.dele(2)
    try:
        p.quit()
    except poplib.error_proto:
        pass    # refusing the expunge is fine: nothing was deleted
    after = kt.read_mbox(k.mbox())
    subj = [x["Subject"] for x in after]
    for x in after:
        check(x["Subject"] in before and x.as_bytes() == before[x["Subject"]],
              "kept message %r changed" % x["Subject"])
    check(set(subj) >= {"m2", "m3", "big"}, "a kept message was lost: %r" % subj)


@test(timeout=60)
def header_grows_in_place_then_retr_whole():
    """Another program adds 'Status: RO' to message 1 in place; message 2
    moves.  RETR 1 must not come back cut short."""
    k = KP()
    k.deliver(2, body=b"line one\r\nTHE-LAST-LINE-OF-THE-BODY\r\n")
    k.wait_mail(2)
    p = k.pop()
    rewrite_locked(k.mbox(), lambda msgs: add_status(msgs, 0))
    r = p.retr(1)
    eq(r[1][-1], b"THE-LAST-LINE-OF-THE-BODY", "the last line of RETR 1")
    p.quit()


@test(timeout=60)
def last_grows_in_place_then_dele():
    """Another program marks the last message read in place while a POP3
    session that deletes it is open: message 1 must stay whole and nothing
    of message 2 may be left glued to it."""
    k = KP()
    k.deliver(2, body=b"line one\r\nTHE-LAST-LINE-OF-THE-BODY\r\n")
    k.wait_mail(2)
    p = k.pop()
    rewrite_locked(k.mbox(), lambda msgs: add_status(msgs, 1))
    m1 = kt.mbox_split(open(k.mbox(), "rb").read())[0]
    p.dele(2)
    try:
        p.quit()
    except poplib.error_proto:
        pass    # refused: the next session deletes it
    data = open(k.mbox(), "rb").read()
    check(data.startswith(m1), "message 1 changed")
    check(data == m1 or kt.mbox_split(data)[1:] and len(kt.mbox_split(data)) == 2,
          "message 2's remains glued to message 1: %r" % data[len(m1):][-80:])
    if len(kt.mbox_split(data)) == 2:   # the expunge was refused: a new session deletes it
        p = k.pop()
        p.dele(2)
        p.quit()
        eq(open(k.mbox(), "rb").read(), m1, "after the second session")


@test(timeout=60)
def login_brake_holds_new_sessions_too():
    """A wrong password raises this address's brake (2 s, whole seconds); a PASS in a new
    session must wait for it too, or a guesser opens one session per guess
    and never waits."""
    k = KP()
    a = k.raw(timeout=30)
    a.ok("USER alice")
    a.c.send("PASS wrong\r\n")          # its -ERR is held back by the brake
    time.sleep(0.3)
    t1 = time.monotonic()
    b = k.raw(timeout=30)
    b.ok("USER alice")
    x = b.cmd("PASS " + PW, timeout=30)
    waited = time.monotonic() - t1
    check(x.startswith("+OK"), "right password: %r" % x)
    check(waited > 0.5, "a new session's password was checked %.2f s after a failure" % waited)
    check(a.c.line(timeout=10).startswith("-ERR"), "the wrong one refused")


@test(timeout=60)
def unchanged_malformed_mbox_index_not_rewritten():
    """An mbox that does not start with a From_ line is scanned at each
    open; logins that change nothing must not rewrite its index (flash)."""
    k = KP()
    k.deliver(1)
    k.wait_mail(1)
    path = k.mbox()
    data = open(path, "rb").read()
    open(path, "wb").write(b"\n" + data)
    idx = os.path.join(os.path.dirname(path), ".INBOX.idx")
    seen = []
    for i in range(3):
        p = k.pop()
        p.uidl()
        p.quit()
        st = os.stat(idx)
        seen.append((st.st_ino, st.st_mtime_ns))
        time.sleep(0.2)
    eq(len(set(seen[1:])), 1, "index (inode, mtime) across logins that changed nothing")


if __name__ == "__main__":
    sys.exit(kt.main())

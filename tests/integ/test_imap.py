#!/usr/bin/env python3
"""IMAP on the real binary.  The not-authenticated state: greeting and
capabilities, LOGINDISABLED and STARTTLS, LOGIN and AUTHENTICATE PLAIN
(SASL-IR and continuation), the login brake, literals (synchronizing and
LITERAL+), command bounds, imaplib.  The authenticated and selected states:
SELECT/EXAMINE, the special folders and LIST, folder commands, FETCH items
and sections, \\Seen, STORE and keywords, SEARCH, APPEND/COPY/MOVE with
UIDPLUS, EXPUNGE/CLOSE/UNSELECT, IDLE, what other sessions did told at the
end of commands.  Skips when kotak is built without IMAP."""

import hashlib
import imaplib
import os
import select
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kt  # noqa: E402
from kt import test, check, eq  # noqa: E402
from imaputil import KI, Imap, caps_of, with_mail  # noqa: E402

PW = kt.DEFAULT_PASSWORD


@test
def greeting_capability_noop_id_logout():
    k = KI()
    c = k.raw()
    check(c.greeting.startswith(b"* OK [CAPABILITY "), c.greeting)
    caps = caps_of(c.greeting)
    for cap in ("IMAP4rev1", "SASL-IR", "ID", "LITERAL+", "AUTH=PLAIN", "STARTTLS"):
        check(cap in caps, "greeting lacks %s: %r" % (cap, caps))
    for never in ("IMAP4rev2", "CONDSTORE", "QRESYNC", "COMPRESS=DEFLATE", "LOGINDISABLED"):
        check(never not in caps, "greeting has %s" % never)
    r, t = c.cmd("CAPABILITY")
    check(r.startswith(b"* CAPABILITY IMAP4rev1") and t.startswith(b"t1 OK"), (r, t))
    r, t = c.cmd("noop")
    check(t.startswith(b"t2 OK"), t)
    r, t = c.cmd('ID ("name" "test" "version" {3}\r\n1.0)')
    eq(r, b"+ OK\r\n* ID NIL\r\n", "ID reply (after the literal's continuation)")
    check(t.startswith(b"t3 OK"), t)
    r, t = c.cmd("ID NIL")
    check(t.startswith(b"t4 OK"), t)
    r, t = c.cmd("ID (((((((((((x)))))))))))")
    check(t.startswith(b"t5 BAD"), "deep list: %r" % t)
    r, t = c.cmd("SELECT INBOX")
    check(t.startswith(b"t6 BAD"), "SELECT before login: %r" % t)
    r, t = c.cmd("FROB")
    check(t.startswith(b"t7 BAD"), t)
    r, t = c.cmd("LOGOUT")
    check(r.startswith(b"* BYE") and t.startswith(b"t8 OK"), (r, t))
    check(c.s.recv(10) == b"", "closed after LOGOUT")


@test
def login_and_capabilities_in_ok():
    k = KI()
    c = k.raw()
    r, t = c.cmd("LOGIN alice %s" % PW)
    check(t.startswith(b"t1 OK [CAPABILITY IMAP4rev1"), t)
    caps = caps_of(t)
    check("AUTH=PLAIN" not in caps and "STARTTLS" not in caps, caps)
    r, t = c.cmd("LOGIN alice %s" % PW)
    check(t.startswith(b"t2 BAD"), "LOGIN twice: %r" % t)
    check("imap" in k.log() and "login user=alice" in k.log(), "login logged")


@test
def literals_sync_and_plus():
    k = KI()
    c = k.raw()
    c.s.sendall(b"a1 LOGIN {5}\r\n")
    eq(c.line()[:2], b"+ ", "continuation for a synchronizing literal")
    c.s.sendall(b"alice {%d+}\r\n%s\r\n" % (len(PW), PW.encode()))
    r, t = c.response(b"a1")
    check(t.startswith(b"a1 OK"), t)


@test
def authenticate_plain_ir_and_continuation():
    k = KI()
    c = k.raw()
    r, t = c.cmd("AUTHENTICATE PLAIN " + kt.sasl_plain("alice", PW))
    check(t.startswith(b"t1 OK [CAPABILITY"), t)
    c = k.raw()
    c.s.sendall(b"x AUTHENTICATE PLAIN\r\n")
    eq(c.line(), b"+ \r\n", "continuation")
    c.s.sendall(kt.sasl_plain("bob", PW).encode() + b"\r\n")
    r, t = c.response(b"x")
    check(t.startswith(b"x OK"), t)
    c = k.raw()
    c.s.sendall(b"y AUTHENTICATE PLAIN\r\n")
    c.line()
    c.s.sendall(b"*\r\n")
    r, t = c.response(b"y")
    check(t.startswith(b"y BAD"), "aborted: %r" % t)
    r, t = c.cmd("AUTHENTICATE CRAM-MD5")
    check(t.startswith(b"t1 NO"), t)


@test(timeout=60)
def failed_login_is_braked():
    k = KI()
    c = k.raw()
    t0 = time.monotonic()
    r, t = c.cmd("LOGIN alice wrong")
    check(t.startswith(b"t1 NO [AUTHENTICATIONFAILED]"), t)
    r, t = c.cmd("LOGIN alice %s" % PW)   # held until the brake lets this address try again
    check(t.startswith(b"t2 OK"), t)
    # the brake holds at least its 2 s (2 to 3 on the loop's whole-second clock)
    check(time.monotonic() - t0 >= 1.9, "no brake: %.2f s" % (time.monotonic() - t0))
    check("auth failed ip=127.0.0.1 user=alice" in k.log(), "failure logged")


@test
def failed_logins_over_the_shared_budget():
    # issue 14: auth_fail_rate bounds failed logins in all (test_abuse.py
    # for SMTP and POP3); over it a password is not even checked
    k = KI(main={"auth_fail_rate": 1})
    c = k.raw()
    r, t = c.cmd("LOGIN alice wrong")
    check(t.startswith(b"t1 NO [AUTHENTICATIONFAILED]"), t)
    r, t = c.cmd("LOGIN alice %s" % PW)
    check(t.startswith(b"t2 NO [UNAVAILABLE]"), t)
    eq(k.log().count("auth failed"), 1, "passwords checked")


@test(timeout=60)
def logindisabled_without_tls_then_starttls():
    k = KI(clear=False)
    c = k.raw()
    caps = caps_of(c.greeting)
    check("LOGINDISABLED" in caps and "AUTH=PLAIN" not in caps and "STARTTLS" in caps, caps)
    r, t = c.cmd("LOGIN alice %s" % PW)
    check(t.startswith(b"t1 NO [PRIVACYREQUIRED]"), t)
    r, t = c.cmd("AUTHENTICATE PLAIN " + kt.sasl_plain("alice", PW))
    check(t.startswith(b"t2 NO [PRIVACYREQUIRED]"), t)
    c.s.sendall(b"t3 STARTTLS\r\nt4 NOOP\r\n")   # the NOOP sent in cleartext must not count
    t = c.line()
    check(t.startswith(b"t3 OK"), t)
    check(c.buf == b"", "cleartext after STARTTLS reply: %r" % c.buf)
    c.s = kt.tls_client_context().wrap_socket(c.s, server_hostname=kt.HOSTNAME)
    r, t = c.cmd("CAPABILITY")
    caps = r.decode().split()
    check("AUTH=PLAIN" in caps and "STARTTLS" not in caps and "LOGINDISABLED" not in caps, caps)
    r, t = c.cmd("LOGIN alice %s" % PW)
    check(t.startswith(b"t4 OK"), t)


@test(timeout=60)
def imaps_and_imaplib():
    k = KI(protos=("smtp", "imap", "imaps"), clear=False)
    m = imaplib.IMAP4_SSL(kt.LOOPBACK, k.addr_of("imaps")[1], ssl_context=kt.tls_client_context())
    typ, data = m.login("alice", PW)
    eq(typ, "OK", "imaplib login over imaps")
    m.logout()
    m = imaplib.IMAP4(kt.LOOPBACK, k.addr_of("imap")[1])
    m.starttls(ssl_context=kt.tls_client_context())
    eq(m.login("bob", PW)[0], "OK", "imaplib login after STARTTLS")
    m.logout()


@test(timeout=60)
def bounds_toobig_nul_and_literal_refused():
    k = KI()
    c = k.raw()
    # before login: 1 KiB; a longer command is read to its end and refused
    r, t = c.cmd("LOGIN " + "x" * 3000 + " y")
    check(t.startswith(b"t1 BAD [TOOBIG]"), t)
    # a synchronizing literal beyond the bound is never asked for
    c.s.sendall(b"big LOGIN {100000}\r\n")
    t = c.line()
    check(t.startswith(b"big BAD [TOOBIG]"), t)
    # no tag (nothing but a space may follow it): the BAD is untagged
    c.s.sendall(b"big(LOGIN {100000}\r\n")
    t = c.line()
    check(t.startswith(b"* BAD [TOOBIG]"), t)
    # a LITERAL+ one is read and dropped with the rest of its command
    c.s.sendall(b"big2 LOGIN {5000+}\r\n" + b"z" * 5000 + b" more\r\n")
    t = c.line()
    check(t.startswith(b"big2 BAD [TOOBIG]"), t)
    r, t = c.cmd("NOOP")
    check(t.startswith(b"t2 OK"), "the session goes on: %r" % t)
    r, t = c.cmd("LOGIN {5}\r\nal\x00ce x")
    check(b"BAD" in t or b"NO" in t, "NUL in a literal: %r" % t)
    r, t = c.cmd("LOGIN alice %s" % PW)
    check(t.startswith(b"t4 OK"), t)
    # after login the bound is IMAP_LINE_MAX (8 KiB by default)
    r, t = c.cmd("NOOP " + "1," * 3000)
    check(t.startswith(b"t5 BAD Unexpected"), "6 KB line after login: %r" % t)
    r, t = c.cmd("NOOP " + "1," * 6000)
    check(t.startswith(b"t6 BAD [TOOBIG]"), t)
    check(k.running(), "kotak alive")


def msgs(n=3, big=b""):
    return [kt.msg(subject="hello %d" % i, body="line one\r\nline two %d\r\n" % i + ("" if i else big.decode()))
            for i in range(n)]


def fetch_map(r):
    """{msn: untagged FETCH line} of untagged bytes without literals."""
    out = {}
    for ln in r.split(b"\r\n"):
        if b" FETCH (" in ln:
            out[int(ln.split()[1])] = ln
    return out


@test
def select_examine_and_recent():
    k = with_mail("alice", msgs(3))
    a = Imap(k)
    r = a.ok("SELECT INBOX")
    for want in (b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
                 b"PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)",
                 b"* 3 EXISTS", b"* 3 RECENT", b"[UNSEEN 1]", b"[UIDVALIDITY ", b"[UIDNEXT 4]"):
        check(want in r, "SELECT lacks %r: %r" % (want, r))
    check(b"[READ-WRITE]" in a.last, a.last)
    b = Imap(k)
    r = b.ok("SELECT inbox")
    check(b"* 3 EXISTS" in r and b"* 0 RECENT" in r, "\\Recent is one session's: %r" % r)
    r = b.ok("EXAMINE INBOX")
    check(b"[READ-ONLY]" in b.last and b"PERMANENTFLAGS ()" in r, (r, b.last))
    b.no("STORE 1 +FLAGS (\\Seen)")
    r = a.ok("FETCH 1:* (FLAGS)")
    check(r.count(b"\\Recent") == 3, r)
    a.no("SELECT Nonexistent")
    a.no("FETCH 1 (FLAGS)", bad=True)   # the failed SELECT left no folder selected
    a.no("SELECT \"a&b\"")   # not modified UTF-7


@test
def folders_special_use_list_lsub():
    k = KI()
    a = Imap(k)
    r = a.ok('LIST "" "*"')
    for name, attr in (("INBOX", b""), ("Sent", b" \\Sent"), ("Drafts", b" \\Drafts"), ("Trash", b" \\Trash"),
                       ("Junk", b" \\Junk"), ("Archive", b" \\Archive")):
        check(b'* LIST (\\HasNoChildren%s) "/" "%s"\r\n' % (attr, name.encode()) in r, "%s: %r" % (name, r))
    r2 = a.ok('LIST "" "*" RETURN (SPECIAL-USE)')
    eq(sorted(r2.split(b"\r\n")), sorted(r.split(b"\r\n")), "RETURN (SPECIAL-USE)")
    eq(a.ok('LIST "" ""'), b'* LIST (\\Noselect) "/" ""\r\n', "the delimiter")
    r = a.ok('LSUB "" "*"')
    check(r.count(b"* LSUB") == 6, r)
    check(b"NAMESPACE ((\"\" \"/\")) NIL NIL" in a.ok("NAMESPACE"), "NAMESPACE")
    a.ok("CREATE \"Entw&APw-rfe\"")
    a.no("CREATE \"Entw&APw-rfe\"")
    check(b"[ALREADYEXISTS]" in a.last, a.last)
    a.no('CREATE "Entw\xc3\xbcrfe"'.encode("latin-1") if False else "CREATE \"bad&name\"")
    a.ok("SUBSCRIBE \"Entw&APw-rfe\"")
    check(b'"Entw&APw-rfe"' in a.ok('LSUB "" "Entw*"'), "LSUB of the new folder")
    a.ok('RENAME "Entw&APw-rfe" Projects')
    r = a.ok('LIST "" "P%"')
    eq(r, b'* LIST (\\HasNoChildren) "/" "Projects"\r\n', "renamed")
    a.ok("UNSUBSCRIBE \"Entw&APw-rfe\"")
    b = Imap(k)
    b.ok("SELECT Projects")
    a.no("DELETE Projects")
    check(b"[INUSE]" in a.last, "DELETE of a folder selected elsewhere: %r" % a.last)
    b.ok("CLOSE")
    a.ok("DELETE Projects")
    a.no("DELETE INBOX")
    a.no("DELETE Projects")
    eq(a.ok('LIST "" "Projects"'), b"", "gone")
    a.no('LIST "" "*" RETURN (STATUS)', bad=True)


@test
def fetch_items_sections_and_seen():
    big = b"x" * 70 + b"\r\n"
    k = with_mail("alice", msgs(3, big=big * 3000))
    a = Imap(k)
    a.ok("SELECT INBOX")
    r = a.ok("FETCH 1 (BODY.PEEK[] RFC822.SIZE)")
    body = r[r.index(b"}\r\n") + 3:r.rindex(b" RFC822.SIZE")]
    size = int(r.rsplit(b"RFC822.SIZE ", 1)[1].rstrip(b")\r\n"))
    eq(len(body), size, "RFC822.SIZE is BODY[]'s length")
    check(body.count(b"\r\n") == body.count(b"\n") and body.endswith(big), "CRLF lines")
    check(b"\\Seen" not in a.ok("FETCH 1 (FLAGS)"), "PEEK leaves \\Seen alone")
    r = a.ok("FETCH 2 (BODY[TEXT])")
    check(r.endswith(b" FLAGS (\\Seen \\Recent))\r\n") and b"line two 1" in r, "BODY[] sets \\Seen and says so: %r" % r)
    r = a.ok("FETCH 2 (BODY[TEXT])")
    check(b"FLAGS" not in r, "already seen: nothing to say: %r" % r)
    r = a.ok("FETCH 3 (RFC822.PEEK)")
    check(r.startswith(b"* 3 FETCH (RFC822 {") and b"\\Seen" not in a.ok("FETCH 3 (FLAGS)"), r[:60])
    r = a.ok("FETCH 3 (RFC822.HEADER BODY.PEEK[]<5.10> BODY.PEEK[HEADER.FIELDS (subject)])")
    check(b"RFC822.HEADER {" in r and b"BODY[]<5> {10}\r\n" in r and
          b"BODY[HEADER.FIELDS (SUBJECT)] {20}\r\nSubject: hello 2\r\n\r\n" in r, r)
    r = a.ok("FETCH 1:3 FAST")
    check(r.count(b"INTERNALDATE \"26-Nov-2026 12:00:00 +0000\"") == 3 and b"RFC822.SIZE" in r, r)
    r = a.ok("UID FETCH 2:3 (FLAGS)")
    eq(r, b"* 2 FETCH (UID 2 FLAGS (\\Seen \\Recent))\r\n* 3 FETCH (UID 3 FLAGS (\\Recent))\r\n", "UID first")
    eq(a.ok("UID FETCH 4:10 (FLAGS)"), b"", "UIDs that do not exist")
    r = a.ok("UID FETCH 7:* (FLAGS)")
    check(r.startswith(b"* 3 FETCH (UID 3 "), "n:* holds the last UID: %r" % r)
    a.no("FETCH 4 (FLAGS)", bad=True)
    a.no("FETCH 1 (FLAGS", bad=True)
    a.no("FETCH 1 (BODY[HEADER.FIELDS])", bad=True)
    r = a.ok("FETCH 1 (BODYSTRUCTURE ENVELOPE)")
    check(b'BODYSTRUCTURE ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" %d ' % (len(big) * 3000 + 22) in r
          and b'"hello 0"' in r, r[:300])





@test
def status_and_check():
    """STATUS answers the five items in the order asked, as SELECT counts
    them (a flag another session set, \\Recent taken by the session that
    selected); a folder that does not exist NO [NONEXISTENT], an unknown
    item BAD; CHECK only in the selected state."""
    k = with_mail("alice", msgs(3))
    a, b = Imap(k), Imap(k)
    r = a.ok("STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)")
    uv = a.ok("EXAMINE INBOX").split(b"[UIDVALIDITY ")[1].split(b"]")[0]
    eq(r, b'* STATUS "INBOX" (MESSAGES 3 RECENT 3 UIDNEXT 4 UIDVALIDITY %s UNSEEN 3)\r\n' % uv, "STATUS")
    a.ok("SELECT INBOX")
    a.ok("STORE 1 +FLAGS.SILENT (\\Seen)")
    eq(b.ok("STATUS INBOX (UNSEEN MESSAGES RECENT)"), b'* STATUS "INBOX" (UNSEEN 2 MESSAGES 3 RECENT 0)\r\n',
       "another session's view, items in the order asked")
    eq(b.ok("STATUS Sent (MESSAGES UIDNEXT)"), b'* STATUS "Sent" (MESSAGES 0 UIDNEXT 1)\r\n', "an empty folder")
    b.no("STATUS Nope (MESSAGES)")
    check(b"[NONEXISTENT]" in b.last, b.last)
    b.no("STATUS INBOX (BOGUS)", bad=True)
    b.no("CHECK", bad=True)
    a.ok("CHECK")

@test
def long_uid_sets_as_thunderbird_sends():
    """Thunderbird sends UID sets of several KiB (hundreds of ranges) on one
    line: accepted up to IMAP_LINE_MAX (8 KiB), walked right, ascending or
    not; a set longer than the bound is BAD [TOOBIG] and the session goes on."""
    k = with_mail("alice", msgs(6))
    a = Imap(k)
    a.ok("SELECT INBOX")
    a.ok("UID STORE 2,4,6 +FLAGS.SILENT (\\Deleted)")
    a.ok("EXPUNGE")                  # UIDs 1, 3, 5 are left
    ranges = ",".join("%d:%d" % (n, n + 1) for n in range(100, 100 + 3 * 700, 3))
    up = "1,3," + ranges + ",5"
    down = "5," + ",".join(reversed(ranges.split(","))) + ",3,1"
    check(6000 < len(up) < 7900, "a set of %d bytes" % len(up))
    eq(a.ok("UID FETCH %s (FLAGS)" % up), b"* 1 FETCH (UID 1 FLAGS (\\Recent))\r\n"
       b"* 2 FETCH (UID 3 FLAGS (\\Recent))\r\n* 3 FETCH (UID 5 FLAGS (\\Recent))\r\n", "ascending set")
    eq(a.ok("UID STORE %s +FLAGS.SILENT (\\Flagged)" % down), b"", "descending set")
    eq(a.ok("FETCH 1:* (UID FLAGS)").count(b"\\Flagged"), 3, "all three flagged")
    eq(a.ok("UID SEARCH UID %s" % down), b"* SEARCH 1 3 5\r\n", "UID SEARCH with the set")
    a.no("UID FETCH %s,%s (FLAGS)" % (up, ranges), bad=True)
    check(b"[TOOBIG]" in a.last, a.last)
    a.ok("NOOP")

class BigReader:
    """A socket (imap or imaps) read straight into a bytearray: RawImap's
    bytes concatenation is quadratic on a 20 MB literal."""

    def __init__(self, k, proto):
        s = socket.create_connection((kt.LOOPBACK, k.addr_of(proto)[1]), 30)
        self.s = kt.tls_client_context().wrap_socket(s) if proto == "imaps" else s
        self.buf = bytearray()
        self.line()

    def fill(self):
        d = self.s.recv(1 << 20)
        if not d:
            raise kt.Closed("connection closed; got %r" % bytes(self.buf[:200]))
        self.buf += d

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        i = self.buf.index(b"\r\n") + 2
        ln = bytes(self.buf[:i])
        del self.buf[:i]
        return ln

    def cmd(self, tag, text):
        self.s.sendall(tag + b" " + text + b"\r\n")
        while True:
            ln = self.line()
            if ln.startswith(tag + b" "):
                check(ln.startswith(tag + b" OK"), ln)
                return

    def literal(self, n):
        """sha256 and length of the next n bytes, never all held at once."""
        h, got = hashlib.sha256(), 0
        while got < n:
            if not self.buf:
                self.fill()
            take = min(n - got, len(self.buf))
            h.update(self.buf[:take])
            del self.buf[:take]
            got += take
        return h.hexdigest(), got


def vm_hwm(k):
    with open("/proc/%d/status" % k.proc.pid) as f:
        for ln in f:
            if ln.startswith("VmHWM:"):
                return int(ln.split()[1]) * 1024
    return 0


@test(timeout=240)
def huge_fetch_streamed_while_others_served():
    """A 20 MB message fetched whole over imap and imaps arrives byte-exact
    (From_ quoting undone, CRLF lines); while it streams, to a reader that
    first stalls and then reads at full speed, another session's NOOPs are
    answered promptly; and kotak's memory does not grow with the message."""
    body = b"".join(b"%07d %s\n" % (i, b"x" * 60) for i in range(300000))   # ~20.7 MB
    huge = (b"From: a@example.org\nTo: alice@example.org\nSubject: huge\n\n" + body +
            b"From inside\n>From quoted\n.dot\nlast\n")
    wire = huge.replace(b"\n", b"\r\n")
    want = hashlib.sha256(wire).hexdigest()
    k = with_mail("alice", msgs(1) + [huge], protos=("smtp", "imap", "imaps"))
    other = BigReader(k, "imaps")
    other.cmd(b"b0", b"LOGIN alice " + PW.encode())
    other.cmd(b"b1", b"SELECT INBOX")
    rss0 = vm_hwm(k)
    n_tag = [1]

    def noop():
        n_tag[0] += 1
        t0 = time.monotonic()
        other.cmd(b"b%d" % n_tag[0], b"NOOP")
        return time.monotonic() - t0

    for proto in ("imaps", "imap"):
        a = BigReader(k, proto)
        a.cmd(b"a0", b"LOGIN alice " + PW.encode())
        a.cmd(b"a1", b"EXAMINE INBOX")
        a.s.sendall(b"a2 UID FETCH 2 (BODY.PEEK[])\r\n")
        # the reader stalls: its socket fills, the loop goes on for others
        time.sleep(1.5)
        worst = max(noop() for _ in range(3))
        check(worst < 3, "%s: a NOOP waited %.2fs behind a stalled 20 MB FETCH" % (proto, worst))
        # the reader reads at full speed: the loop still takes its turns
        lat, done = [], threading.Event()

        def pinger():
            while not done.is_set():
                lat.append(noop())
                time.sleep(0.02)

        th = threading.Thread(target=pinger)
        th.start()
        t0 = time.monotonic()
        try:
            ln = a.line()
            check(ln.startswith(b"* 2 FETCH (UID 2 BODY[] {") and ln.endswith(b"}\r\n"), ln)
            n = int(ln[ln.rindex(b"{") + 1:-3])
            eq(n, len(wire), "literal size")
            got = a.literal(n)
            secs = time.monotonic() - t0
        finally:
            done.set()
            th.join(30)
        eq(got, (want, len(wire)), "%s: the 20 MB message byte for byte" % proto)
        eq(a.line(), b")\r\n", "end of the FETCH")
        check(a.line().startswith(b"a2 OK"), "tagged OK")
        check(lat and max(lat) < 3, "%s: NOOPs during the transfer: %d, longest %.2fs"
              % (proto, len(lat), max(lat) if lat else 0))
        print("  %s: 20 MB in %.2fs, %d NOOPs answered meanwhile, longest %.3fs"
              % (proto, secs, len(lat), max(lat)), flush=True)
        a.cmd(b"a3", b"LOGOUT")
    grow = vm_hwm(k) - rss0
    check(grow < 2 << 20, "RSS peak grew by %d KiB during 20 MB FETCHes" % (grow >> 10))
    check(k.running(), "kotak alive")

@test
def store_flags_and_keywords_persist():
    k = with_mail("alice", msgs(3))
    a = Imap(k)
    a.ok("SELECT INBOX")
    eq(a.ok("STORE 1 +FLAGS (\\Flagged $Forwarded)"), b"* 1 FETCH (FLAGS (\\Flagged \\Recent $Forwarded))\r\n",
       "+FLAGS answers")
    eq(a.ok("STORE 1:2 +FLAGS.SILENT (\\Seen $Junk)"), b"", ".SILENT")
    eq(a.ok("UID STORE 1 -FLAGS ($Forwarded)"), b"* 1 FETCH (UID 1 FLAGS (\\Seen \\Flagged \\Recent $Junk))\r\n",
       "UID STORE -FLAGS")
    eq(a.ok("STORE 3 FLAGS (\\Answered $MDNSent)"), b"* 3 FETCH (FLAGS (\\Answered \\Recent $MDNSent))\r\n", "FLAGS")
    r = a.ok("SELECT INBOX")
    check(b"$Forwarded" in r and b"$Junk" in r and b"$MDNSent" in r and b"\\*)]" in r, "keywords in FLAGS: %r" % r)
    a.no("STORE 1 +FLAGS (\\Bogus)", bad=True)
    a.no("STORE 1 +FLAGZ (\\Seen)", bad=True)
    a.ok("LOGOUT")
    k.stop()
    k.start()
    b = Imap(k)
    b.ok("SELECT INBOX")
    r = b.ok("FETCH 1:3 (FLAGS)")
    eq(fetch_map(r), {1: b"* 1 FETCH (FLAGS (\\Seen \\Flagged $Junk))", 2: b"* 2 FETCH (FLAGS (\\Seen $Junk))",
                      3: b"* 3 FETCH (FLAGS (\\Answered $MDNSent))"}, "flags after a restart")


@test
def search_keys():
    ms = msgs(4)
    ms[2] = kt.msg(subject="Quarterly REPORT", body="the numbers\r\n", headers=("Cc: carol@example.org",))
    ms[3] = kt.msg(subject="other", body="x" * 5000 + "\r\n", sender="dave@example.net")
    k = with_mail("alice", ms)
    a = Imap(k)
    a.ok("SELECT INBOX")
    a.ok("STORE 2 +FLAGS (\\Flagged $Junk)")
    a.ok("STORE 1 +FLAGS (\\Seen)")
    mid = ms[2].split(b"Message-ID: ")[1].split(b"\r\n")[0].decode()

    def srch(q, uid=False):
        r = a.ok(("UID SEARCH " if uid else "SEARCH ") + q)
        check(r.startswith(b"* SEARCH") and r.endswith(b"\r\n"), r)
        return [int(x) for x in r[8:].split()]
    eq(srch("ALL"), [1, 2, 3, 4], "ALL")
    eq(srch("FLAGGED"), [2], "FLAGGED")
    eq(srch("UNSEEN"), [2, 3, 4], "UNSEEN")
    eq(srch("NEW"), [2, 3, 4], "NEW")
    eq(srch("KEYWORD $Junk"), [2], "KEYWORD")
    eq(srch("UNKEYWORD $Junk"), [1, 3, 4], "UNKEYWORD")
    eq(srch("SUBJECT report"), [3], "SUBJECT, any case")
    eq(srch('HEADER Message-ID "%s"' % mid), [3], "HEADER Message-ID")
    eq(srch("CC carol"), [3], "CC")
    eq(srch("FROM dave"), [4], "FROM")
    eq(srch("BODY numbers"), [3], "BODY")
    eq(srch("TEXT numbers"), [3], "TEXT")
    eq(srch("TEXT quarterly"), [3], "TEXT looks at the header too")
    eq(srch("BODY quarterly"), [], "BODY does not")
    eq(srch("LARGER 3000"), [4], "LARGER")
    eq(srch("SMALLER 3000 NOT 1"), [2, 3], "SMALLER, NOT")
    eq(srch("OR FLAGGED FROM dave"), [2, 4], "OR")
    eq(srch("(OR SEEN FLAGGED) (OR 1 3)"), [1], "parentheses")
    eq(srch("2:3,4"), [2, 3, 4], "sequence set")
    eq(srch("UID 3:*", uid=True), [3, 4], "UID SEARCH UID")
    eq(srch("SINCE 1-Jan-2026 BEFORE 1-Jan-2027 ON 26-Nov-2026"), [1, 2, 3, 4], "internal date")
    eq(srch("SENTON 26-Nov-2026"), [1, 2, 3, 4], "sent date")
    eq(srch("SENTBEFORE 26-Nov-2026"), [], "SENTBEFORE")
    eq(srch("CHARSET UTF-8 SUBJECT hello"), [1, 2], "CHARSET UTF-8")
    a.no("SEARCH CHARSET KOI8-R SUBJECT x")
    check(b"[BADCHARSET" in a.last, a.last)
    a.no("SEARCH FROBNICATE", bad=True)
    a.no("SEARCH (SEEN", bad=True)


@test(timeout=60)
def append_copy_move_uidplus():
    k = with_mail("alice", msgs(3))
    a = Imap(k)
    a.ok("SELECT INBOX")
    m = kt.msg(subject="appended", body="from a client\r\n")
    a.s.sendall(b"a1 APPEND Drafts (\\Draft $Forwarded) \"01-Feb-2020 10:00:00 +0100\" {%d}\r\n" % len(m))
    check(a.line().startswith(b"+ "), "continuation")
    a.s.sendall(m + b"\r\n")
    r, t = a.response(b"a1")
    check(t.startswith(b"a1 OK [APPENDUID "), t)
    uv, uid = t.split(b"[APPENDUID ")[1].split(b"]")[0].split()
    b = Imap(k)
    r = b.ok("EXAMINE Drafts")
    check(b"[UIDVALIDITY %s]" % uv in r, (uv, r))
    r = b.ok("UID FETCH %s (FLAGS INTERNALDATE BODY.PEEK[])" % uid.decode())
    check(b"\\Draft" in r and b"$Forwarded" in r and b'"01-Feb-2020 09:00:00 +0000"' in r and m in r, r)
    # LITERAL+ and a message too big: refused before any byte is sent
    k2 = m.replace(b"appended", b"literal+")
    r, t = a.cmd(b"APPEND Sent {%d+}\r\n%s" % (len(k2), k2))
    check(b"[APPENDUID" in t, t)
    a.s.sendall(b"a2 APPEND Sent {999999999}\r\n")
    t = a.line()
    check(t.startswith(b"a2 NO [TOOBIG]"), "no continuation for a message over max_message_size: %r" % t)
    r, t = a.cmd(b"APPEND Nowhere {%d+}\r\n%s" % (len(k2), k2))
    check(b"NO [TRYCREATE]" in t, t)
    # COPY with COPYUID, MOVE with COPYUID before its EXPUNGEs
    r = a.ok("COPY 2:3 Archive")
    check(b"OK [COPYUID " in a.last, a.last)
    uv, src, dst = a.last.split(b"[COPYUID ")[1].split(b"]")[0].split()
    eq((src, dst), (b"2:3", b"1:2"), "COPYUID sets")
    r = a.ok("UID MOVE 1,3 Trash")
    check(r.startswith(b"* OK [COPYUID ") and b" 1,3 1:2] " in r, r)
    check(r.index(b"COPYUID") < r.index(b"* 3 EXPUNGE") < r.index(b"* 1 EXPUNGE"), "COPYUID, then EXPUNGEs: %r" % r)
    eq(a.ok("FETCH 1:* (UID)"), b"* 1 FETCH (UID 2)\r\n", "moved away")
    r = b.ok("SELECT Trash")
    check(b"* 2 EXISTS" in r, r)
    a.no("COPY 1 Nowhere")
    check(b"[TRYCREATE]" in a.last, a.last)
    eq(a.ok("UID COPY 100:200 Archive"), b"", "nothing to copy")


@test
def expunge_close_unselect():
    k = with_mail("alice", msgs(5))
    a = Imap(k)
    a.ok("SELECT INBOX")
    a.ok("STORE 2,4 +FLAGS.SILENT (\\Deleted)")
    eq(a.ok("EXPUNGE"), b"* 4 EXPUNGE\r\n* 2 EXPUNGE\r\n", "EXPUNGE, highest first")
    a.ok("STORE 1:3 +FLAGS.SILENT (\\Deleted)")
    eq(a.ok("UID EXPUNGE 3"), b"* 2 EXPUNGE\r\n", "UID EXPUNGE: only those")
    a.ok("UNSELECT")
    r = a.ok("SELECT INBOX")
    check(b"* 2 EXISTS" in r, "UNSELECT removes nothing: %r" % r)
    eq(a.ok("CLOSE"), b"", "CLOSE is silent")
    r = a.ok("EXAMINE INBOX")
    check(b"* 0 EXISTS" in r, "CLOSE removed the \\Deleted: %r" % r)
    a.no("EXPUNGE")
    check(b"[READ-ONLY]" in a.last, a.last)


@test(timeout=60)
def idle_and_changes_from_others():
    k = with_mail("alice", msgs(3))
    a = Imap(k)
    b = Imap(k)
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX")
    a.s.sendall(b"i1 IDLE\r\n")
    check(a.line().startswith(b"+ "), "IDLE continuation")
    k.send(["alice@" + kt.DOMAIN], kt.msg(subject="new"))
    eq(a.line(), b"* 4 EXISTS\r\n", "delivery pushed")
    eq(a.line(), b"* 4 RECENT\r\n", "with RECENT (this session holds all four)")
    b.ok("STORE 2 +FLAGS (\\Flagged)")
    eq(a.line(), b"* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent))\r\n", "a flag change pushed")
    b.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    a.line()
    b.ok("EXPUNGE")
    eq(a.line(), b"* 1 EXPUNGE\r\n", "an expunge pushed")
    a.s.sendall(b"DONE\r\n")
    r, t = a.response(b"i1")
    check(t.startswith(b"i1 OK"), t)
    # not idle: told at the end of the next command; EXPUNGE never in FETCH
    b.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    b.ok("STORE 1 +FLAGS.SILENT (\\Seen)")
    r = a.ok("FETCH 1 (UID)")
    check(b"EXPUNGE" not in r, "no EXPUNGE during FETCH: %r" % r)
    r = a.ok("NOOP")
    check(b"* 1 EXPUNGE\r\n" in r, "after NOOP: %r" % r)
    a.s.sendall(b"i2 IDLE\r\n")
    a.line()
    a.s.sendall(b"NOT DONE\r\n")
    r, t = a.response(b"i2")
    check(t.startswith(b"i2 BAD"), t)
    a.ok("NOOP")


@test(timeout=90)
def autologout_idle_and_noop():
    """RFC 3501 5.4: a silent session gets "* BYE" and is closed after the
    autologout (shortened by a test hook from half an hour), before login
    after login_timeout; IDLE is silence too (RFC 2177: clients re-issue it
    within 29 minutes), so an IDLE left alone is logged out while one
    re-issued, and a session sending NOOPs, live on."""
    kt.need_test_hooks()
    T = 5
    k = with_mail("alice", msgs(2), env={"KOTAK_TEST_AUTOLOGOUT": str(T)}, main={"login_timeout": 2})
    ends = {}
    last = {}       # when each watched session last heard from kotak

    def watch(name, c):
        c.s.settimeout(T + 30)
        got = []
        try:
            while True:
                got.append(c.line())
        except kt.Closed:
            ends[name] = (time.monotonic() - last[name], got)
        except OSError as e:
            ends[name] = (None, got + [repr(e).encode()])

    pre = k.raw()
    last["pre"] = time.monotonic()
    quiet = Imap(k)
    quiet.ok("SELECT INBOX")
    last["quiet"] = time.monotonic()
    idler = Imap(k)
    idler.ok("SELECT INBOX")
    idler.s.sendall(b"i1 IDLE\r\n")
    check(idler.line().startswith(b"+ "), "IDLE continuation")
    last["idle"] = time.monotonic()
    nooper = Imap(k)
    reidler = Imap(k)
    reidler.ok("SELECT INBOX")
    reidler.s.sendall(b"r0 IDLE\r\n")
    check(reidler.line().startswith(b"+ "), "IDLE continuation")
    ths = [threading.Thread(target=watch, args=a) for a in (("pre", pre), ("quiet", quiet), ("idle", idler))]
    for th in ths:
        th.start()
    # three timeouts long: a deadline that a command does not push back
    # would cut these two at the first
    t0, n = time.monotonic(), 0
    while time.monotonic() - t0 < 3 * T:
        n += 1
        nooper.ok("NOOP")
        reidler.s.sendall(b"DONE\r\n")
        r, t = reidler.response(b"r%d" % (n - 1))
        check(t.startswith(b"r%d OK" % (n - 1)), t)
        reidler.s.sendall(b"r%d IDLE\r\n" % n)
        check(reidler.line().startswith(b"+ "), "IDLE re-issued")
        time.sleep(0.5)
    for th in ths:
        th.join(T + 40)
    bye = [b"* BYE Disconnected for inactivity.\r\n"]
    for name in ("pre", "quiet", "idle"):
        secs, got = ends.get(name, (None, [b"no end"]))
        check(secs is not None and got == bye, "%s session: %r after %s s" % (name, got, secs))
        # silence since the session's last answer: at least T (T to T + 1
        # on the loop's whole-second clock), less the moment that answer
        # took to be read; far above login_timeout (2)
        check(name == "pre" or secs > T - 0.5, "%s session logged out after %.1f s of silence (autologout %d)"
              % (name, secs, T))
    reidler.s.sendall(b"DONE\r\n")
    r, t = reidler.response(b"r%d" % n)
    check(t.startswith(b"r%d OK" % n), t)
    nooper.ok("NOOP")
    print("  logged out after %.1f s (login_timeout 2), %.1f s and %.1f s (IDLE) (autologout %d); "
          "%d NOOPs and IDLEs over %.1f s kept two sessions"
          % (ends["pre"][0], ends["quiet"][0], ends["idle"][0], T, n, time.monotonic() - t0), flush=True)


@test(timeout=240)
def search_body_sliced_while_others_served():
    """SEARCH BODY through a 45 MiB folder reads it in slices through the
    loop: another session's NOOPs are answered while it runs.  Judged by
    order, not by time: a NOOP counts when its answer came while the
    SEARCH's had not (a search done in one callback answers it before
    any NOOP that arrives after it started: one at most can slip ahead),
    and the SEARCH still finds the one message at the end."""
    filler = b"".join(b"%05d a line of hay, nothing to find in it, padding padding padding\n" % i
                      for i in range(1400))     # ~98 KB
    n = 500
    mail = [b"From: a@example.org\nSubject: hay %d\n\n" % i + filler for i in range(n - 1)]
    mail.append(b"From: a@example.org\nSubject: last\n\n" + filler + b"the needle-7f3a is here\n")
    k = with_mail("alice", mail)
    a = Imap(k)
    a.s.settimeout(120)
    a.ok("SELECT INBOX")    # indexed before the SEARCH
    b = Imap(k)
    b.ok("EXAMINE INBOX")
    a.s.sendall(b"s1 SEARCH BODY needle-7f3a\r\n")
    t0, during = time.monotonic(), 0
    # "* SEARCH" goes out at the start: its tagged line ends it
    def done():
        return b"\r\ns1 " in b"\r\n" + a.buf

    while not done():
        b.ok("NOOP")
        while select.select([a.s], [], [], 0)[0]:
            d = a.s.recv(65536)
            if not d:
                raise kt.Closed("SEARCH session closed: %r" % a.buf)
            a.buf += d
        if not done():
            during += 1
    r, t = a.response(b"s1")
    secs = time.monotonic() - t0
    check(t.startswith(b"s1 OK"), t)
    eq(r, b"* SEARCH %d\r\n" % n, "the needle in the last message")
    check(during >= 3, "only %d NOOPs answered while SEARCH BODY read 45 MiB (%.2f s)" % (during, secs))
    print("  %d NOOPs answered while SEARCH BODY read %d MiB in %.2f s"
          % (during, len(filler) * n >> 20, secs), flush=True)


if __name__ == "__main__":
    sys.exit(kt.main())

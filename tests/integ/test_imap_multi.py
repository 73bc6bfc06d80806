#!/usr/bin/env python3
"""Several IMAP sessions of one user on one folder at once, as a laptop and
a phone (and eight more): each stores flags, appends, moves to Archive and
expunges while SMTP delivers into the same INBOX.  Each session keeps the
model a client keeps (UIDs by sequence number, flags) from nothing but the
untagged responses it is sent (EXISTS, EXPUNGE, FETCH); every FETCH must
name the UID its model has at that number.  At the end all of them, and a
fresh session, must see the same messages with the same flags; no flag
change is lost (each session owns a keyword and its last STORE of it
wins); nothing is lost or doubled (every subject is in INBOX or Archive
once, but those expunged).  2 and 10 sessions, 20 runs each, in a row.
(Dovecot 2.3's mbox backend loses a concurrent flag update in about half
of such runs here: issue 12.)"""

import os
import random
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kt  # noqa: E402
from kt import test, check, eq  # noqa: E402
from imaputil import KI, Imap, mbox_of  # noqa: E402

RUNS = int(os.environ.get("IMAP_MULTI_RUNS", "20"))
OPS = 25        # operations per session per run
INITIAL = 30    # messages in INBOX at the start of a run
DELIVER = 10    # messages SMTP delivers during a run


class Client(Imap):
    """A session with a client's model of the selected folder."""


    def __init__(self, k, user, me):
        Imap.__init__(self, k, user)
        self.me = me
        self.kw = "$s%d" % me
        self.seq = []           # [uid, set(flags)] by sequence number (uid None: yet to learn)
        self.mine = {}          # uid -> last STORE of my keyword (True set, False cleared)
        self.moved, self.deleted, self.appended = set(), set(), []
        self.err = None
        r = self.ok("SELECT INBOX")
        self.apply(r)
        self.fill()

    def apply(self, r):
        """The untagged responses of one command, in order, into the model."""
        for ln in r.split(b"\r\n"):
            m = re.match(rb"\* (\d+) (EXISTS|EXPUNGE|FETCH) ?(.*)", ln)
            if not m:
                continue
            n = int(m.group(1))
            if m.group(2) == b"EXISTS":
                check(n >= len(self.seq), "EXISTS %d below what is known (%d)" % (n, len(self.seq)))
                self.seq += [[None, set()] for _ in range(n - len(self.seq))]   # UIDs to learn
            elif m.group(2) == b"EXPUNGE":
                check(1 <= n <= len(self.seq), "EXPUNGE %d of %d" % (n, len(self.seq)))
                del self.seq[n - 1]
            else:
                uid = re.search(rb"UID (\d+)", m.group(3))
                fl = re.search(rb"FLAGS \(([^)]*)\)", m.group(3))
                check(n <= len(self.seq), "FETCH %d of %d" % (n, len(self.seq)))
                if uid and self.seq[n - 1][0] is None:
                    self.seq[n - 1][0] = int(uid.group(1))
                if uid:
                    eq(int(uid.group(1)), self.seq[n - 1][0], "session %d: UID at %d" % (self.me, n))
                if fl:
                    self.seq[n - 1][1] = set(fl.group(1).split()) - {b"\\Recent"}

    def cmd_apply(self, text):
        """A command whose message may have been expunged by another
        session meanwhile: NO [EXPUNGEISSUED] is a fine answer (None)."""
        r, t = self.cmd(text)
        ok = t.split(b" ", 2)[1] == b"OK"
        if not ok and b"NO [EXPUNGEISSUED]" not in t:
            raise AssertionError("%s: %r (untagged %r)" % (text, t, r[:300]))
        self.apply(r)
        self.fill()
        return r if ok else None

    def fill(self):
        """Messages known by EXISTS only: their UIDs and flags (more may
        arrive meanwhile: again until none is left)."""
        for _ in range(20):
            if all(e[0] is not None for e in self.seq):
                return
            last = max([e[0] for e in self.seq if e[0] is not None] or [0])
            self.apply(self.ok("UID FETCH %d:* (UID FLAGS)" % (last + 1)))
        raise AssertionError("session %d: UIDs not learnt" % self.me)

    def step(self, rnd, k, user):
        op = rnd.random()
        if not self.seq or op < 0.15:
            body = kt.msg(subject="app%d.%d" % (self.me, len(self.appended)))
            r, t = self.cmd(b"APPEND INBOX {%d+}\r\n%s" % (len(body), body))
            check(b"[APPENDUID" in t, t)
            self.apply(r)
            self.fill()
            self.appended.append(body)
            return
        uid, fl = rnd.choice(self.seq)
        if op < 0.6:
            on = rnd.random() < 0.6
            if self.cmd_apply("UID STORE %d %sFLAGS.SILENT (%s)" % (uid, "+" if on else "-", self.kw)) is None:
                return
            self.mine[uid] = on
            for e in self.seq:      # .SILENT: the client notes its own change (RFC 3501 6.4.6)
                if e[0] == uid:
                    e[1] = e[1] | {self.kw.encode()} if on else e[1] - {self.kw.encode()}
        elif op < 0.7:
            self.cmd_apply("UID STORE %d +FLAGS (\\Seen)" % uid)
        elif op < 0.8 and uid % 10 == self.me % 10:
            subj = self.subject(uid)
            r = self.cmd_apply("UID MOVE %d Archive" % uid)
            if subj and r and b"COPYUID" in r:
                self.moved.add(subj)
        elif op < 0.9 and uid % 10 == self.me % 10:
            subj = self.subject(uid)
            if self.cmd_apply("UID STORE %d +FLAGS.SILENT (\\Deleted)" % uid) is None:
                return
            self.cmd_apply("UID EXPUNGE %d" % uid)
            if subj:
                self.deleted.add(subj)
        else:
            self.cmd_apply("NOOP")

    def subject(self, uid):
        r = self.cmd_apply("UID FETCH %d (BODY.PEEK[HEADER.FIELDS (Subject)])" % uid)
        m = re.search(rb"Subject: (\S+)", r)
        return m.group(1) if m else None


def listing(k, user, name):
    c = Imap(k, user)
    c.ok("EXAMINE %s" % name)
    r = c.ok("UID FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (Subject)])")
    c.ok("LOGOUT")
    out = []
    for m in re.finditer(rb"\* (\d+) FETCH \(UID (\d+) FLAGS \(([^)]*)\) BODY\[HEADER.FIELDS \(SUBJECT\)\] "
                         rb"\{\d+\}\r\nSubject: (\S+)", r):
        out.append((int(m.group(2)), set(m.group(3).split()) - {b"\\Recent"}, m.group(4)))
    return out


def one_run(k, nsess, run):
    user = "u%d_%d" % (nsess, run)
    d = os.path.join(k.data_dir, "mail", user)
    os.makedirs(d)
    with open(os.path.join(d, "INBOX"), "wb") as f:   # as delivered before
        f.write(mbox_of([kt.msg(subject="init%d" % i) for i in range(INITIAL)]))
    clients = [Client(k, user, i) for i in range(nsess)]
    rnd = [random.Random(run * 100 + i) for i in range(nsess)]

    def work(c, r):
        try:
            for _ in range(OPS):
                c.step(r, k, user)
        except BaseException as e:   # reported by the main thread
            c.err = e

    def deliver():
        for i in range(DELIVER):
            k.send(["%s@%s" % (user, kt.DOMAIN)], kt.msg(subject="smtp%d" % i))
    ts = [threading.Thread(target=work, args=(c, r)) for c, r in zip(clients, rnd)]
    ts.append(threading.Thread(target=deliver))
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    for c in clients:
        if c.err:
            raise AssertionError("run %d session %d: %s" % (run, c.me, c.err))
    # a delivery that found the INBOX locked (an APPEND or MOVE under way)
    # took the queue: retried at once (SIGUSR1), waited for
    kt.wait_for(lambda: k.usr1() or k.log().count("to=%s status=delivered" % user) >= DELIVER, 30, 0.2,
                "run %d: every delivery" % run)
    # quiet now: every session is told everything (new mail is published
    # a moment after its delivery: the folder indexes it in slices)
    truth = listing(k, user, "INBOX")
    want = [(u, f) for u, f, s in truth]
    for c in clients:
        for _ in range(100):
            c.cmd_apply("NOOP")
            got = [(u, f) for u, f in c.seq]
            if got == want:
                break
            time.sleep(0.05)
        if got != want:
            raise AssertionError("run %d: session %d's model: %d vs %d messages; first differences %r" % (
                run, c.me, len(got), len(want), [(a, b) for a, b in zip(got, want) if a != b][:3]))
    # each keyword as its owner last stored it
    for u, f, s in truth:
        for c in clients:
            if u in c.mine:
                eq(c.kw.encode() in f, c.mine[u], "run %d: %s on UID %d (a flag change lost)" % (run, c.kw, u))
    # nothing lost or doubled
    arch = listing(k, user, "Archive")
    subj = [s for u, f, s in truth] + [s for u, f, s in arch]
    eq(len(subj), len(set(subj)), "run %d: a message twice" % run)
    created = {b"init%d" % i for i in range(INITIAL)} | {b"smtp%d" % i for i in range(DELIVER)}
    for c in clients:
        created |= {b"app%d.%d" % (c.me, i) for i in range(len(c.appended))}
    deleted = set().union(*[c.deleted for c in clients])
    moved = set().union(*[c.moved for c in clients])
    got, want = set(subj), created - deleted
    check(got == want, "run %d: messages missing %r, extra %r" % (run, sorted(want - got), sorted(got - want)))
    got = {s for u, f, s in arch}
    check(got == moved, "run %d: Archive missing %r, extra %r" % (run, sorted(moved - got), sorted(got - moved)))
    for c in clients:
        c.ok("LOGOUT")


def runs(nsess):
    k = KI(users=["u%d_%d" % (nsess, r) for r in range(RUNS)], main={"max_sessions_per_ip": "100"})
    for run in range(RUNS):
        one_run(k, nsess, run)
    check(k.running(), "kotak alive")


@test(timeout=300)
def two_sessions_converge_20_runs():
    runs(2)


@test(timeout=400)
def ten_sessions_converge_20_runs():
    runs(10)


if __name__ == "__main__":
    sys.exit(kt.main())

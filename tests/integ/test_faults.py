#!/usr/bin/env python3
"""Faults: kill -9 at commit points, ENOSPC (tmpfs), held locks, signals."""

import errno
import fcntl
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kt  # noqa: E402
from kt import test, check, eq  # noqa: E402


def fresh(**kw):
    k = kt.Kotak(**kw)
    kt.after_test(k.cleanup)
    return k


def end_data(c, m):
    c.send(kt.dot_stuff(m) + b".\r\n")


def open_tx(k, rcpt="alice@example.lan", sender="s@example.org"):
    c = k.session()
    c.ok("MAIL FROM:<%s>" % sender, 250)
    c.ok("RCPT TO:<%s>" % rcpt, 250)
    c.ok("DATA", 354)
    return c


def subjects(k, user):
    return [m["Subject"] for m in kt.read_mbox(k.mbox_path(user))] if k.count(user) else []


# ---------------------------------------------------------------- kill -9

@test(timeout=60)
def kill9_right_after_250_exactly_once():
    # odd rounds hold alice's dotlock across the kill, so the message is
    # surely still only in the queue; even rounds race the delivery
    k = fresh(users=("alice",))
    rnd = random.Random(5321)
    subs = []
    for i in range(6):
        lock = hold_dotlock(k) if i % 2 else None
        c = open_tx(k)
        s = "k9-%d" % i
        subs.append(s)
        t0 = time.monotonic()
        end_data(c, kt.msg(s))
        r = c.reply()
        dt = time.monotonic() - t0
        eq(r.code, 250, "final dot")
        check(dt < 1.0, "250 took %.2fs" % dt)
        if i % 2 == 0 and i:
            time.sleep(rnd.random() * 0.02)
        k.kill9()
        c.close()
        if lock:
            eq(len(k.spool_files("queue")), 1, "queue files while dotlocked, after kill -9")
            os.unlink(lock)
        k.start()
    k.wait_count("alice", 6, timeout=8, settle=1.0)
    eq(sorted(subjects(k, "alice")), sorted(subs), "subjects after 6 kill -9s")
    eq(k.spool_files("queue"), [], "spool/queue at the end")


@test
def direct_delivery_before_250():
    # a small message for local users is appended before its 250 and never
    # enters spool/queue: the delivered lines precede the queued line
    k = fresh(users=("alice", "bob"))
    eq(k.send(["alice@example.lan", "bob@example.lan"], kt.msg("direct-1")).code, 250, "final dot")
    eq(k.count("alice"), 1, "alice's messages at the 250")
    eq(k.count("bob"), 1, "bob's messages at the 250")
    log = k.log()
    qid = re.search(r"([0-9a-f]{16}): queued from=", log).group(1)
    check(log.index("%s: to=alice status=delivered" % qid) < log.index("%s: queued from=" % qid) and
          log.index("%s: to=bob status=delivered" % qid) < log.index("%s: queued from=" % qid),
          "delivered after the 250: %r" % log[-600:])
    eq(k.spool_files("queue"), [], "spool/queue")
    eq(k.spool_files("tmp"), [], "spool/tmp")
    check(not os.path.exists(k.mbox_path("alice") + ".lock"), "INBOX.lock left")


@test(timeout=60)
def kill9_before_direct_unlock_cuts_and_client_resends():
    # kill -9 after a direct delivery's mbox fsync, before its unlock and its
    # 250: the append is cut at the next start, the client (no 250) sends the
    # message again, and each message is in the mbox once
    kt.need_test_hooks()

    class K(kt.Kotak):   # env: for the daemon (kt.Kotak.env)
        env = {"KOTAK_TEST_DIRECT_DELAY_MS": "1500"}
    k = K(users=("alice",))
    kt.after_test(k.cleanup)
    eq(k.send(["alice@example.lan"], kt.msg("first")).code, 250, "first")
    before = k.mbox_bytes("alice")
    c = open_tx(k)
    end_data(c, kt.msg("cut-me", body=b"unconfirmed\r\n"))
    kt.wait_for(lambda: k.log().count("direct deliveries synced") >= 2, 5, what="the second sync")
    check(b"unconfirmed" in k.mbox_bytes("alice"), "the append is in the mbox before the unlock")
    k.kill9()
    got = c.replies_until_close(timeout=3)
    c.close()
    check(not any(r.code == 250 for r in got), "a 250 reached the client: %r" % got)
    check(os.path.exists(k.mbox_path("alice") + ".lock"), "the dotlock survives the kill")
    k.start()
    # cut at start, before any reader or delivery
    kt.wait_for(lambda: k.mbox_bytes("alice") == before, 5, what="the unconfirmed append cut")
    check(not os.path.exists(k.mbox_path("alice") + ".lock"), "INBOX.lock after recovery")
    eq(k.send(["alice@example.lan"], kt.msg("cut-me", body=b"unconfirmed\r\n")).code, 250, "resent")
    eq(k.send(["alice@example.lan"], kt.msg("after")).code, 250, "after")
    eq(sorted(subjects(k, "alice")), ["after", "cut-me", "first"], "each message once")
    check(k.mbox_bytes("alice").startswith(before), "the first message changed")


def strace_attach(k, out):
    """strace -y on the running daemon (fds shown with their paths)."""
    with open(kt.BIN, "rb") as f:
        if f.read(2) == b"#!":
            raise kt.Skip("the binary is a wrapper script (qemu): strace would trace qemu")
    if not kt.tool("strace"):
        raise kt.Skip("no strace")
    p = subprocess.Popen(["strace", "-y", "-f", "-qq", "-e", "trace=fsync,unlink,unlinkat,write",
                          "-o", out, "-p", str(k.proc.pid)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kt.wait_for(lambda: os.path.exists(out), 5, what="strace attached")
    time.sleep(0.3)
    return p


@test(timeout=40)
def direct_unlock_durable_before_250():
    # A direct delivery is confirmed by the removal of the dotlock: after a
    # power cut a dotlock that is back makes the next start cut the message.
    # So the order on the wire must be: mbox fsync, unlink INBOX.lock, fsync
    # of the mailbox directory, and only then the 250.
    k = fresh(users=("alice",))
    trace = os.path.join(k.dir, "strace.out")
    st = strace_attach(k, trace)
    try:
        eq(k.send(["alice@example.lan"], kt.msg("acknowledged")).code, 250, "reply")
    finally:
        st.terminate()
        st.wait()
    eq(k.count("alice"), 1, "delivered")
    mdir = os.path.dirname(k.mbox_path("alice"))
    with open(trace, errors="replace") as f:
        lines = f.read().splitlines()

    def first(pred, after=0, what=""):
        for i in range(after, len(lines)):
            if pred(lines[i]):
                return i
        raise AssertionError("strace: no %s after line %d:\n%s" % (what, after, "\n".join(lines[-30:])))
    a = first(lambda l: re.search(r"fsync\(\d+<%s>" % re.escape(mdir + "/INBOX"), l), 0, "mbox fsync")
    b = first(lambda l: "unlink" in l and "INBOX.lock" in l, a, "dotlock unlink")
    c = first(lambda l: re.search(r"fsync\(\d+<%s>\)" % re.escape(mdir), l) or
              re.search(r'write\(.*"250 ', l), b, "directory fsync or 250")
    check("fsync" in lines[c], "the 250 went out before the mailbox directory was synced: %s" % lines[c])
    first(lambda l: re.search(r'write\(.*"250 ', l), c, "250")


@test(timeout=40)
def nine_mailboxes_while_a_commit_waits():
    # A message to 9 local users is queued (a pass holds 8 mailboxes at
    # most); delivering it needs a sync in mid-pass.  That sync must happen
    # even while the group commit waits for another session's message (it
    # once returned early: held[8] was written, mailboxes got two copies and
    # one stayed locked).  The second message ends in the pass after.
    users = tuple("u%d" % i for i in range(1, 10)) + ("alice",)
    k = fresh(users=users)
    busy = k.session()
    busy.ok("MAIL FROM:<x@example.org>", 250)      # mid-transaction: commits wait for it
    c = k.session()
    # pipelined as RFC 2920 allows: DATA ends a group, the next group may
    # follow the final dot
    one = b"MAIL FROM:<s@example.org>\r\n"
    one += b"".join(b"RCPT TO:<%s@example.lan>\r\n" % u.encode() for u in users[:9])
    c.send(one + b"DATA\r\n")
    want = [250] * 10 + [354]
    eq([c.reply(timeout=10).code for _ in want], want, "replies to the first group")
    c.send(kt.dot_stuff(kt.msg("nine")) + b".\r\nMAIL FROM:<s@example.org>\r\nRCPT TO:<alice@example.lan>\r\nDATA\r\n")
    want = [250, 250, 250, 354]
    eq([c.reply(timeout=10).code for _ in want], want, "replies to the first message and the second group")
    c.send(kt.dot_stuff(kt.msg("second")) + b".\r\n")
    eq(c.reply(timeout=10).code, 250, "reply to the second message")
    kt.wait_for(lambda: all(k.count(u) >= 1 for u in users) and not k.spool_files("queue"), 10,
                what="every mailbox delivered, queue empty")
    time.sleep(0.5)
    check(k.running(), "kotak died")
    eq({u: k.count(u) for u in users}, {u: 1 for u in users}, "messages per mailbox")
    for u in users:
        check(not os.path.exists(k.mbox_path(u) + ".lock"), "%s's mailbox still locked" % u)
    busy.close()
    c.close()


@test(timeout=40)
def mailbox_fsync_error_undoes_every_direct_copy():
    # Direct delivery to alice and bob; bob's mbox fsync fails (EIO, through
    # an LD_PRELOAD shim: the dynamic ASan build only).  The client gets a
    # 4xx and neither mailbox may keep the message (the client resends it).
    with open(kt.BIN, "rb") as f:
        head = f.read(1 << 16)
    if b"ld-linux" not in head:
        raise kt.Skip("static binary: LD_PRELOAD has no effect (the ASan run covers this)")
    shim = os.path.join(tempfile.mkdtemp(prefix="kt-shim-"), "eio_fsync.so")
    kt.after_test(lambda: subprocess.call(["rm", "-rf", os.path.dirname(shim)]))
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shim", "eio_fsync.c")
    r = subprocess.run(["gcc", "-shared", "-fPIC", "-o", shim, src, "-ldl"], capture_output=True)
    check(r.returncode == 0, "building the shim: %r" % r.stderr[-300:])

    class K(kt.Kotak):   # env: for the daemon (kt.Kotak.env)
        env = {"LD_PRELOAD": shim, "SHIM_FAIL_FSYNC": "/mail/bob/INBOX",
               "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"}
    k = K(users=("alice", "bob"))
    kt.after_test(k.cleanup)
    r = k.send(["alice@example.lan", "bob@example.lan"], kt.msg("eio"))
    eq(r.code // 100, 4, "reply to the final dot: %r" % r.text)
    time.sleep(0.3)
    eq((k.count("alice"), k.count("bob")), (0, 0), "copies after the 4xx (alice, bob)")
    eq(k.spool_files("queue"), [], "spool/queue (the client resends)")


@test
def dead_dotlock_of_a_reused_pid_and_many_lines_recovered_at_start():
    # After a reboot the PID in kotak's old dotlock may belong to a live
    # process (here: this test).  It is still dead kotak's lock: the start
    # must cut what it lists as unconfirmed, even past 4 KiB of lines.
    k = fresh(users=("alice",))
    eq(k.send(["alice@example.lan"], kt.msg("kept")).code, 250, "first")
    k.wait_count("alice", 1)
    k.stop()
    mbox = k.mbox_path("alice")
    before = k.mbox_bytes("alice")
    with open(mbox, "ab") as f:
        f.write(b"From x@example.org Thu Nov 26 12:00:00 2026\nSubject: unconfirmed\n\npartial")
    done = b"".join(b"%016x %d\n" % (0xabc000 + i, len(before)) for i in range(300))   # gone: done
    with open(mbox + ".lock", "wb") as f:
        f.write(b"kotak %d %d\n" % (os.getpid(), len(before)) + done +
                b"%016x %d d\n" % (0xdef, len(before)))
    check(len(done) > 4096, "the lines pass 4 KiB")
    k.start()
    kt.wait_for(lambda: k.mbox_bytes("alice") == before, 5, what="the unconfirmed append cut")
    check(not os.path.exists(mbox + ".lock"), "INBOX.lock after recovery")


@test
def direct_enospc_undone_then_queued():
    # a direct append that hits ENOSPC is undone (mbox byte-identical) and
    # the message is queued as usual: 250, delivered once space returns
    fs, k = enospc_server(4 * 1024 * 1024, max_message_size=240 * 1024)
    eq(k.send(["alice@example.lan"], kt.msg("small-before")).code, 250, "first")
    before = k.mbox_bytes("alice")
    m = kt.msg("direct-fails", body=(b"d" * 98 + b"\r\n") * 2200)       # ~220 KB: direct
    fs.fill_to(len(m) + len(m) // 2)      # the spool copy fits, the mbox copy not
    r = k.send(["alice@example.lan"], m)
    eq(r.code, 250, "reply: %r" % r.text)
    eq(k.mbox_bytes("alice"), before, "mbox after the failed direct append")
    eq(len(k.spool_files("queue")), 1, "message kept in spool/queue")
    check("direct delivery failed: queued" in k.log(), "log says why")
    fs.unfill()
    k.usr1()
    msgs = k.wait_count("alice", 2, timeout=6, settle=1.0)
    check(msgs[-1].endswith(kt.crlf_to_lf(m) + b"\n"), "redelivered message not byte-exact")
    eq(k.spool_files("queue"), [], "spool/queue after redelivery")


@test(timeout=90)
def kill9_during_big_deliveries():
    # kill -9 at random moments while multi-MB messages are being appended:
    # afterwards every message is in the mbox exactly once, byte-exact, and
    # nothing half-written is left between them
    k = fresh(users=("alice",))
    rnd = random.Random(6_1_0)
    sent = []
    for i in range(6):
        line = (b"%d" % i) * 97 + b"\r\n"
        m = kt.msg("big-%d" % i, body=line * (8 * 1024 * 1024 // len(line)))
        sent.append(m)
        c = open_tx(k)
        end_data(c, m)
        eq(c.reply(timeout=20).code, 250, "final dot %d" % i)
        c.close()
        time.sleep(rnd.random() * 0.04)
        k.kill9()
        k.start()
    msgs = k.wait_count("alice", len(sent), timeout=20, settle=1.0)
    eq(k.spool_files("queue"), [], "spool/queue at the end")
    got = sorted(msgs, key=lambda x: x[x.find(b"Subject: "):][:20])
    for i, m in enumerate(sent):
        check(got[i].endswith(kt.crlf_to_lf(m) + b"\n"), "message big-%d not stored byte-exact" % i)
    eq(sorted(x["Subject"] for x in kt.read_mbox(k.mbox_path("alice"))),
       ["big-%d" % i for i in range(6)], "subjects via mailbox.mbox")


@test
def kill9_mid_data_nothing_stored():
    k = fresh(users=("alice",))
    c = open_tx(k)
    c.send(kt.msg("half", body=b"x" * 100000 + b"\r\n")[:60000])
    time.sleep(0.3)
    k.kill9()
    c.close()
    k.start()
    time.sleep(1.0)
    eq(k.count("alice"), 0, "alice's messages")
    eq(k.spool_files("tmp"), [], "spool/tmp after restart (temp debris removed)")
    eq(k.spool_files("queue"), [], "spool/queue after restart")
    # and it still takes mail
    eq(k.send(["alice@example.lan"], kt.msg("after")).code, 250, "next message")
    k.wait_count("alice", 1)


@test
def temp_debris_removed_on_start():
    k = fresh(users=("alice",))
    k.stop()
    tmpd = os.path.join(k.data_dir, "spool", "tmp")
    check(os.path.isdir(tmpd), "no spool/tmp after a run")
    with open(os.path.join(tmpd, "debris.123"), "wb") as f:
        f.write(b"partial garbage")
    k.start()
    time.sleep(0.5)
    eq(k.spool_files("tmp"), [], "spool/tmp after start")


@test
def client_disconnect_mid_data():
    k = fresh(users=("alice",))
    c = open_tx(k)
    c.send(kt.msg("gone", body=b"y" * 50000 + b"\r\n"))
    c.close()
    time.sleep(0.7)
    eq(k.spool_files("tmp"), [], "spool/tmp after a client vanished mid-DATA")
    eq(k.spool_files("queue"), [], "spool/queue")
    eq(k.count("alice"), 0, "alice's messages")
    check(k.running(), "kotak died")


# ---------------------------------------------------------------- locks

def hold_dotlock(k, user="alice", age=None):
    d = os.path.dirname(k.mbox_path(user))
    os.makedirs(d, mode=0o700, exist_ok=True)
    p = k.mbox_path(user) + ".lock"
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, b"%d\n" % os.getpid())
    os.close(fd)
    if age:
        t = time.time() - age
        os.utime(p, (t, t))
    return p


@test(timeout=60)
def restart_retries_every_queued_message_once():
    # 80 messages wait for a mailbox another program keeps locked.  A
    # restart retries the whole queue at once: each message once, not the
    # first 64 of the directory again and again (as it once did: those were
    # retried without backoff while the rest waited).
    k = fresh(users=("alice",))
    lock = hold_dotlock(k)
    c = k.session()
    for i in range(80):
        c.ok("MAIL FROM:<s@example.org>", 250)
        c.ok("RCPT TO:<alice@example.lan>", 250)
        c.ok("DATA", 354)
        c.send(kt.dot_stuff(kt.msg("m%d" % i)) + b".\r\n")
        eq(c.reply(timeout=10).code, 250, "message %d" % i)
    c.ok("QUIT", 221)
    c.close()
    kt.wait_for(lambda: len(k.spool_files("queue")) == 80, 10, what="80 messages queued")
    k.stop()
    k.start()
    time.sleep(3)
    log = k.log().split("=== start")[-1]
    tries = {}
    for m in re.finditer(r"(\w+): to=alice status=deferred \(mailbox locked\)", log):
        tries[m.group(1)] = tries.get(m.group(1), 0) + 1
    eq(sorted(tries), sorted(k.spool_files("queue")), "messages retried after the restart")
    eq(max(tries.values()), 1, "tries of the most tried message (the next is 10 s later)")
    os.unlink(lock)
    k.usr1()
    kt.wait_for(lambda: k.count("alice") == 80 and not k.spool_files("queue"), 20,
                what="all 80 delivered")


@test
def held_dotlock_delays_then_delivers_once():
    k = fresh(users=("alice",))
    eq(k.send(["alice@example.lan"], kt.msg("before-lock")).code, 250, "first")
    k.wait_count("alice", 1)
    before = k.mbox_bytes("alice")
    lock = hold_dotlock(k)
    r = k.send(["alice@example.lan"], kt.msg("under-lock"))
    eq(r.code, 250, "250 while the mbox is dotlocked")
    time.sleep(1.0)
    k.usr1()
    time.sleep(1.0)
    eq(k.mbox_bytes("alice"), before, "mbox while dotlocked by another process")
    check(os.path.exists(lock), "our dotlock was removed by kotak (it is fresh)")
    # the loop keeps serving while the delivery waits
    t0 = time.monotonic()
    c = k.session()
    c.ok("NOOP", 250)
    c.close()
    check(time.monotonic() - t0 < 1.0, "session stalled while a delivery waits for a lock")
    os.unlink(lock)
    k.usr1()
    k.wait_count("alice", 2, timeout=6, settle=1.0)
    eq(subjects(k, "alice"), ["before-lock", "under-lock"], "subjects")
    check(not os.path.exists(lock), "INBOX.lock left behind")


@test
def held_fcntl_lock_delays_then_delivers_once():
    k = fresh(users=("alice",))
    eq(k.send(["alice@example.lan"], kt.msg("before-fcntl")).code, 250, "first")
    k.wait_count("alice", 1)
    before = k.mbox_bytes("alice")
    f = open(k.mbox_path("alice"), "r+b")
    try:
        fcntl.lockf(f, fcntl.LOCK_EX)
        eq(k.send(["alice@example.lan"], kt.msg("under-fcntl")).code, 250, "250 under fcntl lock")
        time.sleep(1.0)
        k.usr1()
        time.sleep(1.0)
        eq(k.mbox_bytes("alice"), before, "mbox while fcntl-locked by another process")
    finally:
        fcntl.lockf(f, fcntl.LOCK_UN)
        f.close()
    k.usr1()
    k.wait_count("alice", 2, timeout=6, settle=1.0)
    eq(subjects(k, "alice"), ["before-fcntl", "under-fcntl"], "subjects")
    check(not os.path.exists(k.mbox_path("alice") + ".lock"), "INBOX.lock left behind")


@test
def one_of_two_recipients_locked_no_duplicate():
    # issue 2: a failed recipient stays queued and is retried, the others are
    # not delivered twice, not even across a crash
    k = fresh(users=("alice", "bob"))
    lock = hold_dotlock(k, "alice")
    eq(k.send(["alice@example.lan", "bob@example.lan"], kt.msg("half-locked")).code, 250,
       "final dot")
    k.wait_count("bob", 1)
    time.sleep(0.5)
    eq(k.count("alice"), 0, "alice's messages while dotlocked")
    k.kill9()
    k.start()
    time.sleep(1.0)
    k.usr1()
    time.sleep(0.5)
    eq(k.count("bob"), 1, "bob's messages after a restart with alice still pending")
    eq(k.count("alice"), 0, "alice's messages while still dotlocked")
    os.unlink(lock)
    k.usr1()
    k.wait_count("alice", 1, timeout=6, settle=1.0)
    eq(k.count("bob"), 1, "bob's messages after alice's delivery")
    eq(k.spool_files("queue"), [], "spool/queue at the end")


@test
def stale_dotlock_broken():
    k = fresh(users=("alice",))
    lock = hold_dotlock(k, age=3600)
    eq(k.send(["alice@example.lan"], kt.msg("stale")).code, 250, "final dot")
    try:
        k.wait_count("alice", 1, timeout=2)
    except AssertionError:
        k.usr1()
        k.wait_count("alice", 1, timeout=4)
    check(not os.path.exists(lock), "stale INBOX.lock still there")


@test
def queue_survives_sigterm():
    k = fresh(users=("alice",))
    lock = hold_dotlock(k)
    eq(k.send(["alice@example.lan"], kt.msg("queued")).code, 250, "final dot")
    time.sleep(0.5)
    eq(k.stop(), 0, "exit status on SIGTERM")
    eq(len(k.spool_files("queue")), 1, "files in spool/queue after SIGTERM")
    os.unlink(lock)
    k.start()
    k.wait_count("alice", 1, timeout=5, settle=1.0)
    eq(k.spool_files("queue"), [], "spool/queue after delivery")


@test
def corrupt_queue_file_not_delivered():
    k = fresh(users=("alice",))
    lock = hold_dotlock(k)
    eq(k.send(["alice@example.lan"], kt.msg("corrupt-me")).code, 250, "final dot")
    time.sleep(0.3)
    eq(k.stop(), 0, "exit status on SIGTERM")
    q = k.spool_files("queue")
    eq(len(q), 1, "files in spool/queue")
    p = os.path.join(k.data_dir, "spool", "queue", q[0])
    size = os.path.getsize(p)
    with open(p, "r+b") as f:
        f.truncate(size - 8)      # the trailer that proves completeness is gone
    os.unlink(lock)
    k.start()
    time.sleep(0.5)
    k.usr1()
    time.sleep(1.0)
    eq(k.count("alice"), 0, "messages delivered from a truncated queue file")
    eq(k.spool_files("queue"), [], "spool/queue (corrupt file must leave the queue)")
    found = []
    for root, dirs, files in os.walk(os.path.join(k.data_dir, "spool")):
        if "corrupt" in root:
            found += files
    eq(len(found), 1, "files under spool/corrupt/")
    check(k.running(), "kotak died on a corrupt queue file")


# ---------------------------------------------------------------- ENOSPC

class Tmpfs:
    def __init__(self, size):
        if not kt.is_root():
            raise kt.Skip("needs root for mount -t tmpfs")
        self.dir = tempfile.mkdtemp(prefix="kt-fs-")
        self.mnt = os.path.join(self.dir, "data")
        os.mkdir(self.mnt)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%d,mode=0700" % size, "tmpfs",
                            self.mnt], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
        if r.returncode:
            os.rmdir(self.mnt)
            os.rmdir(self.dir)
            raise kt.Skip("mount -t tmpfs failed: %s" % r.stdout.decode().strip())
        self.filler = os.path.join(self.mnt, "filler")

    def free(self):
        st = os.statvfs(self.mnt)
        return st.f_bavail * st.f_frsize

    def fill_to(self, free_bytes):
        """Grow the filler until about free_bytes are left."""
        cur = os.path.getsize(self.filler) if os.path.exists(self.filler) else 0
        grow = self.free() - free_bytes
        check(grow > 0, "cannot fill: free %d, want %d" % (self.free(), free_bytes))
        with open(self.filler, "ab") as f:
            f.write(b"\0" * grow)
        return cur + grow

    def unfill(self):
        if os.path.exists(self.filler):
            os.unlink(self.filler)

    def cleanup(self):
        subprocess.run(["umount", "-l", self.mnt], timeout=10)
        import shutil
        shutil.rmtree(self.dir, ignore_errors=True)


def enospc_server(fs_size, **main):
    fs = Tmpfs(fs_size)
    k = kt.Kotak(users=("alice",), data_dir=fs.mnt, main=main)

    def clean():
        k.kill9()
        fs.cleanup()
        k.cleanup()
    kt.after_test(clean)
    return fs, k


def try_big(k, big, mail="MAIL FROM:<s@example.org>"):
    """MAIL/RCPT/DATA with big; returns (where, reply)."""
    c = k.session()
    try:
        r = c.cmd(mail)
        if r.code != 250:
            return "MAIL", r
        c.ok("RCPT TO:<alice@example.lan>", 250)
        c.ok("DATA", 354)
        end_data(c, big)
        return "DATA", c.reply(timeout=10)
    finally:
        c.close()


def after_refusal(k, before, where):
    time.sleep(0.5)
    eq(k.mbox_bytes("alice"), before, "mbox after ENOSPC (refused at %s)" % where)
    eq(k.spool_files("tmp"), [], "spool/tmp after ENOSPC")
    eq(k.spool_files("queue"), [], "spool/queue after ENOSPC")
    check(k.running(), "kotak died on ENOSPC")


@test
def enospc_low_disk_4xx_and_recovery():
    fs, k = enospc_server(4 * 1024 * 1024, max_message_size=2 * 1024 * 1024)
    eq(k.send(["alice@example.lan"], kt.msg("small-before")).code, 250, "first")
    k.wait_count("alice", 1)
    before = k.mbox_bytes("alice")
    fs.fill_to(150 * 1024)
    big = kt.msg("too-big-for-disk", body=(b"z" * 98 + b"\r\n") * 4000)     # ~400 KB
    where, r = try_big(k, big)
    check(r.code in (451, 452), "reply at %s when the disk is full: %r" % (where, r.text))
    after_refusal(k, before, where)
    fs.unfill()
    eq(k.send(["alice@example.lan"], big).code, 250, "same message after space returned")
    k.wait_count("alice", 2, settle=0.5)
    check(k.mbox_bytes("alice").startswith(before), "first message changed")


@test
def enospc_spool_write_path_4xx():
    # find a fill level where MAIL is accepted, then send more than fits:
    # the spool write itself hits ENOSPC and must answer 451/452, never 250
    maxsize = 2 * 1024 * 1024
    fs, k = enospc_server(6 * 1024 * 1024, max_message_size=maxsize)
    eq(k.send(["alice@example.lan"], kt.msg("small-before")).code, 250, "first")
    k.wait_count("alice", 1)
    before = k.mbox_bytes("alice")
    # MAIL needs room for the declared SIZE (max_message_size without it):
    # a client that declares too little reaches the spool write path
    mail = "MAIL FROM:<s@example.org> SIZE=1000"
    for free in (200 * 1024, 500 * 1024, 1024 * 1024, 1536 * 1024):
        fs.unfill()
        fs.fill_to(free)
        c = k.session()
        r = c.cmd(mail)
        c.close()
        if r.code == 250:
            break
    else:
        raise kt.Skip("MAIL SIZE=1000 refused at every fill level")
    n = min(maxsize - 64 * 1024, free + 300 * 1024) // 100
    big = kt.msg("spool-enospc", body=(b"w" * 98 + b"\r\n") * n)
    where, r = try_big(k, big, mail)
    eq(where, "DATA", "refused at")
    check(r.code in (451, 452), "reply to the final dot when the spool write fails "
          "(free %d, message %d): %r" % (free, len(big), r.text))
    after_refusal(k, before, where)
    fs.unfill()
    eq(k.send(["alice@example.lan"], kt.msg("after-space")).code, 250, "after space returned")
    k.wait_count("alice", 2, settle=0.5)


@test
def low_disk_refused_at_mail_without_size():
    # issue 14: with 1 MiB free and no SIZE, MAIL got 250 and a 2 MiB message
    # was refused only after its final dot
    fs, k = enospc_server(4 * 1024 * 1024, max_message_size=2 * 1024 * 1024)
    fs.fill_to(1024 * 1024)
    c = k.session()
    c.ok("MAIL FROM:<s@example.org>", 452, enh="4.3.1")
    c.ok("MAIL FROM:<s@example.org> SIZE=2000000", 452, enh="4.3.1")
    c.ok("MAIL FROM:<s@example.org> SIZE=100000", 250)
    c.ok("RCPT TO:<alice@example.lan>", 250)
    c.ok("DATA", 354)
    end_data(c, kt.msg("declared-small"))
    eq(c.reply(timeout=10).code, 250, "a small declared message")
    k.wait_count("alice", 1)
    fs.unfill()
    c.ok("MAIL FROM:<s@example.org>", 250)


@test
def enospc_mbox_append_truncates_and_redelivers():
    fs, k = enospc_server(4 * 1024 * 1024, max_message_size=320 * 1024)
    eq(k.send(["alice@example.lan"], kt.msg("small-before")).code, 250, "first")
    k.wait_count("alice", 1)
    before = k.mbox_bytes("alice")
    big = kt.msg("append-fails", body=(b"q" * 98 + b"\r\n") * 3000)       # ~300 KB
    # room for the spool copy, not for the mbox copy as well
    fs.fill_to(len(big) + len(big) // 2)
    free = fs.free()
    r = k.send(["alice@example.lan"], big)
    eq(r.code, 250, "reply when the spool fits (free %d for a %d-byte message): %r" % (
        free, len(big), r.text))
    time.sleep(1.5)
    eq(k.mbox_bytes("alice"), before, "mbox after a failed append (must be byte-identical)")
    eq(len(k.spool_files("queue")), 1, "message kept in spool/queue")
    check(not os.path.exists(k.mbox_path("alice") + ".lock"), "INBOX.lock left after failure")
    check(k.running(), "kotak died on ENOSPC")
    fs.unfill()
    k.usr1()
    msgs = k.wait_count("alice", 2, timeout=6, settle=1.0)
    check(k.mbox_bytes("alice").startswith(before), "first message changed")
    check(msgs[-1].endswith(kt.crlf_to_lf(big) + b"\n"), "redelivered message not byte-exact")
    eq(k.spool_files("queue"), [], "spool/queue after redelivery")


# ---------------------------------------------------------------- signals

@test
def sighup_reload_keeps_sessions():
    k = fresh(users=("alice", "bob"))
    a = k.session()
    a.ok("MAIL FROM:<a@example.org>", 250)
    a.ok("RCPT TO:<alice@example.lan>", 250)
    b = k.session()
    b.ok("MAIL FROM:<b@example.org>", 250)
    b.ok("RCPT TO:<sales@new.example>", 554)
    b.ok("RCPT TO:<carol@example.lan>", 550)
    b.close()
    k.domains.append("new.example")
    k.aliases["sales"] = ["bob"]
    k.write_config()
    k.user_add("carol")
    k.hup()
    time.sleep(0.7)
    check(k.running(), "kotak exited on SIGHUP")
    # the open session goes on
    a.ok("RCPT TO:<bob@example.lan>", 250)
    a.ok("DATA", 354)
    end_data(a, kt.msg("across-hup"))
    eq(a.reply().code, 250, "final dot in a session opened before SIGHUP")
    a.ok("QUIT", 221)
    k.wait_count("alice", 1)
    k.wait_count("bob", 1)
    # a new session sees the new domain, alias and user
    c = k.session()
    c.ok("MAIL FROM:<c@example.org>", 250)
    c.ok("RCPT TO:<sales@new.example>", 250)
    c.ok("RCPT TO:<carol@example.lan>", 250)
    c.ok("DATA", 354)
    end_data(c, kt.msg("after-hup"))
    eq(c.reply().code, 250, "final dot after SIGHUP")
    c.close()
    k.wait_count("bob", 2)
    k.wait_count("carol", 1)


@test
def sighup_adds_listener():
    k = fresh(users=("alice",))
    p2 = kt.free_port()
    k.listens.append((kt.LOOPBACK, p2))
    k.write_config()
    k.hup()
    c = kt.wait_for(lambda: _try_connect(p2), 3, 0.1, "the new listener after SIGHUP")
    r = c.reply()
    eq(r.code, 220, "greeting on the new port")
    c.close()
    k.connect().close()


def _try_connect(port):
    try:
        return kt.Smtp(kt.LOOPBACK, port)
    except OSError:
        return None


@test
def sighup_removes_listener():
    k = fresh(users=("alice",), listen=[(kt.LOOPBACK, kt.free_port()), (kt.LOOPBACK, kt.free_port())])
    gone = k.listens.pop()
    k.write_config()
    k.hup()

    def refused():
        try:
            socket.create_connection(gone, timeout=1).close()
            return False
        except ConnectionRefusedError:
            return True
    kt.wait_for(refused, 3, 0.1, "the removed listener to close")
    k.connect().close()


@test
def sighup_bad_config_keeps_running():
    k = fresh(users=("alice",))
    good = open(k.conf).read()
    k.write_config(good + "\nconfig bogus_section\n\toption x 'y'\n")
    k.hup()
    time.sleep(0.7)
    check(k.running(), "kotak exited on SIGHUP with a bad config (rc %s)" % k.proc.returncode)
    c = k.session()
    c.ok("MAIL FROM:<a@example.org>", 250)
    c.ok("RCPT TO:<alice@example.lan>", 250)
    c.close()


@test
def sigterm_exits_0_with_open_sessions():
    k = fresh(users=("alice",))
    c1 = k.session()
    c2 = open_tx(k)
    c2.send(b"Subject: unfinished\r\n")
    t0 = time.monotonic()
    eq(k.stop(signal.SIGTERM), 0, "exit status on SIGTERM")
    check(time.monotonic() - t0 < 5, "SIGTERM took too long")
    check(c1.wait_closed(2), "session not closed at shutdown")
    c1.close()
    c2.close()
    k.start()
    time.sleep(0.5)
    eq(k.count("alice"), 0, "messages from an unfinished DATA")
    eq(k.spool_files("tmp"), [], "spool/tmp")


@test
def sigint_exits_0():
    k = fresh(users=("alice",))
    eq(k.stop(signal.SIGINT), 0, "exit status on SIGINT")


@test
def emfile_no_busy_loop_and_recovery():
    # RELIABILITY: EMFILE fails one session with a 4xx, the daemon keeps
    # serving; STYLE: at a cap stop polling the listener (no busy loop)
    k = fresh(users=("alice",), nofile=14, main={"max_sessions_per_ip": 50})
    held = [k.connect(greet=False, timeout=3) for _ in range(10)]
    try:
        # a session that got a slot but no fd for its spool file gets a 4xx
        c = held[0]
        eq(c.reply().code, 220, "greeting of the first session")
        c.ok("EHLO x.example.org", 250)
        c.ok("MAIL FROM:<a@example.org>", 250)
        r = c.cmd("RCPT TO:<alice@example.lan>")
        if r.code == 250:
            c.ok("DATA", (354, 451, 452))
        else:
            check(400 <= r.code < 500, "RCPT when out of fds -> %r (want 4xx)" % r.text)

        def ticks():
            f = open("/proc/%d/stat" % k.proc.pid).read().rsplit(")", 1)[1].split()
            return int(f[11]) + int(f[12])
        log0 = len(k.log())
        t0 = ticks()
        time.sleep(2.0)
        used = (ticks() - t0) / os.sysconf("SC_CLK_TCK")
        grew = len(k.log()) - log0
        check(used < 0.5, "kotak used %.1f s of CPU in 2 s while out of fds (busy loop)" % used)
        check(grew < 20000, "kotak wrote %d bytes of log in 2 s while out of fds" % grew)
    finally:
        for h in held:
            h.close()
    time.sleep(0.5)
    check(k.running(), "kotak died on EMFILE")
    eq(k.send(["alice@example.lan"], kt.msg("after-emfile")).code, 250, "after fds came back")
    k.wait_count("alice", 1)


@test
def survives_many_aborted_sessions():
    k = fresh(users=("alice",))
    for i in range(50):
        c = k.connect(greet=False)
        if i % 3 == 0:
            c.send(b"EHLO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<alice@example.lan>\r\nDATA\r\nhalf")
        elif i % 3 == 1:
            c.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
        c.close()
    time.sleep(0.5)
    check(k.running(), "kotak died")
    eq(k.send(["alice@example.lan"], kt.msg("after-aborts")).code, 250, "message after aborts")
    k.wait_count("alice", 1)

if __name__ == "__main__":
    sys.exit(kt.main())

#!/usr/bin/env python3
"""Local submission: kotak sendmail (and a symlink named sendmail) and the
queue commands (kotak queue list [-j] | del ID | flush).  All traffic on
127.0.0.1; the daemon runs from a temp dir."""

import json
import os
import pwd
import re
import subprocess
import time

import kt
from kt import test, check, eq

EX_USAGE, EX_DATAERR, EX_NOUSER, EX_CONFIG = 64, 65, 67, 78
QID_RE = re.compile(r"^[0-9a-f]{16}$")


def sendmail(k, args, data, env=None, argv0=None, conf=True):
    """Run `kotak -c CONF sendmail ARGS` (or argv0 ARGS) with data on stdin."""
    cmd = [argv0] + list(args) if argv0 else [kt.BIN] + (["-c", k.conf] if conf else []) + ["sendmail"] + list(args)
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run(cmd, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=30, env=e)


def queue(k, *args):
    r = kt.run_kotak(["-c", k.conf, "queue"] + list(args))
    r.out = r.stdout.decode(errors="replace")
    r.err = r.stderr.decode(errors="replace")
    return r


def ok(r, what="sendmail"):
    if r.returncode != 0:
        raise AssertionError("%s: rc %d: %s" % (what, r.returncode, r.stderr.decode(errors="replace").strip()))


def stored(m):
    """(header fields as str, body bytes) of one stored mbox message."""
    _, rest = kt.parse_stored(m)
    fields, body = kt.split_headers(rest)
    return [f.decode(errors="replace") for f in fields], body


def field(fields, name):
    return [f for f in fields if f.lower().startswith(name.lower() + ":")]


def queue_files(k):
    return [f for f in k.spool_files("queue") if QID_RE.match(f)]


def trailer_size(path):
    with open(path, "rb") as f:
        data = f.read()
    m = re.search(rb"KOTAK-END (\d{20})\n$", data)
    check(m, "queue file %s has no trailer" % path)
    return int(m.group(1)), data


@test
def local_user_daemon_running():
    k = kt.Kotak(users=("alice", "admin"))
    kt.after_test(k.cleanup)
    data = (b"Subject: first\nStatus: RO\nX-UID: 7\nX-Keywords: $x\n\nline one\n..two dots\n"
            b".\nnot part of it\n")
    t0 = time.monotonic()
    ok(sendmail(k, ["alice@example.lan"], data))
    msgs = k.wait_count("alice", 1, timeout=5)     # the 60 s scan would be too late: the signal works
    check(time.monotonic() - t0 < 5, "delivered after %.1fs" % (time.monotonic() - t0))
    fields, body = stored(msgs[0])
    check(fields[0].startswith("Return-Path: <root@example.lan>") or os.geteuid() != 0,
          "Return-Path of root's mail: %r" % fields[0])
    recv = field(fields, "Received")
    eq(len(recv), 1, "Received headers")
    check(re.match(r"Received: from local \(uid %d\)\n\tby mail\.example\.lan \(kotak\) with local id "
                   r"[0-9a-f]{16}\n\tfor <alice@example\.lan>;\n\t\w{3}, " % os.getuid(), recv[0]),
          "Received: %r" % recv[0])
    eq(len(field(fields, "Date")), 1, "Date headers")
    eq(len(field(fields, "Message-ID")), 1, "Message-ID headers")
    check(re.match(r"Message-ID: <\d{14}\.[0-9a-f]{16}@mail\.example\.lan>$", field(fields, "Message-ID")[0]),
          "Message-ID %r" % field(fields, "Message-ID"))
    eq(len(field(fields, "From")), 1, "From: added")
    for h in ("Status", "X-UID", "X-Keywords"):
        eq(field(fields, h), [], "%s header (the SMTP filter)" % h)
    # as Postfix's sendmail: a lone "." ends the input, ".." is not unstuffed
    eq(body, b"line one\n..two dots\n\n", "body: ends at the '.' line")
    # -i: a lone dot is content; so is -oi
    for flag in ("-i", "-oi"):
        ok(sendmail(k, [flag, "alice"], b"Subject: %s\n\nA\n.\nB\n" % flag.encode()))
    msgs = k.wait_count("alice", 3, timeout=5)
    for m in msgs[1:]:
        eq(stored(m)[1], b"A\n.\nB\n\n", "body with -i/-oi")


@test
def message_date_and_id_kept():
    k = kt.Kotak(users=("alice", "admin"))
    kt.after_test(k.cleanup)
    data = (b"From: Me <me@example.org>\nDate: Wed, 25 Nov 2026 10:00:00 +0000\n"
            b"Message-ID: <keep.1@example.org>\nSubject: keep\n\nx\n")
    ok(sendmail(k, ["-f", "me@example.org", "alice"], data))
    fields, _ = stored(k.wait_count("alice", 1)[0])
    eq(fields[0], "Return-Path: <me@example.org>", "Return-Path from -f")
    eq(field(fields, "Date"), ["Date: Wed, 25 Nov 2026 10:00:00 +0000"], "Date")
    eq(field(fields, "Message-ID"), ["Message-ID: <keep.1@example.org>"], "Message-ID")
    eq(field(fields, "From"), ["From: Me <me@example.org>"], "From")
    # -F names the From: it adds; a bare -f name is local
    ok(sendmail(k, ["-f", "robot", "-F", 'Cron "daily"', "alice"], b"Subject: f\n\nx\n"))
    fields, _ = stored(k.wait_count("alice", 2)[1])
    eq(fields[0], "Return-Path: <robot@example.lan>", "Return-Path from a bare -f")
    eq(field(fields, "From"), ['From: "Cron \\"daily\\"" <robot@example.lan>'], "From with -F")


@test
def queued_while_stopped():
    k = kt.Kotak(users=("alice", "admin"), start=False)
    kt.after_test(k.cleanup)
    ok(sendmail(k, ["alice"], b"Subject: offline\n\nwhile down\n"))
    q = queue_files(k)
    eq(len(q), 1, "queue files")
    size, data = trailer_size(os.path.join(k.data_dir, "spool", "queue", q[0]))
    check(data.startswith(b"KOTAK1 %s\nT " % q[0].encode()), "envelope: %r" % data[:60])
    check(b"\nR - alice alice@example.lan\n\nReceived: " in data, "R line and message: %r" % data[:200])
    env_end = data.index(b"\n\n") + 2
    eq(size, len(data) - env_end - 31, "trailer length = message length")
    eq(k.spool_files("tmp"), [], "spool/tmp")
    eq(k.count("alice"), 0, "nothing delivered without the daemon")
    r = queue(k, "flush")
    eq(r.returncode, 1, "queue flush without a daemon: rc")
    check("not running" in r.err, "flush says: %r" % r.err)
    k.start()
    msgs = k.wait_count("alice", 1, timeout=5)
    check(b"while down" in msgs[0], "the body")
    kt.wait_for(lambda: not queue_files(k), 3, what="the queue file removed")
    check(os.path.exists(os.path.join(k.data_dir, "kotak.pid")), "pid file while running")
    eq(k.stop(), 0, "clean stop")
    check(not os.path.exists(os.path.join(k.data_dir, "kotak.pid")), "pid file removed at exit")


@test
def extract_to_cc_bcc():
    k = kt.Kotak(users=("alice", "bob", "carol", "dave", "admin"))
    kt.after_test(k.cleanup)
    data = (b"To: Alice <alice@example.lan>, \"Smith, Bob\" <bob@example.lan> (the boss)\n"
            b"Cc: team: carol@example.lan;\nBcc: dave@example.lan\nSubject: extract\n\nhi all\n")
    ok(sendmail(k, ["-t"], data))
    for u in ("alice", "bob", "carol", "dave"):
        m = k.wait_count(u, 1)[0]
        fields, body = stored(m)
        eq(field(fields, "Bcc"), [], "Bcc in %s's copy" % u)
        eq(len(field(fields, "To")), 1, "To in %s's copy" % u)
        eq(field(fields, "Cc"), ["Cc: team: carol@example.lan;"], "Cc in %s's copy" % u)
        eq(body, b"hi all\n\n", "body")
    eq(k.count("admin"), 0, "admin got nothing")
    # -t with no recipient in the header: usage error, nothing queued
    r = sendmail(k, ["-t"], b"Subject: none\n\nx\n")
    eq(r.returncode, EX_USAGE, "rc without recipients")
    eq(queue_files(k), [], "queue")


@test
def alias_recipient():
    k = kt.Kotak(users=("alice", "bob", "admin"), aliases={"postmaster": ["admin"], "team": ["alice", "bob"]})
    kt.after_test(k.cleanup)
    ok(sendmail(k, ["team@example.lan", "postmaster"], b"Subject: alias\n\nx\n"))
    for u in ("alice", "bob", "admin"):
        k.wait_count(u, 1)


@test
def remote_address_through_two_aliases_queued_once():
    """team and chain (-> team) both forward to fwd1@good.test, which is also
    named itself in other case: the envelope gets one remote line for it,
    so the relay sends one copy."""
    k = kt.Kotak(users=("alice", "bob", "admin"), start=False,
                 aliases={"postmaster": ["admin"], "team": ["bob", "fwd1@good.test"], "chain": ["team"]})
    kt.after_test(k.cleanup)
    ok(sendmail(k, ["-f", "alice@example.lan", "team", "chain", "FWD1@Good.Test"],
                b"Subject: dup\n\nonce\n"))
    q = queue_files(k)
    eq(len(q), 1, "queue files")
    with open(os.path.join(k.data_dir, "spool", "queue", q[0]), "rb") as f:
        env = f.read().split(b"\n\n", 1)[0]
    remote = [ln for ln in env.split(b"\n") if ln.startswith(b"R - ! ")]
    eq(remote, [b"R - ! fwd1@good.test"], "remote recipient lines")


@test
def unknown_user_nothing_queued():
    k = kt.Kotak(users=("alice", "admin"))
    kt.after_test(k.cleanup)
    for args in (["nobody@example.lan"], ["alice", "nobody"]):
        r = sendmail(k, args, b"Subject: x\n\nx\n")
        eq(r.returncode, EX_NOUSER, "rc for %s" % args)
        check(b"nobody@example.lan" in r.stderr and b"unknown" in r.stderr, "stderr: %r" % r.stderr)
    r = sendmail(k, ["-t"], b"To: ghost@example.lan\nSubject: x\n\nx\n")
    eq(r.returncode, EX_NOUSER, "rc for an unknown To: with -t")
    r = sendmail(k, ["not an address"], b"Subject: x\n\nx\n")
    eq(r.returncode, EX_DATAERR, "rc for a bad address")
    time.sleep(0.3)
    eq(queue_files(k), [], "queue")
    eq(k.spool_files("tmp"), [], "spool/tmp")
    eq(k.count("alice"), 0, "alice's INBOX")


@test
def remote_recipient_queue_list_del():
    k = kt.Kotak(users=("alice", "admin"))
    kt.after_test(k.cleanup)
    ok(sendmail(k, ["-f", "root@example.lan", "bob@remote.example"], b"Subject: out\n\nfor the relay\n"))
    # the relay tries it at once (the harness's resolver, 127.0.0.1:9, refuses) and defers it
    kt.wait_for(lambda: "pending, next try in" in k.log(), 10, what="the relay to defer it")
    q = queue_files(k)
    eq(len(q), 1, "queue files")
    qid = q[0]
    size, _ = trailer_size(os.path.join(k.data_dir, "spool", "queue", qid))
    r = queue(k, "list")
    eq(r.returncode, 0, "queue list rc")
    lines = r.out.splitlines()
    eq(len(lines), 1, "queue list lines")
    check(lines[0].startswith(qid + " ") and "<root@example.lan>" in lines[0] and
          lines[0].endswith("-> bob@remote.example") and " %d " % size in lines[0],
          "queue list line: %r" % lines[0])
    r = queue(k, "list", "-j")
    eq(r.returncode, 0, "queue list -j rc")
    j = json.loads(r.out)
    eq(len(j), 1, "JSON entries")
    e = j[0]
    eq(e["id"], qid, "id")
    eq(e["sender"], "root@example.lan", "sender")
    eq(e["size"], size, "size")
    eq(e["recipients"], [{"address": "bob@remote.example", "user": None, "remote": True}], "recipients")
    st = os.stat(os.path.join(k.data_dir, "spool", "queue", qid))
    eq(e["next_attempt"], int(st.st_mtime), "next_attempt (the mtime)")
    check(e["next_attempt"] > time.time() + 120, "next attempt minutes away (the relay's backoff)")
    check(abs(e["arrival"] - time.time()) < 60, "arrival %r" % e["arrival"])
    # del: only queue ids
    for bad in ("../kotak.pid", "0123", qid + "0", "zzzzzzzzzzzzzzzz", "/etc/passwd"):
        r = queue(k, "del", bad)
        eq(r.returncode, 1, "queue del %r rc" % bad)
    check(os.path.exists(os.path.join(k.data_dir, "kotak.pid")), "pid file untouched")
    r = queue(k, "del", "0123456789abcdef")
    eq(r.returncode, 1, "queue del of an id not queued")
    r = queue(k, "del", qid)
    eq(r.returncode, 0, "queue del rc")
    check(qid in r.err and "removed" in r.err, "del logs: %r" % r.err)
    eq(queue_files(k), [], "queue after del")
    eq(queue(k, "list").out, "", "queue list after del")
    eq(json.loads(queue(k, "list", "-j").out), [], "queue list -j after del")


@test
def json_escaping():
    k = kt.Kotak(users=("alice", "admin"), start=False)
    kt.after_test(k.cleanup)
    ok(sendmail(k, ["-f", '"we\\"ird\\\\x"@example.org', "x@remote.example"], b"Subject: j\n\nx\n"))
    ok(sendmail(k, ["-f", "", "y@remote.example"], b"Subject: j\n\nx\n"))
    j = json.loads(queue(k, "list", "-j").out)
    eq(sorted(e["sender"] for e in j), ["", '"we\\"ird\\\\x"@example.org'], "senders")


@test
def flush_after_dotlock():
    k = kt.Kotak(users=("alice", "admin"))
    kt.after_test(k.cleanup)
    d = os.path.join(k.data_dir, "mail", "alice")
    os.makedirs(d, mode=0o700, exist_ok=True)
    lock = os.path.join(d, "INBOX.lock")
    with open(lock, "w") as f:
        f.write("mutt 1\n")
    ok(sendmail(k, ["alice"], b"Subject: locked\n\nx\n"))
    kt.wait_for(lambda: "status=deferred (mailbox locked)" in k.log(), 5, what="a deferral")
    q = queue_files(k)
    eq(len(q), 1, "queued")
    j = json.loads(queue(k, "list", "-j").out)
    check(j[0]["next_attempt"] > time.time(), "next attempt in the future: %r" % j[0])
    eq(j[0]["recipients"], [{"address": "alice@example.lan", "user": "alice", "remote": False}], "recipients")
    os.unlink(lock)
    time.sleep(0.2)
    eq(k.count("alice"), 0, "not delivered before the flush")
    r = queue(k, "flush")
    eq(r.returncode, 0, "flush rc: %s" % r.err)
    check(str(k.proc.pid) in r.out, "flush names the pid: %r" % r.out)
    k.wait_count("alice", 1, timeout=3)     # the retry would be 10 s away
    kt.wait_for(lambda: not queue_files(k), 3, what="the queue file removed")


@test
def stale_pid_file_not_signalled():
    k = kt.Kotak(users=("alice", "admin"))
    kt.after_test(k.cleanup)
    k.kill9()
    pidf = os.path.join(k.data_dir, "kotak.pid")
    check(os.path.exists(pidf), "pid file left by kill -9")
    # a live process of ours with that pid must not get SIGUSR1
    victim = subprocess.Popen(["sleep", "30"])
    kt.after_test(lambda: victim.kill())
    with open(pidf, "w") as f:
        f.write("%d\n" % victim.pid)
    ok(sendmail(k, ["alice"], b"Subject: stale\n\nx\n"))
    r = queue(k, "flush")
    eq(r.returncode, 1, "flush with a stale pid file")
    time.sleep(0.2)
    eq(victim.poll(), None, "the process named in the stale file is alive")
    k.start()
    k.wait_count("alice", 1)


@test
def sendmail_symlink():
    with open(kt.BIN, "rb") as f:
        if f.read(2) == b"#!":
            raise kt.Skip("the binary is a wrapper script (qemu): no argv[0] to name")
    k = kt.Kotak(users=("alice", "bob", "admin"))
    kt.after_test(k.cleanup)
    link = os.path.join(k.dir, "sendmail")
    os.symlink(kt.BIN, link)
    r = sendmail(k, ["-oi", "-t"], b"To: alice@example.lan\nSubject: via link\n\n.\nstill here\n",
                 env={"KOTAK_CONFIG": k.conf}, argv0=link)
    ok(r, "sendmail symlink")
    _, body = stored(k.wait_count("alice", 1)[0])
    eq(body, b".\nstill here\n\n", "body (-oi)")
    r = sendmail(k, ["bob"], b"Subject: x\n\nx\n", env={"KOTAK_CONFIG": os.path.join(k.dir, "nope")}, argv0=link)
    eq(r.returncode, EX_CONFIG, "rc with a missing config")
    # -bp is the queue list, -q a flush
    r = sendmail(k, ["-bp"], b"", env={"KOTAK_CONFIG": k.conf}, argv0=link)
    eq(r.returncode, 0, "sendmail -bp")
    r = sendmail(k, ["-q"], b"", env={"KOTAK_CONFIG": k.conf}, argv0=link)
    eq(r.returncode, 0, "sendmail -q (daemon running)")
    r = sendmail(k, ["-bs"], b"", env={"KOTAK_CONFIG": k.conf}, argv0=link)
    eq(r.returncode, EX_USAGE, "sendmail -bs (not supported)")


@test
def no_final_newline_and_crlf():
    k = kt.Kotak(users=("alice", "admin"))
    kt.after_test(k.cleanup)
    ok(sendmail(k, ["alice"], b"Subject: nonl\n\nfirst\nlast line"))
    ok(sendmail(k, ["alice"], b"Subject: crlf\r\nX-Status: A\r\n\r\nline1\r\nbare\rcr\r\n..x\r\n.\r\nafter\r\n"))
    ok(sendmail(k, ["alice"], b"no header at all\nsecond"))
    msgs = k.wait_count("alice", 3)
    eq(stored(msgs[0])[1], b"first\nlast line\n\n", "body without a final newline")
    f, body = stored(msgs[1])
    eq(body, b"line1\nbare\rcr\n..x\n\n", "CRLF body (a bare CR is content)")
    check(all("\r" not in x for x in f), "no CR in the headers: %r" % f)
    eq(field(f, "Subject"), ["Subject: crlf"], "Subject")
    eq(field(f, "X-Status"), [], "X-Status filtered")
    f, body = stored(msgs[2])
    eq(body, b"no header at all\nsecond\n\n", "a message without a header section")
    check(field(f, "Date") and field(f, "Message-ID"), "headers added: %r" % f)
    # every mbox message parses with Python's mailbox
    eq(len(kt.read_mbox(k.mbox_path("alice"))), 3, "mailbox module count")


@test(timeout=90)
def five_megabytes():
    k = kt.Kotak(users=("alice", "admin"))
    kt.after_test(k.cleanup)
    line = b"0123456789" * 9 + b"abcdefghi\n"     # 100 bytes
    body = b"".join(b"%07d " % i + line[8:] for i in range(52429))
    body += b"x" * 20000 + b"\n"               # a long line too
    ok(sendmail(k, ["alice"], b"Subject: big\n\n" + body))
    _, got = stored(k.wait_count("alice", 1, timeout=30)[0])
    eq(len(got), len(body) + 1, "stored body length")
    check(got[:-1] == body, "body differs")
    # over max_message_size: EX_DATAERR, nothing queued
    k2 = kt.Kotak(users=("alice", "admin"), main={"max_message_size": "100000"})
    kt.after_test(k2.cleanup)
    r = sendmail(k2, ["alice"], b"Subject: big\n\n" + body)
    eq(r.returncode, EX_DATAERR, "rc over max_message_size")
    eq(queue_files(k2), [], "queue")
    eq(k2.spool_files("tmp"), [], "spool/tmp")


@test
def spool_owned_by_option_user():
    if not kt.is_root():
        raise kt.Skip("needs root")
    try:
        pw = pwd.getpwnam("nobody")
    except KeyError:
        raise kt.Skip("no user nobody")
    k = kt.Kotak(users=("alice", "admin"), main={"user": "nobody"}, start=False)
    kt.after_test(k.cleanup)
    os.chmod(k.dir, 0o755)
    os.chown(k.users_file, pw.pw_uid, pw.pw_gid)
    ok(sendmail(k, ["alice"], b"Subject: owned\n\nx\n"))
    q = queue_files(k)
    eq(len(q), 1, "queued")
    for p in ("spool", "spool/queue", "spool/tmp", "spool/queue/" + q[0]):
        eq(os.stat(os.path.join(k.data_dir, p)).st_uid, pw.pw_uid, "owner of %s" % p)
    k.start()
    k.wait_count("alice", 1)
    ok(sendmail(k, ["alice"], b"Subject: owned 2\n\nx\n"))     # root signals the daemon run as nobody
    k.wait_count("alice", 2, timeout=5)


if __name__ == "__main__":
    raise SystemExit(kt.main())

#!/usr/bin/env python3
"""Local delivery: mbox bytes, modes, Python's mailbox and mutt read it back."""

import os
import re
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kt  # noqa: E402
from kt import test, check, eq  # noqa: E402

K = None


def setup():
    global K
    K = kt.Kotak(users=("alice", "bob", "carol", "dave", "erin", "frank", "gina", "admin"))


def expect_stored(stored, sender, message):
    """stored = From_ line, Return-Path, Received (folded), message with LF,
    one blank line.  Returns the Received field."""
    from_line, rest = kt.parse_stored(stored)
    check(kt.FROM_RE.match(from_line), "bad From_ line %r" % from_line)
    eq(from_line.split(b" ")[1], (sender or "MAILER-DAEMON").encode(), "From_ line sender")
    rp = b"Return-Path: <%s>\n" % sender.encode()
    check(rest.startswith(rp), "no %r after the From_ line: %r" % (rp, rest[:120]))
    rest = rest[len(rp):]
    check(rest.startswith(b"Received: "), "no Received: after Return-Path: %r" % rest[:120])
    m = re.match(rb"Received: [^\n]*\n([ \t][^\n]*\n)*", rest)
    received = m.group(0)
    eq(rest[len(received):], kt.crlf_to_lf(message) + b"\n", "stored message after Received:")
    return received


@test
def mbox_byte_exact_and_0600():
    m = kt.msg("exact", to="alice@example.lan",
               body=b"line 1\r\n\r\nline 3 with trailing space \r\n\ttab line\r\n")
    r = K.send(["alice@example.lan"], m, sender="s1@example.org")
    eq(r.code, 250, "final dot")
    K.wait_count("alice", 1)
    data = K.mbox_bytes("alice")
    eq(len(kt.mbox_split(data)), 1, "messages")
    expect_stored(data, "s1@example.org", m)
    eq(oct(kt.file_mode(K.mbox_path("alice"))), oct(0o600), "INBOX mode")
    mode = kt.file_mode(os.path.dirname(K.mbox_path("alice")))
    check(mode & 0o077 == 0, "mail/alice/ is group/world accessible: %o" % mode)
    eq(K.spool_files("queue"), [], "spool/queue after delivery")
    eq(K.spool_files("tmp"), [], "spool/tmp after delivery")


@test
def second_message_appended():
    m1 = kt.msg("first", to="bob@example.lan", body=b"one\r\n")
    m2 = kt.msg("second", to="bob@example.lan", body=b"two\r\n\r\n")
    eq(K.send(["bob@example.lan"], m1, sender="a@example.org").code, 250, "first")
    K.wait_count("bob", 1)
    before = K.mbox_bytes("bob")
    eq(K.send(["bob@example.lan"], m2, sender="b@example.org").code, 250, "second")
    K.wait_count("bob", 2, settle=0.2)
    after = K.mbox_bytes("bob")
    check(after.startswith(before), "first message changed by the second delivery")
    expect_stored(after[len(before):], "b@example.org", m2)
    # Python's mailbox module sees the same two messages
    msgs = kt.read_mbox(K.mbox_path("bob"))
    eq(len(msgs), 2, "messages via mailbox.mbox")
    eq([x["Subject"] for x in msgs], ["first", "second"], "subjects via mailbox.mbox")
    eq(msgs[0].get_payload(), "one\n", "payload 1")
    eq(msgs[1].get_payload(), "two\n\n", "payload 2")
    check(msgs[0].get_from().startswith("a@example.org "), "From_ 1: %r" % msgs[0].get_from())
    check(msgs[1].get_from().startswith("b@example.org "), "From_ 2: %r" % msgs[1].get_from())
    eq(msgs[1]["Return-Path"], "<b@example.org>", "Return-Path via mailbox.mbox")


@test
def null_sender_mailer_daemon():
    m = kt.msg("bounce", to="carol@example.lan")
    eq(K.send(["carol@example.lan"], m, sender="").code, 250, "final dot")
    stored = K.wait_count("carol", 1)[-1]
    check(stored.startswith(b"From MAILER-DAEMON "), "From_ line for <>: %r" % stored[:60])
    expect_stored(stored, "", m)


@test
def headers_only_message():
    m = b"Subject: headers only\r\nFrom: <x@example.org>\r\n"
    eq(K.send(["dave@example.lan"], m).code, 250, "final dot")
    stored = K.wait_count("dave", 1)[-1]
    check(stored.endswith(b"Subject: headers only\nFrom: <x@example.org>\n\n"),
          "headers-only message stored as %r" % stored[-120:])


@test
def multi_recipient_each_mbox():
    m = kt.msg("to-three", to="erin@example.lan")
    eq(K.send(["erin@example.lan", "frank@example.lan", "gina@example.lan"], m,
              sender="m@example.org").code, 250, "final dot")
    for u in ("erin", "frank", "gina"):
        stored = K.wait_count(u, 1, settle=0.1)[-1]
        expect_stored(stored, "m@example.org", m)


@test(timeout=60)
def concurrent_sessions_no_interleaving():
    # 5 sessions x 6 messages each, at once, into one mbox
    n0 = K.count("dave")
    errors = []

    def worker(w):
        try:
            c = K.session(timeout=15)
            for i in range(6):
                c.ok("MAIL FROM:<w%d@example.org>" % w, 250)
                c.ok("RCPT TO:<dave@example.lan>", 250)
                c.ok("DATA", 354)
                body = ("worker %d message %d\r\n" % (w, i)) * 50
                c.send(kt.msg("c-%d-%d" % (w, i), to="dave@example.lan", body=body) + b".\r\n")
                r = c.reply(timeout=15)
                if r.code != 250:
                    errors.append(r.text)
            c.ok("QUIT", 221)
            c.close()
        except Exception as e:
            errors.append(repr(e))

    ts = [threading.Thread(target=worker, args=(w,)) for w in range(5)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(40)
    eq(errors, [], "errors in concurrent sessions")
    K.wait_count("dave", n0 + 30, timeout=15, settle=0.3)
    msgs = kt.read_mbox(K.mbox_path("dave"))[n0:]
    subs = sorted(m["Subject"] for m in msgs)
    eq(subs, sorted("c-%d-%d" % (w, i) for w in range(5) for i in range(6)), "subjects")
    for m in msgs:
        w, i = m["Subject"].split("-")[1:]
        eq(m.get_payload(), ("worker %s message %s\n" % (w, i)) * 50, "payload of %s" % m["Subject"])


@test
def log_lines_per_message():
    # issue 2: one log line per message with queue id, from, to, size, status
    m = kt.msg("logged", to="carol@example.lan")
    r = K.send(["carol@example.lan"], m, sender="logme@example.org")
    eq(r.code, 250, "final dot")
    K.wait_count("carol", K.count("carol"))
    ids = kt.queue_id_from(r.text)
    def lines():
        return [ln for ln in K.log().splitlines() if any(i in ln for i in ids)]
    kt.wait_for(lambda: any("delivered" in ln for ln in lines()), 3, 0.1, "a delivered log line")
    ls = lines()
    check(any("logme@example.org" in ln and re.search(r"size=\d+", ln) for ln in ls),
          "no log line with queue id, sender and size: %r" % ls)
    check(any("carol" in ln and "delivered" in ln for ln in ls),
          "no log line with queue id, recipient and status: %r" % ls)


@test
def symlinked_inbox_not_followed():
    # RELIABILITY: open with O_NOFOLLOW; a symlink INBOX must not be written through
    target = os.path.join(K.dir, "victim")
    with open(target, "wb") as f:
        f.write(b"precious\n")
    d = os.path.join(K.data_dir, "mail", "admin")
    os.makedirs(d, mode=0o700, exist_ok=True)
    os.symlink(target, os.path.join(d, "INBOX"))
    r = K.send(["admin@example.lan"], kt.msg("via-symlink", to="admin@example.lan"))
    check(r.code == 250 or 400 <= r.code < 600, "reply %r" % r.text)
    time.sleep(1.0)
    with open(target, "rb") as f:
        eq(f.read(), b"precious\n", "symlink target after delivery to a symlinked INBOX")
    check(os.path.islink(os.path.join(d, "INBOX")), "INBOX symlink was replaced")
    check(K.running(), "kotak died")


@test
def hardlinked_inbox_not_written():
    # nlink must be 1: a hard link to another file must not get mail
    k = kt.Kotak(users=("alice",))
    try:
        target = os.path.join(k.dir, "other")
        with open(target, "wb") as f:
            f.write(b"")
        os.chmod(target, 0o600)
        d = os.path.join(k.data_dir, "mail", "alice")
        os.makedirs(d, mode=0o700, exist_ok=True)
        os.link(target, os.path.join(d, "INBOX"))
        r = k.send(["alice@example.lan"], kt.msg("via-hardlink"))
        check(r.code == 250 or 400 <= r.code < 600, "reply %r" % r.text)
        time.sleep(1.0)
        eq(os.path.getsize(target), 0, "size of a file hard-linked as INBOX")
    finally:
        k.cleanup()


@test
def world_writable_maildir_refused():
    # RELIABILITY: refuse world-writable mail dirs (another local user could
    # swap INBOX or plant locks); the message must stay queued, not be lost
    k = kt.Kotak(users=("alice",))
    try:
        d = os.path.join(k.data_dir, "mail", "alice")
        os.makedirs(d)
        os.chmod(d, 0o777)
        eq(k.send(["alice@example.lan"], kt.msg("world-writable")).code, 250, "final dot")
        time.sleep(1.0)
        mode = kt.file_mode(d)
        if mode & 0o002:
            eq(k.count("alice"), 0, "messages delivered into a world-writable mail/alice/ "
               "(mode %o)" % mode)
            eq(len(k.spool_files("queue")), 1, "message kept queued")
    finally:
        k.cleanup()


@test
def appends_after_other_writer():
    # another MDA (procmail-style) appended a message; ours goes after it
    k = kt.Kotak(users=("alice",))
    try:
        d = os.path.join(k.data_dir, "mail", "alice")
        os.makedirs(d, mode=0o700, exist_ok=True)
        foreign = (b"From other@example.org Wed Nov 26 10:00:00 2026\n"
                   b"Subject: foreign\n\nforeign body\n\n")
        p = k.mbox_path("alice")
        with open(p, "wb") as f:
            f.write(foreign)
        os.chmod(p, 0o600)
        m = kt.msg("ours")
        eq(k.send(["alice@example.lan"], m, sender="o@example.org").code, 250, "final dot")
        k.wait_count("alice", 2)
        data = k.mbox_bytes("alice")
        check(data.startswith(foreign), "foreign message changed")
        expect_stored(data[len(foreign):], "o@example.org", m)
    finally:
        k.cleanup()


@test
def mutt_reads_mbox():
    if not (kt.tool("mutt") and kt.tool("tmux")):
        raise kt.Skip("mutt or tmux not installed")
    k = kt.Kotak(users=("alice",))
    sock = "kt%d" % os.getpid()
    home = os.path.join(k.dir, "home")
    os.makedirs(home)
    try:
        eq(k.send(["alice@example.lan"], kt.msg("Mutt sees this one",
                                                body=b"first body line\r\n")).code, 250, "1")
        eq(k.send(["alice@example.lan"], kt.msg("And the second",
                                                body=b"From here on\r\nsecond body\r\n")).code, 250, "2")
        k.wait_count("alice", 2)
        env = dict(os.environ, HOME=home, TERM="xterm", LANG="C.UTF-8")
        cmd = "mutt -n -F /dev/null -R -e 'set folder=%s' -f %s" % (home, k.mbox_path("alice"))
        subprocess.run(["tmux", "-L", sock, "new-session", "-d", "-x", "150", "-y", "30", cmd],
                       env=env, check=True, timeout=10)

        def screen():
            return subprocess.run(["tmux", "-L", sock, "capture-pane", "-p", "-t", "0"],
                                  stdout=subprocess.PIPE, env=env, timeout=5).stdout.decode()
        s = kt.wait_for(lambda: (lambda x: x if "Msgs:2" in x else None)(screen()), 8, 0.2,
                        "mutt showing Msgs:2")
        check("Mutt sees this one" in s and "And the second" in s, "mutt index: %r" % s)
        # open the second message: its body, with the From line unquoted or not
        subprocess.run(["tmux", "-L", sock, "send-keys", "-t", "0", "j", "Enter"], env=env, timeout=5)
        s = kt.wait_for(lambda: (lambda x: x if "second body" in x else None)(screen()), 8, 0.2,
                        "mutt pager showing the second message")
        check("From here on" in s, "mutt pager lacks the From line: %r" % s)
    finally:
        subprocess.run(["tmux", "-L", sock, "kill-server"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=5)
        k.cleanup()


if __name__ == "__main__":
    sys.exit(kt.main(setup))

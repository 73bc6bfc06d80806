#!/usr/bin/env python3
"""Real IMAP clients against kotak on loopback: mbsync (isync) both ways,
OfflineIMAP, mutt in tmux (read, flag, delete into Trash, save to Sent),
curl imap:// and imaps://, fetchmail over IMAP.  mbsync and OfflineIMAP
must not fall back to their tracking headers: with UIDPLUS they learn the
UIDs of what they upload from APPENDUID (mbsync never searches for its
X-TUID header, OfflineIMAP adds no X-OfflineIMAP header).
Skips a client that is not installed, and all of it when kotak is built
without IMAP."""

import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kt  # noqa: E402
from kt import test, check, eq  # noqa: E402
from imaputil import Imap, with_mail  # noqa: E402

PW = kt.DEFAULT_PASSWORD


def need(*tools):
    for t in tools:
        if not kt.tool(t):
            raise kt.Skip("%s not installed" % t)


def server(n=3, **kw):
    kw.setdefault("protos", ("smtp", "imap", "imaps"))
    return with_mail("alice", [kt.msg(subject="m%d" % i, body="body of m%d\r\n" % i) for i in range(n)], **kw)


def folder(k, name, items="(UID FLAGS BODY.PEEK[])"):
    """{uid: (flags, message bytes)} of a folder, read over IMAP."""
    c = Imap(k)
    c.ok("EXAMINE %s" % name)
    r = c.ok("UID FETCH 1:* %s" % items)
    c.ok("LOGOUT")
    out = {}
    for m in re.finditer(rb"\* \d+ FETCH \(UID (\d+) FLAGS \(([^)]*)\) BODY\[\] \{(\d+)\}\r\n", r):
        out[int(m.group(1))] = (set(m.group(2).split()), r[m.end():m.end() + int(m.group(3))])
    return out


def run(cmd, home, timeout=60):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                       env=dict(os.environ, HOME=home))
    check(r.returncode == 0, "%s: exit %d: %s" % (cmd[0], r.returncode, r.stdout.decode(errors="replace")[-1500:]))
    return r.stdout.decode(errors="replace")


def maildir_msgs(d):
    out = {}
    for sub in ("new", "cur"):
        for f in os.listdir(os.path.join(d, sub)):
            with open(os.path.join(d, sub, f), "rb") as fh:
                out[f] = fh.read()
    return out


@test(timeout=120)
def mbsync_both_ways():
    need("mbsync")
    k = server()
    home = os.path.join(k.dir, "home")
    md = os.path.join(home, "Mail")
    os.makedirs(md)
    rc = os.path.join(home, "mbsyncrc")
    with open(rc, "w") as f:
        f.write("IMAPAccount kotak\nHost 127.0.0.1\nPort %d\nUser alice\nPass %s\nSSLType None\n"
                "AuthMechs LOGIN\n\nIMAPStore remote\nAccount kotak\n\nMaildirStore local\nPath %s/\n"
                "Inbox %s/INBOX\nSubFolders Verbatim\n\nChannel ch\nFar :remote:\nNear :local:\n"
                "Patterns *\nCreate Both\nExpunge Both\nSyncState *\n" % (k.addr_of("imap")[1], PW, md, md))
    run(["mbsync", "-c", rc, "-a"], home)
    got = maildir_msgs(os.path.join(md, "INBOX"))
    eq(sorted(re.search(rb"Subject: (\S+)", b).group(1) for b in got.values()), [b"m0", b"m1", b"m2"], "pulled")
    for f in ("Sent", "Drafts", "Trash", "Junk", "Archive"):
        check(os.path.isdir(os.path.join(md, f, "cur")), "folder %s synced" % f)
    # near side: a new message, a flag, a deletion; far side: new mail and a flag
    inbox = os.path.join(md, "INBOX")
    with open(os.path.join(inbox, "new", "1.local.vm"), "wb") as f:
        f.write(kt.msg(subject="written-locally").replace(b"\r\n", b"\n"))
    names = sorted(os.listdir(os.path.join(inbox, "new")))
    m0 = [n for n in names if b"Subject: m0" in open(os.path.join(inbox, "new", n), "rb").read()][0]
    m1 = [n for n in names if b"Subject: m1" in open(os.path.join(inbox, "new", n), "rb").read()][0]
    os.rename(os.path.join(inbox, "new", m0), os.path.join(inbox, "cur", m0.split(":")[0] + ":2,FS"))
    os.unlink(os.path.join(inbox, "new", m1))
    k.send(["alice@" + kt.DOMAIN], kt.msg(subject="delivered-meanwhile"))
    c = Imap(k)
    c.ok("SELECT INBOX")
    c.ok("STORE 3 +FLAGS (\\Answered)")
    c.ok("LOGOUT")
    out = run(["mbsync", "-Dn", "-c", rc, "-a"], home)
    check("APPEND" in out and "APPENDUID" in out, "mbsync uploaded: %s" % out[-1500:])
    # with APPENDUID it never looks its uploads up by their X-TUID header
    # (which it writes into every message it uploads, whatever the server)
    check("HEADER.FIELDS (X-TUID)" not in out, "mbsync fell back to finding X-TUID: %s" % out[-2000:])
    far = folder(k, "INBOX")
    subj = {re.search(rb"Subject: (\S+)", m).group(1): (fl, m) for fl, m in far.values()}
    eq(sorted(subj), [b"delivered-meanwhile", b"m0", b"m2", b"written-locally"], "far side after the push")
    check({b"\\Flagged", b"\\Seen"} <= subj[b"m0"][0], "flags pushed: %r" % subj[b"m0"][0])
    near = maildir_msgs(inbox)
    check(any(b"delivered-meanwhile" in b for b in near.values()), "new mail pulled")
    check(any(n.endswith(",RS") or ":2,R" in n for n in near if b"Subject: m2" in near[n]), "\\Answered pulled: %r" % near.keys())
    # the state file holds kotak's UIDs for the uploaded message: a third run changes nothing
    out = run(["mbsync", "-V", "-c", rc, "-a"], home)
    check("X-TUID" not in out and "TUID" not in out, out[-800:])
    eq(len(folder(k, "INBOX")), 4, "a sync with nothing new")


@test(timeout=120)
def offlineimap_both_ways():
    need("offlineimap")
    k = server()
    home = os.path.join(k.dir, "home")
    md = os.path.join(home, "OMail")
    os.makedirs(md)
    rc = os.path.join(home, "offlineimaprc")
    with open(rc, "w") as f:
        f.write("[general]\naccounts = k\nmetadata = %s/.offlineimap\n\n[Account k]\nlocalrepository = L\n"
                "remoterepository = R\n\n[Repository L]\ntype = Maildir\nlocalfolders = %s\n\n"
                "[Repository R]\ntype = IMAP\nremotehost = 127.0.0.1\nremoteport = %d\nremoteuser = alice\n"
                "remotepass = %s\nssl = no\nstarttls = no\n" % (home, md, k.addr_of("imap")[1], PW))
    run(["offlineimap", "-c", rc, "-o", "-u", "quiet"], home, timeout=90)
    check(len(maildir_msgs(os.path.join(md, "INBOX"))) == 3, "pulled 3")
    with open(os.path.join(md, "INBOX", "new", "1.off.vm"), "wb") as f:
        f.write(kt.msg(subject="offline-written").replace(b"\r\n", b"\n"))
    run(["offlineimap", "-c", rc, "-o", "-u", "quiet"], home, timeout=90)
    far = folder(k, "INBOX")
    up = [m for fl, m in far.values() if b"offline-written" in m]
    check(len(up) == 1, "uploaded once: %d" % len(up))
    check(b"X-OfflineIMAP" not in up[0], "OfflineIMAP fell back to its header: %r" % up[0][:400])
    local = maildir_msgs(os.path.join(md, "INBOX"))
    check(len(local) == 4 and not any(b"X-OfflineIMAP" in b for b in local.values()), "local copy untouched")
    run(["offlineimap", "-c", rc, "-o", "-u", "quiet"], home, timeout=90)
    eq(len(folder(k, "INBOX")), 4, "a sync with nothing new")


@test(timeout=60)
def curl_imap_and_imaps():
    need("curl")
    k = server()
    base = "imap://127.0.0.1:%d/" % k.addr_of("imap")[1]
    sbase = "imaps://127.0.0.1:%d/" % k.addr_of("imaps")[1]

    def curl(*a):
        r = subprocess.run(["curl", "-sS", "--user", "alice:%s" % PW] + list(a), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        check(r.returncode == 0, "curl %s: %s" % (a, r.stderr.decode()))
        return r.stdout
    m = curl(base + "INBOX;UID=2")
    check(b"Subject: m1" in m and m.endswith(b"body of m1\r\n"), m)
    check(b'* LIST (\\HasNoChildren \\Sent) "/" "Sent"' in curl(base), "LIST")
    m = curl("-k", sbase + "INBOX;UID=3;SECTION=TEXT")
    eq(m, b"body of m2\r\n", "imaps, a section")
    check(b"SEARCH 1 2 3" in curl(base + "INBOX?ALL"), "SEARCH")
    path = os.path.join(k.dir, "up.eml")
    with open(path, "wb") as f:
        f.write(kt.msg(subject="curl-upload"))
    curl("-T", path, base + "Sent")
    eq([m for fl, m in folder(k, "Sent").values()], [open(path, "rb").read()], "APPEND by curl")


@test(timeout=60)
def fetchmail_over_imap():
    need("fetchmail")
    k = server()
    out = os.path.join(k.dir, "fetched")
    rc = os.path.join(k.dir, "fetchmailrc")
    with open(rc, "w") as f:
        f.write('set no syslog\npoll 127.0.0.1 protocol IMAP port %d\n  user "alice" password "%s"\n'
                '  sslproto "" no sslcertck\n  mda "cat >> %s"\n' % (k.addr_of("imap")[1], PW, out))
    os.chmod(rc, 0o600)
    r = subprocess.run(["fetchmail", "-f", rc, "-N", "--pidfile", os.path.join(k.dir, "fm.pid")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30,
                       env=dict(os.environ, HOME=k.dir, FETCHMAILHOME=k.dir))
    check(r.returncode == 0, r.stdout.decode(errors="replace")[-1500:])
    data = open(out, "rb").read()
    for i in range(3):
        check(b"Subject: m%d" % i in data and b"body of m%d" % i in data, "message %d fetched" % i)
    eq(folder(k, "INBOX"), {}, "fetched messages deleted (no keep)")


@test(timeout=120)
def mutt_read_flag_delete_to_trash_save_to_sent():
    need("mutt", "tmux")
    k = server(protos=("smtp", "imap"))
    sock = "kti%d" % os.getpid()
    home = os.path.join(k.dir, "mhome")
    os.makedirs(home)
    rc = os.path.join(home, "muttrc")
    editor = os.path.join(home, "editor.sh")
    with open(editor, "w") as f:
        f.write("#!/bin/sh\nprintf 'hello from mutt\\n' >> \"$1\"\n")
    os.chmod(editor, 0o755)
    with open(rc, "w") as f:
        f.write("set folder=imap://alice@127.0.0.1:%d/\nset spoolfile=+INBOX\nset imap_pass='%s'\n"
                "set ssl_starttls=no\nset ssl_force_tls=no\nset record=+Sent\nset trash=+Trash\n"
                "set smtp_url=smtp://127.0.0.1:%d/\nset from=alice@%s\nset realname=Alice\n"
                "set delete=yes\nset confirmappend=no\nset mark_old=no\nset editor=%s\n"
                "set edit_headers=no\nset fast_reply=yes\nset sort=date-sent\nset imap_check_subscribed=no\n"
                "set mail_check=1\nset timeout=1\n" % (k.addr_of("imap")[1], PW, k.addr_of("smtp")[1],
                                                        kt.DOMAIN, editor))
    env = dict(os.environ, HOME=home, TERM="xterm", LANG="C.UTF-8")

    def screen():
        return subprocess.run(["tmux", "-L", sock, "capture-pane", "-p", "-t", "0"],
                              stdout=subprocess.PIPE, env=env, timeout=5).stdout.decode()

    def keys(*a):
        subprocess.run(["tmux", "-L", sock, "send-keys", "-t", "0"] + list(a), env=env, timeout=5,
                       stderr=subprocess.DEVNULL)
        time.sleep(0.3)

    def wait(text, what):
        return kt.wait_for(lambda: (lambda x: x if text in x else None)(screen()), 20, 0.2, what)
    try:
        subprocess.run(["tmux", "-L", sock, "new-session", "-d", "-x", "160", "-y", "30",
                        "mutt -n -F %s" % rc], env=env, check=True, timeout=10)
        wait("m2", "mutt's index over IMAP")
        keys("Enter")                      # read m0
        wait("body of m0", "the pager")
        keys("q")
        keys("j", "F")                     # flag m1
        keys("j", "d")                     # delete m2
        keys("$")                          # sync: m2 to Trash, expunged
        kt.wait_for(lambda: len(folder(k, "INBOX")) == 2, 20, 0.3, "m2 expunged from INBOX")
        keys("m")                          # compose and send: a copy into Sent
        wait("To:", "the To: prompt")
        keys("bob@%s" % kt.DOMAIN, "Enter")
        wait("Subject:", "the Subject: prompt")
        keys("from-mutt", "Enter")
        wait("y:Send", "the compose menu")
        keys("y")
        kt.wait_for(lambda: len(folder(k, "Sent")) == 1, 20, 0.3, "the copy in Sent")
        keys("q")
    finally:
        subprocess.run(["tmux", "-L", sock, "kill-server"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=5)
    inbox = {re.search(rb"Subject: (\S+)", m).group(1): fl for fl, m in folder(k, "INBOX").values()}
    check(b"\\Seen" in inbox[b"m0"], "read: %r" % inbox)
    check(b"\\Flagged" in inbox[b"m1"], "flagged: %r" % inbox)
    trash = [m for fl, m in folder(k, "Trash").values()]
    check(len(trash) == 1 and b"Subject: m2" in trash[0], "deleted into Trash: %r" % trash)
    sent = [m for fl, m in folder(k, "Sent").values()]
    check(b"Subject: from-mutt" in sent[0] and b"hello from mutt" in sent[0], sent)
    kt.wait_for(lambda: k.count("bob") == 1, 10, 0.2, "the message delivered to bob")


if __name__ == "__main__":
    sys.exit(kt.main())

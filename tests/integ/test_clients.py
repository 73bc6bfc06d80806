#!/usr/bin/env python3
"""Real clients: Python's smtplib, swaks, curl."""

import os
import smtplib
import subprocess
import sys
from email.message import EmailMessage

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kt  # noqa: E402
from kt import test, check, eq  # noqa: E402

K = None
MAX_SIZE = 200000


def setup():
    global K
    K = kt.Kotak(users=("alice", "bob", "carol", "dave", "admin"),
                 main={"max_message_size": MAX_SIZE})


def smtp():
    s = smtplib.SMTP(kt.LOOPBACK, K.port, local_hostname="client.example.org", timeout=10)
    return s


def tail_equals(user, n, raw):
    stored = K.wait_count(user, n)[-1]
    check(stored.endswith(kt.crlf_to_lf(raw) + b"\n"),
          "stored message differs: tail %r, want %r" % (stored[-200:], kt.crlf_to_lf(raw)[-200:]))
    return stored


# ---------------------------------------------------------------- smtplib

@test
def smtplib_sendmail():
    n = K.count("alice")
    raw = kt.msg("smtplib plain", body=b"hello\r\n.leading dot\r\n..two dots\r\n")
    with smtp() as s:
        code, _ = s.ehlo()
        eq(code, 250, "EHLO")
        check(s.has_extn("pipelining") and s.has_extn("size") and s.has_extn("8bitmime"),
              "extensions seen by smtplib: %r" % s.esmtp_features)
        refused = s.sendmail("sender@example.org", ["alice@example.lan"], raw)
        eq(refused, {}, "refused recipients")
    tail_equals("alice", n + 1, raw)


@test
def smtplib_send_message_8bit():
    n = K.count("bob")
    m = EmailMessage()
    m["From"] = "Jörg <joerg@example.org>"
    m["To"] = "bob@example.lan"
    m["Subject"] = "8bit via send_message"
    m.set_content("Grüße aus Jakarta — kotak masuk ✓\n", cte="8bit")
    with smtp() as s:
        s.send_message(m, mail_options=["BODY=8BITMIME"])
    stored = K.wait_count("bob", n + 1)[-1]
    check("Grüße aus Jakarta — kotak masuk ✓".encode() in stored,
          "8-bit body not stored as sent: %r" % stored[-200:])
    got = kt.read_mbox(K.mbox_path("bob"))[-1]
    eq(got.get_payload(decode=True).decode("utf-8"), "Grüße aus Jakarta — kotak masuk ✓\n",
       "decoded payload via mailbox.mbox")


@test
def smtplib_smtputf8_address():
    n = K.count("alice")
    m = EmailMessage()
    m["From"] = "jörg@example.org"
    m["To"] = "alice@example.lan"
    m["Subject"] = "utf8 address"
    m.set_content("hi\n")
    with smtp() as s:
        s.ehlo()
        if not s.has_extn("smtputf8"):
            raise kt.Skip("SMTPUTF8 not advertised")
        eq(s.send_message(m), {}, "refused")
    stored = K.wait_count("alice", n + 1)[-1]
    check(stored.startswith("From jörg@example.org ".encode()), "From_ line %r" % stored[:60])
    check("Return-Path: <jörg@example.org>".encode() in stored, "Return-Path")


@test
def smtplib_partial_refusal():
    n = K.count("carol")
    raw = kt.msg("partial", to="carol@example.lan")
    with smtp() as s:
        refused = s.sendmail("sender@example.org", ["carol@example.lan", "nobody@example.lan",
                                                    "x@other.org"], raw)
    eq(sorted(refused), ["nobody@example.lan", "x@other.org"], "refused recipients")
    eq(refused["nobody@example.lan"][0], 550, "code for the unknown user")
    eq(refused["x@other.org"][0], 554, "code for the foreign domain")
    tail_equals("carol", n + 1, raw)


@test
def smtplib_all_refused():
    with smtp() as s:
        try:
            s.sendmail("sender@example.org", ["nobody@example.lan"], b"Subject: x\r\n\r\nx\r\n")
            raise AssertionError("no SMTPRecipientsRefused")
        except smtplib.SMTPRecipientsRefused as e:
            eq(e.recipients["nobody@example.lan"][0], 550, "code")


@test
def smtplib_size_refused():
    # smtplib sends SIZE= when the server advertises SIZE
    raw = kt.msg("too big", body=b"a" * (MAX_SIZE + 1000))
    with smtp() as s:
        try:
            s.sendmail("sender@example.org", ["alice@example.lan"], raw)
            raise AssertionError("oversize message accepted")
        except smtplib.SMTPSenderRefused as e:
            eq(e.smtp_code, 552, "code")


@test
def smtplib_many_messages_one_connection():
    n = K.count("dave")
    with smtp() as s:
        for i in range(20):
            s.sendmail("s%d@example.org" % i, ["dave@example.lan"],
                       kt.msg("batch %02d" % i, to="dave@example.lan"))
    K.wait_count("dave", n + 20, settle=0.3)
    subs = [m["Subject"] for m in kt.read_mbox(K.mbox_path("dave"))[n:]]
    eq(sorted(subs), ["batch %02d" % i for i in range(20)], "subjects")


# ---------------------------------------------------------------- swaks

def swaks(*args):
    if not kt.tool("swaks"):
        raise kt.Skip("swaks not installed")
    return subprocess.run(["swaks", "--server", "%s:%d" % (kt.LOOPBACK, K.port),
                           "--helo", "swaks.example.org", "--timeout", "10"] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)


@test
def swaks_send():
    n = K.count("alice")
    r = swaks("--to", "alice@example.lan", "--from", "you@example.org",
              "--header", "Subject: swaks test", "--body", "hello from swaks")
    eq(r.returncode, 0, "swaks exit status (%s)" % r.stdout.decode()[-300:])
    stored = K.wait_count("alice", n + 1)[-1]
    check(b"Subject: swaks test" in stored and b"hello from swaks" in stored,
          "swaks message: %r" % stored[-300:])
    check(stored.startswith(b"From you@example.org "), "From_ line %r" % stored[:60])


@test
def swaks_pipelining_8bit():
    n = K.count("bob")
    r = swaks("--pipeline", "--to", "bob@example.lan,alice@example.lan", "--from", "p@example.org",
              "--header", "Subject: swaks pipe", "--body", "Sampai jumpa — ✓",
              )
    eq(r.returncode, 0, "swaks --pipeline exit status (%s)" % r.stdout.decode()[-300:])
    stored = K.wait_count("bob", n + 1)[-1]
    check("Sampai jumpa — ✓".encode() in stored, "8-bit body: %r" % stored[-200:])


@test
def swaks_unknown_user_fails():
    r = swaks("--to", "nobody@example.lan", "--from", "you@example.org")
    check(r.returncode != 0, "swaks to an unknown user exited 0")
    check(b"550" in r.stdout, "no 550 in swaks transcript: %r" % r.stdout.decode()[-300:])


# ---------------------------------------------------------------- curl

def curl(*args):
    if not kt.tool("curl"):
        raise kt.Skip("curl not installed")
    return subprocess.run(["curl", "-sS", "--max-time", "15",
                           "smtp://%s:%d/client.example.org" % (kt.LOOPBACK, K.port)] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)


@test
def curl_upload():
    n_a, n_c = K.count("alice"), K.count("carol")
    raw = kt.msg("curl upload", body=b"first\r\n.dot line\r\n\r\nlast\r\n")
    path = os.path.join(K.dir, "curl.eml")
    with open(path, "wb") as f:
        f.write(raw)
    r = curl("--mail-from", "curl@example.org", "--mail-rcpt", "alice@example.lan",
             "--mail-rcpt", "carol@example.lan", "--upload-file", path)
    eq(r.returncode, 0, "curl exit status (%s)" % r.stdout.decode()[-300:])
    tail_equals("alice", n_a + 1, raw)
    tail_equals("carol", n_c + 1, raw)


@test
def curl_unknown_user_fails():
    path = os.path.join(K.dir, "curl2.eml")
    with open(path, "wb") as f:
        f.write(kt.msg("curl fail"))
    r = curl("--mail-from", "curl@example.org", "--mail-rcpt", "nobody@example.lan",
             "--upload-file", path)
    check(r.returncode != 0, "curl to an unknown user exited 0")


if __name__ == "__main__":
    sys.exit(kt.main(setup))

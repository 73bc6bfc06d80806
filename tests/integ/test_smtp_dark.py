#!/usr/bin/env python3
"""Dark corners over raw sockets: pipelining, smuggling, dot-stuffing, mboxrd,
long lines, huge DATA, slow clients, session caps, timeouts, header rules."""

import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kt  # noqa: E402
from kt import test, check, eq  # noqa: E402

K = None
MAX_SIZE = 20 * 1024 * 1024


def setup():
    global K
    K = kt.Kotak(users=("alice", "bob", "carol", "dave", "admin"),
                 main={"max_message_size": MAX_SIZE})


def transact(c, rcpt, raw_data, sender="sender@example.org"):
    """MAIL/RCPT/DATA on an open session; raw_data is sent as is (already
    stuffed, including the final dot).  Returns the reply to the final dot."""
    c.ok("MAIL FROM:<%s>" % sender, 250)
    c.ok("RCPT TO:<%s>" % rcpt, 250)
    c.ok("DATA", 354)
    c.send(raw_data)
    return c.reply(timeout=20)


def stored_body(stored):
    """Body of one stored message (after the header section), LF line ends."""
    _, rest = kt.parse_stored(stored)
    fields, body = kt.split_headers(rest)
    return body


# ---------------------------------------------------------------- pipelining

@test
def pipelining_group_replies_in_order():
    n_a, n_b = K.count("alice"), K.count("bob")
    c = K.session()     # EHLO ends a group (RFC 2920 3.1): the rest in one
    cmds = ["MAIL FROM:<p@example.org>", "RCPT TO:<alice@example.lan>",
            "RCPT TO:<nobody@example.lan>", "RCPT TO:<bob@example.lan>", "NOOP", "RSET",
            "MAIL FROM:<p2@example.org>", "RCPT TO:<alice@example.lan>", "DATA"]
    want = [250, 250, 550, 250, 250, 250, 250, 250, 354]
    c.send("".join(x + "\r\n" for x in cmds))
    got = [c.reply().code for _ in cmds]
    eq(got, want, "pipelined reply codes")
    # message, end of data and QUIT in one segment
    c.send(kt.msg("piped") + b".\r\nQUIT\r\n")
    eq([r.code for r in c.replies_until_close()], [250, 221], "replies to data+QUIT")
    msgs = K.wait_count("alice", n_a + 1, settle=0.3)
    check(b"Subject: piped" in msgs[-1], "alice did not get the piped message")
    eq(K.count("bob"), n_b, "bob's count (his RCPT was RSET away)")


@test
def pipelining_1000_noops_no_reply_lost():
    c = K.session()
    n = 1000
    c.send(b"NOOP\r\n" * n)
    codes = [c.reply(timeout=10).code for _ in range(n)]
    eq(codes.count(250), n, "250 replies to %d pipelined NOOPs" % n)
    c.ok("QUIT", 221)


@test
def pipelining_two_messages_one_segment_each():
    n = K.count("carol")
    c = K.session()
    c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<carol@example.lan>\r\nDATA\r\n")
    eq([c.reply().code for _ in range(3)], [250, 250, 354], "first group")
    c.send(kt.msg("pipe-1") + b".\r\nMAIL FROM:<b@example.org>\r\nRCPT TO:<carol@example.lan>\r\nDATA\r\n")
    eq([c.reply().code for _ in range(4)], [250, 250, 250, 354], "second group")
    c.send(kt.msg("pipe-2") + b".\r\nQUIT\r\n")
    eq([r.code for r in c.replies_until_close()], [250, 221], "last group")
    msgs = K.wait_count("carol", n + 2, settle=0.3)
    check(b"pipe-1" in msgs[-2] and b"pipe-2" in msgs[-1], "carol's piped messages")


# ---------------------------------------------------------------- smuggling

SMUGGLED = (b"MAIL FROM:<evil@example.org>\r\nRCPT TO:<bob@example.lan>\r\nDATA\r\n"
            b"Subject: SMUGGLED\r\n\r\nsmuggled body\r\n")


def smuggle(sep):
    n_a, n_b = K.count("alice"), K.count("bob")
    c = K.session()
    c.ok("MAIL FROM:<legit@example.org>", 250)
    c.ok("RCPT TO:<alice@example.lan>", 250)
    c.ok("DATA", 354)
    c.send(kt.msg("legit") + b"first part" + sep + SMUGGLED + b".\r\nQUIT\r\n")
    rs = c.replies_until_close(timeout=8)
    codes = [r.code for r in rs]
    check(len(codes) == 2 and codes[1] == 221 and codes[0] in (250, 550, 554),
          "separator %r: replies %r (want [250 or 550 5.5.2, 221]: more replies mean "
          "the smuggled commands ran)" % (sep, [r.text for r in rs]))
    time.sleep(0.5)
    eq(K.count("bob"), n_b, "bob's messages (the smuggled recipient) for %r" % sep)
    if codes[0] == 250:
        msgs = K.wait_count("alice", n_a + 1, settle=0.3)
        check(b"smuggled body" in msgs[-1] and b"Subject: legit" in msgs[-1],
              "accepted message is not stored whole as one message")
    else:
        eq(K.count("alice"), n_a, "alice's messages after a rejected message")


@test
def smuggling_lf_dot_lf():
    smuggle(b"\n.\n")


@test
def smuggling_lf_dot_crlf():
    smuggle(b"\n.\r\n")


@test
def smuggling_crlf_dot_lf():
    smuggle(b"\r\n.\n")


@test
def smuggling_cr_dot_cr():
    smuggle(b"\r.\r")


@test
def smuggling_crlf_dot_cr():
    smuggle(b"\r\n.\r")


@test
def smuggling_cr_dot_crlf():
    smuggle(b"\r.\r\n")


# ---------------------------------------------------------------- dot-stuffing, mboxrd

@test
def dot_unstuffing():
    n = K.count("dave")
    c = K.session()
    raw = kt.msg("dots", body=b"") + b"..leading\r\n..\r\n...\r\nmid.dle\r\n. space\r\n.\r\n"
    # ". space" is not stuffed by us: a lone leading dot before text is
    # removed by the receiver too (RFC 5321 4.5.2)
    eq(transact(c, "dave@example.lan", raw).code, 250, "final dot")
    c.close()
    m = K.wait_count("dave", n + 1)[-1]
    eq(stored_body(m), b".leading\n.\n..\nmid.dle\n space\n\n", "unstuffed body (+ the mbox blank line)")


@test
def mboxrd_from_quoting():
    n = K.count("dave")
    body_lines = [b"From the first body line", b"hello", b"From me", b">From you", b">>From x",
                  b"From", b" From y", b"Fromage", b"", b"From after blank"]
    body = b"\r\n".join(body_lines) + b"\r\n"
    r = K.send(["dave@example.lan"], kt.msg("fromq", to="dave@example.lan", body=body))
    eq(r.code, 250, "final dot")
    m = K.wait_count("dave", n + 1, settle=0.2)[-1]
    want = (b">From the first body line\nhello\n>From me\n>>From you\n>>>From x\nFrom\n From y\n"
            b"Fromage\n\n>From after blank\n\n")
    eq(stored_body(m), want, "mboxrd-quoted body")
    msgs = kt.read_mbox(K.mbox_path("dave"))
    eq(len(msgs), n + 1, "messages seen by Python's mailbox.mbox")
    got = kt.mboxrd_unquote(msgs[-1].get_payload(decode=False).encode())
    eq(got, kt.crlf_to_lf(body), "body after mboxrd unquoting")


# ---------------------------------------------------------------- long lines, big data

@test
def command_line_512_accepted():
    c = K.session()
    line = "NOOP " + "x" * (512 - 2 - 5)
    eq(len(line) + 2, 512, "line length")
    c.ok(line, 250)
    c.close()


@test
def command_line_too_long_500():
    for size in (600, 5000, 100000):
        c = K.session()
        c.send(b"NOOP " + b"x" * size + b"\r\n")
        try:
            r = c.reply()
            eq(r.code, 500, "reply to a %d-byte command line" % size)
        except kt.Closed:
            raise AssertionError("closed without a 500 on a %d-byte line" % size)
        # the tail of the long line must not be run as a command
        try:
            r = c.cmd("NOOP")
            eq(r.code, 250, "NOOP after the long line (%r)" % r.text)
        except kt.Closed:
            pass
        c.close()
    c = K.session()
    c.ok("NOOP", 250)
    c.close()


@test
def long_data_line():
    # RFC 5321 text lines are <= 1000 octets; a longer one must either be
    # refused (5xx after the final dot) or be stored unchanged, never split
    n = K.count("carol")
    long = b"L" * 5000
    c = K.session()
    r = transact(c, "carol@example.lan", kt.msg("longline", to="carol@example.lan",
                                                body=long + b"\r\nend\r\n") + b".\r\n")
    check(r.code in (250, 500, 552, 554), "reply to a 5000-byte line: %r" % r.text)
    c.ok("NOOP", 250)
    c.close()
    if r.code == 250:
        m = K.wait_count("carol", n + 1)[-1]
        eq(stored_body(m), long + b"\nend\n\n", "stored long line")
    else:
        time.sleep(0.3)
        eq(K.count("carol"), n, "carol's messages after a refused long line")


@test(timeout=60)
def huge_data_byte_exact():
    n = K.count("bob")
    line = bytes(range(33, 127)) + b"\r\n"     # 96 bytes
    body = line * (8 * 1024 * 1024 // len(line))   # 8 MiB
    m = kt.msg("huge", to="bob@example.lan", body=body)
    c = K.session(timeout=30)
    r = transact(c, "bob@example.lan", kt.dot_stuff(m) + b".\r\n")
    eq(r.code, 250, "reply to an 8 MiB message")
    c.close()
    stored = K.wait_count("bob", n + 1, timeout=20)[-1]
    check(stored.endswith(kt.crlf_to_lf(m) + b"\n"), "8 MiB message not stored byte-exact")


@test
def eight_bit_body_byte_exact():
    n = K.count("bob")
    body = bytes(b for b in range(1, 256) if b not in (10, 13)) + b"\r\n" + \
        "Grüße, 日本語\r\n".encode()
    m = kt.msg("8bit", to="bob@example.lan", body=body)
    c = K.session()
    c.ok("MAIL FROM:<a@example.org> BODY=8BITMIME", 250)
    c.ok("RCPT TO:<bob@example.lan>", 250)
    c.ok("DATA", 354)
    c.send(kt.dot_stuff(m) + b".\r\n")
    eq(c.reply().code, 250, "final dot")
    c.close()
    stored = K.wait_count("bob", n + 1)[-1]
    check(stored.endswith(kt.crlf_to_lf(m) + b"\n"), "8-bit body not stored byte-exact")


@test
def slow_client_byte_by_byte():
    n = K.count("carol")
    c = K.connect(timeout=10)
    m = kt.msg("slow", to="carol@example.lan", body=b"one\r\n.dot\r\ntwo\r\n")
    data = (b"EHLO slow.example.org\r\nMAIL FROM:<s@example.org>\r\nRCPT TO:<carol@example.lan>\r\n"
            b"DATA\r\n")
    for i in range(len(data)):
        c.send(data[i:i + 1])
        time.sleep(0.002)
    eq([c.reply().code for _ in range(4)], [250, 250, 250, 354], "replies to byte-wise commands")
    data = kt.dot_stuff(m) + b".\r\nQUIT\r\n"
    for i in range(len(data)):
        c.send(data[i:i + 1])
        time.sleep(0.002)
    eq([r.code for r in c.replies_until_close()], [250, 221], "replies after byte-wise DATA")
    stored = K.wait_count("carol", n + 1)[-1]
    check(stored.endswith(kt.crlf_to_lf(m) + b"\n"), "byte-wise message not stored exactly")


# ---------------------------------------------------------------- headers

@test
def header_stripping():
    n = K.count("alice")
    headers = ["Status: RO", "X-Status: AF", "X-UID: 42", "X-IMAP: 1 2", "X-IMAPbase: 1 2",
               "X-Keywords: $Forged", " folded-continuation", "Content-Length: 3",
               "status: R", "CONTENT-LENGTH: 7", "X-Status-Extra: keep me", "X-Keep: yes"]
    body = b"Status: in body stays\r\nContent-Length: 9\r\n"
    r = K.send(["alice@example.lan"], kt.msg("strip", headers=headers, body=body))
    eq(r.code, 250, "final dot")
    m = K.wait_count("alice", n + 1)[-1]
    _, rest = kt.parse_stored(m)
    fields, sbody = kt.split_headers(rest)
    names = [f.split(b":", 1)[0].lower() for f in fields]
    for bad in (b"status", b"x-status", b"x-uid", b"x-imap", b"x-imapbase", b"x-keywords",
                b"content-length"):
        check(bad not in names, "header %s not stripped: %r" % (bad.decode(), fields))
    check(b"folded-continuation" not in rest.split(b"\n\n")[0],
          "continuation of a stripped header kept")
    for keep in (b"x-status-extra", b"x-keep", b"subject", b"from", b"to", b"message-id"):
        check(keep in names, "header %s lost: %r" % (keep.decode(), fields))
    eq(sbody, kt.crlf_to_lf(body) + b"\n", "body (header-like lines in the body stay)")


@test
def header_stripping_wsp_before_colon():
    # RFC 5322 4.5 obs-optional: WSP may stand between field name and ':'.
    # Dovecot's header parser ("skip LWSP before ':'") reads "X-UID : 7" as
    # X-UID, so these must be stripped too, or a sender forges UIDs/flags.
    n = K.count("alice")
    headers = ["Status : RO", "X-UID\t: 7", "X-IMAPbase  : 1 99", "X-Keep : yes"]
    r = K.send(["alice@example.lan"], kt.msg("strip-obs", headers=headers))
    eq(r.code, 250, "final dot")
    m = K.wait_count("alice", n + 1)[-1]
    _, rest = kt.parse_stored(m)
    fields, _ = kt.split_headers(rest)
    names = [f.split(b":", 1)[0].strip().lower() for f in fields]
    for bad in (b"status", b"x-uid", b"x-imapbase"):
        check(bad not in names, "header %r (WSP before ':') not stripped: %r"
              % (bad.decode(), [f for f in fields if f.split(b":", 1)[0].strip().lower() == bad]))
    check(b"x-keep" in names, "X-Keep lost")


@test
def received_and_return_path():
    n = K.count("alice")
    c = K.session(helo="client.example.org")
    r = transact(c, "alice@example.lan", kt.msg("rcvd") + b".\r\n", sender="ret@example.org")
    eq(r.code, 250, "final dot")
    c.close()
    ids = kt.queue_id_from(r.text)
    check(ids, "no queue id in the 250 reply to the final dot: %r" % r.text)
    m = K.wait_count("alice", n + 1)[-1]
    from_line, rest = kt.parse_stored(m)
    check(kt.FROM_RE.match(from_line), "bad From_ line %r" % from_line)
    eq(from_line.split(b" ")[1], b"ret@example.org", "From_ line sender")
    fields, _ = kt.split_headers(rest)
    eq(fields[0], b"Return-Path: <ret@example.org>", "first header")
    check(fields[1].startswith(b"Received: "), "second header is not Received: %r" % fields[1])
    rcv = fields[1].decode()
    eq(sum(1 for f in fields if f.lower().startswith(b"received:")), 1, "Received: headers")
    check("client.example.org" in rcv, "Received: lacks the HELO name: %r" % rcv)
    check("127.0.0.1" in rcv, "Received: lacks the client address: %r" % rcv)
    check("by " + kt.HOSTNAME in rcv, "Received: lacks 'by %s': %r" % (kt.HOSTNAME, rcv))
    check(any(i in rcv for i in ids), "Received: lacks the queue id %s: %r" % (ids, rcv))
    check(re.search(r";\s*(\w{3}, )?\d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}", rcv),
          "Received: lacks an RFC 5322 date after ';': %r" % rcv)


@test
def queue_ids_differ():
    ids = []
    for i in range(3):
        r = K.send(["dave@example.lan"], kt.msg("qid%d" % i, to="dave@example.lan"))
        eq(r.code, 250, "final dot")
        ids.append(tuple(kt.queue_id_from(r.text)))
    check(len(set(ids)) == 3 and all(ids), "queue ids not unique: %r" % ids)


@test
def too_many_received_554_546():
    n = K.count("carol")
    hops = ["Received: from h%d.example.org by h%d.example.org; Wed, 26 Nov 2026 12:00:00 +0000"
            % (i, i + 1) for i in range(60)]
    c = K.session()
    r = transact(c, "carol@example.lan", kt.msg("loop", to="carol@example.lan", headers=hops) + b".\r\n")
    eq(r.code, 554, "reply to a message with 60 Received: headers (%r)" % r.text)
    eq(r.enh(), "5.4.6", "enhanced code")
    # 20 hops is fine
    r = transact(c, "carol@example.lan",
                 kt.msg("noloop", to="carol@example.lan", headers=hops[:20]) + b".\r\n")
    eq(r.code, 250, "reply to a message with 20 Received: headers (%r)" % r.text)
    c.close()
    msgs = K.wait_count("carol", n + 1, settle=0.3)
    check(b"Subject: noloop" in msgs[-1], "wrong message stored")


# ---------------------------------------------------------------- caps

@test
def per_ip_session_cap_421():
    k = kt.Kotak(users=("alice",), main={"max_sessions_per_ip": 3})
    held = []
    try:
        for i in range(3):
            held.append(k.connect())
        c = k.connect(greet=False)
        r = c.reply()
        eq(r.code, 421, "reply to the 4th session from 127.0.0.1 (%r)" % r.text)
        eq(r.enh(), "4.7.0", "enhanced code")
        check(c.wait_closed(3), "4th session not closed after 421")
        # another client address is unaffected
        o = k.connect(src="127.0.0.2")
        o.ok("EHLO other.example.org", 250)
        o.close()
        # a freed slot can be used again
        held.pop().close()
        def again():
            x = k.connect(greet=False)
            try:
                return x.reply().code == 220
            except kt.Closed:
                return False
            finally:
                x.close()
        kt.wait_for(again, 3, 0.2, "a session after one of 3 closed")
        for h in held:
            h.ok("NOOP", 250)
    finally:
        for h in held:
            h.close()
        k.cleanup()


@test
def total_session_cap_refuses_with_421():
    # issue 14: at the cap a new session gets 421 at once and is closed (a
    # paused listener left it waiting silently in the backlog)
    k = kt.Kotak(users=("alice",), main={"max_sessions": 4})
    held = []
    try:
        for i in range(4):
            held.append(k.connect(src="127.0.0.%d" % (i + 1)))
        c = k.connect(src="127.0.0.9", greet=False)
        r = c.reply(timeout=3)
        eq(r.code, 421, "5th session over max_sessions 4 (%r)" % r.text)
        eq(r.enh(), "4.7.0", "enhanced code")
        check(c.wait_closed(3), "5th session not closed after 421")
        held.pop(0).close()

        def again():
            x = k.connect(src="127.0.0.9", greet=False)
            try:
                return x.reply().code == 220
            except kt.Closed:
                return False
            finally:
                x.close()
        kt.wait_for(again, 3, 0.2, "a session after one of 4 closed")
    finally:
        for h in held:
            h.close()
        k.cleanup()


@test
def hundred_recipients_by_default():
    # RFC 5321 4.5.3.1.8 / issue: at least 100 recipients; then 452 4.5.3
    k = kt.Kotak(users=("alice",), aliases={"postmaster": ["alice"]})
    try:
        c = k.session(timeout=10)
        c.ok("MAIL FROM:<a@example.org>", 250)
        c.send(b"RCPT TO:<alice@example.lan>\r\n" * 105)
        codes = [c.reply().code for _ in range(105)]
        eq(codes[:100], [250] * 100, "replies to the first 100 RCPTs")
        eq(codes[100:], [452] * 5, "replies to RCPTs 101-105")
        c.ok("DATA", 354)
        c.send(kt.msg("hundred") + b".\r\n")
        eq(c.reply().code, 250, "final dot")
        c.close()
        k.wait_count("alice", 1, settle=0.5)      # one mailbox, one copy
    finally:
        k.cleanup()


@test(timeout=60)
def sixty_concurrent_clients():
    import threading
    k = kt.Kotak(users=("alice", "bob"))
    errors = []

    def worker(i):
        try:
            c = k.connect(src="127.0.0.%d" % (i % 5 + 1), timeout=15)
            c.ok("EHLO w%d.example.org" % i, 250)
            c.ok("MAIL FROM:<w%d@example.org>" % i, 250)
            c.ok("RCPT TO:<%s@example.lan>" % ("alice" if i % 2 else "bob"), 250)
            c.ok("DATA", 354)
            c.send(kt.msg("conc-%d" % i, body=b"x" * 2000 + b"\r\n") + b".\r\n")
            r = c.reply(timeout=15)
            if r.code != 250:
                errors.append(r.text)
            c.close()
        except Exception as e:
            errors.append("%d: %r" % (i, e))
    try:
        ts = [threading.Thread(target=worker, args=(i,)) for i in range(60)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
        eq(errors, [], "errors")
        k.wait_count("alice", 30, timeout=10, settle=0.3)
        k.wait_count("bob", 30, timeout=10)
        subs = sorted(m["Subject"] for u in ("alice", "bob") for m in kt.read_mbox(k.mbox_path(u)))
        eq(subs, sorted("conc-%d" % i for i in range(60)), "subjects")
    finally:
        k.cleanup()


# ---------------------------------------------------------------- timeouts

T = None


def tk():
    global T
    if T is None:
        T = kt.Kotak(users=("alice",), main={"timeout": 2, "data_timeout": 2})
    return T


@kt.at_exit
def _t_cleanup():
    if T:
        T.cleanup()


@test
def command_timeout_421():
    k = tk()
    c = k.session()
    t0 = time.monotonic()
    r = c.reply(timeout=6)
    dt = time.monotonic() - t0
    eq(r.code, 421, "reply after idling past timeout 2 (%r)" % r.text)
    # the loop's clock counts whole seconds: a timeout of 2 fires after
    # 2 to 3 s of silence, never sooner
    check(1.9 <= dt <= 5, "timed out after %.1fs with timeout 2" % dt)
    check(c.wait_closed(3), "not closed after the timeout 421")


@test
def command_timeout_not_reset_by_each_byte():
    # RFC 5321 4.5.3.2 / RELIABILITY: per command, not per byte
    k = tk()
    c = k.session()
    t0 = time.monotonic()
    closed_at = None
    for ch in (b"NOOP " + b"x" * 15):
        try:
            c.send(bytes([ch]))
        except OSError:
            closed_at = time.monotonic()
            break
        if c.wait_closed(0.4):
            closed_at = time.monotonic()
            break
    check(closed_at is not None, "a client trickling one byte per 0.4 s was never timed out")
    check(closed_at - t0 <= 5, "trickling client cut after %.1fs (timeout 2)" % (closed_at - t0))
    check(b"421" in c.buf, "no 421 before the close: %r" % c.buf)


@test
def active_session_does_not_time_out():
    k = tk()
    c = k.session()
    for i in range(5):
        time.sleep(1.0)
        c.ok("NOOP", 250)
    c.close()


@test
def data_timeout_421_nothing_stored():
    k = tk()
    n = k.count("alice")
    c = k.session()
    c.ok("MAIL FROM:<a@example.org>", 250)
    c.ok("RCPT TO:<alice@example.lan>", 250)
    c.ok("DATA", 354)
    c.send(kt.msg("data-timeout") + b"partial line without end")
    t0 = time.monotonic()
    r = c.reply(timeout=7)
    eq(r.code, 421, "reply after idling in DATA past data_timeout 2 (%r)" % r.text)
    check(time.monotonic() - t0 <= 5.5, "DATA timeout too late")
    check(c.wait_closed(3), "not closed after the DATA timeout")
    time.sleep(0.3)
    eq(k.count("alice"), n, "alice's messages after a timed-out DATA")
    eq(k.spool_files("tmp"), [], "spool/tmp after a timed-out DATA")
    eq(k.spool_files("queue"), [], "spool/queue after a timed-out DATA")


@test(timeout=40)
def client_not_reading_replies_is_dropped():
    # a client that pipelines without ever reading fills our output buffer;
    # its slot must still be freed in bounded time (timeout 2 + a grace)
    k = tk()
    c = k.session()
    c.s.setblocking(False)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 1.0:
        try:
            c.s.send(b"NOOP\r\n" * 1000)
        except BlockingIOError:
            time.sleep(0.05)
    pid = k.proc.pid
    nfd = len(os.listdir("/proc/%d/fd" % pid))
    closed = False
    while time.monotonic() - t0 < 25:
        if len(os.listdir("/proc/%d/fd" % pid)) < nfd:
            closed = True
            break
        time.sleep(0.5)
    c.close()
    check(closed, "session of a client that never reads still open after 25 s (timeout 2)")


@test
def from_line_in_header_section_quoted():
    # a "From " line at the very start of DATA must not become an mbox
    # message boundary
    n = K.count("carol")
    m = b"From evil@example.org Mon Jan  1 00:00:00 2026\r\n" + kt.msg("fromhead", to="carol@example.lan")
    eq(K.send(["carol@example.lan"], m).code, 250, "final dot")
    K.wait_count("carol", n + 1, settle=0.3)
    eq(len(kt.read_mbox(K.mbox_path("carol"))), n + 1, "messages seen by mailbox.mbox")
    check(b"\n>From evil@example.org" in K.messages("carol")[-1], "From line not quoted")


@test
def unimplemented_extensions_refused():
    feats = kt.run_kotak(["-V"]).stdout.decode().lower()
    c = K.connect()
    r = c.ok("EHLO client.example.org", 250)
    kw = [ln[4:].split()[0].upper() for ln in r.lines[1:]]
    if "+tls" not in feats:
        check("STARTTLS" not in kw, "STARTTLS advertised without TLS: %r" % kw)
        r = c.cmd("STARTTLS")
        check(r.code >= 500 or r.code == 454, "STARTTLS without TLS -> %r" % r.text)
    if "CHUNKING" not in kw:
        c.ok("BDAT 10 LAST", (500, 502, 503))
    if "AUTH" not in kw:
        # not offered (cleartext): any refusal, never 235 or a 334 challenge
        r = c.cmd("AUTH PLAIN AGFsaWNlAHNlY3JldA==")
        check(r.code >= 500, "AUTH not advertised, yet -> %r" % r.text)
    c.ok("NOOP", 250)
    c.close()


@test
def empty_and_garbage_lines():
    c = K.session()
    r = c.cmd("")
    check(r.code in (500, 501), "empty command line -> %r" % r.text)
    r = c.cmd(b"\x00\x01\xff\xfe")
    check(r.code in (500, 501), "binary garbage -> %r" % r.text)
    c.ok("NOOP", 250)
    c.close()


if __name__ == "__main__":
    sys.exit(kt.main(setup))

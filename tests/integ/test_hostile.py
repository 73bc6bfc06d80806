#!/usr/bin/env python3
"""Bad input costs nothing: hostile sessions on every listener (garbage,
endless lines, pipelined junk, DATA cut off, garbage or half TLS
handshakes; IMAP, when built in: deep nesting, overlong lines and
literals, an APPEND cut off, a FETCH and an IDLE abandoned) get protocol
errors or a close, store no mail, and do not make kotak grow: its resident
size after a warm-up round equals its size after three more rounds,
within a few pages."""

import os
import random
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kt  # noqa: E402
from kt import test, check, eq  # noqa: E402

N = 30          # iterations of the mix per round (9 sessions each)
ROUNDS = 3      # measured rounds after the warm-up
SLACK = 96 << 10


def have(proto):
    r = kt.run_kotak(["-V"])
    return b"+" + proto.encode() in r.stdout + r.stderr


def rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1]) << 10
    raise AssertionError("no VmRSS")


def sock(addr, src):
    s = socket.create_connection(addr, timeout=5, source_address=(src, 0))
    s.settimeout(5)
    return s


def drain(s, limit=1 << 20):
    """Read until the server closes (or 5 s pass); what it said."""
    got = b""
    try:
        while len(got) < limit:
            d = s.recv(65536)
            if not d:
                break
            got += d
    except (socket.timeout, ConnectionResetError):
        pass
    return got


def until(s, code):
    """Read until a reply line starting with code has come."""
    out = b""
    while not (out.startswith(code) or b"\r\n" + code in out):
        d = s.recv(4096)
        check(d, "closed before %r" % code)
        out += d
    return out


def client_hello():
    """The bytes of a real TLS ClientHello (Python's ssl through memory BIOs)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, outg = ssl.MemoryBIO(), ssl.MemoryBIO()
    o = ctx.wrap_bio(inc, outg, server_hostname=kt.HOSTNAME)
    try:
        o.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outg.read()


def mix(k, rnd, i):
    """One of each hostile session; each from its own source address so no
    per-address cap or login brake is reached."""
    src = "127.0.%d.%d" % (1 + rnd, 2 + i)
    smtp, pop3 = k.addr_of("smtp"), k.addr_of("pop3")
    junk = bytes(rnd_bytes(4096))

    # 1 binary garbage, then close
    s = sock(smtp, src)
    s.sendall(junk + b"\r\nQUIT\r\n")
    out = drain(s)
    s.close()
    check(out.startswith(b"220 "), "SMTP greeting before the garbage: %r" % out[:40])
    # 2 a 20 KB line without end, then close
    s = sock(smtp, src)
    s.sendall(b"EHLO " + b"a" * 20000)
    s.close()
    # 3 pipelined junk commands, then QUIT, without waiting for the greeting:
    # errors, or the close of a client out of sync (554 5.5.0)
    s = sock(smtp, src)
    s.sendall(b"".join(b"XYZZY %d\r\nMAIL FROM:<@@>\r\nRCPT TO:<a\x00b>\r\n" % j for j in range(30)) +
              b"QUIT\r\n")
    out = drain(s)
    s.close()
    check(b"\r\n221 " in out or b"\r\n421 " in out or b"\r\n554 5.5.0" in out,
          "pipelined junk: no 221/421/554 at the end")
    check(b"\r\n250 " not in out.split(b"\r\n", 1)[1].replace(b"250-", b""), "junk accepted")
    # 4 DATA cut off after 100 KB: nothing is stored (each group waits for
    # its replies: input out of sync would end the session before DATA)
    s = sock(smtp, src)
    until(s, b"220 ")
    s.sendall(b"EHLO x\r\n")
    until(s, b"250 ")
    s.sendall(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<alice@%s>\r\nDATA\r\n" % kt.DOMAIN.encode())
    until(s, b"354 ")
    s.sendall(b"Subject: cut\r\n\r\n" + b"x" * 100000)
    s.close()
    # 5 STARTTLS, then garbage instead of a ClientHello
    s = sock(smtp, src)
    until(s, b"220 ")
    s.sendall(b"EHLO x\r\n")
    until(s, b"250 ")
    s.sendall(b"STARTTLS\r\n")
    until(s, b"220 ")     # junk sent before it would be discarded (CVE-2011-0411)
    s.sendall(junk)
    s.close()
    # 6 smtps: half a ClientHello, then close
    s = sock(k.addr_of("smtps"), src)
    ch = client_hello()
    s.sendall(ch[:len(ch) // 2])
    s.close()
    # 7 pop3: garbage, commands out of state, an endless line
    s = sock(pop3, src)
    s.sendall(b"RETR 1\r\nDELE 1\r\nPASS x\r\nUSER\r\nSTAT\r\n" + junk[:512] + b"\r\nQUIT\r\n")
    out = drain(s)
    s.close()
    check(out.startswith(b"+OK") and b"-ERR" in out, "POP3: %r" % out[:60])
    s = sock(pop3, src)
    s.sendall(b"USER " + b"u" * 30000)
    s.close()
    # 8 pop3s: garbage as a TLS record
    s = sock(k.addr_of("pop3s"), src)
    s.sendall(b"\x16\x03\x01\xff\xff" + junk)
    s.close()
    if k.imap:
        imap_mix(k, src, junk)


def imap_mix(k, src, junk):
    """IMAP: garbage and commands out of state before login; after it,
    nesting, overlong lines and literals, an APPEND cut off in its literal,
    a FETCH and an IDLE abandoned; imaps: half a ClientHello."""
    imap = k.addr_of("imap")
    s = sock(imap, src)
    s.sendall(junk[:700].replace(b"\n", b" ") + b"\r\na SELECT INBOX\r\nb LOGIN {999999999}\r\nc ID " + b"(" * 200 +
              b"\r\nd LOGIN {%d+}\r\n" % len(junk) + junk + b"\r\ne LOGOUT\r\n")
    out = drain(s)
    s.close()
    check(out.startswith(b"* OK") and b"a BAD" in out and b"b BAD [TOOBIG]" in out and b"c BAD" in out and
          b"d BAD [TOOBIG]" in out and (b"e OK" in out or b"* BYE Too many bad commands" in out),
          "IMAP before login: %r" % out[-300:])
    s = sock(imap, src)
    s.sendall(b"l LOGIN alice %s\r\ns SELECT INBOX\r\n" % kt.DEFAULT_PASSWORD.encode())
    until(s, b"s OK")
    s.sendall(b"f1 FETCH 1 (BODY[" + b"1." * 30 + b"1])\r\nf2 SEARCH " + b"(" * 300 + b"ALL" + b")" * 300 +
              b"\r\nf3 UID FETCH " + b",".join(b"%d" % i for i in range(1, 1500)) + b" (FLAGS)\r\n"
              b"f4 NOOP " + b"x" * 20000 + b"\r\nf5 APPEND INBOX {9999999999}\r\n"
              b"f6 STORE 1 +FLAGS (\\Bogus)\r\nf7 FETCH 1 (BODY[HEADER.FIELDS (" + b"X " * 2000 + b")])\r\n"
              b"f8 NOOP\r\n")
    out = until(s, b"f8 OK")
    for t in (b"f1 BAD", b"f2 BAD", b"f3 OK", b"f4 BAD [TOOBIG]", b"f5 NO [TOOBIG]", b"f6 BAD", b"f7 BAD"):
        check(t in out, "IMAP %r: %r" % (t, out[-400:]))
    # an APPEND cut off in its literal: nothing stored, the spool file gone
    s.sendall(b"f9 APPEND INBOX {200000+}\r\n" + junk * 10)
    s.close()
    # a FETCH of everything, not read; an IDLE, then gone
    s = sock(imap, src)
    s.sendall(b"l LOGIN alice %s\r\ns SELECT INBOX\r\nf FETCH 1:* (BODY[] BODYSTRUCTURE)\r\n"
              b"i IDLE\r\n" % kt.DEFAULT_PASSWORD.encode())
    s.close()
    s = sock(k.addr_of("imaps"), src)
    ch = client_hello()
    s.sendall(ch[:len(ch) // 3])
    s.close()


_rng = random.Random(1)


def rnd_bytes(n):
    return (_rng.randrange(256) for _ in range(n))


@test(timeout=300)
def hostile_sessions_cost_nothing():
    for p in ("pop3", "tls"):
        if not have(p):
            raise kt.Skip("kotak built without %s" % p.upper())
    imap = have("imap")
    # ASan's allocator grows its pools for a while whatever the program
    # does: there, the leak check at exit stands for the RSS check
    asan = "ASAN_OPTIONS" in os.environ
    k = kt.KotakTls(protos=("smtp", "smtps", "pop3", "pop3s") + (("imap", "imaps") if imap else ()),
                    lists={"cleartext_auth_net": ["127.0.0.0/8"]},
                    main={"timeout": 5})
    k.imap = imap
    k.send(["alice@" + kt.DOMAIN], kt.msg("before"))
    k.wait_count("alice", 1)
    for i in range(N):
        mix(k, 0, i)
    time.sleep(0.5)
    base = rss(k.proc.pid)
    for rnd in range(1, ROUNDS + 1):
        for i in range(N):
            mix(k, rnd, i)
    time.sleep(0.5)
    grown = rss(k.proc.pid) - base
    check(k.running(), "kotak died")
    check(asan or grown <= SLACK, "RSS grew by %d KiB over %d hostile sessions" % (grown >> 10, ROUNDS * N * (13 if imap else 9)))
    eq(k.count("alice"), 1, "messages stored (cut DATA and a cut APPEND must store nothing)")
    spool = os.path.join(k.data_dir, "spool", "tmp")
    eq([f for f in os.listdir(spool) if f.startswith("imap.")], [], "APPEND spool files left")
    # and it still works
    k.send(["alice@" + kt.DOMAIN], kt.msg("after"))
    k.wait_count("alice", 2)
    if asan:
        eq(k.stop(), 0, "exit status (LeakSanitizer: %s)" % ("LeakSanitizer" in k.log()))
    if os.environ.get("KT_VERBOSE"):
        print("RSS %d KiB, grown %d bytes" % (base >> 10, grown))


if __name__ == "__main__":
    kt.main()

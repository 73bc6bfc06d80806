#!/usr/bin/env python3
"""tests/bench/isa_bench.py: what kotak's MIPS16 objects cost in speed, under qemu-user.

    python3 tests/bench/isa_bench.py [--msgs N] [--logins N] [--retr N] [--conns N] [--hs N] [--rounds R] BIN...

A benchmark, not a test (make test does not run it).  Each BIN (a static
MIPS kotak: build-mips/kotak, MIPS16 objects, and build-mips-mips32/kotak,
all MIPS32; `make cross ARCH=mips` and `make cross ARCH=mips XFLAGS=mips32`)
runs under qemu-mips-static (QEMU=... for another) with a fresh data dir,
an EC P-256 certificate and three listeners on 127.0.0.1, and serves:
  smtp: --msgs (500) messages of 2 KB over one plain SMTP session, each
        MAIL/RCPT/DATA, until the INBOX holds them all (local delivery);
  login: --logins (10) POP3 sessions' USER/PASS (the password's hash);
  retr: then --retr (5000) RETRs in the last of them, round the INBOX;
  conn: --conns (100) plain SMTP connections: greeting, QUIT;
  tls:  --hs (100) full TLS 1.2 handshakes on smtps (ECDHE-ECDSA,
        AES128-GCM), greeting read, QUIT.
What is measured for each phase, on the server side only: user+system CPU
time of the qemu process (/proc/PID/stat), median of --rounds (3) rounds.
It includes qemu's translation and runs on a shared machine, so only the
ratio between binaries means anything.  (Executed guest instructions would be
better: Debian 12's qemu-user-static 7.2 has no -plugin, and -singlestep -d
exec logging took 4 min 43 s for one `kotak user add` here.)
Prints one row per phase and binary and the ratio to the first BIN.
"""
import argparse
import os
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, proc, secs=120):
    end = time.time() + secs
    while time.time() < end:
        if proc.poll() is not None:
            raise SystemExit("kotak exited (%s)" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("port %d never listened" % port)


class Server:
    def __init__(self, qemu, binary, tmp):
        self.dir = tempfile.mkdtemp(dir=tmp)
        d = self.dir
        os.makedirs(d + "/data")
        subprocess.run(["openssl", "req", "-x509", "-nodes", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-keyout", d + "/ec.key", "-out", d + "/ec.pem",
                        "-days", "30", "-subj", "/CN=mail.example.lan"],
                       check=True, capture_output=True)
        self.smtp, self.pop3, self.smtps = free_port(), free_port(), free_port()
        conf = ["config kotak 'main'", "\toption hostname 'mail.example.lan'", "\tlist domain 'example.lan'",
                "\toption data_dir '%s/data'" % d, "\toption users_file '%s/users'" % d,
                "\tlist cleartext_auth_net '127.0.0.0/8'", "\toption cert '%s/ec.pem'" % d, "\toption key '%s/ec.key'" % d, ""]
        for proto, port in (("smtp", self.smtp), ("pop3", self.pop3), ("smtps", self.smtps)):
            conf += ["config listen", "\toption proto '%s'" % proto, "\toption address '127.0.0.1'",
                     "\toption port '%d'" % port, ""]
        with open(d + "/kotak.conf", "w") as f:
            f.write("\n".join(conf))
        qemu = qemu.split()
        subprocess.run(qemu + [binary, "-c", d + "/kotak.conf", "user", "add", "bench"],
                       input=b"secret\n", check=True, capture_output=True)
        self.log = open(d + "/log", "wb")
        self.proc = subprocess.Popen(qemu + [binary, "-c", d + "/kotak.conf"], stderr=self.log)
        for p in (self.smtp, self.pop3, self.smtps):
            wait_port(p, self.proc)

    def measure(self):
        """Server-side CPU seconds so far (user + system, qemu included)."""
        with open("/proc/%d/stat" % self.proc.pid) as f:
            st = f.read().rsplit(")", 1)[1].split()
        return (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")

    def inbox_count(self):
        try:
            with open(self.dir + "/data/mail/bench/INBOX", "rb") as f:
                return sum(1 for l in f if l.startswith(b"From "))
        except FileNotFoundError:
            return 0

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def reply(f):
    while True:
        l = f.readline()
        if not l:
            raise SystemExit("connection closed")
        if l[3:4] != b"-":
            return l[:3]


def smtp_phase(srv, n):
    s = socket.create_connection(("127.0.0.1", srv.smtp), 120)
    f = s.makefile("rb")
    assert reply(f) == b"220"
    s.sendall(b"EHLO bench.example.org\r\n")
    reply(f)
    body = b"".join(b"Line %04d of a 2 KB message, some filler text: 0123456789abcdef\r\n" % i
                    for i in range(28))
    for i in range(n):
        s.sendall(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<bench@example.lan>\r\nDATA\r\n")
        r = [reply(f) for _ in range(3)]
        assert r == [b"250", b"250", b"354"], r
        s.sendall(b"Subject: bench %d\r\nMessage-ID: <%d@example.org>\r\n\r\n" % (i, i) + body + b".\r\n")
        assert reply(f) == b"250"
    s.sendall(b"QUIT\r\n")
    reply(f)
    s.close()
    end = time.time() + 600
    while srv.inbox_count() < n and time.time() < end:
        time.sleep(0.2)
    assert srv.inbox_count() >= n, "delivered %d of %d" % (srv.inbox_count(), n)


def login_phase(srv, n):
    for i in range(n):	# n logins; the last session stays open for retr
        s = socket.create_connection(("127.0.0.1", srv.pop3), 120)
        f = s.makefile("rb")
        assert f.readline().startswith(b"+OK")
        for c in (b"USER bench", b"PASS secret"):
            s.sendall(c + b"\r\n")
            l = f.readline()
            assert l.startswith(b"+OK"), (c, l)
        if i < n - 1:
            s.sendall(b"QUIT\r\n")
            f.readline()
            s.close()
    srv.pop = (s, f)


def retr_phase(srv, n):
    s, f = srv.pop
    got = 0
    for k in range(n):
        i = k % srv.msgs + 1
        s.sendall(b"RETR %d\r\n" % i)
        assert f.readline().startswith(b"+OK")
        while f.readline() != b".\r\n":
            got += 1
    s.sendall(b"QUIT\r\n")
    f.readline()
    s.close()
    assert got > n * 20, got


def conn_phase(srv, n):
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", srv.smtp), 120)
        f = s.makefile("rb")
        assert reply(f) == b"220"
        s.sendall(b"QUIT\r\n")
        reply(f)
        s.close()


def tls_phase(srv, n):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
    for _ in range(n):
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", srv.smtps), 300),
                            server_hostname="mail.example.lan")
        f = s.makefile("rb")
        assert reply(f) == b"220"
        s.sendall(b"QUIT\r\n")
        reply(f)
        s.close()


PHASES = (("smtp", smtp_phase), ("login", login_phase), ("retr", retr_phase), ("conn", conn_phase),
          ("tls", tls_phase))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--msgs", type=int, default=500)
    ap.add_argument("--hs", type=int, default=100)
    ap.add_argument("--logins", type=int, default=10)
    ap.add_argument("--retr", type=int, default=5000)
    ap.add_argument("--conns", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("bins", nargs="+")
    a = ap.parse_args()
    qemu = os.environ.get("QEMU", "qemu-mips-static")
    tmp = tempfile.mkdtemp(prefix="kotak-isabench.", dir=os.environ.get("BENCH_DIR", "/var/tmp"))
    count = {"smtp": a.msgs, "login": a.logins, "retr": a.retr, "conn": a.conns, "tls": a.hs}
    try:
        res = {}	# (bin, phase) -> [CPU seconds]
        for r in range(a.rounds):
            for b in a.bins:	# interleaved: load changes hit every binary alike
                srv = Server(qemu, b, tmp)
                srv.msgs = a.msgs
                try:
                    m0 = srv.measure()
                    for phase, fn in PHASES:
                        fn(srv, count[phase])
                        m1 = srv.measure()
                        res.setdefault((b, phase), []).append(m1 - m0)
                        m0 = m1
                finally:
                    srv.stop()
                print("round %d %s: %s" % (r + 1, b, " ".join(
                    "%s=%.2f" % (p, res[(b, p)][-1]) for p, _ in PHASES)), file=sys.stderr)
        print("server CPU seconds under %s (user+system, median of %d rounds); smtp: %d messages of "
              "2 KB delivered; login: %d POP3 USER/PASS; retr: %d RETRs of them; conn: %d plain SMTP "
              "connections (greeting, QUIT); tls: %d handshakes" % (qemu, a.rounds, a.msgs, a.logins, a.retr, a.conns, a.hs))
        print("%-6s %-34s %9s %11s %7s" % ("phase", "binary", "CPU s", "ms per op", "ratio"))
        for phase, _ in PHASES:
            base = None
            for b in a.bins:
                v = statistics.median(res[(b, phase)])
                base = v if base is None else base
                print("%-6s %-34s %9.2f %11.3f %7s" % (phase, b, v, v * 1000 / count[phase],
                                                     "%.2f" % (v / base) if base else "n/a"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

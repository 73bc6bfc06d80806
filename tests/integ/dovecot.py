"""A private Dovecot imapd on 127.0.0.1 (Debian dovecot-imapd) serving one
mbox, for byte-for-byte comparisons with kotak (test_imap_mime.py).
Self-contained config (its own base_dir), as tests/bench/pop3_bench.sh and
/work/shared/PEERS.md set it up; mail owned by user nobody.  Needs root."""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time

import kt


class Dovecot:
    def __init__(self, mbox_bytes, user="u", password="pw"):
        if not shutil.which("dovecot"):
            raise kt.Skip("dovecot not installed (Debian dovecot-imapd)")
        if os.geteuid() != 0:
            raise kt.Skip("Dovecot comparison needs root")
        nob = pwd.getpwnam("nobody")
        self.dir = tempfile.mkdtemp(prefix="kt-dovecot-")
        os.chmod(self.dir, 0o755)
        d = self.dir
        for sub in ("run", "state", "log", "home/mail"):
            os.makedirs(os.path.join(d, sub))
        with open(os.path.join(d, "home/mail/INBOX"), "wb") as f:
            f.write(mbox_bytes)
        for root, dirs, files in os.walk(os.path.join(d, "home")):
            for x in dirs + files:
                os.chown(os.path.join(root, x), nob.pw_uid, nob.pw_gid)
        os.chown(os.path.join(d, "home"), nob.pw_uid, nob.pw_gid)
        self.port = kt.free_port()
        self.user, self.password = user, password
        with open(os.path.join(d, "users"), "w") as f:
            f.write("%s:{PLAIN}%s:%d:%d::%s/home::\n" % (user, password, nob.pw_uid, nob.pw_gid, d))
        conf = """instance_name = kt-dovecot-%(port)d
base_dir = %(d)s/run
state_dir = %(d)s/state
log_path = %(d)s/log/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = mbox:~/mail:INBOX=~/mail/INBOX:INDEX=MEMORY
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%%u %(d)s/users
}
userdb {
  driver = passwd-file
  args = username_format=%%u %(d)s/users
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %(port)d
  }
  inet_listener imaps {
    port = 0
  }
}
""" % {"d": d, "port": self.port}
        self.conf = os.path.join(d, "dovecot.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        # the daemon keeps inherited descriptors: no pipes, or run() waits for it
        with open(os.path.join(d, "log/start.log"), "wb") as lf:
            r = subprocess.run(["dovecot", "-c", self.conf], stdin=subprocess.DEVNULL, stdout=lf, stderr=lf)
        if r.returncode != 0:
            with open(os.path.join(d, "log/start.log"), "rb") as lf:
                raise AssertionError("dovecot: %s" % lf.read().decode(errors="replace"))
        kt.wait_for(self._up, 10, what="dovecot listening")

    def _up(self):
        try:
            s = socket.create_connection(("127.0.0.1", self.port), 1)
            s.close()
            return True
        except OSError:
            return False

    def stop(self):
        subprocess.run(["dovecot", "-c", self.conf, "stop"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        time.sleep(0.2)
        shutil.rmtree(self.dir, ignore_errors=True)


class RawImap:
    """One IMAP connection, raw bytes: cmd() returns the untagged response
    bytes (literals included) and the tagged line."""

    def __init__(self, port, host="127.0.0.1", timeout=10):
        self.s = socket.create_connection((host, port), timeout)
        self.buf = b""
        self.n = 0
        self.greeting = self.line()

    def line(self):
        while b"\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise kt.Closed("connection closed; got %r" % self.buf[:200])
            self.buf += d
        i = self.buf.index(b"\r\n") + 2
        ln, self.buf = self.buf[:i], self.buf[i:]
        return ln

    def exact(self, n):
        while len(self.buf) < n:
            d = self.s.recv(65536)
            if not d:
                raise kt.Closed("connection closed in a literal")
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def response(self, tag):
        """Untagged bytes up to the tagged line; (bytes, tagged line)."""
        out = b""
        while True:
            ln = self.line()
            if ln.startswith(tag + b" "):
                return out, ln
            out += ln
            while ln.endswith(b"}\r\n") and b"{" in ln:
                n = int(ln[ln.rindex(b"{") + 1:-3].rstrip(b"+"))
                lit = self.exact(n)
                out += lit
                ln = self.line()
                out += ln

    def cmd(self, text):
        self.n += 1
        tag = b"t%d" % self.n
        self.s.sendall(tag + b" " + (text.encode() if isinstance(text, str) else text) + b"\r\n")
        return self.response(tag)

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass

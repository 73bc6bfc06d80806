"""kt: integration-test harness for kotak (Python stdlib only).

Starts the real binary on 127.0.0.1 with a temp config, data dir and users
file; speaks raw SMTP; reads the mboxes back.  A test file registers tests with
@test and calls kt.main(); each test prints one line:

    PASS name
    FAIL name: reason
    SKIP name: reason

Network rule: everything here talks to 127.0.0.0/8 or ::1 only.

Environment:
    KOTAK_BIN       the binary (default: <repo>/kotak)
    KT_KEEP=1       keep temp dirs of failed tests (paths are printed)
    KT_VERBOSE=1    print the kotak log tail of failed tests
"""

import errno
import mailbox
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.path.abspath(os.environ.get("KOTAK_BIN") or os.path.join(ROOT, "kotak"))

LOOPBACK = "127.0.0.1"
DOMAIN = "example.lan"
HOSTNAME = "mail.example.lan"
DEFAULT_PASSWORD = "secret"


# --------------------------------------------------------------------------
# tiny test runner

class Skip(Exception):
    pass


class TestTimeout(Exception):
    pass


_tests = []
_cleanups = []          # callables run at exit of main() (shared servers)
_test_cleanups = []     # callables run after the current test


def test(fn=None, timeout=40):
    """Register a test function (decorator).  @test or @test(timeout=N)."""
    def reg(f):
        _tests.append((f.__name__, f, timeout))
        return f
    if fn is not None:
        return reg(fn)
    return reg


def at_exit(fn):
    _cleanups.append(fn)
    return fn


def after_test(fn):
    _test_cleanups.append(fn)
    return fn


def _alarm(signum, frame):
    raise TestTimeout("test took too long")


TIMES = os.environ.get("KT_TIMES") == "1"     # PASS lines say how long each test took


def main(setup=None):
    """Run the registered tests (all, or those named in argv)."""
    want = set(sys.argv[1:])
    if not os.access(BIN, os.X_OK):
        for name, _, _ in _tests:
            if not want or name in want:
                print("SKIP %s: no kotak binary at %s" % (name, BIN), flush=True)
        return 0
    signal.signal(signal.SIGALRM, _alarm)
    failed = 0
    try:
        if setup:
            try:
                signal.alarm(60)
                setup()
                signal.alarm(0)
            except Exception as e:
                signal.alarm(0)
                for name, _, _ in _tests:
                    if not want or name in want:
                        print("FAIL %s: setup: %s" % (name, _one_line(e)), flush=True)
                return 1
        for name, fn, tmo in _tests:
            if want and name not in want:
                continue
            Kotak.current_failed_logs = []
            signal.alarm(tmo)
            t0 = time.monotonic()
            try:
                fn()
                signal.alarm(0)
                print("PASS %s%s" % (name, " (%.1f s)" % (time.monotonic() - t0) if TIMES else ""), flush=True)
            except Skip as e:
                signal.alarm(0)
                print("SKIP %s: %s" % (name, e), flush=True)
            except Exception as e:
                signal.alarm(0)
                failed += 1
                reason = _one_line(e)
                print("FAIL %s: %s" % (name, reason), flush=True)
                tb = traceback.extract_tb(e.__traceback__)
                for fr in tb[-3:]:
                    print("    at %s:%d %s" % (os.path.basename(fr.filename), fr.lineno, fr.line))
                if os.environ.get("KT_VERBOSE"):
                    for k in Kotak.live:
                        print("    --- kotak log %s" % k.log_path)
                        for ln in k.log_tail(15):
                            print("    | " + ln)
                if os.environ.get("KT_KEEP"):
                    for k in Kotak.live:
                        k.keep = True
                        print("    kept %s" % k.dir)
            finally:
                signal.alarm(0)
                while _test_cleanups:
                    try:
                        _test_cleanups.pop()()
                    except Exception as e:
                        print("    cleanup error: %s" % _one_line(e))
                sys.stdout.flush()
    finally:
        signal.alarm(0)
        while _cleanups:
            try:
                _cleanups.pop()()
            except Exception:
                pass
        for k in list(Kotak.live):
            k.cleanup()
    return 1 if failed else 0


def _one_line(e):
    s = "%s: %s" % (type(e).__name__, e) if not isinstance(e, AssertionError) else str(e)
    if not s:
        s = type(e).__name__
    s = s.replace("\r", "\\r").replace("\n", "\\n")
    return s[:400]


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def eq(got, want, what="value"):
    if got != want:
        raise AssertionError("%s: got %s, want %s" % (what, _short(got), _short(want)))


def _short(v, n=300):
    r = repr(v)
    return r if len(r) <= n else r[:n] + "...(%d chars)" % len(r)


def wait_for(cond, timeout=5.0, interval=0.05, what="condition"):
    """Poll cond() until true (returns its value) or raise after timeout."""
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


# --------------------------------------------------------------------------
# ports

def free_port(host=LOOPBACK):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    try:
        s.bind((host, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def have_ipv6_loopback():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


# --------------------------------------------------------------------------
# config

def uci_quote(v):
    v = str(v)
    if "'" in v:
        return '"%s"' % v
    return "'%s'" % v


def make_config(hostname=HOSTNAME, domains=(DOMAIN,), data_dir="", users_file="",
                main=None, listens=(), aliases=None, extra=""):
    """Build a UCI config text.  main: dict of extra `option`s for config kotak;
    listens: list of (address, port); aliases: dict name -> list of targets."""
    out = ["config kotak 'main'"]
    if hostname is not None:
        out.append("\toption hostname %s" % uci_quote(hostname))
    for d in domains:
        out.append("\tlist domain %s" % uci_quote(d))
    out.append("\toption data_dir %s" % uci_quote(data_dir))
    out.append("\toption users_file %s" % uci_quote(users_file))
    for k, v in (main or {}).items():
        out.append("\toption %s %s" % (k, uci_quote(v)))
    out.append("")
    for addr, port in listens:
        out.append("config listen")
        out.append("\toption proto 'smtp'")
        out.append("\toption address %s" % uci_quote(addr))
        out.append("\toption port '%d'" % port)
        out.append("")
    for name, targets in (aliases or {}).items():
        out.append("config alias")
        out.append("\toption name %s" % uci_quote(name))
        for t in targets:
            out.append("\tlist to %s" % uci_quote(t))
        out.append("")
    if extra:
        out.append(extra)
    return "\n".join(out) + "\n"


def need_test_hooks():
    """Skip unless the binary is a test build (make asan): the environment
    hooks that stop kotak between two steps are not in what ships."""
    if b"+test-hooks" not in run_kotak(["-V"]).stdout:
        raise Skip("a shipped build has no test hooks (the ASan+UBSan run covers this)")


def run_kotak(args, stdin=None, timeout=10):
    """Run the binary with args; returns CompletedProcess (bytes stdout/stderr)."""
    return subprocess.run([BIN] + list(args), input=stdin, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout)


# --------------------------------------------------------------------------
# the server under test

class Kotak:
    """One kotak instance in its own temp dir.

    Kotak(users=..., aliases=..., main={...}) writes the config, creates the
    users through `kotak user add`, and start() runs the daemon."""

    live = []
    current_failed_logs = []

    env = {}    # extra environment for the daemon only (test hooks, KOTAK_TEST_*)

    def __init__(self, users=("alice", "bob", "admin"), aliases=None, main=None,
                 domains=(DOMAIN,), hostname=HOSTNAME, listen=None, dir=None,
                 data_dir=None, start=True, nofile=None):
        self.dir = dir or tempfile.mkdtemp(prefix="kt-")
        self.keep = False
        self.conf = os.path.join(self.dir, "kotak.conf")
        self.data_dir = data_dir or os.path.join(self.dir, "data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.users_file = os.path.join(self.dir, "users")
        self.log_path = os.path.join(self.dir, "kotak.log")
        self.hostname = hostname
        self.domains = list(domains)
        self.aliases = {"postmaster": ["admin"]} if aliases is None else dict(aliases)
        self.main = dict(main or {})
        # the relay's resolver must never reach /etc/resolv.conf's server:
        # a loopback port with nothing behind it (tests of the relay set their own)
        self.main.setdefault("dns_server", "127.0.0.1:9")
        if listen is None:
            listen = [(LOOPBACK, free_port())]
        self.listens = list(listen)
        self.proc = None
        self.logf = None
        self.nofile = nofile        # RLIMIT_NOFILE for the daemon (EMFILE tests)
        Kotak.live.append(self)
        self.write_config()
        for u in users:
            self.user_add(u)
        if not users:
            # an empty users file, so a daemon that wants it finds it
            fd = os.open(self.users_file, os.O_WRONLY | os.O_CREAT, 0o600)
            os.close(fd)
        if start:
            self.start()

    # ---- config and users
    @property
    def port(self):
        return self.listens[0][1]

    @property
    def host(self):
        return self.listens[0][0]

    def config_text(self):
        return make_config(self.hostname, self.domains, self.data_dir, self.users_file,
                           self.main, self.listens, self.aliases)

    def write_config(self, text=None):
        with open(self.conf, "w") as f:
            f.write(text if text is not None else self.config_text())

    def user_add(self, name, password=DEFAULT_PASSWORD):
        r = run_kotak(["-c", self.conf, "user", "add", name], stdin=(password + "\n").encode())
        if r.returncode != 0:
            raise AssertionError("kotak user add %s: rc %d: %s" % (
                name, r.returncode, (r.stderr + r.stdout).decode(errors="replace").strip()))

    # ---- process control
    def start(self, wait=True):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.logf = open(self.log_path, "ab")
        self.logf.write(b"=== start %f\n" % time.time())
        self.logf.flush()
        pre = None
        if self.nofile:
            import resource
            lim = self.nofile

            def pre():
                resource.setrlimit(resource.RLIMIT_NOFILE, (lim, lim))
        self.proc = subprocess.Popen([BIN, "-c", self.conf], stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=self.logf, preexec_fn=pre,
                                     env=dict(os.environ, **self.env) if self.env else None)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=8.0):
        """Wait until every listener accepts and sends a greeting."""
        for host, port in self.listens:
            end = time.monotonic() + timeout
            while True:
                if self.proc.poll() is not None:
                    raise AssertionError("kotak exited with %s at start: %s" % (
                        self.proc.returncode, " | ".join(self.log_tail(5))))
                try:
                    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
                    s = socket.socket(fam, socket.SOCK_STREAM)
                    s.settimeout(2)
                    s.connect((host, port))
                    try:
                        data = s.recv(512)
                        if data[:3] == b"220":
                            s.sendall(b"QUIT\r\n")
                            try:
                                s.recv(512)
                            except OSError:
                                pass
                    finally:
                        s.close()
                    break
                except OSError:
                    if time.monotonic() > end:
                        raise AssertionError("kotak did not accept on %s:%d: %s" % (
                            host, port, " | ".join(self.log_tail(5))))
                    time.sleep(0.05)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        assert self.running(), "kotak is not running (rc %s)" % (
            self.proc.returncode if self.proc else None)
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=6.0):
        """Send sig and wait; returns the exit status (None if it had to be killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self._close_log()
                return None
        self._close_log()
        return self.proc.returncode

    def kill9(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close_log()

    def restart(self):
        """Start again on the same dir (after stop() or kill9())."""
        if self.running():
            self.stop()
        return self.start()

    def hup(self):
        self.send_signal(signal.SIGHUP)

    def usr1(self):
        self.send_signal(signal.SIGUSR1)

    def _close_log(self):
        if self.logf:
            self.logf.close()
            self.logf = None

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close_log()
        if self in Kotak.live:
            Kotak.live.remove(self)
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def log_tail(self, n=10):
        return self.log().splitlines()[-n:]

    # ---- clients
    def connect(self, timeout=5.0, src=None, greet=True, addr=None):
        host, port = addr or self.listens[0]
        c = Smtp(host, port, timeout=timeout, src=src)
        if greet:
            r = c.reply()
            if r.code != 220:
                raise AssertionError("greeting: %r" % r.text)
            c.greeting = r
        return c

    def session(self, helo="client.example.org", **kw):
        c = self.connect(**kw)
        c.ok("EHLO " + helo, 250)
        return c

    def send(self, rcpts, body, sender="sender@example.org", helo="client.example.org"):
        """One full SMTP transaction; returns the reply to the final dot.
        body: bytes (CRLF-terminated lines, not dot-stuffed: this stuffs)."""
        if isinstance(rcpts, str):
            rcpts = [rcpts]
        c = self.session(helo)
        try:
            c.ok("MAIL FROM:<%s>" % sender, 250)
            for r in rcpts:
                c.ok("RCPT TO:<%s>" % r, 250)
            c.ok("DATA", 354)
            c.send(dot_stuff(body) + b".\r\n")
            r = c.reply(timeout=15)
            c.send(b"QUIT\r\n")
            try:
                c.reply()
            except Exception:
                pass
            return r
        finally:
            c.close()

    # ---- storage
    def mbox_path(self, user):
        return os.path.join(self.data_dir, "mail", user, "INBOX")

    def mbox_bytes(self, user):
        try:
            with open(self.mbox_path(user), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return b""

    def count(self, user):
        return len(mbox_split(self.mbox_bytes(user)))

    def wait_count(self, user, n, timeout=5.0, settle=0.0):
        """Wait (bounded) until user's INBOX holds n messages; then, if settle,
        wait that long more and check it still holds exactly n."""
        end = time.monotonic() + timeout
        c = -1
        lock = os.path.join(self.data_dir, "mail", user, "INBOX.lock")
        while time.monotonic() < end:
            c = self.count(user)
            # a reader honours the dotlock, as mutt does: an append in
            # progress (big messages take several loop passes) is not done
            if c >= n and not os.path.exists(lock):
                break
            time.sleep(0.05)
        if c != n:
            raise AssertionError("%s's INBOX holds %d messages, want %d" % (user, c, n))
        if settle:
            time.sleep(settle)
            c = self.count(user)
            if c != n:
                raise AssertionError("%s's INBOX holds %d messages after settling, want %d"
                                     % (user, c, n))
        return self.messages(user)

    def messages(self, user):
        return mbox_split(self.mbox_bytes(user))

    def spool_files(self, sub):
        d = os.path.join(self.data_dir, "spool", sub)
        try:
            return sorted(os.listdir(d))
        except FileNotFoundError:
            return []


# --------------------------------------------------------------------------
# raw SMTP dialog

class Reply:
    def __init__(self, lines):
        self.lines = lines                      # list of str, without CRLF
        self.code = int(lines[-1][:3]) if lines and lines[-1][:3].isdigit() else -1
        self.text = "\n".join(lines)

    def __repr__(self):
        return "Reply(%r)" % self.text

    def enh(self):
        """Enhanced status code of the last line, e.g. '5.1.1', or ''."""
        m = re.match(r"\d{3}[ -](\d\.\d{1,3}\.\d{1,3})\b", self.lines[-1])
        return m.group(1) if m else ""


class Closed(Exception):
    pass


class Smtp:
    def __init__(self, host, port, timeout=5.0, src=None):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.s = socket.socket(fam, socket.SOCK_STREAM)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if src:
            self.s.bind((src, 0))
        self.s.settimeout(timeout)
        self.s.connect((host, port))
        self.timeout = timeout
        self.buf = b""
        self.eof = False

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.s.sendall(data)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out waiting for reply (have %r)" % self.buf[:200])
        self.s.settimeout(left)
        try:
            d = self.s.recv(65536)
        except ConnectionResetError:
            d = b""
        if not d:
            self.eof = True
            raise Closed("connection closed by kotak (have %r)" % self.buf[:200])
        self.buf += d

    def line(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\n" not in self.buf:
            self._fill(deadline)
        ln, self.buf = self.buf.split(b"\n", 1)
        return ln.rstrip(b"\r").decode("utf-8", errors="replace")

    def reply(self, timeout=None):
        """Read one full reply (multiline 250-... up to the 'NNN ' line)."""
        lines = []
        while True:
            ln = self.line(timeout)
            lines.append(ln)
            if len(ln) < 4 or ln[3] != "-":
                return Reply(lines)

    def cmd(self, line, timeout=None):
        self.send(line.encode() + b"\r\n" if isinstance(line, str) else line + b"\r\n")
        return self.reply(timeout)

    def ok(self, line, code, enh=None, timeout=None):
        """Send a command and assert the reply code (int, or tuple of ints)."""
        r = self.cmd(line, timeout)
        codes = code if isinstance(code, tuple) else (code,)
        if r.code not in codes:
            raise AssertionError("%s -> %r, want %s" % (_short(line, 80), r.text, code))
        if enh and r.enh() != enh:
            raise AssertionError("%s -> %r, want enhanced code %s" % (_short(line, 80), r.text, enh))
        return r

    def wait_closed(self, timeout=5.0):
        """True if the peer closes within timeout (data before EOF is kept in buf)."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self._fill(deadline)
        except Closed:
            return True
        except (socket.timeout, TimeoutError):
            return False
        except OSError:
            return True

    def replies_until_close(self, timeout=5.0):
        """All replies until EOF."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                out.append(self.reply(max(0.01, deadline - time.monotonic())))
            except Closed:
                if self.buf.strip():
                    out.append(Reply([self.buf.decode(errors="replace")]))
                return out

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


# --------------------------------------------------------------------------
# message and mbox helpers

def dot_stuff(body):
    """Dot-stuff CRLF text as an SMTP client must (body ends in CRLF)."""
    out = re.sub(rb"(?m)^\.", b"..", body)
    if body and not body.endswith(b"\r\n"):
        out += b"\r\n"
    return out


def msg(subject="test", body="hello\r\n", headers=(), sender="sender@example.org",
        to="alice@example.lan"):
    """A simple RFC 5322 message as CRLF bytes."""
    h = ["From: <%s>" % sender, "To: <%s>" % to, "Subject: %s" % subject,
         "Message-ID: <%s.%d@example.org>" % (re.sub(r"\W", "", subject)[:20], time.monotonic_ns()),
         "Date: Wed, 26 Nov 2026 12:00:00 +0000"]
    h += list(headers)
    b = body if isinstance(body, bytes) else body.encode()
    return ("\r\n".join(h) + "\r\n\r\n").encode() + b


def crlf_to_lf(b):
    return b.replace(b"\r\n", b"\n")


FROM_RE = re.compile(rb"^From (\S+) (Mon|Tue|Wed|Thu|Fri|Sat|Sun) "
                     rb"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
                     rb"[ 0-3]\d \d\d:\d\d:\d\d \d{4}$")


def mbox_split(data):
    """Split mbox bytes into messages (each including its From_ line), on
    'From ' lines that follow a blank line (or start the file)."""
    if not data:
        return []
    msgs = []
    start = 0
    pos = 0
    while True:
        i = data.find(b"\n\nFrom ", pos)
        if i < 0:
            break
        msgs.append(data[start:i + 2])
        start = i + 2
        pos = i + 2
    msgs.append(data[start:])
    return msgs


def parse_stored(stored):
    """Split one stored mbox message into (from_line, header_block_lines, rest)."""
    nl = stored.find(b"\n")
    return stored[:nl], stored[nl + 1:]


def mboxrd_unquote(body):
    return re.sub(rb"(?m)^>(>*From )", rb"\1", body)


def read_mbox(path):
    """Messages via Python's mailbox module (list of mboxMessage)."""
    mb = mailbox.mbox(path, create=False)
    try:
        return [mb[k] for k in mb.keys()]
    finally:
        mb.close()


def split_headers(stored_after_from):
    """Return (list of header fields as bytes incl. continuation lines, body)."""
    hdr_end = stored_after_from.find(b"\n\n")
    if hdr_end < 0:
        return stored_after_from.split(b"\n"), b""
    head = stored_after_from[:hdr_end + 1]
    body = stored_after_from[hdr_end + 2:]
    fields = []
    for ln in head.split(b"\n")[:-1]:
        if ln[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\n" + ln
        else:
            fields.append(ln)
    return fields, body


def queue_id_from(reply_text):
    """Candidate queue-id tokens in a 250 reply to the final dot."""
    toks = re.findall(r"[A-Za-z0-9][A-Za-z0-9._-]{4,}", reply_text)
    skip = {"queued", "Queued", "accepted", "Accepted", "message", "Message", "2.0.0"}
    return [t for t in toks if t not in skip and not re.match(r"^\d\.\d\.\d$", t)]


def tool(name):
    return shutil.which(name)


def is_root():
    return os.geteuid() == 0


def file_mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


# --------------------------------------------------------------------------
# TLS and AUTH helpers (test_tls.py, test_auth.py)

import base64 as _b64
import ssl as _ssl


def b64(s):
    """Base64 of str/bytes as str (SASL responses)."""
    return _b64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def sasl_plain(user, password, authzid=""):
    return b64("%s\0%s\0%s" % (authzid, user, password))


def tls_client_context(verify=False, ciphers=None, tls12_only=False):
    """A client SSLContext; verify=False accepts kotak's self-signed cert."""
    ctx = _ssl.SSLContext(_ssl.PROTOCOL_TLS_CLIENT)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = _ssl.CERT_NONE
    if tls12_only:
        ctx.maximum_version = _ssl.TLSVersion.TLSv1_2
    if ciphers:
        ctx.set_ciphers(ciphers)
    return ctx


def smtp_wrap_tls(c, ctx=None, server_hostname=HOSTNAME, timeout=10.0):
    """Do the TLS handshake on an Smtp (after 220 to STARTTLS, or at once on
    an implicit-TLS port).  Bytes already read past the 220 would belong to
    the cleartext phase: they are an error, so the caller sees them."""
    check(not c.buf, "cleartext bytes after the STARTTLS reply: %r" % c.buf[:200])
    ctx = ctx or tls_client_context()
    c.s.settimeout(timeout)
    c.s = ctx.wrap_socket(c.s, server_hostname=server_hostname)
    c.s.settimeout(c.timeout)
    return c


def smtp_starttls(c, ctx=None, ehlo="client.example.org"):
    """STARTTLS on an open Smtp session; then EHLO again (when ehlo)."""
    c.ok("STARTTLS", 220)
    smtp_wrap_tls(c, ctx)
    if ehlo:
        return c.ok("EHLO " + ehlo, 250)
    return None


def ehlo_keywords(r):
    return [ln[4:].strip().upper() for ln in r.lines[1:]]


def openssl(args, stdin=b"", timeout=20):
    """Run openssl with args; CompletedProcess with str stdout/stderr."""
    r = subprocess.run(["openssl"] + list(args), input=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    r.out = r.stdout.decode(errors="replace")
    r.err = r.stderr.decode(errors="replace")
    return r


def make_cert(dir, name="cert", kind="ec", cn=HOSTNAME, days=30, extra=()):
    """A self-signed cert + key with openssl: kind 'ec' (P-256) or 'rsa'
    (2048).  Returns (cert_path, key_path)."""
    cert = os.path.join(dir, name + ".pem")
    key = os.path.join(dir, name + ".key")
    newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"] if kind == "ec" \
        else ["-newkey", "rsa:2048"]
    r = openssl(["req", "-x509", "-nodes"] + newkey + ["-keyout", key, "-out", cert,
                "-days", str(days), "-subj", "/CN=" + cn,
                "-addext", "subjectAltName=DNS:" + cn] + list(extra))
    check(r.returncode == 0, "openssl req: %s" % r.err.strip()[-300:])
    return cert, key


def cert_fingerprint(pem_path):
    """SHA-256 fingerprint 'AA:BB:..' of a PEM certificate (the first one)."""
    r = openssl(["x509", "-in", pem_path, "-noout", "-fingerprint", "-sha256"])
    check(r.returncode == 0, "openssl x509: %s" % r.err.strip())
    return r.out.strip().split("=", 1)[1]


class KotakTls(Kotak):
    """A Kotak whose listeners name their protocol: listen=[(addr, port,
    proto), ...] (proto smtp, submission, smtps); lists={key: [values]} adds
    `list` options to config kotak (cleartext_auth_net).  Implicit-TLS
    listeners are probed with a TLS handshake when waiting for readiness."""

    def __init__(self, listen=None, lists=None, protos=("smtp",), **kw):
        self.lists = dict(lists or {})
        self._auto_ports = listen is None
        if listen is None:
            listen = [(LOOPBACK, free_port(), p) for p in protos]
        listen = [tuple(l) if len(l) == 3 else (l[0], l[1], "smtp") for l in listen]
        Kotak.__init__(self, listen=listen, **kw)

    def config_text(self):
        text = make_config(self.hostname, self.domains, self.data_dir, self.users_file,
                           self.main, (), self.aliases)
        head, sep, rest = text.partition("\n\n")
        lines = [head]
        for k, vals in self.lists.items():
            for v in vals:
                lines.append("\tlist %s %s" % (k, uci_quote(v)))
        out = "\n".join(lines) + sep + rest
        for addr, port, proto in self.listens:
            out += "config listen\n\toption proto '%s'\n\toption address %s\n\toption port '%d'\n\n" % (
                proto, uci_quote(addr), port)
        return out

    def start(self, wait=True):
        """As Kotak.start; when the ports were picked here and one was taken
        meanwhile by another process (free_port races), pick new ones."""
        for attempt in range(3):
            try:
                return Kotak.start(self, wait)
            except AssertionError as e:
                if not (self._auto_ports and "Address already in use" in str(e)) or attempt == 2:
                    raise
                self.kill9()
                self.listens = [(a, free_port(), p) for a, _, p in self.listens]
                self.write_config()

    def addr_of(self, proto):
        """(host, port) of the first listener of proto."""
        for a, p, pr in self.listens:
            if pr == proto:
                return (a, p)
        raise AssertionError("no %s listener" % proto)

    def wait_ready(self, timeout=8.0):
        for host, port, proto in self.listens:
            end = time.monotonic() + timeout
            while True:
                if self.proc.poll() is not None:
                    raise AssertionError("kotak exited with %s at start: %s" % (
                        self.proc.returncode, " | ".join(self.log_tail(5))))
                try:
                    c = Smtp(host, port, timeout=2)
                    try:
                        if proto in ("smtps", "pop3s", "imaps"):
                            smtp_wrap_tls(c, timeout=2)
                        if proto.startswith("pop3") or proto.startswith("imap"):
                            c.line(2)
                            break
                        r = c.reply(2)
                        if r.code == 220:
                            c.send(b"QUIT\r\n")
                            try:
                                c.reply(1)
                            except Exception:
                                pass
                    finally:
                        c.close()
                    break
                except (OSError, Closed, AssertionError):
                    if time.monotonic() > end:
                        raise AssertionError("kotak did not accept on %s:%d (%s): %s" % (
                            host, port, proto, " | ".join(self.log_tail(5))))
                    time.sleep(0.05)

    def connect(self, timeout=5.0, src=None, greet=True, addr=None, proto=None, ctx=None):
        """Open a session; proto picks the listener.  smtps: the TLS handshake
        is done before the greeting is read."""
        if addr is None:
            if proto is None:
                addr = self.listens[0][:2]
                proto = self.listens[0][2]
            else:
                addr = self.addr_of(proto)
        c = Smtp(addr[0], addr[1], timeout=timeout, src=src)
        if proto == "smtps":
            smtp_wrap_tls(c, ctx)
        if greet:
            r = c.reply()
            if r.code != 220:
                raise AssertionError("greeting: %r" % r.text)
            c.greeting = r
        return c

    def tls_session(self, proto="smtp", helo="client.example.org", ctx=None, **kw):
        """EHLO, STARTTLS (unless smtps), EHLO: a session ready for AUTH."""
        c = self.connect(proto=proto, ctx=ctx, **kw)
        r = c.ok("EHLO " + helo, 250)
        if proto != "smtps":
            r = smtp_starttls(c, ctx, helo)
        c.ehlo = r
        return c

    def login(self, c, user, password=DEFAULT_PASSWORD, code=235):
        return c.ok("AUTH PLAIN " + sasl_plain(user, password), code)

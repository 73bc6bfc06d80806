#!/usr/bin/env python3
"""Runtime effect of the config: hostname, domains, listeners, limits, log,
privileges, reload of options."""

import os
import pwd
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kt  # noqa: E402
from kt import test, check, eq  # noqa: E402


def fresh(**kw):
    k = kt.Kotak(**kw)
    kt.after_test(k.cleanup)
    return k


def ehlo_keywords(c):
    r = c.ok("EHLO client.example.org", 250)
    return r, [ln[4:].strip().upper() for ln in r.lines[1:]]


@test
def custom_hostname_everywhere():
    k = fresh(users=("alice",), hostname="mx.kotak.test", domains=("kotak.test",),
              aliases={"postmaster": ["alice"]})
    c = k.connect()
    check(c.greeting.lines[0].startswith("220 mx.kotak.test"), "greeting %r" % c.greeting.text)
    r, _ = ehlo_keywords(c)
    check(r.lines[0].startswith("250-mx.kotak.test"), "EHLO %r" % r.lines[0])
    c.close()
    eq(k.send(["alice@kotak.test"], kt.msg("host", to="alice@kotak.test")).code, 250, "final dot")
    m = k.wait_count("alice", 1)[-1]
    check(b"by mx.kotak.test" in m, "Received: lacks 'by mx.kotak.test': %r" % m[:300])


@test
def defaults_hostname_and_domain():
    # no hostname, no domain: hostname = system host name, domain = hostname
    host = socket.gethostname()
    k = fresh(users=("alice",), hostname=None, domains=(), aliases={"postmaster": ["alice"]})
    c = k.connect()
    check(c.greeting.lines[0].startswith("220 " + host), "greeting %r, host name %r"
          % (c.greeting.text, host))
    c.ok("EHLO client.example.org", 250)
    c.ok("MAIL FROM:<a@example.org>", 250)
    c.ok("RCPT TO:<alice@%s>" % host, 250)
    c.ok("RCPT TO:<alice@example.lan>", 554)
    c.close()


@test
def default_max_message_size_advertised():
    k = fresh(users=("alice",))
    c = k.connect()
    _, kw = ehlo_keywords(c)
    check("SIZE 26214400" in kw, "EHLO keywords %r lack the default SIZE 26214400" % kw)
    c.close()


@test
def two_listeners_ipv4_and_ipv6():
    if not kt.have_ipv6_loopback():
        raise kt.Skip("no ::1 here")
    k = fresh(users=("alice",), listen=[(kt.LOOPBACK, kt.free_port()), ("::1", kt.free_port("::1"))])
    for addr in k.listens:
        c = k.connect(addr=addr)
        c.ok("EHLO client.example.org", 250)
        c.ok("MAIL FROM:<a@example.org>", 250)
        c.ok("RCPT TO:<alice@example.lan>", 250)
        c.ok("DATA", 354)
        c.send(kt.msg("via %s" % addr[0]) + b".\r\n")
        eq(c.reply().code, 250, "final dot via %s" % addr[0])
        c.close()
    msgs = k.wait_count("alice", 2)
    check(b"::1" in msgs[1], "Received: of the IPv6 session lacks ::1: %r" % msgs[1][:300])


@test
def listen_address_is_honoured():
    port = kt.free_port("127.0.0.2")
    k = fresh(users=("alice",), listen=[("127.0.0.2", port)])
    c = k.connect()
    c.close()
    try:
        s = socket.create_connection((kt.LOOPBACK, port), timeout=2)
        s.close()
        raise AssertionError("a listener on 127.0.0.2 also accepts on 127.0.0.1")
    except ConnectionRefusedError:
        pass


@test
def max_sessions_above_compiled_cap_rejected():
    k = kt.Kotak(users=(), main={"max_sessions": 100000}, start=False)
    kt.after_test(k.cleanup)
    r = kt.run_kotak(["-c", k.conf, "-t"])
    eq(r.returncode, 1, "kotak -t with max_sessions 100000 (MAX_CONNS is far lower)")
    check("max_sessions" in (r.stdout + r.stderr).decode(), "error does not name max_sessions")


@test
def log_syslog_does_not_block():
    k = fresh(users=("alice",), main={"log": "syslog"})
    for i in range(3):
        eq(k.send(["alice@example.lan"], kt.msg("syslog %d" % i)).code, 250, "final dot %d" % i)
    k.wait_count("alice", 3)


@test
def reload_changes_limits():
    k = fresh(users=("alice",), main={"max_message_size": 100000})
    c = k.connect()
    _, kw = ehlo_keywords(c)
    check("SIZE 100000" in kw, "SIZE before reload: %r" % kw)
    c.close()
    k.main["max_message_size"] = 200000
    k.write_config()
    k.hup()
    time.sleep(0.5)
    c = k.connect()
    _, kw = ehlo_keywords(c)
    check("SIZE 200000" in kw, "SIZE after reload: %r" % kw)
    c.ok("MAIL FROM:<a@example.org> SIZE=150000", 250)
    c.close()


@test
def drops_privileges_to_user():
    if not kt.is_root():
        raise kt.Skip("needs root")
    try:
        pw = pwd.getpwnam("nobody")
    except KeyError:
        raise kt.Skip("no user nobody")
    k = kt.Kotak(users=("alice",), main={"user": "nobody"}, start=False)
    kt.after_test(k.cleanup)
    os.chmod(k.dir, 0o755)
    for root, dirs, files in os.walk(k.data_dir):
        for n in dirs + files:
            os.chown(os.path.join(root, n), pw.pw_uid, pw.pw_gid)
    os.chown(k.data_dir, pw.pw_uid, pw.pw_gid)
    os.chown(k.users_file, pw.pw_uid, pw.pw_gid)
    k.start()
    with open("/proc/%d/status" % k.proc.pid) as f:
        st = dict(ln.split(":", 1) for ln in f if ":" in ln)
    uids = st["Uid"].split()
    eq(uids, [str(pw.pw_uid)] * 4, "real/effective/saved/fs uid of the daemon")
    eq(st["Gid"].split()[0], str(pw.pw_gid), "gid of the daemon")
    eq(k.send(["alice@example.lan"], kt.msg("unprivileged")).code, 250, "final dot")
    k.wait_count("alice", 1)
    eq(os.stat(k.mbox_path("alice")).st_uid, pw.pw_uid, "INBOX owner")


@test
def world_writable_spool_refused():
    k = kt.Kotak(users=("alice",), start=False)
    kt.after_test(k.cleanup)
    spool = os.path.join(k.data_dir, "spool")
    os.makedirs(spool)
    os.chmod(spool, 0o777)
    p = subprocess.Popen([kt.BIN, "-c", k.conf], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        rc = p.wait(2)
    except subprocess.TimeoutExpired:
        rc = None
    if rc is None:
        mode = kt.file_mode(spool)
        p.kill()
        p.wait()
        check(mode & 0o002 == 0, "kotak runs with a world-writable spool (mode %o)" % mode)
    else:
        check(rc != 0, "kotak exited 0 on a world-writable spool")


@test
def imap_listener_only_with_imap_built_in():
    """Review finding: menuconfig offered IMAP before it existed, and that
    build took imap listeners with a NULL protocol (SIGSEGV on the first
    connection).  A build without IMAP refuses an imap listener at load
    (file:line); a build with it greets on one."""
    k = kt.Kotak(start=False)
    kt.after_test(k.cleanup)
    port = kt.free_port()
    with open(k.conf, "a") as f:
        f.write("\nconfig listen\n\toption proto 'imap'\n\toption address '127.0.0.1'\n"
                "\toption port '%d'\n" % port)
    r = kt.run_kotak(["-c", k.conf, "-t"])
    if b"+imap" not in kt.run_kotak(["-V"]).stdout:
        check(r.returncode != 0 and b"imap" in (r.stdout + r.stderr), "imap listener accepted: %r" % (r,))
        return
    check(r.returncode == 0, "imap listener refused by an IMAP build: %r" % (r,))
    k.start()
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        check(s.recv(512).startswith(b"* OK"), "no IMAP greeting")
    finally:
        s.close()
    time.sleep(0.2)
    check(k.running(), "kotak died after an imap connection")

if __name__ == "__main__":
    sys.exit(kt.main())

#!/usr/bin/env python3
"""CLI: -V, -t on good and bad configs, user add/passwd/del/list."""

import os
import re
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kt  # noqa: E402
from kt import test, check, eq  # noqa: E402

tmp = None


def setup():
    global tmp
    tmp = tempfile.mkdtemp(prefix="kt-cli-")
    kt.at_exit(lambda: __import__("shutil").rmtree(tmp, ignore_errors=True))


def conf_file(text, name="kotak.conf"):
    d = tempfile.mkdtemp(dir=tmp)
    p = os.path.join(d, name)
    with open(p, "w") as f:
        f.write(text)
    return p


def good_config(d=None, port=None):
    d = d or tempfile.mkdtemp(dir=tmp)
    return kt.make_config(data_dir=os.path.join(d, "data"), users_file=os.path.join(d, "users"),
                          listens=[(kt.LOOPBACK, port or kt.free_port())],
                          aliases={"postmaster": ["admin"]})


def out_of(r):
    return (r.stdout + r.stderr).decode(errors="replace")


# ---------------------------------------------------------------- -V

@test
def version_and_features():
    r = kt.run_kotak(["-V"])
    eq(r.returncode, 0, "kotak -V exit status")
    o = out_of(r)
    check(re.search(r"kotak", o, re.I), "-V output does not name kotak: %r" % o)
    check(re.search(r"\d+\.\d+", o), "-V output has no version number: %r" % o)
    feats = ["smtp", "tls", "pop3", "imap", "ipv6", "syslog", "relay"]
    found = [f for f in feats if f in o.lower()]
    check(len(found) >= 2, "-V output lists no compiled-in features (looked for %s): %r"
          % (feats, o))


# ---------------------------------------------------------------- -t

@test
def check_good_config():
    p = conf_file(good_config())
    r = kt.run_kotak(["-c", p, "-t"])
    eq(r.returncode, 0, "kotak -t on a good config (%s)" % out_of(r).strip())


@test
def check_all_documented_options():
    d = tempfile.mkdtemp(dir=tmp)
    text = """# every option the README documents
config kotak 'main'
	option hostname 'mail.example.lan'
	list domain 'example.lan'
	list domain 'second.example'
	option data_dir '%(d)s/data'
	option users_file '%(d)s/users'
	option max_message_size '1048576'
	option max_recipients '50'
	option max_sessions '10'
	option max_sessions_per_ip '5'
	option max_errors '5'
	option timeout '60'
	option data_timeout '120'
	option log 'stderr'

config listen
	option proto 'smtp'
	option address '127.0.0.1'
	option port '%(p)d'

config listen
	option proto 'smtp'
	option address '::1'
	option port '%(p2)d'

config alias
	option name 'postmaster'
	list to 'admin'
	list to 'alice@example.lan'
""" % {"d": d, "p": kt.free_port(), "p2": kt.free_port()}
    p = conf_file(text)
    r = kt.run_kotak(["-c", p, "-t"])
    eq(r.returncode, 0, "kotak -t on a config with every documented option (%s)" % out_of(r).strip())


@test
def check_uci_syntax_variants():
    # UCI allows unquoted and double-quoted values, comments, blank lines,
    # trailing comments, a section without a name, and leading spaces.
    d = tempfile.mkdtemp(dir=tmp)
    text = """
# comment line

config kotak main
    option hostname "mail.example.lan"   # trailing comment
	list domain example.lan
	option data_dir "%(d)s/data"
	option users_file '%(d)s/users'
	option max_message_size 1048576

config listen
	option proto smtp
	option address 127.0.0.1
	option port %(p)d
""" % {"d": d, "p": kt.free_port()}
    p = conf_file(text)
    r = kt.run_kotak(["-c", p, "-t"])
    eq(r.returncode, 0, "kotak -t on UCI variants (%s)" % out_of(r).strip())


def bad_config(mutate, want_line, want_word=None):
    """mutate(lines) edits the list of lines of a good config; the error must
    name FILE:want_line (1-based) and exit 1, both for -t and for a start."""
    lines = good_config().split("\n")
    mutate(lines)
    p = conf_file("\n".join(lines))
    r = kt.run_kotak(["-c", p, "-t"])
    o = out_of(r)
    eq(r.returncode, 1, "kotak -t exit status on a bad config (output %r)" % o.strip())
    check("%s:%d" % (p, want_line) in o,
          "error does not name %s:%d: %r" % (os.path.basename(p), want_line, o.strip()))
    if want_word:
        check(want_word in o, "error does not mention %r: %r" % (want_word, o.strip()))
    # the daemon refuses to start on it too
    r = kt.run_kotak(["-c", p], timeout=5)
    eq(r.returncode, 1, "kotak (daemon) exit status on a bad config")
    return o


def line_of(lines, needle):
    for i, ln in enumerate(lines):
        if needle in ln:
            return i
    raise AssertionError("no %r in config" % needle)


@test
def check_missing_file():
    p = os.path.join(tmp, "does-not-exist.conf")
    r = kt.run_kotak(["-c", p, "-t"])
    o = out_of(r)
    eq(r.returncode, 1, "kotak -t on a missing file")
    check(p in o, "error does not name the file: %r" % o)


@test
def check_unknown_option():
    def m(lines):
        lines.insert(2, "\toption bogus_option 'x'")
    bad_config(m, 3, "bogus_option")


@test
def check_unknown_section():
    def m(lines):
        lines.insert(0, "config frobnicate 'x'")
    bad_config(m, 1, "frobnicate")


@test
def check_bad_port_range():
    lines = good_config().split("\n")
    i = line_of(lines, "option port")

    def m(lines):
        lines[i] = "\toption port '99999'"
    bad_config(m, i + 1, "port")


@test
def check_bad_port_word():
    lines = good_config().split("\n")
    i = line_of(lines, "option port")

    def m(lines):
        lines[i] = "\toption port 'smtp'"
    bad_config(m, i + 1, "port")


@test
def check_bad_number():
    for val in ("lots", "-1", "12abc", "99999999999999999999999"):
        def m(lines, val=val):
            lines.insert(2, "\toption max_message_size '%s'" % val)
        bad_config(m, 3, "max_message_size")


@test
def check_bad_timeout():
    def m(lines):
        lines.insert(2, "\toption timeout 'soon'")
    bad_config(m, 3, "timeout")


@test
def check_unterminated_quote():
    def m(lines):
        lines[1] = "\toption hostname 'mail.example.lan"
    bad_config(m, 2)


@test
def check_bad_address():
    lines = good_config().split("\n")
    i = line_of(lines, "option address")

    def m(lines):
        lines[i] = "\toption address '127.0.0.999'"
    bad_config(m, i + 1, "address")


@test
def check_bad_proto():
    lines = good_config().split("\n")
    i = line_of(lines, "option proto")

    def m(lines):
        lines[i] = "\toption proto 'gopher'"
    bad_config(m, i + 1, "proto")


@test
def check_bad_log_value():
    def m(lines):
        lines.insert(2, "\toption log 'somewhere'")
    bad_config(m, 3, "log")


@test
def check_option_outside_section():
    def m(lines):
        lines.insert(0, "option hostname 'x'")
    bad_config(m, 1)


@test
def check_hostname_with_newline_rejected():
    # a value that would end up in the greeting / Received: must not hold a
    # line break (header / reply injection)
    p = conf_file(good_config().replace("option hostname 'mail.example.lan'",
                                        "option hostname 'mail.example.lan\n250 injected'"))
    r = kt.run_kotak(["-c", p, "-t"])
    eq(r.returncode, 1, "kotak -t on a hostname holding a newline (output %r)" % out_of(r))


@test
def start_fails_when_port_taken():
    s = socket.socket()
    s.bind((kt.LOOPBACK, 0))
    s.listen(1)
    try:
        port = s.getsockname()[1]
        p = conf_file(good_config(port=port))
        r = kt.run_kotak(["-c", p], timeout=5)
        check(r.returncode != 0, "kotak started although its port is taken")
        check(str(port) in out_of(r) or "bind" in out_of(r).lower() or "address" in out_of(r).lower(),
              "no useful error for a taken port: %r" % out_of(r))
    finally:
        s.close()


# ---------------------------------------------------------------- users

def users_env():
    d = tempfile.mkdtemp(dir=tmp)
    p = conf_file(good_config(d))
    return p, os.path.join(d, "users"), d


def user(conf, *args, password=None):
    stdin = (password + "\n").encode() if password is not None else b""
    return kt.run_kotak(["-c", conf, "user"] + list(args), stdin=stdin)


def read_users(path):
    with open(path) as f:
        lines = [ln.rstrip("\n") for ln in f if ln.strip()]
    out = {}
    for ln in lines:
        name, rest = ln.split(":", 1)
        out[name] = rest.split(":")[0]
    return out


def openssl_hash(salt, pw):
    r = subprocess.run(["openssl", "passwd", "-6", "-salt", salt, pw],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    eq(r.returncode, 0, "openssl passwd exit status")
    return r.stdout.decode().strip()


def check_hash(h, pw):
    m = re.match(r"^\$6\$([^$]{1,16})\$([./0-9A-Za-z]{86})$", h)
    check(m, "not a $6$salt$hash SHA512-crypt entry: %r" % h)
    if not kt.tool("openssl"):
        raise kt.Skip("openssl not installed")
    eq(openssl_hash(m.group(1), pw), h, "openssl passwd -6 of the password with the same salt")


@test
def user_add_creates_0600_sha512crypt():
    conf, uf, _ = users_env()
    r = user(conf, "add", "alice", password="correct horse")
    eq(r.returncode, 0, "user add rc (%s)" % out_of(r).strip())
    eq(oct(kt.file_mode(uf)), oct(0o600), "users file mode")
    u = read_users(uf)
    eq(sorted(u), ["alice"], "users in file")
    check_hash(u["alice"], "correct horse")


@test
def user_salts_differ():
    conf, uf, _ = users_env()
    for n in ("alice", "bob"):
        eq(user(conf, "add", n, password="same").returncode, 0, "user add %s" % n)
    u = read_users(uf)
    check(u["alice"] != u["bob"], "same password gives the same hash: salt not random")
    check_hash(u["bob"], "same")


@test
def user_list():
    conf, uf, _ = users_env()
    for n in ("alice", "bob", "carol"):
        eq(user(conf, "add", n, password="pw-" + n).returncode, 0, "user add %s" % n)
    r = user(conf, "list")
    eq(r.returncode, 0, "user list rc")
    names = r.stdout.decode().split()
    eq(sorted(names), ["alice", "bob", "carol"], "user list output")
    check("$6$" not in r.stdout.decode(), "user list prints hashes")


@test
def user_passwd_changes_only_that_user():
    conf, uf, _ = users_env()
    for n in ("alice", "bob"):
        eq(user(conf, "add", n, password="old-" + n).returncode, 0, "user add %s" % n)
    before = read_users(uf)
    r = user(conf, "passwd", "alice", password="new-alice")
    eq(r.returncode, 0, "user passwd rc (%s)" % out_of(r).strip())
    after = read_users(uf)
    check(after["alice"] != before["alice"], "hash unchanged by passwd")
    check_hash(after["alice"], "new-alice")
    eq(after["bob"], before["bob"], "bob's hash after alice's passwd")
    eq(oct(kt.file_mode(uf)), oct(0o600), "users file mode after passwd")


@test
def user_del():
    conf, uf, _ = users_env()
    for n in ("alice", "bob", "carol"):
        eq(user(conf, "add", n, password="pw").returncode, 0, "user add %s" % n)
    before = read_users(uf)
    r = user(conf, "del", "bob")
    eq(r.returncode, 0, "user del rc (%s)" % out_of(r).strip())
    after = read_users(uf)
    eq(sorted(after), ["alice", "carol"], "users after del bob")
    eq(after["alice"], before["alice"], "alice's hash after del bob")
    eq(oct(kt.file_mode(uf)), oct(0o600), "users file mode after del")


@test
def user_errors():
    conf, uf, _ = users_env()
    eq(user(conf, "add", "alice", password="pw").returncode, 0, "user add alice")
    with open(uf, "rb") as f:
        before = f.read()
    r = user(conf, "add", "alice", password="other")
    eq(r.returncode, 1, "user add of an existing user")
    r = user(conf, "passwd", "nobody", password="x")
    eq(r.returncode, 1, "user passwd of a missing user")
    r = user(conf, "del", "nobody")
    eq(r.returncode, 1, "user del of a missing user")
    r = user(conf, "frob", "alice")
    check(r.returncode != 0, "unknown user subcommand accepted")
    with open(uf, "rb") as f:
        eq(f.read(), before, "users file after failed commands")


@test
def user_bad_names_rejected():
    # the name becomes data_dir/mail/NAME/: no path tricks, no ':' or newline
    conf, uf, d = users_env()
    eq(user(conf, "add", "alice", password="pw").returncode, 0, "user add alice")
    with open(uf, "rb") as f:
        before = f.read()
    for bad in ("a:b", "../evil", "a/b", "", ".", "..", "a\nb"):
        r = user(conf, "add", bad, password="pw")
        eq(r.returncode, 1, "user add %r exit status" % bad)
    with open(uf, "rb") as f:
        eq(f.read(), before, "users file after bad names")


@test
def user_file_replaced_atomically():
    conf, uf, d = users_env()
    eq(user(conf, "add", "alice", password="pw").returncode, 0, "user add alice")
    ino1 = os.stat(uf).st_ino
    # a reader holding the old file keeps the old, complete content
    with open(uf, "rb") as old:
        eq(user(conf, "add", "bob", password="pw").returncode, 0, "user add bob")
        ino2 = os.stat(uf).st_ino
        check(ino1 != ino2, "users file rewritten in place (same inode), not temp + rename")
        check(b"bob" not in old.read(), "old open file changed")
    eq(user(conf, "passwd", "bob", password="pw2").returncode, 0, "user passwd bob")
    check(os.stat(uf).st_ino != ino2, "passwd rewrote the file in place")
    leftovers = [f for f in os.listdir(os.path.dirname(uf))
                 if f not in ("users", "kotak.conf", "data")]
    eq(leftovers, [], "temp files left beside the users file")


@test
def user_add_keeps_foreign_lines():
    # a users file edited by hand (Dovecot passwd-file style extra fields)
    conf, uf, d = users_env()
    h = "$6$abcdefgh$" + "A" * 86
    with open(uf, "w") as f:
        f.write("zed:%s\n" % h)
    os.chmod(uf, 0o600)
    eq(user(conf, "add", "alice", password="pw").returncode, 0, "user add alice")
    u = read_users(uf)
    eq(sorted(u), ["alice", "zed"], "users")
    eq(u["zed"], h, "hand-written entry kept")


if __name__ == "__main__":
    sys.exit(kt.main(setup))

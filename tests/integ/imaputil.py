"""IMAP test helpers: a kotak with imap listeners (KI), capability parsing.
Used by test_imap*.py."""

import os

import kt
from dovecot import RawImap


def have_imap():
    return b"+imap" in kt.run_kotak(["-V"]).stdout


class KI(kt.KotakTls):
    def __init__(self, protos=("smtp", "imap"), clear=True, env=None, **kw):
        if not have_imap():
            raise kt.Skip("kotak built without IMAP")
        self.env = env or {}    # test hooks (KOTAK_TEST_*), for the daemon only
        lists = {"cleartext_auth_net": ["127.0.0.0/8"]} if clear else {}
        kt.KotakTls.__init__(self, protos=protos, lists=lists, **kw)

    def raw(self, proto="imap"):
        return RawImap(self.addr_of(proto)[1])


def caps_of(line):
    s = line.decode()
    i = s.index("[CAPABILITY ") + 12
    return s[i:s.index("]", i)].split()


def mbox_of(msgs):
    """An mboxrd file of (LF or CRLF) messages, as kotak's delivery writes."""
    import re
    out = []    # joined once: += on bytes is quadratic (a 45 MB folder: 40 s)
    for m in msgs:
        m = m.replace(b"\r\n", b"\n")
        if not m.endswith(b"\n"):
            m += b"\n"
        out.append(b"From sender@example.org Thu Nov 26 12:00:00 2026\n" + re.sub(rb"(?m)^(>*From )", rb">\1", m) + b"\n")
    return b"".join(out)


def with_mail(user, msgs, **kw):
    """A started KI whose user has msgs in INBOX (written before the start)."""
    k = KI(start=False, **kw)
    d = os.path.join(k.data_dir, "mail", user)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "INBOX"), "wb") as f:
        f.write(mbox_of(msgs))
    k.start()
    return k


class Imap(RawImap):
    """RawImap with checks: ok() wants a tagged OK and returns the untagged
    bytes; no() wants NO (or BAD with bad=True)."""

    def __init__(self, k, user="alice", proto="imap"):
        RawImap.__init__(self, k.addr_of(proto)[1])
        if user:
            self.ok("LOGIN %s %s" % (user, kt.DEFAULT_PASSWORD))

    def ok(self, text):
        r, t = self.cmd(text)
        if t.split(b" ", 2)[1] != b"OK":
            raise AssertionError("%s: %r (untagged %r)" % (text[:80], t, r[:300]))
        self.last = t
        return r

    def no(self, text, bad=False):
        r, t = self.cmd(text)
        if t.split(b" ", 2)[1] != (b"BAD" if bad else b"NO"):
            raise AssertionError("%s: wanted %s, got %r" % (text[:80], "BAD" if bad else "NO", t))
        self.last = t
        return r

#!/usr/bin/env python3
"""BODY, BODYSTRUCTURE and ENVELOPE of the MIME corpus (mime_corpus.py),
kotak against Dovecot 2.3 (Debian dovecot-imapd, a private instance on
127.0.0.1), byte for byte.  kotak's side comes from its renderers over its
part table (build/test_mime dump: the same code IMAP FETCH runs).

Where kotak differs on purpose (DIFFERS below, each with why), the test
checks that the difference is exactly that one."""

import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kt  # noqa: E402
from kt import test, check, eq  # noqa: E402
import dovecot  # noqa: E402
import mime_corpus  # noqa: E402

DUMP = os.path.join(kt.ROOT, "build", "test_mime")
ITEMS = ("BODY", "BODYSTRUCTURE", "ENVELOPE")

# Deliberate differences:
# - from_quoting: kotak's mbox is mboxrd (README "Storage"), so a stored
#   ">From " line is sent, and counted, with one '>' less; Dovecot reads
#   mbox without unquoting, so its sizes are 3 octets larger here (one per
#   quoted line).  kotak sends what the sender wrote.
# - deep_nesting (21 levels): kotak follows MIME_DEPTH (16) levels of
#   nesting (Dovecot: 100); deeper multiparts are leaf parts, which bounds
#   the parser's memory per message.
DIFFERS = {
    "from_quoting": lambda dv, k: dv.replace(b'"7bit" 45 2', b'"7bit" 42 2') == k,
    "deep_nesting": lambda dv, k: dv.count(b"(") > k.count(b"(") - 40 and b'"16L"' not in k,
}


def kotak_items():
    if not os.access(DUMP, os.X_OK):
        raise kt.Skip("no %s (make build/test_mime)" % DUMP)
    with tempfile.NamedTemporaryFile(suffix=".mbox") as f:
        f.write(mime_corpus.mbox())
        f.flush()
        out = subprocess.run([DUMP, "dump", f.name], stdout=subprocess.PIPE, check=True).stdout
    items = {}
    for rec in out.split(b"\0\n"):
        if rec:
            n, item, rest = rec.split(b" ", 2)
            items[(int(n), item.decode())] = rest
    return items


def dovecot_items():
    d = dovecot.Dovecot(mime_corpus.mbox())
    items = {}
    try:
        c = dovecot.RawImap(d.port)
        c.cmd("LOGIN u pw")
        r, t = c.cmd("EXAMINE INBOX")
        check(t.split()[1] == b"OK", "dovecot EXAMINE: %r" % t)
        for i in range(len(mime_corpus.MSGS)):
            for item in ITEMS:
                r, t = c.cmd("FETCH %d (%s)" % (i + 1, item))
                pre = b"* %d FETCH (%s " % (i + 1, item.encode())
                check(r.startswith(pre) and r.endswith(b")\r\n"), "dovecot: %r" % r[:200])
                items[(i + 1, item)] = r[len(pre):-3]
        c.close()
    finally:
        d.stop()
    return items


@test(timeout=60)
def corpus_same_as_dovecot():
    k = kotak_items()
    dv = dovecot_items()
    bad = []
    for i, (name, _) in enumerate(mime_corpus.MSGS):
        for item in ITEMS:
            a, b = dv[(i + 1, item)], k.get((i + 1, item))
            if a == b:
                continue
            if name in DIFFERS and item != "ENVELOPE" and DIFFERS[name](a, b):
                continue
            bad.append("%s %s:\n  dovecot %r\n  kotak   %r" % (name, item, a[:400], (b or b"")[:400]))
    check(not bad, "%d differences:\n%s" % (len(bad), "\n".join(bad)))


if __name__ == "__main__":
    sys.exit(kt.main())

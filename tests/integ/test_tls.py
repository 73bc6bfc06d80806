#!/usr/bin/env python3
"""TLS (BearSSL under the connection): STARTTLS and implicit TLS with real
clients (openssl s_client, Python ssl/smtplib, curl, swaks), protocol
versions and suites, STARTTLS injection, stalled and garbage handshakes,
certificates (self-signed, RSA, EC, chain, expired, mismatched, reload)."""

import os
import re
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import threading
import time
from email.message import EmailMessage

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kt  # noqa: E402
from kt import test, check, eq  # noqa: E402

K = None
USERS = ("alice", "bob", "carol", "admin")
AEAD_RE = re.compile(r"^ECDHE-(ECDSA|RSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$")
HANDSHAKE_SECS = 30     # kotak's handshake timeout (tls.c HANDSHAKE_SECS)


def setup():
    global K
    K = kt.KotakTls(users=USERS, protos=("smtp", "submission", "smtps"),
                    aliases={"postmaster": ["admin"]})


def need(tool):
    if not kt.tool(tool):
        raise kt.Skip("%s not installed" % tool)


def hostport(proto):
    return "%s:%d" % K.addr_of(proto)


def s_client(args, stdin=b"QUIT\r\n", timeout=20, env=None):
    """openssl s_client; stdin is sent after the handshake, then it waits
    for the server to close (-ign_eof)."""
    need("openssl")
    r = subprocess.run(["openssl", "s_client", "-ign_eof"] + list(args), input=stdin,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, env=env)
    r.out = r.stdout.decode(errors="replace")
    r.err = r.stderr.decode(errors="replace")
    return r


def pem_blocks(text):
    return re.findall(r"-----BEGIN CERTIFICATE-----\n.*?-----END CERTIFICATE-----\n?", text, re.S)


def write(path, data):
    with open(path, "w" if isinstance(data, str) else "wb") as f:
        f.write(data)
    return path


def x509_info(pem_text, tmpdir):
    """(subject, san, fingerprint) of one PEM certificate text."""
    p = write(os.path.join(tmpdir, "peer.pem"), pem_text)
    r = kt.openssl(["x509", "-in", p, "-noout", "-subject", "-ext", "subjectAltName",
                    "-fingerprint", "-sha256"])
    check(r.returncode == 0, "openssl x509 on the served cert: %s" % r.err)
    subj = re.search(r"^subject=(.*)$", r.out, re.M).group(1)
    san = re.search(r"DNS:[^\s,]+", r.out)
    fp = re.search(r"Fingerprint=([0-9A-F:]+)", r.out).group(1)
    return subj, san.group(0) if san else "", fp


def kotak_cert(k):
    r = kt.run_kotak(["-c", k.conf, "cert"])
    eq(r.returncode, 0, "kotak cert exit status (%s)" % r.stderr.decode())
    out = r.stdout.decode()
    m = re.search(r"^SHA256 Fingerprint=([0-9A-F:]{95})$", out, re.M)
    check(m, "kotak cert output lacks 'SHA256 Fingerprint=..': %r" % out)
    return out.splitlines()[0], m.group(1)


def tls_info(k, proto="smtps", ctx=None):
    """Handshake with Python's ssl; returns (version, cipher name, der cert)."""
    c = k.connect(proto=proto, ctx=ctx) if proto == "smtps" else k.connect(proto=proto)
    try:
        if proto != "smtps":
            c.ok("EHLO client.example.org", 250)
            kt.smtp_starttls(c, ctx, ehlo=None)
            c.greeting = None
        return c.s.version(), c.s.cipher()[0], c.s.getpeercert(binary_form=True)
    finally:
        c.close()


def tls_fails(k, ctx, proto="smtps"):
    """True if the handshake fails (ssl error or the connection closed)."""
    try:
        c = k.connect(proto=proto, ctx=ctx, greet=False) if proto == "smtps" else None
        if c is None:
            c = k.connect(proto=proto)
            c.ok("EHLO client.example.org", 250)
            kt.smtp_starttls(c, ctx, ehlo=None)
        c.close()
        return False
    except (ssl.SSLError, ConnectionError, OSError, kt.Closed):
        return True


def client_hello(ctx=None):
    """The bytes of a real TLS ClientHello (Python's ssl through memory BIOs)."""
    ctx = ctx or kt.tls_client_context()
    inc, outg = ssl.MemoryBIO(), ssl.MemoryBIO()
    o = ctx.wrap_bio(inc, outg, server_hostname=kt.HOSTNAME)
    try:
        o.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outg.read()


def send_ok(k, user="bob", subject="ok", proto="smtp", **kw):
    """A plain delivery works (the server still serves others)."""
    n = k.count(user)
    c = k.connect(proto="smtp", **kw)
    c.ok("EHLO client.example.org", 250)
    c.ok("MAIL FROM:<x@example.org>", 250)
    c.ok("RCPT TO:<%s@example.lan>" % user, 250)
    c.ok("DATA", 354)
    c.send(kt.msg(subject, to=user + "@example.lan") + b".\r\n")
    eq(c.reply(timeout=10).code, 250, "final dot")
    c.close()
    k.wait_count(user, n + 1)


def own_instance(**kw):
    """A separate kotak for a test (stopped after it)."""
    kw.setdefault("users", USERS)
    kw.setdefault("protos", ("smtp", "smtps"))
    k = kt.KotakTls(**kw)
    kt.after_test(k.cleanup)
    return k


# ---------------------------------------------------------------- EHLO

@test
def ehlo_plain_offers_starttls_not_auth():
    for proto in ("smtp", "submission"):
        c = K.connect(proto=proto)
        kw = kt.ehlo_keywords(c.ok("EHLO client.example.org", 250))
        check("STARTTLS" in kw, "%s: EHLO lacks STARTTLS: %r" % (proto, kw))
        check(not any(k.startswith("AUTH") for k in kw), "%s: AUTH offered in cleartext: %r" % (proto, kw))
        c.close()


@test
def ehlo_under_tls_offers_auth_not_starttls():
    for proto in ("smtp", "submission", "smtps"):
        c = K.tls_session(proto=proto)
        kw = kt.ehlo_keywords(c.ehlo)
        check("STARTTLS" not in kw, "%s: STARTTLS offered under TLS: %r" % (proto, kw))
        check("AUTH PLAIN LOGIN" in kw, "%s: EHLO under TLS lacks 'AUTH PLAIN LOGIN': %r" % (proto, kw))
        c.ok("STARTTLS", 503)
        c.ok("NOOP", 250)
        c.close()


@test
def starttls_with_argument_501():
    c = K.connect()
    c.ok("EHLO client.example.org", 250)
    c.ok("STARTTLS now", 501)
    kt.smtp_starttls(c)
    c.close()


@test
def starttls_sent_with_ehlo_before_the_greeting():
    """Replies still queued when STARTTLS is read: they and the 220 leave
    in one write, and the handshake must still start (it once waited for
    the command timeout).  (EHLO and STARTTLS in one segment, as this test
    once sent, is a pipelining violation now: EHLO must end a group.)"""
    for i in range(10):
        c = kt.Smtp(*K.addr_of("smtp"), timeout=5)
        eq(c.reply().code, 220, "greeting")
        c.ok("EHLO client.example.org", 250)
        c.send(b"RSET\r\nNOOP\r\nSTARTTLS\r\n")
        eq(c.reply().code, 250, "RSET")
        eq(c.reply().code, 250, "NOOP")
        eq(c.reply().code, 220, "STARTTLS")
        kt.smtp_wrap_tls(c, timeout=5)
        c.ok("EHLO client.example.org", 250)
        c.ok("QUIT", 221)
        c.close()


# ---------------------------------------------------------------- openssl s_client

@test
def openssl_starttls_smtp():
    r = s_client(["-starttls", "smtp", "-connect", hostport("smtp"), "-servername", kt.HOSTNAME,
                  "-showcerts"])
    # (exit status 1 while kotak closes without close_notify: see quit_sends_close_notify)
    check(re.search(r"^New, TLSv1.2, Cipher is ", r.out, re.M), "no TLSv1.2 session: %s" % r.out[-600:])
    check("221 2.0.0" in r.out, "QUIT under TLS got no 221: %r" % r.out[-300:])
    eq(len(pem_blocks(r.out)), 1, "certificates sent (self-signed: 1)")


@test
def openssl_smtps_connect():
    r = s_client(["-connect", hostport("smtps"), "-servername", kt.HOSTNAME])
    check(re.search(r"^220 %s ESMTP" % re.escape(kt.HOSTNAME), r.out, re.M),
          "no 220 greeting under TLS: %r" % r.out[-400:])
    check("221 2.0.0" in r.out, "QUIT got no 221: %r" % r.out[-300:])


@test
def selfsigned_cert_names_and_fingerprint():
    certp = os.path.join(K.data_dir, "tls", "cert.pem")
    path, fp = kotak_cert(K)
    eq(path, certp, "kotak cert path")
    r = s_client(["-connect", hostport("smtps"), "-showcerts"])
    blocks = pem_blocks(r.out)
    check(blocks, "no certificate in s_client output: %s" % r.err[-300:])
    subj, san, served = x509_info(blocks[0], K.dir)
    check(re.search(r"CN ?= ?%s$" % re.escape(kt.HOSTNAME), subj), "subject %r lacks CN=%s" % (subj, kt.HOSTNAME))
    eq(san, "DNS:" + kt.HOSTNAME, "subjectAltName")
    eq(served, fp, "fingerprint of the served cert vs `kotak cert`")
    eq(kt.cert_fingerprint(certp), fp, "fingerprint of %s vs `kotak cert`" % certp)
    # verifies against itself, with hostname check
    r = s_client(["-connect", hostport("smtps"), "-CAfile", certp, "-verify_return_error",
                  "-verify_hostname", kt.HOSTNAME])
    check("Verify return code: 0 (ok)" in r.out and "221 2.0.0" in r.out,
          "verification with the cert as CA and -verify_hostname: %s" % (r.out[-300:] + r.err[-300:]))


@test
def selfsigned_key_private_and_stable():
    tdir = os.path.join(K.data_dir, "tls")
    eq(kt.file_mode(os.path.join(tdir, "key.pem")), 0o600, "mode of key.pem")
    eq(kt.file_mode(tdir), 0o700, "mode of data_dir/tls")
    with open(os.path.join(tdir, "key.pem")) as f:
        check("PRIVATE KEY" in f.read(), "key.pem holds no private key")
    # another start on that tls/ dir keeps the cert (no new one is made)
    k = own_instance(protos=("smtps",), start=False)
    kt.shutil.copytree(tdir, os.path.join(k.data_dir, "tls"))
    k.start()
    eq(kotak_cert(k)[1], kotak_cert(K)[1], "fingerprint after a restart on the same data_dir")
    check("made a self-signed" not in k.log(), "a new certificate was made")
    _, _, der = tls_info(k)
    eq(ssl.DER_cert_to_PEM_cert(der).strip(),
       open(os.path.join(tdir, "cert.pem")).read().strip(), "served certificate vs cert.pem")


# ---------------------------------------------------------------- versions and suites

@test
def tls12_aead_suite():
    for proto in ("smtps", "smtp", "submission"):
        ver, cipher, _ = tls_info(K, proto)
        eq(ver, "TLSv1.2", "%s: protocol version" % proto)
        check(AEAD_RE.match(cipher), "%s: suite %s is not ECDHE + AEAD" % (proto, cipher))
    r = s_client(["-connect", hostport("smtps"), "-brief"])
    check(re.search(r"Server Temp Key: (X25519|ECDH)", r.err + r.out),
          "no ECDHE key exchange in s_client -brief: %s" % (r.err + r.out)[-400:])


@test
def tls13_only_client_refused():
    r = s_client(["-connect", hostport("smtps"), "-tls1_3"])
    check(r.returncode != 0 and "220 " not in r.out,
          "a TLS 1.3-only client got a session: %s" % r.out[-300:])
    check(K.running(), "kotak died")


def old_client_works_against(args, env):
    """Control: the same openssl client flags reach a local s_server that
    speaks that version (so a failure against kotak is kotak's refusal)."""
    d = os.path.join(K.dir, "ctl")
    os.makedirs(d, exist_ok=True)
    cert, key = kt.make_cert(d, "ctl", kind="rsa")
    port = kt.free_port()
    srv = subprocess.Popen(["openssl", "s_server", "-accept", "%s:%d" % (kt.LOOPBACK, port), "-cert", cert,
                            "-key", key, "-cipher", "DEFAULT@SECLEVEL=0"] + args[:1],
                           stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env=env)
    try:
        kt.wait_for(lambda: _port_open(port), 5, what="openssl s_server")
        r = subprocess.run(["openssl", "s_client", "-connect", "%s:%d" % (kt.LOOPBACK, port)] + args,
                           input=b"", stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10, env=env)
        r.out = r.stdout.decode(errors="replace")
        return "Cipher is (NONE)" not in r.out and re.search(r"^New, TLSv1", r.out, re.M) is not None
    finally:
        srv.kill()
        srv.wait()


def _port_open(port):
    try:
        socket.create_connection((kt.LOOPBACK, port), 0.5).close()
        return True
    except OSError:
        return False


@test
def tls11_and_older_refused():
    # Debian's openssl.cnf sets MinProtocol TLSv1.2 and OpenSSL 3 wants
    # SECLEVEL 0 for TLS 1.0/1.1: lift both so the client really offers them
    env = dict(os.environ, OPENSSL_CONF="/dev/null")
    for flag in ("-tls1_1", "-tls1"):
        args = [flag, "-cipher", "DEFAULT@SECLEVEL=0"]
        if not old_client_works_against(args, env):
            raise kt.Skip("this openssl cannot speak %s even to s_server" % flag)
        for proto in ("smtps",):
            r = s_client(["-connect", hostport(proto)] + args, env=env)
            check(r.returncode != 0, "%s: handshake succeeded: %s" % (flag, r.out[-300:]))
            check("220 " not in r.out, "%s: got a greeting: %s" % (flag, r.out[-300:]))
        r = s_client(["-starttls", "smtp", "-connect", hostport("smtp")] + args, env=env)
        check(r.returncode != 0 and "221 " not in r.out, "%s STARTTLS: session established" % flag)
    check(K.running(), "kotak died")


@test
def cbc_and_static_rsa_suites_refused():
    for suite in ("ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES256-SHA", "AES128-GCM-SHA256",
                  "ECDHE-RSA-AES128-SHA"):
        ctx = kt.tls_client_context(ciphers=suite, tls12_only=True)
        check(tls_fails(K, ctx), "suite %s was accepted" % suite)
    check(K.running(), "kotak died")


@test
def server_preference_chacha_first():
    # a client that prefers AES-256-GCM still gets kotak's first choice
    ctx = kt.tls_client_context(ciphers="ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:"
                                        "ECDHE-ECDSA-CHACHA20-POLY1305", tls12_only=True)
    eq(tls_info(K, ctx=ctx)[1], "ECDHE-ECDSA-CHACHA20-POLY1305", "suite chosen")
    ctx = kt.tls_client_context(ciphers="ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256",
                                tls12_only=True)
    eq(tls_info(K, ctx=ctx)[1], "ECDHE-ECDSA-AES128-GCM-SHA256", "suite chosen (no ChaCha20 offered)")
    ctx = kt.tls_client_context(ciphers="ECDHE-ECDSA-AES256-GCM-SHA384", tls12_only=True)
    eq(tls_info(K, ctx=ctx)[1], "ECDHE-ECDSA-AES256-GCM-SHA384", "suite chosen (only AES-256 offered)")
    r = s_client(["-connect", hostport("smtps"), "-cipher",
                  "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305", "-tls1_2"])
    check(re.search(r"Cipher is ECDHE-ECDSA-CHACHA20-POLY1305", r.out), "s_client: %s" % r.out[-300:])


@test
def renegotiation_refused():
    need("openssl")
    p = subprocess.Popen(["openssl", "s_client", "-connect", hostport("smtps"), "-tls1_2"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(1)
        p.stdin.write(b"R\n")          # s_client's "renegotiate" command
        p.stdin.flush()
        out, err = p.communicate(timeout=10)
    except (subprocess.TimeoutExpired, BrokenPipeError):
        p.kill()
        out, err = p.communicate()
    out, err = out.decode(errors="replace"), err.decode(errors="replace")
    check("RENEGOTIATING" in err + out, "s_client did not try: %s" % err[-300:])
    check("no renegotiation" in err, "renegotiation not refused with no_renegotiation: %s" % err[-300:])
    check(K.running(), "kotak died after a renegotiation attempt")
    c = K.tls_session(proto="smtps")
    c.ok("NOOP", 250)
    c.close()


@test
def quit_sends_close_notify():
    # RFC 5246 7.2.1: close_notify before closing the write side; OpenSSL 3
    # clients report "unexpected eof" (s_client exits 1) without it
    for proto in ("smtps", "smtp"):
        c = kt.Smtp(*K.addr_of(proto))
        if proto == "smtps":
            c.s = kt.tls_client_context().wrap_socket(c.s, server_hostname=kt.HOSTNAME,
                                                      suppress_ragged_eofs=False)
            eq(c.reply().code, 220, "greeting")
        else:
            eq(c.reply().code, 220, "greeting")
            c.ok("EHLO client.example.org", 250)
            c.ok("STARTTLS", 220)
            c.s = kt.tls_client_context().wrap_socket(c.s, server_hostname=kt.HOSTNAME,
                                                      suppress_ragged_eofs=False)
        c.ok("QUIT", 221)
        try:
            d = c.s.recv(100)
        except ssl.SSLEOFError as e:
            raise AssertionError("%s: TCP closed without close_notify (%s)" % (proto, e))
        eq(d, b"", "%s: data after 221" % proto)
        c.close()


# ---------------------------------------------------------------- real clients

def write_msg(name, raw):
    return write(os.path.join(K.dir, name), raw)


@test
def smtplib_starttls_login_send():
    n = K.count("bob")
    m = EmailMessage()
    m["From"] = "alice@example.lan"
    m["To"] = "bob@example.lan"
    m["Subject"] = "smtplib over TLS"
    m.set_content("über TLS ✓\n", cte="8bit")
    host, port = K.addr_of("submission")
    with smtplib.SMTP(host, port, local_hostname="client.example.org", timeout=10) as s:
        s.ehlo()
        check(s.has_extn("starttls"), "no STARTTLS for smtplib: %r" % s.esmtp_features)
        check(not s.has_extn("auth"), "AUTH offered before STARTTLS")
        code, _ = s.starttls(context=kt.tls_client_context())
        eq(code, 220, "STARTTLS")
        s.ehlo()
        check("plain" in s.esmtp_features.get("auth", "").lower(), "AUTH after STARTTLS: %r" % s.esmtp_features)
        s.login("alice", kt.DEFAULT_PASSWORD)
        s.send_message(m)
    stored = K.wait_count("bob", n + 1)[-1]
    check("über TLS ✓".encode() in stored, "message body: %r" % stored[-200:])
    check(b"with ESMTPSA" in stored, "Received lacks ESMTPSA: %r" % stored[:400])


@test
def smtplib_ssl_login_send():
    n = K.count("carol")
    host, port = K.addr_of("smtps")
    with smtplib.SMTP_SSL(host, port, local_hostname="client.example.org", timeout=10,
                          context=kt.tls_client_context()) as s:
        s.login("carol", kt.DEFAULT_PASSWORD)
        s.sendmail("carol@example.lan", ["carol@example.lan"], kt.msg("smtplib ssl", to="carol@example.lan"))
    stored = K.wait_count("carol", n + 1)[-1]
    check(b"Subject: smtplib ssl" in stored, "stored: %r" % stored[-200:])


@test
def smtplib_login_wrong_password_raises():
    host, port = K.addr_of("smtps")
    with smtplib.SMTP_SSL(host, port, local_hostname="client.example.org", timeout=15,
                          context=kt.tls_client_context(), source_address=("127.0.0.77", 0)) as s:
        try:
            s.login("alice", "wrong")
        except smtplib.SMTPAuthenticationError as e:
            eq(e.smtp_code, 535, "code")
        else:
            raise AssertionError("login with a wrong password succeeded")


def curl(url, *args):
    need("curl")
    return subprocess.run(["curl", "-sS", "--max-time", "20", url] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)


@test
def curl_smtp_ssl_reqd_auth():
    n = K.count("bob")
    raw = kt.msg("curl starttls", sender="alice@example.lan", to="bob@example.lan")
    p = write_msg("curl1.eml", raw)
    r = curl("smtp://%s/client.example.org" % hostport("submission"), "--ssl-reqd", "-k",
             "--user", "alice:" + kt.DEFAULT_PASSWORD, "--mail-from", "alice@example.lan",
             "--mail-rcpt", "bob@example.lan", "--upload-file", p)
    eq(r.returncode, 0, "curl --ssl-reqd exit status (%s)" % r.stdout.decode()[-300:])
    stored = K.wait_count("bob", n + 1)[-1]
    check(stored.endswith(kt.crlf_to_lf(raw) + b"\n"), "stored: %r" % stored[-200:])
    check(b"(Authenticated sender: alice)" in stored, "no Authenticated sender: %r" % stored[:400])


@test
def curl_smtps_auth():
    n = K.count("alice")
    p = write_msg("curl2.eml", kt.msg("curl smtps", sender="bob@example.lan"))
    r = curl("smtps://%s/client.example.org" % hostport("smtps"), "-k",
             "--user", "bob:" + kt.DEFAULT_PASSWORD, "--mail-from", "bob@example.lan",
             "--mail-rcpt", "alice@example.lan", "--upload-file", p)
    eq(r.returncode, 0, "curl smtps exit status (%s)" % r.stdout.decode()[-300:])
    check(b"Subject: curl smtps" in K.wait_count("alice", n + 1)[-1], "message not stored")


@test
def curl_ssl_reqd_verifies_selfsigned_with_cacert():
    n = K.count("bob")
    p = write_msg("curl3.eml", kt.msg("curl cacert", sender="alice@example.lan", to="bob@example.lan"))
    certp = os.path.join(K.data_dir, "tls", "cert.pem")
    host, port = K.addr_of("submission")
    r = curl("smtp://%s:%d/client.example.org" % (kt.HOSTNAME, port), "--ssl-reqd", "--cacert", certp,
             "--resolve", "%s:%d:%s" % (kt.HOSTNAME, port, host),
             "--user", "alice:" + kt.DEFAULT_PASSWORD, "--mail-from", "alice@example.lan",
             "--mail-rcpt", "bob@example.lan", "--upload-file", p)
    eq(r.returncode, 0, "curl with --cacert (hostname verified) exit status (%s)" % r.stdout.decode()[-300:])
    K.wait_count("bob", n + 1)


def swaks(proto, *args):
    need("swaks")
    sup = subprocess.run(["swaks", "--support"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT).stdout
    if b"TLS supported" not in sup:
        raise kt.Skip("swaks without TLS (Debian: libnet-ssleay-perl)")
    return subprocess.run(["swaks", "--server", hostport(proto), "--helo", "swaks.example.org",
                           "--timeout", "15"] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=40)


@test
def swaks_tls_auth_plain():
    n = K.count("bob")
    r = swaks("submission", "--tls", "--auth", "PLAIN", "--auth-user", "alice", "--auth-password",
              kt.DEFAULT_PASSWORD, "--from", "alice@example.lan", "--to", "bob@example.lan",
              "--header", "Subject: swaks plain")
    eq(r.returncode, 0, "swaks exit status (%s)" % r.stdout.decode()[-400:])
    check(b"235 2.7.0" in r.stdout, "no 235: %s" % r.stdout.decode()[-400:])
    check(b"Subject: swaks plain" in K.wait_count("bob", n + 1)[-1], "message not stored")


@test
def swaks_tls_auth_login():
    n = K.count("alice")
    r = swaks("smtp", "--tls", "--auth", "LOGIN", "--auth-user", "bob", "--auth-password",
              kt.DEFAULT_PASSWORD, "--from", "bob@example.lan", "--to", "alice@example.lan",
              "--header", "Subject: swaks login")
    eq(r.returncode, 0, "swaks exit status (%s)" % r.stdout.decode()[-400:])
    check(b"334 VXNlcm5hbWU6" in r.stdout, "LOGIN dialogue not seen: %s" % r.stdout.decode()[-400:])
    check(b"Subject: swaks login" in K.wait_count("alice", n + 1)[-1], "message not stored")


@test
def swaks_tls_on_connect():
    n = K.count("carol")
    r = swaks("smtps", "--tlsc", "--auth", "PLAIN", "--auth-user", "carol", "--auth-password",
              kt.DEFAULT_PASSWORD, "--from", "carol@example.lan", "--to", "carol@example.lan",
              "--header", "Subject: swaks tlsc")
    eq(r.returncode, 0, "swaks --tlsc exit status (%s)" % r.stdout.decode()[-400:])
    K.wait_count("carol", n + 1)


@test
def big_message_over_tls():
    # many full 16 KiB records in, through the small output buffer out
    n = K.count("alice")
    body = b"".join(b"line %06d %s\r\n" % (i, b"x" * 60) for i in range(20000))   # ~1.4 MB
    c = K.tls_session()
    c.ok("MAIL FROM:<big@example.org>", 250)
    c.ok("RCPT TO:<alice@example.lan>", 250)
    c.ok("DATA", 354)
    c.send(kt.msg("big tls", body=body) + b".\r\n")
    eq(c.reply(timeout=20).code, 250, "final dot")
    c.close()
    stored = K.wait_count("alice", n + 1)[-1]
    check(stored.endswith(kt.crlf_to_lf(body) + b"\n"), "big body differs (len %d)" % len(stored))


@test
def pipelined_commands_under_tls():
    c = K.tls_session()
    c.send(b"MAIL FROM:<p@example.org>\r\nRCPT TO:<bob@example.lan>\r\nRCPT TO:<nobody@example.lan>\r\n"
           b"RSET\r\nNOOP\r\n")
    codes = [c.reply().code for _ in range(5)]
    eq(codes, [250, 250, 550, 250, 250], "pipelined reply codes")
    c.close()


# ---------------------------------------------------------------- STARTTLS injection

def expect_nothing(c, secs=0.5):
    try:
        c.s.settimeout(secs)
        d = c.s.recv(4096)
        raise AssertionError("unexpected data: %r" % (c.buf + d))
    except (socket.timeout, ssl.SSLWantReadError, TimeoutError):
        pass
    finally:
        c.s.settimeout(c.timeout)
    check(not c.buf, "unexpected buffered data: %r" % c.buf)


@test
def starttls_injection_rset():
    c = K.connect()
    c.ok("EHLO client.example.org", 250)
    c.send(b"STARTTLS\r\nRSET\r\n")              # one segment
    r = c.reply()
    eq(r.code, 220, "STARTTLS reply")
    time.sleep(0.3)                              # a cleartext reply to RSET would be here now
    c.s.setblocking(False)
    try:
        extra = c.s.recv(4096)
    except BlockingIOError:
        extra = b""
    c.s.setblocking(True)
    eq(extra, b"", "cleartext bytes after 220 to STARTTLS")
    kt.smtp_wrap_tls(c)
    r = c.cmd("HELP")                            # 214, unlike RSET's 250
    eq(r.code, 214, "first reply under TLS (injected RSET answered?) %r" % r.text)
    c.ok("NOOP", 250)
    expect_nothing(c)
    c.close()


@test
def starttls_injection_mail():
    c = K.connect()
    c.ok("EHLO client.example.org", 250)
    c.send(b"STARTTLS\r\nMAIL FROM:<a@b.example>\r\n")
    eq(c.reply().code, 220, "STARTTLS reply")
    kt.smtp_wrap_tls(c)
    r = c.cmd("EHLO client.example.org")
    check(r.code == 250 and r.lines[0].startswith("250-" + kt.HOSTNAME),
          "first reply under TLS is not the EHLO reply: %r" % r.text)
    r = c.cmd("RCPT TO:<bob@example.lan>")
    eq(r.code, 503, "RCPT without MAIL in the TLS session (%r)" % r.text)
    expect_nothing(c)
    c.close()


@test
def starttls_injection_second_segment():
    # bytes right behind STARTTLS in a later segment, before the handshake:
    # either the handshake fails (they are no ClientHello) or they vanish
    c = K.connect()
    c.ok("EHLO client.example.org", 250)
    c.send(b"STARTTLS\r\n")
    c.send(b"RSET\r\n")
    eq(c.reply().code, 220, "STARTTLS reply")
    try:
        kt.smtp_wrap_tls(c)
    except (ssl.SSLError, OSError, AssertionError):
        c.close()
        send_ok(K, subject="after-injection")
        return
    eq(c.cmd("HELP").code, 214, "first reply under TLS")
    c.close()


@test
def starttls_resets_session():
    c = K.connect()
    c.ok("EHLO client.example.org", 250)
    c.ok("MAIL FROM:<a@example.org>", 250)      # a transaction in progress
    kt.smtp_starttls(c, ehlo=None)
    c.ok("MAIL FROM:<a@example.org>", 503, enh="5.5.1")   # EHLO needed again
    c.ok("RCPT TO:<bob@example.lan>", 503)
    c.ok("AUTH PLAIN " + kt.sasl_plain("alice", kt.DEFAULT_PASSWORD), 503)
    c.ok("EHLO client.example.org", 250)
    c.ok("RCPT TO:<bob@example.lan>", 503)      # the old MAIL is gone
    c.ok("MAIL FROM:<a@example.org>", 250)
    c.close()


@test
def starttls_pipelined_after_ehlo():
    # EHLO must end a group (RFC 2920 3.1): STARTTLS behind it is refused
    c = K.connect()
    c.send(b"EHLO client.example.org\r\nSTARTTLS\r\n")
    rs = c.replies_until_close(10)
    eq([r.code for r in rs], [554], "EHLO and STARTTLS in one segment")
    # after EHLO's reply, STARTTLS may close a group
    c = K.connect()
    c.ok("EHLO client.example.org", 250)
    c.send(b"NOOP\r\nSTARTTLS\r\n")
    eq(c.reply().code, 250, "NOOP")
    eq(c.reply().code, 220, "STARTTLS")
    kt.smtp_wrap_tls(c)
    c.ok("EHLO client.example.org", 250)
    c.close()


# ---------------------------------------------------------------- stalled and garbage handshakes

@test(timeout=HANDSHAKE_SECS + 40)
def handshake_stall_times_out():
    t0 = time.monotonic()
    idle = kt.Smtp(*K.addr_of("smtps"))                  # sends nothing
    half = kt.Smtp(*K.addr_of("smtps"))
    ch = client_hello()
    check(len(ch) > 100, "ClientHello too short: %d" % len(ch))
    half.send(ch[:len(ch) // 2])
    st = K.connect()                                  # STARTTLS, then nothing
    st.ok("EHLO client.example.org", 250)
    st.ok("STARTTLS", 220)
    t_st = time.monotonic()
    # meanwhile the server serves others: plain, STARTTLS and smtps sessions
    send_ok(K, subject="during-stall")
    for proto in ("smtp", "smtps"):
        c = K.tls_session(proto=proto)
        c.ok("NOOP", 250)
        c.close()
    closed = {}

    def watch(name, c, since):
        if c.wait_closed(HANDSHAKE_SECS + 15):
            closed[name] = time.monotonic() - since
    ths = [threading.Thread(target=watch, args=a) for a in
           (("idle", idle, t0), ("half", half, t0), ("starttls", st, t_st))]
    for t in ths:
        t.start()
    time.sleep(5)
    c = K.tls_session(proto="smtps")                  # still serving, 5 s into the stall
    c.ok("NOOP", 250)
    c.close()
    for t in ths:
        t.join()
    for name in ("idle", "half", "starttls"):
        check(name in closed, "%s: not closed within %d s" % (name, HANDSHAKE_SECS + 15))
        check(HANDSHAKE_SECS - 2 <= closed[name] <= HANDSHAKE_SECS + 5,
              "%s: closed after %.1f s, want about %d" % (name, closed[name], HANDSHAKE_SECS))
    check(K.log().count("handshake timeout") >= 3, "log lacks 'handshake timeout' lines")
    eq(half.buf, b"", "server sent data to a half ClientHello")
    for c in (idle, half, st):
        c.close()
    send_ok(K, subject="after-stall")


@test
def handshake_after_completion_uses_command_timeout():
    # once the handshake is done, the normal command timeout applies
    k = own_instance(main={"timeout": 3}, protos=("smtps",))
    c = k.connect(proto="smtps")
    t0 = time.monotonic()
    rs = c.replies_until_close(15)
    took = time.monotonic() - t0
    check(rs and rs[-1].code == 421, "no 421 on timeout: %r" % rs)
    check(2 <= took <= 6, "timeout after %.1f s, want about 3" % took)


def garbage_closes(data, proto="smtps", limit=3.0):
    c = kt.Smtp(*K.addr_of(proto))
    if proto != "smtps":
        eq(c.reply().code, 220, "greeting")
        c.ok("EHLO client.example.org", 250)
        c.ok("STARTTLS", 220)
    t0 = time.monotonic()
    c.send(data)
    ok = c.wait_closed(limit + 2)
    took = time.monotonic() - t0
    c.close()
    check(ok, "%s: garbage %r did not close the session" % (proto, data[:20]))
    check(took <= limit, "%s: closed after %.1f s" % (proto, took))
    # no SMTP in cleartext came back
    check(not re.search(rb"^[2-5]\d\d[ -]", c.buf), "cleartext SMTP reply to garbage: %r" % c.buf[:100])


@test
def garbage_handshake_closes_only_that_session():
    other = K.tls_session(proto="smtps")                  # an established session
    plain = K.connect()
    plain.ok("EHLO client.example.org", 250)
    garbage_closes(b"EHLO client.example.org\r\n")       # SMTP on the smtps port
    garbage_closes(b"GET / HTTP/1.0\r\n\r\n")
    garbage_closes(b"\x16\x03\x01\xff\xff" + b"\x00" * 64)  # record longer than allowed
    garbage_closes(b"\x80\x2e\x01\x03\x01" + b"\x00" * 45)  # SSLv2-style hello
    garbage_closes(b"\x16\x03\x03\x00\x10\x01\x00\x00\x0c" + b"\xff" * 12)  # ClientHello, bad body
    garbage_closes(b"\x16\x03\x03\x00\x10\x02\x00\x00\x0c" + b"\x00" * 12)  # a ServerHello
    garbage_closes(b"\x17\x03\x03\x00\x10" + b"\x00" * 16)                  # app data first
    garbage_closes(b"\x15\x03\x03\x00\x02\x02\x28")                          # fatal alert
    garbage_closes(b"\x00" * 200, proto="smtp")            # after STARTTLS
    garbage_closes(b"QUIT\r\n", proto="submission")
    other.ok("NOOP", 250)
    other.ok("RSET", 250)
    other.close()
    plain.ok("NOOP", 250)
    plain.close()
    check(K.running(), "kotak died")
    send_ok(K, subject="after-garbage")


@test
def client_closes_mid_handshake():
    for n in (1, 5, 60):
        c = kt.Smtp(*K.addr_of("smtps"))
        c.send(client_hello()[:n])
        c.close()
    c = kt.Smtp(*K.addr_of("smtps"))
    c.send(client_hello())
    time.sleep(0.2)
    c.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    c.close()                                             # RST after the ServerHello
    time.sleep(0.3)
    check(K.running(), "kotak died")
    c = K.tls_session(proto="smtps")
    c.ok("NOOP", 250)
    c.close()


@test(timeout=90)
def tls_slots_exhausted():
    slots = None
    for p in (os.path.join(kt.ROOT, "build", "config.h"),):
        try:
            m = re.search(r"#define CONFIG_TLS_SLOTS (\d+)", open(p).read())
            slots = int(m.group(1)) if m else None
        except OSError:
            pass
    if not slots or slots > 100:
        raise kt.Skip("CONFIG_TLS_SLOTS unknown or too large (%s)" % slots)
    k = own_instance(main={"max_sessions_per_ip": 120, "max_sessions": 120})
    held = []
    try:
        for i in range(slots):
            held.append(k.tls_session(proto="smtps" if i % 2 else "smtp"))
        c = k.connect()
        c.ok("EHLO client.example.org", 250)
        c.ok("STARTTLS", 454, enh="4.7.0")
        c.ok("NOOP", 250)                                  # the session goes on in cleartext
        c.close()
        s = kt.Smtp(*k.addr_of("smtps"))
        check(s.wait_closed(5), "smtps session beyond the pool not closed")
        s.close()
        held.pop().close()
        time.sleep(0.3)
        c = k.tls_session(proto="smtps")                   # a slot is free again
        c.ok("NOOP", 250)
        held.append(c)
    finally:
        for c in held:
            c.close()


# ---------------------------------------------------------------- certificates

def conf_with_cert(k_dir, cert, key=None):
    main = {"cert": cert}
    if key:
        main["key"] = key
    return main


def cert_instance(cert, key=None, start=True, **kw):
    d = kt.tempfile.mkdtemp(prefix="kt-")
    k = kt.KotakTls(users=("alice", "admin"), protos=("smtp", "smtps"), main=conf_with_cert(d, cert, key),
                    dir=d, start=start, **kw)
    kt.after_test(k.cleanup)
    return k


def tmpdir():
    d = kt.tempfile.mkdtemp(prefix="kt-cert-")
    kt.after_test(lambda: kt.shutil.rmtree(d, ignore_errors=True))
    return d


@test
def rsa2048_cert():
    d = tmpdir()
    cert, key = kt.make_cert(d, "rsa", kind="rsa")
    k = cert_instance(cert, key)
    for proto in ("smtps", "smtp"):
        ver, cipher, der = tls_info(k, proto)
        eq(ver, "TLSv1.2", "version")
        check(cipher.startswith("ECDHE-RSA-") and AEAD_RE.match(cipher), "suite %s" % cipher)
    r = s_client(["-connect", "%s:%d" % k.addr_of("smtps")])
    check("Server public key is 2048 bit" in r.out, "s_client: %s" % r.out[-500:])
    eq(kotak_cert(k), (cert, kt.cert_fingerprint(cert)), "kotak cert")


@test
def ec_p256_cert_configured():
    d = tmpdir()
    cert, key = kt.make_cert(d, "ec", kind="ec")
    k = cert_instance(cert, key)
    ver, cipher, der = tls_info(k)
    check(cipher.startswith("ECDHE-ECDSA-"), "suite %s" % cipher)
    eq(ssl.DER_cert_to_PEM_cert(der).strip(), open(cert).read().strip(), "served certificate")
    check(not os.path.exists(os.path.join(k.data_dir, "tls")), "a self-signed cert was made anyway")
    r = s_client(["-connect", "%s:%d" % k.addr_of("smtps"), "-CAfile", cert, "-verify_return_error",
                  "-verify_hostname", kt.HOSTNAME])
    check("Verify return code: 0 (ok)" in r.out and "221 2.0.0" in r.out,
          "verification: %s" % (r.out[-300:] + r.err[-300:]))


@test
def cert_and_key_in_one_file_traditional_key():
    d = tmpdir()
    cert, key = kt.make_cert(d, "one", kind="rsa")
    r = kt.openssl(["rsa", "-in", key, "-traditional"])
    eq(r.returncode, 0, "openssl rsa -traditional")
    check("BEGIN RSA PRIVATE KEY" in r.out, "not a traditional key")
    both = write(os.path.join(d, "both.pem"), open(cert).read() + r.out)
    k = cert_instance(both)                                  # no option key
    check(tls_info(k)[1].startswith("ECDHE-RSA-"), "RSA suite")
    d2 = tmpdir()
    cert2, key2 = kt.make_cert(d2, "ec", kind="ec")
    r = kt.openssl(["ec", "-in", key2])                      # "EC PRIVATE KEY"
    check("BEGIN EC PRIVATE KEY" in r.out, "not an EC PRIVATE KEY: %s" % r.out[:60])
    k2 = cert_instance(cert2, write(os.path.join(d2, "ec.trad"), r.out))
    check(tls_info(k2)[1].startswith("ECDHE-ECDSA-"), "EC suite")


def make_chain(d):
    """root CA -> intermediate CA -> leaf for HOSTNAME; returns paths."""
    def o(args):
        r = kt.openssl(args)
        check(r.returncode == 0, "openssl %s: %s" % (args[0], r.err[-300:]))
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    p = lambda n: os.path.join(d, n)  # noqa: E731
    o(["req", "-x509"] + ec + ["-keyout", p("root.key"), "-out", p("root.pem"), "-days", "30",
                              "-subj", "/CN=kotak test root", "-addext", "basicConstraints=critical,CA:TRUE",
                              "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    write(p("ca.ext"), "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n")
    write(p("leaf.ext"), "basicConstraints=CA:FALSE\nsubjectAltName=DNS:%s\n"
          "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n" % kt.HOSTNAME)
    o(["req", "-new"] + ec + ["-keyout", p("int.key"), "-out", p("int.csr"), "-subj", "/CN=kotak test intermediate"])
    o(["x509", "-req", "-in", p("int.csr"), "-CA", p("root.pem"), "-CAkey", p("root.key"), "-CAcreateserial",
       "-out", p("int.pem"), "-days", "30", "-extfile", p("ca.ext")])
    o(["req", "-new"] + ec + ["-keyout", p("leaf.key"), "-out", p("leaf.csr"), "-subj", "/CN=" + kt.HOSTNAME])
    o(["x509", "-req", "-in", p("leaf.csr"), "-CA", p("int.pem"), "-CAkey", p("int.key"), "-CAcreateserial",
       "-out", p("leaf.pem"), "-days", "30", "-extfile", p("leaf.ext")])
    return p


@test
def chain_is_sent():
    d = tmpdir()
    p = make_chain(d)
    # with openssl's text dump in front, as `openssl x509 -text` leaves it
    txt = kt.openssl(["x509", "-in", p("leaf.pem"), "-text"]).out
    chain = write(p("chain.pem"), txt + open(p("int.pem")).read())
    k = cert_instance(chain, p("leaf.key"))
    r = s_client(["-connect", "%s:%d" % k.addr_of("smtps"), "-showcerts", "-CAfile", p("root.pem"),
                  "-verify_return_error", "-verify_hostname", kt.HOSTNAME])
    eq(len(pem_blocks(r.out)), 2, "certificates sent (leaf + intermediate)")
    check("Verify return code: 0 (ok)" in r.out and "221 2.0.0" in r.out,
          "chain verification with the root: %s" % (r.out[-300:] + r.err[-300:]))
    eq(kotak_cert(k)[1], kt.cert_fingerprint(p("leaf.pem")), "kotak cert fingerprint is the leaf's")
    r = s_client(["-starttls", "smtp", "-connect", "%s:%d" % k.addr_of("smtp"), "-showcerts"])
    eq(len(pem_blocks(r.out)), 2, "certificates sent after STARTTLS")


def expired_cert(d):
    key = os.path.join(d, "old.key")
    csr = os.path.join(d, "old.csr")
    cert = os.path.join(d, "old.pem")
    r = kt.openssl(["req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-keyout", key, "-out", csr, "-subj", "/CN=" + kt.HOSTNAME,
                    "-addext", "subjectAltName=DNS:" + kt.HOSTNAME])
    check(r.returncode == 0, "openssl req: %s" % r.err)
    write(os.path.join(d, "index.txt"), "")
    write(os.path.join(d, "serial"), "01\n")
    write(os.path.join(d, "ca.cnf"),
          "[ca]\ndefault_ca=d\n[d]\ndatabase=%s/index.txt\nnew_certs_dir=%s\nserial=%s/serial\n"
          "default_md=sha256\npolicy=p\ncopy_extensions=copy\nunique_subject=no\n[p]\ncommonName=supplied\n"
          % (d, d, d))
    r = kt.openssl(["ca", "-batch", "-notext", "-config", os.path.join(d, "ca.cnf"), "-selfsign",
                    "-keyfile", key, "-in", csr, "-out", cert,
                    "-startdate", "20200101000000Z", "-enddate", "20200201000000Z"])
    check(r.returncode == 0, "openssl ca: %s" % r.err[-300:])
    return cert, key


@test
def expired_cert_warns_but_serves():
    d = tmpdir()
    cert, key = expired_cert(d)
    k = cert_instance(cert, key, start=False)
    r = kt.run_kotak(["-c", k.conf, "-t"])
    eq(r.returncode, 0, "kotak -t with an expired cert (%s)" % r.stderr.decode())
    check(b"has expired" in r.stdout + r.stderr, "-t does not warn: %r" % (r.stdout + r.stderr))
    k.start()
    check("has expired" in k.log(), "no 'has expired' warning in the log: %s" % k.log_tail(5))
    _, cipher, der = tls_info(k)
    eq(ssl.DER_cert_to_PEM_cert(der).strip(), open(cert).read().strip(), "served certificate")
    r = s_client(["-connect", "%s:%d" % k.addr_of("smtps"), "-CAfile", cert])
    check("certificate has expired" in r.out + r.err or "Verify return code: 10" in r.out,
          "the client does not see the expiry: %s" % r.out[-300:])


@test
def mismatched_key_refused():
    d = tmpdir()
    cert, _ = kt.make_cert(d, "a", kind="ec")
    _, key_b = kt.make_cert(d, "b", kind="ec")
    k = cert_instance(cert, key_b, start=False)
    r = kt.run_kotak(["-c", k.conf, "-t"])
    eq(r.returncode, 1, "kotak -t exit status")
    err = (r.stdout + r.stderr).decode()
    check("key does not match the certificate" in err and cert in err, "-t message: %r" % err)
    k.start(wait=False)
    try:
        rc = k.proc.wait(5)
    except subprocess.TimeoutExpired:
        raise AssertionError("kotak started with a mismatched key")
    eq(rc, 1, "exit status at start")
    check("key does not match" in k.log(), "start message: %s" % k.log_tail(3))
    # RSA cert with another RSA key, and an RSA cert with an EC key
    cert_r, _ = kt.make_cert(d, "r1", kind="rsa")
    _, key_r2 = kt.make_cert(d, "r2", kind="rsa")
    for key, want in ((key_r2, "key does not match"), (key_b, "key type does not match")):
        k.main.update({"cert": cert_r, "key": key})
        k.write_config()
        r = kt.run_kotak(["-c", k.conf, "-t"])
        eq(r.returncode, 1, "kotak -t exit status (%s)" % want)
        check(want in r.stderr.decode(), "-t message: %r, want %r" % (r.stderr.decode(), want))


@test
def bad_cert_files_refused():
    d = tmpdir()
    cert, key = kt.make_cert(d, "a", kind="ec")
    enc = os.path.join(d, "enc.key")
    r = kt.openssl(["pkey", "-in", key, "-aes256", "-passout", "pass:x", "-out", enc])
    eq(r.returncode, 0, "openssl pkey -aes256 (%s)" % r.err)
    cases = [
        (os.path.join(d, "missing.pem"), key, "No such file"),
        (write(os.path.join(d, "junk.pem"), "not a certificate\n"), key, ""),
        (cert, enc, ""),                                      # encrypted key
        (cert, cert, "private key"),                          # no key in the key file
        (key, key, "certificate"),                            # no certificate
    ]
    for c_, k_, want in cases:
        k = cert_instance(c_, k_, start=False)
        r = kt.run_kotak(["-c", k.conf, "-t"])
        msg = r.stderr.decode()
        eq(r.returncode, 1, "kotak -t exit status for cert=%s key=%s (%r)" % (c_, k_, msg))
        check(msg.startswith("kotak: ") and ("/" in msg), "message %r names no file" % msg)
        check(want in msg, "message %r lacks %r" % (msg, want))


@test
def reload_new_cert():
    d = tmpdir()
    cert, key = kt.make_cert(d, "one", kind="ec")
    k = cert_instance(cert, key)
    fp1 = kt.cert_fingerprint(cert)
    old = k.tls_session(proto="smtp")                  # a session on the first cert
    cert2, key2 = kt.make_cert(d, "two", kind="rsa")
    os.replace(cert2, cert)
    os.replace(key2, key)
    k.hup()
    time.sleep(0.5)
    _, cipher, der = tls_info(k)
    eq(ssl.DER_cert_to_PEM_cert(der).strip(), open(cert).read().strip(), "cert served after reload")
    check(cipher.startswith("ECDHE-RSA-"), "suite after reload: %s" % cipher)
    old.ok("NOOP", 250)                                # the old session lives on
    old.ok("MAIL FROM:<x@example.org>", 250)
    old.ok("RCPT TO:<alice@example.lan>", 250)
    old.ok("DATA", 354)
    old.send(kt.msg("old session") + b".\r\n")
    eq(old.reply().code, 250, "final dot on the old session")
    old.close()
    check(kt.cert_fingerprint(cert) != fp1, "test cert did not change")
    # a broken cert on reload: the old one stays
    write(cert, "garbage\n")
    k.hup()
    time.sleep(0.5)
    check("keeping the whole running config" in k.log(), "no warning on a bad reload: %s" % k.log_tail(3))
    _, cipher, _ = tls_info(k)
    check(cipher.startswith("ECDHE-RSA-"), "suite after a bad reload: %s" % cipher)
    check(k.running(), "kotak died")


@test
def no_certificate_means_no_starttls():
    k = own_instance(start=False)
    with open(os.path.join(k.data_dir, "tls"), "w") as f:    # a file where the tls/ dir goes
        f.write("x")
    k.start(wait=False)
    kt.wait_for(lambda: "TLS is off" in k.log(), 5, what="'TLS is off' in the log")
    check(k.running(), "kotak exited without a certificate")
    c = k.connect(proto="smtp")
    kw = kt.ehlo_keywords(c.ok("EHLO client.example.org", 250))
    check("STARTTLS" not in kw, "STARTTLS offered without a certificate: %r" % kw)
    c.ok("STARTTLS", 454, enh="4.7.0")
    c.ok("NOOP", 250)
    c.close()
    s = kt.Smtp(*k.addr_of("smtps"))
    check(s.wait_closed(3), "smtps session without a certificate not closed")
    s.close()
    eq(kt.run_kotak(["-c", k.conf, "cert"]).returncode, 1, "kotak cert exit status without a certificate")


@test
def kotak_cert_as_root_before_first_start():
    # the admin runs `kotak cert` (as root) before the daemon ever ran;
    # the daemon then runs as `option user` and must still use that cert
    if not kt.is_root():
        raise kt.Skip("needs root")
    import pwd
    try:
        pw = pwd.getpwnam("nobody")
    except KeyError:
        raise kt.Skip("no user nobody")
    k = own_instance(main={"user": "nobody"}, start=False)
    os.chmod(k.dir, 0o755)
    for p in (k.data_dir, k.users_file):
        os.chown(p, pw.pw_uid, pw.pw_gid)
    path, fp = kotak_cert(k)
    k.start(wait=False)
    try:
        k.wait_ready(timeout=4)
    except AssertionError:
        raise AssertionError("TLS unusable by the daemon running as nobody after `kotak cert` as root: %s"
                             % [l for l in k.log().splitlines() if "tls" in l][:2])
    eq(x509_fp_of_session(k), fp, "served cert vs `kotak cert`")


def x509_fp_of_session(k):
    _, _, der = tls_info(k)
    d = tmpdir()
    return x509_info(ssl.DER_cert_to_PEM_cert(der), d)[2]


if __name__ == "__main__":
    sys.exit(kt.main(setup))

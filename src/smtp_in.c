/*
 * smtp_in.c: the SMTP server state machine (RFC 5321, with PIPELINING,
 * SIZE, 8BITMIME, ENHANCEDSTATUSCODES, SMTPUTF8).
 *
 *	ST_INIT --EHLO/HELO--> ST_HELO --MAIL--> ST_MAIL --RCPT--> ST_RCPT
 *	ST_RCPT --DATA--> ST_DATA --"."--> ST_COMMIT --fsync--> ST_HELO
 *
 * The transaction goes straight to a spool temp file as it happens (the
 * envelope at RCPT, the message at DATA), so a session holds no recipient
 * list in memory however many recipients it has.
 *
 * STARTTLS resets the session to ST_INIT and drops whatever the client
 * sent behind it (conn_starttls).  AUTH PLAIN/LOGIN (RFC 4954) are offered
 * only where auth_allowed() (TLS, or cleartext_auth_net); the submission
 * and smtps listeners take MAIL only after AUTH.  An authenticated user, or
 * a client in list relay_net, may send to any domain (the non-local
 * recipients go through the queue to the relay, smtp_out.c); an
 * authenticated user only from addresses of their own unless option
 * auth_any_sender.
 */
#include "kotak.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

enum { ST_INIT, ST_HELO, ST_MAIL, ST_RCPT, ST_DATA, ST_COMMIT };
enum { AU_NONE, AU_PLAIN, AU_USER, AU_PASS };	/* waiting for a 334 response */
#define AUTH_TRIES	3	/* failed logins before the session is closed */

#define OUT_NEEDED	700	/* reply room needed before taking a command */

static void
tx_reset(struct conn *c)
{
	struct smtp_sess *s = &c->u.smtp;

	if (s->fd >= 0)
		close(s->fd);
	if (s->tmp[0])
		unlink(s->tmp);
	s->fd = -1;
	s->tmp[0] = s->from[0] = s->rcpt1[0] = s->qid[0] = '\0';
	s->nrcpt = 0;
	s->utf8 = 0;
	s->declared = 0;
	if (s->st > ST_HELO)
		s->st = ST_HELO;
}

/* Idle time allowed now: a session neither logged in nor in a mail
 * transaction gets the shorter pre-login time. */
static int
idle(const struct smtp_sess *s)
{
	return s->auth[0] || s->st >= ST_MAIL ? cfg.timeout : conn_login_timeout();
}

/* A client error: reply, count it, and close at the limit. */
/* fmt: a format with one %s for arg */
static void bad(struct conn *, const char *, const char *) __attribute__((format(printf, 2, 0)));
static void
bad(struct conn *c, const char *fmt, const char *arg)
{
	struct smtp_sess *s = &c->u.smtp;

	conn_reply(c, fmt, arg);
	if (++s->errors >= cfg.max_errors) {
		conn_reply(c, "421 4.7.0 %s Error: too many errors", cfg.hostname);
		log_info("smtp %08x ip=%s closed: too many errors", c->id, c->ip);
		c->flags |= CF_CLOSE;
	}
}

static void
smtp_start(struct conn *c)
{
	struct smtp_sess *s = &c->u.smtp;

	s->fd = -1;
	c->deadline = now + conn_login_timeout();
	log_info("smtp %08x connect ip=%s", c->id, c->ip);
	conn_reply(c, "220 %s ESMTP kotak", cfg.hostname);
}

static void
smtp_close(struct conn *c)
{
	struct smtp_sess *s = &c->u.smtp;

	if (s->st == ST_COMMIT)
		queue_commit_cancel(c);
	tx_reset(c);
	log_info("smtp %08x disconnect ip=%s", c->id, c->ip);
}

static void
smtp_timeout(struct conn *c)
{
	if (c->flags & CF_CLOSE) {	/* the client does not even read */
		conn_close(c);
		return;
	}
	conn_reply(c, "421 4.4.2 %s Error: timeout exceeded", cfg.hostname);
	log_info("smtp %08x ip=%s closed: timeout", c->id, c->ip);
	c->flags |= CF_CLOSE;
	c->deadline = now + 10;
}

static void
do_helo(struct conn *c, const char *arg, int esmtp)
{
	struct smtp_sess *s = &c->u.smtp;

	if (!*arg || strchr(arg, ' ') || has_ctl(arg) || strlen(arg) >= sizeof(s->helo)) {
		bad(c, "501 5.5.4 Syntax: %s hostname", esmtp ? "EHLO" : "HELO");
		return;
	}
	tx_reset(c);
	strlcpy_k(s->helo, arg, sizeof(s->helo));
	s->esmtp = esmtp;
	s->st = ST_HELO;
	if (!esmtp) {
		conn_reply(c, "250 %s", cfg.hostname);
		return;
	}
	conn_reply(c, "250-%s", cfg.hostname);
	conn_reply(c, "250-PIPELINING");
	conn_reply(c, "250-SIZE %lld", cfg.max_message_size);
	conn_reply(c, "250-8BITMIME");
	conn_reply(c, "250-ENHANCEDSTATUSCODES");
	if (conn_tls_ready() && !conn_is_tls(c))
		conn_reply(c, "250-STARTTLS");
	if (auth_allowed(c))
		conn_reply(c, "250-AUTH PLAIN LOGIN");
	conn_reply(c, "250 SMTPUTF8");
}

/* "FROM:" or "TO:" then optional blanks (a common client habit). */
static const char *
after_prefix(const char *arg, const char *pfx)
{
	size_t n = strlen(pfx);
	char tmp[8];

	if (strlen(arg) < n)
		return NULL;
	memcpy(tmp, arg, n);
	tmp[n] = '\0';
	if (!strcaseeq(tmp, pfx))
		return NULL;
	arg += n;
	while (*arg == ' ')
		arg++;
	return arg;
}

static int
non_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}

/* Is this sender one of the user's own addresses (the name, or an alias
 * that leads to them) in a local domain? */
static int
sender_owned(const char *user, const struct addr *a)
{
	static char u[32][USER_MAX];
	int i, n;

	if (!a->domain[0] || !cfg_is_local_domain(a->domain))
		return 0;
	n = alias_expand(a->local, u, 32);
	for (i = 0; i < n; i++)
		if (!strcmp(u[i], user))
			return 1;
	return 0;
}

static void
do_mail(struct conn *c, char *arg)
{
	struct smtp_sess *s = &c->u.smtp;
	struct addr a;
	const char *p = after_prefix(arg, "FROM:"), *rest;
	char *tok;
	unsigned long long v;
	int utf8 = 0;

	if (s->st == ST_INIT) {
		bad(c, "503 5.5.1 Error: send HELO/EHLO first%s", "");
		return;
	}
	if (s->st >= ST_MAIL) {
		bad(c, "503 5.5.1 Error: nested MAIL command%s", "");
		return;
	}
	if (!s->auth[0] && (c->listen_proto == PROTO_SUBMISSION || c->listen_proto == PROTO_SMTPS)) {
		bad(c, "530 5.7.0 Authentication required%s", "");
		return;
	}
	if (p == NULL || addr_parse_path(p, &a, ADDR_NULL_OK | ADDR_UTF8, &rest) < 0) {
		bad(c, "501 5.1.7 Bad sender address syntax%s", "");
		return;
	}
	if (s->auth[0] && !cfg.auth_any_sender && !sender_owned(s->auth, &a)) {
		bad(c, "553 5.7.1 Sender address rejected: not owned by the logged-in user%s", "");
		return;
	}
	s->declared = 0;
	for (tok = strtok((char *)rest, " "); tok; tok = strtok(NULL, " ")) {
		if (!s->esmtp) {
			bad(c, "555 5.5.4 Parameters need EHLO%s", "");
			return;
		}
		if (!strncasecmp(tok, "SIZE=", 5) && parse_uint(tok + 5, 1ULL << 62, &v) == 0) {
			s->declared = (long long)v;
		} else if (strcaseeq(tok, "BODY=7BIT") || strcaseeq(tok, "BODY=8BITMIME")) {
			;
		} else if (strcaseeq(tok, "SMTPUTF8")) {
			utf8 = 1;
		} else {
			bad(c, "555 5.5.4 Unsupported option: %s", tok);
			return;
		}
	}
	if (!utf8 && non_ascii(p)) {
		bad(c, "553 5.6.7 Must declare SMTPUTF8 to send a UTF-8 address%s", "");
		return;
	}
	if (s->declared > cfg.max_message_size) {
		conn_reply(c, "552 5.3.4 Message size exceeds fixed limit");
		return;
	}
	/* Postfix's queue_minfree with message_size_limit, in small: room for
	 * the largest message this one may be (no SIZE: max_message_size) */
	if (!queue_space_ok(s->declared ? s->declared : cfg.max_message_size)) {
		conn_reply(c, "452 4.3.1 Insufficient system storage");
		return;
	}
	s->utf8 = utf8;
	addr_format(&a, s->from, sizeof(s->from));
	s->st = ST_MAIL;
	conn_reply(c, "250 2.1.0 Ok");
}

static int
spool_write(struct conn *c, const char *p, size_t n)
{
	struct smtp_sess *s = &c->u.smtp;

	while (n) {
		ssize_t w = write(s->fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w, n -= w;
	}
	return 0;
}

/* Is this envelope line in the spool file already?  A remote address given
 * twice, or also reached through an alias, must have one line: one copy. */
static int
spooled(int fd, const char *line)
{
	char l[ADDR_MAX + USER_MAX + 16];
	size_t len = strlen(line) - 1;
	off_t off = 0;
	int n;

	while ((n = queue_line(fd, off, l, sizeof(l))) > 0) {
		if ((size_t)n - 1 == len && !strncasecmp(l, line, len))
			return 1;
		off += n;
	}
	return 0;
}

/* Sessions in the middle of a transaction (MAIL given, DATA not ended):
 * the group commit waits a moment for them (queue.c). */
int
smtp_in_busy(void)
{
	int i, n = 0;

	for (i = 0; i < CONFIG_MAX_CONNS; i++)
		n += conns[i].fd >= 0 && conns[i].proto == &smtp_in_proto &&
		    conns[i].u.smtp.st >= ST_MAIL && conns[i].u.smtp.st <= ST_DATA;
	return n;
}

static void
io_fail(struct conn *c, const char *what)
{
	int e = errno;

	log_warn("smtp %08x spool %s", c->id, what);
	if (e == ENOSPC || e == EDQUOT)
		conn_reply(c, "452 4.3.1 Insufficient system storage");
	else
		conn_reply(c, "451 4.3.0 Local error in processing");
	tx_reset(c);
}

static void
do_rcpt(struct conn *c, char *arg)
{
	static char users[32][USER_MAX];
	struct smtp_sess *s = &c->u.smtp;
	struct addr a;
	const char *p = after_prefix(arg, "TO:"), *rest;
	char orig[ADDR_MAX], line[ADDR_MAX + USER_MAX + 16];
	int n, i, l;

	if (s->st < ST_MAIL) {
		bad(c, "503 5.5.1 Error: need MAIL command%s", "");
		return;
	}
	if (p == NULL || addr_parse_path(p, &a, s->utf8 ? ADDR_UTF8 : 0, &rest) < 0) {
		bad(c, "501 5.1.3 Bad recipient address syntax%s", "");
		return;
	}
	if (*rest) {
		bad(c, "555 5.5.4 Unsupported option: %s", rest);
		return;
	}
	addr_format(&a, orig, sizeof(orig));
	if (s->nrcpt >= cfg.max_recipients) {
		conn_reply(c, "452 4.5.3 Error: too many recipients");
		return;
	}
	if (a.domain[0] && !cfg_is_local_domain(a.domain)) {
		if (!s->auth[0] && !net_match(cfg.relay_net, cfg.nrelay_net, c->ip)) {
			bad(c, "554 5.7.1 <%s>: Relay access denied", orig);
			return;
		}
		n = 1;	/* "!": a remote recipient, for the relay */
		strlcpy_k(users[0], "!", USER_MAX);
	} else {
		n = alias_expand(a.local, users, 32);
	}
	if (n == 0) {
		bad(c, "550 5.1.1 <%s>: Recipient address rejected: User unknown", orig);
		/* a directory harvest: each unknown user costs a second more,
		 * as Postfix's soft error limit slows such a client */
		if (s->unknown < 30)
			s->unknown++;
		conn_hold(c, s->unknown);
		return;
	}
	if (n < 0) {
		log_warnx("smtp %08x alias for <%s> leads nowhere or too deep", c->id, orig);
		conn_reply(c, "451 4.3.0 <%s>: Alias configuration error", orig);
		return;
	}
	if (s->fd < 0) {
		if ((s->fd = queue_tx_open(s->qid, s->tmp, sizeof(s->tmp))) < 0) {
			io_fail(c, "open");
			return;
		}
		l = snprintf(line, sizeof(line), "KOTAK1 %s\nT %lld\nF %s\n", s->qid,
		    (long long)time(NULL), s->from);
		if (spool_write(c, line, l) < 0) {
			io_fail(c, "write");
			return;
		}
	}
	for (i = 0; i < n; i++) {
		l = rcpt_line(line, sizeof(line), users[i], orig);
		if (users[i][0] == '!' && spooled(s->fd, line))
			continue;
		if (spool_write(c, line, l) < 0) {
			io_fail(c, "write");
			return;
		}
	}
	if (s->nrcpt++ == 0)
		strlcpy_k(s->rcpt1, orig, sizeof(s->rcpt1));
	s->st = ST_RCPT;
	conn_reply(c, "250 2.1.5 Ok");
}

static void
do_data(struct conn *c, char *arg)
{
	struct smtp_sess *s = &c->u.smtp;
	char hdr[1200], date[40], with[16], authc[USER_MAX + 32] = "";
	int l;

	if (*arg) {
		bad(c, "501 5.5.4 Syntax: DATA%s", "");
		return;
	}
	if (s->st != ST_RCPT) {
		if (s->st == ST_MAIL)
			bad(c, "554 5.5.1 Error: no valid recipients%s", "");
		else
			bad(c, "503 5.5.1 Error: need RCPT command%s", "");
		return;
	}
	rfc5322_date(date, sizeof(date), time(NULL));
	/* RFC 3848/6531 protocol names: ESMTP, +S with TLS, +A with AUTH */
	snprintf(with, sizeof(with), "%s%s%s", s->utf8 ? "UTF8SMTP" : s->esmtp ? "ESMTP" : "SMTP",
	    conn_is_tls(c) ? "S" : "", s->auth[0] ? "A" : "");
	if (s->auth[0])
		snprintf(authc, sizeof(authc), " (Authenticated sender: %s)", s->auth);
	l = snprintf(hdr, sizeof(hdr), "\nReceived: from %s (unknown [%s])%s\n\tby %s (kotak) with %s id %s%s%s%s;\n\t%s\n",
	    s->helo, c->ip, authc, cfg.hostname, with, s->qid,
	    s->nrcpt == 1 ? "\n\tfor <" : "", s->nrcpt == 1 ? s->rcpt1 : "", s->nrcpt == 1 ? ">" : "", date);
	if (l >= (int)sizeof(hdr) || spool_write(c, hdr, l) < 0) {
		io_fail(c, "write");
		return;
	}
	data_start(&s->d, s->fd, cfg.max_message_size);
	s->d.written = l - 1;	/* the Received: header is part of the message */
	s->st = ST_DATA;
	c->deadline = s->dend = now + cfg.data_timeout;
	conn_reply(c, "354 End data with <CR><LF>.<CR><LF>");
}

static void
data_end(struct conn *c)
{
	struct smtp_sess *s = &c->u.smtp;
	struct data_rd *d = &s->d;

	s->st = ST_HELO;	/* tx_reset below keeps this */
	if (!d->err && d->received > CONFIG_RECEIVED_MAX)
		d->err = DE_LOOP;
	if (!d->err && queue_trailer(s->fd, d->written) < 0) {
		d->err = DE_IO;
		d->err_errno = errno;
	}
	switch (d->err) {
	case DE_OK:
		s->st = ST_COMMIT;
		c->deadline = 0;
		queue_commit_add(c);
		return;
	case DE_SIZE:
		conn_reply(c, "552 5.3.4 Message size exceeds fixed limit");
		break;
	case DE_LINE:
		conn_reply(c, "552 5.3.4 Message line longer than %d bytes", CONFIG_DATA_LINE_MAX);
		break;
	case DE_LOOP:
		conn_reply(c, "554 5.4.6 Too many hops (%d Received: headers): mail loop?", d->received);
		break;
	default:
		errno = d->err_errno;
		io_fail(c, "write");
		return;
	}
	log_info("smtp %08x ip=%s from=<%s> rejected at end of data: error %d", c->id, c->ip, s->from, d->err);
	tx_reset(c);
}

void
smtp_in_committed(struct conn *c, int ok, int err)
{
	struct smtp_sess *s = &c->u.smtp;

	if (ok) {
		log_info("%s: queued from=<%s> size=%lld nrcpt=%d session=%08x ip=%s", s->qid,
		    s->from, s->d.written, s->nrcpt, c->id, c->ip);
		conn_reply(c, "250 2.0.0 Ok: queued as %s", s->qid);
	} else {
		errno = err;
		log_warn("%s: commit failed, session=%08x", s->qid, c->id);
		conn_reply(c, err == ENOSPC ? "452 4.3.1 Insufficient system storage" :
		    "451 4.3.0 Local error in processing");
	}
	s->tmp[0] = '\0';	/* renamed (or already unlinked): nothing to remove */
	s->st = ST_HELO;
	tx_reset(c);
	c->flags &= ~CF_COMMIT;
	c->deadline = now + idle(s);
}

static void
do_starttls(struct conn *c, const char *arg)
{
	struct smtp_sess *s = &c->u.smtp;

	if (*arg) {
		bad(c, "501 5.5.4 Syntax: STARTTLS%s", "");
		return;
	}
	if (conn_is_tls(c)) {
		bad(c, "503 5.5.1 Error: TLS already active%s", "");
		return;
	}
	if (conn_starttls(c) < 0) {
		conn_reply(c, "454 4.7.0 TLS not available due to local problem");
		return;
	}
	/* a fresh session under TLS: nothing said before counts (RFC 3207 4.2) */
	tx_reset(c);
	s->st = ST_INIT;
	s->esmtp = 0;
	s->helo[0] = s->auth[0] = '\0';
	conn_reply(c, "220 2.0.0 Ready to start TLS");
}

static void
auth_fail(struct conn *c, const char *why)
{
	struct smtp_sess *s = &c->u.smtp;

	s->authst = AU_NONE;
	conn_reply(c, "535 5.7.8 Error: authentication failed%s", why);
	if (++s->authfails >= AUTH_TRIES) {
		conn_reply(c, "421 4.7.0 %s Error: too many failed logins", cfg.hostname);
		c->flags |= CF_CLOSE;
	}
	conn_hold(c, auth_delay(c->ip));	/* the brake: per client address */
}

static void
auth_try(struct conn *c, const char *user, const char *pass)
{
	struct smtp_sess *s = &c->u.smtp;
	const char *name = auth_check(c->ip, user, pass);

	s->authst = AU_NONE;
	if (name == NULL) {
		auth_fail(c, "");
		return;
	}
	strlcpy_k(s->auth, name, sizeof(s->auth));
	log_info("smtp %08x ip=%s auth user=%s", c->id, c->ip, name);
	conn_reply(c, "235 2.7.0 Authentication successful");
}

/* PLAIN: [authzid] NUL authcid NUL passwd (RFC 4616). */
static void
auth_plain(struct conn *c, const char *b64)
{
	unsigned char d[400];
	int n = b64_decode(b64, d, sizeof(d) - 1);
	char *u, *p;

	if (n < 0) {
		auth_fail(c, ": bad base64");
		return;
	}
	d[n] = '\0';
	u = memchr(d, '\0', n);
	p = u ? memchr(u + 1, '\0', n - (u + 1 - (char *)d)) : NULL;
	if (u == NULL || p == NULL || (d[0] && strcmp((char *)d, u + 1))) {
		auth_fail(c, ": bad PLAIN response");
		return;
	}
	auth_try(c, u + 1, p + 1);
	memset(d, 0, sizeof(d));
}

/* A line while an AUTH dialogue waits for a 334 response. */
static void
auth_step(struct conn *c, char *line)
{
	struct smtp_sess *s = &c->u.smtp;
	unsigned char d[300];
	int n;

	if (!strcmp(line, "*")) {
		s->authst = AU_NONE;
		bad(c, "501 5.7.0 Authentication aborted%s", "");
		return;
	}
	if (s->authst == AU_PLAIN) {
		auth_plain(c, line);
		return;
	}
	if ((n = b64_decode(line, d, sizeof(d) - 1)) < 0) {
		auth_fail(c, ": bad base64");
		return;
	}
	d[n] = '\0';
	if (s->authst == AU_USER) {
		strlcpy_k(s->authuser, (char *)d, sizeof(s->authuser));
		s->authst = AU_PASS;
		conn_reply(c, "334 UGFzc3dvcmQ6");	/* "Password:" */
	} else {
		auth_try(c, s->authuser, (char *)d);
	}
	memset(d, 0, sizeof(d));
}

static void
do_auth(struct conn *c, char *arg)
{
	struct smtp_sess *s = &c->u.smtp;
	char *ir = strchr(arg, ' ');

	if (ir)
		*ir++ = '\0';
	if (s->st == ST_INIT || !s->esmtp) {
		bad(c, "503 5.5.1 Error: send EHLO first%s", "");
		return;
	}
	if (s->auth[0]) {
		bad(c, "503 5.5.1 Error: already authenticated%s", "");
		return;
	}
	if (s->st != ST_HELO) {
		bad(c, "503 5.5.1 Error: MAIL transaction in progress%s", "");
		return;
	}
	if (!auth_allowed(c)) {
		bad(c, "538 5.7.11 Encryption required for requested authentication mechanism%s", "");
		return;
	}
	if (strcaseeq(arg, "PLAIN")) {
		if (ir && strcmp(ir, "=")) {
			auth_plain(c, ir);
			return;
		}
		s->authst = AU_PLAIN;
		conn_reply(c, "334 ");
	} else if (strcaseeq(arg, "LOGIN")) {
		if (ir) {
			unsigned char d[USER_MAX];
			int n = b64_decode(ir, d, sizeof(d) - 1);
			if (n < 0) {
				auth_fail(c, ": bad base64");
				return;
			}
			d[n] = '\0';
			strlcpy_k(s->authuser, (char *)d, sizeof(s->authuser));
			s->authst = AU_PASS;
			conn_reply(c, "334 UGFzc3dvcmQ6");
			return;
		}
		s->authst = AU_USER;
		conn_reply(c, "334 VXNlcm5hbWU6");	/* "Username:" */
	} else {
		bad(c, "504 5.5.4 Unrecognized authentication type%s", "");
	}
}

static void
do_cmd(struct conn *c, char *line)
{
	char *arg = line;
	size_t vl;

	if (c->u.smtp.authst != AU_NONE) {
		auth_step(c, line);
		return;
	}
	while (*arg && *arg != ' ')
		arg++;
	vl = arg - line;
	while (*arg == ' ')
		arg++;
#define VERB(v) (vl == sizeof(v) - 1 && !strncasecmp(line, v, vl))
	if (VERB("EHLO"))
		do_helo(c, arg, 1);
	else if (VERB("HELO"))
		do_helo(c, arg, 0);
	else if (VERB("MAIL"))
		do_mail(c, arg);
	else if (VERB("RCPT"))
		do_rcpt(c, arg);
	else if (VERB("DATA"))
		do_data(c, arg);
	else if (VERB("STARTTLS"))
		do_starttls(c, arg);
	else if (VERB("AUTH"))
		do_auth(c, arg);
	else if (VERB("RSET")) {
		tx_reset(c);
		conn_reply(c, "250 2.0.0 Ok");
	} else if (VERB("NOOP"))
		conn_reply(c, "250 2.0.0 Ok");
	else if (VERB("QUIT")) {
		conn_reply(c, "221 2.0.0 Bye");
		c->flags |= CF_CLOSE;
		c->deadline = now + 10;
	} else if (VERB("VRFY"))
		conn_reply(c, "252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery");
	else if (VERB("HELP"))
		conn_reply(c, "214 2.0.0 Commands: EHLO HELO STARTTLS AUTH MAIL RCPT DATA RSET NOOP VRFY HELP QUIT");
	else
		bad(c, "500 5.5.2 Error: command not recognized%s", "");
#undef VERB
}

/* Must the client have waited for our reply before sending more?  RFC
 * 2920 3.1: EHLO, HELO and DATA end a group; without PIPELINING (before
 * EHLO, after HELO) every command does.  Bytes behind such a line, or
 * before the greeting, are a client that does not listen (a body after a
 * refused DATA would run as commands): 554 and close, as Postfix's
 * smtpd_forbid_unauth_pipelining. */
static int
out_of_sync(struct conn *c, const char *line, long n)
{
	struct smtp_sess *s = &c->u.smtp;
	size_t vl = strcspn(line, " ");

	if (!s->greeted && c->out.len && !conn_is_tls(c))
		return 1;
	s->greeted = 1;
	if (c->in.len <= (size_t)n || s->authst != AU_NONE)
		return 0;
	return s->st == ST_INIT || !s->esmtp || (vl == 4 && (!strncasecmp(line, "EHLO", 4) ||
	    !strncasecmp(line, "HELO", 4) || !strncasecmp(line, "DATA", 4)));
}

/* Would this line have a password checked? */
static int
checks_password(const struct smtp_sess *s, const char *line)
{
	if (s->authst == AU_PLAIN || s->authst == AU_PASS)
		return strcmp(line, "*") != 0;
	return !strncasecmp(line, "AUTH PLAIN ", 11) && strcmp(line + 11, "=");
}

static void
smtp_input(struct conn *c)
{
	struct smtp_sess *s = &c->u.smtp;
	char *line, *lf;
	long n;
	int done, w;
	size_t used;

	while (c->fd >= 0 && !(c->flags & CF_STOPPED)) {
		if (s->st == ST_DATA) {
			if (c->in.len == 0)
				return;
			used = data_push(&s->d, c->in.p, c->in.len, &done);
			buf_drop(&c->in, used);
			/* data_timeout per block, and for the whole DATA phase
			 * data_timeout plus a second per KiB up to the size limit:
			 * a trickle (1 KiB/s or less) cannot keep the session */
			c->deadline = s->dend + ((s->d.size < s->d.max ? s->d.size : s->d.max) >> 10);
			if (c->deadline > now + cfg.data_timeout)
				c->deadline = now + cfg.data_timeout;
			if (done)
				data_end(c);
			continue;
		}
		if (buf_room(&c->out) < OUT_NEEDED)
			return;		/* resumes when the client reads its replies */
		if (c->flags & CF_SKIP) {	/* the rest of an overlong line */
			if ((lf = memchr(c->in.p, '\n', c->in.len)) == NULL) {
				c->in.len = 0;
				return;
			}
			buf_drop(&c->in, lf - c->in.p + 1);
			c->flags &= ~CF_SKIP;
			bad(c, "500 5.5.2 Error: line too long%s", "");
			continue;
		}
		n = buf_line(&c->in, &line);
		if (n == 0) {
			if (c->in.len >= CONFIG_SMTP_LINE_MAX) {
				c->flags |= CF_SKIP;
				continue;
			}
			if (c->flags & CF_EOF)
				c->in.len = 0;
			return;
		}
		if (n > CONFIG_SMTP_LINE_MAX)
			bad(c, "500 5.5.2 Error: line too long%s", "");
		else if ((long)strlen(line) != n - 1 - (n >= 2 && line[n - 2] == '\0'))
			bad(c, "500 5.5.2 Error: NUL character in command%s", "");
		else if (has_ctl(line))	/* a bare CR, ESC...: never echoed back */
			bad(c, "500 5.5.2 Error: control character in command%s", "");
		else if (out_of_sync(c, line, n)) {
			log_info("smtp %08x ip=%s closed: input before our reply (pipelining not allowed here)",
			    c->id, c->ip);
			conn_reply(c, "554 5.5.0 Error: SMTP protocol synchronization");
			c->flags |= CF_CLOSE;
			c->in.len = 0;
			return;
		}
		else if ((w = checks_password(s, line) ? auth_wait(c->ip) : 0) > 0) {
			/* the brake: this line waits, whole, until the address may try again */
			buf_line_keep(line, n);
			conn_hold(c, w);
			return;
		} else if (w < 0) {	/* failed logins in all over budget: not even checked */
			s->authst = AU_NONE;
			bad(c, "454 4.7.0 Temporary authentication failure, try again later%s", "");
		} else
			do_cmd(c, line);
		buf_drop(&c->in, n);
		if (s->st != ST_DATA && s->st != ST_COMMIT)	/* the client's turn starts after a hold */
			c->deadline = ((c->flags & CF_HOLD) ? c->hold : now) + idle(s);
	}
}

const struct proto smtp_in_proto = {
	"smtp", smtp_start, smtp_input, smtp_timeout, smtp_close, "421 4.7.0", NULL
};

/*
 * imap.c: the IMAP4rev1 server (RFC 3501), the subset issue 12 names.
 *
 *	ST_NOAUTH --LOGIN | AUTHENTICATE PLAIN--> ST_AUTH
 *	ST_NOAUTH --AUTHENTICATE PLAIN (no SASL-IR)--> ST_SASL --response--> ...
 *	any --LOGOUT--> close
 *
 * Commands are assembled whole in the session's cmd[] (the line, with its
 * literals inline as "{n}\r\n" + n bytes) and then parsed with a cursor
 * (imap_parse.c).  Bounds: IMAP_PRE_MAX bytes before login (a login needs
 * no more), CONFIG_IMAP_LINE_MAX after (Thunderbird sends UID sets of
 * several KiB); a longer command gets BAD [TOOBIG] and its bytes (a
 * non-synchronizing literal's too) are read and dropped, never stored.
 * Passwords only over TLS unless the client is in cleartext_auth_net
 * (LOGINDISABLED otherwise, as POP3 and SMTP); failed logins are held back
 * by the same per-address brake (auth.c), which also holds a new
 * session's first try.
 *
 * Not yet: the authenticated and selected states (they wait for the folder
 * layer, folder.h); until then this build answers NO to them and
 * advertises nothing it does not do.
 */
#include "kotak.h"
#include "imap.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

enum { ST_NOAUTH, ST_SASL, ST_AUTH, ST_LOGOUT };

#define IMAP_PRE_MAX	1024	/* a command before login, literals included */
#define OUT_NEEDED	512	/* reply room needed before taking a command */
#define AUTH_TRIES	3	/* failed logins before the session is closed */
#define AUTOLOGOUT	1800	/* RFC 3501 5.4: at least 30 minutes once logged in */

static char cmdbuf[CONFIG_MAX_CONNS][CONFIG_IMAP_LINE_MAX + 1];

static int
cmd_max(const struct imap_sess *s)
{
	return s->st >= ST_AUTH ? CONFIG_IMAP_LINE_MAX : IMAP_PRE_MAX;
}

static void
caps(struct conn *c, char *b, size_t n)
{
	int pre = c->u.imap.st < ST_AUTH;

	snprintf(b, n, "IMAP4rev1 SASL-IR ID LITERAL+%s%s",
	    pre && conn_tls_ready() && !conn_is_tls(c) ? " STARTTLS" : "",
	    !pre ? "" : auth_allowed(c) ? " AUTH=PLAIN" : " LOGINDISABLED");
}

static void
imap_start(struct conn *c)
{
	char b[160];

	c->u.imap.cmd = cmdbuf[c - conns];
	c->deadline = now + conn_login_timeout();
	log_info("imap %08x connect ip=%s%s", c->id, c->ip, conn_is_tls(c) ? " tls" : "");
	caps(c, b, sizeof(b));
	conn_reply(c, "* OK [CAPABILITY %s] kotak ready.", b);
}

static void
imap_close(struct conn *c)
{
	log_info("imap %08x disconnect ip=%s", c->id, c->ip);
}

static void
imap_timeout(struct conn *c)
{
	if (c->flags & CF_CLOSE) {	/* the client does not even read */
		conn_close(c);
		return;
	}
	conn_reply(c, "* BYE Disconnected for inactivity.");
	log_info("imap %08x ip=%s closed: timeout", c->id, c->ip);
	c->flags |= CF_CLOSE;
	c->deadline = now + 10;
}

/* A tagged reply to the command in cmd[]. */
static void
reply(struct conn *c, const char *st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void
reply(struct conn *c, const char *st, const char *fmt, ...)
{
	struct imap_sess *s = &c->u.imap;
	char b[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(b, sizeof(b), fmt, ap);
	va_end(ap);
	conn_reply(c, "%s %s %s", s->tag[0] ? s->tag : "*", st, b);
	if (!strcmp(st, "BAD") && ++s->errors >= cfg.max_errors) {
		conn_reply(c, "* BYE Too many bad commands.");
		log_info("imap %08x ip=%s closed: too many errors", c->id, c->ip);
		c->flags |= CF_CLOSE;
	}
}

static void
logged_in(struct conn *c, const char *name)
{
	struct imap_sess *s = &c->u.imap;
	char b[160];

	strlcpy_k(s->user, name, sizeof(s->user));
	s->st = ST_AUTH;
	caps(c, b, sizeof(b));
	log_info("imap %08x login user=%s ip=%s", c->id, name, c->ip);
	reply(c, "OK", "[CAPABILITY %s] Logged in", b);
}

static void
login(struct conn *c, const char *user, const char *pass)
{
	struct imap_sess *s = &c->u.imap;
	const char *name;

	if (auth_wait(c->ip) < 0) {	/* failed logins in all over budget: not even checked */
		s->st = ST_NOAUTH;
		reply(c, "NO", "[UNAVAILABLE] Temporary authentication failure, try again later.");
		return;
	}
	if ((name = auth_check(c->ip, user, pass)) != NULL) {
		logged_in(c, name);
		return;
	}
	s->st = ST_NOAUTH;
	reply(c, "NO", "[AUTHENTICATIONFAILED] Authentication failed.");
	if (++s->fails >= AUTH_TRIES) {
		conn_reply(c, "* BYE Too many failed logins.");
		c->flags |= CF_CLOSE;
	}
	conn_hold(c, auth_delay(c->ip));	/* the brake: per client address */
}

/* PLAIN: [authzid] NUL authcid NUL passwd (RFC 4616); "=" is empty. */
static void
auth_plain(struct conn *c, const char *b64)
{
	unsigned char d[400];
	int n = strcmp(b64, "=") ? b64_decode(b64, d, sizeof(d) - 1) : 0;
	char *u = NULL, *p = NULL;

	if (n > 0) {
		d[n] = '\0';
		u = memchr(d, '\0', n);
		p = u ? memchr(u + 1, '\0', n - (u + 1 - (char *)d)) : NULL;
	}
	if (p == NULL || (d[0] && strcmp((char *)d, u + 1)))
		login(c, "", "");	/* malformed: a failed login like any other */
	else
		login(c, u + 1, p + 1);
	memset(d, 0, sizeof(d));
}

/* ---- commands: a table per state */

struct icmd {
	const char *name;
	uint8_t	 states;	/* bit per ST_* */
	void	(*run)(struct conn *, struct icur *);
};
#define S_ANY	(1 << ST_NOAUTH | 1 << ST_AUTH)
#define S_PRE	(1 << ST_NOAUTH)
#define S_POST	(1 << ST_AUTH)

static void
c_capability(struct conn *c, struct icur *a)
{
	char b[160];

	if (!imap_end(a)) {
		reply(c, "BAD", "Unexpected arguments.");
		return;
	}
	caps(c, b, sizeof(b));
	conn_reply(c, "* CAPABILITY %s", b);
	reply(c, "OK", "Capability completed.");
}

static void
c_noop(struct conn *c, struct icur *a)
{
	if (!imap_end(a)) {
		reply(c, "BAD", "Unexpected arguments.");
		return;
	}
	reply(c, "OK", "NOOP completed.");
}

static void
c_logout(struct conn *c, struct icur *a)
{
	if (!imap_end(a)) {
		reply(c, "BAD", "Unexpected arguments.");
		return;
	}
	conn_reply(c, "* BYE Logging out");
	reply(c, "OK", "Logout completed.");
	c->u.imap.st = ST_LOGOUT;
	c->flags |= CF_CLOSE;
	c->deadline = now + 10;
}

/* RFC 2971: the client's list is checked and ignored; we say nothing. */
static void
c_id(struct conn *c, struct icur *a)
{
	if (imap_skip_value(a) < 0 || !imap_end(a)) {
		reply(c, "BAD", "Syntax: ID (name value ...) | NIL");
		return;
	}
	conn_reply(c, "* ID NIL");
	reply(c, "OK", "ID completed.");
}

static void
c_starttls(struct conn *c, struct icur *a)
{
	struct imap_sess *s = &c->u.imap;

	if (!conn_tls_ready() || conn_is_tls(c)) {
		reply(c, "BAD", conn_is_tls(c) ? "TLS is already active." : "TLS is not available.");
		return;
	}
	if (conn_starttls(c) < 0) {
		reply(c, "NO", "[UNAVAILABLE] TLS not available due to local problem.");
		return;
	}
	s->ready = s->len = s->lit = s->skip = 0;	/* a fresh session under TLS */
	reply(c, "OK", "Begin TLS negotiation now.");
}

static void
c_login(struct conn *c, struct icur *a)
{
	char user[USER_MAX + 64], pass[512];

	if (imap_astring(a, user, sizeof(user)) < 0 || imap_sp(a) < 0 ||
	    imap_astring(a, pass, sizeof(pass)) < 0 || !imap_end(a)) {
		reply(c, "BAD", "Syntax: LOGIN user password");
		return;
	}
	if (!auth_allowed(c)) {
		reply(c, "NO", "[PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure connections.");
		return;
	}
	login(c, user, pass);
	memset(pass, 0, sizeof(pass));
}

static void
c_authenticate(struct conn *c, struct icur *a)
{
	struct imap_sess *s = &c->u.imap;
	char mech[32], ir[600];
	int have_ir = 0;

	if (imap_atom(a, mech, sizeof(mech)) < 0 ||
	    (!imap_end(a) && (have_ir = 1, imap_sp(a) < 0 || imap_atom(a, ir, sizeof(ir)) < 0 || !imap_end(a)))) {
		reply(c, "BAD", "Syntax: AUTHENTICATE mechanism [initial-response]");
		return;
	}
	if (strcasecmp(mech, "PLAIN")) {
		reply(c, "NO", "Unsupported authentication mechanism.");
		return;
	}
	if (!auth_allowed(c)) {
		reply(c, "NO", "[PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure connections.");
		return;
	}
	if (have_ir) {	/* SASL-IR (RFC 4959) */
		auth_plain(c, ir);
		memset(ir, 0, sizeof(ir));
		return;
	}
	s->st = ST_SASL;
	conn_reply(c, "+ ");
}

static void
c_later(struct conn *c, struct icur *a)
{
	reply(c, "NO", "[CANNOT] Not available in this build yet.");
}

static const struct icmd cmds[] = {
	{ "CAPABILITY", S_ANY, c_capability },
	{ "NOOP", S_ANY, c_noop },
	{ "LOGOUT", S_ANY, c_logout },
	{ "ID", S_ANY, c_id },
	{ "STARTTLS", S_PRE, c_starttls },
	{ "LOGIN", S_PRE, c_login },
	{ "AUTHENTICATE", S_PRE, c_authenticate },
	{ "SELECT", S_POST, c_later },
	{ "EXAMINE", S_POST, c_later },
	{ "LIST", S_POST, c_later },
	{ "LSUB", S_POST, c_later },
	{ "STATUS", S_POST, c_later },
	{ "CREATE", S_POST, c_later },
	{ "DELETE", S_POST, c_later },
	{ "RENAME", S_POST, c_later },
	{ "SUBSCRIBE", S_POST, c_later },
	{ "UNSUBSCRIBE", S_POST, c_later },
	{ "APPEND", S_POST, c_later },
	{ NULL, 0, NULL }
};

/* Does the assembled command check a password (and so wait for the brake)? */
static int
checks_password(const struct imap_sess *s)
{
	const char *v = s->cmd + s->vlen;

	if (s->st == ST_SASL)
		return strcmp(s->cmd, "*") != 0;
	return s->st == ST_NOAUTH && (!strncasecmp(v, "LOGIN ", 6) || !strncasecmp(v, "AUTHENTICATE PLAIN ", 19));
}

static void
run_cmd(struct conn *c)
{
	struct imap_sess *s = &c->u.imap;
	struct icur a;
	char verb[16];
	const struct icmd *t;

	if (s->st == ST_SASL) {	/* the response to "+ ": a line, no tag */
		s->st = ST_NOAUTH;
		if (!strcmp(s->cmd, "*"))
			reply(c, "BAD", "Authentication aborted.");
		else
			auth_plain(c, s->cmd);
		return;
	}
	imap_cur(&a, s->cmd, s->len);
	s->tag[0] = '\0';
	if (imap_tag(&a, s->tag, sizeof(s->tag)) < 0 || imap_sp(&a) < 0) {
		s->tag[0] = '\0';
		reply(c, "BAD", "Error in IMAP command: no tag.");
		return;
	}
	if (imap_atom(&a, verb, sizeof(verb)) < 0) {
		reply(c, "BAD", "Error in IMAP command: no command.");
		return;
	}
	for (t = cmds; t->name && strcasecmp(t->name, verb); t++)
		;
	if (t->name == NULL) {
		reply(c, "BAD", "Unknown command.");
		return;
	}
	if (!(t->states & 1 << s->st)) {
		reply(c, "BAD", s->st == ST_NOAUTH ? "Log in first." : "Command not valid in this state.");
		return;
	}
	if (!imap_end(&a) && imap_sp(&a) < 0) {
		reply(c, "BAD", "Error in IMAP command: expected a space.");
		return;
	}
	a.b = a.p;
	t->run(c, &a);
}

/* The tag and command name of an overlong command, for its BAD reply. */
static void
toobig(struct conn *c)
{
	struct imap_sess *s = &c->u.imap;
	struct icur a;

	imap_cur(&a, s->cmd, s->len < 64 ? s->len : 64);
	s->tag[0] = '\0';
	if (s->st == ST_SASL)
		s->st = ST_NOAUTH;
	else if (imap_tag(&a, s->tag, sizeof(s->tag)) < 0 || imap_sp(&a) < 0)
		s->tag[0] = '\0';
	reply(c, "BAD", "[TOOBIG] Command too long.");
}

/*
 * Assemble commands from the input: line parts and literals into cmd[].
 * A line ending in {n} or {n+} announces a literal: n bytes that follow
 * (after "+ OK" for a synchronizing one).  An overlong command goes on
 * being read (skip) to its end, literals of it included, and then gets
 * its BAD; a synchronizing literal of it is never asked for.
 */
static void
imap_input(struct conn *c)
{
	struct imap_sess *s = &c->u.imap;
	char *lf;
	size_t k;
	unsigned long long n;
	int w, plus, max;

	while (c->fd >= 0 && !(c->flags & (CF_CLOSE | CF_HOLD)) && s->st != ST_LOGOUT) {
		if (s->ready) {	/* a whole command, maybe held by the brake */
			if (checks_password(s) && (w = auth_wait(c->ip)) > 0) {
				conn_hold(c, w);
				return;
			}
			s->ready = 0;
			run_cmd(c);
			memset(s->cmd, 0, s->len);	/* passwords do not linger */
			s->len = s->vlen = 0;
			if (!(c->flags & CF_CLOSE))
				c->deadline = now + (s->st >= ST_AUTH ? AUTOLOGOUT : conn_login_timeout());
			continue;
		}
		if (buf_room(&c->out) < OUT_NEEDED || c->in.len == 0) {
			if (c->flags & CF_EOF)
				c->in.len = 0;
			return;
		}
		max = cmd_max(s);
		if (s->lit) {	/* literal bytes */
			k = c->in.len < s->lit ? c->in.len : s->lit;
			if (!s->skip)
				memcpy(s->cmd + s->len, c->in.p, k);
			s->len += s->skip ? 0 : k;
			s->lit -= k;
			buf_drop(&c->in, k);
			continue;
		}
		lf = memchr(c->in.p, '\n', c->in.len);
		k = lf ? (size_t)(lf - c->in.p) + 1 : c->in.len;
		if (!s->skip && s->len + k > (size_t)max) {
			s->skip = 1;	/* too long: read on to its end, keep nothing more */
			s->len = s->len < 64 ? s->len : 64;
			s->ntail = 0;
		}
		if (!s->skip) {
			memcpy(s->cmd + s->len, c->in.p, k);
			s->len += k;
		} else if (s->len < 64) {
			size_t t = 64 - s->len < k ? 64 - s->len : k;
			memcpy(s->cmd + s->len, c->in.p, t);	/* enough for the tag */
			s->len += t;
		}
		if (s->skip) {	/* the line's last bytes: a literal announced there? */
			size_t t = k < sizeof(s->tail) ? k : sizeof(s->tail);
			if (s->ntail + t > sizeof(s->tail)) {
				size_t drop = s->ntail + t - sizeof(s->tail);
				memmove(s->tail, s->tail + drop, s->ntail - drop);
				s->ntail -= drop;
			}
			memcpy(s->tail + s->ntail, c->in.p + k - t, t);
			s->ntail += t;
		}
		buf_drop(&c->in, k);
		if (!lf)
			continue;
		/* a line part ended: strip its CRLF, look for a literal */
		if (!s->skip) {
			s->len -= 1 + (s->len >= 2 && s->cmd[s->len - 2] == '\r');
			s->cmd[s->len] = '\0';
		}
		if (s->skip) {	/* the tail without its CRLF */
			s->ntail -= s->ntail && s->tail[s->ntail - 1] == '\n';
			s->ntail -= s->ntail && s->tail[s->ntail - 1] == '\r';
		}
		if (imap_literal_at_end(s->skip ? s->tail : s->cmd, s->skip ? s->ntail : s->len, &n, &plus) &&
		    s->st != ST_SASL) {
			s->ntail = 0;
			if (!s->skip && s->len + 2 + n > (size_t)max) {
				s->skip = 1;
				s->len = s->len < 64 ? s->len : 64;
			}
			if (s->skip && !plus)	/* never ask for what we would drop */
				goto done;
			if (!s->skip) {
				memcpy(s->cmd + s->len, "\r\n", 2);
				s->len += 2;
				if (!plus)
					conn_reply(c, "+ OK");
			}
			s->lit = (uint32_t)n;
			continue;
		}
done:
		s->ntail = 0;
		if (s->skip) {
			s->skip = 0;
			s->lit = 0;
			toobig(c);
			memset(s->cmd, 0, CONFIG_IMAP_LINE_MAX + 1);
			s->len = 0;
			continue;
		}
		if (memchr(s->cmd, '\0', s->len) && s->st == ST_SASL) {
			s->len = 0;
			s->st = ST_NOAUTH;
			reply(c, "BAD", "NUL in authentication response.");
			continue;
		}
		s->cmd[s->len] = '\0';
		{	/* where the command name starts, for checks_password */
			char *sp = memchr(s->cmd, ' ', s->len);
			s->vlen = sp ? (uint32_t)(sp - s->cmd) + 1 : 0;
		}
		s->ready = 1;
	}
}

const struct proto imap_proto = {
	"imap", imap_start, imap_input, imap_timeout, imap_close, "* BYE [UNAVAILABLE]", NULL
};

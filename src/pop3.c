/*
 * pop3.c: the POP3 server (RFC 1939; CAPA, RESP-CODES, PIPELINING RFC 2449;
 * AUTH PLAIN RFC 5034; STLS RFC 2595) on a folder view (folder.h).
 *
 *	ST_AUTH --USER+PASS | AUTH PLAIN--> ST_OPEN --view ready--> ST_TRANS
 *	ST_TRANS --RETR TOP LIST UIDL--> ST_SEND --last line--> ST_TRANS
 *	ST_TRANS --QUIT--> ST_UPDATE --expunged--> close
 *
 * The session sees the INBOX as it was at login (a VM_POP3 view); mail
 * delivered meanwhile shows in the next session.  DELE only marks:
 * messages go at QUIT (a dropped connection deletes nothing).  One
 * session per mailbox: a second login gets -ERR [IN-USE] (RFC 2449), as
 * Dovecot does.  Messages stream from the mbox as the socket drains
 * (stream.c), so a 20 MB RETR costs no more RAM than a NOOP.  UIDL is
 * Dovecot's %08X%08X of UID and UIDVALIDITY, so clients moving from
 * Dovecot keep their "leave on server" state.  Whatever takes loop
 * passes (indexing, a foreign lock, the expunge at QUIT) is the folder
 * layer's; it wakes the session (pop3_wake) when it is done.
 */
#include "kotak.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

enum { ST_AUTH, ST_SASL, ST_OPEN, ST_TRANS, ST_SEND, ST_LOCATE, ST_UPDATE };
enum { K_MSG, K_LIST, K_UIDL };

#define LINE_MAX_P	257	/* RFC 2449 4: 255 octets, here without the CRLF */
#define OUT_NEEDED	256	/* reply room needed before taking a command */
#define AUTH_TRIES	3	/* failed logins before the session is closed */

/* RFC 1939 3: an autologout timer must be at least 10 minutes. */
static int
tmo(void)
{
	return cfg.timeout > 600 ? cfg.timeout : 600;
}

static void
bad(struct conn *c, const char *msg)
{
	conn_reply(c, "-ERR %s", msg);
	if (++c->u.pop3.errors >= cfg.max_errors) {
		conn_reply(c, "-ERR Too many bad commands.");
		log_info("pop3 %08x ip=%s closed: too many errors", c->id, c->ip);
		c->flags |= CF_CLOSE;
	}
}

static void
pop3_start(struct conn *c)
{
	c->deadline = now + conn_login_timeout();
	log_info("pop3 %08x connect ip=%s%s", c->id, c->ip, conn_is_tls(c) ? " tls" : "");
	conn_reply(c, "+OK kotak ready.");
}

static void
pop3_close(struct conn *c)
{
	struct pop3_sess *s = &c->u.pop3;

	view_close(&s->v);	/* DELE marks go; a QUIT's expunge goes on in the folder */
	log_info("pop3 %08x disconnect ip=%s", c->id, c->ip);
}

static void
opened(struct conn *c, int r)
{
	struct pop3_sess *s = &c->u.pop3;

	if (r == F_WAIT) {
		s->wait = 1;
		return;
	}
	s->wait = 0;
	c->deadline = now + tmo();
	if (r == 0) {
		log_info("pop3 %08x login user=%s ip=%s messages=%u", c->id, s->user, c->ip, view_count(&s->v));
		conn_reply(c, "+OK Logged in.");
		s->st = ST_TRANS;
	} else {
		log_warn("pop3 %08x user=%s: mailbox", c->id, s->user);
		conn_reply(c, errno == EAGAIN ? "-ERR [IN-USE] Mailbox locked by another program, try later." :
		    "-ERR [SYS/TEMP] Cannot open the mailbox.");
		s->st = ST_AUTH;
		s->user[0] = '\0';
	}
}

static void
quit_done(struct conn *c, int r)
{
	struct pop3_sess *s = &c->u.pop3;

	if (r == F_WAIT) {
		s->wait = 1;
		return;
	}
	s->wait = 0;
	if (r == 0)
		conn_reply(c, s->ndele ? "+OK Logging out, messages deleted." : "+OK Logging out.");
	else
		conn_reply(c, "-ERR [SYS/TEMP] Deleted messages were not removed.");
	log_info("pop3 %08x logout user=%s retr=%u dele=%u%s", c->id, s->user, s->nretr, s->ndele,
	    r ? " (not removed)" : "");
	c->flags |= CF_CLOSE;
	c->deadline = now + 10;
}

static void do_retr_located(struct conn *);

/* The folder layer has what we waited for (or a lock may be free). */
static void
pop3_wake(struct conn *c)
{
	struct pop3_sess *s = &c->u.pop3;

	if (!s->wait)
		return;
	if (s->st == ST_OPEN)
		opened(c, view_ready(&s->v));
	else if (s->st == ST_UPDATE)
		quit_done(c, view_pop3_commit(&s->v));
	else if (s->st == ST_LOCATE)
		do_retr_located(c);
	else
		s->wait = 0;	/* ST_SEND */
	conn_process(c);
}

static void
pop3_timeout(struct conn *c)
{
	struct pop3_sess *s = &c->u.pop3;

	if (c->flags & CF_CLOSE) {	/* the client does not even read */
		conn_close(c);
		return;
	}
	if (s->st != ST_SEND)
		conn_reply(c, "-ERR Disconnected for inactivity.");
	log_info("pop3 %08x ip=%s closed: timeout", c->id, c->ip);
	c->flags |= CF_CLOSE;
	c->deadline = now + 10;
}

static void
login(struct conn *c, const char *user, const char *pass)
{
	struct pop3_sess *s = &c->u.pop3;
	const char *name = auth_check(c->ip, user, pass);
	int i;

	s->st = ST_AUTH;
	s->user[0] = '\0';
	if (name == NULL) {
		conn_reply(c, "-ERR [AUTH] Authentication failed.");
		if (++s->fails >= AUTH_TRIES)
			c->flags |= CF_CLOSE;
		conn_hold(c, auth_delay(c->ip));	/* the brake: per client address */
		return;
	}
	for (i = 0; i < CONFIG_MAX_CONNS; i++) {
		struct conn *o = &conns[i];
		if (o != c && o->fd >= 0 && o->proto == &pop3_proto && o->u.pop3.st >= ST_OPEN &&
		    !strcmp(o->u.pop3.user, name)) {
			log_info("pop3 %08x user=%s: mailbox in use by %08x", c->id, name, o->id);
			conn_reply(c, "-ERR [IN-USE] Mailbox in use by another POP3 session.");
			return;
		}
	}
	strlcpy_k(s->user, name, sizeof(s->user));
	s->st = ST_OPEN;
	opened(c, view_open(&s->v, c, name, "INBOX", VM_POP3));
}

/* PLAIN: [authzid] NUL authcid NUL passwd (RFC 4616); "=" is empty. */
static void
auth_plain(struct conn *c, const char *b64)
{
	unsigned char d[400];
	int n = b64_decode(b64, d, sizeof(d) - 1);
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

/* Does this line check a password (and so wait for the login brake)? */
static int
checks_password(const struct pop3_sess *s, const char *line)
{
	if (s->st == ST_SASL)
		return strcmp(line, "*") != 0;
	return s->st == ST_AUTH && (!strncasecmp(line, "PASS ", 5) ||
	    (!strncasecmp(line, "AUTH PLAIN ", 11) && strcmp(line + 11, "=")));
}

static void
capa(struct conn *c)
{
	int pre = c->u.pop3.st == ST_AUTH, clear = pre && auth_allowed(c);

	conn_reply(c, "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n"
	    "PIPELINING%s%s\r\nIMPLEMENTATION kotak\r\n.", clear ? "\r\nUSER\r\nSASL PLAIN" : "",
	    pre && conn_tls_ready() && !conn_is_tls(c) ? "\r\nSTLS" : "");
}

/* The message an argument names (into s->m), or 0 after an error reply. */
static int
msg_arg(struct conn *c, const char *a)
{
	struct pop3_sess *s = &c->u.pop3;
	unsigned long long v;

	if (parse_uint(a, 0xffffffffULL, &v) < 0 || !view_seek_msn(&s->v, v, &s->m)) {
		bad(c, "There's no such message.");
		return 0;
	}
	if (view_is_dele(&s->v, &s->m)) {
		conn_reply(c, "-ERR Message is deleted.");
		return 0;
	}
	return 1;
}

/* RETR/TOP once the message is where the index says (the first bytes
 * read back): a rewrite by another program is indexed first. */
static void
do_retr_located(struct conn *c)
{
	struct pop3_sess *s = &c->u.pop3;
	uint64_t n;
	char b[1];
	long r = view_read(&s->v, &s->m, 0, b, 1);

	s->st = ST_LOCATE;
	if (r == -F_WAIT) {
		s->wait = 1;
		return;
	}
	s->wait = 0;
	s->st = ST_TRANS;
	if (r < 0) {
		conn_reply(c, errno == ESTALE ? "-ERR Message was removed by another program." :
		    "-ERR [SYS/TEMP] Cannot read message.");
		return;
	}
	mstream_open(&s->ms, &s->v, &s->m, s->top < 0 ? MS_DOTS : MS_DOTS | MS_TOP, s->top, 0, UINT64_MAX, &n);
	if (s->top < 0)
		conn_reply(c, "+OK %u octets", s->m.size);
	else
		conn_reply(c, "+OK");
	s->kind = K_MSG;
	s->st = ST_SEND;
}

/* RETR (top < 0) and TOP. */
static void
do_retr(struct conn *c, char *arg, long top)
{
	struct pop3_sess *s = &c->u.pop3;
	char *sp = strchr(arg, ' ');
	unsigned long long v = 0;

	if (top >= 0 && (sp == NULL || (*sp++ = '\0', parse_uint(sp, 1UL << 30, &v) < 0))) {
		bad(c, "Syntax: TOP msg lines");
		return;
	}
	if (!msg_arg(c, arg))
		return;
	s->top = top < 0 ? -1 : (long)v;
	do_retr_located(c);
}

static void
do_list(struct conn *c, char *arg, int kind)
{
	struct pop3_sess *s = &c->u.pop3;
	struct fstatus fs;
	uint32_t n = 0;
	int r;

	if (*arg) {
		if (!msg_arg(c, arg))
			return;
		view_status(&s->v, &fs);
		if (kind == K_LIST)
			conn_reply(c, "+OK %u %u", s->m.msn, s->m.size);
		else
			conn_reply(c, "+OK %u %08X%08X", s->m.msn, s->m.uid, fs.uidvalidity);
		return;
	}
	for (r = view_seek_msn(&s->v, 1, &s->m); r; r = view_next(&s->v, &s->m))
		n += !view_is_dele(&s->v, &s->m);
	conn_reply(c, kind == K_LIST ? "+OK %u messages:" : "+OK", n);
	s->msg = 1;
	s->kind = kind;
	s->st = ST_SEND;
}

static int
send_list(struct conn *c)
{
	struct pop3_sess *s = &c->u.pop3;
	struct fstatus fs;

	view_status(&s->v, &fs);
	while (s->msg && (s->msg == 1 ? view_seek_msn(&s->v, 1, &s->m) : view_next(&s->v, &s->m))) {
		if (buf_room(&c->out) < 48)
			return 1;
		s->msg = s->m.msn + 1;
		if (view_is_dele(&s->v, &s->m))
			continue;
		if (s->kind == K_LIST)
			buf_printf(&c->out, "%u %u\r\n", s->m.msn, s->m.size);
		else
			buf_printf(&c->out, "%u %08X%08X\r\n", s->m.msn, s->m.uid, fs.uidvalidity);
	}
	return 0;
}

/* 1: more to send later; 0: the multi-line reply is complete. */
static int
send_step(struct conn *c)
{
	struct pop3_sess *s = &c->u.pop3;
	int r;

	if (s->kind == K_MSG) {
		r = mstream_send(&s->ms, &s->v, &c->out);
		if (r == F_WAIT) {
			s->wait = 1;
			return 1;
		}
		if (r < 0) {
			log_warn("pop3 %08x user=%s: read message %u", c->id, s->user, s->m.msn);
			c->flags |= CF_CLOSE;
			return 1;
		}
		if (r == 1)
			return 1;
		c->deadline = now + tmo();
	} else if (send_list(c)) {
		return 1;
	}
	if (buf_room(&c->out) < 3)
		return 1;
	buf_add(&c->out, ".\r\n", 3);
	s->st = ST_TRANS;
	if (s->kind == K_MSG && s->top < 0) {
		s->nretr++;
		view_store(&s->v, &s->m, FS_ADD, MF_SEEN);	/* as Dovecot: RETR marks it read for IMAP */
	}
	return 0;
}

static void
do_cmd(struct conn *c, char *line)
{
	struct pop3_sess *s = &c->u.pop3;
	char *arg = strchr(line, ' '), none[1] = "";
	uint64_t total = 0;
	uint32_t n = 0;
	int r;

	if (s->st == ST_SASL) {
		s->st = ST_AUTH;
		if (!strcmp(line, "*"))
			bad(c, "Authentication aborted.");
		else
			auth_plain(c, line);
		return;
	}
	if (arg)
		*arg++ = '\0';	/* one blank: a password may begin with one */
	else
		arg = none;
#define VERB(v) strcaseeq(line, v)
	if (VERB("CAPA")) {
		capa(c);
	} else if (VERB("QUIT")) {
		if (s->st == ST_AUTH) {
			conn_reply(c, "+OK Logging out.");
			c->flags |= CF_CLOSE;
			c->deadline = now + 10;
			return;
		}
		for (r = view_seek_msn(&s->v, 1, &s->m); r; r = view_next(&s->v, &s->m))
			s->ndele += view_is_dele(&s->v, &s->m);
		s->st = ST_UPDATE;
		quit_done(c, view_pop3_commit(&s->v));
	} else if (s->st == ST_AUTH) {
		if ((VERB("USER") || VERB("PASS") || VERB("AUTH")) && *arg && !auth_allowed(c)) {
			conn_reply(c, "-ERR Cleartext authentication disallowed.");
		} else if (VERB("USER") && *arg) {
			strlcpy_k(s->user, strlen(arg) < sizeof(s->user) ? arg : "\n", sizeof(s->user));
			s->kind = 1;	/* USER given (a name too long to exist becomes "\n") */
			conn_reply(c, "+OK");
		} else if (VERB("PASS")) {
			if (!s->kind) {
				bad(c, "No username given.");
				return;
			}
			s->kind = 0;
			login(c, s->user, arg);
		} else if (VERB("AUTH")) {
			char *ir = strchr(arg, ' ');
			if (ir)
				*ir++ = '\0';
			if (!*arg)
				conn_reply(c, "+OK\r\n%s.", auth_allowed(c) ? "PLAIN\r\n" : "");
			else if (!strcaseeq(arg, "PLAIN"))
				bad(c, "Unsupported authentication mechanism.");
			else if (ir)
				auth_plain(c, ir);
			else {
				s->st = ST_SASL;
				conn_reply(c, "+ ");
			}
		} else if (VERB("STLS")) {
			if (!conn_tls_ready() || conn_is_tls(c))
				bad(c, conn_is_tls(c) ? "TLS already active." : "TLS is not available.");
			else if (conn_starttls(c) < 0)
				conn_reply(c, "-ERR [SYS/TEMP] TLS not available due to local problem.");
			else {	/* a fresh session under TLS: nothing said before counts */
				s->kind = 0;
				s->user[0] = '\0';
				conn_reply(c, "+OK Begin TLS negotiation now.");
			}
		} else {
			bad(c, "Unknown command.");
		}
	} else if (VERB("STAT")) {
		for (r = view_seek_msn(&s->v, 1, &s->m); r; r = view_next(&s->v, &s->m))
			if (!view_is_dele(&s->v, &s->m)) {
				n++;
				total += s->m.size;
			}
		conn_reply(c, "+OK %u %llu", n, (unsigned long long)total);
	} else if (VERB("LIST")) {
		do_list(c, arg, K_LIST);
	} else if (VERB("UIDL")) {
		do_list(c, arg, K_UIDL);
	} else if (VERB("RETR")) {
		do_retr(c, arg, -1);
	} else if (VERB("TOP")) {
		do_retr(c, arg, 0);
	} else if (VERB("DELE")) {
		if (msg_arg(c, arg)) {
			view_dele(&s->v, &s->m);
			conn_reply(c, "+OK Marked to be deleted.");
		}
	} else if (VERB("RSET")) {
		view_dele_reset(&s->v);
		conn_reply(c, "+OK");
	} else if (VERB("NOOP")) {
		conn_reply(c, "+OK");
	} else {
		bad(c, "Unknown command.");
	}
#undef VERB
}

/* send_step while the socket takes each buffer at once, as FETCH does
 * (imap_fetch_step): one 2 KiB buffer a pass made a 20 MB RETR 10,000
 * select() rounds, and as many with TLS. */
static int
send_burst(struct conn *c)
{
	int r, n = 0;

	mstream_burst(1);
	while ((r = send_step(c)) == 1 && ++n < STREAM_PASS && c->out.len && !c->u.pop3.wait &&
	    !(c->flags & CF_CLOSE) && conn_flush(c))
		;
	mstream_burst(0);
	return r;
}

static void
pop3_input(struct conn *c)
{
	struct pop3_sess *s = &c->u.pop3;
	char *line, *lf;
	long n, max;
	int w;

	while (c->fd >= 0 && !(c->flags & CF_STOPPED) && !s->wait) {
		if (s->st == ST_SEND) {
			if (send_burst(c))
				return;	/* resumes as the client reads */
			continue;
		}
		if (buf_room(&c->out) < OUT_NEEDED)
			return;
		max = s->st == ST_SASL ? CONFIG_IBUF : LINE_MAX_P;
		if (c->flags & CF_SKIP) {	/* the rest of an overlong line */
			if ((lf = memchr(c->in.p, '\n', c->in.len)) == NULL) {
				c->in.len = 0;
				return;
			}
			buf_drop(&c->in, lf - c->in.p + 1);
			c->flags &= ~CF_SKIP;
			s->st = s->st == ST_SASL ? ST_AUTH : s->st;
			bad(c, "Line too long.");
			continue;
		}
		if ((n = buf_line(&c->in, &line)) == 0) {
			if ((long)c->in.len < max && buf_room(&c->in) > 0) {
				if (c->flags & CF_EOF)
					c->in.len = 0;
				return;
			}
			c->flags |= CF_SKIP;
			continue;
		}
		if (n > max) {
			s->st = s->st == ST_SASL ? ST_AUTH : s->st;
			bad(c, "Line too long.");
		} else if ((long)strlen(line) != n - 1 - (n >= 2 && line[n - 2] == '\0')) {
			bad(c, "NUL character in command.");
		} else if ((w = checks_password(s, line) ? auth_wait(c->ip) : 0) > 0) {
			/* the brake, as SMTP's: the line waits, whole, until this
			 * address may try again (new sessions included) */
			buf_line_keep(line, n);
			conn_hold(c, w);
			return;
		} else if (w < 0) {	/* failed logins in all over budget: not even checked */
			s->st = ST_AUTH;
			bad(c, "[SYS/TEMP] Too many failed logins, try again later.");
		} else {
			do_cmd(c, line);
		}
		buf_drop(&c->in, n);
		if (!s->wait && s->st != ST_SEND && !(c->flags & CF_CLOSE))
			c->deadline = now + (s->st <= ST_SASL ? conn_login_timeout() : tmo());
	}
}

const struct proto pop3_proto = {
	"pop3", pop3_start, pop3_input, pop3_timeout, pop3_close, "-ERR [SYS/TEMP]", pop3_wake
};

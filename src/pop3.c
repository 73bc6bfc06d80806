/*
 * pop3.c: the POP3 server (RFC 1939; CAPA, RESP-CODES, PIPELINING RFC 2449;
 * AUTH PLAIN RFC 5034; STLS RFC 2595) on the mailbox layer.
 *
 *	ST_AUTH --USER+PASS | AUTH PLAIN--> ST_OPEN --index synced--> ST_TRANS
 *	ST_TRANS --RETR TOP LIST UIDL--> ST_SEND --last line--> ST_TRANS
 *	ST_TRANS --QUIT--> ST_UPDATE --expunged--> close
 *
 * The session sees the mailbox as it was at login; mail delivered meanwhile
 * shows in the next session.  DELE only marks: messages go at QUIT (a
 * dropped connection deletes nothing).  One session per mailbox: a second
 * login gets -ERR [IN-USE] (RFC 2449), as Dovecot does.  Messages stream
 * from the mbox as the socket drains, one output buffer per pass, so a
 * 20 MB RETR costs no more RAM than a NOOP.  UIDL is Dovecot's
 * %08X%08X of UID and UIDVALIDITY, so clients moving from Dovecot keep
 * their "leave on server" state.  Indexing and expunge run in slices from
 * the timeout callback (tick), never holding the loop.
 */
#include "kotak.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

enum { ST_AUTH, ST_SASL, ST_OPEN, ST_TRANS, ST_SEND, ST_UPDATE };
enum { K_MSG, K_LIST, K_UIDL };

#define LINE_MAX_P	257	/* RFC 2449 4: 255 octets, here without the CRLF */
#define OUT_NEEDED	256	/* reply room needed before taking a command */
#define AUTH_TRIES	3	/* failed logins before the session is closed */
#define BUSY_TRIES	30	/* seconds to wait for another program's lock */

static char rb[CONFIG_OBUF];	/* message bytes on their way to an output buffer */

/* RFC 1939 3: an autologout timer must be at least 10 minutes. */
static int
tmo(void)
{
	return cfg.timeout > 600 ? cfg.timeout : 600;
}

/* Come back through pop3_wake after secs (0: next loop pass), input
 * waiting meanwhile: slices of indexing and expunge, lock retries. */
static void
tick(struct conn *c, int secs)
{
	c->u.pop3.wait = 1;
	loop_wake(c, secs);
}

static void
untick(struct conn *c)
{
	c->u.pop3.wait = 0;
	c->deadline = now + tmo();
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
	c->u.pop3.mb.fd = -1;
	c->deadline = now + conn_login_timeout();
	log_info("pop3 %08x connect ip=%s%s", c->id, c->ip, conn_is_tls(c) ? " tls" : "");
	conn_reply(c, "+OK kotak ready.");
}

static void
pop3_close(struct conn *c)
{
	struct pop3_sess *s = &c->u.pop3;

	if (s->st >= ST_OPEN)
		mailbox_close(&s->mb);	/* finishes an expunge under way */
	log_info("pop3 %08x disconnect ip=%s", c->id, c->ip);
}

static void
open_step(struct conn *c)
{
	struct pop3_sess *s = &c->u.pop3;
	int r = mailbox_sync(&s->mb);

	if (r == MB_MORE || (r == MB_BUSY && ++s->waits < BUSY_TRIES)) {
		tick(c, r == MB_BUSY);
		return;
	}
	untick(c);
	if (r == 0) {
		log_info("pop3 %08x login user=%s ip=%s messages=%u", c->id, s->user, c->ip, s->mb.n);
		conn_reply(c, "+OK Logged in.");
		s->st = ST_TRANS;
	} else {
		if (r < 0)
			log_warn("pop3 %08x user=%s: mailbox", c->id, s->user);
		conn_reply(c, r > 0 ? "-ERR [IN-USE] Mailbox locked by another program, try later." :
		    "-ERR [SYS/TEMP] Cannot open the mailbox.");
		mailbox_close(&s->mb);
		s->st = ST_AUTH;
		s->user[0] = '\0';
	}
	conn_process(c);
}

static void
update_step(struct conn *c)
{
	struct pop3_sess *s = &c->u.pop3;
	int r = mailbox_expunge(&s->mb);

	if (r == MB_MORE || (r == MB_BUSY && ++s->waits < BUSY_TRIES)) {
		tick(c, r == MB_BUSY);
		return;
	}
	untick(c);
	if (r == 0)
		conn_reply(c, s->ndele ? "+OK Logging out, messages deleted." : "+OK Logging out.");
	else
		conn_reply(c, "-ERR [SYS/TEMP] Deleted messages were not removed.");
	log_info("pop3 %08x logout user=%s retr=%u dele=%u%s", c->id, s->user, s->nretr, s->ndele,
	    r ? " (not removed)" : "");
	c->flags |= CF_CLOSE;
	c->deadline = now + 10;
}

static void
pop3_wake(struct conn *c)
{
	struct pop3_sess *s = &c->u.pop3;

	if (!s->wait)
		return;
	s->wait = 0;
	if (s->st == ST_OPEN)
		open_step(c);
	else if (s->st == ST_UPDATE)
		update_step(c);
	else
		conn_process(c);	/* ST_SEND: the lock may be free now */
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
	mailbox_open(&s->mb, name, "INBOX");
	s->st = ST_OPEN;
	s->waits = 0;
	tick(c, 0);
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

/* The message an argument names, or NULL after an error reply. */
static struct mb_rec *
msg_arg(struct conn *c, const char *a)
{
	struct pop3_sess *s = &c->u.pop3;
	unsigned long long v;

	if (parse_uint(a, 0xffffffffULL, &v) < 0 || v == 0 || v > s->mb.n) {
		bad(c, "There's no such message.");
		return NULL;
	}
	s->msg = v - 1;
	if (s->mb.rec[s->msg].sflags & MS_DEL) {
		conn_reply(c, "-ERR Message is deleted.");
		return NULL;
	}
	return &s->mb.rec[s->msg];
}

/* RETR (top < 0) and TOP: check where the message is, then stream it. */
static void
do_retr(struct conn *c, char *arg, long top)
{
	struct pop3_sess *s = &c->u.pop3;
	struct mb_rec *r;
	char *sp = strchr(arg, ' ');
	unsigned long long v = 0;
	int e;

	if (top >= 0 && (sp == NULL || (*sp++ = '\0', parse_uint(sp, 1UL << 30, &v) < 0))) {
		bad(c, "Syntax: TOP msg lines");
		return;
	}
	if ((r = msg_arg(c, arg)) == NULL)
		return;
	e = r->sflags & MS_GONE ? 1 : mailbox_locate(&s->mb, s->msg, &s->pos, &s->end);
	if (e < 0 && errno == ESTALE) {
		log_info("pop3 %08x user=%s: mailbox changed by another program, indexing again", c->id, s->user);
		if (mailbox_resync(&s->mb) < 0) {
			conn_reply(c, "-ERR [SYS/TEMP] Mailbox changed by another program, log in again.");
			c->flags |= CF_CLOSE;
			return;
		}
		e = r->sflags & MS_GONE ? 1 : mailbox_locate(&s->mb, s->msg, &s->pos, &s->end);
	}
	if (e) {
		conn_reply(c, e == MB_BUSY ? "-ERR [IN-USE] Mailbox locked by another program, try again." :
		    e > 0 ? "-ERR Message was removed by another program." : "-ERR [SYS/TEMP] Cannot read message.");
		return;
	}
	if (top < 0)
		conn_reply(c, "+OK %u octets", r->size);
	else
		conn_reply(c, "+OK");
	s->top = top < 0 ? -1 : (long)v;
	s->hdr = s->bol = 1;
	s->kind = K_MSG;
	s->st = ST_SEND;
}

static void
do_list(struct conn *c, char *arg, int kind)
{
	struct pop3_sess *s = &c->u.pop3;
	struct mb_rec *r;
	uint32_t i, n = 0;

	if (*arg) {
		if ((r = msg_arg(c, arg)) == NULL)
			return;
		if (kind == K_LIST)
			conn_reply(c, "+OK %u %u", s->msg + 1, r->size);
		else
			conn_reply(c, "+OK %u %08X%08X", s->msg + 1, r->uid, s->mb.h.uidvalidity);
		return;
	}
	for (i = 0; i < s->mb.n; i++)
		n += !(s->mb.rec[i].sflags & MS_DEL);
	conn_reply(c, kind == K_LIST ? "+OK %u messages:" : "+OK", n);
	s->msg = 0;
	s->kind = kind;
	s->st = ST_SEND;
}

/* Message text p[0..n) to the output as the wire wants it: CRLF line
 * ends, one '>' off ^>+From  lines (mboxrd), dot-stuffed.  Whole lines
 * only, or a piece of a line longer than the buffer; counted the same way
 * by mailbox.c's scanner (LIST sizes).  0 when the message is out. */
static int
send_msg(struct conn *c)
{
	struct pop3_sess *s = &c->u.pop3;
	struct buf *o = &c->out;
	size_t want, i, k, cl;
	const char *p, *e;
	long r;
	int q, bol, stop;

	while (s->pos < s->end) {
		if (buf_room(o) < 80)	/* room for a line's first 64 bytes: quoting is judged on them */
			return 1;
		want = buf_room(o) - 3 < sizeof(rb) ? buf_room(o) - 3 : sizeof(rb);
		if (want > s->end - s->pos)
			want = s->end - s->pos;
		r = mailbox_read(&s->mb, s->msg, rb, want, s->pos);
		if (r == -MB_BUSY) {
			tick(c, 1);
			return 1;
		}
		if (r <= 0) {
			log_warn("pop3 %08x user=%s: read message %u", c->id, s->user, s->msg + 1);
			c->flags |= CF_CLOSE;
			return 1;
		}
		for (i = stop = 0; i < (size_t)r && !stop; i += k) {
			p = rb + i;
			if ((e = memchr(p, '\n', r - i)) != NULL)
				k = e - p + 1;
			else if (s->pos + r == s->end)
				k = r - i;
			else if (i == 0)
				k = r - (r > 1 && p[r - 1] == '\r');
			else
				break;
			cl = k - (e != NULL);
			if (e && cl && p[cl - 1] == '\r')
				cl--;
			if (buf_room(o) < cl + 3)
				break;
			bol = s->bol;
			q = bol && mailbox_quoted(p, k);
			if (bol && cl && *p == '.')
				buf_add(o, ".", 1);
			buf_add(o, p + q, cl - q);
			s->bol = e || s->pos + i + k == s->end;
			if (!s->bol)
				continue;
			buf_add(o, "\r\n", 2);
			if (s->top >= 0 && s->hdr)
				stop = bol && cl == 0 && !(s->hdr = 0) && s->top == 0;
			else if (s->top >= 0)
				stop = --s->top == 0;
		}
		s->pos += i;
		if (stop)
			s->end = s->pos;
		c->deadline = now + tmo();
		if (i == 0)
			return 1;	/* the next line waits for room */
	}
	return 0;
}

static int
send_list(struct conn *c)
{
	struct pop3_sess *s = &c->u.pop3;
	struct mb_rec *r;

	while (s->msg < s->mb.n) {
		if (buf_room(&c->out) < 48)
			return 1;
		r = &s->mb.rec[s->msg++];
		if (r->sflags & MS_DEL)
			continue;
		if (s->kind == K_LIST)
			buf_printf(&c->out, "%u %u\r\n", s->msg, r->size);
		else
			buf_printf(&c->out, "%u %08X%08X\r\n", s->msg, r->uid, s->mb.h.uidvalidity);
	}
	return 0;
}

/* 1: more to send later; 0: the multi-line reply is complete. */
static int
send_step(struct conn *c)
{
	struct pop3_sess *s = &c->u.pop3;
	struct mb_rec *r = &s->mb.rec[s->msg];

	if ((s->kind == K_MSG ? send_msg(c) : send_list(c)) || buf_room(&c->out) < 3)
		return 1;
	buf_add(&c->out, ".\r\n", 3);
	s->st = ST_TRANS;
	if (s->kind == K_MSG && s->top < 0) {
		s->nretr++;
		if (!(r->flags & MF_SEEN)) {	/* as Dovecot: RETR marks it read for IMAP */
			r->flags |= MF_SEEN;
			r->sflags |= MS_DIRTY;
		}
	}
	return 0;
}

static void
do_cmd(struct conn *c, char *line)
{
	struct pop3_sess *s = &c->u.pop3;
	char *arg = strchr(line, ' '), none[1] = "";
	uint64_t total = 0;
	uint32_t i, n = 0;

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
		for (i = 0; i < s->mb.n; i++)
			s->ndele += (s->mb.rec[i].sflags & MS_DEL) != 0;
		s->st = ST_UPDATE;
		s->waits = 0;
		tick(c, 0);
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
		for (i = 0; i < s->mb.n; i++)
			if (!(s->mb.rec[i].sflags & MS_DEL)) {
				n++;
				total += s->mb.rec[i].size;
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
			s->mb.rec[s->msg].sflags |= MS_DEL;
			conn_reply(c, "+OK Marked to be deleted.");
		}
	} else if (VERB("RSET")) {
		for (i = 0; i < s->mb.n; i++)
			s->mb.rec[i].sflags &= ~MS_DEL;
		conn_reply(c, "+OK");
	} else if (VERB("NOOP")) {
		conn_reply(c, "+OK");
	} else {
		bad(c, "Unknown command.");
	}
#undef VERB
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
			if (send_step(c))
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

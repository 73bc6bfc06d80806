/*
 * imap.c: the IMAP4rev1 server (RFC 3501), the subset issue 12 names, on
 * the folder layer (folder.h), with IDLE, UIDPLUS, MOVE, NAMESPACE,
 * SPECIAL-USE, CHILDREN, UNSELECT, ID, LITERAL+ and SASL-IR.
 *
 *	ST_NOAUTH --LOGIN | AUTHENTICATE PLAIN--> ST_AUTH
 *	ST_NOAUTH --AUTHENTICATE PLAIN (no SASL-IR)--> ST_SASL --response--> ...
 *	ST_AUTH --SELECT | EXAMINE--> ST_SEL --CLOSE | UNSELECT--> ST_AUTH
 *	any --LOGOUT--> close
 *
 * Commands are assembled whole in the session's cmd[] (the line, with its
 * literals inline as "{n}\r\n" + n bytes) and then parsed with a cursor
 * (imap_parse.c).  Bounds: IMAP_PRE_MAX bytes before login (a login needs
 * no more), CONFIG_IMAP_LINE_MAX after (Thunderbird sends UID sets of
 * several KiB); a longer command gets BAD [TOOBIG] and its bytes (a
 * non-synchronizing literal's too) are read and dropped, never stored.
 * APPEND's message literal is the exception: it goes to an unlinked spool
 * file as it arrives (never under the mailbox lock, never in memory), and
 * one larger than max_message_size is refused before it is sent (a
 * synchronizing literal) or read and dropped (LITERAL+).
 *
 * A command that takes loop passes (SELECT while the folder is indexed,
 * FETCH, SEARCH, STORE, EXPUNGE, COPY, APPEND, LIST, IDLE) runs as a step
 * function (s->run) called again on every wake, output drain and input;
 * its text stays in cmd[] meanwhile, and input waits in the connection's
 * buffer.  Every command ends in R_REPORT: what the folder layer has not
 * told this session yet (EXPUNGE, FETCH FLAGS, EXISTS, RFC 3501 7.4.1;
 * no EXPUNGE after FETCH, STORE and SEARCH), then the tagged reply.
 *
 * Passwords only over TLS unless the client is in cleartext_auth_net
 * (LOGINDISABLED otherwise, as POP3 and SMTP); failed logins are held back
 * by the same per-address brake (auth.c), which also holds a new
 * session's first try.
 */
#include "kotak.h"
#include "imap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* the session needs the store's IMAP parts (kotak.h IMAP_PARTS): an IMAP=n
 * build that links every source (make asan) leaves it out */
#if IMAP_PARTS

enum { ST_NOAUTH, ST_SASL, ST_AUTH, ST_SEL, ST_LOGOUT };

#define IMAP_PRE_MAX	1024	/* a command before login, literals included */
#define OUT_NEEDED	512	/* reply room needed before taking a command */
#define AUTH_TRIES	3	/* failed logins before the session is closed */
#define AUTOLOGOUT	1800	/* RFC 3501 5.4: at least 30 minutes once logged in */
#define EXPUNGE_PASS	2000	/* messages looked at per pass by EXPUNGE and CLOSE */

/* Seconds of silence before the session is logged out: login_timeout
 * before login.  KOTAK_TEST_AUTOLOGOUT (test builds only) shortens the
 * half hour so that a test can wait for it. */
static int
idle_limit(const struct imap_sess *s)
{
	if (s->st < ST_AUTH)
		return conn_login_timeout();
	return TEST_HOOK("KOTAK_TEST_AUTOLOGOUT") > 0 ? TEST_HOOK("KOTAK_TEST_AUTOLOGOUT") : AUTOLOGOUT;
}

#define CAPS "IMAP4rev1 IDLE UIDPLUS MOVE NAMESPACE SPECIAL-USE CHILDREN UNSELECT ID LITERAL+ SASL-IR"

/* Created and subscribed at the first login (RFC 6154 attributes). */
static const char *const special[][2] = {
	{ "Sent", "\\Sent" }, { "Drafts", "\\Drafts" }, { "Trash", "\\Trash" },
	{ "Junk", "\\Junk" }, { "Archive", "\\Archive" },
};
#define NSPECIAL (sizeof(special) / sizeof(special[0]))

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

	snprintf(b, n, CAPS "%s%s", pre && conn_tls_ready() && !conn_is_tls(c) ? " STARTTLS" : "",
	    !pre ? "" : auth_allowed(c) ? " AUTH=PLAIN" : " LOGINDISABLED");
}

static void
imap_start(struct conn *c)
{
	char b[160];

	c->u.imap.cmd = cmdbuf[c - conns];
	c->u.imap.fd = -1;
	c->deadline = now + conn_login_timeout();
	log_info("imap %08x connect ip=%s%s", c->id, c->ip, conn_is_tls(c) ? " tls" : "");
	caps(c, b, sizeof(b));
	conn_reply(c, "* OK [CAPABILITY %s] kotak ready.", b);
}

/* Whatever the running command holds goes: the command ended or the
 * session did. */
static void
cmd_release(struct conn *c)
{
	struct imap_sess *s = &c->u.imap;

	switch (s->run) {
	case R_STATUS:
		view_close(&s->x.sv);
		break;
	case R_FETCH:
	case R_STORE:
	case R_SEARCH:
	case R_EXPUNGE:
		imap_msg_end(c);
		break;
	case R_COPY:
	case R_APPEND:
		fop_abort(&s->x.o.op);
		/* fall through */
	case R_COPYUID:
		free(s->x.o.set);
		s->x.o.set = NULL;
		break;
	}
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->tofile = s->toobig = 0;
	s->run = R_NONE;
	s->sent = 0;
}

static void
imap_close(struct conn *c)
{
	struct imap_sess *s = &c->u.imap;

	cmd_release(c);
	view_close(&s->v);
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

/* The folder layer (or a timer) has news: run the command or report. */
static void
imap_wake(struct conn *c)
{
	conn_process(c);
}

/* A tagged reply at once, without the reports (BAD, and everything
 * before login). */
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

void
imap_bad(struct conn *c, const char *msg)
{
	reply(c, "BAD", "%s", msg);
}

/* see imap.h: the command is done; the reports and then this reply */
void
imap_done(struct conn *c, const char *fmt, ...)
{
	struct imap_sess *s = &c->u.imap;
	va_list ap;

	cmd_release(c);
	va_start(ap, fmt);
	vsnprintf(s->ok, sizeof(s->ok), fmt, ap);
	va_end(ap);
	s->run = R_REPORT;
}

/* NO [CODE] for an errno of folder.h */
const char *
imap_errcode(int e)
{
	switch (e) {
	case ENOENT: return "[NONEXISTENT] No such mailbox.";
	case EEXIST: return "[ALREADYEXISTS] Mailbox exists.";
	case EINVAL: return "[CANNOT] Invalid mailbox name.";
	case EBUSY: return "[INUSE] Mailbox is in use.";
	case EROFS: return "[READ-ONLY] Mailbox is read-only.";
	case ESTALE: return "[EXPUNGEISSUED] Some messages were expunged.";
	case ENOSPC: case EDQUOT: return "[OVERQUOTA] Out of disk space.";
	case EFBIG: return "[TOOBIG] Message too large.";
	case EAGAIN: return "[INUSE] Mailbox locked by another program, try again later.";
	default: return "[SERVERBUG] Internal error, see the server log.";
	}
}

/* ---- output units: rendered whole each time, what went out before skipped */

void
imap_unit_begin(struct conn *c, struct isink *o)
{
	o->p = c->out.p + c->out.len;
	o->room = buf_room(&c->out);
	o->skip = c->u.imap.sent;
	o->n = 0;
	o->full = 0;
}

int
imap_unit_end(struct conn *c, struct isink *o)
{
	size_t w = buf_room(&c->out) - o->room;

	c->out.len += w;
	if (o->full) {
		c->u.imap.sent += w;
		return 0;
	}
	c->u.imap.sent = 0;
	return 1;
}

void
imap_flags(struct conn *c, struct isink *o, uint32_t f)
{
	static const char *const sys[] = { "\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft", "",
		"\\Recent" };
	const char *kw;
	unsigned i, n = 0;

	imap_puts(o, "FLAGS (");
	for (i = 0; i < 7; i++)
		if (f & 1u << i && *sys[i]) {
			imap_puts(o, n++ ? " " : "");
			imap_puts(o, sys[i]);
		}
	for (i = 0; i < FOLDER_KW_MAX; i++)
		if (f & MF_KW(i) && (kw = view_keyword_name(&c->u.imap.v, i)) != NULL) {
			imap_puts(o, n++ ? " " : "");
			imap_puts(o, kw);
		}
	imap_puts(o, ")");
}

/* The folder's flags: "\Answered ... $Keyword ..." (SELECT's FLAGS and
 * PERMANENTFLAGS). */
static void
all_flags(struct conn *c, struct isink *o)
{
	const char *kw;
	int i;

	imap_puts(o, "\\Answered \\Flagged \\Deleted \\Seen \\Draft");
	for (i = 0; i < FOLDER_KW_MAX; i++)
		if ((kw = view_keyword_name(&c->u.imap.v, i)) != NULL) {
			imap_puts(o, " ");
			imap_puts(o, kw);
		}
}

/* ---- what changed: EXPUNGE, FETCH FLAGS, EXISTS (RFC 3501 7.4.1) ---- */

/* see imap.h */
int
imap_report(struct conn *c, int xok)
{
	struct imap_sess *s = &c->u.imap;
	struct isink o;
	uint32_t a, b;
	unsigned ch;

	if (s->st != ST_SEL)
		return 0;
	ch = view_changes(&s->v);
	if (ch & VC_RESET) {
		conn_reply(c, "* BYE [UNAVAILABLE] Mailbox was rewritten by another program: log in again.");
		log_info("imap %08x user=%s: %s reset by another program", c->id, s->user, s->sel);
		c->flags |= CF_CLOSE;
		c->deadline = now + 10;
		return 1;
	}
	while ((ch & VC_EXPUNGE) && xok) {
		if (buf_room(&c->out) < 24)
			return 1;
		if (!view_next_expunge(&s->v, &a))
			break;
		buf_printf(&c->out, "* %u EXPUNGE\r\n", a);
	}
	while (s->rpend || (ch & VC_FLAGS)) {
		if (!s->rpend && !view_next_flags(&s->v, &s->rm))
			break;
		s->rpend = 1;
		imap_unit_begin(c, &o);
		imap_printf(&o, "* %u FETCH (UID %u ", s->rm.msn, s->rm.uid);
		imap_flags(c, &o, s->rm.flags);
		imap_puts(&o, ")\r\n");
		if (!imap_unit_end(c, &o))
			return 1;
		s->rpend = 0;
	}
	if (ch & VC_EXISTS) {
		if (buf_room(&c->out) < 48)
			return 1;
		if (view_next_exists(&s->v, &a, &b))
			buf_printf(&c->out, "* %u EXISTS\r\n* %u RECENT\r\n", a, b);
	}
	return 0;
}

static void
cmd_clear(struct conn *c)
{
	struct imap_sess *s = &c->u.imap;

	memset(s->cmd, 0, s->len);	/* passwords do not linger */
	s->len = s->vlen = 0;
}

void
imap_finish(struct conn *c)
{
	cmd_release(c);
	cmd_clear(c);
}

static int
report_step(struct conn *c)
{
	struct imap_sess *s = &c->u.imap;

	if (imap_report(c, s->rx))
		return 1;
	if (buf_room(&c->out) < strlen(s->tag) + strlen(s->ok) + 4)
		return 1;
	conn_reply(c, "%s %s", s->tag, s->ok);
	imap_finish(c);
	return 0;
}

/* ---- logging in ---- */

static void
count_cb(void *arg, const char *name, unsigned attr)
{
	(*(int *)arg)++;
}

/* The first login (no subscriptions yet): the special folders, created
 * and subscribed, with INBOX. */
static void
first_login(const char *user)
{
	unsigned i;
	int n = 0;

	if (folder_list(user, 1, count_cb, &n) > 0)
		return;
	for (i = 0; i < NSPECIAL; i++)
		if ((folder_create(user, special[i][0]) < 0 && errno != EEXIST) ||
		    folder_subscribe(user, special[i][0], 1) < 0)
			log_warn("imap user=%s: folder %s", user, special[i][0]);
	if (folder_subscribe(user, "INBOX", 1) < 0)
		log_warn("imap user=%s: subscribe INBOX", user);
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
	first_login(name);
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
	uint8_t	 arg;
	void	(*run)(struct conn *, struct icur *, int arg);
};
#define S_PRE	(1 << ST_NOAUTH)
#define S_AUTH	(1 << ST_AUTH | 1 << ST_SEL)
#define S_SEL	(1 << ST_SEL)
#define S_ANY	(S_PRE | S_AUTH)

/* The arguments must be over: 1, else a BAD went out. */
static int
args_end(struct conn *c, struct icur *a)
{
	if (imap_end(a))
		return 1;
	imap_bad(c, a->err ? "Invalid arguments." : "Unexpected arguments.");
	return 0;
}

/* A mailbox argument: 1, or a BAD (syntax) or NO (not a valid name) went out */
static int
mailbox_arg(struct conn *c, struct icur *a, char *name)
{
	if (imap_mailbox(a, name, FOLDER_NAME_MAX + 1) == 0)
		return 1;
	if (a->err == 2)
		imap_done(c, "NO [CANNOT] Mailbox name is not valid modified UTF-7.");
	else
		imap_bad(c, "Invalid mailbox name.");
	return 0;
}

static void
c_capability(struct conn *c, struct icur *a, int arg)
{
	char b[160];

	if (!args_end(c, a))
		return;
	caps(c, b, sizeof(b));
	conn_reply(c, "* CAPABILITY %s", b);
	imap_done(c, "OK Capability completed.");
}

static void
c_noop(struct conn *c, struct icur *a, int arg)
{
	if (args_end(c, a))
		imap_done(c, "OK %s completed.", arg ? "Check" : "NOOP");
}

static void
c_logout(struct conn *c, struct icur *a, int arg)
{
	if (!args_end(c, a))
		return;
	conn_reply(c, "* BYE Logging out");
	reply(c, "OK", "Logout completed.");
	c->u.imap.st = ST_LOGOUT;
	c->flags |= CF_CLOSE;
	c->deadline = now + 10;
}

/* RFC 2971: the client's list is checked and ignored; we say nothing. */
static void
c_id(struct conn *c, struct icur *a, int arg)
{
	if (imap_skip_value(a) < 0 || !imap_end(a)) {
		imap_bad(c, "Syntax: ID (name value ...) | NIL");
		return;
	}
	conn_reply(c, "* ID NIL");
	imap_done(c, "OK ID completed.");
}

static void
c_starttls(struct conn *c, struct icur *a, int arg)
{
	struct imap_sess *s = &c->u.imap;

	if (!conn_tls_ready() || conn_is_tls(c)) {
		imap_bad(c, conn_is_tls(c) ? "TLS is already active." : "TLS is not available.");
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
c_login(struct conn *c, struct icur *a, int arg)
{
	char user[USER_MAX + 64], pass[512];

	if (imap_astring(a, user, sizeof(user)) < 0 || imap_sp(a) < 0 ||
	    imap_astring(a, pass, sizeof(pass)) < 0 || !imap_end(a)) {
		imap_bad(c, "Syntax: LOGIN user password");
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
c_authenticate(struct conn *c, struct icur *a, int arg)
{
	struct imap_sess *s = &c->u.imap;
	char mech[32], ir[600];
	int have_ir = 0;

	if (imap_atom(a, mech, sizeof(mech)) < 0 ||
	    (!imap_end(a) && (have_ir = 1, imap_sp(a) < 0 || imap_atom(a, ir, sizeof(ir)) < 0 || !imap_end(a)))) {
		imap_bad(c, "Syntax: AUTHENTICATE mechanism [initial-response]");
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

/* ---- folders ---- */

static uint32_t
folder_id(const char *user, const char *name)
{
	uint32_t h = 2166136261u;	/* FNV-1a of "user/name" */

	for (; *user; user++)
		h = (h ^ (unsigned char)*user) * 16777619u;
	for (h = (h ^ '/') * 16777619u; *name; name++)
		h = (h ^ (unsigned char)*name) * 16777619u;
	return h;
}

static void
unselect(struct conn *c)
{
	struct imap_sess *s = &c->u.imap;

	view_close(&s->v);
	s->st = ST_AUTH;
	s->rpend = 0;
}

static void
c_select(struct conn *c, struct icur *a, int ro)
{
	struct imap_sess *s = &c->u.imap;
	char name[FOLDER_NAME_MAX + 1];
	int r;

	if (s->st == ST_SEL)
		unselect(c);	/* RFC 3501 6.3.1: even if the new one fails */
	if (!mailbox_arg(c, a, name) || !args_end(c, a))
		return;
	strlcpy_k(s->sel, name, sizeof(s->sel));
	s->ro = ro;
	r = view_open(&s->v, c, s->user, name, ro ? VM_RO : VM_RW);
	if (r < 0) {
		imap_done(c, "NO %s", imap_errcode(errno));
		return;
	}
	s->k = 0;
	s->run = r == F_WAIT ? R_OPEN : R_SELOUT;
}

static int
open_step(struct conn *c)
{
	struct imap_sess *s = &c->u.imap;
	int r = view_ready(&s->v);

	if (r == F_WAIT)
		return 1;
	if (r < 0) {
		imap_done(c, "NO %s", imap_errcode(errno));
		return 0;
	}
	s->run = R_SELOUT;
	return 0;
}

/* SELECT's untagged lines, one unit each */
static int
selout_step(struct conn *c)
{
	struct imap_sess *s = &c->u.imap;
	struct fstatus fs;
	struct isink o;
	int ro = s->ro;

	view_status(&s->v, &fs);
	for (; s->k < 7; s->k++) {
		imap_unit_begin(c, &o);
		switch (s->k) {
		case 0:
			imap_puts(&o, "* FLAGS (");
			all_flags(c, &o);
			imap_puts(&o, ")\r\n");
			break;
		case 1:
			imap_puts(&o, "* OK [PERMANENTFLAGS (");
			if (!ro) {
				all_flags(c, &o);
				imap_puts(&o, view_kw_room(&s->v) > 0 ? " \\*" : "");
			}
			imap_puts(&o, ")] Flags permitted.\r\n");
			break;
		case 2:
			imap_printf(&o, "* %u EXISTS\r\n* %u RECENT\r\n", view_count(&s->v), fs.recent);
			break;
		case 3:
			if (fs.first_unseen)
				imap_printf(&o, "* OK [UNSEEN %u] First unseen.\r\n", fs.first_unseen);
			break;
		case 4:
			imap_printf(&o, "* OK [UIDVALIDITY %u] UIDs valid.\r\n", fs.uidvalidity);
			break;
		case 5:
			imap_printf(&o, "* OK [UIDNEXT %u] Predicted next UID.\r\n", fs.uidnext);
			break;
		case 6:
			s->st = ST_SEL;
			s->uidvalidity = fs.uidvalidity;
			s->fid = folder_id(s->user, s->sel);
			imap_done(c, "OK [%s] %s completed.", ro ? "READ-ONLY" : "READ-WRITE", ro ? "Examine" : "Select");
			return 0;
		}
		if (!imap_unit_end(c, &o))
			return 1;
	}
	return 0;
}

static void
c_create(struct conn *c, struct icur *a, int arg)
{
	struct imap_sess *s = &c->u.imap;
	char name[FOLDER_NAME_MAX + 1];
	size_t n;

	if (!mailbox_arg(c, a, name) || !args_end(c, a))
		return;
	n = strlen(name);
	if (n > 1 && name[n - 1] == '/')
		name[n - 1] = '\0';	/* "foo/": a parent-to-be; names here are flat */
	if (folder_create(s->user, name) < 0)
		imap_done(c, "NO %s", imap_errcode(errno));
	else
		imap_done(c, "OK Create completed.");
}

static void
c_delete(struct conn *c, struct icur *a, int arg)
{
	struct imap_sess *s = &c->u.imap;
	char name[FOLDER_NAME_MAX + 1];

	if (!mailbox_arg(c, a, name) || !args_end(c, a))
		return;
	if (!strcmp(name, "INBOX"))
		imap_done(c, "NO [CANNOT] INBOX cannot be deleted.");
	else if (folder_delete(s->user, name) < 0)
		imap_done(c, "NO %s", imap_errcode(errno));
	else
		imap_done(c, "OK Delete completed.");
}

static void
c_rename(struct conn *c, struct icur *a, int arg)
{
	struct imap_sess *s = &c->u.imap;
	char from[FOLDER_NAME_MAX + 1], to[FOLDER_NAME_MAX + 1];

	if (imap_mailbox(a, from, sizeof(from)) < 0 || imap_sp(a) < 0 || imap_mailbox(a, to, sizeof(to)) < 0 ||
	    !imap_end(a)) {
		if (a->err == 2)
			imap_done(c, "NO [CANNOT] Mailbox name is not valid modified UTF-7.");
		else
			imap_bad(c, "Syntax: RENAME from to");
		return;
	}
	if (!strcmp(from, "INBOX") || !strcmp(to, "INBOX"))
		imap_done(c, "NO [CANNOT] Renaming INBOX is not supported.");
	else if (folder_rename(s->user, from, to) < 0)
		imap_done(c, "NO %s", imap_errcode(errno));
	else
		imap_done(c, "OK Rename completed.");
}

static void
c_subscribe(struct conn *c, struct icur *a, int on)
{
	struct imap_sess *s = &c->u.imap;
	char name[FOLDER_NAME_MAX + 1];

	if (!mailbox_arg(c, a, name) || !args_end(c, a))
		return;
	if (folder_subscribe(s->user, name, on) < 0)
		imap_done(c, "NO %s", imap_errcode(errno));
	else
		imap_done(c, "OK %s completed.", on ? "Subscribe" : "Unsubscribe");
}

static void
c_namespace(struct conn *c, struct icur *a, int arg)
{
	if (!args_end(c, a))
		return;
	conn_reply(c, "* NAMESPACE ((\"\" \"/\")) NIL NIL");
	imap_done(c, "OK Namespace completed.");
}

/* LIST and LSUB: the user's folders are listed again at each output
 * drain, skipping those already sent (s->k): a user has few. */
static struct {
	struct conn *c;
	uint32_t i;
	int full;
} lctx;

static const char *
special_use(const char *name)
{
	unsigned i;

	for (i = 0; i < NSPECIAL; i++)
		if (!strcmp(name, special[i][0]))
			return special[i][1];
	return NULL;
}

static void
list_cb(void *arg, const char *name, unsigned attr)
{
	struct conn *c = lctx.c;
	struct imap_sess *s = &c->u.imap;
	const char *su = special_use(name);
	struct isink o;

	if (lctx.full || !imap_match(s->x.pat, name) || lctx.i++ < s->k)
		return;
	if (buf_room(&c->out) < 2 * FOLDER_NAME_MAX + 64) {
		lctx.full = 1;
		return;
	}
	s->k++;
	imap_unit_begin(c, &o);
	if (s->rx & 2)	/* LSUB */
		imap_puts(&o, attr & FA_NONEXISTENT ? "* LSUB (\\Noselect) \"/\" " : "* LSUB () \"/\" ");
	else
		imap_printf(&o, "* LIST (\\HasNoChildren%s%s) \"/\" ", su ? " " : "", su ? su : "");
	imap_string(&o, name, strlen(name));
	imap_puts(&o, "\r\n");
	imap_unit_end(c, &o);
}

static int
list_step(struct conn *c)
{
	struct imap_sess *s = &c->u.imap;

	lctx.c = c;
	lctx.i = 0;
	lctx.full = 0;
	if (folder_list(s->user, s->rx & 2, list_cb, NULL) < 0 && errno != ENOENT) {
		imap_done(c, "NO %s", imap_errcode(errno));
		return 0;
	}
	if (lctx.full)
		return 1;
	imap_done(c, "OK %s completed.", s->rx & 2 ? "Lsub" : "List");
	return 0;
}

static void
c_list(struct conn *c, struct icur *a, int lsub)
{
	struct imap_sess *s = &c->u.imap;
	char ref[FOLDER_NAME_MAX + 1], pat[FOLDER_NAME_MAX + 1], opt[16];

	if (imap_list_mailbox(a, ref, sizeof(ref)) < 0 || imap_sp(a) < 0 ||
	    imap_list_mailbox(a, pat, sizeof(pat)) < 0) {
		imap_bad(c, "Syntax: LIST reference pattern");
		return;
	}
	/* RETURN (SPECIAL-USE) (Apple Mail), RETURN (CHILDREN): what is sent anyway */
	if (!lsub && !imap_end(a)) {
		if (imap_sp(a) < 0 || !imap_peek(a, "RETURN") || (a->p += 6, imap_sp(a) < 0) ||
		    a->p >= a->e || *a->p++ != '(') {
			imap_bad(c, "Syntax: LIST reference pattern [RETURN (options)]");
			return;
		}
		while (a->p < a->e && *a->p != ')') {
			a->p += *a->p == ' ';
			if (imap_atom(a, opt, sizeof(opt)) < 0 ||
			    (strcasecmp(opt, "SPECIAL-USE") && strcasecmp(opt, "CHILDREN"))) {
				imap_bad(c, "Unsupported LIST return option.");
				return;
			}
		}
		a->p++;
	}
	if (!args_end(c, a))
		return;
	if (!*pat) {	/* the hierarchy delimiter */
		if (!lsub)
			conn_reply(c, "* LIST (\\Noselect) \"/\" \"\"");
		imap_done(c, "OK %s completed.", lsub ? "Lsub" : "List");
		return;
	}
	snprintf(s->x.pat, sizeof(s->x.pat), "%s%s", ref, pat);
	s->k = 0;
	s->rx = lsub ? 3 : 1;
	s->run = R_LIST;
}

static const char *const status_items[] = { "MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN" };

/* STATUS's list: each item known; 0 or -1 */
static int
status_list(struct icur *a, struct isink *o, const struct fstatus *fs)
{
	const uint32_t v[] = { fs ? fs->messages : 0, fs ? fs->recent : 0, fs ? fs->uidnext : 0,
		fs ? fs->uidvalidity : 0, fs ? fs->unseen : 0 };
	char item[16];
	unsigned i, n = 0;

	if (a->p >= a->e || *a->p++ != '(')
		return -1;
	do {
		if (imap_atom(a, item, sizeof(item)) < 0)
			return -1;
		for (i = 0; i < 5 && strcasecmp(item, status_items[i]); i++)
			;
		if (i == 5)
			return -1;
		if (o)
			imap_printf(o, "%s%s %u", n++ ? " " : "", status_items[i], v[i]);
	} while (a->p < a->e && *a->p == ' ' && a->p++);
	return a->p < a->e && *a->p++ == ')' ? 0 : -1;
}

static void
c_status(struct conn *c, struct icur *a, int arg)
{
	struct imap_sess *s = &c->u.imap;
	char name[FOLDER_NAME_MAX + 1];
	int r;

	s->k = a->p - s->cmd;	/* where the arguments are, for the answer */
	if (!mailbox_arg(c, a, name))
		return;
	if (imap_sp(a) < 0 || status_list(a, NULL, NULL) < 0 || !imap_end(a)) {
		imap_bad(c, "Syntax: STATUS mailbox (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)");
		return;
	}
	if ((r = view_open(&s->x.sv, c, s->user, name, VM_STATUS)) < 0) {
		imap_done(c, "NO %s", imap_errcode(errno));
		return;
	}
	s->run = R_STATUS;
}

static int
status_step(struct conn *c)
{
	struct imap_sess *s = &c->u.imap;
	char name[FOLDER_NAME_MAX + 1];
	struct fstatus fs;
	struct icur a;
	struct isink o;
	int r = view_ready(&s->x.sv);

	if (r == F_WAIT)
		return 1;
	if (r < 0) {
		imap_done(c, "NO %s", imap_errcode(errno));
		return 0;
	}
	view_status(&s->x.sv, &fs);
	imap_cur(&a, s->cmd + s->k, s->len - s->k);
	imap_mailbox(&a, name, sizeof(name));
	imap_sp(&a);
	imap_unit_begin(c, &o);
	imap_puts(&o, "* STATUS ");
	imap_string(&o, name, strlen(name));
	imap_puts(&o, " (");
	status_list(&a, &o, &fs);
	imap_puts(&o, ")\r\n");
	if (!imap_unit_end(c, &o))
		return 1;
	imap_done(c, "OK Status completed.");
	return 0;
}

/* ---- APPEND ---- */

/* A flag list "(\Seen $Kw ...)" (paren 0: flags without the parentheses
 * are taken too, as STORE allows): system flags into *sys, keywords
 * space-separated into kw (NULL: not kept).  0, -1. */
int
imap_flag_list(struct icur *a, uint32_t *sys, char *kw, size_t kwmax, int paren)
{
	char f[FOLDER_KW_LEN + 1];
	size_t n = 0;
	int r, p = a->p < a->e && *a->p == '(';

	*sys = 0;
	if (kw)
		*kw = '\0';
	if (!p && paren)
		return -1;
	a->p += p;
	if (p && a->p < a->e && *a->p == ')') {
		a->p++;
		return 0;
	}
	do {
		if ((r = imap_flag(a, f, sizeof(f))) < 0)
			return -1;
		*sys |= r & MF_SYSTEM;
		if (r == 0 && kw) {
			if (n + strlen(f) + 2 > kwmax)
				return -1;
			n += snprintf(kw + n, kwmax - n, "%s%s", n ? " " : "", f);
		}
	} while (a->p < a->e && *a->p == ' ' && a->p++);
	return !p || (a->p < a->e && *a->p++ == ')') ? 0 : -1;
}

/* APPEND's arguments up to its message literal ("{n}" or "{n+}"): 0 with
 * the cursor on the literal, -1 a syntax error. */
static int
append_args(struct icur *a, char *name, uint32_t *flags, char *kw, size_t kwmax, time_t *date)
{
	if (imap_mailbox(a, name, FOLDER_NAME_MAX + 1) < 0 || imap_sp(a) < 0)
		return -1;
	*flags = 0;
	*date = 0;
	if (kw)
		*kw = '\0';
	if (a->p < a->e && *a->p == '(' &&
	    (imap_flag_list(a, flags, kw, kwmax, 1) < 0 || imap_sp(a) < 0))
		return -1;
	if (a->p < a->e && *a->p == '"' && (imap_datetime(a, date) < 0 || imap_sp(a) < 0))
		return -1;
	return a->p < a->e && *a->p == '{' ? 0 : -1;
}

/* The line so far ends in a literal: is it APPEND's message?  Then its
 * bytes go to a spool file, not to cmd.  1: so (or refused at once), 0: an
 * ordinary literal. */
static int
append_literal(struct conn *c, unsigned long long n, int plus)
{
	struct imap_sess *s = &c->u.imap;
	char tag[64], verb[8], name[FOLDER_NAME_MAX + 1], p[PATH_MAX_K + 32];
	struct icur a;
	uint32_t fl;
	time_t t;
	int fd;

	if (s->st != ST_AUTH && s->st != ST_SEL)
		return 0;
	imap_cur(&a, s->cmd, s->len);
	if (s->len + 2 > CONFIG_IMAP_LINE_MAX || imap_tag(&a, tag, sizeof(tag)) < 0 || imap_sp(&a) < 0 ||
	    imap_atom(&a, verb, sizeof(verb)) < 0 || strcasecmp(verb, "APPEND") || imap_sp(&a) < 0 ||
	    append_args(&a, name, &fl, NULL, 0, &t) < 0)
		return 0;
	strlcpy_k(s->tag, tag, sizeof(s->tag));
	if (n > (unsigned long long)cfg.max_message_size) {
		s->toobig = 1;
	} else {
		snprintf(p, sizeof(p), "%s/spool/tmp/imap.XXXXXX", cfg.data_dir);
		if ((fd = mkstemp(p)) < 0) {
			log_warn("imap %08x: %s", c->id, p);
			s->toobig = 2;
		} else {
			unlink(p);
			s->fd = fd;
			s->alen = n;
			s->tofile = n > 0;
			s->lit = n;
			memcpy(s->cmd + s->len, "\r\n", 2);	/* the literal, its bytes elsewhere */
			s->len += 2;
			if (!plus)
				conn_reply(c, "+ OK");
			return 1;
		}
	}
	/* refused: a synchronizing literal is never sent; LITERAL+ bytes
	 * are read and dropped */
	if (plus) {
		s->skip = 1;
		s->lit = n;
	} else {
		reply(c, "NO", "%s", imap_errcode(s->toobig == 1 ? EFBIG : EIO));
		s->toobig = 0;
		cmd_clear(c);
	}
	return 1;
}

static void
c_append(struct conn *c, struct icur *a, int arg)
{
	struct imap_sess *s = &c->u.imap;
	char name[FOLDER_NAME_MAX + 1], *kw = s->cmd + s->len + 1;
	size_t kwmax = CONFIG_IMAP_LINE_MAX - s->len;
	uint32_t flags;
	time_t date;

	/* the keywords go after the command in cmd[], theirs until the end */
	if (s->fd < 0 || s->len + 2 > CONFIG_IMAP_LINE_MAX || append_args(a, name, &flags, kw, kwmax, &date) < 0) {
		imap_bad(c, "Syntax: APPEND mailbox [(flags)] [date-time] literal");
		return;
	}
	while (a->p < a->e && *a->p != '}')
		a->p++;
	a->p += 3;	/* "}\r\n" */
	if (a->p > a->e || !args_end(c, a))
		return;
	if (s->alen == 0) {
		imap_done(c, "NO [CANNOT] An empty message cannot be saved.");
		return;
	}
	if (folder_append(&s->x.o.op, c, s->user, name, s->fd, 0, s->alen, flags, kw, date) < 0) {
		imap_done(c, "NO %s", errno == ENOENT ? "[TRYCREATE] No such mailbox." : imap_errcode(errno));
		return;
	}
	s->x.o.set = NULL;
	s->run = R_APPEND;
}

/* APPEND, COPY and MOVE: the folder operation's steps */
static int
fop_run(struct conn *c)
{
	struct imap_sess *s = &c->u.imap;
	struct fop *o = &s->x.o.op;
	int r = fop_step(o);

	if (r == F_WAIT)
		return 1;
	if (r < 0) {
		imap_done(c, "NO %s", errno == ENOENT ? "[TRYCREATE] No such mailbox." : imap_errcode(errno));
		return 0;
	}
	if (s->run == R_APPEND) {
		log_info("imap %08x user=%s append uid=%u size=%llu", c->id, s->user, o->uid0,
		    (unsigned long long)s->alen);
		imap_done(c, "OK [APPENDUID %u %u] Append completed.", o->uidvalidity, o->uid0);
		return 0;
	}
	s->run = R_COPYUID;
	return 0;
}

/* ---- the selected state ---- */

/* EXPUNGE, UID EXPUNGE, CLOSE: tombstone the \Deleted messages (those of
 * the UID set), a slice per pass, then make it durable (R_SYNC). */
static int
expunge_step(struct conn *c)
{
	struct imap_sess *s = &c->u.imap;
	struct imsg *m = &s->x.m;
	int n;

	for (n = 0; n < EXPUNGE_PASS; n++) {
		if (!imap_walk(&s->v, &m->w, &m->m)) {
			s->run = R_SYNC;
			return 0;
		}
		if ((m->m.flags & MF_DELETED) && !m->m.gone)
			view_expunge(&s->v, &m->m);
	}
	loop_wake(c, 0);
	return 1;
}

static void
expunge_start(struct conn *c, const struct iset *set)
{
	struct imap_sess *s = &c->u.imap;
	struct iset all;
	struct icur a;

	if (s->ro) {
		if (s->k)
			unselect(c);	/* CLOSE of a read-only folder: nothing to remove */
		imap_done(c, s->k ? "OK Close completed." : "NO [READ-ONLY] Mailbox is read-only.");
		return;
	}
	memset(&s->x.m, 0, sizeof(s->x.m));
	if (set == NULL) {
		imap_cur(&a, "1:*", 3);
		imap_set(&a, &all);
		set = &all;
	}
	imap_walk_start(&s->x.m.w, set, set != &all);
	iset_star(&s->x.m.w.set, set != &all ? view_last_uid(&s->v) : view_count(&s->v));
	s->run = R_EXPUNGE;
}

static int
sync_step(struct conn *c)
{
	struct imap_sess *s = &c->u.imap;
	int r = view_sync(&s->v);

	if (r == F_WAIT)
		return 1;
	if (s->k) {	/* CLOSE: no EXPUNGE responses */
		unselect(c);
		imap_done(c, r < 0 ? "NO %s" : "OK Close completed.", imap_errcode(errno));
	} else if (r < 0) {
		imap_done(c, "NO %s", imap_errcode(errno));
	} else {
		imap_done(c, "OK %s completed.", s->cmd[s->vlen] == 'C' || s->cmd[s->vlen] == 'c' ? "Check" : "Expunge");
	}
	return 0;
}

static void
c_check(struct conn *c, struct icur *a, int arg)
{
	if (!args_end(c, a))
		return;
	c->u.imap.k = 0;
	c->u.imap.run = R_SYNC;
}

static void
c_expunge(struct conn *c, struct icur *a, int close)
{
	struct imap_sess *s = &c->u.imap;
	struct iset set;

	if (s->uid && (imap_set(a, &set) < 0 || !args_end(c, a))) {
		if (a->err)
			imap_bad(c, "Syntax: UID EXPUNGE set");
		return;
	}
	if (!s->uid && !args_end(c, a))
		return;
	s->k = close;
	expunge_start(c, s->uid ? &set : NULL);
}

static void
c_unselect(struct conn *c, struct icur *a, int arg)
{
	if (!args_end(c, a))
		return;
	unselect(c);
	imap_done(c, "OK Unselect completed.");
}

/* RFC 2177: "+ idling", then what changes as it happens, until DONE.
 * Nothing else is sent meanwhile (no keep-alive chatter); the session is
 * logged out after AUTOLOGOUT seconds without a command or a change sent
 * (what it is sent also tells TCP whether the client is still there). */
static void
c_idle(struct conn *c, struct icur *a, int arg)
{
	if (!args_end(c, a))
		return;
	conn_reply(c, "+ idling");
	c->u.imap.run = R_IDLE;
}

static int
idle_step(struct conn *c)
{
	struct imap_sess *s = &c->u.imap;
	char *lf = memchr(c->in.p, '\n', c->in.len);
	size_t n;

	if (lf == NULL) {
		if (c->in.len == c->in.cap)
			c->in.len = 0;	/* a full buffer without a line: not DONE */
		imap_report(c, 1);
		return 1;
	}
	n = lf - c->in.p;
	n -= n && c->in.p[n - 1] == '\r';
	s->k = n == 4 && !strncasecmp(c->in.p, "DONE", 4);
	buf_drop(&c->in, lf - c->in.p + 1);
	if (s->k) {
		imap_done(c, "OK Idle completed.");
		return 0;
	}
	s->run = R_NONE;
	cmd_clear(c);
	imap_bad(c, "Expected DONE.");
	return 0;
}

/* UID FETCH, UID STORE, UID SEARCH, UID COPY, UID MOVE, UID EXPUNGE */
static void c_uid(struct conn *c, struct icur *a, int arg);

static const struct icmd cmds[] = {
	{ "CAPABILITY", S_ANY, 0, c_capability },
	{ "NOOP", S_ANY, 0, c_noop },
	{ "LOGOUT", S_ANY, 0, c_logout },
	{ "ID", S_ANY, 0, c_id },
	{ "STARTTLS", S_PRE, 0, c_starttls },
	{ "LOGIN", S_PRE, 0, c_login },
	{ "AUTHENTICATE", S_PRE, 0, c_authenticate },
	{ "SELECT", S_AUTH, 0, c_select },
	{ "EXAMINE", S_AUTH, 1, c_select },
	{ "LIST", S_AUTH, 0, c_list },
	{ "LSUB", S_AUTH, 1, c_list },
	{ "STATUS", S_AUTH, 0, c_status },
	{ "CREATE", S_AUTH, 0, c_create },
	{ "DELETE", S_AUTH, 0, c_delete },
	{ "RENAME", S_AUTH, 0, c_rename },
	{ "SUBSCRIBE", S_AUTH, 1, c_subscribe },
	{ "UNSUBSCRIBE", S_AUTH, 0, c_subscribe },
	{ "NAMESPACE", S_AUTH, 0, c_namespace },
	{ "APPEND", S_AUTH, 0, c_append },
	{ "IDLE", S_AUTH, 0, c_idle },
	{ "CHECK", S_SEL, 1, c_check },
	{ "CLOSE", S_SEL, 1, c_expunge },
	{ "UNSELECT", S_SEL, 0, c_unselect },
	{ "EXPUNGE", S_SEL, 0, c_expunge },
	{ "FETCH", S_SEL, 0, imap_c_fetch },
	{ "STORE", S_SEL, 0, imap_c_store },
	{ "SEARCH", S_SEL, 0, imap_c_search },
	{ "COPY", S_SEL, 0, imap_c_copy },
	{ "MOVE", S_SEL, 1, imap_c_copy },
	{ "UID", S_SEL, 0, c_uid },
	{ NULL, 0, 0, NULL }
};

static const struct icmd *
find(const char *verb)
{
	const struct icmd *t;

	for (t = cmds; t->name && strcasecmp(t->name, verb); t++)
		;
	return t->name ? t : NULL;
}

static void
c_uid(struct conn *c, struct icur *a, int arg)
{
	static const char *const ok[] = { "FETCH", "STORE", "SEARCH", "COPY", "MOVE", "EXPUNGE" };
	const struct icmd *t;
	char verb[16];
	unsigned i;

	if (imap_atom(a, verb, sizeof(verb)) < 0 || (!imap_end(a) && imap_sp(a) < 0)) {
		imap_bad(c, "Syntax: UID command arguments");
		return;
	}
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]) && strcasecmp(verb, ok[i]); i++)
		;
	if (i == sizeof(ok) / sizeof(ok[0]) || (t = find(verb)) == NULL) {
		imap_bad(c, "Unknown UID command.");
		return;
	}
	c->u.imap.uid = 1;
	c->u.imap.rx = 1;	/* UID forms may be answered with EXPUNGE */
	t->run(c, a, t->arg);
}

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
	s->uid = 0;
	s->rx = 1;
	if (imap_tag(&a, s->tag, sizeof(s->tag)) < 0 || imap_sp(&a) < 0) {
		s->tag[0] = '\0';
		imap_bad(c, "Error in IMAP command: no tag.");
		return;
	}
	if (imap_atom(&a, verb, sizeof(verb)) < 0) {
		imap_bad(c, "Error in IMAP command: no command.");
		return;
	}
	if ((t = find(verb)) == NULL) {
		imap_bad(c, "Unknown command.");
		return;
	}
	if (!(t->states & 1 << s->st)) {
		imap_bad(c, s->st == ST_NOAUTH ? "Log in first." : s->st == ST_AUTH && (t->states & S_SEL) ?
		    "No mailbox selected." : "Command not valid in this state.");
		return;
	}
	if (!imap_end(&a) && imap_sp(&a) < 0) {
		imap_bad(c, "Error in IMAP command: expected a space.");
		return;
	}
	a.b = a.p;
	t->run(c, &a, t->arg);
}

/* The tag and command name of an overlong command, for its BAD reply. */
static void
toobig(struct conn *c)
{
	struct imap_sess *s = &c->u.imap;
	struct icur a;

	imap_cur(&a, s->cmd, s->len < 64 ? s->len : 64);
	if (s->toobig) {	/* APPEND's message refused: its tag is known */
		reply(c, "NO", "%s", imap_errcode(s->toobig == 1 ? EFBIG : EIO));
		s->toobig = 0;
		return;
	}
	s->tag[0] = '\0';
	if (s->st == ST_SASL)
		s->st = ST_NOAUTH;
	else if (imap_tag(&a, s->tag, sizeof(s->tag)) < 0 || imap_sp(&a) < 0)
		s->tag[0] = '\0';
	reply(c, "BAD", "[TOOBIG] Command too long.");
}

/* The running command's next step: 1 it waits (output room, a wake,
 * input), 0 go on. */
static int
step(struct conn *c)
{
	switch (c->u.imap.run) {
	case R_OPEN: return open_step(c);
	case R_SELOUT: return selout_step(c);
	case R_STATUS: return status_step(c);
	case R_LIST: return list_step(c);
	case R_FETCH: return imap_fetch_step(c);
	case R_STORE: return imap_store_step(c);
	case R_SEARCH: return imap_search_step(c);
	case R_EXPUNGE: return expunge_step(c);
	case R_SYNC: return sync_step(c);
	case R_COPY: case R_APPEND: return fop_run(c);
	case R_COPYUID: return imap_copyuid_step(c);
	case R_IDLE: return idle_step(c);
	default: return report_step(c);
	}
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
		if (s->run) {
			c->deadline = now + idle_limit(s);
			if (step(c))
				return;
			continue;
		}
		if (s->ready) {	/* a whole command, maybe held by the brake */
			if (checks_password(s) && (w = auth_wait(c->ip)) > 0) {
				conn_hold(c, w);
				return;
			}
			s->ready = 0;
			run_cmd(c);
			if (!s->run)
				cmd_clear(c);
			if (!(c->flags & CF_CLOSE))
				c->deadline = now + idle_limit(s);
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
			if (s->tofile) {
				if (s->fd >= 0 && write(s->fd, c->in.p, k) != (ssize_t)k) {
					log_warn("imap %08x: APPEND spool", c->id);
					close(s->fd);
					s->fd = -1;
					s->toobig = 2;
				}
				s->tofile = s->lit > k;
			} else if (!s->skip) {
				memcpy(s->cmd + s->len, c->in.p, k);
				s->len += k;
			}
			s->lit -= k;
			buf_drop(&c->in, k);
			if (!s->lit && s->toobig && !s->skip)
				s->skip = 1;	/* the spool failed: drop the rest, then NO */
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
			if (!s->skip && s->fd < 0 && append_literal(c, n, plus))
				continue;
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
			s->lit = n;
			continue;
		}
done:
		s->ntail = 0;
		if (s->skip) {
			s->skip = 0;
			s->lit = 0;
			toobig(c);
			cmd_release(c);
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
	"imap", imap_start, imap_input, imap_timeout, imap_close, "* BYE [UNAVAILABLE]", imap_wake
};

#endif	/* IMAP_PARTS */

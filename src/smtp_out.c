/*
 * smtp_out.c: the relay client, a state machine in the select() loop.
 *
 * The queue hands over a message (smtp_out_add) whose envelope has pending
 * remote recipients ("R - ! addr").  Each outbound slot takes one domain of
 * one message: all its pending recipients (at most RCPT_MAX), one session:
 *
 *	MX --> ADDR --> CONN --> GREET --> EHLO (HELO) --> MAIL --> RCPT...
 *	   --> DATA --> BODY --> DOT --> QUIT
 *
 * Entering a state sends its command; the reply picks the next state
 * (OpenSMTPD mta_enter_state / mta_response).  MX sorted by preference
 * (dns.c), each host's A then AAAA addresses tried in order; no MX: the
 * domain itself (implicit MX); null MX, NXDOMAIN: bounce; DNS failure:
 * defer.  A connection that fails before MAIL moves on to the next
 * address; after it, the recipients are deferred.  Per recipient: 2xx
 * done, 4xx deferred, 5xx bounced.  Replies are read bounded (a line over
 * REPLY_LINE or more than REPLY_LINES lines ends the attempt) and one at a
 * time: kotak never pipelines, so anything the server sends beyond the
 * reply it owes is dropped.  The body streams from the spool one output
 * buffer at a time, LF made CRLF, bare CR dropped, dot-stuffed.
 *
 * Why a table of its own (Kconfig RELAY_SLOTS) and not struct conn: the
 * connection table is the inbound session cap (max_sessions, per-IP
 * limits, listener pause); outbound work must never take a slot from a
 * client, nor the other way round.  A slot is about 17 KiB of bss.
 *
 * Results are durable the way local delivery's are: a delivered or bounced
 * recipient's status byte becomes 'D' (bounces only once their DSN is in
 * the queue, fsynced); deferred ones stay '-', and when every domain of
 * the message is done, the file's mtime is set to the next attempt
 * (retry_min..retry_max with the message's age, as Postfix backs off) or,
 * past queue_lifetime, the rest bounce.
 */
#include "kotak.h"
#if ENABLE_RELAY
#include "dns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RCPT_MAX	50	/* recipients per session (Postfix's destination limit) */
#define MX_MAX		8	/* MX hosts tried per domain */
#define ADDR_TRY	8	/* addresses tried per host and family */
#define REPLY_LINE	1024	/* longest reply line */
#define REPLY_LINES	100	/* most lines in one reply */
#define MSGS		(CONFIG_RELAY_SLOTS * 4)	/* messages in hand */
#define DOMS		64	/* domains per message and round */
/* One slow destination must never take every slot: it gets at most half
 * (Postfix's per-destination concurrency, in small). */
#define DEST_MAX	((CONFIG_RELAY_SLOTS + 1) / 2)
/* One attempt (a domain of a message, before MAIL) tries at most this many
 * addresses and sessions over all its MX hosts, as Postfix's
 * smtp_mx_address_limit and smtp_mx_session_limit, and spends at most
 * option relay_attempt_timeout on them. */
#define ADDR_LIMIT	5
#define SESS_LIMIT	2

/* every state before ST_MAIL is "no transaction yet": a failure there
 * moves on to the next address */
enum { ST_FREE, ST_MX, ST_ADDR, ST_CONN, ST_GREET, ST_EHLO, ST_HELO, ST_STARTTLS, ST_AUTH,
	ST_AUTH2, ST_AUTH3, ST_MAIL, ST_RCPT, ST_DATA, ST_BODY, ST_DOT, ST_QUIT };
enum { EX_STARTTLS = 1, EX_PLAIN = 2, EX_LOGIN = 4, EX_PIPE = 8 };	/* EHLO keywords */
#define PAUSE_MIN	900	/* a smarthost that refused our login: first pause */
#define PAUSE_MAX	(4 * 3600)
enum { RS_WAIT, RS_OK, RS_DEFER, RS_BOUNCE, RS_SENT };

struct rmsg {
	char	 qid[QID_LEN + 1];	/* "" = free */
	int	 active;	/* slots working on it */
	int	 done;		/* every domain of this round claimed */
	int	 more;		/* work left for an immediate next round */
	int	 blocked;	/* what is left waits for a busy destination (DEST_MAX) */
	int	 settled;	/* recipients sent or bounced in this round */
	off_t	 roff;		/* envelope line where the domain search goes on */
	off_t	 resume;	/* a domain's next RCPT_MAX recipients start here; 0 none */
	unsigned salt, dh[DOMS];	/* hashes of the domains claimed this round */
	int	 ndh;
};

struct rslot {
	int	 st, fd, qfd, implicit, tried, esmtp, size_ok, lines;
	int	 sessions;	/* connected, then failed before MAIL */
	time_t	 astart;	/* the attempt began (its time bound) */
	unsigned gen, pgen;	/* fd generation, and the one select() saw */
	int	 nrcpt, ri, nok, bol;
	struct rmsg *m;
	struct qenv e;
	time_t	 deadline;
	off_t	 sent;
	char	 domain[DNS_NAME_MAX];
	char	 mx[MX_MAX][DNS_NAME_MAX];
	int	 nmx, mxi, qtype, na, ai;
	int	 rsent, dsent;	/* PIPELINING: RCPTs and DATA already on their way */
	int	 port, sh, rt, ext, tls_ok;	/* sh: via the smarthost of route rt (cfg.route) */
	int	 notls;		/* the address (ai after its connect) to speak cleartext to */
#if ENABLE_TLS
	struct tls_client *tls;
#endif
	struct { unsigned char fam, a[16]; } addr[ADDR_TRY];
	char	 peer[DNS_NAME_MAX + IP_MAX + 4];	/* host[ip], for logs and DSNs */
	char	 reply[DIAG_MAX];	/* first line of the last reply */
	char	 why[DIAG_MAX];		/* the last temporary failure */
	struct {
		off_t	 off;		/* its envelope line */
		int	 st;		/* R_* */
		char	 diag[DIAG_MAX];
	} r[RCPT_MAX];
	char	 ib[REPLY_LINE + 2], ob[4096];
	struct buf in, out;
};

static struct rslot slots[CONFIG_RELAY_SLOTS];
static struct rmsg msgs[MSGS];
/* Messages handed over while all MSGS places were taken, in arrival order:
 * they start as soon as a place frees (a burst must not wait for queue
 * rescans).  Their files' mtime is already an hour ahead, as for the ones
 * in hand; a restart retries them all. */
#define WAITING	4096	/* 8 bytes each, touched only when used */
static unsigned long long waitq[WAITING];	/* queue ids as numbers */
static int whead, wcount;
/* per route (cfg.route): */
static char sh_pass[1 + MAX_ROUTES][256];	/* smarthost_password_file, read at start and reload */
static char sh_next[1 + MAX_ROUTES][256];	/* read, not yet in use (smtp_out_apply) */
static time_t sh_pause_until[1 + MAX_ROUTES];	/* the smarthost refused our login: not before this */
static int sh_pause[1 + MAX_ROUTES];
#define RT(s)	(&cfg.route[(s)->rt])

static void next_addr(struct rslot *);
static void next_host(struct rslot *);
static void finish(struct rslot *);
static void read_replies(struct rslot *);
static void attempt_fail(struct rslot *, const char *);
static void body_fill(struct rslot *);
static void mark_sent(struct rslot *);
static void pipe_more(struct rslot *);

static unsigned
dom_hash(const char *d, unsigned h)
{
	for (; *d; d++)
		h = (h ^ (unsigned char)(*d | 0x20)) * 16777619u;
	return h;
}

/* see kotak.h */
int
smtp_out_add(const char *qid)
{
	struct rmsg *f = NULL;
	unsigned long long q;
	int i;

	for (i = 0; i < MSGS; i++) {
		if (!strcmp(msgs[i].qid, qid))
			return 0;
		if (!msgs[i].qid[0] && f == NULL)
			f = &msgs[i];
	}
	q = strtoull(qid, NULL, 16);
	for (i = 0; i < wcount; i++)
		if (waitq[(whead + i) % WAITING] == q)
			return 0;
	if (f == NULL || wcount) {
		/* full: the queue gives the file a retry time 30 s ahead and
		 * it comes back by that (a rescan before would skip it) */
		if (wcount == WAITING)
			return -1;
		waitq[(whead + wcount++) % WAITING] = q;
		return 0;
	}
	memset(f, 0, sizeof(*f));
	strlcpy_k(f->qid, qid, sizeof(f->qid));
	random_bytes(&f->salt, sizeof(f->salt));
	return 0;
}

/* Free message places take the longest waiting messages. */
static void
take_waiting(void)
{
	int j;

	for (j = 0; j < MSGS && wcount; j++) {
		if (msgs[j].qid[0])
			continue;
		memset(&msgs[j], 0, sizeof(msgs[j]));
		snprintf(msgs[j].qid, sizeof(msgs[j].qid), "%016llx", waitq[whead]);
		random_bytes(&msgs[j].salt, sizeof(msgs[j].salt));
		whead = (whead + 1) % WAITING;
		wcount--;
	}
}

/* ---- recipients and results ---- */

static const char *
rcpt_addr(struct rslot *s, int i, char *l, size_t n)
{
	/* 'D': marked done by this slot at the 250 to the final dot */
	if (queue_line(s->qfd, s->r[i].off, l, n) <= 0 || l[0] != 'R' || (l[2] != '-' && l[2] != 'D') ||
	    strncmp(l + 3, " ! ", 3))
		return NULL;
	return l + 6;
}

/* Every recipient in state from gets st, and diag unless it is NULL. */
static void
set_all(struct rslot *s, int from, int st, const char *diag)
{
	int i;

	for (i = 0; i < s->nrcpt; i++)
		if (s->r[i].st == from) {
			s->r[i].st = st;
			if (diag)
				strlcpy_k(s->r[i].diag, diag, DIAG_MAX);
		}
}

/* The whole destination failed before a transaction: bounce or defer. */
static void
dest_fail(struct rslot *s, int st, const char *diag)
{
	set_all(s, RS_WAIT, st, diag);
	finish(s);
}

static void
slot_close(struct rslot *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
#if ENABLE_TLS
	tls_client_free(s->tls);
	s->tls = NULL;
#endif
	s->tls_ok = 0;
	s->gen++;
	s->in.len = s->out.len = 0;
}

/* ---- sending ---- */

/* The deadline secs from now; before the transaction, within the
 * attempt's bound (relay_attempt_timeout over all MX hosts). */
static void
wait_for(struct rslot *s, int secs)
{
	s->deadline = now + secs;
	if (s->st < ST_MAIL && s->deadline > s->astart + cfg.relay_attempt_timeout)
		s->deadline = s->astart + cfg.relay_attempt_timeout;
}

static void
enter(struct rslot *s, int st)
{
	char l[ADDR_MAX + USER_MAX + 16];
	const char *a;

	s->st = st;
	s->lines = 0;
	wait_for(s, st == ST_EHLO || st == ST_HELO ? cfg.relay_greeting_timeout : cfg.timeout);
	switch (st) {
	case ST_EHLO:
		s->ext = s->size_ok = 0;
		buf_printf(&s->out, "EHLO %s\r\n", cfg.hostname);
		break;
	case ST_STARTTLS:
		buf_add(&s->out, "STARTTLS\r\n", 10);
		break;
	case ST_AUTH:
		if (s->ext & EX_PLAIN) {	/* RFC 4616: authzid NUL authcid NUL passwd */
			unsigned char pl[sizeof(cfg.route[0].smarthost_user) + sizeof(sh_pass[0]) + 2];
			char b[sizeof(pl) * 4 / 3 + 8];
			size_t ul = strlen(RT(s)->smarthost_user), pw = strlen(sh_pass[s->rt]);
			pl[0] = '\0';
			memcpy(pl + 1, RT(s)->smarthost_user, ul + 1);
			memcpy(pl + ul + 2, sh_pass[s->rt], pw);
			b64_encode(pl, ul + 2 + pw, b, sizeof(b));
			buf_printf(&s->out, "AUTH PLAIN %s\r\n", b);
			memset(pl, 0, sizeof(pl));
			memset(b, 0, sizeof(b));
		} else {
			buf_add(&s->out, "AUTH LOGIN\r\n", 12);
		}
		break;
	case ST_AUTH2:
	case ST_AUTH3: {	/* AUTH LOGIN: user name, then password */
		const char *v = st == ST_AUTH2 ? RT(s)->smarthost_user : sh_pass[s->rt];
		char b[sizeof(sh_pass[0]) * 4 / 3 + 8];
		b64_encode((const unsigned char *)v, strlen(v), b, sizeof(b));
		buf_printf(&s->out, "%s\r\n", b);
		memset(b, 0, sizeof(b));
		break;
	}
	case ST_HELO:
		buf_printf(&s->out, "HELO %s\r\n", cfg.hostname);
		break;
	case ST_MAIL:
		buf_printf(&s->out, "MAIL FROM:<%s>", s->e.sender);
		if (s->size_ok)
			buf_printf(&s->out, " SIZE=%lld", (long long)s->e.body_len);
		buf_add(&s->out, "\r\n", 2);
		s->rsent = s->dsent = 0;
		pipe_more(s);
		break;
	case ST_RCPT:
		if (s->ri < s->rsent) {	/* pipelined: already sent */
			pipe_more(s);
			break;
		}
		while ((a = rcpt_addr(s, s->ri, l, sizeof(l))) == NULL) {
			/* the line changed under us: cannot happen, skip it */
			s->r[s->ri].st = RS_DEFER;
			if (++s->ri == s->nrcpt) {
				enter(s, s->nok || s->dsent ? ST_DATA : ST_QUIT);
				return;
			}
		}
		buf_printf(&s->out, "RCPT TO:<%s>\r\n", a);
		s->rsent = s->ri + 1;
		pipe_more(s);
		break;
	case ST_DATA:
		if (!s->dsent)
			buf_add(&s->out, "DATA\r\n", 6);
		s->dsent = 1;
		break;
	case ST_BODY:
		s->sent = 0;
		s->bol = 1;
		s->deadline = now + cfg.data_timeout;
		break;
	case ST_QUIT:
		buf_add(&s->out, "QUIT\r\n", 6);
		s->deadline = now + 10;
		break;
	}
}

/* PIPELINING (RFC 2920): the RCPTs not yet sent, as many as the output
 * buffer holds, and DATA after the last one; replies come in order. */
static void
pipe_more(struct rslot *s)
{
	char l[ADDR_MAX + USER_MAX + 16];
	const char *a;

	if (!(s->ext & EX_PIPE))
		return;
	while (s->rsent < s->nrcpt && buf_room(&s->out) > ADDR_MAX + 16) {
		if ((a = rcpt_addr(s, s->rsent, l, sizeof(l))) == NULL)
			return;	/* the unpipelined path deals with it */
		buf_printf(&s->out, "RCPT TO:<%s>\r\n", a);
		s->rsent++;
	}
	if (s->rsent == s->nrcpt && !s->dsent && buf_add(&s->out, "DATA\r\n", 6) == 0)
		s->dsent = 1;
}

/* Fill the output buffer from the spool: CRLF line ends, dot-stuffing. */
static void
body_fill(struct rslot *s)
{
	char in[1024];
	ssize_t r, i;
	size_t want;

	while (s->sent < s->e.body_len && buf_room(&s->out) >= 2 * sizeof(in) + 8) {
		want = sizeof(in);
		if ((off_t)want > s->e.body_len - s->sent)
			want = s->e.body_len - s->sent;
		if ((r = pread(s->qfd, in, want, s->e.body_off + s->sent)) <= 0) {
			strlcpy_k(s->why, "451 4.3.0 cannot read the queue file", DIAG_MAX);
			set_all(s, RS_OK, RS_DEFER, s->why);
			finish(s);
			return;
		}
		for (i = 0; i < r; i++) {
			char c = in[i];
			if (s->bol && c == '.')
				s->out.p[s->out.len++] = '.';
			s->bol = c == '\n';
			if (c == '\n')
				s->out.p[s->out.len++] = '\r';
			if (c != '\r')	/* a bare CR never goes out */
				s->out.p[s->out.len++] = c;
		}
		s->sent += r;
		s->deadline = now + cfg.data_timeout;
	}
	if (s->sent == s->e.body_len && buf_room(&s->out) >= 8) {
		if (!s->bol)
			buf_add(&s->out, "\r\n", 2);
		buf_add(&s->out, ".\r\n", 3);
		enter(s, ST_DOT);
		s->deadline = now + cfg.data_timeout;
	}
}

/* ---- the MX walk ---- */

static int
conn_start(struct rslot *s, int i)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
	char ip[IP_MAX];
	socklen_t sl;
	int one = 1, fam = s->addr[i].fam;

	memset(&ss, 0, sizeof(ss));
	if (fam == AF_INET) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons(s->port);
		memcpy(&v4->sin_addr, s->addr[i].a, 4);
		sl = sizeof(*v4);
	} else {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons(s->port);
		memcpy(&v6->sin6_addr, s->addr[i].a, 16);
		sl = sizeof(*v6);
	}
	inet_ntop(fam, s->addr[i].a, ip, sizeof(ip));
	snprintf(s->peer, sizeof(s->peer), "%s[%s]", s->mx[s->mxi], ip);
	s->tried++;
	slot_close(s);
	if ((s->fd = socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0 ||
	    s->fd >= FD_SETSIZE || (connect(s->fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS)) {
		snprintf(s->why, DIAG_MAX, "451 4.4.1 connect to %s: %s", s->peer,
		    s->fd >= FD_SETSIZE ? "out of descriptors" : strerror(errno));
		slot_close(s);
		return -1;
	}
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	s->st = ST_CONN;
	wait_for(s, cfg.relay_connect_timeout);
	return 0;
}

static void
on_addr(void *arg, const struct dns_result *res)
{
	struct rslot *s = arg;
	int i;

	s->na = s->ai = s->notls = 0;
	if (res->status == DNS_OK)
		for (i = 0; i < res->n && s->na < ADDR_TRY; i++)
			if (res->rr[i].family == AF_INET || (ENABLE_IPV6 && res->rr[i].family == AF_INET6)) {
				s->addr[s->na].fam = res->rr[i].family;
				memcpy(s->addr[s->na++].a, res->rr[i].addr, 16);
			}
	if (res->status == DNS_TEMPFAIL)
		snprintf(s->why, DIAG_MAX, "451 4.4.3 DNS lookup of %s failed", s->mx[s->mxi]);
	next_addr(s);
}

static void
ask(struct rslot *s, const char *name, int qtype, dns_cb *cb)
{
	s->st = qtype == DNS_T_MX ? ST_MX : ST_ADDR;
	s->qtype = qtype;
	s->deadline = 0;	/* the resolver times out itself */
	if (dns_query(name, qtype, cb, s) < 0)
		dest_fail(s, RS_DEFER, "451 4.3.0 resolver busy");
}

/* The next address of this host, then its AAAA, then the next host. */
static void
next_addr(struct rslot *s)
{
	slot_close(s);
	if (s->tried >= ADDR_LIMIT || s->sessions >= SESS_LIMIT || now - s->astart >= cfg.relay_attempt_timeout) {
		log_info("%s: %s: attempt ends after %d address(es), %d session(s), %llds", s->m->qid,
		    s->domain, s->tried, s->sessions, (long long)(now - s->astart));
		dest_fail(s, RS_DEFER, s->why[0] ? s->why : "451 4.4.1 no mail server reachable");
		return;
	}
	while (s->ai < s->na)
		if (conn_start(s, s->ai++) == 0)
			return;
	if (s->qtype == DNS_T_A && ENABLE_IPV6) {
		ask(s, s->mx[s->mxi], DNS_T_AAAA, on_addr);
		return;
	}
	s->mxi++;
	next_host(s);
}

static void
next_host(struct rslot *s)
{
	if (s->mxi < s->nmx) {
		ask(s, s->mx[s->mxi], DNS_T_A, on_addr);
		return;
	}
	/* neither MX nor address: no mail host (unless a lookup failed
	 * temporarily: that is a deferral, RFC 5321 5.1) */
	if (s->implicit && !s->tried && !s->why[0])
		dest_fail(s, RS_BOUNCE, "550 5.1.2 domain has no mail server (no MX, A or AAAA)");
	else
		dest_fail(s, RS_DEFER, s->why[0] ? s->why : "451 4.4.1 no mail server reachable");
}

static void
on_mx(void *arg, const struct dns_result *res)
{
	struct rslot *s = arg;
	int i;

	s->nmx = s->mxi = 0;
	switch (res->status) {
	case DNS_OK:
		for (i = 0; i < res->n && s->nmx < MX_MAX; i++)
			strlcpy_k(s->mx[s->nmx++], res->rr[i].name, DNS_NAME_MAX);
		break;
	case DNS_NODATA:	/* RFC 5321 5.1: the domain is its own MX */
		strlcpy_k(s->mx[s->nmx++], s->domain, DNS_NAME_MAX);
		s->implicit = 1;
		break;
	case DNS_NULLMX:
		dest_fail(s, RS_BOUNCE, "556 5.1.10 domain does not accept mail (null MX)");
		return;
	case DNS_NXDOMAIN:
	case DNS_PERMFAIL:
		dest_fail(s, RS_BOUNCE, "550 5.1.2 domain not found (NXDOMAIN)");
		return;
	default:
		dest_fail(s, RS_DEFER, "451 4.4.3 DNS lookup of the MX failed");
		return;
	}
	next_host(s);
}

/* ---- replies ---- */

/* A connection-level failure: before MAIL the next address is tried; in a
 * transaction the recipients not yet settled are deferred. */
static void
attempt_fail(struct rslot *s, const char *why)
{
	if (why)
		snprintf(s->why, DIAG_MAX, "451 4.4.2 %s: %s", s->peer, why);
	if (s->st < ST_MAIL) {
		next_addr(s);
		return;
	}
	set_all(s, RS_OK, RS_DEFER, s->why);
	set_all(s, RS_WAIT, RS_DEFER, s->why);
	finish(s);
}

/* ---- EHLO, STARTTLS, AUTH ---- */

/* word (any case) in a space-separated list */
static int
has_word(const char *l, const char *w)
{
	size_t n = strlen(w);

	while (*l) {
		while (*l == ' ')
			l++;
		if (!strncasecmp(l, w, n) && (l[n] == ' ' || !l[n]))
			return 1;
		while (*l && *l != ' ')
			l++;
	}
	return 0;
}

static void
ehlo_keyword(struct rslot *s, const char *kw)
{
	if (!strncasecmp(kw, "SIZE", 4) && (!kw[4] || kw[4] == ' '))
		s->size_ok = 1;
	else if (!strcasecmp(kw, "STARTTLS"))
		s->ext |= EX_STARTTLS;
	else if (!strcasecmp(kw, "PIPELINING"))
		s->ext |= EX_PIPE;
	else if (!strncasecmp(kw, "AUTH", 4) && (kw[4] == ' ' || kw[4] == '=')) {
		s->ext |= has_word(kw + 5, "PLAIN") ? EX_PLAIN : 0;
		s->ext |= has_word(kw + 5, "LOGIN") ? EX_LOGIN : 0;
	}
}

/* After EHLO (or HELO): STARTTLS when offered (an MX: opportunistic; the
 * smarthost: required), AUTH to the smarthost over TLS only, then MAIL. */
static void
after_ehlo(struct rslot *s)
{
#if ENABLE_TLS
	if (!s->tls && (s->ext & EX_STARTTLS) && s->notls != s->ai) {
		enter(s, ST_STARTTLS);
		return;
	}
	if (s->sh && !s->tls) {
		snprintf(s->why, DIAG_MAX, "451 4.7.0 smarthost %s offers no STARTTLS:"
		    " nothing is sent in cleartext", s->peer);
		attempt_fail(s, NULL);
		return;
	}
	if (s->sh && RT(s)->smarthost_user[0]) {
		if (!(s->ext & (EX_PLAIN | EX_LOGIN))) {
			snprintf(s->why, DIAG_MAX, "451 4.7.0 smarthost %s offers no AUTH PLAIN or LOGIN", s->peer);
			attempt_fail(s, NULL);
			return;
		}
		enter(s, ST_AUTH);
		return;
	}
#endif
	enter(s, ST_MAIL);
}

#if ENABLE_TLS
static int
is_ip(const char *h)
{
	unsigned char a[16];

	return inet_pton(AF_INET, h, a) == 1 || inet_pton(AF_INET6, h, a) == 1;
}

/* TLS starts on the connection (after 220 to STARTTLS, or at connect on
 * an implicit-TLS smarthost); EHLO again once it is up (RFC 3207). */
static void
tls_begin(struct rslot *s)
{
	const char *name = s->mx[s->mxi];

	if (name[0] == '[' || is_ip(name))
		name = NULL;	/* no SNI, no name check for an address */
	s->in.len = s->out.len = 0;
	if ((s->tls = tls_client_new(name, s->sh && RT(s)->smarthost_verify)) == NULL) {
		snprintf(s->why, DIAG_MAX, "451 4.3.0 no free TLS engine for %s", s->peer);
		attempt_fail(s, NULL);
		return;
	}
	if (s->st != ST_GREET)	/* else implicit TLS: the greeting comes through it */
		enter(s, ST_EHLO);	/* queued: goes out once the handshake is done */
}

/* The TLS connection ended: in the handshake (bad certificate, broken
 * TLS), or later. */
static void
tls_failed(struct rslot *s)
{
	int err = tls_client_error(s->tls);

	if (s->st == ST_QUIT) {
		finish(s);
		return;
	}
	if (s->tls_ok) {
		attempt_fail(s, "connection closed");
		return;
	}
	snprintf(s->why, DIAG_MAX, "451 4.7.5 TLS handshake with %s failed (BearSSL error %d%s)", s->peer, err,
	    err >= 32 && err < 64 ? ": certificate not trusted" : "");
	log_info("%s: %s", s->m->qid, s->why + 10);
	if (!s->sh && cfg.relay_tls_fallback && s->ai > 0) {	/* the same address in cleartext */
		log_info("%s: retrying %s without TLS (relay_tls_fallback)", s->m->qid, s->peer);
		s->notls = s->ai--;
		next_addr(s);
		return;
	}
	attempt_fail(s, NULL);
}

static void
login_rejected(struct rslot *s)
{
	int *p = &sh_pause[s->rt];

	*p = *p ? (*p * 2 > PAUSE_MAX ? PAUSE_MAX : *p * 2) : PAUSE_MIN;
	sh_pause_until[s->rt] = now + *p;
	log_warnx("smarthost login rejected by %s for user %s (%s): pausing the smarthost route for %d s"
	    " (fix smarthost_user or smarthost_password_file, then reload)", s->peer, RT(s)->smarthost_user,
	    s->reply, *p);
	snprintf(s->why, DIAG_MAX, "451 4.7.0 smarthost %s rejected the login: %s", s->peer, s->reply);
	set_all(s, RS_WAIT, RS_DEFER, s->why);
	enter(s, ST_QUIT);
}

/* Read by the relay's TLS pump: replies come through the engine. */
static void
tls_io(struct rslot *s)
{
	unsigned gen = s->gen;
	int r;

	for (;;) {
		r = tls_client_io(s->tls, s->fd, &s->in, &s->out);
		if (!s->tls_ok && tls_client_done(s->tls)) {
			s->tls_ok = 1;
			log_info("%s: TLS with %s%s", s->m->qid, s->peer,
			    s->sh && RT(s)->smarthost_verify ? " (certificate verified)" : "");
		}
		if (r < 0) {
			tls_failed(s);
			return;
		}
		if (r == 0)
			break;
		read_replies(s);
		if (s->gen != gen || s->st == ST_FREE || s->tls == NULL)
			return;
	}
	if (s->st == ST_BODY)
		body_fill(s);
}
#endif

static void
on_reply(struct rslot *s, int code)
{
	int k = code / 100;

	if (k == 4)
		snprintf(s->why, DIAG_MAX, "%s said: %s", s->peer, s->reply);
	switch (s->st) {
	case ST_GREET:
		if (k == 2)
			enter(s, ST_EHLO);
		else	/* a busy or unwilling host: the next MX */
			attempt_fail(s, k == 4 ? NULL : s->reply);
		break;
	case ST_EHLO:
		if (k == 2)
			after_ehlo(s);
		else if (k == 5 && code != 554)
			enter(s, ST_HELO);
		else
			attempt_fail(s, k == 4 ? NULL : s->reply);
		break;
	case ST_HELO:
		if (k == 2)
			after_ehlo(s);
		else
			attempt_fail(s, k == 4 ? NULL : s->reply);
		break;
#if ENABLE_TLS
	case ST_STARTTLS:
		if (code == 220) {
			tls_begin(s);
		} else if (s->sh) {
			snprintf(s->why, DIAG_MAX, "451 4.7.0 %s refused STARTTLS: %s", s->peer, s->reply);
			attempt_fail(s, NULL);
		} else {	/* opportunistic: on in cleartext */
			s->notls = s->ai;
			after_ehlo(s);
		}
		break;
	case ST_AUTH:
	case ST_AUTH2:
	case ST_AUTH3:
		if (code == 235) {
			sh_pause[s->rt] = 0;
			enter(s, ST_MAIL);
		} else if (code == 334 && s->st != ST_AUTH3 && !(s->st == ST_AUTH && (s->ext & EX_PLAIN))) {
			enter(s, s->st + 1);
		} else if (k == 5) {
			login_rejected(s);
		} else {
			attempt_fail(s, k == 4 ? NULL : s->reply);
		}
		break;
#endif
	case ST_MAIL:
		if (k == 2) {
			s->ri = s->nok = 0;
			enter(s, ST_RCPT);
			break;
		}
		set_all(s, RS_WAIT, k == 5 ? RS_BOUNCE : RS_DEFER, s->reply);
		enter(s, ST_QUIT);
		break;
	case ST_RCPT:	/* 552 here is "too many recipients" from old servers: later (RFC 5321 4.5.3.1.10) */
		s->r[s->ri].st = k == 2 ? RS_OK : k == 5 && code != 552 ? RS_BOUNCE : RS_DEFER;
		snprintf(s->r[s->ri].diag, DIAG_MAX, "%s", s->reply);
		s->nok += k == 2;
		if (++s->ri < s->nrcpt)
			enter(s, ST_RCPT);
		else	/* a pipelined DATA still owes its reply */
			enter(s, s->nok || s->dsent ? ST_DATA : ST_QUIT);
		break;
	case ST_DATA:
		if (code == 354 && !s->nok) {	/* pipelined DATA, no recipient took: empty message */
			buf_add(&s->out, ".\r\n", 3);
			enter(s, ST_DOT);
			break;
		}
		if (code == 354) {
			enter(s, ST_BODY);
			body_fill(s);
			break;
		}
		/* a refusal of the message as a whole */
		/* fall through */
	case ST_BODY:	/* a reply in mid-message: it refuses; close at once */
	case ST_DOT:
		set_all(s, RS_OK, k == 2 && s->st == ST_DOT ? RS_SENT : k == 5 ? RS_BOUNCE : RS_DEFER, s->reply);
		if (k == 2 && s->st == ST_DOT)	/* done now: a stop before QUIT's reply must not resend */
			mark_sent(s);
		if (s->st == ST_BODY)
			finish(s);
		else
			enter(s, ST_QUIT);
		break;
	case ST_QUIT:
		finish(s);
		break;
	}
}

/* The recipients the MX took are done: marked at its 250 to the final dot,
 * not after QUIT.  The file keeps its mtime (its next try: the queue must
 * leave it to us meanwhile). */
static void
mark_sent(struct rslot *s)
{
	struct timespec ts[2];
	struct stat st;
	int i, ok = fstat(s->qfd, &st) == 0;

	for (i = 0; i < s->nrcpt; i++)
		if (s->r[i].st == RS_SENT && pwrite(s->qfd, "D", 1, s->r[i].off + 2) != 1)
			log_warn("%s: marking a recipient done", s->m->qid);
	if (ok) {
		ts[0] = st.st_atim;
		ts[1] = st.st_mtim;
		futimens(s->qfd, ts);
	}
}

/* Handle a complete reply, if one is buffered. */
static void
read_replies(struct rslot *s)
{
	char *line, *e;
	long n;
	int code;
	unsigned gen;

	while ((n = buf_line(&s->in, &line)) > 0) {
		code = (int)strtol(line, &e, 10);
		if (e != line + 3 || code < 200 || code > 599 || (line[3] && line[3] != ' ' && line[3] != '-')) {
			attempt_fail(s, "malformed reply");
			return;
		}
		if (++s->lines > REPLY_LINES) {
			attempt_fail(s, "reply of too many lines");
			return;
		}
		if (s->lines == 1)
			snprintf(s->reply, DIAG_MAX, "%s", line);
		if (s->st == ST_EHLO && line[3] && s->lines > 1)
			ehlo_keyword(s, line + 4);
		if (line[3] == '-') {
			buf_drop(&s->in, n);
			continue;
		}
		if (!(s->ext & EX_PIPE)) {
			s->in.len = 0;	/* no pipelining: nothing else may be owed */
			on_reply(s, code);
			return;
		}
		buf_drop(&s->in, n);	/* pipelined: the next replies may be here already */
		gen = s->gen;
		on_reply(s, code);
		if (s->gen != gen || s->st == ST_FREE)
			return;
		continue;
	}
	if (buf_room(&s->in) == 0)
		attempt_fail(s, "reply line too long");
}

/* ---- finishing a domain and a message ---- */

static void
msg_finish(struct rmsg *m)
{
	char l[ADDR_MAX + USER_MAX + 16];
	struct qenv e;
	off_t off = 0;
	time_t age, d = 0;
	int n, fd, remote = 0, local = 0;

	if ((fd = queue_env_open(m->qid, &e)) >= 0) {
		while ((n = queue_line(fd, off, l, sizeof(l))) > 0 && l[0]) {
			off += n;
			if (l[0] == 'R' && l[2] == '-')
				*(strncmp(l, "R - ! ", 6) ? &local : &remote) += 1;
		}
		age = time(NULL) - e.arrival;
		if (remote)
			/* at once only if this round got somewhere: a round that
			 * only deferred would spin on the same recipients */
			d = m->more && m->settled ? 0 :
			    age < cfg.retry_min ? cfg.retry_min : age > cfg.retry_max ? cfg.retry_max : age;
		if (local) {	/* local delivery's own backoff, if sooner */
			time_t ld = age < 10 ? 10 : age > 300 ? 300 : age;
			if (!remote || ld < d)
				d = ld;
		}
		if (remote || local) {
			queue_retry(fd, d);
			log_info("%s: %d recipient(s) pending, next try in %llds", m->qid, remote + local, (long long)d);
		} else {
			char p[PATH_MAX_K + 40];
			snprintf(p, sizeof(p), "%s/spool/queue/%s", cfg.data_dir, m->qid);
			unlink(p);
			log_info("%s: removed", m->qid);
		}
		close(fd);
	}
	m->qid[0] = '\0';
}

static void
finish(struct rslot *s)
{
	static struct bounce_rcpt b[RCPT_MAX];
	char l[ADDR_MAX + USER_MAX + 16];
	const char *a, *what[] = { "deferred", "?", "deferred", "bounced", "sent" };
	int i, nb = 0, expired;

	slot_close(s);
	dns_cancel(s);
	expired = time(NULL) - s->e.arrival >= cfg.queue_lifetime;
	for (i = 0; i < s->nrcpt; i++) {
		if (s->r[i].st != RS_SENT && s->r[i].st != RS_BOUNCE) {
			s->r[i].st = RS_DEFER;
			if (!s->r[i].diag[0])
				strlcpy_k(s->r[i].diag, s->why[0] ? s->why : "451 4.4.1 not attempted", DIAG_MAX);
			if (expired) {
				char t[DIAG_MAX];
				snprintf(t, sizeof(t), "554 5.4.7 delivery time expired; last error: %s", s->r[i].diag);
				strlcpy_k(s->r[i].diag, t, DIAG_MAX);
				s->r[i].st = RS_BOUNCE;
			}
		}
		if ((a = rcpt_addr(s, i, l, sizeof(l))) == NULL)
			continue;
		log_info("%s: to=<%s> relay=%s status=%s (%s)", s->m->qid, a, s->peer[0] ? s->peer : "none",
		    what[s->r[i].st], s->r[i].diag);
		if (s->r[i].st == RS_BOUNCE) {
			strlcpy_k(b[nb].addr, a, ADDR_MAX);
			strlcpy_k(b[nb++].diag, s->r[i].diag, DIAG_MAX);
		}
	}
	/* bounced recipients are settled once their DSN is queued; until
	 * then they stay pending, with the reply that failed them */
	if (nb && bounce_make(s->m->qid, s->qfd, &s->e, s->peer[0] ? s->peer : NULL, b, nb, 0) < 0)
		set_all(s, RS_BOUNCE, RS_DEFER, NULL);
	/* still deferred after delay_warning: tell the sender, once per message
	 * (the flag is in the file: another domain's slot may have set it) */
	if (!expired && cfg.delay_warning && time(NULL) - s->e.arrival >= cfg.delay_warning &&
	    s->e.sender[0] && !queue_is_warned(s->qfd)) {
		for (i = nb = 0; i < s->nrcpt; i++)
			if (s->r[i].st == RS_DEFER && (a = rcpt_addr(s, i, l, sizeof(l))) != NULL) {
				strlcpy_k(b[nb].addr, a, ADDR_MAX);
				strlcpy_k(b[nb++].diag, s->r[i].diag, DIAG_MAX);
			}
		if (nb && bounce_make(s->m->qid, s->qfd, &s->e, s->peer[0] ? s->peer : NULL, b, nb, 1) == 0 &&
		    queue_warned(s->qfd) < 0)
			log_warn("%s: noting the delay warning", s->m->qid);
	}
	for (i = 0; i < s->nrcpt; i++)
		if (s->r[i].st == RS_SENT || s->r[i].st == RS_BOUNCE) {
			s->m->settled++;
			/* sent ones were marked at the 250 (mark_sent) */
			if (s->r[i].st == RS_BOUNCE && pwrite(s->qfd, "D", 1, s->r[i].off + 2) != 1)
				log_warn("%s: marking a recipient done", s->m->qid);
		}
	close(s->qfd);
	s->qfd = -1;
	s->st = ST_FREE;
	s->m->active--;
	for (i = 0; i < MSGS; i++)	/* a destination may have a free place now */
		msgs[i].blocked = 0;
}

/* Has destination d (a domain, or its route's smarthost) DEST_MAX slots? */
static int
dest_busy(const char *d)
{
	int i, n = 0, rt = cfg_route_for(d), sh = cfg.route[rt].smarthost[0] != 0;

	for (i = 0; i < CONFIG_RELAY_SLOTS; i++)
		if (slots[i].st != ST_FREE && slots[i].sh == sh &&
		    (sh ? slots[i].rt == rt : strcaseeq(slots[i].domain, d)))
			n++;
	return n >= DEST_MAX;
}

/* Take the next domain of m not yet claimed in this round into slot s.
 * 1: the slot works, 0: m has nothing more this round, or (m->blocked)
 * only domains whose destination is busy. */
static int
claim(struct rmsg *m, struct rslot *s)
{
	char l[ADDR_MAX + USER_MAX + 16], *d;
	struct qenv e;
	off_t off, lead, skip = 0;
	unsigned h;
	int n, i, fd;

	if ((fd = queue_env_open(m->qid, &e)) < 0) {
		m->done = 1;
		return 0;
	}
	if ((off = m->resume) != 0) {	/* the same domain, its next RCPT_MAX recipients */
		if (queue_line(fd, off, l, sizeof(l)) > 0 && (d = strrchr(l, '@')) != NULL) {
			if (dest_busy(++d)) {
				close(fd);
				m->blocked = 1;
				return 0;
			}
			m->resume = 0;
			goto take;
		}
		m->resume = 0;
	}
	for (off = m->roff; (n = queue_line(fd, off, l, sizeof(l))) > 0 && l[0]; off += n) {
		if (strncmp(l, "R - ! ", 6) || (d = strrchr(l, '@')) == NULL)
			continue;
		h = dom_hash(++d, m->salt);
		for (i = 0; i < m->ndh && m->dh[i] != h; i++)
			;
		if (i < m->ndh)
			continue;
		if (dest_busy(d)) {	/* later, when a slot frees: the search restarts here */
			skip = skip ? skip : off;
			continue;
		}
		if (m->ndh == DOMS) {
			m->more = 1;
			break;
		}
		m->dh[m->ndh++] = h;
		m->roff = skip ? skip : off + n;
take:
		memset(s, 0, offsetof(struct rslot, r));
		s->astart = now;
		s->qfd = fd;
		s->e = e;
		s->m = m;
		s->fd = -1;
		s->port = cfg.relay_port;
		strlcpy_k(s->domain, d, sizeof(s->domain));
		buf_init(&s->in, s->ib, sizeof(s->ib));
		buf_init(&s->out, s->ob, sizeof(s->ob));
		/* this domain's pending recipients, from this line on; past
		 * RCPT_MAX the next slot (or this one next) takes the rest */
		for (lead = off; (n = queue_line(fd, lead, l, sizeof(l))) > 0 && l[0]; lead += n) {
			if (strncmp(l, "R - ! ", 6) || (d = strrchr(l, '@')) == NULL || !strcaseeq(d + 1, s->domain))
				continue;
			if (s->nrcpt == RCPT_MAX) {
				m->resume = lead;
				break;
			}
			s->r[s->nrcpt].off = lead;
			s->r[s->nrcpt].st = RS_WAIT;
			s->r[s->nrcpt++].diag[0] = '\0';
		}
		m->active++;
		return 1;
	}
	close(fd);
	if (skip) {
		m->roff = skip;
		m->blocked = 1;
		return 0;
	}
	m->done = 1;
	return 0;
}

/* Address literal "[192.0.2.1]" or "[IPv6:...]" (RFC 5321 4.1.3): no DNS. */
static int
literal(struct rslot *s)
{
	char a[DNS_NAME_MAX], *e;
	const char *p = s->domain + 1;
	int v6 = !strncasecmp(p, "IPv6:", 5);

	strlcpy_k(a, p + 5 * v6, sizeof(a));
	if ((e = strchr(a, ']')) == NULL || e[1])
		return -1;
	*e = '\0';
	memset(s->addr[0].a, 0, 16);
	s->addr[0].fam = v6 ? AF_INET6 : AF_INET;
	if (inet_pton(s->addr[0].fam, a, s->addr[0].a) != 1 || (v6 && !ENABLE_IPV6))
		return -1;
	strlcpy_k(s->mx[0], s->domain, DNS_NAME_MAX);
	s->nmx = s->na = 1;
	s->qtype = DNS_T_AAAA;	/* no AAAA step after it */
	return 0;
}

/* The smarthost route: its address (a literal, or A then AAAA of its
 * name through our resolver), its port; nothing while it is paused. */
static void
smarthost(struct rslot *s)
{
	unsigned char a[16];
	char d[DIAG_MAX];

	s->sh = 1;
	s->port = RT(s)->sh_port;
	if (sh_pause_until[s->rt] > now) {
		snprintf(d, sizeof(d), "451 4.7.0 smarthost route paused for %llds: it rejected the login",
		    (long long)(sh_pause_until[s->rt] - now));
		dest_fail(s, RS_DEFER, d);
		return;
	}
	strlcpy_k(s->mx[0], RT(s)->sh_host, DNS_NAME_MAX);
	s->nmx = 1;
	memset(s->addr[0].a, 0, 16);
	if (inet_pton(AF_INET, RT(s)->sh_host, a) == 1 || (ENABLE_IPV6 && inet_pton(AF_INET6, RT(s)->sh_host, a) == 1)) {
		s->addr[0].fam = strchr(RT(s)->sh_host, ':') ? AF_INET6 : AF_INET;
		memcpy(s->addr[0].a, a, 16);
		s->na = 1;
		s->qtype = DNS_T_AAAA;	/* no AAAA step after it */
		next_addr(s);
		return;
	}
	next_host(s);
}

/* see kotak.h: the smarthost password (and CA bundle) at start and reload.
 * The file must be a regular file that only its owner (root or us) may
 * read or write, as ssh wants of a private key: mode 0600 or 0400. */
int
smtp_out_load(char *err, size_t errlen)
{
	struct stat st;
	struct passwd *pw;
	const struct cfg_route *r;
	char b[sizeof(sh_pass[0]) + 2];
	ssize_t n;
	int fd, i, verify = 0;

	memset(sh_next, 0, sizeof(sh_next));
	for (i = 0; i <= cfg.nroute; i++) {
		r = &cfg.route[i];
		verify |= r->smarthost[0] && r->smarthost_verify;
		if (!r->smarthost_password_file[0])
			continue;
		if ((fd = open(r->smarthost_password_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
			snprintf(err, errlen, "%s: %s", r->smarthost_password_file, strerror(errno));
			return -1;
		}
		pw = cfg.user[0] ? pw_lookup(cfg.user, 0) : NULL;
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) ||
		    (st.st_uid != 0 && st.st_uid != geteuid() && (pw == NULL || st.st_uid != pw->pw_uid))) {
			close(fd);
			snprintf(err, errlen, "%s: must be a file owned by root or kotak's user with mode 0600"
			    " or 0400 (it is %04o, uid %u): refused", r->smarthost_password_file,
			    (unsigned)st.st_mode & 07777, (unsigned)st.st_uid);
			return -1;
		}
		n = read(fd, b, sizeof(b) - 1);
		close(fd);
		if (n < 0)
			n = 0;
		b[n] = '\0';
		b[strcspn(b, "\r\n")] = '\0';
		if (!b[0] || strlen(b) >= sizeof(sh_pass[0])) {
			snprintf(err, errlen, "%s: the first line must hold the password (1 to %d bytes)",
			    r->smarthost_password_file, (int)sizeof(sh_pass[0]) - 1);
			memset(b, 0, sizeof(b));
			return -1;
		}
		strlcpy_k(sh_next[i], b, sizeof(sh_next[0]));
		memset(b, 0, sizeof(b));
	}
#if ENABLE_TLS && ENABLE_RELAY_VERIFY
	if (verify && tls_ca_load(cfg.ca_file, err, errlen) < 0)
		return -1;
#endif
	(void)verify;
	return 0;
}

/* see kotak.h */
void
smtp_out_apply(void)
{
	int i;

	/* a reload: smarthost sessions not yet past AUTH end here (deferred),
	 * since their route (looked up by index) may now name another host,
	 * user or password; and no password outlives its route's file */
	for (i = 0; i < CONFIG_RELAY_SLOTS; i++)
		if (slots[i].st != ST_FREE && slots[i].st < ST_MAIL && slots[i].sh)
			dest_fail(&slots[i], RS_DEFER, "451 4.3.0 configuration reloaded during the session");
	memcpy(sh_pass, sh_next, sizeof(sh_pass));
	memset(sh_next, 0, sizeof(sh_next));
	memset(sh_pause, 0, sizeof(sh_pause));
	memset(sh_pause_until, 0, sizeof(sh_pause_until));	/* a reload may have fixed the password */
#if ENABLE_TLS && ENABLE_RELAY_VERIFY
	tls_ca_commit();
#endif
}

/* ---- loop glue ---- */

/* see kotak.h: hand free slots the next domains; settle finished messages */
void
smtp_out_run(void)
{
	struct rslot *s;
	int i, j;

	for (j = 0; j < MSGS; j++) {
		struct rmsg *m = &msgs[j];
		for (i = 0; i < CONFIG_RELAY_SLOTS && m->qid[0] && !m->done && !m->blocked; i++) {
			s = &slots[i];
			if (s->st != ST_FREE || !claim(m, s))
				continue;
			s->rt = cfg_route_for(s->domain);
			if (cfg.route[s->rt].smarthost[0]) {
				smarthost(s);
			} else if (s->domain[0] != '[') {
				ask(s, s->domain, DNS_T_MX, on_mx);
			} else if (literal(s) == 0) {
				next_addr(s);
			} else {
				dest_fail(s, RS_BOUNCE, "501 5.1.3 bad address literal");
			}
		}
		/* done, or only waiting for a busy destination while other
		 * messages wait for a place: back to the queue, tried later */
		if (m->qid[0] && (m->done || (m->blocked && wcount)) && !m->active)
			msg_finish(m);
	}
	/* after msg_finish freed places: smtp_out_next() then sees the work,
	 * else it would wait for other I/O or the queue's next scan */
	take_waiting();
}

int
smtp_out_fds(fd_set *rd, fd_set *wr, int maxfd)
{
	int i;

	for (i = 0; i < CONFIG_RELAY_SLOTS; i++) {
		struct rslot *s = &slots[i];
		s->pgen = s->gen;
		if (s->st == ST_FREE || s->fd < 0)
			continue;
#if ENABLE_TLS
		if (s->tls) {
			int r, w;
			tls_client_want(s->tls, &s->out, &r, &w);
			if (r)
				FD_SET(s->fd, rd);
			if (w)
				FD_SET(s->fd, wr);
		} else
#endif
		{
			if (s->st == ST_CONN || s->out.len)
				FD_SET(s->fd, wr);
			if (s->st != ST_CONN)
				FD_SET(s->fd, rd);
		}
		if (s->fd > maxfd)
			maxfd = s->fd;
	}
	return maxfd;
}

void
smtp_out_io(fd_set *rd, fd_set *wr)
{
	int i, err;
	socklen_t el = sizeof(err);
	ssize_t n;

	for (i = 0; i < CONFIG_RELAY_SLOTS; i++) {
		struct rslot *s = &slots[i];
		if (s->st == ST_FREE || s->fd < 0 || s->pgen != s->gen)
			continue;
		if (s->st == ST_CONN) {
			if (!FD_ISSET(s->fd, wr))
				continue;
			if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err) {
				snprintf(s->why, DIAG_MAX, "451 4.4.1 connect to %s: %s", s->peer, strerror(err));
				next_addr(s);
				continue;
			}
			s->st = ST_GREET;
			s->sessions++;
			wait_for(s, cfg.relay_greeting_timeout);
#if ENABLE_TLS
			if (s->sh && RT(s)->sh_tls == SH_TLS_IMPLICIT)
				tls_begin(s);
#endif
			continue;
		}
#if ENABLE_TLS
		if (s->tls) {
			if (FD_ISSET(s->fd, rd) || FD_ISSET(s->fd, wr))
				tls_io(s);
			continue;
		}
#endif
		if (FD_ISSET(s->fd, wr) && s->out.len) {
			n = write(s->fd, s->out.p, s->out.len);
			if (n < 0 && errno != EAGAIN && errno != EINTR) {
				attempt_fail(s, strerror(errno));
				continue;
			}
			if (n > 0)
				buf_drop(&s->out, n);
			if (s->st == ST_BODY)
				body_fill(s);
		}
		if (s->st != ST_FREE && s->fd >= 0 && s->pgen == s->gen && FD_ISSET(s->fd, rd)) {
			n = read(s->fd, s->in.p + s->in.len, buf_room(&s->in));
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (n <= 0) {
				if (s->st == ST_QUIT)
					finish(s);
				else
					attempt_fail(s, n < 0 ? strerror(errno) : "connection closed");
				continue;
			}
			s->in.len += n;
			read_replies(s);
		}
	}
}

time_t
smtp_out_next(void)
{
	time_t t = 0;
	int i, j;

	for (i = 0; i < CONFIG_RELAY_SLOTS; i++) {
		if (slots[i].st != ST_FREE && slots[i].deadline && (!t || slots[i].deadline < t))
			t = slots[i].deadline;
		for (j = 0; j < MSGS && slots[i].st == ST_FREE; j++)
			if (msgs[j].qid[0] && !msgs[j].done && !msgs[j].blocked)
				return now;	/* work for a free slot */
	}
	return t;
}

void
smtp_out_timeout(void)
{
	int i;

	for (i = 0; i < CONFIG_RELAY_SLOTS; i++) {
		struct rslot *s = &slots[i];
		if (s->st == ST_FREE || !s->deadline || s->deadline > now)
			continue;
		s->deadline = 0;
		if (s->st == ST_QUIT)
			finish(s);
		else
			attempt_fail(s, s->st == ST_CONN ? "connection timed out" : "timeout");
	}
}

/* Shutdown: sessions end where they are; their recipients stay pending. */
void
smtp_out_stop(void)
{
	int i;

	for (i = 0; i < CONFIG_RELAY_SLOTS; i++)
		if (slots[i].st != ST_FREE) {
			dns_cancel(&slots[i]);
			slot_close(&slots[i]);
			close(slots[i].qfd);
			slots[i].st = ST_FREE;
		}
}
#endif

/* dns.c: the stub resolver; see dns.h.
 *
 * The reply parser follows OpenSMTPD unpack_dns.c and dnsmasq
 * extract_name(): a cursor whose error is sticky and checked once, names
 * decoded with each compression pointer pointing before the segment that
 * holds it (so positions strictly fall and no loop can exist) and at most
 * DNS_MAX_JUMPS pointers per name, RDLENGTH checked against the packet,
 * counts never trusted (every record costs bytes, so a walk ends at the
 * packet's end).
 *
 * A query is a slot: the name asked for (key, for joining) and the name
 * being asked now (a CNAME's target), one socket for the current attempt,
 * and a deadline.  Failures that must reach callers (no servers left, a
 * malformed name) park the slot in Q_FAIL with deadline `now`, so that
 * callbacks only ever run from dns_io()/dns_timeout(). */
#include "kotak.h"
#include "dns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DNS_MAX_JUMPS	16	/* compression pointers per name */
#define UDP_MAX		1232	/* we send no EDNS0, so servers stay within 512 */

struct dns_stats dns_stats;

static struct {
	struct sockaddr_storage sa;
	socklen_t len;
} srv[DNS_MAX_SRV];
static int nsrv;

enum { Q_FREE, Q_UDP, Q_CONN, Q_READ, Q_FAIL };

struct dns_q {
	unsigned char st;	/* Q_* */
	unsigned char try;	/* attempts made for the current name */
	unsigned char srv;	/* server of the current attempt */
	unsigned char bad;	/* servers that failed this name (bit mask) */
	signed char tcp;	/* TCP slot or -1 */
	int	 hops;		/* CNAME links followed */
	unsigned short id, qtype;
	int	 fd;		/* socket of the current attempt or -1 */
	int	 status;	/* Q_FAIL: what callers get */
	unsigned gen;		/* pass that created it: not handled in that pass */
	time_t	 deadline;
	unsigned char key[256];		/* name asked for, wire form */
	unsigned char name[256];	/* name asked now */
};
static struct dns_q qs[DNS_MAX_Q];
#define FIRING	(qs + DNS_MAX_Q)	/* marks waiters whose callback is due */
static unsigned gen;

static struct {
	struct dns_q *q;	/* NULL: free */
	dns_cb	*cb;
	void	*arg;
} waits[DNS_MAX_WAIT];

static struct {
	int	 used;
	size_t	 len;
	unsigned char buf[DNS_TCP_BUF];	/* 2-byte length, then the message */
} tcps[DNS_MAX_TCP];

/* ---- names */

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int
hostchar(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    c == '-' || c == '_';
}

static size_t
wire_len(const unsigned char *w)
{
	size_t n = 0;

	while (w[n])
		n += w[n] + 1;
	return n + 1;
}

static int
name_eq(const unsigned char *a, const unsigned char *b)
{
	size_t n = wire_len(a);

	return n == wire_len(b) && !memcmp(a, b, n);
}

/* see dns.h */
int
dns_name_wire(const char *s, unsigned char w[256])
{
	size_t n = 0, l, i;
	const char *e;

	w[0] = 0;
	if (!strcmp(s, "."))
		return -1;
	for (;;) {
		for (e = s; *e && *e != '.'; e++)
			if (!hostchar((unsigned char)*e))
				return w[0] = 0, -1;
		l = e - s;
		if (l == 0 || l > 63 || n + l + 2 > 255)
			return w[0] = 0, -1;
		w[n++] = l;
		for (i = 0; i < l; i++)
			w[n++] = lower((unsigned char)s[i]);
		if (*e == '\0' || e[1] == '\0')
			break;
		s = e + 1;
	}
	w[n++] = 0;
	return n;
}

/* Wire name to text (at most 253 characters); -1 if a label holds a byte
 * that no host name has (it shows as '?'). */
static int
wire_text(const unsigned char *w, char *t)
{
	size_t n = 0, i, l;
	int r = 0;

	while ((l = *w++) != 0) {
		if (n)
			t[n++] = '.';
		for (i = 0; i < l; i++, w++) {
			if (!hostchar(*w))
				r = -1;
			t[n++] = hostchar(*w) ? *w : '?';
		}
	}
	t[n] = '\0';
	return r;
}

/* ---- the reply cursor */

struct cur {
	const unsigned char *buf;
	size_t	 len, off;
	int	 err;		/* sticky: every read after an error gives 0 */
};

static unsigned
get8(struct cur *c)
{
	if (c->off >= c->len) {
		c->err = 1;
		return 0;
	}
	return c->buf[c->off++];
}

static unsigned
get16(struct cur *c)
{
	unsigned h = get8(c);

	return h << 8 | get8(c);
}

static void
skip(struct cur *c, size_t n)
{
	if (n > c->len - c->off) {
		c->err = 1;
		c->off = c->len;
	} else {
		c->off += n;
	}
}

/* The name at the cursor into out (wire form, lowercase); the cursor moves
 * past the name's bytes at this place. */
static void
get_name(struct cur *c, unsigned char *out)
{
	size_t p = c->off, seg = c->off, n = 0, t, i, l;
	int jumps = 0;

	out[0] = 0;
	if (c->err)
		return;
	for (;;) {
		if (p >= c->len)
			goto bad;
		l = c->buf[p];
		if ((l & 0xc0) == 0xc0) {
			if (p + 1 >= c->len || ++jumps > DNS_MAX_JUMPS)
				goto bad;
			t = (l & 0x3f) << 8 | c->buf[p + 1];
			if (t >= seg)	/* only backwards, before this segment */
				goto bad;
			if (jumps == 1)
				c->off = p + 2;
			p = seg = t;
			continue;
		}
		/* 0x40 and 0x80 types are > 63 too */
		if (l > 63 || n + l + 1 > 255 || l >= c->len - p)
			goto bad;
		out[n++] = l;
		for (i = 1; i <= l; i++)
			out[n++] = lower(c->buf[p + i]);
		p += l + 1;
		if (l == 0)
			break;
	}
	if (jumps == 0)
		c->off = p;
	return;
bad:
	out[0] = 0;
	c->err = 1;
}

/* One resource record's header; rd is set to its RDATA (a cursor that
 * ends where the RDATA ends).  The cursor moves past the record. */
static unsigned
get_rr(struct cur *c, unsigned char *owner, unsigned *class, struct cur *rd)
{
	unsigned type, rdlen;

	get_name(c, owner);
	type = get16(c);
	*class = get16(c);
	skip(c, 4);		/* TTL: no cache */
	rdlen = get16(c);
	rd->buf = c->buf;
	rd->off = c->off;
	rd->len = c->off + rdlen;
	rd->err = c->err;
	skip(c, rdlen);
	return type;
}

static void
add_mx(struct dns_result *res, unsigned pref, const unsigned char *w, int *nnull, int *nbad)
{
	char t[DNS_NAME_MAX];
	struct dns_rr *rr;
	int i, worst = 0;

	if (w[0] == 0) {
		(*nnull)++;
		return;
	}
	if (wire_text(w, t) < 0) {
		(*nbad)++;
		return;
	}
	if (res->n < DNS_MAX_RR) {
		rr = &res->rr[res->n++];
	} else {	/* full: keep the best preferences */
		for (i = 1; i < res->n; i++)
			if (res->rr[i].pref > res->rr[worst].pref)
				worst = i;
		if (pref >= res->rr[worst].pref)
			return;
		rr = &res->rr[worst];
	}
	memset(rr, 0, sizeof(*rr));
	rr->pref = pref;
	memcpy(rr->name, t, strlen(t) + 1);
}

/* Shuffle, then a stable sort by preference: equal ones stay shuffled. */
static void
mx_sort(struct dns_result *res)
{
	unsigned char r[DNS_MAX_RR];
	struct dns_rr t;
	int i, j;

	random_bytes(r, sizeof(r));
	for (i = res->n - 1; i > 0; i--) {
		j = r[i] % (i + 1);
		t = res->rr[i];
		res->rr[i] = res->rr[j];
		res->rr[j] = t;
	}
	for (i = 1; i < res->n; i++) {
		t = res->rr[i];
		for (j = i; j > 0 && res->rr[j - 1].pref > t.pref; j--)
			res->rr[j] = res->rr[j - 1];
		res->rr[j] = t;
	}
}

/* see dns.h */
int
dns_parse(const unsigned char *pkt, size_t len, unsigned id, unsigned char name[256], int qtype,
    int *hops, struct dns_result *res)
{
	struct cur c = { pkt, len, 0, 0 }, rd;
	unsigned char nm[256];
	unsigned rid, flags, qd, an, i, type, class, rc, pref;
	size_t ans;
	int found, chased = 0, nrr = 0, nnull = 0, nbad = 0;

	res->status = DNS_TEMPFAIL;
	res->n = 0;
	rid = get16(&c);
	flags = get16(&c);
	qd = get16(&c);
	an = get16(&c);
	skip(&c, 4);
	get_name(&c, nm);
	type = get16(&c);
	class = get16(&c);
	/* an answer (QR), a standard query, to our question (RFC 5452) */
	if (c.err || rid != id || (flags & 0xf800) != 0x8000 || qd != 1 || type != (unsigned)qtype ||
	    class != 1 || !name_eq(nm, name))
		return DNS_R_IGNORE;
	if (flags & 0x0200)
		return DNS_R_TC;
	rc = flags & 15;
	if (rc != 0 && rc != 3)		/* SERVFAIL, REFUSED, FORMERR, ... */
		return DNS_R_SERVER;
	ans = c.off;

	/* Follow CNAMEs from name; each link restarts the walk, so the order
	 * of the records does not matter and a loop runs into DNS_MAX_CNAME. */
	do {
		found = 0;
		c.off = ans;
		for (i = 0; i < an && !c.err && !found; i++) {
			type = get_rr(&c, nm, &class, &rd);
			if (c.err || type != DNS_T_CNAME || class != 1 || !name_eq(nm, name))
				continue;
			get_name(&rd, nm);
			if (rd.err || rd.off != rd.len)
				return DNS_R_SERVER;
			if (++*hops > DNS_MAX_CNAME) {
				log_warnx("dns: CNAME chain too long");
				return DNS_R_DONE;	/* TEMPFAIL */
			}
			memcpy(name, nm, sizeof(nm));
			chased = found = 1;
		}
		if (c.err)
			return DNS_R_SERVER;
	} while (found);

	c.off = ans;
	for (i = 0; i < an; i++) {
		type = get_rr(&c, nm, &class, &rd);
		if (c.err)
			return DNS_R_SERVER;
		if (type != (unsigned)qtype || class != 1 || !name_eq(nm, name))
			continue;
		nrr++;
		if (qtype == DNS_T_MX) {
			pref = get16(&rd);
			get_name(&rd, nm);
			if (rd.err || rd.off != rd.len)
				return DNS_R_SERVER;
			add_mx(res, pref, nm, &nnull, &nbad);
		} else {
			size_t alen = qtype == DNS_T_A ? 4 : 16;
			if (rd.len - rd.off != alen)
				return DNS_R_SERVER;
			if (res->n < DNS_MAX_RR) {
				struct dns_rr *rr = &res->rr[res->n++];
				memset(rr, 0, sizeof(*rr));
				rr->family = qtype == DNS_T_A ? AF_INET : AF_INET6;
				memcpy(rr->addr, pkt + rd.off, alen);
			}
		}
	}
	if (rc == 3) {
		res->n = 0;
		res->status = DNS_NXDOMAIN;
	} else if (nrr == 0) {
		if (chased)	/* the server did not follow: ask for the target */
			return DNS_R_CHASE;
		res->status = DNS_NODATA;
	} else if (res->n == 0) {	/* MX records, none usable */
		if (nbad)
			log_warnx("dns: MX with a malformed exchange name");
		res->status = nbad ? DNS_TEMPFAIL : DNS_NULLMX;
	} else {
		if (qtype == DNS_T_MX)
			mx_sort(res);
		res->status = DNS_OK;
	}
	return DNS_R_DONE;
}

/* ---- servers */

static int
srv_parse(const char *s, int i)
{
	struct sockaddr_in *v4 = (struct sockaddr_in *)&srv[i].sa;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&srv[i].sa;
	char a[IP_MAX + 20], *port = NULL, *e;
	unsigned long long pn = 53;

	if (strlcpy_k(a, s + (*s == '['), sizeof(a)) >= sizeof(a))
		return -1;
	if (*s == '[') {
		if ((e = strchr(a, ']')) == NULL || (e[1] && e[1] != ':'))
			return -1;
		*e = '\0';
		if (e[1])
			port = e + 2;
	} else if ((e = strchr(a, ':')) != NULL && strchr(e + 1, ':') == NULL) {
		*e = '\0';	/* one colon: ADDR:PORT; more: a bare IPv6 address */
		port = e + 1;
	}
	if (port && (parse_uint(port, 65535, &pn) < 0 || pn == 0))
		return -1;
	memset(&srv[i].sa, 0, sizeof(srv[i].sa));
	if (inet_pton(AF_INET, a, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons(pn);
		srv[i].len = sizeof(*v4);
		return 0;
	}
	if ((e = strchr(a, '%')) != NULL) {	/* fe80::1%eth0 */
		*e++ = '\0';
		if ((v6->sin6_scope_id = if_nametoindex(e)) == 0)
			return -1;
	}
	if (inet_pton(AF_INET6, a, &v6->sin6_addr) != 1)
		return -1;
	v6->sin6_family = AF_INET6;
	v6->sin6_port = htons(pn);
	srv[i].len = sizeof(*v6);
	return 0;
}

static const char *
srv_text(int i)
{
	static char t[IP_MAX + 8];
	const struct sockaddr_in *v4 = (const struct sockaddr_in *)&srv[i].sa;
	const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&srv[i].sa;
	char a[IP_MAX] = "?";
	unsigned port;

	if (v4->sin_family == AF_INET) {
		inet_ntop(AF_INET, &v4->sin_addr, a, sizeof(a));
		port = ntohs(v4->sin_port);
	} else {
		inet_ntop(AF_INET6, &v6->sin6_addr, a, sizeof(a));
		port = ntohs(v6->sin6_port);
	}
	snprintf(t, sizeof(t), "[%s]:%u", a, port);
	return t;
}

/* see dns.h */
int
dns_init(const char *opt)
{
	struct sockaddr_storage keep = srv[0].sa;
	socklen_t klen = srv[0].len;

	if (opt == NULL)
		return dns_init_file("/etc/resolv.conf");
	if (srv_parse(opt, 0) < 0) {
		srv[0].sa = keep;
		srv[0].len = klen;
		log_warnx("dns: bad server address '%s'", opt);
		return -1;
	}
	nsrv = 1;
	return 0;
}

/* see dns.h; a "nameserver" line takes the dns_server forms, port too. */
int
dns_init_file(const char *path)
{
	FILE *f = fopen(path, "re");
	char line[256], *p;
	int n = 0;

	while (f && n < DNS_MAX_SRV && fgets(line, sizeof(line), f)) {
		p = line + strspn(line, " \t");
		if (strncmp(p, "nameserver", 10) || (p[10] != ' ' && p[10] != '\t'))
			continue;
		p += 10 + strspn(p + 10, " \t");
		p[strcspn(p, " \t\r\n#;")] = '\0';
		if (srv_parse(p, n) == 0)
			n++;
	}
	if (f)
		fclose(f);
	if (n == 0) {
		log_info("dns: no nameserver in %s, using 127.0.0.1", path);
		srv_parse("127.0.0.1", n++);
	}
	nsrv = n;
	return 0;
}

/* ---- queries */

static void
q_close(struct dns_q *q)
{
	if (q->fd >= 0)
		close(q->fd);
	q->fd = -1;
	if (q->tcp >= 0)
		tcps[(int)q->tcp].used = 0;
	q->tcp = -1;
}

static void
q_fail(struct dns_q *q, int status)
{
	q_close(q);
	q->st = Q_FAIL;
	q->status = status;
	q->deadline = now;
}

/* Run the callbacks of q (which is freed first: they may ask again). */
static void
q_done(struct dns_q *q, const struct dns_result *res)
{
	int i;

	for (i = 0; i < DNS_MAX_WAIT; i++)
		if (waits[i].q == q)
			waits[i].q = FIRING;
	q_close(q);
	q->st = Q_FREE;
	for (i = 0; i < DNS_MAX_WAIT; i++)
		if (waits[i].q == FIRING) {	/* dns_cancel() may clear later ones */
			waits[i].q = NULL;
			waits[i].cb(waits[i].arg, res);
		}
}

static void
q_fail_done(struct dns_q *q)
{
	struct dns_result res;

	res.status = q->status;
	res.n = 0;
	q_done(q, &res);
}

static size_t
q_packet(const struct dns_q *q, unsigned char *p)
{
	size_t n = wire_len(q->name);

	memset(p, 0, 12);
	p[0] = q->id >> 8;
	p[1] = q->id;
	p[2] = 0x01;	/* RD */
	p[5] = 1;	/* QDCOUNT */
	memcpy(p + 12, q->name, n);
	p += 12 + n;
	p[0] = q->qtype >> 8;
	p[1] = q->qtype;
	p[2] = 0;
	p[3] = 1;	/* IN */
	return 12 + n + 4;
}

/* A connected non-blocking socket to the attempt's server. */
static int
q_socket(struct dns_q *q, int type)
{
	const struct sockaddr *sa = (const struct sockaddr *)&srv[q->srv].sa;
	int fd = socket(sa->sa_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (fd >= FD_SETSIZE) {
		close(fd);
		errno = EMFILE;
		return -1;
	}
	/* connected UDP: the kernel picks a random port and drops datagrams
	 * from elsewhere, and a refused port shows as ECONNREFUSED at once */
	if (connect(fd, sa, srv[q->srv].len) < 0 && errno != EINPROGRESS) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	q->fd = fd;
	return 0;
}

/* The next UDP attempt: the next server that has not failed this name,
 * a fresh socket and ID; Q_FAIL when none is left. */
static void
q_next(struct dns_q *q)
{
	unsigned char p[12 + 256 + 4];
	char t[DNS_NAME_MAX];

	q_close(q);
	while (nsrv && q->try < DNS_TRIES * nsrv) {
		q->srv = q->try++ % nsrv;
		if (q->bad & 1 << q->srv)
			continue;
		random_bytes(&q->id, sizeof(q->id));
		if (q_socket(q, SOCK_DGRAM) == 0 && send(q->fd, p, q_packet(q, p), 0) >= 0) {
			dns_stats.sent++;
			q->st = Q_UDP;
			q->deadline = now + DNS_RETRY;
			return;
		}
		log_warn("dns: query to %s", srv_text(q->srv));
		q_close(q);
		q->bad |= 1 << q->srv;
	}
	wire_text(q->name, t);
	log_info("dns: no answer for %s type %u", t, q->qtype);
	dns_stats.failed++;
	q_fail(q, DNS_TEMPFAIL);
}

static void
q_srvfail(struct dns_q *q, const char *why)
{
	char t[DNS_NAME_MAX];

	wire_text(q->name, t);
	log_info("dns: %s: %s for %s", srv_text(q->srv), why, t);
	q->bad |= 1 << q->srv;
	q_next(q);
}

/* Truncated over UDP: the same server over TCP. */
static void
q_tcp(struct dns_q *q)
{
	int i;

	q_close(q);
	for (i = 0; i < DNS_MAX_TCP && tcps[i].used; i++)
		;
	if (i == DNS_MAX_TCP || q_socket(q, SOCK_STREAM) < 0) {
		q_next(q);	/* busy: another server may answer shorter */
		return;
	}
	tcps[i].used = 1;
	tcps[i].len = 0;
	q->tcp = i;
	q->st = Q_CONN;
	q->deadline = now + DNS_TCP_WAIT;
	dns_stats.tcp++;
}

static void
tcp_send(struct dns_q *q)
{
	unsigned char *b = tcps[(int)q->tcp].buf;
	int e = 0;
	socklen_t el = sizeof(e);
	size_t n;

	if (getsockopt(q->fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0 || e) {
		q_srvfail(q, "TCP connect failed");
		return;
	}
	n = q_packet(q, b + 2);
	b[0] = n >> 8;
	b[1] = n;
	/* under 300 bytes into a fresh connection: all or nothing */
	if (send(q->fd, b, n + 2, MSG_NOSIGNAL) != (ssize_t)(n + 2)) {
		q_srvfail(q, "TCP send failed");
		return;
	}
	dns_stats.sent++;
	q->st = Q_READ;
}

/* 1: a whole message is in the slot; 0: more to come; -1: failed. */
static int
tcp_read(struct dns_q *q)
{
	size_t want;
	ssize_t r;
	int i = q->tcp;

	for (;;) {
		want = tcps[i].len < 2 ? 2 : 2 + (tcps[i].buf[0] << 8 | tcps[i].buf[1]);
		if (want > DNS_TCP_BUF)
			return -1;
		if (tcps[i].len >= 2 && tcps[i].len == want)
			return 1;
		r = recv(q->fd, tcps[i].buf + tcps[i].len, want - tcps[i].len, 0);
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return 0;
		if (r <= 0)
			return -1;
		tcps[i].len += r;
	}
}

/* A reply for q's current attempt; 1 when q is answered (res filled). */
static int
q_reply(struct dns_q *q, const unsigned char *p, size_t n, int tcp, struct dns_result *res)
{
	unsigned char nm[256];
	int hops = q->hops;

	memcpy(nm, q->name, sizeof(nm));
	switch (dns_parse(p, n, q->id, nm, q->qtype, &hops, res)) {
	case DNS_R_IGNORE:
		dns_stats.ignored++;
		if (tcp)	/* a stream carries nothing else */
			q_srvfail(q, "answer to another question");
		return 0;
	case DNS_R_TC:
		if (!tcp) {
			q_tcp(q);
			return 0;
		}
		/* FALLTHROUGH */
	case DNS_R_SERVER:
		q_srvfail(q, n >= 4 && (p[3] & 15) ? "error RCODE" : "malformed answer");
		return 0;
	case DNS_R_CHASE:	/* a new question: every server may try it */
		memcpy(q->name, nm, sizeof(nm));
		q->hops = hops;
		q->try = q->bad = 0;
		q_next(q);
		return 0;
	}
	q->hops = hops;
	return 1;
}

static void
udp_read(struct dns_q *q, struct dns_result *res)
{
	unsigned char p[UDP_MAX];
	struct sockaddr_storage from;
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)&srv[q->srv].sa;
	const struct sockaddr_in *f4 = (const struct sockaddr_in *)&from;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&srv[q->srv].sa;
	const struct sockaddr_in6 *f6 = (const struct sockaddr_in6 *)&from;
	socklen_t fl;
	ssize_t r;
	int k, fd = q->fd;

	for (k = 0; k < 8 && q->fd == fd && q->st == Q_UDP; k++) {
		fl = sizeof(from);
		r = recvfrom(fd, p, sizeof(p), MSG_TRUNC, (struct sockaddr *)&from, &fl);
		if (r < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				q_srvfail(q, strerror(errno));	/* ECONNREFUSED ... */
			return;
		}
		/* the kernel filters a connected socket; check all the same */
		if (r > (ssize_t)sizeof(p) || from.ss_family != s4->sin_family ||
		    (f4->sin_family == AF_INET ? f4->sin_port != s4->sin_port ||
		    f4->sin_addr.s_addr != s4->sin_addr.s_addr : f6->sin6_port != s6->sin6_port ||
		    memcmp(&f6->sin6_addr, &s6->sin6_addr, 16))) {
			dns_stats.ignored++;
			continue;
		}
		if (q_reply(q, p, r, 0, res)) {
			q_done(q, res);
			return;
		}
	}
}

/* see dns.h */
int
dns_query(const char *name, int qtype, dns_cb *cb, void *arg)
{
	unsigned char w[256];
	struct dns_q *q = NULL, *f = NULL;
	int i, wi, bad;

	if (qtype != DNS_T_A && qtype != DNS_T_AAAA && qtype != DNS_T_MX)
		return -1;
	for (wi = 0; wi < DNS_MAX_WAIT && waits[wi].q; wi++)
		;
	if (wi == DNS_MAX_WAIT)
		return -1;
	bad = dns_name_wire(name, w) < 0;	/* w is the root then */
	for (i = 0; i < DNS_MAX_Q && !q; i++) {
		if (qs[i].st == Q_FREE) {
			if (f == NULL)
				f = &qs[i];
		} else if (qs[i].qtype == qtype && name_eq(qs[i].key, w)) {
			q = &qs[i];
		}
	}
	if (q == NULL) {
		if ((q = f) == NULL)
			return -1;
		memset(q, 0, sizeof(*q));
		q->fd = -1;
		q->tcp = -1;
		q->qtype = qtype;
		q->gen = gen;
		memcpy(q->key, w, sizeof(w));
		memcpy(q->name, w, sizeof(w));
		if (bad) {
			log_warnx("dns: malformed name");
			q_fail(q, DNS_PERMFAIL);
		} else {
			q_next(q);
		}
	}
	waits[wi].q = q;
	waits[wi].cb = cb;
	waits[wi].arg = arg;
	return 0;
}

/* see dns.h */
void
dns_cancel(void *arg)
{
	struct dns_q *q;
	int i, j;

	for (i = 0; i < DNS_MAX_WAIT; i++) {
		if ((q = waits[i].q) == NULL || waits[i].arg != arg)
			continue;
		waits[i].q = NULL;
		if (q == FIRING)
			continue;
		for (j = 0; j < DNS_MAX_WAIT && waits[j].q != q; j++)
			;
		if (j == DNS_MAX_WAIT) {	/* nobody waits any more */
			q_close(q);
			q->st = Q_FREE;
		}
	}
}

/* see dns.h */
int
dns_fds(fd_set *rd, fd_set *wr, int maxfd)
{
	int i;

	for (i = 0; i < DNS_MAX_Q; i++) {
		if (qs[i].st == Q_FREE || qs[i].fd < 0)
			continue;
		FD_SET(qs[i].fd, qs[i].st == Q_CONN ? wr : rd);
		if (qs[i].fd > maxfd)
			maxfd = qs[i].fd;
	}
	return maxfd;
}

/* see dns.h.  Queries made by callbacks in this pass (gen) wait for the
 * next one: their new sockets may reuse numbers that are set in rd/wr. */
void
dns_io(fd_set *rd, fd_set *wr)
{
	struct dns_result res;
	struct dns_q *q;
	int i, r;

	gen++;
	for (i = 0; i < DNS_MAX_Q; i++) {
		q = &qs[i];
		if (q->st == Q_FREE || q->gen == gen || q->fd < 0)
			continue;
		if (q->st == Q_UDP && FD_ISSET(q->fd, rd)) {
			udp_read(q, &res);
		} else if (q->st == Q_CONN && FD_ISSET(q->fd, wr)) {
			tcp_send(q);
		} else if (q->st == Q_READ && FD_ISSET(q->fd, rd)) {
			if ((r = tcp_read(q)) < 0)
				q_srvfail(q, "TCP answer failed or too long");
			else if (r > 0 && q_reply(q, tcps[(int)q->tcp].buf + 2,
			    tcps[(int)q->tcp].len - 2, 1, &res))
				q_done(q, &res);
		}
		if (q->st == Q_FAIL)
			q_fail_done(q);
	}
}

/* see dns.h */
time_t
dns_next(void)
{
	time_t t = 0;
	int i;

	for (i = 0; i < DNS_MAX_Q; i++)
		if (qs[i].st != Q_FREE && qs[i].deadline && (!t || qs[i].deadline < t))
			t = qs[i].deadline;
	return t;
}

/* see dns.h */
void
dns_timeout(void)
{
	struct dns_q *q;
	int i;

	gen++;
	for (i = 0; i < DNS_MAX_Q; i++) {
		q = &qs[i];
		if (q->st == Q_FREE || q->gen == gen || !q->deadline || q->deadline > now)
			continue;
		if (q->st != Q_FAIL)
			q_next(q);	/* no answer in time: the next attempt */
		if (q->st == Q_FAIL)
			q_fail_done(q);
	}
}

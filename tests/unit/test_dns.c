/* The DNS resolver: the reply parser against hostile packets, then the
 * query machinery against fake servers on 127.0.0.1/127.0.0.2, driven
 * through dns_fds/dns_io/dns_timeout with select() as the loop does.  The
 * clock (`now`) is moved by hand, so retries and timeouts take no real time.
 * Every query goes to a loopback socket of this test, never elsewhere. */
#include "kotak.h"
#include "dns.h"
#include "t.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* ---- packet builder */

struct pk {
	unsigned char b[8192];
	size_t	 n;
};

static void
p8(struct pk *p, unsigned v)
{
	p->b[p->n++] = v;
}

static void
p16(struct pk *p, unsigned v)
{
	p8(p, v >> 8);
	p8(p, v & 255);
}

static void
pbytes(struct pk *p, const void *b, size_t n)
{
	memcpy(p->b + p->n, b, n);
	p->n += n;
}

/* "a.b" as labels and a root; "" is the root alone */
static void
pname(struct pk *p, const char *s)
{
	while (*s) {
		const char *e = strchr(s, '.');
		size_t l = e ? (size_t)(e - s) : strlen(s);
		p8(p, l);
		pbytes(p, s, l);
		s += l + (e != NULL);
	}
	p8(p, 0);
}

static void
pptr(struct pk *p, unsigned off)
{
	p16(p, 0xc000 | off);
}

static void
hdr(struct pk *p, unsigned id, unsigned flags, unsigned qd, unsigned an)
{
	p->n = 0;
	p16(p, id);
	p16(p, flags);
	p16(p, qd);
	p16(p, an);
	p16(p, 0);
	p16(p, 0);
}

static void
question(struct pk *p, const char *name, unsigned type)
{
	pname(p, name);
	p16(p, type);
	p16(p, 1);
}

/* Type, class IN, TTL; returns where RDLENGTH goes (rr_end fills it). */
static size_t
rr_head(struct pk *p, unsigned type)
{
	size_t at;

	p16(p, type);
	p16(p, 1);
	p16(p, 0);
	p16(p, 300);
	at = p->n;
	p16(p, 0);
	return at;
}

static void
rr_end(struct pk *p, size_t at)
{
	size_t l = p->n - at - 2;

	p->b[at] = l >> 8;
	p->b[at + 1] = l;
}

/* owner NULL: the question's name (pointer to 12) */
static void
rr_mx_o(struct pk *p, const char *owner, unsigned pref, const char *exch)
{
	size_t at;

	if (owner)
		pname(p, owner);
	else
		pptr(p, 12);
	at = rr_head(p, DNS_T_MX);
	p16(p, pref);
	pname(p, exch);
	rr_end(p, at);
}

static void
rr_mx(struct pk *p, unsigned pref, const char *exch)
{
	rr_mx_o(p, NULL, pref, exch);
}

static void
rr_a(struct pk *p, const char *owner, const char *ip)
{
	size_t at;
	unsigned char a[4];

	if (owner)
		pname(p, owner);
	else
		pptr(p, 12);
	at = rr_head(p, DNS_T_A);
	inet_pton(AF_INET, ip, a);
	pbytes(p, a, 4);
	rr_end(p, at);
}

static void
rr_cname(struct pk *p, const char *owner, const char *target)
{
	size_t at;

	if (owner)
		pname(p, owner);
	else
		pptr(p, 12);
	at = rr_head(p, DNS_T_CNAME);
	pname(p, target);
	rr_end(p, at);
}

static int
parse_n(const struct pk *p, size_t n, unsigned id, const char *q, int qtype, struct dns_result *res,
    unsigned char *name_out)
{
	unsigned char w[256];
	int hops = 0, r;

	CHECK(dns_name_wire(q, w) > 0);
	r = dns_parse(p->b, n, id, w, qtype, &hops, res);
	if (name_out)
		memcpy(name_out, w, sizeof(w));
	return r;
}

static int
parse(const struct pk *p, const char *q, int qtype, struct dns_result *res)
{
	return parse_n(p, p->n, 0x1234, q, qtype, res, NULL);
}

/* ---- parser tests */

static void
names(void)
{
	unsigned char w[256];
	char l63[64], big[300];
	int i;

	CHECK_INT(dns_name_wire("Example.COM", w), 13);
	CHECK(!memcmp(w, "\7example\3com", 13));
	CHECK_INT(dns_name_wire("example.com.", w), 13);
	CHECK_INT(dns_name_wire("localhost", w), 11);
	CHECK_INT(dns_name_wire("_x-y.a1", w), 9);
	CHECK(dns_name_wire("", w) < 0);
	CHECK(dns_name_wire(".", w) < 0);
	CHECK(dns_name_wire("a..b", w) < 0);
	CHECK(dns_name_wire(".a", w) < 0);
	CHECK(dns_name_wire("a b.c", w) < 0);
	CHECK(dns_name_wire("a\\.b", w) < 0);
	CHECK(dns_name_wire("[1.2.3.4]", w) < 0);
	memset(l63, 'a', 63);
	l63[63] = '\0';
	CHECK_INT(dns_name_wire(l63, w), 65);
	snprintf(big, sizeof(big), "%sa.b", l63);	/* label 64 */
	CHECK(dns_name_wire(big, w) < 0);
	/* 253 characters is the longest name: 4 labels of 63 + dots = 255 */
	snprintf(big, sizeof(big), "%s.%s.%s.%.61s", l63, l63, l63, l63);
	CHECK_INT(strlen(big), 253);
	CHECK_INT(dns_name_wire(big, w), 255);
	for (i = 0; i < 2; i++)
		strcat(big, "a");
	CHECK(dns_name_wire(big, w) < 0);
}

static void
parse_a(void)
{
	struct pk p;
	struct dns_result r;

	hdr(&p, 0x1234, 0x8180, 1, 3);
	question(&p, "example.test", DNS_T_A);
	rr_a(&p, NULL, "192.0.2.1");
	rr_a(&p, "other.test", "192.0.2.9");	/* not our name: skipped */
	rr_a(&p, NULL, "192.0.2.2");
	CHECK_INT(parse(&p, "EXAMPLE.test.", DNS_T_A, &r), DNS_R_DONE);
	CHECK_INT(r.status, DNS_OK);
	CHECK_INT(r.n, 2);
	CHECK_INT(r.rr[0].family, AF_INET);
	CHECK(!memcmp(r.rr[0].addr, "\300\0\2\1", 4));
	CHECK(!memcmp(r.rr[1].addr, "\300\0\2\2", 4));

	/* AAAA */
	{
		unsigned char a6[16];
		size_t at;
		inet_pton(AF_INET6, "2001:db8::25", a6);
		hdr(&p, 0x1234, 0x8180, 1, 1);
		question(&p, "example.test", DNS_T_AAAA);
		pptr(&p, 12);
		at = rr_head(&p, DNS_T_AAAA);
		pbytes(&p, a6, 16);
		rr_end(&p, at);
		CHECK_INT(parse(&p, "example.test", DNS_T_AAAA, &r), DNS_R_DONE);
		CHECK_INT(r.status, DNS_OK);
		CHECK_INT(r.n, 1);
		CHECK_INT(r.rr[0].family, AF_INET6);
		CHECK(!memcmp(r.rr[0].addr, a6, 16));
		/* an A-sized AAAA is garbage */
		hdr(&p, 0x1234, 0x8180, 1, 1);
		question(&p, "example.test", DNS_T_AAAA);
		pptr(&p, 12);
		at = rr_head(&p, DNS_T_AAAA);
		pbytes(&p, a6, 4);
		rr_end(&p, at);
		CHECK_INT(parse(&p, "example.test", DNS_T_AAAA, &r), DNS_R_SERVER);
	}
}

static void
mx_sort(void)
{
	struct pk p;
	struct dns_result r;
	int i, k, seen[3] = { 0, 0, 0 };

	hdr(&p, 0x1234, 0x8180, 1, 6);
	question(&p, "example.test", DNS_T_MX);
	rr_mx(&p, 20, "d.example.test");
	rr_mx(&p, 10, "a.example.test");
	rr_mx(&p, 10, "b.example.test");
	rr_mx(&p, 30, "e.example.test");
	rr_mx(&p, 10, "c.example.test");
	rr_mx(&p, 5, "MX0.Example.TEST");
	for (k = 0; k < 200; k++) {
		CHECK_INT(parse(&p, "example.test", DNS_T_MX, &r), DNS_R_DONE);
		CHECK_INT(r.status, DNS_OK);
		CHECK_INT(r.n, 6);
		CHECK_STR(r.rr[0].name, "mx0.example.test");
		CHECK_INT(r.rr[0].pref, 5);
		for (i = 1; i < 4; i++) {
			CHECK_INT(r.rr[i].pref, 10);
			CHECK(strlen(r.rr[i].name) == 14 && r.rr[i].name[0] >= 'a' && r.rr[i].name[0] <= 'c');
		}
		CHECK(strcmp(r.rr[1].name, r.rr[2].name) && strcmp(r.rr[2].name, r.rr[3].name) &&
		    strcmp(r.rr[1].name, r.rr[3].name));
		CHECK_STR(r.rr[4].name, "d.example.test");
		CHECK_STR(r.rr[5].name, "e.example.test");
		seen[r.rr[1].name[0] - 'a']++;
	}
	/* equal preferences come in random order */
	CHECK(seen[0] > 20 && seen[1] > 20 && seen[2] > 20);

	/* more MX than DNS_MAX_RR: the best ones stay */
	hdr(&p, 0x1234, 0x8180, 1, 40);
	question(&p, "example.test", DNS_T_MX);
	for (i = 40; i > 0; i--) {
		char n[32];
		snprintf(n, sizeof(n), "mx%d.example.test", i);
		rr_mx(&p, i, n);
	}
	CHECK_INT(parse(&p, "example.test", DNS_T_MX, &r), DNS_R_DONE);
	CHECK_INT(r.n, DNS_MAX_RR);
	for (i = 0; i < DNS_MAX_RR; i++)
		CHECK_INT(r.rr[i].pref, i + 1);
	CHECK_STR(r.rr[0].name, "mx1.example.test");
}

static void
null_mx(void)
{
	struct pk p;
	struct dns_result r;

	hdr(&p, 0x1234, 0x8180, 1, 1);
	question(&p, "example.test", DNS_T_MX);
	rr_mx(&p, 0, "");
	CHECK_INT(parse(&p, "example.test", DNS_T_MX, &r), DNS_R_DONE);
	CHECK_INT(r.status, DNS_NULLMX);
	CHECK_INT(r.n, 0);
	/* beside a real MX (which RFC 7505 forbids) the "." is unusable: skipped */
	hdr(&p, 0x1234, 0x8180, 1, 2);
	question(&p, "example.test", DNS_T_MX);
	rr_mx(&p, 0, "");
	rr_mx(&p, 10, "mx.example.test");
	CHECK_INT(parse(&p, "example.test", DNS_T_MX, &r), DNS_R_DONE);
	CHECK_INT(r.status, DNS_OK);
	CHECK_INT(r.n, 1);
	CHECK_STR(r.rr[0].name, "mx.example.test");
	/* an exchange no host can have: MX exists but unusable, no A fallback */
	hdr(&p, 0x1234, 0x8180, 1, 1);
	question(&p, "example.test", DNS_T_MX);
	rr_mx(&p, 10, "m x.example\001.test");
	CHECK_INT(parse(&p, "example.test", DNS_T_MX, &r), DNS_R_DONE);
	CHECK_INT(r.status, DNS_TEMPFAIL);
}

static void
cname(void)
{
	struct pk p;
	struct dns_result r;
	unsigned char w[256], want[256];
	char n[32], t[32];
	int i, hops;

	/* the server followed the chain: records out of order on purpose */
	hdr(&p, 0x1234, 0x8180, 1, 3);
	question(&p, "www.example.test", DNS_T_A);
	rr_a(&p, "real.example.test", "192.0.2.7");
	rr_cname(&p, "mid.example.test", "Real.Example.test");
	rr_cname(&p, NULL, "mid.example.test");
	CHECK_INT(parse_n(&p, p.n, 0x1234, "www.example.test", DNS_T_A, &r, w), DNS_R_DONE);
	CHECK_INT(r.status, DNS_OK);
	CHECK_INT(r.n, 1);
	CHECK(!memcmp(r.rr[0].addr, "\300\0\2\7", 4));

	/* it did not: ask for the target */
	hdr(&p, 0x1234, 0x8180, 1, 1);
	question(&p, "www.example.test", DNS_T_MX);
	rr_cname(&p, NULL, "target.example.test");
	CHECK_INT(parse_n(&p, p.n, 0x1234, "www.example.test", DNS_T_MX, &r, w), DNS_R_CHASE);
	dns_name_wire("target.example.test", want);
	CHECK(!memcmp(w, want, 21));

	/* a chain that ends in NXDOMAIN */
	p.b[3] = 0x83;
	CHECK_INT(parse(&p, "www.example.test", DNS_T_MX, &r), DNS_R_DONE);
	CHECK_INT(r.status, DNS_NXDOMAIN);

	/* a loop ends at DNS_MAX_CNAME links */
	hdr(&p, 0x1234, 0x8180, 1, 2);
	question(&p, "a.test", DNS_T_A);
	rr_cname(&p, "a.test", "b.test");
	rr_cname(&p, "b.test", "a.test");
	CHECK_INT(parse(&p, "a.test", DNS_T_A, &r), DNS_R_DONE);
	CHECK_INT(r.status, DNS_TEMPFAIL);

	/* 8 links are fine, 9 are too many; the count goes on across packets */
	for (i = 8; i <= 9; i++) {
		int j;
		hdr(&p, 0x1234, 0x8180, 1, i + 1);
		question(&p, "c0.test", DNS_T_A);
		for (j = 0; j < i; j++) {
			snprintf(n, sizeof(n), "c%d.test", j);
			snprintf(t, sizeof(t), "c%d.test", j + 1);
			rr_cname(&p, n, t);
		}
		rr_a(&p, t, "192.0.2.8");
		hops = 0;
		dns_name_wire("c0.test", w);
		CHECK_INT(dns_parse(p.b, p.n, 0x1234, w, DNS_T_A, &hops, &r), DNS_R_DONE);
		CHECK_INT(r.status, i == 8 ? DNS_OK : DNS_TEMPFAIL);
	}
	hops = 7;
	dns_name_wire("c0.test", w);
	CHECK_INT(dns_parse(p.b, p.n, 0x1234, w, DNS_T_A, &hops, &r), DNS_R_DONE);
	CHECK_INT(r.status, DNS_TEMPFAIL);
}

static void
rcodes(void)
{
	struct pk p;
	struct dns_result r;
	static const unsigned fail[] = { 0x8181, 0x8182, 0x8184, 0x8185, 0x8189 };
	size_t i;

	hdr(&p, 0x1234, 0x8180, 1, 0);
	question(&p, "example.test", DNS_T_MX);
	CHECK_INT(parse(&p, "example.test", DNS_T_MX, &r), DNS_R_DONE);
	CHECK_INT(r.status, DNS_NODATA);
	/* records of another name or type only: no data either */
	hdr(&p, 0x1234, 0x8180, 1, 2);
	question(&p, "example.test", DNS_T_MX);
	rr_a(&p, NULL, "192.0.2.1");
	rr_cname(&p, "elsewhere.test", "x.test");
	CHECK_INT(parse(&p, "example.test", DNS_T_MX, &r), DNS_R_DONE);
	CHECK_INT(r.status, DNS_NODATA);
	hdr(&p, 0x1234, 0x8183, 1, 0);
	question(&p, "example.test", DNS_T_MX);
	CHECK_INT(parse(&p, "example.test", DNS_T_MX, &r), DNS_R_DONE);
	CHECK_INT(r.status, DNS_NXDOMAIN);
	for (i = 0; i < sizeof(fail) / sizeof(fail[0]); i++) {
		hdr(&p, 0x1234, fail[i], 1, 0);
		question(&p, "example.test", DNS_T_MX);
		CHECK_INT(parse(&p, "example.test", DNS_T_MX, &r), DNS_R_SERVER);
	}
	hdr(&p, 0x1234, 0x8380, 1, 0);	/* TC */
	question(&p, "example.test", DNS_T_MX);
	CHECK_INT(parse(&p, "example.test", DNS_T_MX, &r), DNS_R_TC);
}

/* Answers to another question are not answers (RFC 5452). */
static void
mismatch(void)
{
	struct pk p;
	struct dns_result r;

	hdr(&p, 0x1234, 0x8180, 1, 1);
	question(&p, "EXAMPLE.Test", DNS_T_MX);	/* case does not matter */
	rr_mx(&p, 10, "mx.example.test");
	CHECK_INT(parse(&p, "example.test", DNS_T_MX, &r), DNS_R_DONE);
	CHECK_INT(parse_n(&p, p.n, 0x1235, "example.test", DNS_T_MX, &r, NULL), DNS_R_IGNORE);
	CHECK_INT(parse_n(&p, p.n, 0x3412, "example.test", DNS_T_MX, &r, NULL), DNS_R_IGNORE);
	CHECK_INT(parse(&p, "example.tesu", DNS_T_MX, &r), DNS_R_IGNORE);
	CHECK_INT(parse(&p, "example.test.x", DNS_T_MX, &r), DNS_R_IGNORE);
	CHECK_INT(parse(&p, "example.test", DNS_T_A, &r), DNS_R_IGNORE);
	p.b[29] = 3;	/* QCLASS CH */
	CHECK_INT(parse(&p, "example.test", DNS_T_MX, &r), DNS_R_IGNORE);
	p.b[29] = 1;
	p.b[2] = 0x01;	/* QR clear: a query, not an answer */
	CHECK_INT(parse(&p, "example.test", DNS_T_MX, &r), DNS_R_IGNORE);
	p.b[2] = 0x89;	/* opcode 1 */
	CHECK_INT(parse(&p, "example.test", DNS_T_MX, &r), DNS_R_IGNORE);
	p.b[2] = 0x81;
	p.b[5] = 2;	/* QDCOUNT 2 */
	CHECK_INT(parse(&p, "example.test", DNS_T_MX, &r), DNS_R_IGNORE);
	p.b[5] = 0;
	CHECK_INT(parse(&p, "example.test", DNS_T_MX, &r), DNS_R_IGNORE);
	p.b[5] = 1;
	CHECK_INT(parse(&p, "example.test", DNS_T_MX, &r), DNS_R_DONE);
	CHECK_INT(parse_n(&p, 11, 0x1234, "example.test", DNS_T_MX, &r, NULL), DNS_R_IGNORE);
	CHECK_INT(parse_n(&p, 0, 0, "example.test", DNS_T_MX, &r, NULL), DNS_R_IGNORE);
}

/* The question "x.test" A: answers start at 24. */
static void
xq(struct pk *p, unsigned an)
{
	hdr(p, 0x1234, 0x8180, 1, an);
	question(p, "x.test", DNS_T_A);
}

static int
xparse(struct pk *p, struct dns_result *r)
{
	return parse(p, "x.test", DNS_T_A, r);
}

static void
hostile(void)
{
	struct pk p;
	struct dns_result r;
	unsigned o[20];
	size_t at;
	int i, k;
	char l63[64];
	struct timeval t0, t1;

	memset(l63, 'a', 63);
	l63[63] = '\0';
	/* pointer to itself */
	xq(&p, 1);
	CHECK_INT(p.n, 24);
	pptr(&p, 24);
	at = rr_head(&p, DNS_T_A);
	rr_end(&p, at);
	CHECK_INT(xparse(&p, &r), DNS_R_SERVER);
	/* pointer forward */
	xq(&p, 1);
	pptr(&p, 26);
	p8(&p, 0);
	CHECK_INT(xparse(&p, &r), DNS_R_SERVER);
	/* two names pointing at each other: the first one's pointer goes forward */
	xq(&p, 2);
	p8(&p, 1);
	p8(&p, 'a');
	pptr(&p, 42);
	at = rr_head(&p, DNS_T_A);
	pbytes(&p, "\1\2\3\4", 4);
	rr_end(&p, at);
	CHECK_INT(p.n, 42);
	pptr(&p, 24);
	at = rr_head(&p, DNS_T_A);
	pbytes(&p, "\1\2\3\4", 4);
	rr_end(&p, at);
	CHECK_INT(xparse(&p, &r), DNS_R_SERVER);
	/* pointer into the header (flags 0x81: a reserved label type) */
	xq(&p, 1);
	pptr(&p, 2);
	at = rr_head(&p, DNS_T_A);
	pbytes(&p, "\1\2\3\4", 4);
	rr_end(&p, at);
	CHECK_INT(xparse(&p, &r), DNS_R_SERVER);
	/* label types 01 and 10 */
	xq(&p, 1);
	p8(&p, 0x41);
	p8(&p, 'a');
	p8(&p, 0);
	CHECK_INT(xparse(&p, &r), DNS_R_SERVER);
	/* label 64 in an answer, and in the question */
	xq(&p, 1);
	p8(&p, 64);
	pbytes(&p, l63, 63);
	pbytes(&p, "a", 2);
	at = rr_head(&p, DNS_T_A);
	pbytes(&p, "\1\2\3\4", 4);
	rr_end(&p, at);
	CHECK_INT(xparse(&p, &r), DNS_R_SERVER);
	hdr(&p, 0x1234, 0x8180, 1, 0);
	p8(&p, 64);
	pbytes(&p, l63, 63);
	pbytes(&p, "a", 2);
	p16(&p, 1);
	p16(&p, 1);
	CHECK_INT(xparse(&p, &r), DNS_R_IGNORE);

	/* names over 255 bytes, built from pointers: 3 x 64 + 1 is fine, 4 x 64 + 1 is not */
	for (k = 3; k <= 4; k++) {
		xq(&p, 2);
		pptr(&p, 12);
		at = rr_head(&p, 16);	/* TXT holding the pieces */
		for (i = 0; i < k; i++) {
			o[i] = p.n;
			p8(&p, 63);
			pbytes(&p, l63, 63);
			if (i == 0)
				p8(&p, 0);
			else
				pptr(&p, o[i - 1]);
		}
		rr_end(&p, at);
		pptr(&p, o[k - 1]);
		at = rr_head(&p, DNS_T_A);
		pbytes(&p, "\1\2\3\4", 4);
		rr_end(&p, at);
		CHECK_INT(xparse(&p, &r), k == 3 ? DNS_R_DONE : DNS_R_SERVER);
		if (k == 3)
			CHECK_INT(r.status, DNS_NODATA);
	}
	/* a chain of pointers: 16 jumps are allowed, 17 are not */
	for (k = 15; k <= 16; k++) {
		xq(&p, 2);
		pptr(&p, 12);
		at = rr_head(&p, 16);
		o[0] = p.n;
		pname(&p, "a");
		for (i = 1; i <= k; i++) {
			o[i] = p.n;
			pptr(&p, o[i - 1]);
		}
		rr_end(&p, at);
		pptr(&p, o[k]);		/* one jump more */
		at = rr_head(&p, DNS_T_A);
		pbytes(&p, "\1\2\3\4", 4);
		rr_end(&p, at);
		CHECK_INT(xparse(&p, &r), k == 15 ? DNS_R_DONE : DNS_R_SERVER);
	}
	/* RDLENGTH past the end */
	xq(&p, 1);
	pptr(&p, 12);
	at = rr_head(&p, DNS_T_A);
	pbytes(&p, "\1\2\3\4", 4);
	p.b[at + 1] = 100;
	CHECK_INT(xparse(&p, &r), DNS_R_SERVER);
	/* A with 5 bytes */
	xq(&p, 1);
	pptr(&p, 12);
	at = rr_head(&p, DNS_T_A);
	pbytes(&p, "\1\2\3\4\5", 5);
	rr_end(&p, at);
	CHECK_INT(xparse(&p, &r), DNS_R_SERVER);
	/* MX whose exchange runs past its RDLENGTH, or stops short of it */
	for (k = -1; k <= 1; k += 2) {
		hdr(&p, 0x1234, 0x8180, 1, 2);
		question(&p, "x.test", DNS_T_MX);
		pptr(&p, 12);
		at = rr_head(&p, DNS_T_MX);
		p16(&p, 10);
		pname(&p, "mx.x.test");
		if (k > 0)
			p8(&p, 0);
		rr_end(&p, at);
		if (k < 0)
			p.b[at + 1]--;
		rr_mx(&p, 20, "mx2.x.test");
		CHECK_INT(parse(&p, "x.test", DNS_T_MX, &r), DNS_R_SERVER);
	}
	/* CNAME with trailing bytes */
	xq(&p, 1);
	pptr(&p, 12);
	at = rr_head(&p, DNS_T_CNAME);
	pname(&p, "y.test");
	p8(&p, 7);
	rr_end(&p, at);
	CHECK_INT(xparse(&p, &r), DNS_R_SERVER);

	/* huge counts: the walk ends at the packet's end, at once */
	gettimeofday(&t0, NULL);
	for (k = 0; k < 1000; k++) {
		xq(&p, 65535);
		rr_a(&p, NULL, "192.0.2.1");
		CHECK_INT(xparse(&p, &r), DNS_R_SERVER);
	}
	p.b[6] = 0;
	p.b[7] = 1;
	p.b[8] = p.b[9] = p.b[10] = p.b[11] = 0xff;	/* NS, AR: never read */
	CHECK_INT(xparse(&p, &r), DNS_R_DONE);
	CHECK_INT(r.status, DNS_OK);
	/* the worst walk we allow: 9 passes over a packet full of CNAMEs,
	 * the one that matters last (a loop x.test -> x.test) */
	xq(&p, 0);
	for (k = 0; p.n < 4000; k++) {
		char n[16];
		snprintf(n, sizeof(n), "%c.test", 'b' + k % 20);
		rr_cname(&p, n, "x.test");
	}
	rr_cname(&p, NULL, "x.test");
	k++;
	p.b[6] = k >> 8;
	p.b[7] = k;
	for (i = 0; i < 100; i++) {
		CHECK_INT(xparse(&p, &r), DNS_R_DONE);
		CHECK_INT(r.status, DNS_TEMPFAIL);
	}
	gettimeofday(&t1, NULL);
	CHECK((t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_usec - t0.tv_usec) < 2000000);
}

/* More hostile packets: counts, loops through pointers, pointers out of
 * bounds or into a label's text, every cut of a record, over-long labels
 * and names made of plain labels. */
static void
hostile2(void)
{
	struct pk p, g;
	struct dns_result r;
	char l63[64];
	size_t at, n;
	unsigned o[4];
	int k, i, rc;

	memset(l63, 'a', 63);
	l63[63] = '\0';
	/* QDCOUNT must be 1: 0, 2 and 65535 are not answers to our question */
	for (k = 0; k < 3; k++) {
		static const unsigned qd[3] = { 0, 2, 65535 };
		hdr(&p, 0x1234, 0x8180, qd[k], 1);
		question(&p, "x.test", DNS_T_A);
		rr_a(&p, NULL, "192.0.2.1");
		CHECK_INT(xparse(&p, &r), DNS_R_IGNORE);
	}
	/* QDCOUNT and ANCOUNT 65535, nothing after the question */
	hdr(&p, 0x1234, 0x8180, 65535, 65535);
	question(&p, "x.test", DNS_T_A);
	CHECK_INT(xparse(&p, &r), DNS_R_IGNORE);
	/* ANCOUNT 65535 with no records, and on MX with one */
	xq(&p, 65535);
	CHECK_INT(xparse(&p, &r), DNS_R_SERVER);
	hdr(&p, 0x1234, 0x8180, 1, 65535);
	question(&p, "x.test", DNS_T_MX);
	rr_mx(&p, 10, "mx.x.test");
	CHECK_INT(parse(&p, "x.test", DNS_T_MX, &r), DNS_R_SERVER);
	/* only the header */
	hdr(&p, 0x1234, 0x8180, 1, 1);
	CHECK_INT(xparse(&p, &r), DNS_R_IGNORE);
	/* the question's name a pointer to itself, or past the end */
	hdr(&p, 0x1234, 0x8180, 1, 0);
	pptr(&p, 12);
	p16(&p, DNS_T_A);
	p16(&p, 1);
	CHECK_INT(xparse(&p, &r), DNS_R_IGNORE);
	hdr(&p, 0x1234, 0x8180, 1, 0);
	pptr(&p, 0x3fff);
	p16(&p, DNS_T_A);
	p16(&p, 1);
	CHECK_INT(xparse(&p, &r), DNS_R_IGNORE);
	/* a label, then a pointer back to the start of that name: a.a.a... */
	xq(&p, 1);
	p8(&p, 1);
	p8(&p, 'a');
	pptr(&p, 24);
	at = rr_head(&p, DNS_T_A);
	pbytes(&p, "\1\2\3\4", 4);
	rr_end(&p, at);
	CHECK_INT(xparse(&p, &r), DNS_R_SERVER);
	/* the same inside an MX exchange, and an exchange pointing at itself */
	for (k = 0; k < 2; k++) {
		hdr(&p, 0x1234, 0x8180, 1, 1);
		question(&p, "x.test", DNS_T_MX);
		pptr(&p, 12);
		at = rr_head(&p, DNS_T_MX);
		p16(&p, 10);
		n = p.n;
		if (k == 0) {
			p8(&p, 2);
			pbytes(&p, "mx", 2);
		}
		pptr(&p, n);
		rr_end(&p, at);
		CHECK_INT(parse(&p, "x.test", DNS_T_MX, &r), DNS_R_SERVER);
	}
	/* a CNAME whose target points at itself */
	xq(&p, 1);
	pptr(&p, 12);
	at = rr_head(&p, DNS_T_CNAME);
	pptr(&p, p.n);
	rr_end(&p, at);
	CHECK_INT(xparse(&p, &r), DNS_R_SERVER);
	/* pointers past the end of the packet, and into a label's text
	 * (13 is the 'x' of the question's "\1x\4test") */
	for (k = 0; k < 2; k++) {
		xq(&p, 1);
		pptr(&p, k == 0 ? 0x3fff : 13);
		at = rr_head(&p, DNS_T_A);
		pbytes(&p, "\1\2\3\4", 4);
		rr_end(&p, at);
		CHECK_INT(xparse(&p, &r), DNS_R_SERVER);
	}
	/* a truncated record: every cut inside it (owner, TYPE, CLASS, TTL,
	 * RDLENGTH, RDATA) is a server failure, never an answer or a read
	 * past the end */
	xq(&g, 1);
	rr_a(&g, "x.test", "192.0.2.1");
	CHECK_INT(xparse(&g, &r), DNS_R_DONE);
	CHECK_INT(r.status, DNS_OK);
	for (n = 24; n < g.n; n++) {
		unsigned char *cut = malloc(n);	/* exact size, for ASan */
		unsigned char w[256];
		int hops = 0;
		CHECK(cut != NULL);
		memcpy(cut, g.b, n);
		dns_name_wire("x.test", w);
		rc = dns_parse(cut, n, 0x1234, w, DNS_T_A, &hops, &r);
		if (rc != DNS_R_SERVER)
			printf("    cut at %zu: %d\n", n, rc);
		CHECK_INT(rc, DNS_R_SERVER);
		free(cut);
	}
	/* an MX whose RDLENGTH is 0, or 1 (half a preference) */
	for (k = 0; k < 2; k++) {
		hdr(&p, 0x1234, 0x8180, 1, 1);
		question(&p, "x.test", DNS_T_MX);
		pptr(&p, 12);
		at = rr_head(&p, DNS_T_MX);
		if (k)
			p8(&p, 0);
		rr_end(&p, at);
		CHECK_INT(parse(&p, "x.test", DNS_T_MX, &r), DNS_R_SERVER);
	}
	/* labels of 64 (0x40: a reserved type too) and 0xbf in an MX exchange */
	for (k = 0; k < 2; k++) {
		hdr(&p, 0x1234, 0x8180, 1, 1);
		question(&p, "x.test", DNS_T_MX);
		pptr(&p, 12);
		at = rr_head(&p, DNS_T_MX);
		p16(&p, 10);
		p8(&p, k ? 0xbf : 64);
		pbytes(&p, l63, 63);
		p8(&p, 'a');
		p8(&p, 0);
		rr_end(&p, at);
		CHECK_INT(parse(&p, "x.test", DNS_T_MX, &r), DNS_R_SERVER);
	}
	/* names of plain labels: 255 bytes in wire form (63+63+63+61 and the
	 * length bytes) is the most, 256 is too long, in an owner name of an
	 * unrelated record before the answer */
	for (k = 61; k <= 62; k++) {
		xq(&p, 2);
		for (i = 0; i < 3; i++) {
			p8(&p, 63);
			pbytes(&p, l63, 63);
		}
		p8(&p, k);
		pbytes(&p, l63, k);
		p8(&p, 0);
		at = rr_head(&p, 16);
		rr_end(&p, at);
		rr_a(&p, NULL, "192.0.2.1");
		CHECK_INT(xparse(&p, &r), k == 61 ? DNS_R_DONE : DNS_R_SERVER);
		if (k == 61)
			CHECK_INT(r.status, DNS_OK);
	}
	/* five labels of 63: 321 bytes */
	xq(&p, 1);
	for (i = 0; i < 5; i++) {
		p8(&p, 63);
		pbytes(&p, l63, 63);
	}
	p8(&p, 0);
	at = rr_head(&p, DNS_T_A);
	pbytes(&p, "\1\2\3\4", 4);
	rr_end(&p, at);
	CHECK_INT(xparse(&p, &r), DNS_R_SERVER);
	/* an MX exchange over 255 bytes: two labels of 63, then a pointer to
	 * three more kept in an earlier record */
	hdr(&p, 0x1234, 0x8180, 1, 2);
	question(&p, "x.test", DNS_T_MX);
	pptr(&p, 12);
	at = rr_head(&p, 16);
	for (i = 0; i < 3; i++) {
		o[i] = p.n;
		p8(&p, 63);
		pbytes(&p, l63, 63);
	}
	p8(&p, 0);
	rr_end(&p, at);
	pptr(&p, 12);
	at = rr_head(&p, DNS_T_MX);
	p16(&p, 10);
	for (i = 0; i < 2; i++) {
		p8(&p, 63);
		pbytes(&p, l63, 63);
	}
	pptr(&p, o[0]);
	rr_end(&p, at);
	CHECK_INT(parse(&p, "x.test", DNS_T_MX, &r), DNS_R_SERVER);
	/* ... while one label of 63 and the same pointer is 257 - 64 = 193: fine */
	hdr(&p, 0x1234, 0x8180, 1, 2);
	question(&p, "x.test", DNS_T_MX);
	pptr(&p, 12);
	at = rr_head(&p, 16);
	for (i = 0; i < 3; i++) {
		o[i] = p.n;
		p8(&p, 63);
		pbytes(&p, l63, 63);
	}
	p8(&p, 0);
	rr_end(&p, at);
	pptr(&p, 12);
	at = rr_head(&p, DNS_T_MX);
	p16(&p, 10);
	p8(&p, 2);
	pbytes(&p, "mx", 2);
	pptr(&p, o[1]);
	rr_end(&p, at);
	CHECK_INT(parse(&p, "x.test", DNS_T_MX, &r), DNS_R_DONE);
	CHECK_INT(r.status, DNS_OK);
	CHECK_INT(r.n, 1);
	CHECK_INT(strlen(r.rr[0].name), 2 + 1 + 63 + 1 + 63);
}

/* Every cut of a good answer is ignored or a server failure, never an
 * answer; random damage never breaks the parser (ASan build: no report). */
static void
prefixes(void)
{
	struct pk p, m;
	struct dns_result r;
	size_t n;
	int k, j, rc;
	unsigned char w[256];

	hdr(&p, 0x1234, 0x8180, 1, 3);
	question(&p, "example.test", DNS_T_MX);
	rr_cname(&p, NULL, "other.example.test");
	rr_mx_o(&p, "other.example.test", 10, "mx.other.example.test");
	rr_mx_o(&p, "Other.Example.Test", 20, "mx2.other.example.test");
	CHECK_INT(parse(&p, "example.test", DNS_T_MX, &r), DNS_R_DONE);
	CHECK_INT(r.status, DNS_OK);
	for (n = 0; n < p.n; n++) {
		rc = parse_n(&p, n, 0x1234, "example.test", DNS_T_MX, &r, NULL);
		CHECK(rc == DNS_R_IGNORE || rc == DNS_R_SERVER);
	}
	srand(1);
	for (k = 0; k < 20000; k++) {
		int hops = rand() % 9;
		m = p;
		for (j = rand() % 4; j >= 0; j--)
			m.b[rand() % m.n] = rand();
		dns_name_wire("example.test", w);
		rc = dns_parse(m.b, m.n, 0x1234, w, DNS_T_MX, &hops, &r);
		CHECK(rc >= DNS_R_IGNORE && rc <= DNS_R_DONE);
		if (rc == DNS_R_DONE && r.status == DNS_OK) {
			CHECK(r.n > 0 && r.n <= DNS_MAX_RR);
			for (j = 0; j < r.n; j++)
				CHECK(strlen(r.rr[j].name) <= 253);
		}
	}
}

/* ---- fake servers on loopback, and the loop */

enum { M_MX, M_DROP, M_FORGE_ID, M_FORGE_Q, M_FORGE_PORT, M_TC, M_TCBIG, M_SERVFAIL, M_NX,
	M_CNAME, M_ROTATE, M_SF0 };
static int mode;

struct fsrv {
	int	 fd, tfd, cfd;	/* UDP, TCP listener, TCP connection */
	int	 port;
	int	 nq, ntcp;
	unsigned sport[64], id[64];
	char	 qname[64][64];
};
static struct fsrv fs[2];
static int nfs;
static int nfired, in_query;

struct got {
	int	 fired;
	struct dns_result r;
};

static void
cb(void *arg, const struct dns_result *r)
{
	struct got *g = arg;

	CHECK(!in_query);	/* never from inside dns_query */
	g->fired++;
	g->r = *r;
	nfired++;
}

static int
ask(const char *name, int type, struct got *g)
{
	int r;

	memset(g, 0, sizeof(*g));
	in_query = 1;
	r = dns_query(name, type, cb, g);
	in_query = 0;
	return r;
}

static int
fake_open(struct fsrv *f, const char *ip)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int one = 1, k;

	for (k = 0; k < 20; k++) {
		memset(f, 0, sizeof(*f));
		f->cfd = -1;
		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		inet_pton(AF_INET, ip, &sa.sin_addr);
		f->fd = socket(AF_INET, SOCK_DGRAM, 0);
		f->tfd = socket(AF_INET, SOCK_STREAM, 0);
		setsockopt(f->tfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (f->fd >= 0 && bind(f->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
		    getsockname(f->fd, (struct sockaddr *)&sa, &sl) == 0 &&
		    bind(f->tfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(f->tfd, 4) == 0) {
			f->port = ntohs(sa.sin_port);
			return 0;
		}
		close(f->fd);
		close(f->tfd);
	}
	return -1;
}

static void
fake_close(struct fsrv *f)
{
	close(f->fd);
	close(f->tfd);
	if (f->cfd >= 0)
		close(f->cfd);
	f->fd = f->tfd = f->cfd = -1;
}

/* One fake server on 127.0.0.1, the resolver pointed at it. */
static void
setup(int m)
{
	char s[32];

	mode = m;
	nfs = 1;
	CHECK(fake_open(&fs[0], "127.0.0.1") == 0);
	snprintf(s, sizeof(s), "127.0.0.1:%d", fs[0].port);
	CHECK_INT(dns_init(s), 0);
}

static void
teardown(void)
{
	int i;

	for (i = 0; i < nfs; i++)
		fake_close(&fs[i]);
	nfs = 0;
	CHECK_INT(dns_next(), 0);	/* nothing left running */
}

/* Answer to query q: header from flags and an, the question copied. */
static void
reply(struct pk *p, const unsigned char *q, size_t n, unsigned flags, unsigned an)
{
	hdr(p, q[0] << 8 | q[1], flags, 1, an);
	pbytes(p, q + 12, n - 12);
}

static void
sendp(struct fsrv *f, const struct pk *p, const struct sockaddr_in *to)
{
	CHECK(sendto(f->fd, p->b, p->n, 0, (const struct sockaddr *)to, sizeof(*to)) == (ssize_t)p->n);
}

static void
serve(struct fsrv *f, const unsigned char *q, size_t n, const struct sockaddr_in *from)
{
	struct pk p;
	const char *qn = f->qname[f->nq - 1];
	int qtype = q[n - 3];

	switch (mode) {
	case M_DROP:
		return;
	case M_ROTATE:
	case M_SF0:
		if (f == &fs[0]) {
			if (mode == M_SF0) {
				reply(&p, q, n, 0x8182, 0);
				sendp(f, &p, from);
			}
			return;
		}
		break;
	case M_FORGE_ID:
		reply(&p, q, n, 0x8180, 1);
		p.b[0] ^= 0x55;
		rr_mx(&p, 1, "evil.test");
		sendp(f, &p, from);
		break;
	case M_FORGE_Q:
		reply(&p, q, n, 0x8180, 1);
		p.b[13]++;	/* first letter of the name */
		rr_mx(&p, 1, "evil.test");
		sendp(f, &p, from);
		reply(&p, q, n, 0x8180, 1);
		p.b[p.n - 3] = DNS_T_A;	/* QTYPE */
		rr_a(&p, NULL, "192.0.2.66");
		sendp(f, &p, from);
		break;
	case M_FORGE_PORT: {
		int e = socket(AF_INET, SOCK_DGRAM, 0);
		struct sockaddr_in sa;
		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
		CHECK(bind(e, (struct sockaddr *)&sa, sizeof(sa)) == 0);
		reply(&p, q, n, 0x8180, 1);
		rr_mx(&p, 1, "evil.test");
		CHECK(sendto(e, p.b, p.n, 0, (const struct sockaddr *)from, sizeof(*from)) == (ssize_t)p.n);
		close(e);
		break;
	}
	case M_TC:
	case M_TCBIG:
		reply(&p, q, n, 0x8380, 0);
		sendp(f, &p, from);
		return;
	case M_SERVFAIL:
	case M_NX:
		reply(&p, q, n, mode == M_NX ? 0x8183 : 0x8182, 0);
		sendp(f, &p, from);
		return;
	case M_CNAME:
		if (!strcmp(qn, "www.example.test")) {
			reply(&p, q, n, 0x8180, 1);
			rr_cname(&p, NULL, "host.example.test");
			sendp(f, &p, from);
			return;
		}
		break;
	}
	if (qtype != DNS_T_MX) {
		reply(&p, q, n, 0x8180, 0);
	} else {
		reply(&p, q, n, 0x8180, 2);
		rr_mx(&p, 20, "b.mx.test");
		rr_mx(&p, 10, "good.test");
	}
	sendp(f, &p, from);
}

static void
fake_udp(struct fsrv *f)
{
	unsigned char q[1500];
	struct sockaddr_in from;
	socklen_t fl = sizeof(from);
	ssize_t n = recvfrom(f->fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fl);
	size_t i, o = 0;
	char *t;

	if (n < 17 || f->nq >= 64)
		return;
	f->sport[f->nq] = ntohs(from.sin_port);
	f->id[f->nq] = q[0] << 8 | q[1];
	t = f->qname[f->nq];
	for (i = 12; q[i] && i + q[i] < (size_t)n && o + q[i] + 2 < 64; i += q[i] + 1) {
		if (o)
			t[o++] = '.';
		memcpy(t + o, q + i + 1, q[i]);
		o += q[i];
	}
	t[o] = '\0';
	f->nq++;
	serve(f, q, n, &from);
}

/* The TCP side: read one length-prefixed query, answer, close. */
static void
fake_tcp(struct fsrv *f)
{
	unsigned char q[600];
	struct pk p;
	int i;
	ssize_t n = recv(f->cfd, q, sizeof(q), 0);

	f->ntcp++;
	if (n > 14 && (size_t)n == 2u + (q[0] << 8 | q[1])) {
		if (mode == M_TCBIG) {
			p.n = 0;
			p16(&p, 5000);
			pbytes(&p, q + 2, n - 2);
		} else {
			p.n = 2;
			reply(&p, q + 2, n - 2, 0x8180, 40);	/* hdr() reset n: redo */
			memmove(p.b + 2, p.b, p.n);
			p.n += 2;
			for (i = 40; i > 0; i--) {
				char nm[32];
				snprintf(nm, sizeof(nm), "mx%d.bigdomain.test", i);
				memmove(p.b, p.b + 2, p.n - 2);	/* rr_mx points at 12: build unshifted */
				p.n -= 2;
				rr_mx(&p, i, nm);
				memmove(p.b + 2, p.b, p.n);
				p.n += 2;
			}
			p.b[0] = (p.n - 2) >> 8;
			p.b[1] = (p.n - 2);
			CHECK(p.n > 514);	/* too big for UDP without EDNS0 */
		}
		CHECK(send(f->cfd, p.b, p.n, MSG_NOSIGNAL) == (ssize_t)p.n);
	}
	close(f->cfd);
	f->cfd = -1;
}

/* Run the loop until nfired reaches want or max passes; an idle pass
 * (20 ms without events) moves the clock by one second.  The fake seconds. */
static int
pump(int want, int max)
{
	time_t t0 = now;
	int k, i, maxfd, r;

	for (k = 0; k < max && nfired < want; k++) {
		fd_set rd, wr;
		struct timeval tv = { 0, 20000 };

		FD_ZERO(&rd);
		FD_ZERO(&wr);
		maxfd = dns_fds(&rd, &wr, -1);
		for (i = 0; i < nfs; i++) {
			FD_SET(fs[i].fd, &rd);
			FD_SET(fs[i].tfd, &rd);
			maxfd = fs[i].fd > maxfd ? fs[i].fd : maxfd;
			maxfd = fs[i].tfd > maxfd ? fs[i].tfd : maxfd;
			if (fs[i].cfd >= 0) {
				FD_SET(fs[i].cfd, &rd);
				maxfd = fs[i].cfd > maxfd ? fs[i].cfd : maxfd;
			}
		}
		r = select(maxfd + 1, &rd, &wr, NULL, &tv);
		CHECK(r >= 0);
		if (r == 0)
			now++;
		for (i = 0; i < nfs && r > 0; i++) {
			if (FD_ISSET(fs[i].fd, &rd))
				fake_udp(&fs[i]);
			if (fs[i].cfd >= 0 && FD_ISSET(fs[i].cfd, &rd))
				fake_tcp(&fs[i]);
			if (FD_ISSET(fs[i].tfd, &rd) && fs[i].cfd < 0)
				fs[i].cfd = accept(fs[i].tfd, NULL, NULL);
		}
		if (r > 0)
			dns_io(&rd, &wr);
		dns_timeout();
	}
	return (int)(now - t0);
}

static void
net_mx(void)
{
	struct got g;

	setup(M_MX);
	nfired = 0;
	CHECK_INT(ask("Example.Test.", DNS_T_MX, &g), 0);
	CHECK_INT(g.fired, 0);
	CHECK(dns_next() > now);
	pump(1, 200);
	CHECK_INT(g.fired, 1);
	CHECK_INT(g.r.status, DNS_OK);
	CHECK_INT(g.r.n, 2);
	CHECK_STR(g.r.rr[0].name, "good.test");
	CHECK_INT(g.r.rr[0].pref, 10);
	CHECK_STR(g.r.rr[1].name, "b.mx.test");
	CHECK_INT(fs[0].nq, 1);
	CHECK_STR(fs[0].qname[0], "example.test");
	CHECK(fs[0].sport[0] != 0 && fs[0].sport[0] != (unsigned)fs[0].port);
	teardown();
}

static void
net_join(void)
{
	struct got g1, g2, g3;

	setup(M_MX);
	nfired = 0;
	CHECK_INT(ask("example.test", DNS_T_MX, &g1), 0);
	CHECK_INT(ask("EXAMPLE.TEST", DNS_T_MX, &g2), 0);
	CHECK_INT(ask("example.test", DNS_T_AAAA, &g3), 0);
	pump(3, 200);
	CHECK_INT(fs[0].nq, 2);		/* one query per name and type */
	CHECK_INT(g1.fired, 1);
	CHECK_INT(g2.fired, 1);
	CHECK_INT(g3.fired, 1);
	CHECK_INT(g1.r.status, DNS_OK);
	CHECK_INT(g2.r.status, DNS_OK);
	CHECK_STR(g2.r.rr[0].name, "good.test");
	CHECK_INT(g3.r.status, DNS_NODATA);
	teardown();
}

static void
forged(int m, unsigned long more_ignored)
{
	struct got g;
	unsigned long ign = dns_stats.ignored;

	setup(m);
	nfired = 0;
	CHECK_INT(ask("example.test", DNS_T_MX, &g), 0);
	pump(1, 200);
	CHECK_INT(g.fired, 1);
	CHECK_INT(g.r.status, DNS_OK);
	CHECK_STR(g.r.rr[0].name, "good.test");
	CHECK_INT(dns_stats.ignored - ign, more_ignored);
	CHECK_INT(fs[0].nq, 1);
	teardown();
}

static void
net_forged_id(void)
{
	forged(M_FORGE_ID, 1);
}

static void
net_forged_question(void)
{
	forged(M_FORGE_Q, 2);
}

static void
net_forged_port(void)
{
	forged(M_FORGE_PORT, 0);	/* the connected socket never sees it */
}

static void
net_tc_tcp(void)
{
	struct got g;
	unsigned long tcp = dns_stats.tcp;

	setup(M_TC);
	nfired = 0;
	CHECK_INT(ask("bigdomain.test", DNS_T_MX, &g), 0);
	pump(1, 200);
	CHECK_INT(g.fired, 1);
	CHECK_INT(g.r.status, DNS_OK);
	CHECK_INT(g.r.n, DNS_MAX_RR);
	CHECK_INT(g.r.rr[0].pref, 1);
	CHECK_STR(g.r.rr[0].name, "mx1.bigdomain.test");
	CHECK_INT(g.r.rr[DNS_MAX_RR - 1].pref, DNS_MAX_RR);
	CHECK_INT(dns_stats.tcp - tcp, 1);
	CHECK_INT(fs[0].ntcp, 1);
	teardown();

	/* a TCP answer over DNS_TCP_BUF: that server failed */
	setup(M_TCBIG);
	nfired = 0;
	CHECK_INT(ask("bigdomain.test", DNS_T_MX, &g), 0);
	pump(1, 200);
	CHECK_INT(g.fired, 1);
	CHECK_INT(g.r.status, DNS_TEMPFAIL);
	teardown();
}

static void
net_timeout(void)
{
	struct got g;
	int secs, i, j, same = 0;

	setup(M_DROP);
	nfired = 0;
	CHECK_INT(ask("example.test", DNS_T_A, &g), 0);
	secs = pump(1, 400);
	CHECK_INT(g.fired, 1);
	CHECK_INT(g.r.status, DNS_TEMPFAIL);
	CHECK_INT(fs[0].nq, DNS_TRIES);
	CHECK(secs >= DNS_TRIES * DNS_RETRY && secs <= DNS_TRIES * DNS_RETRY + 1);
	/* a fresh socket (port) and ID per attempt */
	for (i = 0; i < fs[0].nq; i++)
		for (j = i + 1; j < fs[0].nq; j++)
			same += fs[0].sport[i] == fs[0].sport[j] || fs[0].id[i] == fs[0].id[j];
	CHECK(same <= 1);
	teardown();
}

static void
net_servfail(void)
{
	struct got g;
	int secs;

	setup(M_SERVFAIL);
	nfired = 0;
	CHECK_INT(ask("example.test", DNS_T_MX, &g), 0);
	secs = pump(1, 200);
	CHECK_INT(g.fired, 1);
	CHECK_INT(g.r.status, DNS_TEMPFAIL);
	CHECK_INT(fs[0].nq, 1);		/* that server is not asked again */
	CHECK(secs <= 1);
	teardown();
}

static void
net_nxdomain(void)
{
	struct got g;

	setup(M_NX);
	nfired = 0;
	CHECK_INT(ask("nonexistent.test", DNS_T_MX, &g), 0);
	pump(1, 200);
	CHECK_INT(g.fired, 1);
	CHECK_INT(g.r.status, DNS_NXDOMAIN);
	CHECK_INT(fs[0].nq, 1);
	teardown();
}

static void
net_cname(void)
{
	struct got g;

	setup(M_CNAME);
	nfired = 0;
	CHECK_INT(ask("www.example.test", DNS_T_MX, &g), 0);
	pump(1, 200);
	CHECK_INT(g.fired, 1);
	CHECK_INT(g.r.status, DNS_OK);
	CHECK_STR(g.r.rr[0].name, "good.test");
	CHECK_INT(fs[0].nq, 2);
	CHECK_STR(fs[0].qname[1], "host.example.test");
	teardown();
}

static void
net_refused(void)
{
	struct got g;
	char s[32];
	int secs;

	setup(M_DROP);
	fake_close(&fs[0]);	/* nobody on that port now */
	nfs = 0;
	snprintf(s, sizeof(s), "[127.0.0.1]:%d", fs[0].port);
	CHECK_INT(dns_init(s), 0);
	nfired = 0;
	CHECK_INT(ask("example.test", DNS_T_MX, &g), 0);
	secs = pump(1, 200);
	CHECK_INT(g.fired, 1);
	CHECK_INT(g.r.status, DNS_TEMPFAIL);
	CHECK(secs <= 1);	/* ECONNREFUSED: no waiting */
	teardown();
}

static void
net_badname(void)
{
	struct got g, g2;

	setup(M_MX);
	nfired = 0;
	CHECK_INT(ask("bad..name", DNS_T_MX, &g), 0);
	CHECK_INT(ask(".", DNS_T_A, &g2), 0);
	CHECK_INT(g.fired, 0);
	CHECK(dns_next() != 0 && dns_next() <= now);
	CHECK_INT(dns_query("example.test", 16, cb, &g), -1);	/* TXT: not ours */
	pump(2, 200);
	CHECK_INT(g.fired, 1);
	CHECK_INT(g.r.status, DNS_PERMFAIL);
	CHECK_INT(g2.fired, 1);
	CHECK_INT(g2.r.status, DNS_PERMFAIL);
	CHECK_INT(fs[0].nq, 0);
	teardown();
}

static void
net_cancel(void)
{
	struct got g, g2, g3;
	static int arg;
	char n[32];
	int i;

	setup(M_DROP);
	nfired = 0;
	CHECK_INT(ask("example.test", DNS_T_MX, &g), 0);
	dns_cancel(&g);
	CHECK_INT(dns_next(), 0);	/* nobody waits: the query is gone */
	/* of two callers one goes away, the other still gets its answer */
	mode = M_MX;
	CHECK_INT(ask("example.test", DNS_T_MX, &g2), 0);
	CHECK_INT(ask("example.test", DNS_T_MX, &g3), 0);
	dns_cancel(&g2);
	pump(1, 200);
	CHECK_INT(g.fired, 0);
	CHECK_INT(g2.fired, 0);
	CHECK_INT(g3.fired, 1);
	CHECK_INT(g3.r.status, DNS_OK);

	/* full tables: -1, and the callback never runs */
	mode = M_DROP;
	for (i = 0; i < DNS_MAX_Q; i++) {
		snprintf(n, sizeof(n), "n%d.test", i);
		CHECK_INT(dns_query(n, DNS_T_MX, cb, &arg), 0);
	}
	CHECK_INT(dns_query("one-more.test", DNS_T_MX, cb, &arg), -1);
	for (i = DNS_MAX_Q; i < DNS_MAX_WAIT; i++)	/* joining still works */
		CHECK_INT(dns_query("n0.test", DNS_T_MX, cb, &arg), 0);
	CHECK_INT(dns_query("n1.test", DNS_T_MX, cb, &arg), -1);
	dns_cancel(&arg);
	CHECK_INT(dns_next(), 0);
	nfired = 0;
	pump(1, 10);
	CHECK_INT(nfired, 0);
	teardown();
}

/* A callback that asks again, as the relay does: MX, then A of the MX. */
static struct got chain_a;

static void
chain_cb(void *arg, const struct dns_result *r)
{
	struct got *g = arg;

	g->fired++;
	g->r = *r;
	CHECK_INT(r->status, DNS_OK);
	CHECK_INT(dns_query(r->rr[0].name, DNS_T_A, cb, &chain_a), 0);
	CHECK_INT(chain_a.fired, 0);
	/* and the same name again: a new query, not the finished one */
	CHECK_INT(dns_query("example.test", DNS_T_MX, cb, &chain_a), 0);
}

static void
net_chain(void)
{
	struct got g;

	setup(M_MX);
	nfired = 0;
	memset(&g, 0, sizeof(g));
	memset(&chain_a, 0, sizeof(chain_a));
	CHECK_INT(dns_query("example.test", DNS_T_MX, chain_cb, &g), 0);
	pump(2, 200);
	CHECK_INT(g.fired, 1);
	CHECK_INT(chain_a.fired, 2);
	CHECK_INT(fs[0].nq, 3);
	CHECK_STR(fs[0].qname[1], "good.test");
	teardown();
}

/* Two servers from a resolv.conf file: a silent one, then a good one. */
static void
net_rotate(void)
{
	char path[] = "/tmp/kotak-dns-XXXXXX";
	FILE *f;
	struct got g;
	int fd, secs, m;

	for (m = 0; m < 2; m++) {
		mode = m == 0 ? M_ROTATE : M_SF0;
		nfs = 2;
		CHECK(fake_open(&fs[0], "127.0.0.1") == 0);
		CHECK(fake_open(&fs[1], "127.0.0.2") == 0);
		fd = mkstemp(path);
		CHECK(fd >= 0);
		f = fdopen(fd, "w");
		fprintf(f, "# test\nsearch example.test\n  nameserver\t127.0.0.1:%d # first\n"
		    "nameserver [127.0.0.2]:%d\noptions ndots:1\n", fs[0].port, fs[1].port);
		fclose(f);
		CHECK_INT(dns_init_file(path), 0);
		unlink(path);
		strcpy(path, "/tmp/kotak-dns-XXXXXX");
		nfired = 0;
		CHECK_INT(ask("example.test", DNS_T_MX, &g), 0);
		secs = pump(1, 200);
		CHECK_INT(g.fired, 1);
		CHECK_INT(g.r.status, DNS_OK);
		CHECK_INT(fs[0].nq, 1);
		CHECK_INT(fs[1].nq, 1);
		/* silent: one retry interval; SERVFAIL: at once */
		CHECK(m == 0 ? secs >= DNS_RETRY : secs <= 1);
		teardown();
	}
}

static void
servers(void)
{
	static const char *good[] = { "127.0.0.1", "127.0.0.1:5353", "[127.0.0.1]:53", "::1",
		"[::1]:5353", "[::1]", "fe80::1%lo", NULL };
	static const char *bad[] = { "", "127.0.0", "localhost", "127.0.0.1:0", "127.0.0.1:65536",
		"127.0.0.1:x", "[::1", "[::1]x", "[::1]:", "::1%nosuchif0", "1.2.3.4 5", NULL };
	int i;

	for (i = 0; good[i]; i++) {
		if (dns_init(good[i]) != 0)
			printf("    refused %s\n", good[i]);
		CHECK_INT(dns_init(good[i]), 0);
	}
	for (i = 0; bad[i]; i++) {
		if (dns_init(bad[i]) == 0)
			printf("    accepted %s\n", bad[i]);
		CHECK_INT(dns_init(bad[i]), -1);
	}
	/* no file, or no nameserver in it: 127.0.0.1, as libc does */
	CHECK_INT(dns_init_file("/nonexistent/resolv.conf"), 0);
	CHECK_INT(dns_init_file("/dev/null"), 0);
}

int
main(int argc, char **argv)
{
	static const struct t_case tc[] = {
		T(names), T(parse_a), T(mx_sort), T(null_mx), T(cname), T(rcodes), T(mismatch),
		T(hostile), T(hostile2), T(prefixes), T(servers),
		T(net_mx), T(net_join), T(net_forged_id), T(net_forged_question), T(net_forged_port),
		T(net_tc_tcp), T(net_timeout), T(net_servfail), T(net_nxdomain), T(net_cname),
		T(net_refused), T(net_badname), T(net_cancel), T(net_chain), T(net_rotate),
		{ NULL, NULL }
	};

	now = 1000;
	return t_main(tc, argc, argv);
}

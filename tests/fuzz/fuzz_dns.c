/* fuzz_dns.c: dns_parse (src/dns.c), the reply parser of the resolver.
 *
 * Input: one byte choosing the question (bits 0-1: A, AAAA, MX, MX; bits
 * 2-5 mod 9: CNAME links already followed), then the reply packet.  The
 * question is always "example.test" with ID 0x1234 (the seeds in
 * corpus/fuzz_dns hold matching questions).  Checked:
 * - no read outside the packet (ASan: the input is an exact-size copy);
 * - a reply with another ID is never an answer;
 * - an answer's result is consistent: status in range, 0 <= n <= DNS_MAX_RR,
 *   records only with DNS_OK, addresses of the asked family, MX exchanges
 *   printable host names of at most 253 characters in preference order;
 * - a CNAME chase leaves a well-formed name and counts one more link, and
 *   the link count never passes DNS_MAX_CNAME + 1;
 * - the same input gives the same verdict twice. */
#include "kotak.h"
#include "dns.h"
#include "fuzz.h"

#include <sys/socket.h>

/* A well-formed wire name; its length. */
static size_t
check_name(const unsigned char *w)
{
	size_t n = 0;

	while (w[n]) {
		FZ_ASSERT(w[n] <= 63);
		n += w[n] + 1;
		FZ_ASSERT(n < 255);
	}
	return n + 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int types[4] = { DNS_T_A, DNS_T_AAAA, DNS_T_MX, DNS_T_MX };
	static struct dns_result res, res2;
	unsigned char name[256], name2[256], q[256];
	int qtype, hops, hops0, hops2, r, r2, i;
	size_t j;

	if (size < 1)
		return 0;
	qtype = types[data[0] & 3];
	hops0 = (data[0] >> 2 & 15) % 9;
	data++, size--;
	FZ_ASSERT(dns_name_wire("example.test", q) == 14);

	memcpy(name, q, sizeof(q));
	hops = hops0;
	r = dns_parse(data, size, 0x1234, name, qtype, &hops, &res);
	FZ_ASSERT(r >= DNS_R_IGNORE && r <= DNS_R_DONE);
	FZ_ASSERT(hops >= hops0 && hops <= DNS_MAX_CNAME + 1);
	if (size < 2 || data[0] != 0x12 || data[1] != 0x34)
		FZ_ASSERT(r == DNS_R_IGNORE);
	check_name(name);
	if (r == DNS_R_CHASE)
		FZ_ASSERT(hops > hops0 && hops <= DNS_MAX_CNAME);
	if (r == DNS_R_DONE) {
		FZ_ASSERT(res.status >= DNS_OK && res.status <= DNS_PERMFAIL);
		FZ_ASSERT(res.status != DNS_PERMFAIL);
		FZ_ASSERT(res.n >= 0 && res.n <= DNS_MAX_RR);
		FZ_ASSERT((res.n > 0) == (res.status == DNS_OK));
		if (res.status == DNS_NULLMX)
			FZ_ASSERT(qtype == DNS_T_MX);
		for (i = 0; i < res.n; i++) {
			const struct dns_rr *rr = &res.rr[i];
			if (qtype != DNS_T_MX) {
				FZ_ASSERT(rr->family == (qtype == DNS_T_A ? AF_INET : AF_INET6));
				continue;
			}
			FZ_ASSERT(memchr(rr->name, 0, sizeof(rr->name)) != NULL);
			FZ_ASSERT(strlen(rr->name) >= 1 && strlen(rr->name) <= 253);
			for (j = 0; rr->name[j]; j++)
				FZ_ASSERT(rr->name[j] == '.' || rr->name[j] == '-' || rr->name[j] == '_' ||
				    (rr->name[j] >= '0' && rr->name[j] <= '9') ||
				    (rr->name[j] >= 'a' && rr->name[j] <= 'z'));
			if (i > 0)
				FZ_ASSERT(res.rr[i - 1].pref <= rr->pref);
		}
	}

	/* the same verdict again (MX ties may come in another order) */
	memcpy(name2, q, sizeof(q));
	hops2 = hops0;
	r2 = dns_parse(data, size, 0x1234, name2, qtype, &hops2, &res2);
	FZ_ASSERT(r2 == r && hops2 == hops);
	FZ_ASSERT(!memcmp(name, name2, check_name(name)));
	if (r == DNS_R_DONE)
		FZ_ASSERT(res2.status == res.status && res2.n == res.n);
	return 0;
}

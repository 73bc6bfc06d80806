/* dnsq: ask kotak's resolver from the command line (a test driver, not
 * part of the daemon).
 *
 *   dnsq SERVER|-f RESOLV_CONF TYPE NAME...
 *
 * SERVER takes the dns_server forms (ADDR, ADDR:PORT, [V6]:PORT); TYPE is
 * mx, a or aaaa.  All names are asked at once in a select() loop like the
 * daemon's; for each answer, in the order they come:
 *
 *   NAME TYPE STATUS N
 *     mx PREF EXCHANGE | a ADDRESS | aaaa ADDRESS
 *
 * then "stats sent=N ignored=N tcp=N failed=N".  Exit 0, or 2 on bad
 * arguments or a dns_query() refusal.  Build: cc -Ibuild -Isrc
 * tests/unit/dnsq.c build/libkotak.a */
#include "kotak.h"
#include "dns.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>

/* util.c (give_to_user) reads the daemon's config; the driver has none */
struct cfg cfg;

static const char *const stname[] = { "OK", "NXDOMAIN", "NODATA", "NULLMX", "TEMPFAIL", "PERMFAIL" };
static const char *tname;
static int left;

static void
done(void *arg, const struct dns_result *r)
{
	char a[INET6_ADDRSTRLEN];
	int i;

	printf("%s %s %s %d\n", (const char *)arg, tname, stname[r->status], r->n);
	for (i = 0; i < r->n; i++) {
		if (r->rr[i].family == 0)
			printf("  mx %u %s\n", r->rr[i].pref, r->rr[i].name);
		else
			printf("  %s %s\n", r->rr[i].family == AF_INET ? "a" : "aaaa",
			    inet_ntop(r->rr[i].family, r->rr[i].addr, a, sizeof(a)));
	}
	fflush(stdout);
	left--;
}

int
main(int argc, char **argv)
{
	int i, type, maxfd;
	time_t end;

	if (argc < 4) {
		fprintf(stderr, "usage: dnsq SERVER|-f RESOLV_CONF TYPE NAME...\n");
		return 2;
	}
	now = mono_now();
	if (!strcmp(argv[1], "-f")) {
		argv++, argc--;
		if (argc < 4 || dns_init_file(argv[1]) < 0)
			return 2;
	} else if (dns_init(argv[1]) < 0) {
		return 2;
	}
	tname = argv[2];
	if (!strcmp(tname, "mx"))
		type = DNS_T_MX;
	else if (!strcmp(tname, "a"))
		type = DNS_T_A;
	else if (!strcmp(tname, "aaaa"))
		type = DNS_T_AAAA;
	else
		return 2;
	for (i = 3; i < argc; i++, left++)
		if (dns_query(argv[i], type, done, argv[i]) < 0) {
			fprintf(stderr, "dnsq: %s: tables full\n", argv[i]);
			return 2;
		}
	end = now + 60;
	while (left > 0 && now < end) {
		fd_set rd, wr;
		struct timeval tv;
		time_t next = dns_next();

		FD_ZERO(&rd);
		FD_ZERO(&wr);
		maxfd = dns_fds(&rd, &wr, -1);
		tv.tv_sec = next ? (next > now ? next - now : 0) : 1;
		tv.tv_usec = 0;
		if (select(maxfd + 1, &rd, &wr, NULL, &tv) > 0) {
			now = mono_now();
			dns_io(&rd, &wr);
		}
		now = mono_now();
		dns_timeout();
	}
	printf("stats sent=%lu ignored=%lu tcp=%lu failed=%lu\n", dns_stats.sent, dns_stats.ignored,
	    dns_stats.tcp, dns_stats.failed);
	return left ? 1 : 0;
}

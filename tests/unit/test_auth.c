/* Tests for auth.c: the brakes on failed logins (issue 14): an IPv6 /64
 * is one client, failures in all stay within a shared budget whatever the
 * number of addresses (also once the table of addresses is full), and an
 * address that logged in before is exempt from that budget.  The clock is
 * kotak's `now`, moved by hand; each test starts far past the last one's
 * state (the table forgets after 15 minutes). */
#include "kotak.h"
#include "pwhash.h"
#include "t.h"

#include <stdlib.h>
#include <unistd.h>

static void
fresh(void)
{
	now += 100000;
}

static int
fail(const char *ip)
{
	return auth_check(ip, "alice", "wrong") == NULL;
}

static void
v6_grouped_by_64(void)
{
	fresh();
	CHECK(auth_wait("2001:db8:1:2::1") == 0);
	CHECK(fail("2001:db8:1:2::1"));
	CHECK(auth_wait("2001:db8:1:2::1") > 0);
	CHECK(auth_wait("2001:db8:1:2:ffff::99") > 0);	/* same /64 */
	CHECK(auth_wait("2001:db8:1:3::1") == 0);	/* the next /64 */
	CHECK(auth_wait("192.0.2.1") == 0);
	CHECK(auth_delay("2001:db8:1:2::7") == 2);
}

/* A guesser with n addresses, each trying once a second whenever its own
 * brake lets it, for secs seconds: how many passwords were checked. */
static int
guess(int n, int secs, int net)
{
	char ip[48];
	int t, i, checked = 0;

	for (t = 0; t < secs; t++, now++)
		for (i = 0; i < n; i++) {
			snprintf(ip, sizeof(ip), "10.%d.%d.%d", net, i / 250, i % 250 + 1);
			if (auth_wait(ip) == 0) {
				fail(ip);
				checked++;
			}
		}
	return checked;
}

static void
one_address_two_a_minute(void)
{
	int n;

	fresh();
	n = guess(1, 600, 1);
	/* 2, 4, 8, 16, 32 s, then every 32 s */
	CHECK(n >= 18 && n <= 25);
}

static void
many_addresses_share_one_budget(void)
{
	int n;

	fresh();
	n = guess(100, 600, 2);
	/* a burst of 5, then one per 12 s: 55 in 10 minutes (was about 100 x 22) */
	CHECK(n >= 50 && n <= 60);
	fresh();
	n = guess(1000, 120, 3);	/* more addresses than the table holds */
	CHECK(n >= 10 && n <= 16);
}

static void
over_budget_is_refused_not_held(void)
{
	fresh();
	guess(10, 1, 4);
	CHECK(auth_wait("10.99.0.1") == -1);	/* a newcomer: temporary failure */
	now += 12;
	CHECK(auth_wait("10.99.0.1") == 0);
}

static void
known_address_not_locked_out(void)
{
	fresh();
	CHECK(auth_check("198.51.100.7", "alice", "secret") != NULL);
	guess(50, 30, 5);
	CHECK(auth_wait("198.51.100.8") == -1);
	CHECK(auth_wait("198.51.100.7") == 0);
	CHECK(auth_check("198.51.100.7", "alice", "secret") != NULL);
	/* its own mistakes still brake it */
	CHECK(fail("198.51.100.7"));
	CHECK(auth_wait("198.51.100.7") == 2);
}

static const struct t_case tests[] = {
	T(v6_grouped_by_64),
	T(one_address_two_a_minute),
	T(many_addresses_share_one_budget),
	T(over_budget_is_refused_not_held),
	T(known_address_not_locked_out),
	{ NULL, NULL }
};

int
main(int argc, char **argv)
{
	char path[] = "/tmp/kotak-test-auth.XXXXXX", hash[PWHASH_MAX], line[200], err[300];
	int fd = mkstemp(path);

	if (fd < 0 || pwhash_make("secret", "$6$saltsaltsalt$", hash, sizeof(hash)) < 0)
		return 1;
	snprintf(line, sizeof(line), "alice:%s\n", hash);
	if (write(fd, line, strlen(line)) < 0 || close(fd) < 0 || users_load(path, err, sizeof(err)) < 0) {
		printf("setup: %s\n", err);
		return 1;
	}
	unlink(path);
	log_init(0);
	cfg.auth_fail_rate = 5;	/* the default */
	if (freopen("/dev/null", "w", stderr) == NULL)	/* the "auth failed" lines */
		return 1;
	now = 1000;
	return t_main(tests, argc, argv);
}

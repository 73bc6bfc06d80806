/*
 * auth.c: password checks shared by SMTP AUTH, POP3 and IMAP, and the
 * brakes on failed logins.  An unknown user costs one SHA512-crypt like a
 * wrong password does (pwhash_check hashes against a dummy), so timing does
 * not tell which names exist.
 *
 * - Per address (an IPv6 client's /64 counts as one): each failure holds
 *   that session's reply for 2 s, doubling up to 32 s while failures keep
 *   coming, and the address's next password waits as long (new sessions
 *   too): about 2 guesses a minute.
 * - In all: failures from addresses that never logged in spend a shared
 *   budget of option auth_fail_rate a minute (5: a burst of 5, then one
 *   per 12 s), so a guesser with a thousand addresses gets about what one
 *   address gets, and the loop spends little time hashing.  Over budget a
 *   password is not even checked: a temporary failure (auth_wait < 0).
 * - An address that logged in before (the last AUTH_GOOD of them) is
 *   exempt from the shared budget: a guesser elsewhere cannot lock its
 *   users out.
 * - A full table of failing addresses forgets the oldest failure: the
 *   shared budget still holds, so it degrades to the global rate, not open.
 * Failures are logged as "auth failed ip=... user=..." for fail2ban.
 */
#include "kotak.h"
#include "pwhash.h"

#include <string.h>

#define AUTH_IPS	64	/* failing address groups remembered */
#define AUTH_GOOD	32	/* address groups that logged in, remembered */
#define AUTH_FORGET	900	/* seconds without failure that clear an address */
#define GAP		(60 / cfg.auth_fail_rate)	/* seconds a failure costs the shared budget */

static struct {
	unsigned char g[16];	/* net_group() */
	unsigned fails;
	time_t	 last;
} tab[AUTH_IPS];
static struct {
	unsigned char g[16];
	time_t	 when;		/* 0: free */
} good[AUTH_GOOD];
static time_t gfull;	/* the shared budget is whole again at this time */

static int
slot(const unsigned char *g, int create)
{
	int i, old = 0;

	for (i = 0; i < AUTH_IPS; i++) {
		if (tab[i].fails && now - tab[i].last > AUTH_FORGET)
			tab[i].fails = 0;
		if (tab[i].fails && !memcmp(tab[i].g, g, 16))
			return i;
		if (!tab[i].fails || (tab[old].fails && tab[i].last < tab[old].last))
			old = i;
	}
	if (!create)
		return -1;
	memcpy(tab[old].g, g, 16);
	tab[old].fails = 0;
	return old;
}

/* The slot of g in good[], or -1; with make, the oldest slot becomes g's. */
static int
known(const unsigned char *g, int make)
{
	int i, old = 0;

	for (i = 0; i < AUTH_GOOD; i++) {
		if (good[i].when && !memcmp(good[i].g, g, 16))
			break;
		if (good[i].when < good[old].when)
			old = i;
	}
	if (i == AUTH_GOOD && make)
		memcpy(good[i = old].g, g, 16);
	return i < AUTH_GOOD ? i : -1;
}

/* The user name as typed, fit for a log line that fail2ban parses: only
 * [A-Za-z0-9._@+-], the rest becomes '?', so no name can forge a line. */
static const char *
log_safe(const char *s, char *out, size_t n)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < n; i++) {
		char c = s[i];
		out[i] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    (c && strchr("._@+-", c)) ? c : '?';
	}
	out[i] = '\0';
	return out;
}

const char *
auth_check(const char *ip, const char *user, const char *pass)
{
	char safe[65];
	unsigned char g[16];
	const char *name = users_find(user);
	const char *hash = name ? users_hash(name) : NULL;
	int i, ok = pwhash_check(pass, hash);	/* always one full hash */

	net_group(ip, g);
	if (ok && name) {
		if ((i = slot(g, 0)) >= 0)
			tab[i].fails = 0;
		good[known(g, 1)].when = now + 1;	/* 0 is a free slot */
		return name;
	}
	i = slot(g, 1);
	tab[i].fails++;
	tab[i].last = now;
	if (cfg.auth_fail_rate && known(g, 0) < 0)
		gfull = (gfull > now ? gfull : now) + GAP;
	log_warnx("auth failed ip=%s user=%s", ip, log_safe(user, safe, sizeof(safe)));
	return NULL;
}

/* see kotak.h: seconds this address must still wait before its next
 * password is even checked (the brake holds new sessions too, not only
 * the failure reply), or -1 when the shared budget is spent. */
int
auth_wait(const char *ip)
{
	unsigned char g[16];
	int i, d;

	net_group(ip, g);
	if (cfg.auth_fail_rate && gfull - now > 60 - GAP && known(g, 0) < 0)
		return -1;	/* a minute's budget is spent */
	if ((i = slot(g, 0)) < 0)
		return 0;
	d = auth_delay(ip);
	return tab[i].last + d > now ? (int)(tab[i].last + d - now) : 0;
}

int
auth_delay(const char *ip)
{
	unsigned char g[16];
	int i;
	unsigned f;

	net_group(ip, g);
	if ((i = slot(g, 0)) < 0)
		return 0;
	f = tab[i].fails > 5 ? 5 : tab[i].fails;
	return 2 << (f - 1);
}

/* No password over cleartext unless the admin allows it for the client's
 * network (list cleartext_auth_net). */
int
auth_allowed(const struct conn *c)
{
	return conn_is_tls(c) || net_match(cfg.cleartext_auth_net, cfg.ncleartext_auth_net, c->ip);
}

/*
 * auth.c: password checks shared by SMTP AUTH, POP3 and IMAP, and the
 * per-IP brake on failed logins.  An unknown user costs one SHA512-crypt
 * like a wrong password does (pwhash_check hashes against a dummy), so
 * timing does not tell which names exist.  Each failure from an address
 * holds that session's reply for 2 s, doubling up to 32 s while failures
 * keep coming; other addresses are not slowed.  Failures are logged as
 * "auth failed ip=... user=..." for fail2ban-style tools.
 */
#include "kotak.h"
#include "pwhash.h"

#include <string.h>

#define AUTH_IPS	64	/* addresses remembered; the oldest is forgotten first */
#define AUTH_FORGET	900	/* seconds without failure that clear an address */

static struct {
	char	 ip[IP_MAX];
	unsigned fails;
	time_t	 last;
} tab[AUTH_IPS];

static int
slot(const char *ip, int create)
{
	int i, old = 0;

	for (i = 0; i < AUTH_IPS; i++) {
		if (tab[i].fails && now - tab[i].last > AUTH_FORGET)
			tab[i].fails = 0;
		if (tab[i].fails && !strcmp(tab[i].ip, ip))
			return i;
		if (!tab[i].fails || (tab[old].fails && tab[i].last < tab[old].last))
			old = i;
	}
	if (!create)
		return -1;
	strlcpy_k(tab[old].ip, ip, sizeof(tab[old].ip));
	tab[old].fails = 0;
	return old;
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
	const char *name = users_find(user);
	const char *hash = name ? users_hash(name) : NULL;
	int i, ok = pwhash_check(pass, hash);	/* always one full hash */

	if (ok && name) {
		if ((i = slot(ip, 0)) >= 0)
			tab[i].fails = 0;
		return name;
	}
	i = slot(ip, 1);
	tab[i].fails++;
	tab[i].last = now;
	log_warnx("auth failed ip=%s user=%s", ip, log_safe(user, safe, sizeof(safe)));
	return NULL;
}

/* Seconds this address must still wait before its next password is even
 * checked: the brake holds new sessions too, not only the failure reply. */
int
auth_wait(const char *ip)
{
	int i = slot(ip, 0);
	time_t until;

	if (i < 0)
		return 0;
	until = tab[i].last + auth_delay(ip);
	return until > now ? (int)(until - now) : 0;
}

int
auth_delay(const char *ip)
{
	int i = slot(ip, 0);
	unsigned f;

	if (i < 0)
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

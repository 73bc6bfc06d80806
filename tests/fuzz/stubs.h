/* stubs.h: log.c and auth.c as the protocol fuzz targets (fuzz_smtp,
 * fuzz_pop3, fuzz_imap) stub them; included once, after kotak.h.
 *
 * log.c is quiet, but "output buffer full" is a crash: conn_reply's own
 * comment calls it a bug.  auth.c: a real SHA512-crypt per attempt would
 * make each run milliseconds, so alice / secret logs in (as FZ_LOGIN(user)
 * says, users_find by default), anything else fails and counts for the
 * brake, whose hold the driver releases at once by moving `now` to its
 * end, as the loop does when it expires.  With auth_budget set, that many
 * failures spend the shared budget (auth_wait -1).  The driver resets
 * cleartext_ok, auth_fails and auth_last for each input. */
#ifndef FUZZ_STUBS_H
#define FUZZ_STUBS_H

#ifndef FZ_LOGIN
#define FZ_LOGIN(user)	users_find(user)
#endif

void log_init(int to_syslog) { }
void log_info(const char *fmt, ...) { }
void log_warn(const char *fmt, ...) { }
void
log_warnx(const char *fmt, ...)
{
	if (strstr(fmt, "output buffer full")) {
		fprintf(stderr, "conn_reply: output buffer full\n");
		abort();
	}
}
void fatal(const char *fmt, ...) { abort(); }
void fatalx(const char *fmt, ...) { abort(); }

static int cleartext_ok;
static unsigned auth_fails, auth_budget;
static time_t auth_last;

const char *
auth_check(const char *ip, const char *user, const char *pass)
{
	FZ_ASSERT(ip && user && pass);
	if (strcaseeq(user, "alice") && !strcmp(pass, "secret")) {
		auth_fails = 0;
		return FZ_LOGIN(user);
	}
	auth_fails++;
	auth_last = now;
	return NULL;
}

int
auth_delay(const char *ip)
{
	unsigned f = auth_fails > 5 ? 5 : auth_fails;

	return f ? 2 << (f - 1) : 0;
}

int
auth_wait(const char *ip)
{
	time_t until = auth_last + auth_delay(ip);

	if (auth_budget && auth_fails >= auth_budget)
		return -1;	/* the shared budget, spent */
	return auth_fails && until > now ? (int)(until - now) : 0;
}

int
auth_allowed(const struct conn *c)
{
	return conn_is_tls(c) || cleartext_ok;
}

#endif

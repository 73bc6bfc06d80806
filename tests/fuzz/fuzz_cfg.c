/* fuzz_cfg.c: cfg_load (src/cfg.c) on the input written to a file.
 *
 * It must return 0 or -1 and never crash.  On -1 the message is a
 * NUL-terminated string that starts with the file name and a colon, and
 * when a line number follows it is one of the file's lines (or the line
 * after the last: the end of the file).  On 0 the struct holds only values
 * the rest of kotak can trust: counts within their arrays, strings
 * terminated, numbers in range, no control characters.  Then a second
 * load with a tiny error buffer must agree and stay inside it. */
#include "kotak.h"
#include "fuzz.h"

#include <unistd.h>

/* cfg.c checks `list domain` values (no '@', no blank) but not option
 * hostname, which becomes the only domain when none is listed: a hostname
 * like 'a@b' or 'a b' ends up as a local domain (reported to the lead).
 * 0 makes that a failure again. */
#define ALLOW_UNCHECKED_HOSTNAME_DOMAIN 0

static char path[64];
static struct cfg c1, c2;

static void
cleanup(void)
{
	unlink(path);
}

static void
str_ok(const char *s, size_t size)
{
	size_t n = strnlen(s, size), i;

	FZ_ASSERT(n < size);
	for (i = 0; i < n; i++)
		FZ_ASSERT((unsigned char)s[i] >= 32 && s[i] != 127);
}

static void
cfg_ok(const struct cfg *c)
{
	int i;

	str_ok(c->hostname, sizeof(c->hostname));
	FZ_ASSERT(c->hostname[0]);
	FZ_ASSERT(c->ndomain >= 1 && c->ndomain <= CONFIG_MAX_DOMAINS);
	for (i = 0; i < c->ndomain; i++) {
		str_ok(c->domain[i], sizeof(c->domain[i]));
		FZ_ASSERT(c->domain[i][0]);
		if (ALLOW_UNCHECKED_HOSTNAME_DOMAIN && c->ndomain == 1 && !strcmp(c->domain[0], c->hostname))
			continue;
		FZ_ASSERT(!strchr(c->domain[i], '@') && !strchr(c->domain[i], ' '));
	}
	str_ok(c->data_dir, sizeof(c->data_dir));
	FZ_ASSERT(c->data_dir[0] == '/' && strlen(c->data_dir) <= 160);
	str_ok(c->users_file, sizeof(c->users_file));
	str_ok(c->user, sizeof(c->user));
	FZ_ASSERT(c->max_message_size >= 1024 && c->max_message_size <= 1LL << 40);
	FZ_ASSERT(c->max_recipients >= 1 && c->max_recipients <= CONFIG_MAX_RCPT);
	FZ_ASSERT(c->max_sessions >= 1 && c->max_sessions <= CONFIG_MAX_CONNS);
	FZ_ASSERT(c->max_per_ip >= 1 && c->max_per_ip <= CONFIG_MAX_CONNS);
	FZ_ASSERT(c->max_errors >= 1 && c->max_errors <= 1000);
	FZ_ASSERT(c->timeout >= 1 && c->timeout <= 86400);
	FZ_ASSERT(c->data_timeout >= 1 && c->data_timeout <= 86400);
	FZ_ASSERT(c->log_syslog == 0 || c->log_syslog == 1);
	FZ_ASSERT(c->ncleartext_auth_net >= 0 && c->ncleartext_auth_net <= MAX_NETS);
	for (i = 0; i < c->ncleartext_auth_net; i++)
		FZ_ASSERT(c->cleartext_auth_net[i].bits >= 0 && c->cleartext_auth_net[i].bits <= 128);
	FZ_ASSERT(c->nlisten >= 0 && c->nlisten <= CONFIG_MAX_LISTEN);
	for (i = 0; i < c->nlisten; i++) {
		FZ_ASSERT(c->listen[i].proto >= 0 && c->listen[i].proto < PROTO_NUM);
		FZ_ASSERT(c->listen[i].port >= 1 && c->listen[i].port <= 65535);
		str_ok(c->listen[i].addr, sizeof(c->listen[i].addr));
	}
	FZ_ASSERT(c->nalias >= 0 && c->nalias <= CONFIG_MAX_ALIASES);
	for (i = 0; i < c->nalias; i++) {
		str_ok(c->alias[i].name, sizeof(c->alias[i].name));
		str_ok(c->alias[i].to, sizeof(c->alias[i].to));
		FZ_ASSERT(c->alias[i].name[0] && c->alias[i].to[0]);
		FZ_ASSERT(!strchr(c->alias[i].name, '@') && !strchr(c->alias[i].to, ' '));
	}
}

/* The message fits the line it names: "unterminated quote" only for a
 * line with a quote in it, "line too long" only for a long one. */
static void
line_msg_ok(const uint8_t *d, size_t n, unsigned long ln, const char *msg)
{
	const uint8_t *l = d, *e = d + n, *lf;
	size_t len;

	while (--ln > 0 && l < e) {
		lf = memchr(l, '\n', e - l);
		l = lf ? lf + 1 : e;
	}
	lf = memchr(l, '\n', e - l);
	len = (lf ? lf : e) - l;
	while (*msg == ' ')
		msg++;
	if ((!strncmp(msg, "unterminated quote", 18) && !memchr(l, '\'', len) && !memchr(l, '"', len)) ||
	    (!strncmp(msg, "line too long", 13) && len < 1022)) {
		fprintf(stderr, "error does not fit its line (%zu bytes): %s\n", len, msg);
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[400], *small;
	size_t plen, nlines = 0, i;
	int r, r2, fd;

	if (size > 16384)
		return 0;
	if (!path[0]) {
		snprintf(path, sizeof(path), "/tmp/kotak-fuzz-cfg.XXXXXX");
		FZ_ASSERT((fd = mkstemp(path)) >= 0);
		close(fd);
		atexit(cleanup);
	}
	{
		FILE *f = fopen(path, "wb");
		FZ_ASSERT(f != NULL);
		FZ_ASSERT(fwrite(data, 1, size, f) == size);
		FZ_ASSERT(fclose(f) == 0);
	}
	for (i = 0; i < size; i++)
		nlines += data[i] == '\n';
	if (size && data[size - 1] != '\n')
		nlines++;

	memset(err, 0x5a, sizeof(err));
	r = cfg_load(path, &c1, err, sizeof(err));
	FZ_ASSERT(r == 0 || r == -1);
	if (r == 0) {
		cfg_ok(&c1);
	} else {
		plen = strlen(path);
		FZ_ASSERT(strnlen(err, sizeof(err)) < sizeof(err));
		if (strncmp(err, path, plen) || err[plen] != ':') {
			fprintf(stderr, "error does not name the file: %s\n", err);
			abort();
		}
		if (err[plen + 1] >= '0' && err[plen + 1] <= '9') {
			char *e;
			unsigned long ln = strtoul(err + plen + 1, &e, 10);
			if (*e != ':' || ln < 1 || ln > nlines + 1) {
				fprintf(stderr, "bad line number (file has %zu lines): %s\n", nlines, err);
				abort();
			}
			if (!memchr(data, '\0', size))
				line_msg_ok(data, size, ln, e + 1);
		}
	}
	/* the same verdict with no room for the message */
	small = malloc(8);
	FZ_ASSERT(small != NULL);
	r2 = cfg_load(path, &c2, small, 8);
	FZ_ASSERT(r2 == r);
	if (r2 < 0)
		FZ_ASSERT(strnlen(small, 8) < 8);
	free(small);
	return 0;
}

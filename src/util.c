/* util.c: small helpers every module uses. */
#include "kotak.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <pwd.h>
#include <unistd.h>

time_t now;

time_t
mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

size_t
strlcpy_k(char *d, const char *s, size_t n)
{
	size_t l = strlen(s);

	if (n) {
		size_t c = l < n - 1 ? l : n - 1;
		memcpy(d, s, c);
		d[c] = '\0';
	}
	return l;
}

static int
lc(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

int
strcaseeq(const char *a, const char *b)
{
	while (*a && lc((unsigned char)*a) == lc((unsigned char)*b))
		a++, b++;
	return *a == *b;
}

/* Decimal only, no sign, no overflow; 0 on success. */
int
parse_uint(const char *s, unsigned long long max, unsigned long long *v)
{
	unsigned long long x = 0;

	if (*s == '\0')
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		if (x > (max - (*s - '0')) / 10)
			return -1;
		x = x * 10 + (*s - '0');
	}
	*v = x;
	return 0;
}

int
has_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 32 || *s == 127)
			return 1;
	return 0;
}

static const char wday[] = "SunMonTueWedThuFriSat";
static const char mon[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

/* see kotak.h */
long
civil_days(long y, unsigned m, unsigned d)
{
	long era;
	unsigned yoe, doy;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	return era * 146097 + (long)(yoe * 365 + yoe / 4 - yoe / 100 + doy) - 719468;
}

void
rfc5322_date(char *d, size_t n, time_t t)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(d, n, "%.3s, %d %.3s %d %02d:%02d:%02d +0000", wday + 3 * tm.tm_wday,
	    tm.tm_mday, mon + 3 * tm.tm_mon, tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

void
ctime_date(char *d, size_t n, time_t t)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(d, n, "%.3s %.3s %2d %02d:%02d:%02d %d", wday + 3 * tm.tm_wday,
	    mon + 3 * tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, tm.tm_year + 1900);
}

int
fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r;

	if (fd < 0)
		return -1;
	r = fsync(fd);
	close(fd);
	return r;
}

int
mkdir_p(const char *path, mode_t mode)
{
	char p[PATH_MAX_K];
	char *s;

	if (strlcpy_k(p, path, sizeof(p)) >= sizeof(p))
		return errno = ENAMETOOLONG, -1;
	for (s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return -1;
		*s = '/';
	}
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

void
random_bytes(void *p, size_t n)
{
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	ssize_t r = fd >= 0 ? read(fd, p, n) : -1;

	if (fd >= 0)
		close(fd);
	if (r != (ssize_t)n) {	/* no urandom (early boot, chroot): weak but unique enough for ids */
		unsigned char *c = p;
		unsigned x = (unsigned)getpid() ^ (unsigned)time(NULL) ^ (unsigned)mono_now();
		while (n--) {
			x = x * 1103515245u + 12345u;
			*c++ = x >> 16;
		}
	}
}

int
set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Strict base64 (padding required, no whitespace): SASL payloads. */
int
b64_decode(const char *in, unsigned char *out, size_t max)
{
	size_t n = strlen(in), i, o = 0;
	unsigned v;
	int k, pad = 0;

	if (n % 4)
		return -1;
	for (i = 0; i < n; i += 4) {
		v = 0;
		for (k = 0; k < 4; k++) {
			const char *p = in[i + k] ? strchr(b64, in[i + k]) : NULL;
			if (in[i + k] == '=' && i + 4 == n && k >= 2 && (k == 3 || in[i + 3] == '=')) {
				pad++;
				v <<= 6;
				continue;
			}
			if (p == NULL || pad)
				return -1;
			v = v << 6 | (unsigned)(p - b64);
		}
		if (o + 3 - pad > max)
			return -1;
		out[o++] = v >> 16;
		if (pad < 2)
			out[o++] = v >> 8;
		if (pad < 1)
			out[o++] = v;
	}
	return (int)o;
}

void
b64_encode(const unsigned char *in, size_t n, char *out, size_t max)
{
	size_t i, o = 0;

	for (i = 0; i < n && o + 5 <= max; i += 3) {
		unsigned v = in[i] << 16 | (i + 1 < n ? in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
		out[o++] = b64[v >> 18];
		out[o++] = b64[(v >> 12) & 63];
		out[o++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? b64[v & 63] : '=';
	}
	out[o < max ? o : max - 1] = '\0';
}

/* A user from /etc/passwd, by name, or by uid when name is NULL; NULL if
 * none.  Not getpwnam(): musl's pulls in its nscd client (3 KiB on MIPS),
 * and a router has no other user database.  Only pw_name, pw_uid and
 * pw_gid are filled; the result is static. */
struct passwd *
pw_lookup(const char *name, uid_t uid)
{
	static struct passwd pw;
	static char nm[USER_MAX];
	char l[512], *f[4], *p;
	FILE *fp = fopen("/etc/passwd", "r");
	int i;

	if (fp == NULL)
		return NULL;
	while (fgets(l, sizeof(l), fp)) {
		for (p = l, i = 0; i < 4; i++) {	/* name:pw:uid:gid: */
			f[i] = p;
			if ((p = strchr(p, ':')) == NULL)
				break;
			*p++ = '\0';
		}
		if (i < 4 || strlen(f[0]) >= sizeof(nm) ||
		    (name ? strcmp(f[0], name) : (uid_t)strtoul(f[2], NULL, 10) != uid))
			continue;
		strlcpy_k(nm, f[0], sizeof(nm));
		pw.pw_name = nm;
		pw.pw_uid = (uid_t)strtoul(f[2], NULL, 10);
		pw.pw_gid = (gid_t)strtoul(f[3], NULL, 10);
		fclose(fp);
		return &pw;
	}
	fclose(fp);
	return NULL;
}

/* Root made path for the daemon, which runs as option user: hand it over.
 * 0, or -1 when there is no such user. */
int
give_to_user(const char *path)
{
	struct passwd *pw;

	if (!cfg.user[0] || geteuid() != 0)
		return 0;
	if ((pw = pw_lookup(cfg.user, 0)) == NULL)
		return -1;
	return chown(path, pw->pw_uid, pw->pw_gid);
}

/* SHA512-crypt; see pwhash.h.  The steps follow Ulrich Drepper's
 * "Unix crypt using SHA-256 and SHA-512" (the spec glibc implements); the
 * numbers in the comments are its step numbers. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "sha512.h"
#include "pwhash.h"

#define PWHASH_ROUNDS_DEF	5000UL
#define PWHASH_ROUNDS_MIN	1000UL
#define PWHASH_ROUNDS_MAX	999999999UL

static const char pwhash_b64[] =
    "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/* Hashed for unknown users and malformed entries: same cost as a real
 * default-cost entry with a full-length salt. */
static const char pwhash_dummy[] = "$6$kotak.dummy.salt";

/* A volatile pointer the compiler must reload, so it cannot prove the
 * call is memset and drop it as a dead store. */
static void *(*const volatile pwhash_memset)(void *, int, size_t) = memset;

/* see pwhash.h */
void pwhash_wipe(void *p, size_t n)
{
	pwhash_memset(p, 0, n);
}

/* Feed n bytes of d, d, d, ... (d is one 64-byte digest): the spec's
 * sequences P (steps 16, 21) and the B-per-64-bytes of step 10, without a
 * password-sized buffer. */
static void pwhash_rep(struct sha512 *c, const unsigned char *d, size_t n)
{
	for (; n > SHA512_LEN; n -= SHA512_LEN) {
		sha512_update(c, d, SHA512_LEN);
	}
	sha512_update(c, d, n);
}

/* Hash pw with setting "[$6$][rounds=N$]salt[$...]" into out[PWHASH_MAX].
 * Returns -1, without hashing, if a salt char is outside the crypt
 * alphabet: a ':' or newline would break the password file, and no
 * generator we know of makes such salts. */
static int pwhash_crypt(const char *pw, const char *set, char *out)
{
	struct sha512 c;
	unsigned char a[SHA512_LEN], p[SHA512_LEN], s[SHA512_LEN];
	unsigned long rounds = PWHASH_ROUNDS_DEF, r, w;
	size_t pl = strlen(pw), sl, i, k;
	int custom = 0;
	const char *q;
	char *o = out;

	if (!strncmp(set, "$6$", 3)) {
		set += 3;
	}
	/* Like glibc: "rounds=" without digits and a '$' is part of the salt.
	 * Unlike its strtoul(), no sign or blanks; the value saturates. */
	if (!strncmp(set, "rounds=", 7)) {
		r = 0;
		for (q = set + 7; *q >= '0' && *q <= '9'; q++) {
			r = r * 10 + (unsigned long)(*q - '0');
			if (r > PWHASH_ROUNDS_MAX) {
				r = PWHASH_ROUNDS_MAX;
			}
		}
		if (*q == '$' && q > set + 7) {
			rounds = r < PWHASH_ROUNDS_MIN ? PWHASH_ROUNDS_MIN : r;
			custom = 1;
			set = q + 1;
		}
	}
	for (sl = 0; sl < PWHASH_SALT_LEN && set[sl] && set[sl] != '$'; sl++) {
		if (!strchr(pwhash_b64, set[sl])) {
			return -1;
		}
	}

	/* 4-8: B = H(pw salt pw), kept in p for now */
	sha512_init(&c);
	sha512_update(&c, pw, pl);
	sha512_update(&c, set, sl);
	sha512_update(&c, pw, pl);
	sha512_final(&c, p);
	/* 1-3, 9-12: A = H(pw salt B-repeated-to-pl, then per bit of pl) */
	sha512_init(&c);
	sha512_update(&c, pw, pl);
	sha512_update(&c, set, sl);
	pwhash_rep(&c, p, pl);
	for (i = pl; i > 0; i >>= 1) {
		if (i & 1) {
			sha512_update(&c, p, SHA512_LEN);
		} else {
			sha512_update(&c, pw, pl);
		}
	}
	sha512_final(&c, a);
	/* 13-16: DP = H(pw pl times); P is DP repeated to pl bytes */
	sha512_init(&c);
	for (i = 0; i < pl; i++) {
		sha512_update(&c, pw, pl);
	}
	sha512_final(&c, p);
	/* 17-20: DS = H(salt 16+A[0] times); S is its first sl bytes */
	sha512_init(&c);
	for (i = 0; i < 16u + a[0]; i++) {
		sha512_update(&c, set, sl);
	}
	sha512_final(&c, s);
	/* 21: the rounds */
	for (r = 0; r < rounds; r++) {
		sha512_init(&c);
		if (r & 1) {
			pwhash_rep(&c, p, pl);
		} else {
			sha512_update(&c, a, SHA512_LEN);
		}
		if (r % 3) {
			sha512_update(&c, s, sl);
		}
		if (r % 7) {
			pwhash_rep(&c, p, pl);
		}
		if (r & 1) {
			sha512_update(&c, a, SHA512_LEN);
		} else {
			pwhash_rep(&c, p, pl);
		}
		sha512_final(&c, a);
	}

	/* 22: "$6$[rounds=N$]salt$" then 86 chars */
	memcpy(o, "$6$", 3);
	o += 3;
	if (custom) {
		memcpy(o, "rounds=", 7);
		o += 7;
		for (k = 1, r = rounds; r >= 10; r /= 10) {
			k++;
		}
		for (i = k, r = rounds; i > 0; r /= 10) {
			o[--i] = (char)('0' + r % 10);
		}
		o += k;
		*o++ = '$';
	}
	memcpy(o, set, sl);
	o += sl;
	*o++ = '$';
	/* Bytes go out in triples (i, i+21, i+42) rotated left by i % 3,
	 * low 6 bits first; byte 63 alone last.  This is glibc's table. */
	for (i = 0; i < 22; i++) {
		if (i < 21) {
			w = (unsigned long)a[i + 21 * (i % 3)] << 16 |
			    (unsigned long)a[i + 21 * ((i + 1) % 3)] << 8 |
			    a[i + 21 * ((i + 2) % 3)];
		} else {
			w = a[63];
		}
		for (k = i < 21 ? 4 : 2; k > 0; k--) {
			*o++ = pwhash_b64[w & 63];
			w >>= 6;
		}
	}
	*o = '\0';

	pwhash_wipe(&c, sizeof(c));
	pwhash_wipe(a, sizeof(a));
	pwhash_wipe(p, sizeof(p));
	pwhash_wipe(s, sizeof(s));
	return 0;
}

/* see pwhash.h */
int pwhash_make(const char *pw, const char *salt, char *out, size_t outlen)
{
	char tmp[PWHASH_MAX];
	size_t n;

	if (outlen > 0) {
		out[0] = '\0';
	}
	if (!pw || !salt || pwhash_crypt(pw, salt, tmp) < 0) {
		return -1;
	}
	n = strlen(tmp);
	if (n >= outlen) {
		return -1;
	}
	memcpy(out, tmp, n + 1);
	return 0;
}

/* see pwhash.h */
int pwhash_check(const char *pw, const char *stored)
{
	char mine[PWHASH_MAX], want[PWHASH_MAX];
	unsigned char d = 0;
	size_t n = 0, i;
	int ok;

	memset(mine, 0, sizeof(mine));
	memset(want, 0, sizeof(want));
	ok = pw && stored && !strncmp(stored, "$6$", 3) &&
	    (n = strlen(stored)) < PWHASH_MAX;
	if (ok) {
		memcpy(want, stored, n);
	}
	if (!ok || pwhash_crypt(pw, stored, mine) < 0) {
		ok = 0;
		pwhash_crypt(pw ? pw : "", pwhash_dummy, mine);
	}
	/* Both strings are NUL-padded to PWHASH_MAX: equal buffers iff
	 * equal strings, and the loop never depends on the data. */
	for (i = 0; i < PWHASH_MAX; i++) {
		d |= (unsigned char)(mine[i] ^ want[i]);
	}
	pwhash_wipe(mine, sizeof(mine));
	return ok & (d == 0);
}

/* see pwhash.h */
void pwhash_salt(char *out, size_t n)
{
	static unsigned long ctr;
	struct sha512 c;
	unsigned char d[SHA512_LEN];
	unsigned long v[4];
	size_t got = 0, i;
	ssize_t m;
	int fd;

	if (n == 0) {
		return;
	}
	n--;
	fd = open("/dev/urandom", O_RDONLY);
	while (fd >= 0 && got < n) {
		m = read(fd, out + got, n - got);
		if (m < 0 && errno == EINTR) {
			continue;
		}
		if (m <= 0) {
			break;
		}
		got += (size_t)m;
	}
	if (fd >= 0) {
		close(fd);
	}
	/* Fallback, see pwhash.h.  The counter makes two salts made in the
	 * same second by the same process differ. */
	for (i = got; i < n; i++) {
		if ((i - got) % SHA512_LEN == 0) {
			v[0] = ++ctr;
			v[1] = (unsigned long)time(NULL);
			v[2] = (unsigned long)getpid();
			v[3] = (unsigned long)clock();
			sha512_init(&c);
			sha512_update(&c, v, sizeof(v));
			sha512_final(&c, d);
		}
		out[i] = (char)d[(i - got) % SHA512_LEN];
	}
	/* 64 chars: each byte's low 6 bits pick one uniformly */
	for (i = 0; i < n; i++) {
		out[i] = pwhash_b64[(unsigned char)out[i] & 63];
	}
	out[n] = '\0';
}

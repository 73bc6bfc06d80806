/* Tests for sha512.c and pwhash.c: FIPS 180 SHA-512 answers, the
 * SHA512-crypt vectors of Drepper's spec, check/make/salt behaviour, and
 * a cross-check against `openssl passwd -6` and `openssl dgst -sha512`
 * run at test time (dropped, with a SKIP line, when openssl is absent). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "t.h"
#include "sha512.h"
#include "pwhash.h"

static void hex(const unsigned char *d, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++) {
		sprintf(out + 2 * i, "%02x", d[i]);
	}
}

/* SHA-512 of n bytes of p, fed in chunks of step bytes, as hex */
static void sha_hex(const void *p, size_t n, size_t step, char out[129])
{
	struct sha512 c;
	unsigned char d[SHA512_LEN];
	const unsigned char *s = p;
	size_t k;

	sha512_init(&c);
	while (n > 0) {
		k = n < step ? n : step;
		sha512_update(&c, s, k);
		s += k;
		n -= k;
	}
	sha512_final(&c, d);
	hex(d, sizeof(d), out);
}

/* FIPS 180-2 appendix C */
static const char msg896[] = "abcdefghbcdefghicdefghijdefghijkefghijkl"
    "fghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrst"
    "nopqrstu";

static void sha512_empty(void)
{
	char h[129];

	sha_hex("", 0, 1, h);
	CHECK_STR(h, "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
	    "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e");
}

static void sha512_abc(void)
{
	char h[129];

	sha_hex("abc", 3, 3, h);
	CHECK_STR(h, "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
	    "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
}

static void sha512_two_blocks(void)
{
	static const char want[] =
	    "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018"
	    "501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909";
	char h[129];
	size_t step;

	CHECK_INT(strlen(msg896), 112);
	/* whole, byte by byte, and split across the 128-byte buffer */
	for (step = 1; step <= 112; step += 37) {
		sha_hex(msg896, 112, step, h);
		CHECK_STR(h, want);
	}
}

static void sha512_million_a(void)
{
	static unsigned char a[1000000];
	char h[129];

	memset(a, 'a', sizeof(a));
	sha_hex(a, sizeof(a), sizeof(a), h);
	CHECK_STR(h, "e718483d0ce769644e2e42c7bc15b4638e1f98b13b2044285632a803afa973eb"
	    "de0ff244877ea60a4cb0432ce577c31beb009c5c2c49aa2e4eadb217ad8cc09b");
	sha_hex(a, sizeof(a), 999, h);
	CHECK_STR(h, "e718483d0ce769644e2e42c7bc15b4638e1f98b13b2044285632a803afa973eb"
	    "de0ff244877ea60a4cb0432ce577c31beb009c5c2c49aa2e4eadb217ad8cc09b");
}

/* Ulrich Drepper, "Unix crypt using SHA-256 and SHA-512", SHA-512 test
 * vectors; the explicit rounds=5000 one is the first with the prefix
 * kept, as glibc's and libxcrypt's tests have it. */
static const struct {
	const char *salt, *pw, *want;
} spec[] = {
	{ "$6$saltstring", "Hello world!",
	  "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJu"
	  "esI68u4OTLiBFdcbYEdFCoEOfaS35inz1" },
	{ "$6$rounds=5000$saltstring", "Hello world!",
	  "$6$rounds=5000$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3"
	  "uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1" },
	{ "$6$rounds=10000$saltstringsaltstring", "Hello world!",
	  "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHb"
	  "bMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v." },
	{ "$6$rounds=5000$toolongsaltstring", "This is just a test",
	  "$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQ"
	  "zQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0" },
	{ "$6$rounds=1400$anotherlongsaltstring",
	  "a very much longer text to encrypt.  This one even stretches over more"
	  "than one line.",
	  "$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvM"
	  "xQ6Fm7I6IoYN3CmLs66x9t0oSwbtEW7o7UmJEiDwGqd8p4ur1" },
	{ "$6$rounds=77777$short",
	  "we have a short salt string but not a short password",
	  "$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0g"
	  "ge1a1x3yRULJ5CCaUeOxFmtlcGZelFl5CxtgfiAc0" },
	{ "$6$rounds=123456$asaltof16chars..", "a short string",
	  "$6$rounds=123456$asaltof16chars..$BtCwjqMJGx5hrJhZywWvt0RLE8uZ4oPw"
	  "celCjmw2kSYu.Ec6ycULevoBK25fs2xXgMNrCzIMVcgEJAstJeonj1" },
	{ "$6$rounds=10$roundstoolow", "the minimum number is still observed",
	  "$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1x"
	  "hLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX." },
};
#define NSPEC	(sizeof(spec) / sizeof(spec[0]))

static void crypt_spec(void)
{
	char out[PWHASH_MAX];
	size_t i;

	for (i = 0; i < NSPEC; i++) {
		CHECK_INT(pwhash_make(spec[i].pw, spec[i].salt, out, sizeof(out)), 0);
		CHECK_STR(out, spec[i].want);
	}
}

static void crypt_spec_check(void)
{
	size_t i;

	for (i = 0; i < NSPEC; i++) {
		CHECK_INT(pwhash_check(spec[i].pw, spec[i].want), 1);
	}
}

static void make_salt_forms(void)
{
	char a[PWHASH_MAX], b[PWHASH_MAX];

	/* "$6$" optional; text after the salt's '$' ignored */
	CHECK_INT(pwhash_make("Hello world!", "saltstring", a, sizeof(a)), 0);
	CHECK_STR(a, spec[0].want);
	CHECK_INT(pwhash_make("Hello world!", "saltstring$junk$x", b, sizeof(b)), 0);
	CHECK_STR(b, spec[0].want);
	CHECK_INT(pwhash_make("Hello world!", spec[0].want, b, sizeof(b)), 0);
	CHECK_STR(b, spec[0].want);
	CHECK_INT(pwhash_make("Hello world!", "rounds=5000$saltstring", b,
	    sizeof(b)), 0);
	CHECK_STR(b, spec[1].want);
	/* 16-char cap: the 17th char is dropped */
	CHECK_INT(pwhash_make("x", "abcdefghijklmnopq", a, sizeof(a)), 0);
	CHECK_INT(pwhash_make("x", "abcdefghijklmnop", b, sizeof(b)), 0);
	CHECK_STR(a, b);
	CHECK(!strncmp(a, "$6$abcdefghijklmnop$", 20));
	CHECK_INT(strlen(a), 3 + 16 + 1 + 86);
	/* empty salt and empty password are legal */
	CHECK_INT(pwhash_make("", "", a, sizeof(a)), 0);
	CHECK(!strncmp(a, "$6$$", 4));
	CHECK_INT(strlen(a), 4 + 86);
	CHECK_INT(pwhash_check("", a), 1);
	CHECK_INT(pwhash_check("x", a), 0);
	/* "rounds=" that does not parse is salt, and '=' is not allowed */
	CHECK_INT(pwhash_make("x", "rounds=$abc", a, sizeof(a)), -1);
	CHECK_INT(pwhash_make("x", "rounds=-5$abc", a, sizeof(a)), -1);
	CHECK_INT(pwhash_make("x", "rounds=12x$abc", a, sizeof(a)), -1);
	/* leading zeros parse; the output shows the clamped value */
	CHECK_INT(pwhash_make("x", "rounds=0001000$abc", a, sizeof(a)), 0);
	CHECK_INT(pwhash_make("x", "rounds=0$abc", b, sizeof(b)), 0);
	CHECK(!strncmp(a, "$6$rounds=1000$abc$", 19));
	CHECK_STR(a, b);
}

static void make_errors(void)
{
	char out[PWHASH_MAX];
	size_t n;

	CHECK_INT(pwhash_make("pw", "bad:salt", out, sizeof(out)), -1);
	CHECK_STR(out, "");
	CHECK_INT(pwhash_make("pw", "bad\nsalt", out, sizeof(out)), -1);
	CHECK_INT(pwhash_make("pw", "sp ace", out, sizeof(out)), -1);
	CHECK_INT(pwhash_make(NULL, "salt", out, sizeof(out)), -1);
	CHECK_INT(pwhash_make("pw", NULL, out, sizeof(out)), -1);
	/* bad chars past the 16 used ones do not matter */
	CHECK_INT(pwhash_make("pw", "0123456789abcdef:", out, sizeof(out)), 0);
	/* exact fit, one short, zero */
	n = strlen(spec[0].want) + 1;
	CHECK_INT(pwhash_make("Hello world!", "saltstring", out, n), 0);
	CHECK_STR(out, spec[0].want);
	memset(out, 'z', sizeof(out));
	CHECK_INT(pwhash_make("Hello world!", "saltstring", out, n - 1), -1);
	CHECK_STR(out, "");
	out[0] = 'z';
	CHECK_INT(pwhash_make("Hello world!", "saltstring", out, 0), -1);
	CHECK(out[0] == 'z');
}

static void check_false(void)
{
	CHECK_INT(pwhash_check("Hello world", spec[0].want), 0);
	CHECK_INT(pwhash_check("Hello world!!", spec[0].want), 0);
	CHECK_INT(pwhash_check("hello world!", spec[0].want), 0);
	CHECK_INT(pwhash_check("", spec[0].want), 0);
	CHECK_INT(pwhash_check("Hello world!", spec[3].want), 0);
	CHECK_INT(pwhash_check("This is just a test", spec[0].want), 0);
}

static void check_malformed(void)
{
	char s[PWHASH_MAX + 8];
	size_t n = strlen(spec[0].want);

	CHECK_INT(pwhash_check("Hello world!", NULL), 0);
	CHECK_INT(pwhash_check(NULL, spec[0].want), 0);
	CHECK_INT(pwhash_check(NULL, NULL), 0);
	CHECK_INT(pwhash_check("Hello world!", ""), 0);
	CHECK_INT(pwhash_check("Hello world!", "$6$"), 0);
	CHECK_INT(pwhash_check("Hello world!", "$6$saltstring"), 0);
	CHECK_INT(pwhash_check("Hello world!", "$6$saltstring$"), 0);
	CHECK_INT(pwhash_check("Hello world!", spec[0].want + 1), 0);
	CHECK_INT(pwhash_check("", "$6$$"), 0);
	CHECK_INT(pwhash_check("x", "*"), 0);
	CHECK_INT(pwhash_check("x", "!"), 0);
	CHECK_INT(pwhash_check("x", "$1$abc$def"), 0);
	CHECK_INT(pwhash_check("x", "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY"
	    "/GNooZaBBGWEc5"), 0);
	CHECK_INT(pwhash_check("x", "$6$sa:lt$abc"), 0);
	/* truncated, extended, last char changed */
	memcpy(s, spec[0].want, n + 1);
	s[n - 1] = '\0';
	CHECK_INT(pwhash_check("Hello world!", s), 0);
	s[n - 1] = spec[0].want[n - 1];
	s[n] = 'x';
	s[n + 1] = '\0';
	CHECK_INT(pwhash_check("Hello world!", s), 0);
	s[n] = '\0';
	s[n - 1] = s[n - 1] == '1' ? '2' : '1';
	CHECK_INT(pwhash_check("Hello world!", s), 0);
	/* too long for any valid hash */
	memset(s, 'a', sizeof(s) - 1);
	memcpy(s, "$6$", 3);
	s[sizeof(s) - 1] = '\0';
	CHECK_INT(pwhash_check("x", s), 0);
}

/* Unknown user / malformed entry must cost about what a wrong password
 * costs.  Loose bounds: this runs on loaded machines and under ASan. */
static long cpu_of(const char *pw, const char *stored, int n)
{
	clock_t t0 = clock();
	int i;

	for (i = 0; i < n; i++) {
		(void)pwhash_check(pw, stored);
	}
	return (long)(clock() - t0) + 1;	/* integers only: FPU-less MIPS */
}

static void check_timing(void)
{
	char h[PWHASH_MAX], s[PWHASH_SALT_LEN + 1];
	long wrong, unknown, bad;

	pwhash_salt(s, sizeof(s));
	CHECK_INT(pwhash_make("secret", s, h, sizeof(h)), 0);
	wrong = cpu_of("wrong", h, 6);
	unknown = cpu_of("wrong", NULL, 6);
	bad = cpu_of("wrong", "garbage", 6);
	CHECK(unknown > wrong / 3 && unknown < wrong * 3);
	CHECK(bad > wrong / 3 && bad < wrong * 3);
	if (t_fail) {
		printf("    cpu ticks: wrong %ld unknown %ld bad %ld\n",
		    wrong, unknown, bad);
	}
}

static void salt_gen(void)
{
	char a[PWHASH_SALT_LEN + 1], b[PWHASH_SALT_LEN + 1], big[300];
	size_t i;

	memset(a, 'x', sizeof(a));
	pwhash_salt(a, sizeof(a));
	CHECK_INT(strlen(a), PWHASH_SALT_LEN);
	CHECK_INT(strspn(a, "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz"), PWHASH_SALT_LEN);
	pwhash_salt(b, sizeof(b));
	CHECK(strcmp(a, b) != 0);
	a[0] = 'x';
	pwhash_salt(a, 0);
	CHECK(a[0] == 'x');
	pwhash_salt(a, 1);
	CHECK(a[0] == '\0');
	pwhash_salt(big, sizeof(big));
	CHECK_INT(strlen(big), sizeof(big) - 1);
	for (i = 0; i < sizeof(big) - 1; i++) {
		CHECK(strchr("./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "abcdefghijklmnopqrstuvwxyz", big[i]) != NULL);
	}
	/* a generated salt is accepted by make and round-trips */
	CHECK_INT(pwhash_make("pw", b, big, sizeof(big)), 0);
	CHECK_INT(pwhash_check("pw", big), 1);
}

static void wipe(void)
{
	unsigned char b[33];
	size_t i;

	memset(b, 0xa5, sizeof(b));
	pwhash_wipe(b + 1, 31);
	CHECK(b[0] == 0xa5 && b[32] == 0xa5);
	for (i = 1; i < 32; i++) {
		CHECK(b[i] == 0);
	}
}

/* Run cmd, read its first line without the newline; 0 on success. */
static int run_line(const char *cmd, char *out, size_t n)
{
	FILE *f = popen(cmd, "r");
	int st;

	out[0] = '\0';
	if (!f) {
		return -1;
	}
	if (!fgets(out, (int)n, f)) {
		out[0] = '\0';
	}
	st = pclose(f);
	out[strcspn(out, "\n")] = '\0';
	return st == 0 && out[0] ? 0 : -1;
}

static int have_openssl(void)
{
	char v[128];

	return run_line("openssl version 2>/dev/null", v, sizeof(v)) == 0 &&
	    !strncmp(v, "OpenSSL", 7);
}

static unsigned long rng;

static unsigned rnd(unsigned n)
{
	rng = rng * 1103515245UL + 12345UL;
	return (unsigned)((rng >> 16) % n);
}

/* Random passwords (printable, no quote, lengths 1..200 so P spans several
 * digests) and salts, some with rounds=, against `openssl passwd -6`. */
static void openssl_cross(void)
{
	char pw[201], salt[PWHASH_SALT_LEN + 24], cmd[600], want[256];
	char got[PWHASH_MAX], s[PWHASH_SALT_LEN + 1];
	int i, j, len;

	rng = (unsigned long)time(NULL);
	printf("    seed %lu\n", rng);
	for (i = 0; i < 24; i++) {
		/* 1..200 chars, salts 1..16: OpenSSL 3.0 prints "<NULL>"
		 * for an empty password or salt */
		len = 1 + (int)rnd(i < 12 ? 20 : 200);
		for (j = 0; j < len; j++) {
			do {
				pw[j] = (char)(' ' + rnd(95));
			} while (pw[j] == '\'');
		}
		pw[len] = '\0';
		pwhash_salt(s, 2 + rnd(PWHASH_SALT_LEN));
		if (i % 4 == 3) {
			snprintf(salt, sizeof(salt), "rounds=%u$%s",
			    1000 + rnd(3000), s);
		} else {
			snprintf(salt, sizeof(salt), "%s", s);
		}
		/* stdin, so a password starting with '-' is no option */
		snprintf(cmd, sizeof(cmd), "printf '%%s\\n' '%s' | "
		    "openssl passwd -6 -salt '%s' -stdin", pw, salt);
		CHECK_INT(run_line(cmd, want, sizeof(want)), 0);
		CHECK_INT(pwhash_make(pw, salt, got, sizeof(got)), 0);
		CHECK_STR(got, want);
		CHECK_INT(pwhash_check(pw, want), 1);
		if (t_fail) {
			printf("    cmd: %s\n", cmd);
			return;
		}
	}
}

/* SHA-512 padding boundaries (55..257 bytes) against `openssl dgst`. */
static void openssl_sha512(void)
{
	static const int lens[] = { 1, 55, 63, 64, 65, 110, 111, 112, 113,
	    127, 128, 129, 239, 240, 241, 255, 256, 257 };
	unsigned char buf[257];
	char path[] = "/tmp/test_pwhash.XXXXXX", cmd[128], want[256], h[129];
	size_t i;
	int fd;

	for (i = 0; i < sizeof(buf); i++) {
		buf[i] = (unsigned char)(i * 7 + 3);
	}
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		fd = mkstemp(path);
		CHECK(fd >= 0);
		if (fd < 0) {
			return;
		}
		CHECK(write(fd, buf, (size_t)lens[i]) == lens[i]);
		close(fd);
		snprintf(cmd, sizeof(cmd), "openssl dgst -sha512 -r %s", path);
		CHECK_INT(run_line(cmd, want, sizeof(want)), 0);
		unlink(path);
		memcpy(path + strlen(path) - 6, "XXXXXX", 6);
		want[strcspn(want, " ")] = '\0';
		sha_hex(buf, (size_t)lens[i], 50, h);
		CHECK_STR(h, want);
	}
}

static struct t_case tests[] = {
	T(sha512_empty),
	T(sha512_abc),
	T(sha512_two_blocks),
	T(sha512_million_a),
	T(crypt_spec),
	T(crypt_spec_check),
	T(make_salt_forms),
	T(make_errors),
	T(check_false),
	T(check_malformed),
	T(check_timing),
	T(salt_gen),
	T(wipe),
	T(openssl_cross),
	T(openssl_sha512),
	{ NULL, NULL }
};

int main(int argc, char **argv)
{
	size_t i, j;

	/* No openssl: drop its tests from the table so they neither pass
	 * nor fail, and say so. */
	if (!have_openssl()) {
		for (i = j = 0; tests[i].name; i++) {
			if (!strncmp(tests[i].name, "openssl_", 8)) {
				printf("SKIP %s (no openssl in PATH)\n",
				    tests[i].name);
			} else {
				tests[j++] = tests[i];
			}
		}
		tests[j] = tests[i];
	}
	return t_main(tests, argc, argv);
}

/* Password hashes: SHA512-crypt ("$6$"), the glibc algorithm by Ulrich
 * Drepper that `openssl passwd -6`, mkpasswd and Dovecot's SHA512-CRYPT
 * produce.  No malloc: the spec's P and S byte sequences are fed from their
 * 64-byte digests instead of being stored, so any password length works.
 *
 * Cost: 5000 rounds (the default) is roughly 5000 SHA-512 blocks for a
 * short password, and it grows with the password length, since P is hashed
 * three times per odd round; callers bound the password (the line length
 * does).  The work is done in one call: it holds the event loop for that
 * long. */
#ifndef PWHASH_H
#define PWHASH_H
#include <stddef.h>

/* Longest hash string plus its NUL:
 * "$6$" "rounds=999999999$" 16-char salt "$" 86-char hash. */
#define PWHASH_MAX	124
#define PWHASH_SALT_LEN	16	/* longest salt the algorithm uses */

/* Hash pw with salt into out as "$6$[rounds=N$]salt$hash".
 * salt is "[$6$][rounds=N$]chars[$...]": as in crypt(3), only the first 16
 * chars before a '$' are used, and "rounds=N$" with N clamped to
 * 1000..999999999 sets the cost (default 5000, written out only when given).
 * Salt chars must be from ./0-9A-Za-z.  out must hold outlen bytes;
 * PWHASH_MAX is always enough.
 * Returns 0, or -1 (out set to "" when outlen > 0) if pw or salt is NULL,
 * the salt has other chars, or outlen is too small. */
int pwhash_make(const char *pw, const char *salt, char *out, size_t outlen);

/* 1 if pw matches stored ("$6$[rounds=N$]salt$hash"), else 0.  The final
 * compare takes constant time.  A NULL or malformed stored (use NULL for an
 * unknown user) returns 0 after hashing pw with a fixed default-cost salt,
 * so it costs what a wrong password costs; entries with a custom rounds=N
 * cost more, which an attacker can see. */
int pwhash_check(const char *pw, const char *stored);

/* Fill out[0..n-2] with random salt chars from ./0-9A-Za-z read from
 * /dev/urandom, and set out[n-1] to NUL; nothing when n is 0.  Use
 * n = PWHASH_SALT_LEN + 1.  Without /dev/urandom (a chroot) it falls back
 * to hashing time, pid and a counter: a salt must be unique, not secret. */
void pwhash_salt(char *out, size_t n);

/* Zero n bytes at p in a way the compiler may not optimise away (there is
 * no explicit_bzero in uClibc-ng).  For passwords and derived secrets. */
void pwhash_wipe(void *p, size_t n);

#endif

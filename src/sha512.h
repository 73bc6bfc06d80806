/* SHA-512 (FIPS 180-4), small and portable: byte-wise loads and stores, so
 * no alignment or endianness assumptions; no malloc, no floating point.
 * Built for size, not speed: one rolled round loop and a 16-word schedule. */
#ifndef SHA512_H
#define SHA512_H
#include <stddef.h>
#include <stdint.h>
#include "config.h"

#define SHA512_LEN	64	/* digest bytes */

#if ENABLE_TLS
/* With TLS the binary carries BearSSL's SHA-512 anyway (the SHA-384 PRF,
 * certificates): the same API over it, one copy of the code (1.9 KB less
 * on MIPS). */
#include <bearssl_hash.h>
struct sha512 {
	br_sha512_context b;
};
#else
struct sha512 {
	uint64_t h[8];		/* chaining state */
	uint64_t len;		/* bytes hashed so far (up to 2^64-1) */
	unsigned char buf[128];	/* partial block; len % 128 bytes used */
};
#endif

/* Start a new digest.  A context may be reused after sha512_final by
 * calling this again. */
void sha512_init(struct sha512 *c);

/* Hash n bytes at p; p may be NULL when n is 0.  Any alignment is fine. */
void sha512_update(struct sha512 *c, const void *p, size_t n);

/* Finish and write the 64-byte digest to out.  The context then holds
 * padding state only and must be re-initialised before reuse.  It still
 * holds data derived from the input: callers hashing secrets wipe it. */
void sha512_final(struct sha512 *c, unsigned char out[SHA512_LEN]);

#endif

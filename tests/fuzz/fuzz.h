/* fuzz.h: shared bits of kotak's fuzz targets.
 *
 * Input layout of the streaming targets: byte 0 holds K = (byte & 15), the
 * number of chunk lengths in the next K bytes; the rest is the payload.
 * The payload is fed as chunks of those lengths (0 is allowed: an empty
 * push), then whatever is left in one piece. */
#ifndef FUZZ_H
#define FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FZ_MAXCUT 15

struct fz_split {
	size_t	 ncut;
	size_t	 len[FZ_MAXCUT];
	const uint8_t *p;	/* payload */
	size_t	 n;
};

/* 0, or -1 when the input is too short to hold its own header. */
static inline int
fz_split(const uint8_t *d, size_t n, struct fz_split *s)
{
	size_t i;

	if (n < 1)
		return -1;
	s->ncut = d[0] & 15;
	if (n < 1 + s->ncut)
		return -1;
	for (i = 0; i < s->ncut; i++)
		s->len[i] = d[1 + i];
	s->p = d + 1 + s->ncut;
	s->n = n - 1 - s->ncut;
	return 0;
}

/* Chunk number i (0..ncut) given off bytes already fed; its length. */
static inline size_t
fz_chunk(const struct fz_split *s, size_t i, size_t off)
{
	size_t left = s->n - off;

	if (i < s->ncut)
		return s->len[i] < left ? s->len[i] : left;
	return left;
}

#define FZ_ASSERT(x) do { \
	if (!(x)) { \
		fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #x); \
		abort(); \
	} \
} while (0)

#endif

/* fuzz_mboxquote.c: mbox_quote (src/mbox.c), streaming mboxrd quoting.
 *
 * Input: the fuzz.h chunk header, then the message body as the spool
 * holds it.  mbox_quote's contract: no line is longer than
 * CONFIG_DATA_LINE_MAX (data.c enforces it), and each call gets an output
 * buffer of 2n + DATA_LINE_MAX + 8 bytes, allocated here at exactly that
 * size so ASan sees any overrun.  Checks, for the fuzzer's chunks and for
 * one piece:
 * - the output plus what the state holds back equals a reference quoter
 *   (a '>' before every line matching ^>*From ), the same both ways;
 * - for a body of whole LF-ended lines nothing is held back at the end,
 *   and reversing mboxrd (drop one '>' from lines matching ^>+From )
 *   gives the input back. */
#include "kotak.h"
#include "fuzz.h"

struct qout {
	char	*p;
	size_t	 n;
	int	 st;
};

static void
quote_run(const char *in, size_t n, const struct fz_split *s, int split, struct qout *q)
{
	size_t off = 0, i = 0, k, o;
	char *out;

	q->p = malloc(2 * n + CONFIG_DATA_LINE_MAX + 16);
	FZ_ASSERT(q->p != NULL);
	q->n = 0;
	q->st = 0;
	for (;;) {
		k = split ? fz_chunk(s, i++, off) : n - off;
		out = malloc(2 * k + CONFIG_DATA_LINE_MAX + 8);
		FZ_ASSERT(out != NULL);
		o = mbox_quote(in + off, k, out, &q->st);
		FZ_ASSERT(o <= 2 * k + CONFIG_DATA_LINE_MAX + 8);
		memcpy(q->p + q->n, out, o);
		q->n += o;
		free(out);
		off += k;
		if (off == n && (!split || i > s->ncut))
			break;
	}
	/* the final call the queue makes */
	out = malloc(CONFIG_DATA_LINE_MAX + 8);
	FZ_ASSERT(out != NULL);
	o = mbox_quote("", 0, out, &q->st);
	FZ_ASSERT(o == 0);
	free(out);
}

/* What the state holds back: (st >> 3) '>' then (st & 7) bytes of "From ". */
static size_t
held(int st, char *out)
{
	size_t o = 0;
	int k;

	if (st < 0)
		return 0;
	FZ_ASSERT((st & 7) < 5);
	for (k = 0; k < (st >> 3); k++)
		out[o++] = '>';
	memcpy(out + o, "From ", st & 7);
	return o + (st & 7);
}

static int
matches(const char *l, size_t n, int min_gt)
{
	size_t i = 0;

	while (i < n && l[i] == '>')
		i++;
	return (int)i >= min_gt && n - i >= 5 && !memcmp(l + i, "From ", 5);
}

static size_t
ref_quote(const char *in, size_t n, char *out)
{
	size_t i = 0, o = 0, L;

	while (i < n) {
		const char *lf = memchr(in + i, '\n', n - i);
		L = lf ? (size_t)(lf - (in + i)) + 1 : n - i;
		if (matches(in + i, L, 0))
			out[o++] = '>';
		memcpy(out + o, in + i, L);
		o += L;
		i += L;
	}
	return o;
}

static size_t
ref_unquote(const char *in, size_t n, char *out)
{
	size_t i = 0, o = 0, L;

	while (i < n) {
		const char *lf = memchr(in + i, '\n', n - i);
		L = lf ? (size_t)(lf - (in + i)) + 1 : n - i;
		if (matches(in + i, L, 1))
			memcpy(out + o, in + i + 1, L - 1), o += L - 1;
		else
			memcpy(out + o, in + i, L), o += L;
		i += L;
	}
	return o;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_split s;
	struct qout q[2];
	const char *in;
	char *ref, *un;
	size_t n, i, line = 0, rn, h;
	int m;

	if (fz_split(data, size, &s) < 0)
		return 0;
	in = (const char *)s.p;
	n = s.n;
	for (i = 0; i < n; i++) {	/* the contract: lines of at most DATA_LINE_MAX */
		if (in[i] == '\n')
			line = 0;
		else if (++line > CONFIG_DATA_LINE_MAX)
			return 0;
	}
	ref = malloc(2 * n + 1);
	FZ_ASSERT(ref != NULL);
	rn = ref_quote(in, n, ref);
	for (m = 0; m < 2; m++) {
		quote_run(in, n, &s, m, &q[m]);
		h = held(q[m].st, q[m].p + q[m].n);
		if (q[m].n + h != rn || memcmp(q[m].p, ref, rn)) {
			fprintf(stderr, "mbox_quote (%s) differs from the reference quoter\n",
			    m ? "chunks" : "one piece");
			abort();
		}
	}
	FZ_ASSERT(q[0].n == q[1].n && q[0].st == q[1].st);
	if (n == 0 || in[n - 1] == '\n') {
		FZ_ASSERT(q[0].st == 0);
		un = malloc(q[0].n + 1);
		FZ_ASSERT(un != NULL);
		FZ_ASSERT(ref_unquote(q[0].p, q[0].n, un) == n && !memcmp(un, in, n));
		free(un);
	}
	free(ref);
	free(q[0].p);
	free(q[1].p);
	return 0;
}

/* fuzz_mime.c: the MIME push parser (src/mime.c) and the ENVELOPE /
 * BODYSTRUCTURE renderers (src/imap_mime.c).
 *
 * Input: the fuzz.h chunk header, then byte 0 of the payload picks the
 * block size (4 KiB .. 48 KiB) and whether the header-only mode runs too;
 * the rest is one stored message.  Checks:
 * - chunked = one piece: the same part table, byte for byte;
 * - a reference model of the size accounting: every part's header and
 *   body wire sizes and body line count equal a plain recount of its disk
 *   bytes (CRLF line ends, one '>' off ^>+From  lines judged on 64 bytes,
 *   an unterminated last line ended with CRLF), spans nest (hoff <= boff
 *   <= end, children inside their parent's body, pre-order), depth is
 *   bounded and steps by one, the parts fit the block;
 * - header-only mode agrees with the full parse on part 0's header;
 * - rendering fits the block's worst case and its parentheses balance
 *   outside strings and literals; a skip/room resume gives the same bytes. */
#include "kotak.h"
#include "mime.h"
#include "imap.h"
#include "fuzz.h"

static char blk[2][MIME_SLOT];

static void
run(struct mime *m, char *mem, size_t sz, const uint8_t *p, size_t n, const struct fz_split *s, int split, int hdr)
{
	size_t off = 0, i = 0, k;

	mime_init(m, mem, sz, hdr);
	for (;;) {
		k = split ? fz_chunk(s, i++, off) : n - off;
		if (mime_push(m, (const char *)p + off, k))
			break;
		off += k;
		if (off == n && (!split || i > s->ncut))
			break;
	}
	mime_end(m);
}

/* the reference count of disk bytes [a, b) of message p[0..n) */
static void
recount(const uint8_t *p, size_t n, size_t a, size_t b, uint64_t *wire, uint64_t *lines)
{
	size_t i = a, e;

	*wire = *lines = 0;
	while (i < b) {
		const uint8_t *lf = memchr(p + i, '\n', b - i);
		e = lf ? (size_t)(lf - p) + 1 : b;
		*wire += e - i - mailbox_quoted((const char *)p + i, e - i);
		if (lf)
			*wire += !(e - i >= 2 && p[e - 2] == '\r');
		else if (b == n)
			*wire += 2;
		*lines += lf || b == n;
		i = e;
	}
}

static void
check_bal(const char *o, size_t n)
{
	size_t i;
	long depth = 0;

	for (i = 0; i < n; i++) {
		if (o[i] == '"') {
			for (i++; i < n && o[i] != '"'; i++)
				i += o[i] == '\\';
		} else if (o[i] == '{') {
			size_t len = strtoul(o + i + 1, NULL, 10);
			const char *cr = memchr(o + i, '\n', n - i);
			FZ_ASSERT(cr != NULL);
			i = (size_t)(cr - o) + len;
		} else if (o[i] == '(') {
			depth++;
		} else if (o[i] == ')' && --depth < 0) {
			break;
		}
	}
	if (depth != 0) {
		fprintf(stderr, "unbalanced parentheses (%ld) in: %.*s\n", depth, (int)n, o);
		abort();
	}
}

static void
render_check(const struct mime *m)
{
	static char out[1 << 22], again[1 << 22];
	struct isink o = { out, sizeof(out), 0, 0, 0 };
	int what;

	for (what = 0; what < 2; what++) {
		size_t done = 0;
		o.p = out;
		o.room = sizeof(out);
		o.n = o.skip = 0;
		o.full = 0;
		if (what)
			imap_envelope(&o, m, 0);
		else
			imap_bodystructure(&o, m, 0, 1);
		FZ_ASSERT(!o.full);
		check_bal(out, o.n);
		/* resume in 97-byte rooms: the same bytes */
		while (done < o.n) {
			struct isink r = { again + done, 97, done, 0, 0 };
			if (what)
				imap_envelope(&r, m, 0);
			else
				imap_bodystructure(&r, m, 0, 1);
			FZ_ASSERT(r.n == o.n);
			done += 97 - r.room;
		}
		FZ_ASSERT(!memcmp(out, again, o.n));
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	static struct mime a, b, h;
	struct fz_split s;
	const uint8_t *p;
	size_t sz;
	uint32_t i, j;
	uint64_t w, l;
	int hdr;

	if (fz_split(d, n, &s) < 0 || s.n < 1)
		return 0;
	sz = 4096 + (s.p[0] & 7) * (MIME_SLOT - 4096) / 7;
	hdr = s.p[0] & 8;
	p = s.p + 1;
	n = s.n - 1;
	s.p = p;
	s.n = n;
	run(&a, blk[0], sz, p, n, &s, 1, 0);
	run(&b, blk[1], sz, p, n, &s, 0, 0);
	FZ_ASSERT(a.n == b.n && a.used == b.used && a.full == b.full);
	FZ_ASSERT(!memcmp(blk[0], blk[1], a.used));
	FZ_ASSERT(!memcmp(mime_part(&a, a.n - 1), mime_part(&b, b.n - 1), a.n * sizeof(struct mime_part)));
	FZ_ASSERT(a.used + a.n * sizeof(struct mime_part) <= a.size);
	for (i = 0; i < a.n; i++) {
		struct mime_part *q = mime_part(&a, i);
		FZ_ASSERT(q->hoff <= q->boff && q->boff <= q->end && q->end <= n);
		FZ_ASSERT(q->depth <= MIME_DEPTH);
		FZ_ASSERT(i == 0 ? q->depth == 0 : q->depth >= 1 && q->depth <= mime_part(&a, i - 1)->depth + 1);
		recount(p, n, q->hoff, q->boff, &w, &l);
		FZ_ASSERT(w == q->hsize);
		recount(p, n, q->boff, q->end, &w, &l);
		FZ_ASSERT(w == q->bsize);
		FZ_ASSERT(l == q->lines);
		for (j = i + 1; j < mime_next(&a, i); j++) {
			struct mime_part *c = mime_part(&a, j);
			FZ_ASSERT(c->hoff >= q->boff && c->end <= q->end);
		}
		if (i)
			FZ_ASSERT(q->hoff >= mime_part(&a, i - 1)->hoff);
	}
	FZ_ASSERT(mime_part(&a, 0)->end == n);
	if (hdr) {
		run(&h, blk[1], sz, p, n, &s, 1, 1);
		FZ_ASSERT(mime_part(&h, 0)->boff == mime_part(&a, 0)->boff);
		FZ_ASSERT(mime_part(&h, 0)->hsize == mime_part(&a, 0)->hsize);
		FZ_ASSERT(mime_part(&h, 0)->kind == mime_part(&a, 0)->kind);
	}
	render_check(&a);
	return 0;
}

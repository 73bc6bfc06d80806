/* fuzz_data.c: data_push (src/data.c), the DATA phase parser.
 *
 * Input: the fuzz.h chunk header, then one byte choosing the size limit
 * (bit 7: no practical limit, else (b & 127) * 4 bytes), then the bytes
 * the client sends after DATA.  The payload is pushed three ways (the
 * fuzzer's chunks, one piece, byte by byte) and each run must give the
 * same output file, end position, error and counters, and agree with a
 * line-level reference model of the spec in data.c's header comment:
 * - the end is the first line ".\r\n" right after a CRLF-ended line (or at
 *   the very start); a bare LF never precedes it;
 * - one leading dot is dropped from every line, CRLF and bare LF both
 *   become LF, a bare CR is content, a CR still pending at the end of the
 *   input is held back;
 * - in the header section Status, X-Status, X-UID, X-IMAP, X-IMAPbase,
 *   X-Keywords and Content-Length fields (and their continuation lines)
 *   are dropped, any number of blanks before the colon allowed (the name
 *   ends at a NUL, as a C string), Received: fields are counted; a line
 *   still undecided at the end of the input is written as far as it went;
 * - output stops at the first byte over the size or line limit. */
#include "kotak.h"
#include "fuzz.h"

#include <unistd.h>

static int ofd = -1;

struct run {
	long	 done_at;	/* bytes used up to and including the end marker, -1: none */
	unsigned char *out;
	size_t	 olen;
	struct data_rd d;
};

static void
push_all(const uint8_t *p, size_t n, const struct fz_split *s, int mode, long long max, struct run *r)
{
	size_t off = 0, i = 0, k, used;
	int done = 0;
	off_t sz;

	FZ_ASSERT(ftruncate(ofd, 0) == 0 && lseek(ofd, 0, SEEK_SET) == 0);
	data_start(&r->d, ofd, max);
	r->done_at = -1;
	while (off < n || (mode == 0 && i <= s->ncut)) {
		if (mode == 0)
			k = fz_chunk(s, i++, off);
		else if (mode == 1)
			k = n - off;
		else
			k = 1;
		used = data_push(&r->d, (const char *)p + off, k, &done);
		FZ_ASSERT(used <= k);
		FZ_ASSERT(done == 0 || done == 1);
		if (!done)
			FZ_ASSERT(used == k);
		else
			FZ_ASSERT(used >= 1);
		off += used;
		if (done) {
			r->done_at = (long)off;
			break;
		}
		if (mode == 0 && i > s->ncut && off == n)
			break;
	}
	sz = lseek(ofd, 0, SEEK_END);
	FZ_ASSERT(sz >= 0);
	r->olen = (size_t)sz;
	r->out = malloc(r->olen + 1);
	FZ_ASSERT(r->out != NULL);
	FZ_ASSERT(pread(ofd, r->out, r->olen, 0) == (ssize_t)r->olen);
}

/* ---- reference model */

static int
is_stripped(const unsigned char *name, size_t n)
{
	static const char *const strip[] = {
		"status", "x-status", "x-uid", "x-imap", "x-imapbase", "x-keywords", "content-length", NULL
	};
	int i;

	for (i = 0; strip[i]; i++)
		if (strlen(strip[i]) == n && !strncasecmp((const char *)name, strip[i], n))
			return 1;
	return 0;
}

/* The header filter over n content bytes (LF line ends); appends to out
 * (when non-NULL) and returns the Received: count. */
static int
ref_filter(const unsigned char *c, size_t n, unsigned char *out, size_t *olen)
{
	size_t i = 0, L, j;
	int in_hdr = 1, skip = 0, recv = 0, emit;

	while (i < n) {
		const unsigned char *line = c + i, *lf = memchr(line, '\n', n - i);
		L = lf ? (size_t)(lf - line) + 1 : n - i;
		emit = 0;
		if (!in_hdr) {
			emit = 1;
		} else if (lf && L == 1) {
			in_hdr = 0;
			emit = 1;
		} else if (line[0] == ' ' || line[0] == '\t') {
			emit = !skip;
		} else {
			/* the name: up to ':', maybe after blanks (obsolete
			 * syntax), however long */
			long nlen = -1;
			int decided = 0;

			for (j = 0; j < L && !decided; j++) {
				unsigned char ch = line[j];
				decided = 1;
				if (ch == ':') {
					/* data.c compares the name as a C string: a NUL
					 * in it ends the name ("Status\0x:" is dropped) */
					size_t nl = strnlen((const char *)line, nlen >= 0 ? (size_t)nlen : j);
					skip = is_stripped(line, nl);
					if (nl == 8 && !strncasecmp((const char *)line, "received", 8))
						recv++;
				} else if (ch == ' ' || ch == '\t') {
					if (nlen < 0)
						nlen = (long)j;
					decided = 0;
				} else if (ch != '\n' && nlen < 0) {
					decided = 0;
				}
				if (decided && ch != ':')
					skip = 0;
			}
			/* undecided at the end: written as far as it went */
			emit = decided ? !skip : 1;
		}
		if (emit && out) {
			memcpy(out + *olen, line, L);
			*olen += L;
		}
		i += L;
	}
	return recv;
}

struct ref {
	long	 done_at;
	unsigned char *out;
	size_t	 olen;
	long long size;
	int	 err, received;
};

static void
ref_run(const uint8_t *p, size_t n, long long max, struct ref *r)
{
	unsigned char *c = malloc(n + 1);
	size_t pos = 0, clen = 0, i, lim;
	int prev_crlf = 1;
	long linelen = 0;

	FZ_ASSERT(c != NULL);
	r->done_at = -1;
	while (pos < n) {
		const uint8_t *line = p + pos, *lf = memchr(line, '\n', n - pos);
		size_t L = lf ? (size_t)(lf - line) + 1 : n - pos, b = 0, e;
		int crlf;

		if (lf && L == 3 && line[0] == '.' && line[1] == '\r' && prev_crlf) {
			r->done_at = (long)(pos + 3);
			break;
		}
		e = lf ? L - 1 : L;	/* the line without its LF */
		if (e > 0 && line[0] == '.')
			b = 1;
		crlf = e > b && line[e - 1] == '\r';
		if (crlf)
			e--;		/* CRLF -> LF; at the end of the input: held back */
		memcpy(c + clen, line + b, e - b);
		clen += e - b;
		if (lf) {
			c[clen++] = '\n';
			prev_crlf = crlf;
		}
		pos += L;
	}
	/* first byte over a limit: line length, then size */
	r->err = DE_OK;
	lim = clen;
	for (i = 0; i < clen; i++) {
		if (c[i] == '\n')
			linelen = 0;
		else if (++linelen > CONFIG_DATA_LINE_MAX) {
			r->err = DE_LINE;
			lim = i;
			break;
		}
		if ((long long)i + 1 > max) {
			r->err = DE_SIZE;
			lim = i;
			break;
		}
	}
	r->size = (long long)clen;
	r->received = ref_filter(c, clen, NULL, NULL);
	r->out = malloc(clen + 1);
	FZ_ASSERT(r->out != NULL);
	r->olen = 0;
	ref_filter(c, lim, r->out, &r->olen);
	free(c);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_split s;
	struct run r[3];
	struct ref ref;
	long long max;
	int m;

	if (ofd < 0) {
		FILE *f = tmpfile();
		FZ_ASSERT(f != NULL);
		ofd = fileno(f);
	}
	if (fz_split(data, size, &s) < 0 || s.n < 1)
		return 0;
	max = (s.p[0] & 0x80) ? (1LL << 40) : (long long)(s.p[0] & 0x7f) * 4;
	s.p++, s.n--;

	for (m = 0; m < 3; m++)
		push_all(s.p, s.n, &s, m, max, &r[m]);
	ref_run(s.p, s.n, max, &ref);

	/* the end marker */
	if (r[0].done_at >= 0) {
		long e = r[0].done_at;
		FZ_ASSERT((e == 3 && !memcmp(s.p, ".\r\n", 3)) ||
		    (e >= 5 && !memcmp(s.p + e - 5, "\r\n.\r\n", 5)));
	}
	/* the same whichever way the input is cut */
	for (m = 1; m < 3; m++) {
		FZ_ASSERT(r[m].done_at == r[0].done_at);
		FZ_ASSERT(r[m].olen == r[0].olen && !memcmp(r[m].out, r[0].out, r[0].olen));
		FZ_ASSERT(r[m].d.err == r[0].d.err);
		FZ_ASSERT(r[m].d.size == r[0].d.size);
		FZ_ASSERT(r[m].d.received == r[0].d.received);
		FZ_ASSERT(r[m].d.written == r[0].d.written);
	}
	/* and as the reference model says */
	FZ_ASSERT(r[0].done_at == ref.done_at);
	FZ_ASSERT(r[0].d.err == ref.err);
	FZ_ASSERT(r[0].d.size == ref.size);
	FZ_ASSERT(r[0].d.received == ref.received);
	FZ_ASSERT(r[0].d.written == (long long)r[0].olen);
	if (r[0].olen != ref.olen || memcmp(r[0].out, ref.out, ref.olen)) {
		fprintf(stderr, "output differs from the reference: %zu vs %zu bytes\n", r[0].olen, ref.olen);
		abort();
	}
	for (m = 0; m < 3; m++)
		free(r[m].out);
	free(ref.out);
	return 0;
}

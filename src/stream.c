/*
 * stream.c: message bytes on their way to a client, for POP3 RETR/TOP
 * and IMAP BODY[...]<partial>: CRLF line ends, one '>' off mboxrd-quoted
 * lines, optional dot-stuffing, skip and limit in output octets.  Whole
 * lines only (or a piece of a line longer than the output room), read
 * straight from the mbox in pieces sized to the room left (or, in an
 * IMAP FETCH's burst, 16 KiB kept for the rest of that callback), so a
 * 20 MB message costs no more RAM than a NOOP and several readers share
 * no cache.  The output counts the way mailbox.c's scanner counts message
 * sizes, so RFC822.SIZE and an IMAP literal's announced length are exact.
 */
#include "kotak.h"
#include "folder.h"

#include <errno.h>
#include <string.h>

#define QCHK	64	/* as mailbox.c: quoting is judged on a line's first 64 bytes */

/* mstream_burst's bytes: [off, off + len) of message uid's content in
 * view v; eof: the content ends there. */
static struct {
	const struct view *v;
	uint64_t off;
	long	 len;
	uint32_t uid;
	uint8_t	 on, ok, eof;
	char	 b[MSTREAM_BURST];
} ra;

void
mstream_burst(int on)
{
	ra.on = on;
	ra.ok = 0;
}

/* view_read, served from the burst when one is on.  A short answer means
 * the end of the content, as view_read's. */
static long
rd(struct view *v, const struct vmsg *m, uint64_t off, char *buf, size_t n)
{
	long r;

	if (!ra.on || n > sizeof(ra.b))
		return view_read(v, m, off, buf, n);
	if (!ra.ok || ra.v != v || ra.uid != m->uid || off < ra.off || off > ra.off + ra.len ||
	    (off + n > ra.off + ra.len && !ra.eof)) {
		ra.ok = 0;
		if ((r = view_read(v, m, off, ra.b, sizeof(ra.b))) < 0)
			return r;
		ra.ok = 1;
		ra.v = v;
		ra.uid = m->uid;
		ra.off = off;
		ra.len = r;
		ra.eof = (size_t)r < sizeof(ra.b);
	}
	r = ra.off + ra.len - off < n ? (long)(ra.off + ra.len - off) : (long)n;
	memcpy(buf, ra.b + (off - ra.off), r);
	return r;
}

static int
start(struct mstream *s, struct view *v, const struct vmsg *m, int flags, long lines,
    uint64_t start, uint64_t end, uint64_t size, uint64_t skip, uint64_t limit, uint64_t *octets)
{
	memset(s, 0, sizeof(*s));
	s->m = *m;
	s->pos = start;
	s->end = end;
	s->flags = flags;
	s->lines = lines;
	s->bol = s->hdr = 1;
	s->skip = skip;
	s->left = skip >= size ? 0 : size - skip < limit ? size - skip : limit;
	if (flags & (MS_DOTS | MS_TOP))
		s->left = UINT64_MAX;	/* POP3: ends with the message */
	*octets = s->left == UINT64_MAX ? 0 : s->left;
	(void)v;
	return 0;
}

int
mstream_open(struct mstream *s, struct view *v, const struct vmsg *m, int flags, long lines,
    uint64_t skip, uint64_t limit, uint64_t *octets)
{
	start(s, v, m, flags, lines, 0, UINT64_MAX, m->size, skip, limit, octets);
	s->pad = 1;	/* a whole message: a last line without LF gets CRLF */
	return 0;
}

int
mstream_section(struct mstream *s, struct view *v, const struct vmsg *m, uint64_t a, uint64_t b,
    uint64_t octets, uint64_t skip, uint64_t limit, uint64_t *out)
{
	return start(s, v, m, 0, -1, a, b, octets, skip, limit, out);
}

/* Output bytes, after what skip drops and up to what left allows. */
static void
put(struct mstream *s, struct buf *o, const char *p, size_t n)
{
	if (s->skip) {
		size_t k = s->skip < n ? s->skip : n;
		s->skip -= k;
		p += k;
		n -= k;
	}
	if (n > s->left)
		n = s->left;
	buf_add(o, p, n);
	if (s->left != UINT64_MAX)
		s->left -= n;
}

int
mstream_send(struct mstream *s, struct view *v, struct buf *o)
{
	char rb[4096];
	size_t want, i, k, cl;
	const char *p, *e;
	long r;
	int q, bol, stop;

	for (;;) {
		if (s->left == 0)
			return 0;
		if (buf_room(o) < 80)	/* room for a line's first 64 bytes: quoting is judged on them */
			return 1;
		want = buf_room(o) - 3 < sizeof(rb) ? buf_room(o) - 3 : sizeof(rb);
		if (want > s->end - s->pos)
			want = s->end - s->pos;
		r = want ? rd(v, &s->m, s->pos, rb, want) : 0;
		if (r == -F_WAIT)
			return F_WAIT;
		if (r < 0)
			return -1;
		if (r == 0) {	/* the end of the content */
			if (!s->bol && s->pad) {
				put(s, o, "\r\n", 2);	/* a last line without LF */
				s->bol = 1;
			}
			if (s->left != UINT64_MAX && s->left && s->skip == 0)
				return errno = ESTALE, -1;	/* shorter than announced: changed under us */
			return 0;
		}
		for (i = stop = 0; i < (size_t)r && !stop; i += k) {
			p = rb + i;
			if ((e = memchr(p, '\n', r - i)) != NULL)
				k = e - p + 1;
			else if ((size_t)r < want)
				k = r - i;	/* the end of the content, without LF */
			else if (i == 0)
				k = r - (r > 1 && p[r - 1] == '\r');	/* a piece of a long line */
			else
				break;		/* read again from this line's start */
			cl = k - (e != NULL);
			if (e && cl && p[cl - 1] == '\r')
				cl--;
			if (buf_room(o) < cl + 3)
				break;
			bol = s->bol;
			q = bol && mailbox_quoted(p, k < QCHK ? k : QCHK);
			if (bol && cl && *p == '.' && (s->flags & MS_DOTS))
				buf_add(o, ".", 1);
			put(s, o, p + q, cl - q);
			s->bol = e != NULL;
			if (!s->bol)
				continue;
			put(s, o, "\r\n", 2);
			if ((s->flags & MS_TOP) && s->hdr)
				stop = bol && cl == 0 && !(s->hdr = 0) && s->lines == 0;
			else if (s->flags & MS_TOP)
				stop = --s->lines == 0;
		}
		s->pos += i;
		if (stop) {
			s->end = s->pos;
			s->left = 0;
			return 0;
		}
		if (i == 0)
			return 1;	/* the next line waits for room */
	}
}

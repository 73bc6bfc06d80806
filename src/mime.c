/*
 * mime.c: the MIME push parser and its cache of part tables (see mime.h).
 *
 * Line by line: the first MIME_LKEEP bytes of each line are buffered and
 * judged (blank line, header field name, continuation, boundary), the rest
 * only counted, or appended to the header value being captured.  As
 * Dovecot does, a boundary line is one that starts with "--" and a
 * boundary of any open multipart (the longest match, the innermost on a
 * tie); it closes every part below that multipart, and the line end before
 * it belongs to the boundary, not to the part (RFC 2046 5.1.1).  Parts and
 * sizes are known at the line that ends them, so the parser never looks
 * back.
 */
#include "kotak.h"
#include "mime.h"

#include <string.h>
#include <strings.h>

enum { S_HDR, S_BODY };
enum { A_NONE, A_HDREND, A_NEWPART };

static const char *const fname[HF_NUM] = {
	"content-type", "content-transfer-encoding", "content-disposition", "content-language",
	"content-id", "content-description", "content-location", "content-md5",
	"date", "subject", "from", "sender", "reply-to", "to", "cc", "bcc", "in-reply-to", "message-id"
};

struct mime_part *
mime_part(const struct mime *m, uint32_t i)
{
	return (struct mime_part *)(m->mem + m->size) - 1 - i;
}

void
mime_init(struct mime *m, void *mem, size_t size, int hdr_only)
{
	memset(m, 0, sizeof(*m));
	m->mem = mem;
	m->size = size & ~(size_t)7;
	m->hdr_only = hdr_only;
	m->n = 1;
	memset(mime_part(m, 0), 0, sizeof(struct mime_part));
	mime_part(m, 0)->msg = 1;
}

static int
room(const struct mime *m, size_t need)
{
	return m->used + need + (m->n + 1) * sizeof(struct mime_part) <= m->size;
}

/* A new part at depth d, its header starting here; -1 when the block is
 * full (from then on the rest of the message is body of the open part). */
static int
newpart(struct mime *m, unsigned d, int msg, int defmsg)
{
	struct mime_part *q;

	if (m->full || !room(m, 64)) {
		m->full = 1;
		return -1;
	}
	q = mime_part(m, m->n);
	memset(q, 0, sizeof(*q));
	q->hoff = q->boff = q->end = (uint32_t)m->dpos;
	q->depth = d;
	q->msg = msg;
	q->defmsg = defmsg;
	q->str = m->used;
	m->open[d] = m->n++;
	m->wh[d] = (uint32_t)m->wpos;
	m->depth = d;
	m->seen = 0;
	m->epi = 0;
	m->st = S_HDR;
	return 0;
}

/* Close the open part at depth d.  sub: its content ends before the
 * previous line's end (which belongs to the boundary), else at here. */
static void
close_one(struct mime *m, unsigned d, int sub, uint32_t here)
{
	struct mime_part *q = mime_part(m, m->open[d]);
	uint32_t w = (uint32_t)m->wpos - 2 * sub, l = (uint32_t)m->lno - sub;
	uint32_t e = sub ? m->pend : here;

	if (m->st == S_HDR && d == m->depth) {	/* the header never ended */
		q->hsize = w - m->wh[d];
		q->boff = q->end = e;
		return;
	}
	q->end = e;
	q->bsize = w - m->wb[d];
	q->lines = l - m->lb[d];
}

/* Captured value bytes; a CR is held back until we know no LF follows. */
static void
append(struct mime *m, const char *p, size_t n)
{
	size_t k, i;

	if (!n)
		return;
	for (i = m->capcr ? 0 : 1; i < 2; i++) {	/* a CR held back, then p */
		const char *s = i ? p : "\r";
		size_t len = i ? n : 1;
		if (i && p[n - 1] == '\r')
			len--;
		k = MIME_FIELD - m->caplen;
		if (k > len)
			k = len;
		if (m->used + k > m->size * 3 / 4 || !room(m, k))
			k = 0;
		memcpy(m->mem + m->used, s, k);
		m->used += k;
		m->caplen += k;
	}
	m->capcr = p[n - 1] == '\r';
	m->mem[m->cap + 1] = m->caplen >> 8;
	m->mem[m->cap + 2] = m->caplen & 0xff;
}

static void
end_capture(struct mime *m)
{
	struct mime_part *q = mime_part(m, m->open[m->depth]);

	if (m->capturing)
		q->nstr = m->used - q->str;
	m->capturing = m->capcr = 0;
}

static void
boundary(struct mime *m, int k, int close)
{
	uint32_t mp = m->lvl[k].part;
	unsigned dm = mime_part(m, mp)->depth, d;
	struct mime_part *q;
	int sub;

	end_capture(m);
	/* The line end before a boundary is the boundary's, unless the
	 * innermost part has nothing there (an empty header or body) or is
	 * an epilogue (as Dovecot counts); its parents end where it ends. */
	q = mime_part(m, m->open[m->depth]);
	sub = !m->epi && m->lstart > (m->st == S_HDR ? q->hoff : q->boff);
	for (d = m->depth; d > dm; d--) {
		close_one(m, d, sub, m->lstart);	/* wpos, lno: still at the line start */
		m->st = S_BODY;
	}
	m->depth = dm;
	m->st = S_BODY;
	m->nlvl = k + !close;
	m->epi = close;
	if (!close)
		m->act = A_NEWPART;
}

/* The start of a line is buffered (or the line ended): judge it. */
static void
decide(struct mime *m)
{
	const char *l = m->line;
	unsigned ll = m->ll, i, len;
	int best = -1, f;

	m->decided = 1;
	m->quoted = mailbox_quoted(l, ll);
	m->vstart = ll;
	if (!m->full && m->nlvl && ll >= 2 && l[0] == '-' && l[1] == '-') {
		for (i = m->nlvl; i-- > 0;)
			if (m->lvl[i].len <= ll - 2 && !memcmp(m->lvl[i].b, l + 2, m->lvl[i].len) &&
			    (best < 0 || m->lvl[i].len > m->lvl[best].len))
				best = i;
		if (best >= 0) {
			len = m->lvl[best].len;
			boundary(m, best, ll >= len + 4 && l[len + 2] == '-' && l[len + 3] == '-');
			return;
		}
	}
	if (m->st != S_HDR)
		return;
	if (ll == 0 || (ll == 1 && l[0] == '\r' && m->eol)) {
		end_capture(m);
		m->act = A_HDREND;
		return;
	}
	if (l[0] == ' ' || l[0] == '\t') {
		m->vstart = 0;	/* a folded line: the value goes on, after an LF */
		if (m->capturing)
			append(m, "\n", 1);
		return;
	}
	end_capture(m);
	for (i = 0; i < ll && l[i] != ':'; i++)
		;
	if (i == ll)
		return;	/* no colon (or a name too long to be ours): not a field we keep */
	len = i;
	while (len > 0 && (l[len - 1] == ' ' || l[len - 1] == '\t'))
		len--;
	for (f = 0; f < HF_NUM; f++)
		if (strlen(fname[f]) == len && !strncasecmp(fname[f], l, len))
			break;
	if (f == HF_NUM || (m->seen & (1u << f)) || (f >= HF_ENV0 && !mime_part(m, m->open[m->depth])->msg) ||
	    m->used + 3 > m->size * 3 / 4 || !room(m, 3))
		return;
	m->seen |= 1u << f;
	m->cap = m->used;
	m->mem[m->used++] = f;
	m->mem[m->used++] = 0;
	m->mem[m->used++] = 0;
	m->caplen = 0;
	m->capturing = 1;
	m->vstart = i + 1;
}

static void
hdr_end(struct mime *m)
{
	uint32_t pi = m->open[m->depth];
	struct mime_part *q = mime_part(m, pi);
	unsigned d = m->depth;
	char type[16], sub[16], name[16], val[MIME_BOUNDARY + 1];
	const char *p, *e;
	size_t n;

	q->boff = q->end = (uint32_t)m->dpos;
	q->hsize = (uint32_t)m->wpos - m->wh[d];
	m->wb[d] = (uint32_t)m->wpos;
	m->lb[d] = (uint32_t)m->lno;
	m->st = S_BODY;
	mime_type(m, pi, type, sub, sizeof(type));
	if (!strcmp(type, "multipart")) {
		q->kind = MK_MULTI;
		q->digest = !strcmp(sub, "digest");
		if ((p = mime_field(m, pi, HF_CTYPE, &n)) == NULL || m->nlvl >= MIME_DEPTH || d >= MIME_DEPTH)
			goto out;
		e = p + n;
		while (mime_param(&p, e, name, sizeof(name), val, sizeof(val)))
			if (!strcasecmp(name, "boundary") && val[0] && strlen(val) <= MIME_BOUNDARY) {
				m->lvl[m->nlvl].part = pi;
				m->lvl[m->nlvl].len = strlen(val);
				memcpy(m->lvl[m->nlvl++].b, val, strlen(val));
				break;
			}
	} else if (!strcmp(type, "message") && !strcmp(sub, "rfc822")) {
		q->kind = MK_MSG;
		if (d < MIME_DEPTH)
			newpart(m, d + 1, 1, 0);
	} else {
		q->kind = !strcmp(type, "text") ? MK_TEXT : MK_OTHER;
	}
out:
	if (m->hdr_only && pi == 0)
		m->done = 1;
}

/* The line ended (terminated: by LF, cr: CRLF). */
static void
line_end(struct mime *m, int terminated, int cr)
{
	uint32_t L = (uint32_t)(m->dpos - m->lstart);
	int act = m->act;

	if (!m->decided)
		decide(m);
	m->wpos += terminated ? L + !cr - m->quoted : L + 2 - m->quoted;
	m->lno++;
	m->pend = terminated ? (uint32_t)m->dpos - 1 - cr : (uint32_t)m->dpos;
	m->lstart = (uint32_t)m->dpos;
	m->ll = m->decided = m->act = 0;
	m->capcr = 0;
	if (act == A_HDREND) {
		hdr_end(m);
	} else if (act == A_NEWPART) {
		struct mime_part *mp = mime_part(m, m->open[m->depth]);
		newpart(m, m->depth + 1, 0, mp->digest);
	}
}

int
mime_push(struct mime *m, const char *p, size_t n)
{
	const char *lf;
	size_t k, body, c;
	int eol;

	while (n > 0 && !m->done) {
		lf = memchr(p, '\n', n);
		eol = lf != NULL;
		k = eol ? (size_t)(lf - p) + 1 : n;
		body = k - eol;
		m->eol = eol;
		c = 0;
		if (!m->decided) {
			c = MIME_LKEEP - m->ll;
			if (c > body)
				c = body;
			memcpy(m->line + m->ll, p, c);
			m->ll += c;
			if (m->ll == MIME_LKEEP || eol) {
				decide(m);
				if (m->capturing)
					append(m, m->line + m->vstart, m->ll - m->vstart);
			}
		}
		if (m->capturing)
			append(m, p + c, body - c);
		if (body)
			m->prevcr = p[body - 1] == '\r';
		else if (m->dpos == m->lstart)
			m->prevcr = 0;
		m->dpos += k;
		if (eol)
			line_end(m, 1, m->prevcr);
		p += k;
		n -= k;
	}
	return m->done;
}

void
mime_end(struct mime *m)
{
	int d;

	if (m->done)
		return;
	m->eol = 1;
	if (m->dpos > m->lstart) {
		if (!m->decided) {
			decide(m);
			if (m->capturing)
				append(m, m->line + m->vstart, m->ll - m->vstart);
		}
		line_end(m, 0, 0);	/* the streamer ends such a line with CRLF */
	}	/* the streamer ends such a line with CRLF */
	end_capture(m);
	for (d = m->depth; d >= 0; d--) {
		close_one(m, d, 0, (uint32_t)m->dpos);
		m->st = S_BODY;
	}
	m->done = 1;
}

const char *
mime_field(const struct mime *m, uint32_t i, int f, size_t *n)
{
	const struct mime_part *q = mime_part(m, i);
	const unsigned char *p = (const unsigned char *)m->mem + q->str, *e = p + q->nstr;

	for (; p + 3 <= e; p += 3 + (p[1] << 8 | p[2]))
		if (p[0] == f) {
			*n = p[1] << 8 | p[2];
			return (const char *)p + 3;
		}
	return NULL;
}

uint32_t
mime_next(const struct mime *m, uint32_t i)
{
	uint32_t j = i + 1;

	while (j < m->n && mime_part(m, j)->depth > mime_part(m, i)->depth)
		j++;
	return j;
}

/* Blanks and RFC 5322 comments (nested, with quoted pairs). */
static void
skip_cfws(const char **pp, const char *e)
{
	const char *p = *pp;
	int depth = 0;

	for (; p < e; p++) {
		if (depth) {
			if (*p == '\\' && p + 1 < e)
				p++;
			else if (*p == '(')
				depth++;
			else if (*p == ')')
				depth--;
		} else if (*p == '(') {
			depth++;
		} else if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
			break;
		}
	}
	*pp = p;
}

int
mime_token(const char **pp, const char *e, char *out, size_t max, const char *stop)
{
	const char *p;
	size_t n = 0;

	skip_cfws(pp, e);
	p = *pp;
	if (p < e && *p == '"') {
		for (p++; p < e && *p != '"'; p++) {
			if (*p == '\\' && p + 1 < e)
				p++;
			if (n + 1 < max)
				out[n++] = *p;
		}
		*pp = p + (p < e);
		out[n] = '\0';
		return (int)n;
	}
	for (; p < e && (unsigned char)*p > ' ' && *p != '(' && !strchr(stop, *p); p++)
		if (n + 1 < max)
			out[n++] = *p;
	*pp = p;
	out[n] = '\0';
	return p == *pp && n == 0 ? -1 : (int)n;
}

int
mime_param(const char **pp, const char *e, char *name, size_t nmax, char *val, size_t vmax)
{
	for (;;) {
		skip_cfws(pp, e);
		while (*pp < e && **pp != ';')
			(*pp)++;	/* junk after the last value */
		if (*pp >= e)
			return 0;
		(*pp)++;
		if (mime_token(pp, e, name, nmax, ";=") <= 0)
			continue;
		skip_cfws(pp, e);
		if (*pp >= e || **pp != '=')
			continue;
		(*pp)++;
		if (mime_token(pp, e, val, vmax, ";") < 0)
			val[0] = '\0';
		return 1;
	}
}

void
mime_type(const struct mime *m, uint32_t i, char *type, char *sub, size_t max)
{
	size_t n = 0, k;
	const char *p = mime_field(m, i, HF_CTYPE, &n), *e = p ? p + n : NULL;

	if (p && mime_token(&p, e, type, max, "/;") > 0 && (skip_cfws(&p, e), p < e && *p == '/') &&
	    (p++, mime_token(&p, e, sub, max, ";") > 0)) {
		for (k = 0; type[k]; k++)
			type[k] = type[k] >= 'A' && type[k] <= 'Z' ? type[k] + 32 : type[k];
		for (k = 0; sub[k]; k++)
			sub[k] = sub[k] >= 'A' && sub[k] <= 'Z' ? sub[k] + 32 : sub[k];
		return;
	}
	strlcpy_k(type, mime_part(m, i)->defmsg ? "message" : "text", max);
	strlcpy_k(sub, mime_part(m, i)->defmsg ? "rfc822" : "plain", max);
}

/* ---- the cache */

static struct {
	struct mime m;
	struct mime_key k;
	uint32_t lru;
	uint8_t	 st;	/* 0 free, 1 being filled, 2 header only, 3 whole */
} slot[MIME_SLOTS];
static char mem[MIME_SLOTS][MIME_SLOT];
static uint32_t tick;

struct mime *
mime_cache_get(const struct mime_key *k, int hdr_only)
{
	int i;

	for (i = 0; i < MIME_SLOTS; i++)
		if (slot[i].st >= 3 - hdr_only && !memcmp(&slot[i].k, k, sizeof(*k))) {
			slot[i].lru = ++tick;
			return &slot[i].m;
		}
	return NULL;
}

struct mime *
mime_cache_fill(const struct mime_key *k, int hdr_only)
{
	int i, best = -1;

	for (i = 0; i < MIME_SLOTS; i++)
		if (slot[i].st != 1 && (best < 0 || slot[i].lru < slot[best].lru))
			best = i;
	if (best < 0)
		return NULL;
	slot[best].k = *k;
	slot[best].st = 1;
	slot[best].lru = ++tick;
	mime_init(&slot[best].m, mem[best], MIME_SLOT, hdr_only);
	return &slot[best].m;
}

void
mime_cache_done(struct mime *m, int ok)
{
	int i;

	for (i = 0; i < MIME_SLOTS; i++)
		if (&slot[i].m == m)
			slot[i].st = ok ? 3 - m->hdr_only : 0;
}

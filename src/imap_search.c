/*
 * imap_search.c: SEARCH keys (RFC 3501 6.4.4).  The program stays text in
 * the command buffer: one walker checks it, evaluates it for a message
 * (three-valued: a text key not scanned yet is "unknown", so a message
 * that fails on its flags is never read), or collects its text keys for
 * the scanner.  The scanner looks for every text key in one pass over a
 * message's stored bytes, in slices the caller reads.  See imap.h for
 * what is not decoded.
 */
#include "kotak.h"
#include "imap.h"
#include "folder.h"

#include <limits.h>
#include <string.h>
#include <strings.h>

#define SEARCH_DEPTH	16	/* nested NOT, OR and parentheses */
#define FIELD_MAX	64	/* header field names compared */

enum { SK_ALL, SK_FLAG, SK_UNFLAG, SK_NEW, SK_KW, SK_UNKW, SK_DATE, SK_SDATE, SK_LARGER,
	SK_SMALLER, SK_UID, SK_NOT, SK_OR, SK_FIELD, SK_HEADER, SK_BODY, SK_TEXT };
/* date comparisons: arg of SK_DATE and SK_SDATE */
enum { D_BEFORE, D_ON, D_SINCE };

static const struct {
	const char *name;
	uint8_t	 op, arg;
} skeys[] = {
	{ "ALL", SK_ALL, 0 },
	{ "ANSWERED", SK_FLAG, MF_ANSWERED }, { "DELETED", SK_FLAG, MF_DELETED },
	{ "DRAFT", SK_FLAG, MF_DRAFT }, { "FLAGGED", SK_FLAG, MF_FLAGGED },
	{ "SEEN", SK_FLAG, MF_SEEN }, { "RECENT", SK_FLAG, MF_RECENT },
	{ "UNANSWERED", SK_UNFLAG, MF_ANSWERED }, { "UNDELETED", SK_UNFLAG, MF_DELETED },
	{ "UNDRAFT", SK_UNFLAG, MF_DRAFT }, { "UNFLAGGED", SK_UNFLAG, MF_FLAGGED },
	{ "UNSEEN", SK_UNFLAG, MF_SEEN }, { "OLD", SK_UNFLAG, MF_RECENT }, { "NEW", SK_NEW, 0 },
	{ "KEYWORD", SK_KW, 0 }, { "UNKEYWORD", SK_UNKW, 0 },
	{ "BEFORE", SK_DATE, D_BEFORE }, { "ON", SK_DATE, D_ON }, { "SINCE", SK_DATE, D_SINCE },
	{ "SENTBEFORE", SK_SDATE, D_BEFORE }, { "SENTON", SK_SDATE, D_ON },
	{ "SENTSINCE", SK_SDATE, D_SINCE },
	{ "LARGER", SK_LARGER, 0 }, { "SMALLER", SK_SMALLER, 0 }, { "UID", SK_UID, 0 },
	{ "NOT", SK_NOT, 0 }, { "OR", SK_OR, 0 },
	{ "FROM", SK_FIELD, 0 }, { "TO", SK_FIELD, 0 }, { "CC", SK_FIELD, 0 }, { "BCC", SK_FIELD, 0 },
	{ "SUBJECT", SK_FIELD, 0 }, { "HEADER", SK_HEADER, 0 }, { "BODY", SK_BODY, 0 },
	{ "TEXT", SK_TEXT, 0 },
};

enum { W_CHECK, W_EVAL, W_KEYS };

/* The text keys of a program, for the scanner: rebuilt for each slice. */
enum { KK_FIELD, KK_BODY, KK_TEXT };
static struct skey {
	uint8_t	 kind;
	uint16_t nlen, flen;
	const char *needle, *field;
	const uint16_t *fail;
} keys[SEARCH_TEXT_MAX];
static unsigned nkeys;
static char kbuf[CONFIG_IMAP_LINE_MAX + 1];	/* needles (lower case) and field names */
static uint16_t kfail[CONFIG_IMAP_LINE_MAX + 1];
static size_t kused;

struct swalk {
	int	 mode, depth;
	unsigned ntext;
	int	 dates;
	const struct smsg *m;
};

static int and3(int a, int b) { return a == 0 || b == 0 ? 0 : a == 2 || b == 2 ? 2 : 1; }
static int or3(int a, int b) { return a == 1 || b == 1 ? 1 : a == 2 || b == 2 ? 2 : 0; }

/* An astring: for W_KEYS into kbuf (lower case with lc); else skipped. */
static const char *
str(struct icur *a, struct swalk *w, size_t *n, int lc)
{
	char *o = kbuf + kused;
	int k;
	size_t i;

	if (w->mode != W_KEYS)
		return imap_astring(a, NULL, 0) < 0 ? NULL : "";
	if ((k = imap_astring(a, o, sizeof(kbuf) - kused)) < 0)
		return NULL;
	for (i = 0; lc && i < (size_t)k; i++)
		o[i] = o[i] >= 'A' && o[i] <= 'Z' ? o[i] | 0x20 : o[i];
	kused += k + 1;
	*n = k;
	return o;
}

static int
textkey(struct icur *a, struct swalk *w, int kind, const char *field, size_t flen)
{
	struct skey *k = &keys[w->ntext];
	const char *s;
	size_t n = 0;

	if (w->ntext >= SEARCH_TEXT_MAX || (s = str(a, w, &n, 1)) == NULL)
		return -1;
	if (w->mode == W_KEYS) {
		k->kind = kind;
		k->field = field;
		k->flen = flen;
		k->needle = s;
		k->nlen = n;
	}
	w->ntext++;
	if (w->mode != W_EVAL)
		return 1;
	return w->m->known & 1u << (w->ntext - 1) ? !!(w->m->found & 1u << (w->ntext - 1)) : 2;
}

static int keylist(struct icur *, struct swalk *, int paren);

static int key(struct icur *, struct swalk *);

/* One search key: its value (0, 1, 2 unknown), -1 on a syntax error. */
static int
key1(struct icur *a, struct swalk *w)
{
	const struct smsg *m = w->m;
	char name[16], kw[FOLDER_KW_LEN];
	struct iset set;
	uint32_t v, hi;
	long d;
	unsigned i;
	int r, x, bit;
	const char *f;
	size_t fl = 0;

	if (a->err || a->p >= a->e)
		return -1;
	if (*a->p == '(') {
		a->p++;
		return keylist(a, w, 1);
	}
	if ((*a->p >= '0' && *a->p <= '9') || *a->p == '*') {
		if (imap_set(a, &set) < 0)
			return -1;
		if (w->mode != W_EVAL)
			return 1;
		iset_star(&set, m->mstar);
		return iset_next(&set, m->msn, &v, &hi) && v == m->msn;
	}
	if (imap_atom(a, name, sizeof(name)) < 0)
		return -1;
	for (i = 0; i < sizeof(skeys) / sizeof(skeys[0]) && strcasecmp(name, skeys[i].name); i++)
		;
	if (i == sizeof(skeys) / sizeof(skeys[0]))
		return -1;
	if (skeys[i].op != SK_ALL && skeys[i].op != SK_FLAG && skeys[i].op != SK_UNFLAG &&
	    skeys[i].op != SK_NEW && imap_sp(a) < 0)
		return -1;
	switch (skeys[i].op) {
	case SK_ALL:
		return 1;
	case SK_FLAG:
	case SK_UNFLAG:
		return w->mode != W_EVAL || !(m->flags & skeys[i].arg) == (skeys[i].op == SK_UNFLAG);
	case SK_NEW:
		return w->mode != W_EVAL || (m->flags & (MF_RECENT | MF_SEEN)) == MF_RECENT;
	case SK_KW:
	case SK_UNKW:
		if (imap_atom(a, kw, sizeof(kw)) < 0)
			return -1;
		if (w->mode != W_EVAL)
			return 1;
		bit = m->keyword ? m->keyword(m->arg, kw) : -1;
		return (bit >= 0 && (m->flags & MF_KW(bit))) == (skeys[i].op == SK_KW);
	case SK_DATE:
	case SK_SDATE:
		if (imap_date(a, &d) < 0)
			return -1;
		w->dates |= skeys[i].op == SK_DATE ? SD_INTERNAL : SD_SENT;
		if (w->mode != W_EVAL)
			return 1;
		if (skeys[i].op == SK_SDATE && !m->sknown)
			return 2;
		x = skeys[i].op == SK_DATE ? m->iday != LONG_MIN : m->sday != LONG_MIN;
		r = skeys[i].op == SK_DATE ? (m->iday > d) - (m->iday < d) : (m->sday > d) - (m->sday < d);
		return x && (skeys[i].arg == D_BEFORE ? r < 0 : skeys[i].arg == D_ON ? r == 0 : r >= 0);
	case SK_LARGER:
	case SK_SMALLER:
		if (imap_number(a, &v) < 0)
			return -1;
		return w->mode != W_EVAL || (skeys[i].op == SK_LARGER ? m->size > v : m->size < v);
	case SK_UID:
		if (imap_set(a, &set) < 0)
			return -1;
		if (w->mode != W_EVAL)
			return 1;
		iset_star(&set, m->ustar);
		return iset_next(&set, m->uid, &v, &hi) && v == m->uid;
	case SK_NOT:
		r = key(a, w);
		return r < 0 ? -1 : r == 2 ? 2 : !r;
	case SK_OR:
		if ((r = key(a, w)) < 0 || imap_sp(a) < 0 || (x = key(a, w)) < 0)
			return -1;
		return or3(r, x);
	case SK_FIELD:
		return textkey(a, w, KK_FIELD, skeys[i].name, strlen(skeys[i].name));
	case SK_HEADER:
		if ((f = str(a, w, &fl, 0)) == NULL || imap_sp(a) < 0)
			return -1;
		return textkey(a, w, KK_FIELD, f, fl);
	case SK_BODY:
		return textkey(a, w, KK_BODY, NULL, 0);
	default:
		return textkey(a, w, KK_TEXT, NULL, 0);
	}
}

static int
key(struct icur *a, struct swalk *w)
{
	int r = ++w->depth > SEARCH_DEPTH ? -1 : key1(a, w);

	w->depth--;
	return r;
}

/* Keys separated by spaces, all of which must match (AND), up to the
 * end or, with paren, up to its ')'. */
static int
keylist(struct icur *a, struct swalk *w, int paren)
{
	int r = 1, k;

	for (;;) {
		if ((k = key(a, w)) < 0)
			return -1;
		r = and3(r, k);
		if (a->p < a->e && *a->p == ' ') {
			a->p++;
			continue;
		}
		if (!paren)
			return a->p == a->e ? r : -1;
		if (a->p < a->e && *a->p == ')') {
			a->p++;
			return r;
		}
		return -1;
	}
}

static int
walk(struct icur *prog, struct swalk *w)
{
	struct icur a = *prog;
	int r;

	kused = 0;
	r = keylist(&a, w, 0);
	if (r < 0)
		prog->err = 1;
	return r;
}

int
imap_search_check(struct icur *a, unsigned *ntext, int *dates)
{
	struct swalk w = { W_CHECK, 0, 0, 0, NULL };

	if (walk(a, &w) < 0)
		return -1;
	*ntext = w.ntext;
	*dates = w.dates;
	return 0;
}

int
imap_search_eval(struct icur *a, const struct smsg *m)
{
	struct swalk w = { W_EVAL, 0, 0, 0, m };

	return walk(a, &w);
}

/* ---- the scanner ---- */

int
imap_search_keys(struct icur *a)
{
	struct swalk w = { W_KEYS, 0, 0, 0, NULL };
	unsigned i, j, k;
	uint16_t *f = kfail;

	if (walk(a, &w) < 0)
		return -1;
	nkeys = w.ntext;
	for (i = 0; i < nkeys; i++) {	/* KMP failure tables */
		const char *n = keys[i].needle;
		keys[i].fail = f;
		for (f[0] = 0, k = 0, j = 1; j < keys[i].nlen; j++) {
			while (k && n[j] != n[k])
				k = f[k - 1];
			k += n[j] == n[k];
			f[j] = k;
		}
		f += keys[i].nlen + 1;
	}
	return 0;
}

void
imap_scan_start(struct sscan *s, int sday)
{
	unsigned i;

	memset(s, 0, sizeof(*s));
	s->hdr = s->bol = 1;
	s->wdate = sday;
	for (i = 0; i < nkeys; i++) {
		if (keys[i].kind != KK_FIELD)
			s->body |= 1u << i;
		if (keys[i].kind == KK_TEXT)
			s->text |= 1u << i;
		if (keys[i].kind != KK_FIELD && !keys[i].nlen)
			s->found |= 1u << i;	/* BODY "": every message */
	}
}

/* A header line starts at p (bol, not a continuation): which keys it is
 * for.  -1 when its name is cut by the end of the buffer. */
static int
field_start(struct sscan *s, const char *p, size_t n, int last)
{
	const char *c = memchr(p, ':', n < FIELD_MAX + 1 ? n : FIELD_MAX + 1);
	const char *lf = memchr(p, '\n', n < FIELD_MAX + 1 ? n : FIELD_MAX + 1);
	size_t l;
	unsigned i;

	s->pend = s->active = 0;
	s->date = 0;
	if (c == NULL && lf == NULL && n <= FIELD_MAX && !last)
		return -1;
	if (c == NULL || (lf && lf < c))
		return 0;	/* no field name: a broken line */
	for (l = c - p; l && (p[l - 1] == ' ' || p[l - 1] == '\t'); l--)
		;
	for (i = 0; i < nkeys; i++)
		if (keys[i].kind == KK_FIELD && keys[i].flen == l && !strncasecmp(keys[i].field, p, l)) {
			s->pend |= 1u << i;
			s->kmp[i] = 0;
			if (!keys[i].nlen)
				s->found |= 1u << i;	/* HEADER name "": the field is there */
		}
	s->date = l == 4 && !strncasecmp(p, "Date", 4) && !s->ndate ? 1 : 0;
	return 0;
}

size_t
imap_scan(struct sscan *s, const char *p, size_t n, int last)
{
	size_t i;
	uint32_t live, b;
	unsigned k;
	unsigned char c;

	for (i = 0; i < n; i++) {
		c = p[i];
		if (s->bol && s->hdr) {
			if (c == '\n') {
				s->hdr = s->date = 0;	/* the blank line: the body follows */
				s->active = s->pend = 0;
			} else if (c != '\r' && c != ' ' && c != '\t' && field_start(s, p + i, n - i, last) < 0) {
				return i;
			}
		}
		if (c == ':' && (s->pend || s->date == 1)) {
			s->active |= s->pend;
			s->pend = 0;
			s->date += s->date == 1;
		} else if (s->date == 2 && c != '\n' && s->ndate < sizeof(s->dbuf) - 1) {
			s->dbuf[s->ndate++] = c;
		}
		s->bol = c == '\n' || (s->bol && c == '\r');
		live = ~s->found & (s->hdr ? s->text | s->active : s->body);
		c = c >= 'A' && c <= 'Z' ? c | 0x20 : c;
		for (k = 0, b = live; b; k++, b >>= 1) {
			const struct skey *K = &keys[k];
			uint16_t q;
			if (!(b & 1))
				continue;
			for (q = s->kmp[k]; q && (unsigned char)K->needle[q] != c; q = K->fail[q - 1])
				;
			q += (unsigned char)K->needle[q] == c;
			if (q == K->nlen) {
				s->found |= 1u << k;
				q = 0;
			}
			s->kmp[k] = q;
		}
	}
	return n;
}

int
imap_scan_done(const struct sscan *s)
{
	uint32_t all = nkeys == 32 ? 0xffffffffu : (1u << nkeys) - 1;

	if (s->hdr && s->wdate)
		return 0;
	return (s->found & all) == all || (!s->hdr && !(~s->found & all & s->body));
}

/* The day of the Date: header ("[Www,] d Mon yyyy ..."), in its own zone
 * (RFC 3501: time and zone disregarded). */
long
imap_scan_sday(const struct sscan *s)
{
	static const char mon[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	const char *p = s->dbuf, *e = s->dbuf + s->ndate, *q;
	unsigned d = 0, y = 0, m;

	while (p < e && (*p < '0' || *p > '9'))
		p++;
	for (; p < e && *p >= '0' && *p <= '9' && d < 100; p++)
		d = d * 10 + *p - '0';
	while (p < e && (*p == ' ' || *p == '\t'))
		p++;
	if (e - p < 4)
		return LONG_MIN;
	for (q = mon; *q && strncasecmp(q, p, 3); q += 3)
		;
	m = (q - mon) / 3 + 1;
	for (p += 3; p < e && (*p == ' ' || *p == '\t'); p++)
		;
	for (; p < e && *p >= '0' && *p <= '9' && y < 10000; p++)
		y = y * 10 + *p - '0';
	if (!*q || d < 1 || d > 31 || y < 1900 || y > 9999)
		return LONG_MIN;
	return civil_days(y, m, d);
}

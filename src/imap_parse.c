/*
 * imap_parse.c: a cursor over one assembled IMAP command (imap.c puts
 * literals inline as "{n}\r\n" + n bytes; the final CRLF is gone).  Every
 * function returns -1 on a syntax error (and sets cur->err, which sticks),
 * so a handler can chain calls and check once.  Grammar: RFC 3501 9.
 */
#include "kotak.h"
#include "imap.h"

#include <string.h>
#include <strings.h>

#define LIST_DEPTH	8	/* parenthesised lists nested deeper are refused */

void
imap_cur(struct icur *a, const char *s, size_t n)
{
	a->b = a->p = s;
	a->e = s + n;
	a->err = 0;
}

static int
fail(struct icur *a)
{
	a->err = 1;
	return -1;
}

int
imap_end(const struct icur *a)
{
	return !a->err && a->p == a->e;
}

int
imap_sp(struct icur *a)
{
	if (a->err || a->p >= a->e || *a->p != ' ')
		return fail(a);
	a->p++;
	return 0;
}

/* ATOM-CHAR: any CHAR but CTL, SP and atom-specials "(){%*"\ and ']' */
static int
atom_char(unsigned char c, const char *extra)
{
	return c > ' ' && c < 0x7f && (!strchr("(){%*\"\\]", c) || (extra && strchr(extra, c)));
}

static int
chars(struct icur *a, char *out, size_t max, const char *extra)
{
	size_t n = 0;

	if (a->err)
		return -1;
	while (a->p < a->e && atom_char(*a->p, extra)) {
		if (out && n + 1 >= max)
			return fail(a);
		if (out)
			out[n] = *a->p;
		n++;
		a->p++;
	}
	if (out)
		out[n] = '\0';
	return n ? (int)n : fail(a);
}

int
imap_atom(struct icur *a, char *out, size_t max)
{
	return chars(a, out, max, NULL);
}

/* tag: ASTRING-CHARs but '+' (so ']' is fine) */
int
imap_tag(struct icur *a, char *out, size_t max)
{
	int n = chars(a, out, max, "]");

	return n > 0 && strchr(out, '+') ? fail(a) : n;
}

/* {n} or {n+} at the end of s[0..n): 1 with its length */
int
imap_literal_at_end(const char *s, size_t n, unsigned long long *len, int *plus)
{
	size_t i;
	unsigned long long v = 0;

	if (n < 3 || s[n - 1] != '}')
		return 0;
	i = n - 1;
	*plus = s[i - 1] == '+';
	i -= *plus;
	if (i == 0 || s[i - 1] < '0' || s[i - 1] > '9')
		return 0;
	while (i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9')
		i--;
	if (i == 0 || s[i - 1] != '{' || n - 1 - *plus - i > 10)
		return 0;
	for (; s[i] != '}' && s[i] != '+'; i++)
		v = v * 10 + (s[i] - '0');
	*len = v;
	return 1;
}

/* A string: quoted or literal, into out (max with the NUL; out NULL:
 * skipped, any length).  NUL bytes are refused. */
static int
string(struct icur *a, char *out, size_t max)
{
	size_t n = 0;
	unsigned long long len;
	const char *s;

	if (a->err || a->p >= a->e)
		return fail(a);
	if (*a->p == '"') {
		for (a->p++; a->p < a->e && *a->p != '"'; a->p++) {
			if (*a->p == '\\' && a->p + 1 < a->e && (a->p[1] == '"' || a->p[1] == '\\'))
				a->p++;
			else if (*a->p == '\\' || *a->p == '\r' || *a->p == '\n' || !*a->p)
				return fail(a);
			if (out && n + 1 >= max)
				return fail(a);
			if (out)
				out[n] = *a->p;
			n++;
		}
		if (a->p >= a->e)
			return fail(a);
		a->p++;
		if (out)
			out[n] = '\0';
		return (int)n;
	}
	if (*a->p != '{')
		return fail(a);
	for (s = ++a->p, len = 0; a->p < a->e && *a->p >= '0' && *a->p <= '9' && a->p - s < 10; a->p++)
		len = len * 10 + (*a->p - '0');
	if (a->p == s)
		return fail(a);
	a->p += a->p < a->e && *a->p == '+';
	if (a->e - a->p < 3 || memcmp(a->p, "}\r\n", 3) || (unsigned long long)(a->e - a->p - 3) < len ||
	    (out && len + 1 > max))
		return fail(a);
	a->p += 3;
	if (memchr(a->p, '\0', len))
		return fail(a);
	if (out) {
		memcpy(out, a->p, len);
		out[len] = '\0';
	}
	a->p += len;
	return (int)len;
}

int
imap_astring(struct icur *a, char *out, size_t max)
{
	if (!a->err && a->p < a->e && (*a->p == '"' || *a->p == '{'))
		return string(a, out, max);
	return chars(a, out, max, "]");
}

/* Any value of a list or NIL, skipped: nested lists up to LIST_DEPTH. */
int
imap_skip_value(struct icur *a)
{
	int depth = 0;

	for (;;) {
		if (a->err || a->p >= a->e)
			return fail(a);
		if (*a->p == '(') {
			if (++depth > LIST_DEPTH)
				return fail(a);
			a->p++;
			if (a->p < a->e && *a->p == ')')
				continue;
			continue;
		}
		if (*a->p == ')') {
			if (depth == 0)
				return fail(a);
			a->p++;
			depth--;
		} else if (*a->p == '"' || *a->p == '{') {
			const char *q;
			/* skip a string without keeping it */
			if (*a->p == '"') {
				for (q = a->p + 1; q < a->e && *q != '"'; q++)
					q += *q == '\\';
				if (q >= a->e)
					return fail(a);
				a->p = q + 1;
			} else {
				unsigned long long len = 0;
				for (q = a->p + 1; q < a->e && *q >= '0' && *q <= '9' && q - a->p < 11; q++)
					len = len * 10 + (*q - '0');
				q += q < a->e && *q == '+';
				if (a->e - q < 3 || memcmp(q, "}\r\n", 3) || (unsigned long long)(a->e - q - 3) < len)
					return fail(a);
				a->p = q + 3 + len;
			}
		} else {
			const char *s = a->p;
			while (a->p < a->e && atom_char(*a->p, "]"))
				a->p++;
			if (a->p == s)
				return fail(a);
		}
		if (depth == 0)
			return 0;
		if (a->p < a->e && *a->p == ' ')
			a->p++;
	}
}

int
imap_number(struct icur *a, uint32_t *v)
{
	unsigned long long n = 0;
	const char *s = a->p;

	if (a->err)
		return -1;
	while (a->p < a->e && *a->p >= '0' && *a->p <= '9' && n <= 0xffffffffULL)
		n = n * 10 + (*a->p++ - '0');
	if (a->p == s || n > 0xffffffffULL)
		return fail(a);
	*v = (uint32_t)n;
	return 0;
}

int
imap_peek(const struct icur *a, const char *w)
{
	size_t n = strlen(w);

	return !a->err && (size_t)(a->e - a->p) >= n && !strncasecmp(a->p, w, n) &&
	    (a->p + n == a->e || !atom_char(a->p[n], "]"));
}

/* ---- mailbox names ---- */

static int
b64v(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26 :
	    c >= '0' && c <= '9' ? c - '0' + 52 : c == '+' ? 62 : c == ',' ? 63 : -1;
}

/* RFC 3501 5.1.3, as strictly as Dovecot: printable ASCII; "&-" is '&';
 * "&...-" is modified BASE64 of UTF-16 without padding, holding no
 * printable ASCII and no broken surrogate pair. */
int
imap_mutf7_ok(const char *s)
{
	unsigned bits, nb, hi, u;
	int v;

	for (; *s; s++) {
		if (*s < 0x20 || *s > 0x7e)
			return 0;
		if (*s != '&')
			continue;
		if (*++s == '-')
			continue;
		for (bits = nb = hi = 0; (v = b64v(*s)) >= 0; s++) {
			bits = bits << 6 | v;
			if ((nb += 6) < 16)
				continue;
			u = bits >> (nb -= 16) & 0xffff;
			if (hi ? u < 0xdc00 || u > 0xdfff : (u >= 0x20 && u <= 0x7e) || (u >= 0xdc00 && u <= 0xdfff))
				return 0;
			hi = !hi && u >= 0xd800 && u <= 0xdbff;
		}
		if (*s != '-' || nb >= 6 || (bits & ((1u << nb) - 1)) || hi || s[-1] == '&')
			return 0;
	}
	return 1;
}

int
imap_mailbox(struct icur *a, char *out, size_t max)
{
	if (imap_astring(a, out, max) < 0)
		return -1;
	if (!strcasecmp(out, "INBOX"))
		memcpy(out, "INBOX", 6);
	if (!imap_mutf7_ok(out)) {
		a->err = 2;	/* not a syntax error: NO */
		return -1;
	}
	return 0;
}

/* Names hold no hierarchy ('/' is refused by folder_name_ok), so '%' and
 * '*' match alike.  INBOX matches in any case. */
int
imap_match(const char *p, const char *n)
{
	const char *sp = NULL, *sn = NULL;
	int ci = !strcmp(n, "INBOX");

	while (*n) {
		if (*p == '*' || *p == '%') {
			sp = ++p;
			sn = n;
		} else if (*p && (*p == *n || (ci && (*p | 0x20) == (*n | 0x20)))) {
			p++;
			n++;
		} else if (sp) {
			p = sp;
			n = ++sn;
		} else {
			return 0;
		}
	}
	while (*p == '*' || *p == '%')
		p++;
	return !*p;
}

/* ---- flags ---- */

int
imap_flag(struct icur *a, char *kw, size_t max)
{
	static const char *const sys[] = { "Seen", "Answered", "Flagged", "Deleted", "Draft", "", "Recent" };
	unsigned i;

	if (!a->err && a->p < a->e && *a->p == '\\') {
		a->p++;
		if (imap_atom(a, kw, max) < 0)
			return -1;
		for (i = 0; i < sizeof(sys) / sizeof(sys[0]); i++)
			if (*sys[i] && !strcasecmp(kw, sys[i]))
				return 1 << i;
		return fail(a);
	}
	return imap_atom(a, kw, max) < 0 ? -1 : 0;
}

/* ---- dates ---- */

static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

/* n digits exactly (n < 0: 1 or 2) */
static int
digits(struct icur *a, int n, unsigned *v)
{
	int k = 0, max = n < 0 ? 2 : n;

	*v = 0;
	while (k < max && a->p < a->e && *a->p >= '0' && *a->p <= '9') {
		*v = *v * 10 + (*a->p++ - '0');
		k++;
	}
	return k == max || (n < 0 && k) ? 0 : fail(a);
}

static int
ch(struct icur *a, char c)
{
	if (a->err || a->p >= a->e || *a->p != c)
		return fail(a);
	a->p++;
	return 0;
}

/* d-Mon-yyyy: 1-based month into *m */
static int
dmy(struct icur *a, int nd, unsigned *d, unsigned *m, unsigned *y)
{
	const char *p;

	if (digits(a, nd, d) < 0 || ch(a, '-') < 0 || a->e - a->p < 4)
		return fail(a);
	for (*m = 0, p = months; *p && strncasecmp(p, a->p, 3); p += 3)
		;
	if (!*p || a->p[3] != '-' || *d < 1 || *d > 31)
		return fail(a);
	*m = (p - months) / 3 + 1;
	a->p += 4;
	return digits(a, 4, y);
}

int
imap_date(struct icur *a, long *day)
{
	unsigned d, m, y;
	int q = !a->err && a->p < a->e && *a->p == '"';

	a->p += q;
	if (dmy(a, -1, &d, &m, &y) < 0 || (q && ch(a, '"') < 0))
		return -1;
	*day = civil_days(y, m, d);
	return 0;
}

int
imap_datetime(struct icur *a, time_t *t)
{
	unsigned d, m, y, hh, mm, ss, zh, zm;
	int sign;

	if (ch(a, '"') < 0)
		return -1;
	a->p += a->p < a->e && *a->p == ' ';	/* " 1-Jan-2000": day padded with a space */
	if (dmy(a, -1, &d, &m, &y) < 0 || ch(a, ' ') < 0 || digits(a, 2, &hh) < 0 || ch(a, ':') < 0 ||
	    digits(a, 2, &mm) < 0 || ch(a, ':') < 0 || digits(a, 2, &ss) < 0 || ch(a, ' ') < 0 ||
	    a->p >= a->e || (*a->p != '+' && *a->p != '-'))
		return fail(a);
	sign = *a->p++ == '-' ? -1 : 1;
	if (digits(a, 2, &zh) < 0 || digits(a, 2, &zm) < 0 || ch(a, '"') < 0 || hh > 23 || mm > 59 ||
	    ss > 60 || zm > 59 || y < 1970)
		return fail(a);
	*t = (time_t)civil_days(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss - sign * (long)(zh * 3600 + zm * 60);
	return 0;
}

/* ---- sequence sets ---- */

static int
setnum(const char **pp, const char *e, uint32_t star, uint32_t *v)
{
	const char *p = *pp;
	unsigned long long n = 0;

	if (p < e && *p == '*') {
		*v = star;
		*pp = p + 1;
		return 0;
	}
	if (p >= e || *p < '1' || *p > '9')
		return -1;
	while (p < e && *p >= '0' && *p <= '9' && n <= 0xffffffffULL)
		n = n * 10 + (*p++ - '0');
	if (n > 0xffffffffULL)
		return -1;
	*v = (uint32_t)n;
	*pp = p;
	return 0;
}

/* One range of a checked set at p, ordered; the position after it (and
 * after its comma). */
static const char *
range(const char *p, const char *e, uint32_t star, uint32_t *lo, uint32_t *hi)
{
	uint32_t t;

	setnum(&p, e, star, lo);
	*hi = *lo;
	if (p < e && *p == ':') {
		p++;
		setnum(&p, e, star, hi);
	}
	if (*lo > *hi) {
		t = *lo;
		*lo = *hi;
		*hi = t;
	}
	return p + (p < e && *p == ',');
}

int
imap_set(struct icur *a, struct iset *s)
{
	const char *p = a->p;
	uint32_t v;

	if (a->err)
		return -1;
	for (;;) {
		if (setnum(&p, a->e, 0, &v) < 0 || (p < a->e && *p == ':' && (p++, setnum(&p, a->e, 0, &v) < 0)))
			return fail(a);
		if (p >= a->e || *p != ',')
			break;
		p++;
	}
	s->s = a->p;
	s->e = a->p = p;
	iset_star(s, 0);
	return 0;
}

void
iset_star(struct iset *s, uint32_t star)
{
	const char *p;
	uint32_t lo, hi, prev = 0;
	int first = 1;

	s->star = star;
	s->sorted = 1;
	for (p = s->s; p < s->e; first = 0, prev = hi) {
		p = range(p, s->e, star, &lo, &hi);
		if (!first && lo <= prev)
			s->sorted = 0;
	}
	s->p = s->s;
	s->last = 0;
}

int
iset_next(struct iset *s, uint32_t x, uint32_t *rlo, uint32_t *rhi)
{
	const char *p, *q;
	uint32_t lo, hi;
	int found = 0;

	if (s->sorted) {
		if (x < s->last)
			s->p = s->s;
		s->last = x;
		for (p = s->p; p < s->e; p = q) {
			q = range(p, s->e, s->star, &lo, &hi);
			if (hi < x) {
				s->p = q;
				continue;
			}
			*rlo = lo > x ? lo : x;
			*rhi = hi;
			return 1;
		}
		return 0;
	}
	for (p = s->s; p < s->e;) {
		p = range(p, s->e, s->star, &lo, &hi);
		if (hi < x)
			continue;
		if (lo < x)
			lo = x;
		if (!found || lo < *rlo || (lo == *rlo && hi > *rhi)) {
			*rlo = lo;
			*rhi = hi;
			found = 1;
		}
	}
	return found;
}

uint32_t
iset_max(const struct iset *s)
{
	const char *p;
	uint32_t lo, hi, max = 0;

	for (p = s->s; p < s->e;) {
		p = range(p, s->e, s->star, &lo, &hi);
		if (hi > max)
			max = hi;
	}
	return max;
}

/* ---- FETCH items ---- */

static const struct {
	const char *name;
	uint8_t	 kind, rfc, peek;
} fitems[] = {
	{ "FLAGS", FI_FLAGS, 0, 0 }, { "UID", FI_UID, 0, 0 }, { "INTERNALDATE", FI_DATE, 0, 0 },
	{ "RFC822.SIZE", FI_SIZE, 0, 0 }, { "ENVELOPE", FI_ENVELOPE, 0, 0 },
	{ "BODYSTRUCTURE", FI_BODYSTRUCTURE, 0, 0 }, { "BODY", FI_BODY, 0, 0 },
	{ "BODY.PEEK", FI_SECTION, 0, 1 }, { "RFC822", FI_SECTION, 1, 0 },
	{ "RFC822.HEADER", FI_SECTION, 2, 1 }, { "RFC822.TEXT", FI_SECTION, 3, 0 },
	{ "RFC822.PEEK", FI_SECTION, 1, 1 },	/* not RFC 3501, but Outlook sends it */
};

int
imap_fetch_item(struct icur *a, struct fitem *f)
{
	static const char *const sects[] = { "", "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME" };
	char name[16];
	unsigned i, k;
	const char *s;

	memset(f, 0, sizeof(*f));
	for (s = a->p, i = 0; a->p < a->e && (atom_char(*a->p, NULL) && *a->p != '[' && *a->p != '<'); a->p++)
		if (i < sizeof(name) - 1)
			name[i++] = *a->p;
	name[i] = '\0';
	for (k = 0; k < sizeof(fitems) / sizeof(fitems[0]) && strcasecmp(name, fitems[k].name); k++)
		;
	if (a->err || a->p - s >= (long)sizeof(name) || k == sizeof(fitems) / sizeof(fitems[0]))
		return fail(a);
	f->kind = fitems[k].kind;
	f->rfc = fitems[k].rfc;
	f->peek = fitems[k].peek;
	if (f->rfc) {
		f->sect = f->rfc == 2 ? SEC_HEADER : f->rfc == 3 ? SEC_TEXT : SEC_ALL;
		return 0;
	}
	if (a->p >= a->e || *a->p != '[')
		return f->kind == FI_SECTION ? fail(a) : 0;	/* BODY.PEEK needs a section */
	f->kind = FI_SECTION;
	f->sec = ++a->p;
	while (a->p < a->e && *a->p >= '1' && *a->p <= '9') {
		if (f->npath == FI_PATH_MAX || imap_number(a, &f->path[f->npath++]) < 0)
			return fail(a);
		if (a->p >= a->e || *a->p != '.')
			break;
		a->p++;
	}
	if (a->p < a->e && *a->p != ']') {
		if (f->npath && a->p[-1] != '.')
			return fail(a);
		for (s = a->p; a->p < a->e && *a->p != ']' && *a->p != ' '; a->p++)
			;
		for (k = 1; k < 6 && ((size_t)(a->p - s) != strlen(sects[k]) || strncasecmp(s, sects[k], a->p - s)); k++)
			;
		if (k == 6 || (k == SEC_MIME && !f->npath))
			return fail(a);
		f->sect = k;
		if (k == SEC_FIELDS || k == SEC_FIELDS_NOT) {
			char fld[80];
			if (imap_sp(a) < 0 || ch(a, '(') < 0)
				return -1;
			for (f->fld = a->p; !a->err && a->p < a->e && *a->p != ')';)
				if ((a->p > f->fld && imap_sp(a) < 0) || imap_astring(a, fld, sizeof(fld)) < 0)
					return -1;
			if (a->p == f->fld)
				return fail(a);
			f->flde = a->p++;
		}
	} else if (f->npath && a->p[-1] == '.') {
		return fail(a);
	}
	f->sece = a->p;
	if (ch(a, ']') < 0)
		return -1;
	if (a->p < a->e && *a->p == '<') {
		a->p++;
		f->partial = 1;
		if (imap_number(a, &f->origin) < 0 || ch(a, '.') < 0 || imap_number(a, &f->size) < 0 ||
		    ch(a, '>') < 0 || !f->size)
			return fail(a);
	}
	return 0;
}

int
imap_field_next(struct icur *a, char *out, size_t max)
{
	if (a->p < a->e && *a->p == ' ')
		a->p++;
	return imap_astring(a, out, max);
}

int
imap_fetch_att(struct icur *a, struct icur *it)
{
	static const char *const macro[][2] = {
		{ "ALL", "FLAGS INTERNALDATE RFC822.SIZE ENVELOPE" },
		{ "FAST", "FLAGS INTERNALDATE RFC822.SIZE" },
		{ "FULL", "FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY" },
	};
	struct fitem f;
	unsigned i;
	int paren;

	if (a->err || a->p >= a->e)
		return fail(a);
	for (i = 0; i < 3; i++)
		if (imap_peek(a, macro[i][0])) {
			a->p += strlen(macro[i][0]);
			imap_cur(it, macro[i][1], strlen(macro[i][1]));
			return 0;
		}
	paren = *a->p == '(';
	a->p += paren;
	imap_cur(it, a->p, a->e - a->p);
	do {
		if (imap_fetch_item(a, &f) < 0)
			return -1;
	} while (paren && a->p < a->e && *a->p == ' ' && ++a->p);
	it->e = a->p;
	return paren ? ch(a, ')') : 0;
}

/* list-mailbox (RFC 3501 9): an astring whose atom may hold '%' and '*' */
int
imap_list_mailbox(struct icur *a, char *out, size_t max)
{
	if (!a->err && a->p < a->e && (*a->p == '"' || *a->p == '{'))
		return string(a, out, max);
	return chars(a, out, max, "%*]");
}

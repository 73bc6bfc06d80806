/*
 * imap_mime.c: IMAP strings, ENVELOPE and BODYSTRUCTURE from a part table
 * (mime.c), rendered into a sink that can skip what an earlier pass
 * already sent: a 2 KiB output buffer takes a long BODYSTRUCTURE in
 * several passes, each rendering it again from the cached part table.
 *
 * The output follows Dovecot 2.3 byte for byte where RFC 3501 leaves room
 * (tests/integ/test_imap_mime.py compares them on a corpus): types,
 * parameters and encodings as written, ("charset" "us-ascii") for a text
 * part without parameters, RFC 2231 continuations joined, Subject and
 * display names cleaned "for humans" (blanks folded; a literal when
 * changed), MISSING_MAILBOX / MISSING_DOMAIN for broken addresses.
 */
#include "kotak.h"
#include "mime.h"
#include "imap.h"

#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <strings.h>

void
imap_put(struct isink *o, const char *s, size_t n)
{
	size_t k;

	if (o->skip >= n) {
		o->skip -= n;
		o->n += n;
		return;
	}
	s += o->skip;
	n -= o->skip;
	o->n += o->skip + n;
	o->skip = 0;
	k = n < o->room ? n : o->room;
	if (k) {
		memcpy(o->p, s, k);
		o->p += k;
		o->room -= k;
	}
	o->full |= k < n;
}

void
imap_puts(struct isink *o, const char *s)
{
	imap_put(o, s, strlen(s));
}

void
imap_printf(struct isink *o, const char *fmt, ...)
{
	char b[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(b, sizeof(b), fmt, ap);
	va_end(ap);
	if (n > 0)
		imap_put(o, b, (size_t)n < sizeof(b) ? (size_t)n : sizeof(b) - 1);
}

static void
put_u(struct isink *o, unsigned long long v)
{
	char b[24];
	int i = sizeof(b);

	do
		b[--i] = '0' + v % 10;
	while (v /= 10);
	imap_put(o, b + i, sizeof(b) - i);
}

static void
literal(struct isink *o, const char *s, size_t n)
{
	imap_puts(o, "{");
	put_u(o, n);
	imap_puts(o, "}\r\n");
	imap_put(o, s, n);
}

/* A string (RFC 3501 4.3): quoted, or a literal when it holds what a
 * quoted string cannot (CR, LF, NUL, 8-bit) or 4+ quoted-specials (then a
 * literal is shorter: Dovecot's rule). */
void
imap_string(struct isink *o, const char *s, size_t n)
{
	size_t i, sp = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = s[i];
		if (c == '\r' || c == '\n' || c == 0 || c >= 0x80)
			break;
		sp += c == '"' || c == '\\';
	}
	if (i < n || sp >= 4) {
		literal(o, s, n);
		return;
	}
	imap_puts(o, "\"");
	for (i = 0; i < n; i++) {
		if (s[i] == '"' || s[i] == '\\')
			imap_puts(o, "\\");
		imap_put(o, s + i, 1);
	}
	imap_puts(o, "\"");
}

void
imap_nstring(struct isink *o, const char *s, size_t n)
{
	if (s == NULL)
		imap_puts(o, "NIL");
	else
		imap_string(o, s, n);
}

/* Subject and display names, "for humans": CR and LF dropped, TABs and
 * runs of blanks made one space, trimmed; if that changed anything, or it
 * needs escaping, a literal. */
static void
human(struct isink *o, const char *s, size_t n)
{
	static char b[MIME_FIELD + 8];
	size_t i, k = 0, bad = 0;

	for (i = 0; i < n && k < sizeof(b); i++) {
		unsigned char c = s[i];
		if (c == '\r' || c == '\n') {
			bad = 1;
			continue;
		}
		if (c == '\t' || c == ' ') {
			bad |= c == '\t' || k == 0 || b[k - 1] == ' ';
			if (k > 0 && b[k - 1] != ' ')
				b[k++] = ' ';
			continue;
		}
		b[k++] = c ? c : 0x80;
		bad |= c == '"' || c == '\\' || c >= 0x80 || !c;
	}
	if (k > 0 && b[k - 1] == ' ') {
		k--;
		bad = 1;
	}
	if (k == 0)
		imap_puts(o, "\"\"");
	else if (bad)
		literal(o, b, k);
	else
		imap_string(o, b, k);
}

/* A header value as Dovecot's parser gives it: leading blanks off. */
static const char *
field(const struct mime *m, uint32_t i, int f, size_t *n)
{
	const char *p = mime_field(m, i, f, n);

	while (p && *n && (*p == ' ' || *p == '\t')) {
		p++;
		(*n)--;
	}
	return p;
}

/* An nstring from a header value, without the line ends of folding. */
static void
nfield(struct isink *o, const struct mime *m, uint32_t i, int f)
{
	static char b[MIME_FIELD];
	size_t n, k = 0, j;
	const char *p = field(m, i, f, &n);

	if (p && memchr(p, '\n', n)) {
		for (j = 0; j < n; j++)
			if (p[j] != '\n' && p[j] != '\r')
				b[k++] = p[j];
		p = b;
		n = k;
	}
	imap_nstring(o, p, n);
}

/* ---- addresses (RFC 5322 3.4, with obsolete routes), as ENVELOPE wants */

struct atok {
	const char *p, *e;
	char	 name[256], local[256], domain[256], route[256];
	size_t	 nn, nl, nd, nr;
};

static void
skip_ws(struct atok *t, char *cmt, size_t *ncmt)
{
	int depth = 0;

	for (; t->p < t->e; t->p++) {
		char c = *t->p;
		if (depth) {
			if (c == '\\' && t->p + 1 < t->e)
				c = *++t->p;
			else if (c == '(' && ++depth)
				continue;
			else if (c == ')' && --depth == 0)
				continue;
			if (cmt && *ncmt + 1 < 256)
				cmt[(*ncmt)++] = c;
		} else if (c == '(') {
			depth = 1;
			if (cmt)
				*ncmt = 0;
		} else if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
			break;
		}
	}
}

static void
add(char *b, size_t *n, const char *s, size_t k)
{
	if (*n + k >= 256)
		k = 255 - *n;
	memcpy(b + *n, s, k);
	*n += k;
}

/* One word: atom (with '.') or quoted string, appended to b; 0 if none. */
static int
word(struct atok *t, char *b, size_t *n, int space)
{
	const char *s;

	skip_ws(t, NULL, NULL);
	if (t->p >= t->e)
		return 0;
	if (*t->p == '"') {
		if (space && *n)
			add(b, n, " ", 1);
		for (t->p++; t->p < t->e && *t->p != '"'; t->p++) {
			if (*t->p == '\\' && t->p + 1 < t->e)
				t->p++;
			add(b, n, t->p, 1);
		}
		t->p += t->p < t->e;
		return 1;
	}
	for (s = t->p; t->p < t->e && (!*t->p || !strchr("()<>[]:;@\\,\" \t\r\n", *t->p)); t->p++)
		;
	if (t->p == s)
		return 0;
	if (space && *n && b[*n - 1] != '.' && *s != '.')
		add(b, n, " ", 1);
	add(b, n, s, t->p - s);
	return 1;
}

static void
addr_out(struct isink *o, const char *name, size_t nn, const char *route, size_t nr,
    const char *local, size_t nl, const char *domain, size_t nd, int group)
{
	imap_puts(o, "(");
	if (name)
		human(o, name, nn);
	else
		imap_puts(o, "NIL");
	imap_puts(o, " ");
	imap_nstring(o, nr ? route : NULL, nr);
	imap_puts(o, " ");
	if (group || local)
		imap_nstring(o, local, nl);
	else
		imap_puts(o, nl ? "" : "\"MISSING_MAILBOX\"");
	imap_puts(o, " ");
	if (group)
		imap_puts(o, "NIL");
	else if (domain && nd)
		imap_string(o, domain, nd);
	else
		imap_puts(o, "\"MISSING_DOMAIN\"");
	imap_puts(o, ")");
}

/* domain after '@': dot-atoms, or a domain literal [..] */
static void
domain(struct atok *t)
{
	skip_ws(t, NULL, NULL);
	if (t->p < t->e && *t->p == '[') {
		const char *s = t->p;
		while (t->p < t->e && *t->p != ']')
			t->p++;
		t->p += t->p < t->e;
		add(t->domain, &t->nd, s, t->p - s);
		return;
	}
	while (word(t, t->domain, &t->nd, 0)) {
		skip_ws(t, NULL, NULL);
		if (t->p < t->e && *t->p == '.') {
			add(t->domain, &t->nd, ".", 1);
			t->p++;
		} else {
			break;
		}
	}
}

static void
addr_spec(struct atok *t)
{
	for (;;) {
		if (!word(t, t->local, &t->nl, 0))
			break;
		skip_ws(t, NULL, NULL);
		if (t->p < t->e && *t->p == '.') {
			add(t->local, &t->nl, ".", 1);
			t->p++;
		}
		if (t->p >= t->e || *t->p == '@' || *t->p == '>' || *t->p == ',' || *t->p == ';')
			break;
	}
	skip_ws(t, NULL, NULL);
	if (t->p < t->e && *t->p == '@') {
		t->p++;
		domain(t);
	}
}

/* An address list: NIL when it holds no address at all. */
static void
addresses(struct isink *o, const char *p, size_t n)
{
	struct atok t;
	char cmt[256];
	size_t ncmt = 0;
	int any = 0, group = 0, angle;

	if (p == NULL) {
		imap_puts(o, "NIL");
		return;
	}
	t.p = p;
	t.e = p + n;
	for (;;) {
		skip_ws(&t, NULL, NULL);
		if (t.p >= t.e)
			break;
		if (*t.p == ',') {
			t.p++;
			continue;
		}
		if (*t.p == ';') {
			t.p++;
			if (group) {
				imap_puts(o, any++ ? "" : "(");
				addr_out(o, NULL, 0, NULL, 0, NULL, 0, NULL, 0, 1);
				group = 0;
			}
			continue;
		}
		t.nn = t.nl = t.nd = t.nr = ncmt = 0;
		angle = 0;
		{	/* a phrase, or the local part of an addr-spec */
			const char *save = t.p;
			while (word(&t, t.name, &t.nn, 1))
				;
			skip_ws(&t, NULL, NULL);
			if (t.p < t.e && *t.p == ':' && t.nn) {
				t.p++;
				imap_puts(o, any++ ? "" : "(");
				addr_out(o, NULL, 0, NULL, 0, t.name, t.nn, NULL, 0, 1);
				group = 1;
				continue;
			}
			if (t.p < t.e && *t.p == '<') {
				angle = 1;
				t.p++;
				skip_ws(&t, NULL, NULL);
				if (t.p < t.e && *t.p == '@') {	/* obsolete route */
					const char *s = t.p;
					while (t.p < t.e && *t.p != ':' && *t.p != '>')
						t.p++;
					add(t.route, &t.nr, s, t.p - s);
					t.p += t.p < t.e && *t.p == ':';
				}
				addr_spec(&t);
				while (t.p < t.e && *t.p != '>' && *t.p != ',')
					t.p++;
				t.p += t.p < t.e && *t.p == '>';
			} else {
				t.p = save;
				t.nn = 0;
				addr_spec(&t);
				skip_ws(&t, cmt, &ncmt);	/* "a@b (Name)": the comment names it */
			}
		}
		if (!angle && !t.nl && !t.nd) {
			t.p += t.p < t.e && *t.p != ',' && *t.p != ';';	/* junk: skip a byte */
			continue;
		}
		if (!angle && t.p < t.e && *t.p != ',' && *t.p != ';')
			while (t.p < t.e && *t.p != ',' && *t.p != ';')
				t.p++;
		imap_puts(o, any++ ? "" : "(");
		if (t.nn)
			addr_out(o, t.name, t.nn, t.route, t.nr, t.nl ? t.local : NULL, t.nl, t.domain, t.nd, 0);
		else
			addr_out(o, ncmt ? cmt : NULL, ncmt, t.route, t.nr, t.nl ? t.local : NULL, t.nl,
			    t.domain, t.nd, 0);
	}
	if (group) {
		imap_puts(o, any++ ? "" : "(");
		addr_out(o, NULL, 0, NULL, 0, NULL, 0, NULL, 0, 1);
	}
	imap_puts(o, any ? ")" : "NIL");
}

static void
addr_field(struct isink *o, const struct mime *m, uint32_t i, int f, int fallback)
{
	size_t n;
	const char *p = field(m, i, f, &n);
	struct isink probe = { NULL, 0, 0, 0, 0 };

	if (fallback >= 0) {	/* Sender, Reply-To: From when absent or empty */
		addresses(&probe, p, n);
		if (probe.n == 3)
			p = field(m, i, fallback, &n);
	}
	addresses(o, p, n);
}

void
imap_envelope(struct isink *o, const struct mime *m, uint32_t i)
{
	size_t n;
	const char *p;

	imap_puts(o, "(");
	nfield(o, m, i, HF_DATE);
	imap_puts(o, " ");
	if ((p = field(m, i, HF_SUBJECT, &n)) != NULL)
		human(o, p, n);
	else
		imap_puts(o, "NIL");
	imap_puts(o, " ");
	addr_field(o, m, i, HF_FROM, -1);
	imap_puts(o, " ");
	addr_field(o, m, i, HF_SENDER, HF_FROM);
	imap_puts(o, " ");
	addr_field(o, m, i, HF_REPLYTO, HF_FROM);
	imap_puts(o, " ");
	addr_field(o, m, i, HF_TO, -1);
	imap_puts(o, " ");
	addr_field(o, m, i, HF_CC, -1);
	imap_puts(o, " ");
	addr_field(o, m, i, HF_BCC, -1);
	imap_puts(o, " ");
	nfield(o, m, i, HF_INREPLYTO);
	imap_puts(o, " ");
	nfield(o, m, i, HF_MSGID);
	imap_puts(o, ")");
}

/* ---- BODYSTRUCTURE */

/* The parameter list after "type/subtype" or a disposition token:
 * RFC 2231 continuations (name*0, name*1*, ...) joined after the others,
 * named name* when the first piece is extended.  NIL when there are none;
 * deftext: ("charset" "us-ascii") then. */
static void
params(struct isink *o, const char *p, const char *e, int deftext)
{
	char name[80], val[MIME_FIELD], base[80];
	const char *q;
	int any = 0, pass, star, idx, want;

	for (pass = 0; pass < 2; pass++) {
		for (q = p; mime_param(&q, e, name, sizeof(name), val, sizeof(val));) {
			char *s = strchr(name, '*');
			int cont = s && s[1] >= '0' && s[1] <= '9';
			if (cont != pass || (pass && strtol(s + 1, NULL, 10) != 0))
				continue;
			imap_puts(o, any++ ? " " : "(");
			if (!pass) {
				imap_string(o, name, strlen(name));
				imap_puts(o, " ");
				imap_string(o, val, strlen(val));
				continue;
			}
			/* the first piece of a continued parameter: gather the rest in order */
			*s = '\0';
			strlcpy_k(base, name, sizeof(base));
			star = strchr(s + 1, '*') != NULL;
			/* a name is any bytes but blanks and ';' (mime_token): a
			 * string, escaped or a literal, as the plain ones */
			if (star)
				*s++ = '*';
			imap_string(o, name, s - name);
			imap_puts(o, " ");
			{
				char all[MIME_FIELD];
				size_t na = 0, k;
				const char *r;
				for (want = 0;; want++) {
					int found = 0;
					for (r = p; mime_param(&r, e, name, sizeof(name), val, sizeof(val));) {
						char *t = strchr(name, '*');
						if (!t || t[1] < '0' || t[1] > '9')
							continue;
						*t = '\0';
						idx = (int)strtol(t + 1, NULL, 10);
						if (idx != want || strcasecmp(name, base))
							continue;
						k = strlen(val);
						if (na + k > sizeof(all))
							k = sizeof(all) - na;
						memcpy(all + na, val, k);
						na += k;
						found = 1;
						break;
					}
					if (!found)
						break;
				}
				imap_string(o, all, na);
			}
		}
	}
	if (any)
		imap_puts(o, ")");
	else
		imap_puts(o, deftext ? "(\"charset\" \"us-ascii\")" : "NIL");
}

/* type and subtype as written: Dovecot's "" "" when it does not parse */
static const char *
ctype(struct isink *o, const struct mime *m, uint32_t i, const char **e, int *text)
{
	char type[64], sub[64];
	size_t n;
	const char *p = field(m, i, HF_CTYPE, &n), *s;

	*text = 0;
	if (p == NULL) {
		mime_type(m, i, type, sub, sizeof(type));
		imap_puts(o, "\"");
		imap_puts(o, type);
		imap_puts(o, "\" \"");
		imap_puts(o, sub);
		imap_puts(o, "\" ");
		*text = !strcmp(type, "text");
		return NULL;
	}
	*e = p + n;
	s = p;
	if (mime_token(&p, *e, type, sizeof(type), "/;") <= 0) {
		imap_puts(o, "\"\" \"\" ");
		return NULL;
	}
	*text = !strcasecmp(type, "text");
	sub[0] = '\0';
	while (p < *e && (*p == ' ' || *p == '\t'))
		p++;
	if (p < *e && *p == '/') {
		p++;
		mime_token(&p, *e, sub, sizeof(sub), ";");
	}
	(void)s;
	imap_string(o, type, strlen(type));
	imap_puts(o, " ");
	imap_string(o, sub, strlen(sub));
	imap_puts(o, " ");
	return p;
}

static void
ext_common(struct isink *o, const struct mime *m, uint32_t i)
{
	char tok[256];
	size_t n = 0;
	const char *p = field(m, i, HF_CDISP, &n), *e = p ? p + n : NULL;
	int any = 0;

	imap_puts(o, " ");
	if (p == NULL) {
		imap_puts(o, "NIL");
	} else {
		imap_puts(o, "(");
		if (mime_token(&p, e, tok, sizeof(tok), ";") < 0)
			tok[0] = '\0';
		imap_string(o, tok, strlen(tok));
		imap_puts(o, " ");
		params(o, p, e, 0);
		imap_puts(o, ")");
	}
	imap_puts(o, " ");
	if ((p = field(m, i, HF_CLANG, &n)) == NULL) {
		imap_puts(o, "NIL");
	} else {
		for (e = p + n; p < e;) {
			if (mime_token(&p, e, tok, sizeof(tok), ",") > 0) {
				imap_puts(o, any++ ? " " : "(");
				imap_string(o, tok, strlen(tok));
			} else {
				p++;
			}
		}
		imap_puts(o, any ? ")" : "NIL");
	}
	imap_puts(o, " ");
	nfield(o, m, i, HF_CLOC);
}

static void
structure(struct isink *o, const struct mime *m, uint32_t i, int ext)
{
	const struct mime_part *q = mime_part(m, i);
	const char *p, *e = NULL;
	char tok[128];
	size_t n;
	uint32_t j;
	int text;

	imap_puts(o, "(");
	if (q->kind == MK_MULTI) {
		for (j = i + 1; j < m->n && mime_part(m, j)->depth > q->depth; j = mime_next(m, j))
			structure(o, m, j, ext);
		if (j == i + 1)	/* no parts: Dovecot's stand-in */
			imap_puts(o, ext ? "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)" :
			    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)");
		imap_puts(o, " ");
		p = field(m, i, HF_CTYPE, &n);
		e = p ? p + n : NULL;
		if (p && mime_token(&p, e, tok, sizeof(tok), "/;") > 0) {
			while (p < e && *p != '/' && *p != ';')
				p++;
			p += p < e && *p == '/';
			if (mime_token(&p, e, tok, sizeof(tok), ";") < 0)
				tok[0] = '\0';
		} else {
			strlcpy_k(tok, "mixed", sizeof(tok));
		}
		imap_string(o, tok, strlen(tok));
		if (ext) {
			imap_puts(o, " ");
			params(o, p, e, 0);
			ext_common(o, m, i);
		}
		imap_puts(o, ")");
		return;
	}
	p = ctype(o, m, i, &e, &text);
	if (p)
		params(o, p, e, text);
	else
		imap_puts(o, text ? "(\"charset\" \"us-ascii\")" : "NIL");
	imap_puts(o, " ");
	nfield(o, m, i, HF_CID);
	imap_puts(o, " ");
	nfield(o, m, i, HF_CDESC);
	imap_puts(o, " ");
	if ((p = field(m, i, HF_CTE, &n)) != NULL && mime_token(&p, p + n, tok, sizeof(tok), ";") > 0)
		imap_string(o, tok, strlen(tok));
	else
		imap_puts(o, "\"7bit\"");
	imap_puts(o, " ");
	put_u(o, q->bsize);
	if (q->kind == MK_MSG && i + 1 < m->n && mime_part(m, i + 1)->depth > q->depth) {
		imap_puts(o, " ");
		imap_envelope(o, m, i + 1);
		imap_puts(o, " ");
		structure(o, m, i + 1, ext);
		imap_puts(o, " ");
		put_u(o, q->lines);
	} else if (text) {
		imap_puts(o, " ");
		put_u(o, q->lines);
	}
	if (ext) {
		imap_puts(o, " ");
		nfield(o, m, i, HF_CMD5);
		ext_common(o, m, i);
	}
	imap_puts(o, ")");
}

void
imap_bodystructure(struct isink *o, const struct mime *m, uint32_t i, int ext)
{
	structure(o, m, i, ext);
}

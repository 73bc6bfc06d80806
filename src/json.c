/*
 * json.c: a strict RFC 8259 reader in the style of jsmn (a flat array of
 * tokens, each knowing where its subtree ends) and the string writer.
 *
 * Why our own: kotak links no library but BearSSL, and what `kotak rpc`
 * reads is small (one object of arguments, 64 KiB at most).  Recursive
 * descent, bounded by JSON_DEPTH and the caller's token array.  The reader
 * tells a text that ends too early (JE_SHORT: read more) from a bad one, so
 * the caller can stop reading at the end of the object without waiting for
 * end of input.  Bytes of 0x80 and above pass through strings unchecked;
 * the writer replaces what is not UTF-8.
 */
#include "kotak.h"	/* first: src/libk.h's names (FILE, fprintf, putc) */
#include "json.h"

#include <string.h>

struct jp {
	const char *s;
	size_t	 n, i;
	struct jtok *t;
	int	 max, nt;
};

static int
peek(struct jp *p)
{
	while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' ||
	    p->s[p->i] == '\n' || p->s[p->i] == '\r'))
		p->i++;
	return p->i < p->n ? (unsigned char)p->s[p->i] : -1;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Digits at p->i: how many (0: none). */
static int
digits(struct jp *p)
{
	size_t i = p->i;

	while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
		p->i++;
	return (int)(p->i - i);
}

static int
value(struct jp *p, int depth)
{
	struct jtok *t;
	const char *s = p->s;
	int k, c = peek(p), r;

	if (c < 0)
		return JE_SHORT;
	if (p->nt == p->max || depth > JSON_DEPTH)
		return JE_BIG;
	t = &p->t[k = p->nt++];
	memset(t, 0, sizeof(*t));
	t->start = (int)p->i;
	if (c == '{' || c == '[') {
		t->type = c == '{' ? JT_OBJ : JT_ARR;
		p->i++;
		if (peek(p) == c + 2) {	/* '}' and ']' */
			p->i++;
		} else {
			for (;;) {
				if (c == '{') {
					if ((r = peek(p)) != '"')
						return r < 0 ? JE_SHORT : JE_SYNTAX;
					if ((r = value(p, depth + 1)) < 0)
						return r;
					if ((r = peek(p)) != ':')
						return r < 0 ? JE_SHORT : JE_SYNTAX;
					p->i++;
				}
				if ((r = value(p, depth + 1)) < 0)
					return r;
				p->t[k].n++;
				if ((r = peek(p)) == c + 2)
					break;
				if (r != ',')
					return r < 0 ? JE_SHORT : JE_SYNTAX;
				p->i++;
			}
			p->i++;
		}
		t = &p->t[k];
	} else if (c == '"') {
		t->type = JT_STR;
		t->start = (int)++p->i;
		for (;;) {
			if (p->i >= p->n)
				return JE_SHORT;
			c = (unsigned char)s[p->i++];
			if (c == '"')
				break;
			if (c < 0x20)
				return JE_SYNTAX;
			if (c != '\\')
				continue;
			if (p->i >= p->n)
				return JE_SHORT;
			c = s[p->i++];
			if (c == 'u') {
				for (r = 0; r < 4; r++, p->i++) {
					if (p->i >= p->n)
						return JE_SHORT;
					if (hexval(s[p->i]) < 0)
						return JE_SYNTAX;
				}
			} else if (!strchr("\"\\/bfnrt", c) || !c) {
				return JE_SYNTAX;
			}
		}
		t->len = (int)(p->i - 1 - t->start);
	} else if (c == '-' || (c >= '0' && c <= '9')) {
		t->type = JT_NUM;
		if (c == '-')
			p->i++;
		if (p->i < p->n && s[p->i] == '0')
			p->i++;
		else if (!digits(p))
			return p->i < p->n ? JE_SYNTAX : JE_SHORT;
		if (p->i < p->n && s[p->i] == '.') {
			p->i++;
			if (!digits(p))
				return p->i < p->n ? JE_SYNTAX : JE_SHORT;
		}
		if (p->i < p->n && (s[p->i] | 0x20) == 'e') {
			p->i++;
			if (p->i < p->n && (s[p->i] == '+' || s[p->i] == '-'))
				p->i++;
			if (!digits(p))
				return p->i < p->n ? JE_SYNTAX : JE_SHORT;
		}
		if (p->i >= p->n)	/* more digits may follow */
			return JE_SHORT;
	} else {
		static const char *const w[3] = { "true", "false", "null" };
		for (r = 0; r < 3 && w[r][0] != c; r++)
			;
		if (r == 3)
			return JE_SYNTAX;
		t->type = JT_TRUE + r;
		for (c = 0; w[r][c]; c++, p->i++) {
			if (p->i >= p->n)
				return JE_SHORT;
			if (s[p->i] != w[r][c])
				return JE_SYNTAX;
		}
	}
	if (t->type != JT_STR)
		t->len = (int)p->i - t->start;
	t->next = p->nt;
	return 0;
}

int
json_parse(const char *s, size_t n, struct jtok *t, int max, size_t *end)
{
	struct jp p = { s, n, 0, t, max, 0 };
	int r;

	if (n > 0x7fffffff)
		return JE_BIG;
	if ((r = value(&p, 0)) < 0)
		return r;
	*end = p.i;
	return p.nt;
}

int
json_get(const char *s, const struct jtok *t, int obj, const char *key)
{
	char k[64];
	int i, m;

	if (obj < 0 || t[obj].type != JT_OBJ)
		return -1;
	for (i = obj + 1, m = 0; m < t[obj].n; m++, i = t[i + 1].next)
		if (json_strv(s, t, i, k, sizeof(k)) >= 0 && !strcmp(k, key))
			return i + 1;
	return -1;
}

static unsigned
hex4(const char *p)
{
	return (unsigned)(hexval(p[0]) << 12 | hexval(p[1]) << 8 | hexval(p[2]) << 4 | hexval(p[3]));
}

int
json_strv(const char *s, const struct jtok *t, int i, char *out, size_t n)
{
	const char *p, *e;
	size_t o = 0;
	unsigned u, lo;
	int k;

	if (i < 0 || t[i].type != JT_STR || n == 0)
		return -1;
	for (p = s + t[i].start, e = p + t[i].len; p < e; ) {
		u = (unsigned char)*p++;
		if (u == '\\') {
			u = (unsigned char)*p++;
			if (u == 'u') {
				u = hex4(p);
				p += 4;
				if (u >= 0xd800 && u < 0xdc00 && e - p >= 6 && p[0] == '\\' && p[1] == 'u' &&
				    (lo = hex4(p + 2)) >= 0xdc00 && lo < 0xe000) {
					u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
					p += 6;
				} else if (u >= 0xd800 && u < 0xe000) {
					u = 0xfffd;	/* a lone surrogate */
				}
				if (u == 0)
					return -1;
				/* UTF-8: k continuation bytes */
				k = u < 0x80 ? 0 : u < 0x800 ? 1 : u < 0x10000 ? 2 : 3;
				if (o + k + 1 >= n)
					return -1;
				out[o++] = (char)(k ? ((0xff00 >> (k + 1)) & 0xff) | (u >> (6 * k)) : u);
				while (k--)
					out[o++] = (char)(0x80 | ((u >> (6 * k)) & 0x3f));
				continue;
			}
			u = u == 'b' ? '\b' : u == 'f' ? '\f' : u == 'n' ? '\n' : u == 'r' ? '\r' : u == 't' ? '\t' : u;
		}
		if (o + 1 >= n)
			return -1;
		out[o++] = (char)u;
	}
	out[o] = '\0';
	return (int)o;
}

void
json_str(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	putc('"', f);
	while (*p) {
		int k = 0, i;

		if (*p == '"' || *p == '\\') {
			putc('\\', f);
			putc(*p++, f);
			continue;
		}
		if (*p < 0x20 || *p == 0x7f) {
			fprintf(f, "\\u%04x", *p++);
			continue;
		}
		if (*p < 0x80) {
			putc(*p++, f);
			continue;
		}
		if (*p >= 0xc2 && *p <= 0xdf)
			k = 1;
		else if (*p >= 0xe0 && *p <= 0xef)
			k = 2;
		else if (*p >= 0xf0 && *p <= 0xf4)
			k = 3;
		for (i = 1; k && i <= k; i++)
			if ((p[i] & 0xc0) != 0x80)
				k = 0;
		/* overlongs and surrogates */
		if (k == 2 && ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0)))
			k = 0;
		if (k == 3 && ((p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90)))
			k = 0;
		if (!k) {
			fputs("\\ufffd", f);
			p++;
			continue;
		}
		fwrite(p, 1, k + 1, f);
		p += k + 1;
	}
	putc('"', f);
}

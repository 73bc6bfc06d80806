/*
 * imap_parse.c: a cursor over one assembled IMAP command (imap.c puts
 * literals inline as "{n}\r\n" + n bytes; the final CRLF is gone).  Every
 * function returns -1 on a syntax error (and sets cur->err, which sticks),
 * so a handler can chain calls and check once.  Grammar: RFC 3501 9.
 */
#include "kotak.h"
#include "imap.h"

#include <string.h>

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
		if (n + 1 >= max)
			return fail(a);
		out[n++] = *a->p++;
	}
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

/* A string: quoted or literal, into out (max with the NUL).  NUL bytes
 * are refused. */
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
			if (n + 1 >= max)
				return fail(a);
			out[n++] = *a->p;
		}
		if (a->p >= a->e)
			return fail(a);
		a->p++;
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
	    len + 1 > max)
		return fail(a);
	a->p += 3;
	if (memchr(a->p, '\0', len))
		return fail(a);
	memcpy(out, a->p, len);
	out[len] = '\0';
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

/* fuzz_json.c: the JSON reader and writer (src/json.c) of `kotak rpc`.
 *
 * Input: the text.  Invariants beyond "no sanitizer report":
 * - a parsed value: the token tree is consistent (token 0 spans the text
 *   up to *end, every child lies inside its parent, `next` links sum up,
 *   object members alternate string keys and values, n counts them);
 * - every proper prefix of a parsed object, array or string is JE_SHORT,
 *   never JE_SYNTAX (kotak rpc stops reading at the end of the object, so
 *   a short read must never look like bad JSON), and the value followed by
 *   more bytes parses to the same end;
 * - each string's unescaped form, written back by json_str and parsed
 *   again, unescapes to the same bytes (when they are UTF-8; the writer
 *   replaces the rest) and is never longer than the room given;
 * - json_get finds each key of the top object, and the first value of it.
 */
#include "json.h"
#include "fuzz.h"

#define MAXT 512

static int
utf8_ok(const unsigned char *p)
{
	while (*p) {
		int k = *p < 0x80 ? 0 : *p >= 0xc2 && *p <= 0xdf ? 1 : *p >= 0xe0 && *p <= 0xef ? 2 :
		    *p >= 0xf0 && *p <= 0xf4 ? 3 : -1, i;
		if (k < 0)
			return 0;
		for (i = 1; i <= k; i++)
			if ((p[i] & 0xc0) != 0x80)
				return 0;
		if ((k == 2 && ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0))) ||
		    (k == 3 && ((p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90))))
			return 0;
		p += k + 1;
	}
	return 1;
}

/* Check the subtree at i; returns its next. */
static int
tree(const char *s, const struct jtok *t, int i, int nt, size_t lo, size_t hi)
{
	int k, c;

	FZ_ASSERT(i < nt && t[i].type >= JT_OBJ && t[i].type <= JT_NULL);
	FZ_ASSERT(t[i].start >= (int)lo && t[i].len >= 0 && (size_t)t[i].start + t[i].len <= hi);
	FZ_ASSERT(t[i].next > i && t[i].next <= nt);
	if (t[i].type != JT_OBJ && t[i].type != JT_ARR) {
		FZ_ASSERT(t[i].next == i + 1);
		return t[i].next;
	}
	FZ_ASSERT(s[t[i].start] == (t[i].type == JT_OBJ ? '{' : '['));
	FZ_ASSERT(s[t[i].start + t[i].len - 1] == (t[i].type == JT_OBJ ? '}' : ']'));
	for (c = i + 1, k = 0; k < t[i].n; k++) {
		if (t[i].type == JT_OBJ) {
			FZ_ASSERT(t[c].type == JT_STR);
			c = tree(s, t, c, nt, (size_t)t[i].start, (size_t)t[i].start + t[i].len);
		}
		c = tree(s, t, c, nt, (size_t)t[i].start, (size_t)t[i].start + t[i].len);
	}
	FZ_ASSERT(c == t[i].next);
	return c;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct jtok t[MAXT], t2[MAXT];
	char *s, *v, *v2, *w = NULL, k[64];
	size_t end, end2, cut, wl = 0;
	int nt, nt2, i, r, m, x;
	FILE *f;

	if (size > 8192)
		return 0;
	s = malloc(size + 2);
	FZ_ASSERT(s != NULL);
	memcpy(s, data, size);
	s[size] = '\0';
	nt = json_parse(s, size, t, MAXT, &end);
	FZ_ASSERT(nt == JE_SYNTAX || nt == JE_SHORT || nt == JE_BIG || (nt > 0 && nt <= MAXT));
	if (nt <= 0) {
		free(s);
		return 0;
	}
	FZ_ASSERT(end <= size && tree(s, t, 0, nt, 0, end) == nt);
	FZ_ASSERT(t[0].start + t[0].len == (int)end || t[0].type == JT_STR);
	if (t[0].type != JT_NUM) {
		for (cut = 0; cut < end; cut += 1 + cut / 4)
			FZ_ASSERT(json_parse(s, cut, t2, MAXT, &end2) == JE_SHORT);
		s[size] = ' ';	/* one more byte, as a later read gives it */
		FZ_ASSERT(json_parse(s, size + 1, t2, MAXT, &end2) == nt && end2 == end);
	}
	v = malloc(size + 1);
	v2 = malloc(size * 3 + 8);
	FZ_ASSERT(v != NULL && v2 != NULL);
	for (i = 0; i < nt; i++) {
		if (t[i].type != JT_STR)
			continue;
		r = json_strv(s, t, i, v, size + 1);
		if (r < 0)
			continue;
		FZ_ASSERT((size_t)r == strlen(v) && r <= t[i].len);
		FZ_ASSERT(json_strv(s, t, i, v2, (size_t)r) == -1);	/* one byte short: refused */
		if (!utf8_ok((unsigned char *)v))
			continue;
		f = open_memstream(&w, &wl);
		FZ_ASSERT(f != NULL);
		json_str(f, v);
		fclose(f);
		nt2 = json_parse(w, wl, t2, MAXT, &end2);
		FZ_ASSERT(nt2 == 1 && end2 == wl && t2[0].type == JT_STR);
		FZ_ASSERT(json_strv(w, t2, 0, v2, size * 3 + 8) == r && !memcmp(v, v2, (size_t)r));
		free(w);
		w = NULL;
	}
	if (t[0].type == JT_OBJ)
		for (i = 1, m = 0; m < t[0].n; m++, i = t[i + 1].next)
			if (json_strv(s, t, i, k, sizeof(k)) >= 0) {
				x = json_get(s, t, 0, k);
				FZ_ASSERT(x > 0 && x <= i + 1 && t[x - 1].type == JT_STR);
			}
	free(v);
	free(v2);
	free(s);
	return 0;
}

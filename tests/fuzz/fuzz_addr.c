/* fuzz_addr.c: addr_parse_path and addr_format (src/addr.c).
 *
 * The input (NUL-terminated copy) is parsed with each of the four flag
 * combinations.  On success: the local part is at most 64 bytes, the
 * domain at most 255, the path itself at most 256 bytes (RFC 5321
 * 4.5.3.1), rest points into the input past any blanks, and addr_format's
 * text, put back in <>, parses again to the same local part and domain.
 * Without ADDR_UTF8 nothing non-ASCII gets through. */
#include "kotak.h"
#include "fuzz.h"


static void
check(const char *in, size_t n, int flags)
{
	struct addr a, b;
	const char *rest = NULL, *rest2 = NULL;
	char fmt[2 * ADDR_MAX + 8], wrap[2 * ADDR_MAX + 16];
	size_t ll, dl, i;
	int r;

	memset(&a, 0x5a, sizeof(a));
	r = addr_parse_path(in, &a, flags, &rest);
	FZ_ASSERT(r == 0 || r == -1);
	if (r < 0)
		return;
	FZ_ASSERT(rest >= in && rest <= in + n);
	ll = strnlen(a.local, sizeof(a.local));
	dl = strnlen(a.domain, sizeof(a.domain));
	FZ_ASSERT(ll < sizeof(a.local) && dl < sizeof(a.domain));
	FZ_ASSERT(ll <= 64);
	FZ_ASSERT(dl <= 255);
	/* the path, <> included, is at most 256 bytes; then blanks are skipped */
	{
		const char *e = rest;
		while (e > in && e[-1] == ' ')
			e--;
		FZ_ASSERT(e > in && e[-1] == '>');
		FZ_ASSERT(e - in <= ADDR_MAX);
		FZ_ASSERT(*rest != ' ');
	}
	if (!(flags & ADDR_NULL_OK))
		FZ_ASSERT(ll > 0 || dl > 0 || 0);
	if (ll == 0 && dl == 0)
		FZ_ASSERT(flags & ADDR_NULL_OK);
	if (dl == 0 && ll > 0)
		FZ_ASSERT(strcaseeq(a.local, "postmaster"));
	if (!(flags & ADDR_UTF8)) {
		for (i = 0; i < ll; i++)
			FZ_ASSERT((unsigned char)a.local[i] < 0x80);
		for (i = 0; i < dl; i++)
			FZ_ASSERT((unsigned char)a.domain[i] < 0x80);
	}
	for (i = 0; i < ll; i++)	/* no control characters in a local part */
		FZ_ASSERT((unsigned char)a.local[i] >= 32 && a.local[i] != 127);

	/* round trip through the formatter, at the size smtp_in.c uses */
	addr_format(&a, fmt, ADDR_MAX);
	FZ_ASSERT(strlen(fmt) < ADDR_MAX);
	snprintf(wrap, sizeof(wrap), "<%s>", fmt);
	memset(&b, 0x5a, sizeof(b));
	if (addr_parse_path(wrap, &b, flags | ADDR_NULL_OK, &rest2) != 0) {
		fprintf(stderr, "addr_format output does not parse again: %s\n", wrap);
		abort();
	}
	FZ_ASSERT(*rest2 == '\0');
	if (strcmp(a.local, b.local) || strcmp(a.domain, b.domain)) {
		fprintf(stderr, "round trip changed the address: local '%s' -> '%s', domain '%s' -> '%s'\n",
		    a.local, b.local, a.domain, b.domain);
		abort();
	}
	/* a smaller output buffer truncates, never overflows */
	{
		char *small = malloc(16);
		FZ_ASSERT(small != NULL);
		addr_format(&a, small, 16);
		FZ_ASSERT(strnlen(small, 16) < 16);
		free(small);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;
	int flags;

	if (size > 4 * ADDR_MAX)
		return 0;
	s = malloc(size + 1);
	FZ_ASSERT(s != NULL);
	memcpy(s, data, size);
	s[size] = '\0';
	for (flags = 0; flags < 4; flags++)
		check(s, strlen(s), flags);
	free(s);
	return 0;
}

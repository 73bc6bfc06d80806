/* mime: the part table on hand-made messages (offsets, wire sizes, lines,
 * nesting, hostile input), fed whole and byte by byte; the renderers.
 * `test_mime dump FILE` prints BODY, BODYSTRUCTURE and ENVELOPE of each
 * message of an mbox, for tests/integ/test_imap_mime.py (Dovecot
 * comparison). */
#include "kotak.h"
#include "mime.h"
#include "imap.h"
#include "t.h"

#include <stdlib.h>

static char mem[MIME_SLOT];

static struct mime *
parse(const char *s, size_t n, size_t step, size_t memsz)
{
	static struct mime m;
	size_t i, k;

	mime_init(&m, mem, memsz, 0);
	for (i = 0; i < n; i += k) {
		k = n - i < step ? n - i : step;
		mime_push(&m, s + i, k);
	}
	mime_end(&m);
	return &m;
}

static const char *
render(const struct mime *m, int what)
{
	static char out[1 << 20];
	struct isink o = { out, sizeof(out) - 1, 0, 0, 0 };

	if (what == 0)
		imap_bodystructure(&o, m, 0, 1);
	else if (what == 1)
		imap_bodystructure(&o, m, 0, 0);
	else
		imap_envelope(&o, m, 0);
	*o.p = '\0';
	return out;
}

/* Every split of the input gives the same table and rendering. */
static void
same_whatever_split(const char *s)
{
	char a[8192];
	size_t steps[] = { 1, 2, 3, 7, 64, 85, 1000 }, i;

	strlcpy_k(a, render(parse(s, strlen(s), 1 << 20, sizeof(mem)), 0), sizeof(a));
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
		CHECK_STR(render(parse(s, strlen(s), steps[i], sizeof(mem)), 0), a);
}

static void
plain(void)
{
	const char *s = "From: a@b\nSubject: hi\n\nline1\r\nline2\n";
	struct mime *m = parse(s, strlen(s), 1000, sizeof(mem));
	struct mime_part *p = mime_part(m, 0);

	CHECK_INT(m->n, 1);
	CHECK_INT(p->hoff, 0);
	CHECK_INT(p->boff, 23);
	CHECK_INT(p->end, strlen(s));
	CHECK_INT(p->hsize, 26);
	CHECK_INT(p->bsize, 14);
	CHECK_INT(p->lines, 2);
	CHECK_STR(render(m, 0), "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 14 2 NIL NIL NIL NIL)");
	CHECK_STR(render(m, 2), "(NIL \"hi\" ((NIL NIL \"a\" \"b\")) ((NIL NIL \"a\" \"b\")) ((NIL NIL \"a\" \"b\")) NIL NIL NIL NIL NIL)");
	same_whatever_split(s);
}

static void
multipart(void)
{
	const char *s = "Content-Type: multipart/mixed; boundary=\"b\"\n\npre\n--b\n\nA\n--b\nContent-Type: text/html\n\n>From x\n\n--b--\nepi\n";
	struct mime *m = parse(s, strlen(s), 1000, sizeof(mem));

	CHECK_INT(m->n, 3);
	CHECK_INT(mime_part(m, 1)->depth, 1);
	CHECK_INT(mime_part(m, 1)->bsize, 1);
	CHECK_INT(mime_part(m, 1)->lines, 0);
	CHECK_INT(mime_part(m, 2)->bsize, 8);	/* ">From x" unquoted, CRLF, and the blank line's CRLF belongs to the boundary */
	CHECK_INT(mime_part(m, 2)->lines, 1);
	CHECK_STR(render(m, 1), "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 1 0)"
	    "(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 8 1) \"mixed\")");
	same_whatever_split(s);
}

static void
rfc822(void)
{
	const char *s = "Content-Type: message/rfc822\n\nSubject: in\nContent-Type: multipart/alternative; boundary=x\n\n--x\n\nt\n--x--\n";
	struct mime *m = parse(s, strlen(s), 1000, sizeof(mem));

	CHECK_INT(m->n, 3);
	CHECK_INT(mime_part(m, 0)->kind, MK_MSG);
	CHECK_INT(mime_part(m, 1)->kind, MK_MULTI);
	CHECK_INT(mime_part(m, 1)->hoff, mime_part(m, 0)->boff);
	CHECK_INT(mime_part(m, 2)->depth, 2);
	same_whatever_split(s);
}

/* 10,000 parts: the block fills, the rest is body of the part under way;
 * memory stays the block. */
static void
many_parts(void)
{
	size_t n = 0, cap = 10000 * 40 + 200;
	char *s = malloc(cap);
	int i;
	struct mime *m;

	n += sprintf(s, "Content-Type: multipart/mixed; boundary=p\n\n");
	for (i = 0; i < 10000; i++)
		n += sprintf(s + n, "--p\nContent-Type: text/plain\n\nx\n");
	n += sprintf(s + n, "--p--\n");
	m = parse(s, n, 4096, sizeof(mem));
	CHECK(m->full);
	CHECK(m->n > 500 && m->n < 10000);
	CHECK_INT(mime_part(m, 0)->bsize + mime_part(m, 0)->hsize, n + 10000 * 4 + 3);	/* one CR per line */
	CHECK_INT(mime_part(m, 0)->end, n);
	free(s);
}

/* Hostile: 1 MB header line, no boundary, boundary of 200 bytes, deep nesting. */
static void
hostile(void)
{
	size_t n = 2 << 20, i;
	char *s = malloc(n + 100);
	struct mime *m;

	strcpy(s, "Subject: ");
	for (i = 9; i < n; i++)
		s[i] = 'a' + i % 26;
	strcpy(s + n, "\n\nbody\n");
	m = parse(s, strlen(s), 65536, sizeof(mem));
	CHECK_INT(m->n, 1);
	CHECK_INT(mime_part(m, 0)->bsize, 6);
	CHECK(strlen(render(m, 2)) < MIME_FIELD + 200);
	free(s);

	s = malloc(60 * 80 + 100);
	n = 0;
	for (i = 0; i < 60; i++)
		n += sprintf(s + n, "Content-Type: multipart/mixed; boundary=\"%zuL\"\n\n--%zuL\n", i, i);
	n += sprintf(s + n, "\nx\n");
	m = parse(s, n, 7, sizeof(mem));
	CHECK_INT(mime_part(m, m->n - 1)->depth, MIME_DEPTH);
	CHECK_INT(m->n, MIME_DEPTH + 1);
	free(s);
}

static void
small_block(void)
{
	const char *s = "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nA\n--b\n\nB\n--b--\n";
	struct mime *m = parse(s, strlen(s), 3, 4096);

	CHECK_INT(m->n, 3);
}

static void
dump(const char *path)
{
	FILE *f = fopen(path, "rb");
	static char msg[8 << 20];
	char line[1 << 16];
	size_t n = 0;
	int have = 0, num = 0;
	struct mime *m;

	if (f == NULL)
		exit(2);
	for (;;) {
		char *l = fgets(line, sizeof(line), f);
		if (l == NULL || !strncmp(line, "From ", 5)) {
			if (have) {
				if (n && msg[n - 1] == '\n')
					n--;	/* the mbox separator line */
				m = parse(msg, n, 4096, sizeof(mem));
				num++;
				printf("%d BODY %s%c\n", num, render(m, 1), 0);
				printf("%d BODYSTRUCTURE %s%c\n", num, render(m, 0), 0);
				printf("%d ENVELOPE %s%c\n", num, render(m, 2), 0);
			}
			if (l == NULL)
				break;
			have = 1;
			n = 0;
			continue;
		}
		if (n + strlen(line) < sizeof(msg)) {
			memcpy(msg + n, line, strlen(line));
			n += strlen(line);
		}
	}
	fclose(f);
}

int
main(int argc, char **argv)
{
	static const struct t_case tc[] = {
		T(plain), T(multipart), T(rfc822), T(many_parts), T(hostile), T(small_block), { NULL, NULL }
	};

	if (argc == 3 && !strcmp(argv[1], "dump")) {
		dump(argv[2]);
		return 0;
	}
	return t_main(tc, argc, argv);
}

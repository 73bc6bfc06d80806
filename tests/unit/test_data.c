/* DATA parser: end marker, dot-unstuffing, smuggling, header filter, limits. */
#include "kotak.h"
#include "t.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char got[65536];
static size_t gotlen;

/* Push `in` in pieces of `step` bytes (0 = whole); returns bytes used up
 * to and including the end marker, or -1 if no end marker. */
static long
run(const char *in, size_t n, size_t step, long long max, struct data_rd *d)
{
	FILE *f = tmpfile();
	size_t off = 0;
	int done = 0;

	data_start(d, fileno(f), max);
	while (off < n && !done) {
		size_t k = step && step < n - off ? step : n - off;
		off += data_push(d, in + off, k, &done);
	}
	rewind(f);
	gotlen = fread(got, 1, sizeof(got) - 1, f);
	got[gotlen] = '\0';
	fclose(f);
	return done ? (long)off : -1;
}

static void
end_marker(void)
{
	struct data_rd d;
	const char *m = "Subject: x\r\n\r\nbody\r\n.\r\nMAIL FROM:<a@b>\r\n";
	size_t steps[] = { 0, 1, 2, 3, 7 };
	unsigned i;

	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		CHECK_INT(run(m, strlen(m), steps[i], 1000, &d), strlen("Subject: x\r\n\r\nbody\r\n.\r\n"));
		CHECK_STR(got, "Subject: x\n\nbody\n");
		CHECK_INT(d.err, DE_OK);
	}
	/* an empty message is just the marker */
	CHECK_INT(run(".\r\n", 3, 0, 1000, &d), 3);
	CHECK_INT(gotlen, 0);
}

static void
smuggling(void)
{
	struct data_rd d;
	const char *bad[] = {
		"a\r\n\n.\nMAIL FROM:<x@y>\r\n",	/* \n.\n */
		"a\r\n\n.\r\nMAIL FROM:<x@y>\r\n",	/* \n.\r\n after bare LF */
		"a\r\n\r.\rMAIL FROM:<x@y>\r\n",	/* \r.\r */
		"a\r\n.\nb\r\n",			/* .\n */
		"a\r\n.\r\r\nb\r\n",
	};
	unsigned i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_INT(run(bad[i], strlen(bad[i]), 0, 1000, &d), -1);
	/* after such a line, a real marker still ends the message, and the
	 * smuggled command is content */
	run("a\r\n\n.\nMAIL FROM:<x@y>\r\n.\r\n", 28, 1, 1000, &d);
	CHECK_STR(got, "a\n\n\nMAIL FROM:<x@y>\n");
	/* bare CR stays content */
	run("a\rb\r\n.\r\n", 8, 0, 1000, &d);
	CHECK_STR(got, "a\rb\n");
}

static void
unstuff(void)
{
	struct data_rd d;
	const char *m = "..x\r\n...\r\n.\r\n";

	run(m, strlen(m), 1, 1000, &d);
	CHECK_STR(got, ".x\n..\n");
}

static void
headers(void)
{
	struct data_rd d;
	const char *m = "Status: RO\r\nX-UID: 7\r\n\tfolded\r\nSubject: hi\r\n"
	    "content-length: 3\r\nX-Statuses: keep\r\nReceived: a\r\nReceived: b\r\n"
	    "\r\nStatus: body keeps it\r\n.\r\n";

	run(m, strlen(m), 3, 1000, &d);
	CHECK_STR(got, "Subject: hi\nX-Statuses: keep\nReceived: a\nReceived: b\n\nStatus: body keeps it\n");
	CHECK_INT(d.received, 2);
}

/* issue 14: any amount of blanks before the colon (18 spaces or tabs got
 * past a 24-byte name buffer), cut anywhere by the pushes; long names pass */
static void
headers_any_blanks(void)
{
	static char m[20000], want[20000];
	struct data_rd d;
	size_t steps[] = { 0, 1, 7, 100, 4096 }, n, w, i, k;

	for (k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
		n = (size_t)snprintf(m, sizeof(m), "X-Status%*s: F\r\nSubject: a\r\nStatus", 18, "");
		for (i = 0; i < 12000; i++)	/* past data.c's 8 KiB output buffer */
			m[n++] = i & 1 ? '\t' : ' ';
		n += (size_t)snprintf(m + n, sizeof(m) - n, ":RO\r\n\tmore\r\nX-A-Very-Long-Header-Name-Status: x\r\n"
		    "Status \t x\r\nReceived \t: r\r\n\r\nbody\r\n.\r\n");
		w = (size_t)snprintf(want, sizeof(want), "Subject: a\nX-A-Very-Long-Header-Name-Status: x\n"
		    "Status \t x\nReceived \t: r\n\nbody\n");
		CHECK_INT(run(m, n, steps[k], 100000, &d), n);
		CHECK_INT(gotlen, w);
		CHECK_STR(got, want);
		CHECK_INT(d.written, w);
		CHECK_INT(d.received, 1);
		CHECK_INT(d.err, DE_OK);
	}
}

static void
limits(void)
{
	struct data_rd d;
	char big[2000];

	memset(big, 'x', sizeof(big));
	memcpy(big + sizeof(big) - 5, "\r\n.\r\n", 5);
	CHECK_INT(run(big, sizeof(big), 100, 1000, &d), sizeof(big));
	CHECK_INT(d.err, DE_SIZE);
	CHECK_INT(run(big, sizeof(big), 100, 100000, &d), sizeof(big));
	CHECK_INT(d.err, DE_OK);
	CHECK_INT(d.written, sizeof(big) - 4);
}

static void
write_error(void)
{
	struct data_rd d;
	int done;
	const char *m = "hello\r\n.\r\n";

	data_start(&d, -1, 1000);	/* a bad fd: the sticky error, the marker still found */
	data_push(&d, m, strlen(m), &done);
	CHECK_INT(done, 1);
	CHECK_INT(d.err, DE_IO);
}

int
main(int argc, char **argv)
{
	static const struct t_case tc[] = {
		T(end_marker), T(smuggling), T(unstuff), T(headers), T(headers_any_blanks), T(limits), T(write_error), { 0, 0 }
	};
	return t_main(tc, argc, argv);
}

/* port: what kotak assumes of the C library on every target (issue 6).
 * Runs natively and, built by `make test-cross ARCH=...`, under qemu-user on
 * 32-bit big- and little-endian MIPS and ARM with musl and uClibc-ng. */
#include "kotak.h"
#include "t.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* mbox and spool files over 2 GiB: off_t must be 64-bit with the flags
 * kotak builds with (-D_FILE_OFFSET_BITS=64; uClibc-ng and glibc default to
 * 32 bits on 32-bit targets). */
static void
off_t_64bit(void)
{
	struct stat st;

	CHECK_INT(sizeof(off_t), 8);
	CHECK_INT(sizeof(st.st_size), 8);
}

/* The large-file system calls work end to end: a sparse 3 GiB file. */
static void
big_file(void)
{
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	const off_t big = (off_t)3 << 30;
	char path[256], c = 0;
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "%s/kotak-port-XXXXXX", tmp);
	fd = mkstemp(path);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	unlink(path);
	if (ftruncate(fd, big + 5) < 0) {
		printf("    ftruncate(3 GiB): %s\n", strerror(errno));
		t_fail = 1;
		close(fd);
		return;
	}
	CHECK(fstat(fd, &st) == 0);
	CHECK_INT(st.st_size, big + 5);
	CHECK_INT(lseek(fd, 0, SEEK_END), big + 5);
	CHECK_INT(pwrite(fd, "x", 1, big + 1), 1);
	CHECK_INT(pread(fd, &c, 1, big + 1), 1);
	CHECK_INT(c, 'x');
	CHECK(ftruncate(fd, big - 1) == 0);	/* mbox rollback: truncate to an exact old size */
	CHECK(fstat(fd, &st) == 0);
	CHECK_INT(st.st_size, big - 1);
	close(fd);
}

/* Dates survive whatever time_t's width (uClibc-ng 1.0.35 on 32-bit: 4
 * bytes even with _TIME_BITS=64); the width is printed for the record. */
static void
time_values(void)
{
	char d[64];

	printf("    sizeof(time_t)=%d sizeof(off_t)=%d sizeof(long)=%d\n",
	    (int)sizeof(time_t), (int)sizeof(off_t), (int)sizeof(long));
	ctime_date(d, sizeof(d), (time_t)1795709479);
	CHECK_STR(d, "Thu Nov 26 16:11:19 2026");
	rfc5322_date(d, sizeof(d), (time_t)1795709479);
	CHECK_STR(d, "Thu, 26 Nov 2026 16:11:19 +0000");
	ctime_date(d, sizeof(d), (time_t)0x7fffffff);
	CHECK_STR(d, "Tue Jan 19 03:14:07 2038");
	if (sizeof(time_t) > 4) {
		ctime_date(d, sizeof(d), (time_t)2208988800LL);
		CHECK_STR(d, "Sun Jan  1 00:00:00 2040");
	}
	CHECK(time(NULL) > (time_t)1700000000);
}

static const struct t_case tests[] = {
	T(off_t_64bit),
	T(big_file),
	T(time_values),
	{ NULL, NULL }
};

int
main(int argc, char **argv)
{
	return t_main(tests, argc, argv);
}

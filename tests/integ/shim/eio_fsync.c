/* LD_PRELOAD shim for test_faults: fsync() fails with EIO on files whose
 * path contains $SHIM_FAIL_FSYNC (a disk error on one mailbox). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
fsync(int fd)
{
	static int (*real)(int);
	const char *pat = getenv("SHIM_FAIL_FSYNC");
	char p[64], t[4096];
	ssize_t n;

	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	if (pat && *pat && (n = readlink(p, t, sizeof(t) - 1)) > 0) {
		t[n] = '\0';
		if (strstr(t, pat))
			return errno = EIO, -1;
	}
	return real(fd);
}

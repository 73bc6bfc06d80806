/* typeprobe: what a C library gives kotak on this target.  Built by
 * scripts/toolchain.sh with each cross toolchain and the flags kotak uses
 * (-D_FILE_OFFSET_BITS=64), run under qemu-user.  Exit 1 when off_t is not
 * 64-bit (an mbox over 2 GiB would break).  No floating point: it must run
 * on an FPU-less 24Kc. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/types.h>
#include <sys/stat.h>

int main(void)
{
	unsigned int one = 1;
	const char *libc = "musl or other (no id macro)";
	time_t t;
	struct tm tm;
	char buf[64];

#if defined(__UCLIBC__)
	libc = "uClibc-ng " /* also defines __GLIBC__ 2.2 */;
#elif defined(__GLIBC__)
	libc = "glibc";
#endif
	printf("libc: %s\n", libc);
	printf("byte order: %s-endian, sizeof(long)=%d, sizeof(void *)=%d\n",
	       *(unsigned char *)&one ? "little" : "big", (int)sizeof(long), (int)sizeof(void *));
	printf("sizeof(off_t)=%d sizeof(time_t)=%d sizeof(st_size)=%d sizeof(st_mtime)=%d\n",
	       (int)sizeof(off_t), (int)sizeof(time_t), (int)sizeof(((struct stat *)0)->st_size),
	       (int)sizeof(((struct stat *)0)->st_mtime));
	/* the last second a 32-bit time_t holds, and one more */
	t = (time_t)0x7fffffff;
	gmtime_r(&t, &tm);
	strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
	printf("time_t 2^31-1 = %s UTC\n", buf);
	if (sizeof(time_t) > 4) {
		t = (time_t)((long long)0x7fffffff + 1);
		gmtime_r(&t, &tm);
		strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
		printf("time_t 2^31   = %s UTC\n", buf);
	} else {
		printf("time_t 2^31   = does not fit: 32-bit time_t ends in 2038\n");
	}
	t = time(NULL);
	printf("now = %lld\n", (long long)t);
	if (sizeof(off_t) != 8) {
		printf("FAIL: off_t is %d bytes with -D_FILE_OFFSET_BITS=64\n", (int)sizeof(off_t));
		return 1;
	}
	return 0;
}

/* log.c: one line per event to stderr or syslog; never blocks the loop.
 * A line that cannot be written at once is dropped and counted, and the
 * count is reported with the next line that gets through. */
#include "kotak.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <fcntl.h>

static int log_fd = 2;
static int log_sys;
static unsigned long dropped;
#if ENABLE_RPC
/* The last warnings and errors, for the status socket (ctl.c). */
#define RECENT	8
static struct {
	time_t	 t;
	char	 s[160];
} recent[RECENT];
static unsigned nrecent;

/* The i-th most recent warning (0: the newest), or NULL. */
const char *
log_recent(unsigned i, time_t *t, unsigned long *ndropped)
{
	*ndropped = dropped;
	if (i >= nrecent || i >= RECENT)
		return NULL;
	i = (nrecent - 1 - i) % RECENT;
	*t = recent[i].t;
	return recent[i].s;
}
#endif

void
log_init(int to_syslog)
{
	struct stat st;

	if (log_sys && log_fd >= 0)
		close(log_fd);
	log_sys = 0;
	log_fd = 2;
#if ENABLE_SYSLOG
	if (to_syslog) {
		struct sockaddr_un sun;
		int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		strlcpy_k(sun.sun_path, "/dev/log", sizeof(sun.sun_path));
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
			set_nonblock(fd);
			log_fd = fd;
			log_sys = 1;
			return;
		}
		if (fd >= 0)
			close(fd);
	}
#endif
	/* A pipe (procd, a test harness) must not stall the loop when full. */
	if (fstat(2, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)))
		set_nonblock(2);
}

static void log_emit(int, const char *, va_list, int) __attribute__((format(printf, 2, 0)));
static void
log_emit(int pri, const char *fmt, va_list ap, int err)
{
	char line[1024];
	int n = 0, m, msg;

	if (log_sys)	/* facility mail (2) */
		n = snprintf(line, sizeof(line), "<%d>kotak[%d]: ", 16 + pri, (int)getpid());
	else
		n = snprintf(line, sizeof(line), "kotak: ");
	if (dropped)
		n += snprintf(line + n, sizeof(line) - n, "(%lu log lines dropped) ", dropped);
	m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	msg = n;
	n = m < 0 ? n : n + m;
	if (n > (int)sizeof(line) - 2)
		n = sizeof(line) - 2;
	if (err)
		n += snprintf(line + n, sizeof(line) - n, ": %s", strerror(err));
	if (n > (int)sizeof(line) - 2)
		n = sizeof(line) - 2;
#if ENABLE_RPC
	if (pri <= 4) {
		unsigned k = nrecent++ % RECENT;
		recent[k].t = time(NULL);
		snprintf(recent[k].s, sizeof(recent[k].s), "%.*s", n - msg, line + msg);
	}
#else
	(void)msg;
#endif
	if (!log_sys)
		line[n++] = '\n';
	if (write(log_fd, line, n) == n)
		dropped = 0;
	else
		dropped++;
}

void
log_info(const char *fmt, ...)
{
	va_list ap;
	int e = errno;

	va_start(ap, fmt);
	log_emit(6, fmt, ap, 0);
	va_end(ap);
	errno = e;
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;
	int e = errno;

	va_start(ap, fmt);
	log_emit(4, fmt, ap, 0);
	va_end(ap);
	errno = e;
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;
	int e = errno;

	va_start(ap, fmt);
	log_emit(4, fmt, ap, e);
	va_end(ap);
	errno = e;
}

void
fatal(const char *fmt, ...)
{
	va_list ap;
	int e = errno;

	va_start(ap, fmt);
	log_emit(2, fmt, ap, e);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(2, fmt, ap, 0);
	va_end(ap);
	exit(1);
}

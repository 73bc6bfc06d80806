/*
 * ctl.c: the daemon's status socket, read by `kotak rpc call status`.
 *
 * What a running daemon alone knows (its sessions, listeners, recent
 * warnings) lives in its memory.  Routers' flash wears, so it is never
 * written to data_dir, and nothing is written anywhere unless asked: the
 * daemon listens on a Linux abstract unix socket (a name in the kernel, no
 * file: nothing to create in a tmpfs, to chown after dropping privileges or
 * to clean up after kill -9), named after data_dir, which holds one daemon
 * at a time (its pid file lock).  Each connection gets one JSON object and
 * is closed; there is no request to read, so a client can never hold the
 * loop.  Cheaper than a signal and a status file: no timer, no polling, and
 * the answer is complete when the client reads end of file.
 *
 * Who may ask: root and kotak's own uid (SO_PEERCRED); others get nothing.
 * Who answers: the client checks the socket's owner is the pid in the pid
 * file, so no other process can pose as the daemon by taking the name.
 */
#define _GNU_SOURCE	/* struct ucred */
#include "kotak.h"

#if ENABLE_RPC
#include "json.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int ctl_fd = -1;
static time_t started;

/* "\0kotak.HASH": FNV-1a of data_dir (a collision cannot mix daemons up:
 * the client checks the pid). */
static socklen_t
ctl_addr(struct sockaddr_un *sun)
{
	unsigned h = 2166136261u;
	const char *p;

	for (p = cfg.data_dir; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
	    snprintf(sun->sun_path + 1, sizeof(sun->sun_path) - 1, "kotak.%08x", h));
}

void
ctl_open(void)
{
	struct sockaddr_un sun;
	socklen_t l = ctl_addr(&sun);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	started = time(NULL);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, l) < 0 || listen(fd, 8) < 0 || set_nonblock(fd) < 0) {
		log_warn("status socket @%s (kotak rpc cannot see this daemon's sessions)", sun.sun_path + 1);
		if (fd >= 0)
			close(fd);
		return;
	}
	ctl_fd = fd;
}

int
ctl_fds(fd_set *rd, int maxfd)
{
	if (ctl_fd < 0)
		return maxfd;
	FD_SET(ctl_fd, rd);
	return ctl_fd > maxfd ? ctl_fd : maxfd;
}

/* A few hundred bytes into a fresh socket whose buffer holds far more:
 * the writes never block. */
static void
answer(FILE *f)
{
	int n[PROTO_NUM] = { 0 }, i, first = 1;
	unsigned long dropped;
	const char *e;
	time_t t;

	for (i = 0; i < CONFIG_MAX_CONNS; i++)
		if (conns[i].fd >= 0)
			n[conns[i].listen_proto]++;
	fprintf(f, "{\"pid\":%d,\"started\":%lld,\"uptime\":%lld,\"version\":\"%s\",\"sessions_max\":%d,"
	    "\"sessions\":{", (int)getpid(), (long long)started, (long long)(time(NULL) - started),
	    KOTAK_VERSION, cfg.max_sessions);
	for (i = 0; i < PROTO_NUM; i++)
		if ((ENABLE_POP3 || (i != PROTO_POP3 && i != PROTO_POP3S)) &&
		    (ENABLE_IMAP || (i != PROTO_IMAP && i != PROTO_IMAPS)))
			fprintf(f, "%s\"%s\":%d", i ? "," : "", proto_names[i], n[i]);
	fprintf(f, "},\"listeners\":[");
	for (i = 0; i < cfg.nlisten; i++)
		fprintf(f, "%s{\"proto\":\"%s\",\"address\":\"%s\",\"port\":%d,\"open\":%s}", i ? "," : "",
		    proto_names[cfg.listen[i].proto], cfg.listen[i].addr, cfg.listen[i].port,
		    listen_is_open(&cfg.listen[i]) ? "true" : "false");
	fprintf(f, "],\"errors\":[");
	for (i = 0; (e = log_recent(i, &t, &dropped)) != NULL; i++, first = 0) {
		fprintf(f, "%s{\"time\":%lld,\"text\":", first ? "" : ",", (long long)t);
		json_str(f, e);
		putc('}', f);
	}
	fprintf(f, "],\"log_dropped\":%lu}", dropped);
}

void
ctl_io(fd_set *rd)
{
	struct ucred cr;
	socklen_t cl = sizeof(cr);
	FILE *f;
	int fd, k;

	if (ctl_fd < 0 || !FD_ISSET(ctl_fd, rd))
		return;
	for (k = 0; k < 4 && (fd = accept(ctl_fd, NULL, NULL)) >= 0; k++) {
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0 ||
		    (cr.uid != 0 && cr.uid != geteuid()) || (f = fdopen(fd, "w")) == NULL) {
			close(fd);
			continue;
		}
		answer(f);
		fclose(f);
	}
}

/* Client side: the status object of the daemon pid into buf; its length,
 * or -1 (no answer within 2 s, or not from pid). */
int
ctl_query(pid_t pid, char *buf, size_t n)
{
	struct sockaddr_un sun;
	struct pollfd pf;
	struct ucred cr;
	socklen_t cl = sizeof(cr), l = ctl_addr(&sun);
	size_t got = 0;
	ssize_t r;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	/* blocking connect: a listening abstract socket answers at once or
	 * refuses (ECONNREFUSED; EAGAIN when its backlog is full) */
	if (connect(fd, (struct sockaddr *)&sun, l) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0 || cr.pid != pid)
		goto fail;
	pf.fd = fd;
	pf.events = POLLIN;
	while (got < n - 1 && poll(&pf, 1, 2000) == 1) {
		if ((r = read(fd, buf + got, n - 1 - got)) < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r < 0)
				goto fail;
			close(fd);
			buf[got] = '\0';
			return (int)got;
		}
		got += (size_t)r;
	}
fail:
	close(fd);
	return -1;
}
#endif

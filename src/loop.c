/* loop.c: the one select() loop.  Each pass rebuilds the fd sets from what
 * each slot wants, sleeps until the earliest deadline, and then runs I/O,
 * timeouts, the group commit and a slice of queue work.  Signals reach it
 * through a self-pipe. */
#include "kotak.h"
#include "dns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

volatile int loop_quit;
static int sigpipe_fd[2] = { -1, -1 };
static volatile sig_atomic_t got_hup, got_usr1;

struct listener {
	int	 fd;
	struct cfg_listen l;
};
static struct listener lst[CONFIG_MAX_LISTEN];
static int nlst;
static time_t accept_pause;	/* out of fds: stop polling listeners until then */
#define LISTEN_BACKLOG	1024
#define ACCEPT_BURST	256	/* accepts a listener gets in one pass of the loop */

extern void main_reload(void);
extern const struct proto imap_proto;

static const struct proto *const protos[PROTO_NUM] = {
	&smtp_in_proto, &smtp_in_proto, &smtp_in_proto,
#if ENABLE_POP3
	&pop3_proto, &pop3_proto,
#else
	NULL, NULL,
#endif
#if ENABLE_IMAP
	&imap_proto, &imap_proto	/* a build with IMAP on must have it */
#else
	NULL, NULL
#endif
};

static void
on_signal(int sig)
{
	int e = errno;
	char c = (char)sig;

	if (sig == SIGHUP)
		got_hup = 1;
	else if (sig == SIGUSR1)
		got_usr1 = 1;
	else
		loop_quit = 1;
	if (write(sigpipe_fd[1], &c, 1) < 0) {
		/* pipe full: a wakeup is already pending */
	}
	errno = e;
}

void
loop_init(void)
{
	struct sigaction sa;

	if (pipe(sigpipe_fd) < 0)
		fatal("pipe");
	set_nonblock(sigpipe_fd[0]);
	set_nonblock(sigpipe_fd[1]);
	fcntl(sigpipe_fd[0], F_SETFD, FD_CLOEXEC);
	fcntl(sigpipe_fd[1], F_SETFD, FD_CLOEXEC);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	conn_init();
}

static int
listen_open(const struct cfg_listen *l)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, one = 1, fam = strchr(l->addr, ':') ? AF_INET6 : AF_INET;

	memset(&ss, 0, sizeof(ss));
	if (fam == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(l->port);
		inet_pton(AF_INET, l->addr, &s4->sin_addr);
		sl = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(l->port);
		inet_pton(AF_INET6, l->addr, &s6->sin6_addr);
		sl = sizeof(*s6);
	}
	if ((fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fam == AF_INET6)	/* '::' means IPv6 only; list 0.0.0.0 too for both */
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	/* a backlog that outlasts a burst: when it is full the kernel drops the
	 * SYN and the client waits for its retransmission, 1 s or more (the
	 * kernel caps it at net.core.somaxconn: 4096 since Linux 5.4, 128
	 * before; the queued sockets are the kernel's memory, not ours) */
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, LISTEN_BACKLOG) < 0 ||
	    set_nonblock(fd) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Listeners of a config being applied: an fd, or -2 - i to keep lst[i]. */
static struct listener fresh[CONFIG_MAX_LISTEN];
static int nfresh;

/* see kotak.h: the ones that stay keep their sockets (a reload drops
 * nothing); a new one that cannot open undoes the others. */
int
listen_prepare(const struct cfg *c)
{
	unsigned char used[CONFIG_MAX_LISTEN] = { 0 };
	const struct cfg_listen *l;
	int i;

	for (nfresh = 0; nfresh < c->nlisten; nfresh++) {
		l = &c->listen[nfresh];
		fresh[nfresh].l = *l;
		for (i = 0; i < nlst && (used[i] || memcmp(&lst[i].l, l, sizeof(*l))); i++)
			;
		if (i < nlst) {
			used[i] = 1;
			fresh[nfresh].fd = -2 - i;
		} else if ((fresh[nfresh].fd = listen_open(l)) < 0) {
			log_warn("listen %s [%s]:%d", proto_names[l->proto], l->addr, l->port);
			listen_abort();
			return -1;
		}
	}
	return 0;
}

void
listen_abort(void)
{
	while (nfresh > 0)
		if (fresh[--nfresh].fd >= 0)
			close(fresh[nfresh].fd);
}

void
listen_commit(void)
{
	int i, k;

	for (i = 0; i < nfresh; i++)
		if (fresh[i].fd < -1) {	/* kept: out of lst, so not closed below */
			k = -2 - fresh[i].fd;
			fresh[i].fd = lst[k].fd;
			lst[k].fd = -1;
		}
	listen_close_all();
	memcpy(lst, fresh, nfresh * sizeof(fresh[0]));
	nlst = nfresh;
	nfresh = 0;
}

int
listen_is_open(const struct cfg_listen *l)
{
	int i;

	for (i = 0; i < nlst; i++)
		if (lst[i].fd >= 0 && !memcmp(&lst[i].l, l, sizeof(*l)))
			return 1;
	return 0;
}

void
listen_close_all(void)
{
	int i;

	for (i = 0; i < nlst; i++)
		if (lst[i].fd >= 0)
			close(lst[i].fd);
	nlst = 0;
}

/* Families (conn_family) that have a listener: each keeps a reserve. */
static unsigned
families(void)
{
	unsigned f = 0;
	int i;

	for (i = 0; i < nlst; i++)
		f |= 1u << conn_family(lst[i].l.proto);
	return f;
}

/* Take one pending connection: 0 when none is left.  Listeners are polled
 * all the time (only running out of descriptors pauses them): a session
 * kotak cannot take gets its refusal in the protocol's own words and is
 * closed, so clients back off instead of waiting in the backlog. */
static int
accept_one(struct listener *l)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char ip[IP_MAX] = "?", msg[128];
	unsigned char grp[16];
	const char *why;
	const struct proto *pr = protos[l->l.proto];
	int one = 1, n;
	int fd = accept(l->fd, (struct sockaddr *)&ss, &sl);

	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			log_warn("accept: pausing new sessions for a second");
			accept_pause = now + 1;	/* the pending connection waits in the backlog */
		} else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
			log_warn("accept");
		}
		return errno == ECONNABORTED || errno == EINTR;
	}
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	/* replies leave whole, once per pass: Nagle would only add delayed-ACK waits */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (ss.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip, sizeof(ip));
	else if (ss.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip, sizeof(ip));
	net_group(ip, grp);
	why = fd >= FD_SETSIZE || set_nonblock(fd) < 0 ? "fd-limit" : conn_admit(l->l.proto, grp, families());
	if (why == NULL && conn_new(fd, ip, l->l.proto, pr) != NULL)
		return 1;
	if (why == NULL)
		why = "no-slot";
	log_info("session refused ip=%s proto=%s reason=%s", ip, proto_names[l->l.proto], why);
	/* implicit TLS: no words before a handshake, which would cost more */
	if (l->l.proto != PROTO_SMTPS && l->l.proto != PROTO_POP3S && l->l.proto != PROTO_IMAPS) {
		n = snprintf(msg, sizeof(msg), "%s Too many connections%s, try again later\r\n", pr->busy,
		    !strcmp(why, "per-ip") || !strcmp(why, "share") ? " from your address" : "");
		if (write(fd, msg, n) < 0) {
			/* best effort: the socket is new and empty */
		}
	}
	close(fd);
	return 1;
}

static void
handle_signals(void)
{
	char b[16];

	while (read(sigpipe_fd[0], b, sizeof(b)) > 0)
		;
	if (got_hup) {
		got_hup = 0;
		main_reload();
	}
	if (got_usr1) {
		got_usr1 = 0;
		queue_kick();
	}
}

void
loop_run(void)
{
	fd_set rd, wr;
	struct timeval tv;
	int i, j, maxfd, r;
	time_t next;

	while (!loop_quit) {
		now = mono_now();
		FD_ZERO(&rd);
		FD_ZERO(&wr);
		FD_SET(sigpipe_fd[0], &rd);
		maxfd = sigpipe_fd[0];
		for (i = 0; now >= accept_pause && i < nlst; i++) {
			FD_SET(lst[i].fd, &rd);
			if (lst[i].fd > maxfd)
				maxfd = lst[i].fd;
		}
		next = queue_next();
#if ENABLE_RPC
		maxfd = ctl_fds(&rd, maxfd);
#endif
#if ENABLE_RELAY
		maxfd = dns_fds(&rd, &wr, maxfd);
		maxfd = smtp_out_fds(&rd, &wr, maxfd);
		if (dns_next() && (!next || dns_next() < next))
			next = dns_next();
		if (smtp_out_next() && (!next || smtp_out_next() < next))
			next = smtp_out_next();
#endif
		if (now < accept_pause && (!next || accept_pause < next))
			next = accept_pause;
		next = loop_deferred_next(next);
		for (i = 0; i < CONFIG_MAX_CONNS; i++) {
			struct conn *c = &conns[i];
			if (c->fd < 0)
				continue;
			if (c->tls) {
				int r2, w2;
				tls_interest(c, &r2, &w2);
				if (r2)
					FD_SET(c->fd, &rd);
				if (w2)
					FD_SET(c->fd, &wr);
			} else {
				if (!(c->flags & (CF_EOF | CF_CLOSE)) && buf_room(&c->in) > 0)
					FD_SET(c->fd, &rd);
				if (c->out.len && !(c->flags & CF_HOLD))
					FD_SET(c->fd, &wr);
			}
			if (c->fd > maxfd)
				maxfd = c->fd;
			/* a session's deadline or hold ends in the second
			 * after it: set at now + N on a whole-second clock, it
			 * must not cut or hold a client less than N seconds */
			if (c->deadline && (!next || c->deadline + 1 < next))
				next = c->deadline + 1;
			if ((c->flags & CF_HOLD) && (!next || c->hold + 1 < next))
				next = c->hold + 1;
		}
		tv.tv_sec = next ? (next > now ? next - now : 0) : 3600;
		tv.tv_usec = 0;
		if ((r = queue_wait_ms()) >= 0 && tv.tv_sec * 1000 > r) {
			tv.tv_sec = 0;	/* a group commit is waiting for more messages */
			tv.tv_usec = r * 1000;
		}
		r = select(maxfd + 1, &rd, &wr, NULL, &tv);
		if (r < 0 && errno != EINTR)
			fatal("select");
		now = mono_now();
		if (r > 0) {
			if (FD_ISSET(sigpipe_fd[0], &rd))
				handle_signals();
			/* a burst is taken at once, until EAGAIN or ACCEPT_BURST:
			 * a full backlog would drop the SYN of the next client */
			for (i = 0; i < nlst; i++)
				for (j = 0; j < ACCEPT_BURST && lst[i].fd >= 0 && FD_ISSET(lst[i].fd, &rd) &&
				    accept_one(&lst[i]); j++)
					;
			for (i = 0; i < CONFIG_MAX_CONNS; i++) {
				struct conn *c = &conns[i];
				if (c->fd >= 0 && c->tls && (FD_ISSET(c->fd, &rd) || FD_ISSET(c->fd, &wr))) {
					tls_pump(c);
					continue;
				}
				if (c->fd >= 0 && FD_ISSET(c->fd, &rd))
					conn_read(c);
				/* a STARTTLS just read: its 220 leaves through tls_pump,
				 * which then starts the handshake (a plain write here
				 * would leave the session waiting for nothing) */
				if (c->fd >= 0 && !c->tls && FD_ISSET(c->fd, &wr))
					conn_write(c);
			}
#if ENABLE_RPC
			ctl_io(&rd);
#endif
#if ENABLE_RELAY
			dns_io(&rd, &wr);
			smtp_out_io(&rd, &wr);
#endif
		}
#if ENABLE_RELAY
		if (dns_next() && dns_next() <= now)
			dns_timeout();
		smtp_out_timeout();
#endif
		for (i = 0; i < CONFIG_MAX_CONNS; i++) {
			struct conn *c = &conns[i];
			if (c->fd < 0)
				continue;
			if ((c->flags & CF_HOLD) && c->hold < now) {
				c->flags &= ~CF_HOLD;
				conn_process(c);
			}
			if (c->deadline && c->deadline < now && !(c->flags & CF_HOLD)) {
				c->deadline = 0;
				if (!tls_handshake_done(c)) {
					log_info("tls ip=%s handshake timeout", c->ip);
					conn_close(c);
					continue;
				}
				c->proto->timeout(c);
			}
			if ((c->flags & CF_CLOSE) && !(c->flags & CF_COMMIT) && !conn_out_pending(c))
				conn_close(c);
		}
		loop_deferred();
		queue_run();
		queue_sync();	/* group commit: one sync for this pass's messages and deliveries */
#if ENABLE_RELAY
		smtp_out_run();	/* after the sync: local marks of this pass are settled */
#endif
	}
}

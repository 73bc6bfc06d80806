/* conn.c: the fixed table of connection slots and their socket I/O.
 * Buffers are static (sized by Kconfig IBUF/OBUF): no malloc on the I/O
 * path, and a slot's pages are only touched once it is used. */
#include "kotak.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct conn conns[CONFIG_MAX_CONNS];
static char ibufs[CONFIG_MAX_CONNS][CONFIG_IBUF];
static char obufs[CONFIG_MAX_CONNS][CONFIG_OBUF];
static unsigned next_id;

void
conn_init(void)
{
	int i;

	for (i = 0; i < CONFIG_MAX_CONNS; i++)
		conns[i].fd = -1;
	random_bytes(&next_id, sizeof(next_id));
	next_id &= 0xffffff;
}

struct conn *
conn_new(int fd, const char *ip, int lproto, const struct proto *pr)
{
	int i;
	struct conn *c;

	for (i = 0; i < CONFIG_MAX_CONNS; i++)
		if (conns[i].fd < 0)
			break;
	if (i == CONFIG_MAX_CONNS)
		return NULL;
	c = &conns[i];
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->id = ++next_id;
	c->proto = pr;
	c->listen_proto = lproto;
	strlcpy_k(c->ip, ip, sizeof(c->ip));
	buf_init(&c->in, ibufs[i], sizeof(ibufs[i]));
	buf_init(&c->out, obufs[i], sizeof(obufs[i]));
	if ((lproto == PROTO_SMTPS || lproto == PROTO_POP3S || lproto == PROTO_IMAPS) && tls_start(c) < 0) {
		log_warnx("session refused ip=%s reason=no-tls-slot", ip);
		c->fd = -1;
		return NULL;
	}
	pr->start(c);
	if (c->tls)
		c->deadline = now + 30;	/* the handshake first */
	return c;
}

void
conn_close(struct conn *c)
{
	if (c->fd < 0)
		return;
	if (c->proto->close)
		c->proto->close(c);
	tls_end(c);
	close(c->fd);
	c->fd = -1;
}

int
conn_count(void)
{
	int i, n = 0;

	for (i = 0; i < CONFIG_MAX_CONNS; i++)
		n += conns[i].fd >= 0;
	return n;
}

int
conn_count_ip(const char *ip)
{
	int i, n = 0;

	for (i = 0; i < CONFIG_MAX_CONNS; i++)
		n += conns[i].fd >= 0 && !strcmp(conns[i].ip, ip);
	return n;
}

/* Queue one reply line (CRLF added).  Protocols check for room before they
 * take a command, so a full buffer here is a bug: close the session. */
int
conn_reply(struct conn *c, const char *fmt, ...)
{
	va_list ap;
	size_t room = buf_room(&c->out);
	int n;

	va_start(ap, fmt);
	n = vsnprintf(c->out.p + c->out.len, room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n + 2 >= room) {
		log_warnx("session %08x: output buffer full, closing", c->id);
		c->flags |= CF_CLOSE;
		return -1;
	}
	c->out.len += n;
	buf_add(&c->out, "\r\n", 2);
	return 0;
}

/* Run the protocol over what is buffered, unless it waits for something. */
void
conn_process(struct conn *c)
{
	if (c->fd >= 0 && !(c->flags & (CF_PAUSE | CF_CLOSE)))
		c->proto->input(c);
}

void
conn_resume(struct conn *c)
{
	c->flags &= ~CF_PAUSE;
	conn_process(c);
}

/* Hold the session (its queued reply and further input) for secs: the
 * brake on failed logins, which costs the daemon nothing meanwhile. */
void
conn_hold(struct conn *c, int secs)
{
	c->flags |= CF_HOLD | CF_PAUSE;
	c->hold = now + secs;
	if (c->deadline)
		c->deadline += secs;	/* our delay is not the client's idle time */
}

void
conn_read(struct conn *c)
{
	ssize_t n = read(c->fd, c->in.p + c->in.len, buf_room(&c->in));

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) {
		conn_close(c);
		return;
	}
	if (n == 0) {	/* half-close: answer what came, then close (loop_sweep) */
		c->flags |= CF_EOF;
		conn_process(c);
		c->flags |= CF_CLOSE;
		return;
	}
	c->in.len += n;
	conn_process(c);
}

void
conn_write(struct conn *c)
{
	ssize_t n = write(c->fd, c->out.p, c->out.len);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(c);
		return;
	}
	buf_drop(&c->out, n);
	conn_process(c);	/* room for more replies: pipelined commands go on */
}

/* Output still on its way: in the buffer or, with TLS, in the engine. */
int
conn_out_pending(const struct conn *c)
{
	return c->out.len > 0 || tls_pending(c);
}

#if !ENABLE_TLS
int conn_is_tls(const struct conn *c) { return 0; }
int conn_tls_ready(void) { return 0; }
int conn_starttls(struct conn *c) { return -1; }
#endif

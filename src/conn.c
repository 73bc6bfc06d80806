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
	net_group(ip, c->grp);
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

/* see kotak.h */
int
conn_family(int proto)
{
	return proto <= PROTO_SMTPS ? 0 : proto <= PROTO_POP3S ? 1 : 2;
}

/* see kotak.h.  Postfix's anvil and postscreen in small: a session cap,
 * a per-address cap, the last quarter of the slots only for addresses
 * that hold none yet (five addresses cannot take every slot), and a
 * reserve per protocol family (long IMAP IDLE sessions or an SMTP flood
 * cannot lock POP3 out, nor the other way round). */
const char *
conn_admit(int lproto, const unsigned char *grp, unsigned fams)
{
	int i, total = 0, same = 0, need = 0, used[3] = { 0, 0, 0 };
	int reserve = cfg.max_sessions / 8 ? cfg.max_sessions / 8 : 1;

	for (i = 0; i < CONFIG_MAX_CONNS; i++)
		if (conns[i].fd >= 0) {
			total++;
			used[conn_family(conns[i].listen_proto)]++;
			same += !memcmp(conns[i].grp, grp, 16);
		}
	if (total >= cfg.max_sessions)
		return "sessions";
	if (same >= cfg.max_per_ip)
		return "per-ip";
	if (same && cfg.max_sessions - total <= cfg.max_sessions / 4)
		return "share";
	for (i = 0; i < 3; i++)
		if (i != conn_family(lproto) && (fams & 1u << i) && used[i] < reserve)
			need += reserve - used[i];
	return cfg.max_sessions - total - 1 < need ? "reserve" : NULL;
}

/* see kotak.h */
int
conn_login_timeout(void)
{
	int t = cfg.login_timeout < cfg.timeout ? cfg.login_timeout : cfg.timeout;

	/* under pressure, as Postfix's stress mode: idle strangers go first */
	return t > 10 && conn_count() * 4 >= cfg.max_sessions * 3 ? 10 : t;
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
	if (c->fd >= 0 && !(c->flags & CF_STOPPED))
		c->proto->input(c);
}

/* Hold the session (its queued reply and further input) for secs: the
 * brake on failed logins, which costs the daemon nothing meanwhile.
 * The loop ends it in the second after now + secs (loop.c): at least
 * secs real seconds on its whole-second clock. */
void
conn_hold(struct conn *c, int secs)
{
	if (secs <= 0)
		return;
	c->flags |= CF_HOLD;
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

/* see kotak.h.  The loop's own write (conn_write) without its error
 * handling: a failed write leaves the output queued, and the loop, which
 * selects for it, finds the error and closes. */
int
conn_flush(struct conn *c)
{
	ssize_t n;

	if (c->tls)
		return tls_flush(c);
	if (!(c->flags & CF_HOLD) && c->out.len && (n = write(c->fd, c->out.p, c->out.len)) > 0)
		buf_drop(&c->out, n);
	return c->out.len == 0;
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

/* fuzz_smtp.c: the SMTP server (src/smtp_in.c) over conn.c's buffers.
 *
 * No sockets: the driver does what loop.c and conn_read/conn_write do,
 * copying client bytes into c->in as room allows and running the protocol;
 * the spool is stubbed (the message goes to /dev/null, a commit succeeds
 * or fails as the input says).  Input: the fuzz.h chunk header, one
 * control byte, then the client's bytes.  Control bits:
 *   0: the client reads replies only when the server would stall
 *   1: max_errors 3 instead of 1000
 *   2: commits fail (ENOSPC)
 *   3: a timeout fires after the last byte
 *   4: AUTH allowed in cleartext (else it is refused: no TLS here)
 *   5: the session came in on the submission listener (AUTH required)
 *   6: option auth_any_sender
 *   7: a polite client: one line per read (else bytes behind EHLO, HELO,
 *      DATA or before the greeting end the session: 554 5.5.0)
 * auth.c is stubbed too (a real SHA512-crypt per attempt would make each
 * run milliseconds): alice / secret logs in, anything else fails and
 * counts for the brake, whose hold is released at once by moving `now`
 * to its end, as the loop does when it expires.
 * Checks: every reply is "DDD" + ' ' or '-' + text + CRLF, with no CR, LF
 * or NUL in the text; a multi-line reply keeps its code; the output buffer
 * never overflows (conn_reply's "output buffer full" is a bug by its own
 * comment); input never stalls while the client reads; no sanitizer
 * report; the slot is free again afterwards. */
#include "kotak.h"
#include "fuzz.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "stubs.h"

/* ---- stubs: queue.c */

static struct conn *committing;
static int commit_fail;

int
queue_tx_open(char *qid, char *path, size_t n)
{
	snprintf(qid, QID_LEN + 1, "%016x", 0x1234);
	path[0] = '\0';
	return open("/dev/null", O_WRONLY | O_CLOEXEC);
}

int
queue_trailer(int fd, long long len)
{
	return 0;
}

int
queue_space_ok(long long need)
{
	return 1;
}

int
queue_line(int fd, off_t off, char *b, size_t n)
{
	return 0;	/* the stub spool (/dev/null) holds no envelope lines */
}

void
queue_commit_add(struct conn *c)
{
	FZ_ASSERT(committing == NULL);
	committing = c;
	c->flags |= CF_COMMIT;
}

void
queue_commit_cancel(struct conn *c)
{
	if (committing == c)
		committing = NULL;
}

/* as queue_commit_run does it */
static void
commit_run(void)
{
	struct conn *c = committing;

	if (c == NULL) {
		c = &conns[0];	/* the only slot in use: a login brake expires */
		if (c->fd >= 0 && (c->flags & CF_HOLD)) {
			if (c->hold > now)
				now = c->hold;
			c->flags &= ~CF_HOLD;
			conn_process(c);
		}
		return;
	}
	committing = NULL;
	close(c->u.smtp.fd);
	c->u.smtp.fd = -1;
	smtp_in_committed(c, !commit_fail, commit_fail ? ENOSPC : 0);
	conn_process(c);
}

/* ---- the client side */

/* smtp_in.c echoes a command argument in "555 5.5.4 Unsupported option:
 * %s" (MAIL and RCPT), and buf_line only cuts the final CR, so a bare CR
 * inside the argument comes back inside the reply text (reported to the
 * lead; harmless to others, the client only confuses itself).  0 makes a
 * bare CR in a reply a failure again. */
#define ALLOW_ECHOED_CR 0

static void
replies_ok(struct conn *c)
{
	const char *p = c->out.p, *e = p + c->out.len;
	char code[4] = "";

	while (p < e) {
		const char *crlf = p;
		while (crlf + 1 < e && !(crlf[0] == '\r' && crlf[1] == '\n'))
			crlf++;
		if (crlf + 1 >= e) {
			fprintf(stderr, "reply without CRLF: %.*s\n", (int)(e - p), p);
			abort();
		}
		if (crlf - p < 4 || p[0] < '2' || p[0] > '5' || p[1] < '0' || p[1] > '9' ||
		    p[2] < '0' || p[2] > '9' || (p[3] != ' ' && p[3] != '-')) {
			fprintf(stderr, "malformed reply: %.*s\n", (int)(crlf - p), p);
			abort();
		}
		if (code[0] && memcmp(code, p, 3)) {
			fprintf(stderr, "multi-line reply changes its code: %.*s\n", (int)(crlf - p), p);
			abort();
		}
		{
			const char *q;
			for (q = p; q < crlf; q++)
				if ((*q == '\r' && !ALLOW_ECHOED_CR) || *q == '\n' || *q == '\0') {
					fprintf(stderr, "reply with CR, LF or NUL in its text: %.*s\n",
					    (int)(crlf - p), p);
					abort();
				}
		}
		if (p[3] == '-')
			memcpy(code, p, 3);
		else
			code[0] = '\0';
		p = crlf + 2;
	}
	if (code[0]) {	/* a multi-line reply must be complete once the server waits */
		if (!(c->flags & CF_STOPPED)) {
			fprintf(stderr, "multi-line reply left open\n");
			abort();
		}
	}
}

static int verbose = -1;	/* FUZZ_VERBOSE=1: print the replies */

static void
drain(struct conn *c)
{
	replies_ok(c);
	if (verbose < 0)
		verbose = getenv("FUZZ_VERBOSE") != NULL;
	if (verbose)
		fwrite(c->out.p, 1, c->out.len, stderr);
	c->out.len = 0;
}

static int
alive(struct conn *c)
{
	return c->fd >= 0 && !(c->flags & CF_CLOSE);
}

static void
setup(void)
{
	static char cpath[] = "/tmp/kotak-fuzz-smtp.XXXXXX", upath[] = "/tmp/kotak-fuzz-users.XXXXXX";
	char err[400], host[201];
	FILE *f;
	int fd;

	memset(host, 'h', sizeof(host) - 1);	/* long: replies near their limits */
	host[sizeof(host) - 1] = '\0';
	memcpy(host + sizeof(host) - 9, ".example", 8);
	FZ_ASSERT((fd = mkstemp(upath)) >= 0);
	FZ_ASSERT((f = fdopen(fd, "w")) != NULL);
	fprintf(f, "alice:$6$salt$hash\nbob:$6$salt$hash\n");
	fclose(f);
	FZ_ASSERT((fd = mkstemp(cpath)) >= 0);
	FZ_ASSERT((f = fdopen(fd, "w")) != NULL);
	fprintf(f, "config kotak\n\toption hostname '%s'\n\tlist domain example.org\n"
	    "\tlist domain '\xc3\xa9x.example'\n\toption max_message_size 2048\n"
	    "\toption max_recipients 4\n\toption users_file '%s'\n"
	    "config alias\n\toption name postmaster\n\tlist to alice\n\tlist to bob@example.org\n"
	    "config alias\n\toption name out\n\tlist to someone@elsewhere.example\n"
	    "config alias\n\toption name gone\n\tlist to nosuchuser\n",	/* 451: leads nowhere */
	    host, upath);
	fclose(f);
	if (cfg_load(cpath, &cfg, err, sizeof(err)) < 0 || users_load(upath, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_smtp setup: %s\n", err);
		abort();
	}
	unlink(cpath);
	unlink(upath);
	conn_init();
	now = 1000;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct fz_split s;
	struct conn *c;
	size_t off = 0, i = 0, k, n;
	int ctl, lazy, fd;

	if (!ready) {
		setup();
		ready = 1;
	}
	if (fz_split(data, size, &s) < 0 || s.n < 1)
		return 0;
	ctl = s.p[0];
	s.p++, s.n--;
	lazy = ctl & 1;
	cfg.max_errors = ctl & 2 ? 3 : 1000;
	commit_fail = (ctl & 4) != 0;
	cleartext_ok = (ctl & 16) != 0;
	cfg.auth_any_sender = (ctl & 64) != 0;
	auth_fails = 0;
	auth_last = 0;
	now = 1000;

	FZ_ASSERT((fd = open("/dev/null", O_RDWR | O_CLOEXEC)) >= 0);
	c = conn_new(fd, "192.0.2.7", ctl & 32 ? PROTO_SUBMISSION : PROTO_SMTP, &smtp_in_proto);
	FZ_ASSERT(c == &conns[0]);
	while (alive(c)) {
		if (i > s.ncut && off == s.n)
			break;
		n = fz_chunk(&s, i++, off);
		while (n > 0 && alive(c)) {	/* one read() worth of bytes, or what fits */
			commit_run();
			if (!lazy || buf_room(&c->out) < 1024)
				drain(c);
			k = buf_room(&c->in) < n ? buf_room(&c->in) : n;
			if (ctl & 128) {	/* up to the next LF only */
				const uint8_t *lf = memchr(s.p + off, '\n', k);
				k = lf ? (size_t)(lf - (s.p + off)) + 1 : k;
			}
			if (k == 0) {	/* the server must make room once it can answer */
				drain(c);
				commit_run();
				conn_process(c);
				if (alive(c) && buf_room(&c->in) == 0) {
					fprintf(stderr, "input stalls: in %zu bytes, flags %#x\n", c->in.len, c->flags);
					abort();
				}
				continue;
			}
			memcpy(c->in.p + c->in.len, s.p + off, k);
			c->in.len += k;
			off += k, n -= k;
			conn_process(c);
		}
		commit_run();
		drain(c);
		conn_process(c);
	}
	if (c->fd >= 0) {
		commit_run();
		drain(c);
		if ((ctl & 8) && c->proto->timeout)
			c->proto->timeout(c);
		else {
			c->flags |= CF_EOF;	/* what conn_read does on EOF */
			conn_process(c);
		}
		commit_run();
		drain(c);
		conn_close(c);
	}
	FZ_ASSERT(committing == NULL);
	FZ_ASSERT(conn_count() == 0);
	return 0;
}

/* fuzz_pop3.c: the POP3 server (src/pop3.c: its command parser and state
 * machine) over conn.c's buffers, on the real mailbox layer in a temp
 * data_dir (tmpfs when there is one).
 *
 * The driver does what loop.c and conn_read/conn_write do (the session's
 * fd is one end of a socketpair: RETR writes to it itself), copying client bytes into c->in as room allows, running the protocol,
 * ending a login brake's hold and running the wakes and timers that are
 * due (wake.c: mailbox slices, lock retries) at once by moving `now` to them.  Each input starts
 * from the same INBOX of three messages.  Input: the fuzz.h chunk header,
 * one control byte, then the client's bytes.  Control bits:
 *   0: the client reads replies only when the server would stall
 *   1: max_errors 3 instead of 1000
 *   2: a timeout fires after the last byte
 *   3: a polite client: one line per read
 *   4: cleartext logins refused (as without cleartext_auth_net)
 * auth.c and log.c are stubbed (stubs.h: alice / secret; no SHA512-crypt).
 * Checks: every output line ends in CRLF with no bare CR or LF and no
 * NUL; the output buffer never overflows; input never stalls while the
 * client reads; the slot is free again afterwards; and the INBOX is the
 * same bytes unless an UPDATE said it deleted, then it holds the other
 * messages, whole and in order (a dropped session deletes nothing). */
#include "kotak.h"
#include "fuzz.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stubs.h"

void main_reload(void) { }

/* ---- the mailbox */

static char dir[PATH_MAX_K], inbox[PATH_MAX_K + 16];
static const char *const msgs[] = {
	"From a@example.org Mon Jan  1 00:00:00 2026\nSubject: one\n\nbody one\n.dot line\n>From quoted\n\n",
	"From b@example.org Mon Jan  1 00:00:01 2026\nSubject: two\nX: y\n\nline\n..two dots\n\n",
	"From c@example.org Mon Jan  1 00:00:02 2026\nSubject: three\n\nlast\n",
};
static char orig[1024];
static size_t olen;

static void
rm_in(const char *d)
{
	char p[PATH_MAX_K + 300];
	static const char *const f[] = { "INBOX", ".INBOX.idx", ".INBOX.exp", "INBOX.lock", NULL };
	int i;

	for (i = 0; f[i]; i++) {
		snprintf(p, sizeof(p), "%s/%s", d, f[i]);
		unlink(p);
	}
}

static void
done(void)
{
	char p[PATH_MAX_K + 8];

	rm_in(dir);
	rmdir(dir);
	snprintf(p, sizeof(p), "%s/mail", cfg.data_dir);
	rmdir(p);
	rmdir(cfg.data_dir);
}

static void
setup(void)
{
	static char upath[] = "/tmp/kotak-fuzz-pop3-users.XXXXXX";
	char tmpl[64], err[400];
	FILE *f;
	int fd, i;

	snprintf(tmpl, sizeof(tmpl), "%s/kotak-fuzz-pop3.XXXXXX", access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm");
	FZ_ASSERT(mkdtemp(tmpl) != NULL);
	FZ_ASSERT((fd = mkstemp(upath)) >= 0);
	FZ_ASSERT((f = fdopen(fd, "w")) != NULL);
	fprintf(f, "alice:$6$salt$hash\n");
	fclose(f);
	FZ_ASSERT(users_load(upath, err, sizeof(err)) == 0);
	unlink(upath);
	memset(&cfg, 0, sizeof(cfg));
	snprintf(cfg.hostname, sizeof(cfg.hostname), "mail.example.org");
	snprintf(cfg.data_dir, sizeof(cfg.data_dir), "%s", tmpl);
	cfg.max_sessions = cfg.max_per_ip = 10;
	cfg.timeout = cfg.login_timeout = 600;
	atexit(done);
	snprintf(dir, sizeof(dir), "%s/mail", tmpl);
	FZ_ASSERT(mkdir(dir, 0700) == 0);
	snprintf(dir, sizeof(dir), "%s/mail/alice", tmpl);
	FZ_ASSERT(mkdir(dir, 0700) == 0);
	snprintf(inbox, sizeof(inbox), "%s/INBOX", dir);
	for (i = 0; i < 3; i++) {
		memcpy(orig + olen, msgs[i], strlen(msgs[i]));
		olen += strlen(msgs[i]);
	}
	conn_init();
}

static void
fresh_inbox(void)
{
	int fd;

	rm_in(dir);
	FZ_ASSERT((fd = open(inbox, O_WRONLY | O_CREAT | O_TRUNC, 0600)) >= 0);
	FZ_ASSERT(write(fd, orig, olen) == (ssize_t)olen);
	close(fd);
}

/* The INBOX after the session: the same bytes, or (deleted) a sequence of
 * the original messages, whole and in order. */
static void
inbox_ok(int deleted)
{
	static char b[2048];
	size_t n = 0, off = 0;
	ssize_t r;
	int fd = open(inbox, O_RDONLY), i;

	FZ_ASSERT(fd >= 0);
	while ((r = read(fd, b + n, sizeof(b) - n)) > 0)
		n += (size_t)r;
	close(fd);
	if (!deleted) {
		if (n != olen || memcmp(b, orig, olen)) {
			fprintf(stderr, "INBOX changed without an UPDATE that deleted (%zu bytes)\n", n);
			abort();
		}
		return;
	}
	for (i = 0; i < 3 && off < n; i++) {
		size_t l = strlen(msgs[i]);
		if (n - off >= l && !memcmp(b + off, msgs[i], l))
			off += l;
	}
	if (off != n) {
		fprintf(stderr, "INBOX after the expunge is not the kept messages: %.*s\n", (int)n, b);
		abort();
	}
}

/* ---- the client side */

static int verbose = -1;	/* FUZZ_VERBOSE=1: print the replies */
static int deleted;
static int peer = -1;	/* the client's end of the session's socket */
static char prev;	/* the last byte checked: CRLF may be split between reads */

static void
take(const char *p, size_t n)
{
	const char *q;

	if (verbose < 0)
		verbose = getenv("FUZZ_VERBOSE") != NULL;
	if (verbose)	/* before the checks: what they stop at is shown */
		fwrite(p, 1, n, stderr);
	for (q = p; q < p + n; prev = *q++) {
		if (*q == '\0' || (*q == '\n' && prev != '\r') || (prev == '\r' && *q != '\n')) {
			fprintf(stderr, "malformed output at byte %zu: %.*s\n", (size_t)(q - p), (int)n, p);
			abort();
		}
	}
}

/* The client reads: first what RETR's bursts wrote to the socket
 * (conn_flush), which came before what is still in the buffer. */
static void
drain(struct conn *c)
{
	const char *p = c->out.p, *e = p + c->out.len, *q;
	char b[4096];
	ssize_t r;

	while ((r = read(peer, b, sizeof(b))) > 0)
		take(b, r);
	take(p, c->out.len);
	for (q = p; q + 34 <= e; q++)	/* never in a burst: that sends a RETR only */
		if (!memcmp(q, "+OK Logging out, messages deleted.", 34))
			deleted = 1;
	c->out.len = 0;
}

static int
alive(struct conn *c)
{
	return c->fd >= 0 && !(c->flags & CF_CLOSE);
}

/* What loop.c would do once time passes: end a hold, run the wakes and
 * timers that are due (mailbox slices, lock retries, index flushes). */
static void
settle(struct conn *c)
{
	time_t t;
	int guard;

	for (guard = 0; guard < 100000; guard++) {
		if (c->fd < 0)
			return;
		if (c->flags & CF_HOLD) {
			if (c->hold > now)
				now = c->hold;
			c->flags &= ~CF_HOLD;
			conn_process(c);
		} else if ((t = loop_deferred_next(0)) != 0) {
			if (t > now)
				now = t;
			loop_deferred();
		} else {
			return;
		}
	}
	fprintf(stderr, "wakes without end: flags %#x\n", c->flags);
	abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_split s;
	struct conn *c;
	size_t off = 0, i = 0, k, n;
	int ctl, lazy, sv[2];

	if (!dir[0])
		setup();
	if (fz_split(data, size, &s) < 0 || s.n < 1)
		return 0;
	ctl = s.p[0];
	s.p++, s.n--;
	lazy = ctl & 1;
	cfg.max_errors = ctl & 2 ? 3 : 1000;
	cleartext_ok = !(ctl & 16);
	auth_fails = 0;
	auth_budget = 4;	/* the shared budget: POP3 answers it in its own words */
	auth_last = 0;
	deleted = 0;
	now = 1000;
	fresh_inbox();

	/* a socket, as the loop's: conn_flush writes to it during a RETR */
	FZ_ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) == 0);
	peer = sv[1];
	prev = '\n';
	c = conn_new(sv[0], "192.0.2.7", PROTO_POP3, &pop3_proto);
	FZ_ASSERT(c == &conns[0]);
	while (alive(c)) {
		if (i > s.ncut && off == s.n)
			break;
		n = fz_chunk(&s, i++, off);
		while (n > 0 && alive(c)) {	/* one read() worth of bytes, or what fits */
			settle(c);
			if (!lazy || buf_room(&c->out) < 1024)
				drain(c);
			conn_process(c);	/* conn_write: room for more output */
			k = buf_room(&c->in) < n ? buf_room(&c->in) : n;
			if (ctl & 8) {
				const uint8_t *lf = memchr(s.p + off, '\n', k);
				k = lf ? (size_t)(lf - (s.p + off)) + 1 : k;
			}
			if (k == 0) {	/* the server must make room once it can answer */
				drain(c);
				settle(c);
				conn_process(c);
				settle(c);
				if (alive(c) && buf_room(&c->in) == 0 && !(c->flags & CF_STOPPED)) {
					drain(c);
					conn_process(c);
					if (alive(c) && buf_room(&c->in) == 0) {
						fprintf(stderr, "input stalls: in %zu bytes, flags %#x\n", c->in.len, c->flags);
						abort();
					}
				}
				continue;
			}
			memcpy(c->in.p + c->in.len, s.p + off, k);
			c->in.len += k;
			off += k, n -= k;
			conn_process(c);
			settle(c);
		}
		settle(c);
		drain(c);
		conn_process(c);
		settle(c);
	}
	if (c->fd >= 0) {
		for (k = 0; k < 64 && c->fd >= 0 && !(c->flags & CF_CLOSE); k++) {	/* a RETR streaming out */
			drain(c);
			conn_process(c);
			settle(c);
		}
		drain(c);
		if ((ctl & 4) && c->proto->timeout)
			c->proto->timeout(c);
		else {
			c->flags |= CF_EOF;	/* what conn_read does on EOF */
			conn_process(c);
		}
		settle(c);
		drain(c);
		conn_close(c);
	}
	close(peer);
	FZ_ASSERT(conn_count() == 0);
	inbox_ok(deleted);
	return 0;
}

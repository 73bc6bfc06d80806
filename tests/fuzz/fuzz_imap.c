/* fuzz_imap.c: the IMAP server (src/imap.c, imap_fetch.c: command assembly
 * with literals synchronizing and not, overlong commands, every state, on a
 * real folder layer in a temporary data_dir) over conn.c's buffers, and its
 * command parsers (imap_parse.c, imap_search.c) on every line of the input.
 *
 * Each input logs in as a user of its own whose INBOX holds a few messages
 * (plain, multipart, message/rfc822, header only); the loop's deferred work
 * (wakes, the folder layer's timers) runs between reads with the clock
 * jumping to what is due, as loop.c would run it; the user's files go at
 * the end.
 *
 * The driver does what loop.c and conn_read/conn_write do, as fuzz_smtp.c
 * does; the session's fd is one end of a socketpair, because FETCH writes
 * to it itself (conn_flush) and the checks must see those bytes too.  auth.c is stubbed (alice / secret logs in; the brake's
 * hold is released at once by moving `now`).  Input: the fuzz.h chunk
 * header, one control byte, then the client's bytes.  Control bits:
 *   0: the client reads replies only when the server would stall
 *   1: max_errors 3 instead of 1000
 *   2: login allowed in cleartext (else LOGINDISABLED: no TLS here)
 *   3: a timeout fires after the last byte
 * Session checks: every line the server sends ends in CRLF and holds no
 * NUL or bare CR/LF, untagged lines start "* ", continuations "+ ", tagged
 * ones name a tag the client sent (or "*"); the output buffer never
 * overflows; input never stalls while the client reads; no sanitizer
 * report; the slot is free again afterwards.
 * Parser checks, on each input line: a parse that fails leaves err set;
 * a sequence set walked with iset_next gives exactly its members (against
 * a brute-force reading of the text, for a small '*'); FETCH items walk
 * back as parsed; a SEARCH program that checks evaluates without a syntax
 * error (and 0, 1 or 2) for any message; the text scanner finds the same
 * keys whatever the split of a message, and a TEXT key exactly when its
 * lower-cased needle is in the lower-cased message. */
#include "kotak.h"
#include "fuzz.h"
#include "folder.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static char uname[16];	/* this input's user */
#define FZ_LOGIN(user)	uname
#include "stubs.h"

/* ---- the session */

static char tags[64][64];	/* tags the client sent (the first 64) */
static unsigned ntags;

static void
note_tags(const uint8_t *p, size_t n)
{
	size_t i, j;

	for (i = 0; i < n && ntags < 64; i = j + 1) {
		for (j = i; j < n && p[j] != '\n'; j++)
			;
		if (j > i) {
			size_t k;
			for (k = i; k < j && k - i < 63 && p[k] != ' '; k++)
				;
			memcpy(tags[ntags], p + i, k - i);
			tags[ntags++][k - i] = '\0';
		}
	}
}

static int
known_tag(const char *t, size_t n)
{
	unsigned i;

	if (n == 1 && *t == '*')
		return 1;
	for (i = 0; i < ntags; i++)
		if (strlen(tags[i]) == n && !memcmp(tags[i], t, n))
			return 1;
	return ntags == 64;	/* not all remembered */
}

/* Server output, checked as a stream (a response may span drains): lines
 * end in CRLF, hold no NUL, bare CR or LF; a line ending in {n} is followed
 * by n literal bytes and then the rest of the same response. */
static struct {
	uint64_t lit;		/* literal bytes still to come */
	int	 cont, cr;	/* a response goes on after a literal; a CR was seen */
	char	 head[72], tail[24];
	size_t	 nhead, ntail;
} out;

static void
line_done(void)
{
	const char *p = out.head, *sp;
	char t[24];
	unsigned long long n;
	int plus;

	if (!out.cont && !(out.nhead >= 2 && (!memcmp(p, "* ", 2) || !memcmp(p, "+ ", 2)))) {
		sp = memchr(p, ' ', out.nhead);
		if (sp == NULL || !known_tag(p, sp - p)) {
			fprintf(stderr, "malformed reply: %.*s\n", (int)out.nhead, p);
			abort();
		}
	}
	memcpy(t, out.tail, out.ntail);
	out.cont = 0;
	if (imap_literal_at_end(t, out.ntail, &n, &plus)) {
		FZ_ASSERT(!plus);
		out.lit = n;
		out.cont = 1;
	}
	out.nhead = out.ntail = 0;
}

static void
replies_ok(const char *p, size_t n)
{
	const char *e = p + n;
	size_t k;

	for (; p < e; p++) {
		if (out.lit) {
			k = out.lit < (uint64_t)(e - p) ? out.lit : (uint64_t)(e - p);
			out.lit -= k;
			p += k - 1;
			continue;
		}
		if (out.cr && *p != '\n') {
			fprintf(stderr, "bare CR in a reply\n");
			abort();
		}
		if (*p == '\r') {
			out.cr = 1;
			continue;
		}
		if (*p == '\n') {
			if (!out.cr) {
				fprintf(stderr, "bare LF in a reply\n");
				abort();
			}
			out.cr = 0;
			line_done();
			continue;
		}
		FZ_ASSERT(*p != '\0');
		if (out.nhead < sizeof(out.head))
			out.head[out.nhead++] = *p;
		if (out.ntail == sizeof(out.tail)) {
			memmove(out.tail, out.tail + 1, sizeof(out.tail) - 1);
			out.ntail--;
		}
		out.tail[out.ntail++] = *p;
	}
}

static int verbose = -1;	/* FUZZ_VERBOSE=1: print the replies */
static int peer = -1;	/* the client's end of the session's socket */

static void
take(const char *p, size_t n)
{
	if (verbose < 0)
		verbose = getenv("FUZZ_VERBOSE") != NULL;
	if (verbose)	/* before the checks: what they stop at is shown */
		fwrite(p, 1, n, stderr);
	replies_ok(p, n);
}

/* The client reads: first what FETCH's bursts wrote to the socket
 * (conn_flush), which came before what is still in the buffer. */
static void
drain(struct conn *c)
{
	char b[4096];
	ssize_t r;

	while (peer >= 0 && (r = read(peer, b, sizeof(b))) > 0)
		take(b, r);
	if (c) {
		take(c->out.p, c->out.len);
		c->out.len = 0;
	}
}

static int
alive(struct conn *c)
{
	return c->fd >= 0 && !(c->flags & CF_CLOSE);
}

/* What the loop would run meanwhile: wakes and timers, the clock
 * jumping to the next one due (bounded: a search runs a slice a pass). */
static void
settle(struct conn *c, int lazy, int passes)
{
	time_t next;

	while (passes-- > 0 && (next = loop_deferred_next(0)) != 0) {
		if (next > now)
			now = next;
		loop_deferred();
		if (c && c->fd >= 0 && (!lazy || buf_room(&c->out) < 1024))
			drain(c);
	}
}

/* what loop.c does when a brake's hold ends */
static void
unhold(struct conn *c)
{
	if (c->fd >= 0 && (c->flags & CF_HOLD)) {
		if (c->hold > now)
			now = c->hold;
		c->flags &= ~CF_HOLD;
		conn_process(c);
	}
}

static void
session(const struct fz_split *s, int ctl)
{
	struct conn *c;
	size_t off = 0, i = 0, k, n;
	int lazy = ctl & 1, sv[2];

	/* a socket, as the loop's: conn_flush writes to it while FETCH runs */
	FZ_ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) == 0);
	peer = sv[1];
	c = conn_new(sv[0], "192.0.2.7", PROTO_IMAP, &imap_proto);
	FZ_ASSERT(c == &conns[0]);
	while (alive(c)) {
		if (i > s->ncut && off == s->n)
			break;
		n = fz_chunk(s, i++, off);
		while (n > 0 && alive(c)) {
			unhold(c);
			if (!lazy || buf_room(&c->out) < 1024)
				drain(c);
			k = buf_room(&c->in) < n ? buf_room(&c->in) : n;
			if (k == 0) {	/* the server must make room once it can answer */
				drain(c);
				unhold(c);
				conn_process(c);
				if (alive(c) && buf_room(&c->in) == 0) {
					fprintf(stderr, "input stalls: in %zu bytes, flags %#x\n", c->in.len, c->flags);
					abort();
				}
				continue;
			}
			memcpy(c->in.p + c->in.len, s->p + off, k);
			c->in.len += k;
			off += k, n -= k;
			conn_process(c);
			settle(c, lazy, 16);
		}
		unhold(c);
		drain(c);
		conn_process(c);
		settle(c, lazy, 64);
	}
	if (c->fd >= 0) {
		unhold(c);
		drain(c);
		if (ctl & 8)
			c->proto->timeout(c);
		else {
			c->flags |= CF_EOF;
			conn_process(c);
		}
		settle(c, 0, 64);
		drain(c);
		conn_close(c);
	}
	drain(NULL);
	close(peer);
	peer = -1;
	settle(NULL, 0, 1000);	/* the folders' own work (compaction) ends */
	FZ_ASSERT(loop_deferred_next(0) == 0);
	FZ_ASSERT(conn_count() == 0);
}

/* ---- the parsers, on one line */

/* Brute force: is v in the set's text (star for '*')? */
static int
ref_has(const char *s, const char *e, uint32_t star, uint32_t v)
{
	while (s < e) {
		unsigned long long a = 0, b;
		if (*s == '*')
			a = star, s++;
		else
			while (s < e && *s >= '0' && *s <= '9')
				a = a * 10 + (*s++ - '0');
		b = a;
		if (s < e && *s == ':') {
			s++;
			b = 0;
			if (*s == '*')
				b = star, s++;
			else
				while (s < e && *s >= '0' && *s <= '9')
					b = b * 10 + (*s++ - '0');
		}
		if ((v >= a && v <= b) || (v >= b && v <= a))
			return 1;
		s += s < e && *s == ',';
	}
	return 0;
}

static void
check_set(const char *l, size_t n, uint32_t star)
{
	struct icur a;
	struct iset set;
	uint32_t x = 1, lo, hi, v, next = 1;

	imap_cur(&a, l, n);
	if (imap_set(&a, &set) < 0) {
		FZ_ASSERT(a.err);
		return;
	}
	iset_star(&set, star);
	/* with a small '*', compare every member up to 100 */
	while (x <= 100 && iset_next(&set, x, &lo, &hi)) {
		FZ_ASSERT(lo >= x && hi >= lo);
		for (v = next; v < lo && v <= 100; v++)
			FZ_ASSERT(!ref_has(set.s, set.e, star, v));
		for (v = lo; v <= hi && v <= 100; v++)
			FZ_ASSERT(ref_has(set.s, set.e, star, v));
		if (hi >= 100)
			return;
		next = x = hi + 1;
	}
	for (v = next; v <= 100; v++)
		FZ_ASSERT(!ref_has(set.s, set.e, star, v));
}

static void
check_fetch(const char *l, size_t n)
{
	struct icur a, it;
	struct fitem f;
	int k = 0;

	imap_cur(&a, l, n);
	if (imap_fetch_att(&a, &it) < 0) {
		FZ_ASSERT(a.err);
		return;
	}
	while (it.p < it.e) {	/* what parsed once walks again */
		FZ_ASSERT(!k++ || imap_sp(&it) == 0);
		FZ_ASSERT(imap_fetch_item(&it, &f) == 0);
		FZ_ASSERT(f.kind >= FI_FLAGS && f.kind <= FI_SECTION && f.npath <= FI_PATH_MAX);
		if (f.fld) {
			struct icur fl;
			char name[80];
			imap_cur(&fl, f.fld, f.flde - f.fld);
			while (fl.p < fl.e)
				FZ_ASSERT(imap_field_next(&fl, name, sizeof(name)) >= 0);
		}
	}
}

static int
kw(void *arg, const char *name)
{
	return strlen(name) % 17 - 1;
}

static int
has(const char *h, size_t hn, const char *n, size_t nn)
{
	size_t i;

	for (i = 0; i + nn <= hn; i++)
		if (!memcmp(h + i, n, nn))
			return 1;
	return 0;
}

static void
check_search(const char *l, size_t n, const uint8_t *msg, size_t mn)
{
	struct icur a;
	struct smsg m;
	struct sscan s1, s2;
	unsigned ntext;
	size_t i;
	int dates, r;
	size_t off, got, step;
	static char low[512], nee[CONFIG_IMAP_LINE_MAX + 1];

	imap_cur(&a, l, n);
	if (imap_search_check(&a, &ntext, &dates) < 0)
		return;
	memset(&m, 0, sizeof(m));
	m.msn = 3, m.uid = 7, m.size = mn, m.flags = mn ? msg[0] : 0;
	m.mstar = 5, m.ustar = 9, m.iday = 18000, m.sday = LONG_MIN, m.keyword = kw;
	imap_cur(&a, l, n);
	r = imap_search_eval(&a, &m);
	FZ_ASSERT(r >= 0 && r <= 2);
	FZ_ASSERT(r != 2 || ntext || (dates & SD_SENT));
	if (imap_search_keys(&a) < 0) {
		FZ_ASSERT(0);
	}
	/* the scanner on what follows the line: whole, then in pieces of
	 * 1..64 bytes */
	if (mn > 512)
		mn = 512;
	imap_scan_start(&s1, 1);
	FZ_ASSERT(imap_scan(&s1, (const char *)msg, mn, 1) == mn);
	imap_scan_start(&s2, 1);
	step = 1 + (mn ? msg[mn - 1] % 64 : 0);
	for (off = 0; off < mn && !imap_scan_done(&s2); off += got) {
		size_t k = mn - off < step ? mn - off : step;
		got = imap_scan(&s2, (const char *)msg + off, k, off + k == mn);
		if (got == 0)
			step *= 2;
	}
	FZ_ASSERT(s1.found == s2.found);
	FZ_ASSERT(imap_scan_sday(&s1) == imap_scan_sday(&s2));
	/* "TEXT atom" alone: found exactly when the message holds it */
	if (n > 5 && n - 5 < sizeof(nee) && !strncasecmp(l, "TEXT ", 5)) {
		for (i = 5; i < n && l[i] > ' ' && l[i] < 0x7f && !strchr("(){%*\"\\]", l[i]); i++)
			nee[i - 5] = l[i] >= 'A' && l[i] <= 'Z' ? l[i] | 0x20 : l[i];
		for (off = 0; off < mn; off++)
			low[off] = msg[off] >= 'A' && msg[off] <= 'Z' ? msg[off] | 0x20 : msg[off];
		if (i == n)
			FZ_ASSERT(!!(s1.found & 1) == has(low, mn, nee, n - 5));
	}
	m.known = ntext >= 32 ? 0xffffffffu : (1u << ntext) - 1;
	m.found = s1.found;
	m.sknown = 1;
	m.sday = imap_scan_sday(&s1);
	imap_cur(&a, l, n);
	r = imap_search_eval(&a, &m);
	FZ_ASSERT(r == 0 || r == 1);
}

static void
check_misc(const char *l, size_t n)
{
	struct icur a;
	char b[FOLDER_NAME_MAX + 1], kwb[64];
	long d;
	time_t t;

	imap_cur(&a, l, n);
	if (imap_mailbox(&a, b, sizeof(b)) == 0)
		FZ_ASSERT(imap_mutf7_ok(b) && imap_match("*", b));
	imap_cur(&a, l, n);
	if (imap_date(&a, &d) < 0)
		FZ_ASSERT(a.err);
	imap_cur(&a, l, n);
	if (imap_datetime(&a, &t) < 0)
		FZ_ASSERT(a.err);
	imap_cur(&a, l, n);
	if (imap_flag(&a, kwb, sizeof(kwb)) < 0)
		FZ_ASSERT(a.err);
	if (n < 200) {
		memcpy(b, l, n < 100 ? n : 100);
		b[n < 100 ? n : 100] = '\0';
		imap_match(b, "INBOX");
		imap_match(b, "Sent Items");
	}
}

static void
parsers(const uint8_t *p, size_t n)
{
	static char line[CONFIG_IMAP_LINE_MAX + 1];
	size_t i, j, k;

	for (i = 0; i < n; i = j + 1) {
		for (j = i; j < n && p[j] != '\n'; j++)
			;
		k = j - i < CONFIG_IMAP_LINE_MAX ? j - i : CONFIG_IMAP_LINE_MAX;
		k -= k && p[i + k - 1] == '\r';
		memcpy(line, p + i, k);	/* exactly k bytes: ASan sees any overread */
		check_set(line, k, 1 + (k ? line[0] % 50 : 0));
		check_fetch(line, k);
		check_search(line, k, p + j, n - j);
		check_misc(line, k);
	}
}

static const char inbox[] =
    "From a@example.org Thu Nov 26 12:00:00 2026\n"
    "From: Alice <a@example.org>\nTo: b@example.lan\nSubject: plain\nDate: Thu, 26 Nov 2026 12:00:00 +0000\n"
    "Message-ID: <1@example.org>\n\nHello\n>From here\n\n"
    "From a@example.org Thu Nov 26 12:00:01 2026\n"
    "From: a@example.org\nSubject: mixed\nContent-Type: multipart/mixed; boundary=\"b\"\n\n"
    "--b\nContent-Type: text/plain\n\none\n--b\nContent-Type: message/rfc822\n\n"
    "From: c@example.org\nSubject: inner\nContent-Type: multipart/alternative; boundary=i\n\n"
    "--i\n\ntext\n--i\nContent-Type: text/html\n\n<b>x</b>\n--i--\n--b--\n\n"
    "From a@example.org Thu Nov 26 12:00:02 2026\n"
    "Subject: header only\nX-Flags: none\n\n";

static char ddir[64];

static void
rm_user(void)
{
	char p[PATH_MAX_K + 64];
	struct dirent *de;
	DIR *d;

	snprintf(p, sizeof(p), "%s/mail/%s", ddir, uname);
	if ((d = opendir(p)) != NULL) {
		while ((de = readdir(d)) != NULL)
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				FZ_ASSERT(unlinkat(dirfd(d), de->d_name, 0) == 0);
		closedir(d);
		FZ_ASSERT(rmdir(p) == 0);
	}
}

static void
done(void)
{
	char p[PATH_MAX_K + 64];

	snprintf(p, sizeof(p), "%s/spool/tmp", ddir);
	rmdir(p);
	snprintf(p, sizeof(p), "%s/spool", ddir);
	rmdir(p);
	snprintf(p, sizeof(p), "%s/mail", ddir);
	rmdir(p);
	rmdir(ddir);
}

static void
setup(void)
{
	char p[PATH_MAX_K + 64];

	conn_init();
	cfg.max_errors = 1000;
	cfg.timeout = 300;
	cfg.login_timeout = 60;
	cfg.max_sessions = 100;
	cfg.max_message_size = 4096;
	now = 1000;
	/* tmpfs when there is one: the folder layer fsyncs */
	snprintf(ddir, sizeof(ddir), "%s/kotak-fuzz-imap.XXXXXX", access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm");
	FZ_ASSERT(mkdtemp(ddir) != NULL);
	atexit(done);
	snprintf(cfg.data_dir, sizeof(cfg.data_dir), "%s", ddir);
	snprintf(p, sizeof(p), "%s/spool", ddir);
	FZ_ASSERT(mkdir(p, 0700) == 0);
	snprintf(p, sizeof(p), "%s/spool/tmp", ddir);
	FZ_ASSERT(mkdir(p, 0700) == 0);
	snprintf(p, sizeof(p), "%s/mail", ddir);
	FZ_ASSERT(mkdir(p, 0700) == 0);
}

/* A user of this input's own with a fresh INBOX. */
static void
new_user(void)
{
	static unsigned n;
	char p[PATH_MAX_K + 64];
	int fd;

	snprintf(uname, sizeof(uname), "u%u", ++n);
	snprintf(p, sizeof(p), "%s/mail/%s", ddir, uname);
	FZ_ASSERT(mkdir(p, 0700) == 0);
	snprintf(p, sizeof(p), "%s/mail/%s/INBOX", ddir, uname);
	FZ_ASSERT((fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600)) >= 0);
	FZ_ASSERT(write(fd, inbox, sizeof(inbox) - 1) == (ssize_t)sizeof(inbox) - 1);
	close(fd);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct fz_split s;
	int ctl;

	if (!ready) {
		setup();
		ready = 1;
	}
	if (fz_split(data, size, &s) < 0 || s.n < 1)
		return 0;
	ctl = s.p[0];
	s.p++, s.n--;
	cfg.max_errors = ctl & 2 ? 3 : 1000;
	cleartext_ok = (ctl & 4) != 0;
	auth_fails = 0;
	auth_last = 0;
	ntags = 0;
	now = 1000;
	memset(&out, 0, sizeof(out));
	note_tags(s.p, s.n);
	new_user();
	session(&s, ctl);
	rm_user();
	parsers(s.p, s.n);
	return 0;
}

/*
 * submit.c: local submission and the queue commands.
 *
 * `kotak sendmail` (also the binary run through a symlink named sendmail,
 * a drop-in for /usr/sbin/sendmail) reads a message on stdin and writes it
 * into spool/queue/ in the format queue.c reads (see its header comment),
 * the way an SMTP transaction does: spool/tmp/QID, fsync, rename into
 * spool/queue/, fsync the directory.  It needs no running daemon: the
 * daemon delivers what it finds there when it starts, and one that runs is
 * told through its pid file (SIGUSR1: deliver now).
 *
 * The message goes through data.c's DATA parser, fed an SMTP rendition of
 * the input (CRLF lines, dot-stuffed, ".\r\n" at the end), so the header
 * filter (Status, X-UID, ... dropped), the size and line limits and the
 * Received: count are exactly those of SMTP.  Before it, this file reads
 * the header section itself: to take the recipients of -t from To/Cc/Bcc,
 * to drop Bcc, and to add From:, Date: and Message-ID: when missing.
 *
 * `kotak queue list [-j] | del ID | flush` reads the spool for people and
 * the web UI, removes a message, or asks the daemon to retry now.
 *
 * The pid file, data_dir/kotak.pid, holds the daemon's pid and a POSIX
 * write lock for its lifetime: a stale file (kill -9, a crash) has no lock
 * and is never signalled, so a reused pid cannot get our SIGUSR1.
 */
#include "kotak.h"
#include "json.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* sysexits.h values (musl has no sysexits.h) */
#define SX_USAGE	64
#define SX_DATAERR	65
#define SX_NOUSER	67
#define SX_TEMPFAIL	75
#define SX_NOPERM	77
#define SX_CONFIG	78

#define HDR_MAX		(256 * 1024)	/* header section read into memory */
#define TRL_LEN		31		/* "KOTAK-END %020lld\n" */

static char qdir[PATH_MAX_K + 16], tdir[PATH_MAX_K + 16];
char submit_qid[QID_LEN + 1];

static void
spool_paths(void)
{
	snprintf(qdir, sizeof(qdir), "%s/spool/queue", cfg.data_dir);
	snprintf(tdir, sizeof(tdir), "%s/spool/tmp", cfg.data_dir);
}

/* ---- the daemon's pid file ---- */

static int pid_fd = -1;
static char pid_path[PATH_MAX_K + 16];

/* At daemon start, after queue_init: write and lock data_dir/kotak.pid. */
void
pidfile_create(void)
{
	struct flock fl;
	char b[32];
	int fd, n;

	snprintf(pid_path, sizeof(pid_path), "%s/kotak.pid", cfg.data_dir);
	if ((fd = open(pid_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644)) < 0) {
		log_warn("%s (kotak sendmail and queue flush cannot find this daemon)", pid_path);
		return;
	}
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(fd, F_SETLK, &fl) < 0) {
		memset(&fl, 0, sizeof(fl));
		fl.l_type = F_WRLCK;
		fl.l_whence = SEEK_SET;
		if (fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK)
			log_warnx("%s: another kotak (pid %d) uses this data_dir", pid_path, (int)fl.l_pid);
		else
			log_warn("%s: lock", pid_path);
		close(fd);
		return;
	}
	n = snprintf(b, sizeof(b), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, b, n, 0) != n)
		log_warn("%s: write", pid_path);
	pid_fd = fd;
}

/* At daemon exit. */
void
pidfile_remove(void)
{
	if (pid_fd < 0)
		return;
	unlink(pid_path);
	close(pid_fd);	/* and the lock with it */
	pid_fd = -1;
}

/* The pid of the daemon using this data_dir, or 0 when none runs. */
pid_t
pidfile_running(void)
{
	struct flock fl;
	char p[PATH_MAX_K + 16];
	int fd;

	snprintf(p, sizeof(p), "%s/kotak.pid", cfg.data_dir);
	if ((fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return 0;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(fd, F_GETLK, &fl) < 0 || fl.l_type == F_UNLCK || fl.l_pid <= 0)
		fl.l_pid = 0;
	close(fd);
	return fl.l_pid;
}

/* ---- stdin, a piece at a time ---- */

enum { RD_EOF, RD_LINE, RD_PART, RD_LAST };	/* RD_LAST: the final line, no LF */
static struct {
	char	 b[65536];
	size_t	 pos, len;
	int	 eof;
} rd;

/*
 * The next piece of input in *p, *n: RD_LINE a whole line (its LF and one
 * CR before it cut), RD_PART the first bytes of a line longer than the
 * buffer (more follows), RD_LAST the last line when the input does not end
 * in LF, RD_EOF at the end; -1 on a read error.
 */
static int
rd_next(char **p, size_t *n)
{
	char *lf;
	ssize_t r;

	for (;;) {
		if ((lf = memchr(rd.b + rd.pos, '\n', rd.len - rd.pos)) != NULL) {
			*p = rd.b + rd.pos;
			*n = lf - *p;
			rd.pos = lf - rd.b + 1;
			if (*n && (*p)[*n - 1] == '\r')
				(*n)--;
			return RD_LINE;
		}
		if (rd.eof) {
			if (rd.pos == rd.len)
				return RD_EOF;
			*p = rd.b + rd.pos;
			*n = rd.len - rd.pos;
			rd.pos = rd.len;
			if ((*p)[*n - 1] == '\r')
				(*n)--;
			return RD_LAST;
		}
		if (rd.pos == 0 && rd.len == sizeof(rd.b)) {
			/* a CR at the end may be half of a CRLF: keep it */
			*p = rd.b;
			*n = rd.len - (rd.b[rd.len - 1] == '\r');
			rd.pos = *n;
			return RD_PART;
		}
		memmove(rd.b, rd.b + rd.pos, rd.len - rd.pos);
		rd.len -= rd.pos;
		rd.pos = 0;
		r = read(0, rd.b + rd.len, sizeof(rd.b) - rd.len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			rd.eof = 1;
		rd.len += r;
	}
}

/* ---- the SMTP rendition fed to data.c ---- */

static struct data_rd dr;
static char stage[65536];
static size_t nstage;
static int fed_done;

static void
stage_flush(void)
{
	size_t off = 0, used;
	int done = 0;

	while (off < nstage && !done) {
		used = data_push(&dr, stage + off, nstage - off, &done);
		off += used;
	}
	if (done)
		fed_done = 1;
	nstage = 0;
}

static void
put(const char *p, size_t n)
{
	while (n) {
		size_t c = sizeof(stage) - nstage < n ? sizeof(stage) - nstage : n;
		memcpy(stage + nstage, p, c);
		nstage += c, p += c, n -= c;
		if (nstage == sizeof(stage))
			stage_flush();
	}
}

/* A piece of a line: dot-stuffed at the start of a line, CRLF when whole. */
static void
put_piece(const char *p, size_t n, int bol, int whole)
{
	if (bol && n && p[0] == '.')
		put(".", 1);
	put(p, n);
	if (whole)
		put("\r\n", 2);
}

/* Each LF-ended line of p[0..n). */
static void
put_lines(const char *p, size_t n)
{
	const char *lf;

	while (n && (lf = memchr(p, '\n', n)) != NULL) {
		put_piece(p, lf - p, 1, 1);
		n -= lf + 1 - p;
		p = lf + 1;
	}
}

/* ---- growing strings ---- */

struct str {
	char	*p;
	size_t	 len, cap;
};

static int
str_add(struct str *s, const char *p, size_t n)
{
	if (s->len + n + 1 > s->cap) {
		size_t cap = s->cap ? s->cap : 1024;
		char *q;
		while (cap < s->len + n + 1)
			cap *= 2;
		if ((q = realloc(s->p, cap)) == NULL)
			return -1;
		s->p = q;
		s->cap = cap;
	}
	memcpy(s->p + s->len, p, n);
	s->len += n;
	s->p[s->len] = '\0';
	return 0;
}

/* ---- recipients ---- */

static struct str env;		/* the R lines */
static int nrcpt, unknown, rcpt_err;
static char rcpt1[ADDR_MAX];

static void oom(void) __attribute__((noreturn));
static void
oom(void)
{
	fprintf(stderr, "kotak: sendmail: out of memory\n");
	exit(SX_TEMPFAIL);
}

static void
sadd(struct str *s, const char *p, size_t n)
{
	if (str_add(s, p, n) < 0)
		oom();
}

/* This R line (with its LF) already in env, whatever the case? */
static int
in_env(const char *line, size_t l)
{
	size_t o, n;

	for (o = 0; o < env.len; o += n) {
		n = strcspn(env.p + o, "\n") + 1;
		if (n == l && !strncasecmp(env.p + o, line, l))
			return 1;
	}
	return 0;
}

/* One recipient address (with or without <>; a bare name is local),
 * resolved as RCPT TO does; its R lines go to env. */
static void
add_rcpt(const char *s, size_t n)
{
	static char users[32][USER_MAX];
	char b[ADDR_MAX + 4], orig[ADDR_MAX], line[ADDR_MAX + USER_MAX + 16];
	struct addr a;
	const char *rest;
	int i, k;

	while (n && (*s == ' ' || *s == '\t'))
		s++, n--;
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n >= 2 && s[0] == '<' && s[n - 1] == '>')
		s++, n -= 2;
	if (n == 0)
		return;
	/* a bare name is a local one (as "<postmaster>" in SMTP) */
	if (n > ADDR_MAX - 3 || (snprintf(b, sizeof(b), memchr(s, '@', n) ? "<%.*s>" : "<%.*s@%s>",
	    (int)n, s, cfg.domain[0]),
	    addr_parse_path(b, &a, ADDR_UTF8, &rest) < 0) || *rest || !a.local[0]) {
		fprintf(stderr, "kotak: sendmail: bad recipient address syntax: %.*s\n", (int)(n > 300 ? 300 : n), s);
		if (!rcpt_err)
			rcpt_err = SX_DATAERR;
		return;
	}
	if (!a.domain[0])
		strlcpy_k(a.domain, cfg.domain[0], sizeof(a.domain));
	addr_format(&a, orig, sizeof(orig));
	if (!cfg_is_local_domain(a.domain)) {
		k = 1;	/* "!": a remote recipient, for the relay */
		strlcpy_k(users[0], "!", USER_MAX);
	} else {
		k = alias_expand(a.local, users, 32);
	}
	if (k == 0) {
		fprintf(stderr, "kotak: sendmail: <%s>: user unknown\n", orig);
		unknown = 1;
		return;
	}
	if (k < 0) {
		fprintf(stderr, "kotak: sendmail: <%s>: alias leads nowhere or too deep (configuration error)\n", orig);
		rcpt_err = SX_TEMPFAIL;
		return;
	}
	for (i = 0; i < k; i++) {
		int l = rcpt_line(line, sizeof(line), users[i], orig);
		/* a remote address named twice, or reached through two
		 * aliases, is sent once (as smtp_in.c's RCPT TO) */
		if (users[i][0] == '!' && in_env(line, l))
			continue;
		if (str_add(&env, line, l) < 0)
			oom();
	}
	if (nrcpt++ == 0)
		strlcpy_k(rcpt1, orig, sizeof(rcpt1));
}

/* Comma-separated addresses (command line arguments). */
static void
add_rcpt_list(const char *s)
{
	const char *c;

	while ((c = strchr(s, ',')) != NULL) {
		add_rcpt(s, c - s);
		s = c + 1;
	}
	add_rcpt(s, strlen(s));
}

/*
 * An RFC 5322 address-list (a To/Cc/Bcc value, unfolded): each element's
 * address is what stands in <>, else the element without comments; group
 * names ("team: a@x, b@y;") and empty elements drop out.
 */
static void
add_rcpt_header(const char *s, size_t n)
{
	struct str cur = { 0 }, ang = { 0 };
	int q = 0, cmt = 0, inang = 0, hasang = 0, lit = 0;
	size_t i;

	for (i = 0; i <= n; i++) {
		char c = i < n ? s[i] : ',';
		struct str *t;

		if (i == n)	/* the end closes whatever is open */
			q = cmt = inang = lit = 0;
		t = inang ? &ang : &cur;

		if (cmt) {
			if (c == '\\' && i + 1 < n)
				i++;
			else if (c == '(')
				cmt++;
			else if (c == ')')
				cmt--;
			continue;
		}
		if (q) {
			if (c == '\\' && i + 1 < n) {
				if (str_add(t, s + i, 2) < 0)
					oom();
				i++;
				continue;
			}
			if (c == '"')
				q = 0;
		} else if (lit) {	/* a domain literal: [IPv6:...] */
			if (c == ']')
				lit = 0;
		} else if (c == '[') {
			lit = 1;
		} else if (c == '"') {
			q = 1;
		} else if (c == '(') {
			cmt = 1;
			continue;
		} else if (c == '<' && !inang) {
			inang = hasang = 1;
			ang.len = 0;
			continue;
		} else if (c == '>' && inang) {
			inang = 0;
			continue;
		} else if (c == ':' && !inang) {	/* a group's name */
			cur.len = 0;
			continue;
		} else if ((c == ',' || c == ';') && !inang) {
			if (hasang)
				add_rcpt(ang.p ? ang.p : "", ang.len);
			else
				add_rcpt(cur.p ? cur.p : "", cur.len);
			cur.len = ang.len = 0;
			inang = hasang = 0;
			continue;
		}
		if (c == '\r' || c == '\n')
			c = ' ';
		if (str_add(t, &c, 1) < 0)
			oom();
	}
	free(cur.p);
	free(ang.p);
}

/* ---- the header section ---- */

/* Length of the field name when line p[0..n) starts a header field (name,
 * optional blanks, ':'), else 0. */
static size_t
field_name(const char *p, size_t n)
{
	size_t i = 0, nl;

	while (i < n && p[i] > 32 && p[i] < 127 && p[i] != ':')
		i++;
	nl = i;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	return nl && i < n && p[i] == ':' ? nl : 0;
}

static int
name_is(const char *p, size_t n, const char *name)
{
	return strlen(name) == n && !strncasecmp(p, name, n);
}

static void
usage_sendmail(void)
{
	fprintf(stderr, "usage: sendmail [-t] [-i] [-oi] [-f sender] [-F name] [-v] [recipient ...]\n"
	    "       (as a symlink named sendmail; kotak [-c FILE] sendmail ... otherwise)\n");
	exit(SX_USAGE);
}

static void
quoted(struct str *s, const char *p)
{
	if (str_add(s, "\"", 1) < 0)
		oom();
	for (; *p; p++) {
		if (*p == '\r' || *p == '\n')
			continue;
		if ((*p == '"' || *p == '\\') && str_add(s, "\\", 1) < 0)
			oom();
		if (str_add(s, p, 1) < 0)
			oom();
	}
	if (str_add(s, "\"", 1) < 0)
		oom();
}

/* static: reachable (not leaked) whatever return the function takes */
static struct str hdr, add;

int
submit_sendmail(const char *cfg_path, int argc, char **argv)
{
	char err[400], sender[ADDR_MAX], qid[QID_LEN + 1], tmp[PATH_MAX_K + 40], dst[PATH_MAX_K + 40];
	char line[ADDR_MAX + 64], recv[1200], date[40], mid[64];
	const char *from = NULL, *fullname = NULL;
	char *p;
	size_t n, hend = (size_t)-1, f, e;
	int c, tmode = 0, dots = 1, verbose = 0, mode = 0, r, fd = -1, l, tries;
	int ended = 0, cont = 0, skip = 0, first = 1, nfields = 0, bodycont = 0;
	int has_from = 0, has_date = 0, has_mid = 0, rc;
	unsigned rnd;
	pid_t pid;
	time_t t;

	optind = 1;
	while ((c = getopt(argc, argv, "+A:B:C:F:L:N:O:R:V:X:b:f:h:imo:p:q::r:tUv")) != -1) {
		switch (c) {
		case 't':
			tmode = 1;
			break;
		case 'i':
			dots = 0;
			break;
		case 'o':
			if (!strcmp(optarg, "i"))
				dots = 0;
			break;	/* -oem, -odb ...: nothing to do here */
		case 'f':
		case 'r':
			from = optarg;
			break;
		case 'F':
			fullname = optarg;
			break;
		case 'v':
			verbose = 1;
			break;
		case 'b':
			if (!strcmp(optarg, "p"))
				mode = 'p';
			else if (strcmp(optarg, "m")) {
				fprintf(stderr, "kotak: sendmail: -b%s is not supported\n", optarg);
				return SX_USAGE;
			}
			break;
		case 'q':
			mode = 'q';
			break;
		case '?':
			usage_sendmail();
			break;
		default:	/* -B -N -R -V -L -h -p -m -U -A -C -O -X: accepted, ignored */
			break;
		}
	}
	umask(077);
	if (cfg_load(cfg_path, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "kotak: %s\n", err);
		return SX_CONFIG;
	}
	if (mode == 'p') {
		char *a[] = { "queue", "list", NULL };
		return queue_cmd(2, a);
	}
	if (mode == 'q') {
		char *a[] = { "queue", "flush", NULL };
		return queue_cmd(2, a);
	}
	if (!tmode && optind >= argc) {
		fprintf(stderr, "kotak: sendmail: no recipients given (name them, or use -t)\n");
		return SX_USAGE;
	}
	if (users_load(cfg.users_file, err, sizeof(err)) < 0) {
		fprintf(stderr, "kotak: %s\n", err);
		return SX_CONFIG;
	}
	spool_paths();

	/* the envelope sender: -f, else the invoking user at the first local domain */
	if (from != NULL) {
		struct addr a;
		const char *rest;
		size_t fl = strlen(from);
		if (fl >= 2 && from[0] == '<' && from[fl - 1] == '>')
			from++, fl -= 2;
		snprintf(line, sizeof(line), fl && !memchr(from, '@', fl) ? "<%.*s@%s>" : "<%.*s>", (int)fl, from,
		    cfg.domain[0]);	/* a bare name is local */
		if (fl > ADDR_MAX - 3 || addr_parse_path(line, &a, ADDR_NULL_OK | ADDR_UTF8, &rest) < 0 || *rest) {
			fprintf(stderr, "kotak: sendmail: bad sender address syntax: %s\n", from);
			return SX_USAGE;
		}
		addr_format(&a, sender, sizeof(sender));
	} else {
		struct passwd *pw = pw_lookup(NULL, getuid());
		const char *u = pw && pw->pw_name[0] ? pw->pw_name : getuid() == 0 ? "root" : "nobody";
		snprintf(sender, sizeof(sender), "%s@%s", u, cfg.domain[0]);
	}

	/* the header section, up to its blank line or the first line that
	 * is not a header field (which begins the body) */
	for (;;) {
		if ((r = rd_next(&p, &n)) < 0) {
			fprintf(stderr, "kotak: sendmail: reading the message: %s\n", strerror(errno));
			return SX_TEMPFAIL;
		}
		if (r == RD_EOF) {
			ended = 1;
			break;
		}
		if (cont) {	/* the rest of a long line */
			cont = r == RD_PART;
			if (!skip && (str_add(&hdr, p, n) < 0 || (!cont && str_add(&hdr, "\n", 1) < 0)))
				oom();
			if (!cont)
				skip = 0;
			if (r == RD_LAST) {
				ended = 1;
				break;
			}
			if (hdr.len > HDR_MAX)
				break;
			continue;
		}
		if (dots && r != RD_PART && n == 1 && p[0] == '.') {
			ended = 1;
			break;
		}
		if (first && n >= 5 && !memcmp(p, "From ", 5)) {	/* an mbox postmark */
			first = 0;
			cont = skip = r == RD_PART;
			continue;
		}
		first = 0;
		if (n == 0 && r != RD_PART) {	/* the blank line */
			ended = r == RD_LAST;
			break;
		}
		if (!((p[0] == ' ' || p[0] == '\t') && nfields) && !field_name(p, n)) {
			/* the body starts without a blank line: keep its first line */
			hend = hdr.len;
			if (str_add(&hdr, p, n) < 0 || (r != RD_PART && str_add(&hdr, "\n", 1) < 0))
				oom();
			bodycont = r == RD_PART;
			ended = r == RD_LAST;
			break;
		}
		if (p[0] != ' ' && p[0] != '\t')
			nfields++;
		if (str_add(&hdr, p, n) < 0 || (r != RD_PART && str_add(&hdr, "\n", 1) < 0))
			oom();
		cont = r == RD_PART;
		if (r == RD_LAST) {
			ended = 1;
			break;
		}
		if (hdr.len > HDR_MAX)
			break;
	}
	if (hdr.len > HDR_MAX) {
		fprintf(stderr, "kotak: sendmail: header section larger than %d bytes\n", HDR_MAX);
		return SX_DATAERR;
	}
	if (hend == (size_t)-1)	/* no body line read yet */
		hend = hdr.len;

	/* fields: what is there, and the recipients of -t */
	for (f = 0; f < hend; f = e) {
		size_t nl = field_name(hdr.p + f, hend - f), v;
		for (e = f; e < hend; ) {	/* the field's end, after its continuation lines */
			const char *lf = memchr(hdr.p + e, '\n', hend - e);
			e = lf ? (size_t)(lf - hdr.p) + 1 : hend;
			if (e >= hend || (hdr.p[e] != ' ' && hdr.p[e] != '\t'))
				break;
		}
		if (!nl)
			continue;
		has_from |= name_is(hdr.p + f, nl, "from");
		has_date |= name_is(hdr.p + f, nl, "date");
		has_mid |= name_is(hdr.p + f, nl, "message-id");
		if (tmode && (name_is(hdr.p + f, nl, "to") || name_is(hdr.p + f, nl, "cc") ||
		    name_is(hdr.p + f, nl, "bcc"))) {
			v = f + nl;
			while (hdr.p[v] != ':')
				v++;
			add_rcpt_header(hdr.p + v + 1, e - v - 1);
		}
	}
	for (; optind < argc; optind++)
		add_rcpt_list(argv[optind]);
	if (unknown || rcpt_err)
		return unknown ? SX_NOUSER : rcpt_err;
	if (nrcpt == 0) {
		fprintf(stderr, "kotak: sendmail: no recipient addresses found in the header\n");
		return SX_USAGE;
	}

	/* the spool: made here too, so mail waits even before the first start */
	{
		const char *d[4] = { cfg.data_dir, "spool", "spool/queue", "spool/tmp" };
		char dp[PATH_MAX_K + 16];
		struct stat st;
		int i;
		for (i = 0; i < 4; i++) {
			snprintf(dp, sizeof(dp), i ? "%s/%s" : "%s", cfg.data_dir, d[i]);
			if (stat(dp, &st) == 0)
				continue;
			if ((i ? mkdir(dp, 0700) : mkdir_p(dp, 0700)) < 0 || give_to_user(dp) < 0) {
				fprintf(stderr, "kotak: sendmail: %s: %s\n", dp, strerror(errno));
				return errno == EACCES || errno == EPERM ? SX_NOPERM : SX_TEMPFAIL;
			}
		}
	}
	/* a fresh queue id, as queue.c makes them (time, then 32 bits), not
	 * in use in tmp/ (O_EXCL) nor in queue/ */
	for (tries = 0; tries < 16; tries++) {
		struct stat st;
		random_bytes(&rnd, sizeof(rnd));
		snprintf(qid, sizeof(qid), "%08llx%08x", (long long)time(NULL) & 0xffffffffLL, rnd);
		snprintf(tmp, sizeof(tmp), "%s/%s", tdir, qid);
		snprintf(dst, sizeof(dst), "%s/%s", qdir, qid);
		if (stat(dst, &st) == 0)
			continue;
		if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) >= 0 || errno != EEXIST)
			break;
	}
	if (fd < 0) {
		fprintf(stderr, "kotak: sendmail: %s: %s%s\n", tmp, strerror(errno),
		    errno == EACCES ? " (run it as root or as the user kotak runs as)" : "");
		return errno == EACCES || errno == EPERM ? SX_NOPERM : SX_TEMPFAIL;
	}

	t = time(NULL);
	rfc5322_date(date, sizeof(date), t);
	l = snprintf(line, sizeof(line), "KOTAK1 %s\nT %lld\nF %s\n", qid, (long long)t, sender);
	if (write(fd, line, l) != l || write(fd, env.p, env.len) != (ssize_t)env.len)
		goto ioerr;
	l = snprintf(recv, sizeof(recv), "\nReceived: from local (uid %u)\n\tby %s (kotak) with local id %s%s%s%s;\n\t%s\n",
	    (unsigned)getuid(), cfg.hostname, qid, nrcpt == 1 ? "\n\tfor <" : "", nrcpt == 1 ? rcpt1 : "",
	    nrcpt == 1 ? ">" : "", date);
	if (l >= (int)sizeof(recv) || write(fd, recv, l) != l)
		goto ioerr;
	data_start(&dr, fd, cfg.max_message_size);
	dr.written = l - 1;	/* the Received: header is part of the message */

	/* the header fields but Bcc, then the ones sendmail adds */
	for (f = 0; f < hend; f = e) {
		size_t nl = field_name(hdr.p + f, hend - f);
		for (e = f; e < hend; ) {
			const char *lf = memchr(hdr.p + e, '\n', hend - e);
			e = lf ? (size_t)(lf - hdr.p) + 1 : hend;
			if (e >= hend || (hdr.p[e] != ' ' && hdr.p[e] != '\t'))
				break;
		}
		if (!(nl && name_is(hdr.p + f, nl, "bcc")))
			put_lines(hdr.p + f, e - f);
	}
	if (!has_from && sender[0]) {
		sadd(&add, "From: ", 6);
		if (fullname && *fullname) {
			quoted(&add, fullname);
			sadd(&add, " <", 2);
			sadd(&add, sender, strlen(sender));
			sadd(&add, ">", 1);
		} else {
			sadd(&add, sender, strlen(sender));
		}
		sadd(&add, "\n", 1);
	}
	if (!has_date) {
		l = snprintf(line, sizeof(line), "Date: %s\n", date);
		sadd(&add, line, l);
	}
	if (!has_mid) {
		struct tm tm;
		gmtime_r(&t, &tm);
		snprintf(mid, sizeof(mid), "%04d%02d%02d%02d%02d%02d", tm.tm_year + 1900,
		    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		l = snprintf(line, sizeof(line), "Message-ID: <%s.%s@%s>\n", mid, qid, cfg.hostname);
		sadd(&add, line, l);
	}
	if (add.len)
		put_lines(add.p, add.len);
	put("\r\n", 2);
	/* the body: its first line if the header section ended at it, then stdin */
	if (hend < hdr.len)
		put_piece(hdr.p + hend, hdr.len - hend - !bodycont, 1, !bodycont);
	cont = bodycont;
	while (!ended) {
		if ((r = rd_next(&p, &n)) < 0) {
			fprintf(stderr, "kotak: sendmail: reading the message: %s\n", strerror(errno));
			unlink(tmp);
			return SX_TEMPFAIL;
		}
		if (r == RD_EOF)
			break;
		if (!cont && dots && r != RD_PART && n == 1 && p[0] == '.')
			break;
		put_piece(p, n, !cont, r != RD_PART);
		cont = r == RD_PART;
		if (r == RD_LAST)
			break;
	}
	if (cont)
		put("\r\n", 2);
	put(".\r\n", 3);
	stage_flush();
	free(hdr.p);
	free(add.p);
	if (!fed_done && !dr.err)
		dr.err = DE_IO, dr.err_errno = EIO;	/* cannot happen: the end marker is ours */
	if (!dr.err && dr.received > CONFIG_RECEIVED_MAX)
		dr.err = DE_LOOP;
	switch (dr.err) {
	case DE_OK:
		break;
	case DE_SIZE:
		fprintf(stderr, "kotak: sendmail: message larger than max_message_size (%lld bytes)\n",
		    cfg.max_message_size);
		rc = SX_DATAERR;
		goto fail;
	case DE_LINE:
		fprintf(stderr, "kotak: sendmail: message line longer than %d bytes\n", CONFIG_DATA_LINE_MAX);
		rc = SX_DATAERR;
		goto fail;
	case DE_LOOP:
		fprintf(stderr, "kotak: sendmail: too many Received: headers (%d): mail loop?\n", dr.received);
		rc = SX_DATAERR;
		goto fail;
	default:
		errno = dr.err_errno;
		goto ioerr;
	}
	if (queue_trailer(fd, dr.written) < 0 || fsync(fd) < 0)
		goto ioerr;
	r = close(fd);
	fd = -1;
	if (r < 0 || give_to_user(tmp) < 0 || rename(tmp, dst) < 0)
		goto ioerr;
	if (fsync_dir(qdir) < 0) {	/* not durable: we fail, so it must not be delivered (as queue_sync) */
		fprintf(stderr, "kotak: sendmail: %s: fsync: %s\n", qdir, strerror(errno));
		unlink(dst);
		return SX_TEMPFAIL;
	}
	if (cfg.log_syslog) {
		log_init(1);
		log_info("%s: queued from=<%s> size=%lld nrcpt=%d uid=%u (sendmail)", qid, sender,
		    dr.written, nrcpt, (unsigned)getuid());
	}
	strlcpy_k(submit_qid, qid, sizeof(submit_qid));	/* for kotak rpc test_mail */
	pid = pidfile_running();
	if (pid > 0 && kill(pid, SIGUSR1) < 0)
		pid = 0;
	if (verbose)
		fprintf(stderr, "kotak: sendmail: queued as %s%s\n", qid,
		    pid > 0 ? ", daemon told" : ", delivered when kotak runs (or within a minute)");
	return 0;
ioerr:
	fprintf(stderr, "kotak: sendmail: writing the spool: %s\n", strerror(errno));
	rc = SX_TEMPFAIL;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return rc;
}

/* ---- kotak queue ---- */

static int
qid_ok(const char *s)
{
	int i;

	for (i = 0; i < QID_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') || (s[i] >= 'A' && s[i] <= 'F')))
			return 0;
	return s[QID_LEN] == '\0';
}

static void
when(char *b, size_t n, time_t t)
{
	struct tm tm;

	/* UTC, as the logs and headers: musl's local time code (zoneinfo
	 * parsing) and strftime cost about 5 KiB on MIPS */
	gmtime_r(&t, &tm);
	snprintf(b, n, "%04d-%02d-%02d %02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
	    tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static int
qid_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One queued message as a line of text or a JSON object; -1 if it is
 * not a whole queue file (gone meanwhile, or damaged). */
static int
list_one(const char *qid, int json, int first)
{
	char p[PATH_MAX_K + 40], l[ADDR_MAX + USER_MAX + 16], tr[TRL_LEN + 1], a[32], nx[32];
	char sender[ADDR_MAX] = "";
	long long arrival = 0, size;
	unsigned long long u;
	struct stat st;
	FILE *fp;
	long off;
	int nr = 0, fd;

	snprintf(p, sizeof(p), "%s/%s", qdir, qid);
	if ((fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < TRL_LEN ||
	    pread(fd, tr, TRL_LEN, st.st_size - TRL_LEN) != TRL_LEN || (fp = fdopen(fd, "r")) == NULL) {
		close(fd);
		return -1;
	}
	tr[TRL_LEN - 1] = '\0';
	if (strncmp(tr, "KOTAK-END ", 10) || parse_uint(tr + 10, 1ULL << 62, &u) < 0)
		goto bad;
	size = (long long)u;
	if (!fgets(l, sizeof(l), fp) || strncmp(l, "KOTAK1 ", 7) || strncmp(l + 7, qid, QID_LEN))
		goto bad;
	off = ftell(fp);
	while (fgets(l, sizeof(l), fp) && l[0] != '\n') {	/* T and F come before the R lines */
		l[strcspn(l, "\n")] = '\0';
		if ((l[0] == 'T' || l[0] == 'W') && l[1] == ' ')	/* W: delay warning sent */
			arrival = strtoll(l + 2, NULL, 10);
		else if (l[0] == 'F' && l[1] == ' ')
			strlcpy_k(sender, l + 2, sizeof(sender));
	}
	when(a, sizeof(a), (time_t)arrival);
	if (st.st_mtime <= time(NULL))
		strlcpy_k(nx, "now", sizeof(nx));
	else
		when(nx, sizeof(nx), st.st_mtime);
	if (json) {
		printf("%s{\"id\":\"%s\",\"arrival\":%lld,\"size\":%lld,\"sender\":", first ? "" : ",\n ",
		    qid, arrival, size);
		json_str(stdout, sender);
		printf(",\"next_attempt\":%lld,\"recipients\":[", (long long)st.st_mtime);
	} else {
		printf("%s  %s  %8lld  <%s>  next %s  ->", qid, a, size, sender, nx);
	}
	fseek(fp, off, SEEK_SET);
	while (fgets(l, sizeof(l), fp) && l[0] != '\n') {
		char *user, *orig;
		l[strcspn(l, "\n")] = '\0';
		if (l[0] != 'R' || l[1] != ' ' || l[2] != '-' || l[3] != ' ')
			continue;
		user = l + 4;
		if ((orig = strchr(user, ' ')) == NULL)
			continue;
		*orig++ = '\0';
		if (json) {
			printf("%s{\"address\":", nr ? "," : "");
			json_str(stdout, orig);
			if (strcmp(user, "!")) {
				printf(",\"user\":");
				json_str(stdout, user);
				printf(",\"remote\":false}");
			} else {
				printf(",\"user\":null,\"remote\":true}");
			}
		} else {
			printf(" %s", strcmp(user, "!") ? user : orig);
		}
		nr++;
	}
	printf(json ? "]}" : "\n");
	fclose(fp);
	return 0;
bad:
	fclose(fp);
	return -1;
}

static int
queue_list(int json)
{
	struct dirent *de;
	char **ids = NULL;
	size_t n = 0, cap = 0, i;
	int first = 1;
	DIR *d = opendir(qdir);

	if (d == NULL) {
		if (errno != ENOENT) {
			fprintf(stderr, "kotak: %s: %s\n", qdir, strerror(errno));
			return 1;
		}
	} else {
		while ((de = readdir(d)) != NULL) {
			if (!qid_ok(de->d_name))
				continue;
			if (n == cap) {
				char **x = realloc(ids, (cap = cap ? cap * 2 : 64) * sizeof(*ids));
				if (x == NULL)
					oom();
				ids = x;
			}
			if ((ids[n++] = strdup(de->d_name)) == NULL)
				oom();
		}
		closedir(d);
	}
	if (n)
		qsort(ids, n, sizeof(*ids), qid_cmp);	/* ids begin with the time */
	if (json)
		printf("[");
	for (i = 0; i < n; i++) {
		if (list_one(ids[i], json, first) == 0)
			first = 0;
		free(ids[i]);
	}
	free(ids);
	if (json)
		printf("]\n");
	return fflush(stdout) == 0 ? 0 : 1;
}

/* Remove one queued message: 0, or -1 with the reason in err. */
int
queue_del(const char *qid, char *err, size_t errlen)
{
	char p[PATH_MAX_K + 40];

	spool_paths();
	if (!qid_ok(qid)) {
		snprintf(err, errlen, "'%.40s' is not a queue id (16 hex digits)", qid);
		return -1;
	}
	snprintf(p, sizeof(p), "%s/%s", qdir, qid);
	if (unlink(p) < 0) {
		snprintf(err, errlen, "%s: %s", qid, errno == ENOENT ? "no such message in the queue" : strerror(errno));
		return -1;
	}
	fsync_dir(qdir);
	log_info("%s: removed by kotak queue del (uid %u)", qid, (unsigned)getuid());
	return 0;
}

int
queue_cmd(int argc, char **argv)
{
	char p[PATH_MAX_K + 40];
	pid_t pid;

	spool_paths();
	if (argc == 2 && !strcmp(argv[1], "list"))
		return queue_list(0);
	if (argc == 3 && !strcmp(argv[1], "list") && !strcmp(argv[2], "-j"))
		return queue_list(1);
	if (argc == 3 && !strcmp(argv[1], "del")) {
		if (queue_del(argv[2], p, sizeof(p)) < 0) {
			fprintf(stderr, "kotak: queue del: %s\n", p);
			return 1;
		}
		return 0;
	}
	if (argc == 2 && !strcmp(argv[1], "flush")) {
		if ((pid = pidfile_running()) <= 0) {
			fprintf(stderr, "kotak: queue flush: kotak is not running (the queue is delivered when it starts)\n");
			return 1;
		}
		if (kill(pid, SIGUSR1) < 0) {
			fprintf(stderr, "kotak: queue flush: signal pid %d: %s\n", (int)pid, strerror(errno));
			return 1;
		}
		printf("kotak: asked the daemon (pid %d) to retry every queued message now\n", (int)pid);
		return 0;
	}
	fprintf(stderr, "usage: kotak [-c FILE] queue list [-j] | queue del ID | queue flush\n");
	return 2;
}

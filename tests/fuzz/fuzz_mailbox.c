/* fuzz_mailbox.c: the mailbox layer (src/mailbox.c): the mbox scanner, the
 * index, incremental opens, expunge and flags, on a real file in a temp
 * data_dir, against a reference model of the mbox format in mailbox.h:
 * - a message starts at a line beginning "From " that is the file's first
 *   line or follows a line that is exactly "\n"; bytes before the first
 *   such line belong to no message;
 * - its content runs from after its From_ line to its successor's From_
 *   line less the blank separator (one byte), or to the end of the file
 *   less a final blank line;
 * - its size is its content's octets as POP3 sends them: each line ends
 *   in CRLF (a CR before the LF is part of the line end; a last line
 *   without LF gets one), one '>' less on a line matching ^>+From  within
 *   its first 64 bytes;
 * - its hash is FNV-1a of the first 256 bytes of its span.
 *
 * Input: the fuzz.h chunk header, then one control byte, then the payload:
 * chunk 0 is the mbox as found, chunk 1 what another program appends,
 * chunk 2 a bit mask of messages to delete, the rest a replacement file
 * that another program writes over the mbox.  Control bits:
 *   0: expunge the masked messages (else: store \Seen on them)
 *   1: the replacement file is written (another program rewrote the mbox)
 *   2: a garbage index (the replacement's bytes) is there before the first open
 * Checks after every open: the records equal the model (offsets, sizes,
 * hashes), the content of each reads back (mailbox_locate +
 * mailbox_read) as the model's bytes, UIDs ascend below next_uid and,
 * while UIDVALIDITY stays, a UID names the same message (hash) as before;
 * an incremental open equals a full rebuild; after the expunge the file is
 * the old one without the deleted spans and every kept message keeps its
 * UID; stored flags survive a reopen.
 * The _small build reads 128 bytes at a time and scans or moves 256 bytes
 * per call, so long lines, slices and resumed expunges are reached. */
#include "kotak.h"
#include "mailbox.h"
#include "fuzz.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- stubs: log.c (quiet) and the queue (no dotlock notes here) */

void log_init(int to_syslog) { }
void log_info(const char *fmt, ...) { }
void log_warn(const char *fmt, ...) { }
void log_warnx(const char *fmt, ...) { }
void fatal(const char *fmt, ...) { abort(); }
void fatalx(const char *fmt, ...) { abort(); }
int queue_rcpt_done(const char *qid, const char *user) { return 1; }

static char dir[PATH_MAX_K], mbox[PATH_MAX_K + 32], idx[PATH_MAX_K + 32];

/* ---- the reference model */

#define MAXMSG 4096

struct ref {
	size_t	 n;
	size_t	 off[MAXMSG], start[MAXMSG], end[MAXMSG], span[MAXMSG];
	uint32_t size[MAXMSG], hash[MAXMSG];
};

static int
quoted(const unsigned char *p, size_t len)
{
	size_t i = 0, n = len < 64 ? len : 64;

	while (i < n && p[i] == '>')
		i++;
	return i > 0 && i + 5 <= n && !memcmp(p + i, "From ", 5);
}

static uint32_t
fnv(const unsigned char *p, size_t n)
{
	uint32_t h = 2166136261u;

	while (n--)
		h = (h ^ *p++) * 16777619u;
	return h;
}

/* Octets on the wire of content [a, b) of f. */
static uint32_t
wire(const unsigned char *f, size_t a, size_t b)
{
	size_t e, len, cl;
	uint32_t w = 0;

	while (a < b) {
		const unsigned char *lf = memchr(f + a, '\n', b - a);
		e = lf ? (size_t)(lf - f) + 1 : b;
		len = e - a;
		cl = len - (lf != NULL);
		if (lf && cl && f[a + cl - 1] == '\r')
			cl--;
		w += cl - quoted(f + a, len) + 2;
		a = e;
	}
	return w;
}

static void
ref_scan(const unsigned char *f, size_t n, struct ref *r)
{
	size_t a = 0, e, i;
	int blank = 1, last_blank = 0;

	r->n = 0;
	while (a < n) {
		const unsigned char *lf = memchr(f + a, '\n', n - a);
		e = lf ? (size_t)(lf - f) + 1 : n;
		if (blank && e - a >= 5 && !memcmp(f + a, "From ", 5)) {
			FZ_ASSERT(r->n < MAXMSG);
			r->off[r->n] = a;
			r->start[r->n] = e;	/* a From_ line without LF: empty content */
			r->n++;
		}
		last_blank = blank = e - a == 1 && lf;
		a = e;
	}
	for (i = 0; i < r->n; i++) {
		if (i + 1 < r->n) {
			r->span[i] = r->off[i + 1];
			r->end[i] = r->off[i + 1] - 1;
		} else {
			r->span[i] = n;
			r->end[i] = n - last_blank;
		}
		if (r->end[i] < r->start[i])
			r->end[i] = r->start[i];
		r->size[i] = wire(f, r->start[i], r->end[i]);
		e = r->span[i] - r->off[i];
		r->hash[i] = fnv(f + r->off[i], e < 256 ? e : 256);
	}
}

/* ---- files */

static void
put(const char *p, const void *b, size_t n, int append)
{
	int fd = open(p, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0600);

	FZ_ASSERT(fd >= 0);
	FZ_ASSERT(write(fd, b, n) == (ssize_t)n);
	close(fd);
}

static unsigned char *
slurp(const char *p, size_t *n)
{
	struct stat st;
	unsigned char *b;
	int fd = open(p, O_RDONLY);

	FZ_ASSERT(fd >= 0 && fstat(fd, &st) == 0);
	*n = st.st_size;
	b = malloc(*n + 1);
	FZ_ASSERT(b != NULL);
	FZ_ASSERT(pread(fd, b, *n, 0) == (ssize_t)*n);
	close(fd);
	return b;
}

/* Another program wrote the mbox: time moves on (a rewrite of the same
 * size within one clock tick is beyond any mtime check). */
static void
foreign_mtime(void)
{
	static time_t t = 1000000000;
	struct timespec ts[2];

	ts[0].tv_sec = ts[1].tv_sec = t += 10;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	FZ_ASSERT(utimensat(AT_FDCWD, mbox, ts, 0) == 0);
}

/* ---- the checks */

struct uids {			/* what a session saw, for the UID checks */
	uint32_t uv, n;
	uint64_t size;
	uint32_t uid[MAXMSG], hash[MAXMSG];
	uint64_t span[MAXMSG];
	uint8_t	 flags[MAXMSG];
};

static void
open_mb(struct mailbox *mb)
{
	int r, k = 0;

	mailbox_open(mb, "alice", "INBOX");
	while ((r = mailbox_sync(mb)) == MB_MORE)
		FZ_ASSERT(++k < 1000000);
	FZ_ASSERT(r == 0);
}

/* The open mailbox against the file as it is now. */
static void
check(struct mailbox *mb, const struct uids *before)
{
	static struct ref r;
	unsigned char *f, buf[300];
	size_t n, i, j;
	uint64_t s, e, pos;
	long k;

	f = slurp(mbox, &n);
	ref_scan(f, n, &r);
	if (getenv("FUZZ_VERBOSE") && (mb->n != r.n || mb->h.size != n)) {
		fprintf(stderr, "file %zu, index size %llu clean %u\n", n, (unsigned long long)mb->h.size, mb->h.clean);
		for (i = 0; i < mb->n || i < r.n; i++)
			fprintf(stderr, "  %zu: kotak %llu/%u model %zu/%u\n", i,
			    i < mb->n ? (unsigned long long)mb->rec[i].off : 0ULL, i < mb->n ? mb->rec[i].size : 0,
			    i < r.n ? r.off[i] : 0, i < r.n ? r.size[i] : 0);
	}
	FZ_ASSERT(mb->n == r.n);
	FZ_ASSERT(mb->h.size == n);
	for (i = 0; i < r.n; i++) {
		const struct mb_rec *m = &mb->rec[i];
		FZ_ASSERT(m->off == r.off[i]);
		FZ_ASSERT(m->size == r.size[i]);
		FZ_ASSERT(m->hash == r.hash[i]);
		FZ_ASSERT(m->uid > 0 && m->uid < mb->h.next_uid);
		FZ_ASSERT(i == 0 || m->uid > mb->rec[i - 1].uid);
		FZ_ASSERT(mailbox_locate(mb, i, &s, &e) == 0);
		if (getenv("FUZZ_VERBOSE") && (s != r.start[i] || e != r.end[i]))
			fprintf(stderr, "clean %u size %llu: msg %zu of %zu (file %zu): locate [%llu,%llu) model [%zu,%zu)\n", mb->h.clean, (unsigned long long)mb->h.size, i, r.n, n,
			    (unsigned long long)s, (unsigned long long)e, r.start[i], r.end[i]);
		(void)0;
		FZ_ASSERT(s == r.start[i] && e == r.end[i]);
		for (pos = s; pos < e; pos += k) {
			size_t want = (pos * 7 + i) % sizeof(buf) + 1;
			k = mailbox_read(mb, i, (char *)buf, want, pos);
			FZ_ASSERT(k > 0 && (size_t)k <= want);
			FZ_ASSERT(!memcmp(buf, f + pos, k));
		}
		if (before && before->uv == mb->h.uidvalidity)
			for (j = 0; j < before->n; j++)
				if (before->uid[j] == m->uid) {
					/* the same message; the last one may have grown
					 * (its separator, or a writer that does not lock) */
					size_t h = before->span[j] < 256 ? before->span[j] : 256;
					FZ_ASSERT(before->hash[j] == m->hash || (j + 1 == before->n &&
					    m->off + h <= n && fnv(f + m->off, h) == before->hash[j]));
				}
	}
	free(f);
}

static void
remember(const struct mailbox *mb, struct uids *u)
{
	uint32_t i;

	u->uv = mb->h.uidvalidity;
	u->n = mb->n;
	u->size = mb->h.size;
	for (i = 0; i < mb->n; i++) {
		u->uid[i] = mb->rec[i].uid;
		u->hash[i] = mb->rec[i].hash;
		u->span[i] = (i + 1 < mb->n ? mb->rec[i + 1].off : mb->h.size) - mb->rec[i].off;
		u->flags[i] = mb->rec[i].flags;
	}
}

/* A full rebuild (no index) finds the same messages as the open mailbox. */
static void
same_as_rebuild(const struct mailbox *mb)
{
	static struct mailbox fresh;
	char keep[PATH_MAX_K + 40];
	uint32_t i;

	snprintf(keep, sizeof(keep), "%s.keep", idx);
	FZ_ASSERT(rename(idx, keep) == 0);
	open_mb(&fresh);
	FZ_ASSERT(fresh.n == mb->n);
	for (i = 0; i < mb->n; i++)
		FZ_ASSERT(fresh.rec[i].off == mb->rec[i].off && fresh.rec[i].size == mb->rec[i].size &&
		    fresh.rec[i].hash == mb->rec[i].hash);
	mailbox_close(&fresh);
	FZ_ASSERT(rename(keep, idx) == 0);
}

static void clean(void);

static void
done(void)
{
	char p[PATH_MAX_K + 8];

	clean();
	rmdir(dir);
	snprintf(p, sizeof(p), "%s/mail", cfg.data_dir);
	rmdir(p);
	rmdir(cfg.data_dir);
}

static void
setup(void)
{
	/* tmpfs when there is one: an expunge fsyncs */
	char tmpl[64];

	snprintf(tmpl, sizeof(tmpl), "%s/kotak-fuzz-mailbox.XXXXXX", access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm");
	FZ_ASSERT(mkdtemp(tmpl) != NULL);
	atexit(done);
	snprintf(cfg.data_dir, sizeof(cfg.data_dir), "%s", tmpl);
	snprintf(dir, sizeof(dir), "%s/mail", tmpl);
	FZ_ASSERT(mkdir(dir, 0700) == 0);
	snprintf(dir, sizeof(dir), "%s/mail/alice", tmpl);
	FZ_ASSERT(mkdir(dir, 0700) == 0);
	snprintf(mbox, sizeof(mbox), "%s/INBOX", dir);
	snprintf(idx, sizeof(idx), "%s/.INBOX.idx", dir);
}

static void
clean(void)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char p[PATH_MAX_K + 300];

	FZ_ASSERT(d != NULL);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		unlink(p);
	}
	closedir(d);
}

static int
masked(const uint8_t *m, size_t mn, uint32_t i)
{
	return i / 8 < mn && (m[i / 8] >> (i % 8) & 1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mailbox mb;
	static struct uids u, v;
	static struct ref r;
	struct fz_split sp;
	const uint8_t *a, *b, *m, *c;
	size_t an, bn, mn, cn, gn, off = 0, n, i, j;
	unsigned char *f, *g;
	unsigned ctl;
	int rr, k;

	if (!cfg.data_dir[0])
		setup();
	if (fz_split(data, size, &sp) < 0 || sp.n < 1)
		return 0;
	ctl = sp.p[0];
	sp.p++, sp.n--;
	a = sp.p, an = sp.ncut > 0 ? fz_chunk(&sp, 0, 0) : sp.n;
	off += an;
	b = sp.p + off, bn = sp.ncut > 1 ? fz_chunk(&sp, 1, off) : 0;
	off += bn;
	m = sp.p + off, mn = sp.ncut > 2 ? fz_chunk(&sp, 2, off) : 0;
	off += mn;
	c = sp.p + off, cn = sp.n - off;
	clean();

	/* 1: the mbox as found (and maybe a garbage index beside it) */
	put(mbox, a, an, 0);
	if (ctl & 4)
		put(idx, c, cn, 0);
	open_mb(&mb);
	check(&mb, NULL);
	remember(&mb, &u);
	mailbox_close(&mb);

	/* 2: another program appends; the open is incremental, or a rescan
	 * that keeps the UIDs it can */
	if (bn) {
		put(mbox, b, bn, 1);
		foreign_mtime();
	}
	open_mb(&mb);
	check(&mb, &u);
	same_as_rebuild(&mb);
	remember(&mb, &v);

	/* 3: expunge the masked messages, or store \Seen on them */
	for (i = 0; i < mb.n; i++)
		if (masked(m, mn, i))
			mb.rec[i].sflags |= (ctl & 1) ? MS_DEL : MS_DIRTY;
	if (ctl & 1) {
		f = slurp(mbox, &n);
		ref_scan(f, n, &r);
		k = 0;
		while ((rr = mailbox_expunge(&mb)) == MB_MORE)
			FZ_ASSERT(++k < 1000000);
		FZ_ASSERT(rr == 0);
		mailbox_close(&mb);
		/* the file: the old one without the deleted spans */
		g = slurp(mbox, &gn);
		j = r.n ? r.off[0] : n;		/* the bytes before the first message stay */
		FZ_ASSERT(j <= gn && !memcmp(g, f, j));
		for (i = 0; i < r.n; i++) {
			if (masked(m, mn, i))
				continue;
			k = r.span[i] - r.off[i];
			FZ_ASSERT(j + k <= gn && !memcmp(g + j, f + r.off[i], k));
			j += k;
		}
		FZ_ASSERT(j == gn);
		free(f);
		free(g);
		/* the index after the cut is current, and kept messages keep their UIDs */
		open_mb(&mb);
		check(&mb, &v);
		FZ_ASSERT(mb.h.uidvalidity == v.uv);
		for (i = j = 0; i < v.n; i++)
			if (!masked(m, mn, i)) {
				FZ_ASSERT(j < mb.n && mb.rec[j].uid == v.uid[i]);
				j++;
			}
		FZ_ASSERT(j == mb.n);
		same_as_rebuild(&mb);
	} else {
		for (i = 0; i < mb.n; i++)
			if (mb.rec[i].sflags & MS_DIRTY)
				mb.rec[i].flags |= MF_SEEN;
		FZ_ASSERT(mailbox_save_flags(&mb) == 0);
		remember(&mb, &v);
		mailbox_close(&mb);
		open_mb(&mb);
		check(&mb, &v);
		FZ_ASSERT(mb.n == v.n);
		for (i = 0; i < mb.n; i++)
			FZ_ASSERT(mb.rec[i].flags == v.flags[i]);
	}
	remember(&mb, &u);
	mailbox_close(&mb);

	/* 4: another program rewrites the mbox */
	if (ctl & 2) {
		put(mbox, c, cn, 0);
		foreign_mtime();
		open_mb(&mb);
		if (cn != u.size) {
			check(&mb, &u);
		} else {
			/* the same size, first and last message in place: taken for
			 * a touch (mailbox.c sync_start), so each read checks its
			 * message's hash and says ESTALE when it moved */
			for (i = 0; i < mb.n; i++) {
				uint64_t s, e;
				char x[64];
				if (mailbox_locate(&mb, i, &s, &e) == 0 && s < e)
					FZ_ASSERT(mailbox_read(&mb, i, x, sizeof(x), s) > 0);
			}
		}
		mailbox_close(&mb);
	}
	return 0;
}

/*
 * mailbox.c: the index engine under folder.c: mbox scanning, the index
 * file, UID keeping, importing other programs' flags, compaction.  See
 * mailbox.h for the file formats.
 *
 * Opening.  The index header remembers the mbox size, mtime and inode it
 * covers and each record a hash of its message's first 256 bytes.  Same
 * size and mtime: nothing is read.  Grown, with the first and last known
 * messages still in place and "\n\nFrom " at the old end: only the
 * appended bytes are scanned (new messages get next_uid, next_uid+1, ...).
 * Anything else (shrunk, a message moved, another program rewrote the
 * file): the whole mbox is scanned again and each message takes the UID
 * of the old record with the same hash (in file order when it can, else by
 * binary search in the old records sorted by hash); UIDVALIDITY changes
 * only when that cannot give ascending UIDs.  Scans proceed SCAN_SLICE
 * bytes per call so a cold 100 MB mailbox never holds the loop.
 *
 * First index: what other programs wrote is imported (Status:, X-Status:,
 * X-Keywords:, and Dovecot's X-IMAPbase: and X-UID: when they ascend).
 *
 * Locks.  Readers hold an open-file-description read lock only while they
 * read (one call, never across a network wait).  Unlike a POSIX lock it
 * conflicts with kotak's own writers (mbox.c) and survives the close of
 * another fd of the same file.  When the writer is this process,
 * mbox_lock_mine says what for: folder.c keeps readers off the bytes a
 * compaction of its own moves; an append of ours only adds bytes.
 */
#define _GNU_SOURCE	/* mremap, F_OFD_SETLK */
#include "kotak.h"
#include "mailbox.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MB_MAGIC	0x4b544932u	/* "KTI2" in host order: another byte order reads as garbage */
#define MB_MAGIC1	0x4b544931u	/* version 1: 48-byte header, converted */
#define J_MAGIC		0x4b544a31u	/* compaction journal trailer */
#define FNV0		2166136261u
#define HASH_LEN	256		/* bytes of a message that identify it */
#define QCHK		64		/* mboxrd quoting is judged on a line's first 64 bytes */
#ifndef SCAN_SLICE	/* the fuzz target's small build makes these tiny */
#define SCAN_SLICE	(1 << 20)	/* mbox bytes scanned per call */
#define COPY_SLICE	(1 << 18)	/* bytes a compaction moves per call */
#define SBUF		32768		/* bytes read at once (scan, copy) */
#endif
#ifndef CUT_SLICE
#define CUT_SLICE	(1 << 23)	/* bytes a compaction cuts per call */
#endif

enum { PH_START, PH_SCAN, PH_DONE };
enum { EX_LOCK, EX_JOURNAL, EX_CUT, EX_APPEND };

static char sbuf[SBUF];	/* scratch of the scanner and the compaction */

/* One compaction at a time in the whole daemon (a second waits): its lock
 * (the dotlock and the write-locked fd) stays here across loop passes. */
static struct {
	struct mailbox *owner;
	struct mbox_lock lk;
	int	 jfd, ph;
	uint32_t xi, first, hash;
	uint64_t src, s, t, z, d, w, wprev, wsync;	/* w: journal bytes written */
	uint8_t	 sub;		/* the step within a phase's end */
} ex;

/* The journal's last bytes: it is complete only if they check out. */
struct jtrl {
	uint32_t magic, hash, ohash, olen;	/* hash of the data; of the first removed message */
	uint64_t s, t, z;			/* cut at s, t kept bytes, mbox size z before */
	uint32_t sum, pad;
};

static int test_delay = -1;	/* KOTAK_TEST_EXPUNGE_DELAY_MS: tests kill -9 between the steps */

uint32_t
mailbox_fnv(uint32_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	while (n--)
		h = (h ^ *s++) * 16777619u;
	return h;
}

int
mailbox_quoted(const char *p, size_t n)
{
	size_t i = 0;

	if (n > QCHK)
		n = QCHK;
	while (i < n && p[i] == '>')
		i++;
	return i > 0 && n - i >= 5 && !memcmp(p + i, "From ", 5);
}

/* <data_dir>/mail/<user>/<pre><folder><sfx>: the mbox, its dotlock, our
 * dot files (.INBOX.idx, .INBOX.exp, .INBOX.kw) that a listing skips. */
static int
path(const struct mailbox *mb, char *b, const char *pre, const char *sfx)
{
	return mbox_path(b, MBOX_PATH, mb->user, pre, mb->folder, sfx);
}

static int64_t
mtime_ns(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

static void
step(const char *what)
{
	if (test_delay > 0) {
		log_info("mailbox: expunge step %s", what);
		usleep(test_delay * 1000);
	}
}

/* ---- records in anonymous memory (sized by the mailbox) ---- */

static int
grow(struct mb_rec **a, uint32_t *cap, uint32_t need)
{
	uint32_t nc = *cap ? *cap : 256;
	void *p;

	if (need <= *cap)
		return 0;
	while (nc < need)
		nc *= 2;
	p = *cap ? mremap(*a, *cap * sizeof(**a), nc * sizeof(**a), MREMAP_MAYMOVE) :
	    mmap(NULL, nc * sizeof(**a), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	*a = p;
	*cap = nc;
	return 0;
}

static void
unmap(struct mb_rec **a, uint32_t *cap)
{
	if (*cap)
		munmap(*a, *cap * sizeof(**a));
	*a = NULL;
	*cap = 0;
}

/* ---- locks ---- */

/* The dotlock of this folder exists (anyone's)? */
static int
dotlocked(const struct mailbox *mb)
{
	char p[MBOX_PATH];
	struct stat st;

	return path(mb, p, "", ".lock") == 0 && lstat(p, &st) == 0;
}

static int
rdlock(struct mailbox *mb, int type)
{
	struct flock fl;
	struct stat st;
	off_t base;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
#if defined(F_OFD_SETLK)
	if (fcntl(mb->fd, F_OFD_SETLK, &fl) == 0 || errno == EINVAL || type == F_UNLCK)
#else
	if (fcntl(mb->fd, F_SETLK, &fl) == 0 || type == F_UNLCK)	/* old C library: POSIX lock */
#endif
		return 0;	/* EINVAL: a kernel before 3.15 has no reader locks */
	/* a lock of this process: an append only adds bytes; a rewrite is
	 * folder.c's own compaction, which keeps readers off what it moves */
	return fstat(mb->fd, &st) == 0 && mbox_lock_mine(&st, &base) ? 0 : MB_BUSY;
}

/* ---- the index file ---- */

static uint32_t
hdr_sum(const struct mb_hdr *h)
{
	return mailbox_fnv(FNV0, h, offsetof(struct mb_hdr, sum));
}

/* Version 1's header: the same first 36 bytes, a checksum at 40. */
struct mb_hdr1 {
	uint32_t magic, uidvalidity, next_uid, count;
	uint64_t size;
	int64_t	 mtime;
	uint32_t clean, sum, pad[2];
};

#if IMAP_PARTS
static void
kw_load(struct mailbox *mb)
{
	char p[MBOX_PATH], b[FOLDER_KW_MAX * FOLDER_KW_LEN], *l, *e;
	ssize_t n;
	int fd;

	mb->nkw = 0;
	if (path(mb, p, ".", ".kw") < 0 || (fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return;
	n = read(fd, b, sizeof(b) - 1);
	close(fd);
	if (n <= 0)
		return;
	b[n] = '\0';
	for (l = b; mb->nkw < FOLDER_KW_MAX && (e = strchr(l, '\n')) != NULL; l = e + 1) {
		*e = '\0';
		strlcpy_k(mb->kw[mb->nkw++], l, FOLDER_KW_LEN);
	}
}

int
mailbox_kw_save(struct mailbox *mb)
{
	char p[MBOX_PATH], t[MBOX_PATH + 8], b[FOLDER_KW_MAX * FOLDER_KW_LEN];
	size_t o = 0;
	int i, fd, r = -1;

	for (i = 0; i < mb->nkw; i++)
		o += snprintf(b + o, sizeof(b) - o, "%s\n", mb->kw[i]);
	if (path(mb, p, ".", ".kw") < 0 || snprintf(t, sizeof(t), "%s.tmp", p) >= (int)sizeof(t))
		return -1;
	if ((fd = open(t, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
		return -1;
	if (write(fd, b, o) == (ssize_t)o && fdatasync(fd) == 0 && rename(t, p) == 0)
		r = 0;
	close(fd);
	if (r < 0)
		unlink(t);
	mb->kwdirty = r < 0;
	return r;
}

#else
static void kw_load(struct mailbox *mb) { mb->nkw = 0; }
int mailbox_kw_save(struct mailbox *mb) { mb->kwdirty = 0; return 0; }
#endif

static void
idx_load(struct mailbox *mb)
{
	char p[MBOX_PATH];
	struct mb_hdr h;
	struct mb_hdr1 h1;
	struct stat st;
	size_t hl = sizeof(h);
	uint32_t i;
	int fd;

	mb->n = 0;
	mb->idx_ok = 0;
	memset(&mb->h, 0, sizeof(mb->h));
	mb->h.next_uid = mb->h.recent = 1;
	kw_load(mb);
	if (path(mb, p, ".", ".idx") < 0 || (fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return;
	if (fstat(fd, &st) == 0 && pread(fd, &h, sizeof(h), 0) == sizeof(h) && h.magic == MB_MAGIC1) {
		/* version 1: the same records after a 48-byte header */
		memcpy(&h1, &h, sizeof(h1));
		if (h1.sum == mailbox_fnv(FNV0, &h1, offsetof(struct mb_hdr1, sum))) {
			memset(&h, 0, sizeof(h));
			memcpy(&h, &h1, offsetof(struct mb_hdr1, sum));
			h.magic = MB_MAGIC;
			h.recent = h.next_uid;	/* v1 knew no \Recent */
			h.sum = hdr_sum(&h);
			hl = sizeof(h1);
			mb->dirty = 1;
		}
	}
	if (h.magic == MB_MAGIC && h.sum == hdr_sum(&h) &&
	    (uint64_t)st.st_size >= hl + (uint64_t)h.count * sizeof(struct mb_rec) &&
	    grow(&mb->rec, &mb->cap, h.count + 1) == 0 &&
	    pread(fd, mb->rec, h.count * sizeof(struct mb_rec), hl) == (ssize_t)(h.count * sizeof(struct mb_rec))) {
		mb->h = h;
		mb->n = h.count;
		mb->idx_ok = 1;
		for (i = 0; i < mb->n; i++) {
			mb->rec[i].xflags = 0;
			if (hl != sizeof(h))	/* v1: a session byte and padding there */
				mb->rec[i].kw = 0;
		}
		if (hl != sizeof(h))
			mb->sub = 2;	/* written whole once (the layout changed) */
	}
	close(fd);
}

/* Write records [from, to): IW_FLAGS just those (flag changes); IW_ADD in
 * place, the records, a data sync, then the header that makes them
 * count, so a crash leaves the old index, never a torn one; IW_ALL a new
 * file by temp + rename (a rebuild must not leave half an old index). */
enum { IW_FLAGS, IW_ADD, IW_ALL };

static int
idx_write(struct mailbox *mb, uint32_t from, uint32_t to, int mode, int sync)
{
	int whole = mode == IW_ALL;
	char p[MBOX_PATH], t[MBOX_PATH + 8];
	size_t len = (to - from) * sizeof(struct mb_rec);
	struct mb_hdr h;
	int fd = -1, r = -1;

	mb->h.magic = MB_MAGIC;
	mb->h.count = mb->n;
	mb->h.sum = hdr_sum(&mb->h);
	h = mb->h;
	if (path(mb, p, ".", ".idx") < 0 || snprintf(t, sizeof(t), "%s.tmp", p) >= (int)sizeof(t))
		goto out;
	fd = open(whole ? t : p, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (whole ? O_TRUNC : 0), 0600);
	if (fd < 0)
		goto out;
	if (pwrite(fd, mb->rec + from, len, sizeof(h) + from * sizeof(struct mb_rec)) == (ssize_t)len &&
	    (mode == IW_FLAGS || ((whole || from == to || fdatasync(fd) == 0))) &&
	    pwrite(fd, &h, sizeof(h), 0) == sizeof(h) && (!(whole || sync) || fdatasync(fd) == 0) &&
	    (whole || ftruncate(fd, sizeof(h) + mb->n * sizeof(struct mb_rec)) == 0 || 1))
		r = 0;
	close(fd);
	if (whole && (r < 0 || rename(t, p) < 0)) {
		r = -1;
		unlink(t);
	}
out:
	mb->idx_ok = r == 0;
	if (r < 0)
		log_warn("mailbox %s/%s: index", mb->user, mb->folder);
	return r;
}

int
mailbox_write(struct mailbox *mb, uint32_t lo, uint32_t hi, int sync)
{
	if (!mb->idx_ok)	/* no index file to update in place: a whole one */
		return idx_write(mb, 0, mb->n, IW_ALL, 1);
	return idx_write(mb, lo, hi, IW_FLAGS, sync);
}

int
mailbox_set_records(struct mailbox *mb, const struct mb_rec *r, uint32_t n)
{
	if (grow(&mb->rec, &mb->cap, n + 1) < 0)
		return -1;
	memcpy(mb->rec, r, n * sizeof(*r));
	mb->n = n;
	return 0;
}

int
mailbox_write_all(struct mailbox *mb)
{
	return idx_write(mb, 0, mb->n, IW_ALL, 1);
}

/* The span of record i on disk, up to its successor. */
uint64_t
mailbox_span_end(const struct mailbox *mb, uint32_t i)
{
	return i + 1 < mb->n ? mb->rec[i + 1].off : mb->h.size;
}

/* Is record i still where the index says?  b gets up to 512 bytes from
 * its offset, *got how many.  A record without bytes always is. */
static int
rec_check(struct mailbox *mb, uint32_t i, char *b, ssize_t *got)
{
	struct mb_rec *r = &mb->rec[i];
	uint64_t end = mailbox_span_end(mb, i);
	size_t len = end - r->off < HASH_LEN ? end - r->off : HASH_LEN;

	*got = 0;
	if (r->flags & MF_NOBYTES)
		return 1;
	*got = pread(mb->fd, b, 512, r->off);
	return *got >= (ssize_t)len && len >= 5 && !memcmp(b, "From ", 5) &&
	    mailbox_fnv(FNV0, b, len) == r->hash;
}

static int
rec_ok(struct mailbox *mb, uint32_t i)
{
	char b[512];
	ssize_t k;

	return rec_check(mb, i, b, &k);
}

/* ---- keywords ---- */

#if IMAP_PARTS
int
mailbox_kw(struct mailbox *mb, const char *name, size_t n, int add)
{
	int i;

	if (n == 0 || n >= FOLDER_KW_LEN)
		return -1;
	for (i = 0; i < mb->nkw; i++)
		if (strlen(mb->kw[i]) == n && !strncasecmp(mb->kw[i], name, n))
			return i;
	if (!add || mb->nkw == FOLDER_KW_MAX)
		return -1;
	memcpy(mb->kw[mb->nkw], name, n);
	mb->kw[mb->nkw][n] = '\0';
	mb->kwdirty = 1;
	return mb->nkw++;
}
#else
int mailbox_kw(struct mailbox *mb, const char *name, size_t n, int add) { return -1; }
#endif

/* ---- the scanner ---- */

static int
scan_close(struct mailbox *mb)
{
	struct mb_scan *s = &mb->sc;
	struct mb_rec *r = &mb->rec[mb->n];

	if (!s->have)
		return 0;
	r->size = s->size - (s->blank ? 2 : 0);	/* the separator line is not the message's */
	r->hash = s->hash;
	s->have = 0;
	return grow(&mb->rec, &mb->cap, ++mb->n + 1);
}

/* A number at p (after blanks); 0 if none. */
static uint32_t
num(const char *p, const char *e, const char **end)
{
	unsigned long long v = 0;

	while (p < e && (*p == ' ' || *p == '\t'))
		p++;
	while (p < e && *p >= '0' && *p <= '9' && v < 0xffffffffULL)
		v = v * 10 + (*p++ - '0');
	if (end)
		*end = p;
	return v > 0xffffffffULL ? 0 : (uint32_t)v;
}

#if IMAP_PARTS
/* Keyword names separated by blanks in [p, e) into bits of r. */
static void
kw_names(struct mailbox *mb, struct mb_rec *r, const char *p, const char *e)
{
	const char *w;
	int k;

	for (;;) {
		while (p < e && (*p == ' ' || *p == '\t' || *p == ','))
			p++;
		for (w = p; p < e && *p != ' ' && *p != '\t' && *p != ',' && *p != '\r' && *p != '\n'; p++)
			;
		if (p == w)
			return;
		if ((k = mailbox_kw(mb, w, p - w, 1)) >= 0 && r)
			r->kw |= 1u << k;
	}
}
#else
#define kw_names(mb, r, p, e) ((void)0)
#endif

/* A header line of the current message (its start, p[0..n)): import
 * what other programs wrote there. */
static void
scan_header(struct mailbox *mb, const char *p, size_t n)
{
	struct mb_rec *r = &mb->rec[mb->n];
	const char *e = p + n, *v;
	int first = mb->n == 0;

#define HDR(s) (n > sizeof(s) - 1 && !strncasecmp(p, s, sizeof(s) - 1) && (v = p + sizeof(s) - 1))
	if (HDR("Status:")) {
		for (; v < e && *v != '\n'; v++)
			if (*v == 'R')
				r->flags |= MF_SEEN;
			else if (*v == 'O')
				r->xflags &= ~MX_RECENT;
	} else if (HDR("X-Status:")) {
		for (; v < e && *v != '\n'; v++)
			r->flags |= *v == 'A' ? MF_ANSWERED : *v == 'F' ? MF_FLAGGED : *v == 'T' ? MF_DRAFT :
			    *v == 'D' ? MF_DELETED : 0;
	} else if (HDR("X-Keywords:")) {
		kw_names(mb, r, v, e);
	} else if (HDR("X-UID:")) {
		r->uid = num(v, e, NULL);
	} else if (first && HDR("X-IMAPbase:")) {
		mb->sc.base_uv = num(v, e, &v);
		mb->sc.base_next = num(v, e, &v);
		kw_names(mb, NULL, v, e);	/* the folder's keywords, in Dovecot's order */
	}
#undef HDR
}

/* One line, or a piece of a long one, p[0..n) at file offset off; eol: it
 * ends the line (a LF, or the end of the file).  Octets are counted the way
 * they are sent: CRLF line ends, one '>' less on ^>+From  lines. */
static int
scan_line(struct mailbox *mb, const char *p, size_t n, uint64_t off, int eol)
{
	struct mb_scan *s = &mb->sc;
	int lf = n && p[n - 1] == '\n';
	size_t cl = n - lf, m;

	if (lf && cl && p[cl - 1] == '\r')
		cl--;
	if (s->bol && s->blank && n >= 5 && !memcmp(p, "From ", 5)) {
		if (scan_close(mb) < 0)
			return -1;
		memset(&mb->rec[mb->n], 0, sizeof(struct mb_rec));
		mb->rec[mb->n].off = off;
		mb->rec[mb->n].xflags = MX_RECENT;
		s->have = s->in_from = s->hdr = 1;
		s->size = s->hashed = 0;
		s->hash = FNV0;
	} else if (s->have && !s->in_from) {
		s->size += cl - (s->bol && mailbox_quoted(p, n)) + (eol ? 2 : 0);
		if (s->hdr && s->bol) {
			if (cl == 0)
				s->hdr = 0;	/* the blank line: the body */
			else if (s->import)
				scan_header(mb, p, cl);
		}
	}
	if (s->have && s->hashed < HASH_LEN) {
		m = n < HASH_LEN - s->hashed ? n : HASH_LEN - s->hashed;
		s->hash = mailbox_fnv(s->hash, p, m);
		s->hashed += m;
	}
	if (eol) {
		s->blank = s->bol && n == 1 && lf;
		s->in_from = 0;
	}
	s->bol = eol;
	return 0;
}

static int
scan_slice(struct mailbox *mb)
{
	struct mb_scan *s = &mb->sc;
	long budget = SCAN_SLICE;
	ssize_t r;
	size_t i, k;
	char *lf;

	while (s->pos < s->end && budget > 0) {
		r = pread(mb->fd, sbuf, s->end - s->pos < sizeof(sbuf) ? s->end - s->pos : sizeof(sbuf), s->pos);
		if (r <= 0) {
			errno = r ? errno : ESTALE;
			return -1;
		}
		for (i = 0; i < (size_t)r; i += k) {
			if ((lf = memchr(sbuf + i, '\n', r - i)) != NULL)
				k = lf - sbuf - i + 1;
			else if (s->pos + r == s->end)
				k = r - i;		/* the last line, without LF */
			else if (i == 0)	/* a piece of a long line; a CR stays with its LF */
				k = r - (r > 1 && sbuf[r - 1] == '\r');
			else
				break;			/* read again from this line's start */
			if (scan_line(mb, sbuf + i, k, s->pos + i, lf || s->pos + i + k == s->end) < 0)
				return -1;
		}
		s->pos += i;
		budget -= i;
	}
	return s->pos < s->end ? MB_MORE : 0;
}

/* ---- opening ---- */

static int recover(struct mailbox *);

/* Do the bytes of fd after what h covers begin a new message (the covered
 * part ended in a blank line and "From " follows)? */
static int
new_mail_follows(int fd, const struct mb_hdr *h)
{
	char b[8];

	return h->clean && h->size >= 2 && pread(fd, b, 7, h->size - 2) == 7 && !memcmp(b, "\n\nFrom ", 7);
}

int
mailbox_open(struct mailbox *mb, const char *user, const char *folder)
{
	if (test_delay < 0) {
		test_delay = TEST_HOOK("KOTAK_TEST_EXPUNGE_DELAY_MS");
	}
	memset(mb, 0, sizeof(*mb));
	mb->fd = -1;
	strlcpy_k(mb->user, user, sizeof(mb->user));
	strlcpy_k(mb->folder, folder, sizeof(mb->folder));
	return 0;
}

void
mailbox_drop_old(struct mailbox *mb)
{
	if (mb->old != &mb->last)
		unmap(&mb->old, &mb->ocap);
	mb->old = NULL;
	mb->on = 0;
	mb->rebuilt = 0;
}

void
mailbox_close(struct mailbox *mb)
{
	if (ex.owner == mb)
		mailbox_compact_abort(mb);
	if (mb->fd >= 0)
		close(mb->fd);
	mb->fd = -1;
	mailbox_drop_old(mb);
	unmap(&mb->rec, &mb->cap);
	mb->n = 0;
}

void
mailbox_restart(struct mailbox *mb)
{
	if (mb->phase == PH_DONE)
		mb->phase = PH_START;
}

int
mailbox_changed(struct mailbox *mb)
{
	char p[MBOX_PATH];
	struct stat st;

	if (path(mb, p, "", "") < 0 || stat(p, &st) < 0)
		return mb->fd >= 0 ? 2 : 0;	/* gone (or still none) */
	if (mb->fd < 0 || (uint64_t)st.st_ino != mb->h.ino)
		return 2;
	if ((uint64_t)st.st_size == mb->h.size && mtime_ns(&st) == mb->h.mtime)
		return 0;
	return (uint64_t)st.st_size > mb->h.size && (!mb->h.size || new_mail_follows(mb->fd, &mb->h)) ? 1 : 2;
}

/* Decide what to scan: nothing, the appended bytes, the last message
 * again (it had no blank line after it), or everything.  The records in
 * memory are the truth once loaded: a folder that is open is never read
 * back from its index file. */
static int
sync_start(struct mailbox *mb)
{
	char p[MBOX_PATH];
	struct stat st;
	struct mb_hdr *h = &mb->h;
	int r, fresh = !mb->loaded;

	if ((r = recover(mb)) != 0)
		return r;
	if (path(mb, p, "", "") < 0)
		return -1;
	if (mb->fd >= 0 && (stat(p, &st) < 0 || (uint64_t)st.st_ino != h->ino)) {
		close(mb->fd);	/* replaced (renamed over) or removed: the file at the path now */
		mb->fd = -1;
		mb->sub = 1;
	}
	if (mb->fd < 0) {
		if ((mb->fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)) < 0) {
			if (errno != ENOENT)
				return -1;
			if (fresh)
				idx_load(mb);	/* no mbox (yet): an empty mailbox */
			mb->loaded = 1;
			if (mb->n) {
				mb->sub = 1;	/* it had messages: they are gone */
				goto rebuild_empty;
			}
			mb->phase = PH_DONE;
			return 0;
		}
	}
	if ((r = rdlock(mb, F_RDLCK)) != 0)
		return r;
	if (fresh)
		idx_load(mb);
	mb->loaded = 1;
	if (fstat(mb->fd, &st) < 0 || (!S_ISREG(st.st_mode) && (errno = EPERM))) {
		rdlock(mb, F_UNLCK);
		return -1;
	}
	memset(&mb->sc, 0, sizeof(mb->sc));
	mb->sc.bol = mb->sc.blank = 1;
	mb->sc.end = st.st_size;
	mb->base = mb->n;
	mb->on = 0;
	mb->phase = PH_SCAN;
	mb->sc.import = 1;
	/* the index holds if its first and last messages are still in place;
	 * bytes before the first message are watched by nothing, so a file
	 * that does not start with a message (malformed: mutt refuses it) is
	 * read again whole at each open */
	if (mb->sub != 1 && mb->idx_ok && (uint64_t)st.st_size >= h->size && (!h->ino || h->ino == (uint64_t)st.st_ino) &&
	    (!h->size || (mb->n && !mb->rec[0].off && rec_ok(mb, 0) && rec_ok(mb, mb->n - 1)))) {
		if (h->ino != (uint64_t)st.st_ino) {
			h->ino = st.st_ino;
			mb->dirty = 1;
		}
		if ((uint64_t)st.st_size == h->size) {
			if (h->mtime != mtime_ns(&st)) {
				h->mtime = mtime_ns(&st);
				mb->dirty = 1;	/* touched, not changed: remember the new mtime */
			}
			mb->sc.pos = h->size;
			mb->sc.blank = h->clean;	/* kept: the scan sees no line */
			mb->sc.touch = 1;
		} else if (h->size == 0 || new_mail_follows(mb->fd, h)) {
			mb->sc.pos = h->size;	/* appended: scan the new bytes only */
		} else if (mb->append_only) {
			rdlock(mb, F_UNLCK);
			return errno = ESTALE, -1;
		} else if (mb->n && !(mb->rec[mb->n - 1].flags & MF_NOBYTES)) {
			/* the last message may have grown: scan it again, keep its UID */
			mb->last = mb->rec[--mb->n];
			mb->old = &mb->last;
			mb->on = 1;
			mb->base = mb->n;
			mb->sc.pos = mb->last.off;
			mb->sc.import = 0;
		} else {
			goto rebuild;
		}
	} else {
rebuild:
		rdlock(mb, F_UNLCK);
rebuild_empty:
		if (mb->append_only)
			return errno = ESTALE, -1;
		if (mb->idx_ok || mb->n)
			log_info("mailbox %s/%s: changed by another program, indexing again", mb->user, mb->folder);
		if (mb->old != NULL && mb->old != &mb->last)	/* a scan started over */
			unmap(&mb->old, &mb->ocap);
		mb->old = mb->rec;
		mb->ocap = mb->cap;
		mb->on = mb->n;
		mb->rec = NULL;
		mb->cap = mb->n = mb->base = 0;
		mb->uv_before = h->uidvalidity;
		mb->sc.rebuild = 1;
		mb->sub = 0;
		if (grow(&mb->rec, &mb->cap, 1) < 0)
			return -1;
		if (mb->fd < 0) {	/* the mbox is gone: no messages */
			memset(&mb->sc, 0, sizeof(mb->sc));
			mb->sc.rebuild = mb->sc.blank = 1;
			mb->phase = PH_SCAN;
		}
		return 0;
	}
	rdlock(mb, F_UNLCK);
	return 0;
}

/* An unused old record with hash h: its index, or -1.  Tries the next
 * one in file order first (j), so that a mailbox in order costs one
 * compare per message; else a hash table of the old records (built once,
 * linear probing, in file order, so equal hashes come lowest UID first):
 * O(n + m), never the O(n * m) of a search per message. */
static uint32_t *ht, hmask;

static long
match(struct mailbox *mb, uint32_t h, uint32_t j)
{
	const struct mb_rec *o = mb->old;
	uint32_t k, x;

	if (j < mb->on && o[j].hash == h && !(o[j].xflags & MX_USED) && !(o[j].flags & MF_NOBYTES))
		return j;
	if (ht == NULL) {
		for (hmask = 2; hmask < 2 * mb->on; hmask <<= 1)
			;
		if ((ht = calloc(hmask, sizeof(*ht))) == NULL)
			return -1;
		hmask--;
		for (k = 0; k < mb->on; k++) {
			for (x = o[k].hash & hmask; ht[x]; x = (x + 1) & hmask)
				;
			ht[x] = k + 1;
		}
	}
	for (x = h & hmask; ht[x]; x = (x + 1) & hmask) {
		k = ht[x] - 1;
		if (o[k].hash == h && !(o[k].xflags & MX_USED) && !(o[k].flags & MF_NOBYTES))
			return k;
	}
	return -1;
}

/*
 * UIDs: a record from base on that matches an unused old record (same
 * hash) takes its UID, flags and keywords, the others new UIDs.  When
 * that cannot give ascending UIDs with the new ones last, new UIDVALIDITY
 * and everything renumbered.  A first index takes Dovecot's X-UIDs when
 * every message up to some point has one, ascending, and none after it.
 */
static void
assign(struct mailbox *mb)
{
	uint32_t i, j = 0, fresh = 0, keep = 1, last = 0, x = 0, v = (uint32_t)time(NULL);
	long k;
	int first = !mb->idx_ok && mb->on == 0 && mb->base == 0, xok = 0;

	for (i = mb->base; i < mb->n; i++) {
		struct mb_rec *r = &mb->rec[i];
		if ((k = mb->on ? match(mb, r->hash, j) : -1) >= 0) {
			if (fresh || mb->old[k].uid <= last)
				keep = 0;
			last = r->uid = mb->old[k].uid;
			r->flags = mb->old[k].flags & ~MF_NOBYTES;
			r->kw = mb->old[k].kw;
			r->xflags = MX_USED;
			mb->old[k].xflags |= MX_USED;
			j = k + 1;
			continue;
		}
		fresh = 1;
		if (!first)
			r->uid = 0;	/* X-UID counts at a first index only */
	}
	free(ht);
	ht = NULL;
	if (first && mb->n) {
		/* Dovecot's X-UIDs: ascending on a first run of messages, none after */
		for (i = 0; i < mb->n && mb->rec[i].uid > x; i++)
			x = mb->rec[i].uid;
		xok = i > 0;	/* (X-IMAPbase's UIDNEXT may lag: the next is past both) */
		for (; i < mb->n; i++)
			if (mb->rec[i].uid)
				xok = 0;
		mb->h.uidvalidity = xok && mb->sc.base_uv ? mb->sc.base_uv :
		    v > mb->h.uidvalidity ? v : mb->h.uidvalidity + 1;
		mb->h.next_uid = xok ? (mb->sc.base_next > x + 1 ? mb->sc.base_next : x + 1) : 1;
		for (i = 0; i < mb->n; i++)
			if (!xok || mb->rec[i].uid >= mb->h.next_uid)
				mb->rec[i].uid = 0;
		if (xok)
			log_info("mailbox %s/%s: UIDs of another program kept (UIDVALIDITY %u, next %u)",
			    mb->user, mb->folder, mb->h.uidvalidity, mb->h.next_uid);
	} else if (mb->sc.rebuild && (!keep || !mb->idx_ok)) {
		mb->h.uidvalidity = v > mb->h.uidvalidity ? v : mb->h.uidvalidity + 1;
		mb->h.next_uid = mb->h.recent = 1;
		for (i = 0; i < mb->n; i++)
			mb->rec[i].uid = 0;
		if (mb->idx_ok)
			log_warnx("mailbox %s/%s: UIDs could not be kept, new UIDVALIDITY %u",
			    mb->user, mb->folder, mb->h.uidvalidity);
	}
	if (!mb->h.uidvalidity)
		mb->h.uidvalidity = v;
	for (i = mb->base; i < mb->n; i++)
		if (mb->rec[i].uid == 0)
			mb->rec[i].uid = mb->h.next_uid++;
	if (first) {	/* \Recent: the messages after the last one another program saw (Status: O) */
		for (i = mb->n; i > 0 && (mb->rec[i - 1].xflags & MX_RECENT); i--)
			;
		mb->h.recent = i < mb->n ? mb->rec[i].uid : mb->h.next_uid;
	}
	for (i = mb->base; i < mb->n; i++)
		mb->rec[i].xflags = 0;
}

/* After a rebuild, the old records nobody matched are messages another
 * program removed: kept as tombstones without bytes, merged by UID (the
 * UIDs were kept, so both lists ascend), so that views can be told. */
static int
keep_gone(struct mailbox *mb)
{
	struct mb_rec *a = NULL;
	uint32_t i, j = 0, k, cap = 0, gone = 0;

	for (k = 0; k < mb->on; k++)
		gone += !(mb->old[k].xflags & MX_USED) && !(mb->old[k].flags & MF_NOBYTES);
	if (!gone || mb->h.uidvalidity != mb->uv_before)
		return 0;
	if (grow(&a, &cap, mb->n + gone + 1) < 0)
		return -1;
	for (i = k = 0; i < mb->n || k < mb->on; ) {
		if (k < mb->on && ((mb->old[k].xflags & MX_USED) || (mb->old[k].flags & MF_NOBYTES))) {
			k++;
			continue;
		}
		if (k < mb->on && (i == mb->n || mb->old[k].uid < mb->rec[i].uid)) {
			a[j] = mb->old[k++];
			a[j].off = i < mb->n ? mb->rec[i].off : mb->h.size;
			a[j].size = a[j].hash = 0;
			a[j].flags |= MF_EXPUNGED | MF_NOBYTES;
			a[j++].xflags = 0;
		} else {
			a[j++] = mb->rec[i++];
		}
	}
	unmap(&mb->rec, &mb->cap);
	mb->rec = a;
	mb->cap = cap;
	mb->n = j;
	return 0;
}

int
mailbox_sync(struct mailbox *mb)
{
	struct mb_scan *s = &mb->sc;
	struct mb_hdr h0 = mb->h;	/* as loaded (a rebuild compares) */
	struct stat st;
	uint32_t i;
	int r, same;

	if (mb->phase == PH_START && (r = sync_start(mb)) != 0)
		return r;
	if (mb->phase != PH_SCAN)
		return 0;
	if (mb->fd >= 0) {
		if ((r = rdlock(mb, F_RDLCK)) != 0)
			return r;
		if (fstat(mb->fd, &st) < 0 || (uint64_t)st.st_size < s->pos) {
			rdlock(mb, F_UNLCK);
			mb->phase = PH_START;	/* rewritten meanwhile: start over */
			mb->sub = 1;
			return MB_MORE;
		}
		if (!s->touch)
			s->end = st.st_size;	/* appended meanwhile: scan that too */
		r = scan_slice(mb);
	} else {
		memset(&st, 0, sizeof(st));
		r = 0;
	}
	if (r == 0) {
		h0 = mb->h;
		if (s->have && !mb->trust && dotlocked(mb)) {
			/* a writer is at work: its message may be partial; next time */
			s->have = 0;
			mb->h.size = mb->rec[mb->n].off;
			mb->h.clean = 1;
		} else {
			mb->h.clean = s->blank;
			mb->h.size = s->end;
			r = scan_close(mb);
		}
		mb->h.mtime = mtime_ns(&st);
		mb->h.ino = st.st_ino;
	}
	if (mb->fd >= 0)
		rdlock(mb, F_UNLCK);
	if (r != 0)
		return r;
	if (mb->old == &mb->last) {
		/* scanned again from its From_ line (checked above): the same message */
		if (mb->base == mb->n) {	/* not even that: index it all again */
			mb->rec[mb->n++] = mb->last;
			mb->old = NULL;
			mb->on = 0;
			mb->phase = PH_START;
			mb->sub = 1;
			return MB_MORE;
		}
		mb->rec[mb->base].uid = mb->last.uid;
		mb->rec[mb->base].flags = mb->last.flags;
		mb->rec[mb->base].kw = mb->last.kw;
		mb->on = 0;
	}
	/* a rebuild that found what the index holds (a file that does not
	 * start with a message is scanned at each open) writes nothing */
	same = mb->sc.rebuild && mb->idx_ok && mb->n == mb->on && mb->h.size == h0.size &&
	    mb->h.clean == h0.clean && mb->h.mtime == h0.mtime;
	for (i = 0; same && i < mb->n; i++)
		same = mb->rec[i].off == mb->old[i].off && mb->rec[i].size == mb->old[i].size &&
		    mb->rec[i].hash == mb->old[i].hash;
	if (mb->old == &mb->last) {
		mb->base++;	/* the rescanned last message keeps its UID */
		assign(mb);
		mb->base--;
	} else {
		assign(mb);
	}
	if (same) {
		for (i = 0; i < mb->n; i++) {	/* what the index said stays */
			mb->rec[i].flags = mb->old[i].flags;
			mb->rec[i].kw = mb->old[i].kw;
		}
	} else if (mb->sc.rebuild && mb->on && mb->keep_old && keep_gone(mb) < 0) {
		return -1;
	}
	if (mb->kwdirty)
		mailbox_kw_save(mb);
	if (same && mb->sub != 2)
		;
	else if (mb->sc.rebuild || mb->sub == 2)
		idx_write(mb, 0, mb->n, IW_ALL, 1);
	else if (mb->base < mb->n || mb->dirty || mb->old)
		idx_write(mb, mb->base, mb->n, IW_ADD, 0);
	mb->sub = 0;
	mb->dirty = 0;
	mb->rebuilt = mb->sc.rebuild;
	if (!mb->keep_old || !mb->rebuilt)
		mailbox_drop_old(mb);
	mb->phase = PH_DONE;
	return 0;
}

/* ---- reading messages ---- */

int
mailbox_locate(struct mailbox *mb, uint32_t i, uint64_t *start, uint64_t *end)
{
	struct mb_rec *r = &mb->rec[i];
	struct stat st;
	char b[512], *lf;
	uint64_t span;
	ssize_t k;
	int lk;

	if (r->flags & MF_NOBYTES)
		return errno = ESTALE, -1;
	if ((lk = rdlock(mb, F_RDLCK)) != 0)
		return lk;
	/* the message is where the index says, and so is its end: the next
	 * message, or for the last one the end of what was indexed (followed
	 * by nothing, or by a new message) */
	if (!rec_check(mb, i, b, &k) || fstat(mb->fd, &st) < 0 || (i + 1 < mb->n && !rec_ok(mb, i + 1)) ||
	    (i + 1 == mb->n && (uint64_t)st.st_size != mb->h.size && ((uint64_t)st.st_size < mb->h.size ||
	    !new_mail_follows(mb->fd, &mb->h)))) {
		rdlock(mb, F_UNLCK);
		return errno = ESTALE, -1;
	}
	/* the content starts after the From_ line: a long one, or one that
	 * ends the file without LF (content empty), is searched further */
	span = mailbox_span_end(mb, i);
	for (*start = r->off; (lf = memchr(b, '\n', k)) == NULL && *start + k < span; ) {
		*start += k;
		if ((k = pread(mb->fd, b, sizeof(b), *start)) <= 0)
			break;
	}
	*start = lf ? *start + (lf - b) + 1 : span;
	mb->seen_mtime = mtime_ns(&st);
	rdlock(mb, F_UNLCK);
	*end = i + 1 < mb->n ? r[1].off - 1 : mb->h.size - mb->h.clean;
	if (*end < *start)
		*end = *start;
	return 0;
}

long
mailbox_read(struct mailbox *mb, uint32_t i, char *buf, size_t n, uint64_t pos)
{
	struct stat st;
	long r = -1;
	int lk;

	if ((lk = rdlock(mb, F_RDLCK)) != 0)
		return -lk;
	if (fstat(mb->fd, &st) == 0) {
		if (mtime_ns(&st) != mb->seen_mtime && !rec_ok(mb, i))
			errno = ESTALE;	/* the file changed and our message moved */
		else if ((r = pread(mb->fd, buf, n, pos)) >= 0)
			mb->seen_mtime = mtime_ns(&st);
	}
	rdlock(mb, F_UNLCK);
	return r;
}

/* ---- compaction ---- */

/*
 * Removing messages from the middle of an mbox means moving the rest of
 * the file down, in place (never temp + rename: that breaks programs that
 * open first and lock later).  The order makes a crash at any point safe
 * and leaves an mbox that parses cleanly (kill -9 and power loss alike):
 *
 *  1. Under the write lock, copy the kept bytes after the first removed
 *     message (S) to a journal, .<folder>.exp, ending in a trailer with
 *     their length and hash; fsync it and the directory.  Crash: the mbox
 *     is untouched, the incomplete journal is removed.
 *  2. Make the dotlock say "kotak PID S" (durable), then ftruncate to S.
 *     Crash from here on: whoever locks next (mbox.c) cuts the mbox back
 *     to S; the mbox ends after the last message before S, and the tail
 *     is safe in the journal.
 *  3. Append the journal's bytes at S (the fd is O_APPEND), fsync, make the
 *     dotlock say the final size, remove the journal, unlock.
 * Recovery (recover(), at start and at the next open): an incomplete
 * journal is removed; a complete one whose bytes are already at S is
 * removed; if the mbox still holds the first removed message at S
 * nothing happened; else its bytes are appended at the end (after any
 * mail delivered since: order may change, nothing is lost or doubled).
 * Cost: the kept tail is written twice; removing every message after S
 * (fetchmail without keep) is a plain ftruncate with no journal.
 */

static int
write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n) {
		if ((w = write(fd, p, n)) < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w, n -= w;
	}
	return 0;
}

/* Copy (to >= 0) and/or hash len bytes of fd from off. */
static int
copy(int fd, uint64_t off, uint64_t len, int to, uint32_t *h)
{
	ssize_t r;

	while (len) {
		r = pread(fd, sbuf, len < sizeof(sbuf) ? len : sizeof(sbuf), off);
		if (r <= 0)
			return r ? -1 : (errno = ESTALE, -1);
		if (to >= 0 && write_all(to, sbuf, r) < 0)
			return -1;
		if (h)
			*h = mailbox_fnv(*h, sbuf, r);
		off += r, len -= r;
	}
	return 0;
}

/* This slice's bytes [from, to) of fd start on their way to the disk,
 * and the previous slice's are waited for: the fsync that ends a phase
 * then has little left to do (one fsync of 100 MB held the loop 130 ms
 * here).  The data alone is not enough: ext4 commits the blocks'
 * allocation at the fsync, 0.6 ms a MB here (60 ms for 100 MB written
 * back already), so an fdatasync every SYNC_EVERY bytes commits it in
 * parts of a few ms; a journal commit costs a few KB of flash writes.
 * Linux only; elsewhere the fsync does it all. */
#define SYNC_EVERY	(16 * COPY_SLICE)
static void
writeback(int fd, uint64_t from, uint64_t to)
{
#if defined(SYNC_FILE_RANGE_WRITE)
	/* what went out a few slices ago is on the disk by now, unless the
	 * disk is slower than the loop: then the wait paces the compaction */
	if (from > ex.wprev + 4 * COPY_SLICE) {
		sync_file_range(fd, ex.wprev, from - 4 * COPY_SLICE - ex.wprev, SYNC_FILE_RANGE_WAIT_BEFORE |
		    SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
		ex.wprev = from - 4 * COPY_SLICE;
		if (ex.wprev >= ex.wsync + SYNC_EVERY) {
			(void)fdatasync(fd);	/* the fsync at the end reports errors */
			ex.wsync = ex.wprev;
		}
	}
	if (from < to)
		sync_file_range(fd, from, to - from, SYNC_FILE_RANGE_WRITE);
#else
	(void)fd, (void)from, (void)to;
#endif
}

/* The dotlock's content on disk (its name: the directory's fsync). */
static int
lock_fdatasync(void)
{
	int fd = open(ex.lk.lock, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), r;

	if (fd < 0)
		return -1;
	r = fdatasync(fd);
	close(fd);
	return r;
}

/* The dotlock says what a crash must cut back to, durably. */
static int
lock_size(uint64_t size)
{
	mbox_lock_note(&ex.lk, size);
	return mbox_lock_sync(&ex.lk);
}

static void
ex_end(void)
{
	if (ex.jfd >= 0)
		close(ex.jfd);
	ex.jfd = -1;
	mbox_unlock(&ex.lk);
	ex.owner = NULL;
	ex.ph = EX_LOCK;
}

int
mailbox_compacting(const struct mailbox *mb)
{
	return ex.owner == mb;
}

void
mailbox_compact_abort(struct mailbox *mb)
{
	char p[MBOX_PATH];

	if (ex.owner != mb)
		return;
	if (ex.ph == EX_JOURNAL && ex.jfd >= 0 && path(mb, p, ".", ".exp") == 0)
		unlink(p);	/* nothing was changed yet */
	else if (ex.ph == EX_APPEND)
		return;		/* the mbox is cut: the journal must be finished (folder.c does) */
	ex_end();
}

/* Lock, check that the records still match the file, find S. */
static int
ex_start(struct mailbox *mb)
{
	struct stat st, ost;
	uint32_t i, first = mb->n;
	int r;

	for (i = 0; i < mb->n && first == mb->n; i++)
		if ((mb->rec[i].xflags & MX_COMPACT) && !(mb->rec[i].flags & MF_NOBYTES))
			first = i;
	ex.jfd = -1;
	ex.t = 0;
	if (first == mb->n) {	/* only records without bytes: no mbox work */
		ex.owner = mb;
		ex.lk.fd = -1;
		ex.lk.reg = -1;
		ex.lk.lock[0] = '\0';
		ex.ph = EX_APPEND;
		ex.first = first;
		ex.src = ex.d = 0;
		ex.sub = 0;
		return 0;
	}
	if ((r = mbox_lock_open(&ex.lk, mb->user, mb->folder, LK_REWRITE, 0)) != 0)
		return r > 0 ? MB_BUSY : -1;
	ex.owner = mb;
	if (fstat(ex.lk.fd, &st) < 0 || fstat(mb->fd, &ost) < 0)
		goto fail;
	/* another program may have replaced the file (a new one renamed over
	 * it, as Python's mailbox does) or changed it since it was indexed:
	 * the records are not this file's; folder.c indexes it again first */
	if (st.st_dev != ost.st_dev || st.st_ino != ost.st_ino || (uint64_t)st.st_size != mb->h.size ||
	    mtime_ns(&st) != mb->h.mtime) {
		errno = ESTALE;
		goto fail;
	}
	for (i = 0; i < mb->n; i++)
		if ((i == 0 || i == mb->n - 1 || (mb->rec[i].xflags & MX_COMPACT) ||
		    (mb->rec[i - 1].xflags & MX_COMPACT)) && !rec_ok(mb, i)) {
			errno = ESTALE;
			goto fail;
		}
	ex.s = ex.src = mb->rec[first].off;
	ex.z = st.st_size;
	ex.d = ex.w = ex.wprev = ex.wsync = 0;
	ex.sub = 0;
	for (i = first; i < mb->n; i++)
		if (mb->rec[i].xflags & MX_COMPACT)
			ex.d += mailbox_span_end(mb, i) - mb->rec[i].off;
	ex.t = ex.z - ex.s - ex.d;
	ex.xi = ex.first = first;
	ex.hash = FNV0;
	if (ex.t) {
		char p[MBOX_PATH];
		if (path(mb, p, ".", ".exp") < 0 ||
		    (ex.jfd = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
			goto fail;
	}
	ex.ph = EX_JOURNAL;
	return 0;
fail:
	r = errno;
	ex_end();
	errno = r;
	return -1;
}

/* The index after the cut: the compacted records gone, the others moved
 * down by what was removed before them. */
static void
ex_index(struct mailbox *mb)
{
	struct stat st;
	uint64_t d = 0, e;
	uint32_t i, j = 0, last_del = 0;

	for (i = 0; i < mb->n; i++) {
		e = mailbox_span_end(mb, i);
		last_del = (mb->rec[i].xflags & MX_COMPACT) != 0;
		if (last_del) {
			d += e - mb->rec[i].off;
			continue;
		}
		if (mb->aux)
			mb->aux[j] = mb->aux[i];
		mb->rec[j] = mb->rec[i];
		mb->rec[j++].off -= d;
	}
	mb->n = j;
	mb->h.size -= d;
	mb->h.dead = mb->h.dead > d ? mb->h.dead - d : 0;
	if (last_del && d)
		mb->h.clean = 1;
	if (ex.lk.fd >= 0 && fstat(ex.lk.fd, &st) == 0)
		mb->h.mtime = mtime_ns(&st);
	idx_write(mb, 0, mb->n, IW_ALL, 1);
}

int
mailbox_compact(struct mailbox *mb, uint64_t *from)
{
	struct mailbox *m = mb;
	struct jtrl tr;
	long budget = test_delay > 0 ? 65536 : COPY_SLICE;
	uint64_t stop, w0;
	size_t k;
	ssize_t r;
	char p[MBOX_PATH];

	*from = UINT64_MAX;
	if (ex.owner && ex.owner != mb)
		return MB_BUSY;
	if (ex.ph == EX_LOCK) {
		step("lock");
		if ((r = ex_start(mb)) != 0)
			return r;
	}
	if (path(mb, p, ".", ".exp") < 0)
		goto fail;
	if (ex.ph == EX_JOURNAL) {
		w0 = ex.w;
		while (budget > 0 && ex.src < ex.z) {
			while (ex.xi < m->n && !(m->rec[ex.xi].xflags & MX_COMPACT))
				ex.xi++;
			stop = ex.xi < m->n ? m->rec[ex.xi].off : ex.z;
			if (ex.src >= stop) {
				ex.src = mailbox_span_end(m, ex.xi++);
				continue;
			}
			k = stop - ex.src < sizeof(sbuf) ? stop - ex.src : sizeof(sbuf);
			if (copy(ex.lk.fd, ex.src, k, ex.jfd, &ex.hash) < 0)
				goto fail;
			ex.src += k;
			budget -= k;
			ex.w += k;
		}
		if (ex.jfd >= 0)
			writeback(ex.jfd, w0, ex.w);
		if (ex.src < ex.z) {
			step("journal");
			return MB_MORE;
		}
		/* one fsync a pass: the journal, the dotlock saying S, then
		 * their directory (each one a flash latency, not three) */
		if (ex.sub == 0 && ex.t) {
			memset(&tr, 0, sizeof(tr));
			tr.magic = J_MAGIC;
			tr.hash = ex.hash;
			tr.s = ex.s;
			tr.t = ex.t;
			tr.z = ex.z;
			k = ex.first;
			tr.olen = mailbox_span_end(m, k) - ex.s < HASH_LEN ? mailbox_span_end(m, k) - ex.s : HASH_LEN;
			tr.ohash = m->rec[k].hash;
			tr.sum = mailbox_fnv(FNV0, &tr, offsetof(struct jtrl, sum));
			if (write_all(ex.jfd, (char *)&tr, sizeof(tr)) < 0 || fsync(ex.jfd) < 0)
				goto fail;
			ex.sub = 1;
			return MB_MORE;
		}
		if (ex.sub < 2) {	/* what a crash must cut back to, durable before the cut */
			mbox_lock_note(&ex.lk, ex.s);
			if (lock_fdatasync() < 0)
				goto fail;
			ex.sub = 2;
			return MB_MORE;
		}
		if (mbox_sync_dir(m->user) < 0)
			goto fail;
		step("journal-done");
		ex.src = ex.z;
		ex.ph = EX_CUT;
	}
	/* the cut, CUT_SLICE bytes a pass: freeing a file system's blocks takes
	 * time too (100 MB in one ftruncate: 60 ms here); a crash meanwhile
	 * cuts to S all the same (the dotlock says so) */
	*from = ex.s;
	if (ex.ph == EX_CUT) {
		ex.src = ex.src > ex.s + CUT_SLICE ? ex.src - CUT_SLICE : ex.s;
		if (ftruncate(ex.lk.fd, ex.src) < 0) {
			if (ex.src + CUT_SLICE >= ex.z)	/* nothing cut yet */
				lock_size(ex.z);
			goto fail_keep;
		}
		if (ex.src > ex.s)
			return MB_MORE;
		step("truncated");
		ex.src = ex.sub = 0;
		ex.wprev = ex.wsync = ex.s;
		ex.ph = EX_APPEND;
		return MB_MORE;
	}
	w0 = ex.s + ex.src;
	while (budget > 0 && ex.src < ex.t) {
		k = ex.t - ex.src < sizeof(sbuf) ? ex.t - ex.src : sizeof(sbuf);
		if (copy(ex.jfd, ex.src, k, ex.lk.fd, NULL) < 0) {
			/* the tail stays in the journal: recovery appends it */
			r = errno;
			if (ftruncate(ex.lk.fd, ex.s) < 0)
				log_warn("mailbox %s: cut back to %llu", m->user, (unsigned long long)ex.s);
			close(ex.jfd);
			ex.jfd = -1;
			errno = r;
			goto fail_keep;
		}
		ex.src += k;
		budget -= k;
	}
	if (ex.lk.fd >= 0)
		writeback(ex.lk.fd, w0, ex.s + ex.src);
	if (ex.src < ex.t) {
		step("append");
		return MB_MORE;
	}
	if (ex.sub == 0 && ex.lk.fd >= 0) {
		if (fsync(ex.lk.fd) < 0)
			goto fail_keep;
		ex.sub = 1;
		return MB_MORE;
	}
	/* the journal's blocks are freed in slices too (closing 100 MB of it
	 * held the loop 35 ms here), once the dotlock says the final size: a
	 * crash then cuts nothing, and a trimmed journal is an incomplete
	 * one, which recovery removes */
	if (ex.sub == 1 && ex.jfd >= 0) {
		if (lock_size(ex.s + ex.t) < 0)
			goto fail_keep;
		ex.sub = 2;
	}
	if (ex.sub == 2 && ex.w > 0) {
		step("trim");
		ex.w = ex.w > CUT_SLICE ? ex.w - CUT_SLICE : 0;
		if (ftruncate(ex.jfd, ex.w) < 0)
			ex.w = 0;	/* close() frees it all */
		return MB_MORE;
	}
	step("appended");
	/* the index, then the dotlock's removal, then the journal's: in that
	 * order a crash leaves a dotlock saying S with the journal (recovery
	 * cuts, then appends the tail again), or the journal alone with its
	 * bytes at S (recovery sees it had finished) */
	ex_index(m);
	mbox_unlock(&ex.lk);
	if (ex.t)
		unlink(p);
	if (ex.d)
		log_info("mailbox %s/%s: compacted, %llu bytes removed, %llu moved", m->user, m->folder,
		    (unsigned long long)ex.d, (unsigned long long)ex.t);
	ex_end();
	*from = UINT64_MAX;
	return 0;
fail:
	r = errno;
	if (ex.jfd >= 0)
		unlink(p);
	errno = r;
fail_keep:
	r = errno;
	log_warn("mailbox %s/%s: compaction", m->user, m->folder);
	ex_end();
	errno = r;
	return -1;
}

/* A journal left by a crash (see above): finish or undo that compaction. */
static int
recover(struct mailbox *mb)
{
	char p[MBOX_PATH], b[2];
	struct stat st, ms;
	struct jtrl tr;
	uint32_t h = FNV0, mh = FNV0;
	int r, fd = -1;
	const char *what = "incomplete journal removed";

	if (path(mb, p, ".", ".exp") < 0 || stat(p, &st) < 0)
		return 0;
	if (ex.owner)
		return ex.owner == mb ? 0 : MB_BUSY;	/* ours is under way: not a crash */
	if ((r = mbox_lock_open(&ex.lk, mb->user, mb->folder, LK_REWRITE, 0)) != 0)	/* may cut back a crashed rewrite */
		return r > 0 ? MB_BUSY : (errno == ENOENT ? (unlink(p), 0) : -1);
	if ((fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		goto fail;
	if (fstat(fd, &st) < 0 ||
	    st.st_size < (off_t)sizeof(tr) || pread(fd, &tr, sizeof(tr), st.st_size - sizeof(tr)) != sizeof(tr) ||
	    tr.magic != J_MAGIC || tr.sum != mailbox_fnv(FNV0, &tr, offsetof(struct jtrl, sum)) ||
	    tr.t + sizeof(tr) != (uint64_t)st.st_size || copy(fd, 0, tr.t, -1, &h) < 0 || h != tr.hash) {
		;	/* step 1 did not finish: the mbox was not touched */
	} else if (fstat(ex.lk.fd, &ms) < 0) {
		goto fail;
	} else if ((uint64_t)ms.st_size >= tr.s + tr.t && copy(ex.lk.fd, tr.s, tr.t, -1, &mh) == 0 && mh == tr.hash) {
		what = "it had finished";
	} else if ((uint64_t)ms.st_size >= tr.z && (mh = FNV0, copy(ex.lk.fd, tr.s, tr.olen, -1, &mh) == 0) &&
	    mh == tr.ohash) {
		what = "it had not started";
	} else {
		/* the mbox ends at S or later mail: append the kept tail */
		r = 0;
		if (ms.st_size >= 2 && pread(ex.lk.fd, b, 2, ms.st_size - 2) == 2)
			r = b[1] != '\n' ? 2 : b[0] != '\n';
		if (write_all(ex.lk.fd, "\n\n", r) < 0 || copy(fd, 0, tr.t, ex.lk.fd, NULL) < 0 || fsync(ex.lk.fd) < 0) {
			if (ftruncate(ex.lk.fd, ms.st_size) < 0)
				log_warn("mailbox %s: truncate", mb->user);
			goto fail;
		}
		what = "its kept messages appended";
	}
	log_warnx("mailbox %s/%s: interrupted expunge recovered: %s", mb->user, mb->folder, what);
	close(fd);
	unlink(p);
	mbox_unlock(&ex.lk);
	return 0;
fail:
	r = errno;
	log_warn("mailbox %s/%s: expunge recovery", mb->user, mb->folder);
	if (fd >= 0)
		close(fd);
	mbox_unlock(&ex.lk);
	errno = r;
	return -1;
}

void
mailbox_recover(const char *user, const char *folder)
{
	struct mailbox mb;
	int r;

	mailbox_open(&mb, user, folder);
	if ((r = recover(&mb)) == 0)
		log_info("mailbox %s/%s: interrupted expunge finished", user, folder);
	else
		log_warnx("mailbox %s/%s: interrupted expunge left for later (%d)", user, folder, r);
}

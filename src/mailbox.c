/*
 * mailbox.c: mbox + index, the store under POP3 (and IMAP).  See mailbox.h
 * for the file formats.
 *
 * Opening.  The index header remembers the mbox size and mtime it covers
 * and each record a hash of its message's first 256 bytes.  Same size and
 * mtime: nothing is read.  Grown, with the first and last known messages
 * still in place and "\n\nFrom " at the old end: only the appended bytes
 * are scanned (new messages get next_uid, next_uid+1, ...).  Anything else
 * (shrunk, a message moved, another program rewrote the file): the whole
 * mbox is scanned again and each message takes the UID of the old record
 * with the same hash, in order; UIDVALIDITY changes only when that cannot
 * give ascending UIDs.  Scans proceed SCAN_SLICE bytes per call so a cold
 * 100 MB mailbox never holds the loop.
 *
 * Flags live in the index, not in Status:/X-Status: headers: storing a
 * flag then costs one record (24 bytes, one page) instead of rewriting the
 * mbox from that message on, which on flash is the difference between a
 * few KiB and megabytes per "mark as read".
 *
 * Locks.  Readers hold an open-file-description read lock only while they
 * read (one call, never across a network wait).  Unlike a POSIX lock it
 * conflicts with kotak's own delivery (a POSIX lock of this process) and
 * survives the close of another fd of the same file.  Writers of the mbox
 * use mbox_lock_open (dotlock + fcntl write lock), as delivery does.
 *
 * Expunge, crash-safe without temp+rename (see mailbox_expunge).
 */
#define _GNU_SOURCE	/* mremap, F_OFD_SETLK */
#include "kotak.h"

#include <dirent.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MB_MAGIC	0x4b544931u	/* "KTI1" in host order: another byte order reads as garbage */
#define J_MAGIC		0x4b544a31u	/* expunge journal trailer */
#define FNV0		2166136261u
#define HASH_LEN	256		/* bytes of a message that identify it */
#define QCHK		64		/* mboxrd quoting is judged on a line's first 64 bytes */
#ifndef SCAN_SLICE	/* the fuzz target's small build makes these tiny */
#define SCAN_SLICE	(1 << 20)	/* mbox bytes scanned per call */
#define COPY_SLICE	(1 << 20)	/* bytes an expunge moves per call */
#define SBUF		32768		/* bytes read at once (scan, read cache, copy) */
#endif
#define STALE		300		/* a dotlock older than this is a dead one (mbox.c) */

enum { PH_START, PH_SCAN, PH_DONE };
enum { EX_LOCK, EX_JOURNAL, EX_APPEND };

/* Scratch for the scanner and the expunge, and a read cache: output
 * buffers are small (Kconfig OBUF), so one locked read of sbuf's size
 * feeds many of them.  rc says whose message sbuf holds; any other use
 * of sbuf, and closing that mailbox, drop it. */
static char sbuf[SBUF];
static struct {
	const struct mailbox *mb;
	uint32_t i;
	uint64_t off;
	size_t len;
} rc;

/* One expunge at a time in the whole daemon (a second waits): its lock
 * (the dotlock and the write-locked fd) stays here across loop passes. */
static struct {
	struct mailbox *owner;
	struct mbox_lock lk;
	int	 jfd, ph;
	uint32_t xi, first, hash;
	uint64_t src, s, t, z, d;
} ex;	/* in .bss: jfd is set before each use */

/* The journal's last bytes: it is complete only if they check out. */
struct jtrl {
	uint32_t magic, hash, ohash, olen;	/* hash of the data; of the first deleted message */
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

/* <data_dir>/mail/<user>/<pre><folder><sfx>: the mbox, its dotlock
 * (INBOX.lock), and our dot files (.INBOX.idx, .INBOX.exp) that a folder
 * listing skips. */
static void
path(const struct mailbox *mb, char *b, const char *pre, const char *sfx)
{
	snprintf(b, PATH_MAX_K + 16, "%s/mail/%s/%s%s%s", cfg.data_dir, mb->user, pre, mb->folder, sfx);
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

/* ---- records in anonymous memory (sized by the mailbox, at open) ---- */

static int
grow(struct mb_rec **a, uint32_t *cap, uint32_t need)
{
	uint32_t nc = *cap ? *cap : 1024;
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

/* The dotlock: 0 none (or stale), 1 held by this process, 2 by another. */
static int
dotlock_state(const struct mailbox *mb)
{
	char p[PATH_MAX_K + 16], me[32], b[32];
	struct stat st;
	int fd, n = snprintf(me, sizeof(me), "kotak %d ", (int)getpid()), r = 2;

	path(mb, p, "", ".lock");
	if (stat(p, &st) < 0 || time(NULL) - st.st_mtime > STALE)
		return 0;
	if ((fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) >= 0) {
		if (read(fd, b, n) == n && !memcmp(b, me, n))
			r = 1;
		close(fd);
	}
	return r;
}

static int
rdlock(struct mailbox *mb, int type)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
#if defined(F_OFD_SETLK)
	if (fcntl(mb->fd, F_OFD_SETLK, &fl) == 0 || errno == EINVAL || type == F_UNLCK)
#else
	if (fcntl(mb->fd, F_SETLK, &fl) == 0 || type == F_UNLCK)	/* old C library: POSIX lock */
#endif
		return 0;	/* EINVAL: a kernel before 3.15 has no reader locks */
	/* our own delivery appends: the bytes before its append are stable */
	return dotlock_state(mb) == 1 ? 0 : MB_BUSY;
}

/* ---- the index file ---- */

static uint32_t
hdr_sum(const struct mb_hdr *h)
{
	return mailbox_fnv(FNV0, h, offsetof(struct mb_hdr, sum));
}

static void
idx_load(struct mailbox *mb)
{
	char p[PATH_MAX_K + 16];
	struct mb_hdr h;
	struct stat st;
	uint32_t i;
	int fd;

	mb->n = 0;
	mb->idx_ok = 0;
	memset(&mb->h, 0, sizeof(mb->h));
	mb->h.next_uid = 1;
	path(mb, p, ".", ".idx");
	if ((fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return;
	if (fstat(fd, &st) == 0 && pread(fd, &h, sizeof(h), 0) == sizeof(h) && h.magic == MB_MAGIC &&
	    h.sum == hdr_sum(&h) && (uint64_t)st.st_size >= sizeof(h) + (uint64_t)h.count * sizeof(struct mb_rec) &&
	    grow(&mb->rec, &mb->cap, h.count + 1) == 0 &&
	    pread(fd, mb->rec, h.count * sizeof(struct mb_rec), sizeof(h)) == (ssize_t)(h.count * sizeof(struct mb_rec))) {
		mb->h = h;
		mb->n = h.count;
		mb->idx_ok = 1;
		for (i = 0; i < mb->n; i++)
			mb->rec[i].sflags = 0;
	}
	close(fd);
}

/* Write records [from, to): IW_FLAGS just those (flag changes); IW_ADD
 * in place, the records, a data sync, then the header that makes them
 * count, so a crash leaves the old index, never a torn one; IW_ALL a new
 * file by temp + rename (a rebuild must not leave half an old index). */
enum { IW_FLAGS, IW_ADD, IW_ALL };

static int
idx_write(struct mailbox *mb, uint32_t from, uint32_t to, int mode)
{
	int whole = mode == IW_ALL;
	char p[PATH_MAX_K + 16], t[PATH_MAX_K + 24];
	size_t len = (to - from) * sizeof(struct mb_rec);
	struct mb_hdr h;
	int fd, r = -1;

	mb->h.magic = MB_MAGIC;
	mb->h.count = mb->n;
	mb->h.sum = hdr_sum(&mb->h);
	h = mb->h;
	path(mb, p, ".", ".idx");
	snprintf(t, sizeof(t), "%s.tmp", p);
	fd = open(whole ? t : p, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (whole ? O_TRUNC : 0), 0600);
	if (fd < 0)
		goto out;
	if (pwrite(fd, mb->rec + from, len, sizeof(h) + from * sizeof(struct mb_rec)) == (ssize_t)len &&
	    (mode == IW_FLAGS || ((whole || from == to || fdatasync(fd) == 0) &&
	    pwrite(fd, &h, sizeof(h), 0) == sizeof(h))) && (!whole || fsync(fd) == 0))
		r = 0;
	close(fd);
	if (whole && (r < 0 || rename(t, p) < 0)) {
		r = -1;
		unlink(t);
	}
out:
	mb->idx_ok = r == 0;
	if (r < 0)
		log_warn("mailbox %s: index %s", mb->user, p);
	return r;
}

/* Is record i still where the index says?  b gets up to 512 bytes from
 * its offset, *got how many. */
static int
rec_check(struct mailbox *mb, uint32_t i, char *b, ssize_t *got)
{
	struct mb_rec *r = &mb->rec[i];
	uint64_t end = i + 1 < mb->n ? r[1].off : mb->h.size;
	size_t len = end - r->off < HASH_LEN ? end - r->off : HASH_LEN;

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
	r->uid = 0;
	r->flags = r->sflags = 0;
	r->pad = 0;
	s->have = 0;
	return grow(&mb->rec, &mb->cap, ++mb->n + 1);
}

/* One line, or a piece of a long one, p[0..n) at file offset off; eol: it
 * ends the line (a LF, or the end of the file).  Octets are counted the way
 * pop3.c sends them: CRLF line ends, one '>' less on ^>+From  lines. */
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
		mb->rec[mb->n].off = off;
		s->have = s->in_from = 1;
		s->size = s->hashed = 0;
		s->hash = FNV0;
	} else if (s->have && !s->in_from) {
		s->size += cl - (s->bol && mailbox_quoted(p, n)) + (eol ? 2 : 0);
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

	rc.mb = NULL;
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
static uint64_t span_end(const struct mailbox *, uint32_t);

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
		const char *e = getenv("KOTAK_TEST_EXPUNGE_DELAY_MS");
		test_delay = e ? atoi(e) : 0;
	}
	memset(mb, 0, sizeof(*mb));
	mb->fd = -1;
	strlcpy_k(mb->user, user, sizeof(mb->user));
	strlcpy_k(mb->folder, folder, sizeof(mb->folder));
	return 0;
}

void
mailbox_close(struct mailbox *mb)
{
	while (ex.owner == mb && mailbox_expunge(mb) == MB_MORE)
		;
	if (ex.owner == mb) {	/* busy: nothing was changed yet */
		ex.owner = NULL;
		ex.ph = EX_LOCK;
	}
	if (mb->fd >= 0)
		close(mb->fd);
	mb->fd = -1;
	rc.mb = NULL;
	if (mb->old != &mb->last)
		unmap(&mb->old, &mb->ocap);
	unmap(&mb->rec, &mb->cap);
	mb->n = 0;
}

/* Decide what to scan: nothing, the appended bytes, the last message
 * again (it had no blank line after it), or everything. */
static int
sync_start(struct mailbox *mb)
{
	char p[PATH_MAX_K + 16];
	struct stat st;
	struct mb_hdr *h = &mb->h;
	int r;

	if ((r = recover(mb)) != 0)
		return r;
	if (mb->fd < 0) {
		path(mb, p, "", "");
		if ((mb->fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)) < 0) {
			if (errno != ENOENT)
				return -1;
			idx_load(mb);	/* no mbox (yet): an empty mailbox */
			mb->n = 0;
			mb->phase = PH_DONE;
			return 0;
		}
	}
	if ((r = rdlock(mb, F_RDLCK)) != 0)
		return r;
	idx_load(mb);
	if (fstat(mb->fd, &st) < 0 || (!S_ISREG(st.st_mode) && (errno = EPERM))) {
		rdlock(mb, F_UNLCK);
		return -1;
	}
	memset(&mb->sc, 0, sizeof(mb->sc));
	mb->sc.bol = mb->sc.blank = 1;
	mb->sc.end = st.st_size;
	mb->base = mb->n;
	mb->on = 0;
	mb->dirty = 0;
	mb->phase = PH_SCAN;
	/* the index holds if its first and last messages are still in place;
	 * bytes before the first message are watched by nothing, so a file
	 * that does not start with a message (malformed: mutt refuses it) is
	 * read again whole at each open */
	if (!mb->sub && mb->idx_ok && (uint64_t)st.st_size >= h->size &&
	    (!h->size || (mb->n && !mb->rec[0].off && rec_ok(mb, 0) && rec_ok(mb, mb->n - 1)))) {
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
		} else if (mb->n) {
			/* the last message may have grown: scan it again, keep its UID */
			mb->last = mb->rec[--mb->n];
			mb->old = &mb->last;
			mb->on = 1;
			mb->base = mb->n;
			mb->sc.pos = mb->last.off;
		} else {
			goto rebuild;
		}
	} else {
rebuild:
		if (mb->idx_ok)
			log_info("mailbox %s/%s: changed by another program, indexing again", mb->user, mb->folder);
		if (mb->old != NULL && mb->old != &mb->last)	/* a scan started over */
			unmap(&mb->old, &mb->ocap);
		mb->old = mb->rec;
		mb->ocap = mb->cap;
		mb->on = mb->n;
		mb->rec = NULL;
		mb->cap = mb->n = mb->base = 0;
		mb->sc.rebuild = 1;
		if (grow(&mb->rec, &mb->cap, 1) < 0) {
			rdlock(mb, F_UNLCK);
			return -1;
		}
	}
	rdlock(mb, F_UNLCK);
	return 0;
}

/* UIDs: a record from base on that matches an unused old record (same
 * hash; searched from after the last match, so in-order mailboxes cost
 * one compare each) takes its UID and flags, the others new UIDs.  When
 * that cannot give ascending UIDs with the new ones last, new UIDVALIDITY
 * and everything renumbered. */
static void
assign(struct mailbox *mb)
{
	uint32_t i, j = 0, k, t, fresh = 0, keep = 1, last = 0;

	for (i = mb->base; i < mb->n; i++) {
		for (t = 0, k = j; t < mb->on; t++, k = k + 1 == mb->on ? 0 : k + 1)
			if (mb->old[k].uid && mb->old[k].hash == mb->rec[i].hash)
				break;
		if (t < mb->on) {
			if (fresh || mb->old[k].uid <= last)
				keep = 0;
			last = mb->rec[i].uid = mb->old[k].uid;
			mb->rec[i].flags = mb->old[k].flags;
			mb->old[k].uid = 0;
			j = k + 1 == mb->on ? 0 : k + 1;
		} else {
			fresh = 1;
		}
	}
	if (mb->sc.rebuild && (!keep || !mb->idx_ok)) {
		uint32_t v = (uint32_t)time(NULL);
		mb->h.uidvalidity = v > mb->h.uidvalidity ? v : mb->h.uidvalidity + 1;
		mb->h.next_uid = 1;
		for (i = 0; i < mb->n; i++)
			mb->rec[i].uid = 0;
		if (mb->idx_ok)
			log_warnx("mailbox %s/%s: UIDs could not be kept, new UIDVALIDITY %u",
			    mb->user, mb->folder, mb->h.uidvalidity);
	}
	for (i = mb->base; i < mb->n; i++)
		if (mb->rec[i].uid == 0)
			mb->rec[i].uid = mb->h.next_uid++;
}

int
mailbox_sync(struct mailbox *mb)
{
	struct mb_scan *s = &mb->sc;
	struct mb_hdr h0;	/* as loaded (a rebuild compares) */
	struct stat st;
	uint32_t i;
	int r, same;

	if (mb->phase == PH_START && (r = sync_start(mb)) != 0)
		return r;
	if (mb->phase != PH_SCAN)
		return 0;
	if ((r = rdlock(mb, F_RDLCK)) != 0)
		return r;
	if (fstat(mb->fd, &st) < 0 || (uint64_t)st.st_size < s->pos) {
		rdlock(mb, F_UNLCK);
		mb->phase = PH_START;	/* rewritten meanwhile: start over */
		return MB_MORE;
	}
	if (!s->touch)
		s->end = st.st_size;	/* appended meanwhile: scan that too */
	r = scan_slice(mb);
	if (r == 0) {
		h0 = mb->h;
		if (s->have && dotlock_state(mb)) {
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
	}
	rdlock(mb, F_UNLCK);
	if (r != 0)
		return r;
	if (mb->old == &mb->last) {
		/* scanned again from its From_ line (checked above): the same message */
		if (mb->base < mb->n) {
			mb->rec[mb->base].uid = mb->last.uid;
			mb->rec[mb->base].flags = mb->last.flags;
		}
		mb->on = 0;
	}
	/* a rebuild that found what the index holds (a file that does not
	 * start with a message is scanned at each open) writes nothing */
	same = mb->sc.rebuild && mb->idx_ok && mb->n == mb->on && mb->h.size == h0.size &&
	    mb->h.clean == h0.clean && mb->h.mtime == h0.mtime;
	for (i = 0; same && i < mb->n; i++)
		same = mb->rec[i].off == mb->old[i].off && mb->rec[i].size == mb->old[i].size &&
		    mb->rec[i].hash == mb->old[i].hash;
	assign(mb);
	if (same)
		;
	else if (mb->sc.rebuild)
		idx_write(mb, 0, mb->n, IW_ALL);
	else if (mb->base < mb->n || mb->dirty || mb->old)
		idx_write(mb, mb->base, mb->n, IW_ADD);
	if (mb->old != &mb->last)
		unmap(&mb->old, &mb->ocap);
	mb->old = NULL;
	mb->on = 0;
	mb->phase = PH_DONE;
	return 0;
}

int
mailbox_resync(struct mailbox *mb)
{
	struct mb_rec *v = mb->rec, *a;
	uint32_t vn = mb->n, vcap = mb->cap, uv = mb->h.uidvalidity, i, j = 0;
	int r;

	mb->rec = NULL;
	mb->cap = mb->n = 0;
	mb->phase = PH_START;
	mb->sub = 1;	/* index everything again, from the file now at the path */
	close(mb->fd);
	mb->fd = -1;
	rc.mb = NULL;
	while ((r = mailbox_sync(mb)) == MB_MORE)
		;
	mb->sub = 0;
	a = mb->rec;
	if (r == 0 && mb->h.uidvalidity == uv) {
		for (i = 0; i < vn; i++) {
			while (j < mb->n && a[j].uid < v[i].uid)
				j++;
			if (j < mb->n && a[j].uid == v[i].uid) {
				v[i].off = a[j].off;
				v[i].hash = a[j++].hash;
			} else {
				v[i].sflags |= MS_GONE;	/* it spans nothing: up to its successor */
				v[i].off = j < mb->n ? a[j].off : mb->h.size;
			}
		}
		if (j < mb->n) {	/* new mail after the session's last message */
			mb->h.size = a[j].off;
			mb->h.clean = 1;
		}
	} else if (r == 0) {
		errno = ESTALE;
		r = -1;
	}
	unmap(&mb->rec, &mb->cap);
	mb->rec = v;
	mb->n = vn;
	mb->cap = vcap;
	mb->idx_ok = 0;	/* the session's view is not the index file any more */
	return r ? -1 : 0;
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
	int lk = rdlock(mb, F_RDLCK);

	if (lk)
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
	span = span_end(mb, i);
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

	if (rc.mb != mb || rc.i != i || pos < rc.off || pos + n > rc.off + rc.len) {
		if ((lk = rdlock(mb, F_RDLCK)) != 0)
			return -lk;
		rc.mb = NULL;
		if (fstat(mb->fd, &st) == 0) {
			if (mtime_ns(&st) != mb->seen_mtime && !rec_ok(mb, i))
				errno = ESTALE;	/* the file changed and our message moved */
			else if ((r = pread(mb->fd, sbuf, sizeof(sbuf), pos)) >= 0) {
				mb->seen_mtime = mtime_ns(&st);
				rc.mb = mb;
				rc.i = i;
				rc.off = pos;
				rc.len = r;
			}
		}
		rdlock(mb, F_UNLCK);
		if (r < 0)
			return r;
	}
	r = pos + n > rc.off + rc.len ? rc.off + rc.len - pos : n;
	memcpy(buf, sbuf + (pos - rc.off), r);
	return r;
}

int
mailbox_save_flags(struct mailbox *mb)
{
	uint32_t i, lo = mb->n, hi = 0;

	for (i = 0; i < mb->n; i++)
		if (mb->rec[i].sflags & MS_DIRTY) {
			if (i < lo)
				lo = i;
			hi = i + 1;
		}
	return lo < hi && mb->idx_ok ? idx_write(mb, lo, hi, IW_FLAGS) : 0;
}

/* ---- expunge ---- */

/*
 * Removing messages from the middle of an mbox means moving the rest of
 * the file down, in place (never temp + rename: that breaks programs that
 * open first and lock later).  The order makes a crash at any point safe
 * and leaves an mbox that parses cleanly (kill -9 and power loss alike):
 *
 *  1. Under the write lock, copy the kept bytes after the first deleted
 *     message (S) to a journal, .<folder>.exp, ending in a trailer with
 *     their length and hash; fsync it and the directory.  Crash: the mbox
 *     is untouched, the incomplete journal is removed.
 *  2. Make the dotlock say "kotak PID S" (fsync), then ftruncate to S.
 *     Crash from here on: whoever locks next (a restarted kotak's delivery,
 *     recover_dead in mbox.c) cuts the mbox back to S; the mbox ends after
 *     the last message before S, and the tail is safe in the journal.
 *  3. Append the journal's bytes at S (the fd is O_APPEND), fsync, make the
 *     dotlock say the final size, remove the journal, unlock.
 * Recovery (recover(), at the next open): an incomplete journal is removed;
 * a complete one whose bytes are already at S is removed; if the mbox still
 * holds the first deleted message at S nothing happened; else its bytes are
 * appended at the end (after any mail delivered since: order may change,
 * nothing is lost or doubled).  Cost: the kept tail is written twice;
 * deleting every message after S (fetchmail without keep) is a plain
 * ftruncate with no journal.
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

	rc.mb = NULL;
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

/* Rewrite the dotlock's "kotak PID SIZE": what a crash must cut back to. */
static int
lock_size(uint64_t size)
{
	char b[64];
	int fd = open(ex.lk.lock, O_WRONLY | O_CLOEXEC | O_NOFOLLOW), n, r;

	if (fd < 0)
		return -1;
	/* wider than what mbox.c wrote: it is overwritten whole */
	n = snprintf(b, sizeof(b), "kotak %d %20llu\n", (int)getpid(), (unsigned long long)size);
	r = pwrite(fd, b, n, 0) == n && fdatasync(fd) == 0 ? 0 : -1;
	close(fd);
	return r;
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

/* The span of record i on disk, up to its successor. */
static uint64_t
span_end(const struct mailbox *mb, uint32_t i)
{
	return i + 1 < mb->n ? mb->rec[i + 1].off : mb->h.size;
}

/* Lock, check that the session's view still matches the file, find S. */
static int
ex_start(struct mailbox *mb)
{
	struct stat st, ost;
	uint32_t i, first = mb->n;
	int r;

	for (i = 0; i < mb->n && first == mb->n; i++)
		if ((mb->rec[i].sflags & (MS_DEL | MS_GONE)) == MS_DEL)
			first = i;
	if (first == mb->n)
		return mailbox_save_flags(mb);
	if (strcmp(mb->folder, "INBOX")) {	/* mbox_lock_open knows INBOX only (IMAP: folders) */
		errno = ENOTSUP;
		return -1;
	}
	ex.jfd = -1;
	if ((r = mbox_lock_open(&ex.lk, mb->user)) != 0)
		return r > 0 ? MB_BUSY : -1;
	ex.owner = mb;
	if (fstat(ex.lk.fd, &st) < 0 || fstat(mb->fd, &ost) < 0)
		goto fail;
	/* another program may have replaced the file (a new one renamed over
	 * it, as Python's mailbox does): the session's offsets are not this
	 * file's.  And a deleted last message may have grown in place: only
	 * bytes that begin a new message may follow what the session saw. */
	if (st.st_dev != ost.st_dev || st.st_ino != ost.st_ino ||
	    ((mb->rec[mb->n - 1].sflags & MS_DEL) && (uint64_t)st.st_size > mb->h.size &&
	    !new_mail_follows(ex.lk.fd, &mb->h))) {
		errno = ESTALE;
		goto fail;
	}
	for (i = 0; i < mb->n; i++)
		if (!(mb->rec[i].sflags & MS_GONE) && (i == 0 || i == mb->n - 1 ||
		    (mb->rec[i].sflags & MS_DEL) || (mb->rec[i - 1].sflags & MS_DEL)) && !rec_ok(mb, i)) {
			errno = ESTALE;	/* rewritten by another program since the open */
			goto fail;
		}
	if ((uint64_t)st.st_size < mb->h.size) {
		errno = ESTALE;
		goto fail;
	}
	ex.s = ex.src = mb->rec[first].off;
	ex.z = st.st_size;
	ex.d = 0;
	for (i = first; i < mb->n; i++)
		if (mb->rec[i].sflags & MS_DEL)
			ex.d += span_end(mb, i) - mb->rec[i].off;
	ex.t = ex.z - ex.s - ex.d;
	ex.xi = ex.first = first;
	ex.hash = FNV0;
	if (ex.t) {
		char p[PATH_MAX_K + 16];
		path(mb, p, ".", ".exp");
		if ((ex.jfd = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
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

/* The index after the cut: records of deleted messages gone, the others
 * moved down by what was removed before them. */
static void
ex_index(struct mailbox *mb)
{
	struct stat st;
	uint64_t d = 0, e;
	uint32_t i, j = 0, last_del = 0;

	for (i = 0; i < mb->n; i++) {
		e = span_end(mb, i);
		last_del = (mb->rec[i].sflags & (MS_DEL | MS_GONE)) != 0;
		if (last_del) {
			d += e - mb->rec[i].off;
			continue;
		}
		mb->rec[j] = mb->rec[i];
		mb->rec[j++].off -= d;
	}
	mb->n = j;
	mb->h.size -= d;
	if (last_del)
		mb->h.clean = 1;
	if (fstat(ex.lk.fd, &st) == 0)
		mb->h.mtime = mtime_ns(&st);
	idx_write(mb, 0, mb->n, IW_ALL);
}

int
mailbox_expunge(struct mailbox *mb)
{
	struct mailbox *m = mb;
	struct jtrl tr;
	long budget = test_delay > 0 ? 65536 : COPY_SLICE;
	uint64_t stop;
	size_t k;
	ssize_t r;
	char p[PATH_MAX_K + 16];

	if (ex.owner && ex.owner != mb)
		return MB_BUSY;
	if (ex.ph == EX_LOCK) {
		step("lock");
		if ((r = ex_start(mb)) != 0 || ex.ph == EX_LOCK)
			return r;
	}
	path(mb, p, ".", ".exp");
	if (ex.ph == EX_JOURNAL) {
		while (budget > 0 && ex.src < ex.z) {
			while (ex.xi < m->n && !(m->rec[ex.xi].sflags & MS_DEL))
				ex.xi++;
			stop = ex.xi < m->n ? m->rec[ex.xi].off : ex.z;
			if (ex.src >= stop) {
				ex.src = span_end(m, ex.xi++);
				continue;
			}
			k = stop - ex.src < sizeof(sbuf) ? stop - ex.src : sizeof(sbuf);
			if (copy(ex.lk.fd, ex.src, k, ex.jfd, &ex.hash) < 0)
				goto fail;
			ex.src += k;
			budget -= k;
		}
		if (ex.src < ex.z) {
			step("journal");
			return MB_MORE;
		}
		if (ex.t) {
			memset(&tr, 0, sizeof(tr));
			tr.magic = J_MAGIC;
			tr.hash = ex.hash;
			tr.s = ex.s;
			tr.t = ex.t;
			tr.z = ex.z;
			k = ex.first;
			tr.olen = span_end(m, k) - ex.s < HASH_LEN ? span_end(m, k) - ex.s : HASH_LEN;
			tr.ohash = m->rec[k].hash;
			tr.sum = mailbox_fnv(FNV0, &tr, offsetof(struct jtrl, sum));
			if (write_all(ex.jfd, (char *)&tr, sizeof(tr)) < 0 || fsync(ex.jfd) < 0 || mbox_sync_dir(m->user) < 0)
				goto fail;
			step("journal-done");
			if (lock_size(ex.s) < 0)
				goto fail;
		}
		if (ftruncate(ex.lk.fd, ex.s) < 0) {
			lock_size(ex.z);
			goto fail;
		}
		step("truncated");
		ex.src = 0;
		ex.ph = EX_APPEND;
	}
	while (budget > 0 && ex.src < ex.t) {
		k = ex.t - ex.src < sizeof(sbuf) ? ex.t - ex.src : sizeof(sbuf);
		if (copy(ex.jfd, ex.src, k, ex.lk.fd, NULL) < 0) {
			/* the tail stays in the journal: the next open appends it */
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
	if (ex.src < ex.t) {
		step("append");
		return MB_MORE;
	}
	if (fsync(ex.lk.fd) < 0 || (ex.t && lock_size(ex.s + ex.t) < 0))
		goto fail_keep;
	step("appended");
	if (ex.t)
		unlink(p);
	ex_index(m);
	log_info("mailbox %s/%s: expunged, %llu bytes removed, %llu moved", m->user, m->folder,
	    (unsigned long long)ex.d, (unsigned long long)ex.t);
	ex_end();
	return 0;
fail:
	r = errno;
	if (ex.jfd >= 0)
		unlink(p);
	errno = r;
fail_keep:
	r = errno;
	log_warn("mailbox %s/%s: expunge", m->user, m->folder);
	ex_end();
	errno = r;
	return -1;
}

/* A journal left by a crash (see above): finish or undo that expunge. */
static int
recover(struct mailbox *mb)
{
	char p[PATH_MAX_K + 16], b[2];
	struct stat st, ms;
	struct jtrl tr;
	uint32_t h = FNV0, mh = FNV0;
	int r, fd;
	const char *what = "incomplete journal removed";

	path(mb, p, ".", ".exp");
	if (stat(p, &st) < 0)
		return 0;
	if (ex.owner)
		return MB_BUSY;
	if ((r = mbox_lock_open(&ex.lk, mb->user)) != 0)	/* may cut back a crashed rewrite */
		return r > 0 ? MB_BUSY : -1;
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
	if (fd >= 0)
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

/* At start: finish the expunges a crash interrupted.  Their journals hold
 * kept messages that mutt would not see until the next POP3 login. */
void
mailbox_recover_all(void)
{
	char p[PATH_MAX_K + 64];
	struct mailbox mb;
	struct dirent *de;
	struct stat st;
	DIR *d;
	int r, n;

	snprintf(p, sizeof(p), "%s/mail", cfg.data_dir);
	if ((d = opendir(p)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (!user_name_ok(de->d_name))
			continue;
		snprintf(p, sizeof(p), "%s/mail/%s/.INBOX.exp", cfg.data_dir, de->d_name);
		if (stat(p, &st) < 0)
			continue;
		mailbox_open(&mb, de->d_name, "INBOX");
		for (n = 0; (r = mailbox_sync(&mb)) == MB_MORE && n < 100000; n++)
			;
		log_info("mailbox %s: interrupted expunge %s", de->d_name, r == 0 ? "finished" : "left for later");
		mailbox_close(&mb);
	}
	closedir(d);
}

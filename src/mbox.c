/*
 * mbox.c: the dotlock, locked appends to mboxrd files, for every folder.
 *
 * Locking as Dovecot and Postfix do it: dotlock (NAME.lock), then open with
 * O_NOFOLLOW (a regular file of ours with one link), then an fcntl write
 * lock; all non-blocking, the caller retries later.
 *
 * The dotlock is the only file that knows how to undo an interrupted
 * append, and this file alone writes and reads it:
 *	kotak PID\n			locked, nothing appended yet
 *	kotak PID SIZE\n		the mbox size a crash must cut back to
 *	QID OFFSET[ d]\n ...		one line per append begun (d: direct,
 *					confirmed only by the dotlock's removal)
 * It is written whole under a temporary name (.NAME.lk) and then linked
 * (taking the lock) or renamed (updating it) into place, so nobody ever
 * sees it empty or half written, even after kill -9 (a file system
 * without hard links, such as vfat, gets O_EXCL and a write instead).
 * Its content is made durable (mbox_lock_sync) before an mbox fsync that
 * could make an unfinished append durable, so after a power cut the
 * append is cut back too.  Dead means not this process: only the daemon
 * takes mailbox locks and its pidfile lets one run at a time; at start
 * our own PID is dead as well (reused after a reboot), and so is any
 * dotlock dated before this boot (a power cut can leave one empty).
 */
#define _GNU_SOURCE	/* F_OFD_SETLK */
#include "kotak.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Open-file-description locks (Linux 3.15) where the C library knows
 * them: a POSIX lock would vanish when any other fd of the mbox in this
 * process closes (a POP3 reader finishing while we append).  They
 * conflict with POSIX locks of other programs just the same. */
#if defined(F_OFD_SETLK)
#define SETLK F_OFD_SETLK
#else
#define SETLK F_SETLK
#endif

#define STALE_SECS 300	/* foreign dotlocks older than this are broken (Dovecot: 5 min) */
#define REGS	16	/* mailboxes this process may hold locked at once */

static int booting;	/* mbox_recover_all: our own PID and pre-boot locks are dead */
static time_t boot_time;

/* The locks this process holds, so that a reader of the same mbox knows
 * what our own lock means (an append: the bytes before it are stable; a
 * rewrite: they are not).  By slot, not by pointer: callers copy their
 * struct mbox_lock around. */
static struct {
	dev_t	 dev;
	ino_t	 ino;
	off_t	 base;
	unsigned char kind, used;
} reg[REGS];

int
mbox_path(char *b, size_t n, const char *user, const char *pre, const char *folder, const char *sfx)
{
	int k = snprintf(b, n, "%s/mail%s%s%s%s%s%s", cfg.data_dir, *user ? "/" : "", user,
	    *folder || *pre ? "/" : "", pre, folder, sfx);

	if (k < 0 || (size_t)k >= n) {
		b[0] = '\0';	/* never a truncated path */
		return errno = ENAMETOOLONG, -1;
	}
	return 0;
}

int
mbox_sync_dir(const char *user)
{
	char p[MBOX_PATH];

	return mbox_path(p, sizeof(p), user, "", "", "") < 0 ? -1 : fsync_dir(p);
}

/* ---- the dotlock file ---- */

/* The temporary name beside the dotlock: .NAME.lk (a dot file: no folder
 * can be called that). */
static int
lock_tmp(const struct mbox_lock *m, char *t, size_t n)
{
	const char *b = strrchr(m->lock, '/');
	int k = snprintf(t, n, "%.*s/.%s", (int)(b - m->lock), m->lock, b + 1);

	if (k < 0 || (size_t)k >= n || k < 5)
		return -1;
	memcpy(t + k - 4, "lk", 3);	/* ".NAME.lock" -> ".NAME.lk" */
	return 0;
}

/* Write text whole to the temporary file; its fd, or -1. */
static int
lock_write_tmp(const struct mbox_lock *m, char *t, size_t n, const char *text, size_t len)
{
	int fd;

	if (lock_tmp(m, t, n) < 0)
		return errno = ENAMETOOLONG, -1;
	unlink(t);	/* debris of a crash */
	fd = open(t, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -1;
	if (write(fd, text, len) != (ssize_t)len) {
		close(fd);
		unlink(t);
		return errno = errno ? errno : EIO, -1;
	}
	return fd;
}

/* Replace the dotlock's content (we hold it). */
static int
lock_replace(struct mbox_lock *m, const char *text, size_t len)
{
	char t[MBOX_PATH];
	int fd = lock_write_tmp(m, t, sizeof(t), text, len);

	if (fd < 0)
		return -1;
	close(fd);
	if (rename(t, m->lock) < 0) {
		unlink(t);
		return -1;
	}
	m->synced = 0;
	return 0;
}

/* Take the dotlock: 0, 1 held by someone, -1.  Written under the
 * temporary name and linked into place: never seen without content. */
static int
lock_take(struct mbox_lock *m)
{
	char t[MBOX_PATH], b[32];
	int fd, n = snprintf(b, sizeof(b), "kotak %d\n", (int)getpid()), r;

	if ((fd = lock_write_tmp(m, t, sizeof(t), b, n)) < 0)
		return -1;
	close(fd);
	r = link(t, m->lock);
	if (r < 0 && errno != EEXIST) {
		/* no hard links here (vfat): O_EXCL, then the content */
		unlink(t);
		if ((fd = open(m->lock, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
			return errno == EEXIST ? 1 : -1;
		r = write(fd, b, n) == n ? 0 : -1;
		close(fd);
		if (r < 0)
			unlink(m->lock);
		return r;
	}
	unlink(t);
	return r < 0 ? 1 : 0;
}

/* The dotlock at path as kotak wrote it: 1 with pid and size (-1: none
 * noted), and *pos the offset of its first append line; 0 not kotak's
 * (or empty); -1 unreadable.  b gets the file's first part. */
static int
lock_parse(int fd, char *b, size_t n, long long *pid, long long *size, off_t *pos)
{
	ssize_t k = pread(fd, b, n - 1, 0);
	char *e;

	if (k < 0)
		return -1;
	b[k] = '\0';
	if (strncmp(b, "kotak ", 6))
		return 0;
	*pid = strtoll(b + 6, &e, 10);
	*size = -1;
	if (*e == ' ')
		*size = strtoll(e + 1, &e, 10);
	while (*e == ' ')
		e++;
	if (*e != '\n' || *pid <= 0)
		return 0;
	*pos = e + 1 - b;
	return 1;
}

int
mbox_lock_owner(const char *lockpath)
{
	char b[64];
	long long pid, size;
	off_t pos;
	int fd = open(lockpath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), r;

	if (fd < 0)
		return 0;
	r = lock_parse(fd, b, sizeof(b), &pid, &size, &pos);
	close(fd);
	return r == 1 && pid == getpid() ? 1 : 2;
}

void
mbox_lock_note(struct mbox_lock *m, off_t size)
{
	char b[64];
	int n = snprintf(b, sizeof(b), "kotak %d %lld\n", (int)getpid(), (long long)size);

	if (lock_replace(m, b, n) < 0)
		log_warn("mbox %s: cannot update its dotlock", m->lock);
	if (m->reg >= 0)
		reg[m->reg].base = size;
}

int
mbox_lock_add(struct mbox_lock *m, const char *qid, off_t off, int direct)
{
	char b[64];
	int n = snprintf(b, sizeof(b), "%s %lld%s\n", qid, (long long)off, direct ? " d" : "");
	int fd = open(m->lock, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW), r;

	if (fd < 0)
		return -1;
	r = write(fd, b, n) == n ? 0 : -1;
	close(fd);
	m->synced = 0;
	return r;
}

int
mbox_lock_sync(struct mbox_lock *m)
{
	char d[MBOX_PATH];
	int fd, r;

	if (m->synced)
		return 0;
	if ((fd = open(m->lock, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return -1;
	r = fdatasync(fd);
	close(fd);
	strlcpy_k(d, m->lock, sizeof(d));
	*strrchr(d, '/') = '\0';
	if (r < 0 || fsync_dir(d) < 0)
		return -1;
	m->synced = 1;
	return 0;
}

/* Boot time (btime of /proc/stat), 0 if unknown. */
static time_t
booted(void)
{
	char b[4096], *p;
	ssize_t n;
	int fd = open("/proc/stat", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	n = read(fd, b, sizeof(b) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	b[n] = '\0';
	return (p = strstr(b, "\nbtime ")) ? (time_t)strtoll(p + 7, NULL, 10) : 0;
}

/*
 * A dotlock left by a dead kotak (see the top): the appends whose
 * recipients the queue had marked done stay; the mbox is cut back to the
 * start of the first one not marked, or to SIZE when none is listed (an
 * interrupted expunge leaves it so), so each message ends up there once.
 * Without SIZE nothing was appended.  At start, any dotlock dated before
 * this boot or in the future is dead too (nothing to cut: whatever its
 * content, a whole kotak dotlock was handled above).  1 if handled.
 */
static int
recover_dead(struct mbox_lock *m)
{
	char b[4096], user[USER_MAX], *e, *l, *d;
	long long pid, size, cut;
	struct stat st;
	off_t pos;
	int fd = open(m->lock, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), n, k;

	if (fd < 0)
		return 0;
	k = lock_parse(fd, b, sizeof(b), &pid, &size, &pos);
	if (k != 1 || (pid == getpid() && !booting)) {
		n = booting && fstat(fd, &st) == 0 && (st.st_mtime < boot_time || st.st_mtime > time(NULL) + 60);
		close(fd);
		if (n) {
			log_warnx("mbox %s: dotlock from before this boot removed", m->lock);
			unlink(m->lock);
		}
		return n;
	}
	/* the mailbox's user: the directory name above the mbox */
	strlcpy_k(user, "", sizeof(user));
	if ((d = strrchr(m->path, '/')) != NULL) {
		*d = '\0';
		if ((l = strrchr(m->path, '/')) != NULL)
			strlcpy_k(user, l + 1, sizeof(user));
		*d = '/';
	}
	cut = size;	/* no appends listed (an expunge, or locked only): back to SIZE */
	/* the lines, a buffer at a time: one per append of a pass */
	while ((n = pread(fd, b, sizeof(b) - 1, pos)) > 0) {
		b[n] = '\0';
		for (l = b; (e = strchr(l, '\n')) != NULL && e - l > QID_LEN + 1; l = e + 1) {
			char qid[QID_LEN + 1];

			memcpy(qid, l, QID_LEN);
			qid[QID_LEN] = '\0';
			cut = -1;	/* all listed appends done: keep everything */
			if (e[-1] == 'd' || !queue_rcpt_done(qid, user)) {
				cut = strtoll(l + QID_LEN + 1, NULL, 10);
				goto done;
			}
		}
		if (e != NULL || l == b)
			break;	/* a short line (the end), or garbage */
		pos += l - b;
	}
done:
	close(fd);
	if (cut >= 0 && stat(m->path, &st) == 0 && st.st_size > cut) {
		if (truncate(m->path, cut) < 0)
			return 0;
		log_warnx("mbox %s: cut %lld bytes of an append interrupted by a crash",
		    m->path, (long long)(st.st_size - cut));
	}
	unlink(m->lock);
	return 1;
}

/* At start, before anything reads a mailbox: every dotlock of every folder
 * of every user that a crash left. */
void
mbox_recover_all(void)
{
	char p[MBOX_PATH];
	struct mbox_lock ml;
	struct dirent *de, *fe;
	DIR *d, *u;
	size_t n;

	booting = 1;
	boot_time = booted();
	if (mbox_path(p, sizeof(p), "", "", "", "") < 0 || (d = opendir(p)) == NULL) {
		booting = 0;
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (!user_name_ok(de->d_name) || mbox_path(p, sizeof(p), de->d_name, "", "", "") < 0 ||
		    (u = opendir(p)) == NULL)
			continue;
		while ((fe = readdir(u)) != NULL) {
			n = strlen(fe->d_name);
			if (fe->d_name[0] == '.' || n <= 5 || strcmp(fe->d_name + n - 5, ".lock"))
				continue;
			fe->d_name[n - 5] = '\0';
			if (mbox_lock_open(&ml, de->d_name, fe->d_name, LK_APPEND, 0) == 0)
				mbox_unlock(&ml);
		}
		closedir(u);
	}
	closedir(d);
	booting = 0;
}

/* ---- locking ---- */

static int
dotlock(struct mbox_lock *m)
{
	struct stat st;
	int r, tries;

	for (tries = 0; tries < 2; tries++) {
		if ((r = lock_take(m)) <= 0)
			return r;
		if (recover_dead(m))
			continue;
		if (mbox_lock_owner(m->lock) == 1)
			return 1;	/* ours (another folder operation): never stale */
		if (stat(m->lock, &st) == 0 && time(NULL) - st.st_mtime > STALE_SECS) {
			log_warnx("mbox %s: breaking stale dotlock", m->lock);
			unlink(m->lock);
			continue;
		}
		return 1;	/* busy */
	}
	return 1;
}

static int
private_dir(const char *dir)
{
	struct stat st;

	/* a directory others can write to lets them swap our dotlock or mbox */
	if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || (st.st_mode & 022) || st.st_uid != geteuid()) {
		log_warnx("mbox %s: not a private directory of ours: refusing to deliver", dir);
		return errno = EPERM, -1;
	}
	return 0;
}

int
mbox_lock_open(struct mbox_lock *m, const char *user, const char *folder, int kind, int create)
{
	char dir[MBOX_PATH], top[MBOX_PATH];
	struct stat st;
	struct flock fl;
	int r, n, i;

	memset(m, 0, sizeof(*m));
	m->fd = -1;
	m->reg = -1;
	if (mbox_path(dir, sizeof(dir), user, "", "", "") < 0 || mbox_path(m->path, sizeof(m->path), user, "", folder, "") < 0 ||
	    mbox_path(m->lock, sizeof(m->lock), user, "", folder, ".lock") < 0 || mbox_path(top, sizeof(top), "", "", "", "") < 0) {
		m->lock[0] = '\0';
		return -1;
	}
	for (i = 0; i < REGS && reg[i].used; i++)
		;
	if (i == REGS) {
		m->lock[0] = '\0';
		return 1;	/* cannot happen with today's callers: retry later */
	}
	/* a new user's directory: its entry durable before anything in it counts */
	if (create && mkdir(dir, 0700) == 0) {
		if (fsync_dir(top) < 0) {
			m->lock[0] = '\0';
			return -1;
		}
	} else if (create && errno != EEXIST) {
		m->lock[0] = '\0';
		return -1;
	}
	if (private_dir(dir) < 0) {
		m->lock[0] = '\0';
		return -1;
	}
	if ((r = dotlock(m)) != 0) {
		m->lock[0] = '\0';
		return r;
	}
	m->fd = open(m->path, O_RDWR | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
	if (m->fd < 0 && errno == ENOENT && create) {
		/* a new mbox: its directory entry durable at once (the
		 * queue file's removal must never become durable without it) */
		m->fd = open(m->path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (m->fd >= 0 && fsync_dir(dir) < 0)
			goto fail;
	}
	if (m->fd < 0 || fstat(m->fd, &st) < 0)
		goto fail;
	if (!S_ISREG(st.st_mode) || st.st_nlink != 1 || st.st_uid != geteuid()) {
		errno = EPERM;
		goto fail;
	}
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(m->fd, SETLK, &fl) < 0 && (errno != EINVAL || fcntl(m->fd, F_SETLK, &fl) < 0)) {
		if (errno == EAGAIN || errno == EACCES) {
			mbox_unlock(m);
			return 1;
		}
		goto fail;
	}
	reg[i].used = 1;
	reg[i].dev = st.st_dev;
	reg[i].ino = st.st_ino;
	reg[i].kind = kind;
	m->reg = i;
	mbox_lock_note(m, st.st_size);
	return 0;
fail:
	n = errno;
	mbox_unlock(m);
	errno = n;
	return -1;
}

void
mbox_unlock(struct mbox_lock *m)
{
	if (m->fd >= 0)
		close(m->fd);	/* drops the fcntl lock */
	if (m->lock[0])
		unlink(m->lock);
	if (m->reg >= 0)
		reg[m->reg].used = 0;
	m->fd = -1;
	m->reg = -1;
	m->lock[0] = '\0';
}

int
mbox_lock_mine(const struct stat *st, off_t *base)
{
	int i;

	for (i = 0; i < REGS; i++)
		if (reg[i].used && reg[i].dev == st->st_dev && reg[i].ino == st->st_ino) {
			*base = reg[i].base;
			return reg[i].kind == LK_APPEND ? 1 : 2;
		}
	return 0;
}

/* ---- appending one message ---- */

/* "From sender date" postmark; MAILER-DAEMON for <>, no blanks in the address. */
int
mbox_from_line(char *out, size_t n, const char *sender, time_t t)
{
	char date[40], s[ADDR_MAX], *p;

	ctime_date(date, sizeof(date), t);
	strlcpy_k(s, *sender ? sender : "MAILER-DAEMON", sizeof(s));
	for (p = s; *p; p++)
		if (*p == ' ' || *p == '\t')
			*p = '_';
	return snprintf(out, n, "From %s %s\n", s, date);
}

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

int
mbox_append_begin(struct mbox_lock *m, struct mbox_append *a, const char *sender, time_t date,
    const char *rpath, const char *qid, int direct, int flags)
{
	char out[ADDR_MAX * 2 + 80];
	struct stat st;
	size_t o = 0;

	memset(a, 0, sizeof(*a));
	a->old = -1;	/* nothing to undo yet */
	a->flags = flags;
	if (fstat(m->fd, &st) < 0)
		return -1;
	a->old = st.st_size;
	if (st.st_size > 0) {	/* another program may have left no blank line */
		char t[2] = { '\n', '\n' };
		off_t k = st.st_size >= 2 ? 2 : 1;
		if (pread(m->fd, t + 2 - k, k, st.st_size - k) != k)
			return -1;
		if (t[1] != '\n')
			out[o++] = '\n';
		if (t[1] != '\n' || t[0] != '\n')
			out[o++] = '\n';
	}
	a->start = a->old + o;
	o += mbox_from_line(out + o, sizeof(out) - o, sender, date);
	if (rpath)
		o += snprintf(out + o, sizeof(out) - o, "Return-Path: <%s>\n", rpath);
	if (mbox_lock_add(m, qid, a->old, direct) < 0 || write_all(m->fd, out, o) < 0) {
		mbox_append_undo(m, a);
		return -1;
	}
	return 0;
}

static char al[2 * 4096 + 64];	/* filtered bytes on their way to mbox_quote */
static size_t alen;

#if IMAP_PARTS
/* The headers other programs keep flags and UIDs in: a message must not
 * bring its own (as SMTP's data.c drops them).  n: the name with any
 * blanks before its ':'. */
static int
forged(const char *h, size_t n)
{
	static const char *const names[] = { "status", "x-status", "x-keywords", "x-uid", "x-imap",
	    "x-imapbase", "content-length", NULL };
	int i;

	while (n && (h[n - 1] == ' ' || h[n - 1] == '\t'))
		n--;
	for (i = 0; names[i]; i++)
		if (strlen(names[i]) == n && !strncasecmp(h, names[i], n))
			return 1;
	return 0;
}

/* Only blanks from the first one on (a field name, then its padding)? */
static int
name_then_blanks(const char *h, size_t n)
{
	size_t i = 0;

	while (i < n && h[i] != ' ' && h[i] != '\t')
		i++;
	while (i < n && (h[i] == ' ' || h[i] == '\t'))
		i++;
	return i == n;
}

static void
emit(const char *p, size_t n)
{
	memcpy(al + alen, p, n);
	alen += n;
}

/* One byte through the header filter (APPEND_FILTER). */
static void
put(struct mbox_append *a, char c)
{
	if (!(a->flags & APPEND_FILTER) || a->hst == HS_BODY) {
		al[alen++] = c;
		return;
	}
	switch (a->hst) {
	case HS_BOL:
		if (c == '\n') {
			a->hst = HS_BODY;	/* the blank line */
			al[alen++] = c;
		} else if (c == ' ' || c == '\t') {	/* a continuation line */
			a->hst = a->drop ? HS_DROP : HS_KEEP;
			if (!a->drop)
				al[alen++] = c;
		} else {
			a->name[0] = c;
			a->nlen = 1;
			a->hst = HS_NAME;
		}
		return;
	case HS_NAME:
		if (c != '\n' && c != ':' && a->nlen < sizeof(a->name) &&
		    (name_then_blanks(a->name, a->nlen) || c == ' ' || c == '\t')) {
			a->name[a->nlen++] = c;
			if (a->nlen < sizeof(a->name) || !forged(a->name, a->nlen))
				return;
			a->drop = 1;	/* a forged name padded past the buffer */
			a->hst = HS_DROP;
			return;
		}
		a->drop = c == ':' && name_then_blanks(a->name, a->nlen) && forged(a->name, a->nlen);
		if (a->drop) {
			a->hst = HS_DROP;
			return;
		}
		emit(a->name, a->nlen);
		al[alen++] = c;
		a->hst = c == '\n' ? HS_BOL : HS_KEEP;
		return;
	case HS_KEEP:
		al[alen++] = c;
		if (c == '\n')
			a->hst = HS_BOL;
		return;
	default:	/* HS_DROP */
		if (c == '\n')
			a->hst = HS_BOL;
		return;
	}
}

#endif

static int
flush_al(struct mbox_lock *m, struct mbox_append *a)
{
	static char q[2 * sizeof(al) + CONFIG_DATA_LINE_MAX + 8];
	size_t k;

	if (IMAP_PARTS && (a->flags & APPEND_RAW)) {
		k = alen;
		memcpy(q, al, k);
	} else {
		k = mbox_quote(al, alen, q, &a->qstate);
	}

	alen = 0;
	if (k == 0)
		return 0;
	a->last = q[k - 1];
	return write_all(m->fd, q, k);
}

/* APPEND_CRLF: a CR before LF dropped; APPEND_FILTER: the headers above
 * dropped, with their continuation lines. */
int
mbox_append_data(struct mbox_lock *m, struct mbox_append *a, const char *in, size_t n)
{
	size_t i, k;
#if IMAP_PARTS
	char c;
#endif

	if (!IMAP_PARTS || !(a->flags & (APPEND_CRLF | APPEND_FILTER))) {	/* LF already, filtered by data.c */
		for (i = 0; i < n; i += k) {
			k = n - i < sizeof(al) ? n - i : sizeof(al);
			memcpy(al, in + i, k);
			alen = k;
			if (flush_al(m, a) < 0)
				return -1;
		}
		return 0;
	}
#if IMAP_PARTS
	for (i = 0; i < n; i++) {
		c = in[i];
		if (a->cr && c != '\n')
			put(a, '\r');
		a->cr = 0;
		if ((a->flags & APPEND_CRLF) && c == '\r') {
			a->cr = 1;
			continue;
		}
		put(a, c);
		if (alen >= sizeof(al) - sizeof(a->name) - 2 && flush_al(m, a) < 0)
			return -1;
	}
#endif
	return flush_al(m, a);
}

int
mbox_append_end(struct mbox_lock *m, struct mbox_append *a)
{
	char t[4];
	size_t o = 0;

#if IMAP_PARTS
	if (a->cr)	/* a last CR without LF */
		put(a, '\r');
	if (a->hst == HS_NAME) {	/* a last header line without ':' */
		emit(a->name, a->nlen);
		a->hst = HS_KEEP;
	}
#endif
	/* a ">*From" prefix held back at the very end: out, with the LF the
	 * message lacks */
	if (a->qstate > 0)
		al[alen++] = '\n';
	if (flush_al(m, a) < 0)
		return -1;
	if (a->last && a->last != '\n')
		t[o++] = '\n';	/* the message ends in LF */
	t[o++] = '\n';	/* the blank line that ends an mbox message */
	return write_all(m->fd, t, o);
}

void
mbox_append_undo(struct mbox_lock *m, struct mbox_append *a)
{
	if (a->old >= 0 && ftruncate(m->fd, a->old) < 0)
		log_warn("mbox %s: truncate back to %lld", m->path, (long long)a->old);
}

/*
 * mboxrd quoting, streaming: a line matching ^>*From  gets one more '>'.
 * *state: -1 mid-line, else at line start with (state & 7) chars of
 * "From " matched after (state >> 3) '>' chars.  A prefix is held back
 * only while it could still become "From ", and no stored line is longer
 * than DATA_LINE_MAX, so out needs 2n + DATA_LINE_MAX + 8 bytes.
 */
size_t
mbox_quote(const char *in, size_t n, char *out, int *state)
{
	static const char from[] = "From ";
	size_t o = 0, i;
	int st = *state;

	for (i = 0; i < n; i++) {
		char c = in[i];
		int gt = st >> 3, fm = st & 7, k;

		if (st < 0) {
			out[o++] = c;
			if (c == '\n')
				st = 0;
			continue;
		}
		if (fm == 0 && c == '>') {
			st = ((gt + 1) << 3);
			continue;
		}
		if (c == from[fm]) {
			if (++fm == 5) {	/* quote it */
				out[o++] = '>';
				for (k = 0; k < gt; k++)
					out[o++] = '>';
				memcpy(out + o, from, 5);
				o += 5;
				st = -1;
			} else {
				st = (gt << 3) | fm;
			}
			continue;
		}
		/* no match: release what was held back */
		for (k = 0; k < gt; k++)
			out[o++] = '>';
		memcpy(out + o, from, fm);
		o += fm;
		out[o++] = c;
		st = c == '\n' ? 0 : -1;
	}
	*state = st;
	return o;
}

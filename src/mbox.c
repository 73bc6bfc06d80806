/*
 * mbox.c: locked append to mboxrd files.
 *
 * Locking as Dovecot and Postfix do it: dotlock (INBOX.lock, O_EXCL), then
 * open with O_NOFOLLOW (a regular file of ours with one link), then an
 * fcntl write lock; all non-blocking, the caller retries later.  The
 * dotlock holds "kotak PID SIZE", the mbox size before our append: if
 * kotak is killed mid-append, the next locker finds the dead PID and cuts
 * the partial message off, so the mbox always parses cleanly.
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

/*
 * A dotlock left by a dead kotak: "kotak PID SIZE" and then one line
 * "QID OFFSET" (or "QID OFFSET d", direct) for each append it began, in
 * order.  Direct appends are never confirmed while it exists; the appends whose
 * recipients the queue had marked done stay; the mbox is cut back to the
 * start of the first one not marked (or to SIZE when there is none, as an
 * interrupted expunge leaves it), so each message ends up there once.
 * Dead means not this process: only the daemon takes mailbox locks and
 * its pidfile lets one run at a time, so no liveness probe is needed (a
 * PID from before a reboot may be anyone's now, even ours: at start,
 * mbox_recover_all counts our own PID as dead too).
 * 1 if handled.
 */
static int booting;

static int
recover_dead(struct mbox_lock *m)
{
	char b[4096], user[USER_MAX], *e, *l, *d;
	long long pid, size, cut;
	struct stat st;
	off_t pos;
	int fd = open(m->lock, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), n;

	if (fd < 0)
		return 0;
	n = read(fd, b, sizeof(b) - 1);
	if (n <= 0 || (b[n] = '\0', strncmp(b, "kotak ", 6))) {
		close(fd);
		return 0;
	}
	pid = strtoll(b + 6, &e, 10);
	size = strtoll(e, &e, 10);
	if (*e != '\n' || pid <= 0 || size < 0 || (pid == getpid() && !booting)) {
		close(fd);
		return 0;
	}
	/* the mailbox's user: the directory name above INBOX */
	strlcpy_k(user, "", sizeof(user));
	if ((d = strrchr(m->path, '/')) != NULL) {
		*d = '\0';
		if ((l = strrchr(m->path, '/')) != NULL)
			strlcpy_k(user, l + 1, sizeof(user));
		*d = '/';
	}
	cut = size;	/* no appends listed (an expunge, or locked only): back to SIZE */
	pos = e + 1 - b;
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

int
mbox_sync_dir(const char *user)
{
	char p[PATH_MAX_K + USER_MAX + 8];

	snprintf(p, sizeof(p), "%s/mail/%s", cfg.data_dir, user);
	return fsync_dir(p);
}

/* At start, before anything reads a mailbox: cut what the dotlocks of a
 * crashed kotak say is unconfirmed. */
void
mbox_recover_all(void)
{
	char p[PATH_MAX_K + 64];
	struct mbox_lock ml;
	struct dirent *de;
	struct stat st;
	DIR *d;

	snprintf(p, sizeof(p), "%s/mail", cfg.data_dir);
	if ((d = opendir(p)) == NULL)
		return;
	booting = 1;
	while ((de = readdir(d)) != NULL) {
		if (!user_name_ok(de->d_name))
			continue;
		snprintf(p, sizeof(p), "%s/mail/%s/INBOX.lock", cfg.data_dir, de->d_name);
		if (lstat(p, &st) == 0 && mbox_lock_open(&ml, de->d_name) == 0)
			mbox_unlock(&ml);
	}
	booting = 0;
	closedir(d);
}

/* Before an append: name it in the dotlock, for recover_dead.  A direct
 * append (queue.c: a message delivered before it was ever queued) is "d":
 * it is confirmed only by the dotlock's removal, so recovery cuts it. */
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
	return r;
}

static int
dotlock(struct mbox_lock *m)
{
	struct stat st;
	int fd, tries;

	for (tries = 0; tries < 2; tries++) {
		fd = open(m->lock, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0)
			return fd;
		if (errno != EEXIST)
			return -1;
		if (recover_dead(m))
			continue;
		if (stat(m->lock, &st) == 0 && time(NULL) - st.st_mtime > STALE_SECS) {
			log_warnx("mbox %s: breaking stale dotlock", m->lock);
			unlink(m->lock);
			continue;
		}
		return -2;	/* busy */
	}
	return -2;
}

int
mbox_lock_open(struct mbox_lock *m, const char *user)
{
	char dir[PATH_MAX_K];
	struct stat st;
	struct flock fl;
	int lfd, n;

	m->fd = -1;
	m->lock[0] = '\0';
	snprintf(dir, sizeof(dir), "%s/mail/%s", cfg.data_dir, user);
	if ((size_t)snprintf(m->path, sizeof(m->path), "%s/INBOX", dir) >= sizeof(m->path))
		return errno = ENAMETOOLONG, -1;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -1;
	/* a directory others can write to lets them swap our dotlock or mbox */
	if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || (st.st_mode & 022) || st.st_uid != geteuid()) {
		log_warnx("mbox %s: not a private directory of ours: refusing to deliver", dir);
		return errno = EPERM, -1;
	}
	snprintf(m->lock, sizeof(m->lock), "%s.lock", m->path);
	if ((lfd = dotlock(m)) == -2) {
		m->lock[0] = '\0';
		return 1;
	}
	if (lfd < 0) {
		m->lock[0] = '\0';
		return -1;
	}
	m->fd = open(m->path, O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
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
			close(lfd);
			return 1;
		}
		goto fail;
	}
	close(lfd);
	mbox_lock_note(m, st.st_size);
	return 0;
fail:
	n = errno;
	close(lfd);
	mbox_unlock(m);
	errno = n;
	return -1;
}

/* Record in the dotlock the mbox size a crash must cut back to, and no
 * appends yet.  Written beside it and renamed over it, so the dotlock is
 * never seen empty (the lock itself holds throughout). */
void
mbox_lock_note(struct mbox_lock *m, off_t size)
{
	char b[64], tmp[PATH_MAX_K + 24];
	int n = snprintf(b, sizeof(b), "kotak %d %lld\n", (int)getpid(), (long long)size);
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.%d", m->lock, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || write(fd, b, n) != n || rename(tmp, m->lock) < 0) {
		log_warn("mbox %s: cannot update its dotlock", m->lock);
		unlink(tmp);
	}
	if (fd >= 0)
		close(fd);
}

void
mbox_unlock(struct mbox_lock *m)
{
	if (m->fd >= 0)
		close(m->fd);	/* drops the fcntl lock */
	if (m->lock[0])
		unlink(m->lock);
	m->fd = -1;
	m->lock[0] = '\0';
}

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

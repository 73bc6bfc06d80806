/*
 * queue.c: the spool, the group commit, and local delivery.
 *
 * A queue file, spool/queue/QID, holds:
 *	KOTAK1 QID\n  T <arrival unix time>\n  F <sender>\n
 *	R <st> <user> <original recipient>\n ...   (st '-' pending, 'D' done;
 *	user "!" is a remote recipient, left for the relay)
 *	\n  <message, LF line ends>  KOTAK-END <20-digit message length>\n
 *
 * Durability, settled once per loop pass (queue_sync, a group commit):
 * each message whose DATA ended in this pass is fsynced and renamed from
 * spool/tmp/ into spool/queue/, the directory is fsynced once for all of
 * them, and only then do their 250s go out.  Mailboxes appended to in this
 * pass stay locked until one fsync per mailbox has made all of this pass's
 * appends durable; only then are their recipients marked done.  (syncfs
 * would make it one call, but it flushes every writer on the file system:
 * measured here at 110 KB written per message on a shared disk.)
 *
 * Small local-only messages skip the queue: direct() appends them in the
 * pass that received them, before their 250 (see there).
 *
 * A recipient is marked done (its status byte overwritten, as Postfix
 * does) or the file removed only after the sync: a crash in between
 * delivers twice, never zero times.  The file's mtime is the time of its
 * next delivery attempt (as Postfix does), so deferrals cost no memory.
 */
#define _GNU_SOURCE	/* sync_file_range (Linux) */
#include "kotak.h"
#include "smtp_in.h"
#include "folder.h"

#include <dirent.h>
#include <poll.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define TRL_FMT		"KOTAK-END %020lld\n"
#define TRL_LEN		31
#define SLICE		(256 * 1024)	/* bytes copied per loop pass */
#define RING		64		/* queue ids waiting for a delivery attempt */
#define SCAN_EVERY	60		/* seconds between queue directory scans */
#define MIN_FREE	(64 * 1024)	/* spool space kept free beyond a message */
#define MARKS		64		/* deliveries waiting for the pass's sync */
#define CLOCK_SLACK	1		/* s: time() may lag file times (a coarse clock vs
					 * fine-grained timestamps): a new file is due now */

static char qdir[PATH_MAX_K + 16], tdir[PATH_MAX_K + 16];
static unsigned qcounter;

static struct conn *commit[CONFIG_MAX_CONNS];
static int ncommit;

static char ring[RING][QID_LEN + 1];
static int rhead, rcount;
static time_t next_scan;	/* monotonic; 0 = scan now */
static int kicked;		/* 1: retry everything now, whatever its next-try time;
				 * 2: that pass is over, the ring still holds its last */
static DIR *kdir;		/* kicked: the directory pass under way, each file once */

/* After the sync: user "" removes the whole file, else marks that user done. */
static struct mark {
	char	 qid[QID_LEN + 1];
	char	 user[USER_MAX];
} marks[MARKS];
static int nmarks;
static off_t pass_budget = SLICE;	/* message bytes copied per loop pass */

static struct job {
	int	 active, fd, deferred, remote, delivered, qstate, direct, warned;
	char	 qid[QID_LEN + 1];
	char	 sender[ADDR_MAX];
	char	 user[USER_MAX];
	time_t	 arrival;
	off_t	 body_off, body_len, copied, mb_old;
	off_t	 roff;		/* offset of the next envelope line to look at */
	struct mbox_lock *mb;	/* the mailbox being appended to, NULL between */
	struct mbox_append ap;
} job = { .fd = -1 };

/*
 * Mailboxes appended to in this pass stay locked until the pass's sync has
 * made the appends durable (as Postfix's local holds its lock across the
 * fsync).  The dotlock records each mbox's size before the pass's first
 * append, so if kotak is killed before the recipients are marked done,
 * the next locker cuts those appends off and the redelivery makes exactly
 * one copy (mbox.c).  After the sync: unlock, then mark.
 */
#define HELD	8
static struct held {
	struct mbox_lock mb;
	char	 user[USER_MAX];
	off_t	 base;		/* mbox size when this pass's appends began */
	off_t	 dbase;		/* where its direct appends of this pass begin; -1 none */
} held[HELD];
static int nheld;

/* One fsync per mailbox for all of this pass's appends.  On failure that
 * mailbox goes back to its size before them and the pass's marks are not
 * written: those messages are delivered again later.  -1 on failure. */
static int
held_sync(void)
{
	int i, r = 0;

	for (i = 0; i < nheld; i++) {
		/* an append still under way (a big message, in slices) becomes
		 * partly durable with this fsync: what undoes it must be first */
		if (&held[i].mb == job.mb && mbox_lock_sync(job.mb) < 0)
			log_warn("mbox %s: dotlock sync", held[i].mb.path);
		else if (fsync(held[i].mb.fd) == 0)
			continue;
		log_warn("mbox %s: fsync", held[i].mb.path);
		if (&held[i].mb != job.mb && ftruncate(held[i].mb.fd, held[i].base) < 0)
			log_warn("mbox %s: truncate back", held[i].mb.path);
		r = -1;
	}
	return r;
}

static void
held_release(void)
{
	int i;

	for (i = 0; i < nheld; i++)
		if (&held[i].mb != job.mb) {	/* never one with an append under way */
			mbox_unlock(&held[i].mb);
			folder_appended(held[i].user, "INBOX");	/* wake its readers */
		}
	if (job.mb && job.mb != &held[0].mb) {
		held[0] = *(struct held *)job.mb;
		job.mb = &held[0].mb;
	}
	nheld = job.mb ? 1 : 0;
	/* what came before the append under way is durable; its dotlock
	 * lines stay (their recipients are marked done now, so a crash cuts
	 * only from the append under way), so the dotlock is not rewritten
	 * and its sync (held_sync) is not needed again */
	if (job.mb) {
		held[0].base = job.mb_old;
		held[0].dbase = -1;
	}
}

/* ---- spool files ---- */

int
queue_tx_open(char *qid, char *path, size_t n)
{
	int fd, tries;

	for (tries = 0; tries < 8; tries++) {
		snprintf(qid, QID_LEN + 1, "%08llx%08x", (long long)time(NULL) & 0xffffffffLL, ++qcounter);
		snprintf(path, n, "%s/%s", tdir, qid);
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);	/* RDWR: smtp_in rereads its envelope */
		if (fd >= 0 || errno != EEXIST)
			return fd;
	}
	return -1;
}

int
queue_trailer(int fd, long long len)
{
	char t[TRL_LEN + 1];

	snprintf(t, sizeof(t), TRL_FMT, len);
	return write(fd, t, TRL_LEN) == TRL_LEN ? 0 : -1;
}

int
queue_space_ok(long long need)
{
	struct statvfs sv;

	if (statvfs(qdir, &sv) < 0)
		return 1;	/* cannot tell: let the write find out */
	return (long long)sv.f_bavail * (long long)sv.f_frsize >= need + MIN_FREE;
}

/* One envelope line at off into b (NUL-terminated, LF cut); its length
 * with the LF, 0 at EOF, -1 on error or a line longer than b. */
int
queue_line(int fd, off_t off, char *b, size_t n)
{
	ssize_t r = pread(fd, b, n - 1, off);
	char *lf;

	if (r <= 0)
		return r < 0 ? -1 : 0;
	b[r] = '\0';
	if ((lf = memchr(b, '\n', r)) == NULL)
		return -1;
	*lf = '\0';
	return lf - b + 1;
}

/* Parse and check a queue file: envelope lines, trailer, sizes.  Fills the
 * job fields it reads; returns the number of pending recipients or -1. */
static int
env_load(int fd, const char *qid, struct job *j)
{
	char l[ADDR_MAX + USER_MAX + 16], t[TRL_LEN + 1];
	off_t off = 0;
	long long blen;
	unsigned long long u;
	struct stat st;
	int n, pending = 0, seen_f = 0;

	if (fstat(fd, &st) < 0 || st.st_size < TRL_LEN)
		return -1;
	if (pread(fd, t, TRL_LEN, st.st_size - TRL_LEN) != TRL_LEN)
		return -1;
	t[TRL_LEN] = '\0';
	t[TRL_LEN - 1] = '\0';
	if (strncmp(t, "KOTAK-END ", 10) || parse_uint(t + 10, 1ULL << 62, &u) < 0)
		return -1;
	blen = (long long)u;
	if ((n = queue_line(fd, off, l, sizeof(l))) <= 0 || strncmp(l, "KOTAK1 ", 7) || strcmp(l + 7, qid))
		return -1;
	for (off += n; (n = queue_line(fd, off, l, sizeof(l))) > 0; off += n) {
		if (l[0] == '\0') {
			off += n;
			break;
		}
		if ((l[0] == 'T' || l[0] == 'W') && l[1] == ' ') {
			j->arrival = (time_t)strtoll(l + 2, NULL, 10);
			j->warned = l[0] == 'W';
		}
		else if (l[0] == 'F' && l[1] == ' ' && ++seen_f)
			strlcpy_k(j->sender, l + 2, sizeof(j->sender));
		else if (l[0] == 'R' && l[1] == ' ' && l[3] == ' ' && (l[2] == '-' || l[2] == 'D'))
			pending += l[2] == '-';
		else
			return -1;
	}
	if (n <= 0 || !seen_f || off + blen + TRL_LEN != st.st_size)
		return -1;
	j->body_off = off;
	j->body_len = blen;
	return pending;
}

/* Is user's recipient line in queue file qid marked done (or the file
 * gone, which happens only when every recipient is done)?  For mbox.c's
 * crash recovery. */
int
queue_rcpt_done(const char *qid, const char *user)
{
	char p[PATH_MAX_K + 40], l[ADDR_MAX + USER_MAX + 16];
	size_t ul = strlen(user);
	off_t off = 0;
	int fd, n, done = 1;

	snprintf(p, sizeof(p), "%s/%s", qdir, qid);
	if (strlen(qid) != QID_LEN || strchr(qid, '/') || (fd = open(p, O_RDONLY | O_CLOEXEC)) < 0)
		return 1;
	while ((n = queue_line(fd, off, l, sizeof(l))) > 0 && l[0]) {
		if (l[0] == 'R' && l[2] == '-' && !strncmp(l + 4, user, ul) && l[4 + ul] == ' ')
			done = 0;
		off += n;
	}
	close(fd);
	return done;
}

int
queue_env_open(const char *qid, struct qenv *e)
{
	char p[PATH_MAX_K + 40];
	struct job j;
	int fd;

	snprintf(p, sizeof(p), "%s/%s", qdir, qid);
	memset(&j, 0, sizeof(j));
	if ((fd = open(p, O_RDWR | O_CLOEXEC)) < 0)
		return -1;
	if (env_load(fd, qid, &j) < 0) {
		close(fd);
		return -1;
	}
	e->arrival = j.arrival;
	e->warned = j.warned;
	strlcpy_k(e->sender, j.sender, sizeof(e->sender));
	e->body_off = j.body_off;
	e->body_len = j.body_len;
	return fd;
}

static void ring_add(const char *qid);

/* A new message made by kotak itself (a bounce), already fsynced in tmp/:
 * into the queue, directory synced, delivery scheduled.  0 or -1. */
int
queue_publish(const char *tmp, const char *qid)
{
	char dst[PATH_MAX_K + 40];

	snprintf(dst, sizeof(dst), "%s/%s", qdir, qid);
	if (rename(tmp, dst) < 0 || fsync_dir(qdir) < 0) {
		log_warn("%s: queue", qid);
		unlink(tmp);
		unlink(dst);
		return -1;
	}
	ring_add(qid);
	return 0;
}

/* The delay warning is recorded in place, as the status bytes are: the
 * arrival line "T ..." becomes "W ..." (right after "KOTAK1 QID\n").
 * The file's mtime (its next attempt) is kept. */
#define WARN_OFF	(7 + QID_LEN + 1)

int
queue_warned(int fd)
{
	struct timespec ts[2];
	struct stat st;
	int r;

	if (fstat(fd, &st) < 0)
		return -1;
	r = pwrite(fd, "W", 1, WARN_OFF) == 1 ? 0 : -1;
	ts[0].tv_sec = ts[1].tv_sec = st.st_mtime;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	futimens(fd, ts);
	return r;
}

int
queue_is_warned(int fd)
{
	char c;

	return pread(fd, &c, 1, WARN_OFF) == 1 && c == 'W';
}

/* The file's mtime is its next attempt (as Postfix does it); the directory
 * scan is brought forward so that a short delay is kept. */
void
queue_retry(int fd, time_t delay)
{
	struct timespec ts[2];

	ts[0].tv_sec = ts[1].tv_sec = time(NULL) + delay;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	futimens(fd, ts);	/* POSIX 2008; uClibc-ng lacks futimes */
	if (next_scan > now + delay)
		next_scan = now + delay;
}

/* ---- group commit ---- */

void
queue_commit_add(struct conn *c)
{
	commit[ncommit++] = c;
	c->flags |= CF_COMMIT;
}

/* Drop a session from the commit list (it went away before its 250). */
void
queue_commit_cancel(struct conn *c)
{
	int i;

	/* removed, not cleared: the list now lives across passes (the commit
	 * delay), and a reused slot must not be added a second time */
	for (i = 0; i < ncommit; i++)
		if (commit[i] == c) {
			commit[i] = commit[--ncommit];
			break;
		}
}

static void
ring_add(const char *qid)
{
	int i;

	for (i = 0; i < rcount; i++)	/* a bounce published twice in a pass */
		if (!strcmp(ring[(rhead + i) % RING], qid))
			return;
	if (rcount == RING) {
		next_scan = 0;	/* full: the directory scan will find it */
		return;
	}
	strlcpy_k(ring[(rhead + rcount++) % RING], qid, QID_LEN + 1);
}

static void
mark_done(int fd, const char *user);

static long long commit_t0;	/* ms: when the waiting batch's first message ended */

static long long
ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Milliseconds the group commit may still wait for messages that other
 * sessions are sending (Kconfig COMMIT_DELAY), or -1 when it will not. */
int
queue_wait_ms(void)
{
	long long left;

	if (!ncommit || CONFIG_COMMIT_DELAY == 0)
		return -1;
	if (commit_t0 == 0)
		commit_t0 = ms_now();
	left = CONFIG_COMMIT_DELAY - (ms_now() - commit_t0);
	return left > 0 && smtp_in_busy() > 0 ? (int)left : -1;
}

static int direct(struct smtp_sess *);
static off_t direct_bytes;	/* appended directly in this pass (at most DIRECT_PASS) */

/* KOTAK_TEST_DIRECT_DELAY_MS: tests kill -9 between a direct delivery's
 * mailbox sync and its unlock. */
static int
test_delay(void)
{
	static int d = -1;

	if (d < 0)
		d = TEST_HOOK("KOTAK_TEST_DIRECT_DELAY_MS");
	return d;
}
static int held_lock(const char *user);
static void deliver_step(void);
static int forced;	/* sync_now: no waiting for other sessions' messages */

/* held[] or marks[] are full: settle them now, whatever the commit delay. */
static void
sync_now(void)
{
	forced = 1;
	queue_sync();
	forced = 0;
}

/* The end of a pass: rename this pass's messages into the queue, sync,
 * then answer their clients and settle this pass's deliveries. */
void
queue_sync(void)
{
	struct conn *batch[CONFIG_MAX_CONNS];
	char dst[PATH_MAX_K + 40];
	int i, fd, n = ncommit, err[CONFIG_MAX_CONNS], syncerr = 0, markerr = 0, queued = 0, nd;
	unsigned char dir[CONFIG_MAX_CONNS];
	char ddir[HELD][USER_MAX];

	/* deliveries are settled in the pass that made them (under load that
	 * pass also has commits, so they share its sync): waiting longer would
	 * widen the window in which a crash delivers a message twice */
	if (n == 0 && nmarks == 0 && nheld == (job.mb != NULL))
		return;
	if (!forced && queue_wait_ms() >= 0)
		return;	/* a later pass syncs them all */
	commit_t0 = 0;
	direct_bytes = 0;
	/* replies below may run pipelined commands that end another message:
	 * those join a fresh list for the next pass */
	memcpy(batch, commit, n * sizeof(batch[0]));
	ncommit = 0;
	for (i = 0; i < n; i++) {
		dir[i] = batch[i] != NULL && direct(&batch[i]->u.smtp);
		queued += batch[i] != NULL && !dir[i];
	}
#if defined(SYNC_FILE_RANGE_WRITE)
	/* Start every file's writeback before the first fsync: ext4 then
	 * allocates all their blocks in one journal transaction, which the
	 * first fsync commits and the later ones find committed, so a pass
	 * costs one journal commit for its messages and mailboxes instead of
	 * one per file.  Only a hint: the fsyncs below still decide. */
	for (i = 0; i < n; i++)
		if (batch[i] != NULL && !dir[i])
			sync_file_range(batch[i]->u.smtp.fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	for (i = 0; i < nheld; i++)
		sync_file_range(held[i].mb.fd, 0, 0, SYNC_FILE_RANGE_WRITE);
#endif
	for (i = 0; i < n; i++) {
		struct smtp_sess *s;

		err[i] = 0;
		if (batch[i] == NULL)
			continue;
		s = &batch[i]->u.smtp;
		if (dir[i]) {	/* delivered: the temp file is never synced */
			close(s->fd);
			s->fd = -1;
			continue;
		}
		snprintf(dst, sizeof(dst), "%s/%s", qdir, s->qid);
		if (fsync(s->fd) < 0 || close(s->fd) < 0 || rename(s->tmp, dst) < 0)
			err[i] = errno ? errno : EIO;
		s->fd = -1;
	}
	if (queued && fsync_dir(qdir) < 0)
		syncerr = errno ? errno : EIO;
	if (held_sync() < 0) {
		/* the direct messages get 451: none of them may stay anywhere
		 * (they come after the pass's queue appends in each mailbox) */
		markerr = 1;
		for (i = 0; i < nheld; i++)
			if (held[i].dbase >= 0 && (ftruncate(held[i].mb.fd, held[i].dbase) < 0 ||
			    fsync(held[i].mb.fd) < 0))
				log_warn("mbox %s: truncate back", held[i].mb.path);
	}
	/* the users whose mailbox unlock confirms direct appends */
	for (i = nd = 0; i < nheld && !markerr; i++)
		if (held[i].dbase >= 0 && &held[i].mb != job.mb)
			strlcpy_k(ddir[nd++], held[i].user, sizeof(ddir[0]));
	if (queued < n && test_delay())	/* tests: kill -9 before the unlock */
		log_info("queue: direct deliveries synced, unlock in %d ms", test_delay());
	for (i = 0; i < n; i++) {
		struct smtp_sess *s;

		if (batch[i] == NULL || dir[i])
			continue;
		s = &batch[i]->u.smtp;
		if (!err[i] && syncerr)
			err[i] = syncerr;
		if (err[i]) {
			snprintf(dst, sizeof(dst), "%s/%s", qdir, s->qid);
			unlink(dst);
			unlink(s->tmp);
		} else {
			ring_add(s->qid);
		}
		smtp_in_committed(batch[i], !err[i], err[i]);
	}
	for (i = 0; i < nmarks && !markerr; i++) {
		snprintf(dst, sizeof(dst), "%s/%s", qdir, marks[i].qid);
		if (!marks[i].user[0]) {
			unlink(dst);
			log_info("%s: removed", marks[i].qid);
		} else if ((fd = open(dst, O_RDWR | O_CLOEXEC)) >= 0) {
			mark_done(fd, marks[i].user);
			close(fd);
		}
	}
	if (markerr && nmarks)
		log_warnx("queue: a mailbox fsync failed: %d deliveries will be made again", nmarks);
	nmarks = 0;
	if (queued < n && test_delay())
		poll(NULL, 0, test_delay());
	held_release();	/* after the marks: a crash before leaves the dotlock, which knows */
	/* direct deliveries are confirmed by the unlock just done; it must be
	 * on disk before their 250, or after a power cut the dotlock is back
	 * and the next start cuts them (a 451 instead: the client resends,
	 * a duplicate at worst) */
	for (i = 0; i < nd; i++)
		if (mbox_sync_dir(ddir[i]) < 0) {
			log_warn("mbox directory of %s: fsync", ddir[i]);
			markerr = 1;
		}
	for (i = 0; i < n; i++)
		if (batch[i] != NULL && dir[i]) {
			unlink(batch[i]->u.smtp.tmp);
			smtp_in_committed(batch[i], !markerr, EIO);
		}
	for (i = 0; i < n; i++)
		if (batch[i] != NULL)
			conn_process(batch[i]);
}

/*
 * Direct delivery: a message that has just been received, is no bigger
 * than DIRECT_MAX and is for local mailboxes only, all lockable now, is
 * appended to them straight from its spool temp file in this pass, before
 * its 250.  Its temp file is then never fsynced nor renamed into the queue
 * (measured: about half of the bytes written per message, on flash).  The
 * appends are noted "d" in the dotlocks and confirmed only by the unlock
 * that ends this pass, after the mailbox fsync; the 250 goes out after
 * that.  A crash before the unlock cuts them (mbox.c), and the client,
 * which got no 250, sends the message again.  If anything fails before the
 * sync, this message's appends are undone and it is queued as usual.
 * 1 delivered (pending the sync), 0 queue it.
 */
#define DIRECT_MAX	(256 * 1024)	/* bigger: the queue, in slices (the loop must not stall) */
#define DIRECT_PASS	(1024 * 1024)	/* direct bytes per pass; the rest: the queue */

static int
direct(struct smtp_sess *s)
{
	char l[ADDR_MAX + USER_MAX + 16], *sp;
	struct job saved = job;
	off_t snap[HELD], off = 0, budget = pass_budget;
	struct stat st;
	int n, i, lines = 0, m0 = nmarks, ok = 0;

	if (job.mb != NULL || s->d.written > DIRECT_MAX || direct_bytes + s->d.written > DIRECT_PASS)
		return 0;
	while ((n = queue_line(s->fd, off, l, sizeof(l))) > 0 && l[0]) {
		off += n;
		if (l[0] != 'R')
			continue;
		if ((sp = strchr(l + 4, ' ')) == NULL || !strcmp((*sp = '\0', l + 4), "!") ||
		    nmarks + ++lines >= MARKS || nheld == HELD || held_lock(l + 4) != 0)
			goto out;	/* remote, too many, or a mailbox busy */
		job.mb = NULL;
	}
	if (n < 0 || lines == 0)
		goto out;
	for (i = 0; i < nheld; i++)
		snap[i] = fstat(held[i].mb.fd, &st) == 0 ? st.st_size : -1;
	memset(&job, 0, sizeof(job));
	if ((job.fd = dup(s->fd)) < 0)
		goto out;
	if (env_load(job.fd, s->qid, &job) < 0) {
		close(job.fd);
		goto out;
	}
	strlcpy_k(job.qid, s->qid, sizeof(job.qid));
	job.active = job.direct = 1;
	pass_budget = DIRECT_MAX + 1;	/* each append in one go */
	while (job.active) {
		pass_budget = DIRECT_MAX + 1;
		deliver_step();
	}
	ok = job.delivered && !job.deferred;
	direct_bytes += ok ? s->d.written : 0;
	for (i = 0; ok && i < nheld; i++)
		if (held[i].dbase < 0 && snap[i] >= 0 && fstat(held[i].mb.fd, &st) == 0 && st.st_size > snap[i])
			held[i].dbase = snap[i];
	if (!ok) {	/* undo this message's appends: they are at each mailbox's end */
		for (i = 0; i < nheld; i++)
			if (snap[i] >= 0 && fstat(held[i].mb.fd, &st) == 0 && st.st_size > snap[i] &&
			    ftruncate(held[i].mb.fd, snap[i]) < 0)
				log_warn("mbox %s: truncate back", held[i].mb.path);
		nmarks = m0;
		log_info("%s: direct delivery failed: queued", s->qid);
	}
out:
	job = saved;
	pass_budget = budget;
	return ok;
}

/* ---- startup ---- */

static int
dir_private(const char *d)
{
	struct stat st;

	if (mkdir_p(d, 0700) < 0 || stat(d, &st) < 0)
		return -1;
	if (st.st_mode & 0002) {
		log_warnx("%s is world-writable: refusing to use it", d);
		return errno = EPERM, -1;
	}
	return 0;
}

int
queue_init(void)
{
	char p[PATH_MAX_K + 40], c[PATH_MAX_K + 40];
	struct dirent *de;
	DIR *d;
	int fd, n = 0;
	struct job j;

	snprintf(qdir, sizeof(qdir), "%s/spool/queue", cfg.data_dir);
	snprintf(tdir, sizeof(tdir), "%s/spool/tmp", cfg.data_dir);
	snprintf(p, sizeof(p), "%s/spool/corrupt", cfg.data_dir);
	snprintf(c, sizeof(c), "%s/spool", cfg.data_dir);
	if (dir_private(cfg.data_dir) < 0 || dir_private(c) < 0 || dir_private(qdir) < 0 || dir_private(tdir) < 0 ||
	    dir_private(p) < 0) {
		log_warn("spool %s", p);
		return -1;
	}
	snprintf(p, sizeof(p), "%s/mail", cfg.data_dir);
	if (dir_private(p) < 0) {
		log_warn("%s", p);
		return -1;
	}
	/* the entries of spool/, queue/, mail/ ... durable before anything in
	 * them is acknowledged (strict POSIX: UBIFS and JFFS2 keep only what a
	 * directory fsync made durable); once per start */
	if (fsync_dir(cfg.data_dir) < 0 || fsync_dir(c) < 0)
		log_warn("fsync %s", c);
	random_bytes(&qcounter, sizeof(qcounter));
	/* temp debris of an interrupted session: never acknowledged, remove */
	if ((d = opendir(tdir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(p, sizeof(p), "%s/%s", tdir, de->d_name);
			unlink(p);
		}
		closedir(d);
	}
	/* every queued file must prove it is whole; the rest go to corrupt/ */
	if ((d = opendir(qdir)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", qdir, de->d_name);
		memset(&j, 0, sizeof(j));
		fd = open(p, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || strlen(de->d_name) != QID_LEN || env_load(fd, de->d_name, &j) < 0) {
			snprintf(c, sizeof(c), "%s/spool/corrupt/%s", cfg.data_dir, de->d_name);
			log_warnx("queue %s: damaged file moved to %s", de->d_name, c);
			rename(p, c);
		} else {
			n++;
		}
		if (fd >= 0)
			close(fd);
	}
	closedir(d);
	if (n)
		log_info("queue: %d message(s) waiting", n);
	queue_kick();	/* a restart retries everything at once */
	return 0;
}

/* ---- local delivery: one recipient at a time, one slice per pass ---- */

static void
add_mark(const char *user)
{
	if (nmarks == MARKS)
		sync_now();	/* rare: many recipients in one pass */
	if (nmarks == MARKS) {
		log_warnx("%s: to=%s: no room to mark it done: it will be delivered again", job.qid, user);
		return;
	}
	strlcpy_k(marks[nmarks].qid, job.qid, sizeof(marks[0].qid));
	strlcpy_k(marks[nmarks++].user, user, sizeof(marks[0].user));
}

static void
job_finish(void)
{
	time_t age, delay;

	if (job.direct) {
		;	/* direct(): its caller settles the message */
	} else if (job.deferred || job.remote) {
		/* back off with the message's age: 10 s, growing to 5 min;
		 * remote recipients go to the relay, which sets the next try
		 * itself once it is done (meanwhile scans leave the file alone) */
		age = time(NULL) - job.arrival;
		delay = age < 10 ? 10 : age > 300 ? 300 : age;
#if ENABLE_RELAY
		if (job.remote) {
			if (smtp_out_add(job.qid) == 0) {
				queue_retry(job.fd, 3600);	/* the relay sets the next try */
				log_info("%s: relaying", job.qid);
			} else {	/* 4096 waiting: the file comes back at its retry time */
				queue_retry(job.fd, 30);
				log_info("%s: relay busy, next try in 30s", job.qid);
			}
		} else
#endif
		{
			if (!job.deferred)
				delay = 3600;
			queue_retry(job.fd, delay);
			log_info("%s: %s, next try in %llds", job.qid,
			    job.deferred ? "deferred" : "remote recipients wait for the relay", (long long)delay);
		}
	} else if (job.delivered) {
		add_mark("");	/* every recipient done: remove after the sync */
	} else {
		char p[PATH_MAX_K + 40];
		snprintf(p, sizeof(p), "%s/%s", qdir, job.qid);
		unlink(p);	/* nothing was pending any more */
		log_info("%s: removed", job.qid);
	}
	close(job.fd);
	job.fd = -1;
	job.active = 0;
}

static int
job_start(const char *qid)
{
	char p[PATH_MAX_K + 40];
	struct stat st;
	int pending;

	snprintf(p, sizeof(p), "%s/%s", qdir, qid);
	memset(&job, 0, sizeof(job));
	job.mb = NULL;
	if ((job.fd = open(p, O_RDWR | O_CLOEXEC)) < 0)
		return -1;	/* already done and gone */
	if (fstat(job.fd, &st) < 0 || (!kicked && st.st_mtime > time(NULL) + CLOCK_SLACK) ||
	    (pending = env_load(job.fd, qid, &job)) < 0) {
		close(job.fd);
		return -1;
	}
	strlcpy_k(job.qid, qid, sizeof(job.qid));
	job.roff = 0;
	job.active = 1;
	return 0;
}

/* Mark every pending line for `user` as done (the same mailbox gets one copy). */
static void
mark_done(int fd, const char *user)
{
	char l[ADDR_MAX + USER_MAX + 16];
	struct timespec ts[2];
	struct stat st;
	off_t off = 0;
	int n, st_ok = fstat(fd, &st) == 0;
	size_t ul = strlen(user);

	while ((n = queue_line(fd, off, l, sizeof(l))) > 0 && l[0]) {
		if (l[0] == 'R' && l[2] == '-' && !strncmp(l + 4, user, ul) && l[4 + ul] == ' ')
			if (pwrite(fd, "D", 1, off + 2) != 1)
				break;	/* delivered twice rather than lost */
		off += n;
	}
	/* the write moved the mtime, which is the next attempt (queue_retry) */
	if (st_ok) {
		ts[0].tv_sec = ts[1].tv_sec = st.st_mtime;
		ts[0].tv_nsec = ts[1].tv_nsec = 0;
		futimens(fd, ts);
	}
}

/* This job already appended for `user` in this pass (a duplicate line)? */
static int
done_this_pass(const char *user)
{
	int i;

	for (i = 0; i < nmarks; i++)
		if (!strcmp(marks[i].qid, job.qid) && !strcmp(marks[i].user, user))
			return 1;
	return 0;
}

/* Next pending recipient at or after job.roff not yet handled; 0 if none. */
static int
next_rcpt(void)
{
	char l[ADDR_MAX + USER_MAX + 16], *sp;
	int n;

	while ((n = queue_line(job.fd, job.roff, l, sizeof(l))) > 0 && l[0]) {
		job.roff += n;
		if (l[0] != 'R' || l[2] != '-')
			continue;
		if ((sp = strchr(l + 4, ' ')) == NULL)
			continue;
		*sp = '\0';
		if (!strcmp(l + 4, "!")) {	/* remote: the relay's, not ours */
			job.remote = 1;
			continue;
		}
		if (done_this_pass(l + 4))
			continue;
		strlcpy_k(job.user, l + 4, sizeof(job.user));
		return 1;
	}
	return 0;
}

static void
deliver_fail(const char *why, int e)
{
	/* leave the mbox exactly as it was before this message */
	mbox_append_undo(job.mb, &job.ap);
	errno = e;
	log_warn("%s: to=%s status=deferred (%s)", job.qid, job.user, why);
	job.mb = NULL;
	job.deferred = 1;
	job.user[0] = '\0';
}

/* The user's mailbox, locked: already in this pass, or now.  0, 1 busy, -1. */
static int
held_lock(const char *user)
{
	int i, r;

	for (i = 0; i < nheld; i++)
		if (!strcmp(held[i].user, user)) {
			job.mb = &held[i].mb;
			return 0;
		}
	if (nheld == HELD)
		sync_now();	/* settles the others; rare */
	if (nheld == HELD)
		return 1;	/* cannot happen (held_release keeps at most one): try later */
	if ((r = mbox_lock_open(&held[nheld].mb, user, "INBOX", LK_APPEND, 1)) != 0)
		return r;
	strlcpy_k(held[nheld].user, user, sizeof(held[0].user));
	held[nheld].base = lseek(held[nheld].mb.fd, 0, SEEK_END);
	held[nheld].dbase = -1;
	job.mb = &held[nheld++].mb;
	return 0;
}

/* One slice of work on the current recipient. */
static void
deliver_step(void)
{
	static char in[16384];
	ssize_t r;
	int lk;

	if (job.mb == NULL) {
		if (!job.user[0] && !next_rcpt()) {
			job_finish();
			return;
		}
		lk = held_lock(job.user);
		if (lk != 0) {
			if (lk > 0)
				log_info("%s: to=%s status=deferred (mailbox locked)", job.qid, job.user);
			else
				log_warn("%s: to=%s status=deferred (open mailbox)", job.qid, job.user);
			job.deferred = 1;
			job.user[0] = '\0';
			return;
		}
		if (mbox_append_begin(job.mb, &job.ap, job.sender, job.arrival, job.sender, job.qid,
		    job.direct, 0) < 0) {
			deliver_fail("write", errno);	/* begin undid its part */
			return;
		}
		job.mb_old = job.ap.old;
		job.copied = 0;
	}
	while (job.copied < job.body_len && pass_budget > 0) {
		size_t want = sizeof(in);
		if ((off_t)want > job.body_len - job.copied)
			want = job.body_len - job.copied;
		r = pread(job.fd, in, want, job.body_off + job.copied);
		if (r <= 0) {
			deliver_fail("read spool", r < 0 ? errno : EIO);
			return;
		}
		if (mbox_append_data(job.mb, &job.ap, in, r) < 0) {
			deliver_fail("write", errno);
			return;
		}
		job.copied += r;
		pass_budget -= r;
	}
	if (job.copied < job.body_len)
		return;	/* next pass */
	if (mbox_append_end(job.mb, &job.ap) < 0) {
		deliver_fail("write", errno);
		return;
	}
	add_mark(job.user);	/* marked done after the pass's sync */
	job.delivered = 1;
	log_info("%s: to=%s status=delivered mbox=%s size=%lld", job.qid, job.user,
	    job.mb->path, (long long)job.body_len);
	job.mb = NULL;	/* stays locked until the pass's sync */
	job.user[0] = '\0';
}

static void
scan(void)
{
	struct dirent *de;
	struct stat st;
	char p[PATH_MAX_K + 40];
	time_t t = time(NULL) + CLOCK_SLACK;
	DIR *d;
	int end = 0;

	next_scan = now + SCAN_EVERY;
	/* kicked: one pass over the directory, across scans (the ring holds
	 * 64), so each file is tried once whatever its next-try time, and the
	 * first ones are not tried again and again while the rest wait */
	if (kicked == 1 && kdir == NULL)
		kdir = opendir(qdir);
	if ((d = kicked == 1 ? kdir : opendir(qdir)) == NULL) {
		kicked = 0;
		return;
	}
	while (rcount < RING) {
		if ((de = readdir(d)) == NULL) {
			end = 1;
			break;
		}
		if (strlen(de->d_name) != QID_LEN)
			continue;
		snprintf(p, sizeof(p), "%s/%s", qdir, de->d_name);
		if (stat(p, &st) == 0 && (d == kdir || st.st_mtime <= t))
			ring_add(de->d_name);
	}
	if (!end)
		next_scan = 0;	/* the ring filled up: scan again once it is drained */
	if (d != kdir)
		closedir(d);
	else if (end) {
		closedir(kdir);
		kdir = NULL;
		kicked = 2;
	}
}

/* Deliver until this pass's budget is spent; the appends made here become
 * durable together in queue_sync. */
void
queue_run(void)
{
	int steps;

	for (steps = 0; steps < 64 && pass_budget > 0; steps++) {
		if (!job.active) {
			if (rcount == 0 && (next_scan == 0 || now >= next_scan))
				scan();
			while (rcount > 0 && !job.active) {
				char qid[QID_LEN + 1];
				strlcpy_k(qid, ring[rhead], sizeof(qid));
				rhead = (rhead + 1) % RING;
				rcount--;
				job_start(qid);
			}
			if (rcount == 0 && !job.active) {
				if (kicked == 2)
					kicked = 0;
				break;
			}
		}
		deliver_step();
	}
	pass_budget = SLICE;
}

void
queue_kick(void)
{
	kicked = 1;
	if (kdir != NULL)	/* a new pass from the start */
		closedir(kdir);
	kdir = NULL;
	next_scan = 0;
}

time_t
queue_next(void)
{
	if (job.active || rcount > 0 || next_scan == 0)
		return now;
	/* a group commit that waits wakes the loop by queue_wait_ms (loop.c) */
	if ((ncommit > 0 || nmarks > 0) && queue_wait_ms() < 0)
		return now;
	return next_scan;
}

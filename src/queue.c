/*
 * queue.c: the spool, the group commit, and local delivery.
 *
 * A queue file, spool/queue/QID, holds:
 *	KOTAK1 QID\n  T <arrival unix time>\n  F <sender>\n
 *	R <st> <user> <original recipient>\n ...   (st '-' pending, 'D' done)
 *	\n  <message, LF line ends>  KOTAK-END <20-digit message length>\n
 * It is written in spool/tmp/, fsynced, renamed and the directory fsynced
 * before the 250 (RFC 5321 6.1); messages that end in the same loop pass
 * share the directory fsync.  A recipient is marked done by overwriting its
 * status byte only after its mbox append was fsynced: a crash in between
 * delivers twice, never zero times.  The file's mtime is the time of its
 * next delivery attempt (as Postfix does), so deferrals cost no memory.
 * The done marks and the final unlink are not fsynced (flash wear): after
 * a power cut in the following seconds a message may be delivered twice.
 */
#include "kotak.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <unistd.h>

#define TRL_FMT		"KOTAK-END %020lld\n"
#define TRL_LEN		31
#define SLICE		(256 * 1024)	/* bytes copied per loop pass */
#define RING		64		/* queue ids waiting for a delivery attempt */
#define SCAN_EVERY	60		/* seconds between queue directory scans */
#define MIN_FREE	(64 * 1024)	/* spool space kept free beyond a message */

static char qdir[PATH_MAX_K + 16], tdir[PATH_MAX_K + 16];
static unsigned qcounter;

static struct conn *commit[CONFIG_MAX_CONNS];
static int ncommit;

static char ring[RING][QID_LEN + 1];
static int rhead, rcount;
static time_t next_scan;	/* monotonic; 0 = scan now */
static int kicked;

static struct job {
	int	 active, fd, deferred, remote, header_done, qstate;
	char	 qid[QID_LEN + 1];
	char	 sender[ADDR_MAX];
	char	 user[USER_MAX];
	time_t	 arrival;
	off_t	 body_off, body_len, copied, mb_old;
	off_t	 roff;		/* offset of the next envelope line to look at */
	struct mbox_lock mb;
} job = { .fd = -1 };

/* ---- spool files ---- */

int
queue_tx_open(char *qid, char *path, size_t n)
{
	int fd, tries;

	for (tries = 0; tries < 8; tries++) {
		snprintf(qid, QID_LEN + 1, "%08llx%08x", (long long)time(NULL) & 0xffffffffLL, ++qcounter);
		snprintf(path, n, "%s/%s", tdir, qid);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
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
static int
env_line(int fd, off_t off, char *b, size_t n)
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
	if ((n = env_line(fd, off, l, sizeof(l))) <= 0 || strncmp(l, "KOTAK1 ", 7) || strcmp(l + 7, qid))
		return -1;
	for (off += n; (n = env_line(fd, off, l, sizeof(l))) > 0; off += n) {
		if (l[0] == '\0') {
			off += n;
			break;
		}
		if (l[0] == 'T' && l[1] == ' ')
			j->arrival = (time_t)strtoll(l + 2, NULL, 10);
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

/* ---- group commit ---- */

void
queue_commit_add(struct conn *c)
{
	commit[ncommit++] = c;
	c->flags |= CF_PAUSE;
}

/* Drop a session from the commit list (it went away before its 250). */
void
queue_commit_cancel(struct conn *c)
{
	int i;

	for (i = 0; i < ncommit; i++)
		if (commit[i] == c)
			commit[i] = NULL;
}

static void
ring_add(const char *qid)
{
	if (rcount == RING) {
		next_scan = 0;	/* full: the directory scan will find it */
		return;
	}
	strlcpy_k(ring[(rhead + rcount++) % RING], qid, QID_LEN + 1);
}

void
queue_commit_run(void)
{
	struct conn *batch[CONFIG_MAX_CONNS];
	char dst[PATH_MAX_K + 40];
	int i, n = ncommit, err[CONFIG_MAX_CONNS], dirfail = 0;

	if (n == 0)
		return;
	/* replies below may run pipelined commands that end another message:
	 * those join a fresh list for the next pass */
	memcpy(batch, commit, n * sizeof(batch[0]));
	ncommit = 0;
	for (i = 0; i < n; i++) {
		struct smtp_sess *s;

		err[i] = 0;
		if (batch[i] == NULL)
			continue;
		s = &batch[i]->u.smtp;
		snprintf(dst, sizeof(dst), "%s/%s", qdir, s->qid);
		if (fsync(s->fd) < 0 || close(s->fd) < 0 || rename(s->tmp, dst) < 0)
			err[i] = errno ? errno : EIO;
		s->fd = -1;
	}
	if (fsync_dir(qdir) < 0)
		dirfail = errno;
	for (i = 0; i < n; i++) {
		struct smtp_sess *s;

		if (batch[i] == NULL)
			continue;
		s = &batch[i]->u.smtp;
		if (!err[i] && dirfail)
			err[i] = dirfail;
		if (err[i]) {
			snprintf(dst, sizeof(dst), "%s/%s", qdir, s->qid);
			unlink(dst);
			unlink(s->tmp);
		} else {
			ring_add(s->qid);
		}
		smtp_in_committed(batch[i], !err[i], err[i]);
	}
	for (i = 0; i < n; i++)
		if (batch[i] != NULL)
			conn_process(batch[i]);
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
	if (dir_private(cfg.data_dir) < 0 || dir_private(qdir) < 0 || dir_private(tdir) < 0 ||
	    dir_private(p) < 0) {
		log_warn("spool %s", p);
		return -1;
	}
	snprintf(p, sizeof(p), "%s/mail", cfg.data_dir);
	if (dir_private(p) < 0) {
		log_warn("%s", p);
		return -1;
	}
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
	next_scan = 0;
	kicked = 1;	/* a restart retries everything at once */
	return 0;
}

/* ---- local delivery: one recipient at a time, one slice per pass ---- */

static void
job_finish(void)
{
	char p[PATH_MAX_K + 40];
	struct timeval tv[2];
	time_t age, delay;

	if (job.mb.fd >= 0)
		mbox_unlock(&job.mb);
	snprintf(p, sizeof(p), "%s/%s", qdir, job.qid);
	if (job.deferred || job.remote) {
		/* back off with the message's age: 10 s, growing to 5 min;
		 * remote recipients wait for the relay (not built yet) */
		age = time(NULL) - job.arrival;
		delay = age < 10 ? 10 : age > 300 ? 300 : age;
		if (!job.deferred)
			delay = 3600;
		tv[0].tv_sec = tv[1].tv_sec = time(NULL) + delay;
		tv[0].tv_usec = tv[1].tv_usec = 0;
		futimes(job.fd, tv);
		log_info("%s: %s, next try in %llds", job.qid,
		    job.deferred ? "deferred" : "remote recipients wait for the relay", (long long)delay);
	} else {
		unlink(p);
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
	job.mb.fd = -1;
	if ((job.fd = open(p, O_RDWR | O_CLOEXEC)) < 0)
		return -1;	/* already done and gone */
	if (fstat(job.fd, &st) < 0 || (!kicked && st.st_mtime > time(NULL)) ||
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
mark_done(const char *user)
{
	char l[ADDR_MAX + USER_MAX + 16];
	off_t off = 0;
	int n;
	size_t ul = strlen(user);

	while ((n = env_line(job.fd, off, l, sizeof(l))) > 0 && l[0]) {
		if (l[0] == 'R' && l[2] == '-' && !strncmp(l + 4, user, ul) && l[4 + ul] == ' ')
			pwrite(job.fd, "D", 1, off + 2);
		off += n;
	}
}

/* Next pending recipient at or after job.roff not yet handled; 0 if none. */
static int
next_rcpt(void)
{
	char l[ADDR_MAX + USER_MAX + 16], *sp;
	int n;

	while ((n = env_line(job.fd, job.roff, l, sizeof(l))) > 0 && l[0]) {
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
		strlcpy_k(job.user, l + 4, sizeof(job.user));
		return 1;
	}
	return 0;
}

static void
deliver_fail(const char *why, int e)
{
	if (job.mb.fd >= 0 && job.header_done) {
		/* leave the mbox exactly as it was */
		if (ftruncate(job.mb.fd, job.mb_old) < 0)
			log_warn("%s: mbox %s: truncate back to %lld", job.qid, job.mb.path, (long long)job.mb_old);
	}
	errno = e;
	log_warn("%s: to=%s status=deferred (%s)", job.qid, job.user, why);
	mbox_unlock(&job.mb);
	job.deferred = 1;
	job.user[0] = '\0';
}

static int
write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n) {
		w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w, n -= w;
	}
	return 0;
}

/* One slice of work on the current recipient. */
static void
deliver_step(void)
{
	static char in[16384], out[2 * 16384 + CONFIG_DATA_LINE_MAX + 8];
	struct stat st;
	ssize_t r;
	size_t o;
	off_t budget = SLICE;
	int lk;

	if (job.mb.fd < 0) {
		if (!job.user[0] && !next_rcpt()) {
			job_finish();
			return;
		}
		lk = mbox_lock_open(&job.mb, job.user);
		if (lk != 0) {
			if (lk > 0)
				log_info("%s: to=%s status=deferred (mailbox locked)", job.qid, job.user);
			else
				log_warn("%s: to=%s status=deferred (open mailbox)", job.qid, job.user);
			job.deferred = 1;
			job.user[0] = '\0';
			return;
		}
		if (fstat(job.mb.fd, &st) < 0) {
			deliver_fail("stat", errno);
			return;
		}
		job.mb_old = st.st_size;
		job.copied = 0;
		job.qstate = 0;
		job.header_done = 1;
		o = mbox_from_line(out, sizeof(out), job.sender, job.arrival);
		o += snprintf(out + o, sizeof(out) - o, "Return-Path: <%s>\n", job.sender);
		if (write_all(job.mb.fd, out, o) < 0) {
			deliver_fail("write", errno);
			return;
		}
	}
	while (job.copied < job.body_len && budget > 0) {
		size_t want = sizeof(in);
		if ((off_t)want > job.body_len - job.copied)
			want = job.body_len - job.copied;
		r = pread(job.fd, in, want, job.body_off + job.copied);
		if (r <= 0) {
			deliver_fail("read spool", r < 0 ? errno : EIO);
			return;
		}
		o = mbox_quote(in, r, out, &job.qstate);
		if (write_all(job.mb.fd, out, o) < 0) {
			deliver_fail("write", errno);
			return;
		}
		job.copied += r;
		budget -= r;
	}
	if (job.copied < job.body_len)
		return;	/* next pass */
	o = mbox_quote("", 0, out, &job.qstate);	/* nothing held: body ends in LF */
	out[o++] = '\n';	/* the blank line that ends an mbox message */
	if (write_all(job.mb.fd, out, o) < 0 || fsync(job.mb.fd) < 0) {
		deliver_fail("write", errno);
		return;
	}
	mark_done(job.user);
	log_info("%s: to=%s status=delivered mbox=%s size=%lld", job.qid, job.user,
	    job.mb.path, (long long)job.body_len);
	mbox_unlock(&job.mb);
	job.header_done = 0;
	job.user[0] = '\0';
}

static void
scan(void)
{
	struct dirent *de;
	struct stat st;
	char p[PATH_MAX_K + 40];
	time_t t = time(NULL);
	DIR *d = opendir(qdir);

	next_scan = now + SCAN_EVERY;
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL && rcount < RING) {
		if (strlen(de->d_name) != QID_LEN)
			continue;
		snprintf(p, sizeof(p), "%s/%s", qdir, de->d_name);
		if (stat(p, &st) == 0 && (kicked || st.st_mtime <= t))
			ring_add(de->d_name);
	}
	if (de != NULL)
		next_scan = now + 1;	/* the ring filled up: come back soon */
	closedir(d);
}

void
queue_run(void)
{
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
		if (rcount == 0 && !job.active)
			kicked = 0;
	}
	if (job.active)
		deliver_step();
}

void
queue_kick(void)
{
	kicked = 1;
	next_scan = 0;
}

time_t
queue_next(void)
{
	if (job.active || rcount > 0 || next_scan == 0 || ncommit > 0)
		return now;
	return next_scan;
}

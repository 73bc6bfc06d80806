/* mailbox: index build, incremental open, UID keeping after foreign
 * rewrites, UIDVALIDITY, expunge, and kill -9 at every slice of an expunge. */
#include "kotak.h"
#include "t.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[] = "/tmp/kotak-unit-mailboxXXXXXX";
static char mbp[512], idxp[512];

static void
setup(void)
{
	char p[600];

	static int made;

	if (!made++)
		CHECK(mkdtemp(dir) != NULL);
	strcpy(cfg.data_dir, dir);
	snprintf(p, sizeof(p), "rm -rf %s/mail; mkdir -p %s/mail/u", dir, dir);
	CHECK(system(p) == 0);
	snprintf(mbp, sizeof(mbp), "%s/mail/u/INBOX", dir);
	snprintf(idxp, sizeof(idxp), "%s/mail/u/.INBOX.idx", dir);
}

static void
put(const char *data, size_t n, int append)
{
	int fd = open(mbp, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0600);

	CHECK(fd >= 0 && write(fd, data, n) == (ssize_t)n);
	close(fd);
}

static int
sync_all(struct mailbox *mb)
{
	int r;

	mailbox_open(mb, "u", "INBOX");
	while ((r = mailbox_sync(mb)) == MB_MORE)
		;
	return r;
}

/* The content of message i (From_ line and separator excluded). */
static size_t
content(struct mailbox *mb, uint32_t i, char *out, size_t max)
{
	uint64_t s, e, o = 0;
	long r = 1;

	if (mailbox_locate(mb, i, &s, &e) != 0 || e - s > max)
		return (size_t)-1;
	while (o < e - s && (r = mailbox_read(mb, i, out + o, e - s - o, s + o)) > 0)
		o += r;	/* up to 32 KiB a call */
	return r > 0 || o == e - s ? o : (size_t)-1;
}

static const char M1[] = "From a@x Thu Nov 26 12:00:00 2026\nSubject: one\n\nline\n>From quoted\n>>From two\n"
    "From inside\n.dot\n\n";
static const char M2[] = "From b@x Thu Nov 26 12:00:01 2026\nSubject: two\r\n\r\nbody\n\n";
static const char M3[] = "From c@x Thu Nov 26 12:00:02 2026\nSubject: three\n\nno newline at end";
static const char M4[] = "\n\nFrom d@x Thu Nov 26 12:00:03 2026\nSubject: four\n\nx\n\n";

static void
build(void)
{
	struct mailbox mb;
	char b[256];
	size_t n;

	setup();
	put(M1, sizeof(M1) - 1, 0);
	put(M2, sizeof(M2) - 1, 1);
	put(M3, sizeof(M3) - 1, 1);
	CHECK_INT(sync_all(&mb), 0);
	CHECK_INT(mb.n, 3);
	/* octets as POP3 sends them: CRLF, one '>' less on ^>+From */
	CHECK_INT(mb.rec[0].size, 12 + 0 + 4 + 11 + 9 + 11 + 4 + 7 * 2);
	CHECK_INT(mb.rec[1].size, 12 + 0 + 4 + 3 * 2);
	CHECK_INT(mb.rec[2].size, 14 + 0 + 17 + 3 * 2);
	CHECK_INT(mb.rec[0].uid, 1);
	CHECK_INT(mb.rec[2].uid, 3);
	CHECK(mb.h.uidvalidity != 0);
	CHECK_INT(mb.h.clean, 0);
	n = content(&mb, 0, b, sizeof(b));
	CHECK(n == sizeof(M1) - 1 - 34 - 1 && !memcmp(b, M1 + 34, n));
	n = content(&mb, 2, b, sizeof(b));
	CHECK(n == sizeof(M3) - 1 - 34 && !memcmp(b, M3 + 34, n));
	CHECK(access(idxp, F_OK) == 0);
	mailbox_close(&mb);
}

static void
incremental(void)
{
	struct mailbox mb;
	struct stat a, b;
	uint32_t v;

	CHECK_INT(sync_all(&mb), 0);
	v = mb.h.uidvalidity;
	mailbox_close(&mb);
	/* nothing changed: the index is not even written */
	CHECK(stat(idxp, &a) == 0);
	usleep(20000);
	CHECK_INT(sync_all(&mb), 0);
	mailbox_close(&mb);
	CHECK(stat(idxp, &b) == 0);
	CHECK(a.st_mtim.tv_nsec == b.st_mtim.tv_nsec && a.st_size == b.st_size);
	/* another program appends (the last message had no final newline) */
	put(M4, sizeof(M4) - 1, 1);
	CHECK_INT(sync_all(&mb), 0);
	CHECK_INT(mb.n, 4);
	CHECK_INT(mb.h.uidvalidity, v);
	CHECK_INT(mb.rec[2].uid, 3);
	CHECK_INT(mb.rec[2].size, 14 + 0 + 17 + 3 * 2);
	CHECK_INT(mb.rec[3].uid, 4);
	CHECK_INT(mb.rec[3].size, 13 + 0 + 1 + 3 * 2);
	CHECK_INT(mb.h.clean, 1);
	mailbox_close(&mb);
}

static void
foreign_rewrite(void)
{
	struct mailbox mb;
	char b[1024], t[600];
	size_t l1 = sizeof(M1) - 1, l2 = sizeof(M2) - 1;
	int fd;
	ssize_t n;
	uint32_t v;

	CHECK_INT(sync_all(&mb), 0);
	v = mb.h.uidvalidity;
	mailbox_close(&mb);
	/* Python's mailbox.flush() way: message 2 removed, temp + rename */
	fd = open(mbp, O_RDONLY);
	n = read(fd, b, sizeof(b));
	close(fd);
	snprintf(t, sizeof(t), "%s.new", mbp);
	fd = open(t, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(write(fd, b, l1) == (ssize_t)l1 && write(fd, b + l1 + l2, n - l1 - l2) == n - (ssize_t)(l1 + l2));
	close(fd);
	CHECK(rename(t, mbp) == 0);
	CHECK_INT(sync_all(&mb), 0);
	CHECK_INT(mb.n, 3);
	CHECK_INT(mb.h.uidvalidity, v);
	CHECK_INT(mb.rec[0].uid, 1);
	CHECK_INT(mb.rec[1].uid, 3);
	CHECK_INT(mb.rec[2].uid, 4);
	mailbox_close(&mb);
	/* UIDs are never reused */
	put(M2, sizeof(M2) - 1, 1);
	CHECK_INT(sync_all(&mb), 0);
	CHECK_INT(mb.n, 4);
	CHECK_INT(mb.rec[3].uid, 5);
	mailbox_close(&mb);
	/* a message inserted before known ones: UIDs cannot ascend, new UIDVALIDITY */
	put(M2, sizeof(M2) - 1, 0);
	put(b, n, 1);
	CHECK_INT(sync_all(&mb), 0);
	CHECK_INT(mb.n, 5);
	CHECK(mb.h.uidvalidity != v);
	CHECK_INT(mb.rec[0].uid, 1);
	CHECK_INT(mb.rec[4].uid, 5);
	mailbox_close(&mb);
	/* a broken index is rebuilt */
	fd = open(idxp, O_WRONLY);
	CHECK(write(fd, "garbage", 7) == 7);
	close(fd);
	CHECK_INT(sync_all(&mb), 0);
	CHECK_INT(mb.n, 5);
	mailbox_close(&mb);
}

/* ---- a bigger mailbox for expunge ---- */

#define NM	40
static char *text[NM];
static size_t tlen[NM];

static void
gen(size_t each)
{
	int i;
	size_t o;

	setup();
	for (i = 0; i < NM; i++) {
		free(text[i]);
		text[i] = malloc(each + 200);
		o = sprintf(text[i], "From s%d@example.org Thu Nov 26 12:00:%02d 2026\nSubject: m%d\n\n", i, i, i);
		while (o < each)
			o += sprintf(text[i] + o, "%s line of m%d, %zu\n", o % 7 ? "a" : ">From", i, o);
		o += sprintf(text[i] + o, "\n");
		tlen[i] = o;
		put(text[i], o, i > 0);
	}
}

/* Every message of keep[] exactly once, intact, and each of the others
 * either all there or all gone; returns how many messages the mbox has. */
static int
verify(const int *del)
{
	struct mailbox mb;
	static char b[300000];
	int i, j, seen[NM], gone = -1, ok = 1;
	size_t n;

	memset(seen, 0, sizeof(seen));
	CHECK_INT(sync_all(&mb), 0);
	for (j = 0; j < (int)mb.n; j++) {
		n = content(&mb, j, b, sizeof(b));
		b[n < sizeof(b) ? n : 0] = '\0';
		if (sscanf(b, "Subject: m%d", &i) != 1 || i < 0 || i >= NM) {
			printf("    message %d: no subject\n", j);
			ok = 0;
			continue;
		}
		seen[i]++;
		if (n != tlen[i] - (strchr(text[i], '\n') + 1 - text[i]) - 1 ||
		    memcmp(b, strchr(text[i], '\n') + 1, n)) {
			printf("    message %d (m%d): damaged\n", j, i);
			ok = 0;
		}
	}
	for (i = 0; i < NM; i++) {
		if (!del[i] && seen[i] != 1)
			ok = 0;
		if (del[i]) {
			if (gone < 0)
				gone = seen[i];
			if (seen[i] != gone)
				ok = 0;
		}
	}
	CHECK(ok);
	n = mb.n;
	mailbox_close(&mb);
	return (int)n;
}

static void
expunge_one(const int *del)
{
	struct mailbox mb;
	int i, r, kept = 0;
	uint32_t uid[NM], v;

	CHECK_INT(sync_all(&mb), 0);
	v = mb.h.uidvalidity;
	for (i = 0; i < NM; i++) {
		uid[i] = mb.rec[i].uid;
		if (del[i])
			mb.rec[i].sflags |= MS_DEL;
	}
	while ((r = mailbox_expunge(&mb)) == MB_MORE)
		;
	CHECK_INT(r, 0);
	mailbox_close(&mb);
	CHECK(access(idxp, F_OK) == 0);
	/* the index written by the expunge is current: same UIDs, no rescan */
	CHECK_INT(sync_all(&mb), 0);
	CHECK_INT(mb.h.uidvalidity, v);
	for (i = 0; i < NM; i++)
		if (!del[i]) {
			CHECK_INT(mb.rec[kept].uid, uid[i]);
			kept++;
		}
	CHECK_INT(mb.n, kept);
	mailbox_close(&mb);
	CHECK_INT(verify(del), kept);
}

static void
expunge(void)
{
	int del[NM] = { 0 }, i;

	gen(3000);
	del[0] = del[7] = del[8] = del[20] = del[NM - 1] = 1;
	expunge_one(del);
	/* everything after the first deleted one: a plain cut, no journal */
	gen(3000);
	memset(del, 0, sizeof(del));
	for (i = 25; i < NM; i++)
		del[i] = 1;
	expunge_one(del);
	/* all */
	gen(500);
	for (i = 0; i < NM; i++)
		del[i] = 1;
	expunge_one(del);
}

/* kill -9 after k slices of an expunge, for every k; then recover. */
static void
expunge_crash(void)
{
	struct mailbox mb;
	int del[NM] = { 0 }, k, r, st, n, calls = 0;
	pid_t pid;
	char p[600];

	del[0] = del[15] = 1;
	for (k = 1; k < 40; k++) {
		gen(100000);	/* 4 MB: several 1 MB slices each way */
		if ((pid = fork()) == 0) {
			int c = 0;
			if (sync_all(&mb) != 0)
				_exit(1);
			mb.rec[0].sflags |= MS_DEL;
			mb.rec[15].sflags |= MS_DEL;
			while ((r = mailbox_expunge(&mb)) == MB_MORE)
				if (++c == k)
					raise(SIGKILL);
			_exit(r == 0 ? 3 : 2);
		}
		waitpid(pid, &st, 0);
		if (WIFEXITED(st)) {
			CHECK_INT(WEXITSTATUS(st), 3);
			calls = k;
			break;
		}
		snprintf(p, sizeof(p), "%s/mail/u/.INBOX.exp", dir);
		n = verify(del);	/* recovers first */
		CHECK(n == NM || n == NM - 2);
		CHECK(access(p, F_OK) != 0);
	}
	CHECK(calls > 6);	/* the crash points covered journal, cut and append */
}

/* A reader waits while another program holds the write lock. */
static void
locked(void)
{
	struct mailbox mb;
	int fd, p[2];
	pid_t pid;
	char c;

	gen(500);
	CHECK(pipe(p) == 0);
	if ((pid = fork()) == 0) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		fd = open(mbp, O_RDWR);
		fcntl(fd, F_SETLK, &fl);
		CHECK(write(p[1], "x", 1) == 1);
		sleep(2);
		_exit(0);
	}
	CHECK(read(p[0], &c, 1) == 1);
	mailbox_open(&mb, "u", "INBOX");
	CHECK_INT(mailbox_sync(&mb), MB_BUSY);
	mailbox_close(&mb);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	CHECK_INT(sync_all(&mb), 0);
	CHECK_INT(mb.n, NM);
	mailbox_close(&mb);
	close(p[0]);
	close(p[1]);
}

static void
cleanup(void)
{
	char p[600];

	snprintf(p, sizeof(p), "rm -rf %s", dir);
	CHECK(system(p) == 0);
}

int
main(int argc, char **argv)
{
	static const struct t_case tc[] = { T(build), T(incremental), T(foreign_rewrite), T(expunge),
	    T(expunge_crash), T(locked), T(cleanup), { 0, 0 } };
	return t_main(tc, argc, argv);
}

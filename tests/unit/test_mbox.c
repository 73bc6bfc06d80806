/* mbox: mboxrd quoting (streaming), From_ line, locking and crash recovery. */
#include "kotak.h"
#include "t.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char out[2 * 4096 + CONFIG_DATA_LINE_MAX + 8];

static void
quote(void)
{
	const char *in = "From me\n>From you\nFrom\n>>From x\nFromage\n>>>Fro\nx From y\nFrom ";
	const char *want = ">From me\n>>From you\nFrom\n>>>From x\nFromage\n>>>Fro\nx From y\n>From ";
	char acc[256];
	size_t step, i, o;
	int st;

	for (step = 1; step <= strlen(in); step++) {
		st = 0;
		o = 0;
		for (i = 0; i < strlen(in); i += step) {
			size_t k = strlen(in) - i < step ? strlen(in) - i : step;
			o += mbox_quote(in + i, k, acc + o, &st);
		}
		o += mbox_quote("", 0, acc + o, &st);
		acc[o] = '\0';
		if (strcmp(acc, want)) {
			printf("    step %zu: %s\n", step, acc);
			t_fail = 1;
		}
	}
	/* a held-back prefix is released at a line end */
	st = 0;
	o = mbox_quote(">>Fr\n", 5, out, &st);
	out[o] = '\0';
	CHECK_STR(out, ">>Fr\n");
}

static void
from_line(void)
{
	char l[300];

	mbox_from_line(l, sizeof(l), "", 0);
	CHECK_STR(l, "From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n");
	mbox_from_line(l, sizeof(l), "\"a b\"@x", 86400 * 365);
	CHECK_STR(l, "From \"a_b\"@x Fri Jan  1 00:00:00 1971\n");
}

static char dir[] = "/tmp/kotak-unit-mboxXXXXXX";

static void
locking(void)
{
	struct mbox_lock m, m2;
	char p[400], lk[400];
	int fd;

	CHECK(mkdtemp(dir) != NULL);
	strcpy(cfg.data_dir, dir);
	snprintf(p, sizeof(p), "%s/mail", dir);
	mkdir(p, 0700);
	CHECK_INT(mbox_lock_open(&m, "u", "INBOX", LK_APPEND, 1), 0);
	strcpy(lk, m.lock);
	CHECK(access(lk, F_OK) == 0);
	CHECK_INT(mbox_lock_open(&m2, "u", "INBOX", LK_APPEND, 1), 1);	/* our own dotlock: busy */
	mbox_unlock(&m);
	CHECK(access(lk, F_OK) != 0);
	/* a foreign fresh dotlock means busy */
	fd = open(lk, O_CREAT | O_WRONLY, 0600);
	close(fd);
	CHECK_INT(mbox_lock_open(&m2, "u", "INBOX", LK_APPEND, 1), 1);
	unlink(lk);
	/* so does a foreign fcntl lock (another MDA that locks only that way) */
	fd = open(m.path, O_RDWR);
	if (fork() == 0) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		fcntl(fd, F_SETLK, &fl);
		sleep(2);
		_exit(0);
	}
	usleep(300000);
	CHECK_INT(mbox_lock_open(&m2, "u", "INBOX", LK_APPEND, 1), 1);
	CHECK(access(lk, F_OK) != 0);	/* the dotlock was released again */
	close(fd);
	wait(NULL);
}

static void
crash_recovery(void)
{
	struct mbox_lock m;
	char lockp[400], mb[400], s[64];
	pid_t pid;
	struct stat st;
	int fd;

	snprintf(mb, sizeof(mb), "%s/mail/u/INBOX", dir);
	snprintf(lockp, sizeof(lockp), "%s.lock", mb);
	fd = open(mb, O_WRONLY | O_TRUNC);
	CHECK(write(fd, "From a x\n\nok\n\nFrom b y\npartial", 31) == 31);
	close(fd);
	/* a dead kotak's dotlock says the mbox was 14 bytes before its append */
	pid = fork();
	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	fd = open(lockp, O_CREAT | O_WRONLY, 0600);
	snprintf(s, sizeof(s), "kotak %d 14\n", (int)pid);
	CHECK(write(fd, s, strlen(s)) > 0);
	close(fd);
	CHECK_INT(mbox_lock_open(&m, "u", "INBOX", LK_APPEND, 1), 0);
	CHECK(fstat(m.fd, &st) == 0);
	CHECK_INT(st.st_size, 14);
	mbox_unlock(&m);
	/* ours (this process holds it) is left alone */
	fd = open(lockp, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	snprintf(s, sizeof(s), "kotak %d 0\n", (int)getpid());
	CHECK(write(fd, s, strlen(s)) > 0);
	close(fd);
	CHECK_INT(mbox_lock_open(&m, "u", "INBOX", LK_APPEND, 1), 1);
	CHECK(stat(mb, &st) == 0 && st.st_size == 14);
	/* another live process's is a dead kotak's whose PID was reused
	 * (only the daemon locks mailboxes): recovered */
	fd = open(lockp, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	snprintf(s, sizeof(s), "kotak %d 9\n", (int)getppid());
	CHECK(write(fd, s, strlen(s)) > 0);
	close(fd);
	CHECK_INT(mbox_lock_open(&m, "u", "INBOX", LK_APPEND, 1), 0);
	CHECK(fstat(m.fd, &st) == 0);
	CHECK_INT(st.st_size, 9);
	mbox_unlock(&m);
	unlink(lockp);
	snprintf(s, sizeof(s), "rm -rf %s", dir);
	CHECK(system(s) == 0);
}

/* A dead kotak's dotlock lists its appends: those whose queue file is gone
 * (all recipients done) stay, the mbox is cut at the first one still due. */
static void
recovery_keeps_marked_appends(void)
{
	struct mbox_lock m;
	char d[] = "/tmp/kotak-unit-mbox2XXXXXX", p[400], s[200];
	struct stat st;
	pid_t pid;
	int fd;

	CHECK(mkdtemp(d) != NULL);
	strcpy(cfg.data_dir, d);
	snprintf(p, sizeof(p), "%s/mail/u", d);
	CHECK(mkdir_p(p, 0700) == 0);
	snprintf(p, sizeof(p), "%s/spool/queue", d);
	CHECK(mkdir_p(p, 0700) == 0);
	CHECK(queue_init() == 0);
	/* the second append's queue file still has u pending */
	snprintf(p, sizeof(p), "%s/spool/queue/bbbbbbbbbbbbbbbb", d);
	fd = open(p, O_CREAT | O_WRONLY, 0600);
	CHECK(write(fd, "KOTAK1 bbbbbbbbbbbbbbbb\nT 0\nF a@b\nR - u u@x\n\nx\n", 48) == 48);
	close(fd);
	snprintf(p, sizeof(p), "%s/mail/u/INBOX", d);
	fd = open(p, O_CREAT | O_WRONLY, 0600);
	CHECK(write(fd, "From a x\n\nold\n\nFrom b y\n\none\n\nFrom c z\n\ntw", 44) == 44);
	close(fd);
	pid = fork();
	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	snprintf(p, sizeof(p), "%s/mail/u/INBOX.lock", d);
	fd = open(p, O_CREAT | O_WRONLY, 0600);
	snprintf(s, sizeof(s), "kotak %d 14\naaaaaaaaaaaaaaaa 14\nbbbbbbbbbbbbbbbb 30\n", (int)pid);
	CHECK(write(fd, s, strlen(s)) > 0);
	close(fd);
	CHECK_INT(mbox_lock_open(&m, "u", "INBOX", LK_APPEND, 1), 0);
	CHECK(fstat(m.fd, &st) == 0);
	CHECK_INT(st.st_size, 30);	/* "aaa.." (gone: done) kept, "bbb.." cut */
	mbox_unlock(&m);
	snprintf(s, sizeof(s), "rm -rf %s", d);
	CHECK(system(s) == 0);
}

/* Issue 14: a dotlock is never seen without its content (a kill -9
 * between an empty O_EXCL create and its write froze the mailbox for 5
 * minutes): while another process locks and unlocks in a loop, every
 * read of the dotlock finds "kotak PID". */
static void
dotlock_never_empty(void)
{
	char d[] = "/tmp/kotak-unit-mbox3XXXXXX", p[400], b[64];
	int fd, n, empty = 0, full = 0, i;
	pid_t pid;

	CHECK(mkdtemp(d) != NULL);
	strcpy(cfg.data_dir, d);
	snprintf(p, sizeof(p), "%s/mail/u", d);
	CHECK(mkdir_p(p, 0700) == 0);
	if ((pid = fork()) == 0) {
		struct mbox_lock m;
		for (i = 0; i < 3000; i++)
			if (mbox_lock_open(&m, "u", "INBOX", LK_APPEND, 1) == 0)
				mbox_unlock(&m);
		_exit(0);
	}
	snprintf(p, sizeof(p), "%s/mail/u/INBOX.lock", d);
	while (waitpid(pid, NULL, WNOHANG) == 0) {
		if ((fd = open(p, O_RDONLY)) < 0)
			continue;
		n = read(fd, b, sizeof(b));
		close(fd);
		if (n == 0)
			empty++;
		else if (n > 6 && !memcmp(b, "kotak ", 6))
			full++;
	}
	CHECK_INT(empty, 0);
	CHECK(full > 0);
	snprintf(b, sizeof(b), "rm -rf %s", d);
	CHECK(system(b) == 0);
}

int
main(int argc, char **argv)
{
	static const struct t_case tc[] = { T(quote), T(from_line), T(locking), T(crash_recovery),
		T(recovery_keeps_marked_appends), T(dotlock_never_empty), { 0, 0 } };
	return t_main(tc, argc, argv);
}

/* mailbox and folder layer: index build, incremental open, UID keeping
 * after foreign rewrites, UIDVALIDITY, import of other programs' flags and
 * UIDs, several views on one folder (flags, expunges, new mail and their
 * sequence numbers), tombstones and compaction (kill -9 at every slice),
 * keywords, append/copy/move, folders on disk (kill -9 at every step of a
 * rename), the dotlock. */
#include "kotak.h"
#include "folder.h"
#include "mailbox.h"
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
extern void (*folder_crash_hook)(int);

static void
setup(void)
{
	char p[600];
	static int made;

	if (!made++)
		CHECK(mkdtemp(dir) != NULL);
	strcpy(cfg.data_dir, dir);
	cfg.max_message_size = 1 << 26;
	snprintf(p, sizeof(p), "rm -rf %s/mail; mkdir -p %s/mail/u", dir, dir);
	CHECK(system(p) == 0);
	snprintf(mbp, sizeof(mbp), "%s/mail/u/INBOX", dir);
	snprintf(idxp, sizeof(idxp), "%s/mail/u/.INBOX.idx", dir);
}

static void
put_at(const char *path, const char *data, size_t n, int append)
{
	int fd = open(path, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0600);

	CHECK(fd >= 0 && write(fd, data, n) == (ssize_t)n);
	close(fd);
}

static void
put(const char *data, size_t n, int append)
{
	put_at(mbp, data, n, append);
}

/* Run the folder layer's deferred work until nothing is due. */
static void
settle(void)
{
	int i, idle = 0;

	for (i = 0; i < 1000000 && idle < 2; i++) {
		now = mono_now();
		idle = loop_deferred() ? 0 : idle + 1;	/* what was set in a pass runs in the next */
	}
}

static int
vopen(struct view *v, const char *name, int mode)
{
	int r = view_open(v, NULL, "u", name, mode), k = 0;

	while (r == F_WAIT && k++ < 100000) {
		settle();
		r = view_ready(v);
	}
	return r;
}

/* The content of message msn as a client gets it (CRLF, unquoted). */
static size_t
content(struct view *v, uint32_t msn, char *out, size_t max)
{
	static char ob[8192];
	struct buf b;
	struct vmsg m;
	struct mstream s;
	uint64_t n;
	size_t o = 0;
	int r, k = 0;

	if (!view_seek_msn(v, msn, &m))
		return (size_t)-1;
	mstream_open(&s, v, &m, 0, -1, 0, UINT64_MAX, &n);
	do {
		buf_init(&b, ob, sizeof(ob));
		while ((r = mstream_send(&s, v, &b)) == F_WAIT && k++ < 1000)
			settle();
		if (o + b.len > max)
			return (size_t)-1;
		memcpy(out + o, b.p, b.len);
		o += b.len;
	} while (r == 1);
	return r == 0 && o == n ? o : (size_t)-1;
}

static void
close_all(struct view *v)
{
	view_close(v);
	settle();
}

static const char M1[] = "From a@x Thu Nov 26 12:00:00 2026\nSubject: one\n\nline\n>From quoted\n>>From two\n"
    "From inside\n.dot\n\n";
static const char M2[] = "From b@x Thu Nov 26 12:00:01 2026\nSubject: two\r\n\r\nbody\n\n";
static const char M3[] = "From c@x Thu Nov 26 12:00:02 2026\nSubject: three\n\nno newline at end";
static const char M4[] = "\n\nFrom d@x Thu Nov 26 12:00:03 2026\nSubject: four\n\nx\n\n";

static void
build(void)
{
	struct view v;
	struct vmsg m;
	struct fstatus fs;
	char b[256];
	size_t n;
	time_t t;

	setup();
	put(M1, sizeof(M1) - 1, 0);
	put(M2, sizeof(M2) - 1, 1);
	put(M3, sizeof(M3) - 1, 1);
	CHECK_INT(vopen(&v, "INBOX", VM_RW), 0);
	CHECK_INT(view_count(&v), 3);
	/* octets as clients get them: CRLF, one '>' less on ^>+From */
	CHECK(view_seek_msn(&v, 1, &m));
	CHECK_INT(m.size, 12 + 0 + 4 + 11 + 9 + 11 + 4 + 7 * 2);
	CHECK_INT(m.uid, 1);
	CHECK(m.flags & MF_RECENT);
	CHECK(view_seek_msn(&v, 3, &m));
	CHECK_INT(m.size, 14 + 0 + 17 + 3 * 2);
	CHECK_INT(m.uid, 3);
	CHECK_INT(view_date(&v, &m, &t), 0);
	CHECK_INT(t, 1795694402);	/* Thu Nov 26 12:00:02 2026 UTC */
	view_status(&v, &fs);
	CHECK(fs.uidvalidity != 0);
	CHECK_INT(fs.uidnext, 4);
	CHECK_INT(fs.recent, 3);
	CHECK_INT(fs.unseen, 3);
	CHECK_INT(fs.first_unseen, 1);
	n = content(&v, 1, b, sizeof(b));
	CHECK(n == 65 && !memcmp(b, "Subject: one\r\n\r\nline\r\nFrom quoted\r\n>From two\r\nFrom inside\r\n.dot\r\n", n));
	n = content(&v, 3, b, sizeof(b));
	CHECK(n == 37 && !memcmp(b, "Subject: three\r\n\r\nno newline at end\r\n", n));
	close_all(&v);
	CHECK(access(idxp, F_OK) == 0);
	/* \Recent went to that session: the next one sees none */
	CHECK_INT(vopen(&v, "INBOX", VM_RW), 0);
	view_status(&v, &fs);
	CHECK_INT(fs.recent, 0);
	close_all(&v);
}

static void
incremental(void)
{
	struct view v, w;
	struct vmsg m;
	struct stat a, b;
	struct fstatus fs;
	uint32_t uv, ex, rc;

	CHECK_INT(vopen(&v, "INBOX", VM_RW), 0);
	view_status(&v, &fs);
	uv = fs.uidvalidity;
	close_all(&v);
	/* nothing changed: the index is not even written */
	CHECK(stat(idxp, &a) == 0);
	usleep(20000);
	CHECK_INT(vopen(&v, "INBOX", VM_RO), 0);
	close_all(&v);
	CHECK(stat(idxp, &b) == 0);
	CHECK(a.st_mtim.tv_nsec == b.st_mtim.tv_nsec && a.st_size == b.st_size);
	/* another program appends while a view is open: found by fstat,
	 * indexed, announced */
	CHECK_INT(vopen(&v, "INBOX", VM_RW), 0);
	CHECK_INT(vopen(&w, "INBOX", VM_POP3), 0);
	put(M4, sizeof(M4) - 1, 1);
	sleep(1);	/* one look a second at most */
	now = mono_now();
	CHECK(view_changes(&v) == 0 || 1);
	settle();
	CHECK(view_changes(&v) & VC_EXISTS);
	CHECK_INT(view_next_exists(&v, &ex, &rc), 1);
	CHECK_INT(ex, 4);
	CHECK_INT(rc, 1);	/* the new one is this view's \Recent */
	CHECK_INT(view_next_exists(&v, &ex, &rc), 0);
	CHECK(view_seek_msn(&v, 4, &m));
	CHECK_INT(m.uid, 4);
	CHECK_INT(m.size, 13 + 0 + 1 + 3 * 2);
	CHECK(view_seek_msn(&v, 3, &m));
	CHECK_INT(m.size, 14 + 0 + 17 + 3 * 2);
	view_status(&v, &fs);
	CHECK_INT(fs.uidvalidity, uv);
	/* a POP3 view stays as it was at open */
	CHECK_INT(view_count(&w), 3);
	CHECK_INT(view_changes(&w), 0);
	close_all(&w);
	close_all(&v);
}

static void
foreign_rewrite(void)
{
	struct view v;
	struct vmsg m;
	struct fstatus fs;
	char b[1024], t[600];
	size_t l1 = sizeof(M1) - 1, l2 = sizeof(M2) - 1;
	int fd;
	ssize_t n;
	uint32_t uv, msn, ex, rc;

	CHECK_INT(vopen(&v, "INBOX", VM_RW), 0);
	view_status(&v, &fs);
	uv = fs.uidvalidity;
	/* Python's mailbox.flush() way, under an open view: message 2 removed, temp + rename */
	fd = open(mbp, O_RDONLY);
	n = read(fd, b, sizeof(b));
	close(fd);
	snprintf(t, sizeof(t), "%s.new", mbp);
	fd = open(t, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(write(fd, b, l1) == (ssize_t)l1 && write(fd, b + l1 + l2, n - l1 - l2) == n - (ssize_t)(l1 + l2));
	close(fd);
	CHECK(rename(t, mbp) == 0);
	sleep(1);
	now = mono_now();
	view_changes(&v);
	settle();
	/* the view is told: message 2 expunged, the others keep their UIDs */
	CHECK_INT(view_changes(&v) & VC_EXPUNGE, VC_EXPUNGE);
	CHECK_INT(view_next_expunge(&v, &msn), 1);
	CHECK_INT(msn, 2);
	CHECK_INT(view_next_expunge(&v, &msn), 0);
	CHECK_INT(view_count(&v), 3);
	CHECK(view_seek_msn(&v, 2, &m));
	CHECK_INT(m.uid, 3);
	CHECK_INT(content(&v, 2, b, sizeof(b)), 37);
	CHECK_INT(view_next_exists(&v, &ex, &rc), 0);
	close_all(&v);
	CHECK_INT(vopen(&v, "INBOX", VM_RW), 0);
	view_status(&v, &fs);
	CHECK_INT(fs.uidvalidity, uv);
	CHECK_INT(fs.messages, 3);
	CHECK(view_seek_msn(&v, 1, &m) && m.uid == 1);
	CHECK(view_seek_msn(&v, 3, &m) && m.uid == 4);
	close_all(&v);
	/* UIDs are never reused */
	put(M2, sizeof(M2) - 1, 1);
	CHECK_INT(vopen(&v, "INBOX", VM_RW), 0);
	CHECK_INT(view_count(&v), 4);
	CHECK(view_seek_msn(&v, 4, &m) && m.uid == 5);
	close_all(&v);
	/* a message inserted before known ones: UIDs cannot ascend, new UIDVALIDITY;
	 * an open view is told it is dead */
	CHECK_INT(vopen(&v, "INBOX", VM_RW), 0);
	fd = open(mbp, O_RDONLY);
	n = read(fd, b, sizeof(b));
	close(fd);
	put(M2, sizeof(M2) - 1, 0);
	put(b, n, 1);
	sleep(1);
	now = mono_now();
	view_changes(&v);
	settle();
	CHECK_INT(view_changes(&v), VC_RESET);
	close_all(&v);
	CHECK_INT(vopen(&v, "INBOX", VM_RW), 0);
	view_status(&v, &fs);
	CHECK_INT(fs.messages, 5);
	CHECK(fs.uidvalidity != uv);
	CHECK(view_seek_msn(&v, 5, &m) && m.uid == 5);
	close_all(&v);
	/* a broken index is rebuilt */
	fd = open(idxp, O_WRONLY);
	CHECK(write(fd, "garbage", 7) == 7);
	close(fd);
	CHECK_INT(vopen(&v, "INBOX", VM_RO), 0);
	CHECK_INT(view_count(&v), 5);
	close_all(&v);
}

/* Several sessions on one folder: flag changes and expunges of one seen
 * by the others, with the right sequence numbers, at the right time. */
static void
views(void)
{
	struct view a, b, p;
	struct vmsg m;
	uint32_t msn, ex, rc;
	int i;

	setup();
	put(M1, sizeof(M1) - 1, 0);
	for (i = 0; i < 4; i++)
		put(M4, sizeof(M4) - 1, 1);	/* 5 messages */
	CHECK_INT(vopen(&a, "INBOX", VM_RW), 0);
	CHECK_INT(vopen(&b, "INBOX", VM_RW), 0);
	CHECK_INT(vopen(&p, "INBOX", VM_POP3), 0);
	CHECK_INT(view_count(&a), 5);
	/* a stores \Seen on 2: b is told, a is not (it was up to date) */
	CHECK(view_seek_msn(&a, 2, &m));
	CHECK_INT(view_store(&a, &m, FS_ADD, MF_SEEN | MF_FLAGGED), 0);
	CHECK_INT(m.flags & MF_SYSTEM, MF_SEEN | MF_FLAGGED);
	CHECK_INT(view_changes(&a) & VC_FLAGS, 0);
	CHECK(view_changes(&b) & VC_FLAGS);
	CHECK_INT(view_next_flags(&b, &m), 1);
	CHECK_INT(m.msn, 2);
	CHECK_INT(m.flags & MF_SYSTEM, MF_SEEN | MF_FLAGGED);
	CHECK_INT(view_next_flags(&b, &m), 0);
	/* a expunges 2 and 4: a's report is highest first; b keeps seeing them
	 * (gone, readable) until it reports at its command end */
	CHECK(view_seek_msn(&a, 2, &m));
	CHECK_INT(view_expunge(&a, &m), 0);
	CHECK(view_seek_msn(&a, 4, &m));
	CHECK_INT(view_expunge(&a, &m), 0);
	CHECK_INT(view_sync(&a), 0);
	CHECK_INT(view_store(&a, &m, FS_ADD, MF_SEEN), -1);	/* ESTALE */
	CHECK_INT(view_count(&b), 5);
	CHECK(view_seek_msn(&b, 4, &m));
	CHECK_INT(m.gone, 1);
	CHECK_INT(view_store(&b, &m, FS_ADD, MF_SEEN), -1);
	CHECK_INT(errno, ESTALE);
	CHECK(view_seek_msn(&b, 5, &m) && m.uid == 5);
	CHECK(view_changes(&b) & VC_EXPUNGE);
	CHECK_INT(view_next_expunge(&a, &msn), 1);
	CHECK_INT(msn, 4);
	CHECK_INT(view_next_expunge(&a, &msn), 1);
	CHECK_INT(msn, 2);
	CHECK_INT(view_next_expunge(&a, &msn), 0);
	CHECK_INT(view_count(&a), 3);
	CHECK(view_seek_msn(&a, 3, &m) && m.uid == 5);
	CHECK(view_seek_uid(&a, 2, &m) && m.uid == 3 && m.msn == 2);
	/* b stores on msn 5 meanwhile: it is still msn 5 for b, msn 3 for a */
	CHECK(view_seek_msn(&b, 5, &m));
	CHECK_INT(view_store(&b, &m, FS_ADD, MF_ANSWERED), 0);
	CHECK_INT(view_next_flags(&a, &m), 1);
	CHECK_INT(m.msn, 3);
	CHECK_INT(m.uid, 5);
	CHECK_INT(view_next_flags(&a, &m), 0);
	CHECK_INT(view_next_expunge(&b, &msn), 1);
	CHECK_INT(msn, 4);
	CHECK_INT(view_next_expunge(&b, &msn), 1);
	CHECK_INT(msn, 2);
	CHECK_INT(view_next_expunge(&b, &msn), 0);
	CHECK_INT(view_count(&b), 3);
	/* POP3 still sees all 5, numbered as at login */
	CHECK_INT(view_count(&p), 5);
	CHECK(view_seek_msn(&p, 5, &m) && m.uid == 5);
	/* delivery appends: both IMAP views learn it, the POP3 one does not */
	put(M4, sizeof(M4) - 1, 1);
	folder_appended("u", "INBOX");
	settle();
	CHECK_INT(view_next_exists(&a, &ex, &rc), 1);
	CHECK_INT(ex, 4);
	CHECK_INT(view_next_exists(&b, &ex, &rc), 1);
	CHECK_INT(ex, 4);
	CHECK_INT(rc, 0);	/* \Recent went to a, which asked first */
	CHECK_INT(view_count(&p), 5);
	/* nothing compacts while the POP3 view may still read them */
	close_all(&p);
	CHECK(view_seek_msn(&a, 4, &m) && m.uid == 6);
	close_all(&a);
	close_all(&b);
	/* quiet: compacted; the mbox holds 4 messages, UIDs kept */
	CHECK_INT(vopen(&a, "INBOX", VM_RO), 0);
	CHECK_INT(view_count(&a), 4);
	CHECK(view_seek_msn(&a, 2, &m) && m.uid == 3);
	close_all(&a);
	{
		char b2[4096];
		int fd = open(mbp, O_RDONLY), n = read(fd, b2, sizeof(b2)), k = 0;
		char *s = b2;
		close(fd);
		b2[n > 0 ? n : 0] = '\0';
		while ((s = strstr(s, "\n\nFrom ")) != NULL)
			k++, s++;
		CHECK_INT(k + 1, 4);
	}
}

/* ---- a bigger mailbox for compaction ---- */

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

/* Every message not in del[] exactly once, intact, and each of the others
 * either all there or all gone; how many messages the mbox has.  Read
 * straight from the file (what mutt sees). */
static int
verify(const int *del)
{
	struct mailbox mb;
	static char b[300000];
	int i, j, r, seen[NM], gone = -1, ok = 1;
	uint64_t s, e;
	long k;

	memset(seen, 0, sizeof(seen));
	unlink(idxp);	/* the file as it is, whatever the index says */
	mailbox_open(&mb, "u", "INBOX");
	while ((r = mailbox_sync(&mb)) == MB_MORE)
		;
	CHECK_INT(r, 0);
	for (j = 0; j < (int)mb.n; j++) {
		if (mailbox_locate(&mb, j, &s, &e) != 0 || e - s >= sizeof(b)) {
			ok = 0;
			continue;
		}
		k = mailbox_read(&mb, j, b, e - s, s);
		b[k > 0 ? k : 0] = '\0';
		if (sscanf(b, "Subject: m%d", &i) != 1 || i < 0 || i >= NM) {
			printf("    message %d: no subject\n", j);
			ok = 0;
			continue;
		}
		seen[i]++;
		if ((size_t)k != tlen[i] - (strchr(text[i], '\n') + 1 - text[i]) - 1 ||
		    memcmp(b, strchr(text[i], '\n') + 1, k)) {
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
	j = mb.n;
	mailbox_close(&mb);
	return j;
}

static void
expunge_one(const int *del)
{
	struct view v;
	struct vmsg m;
	int i, kept = 0;
	uint32_t uid[NM], uv;
	struct fstatus fs;

	CHECK_INT(vopen(&v, "INBOX", VM_RW), 0);
	view_status(&v, &fs);
	uv = fs.uidvalidity;
	for (i = 0; i < NM; i++) {
		CHECK(view_seek_msn(&v, i + 1, &m));
		uid[i] = m.uid;
	}
	for (i = NM; i > 0; i--)
		if (del[i - 1] && view_seek_msn(&v, i, &m))
			CHECK_INT(view_expunge(&v, &m), 0);
	CHECK_INT(view_sync(&v), 0);
	close_all(&v);	/* quiet: compacted now */
	/* the index written by the compaction is current: same UIDs, no rescan */
	CHECK_INT(vopen(&v, "INBOX", VM_RO), 0);
	view_status(&v, &fs);
	CHECK_INT(fs.uidvalidity, uv);
	for (i = 0; i < NM; i++)
		if (!del[i]) {
			CHECK(view_seek_msn(&v, ++kept, &m));
			CHECK_INT(m.uid, uid[i]);
		}
	CHECK_INT(view_count(&v), kept);
	close_all(&v);
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

/* Tombstones wait while a session is open and moving the tail is dear;
 * a cheap tail goes at once. */
static void
tombstones_wait(void)
{
	struct view v, w;
	struct vmsg m;
	struct stat a, b;
	uint32_t msn;

	gen(100000);	/* 4 MB */
	CHECK(stat(mbp, &a) == 0);
	CHECK_INT(vopen(&v, "INBOX", VM_RW), 0);
	CHECK_INT(vopen(&w, "INBOX", VM_RW), 0);
	CHECK(view_seek_msn(&v, 3, &m));
	CHECK_INT(view_expunge(&v, &m), 0);
	CHECK_INT(view_sync(&v), 0);
	while (view_next_expunge(&v, &msn))
		;
	while (view_next_expunge(&w, &msn))
		;
	settle();
	CHECK(stat(mbp, &b) == 0);
	CHECK_INT(b.st_size, a.st_size);	/* 3.9 MB would move: it waits */
	CHECK(view_seek_msn(&v, NM - 1, &m));	/* the last message: nothing moves */
	CHECK_INT(view_expunge(&v, &m), 0);
	while (view_next_expunge(&v, &msn))
		;
	while (view_next_expunge(&w, &msn))
		;
	settle();
	CHECK(stat(mbp, &b) == 0);
	CHECK(b.st_size < a.st_size);
	close_all(&w);
	close_all(&v);
	CHECK(stat(mbp, &b) == 0);
	CHECK_INT(b.st_size, a.st_size - tlen[2] - tlen[NM - 1]);
}

/* kill -9 after k slices of a compaction, for every k; then recover. */
static void
expunge_crash(void)
{
	struct view v;
	struct vmsg m;
	int del[NM] = { 0 }, k, st, n, calls = 0;
	pid_t pid;
	char p[600];

	del[0] = del[15] = 1;
	for (k = 1; k < 40; k++) {
		gen(100000);	/* 4 MB: several 1 MB slices each way */
		if ((pid = fork()) == 0) {
			int c = 0;
			if (vopen(&v, "INBOX", VM_RW) != 0)
				_exit(1);
			view_seek_msn(&v, 16, &m);
			view_expunge(&v, &m);
			view_seek_msn(&v, 1, &m);
			view_expunge(&v, &m);
			view_sync(&v);
			view_close(&v);
			for (int idle = 0; idle < 2; ) {
				now = mono_now();
				idle = loop_deferred() ? 0 : idle + 1;
				if (++c == k)
					raise(SIGKILL);
			}
			_exit(3);
		}
		waitpid(pid, &st, 0);
		snprintf(p, sizeof(p), "%s/mail/u/.INBOX.exp", dir);
		if (WIFEXITED(st)) {
			CHECK_INT(WEXITSTATUS(st), 3);
			calls = k;
			break;
		}
		folder_recover_all();	/* as at start */
		n = verify(del);
		CHECK(n == NM || n == NM - 2);
		CHECK(access(p, F_OK) != 0);
	}
	CHECK(calls > 6);	/* the crash points covered journal, cut and append */
}

/* A reader waits while another program holds the write lock. */
static void
locked(void)
{
	struct view v;
	int fd, p[2], r, k = 0;
	pid_t pid;
	char c;

	gen(500);
	CHECK(pipe(p) == 0);
	if ((pid = fork()) == 0) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		fd = open(mbp, O_RDWR);
		fcntl(fd, F_SETLK, &fl);
		CHECK(write(p[1], "x", 1) == 1);
		sleep(3);
		_exit(0);
	}
	CHECK(read(p[0], &c, 1) == 1);
	CHECK_INT(view_open(&v, NULL, "u", "INBOX", VM_RW), F_WAIT);
	settle();
	CHECK_INT(view_ready(&v), F_WAIT);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	while ((r = view_ready(&v)) == F_WAIT && k++ < 50) {
		usleep(100000);
		settle();
	}
	CHECK_INT(r, 0);
	CHECK_INT(view_count(&v), NM);
	close_all(&v);
	close(p[0]);
	close(p[1]);
}

/* What mutt and Dovecot wrote is taken over at the first index. */
static void
import(void)
{
	static const char D[] =
	    "From a@x Thu Nov 26 12:00:00 2026\nX-IMAPbase: 1700000000 0000000012 $Forwarded work\n"
	    "Status: RO\nX-Status: AF\nX-Keywords: work\nX-UID: 5\n\nbody1\n\n"
	    "From b@x Thu Nov 26 12:00:01 2026\nStatus: O\nX-Keywords: $Forwarded  work\nX-UID: 9\n\nbody2\n\n"
	    "From c@x Thu Nov 26 12:00:02 2026\nSubject: new from procmail\n\nbody3\n\n";
	struct view v;
	struct vmsg m;
	struct fstatus fs;
	int k;

	setup();
	put(D, sizeof(D) - 1, 0);
	CHECK_INT(vopen(&v, "INBOX", VM_RW), 0);
	view_status(&v, &fs);
	CHECK_INT(fs.uidvalidity, 1700000000);
	CHECK_INT(fs.uidnext, 13);
	CHECK_INT(fs.recent, 1);	/* only the one without Status: O */
	CHECK(view_seek_msn(&v, 1, &m));
	CHECK_INT(m.uid, 5);
	k = view_keyword(&v, "work", 0);
	CHECK(k >= 0);
	CHECK_INT(m.flags & (MF_SYSTEM | MF_KWALL), MF_SEEN | MF_ANSWERED | MF_FLAGGED | MF_KW(k));
	CHECK(view_seek_msn(&v, 2, &m));
	CHECK_INT(m.uid, 9);
	CHECK_INT(m.flags & MF_SYSTEM, 0);
	CHECK_INT(m.flags >> 16, (1 << view_keyword(&v, "$Forwarded", 0)) | (1 << k));
	CHECK(view_seek_msn(&v, 3, &m));
	CHECK_INT(m.uid, 12);
	CHECK(m.flags & MF_RECENT);
	close_all(&v);
	/* X-UIDs that do not ascend: ignored, a new UIDVALIDITY */
	setup();
	put("From a@x Thu Nov 26 12:00:00 2026\nX-UID: 5\n\nx\n\nFrom b@x Thu Nov 26 12:00:01 2026\nX-UID: 3\n\ny\n", 96, 0);
	CHECK_INT(vopen(&v, "INBOX", VM_RO), 0);
	CHECK(view_seek_msn(&v, 2, &m) && m.uid == 2);
	close_all(&v);
}

static void
keywords(void)
{
	struct view v;
	struct vmsg m;
	int i, k;

	gen(500);
	CHECK_INT(vopen(&v, "INBOX", VM_RW), 0);
	CHECK_INT(view_kw_room(&v), FOLDER_KW_MAX);
	CHECK_INT(view_keyword(&v, "$Junk", 0), -1);
	k = view_keyword(&v, "$Junk", 1);
	CHECK_INT(k, 0);
	CHECK_INT(view_keyword(&v, "$junk", 0), 0);
	CHECK_INT(view_keyword(&v, "bad(name", 1), -1);
	for (i = 1; i < FOLDER_KW_MAX; i++) {
		char n[16];
		snprintf(n, sizeof(n), "kw%d", i);
		CHECK_INT(view_keyword(&v, n, 1), i);
	}
	CHECK_INT(view_keyword(&v, "onemore", 1), -1);
	CHECK_INT(errno, ENOSPC);
	CHECK(view_seek_msn(&v, 7, &m));
	CHECK_INT(view_store(&v, &m, FS_ADD, MF_KW(0) | MF_KW(15)), 0);
	close_all(&v);
	CHECK_INT(vopen(&v, "INBOX", VM_RO), 0);
	CHECK(view_seek_msn(&v, 7, &m));
	CHECK_INT(m.flags & MF_KWALL, MF_KW(0) | MF_KW(15));
	CHECK_STR(view_keyword_name(&v, 15), "kw15");
	close_all(&v);
}

static int
run_op(struct fop *o, int r)
{
	int k = 0;

	while (r == F_WAIT && k++ < 100000) {
		settle();
		r = fop_step(o);
	}
	return r;
}

static void
append_copy_move(void)
{
	static const char lit[] = "Subject: appended\r\nStatus: RO\r\nX-UID: 99\r\nFrom: x\r\n\r\nFrom here\r\n>From there\r\nend";
	char tmp[600], b[512];
	struct view v, t;
	struct fop o;
	struct vmsg m;
	struct fstatus fs;
	uint32_t set[1][2] = { { 2, 3 } };
	int fd, r;
	size_t n;

	gen(500);
	snprintf(tmp, sizeof(tmp), "%s/lit", dir);
	put_at(tmp, lit, sizeof(lit) - 1, 0);
	fd = open(tmp, O_RDONLY);
	CHECK_INT(folder_append(&o, NULL, "u", "Nope", fd, 0, sizeof(lit) - 1, 0, NULL, 0), -1);
	CHECK_INT(errno, ENOENT);
	CHECK_INT(vopen(&v, "INBOX", VM_RW), 0);
	CHECK_INT(run_op(&o, folder_append(&o, NULL, "u", "INBOX", fd, 0, sizeof(lit) - 1,
	    MF_SEEN | MF_DRAFT, "$Forwarded", 1795694402)), 0);
	close(fd);
	CHECK_INT(o.n, 1);
	CHECK_INT(o.uid0, NM + 1);
	view_status(&v, &fs);
	CHECK_INT(o.uidvalidity, fs.uidvalidity);
	CHECK(view_changes(&v) & VC_EXISTS);
	{
		uint32_t ex, rc;
		CHECK_INT(view_next_exists(&v, &ex, &rc), 1);
		CHECK_INT(ex, NM + 1);
	}
	CHECK(view_seek_uid(&v, o.uid0, &m) && m.uid == o.uid0);
	CHECK_INT(m.flags & (MF_SYSTEM | MF_KWALL), MF_SEEN | MF_DRAFT | MF_KW(view_keyword(&v, "$Forwarded", 0)));
	n = content(&v, m.msn, b, sizeof(b));
	/* stored with LF and quoted, the forged headers dropped; sent back with CRLF */
	CHECK(n == 59 && !memcmp(b, "Subject: appended\r\nFrom: x\r\n\r\nFrom here\r\n>From there\r\nend\r\n", n));
	CHECK_INT(m.size, n);
	/* copy 2:3 into a new folder, then move it back */
	CHECK_INT(folder_create("u", "Archive"), 0);
	CHECK_INT(folder_create("u", "archive"), 0);
	CHECK_INT(folder_create("u", "Archive"), -1);
	CHECK_INT(errno, EEXIST);
	CHECK(view_seek_msn(&v, 2, &m));
	CHECK_INT(view_store(&v, &m, FS_ADD, MF_FLAGGED), 0);
	r = run_op(&o, folder_copy(&o, &v, (const uint32_t (*)[2])set, 1, "Archive", 0)); if (r) printf("copy: %s\n", strerror(errno)); CHECK_INT(r, 0);
	CHECK_INT(o.n, 2);
	CHECK_INT(o.uid0, 1);
	CHECK_INT(vopen(&t, "Archive", VM_RW), 0);
	CHECK_INT(view_count(&t), 2);
	CHECK(view_seek_msn(&t, 1, &m));
	CHECK_INT(m.flags & MF_SYSTEM, MF_FLAGGED);
	n = content(&t, 1, b, sizeof(b));
	CHECK(n != (size_t)-1 && !memcmp(b, "Subject: m1\r\n", 13));
	CHECK_INT(n, m.size);
	CHECK_INT(folder_delete("u", "Archive"), -1);
	CHECK_INT(errno, EBUSY);
	set[0][0] = 1;
	set[0][1] = 2;
	CHECK_INT(run_op(&o, folder_copy(&o, &t, (const uint32_t (*)[2])set, 1, "INBOX", 1)), 0);
	CHECK_INT(o.uid0, NM + 2);
	CHECK_INT(o.n, 2);
	CHECK_INT(view_next_expunge(&t, &set[0][0]), 1);
	CHECK_INT(view_next_expunge(&t, &set[0][0]), 1);
	CHECK_INT(view_count(&t), 0);
	close_all(&t);
	close_all(&v);
	CHECK_INT(folder_delete("u", "Archive"), 0);
	CHECK_INT(vopen(&v, "INBOX", VM_RO), 0);
	CHECK_INT(view_count(&v), NM + 3);
	CHECK(view_seek_msn(&v, NM + 3, &m) && m.uid == NM + 3);
	close_all(&v);
	CHECK_INT(vopen(&v, "Archive", VM_RO), -1);
	CHECK_INT(errno, ENOENT);
}

static int nsubs;
static char subs[8][64];

static void
list_cb(void *arg, const char *name, unsigned attr)
{
	if (nsubs < 8)
		snprintf(subs[nsubs++], sizeof(subs[0]), "%s%s%s", name, attr & FA_SUBSCRIBED ? "+" : "",
		    attr & FA_NONEXISTENT ? "!" : "");
}

static int crash_step;
static void
crash_hook(int step)
{
	if (step == crash_step)
		raise(SIGKILL);
}

static void
folders(void)
{
	struct view v;
	struct vmsg m;
	char p[600];
	int i, st, k;
	pid_t pid;

	gen(500);
	CHECK(!folder_name_ok(".hidden") && !folder_name_ok("a/b") && !folder_name_ok("x.lock") &&
	    !folder_name_ok("") && !folder_name_ok("a*") && !folder_name_ok("tab\there") && folder_name_ok("Sent Items") &&
	    folder_name_ok("&AMk-t&AOk-"));
	memset(p, 'x', 200);
	p[200] = '\0';
	CHECK(!folder_name_ok(p));
	CHECK_INT(folder_create("u", "Sent"), 0);
	CHECK_INT(folder_create("u", "Drafts"), 0);
	CHECK_INT(folder_subscribe("u", "Sent", 1), 0);
	CHECK_INT(folder_subscribe("u", "Gone", 1), 0);
	CHECK_INT(folder_subscribe("u", "inbox", 1), 0);
	CHECK_INT(folder_subscribe("u", "Gone", 0), 0);
	CHECK_INT(folder_subscribe("u", "Gone", 1), 0);
	nsubs = 0;
	CHECK_INT(folder_list("u", 0, list_cb, NULL), 3);
	CHECK_STR(subs[0], "INBOX+");
	CHECK(!strcmp(subs[1], "Sent+") || !strcmp(subs[2], "Sent+"));
	CHECK(!strcmp(subs[1], "Drafts") || !strcmp(subs[2], "Drafts"));
	nsubs = 0;
	CHECK_INT(folder_list("u", 1, list_cb, NULL), 3);
	CHECK_STR(subs[0], "Sent+");
	CHECK_STR(subs[1], "INBOX+");
	CHECK_STR(subs[2], "Gone+!");
	snprintf(p, sizeof(p), "%s/mail/u/.subscriptions", dir);
	{
		char b[200];
		int fd = open(p, O_RDONLY), n = read(fd, b, sizeof(b) - 1);
		close(fd);
		b[n > 0 ? n : 0] = '\0';
		CHECK_STR(b, "V\t2\n\nSent\nINBOX\nGone\n");
	}
	/* rename keeps UIDs and flags; refused while open */
	{
		struct fop o;
		uint32_t set[1][2] = { { 1, 5 } };
		CHECK_INT(vopen(&v, "INBOX", VM_RW), 0);
		CHECK(view_seek_msn(&v, 1, &m));
		view_store(&v, &m, FS_ADD, MF_SEEN);
		CHECK_INT(run_op(&o, folder_copy(&o, &v, (const uint32_t (*)[2])set, 1, "Drafts", 0)), 0);
		close_all(&v);
	}
	CHECK_INT(vopen(&v, "Drafts", VM_RW), 0);
	CHECK_INT(folder_rename("u", "Drafts", "Old"), -1);
	CHECK_INT(errno, EBUSY);
	close_all(&v);
	CHECK_INT(folder_rename("u", "Drafts", "Sent"), -1);
	CHECK_INT(errno, EEXIST);
	CHECK_INT(folder_rename("u", "INBOX", "Other"), -1);
	/* kill -9 after each step: the folder is under one name, whole, UIDs kept */
	for (k = 0; k < 3; k++) {
		const char *a = k % 2 ? "Old" : "Drafts", *b = k % 2 ? "Drafts" : "Old";
		crash_step = k;
		if ((pid = fork()) == 0) {
			folder_crash_hook = crash_hook;
			folder_rename("u", a, b);
			_exit(0);
		}
		waitpid(pid, &st, 0);
		CHECK(WIFSIGNALED(st));
		folder_recover_all();
		CHECK_INT(vopen(&v, b, VM_RO), 0);	/* a durable intent is finished */
		CHECK_INT(view_count(&v), 5);
		CHECK(view_seek_msn(&v, 1, &m) && m.uid == 1 && (m.flags & MF_SEEN));
		close_all(&v);
		CHECK_INT(vopen(&v, a, VM_RO), -1);
		snprintf(p, sizeof(p), "%s/mail/u/.rename", dir);
		CHECK(access(p, F_OK) != 0);
	}
	CHECK_INT(folder_rename("u", "Old", "Renamed"), 0);	/* k = 2 left it at Old */
	CHECK_INT(vopen(&v, "Renamed", VM_RO), 0);
	CHECK(view_seek_msn(&v, 5, &m) && m.uid == 5);
	close_all(&v);
	for (i = 0; i < 2; i++)
		CHECK_INT(folder_delete("u", i ? "Renamed" : "Sent"), 0);
	CHECK_INT(folder_delete("u", "Sent"), -1);
	CHECK_INT(errno, ENOENT);
	CHECK_INT(folder_delete("u", "INBOX"), -1);
	nsubs = 0;
	CHECK_INT(folder_list("u", 0, list_cb, NULL), 1);
}

/* The dotlock is written whole and linked into place; one left by a dead
 * kotak, or dated before this boot (even empty), is recovered at once at
 * start. */
static void
dotlock(void)
{
	struct mbox_lock lk;
	struct timespec ts[2];
	char lp[600], b[64];
	int fd, n;

	gen(500);
	snprintf(lp, sizeof(lp), "%s.lock", mbp);
	CHECK_INT(mbox_lock_open(&lk, "u", "INBOX", LK_APPEND, 0), 0);
	fd = open(lp, O_RDONLY);
	n = read(fd, b, sizeof(b) - 1);
	close(fd);
	b[n > 0 ? n : 0] = '\0';
	CHECK(!strncmp(b, "kotak ", 6) && strchr(b, '\n'));
	mbox_unlock(&lk);
	CHECK(access(lp, F_OK) != 0);
	/* an empty one from before this boot: gone at start */
	put_at(lp, "", 0, 0);
	ts[0].tv_sec = ts[1].tv_sec = 1000000000;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	CHECK(utimensat(AT_FDCWD, lp, ts, 0) == 0);
	folder_recover_all();
	CHECK(access(lp, F_OK) != 0);
	/* a dead kotak's with an append noted: cut back at start */
	{
		struct stat st;
		long long z;
		CHECK(stat(mbp, &st) == 0);
		z = st.st_size;
		n = snprintf(b, sizeof(b), "kotak 999999 %lld\n0000000000000000 %lld d\n", z, z);
		put_at(lp, b, n, 0);
		put("From z@x Thu Nov 26 12:00:00 2026\nhalf a mess", 46, 1);
		folder_recover_all();
		CHECK(stat(mbp, &st) == 0);
		CHECK_INT(st.st_size, z);
		CHECK(access(lp, F_OK) != 0);
	}
}

/* ENOSPC in the middle of an APPEND: nothing added, the mbox exactly as
 * it was, the lock released (a tmpfs of 512 KiB, as root). */
static void
append_enospc(void)
{
	char mnt[600], cmd[700], lit[600], keep[sizeof(cfg.data_dir)];
	struct fop o;
	struct stat a, b;
	int fd, r;
	char *big;

	setup();
	if (geteuid() != 0) {
		printf("    skipped: needs root to mount a tmpfs\n");
		return;
	}
	snprintf(mnt, sizeof(mnt), "%s/small", dir);
	snprintf(cmd, sizeof(cmd), "mkdir -p %s && mount -t tmpfs -o size=512k tmpfs %s", mnt, mnt);
	if (system(cmd) != 0) {
		printf("    skipped: cannot mount a tmpfs\n");
		return;
	}
	strcpy(keep, cfg.data_dir);
	strcpy(cfg.data_dir, mnt);
	snprintf(cmd, sizeof(cmd), "mkdir -p %s/mail/u && printf 'From a@x Thu Nov 26 12:00:00 2026\\n\\nx\\n\\n' > %s/mail/u/INBOX", mnt, mnt);
	CHECK(system(cmd) == 0);
	snprintf(mbp, sizeof(mbp), "%s/mail/u/INBOX", mnt);
	CHECK(stat(mbp, &a) == 0);
	snprintf(lit, sizeof(lit), "%s/lit", dir);	/* the spooled literal: outside the full fs */
	big = malloc(700000);
	memset(big, 'y', 700000);
	for (r = 0; r < 700000; r += 100)
		big[r] = '\n';
	put_at(lit, big, 700000, 0);
	free(big);
	fd = open(lit, O_RDONLY);
	r = run_op(&o, folder_append(&o, NULL, "u", "INBOX", fd, 0, 700000, 0, NULL, 0));
	close(fd);
	CHECK_INT(r, -1);
	CHECK_INT(errno, ENOSPC);
	CHECK(stat(mbp, &b) == 0);
	CHECK_INT(b.st_size, a.st_size);
	snprintf(cmd, sizeof(cmd), "%s.lock", mbp);
	CHECK(access(cmd, F_OK) != 0);
	settle();
	snprintf(cmd, sizeof(cmd), "umount %s", mnt);
	CHECK(system(cmd) == 0);
	strcpy(cfg.data_dir, keep);
	snprintf(mbp, sizeof(mbp), "%s/mail/u/INBOX", dir);
}

/* 50 sessions on a 5,000-message folder cost one copy of the records
 * (24 bytes a message, plus a 4-byte generation) and about 100 bytes a
 * view, not 50 copies (6 MB). */
static long
rss_kb(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f && fscanf(f, "%ld %ld", &pages, &rss) != 2)
		rss = 0;
	if (f)
		fclose(f);
	return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static void
memory(void)
{
	static struct view v[50];
	char *b;
	size_t o = 0;
	long before, after;
	int i;

	setup();
	b = malloc(5000 * 120);
	for (i = 0; i < 5000; i++)
		o += sprintf(b + o, "From s@x Thu Nov 26 12:00:00 2026\nSubject: %d\n\nbody of %d\n\n", i, i);
	put(b, o, 0);
	free(b);
	CHECK_INT(vopen(&v[0], "INBOX", VM_RO), 0);	/* indexed once, and the code paths touched */
	close_all(&v[0]);
	before = rss_kb();
	for (i = 0; i < 50; i++)
		CHECK_INT(vopen(&v[i], "INBOX", i % 2 ? VM_RW : VM_RO), 0);
	after = rss_kb();
	printf("    50 views on 5,000 messages: %ld KiB (records %zu B each, view %zu B)\n", after - before,
	    sizeof(struct mb_rec), sizeof(struct view));
	CHECK(after - before < 2 * 5000 * 28 / 1024 + 64);	/* arrays grow by doubling; 50 copies: 6 MB */
	for (i = 0; i < 50; i++)
		view_close(&v[i]);
	settle();
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
	static const struct t_case tc[] = { T(build), T(incremental), T(foreign_rewrite), T(views), T(expunge),
	    T(tombstones_wait), T(expunge_crash), T(locked), T(import), T(keywords), T(append_copy_move),
	    T(folders), T(dotlock), T(memory), T(append_enospc), T(cleanup), { 0, 0 } };

	now = mono_now();
	return t_main(tc, argc, argv);
}

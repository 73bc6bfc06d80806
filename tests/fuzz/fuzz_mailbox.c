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
 * chunk 2 a program of session operations (below), the rest a replacement
 * file that another program writes over the mbox.  Control bits:
 *   1: the replacement file is written (another program rewrote the mbox)
 *   2: a garbage index (the replacement's bytes) is there before the first open
 * The session phase (folder.h) runs two IMAP views A and B and a POP3 view
 * on the folder; each program byte is op << 5 | arg: 0/1 STORE on A/B
 * (the next byte: FS_* op and flags, a keyword among them), 2/3 EXPUNGE
 * on A/B, 4/5 A/B report (expunges, flags, exists), 6 A's numbering
 * against the model, 7 a message streamed through A against the model.
 * A reference model of the views says which sequence number each message
 * has in each view, what each report must say, and what must stay
 * readable; at the end every view has been told everything, the POP3 view
 * still sees the folder as at its open, and once they close the quiet
 * folder compacts: the file is the old one without the expunged spans,
 * the kept messages keep their UIDs, flags and keywords.
 * Checks after every open: the records equal the model (offsets, sizes,
 * hashes), the content of each reads back (mailbox_locate +
 * mailbox_read) as the model's bytes, UIDs ascend below next_uid and,
 * while UIDVALIDITY stays, a UID names the same message (hash) as before;
 * an incremental open equals a full rebuild.
 * The _small build reads 128 bytes at a time and scans or moves 256 bytes
 * per call, so long lines, slices and resumed expunges are reached. */
#include "kotak.h"
#include "mailbox.h"
#include "folder.h"
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
		u->flags[i] = mb->rec[i].flags;	/* (system flags and tombstones) */
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

/* ---- the session phase ---- */

static void
settle(void)
{
	int i, idle = 0;

	for (i = 0; i < 1000000 && idle < 2; i++) {
		now = mono_now();
		idle = loop_deferred() ? 0 : idle + 1;
	}
}

struct mm {			/* the model: a message */
	uint32_t uid;
	uint8_t	 live, flags, seen[2];	/* seen: still in view A/B's numbering */
	uint16_t kw;
};
static struct mm mm[MAXMSG];
static uint32_t nmm;

/* The message at msn of view x in the model: its index, or -1. */
static long
model_msn(int x, uint32_t msn)
{
	uint32_t i, k = 0;

	for (i = 0; i < nmm; i++)
		if (mm[i].seen[x] && ++k == msn)
			return i;
	return -1;
}

static uint32_t
model_count(int x)
{
	uint32_t i, k = 0;

	for (i = 0; i < nmm; i++)
		k += mm[i].seen[x];
	return k;
}

static void
report(struct view *v, int x)
{
	struct vmsg m;
	uint32_t msn, e, r;
	long i;
	uint32_t last = UINT32_MAX;

	while (view_next_expunge(v, &msn)) {
		/* highest first, numbered as the view still sees them */
		FZ_ASSERT(msn < last);
		last = msn;
		i = model_msn(x, msn);
		FZ_ASSERT(i >= 0 && !mm[i].live);
		mm[i].seen[x] = 0;
	}
	for (i = 0; i < (long)nmm; i++)
		FZ_ASSERT(!mm[i].seen[x] || mm[i].live);
	FZ_ASSERT(view_count(v) == model_count(x));
	while (view_next_flags(v, &m)) {
		i = model_msn(x, m.msn);
		FZ_ASSERT(i >= 0 && mm[i].uid == m.uid && mm[i].live);
		FZ_ASSERT((m.flags & MF_SYSTEM) == mm[i].flags && m.flags >> 16 == mm[i].kw);
	}
	FZ_ASSERT(view_next_exists(v, &e, &r) == 0);
}

/* The numbering of view x against the model, by msn and by UID. */
static void
numbering(struct view *v, int x)
{
	struct vmsg m;
	uint32_t k = 0;
	long i;
	int r;

	for (r = view_seek_msn(v, 1, &m); r; r = view_next(v, &m)) {
		i = model_msn(x, ++k);
		FZ_ASSERT(i >= 0 && m.msn == k && m.uid == mm[i].uid && m.gone == !mm[i].live);
		if (mm[i].live)
			FZ_ASSERT((m.flags & MF_SYSTEM) == mm[i].flags && m.flags >> 16 == mm[i].kw);
		FZ_ASSERT(view_seek_uid(v, m.uid, &m) && m.msn == k);
	}
	FZ_ASSERT(k == model_count(x) && k == view_count(v));
}

/* Message msn of view v streamed: exactly its size, as the model's bytes. */
static void
stream(struct view *v, uint32_t msn, const unsigned char *f, const struct ref *r, long i)
{
	static char ob[700];
	struct vmsg m;
	struct mstream s;
	struct buf b;
	uint64_t n, got = 0;
	int rr, k = 0, burst = msn & 1;	/* as an IMAP FETCH: many sends in one callback */

	FZ_ASSERT(view_seek_msn(v, msn, &m));
	FZ_ASSERT(mstream_open(&s, v, &m, 0, -1, 0, UINT64_MAX, &n) == 0);
	FZ_ASSERT(n == m.size && m.size == r->size[i]);
	mstream_burst(burst);
	do {
		buf_init(&b, ob, sizeof(ob));
		while ((rr = mstream_send(&s, v, &b)) == F_WAIT) {
			FZ_ASSERT(++k < 100000);
			mstream_burst(0);	/* a callback ends before the loop's work */
			settle();
			mstream_burst(burst);
		}
		FZ_ASSERT(rr >= 0);
		got += b.len;
	} while (rr == 1);
	mstream_burst(0);
	FZ_ASSERT(got == n);
	(void)f;
}

static void
vopen(struct view *v, int mode)
{
	int r = view_open(v, NULL, "alice", "INBOX", mode), k = 0;

	while (r == F_WAIT) {
		FZ_ASSERT(++k < 100000);
		settle();
		r = view_ready(v);
	}
	FZ_ASSERT(r == 0);
}

static void
sessions(const uint8_t *p, size_t pn)
{
	static struct view va, vb, vp;
	static struct ref r;
	struct view *vv[2] = { &va, &vb };
	struct vmsg m;
	unsigned char *f, *g;
	size_t n, gn, i, j;
	uint32_t k, n0;
	long x;
	int kw;

	f = slurp(mbox, &n);
	ref_scan(f, n, &r);
	vopen(&va, VM_RW);
	vopen(&vb, VM_RW);
	vopen(&vp, VM_POP3);
	/* a keyword to store; none when the mbox's X-Keywords filled all 16 */
	kw = view_keyword(&va, "$Junk", 1);
	FZ_ASSERT(kw >= 0 || view_kw_room(&va) == 0);
	nmm = 0;
	for (k = 1; view_seek_msn(&va, k, &m); k++) {
		FZ_ASSERT(nmm < MAXMSG);
		mm[nmm].uid = m.uid;
		mm[nmm].live = mm[nmm].seen[0] = mm[nmm].seen[1] = 1;
		mm[nmm].flags = m.flags & MF_SYSTEM;
		mm[nmm++].kw = m.flags >> 16;
	}
	FZ_ASSERT(nmm == r.n);
	n0 = nmm;
	for (j = 0; j < pn; j++) {
		int op = p[j] >> 5, a = p[j] & 31, xv = op & 1;
		struct view *v = vv[xv];
		uint32_t c = model_count(xv);
		if (op < 4 && !c)
			continue;
		switch (op) {
		case 0:
		case 1: {
			uint8_t fb = j + 1 < pn ? p[++j] : 0;
			uint32_t fl = (fb & MF_SYSTEM) | (fb & 0x20 && kw >= 0 ? MF_KW(kw) : 0);
			int how = (fb >> 6) % 3;
			x = model_msn(xv, a % c + 1);
			FZ_ASSERT(view_seek_msn(v, a % c + 1, &m));
			if (!mm[x].live) {
				FZ_ASSERT(view_store(v, &m, how, fl) == -1);
				break;
			}
			FZ_ASSERT(view_store(v, &m, how, fl) == 0);
			if (how == FS_SET)
				mm[x].flags = fl & MF_SYSTEM, mm[x].kw = fl >> 16;
			else if (how == FS_ADD)
				mm[x].flags |= fl & MF_SYSTEM, mm[x].kw |= fl >> 16;
			else
				mm[x].flags &= ~fl, mm[x].kw &= ~(fl >> 16);
			FZ_ASSERT((m.flags & MF_SYSTEM) == mm[x].flags);
			break;
		}
		case 2:
		case 3:
			x = model_msn(xv, a % c + 1);
			FZ_ASSERT(view_seek_msn(v, a % c + 1, &m));
			FZ_ASSERT(view_expunge(v, &m) == (mm[x].live ? 0 : -1));
			mm[x].live = 0;
			break;
		case 4:
		case 5:
			report(v, xv);
			break;
		case 6:
			numbering(&va, 0);
			numbering(&vb, 1);
			break;
		case 7:
			if (model_count(0)) {
				x = model_msn(0, a % model_count(0) + 1);
				stream(&va, a % model_count(0) + 1, f, &r, x);	/* gone ones too */
			}
			break;
		}
		settle();
	}
	FZ_ASSERT(view_sync(&va) == 0);
	report(&va, 0);
	report(&vb, 1);
	numbering(&va, 0);
	numbering(&vb, 1);
	/* the POP3 view: as at its open, every message still readable */
	FZ_ASSERT(view_count(&vp) == n0);
	for (k = 1; k <= n0; k++) {
		FZ_ASSERT(view_seek_msn(&vp, k, &m) && m.uid == mm[k - 1].uid);
		stream(&vp, k, f, &r, k - 1);
	}
	view_close(&vp);
	view_close(&vb);
	view_close(&va);
	settle();	/* quiet: compacted */
	/* the file: the old one without the expunged spans */
	g = slurp(mbox, &gn);
	j = r.n ? r.off[0] : n;		/* the bytes before the first message stay */
	FZ_ASSERT(j <= gn && !memcmp(g, f, j));
	for (i = 0; i < r.n; i++) {
		if (!mm[i].live)
			continue;
		k = r.span[i] - r.off[i];
		FZ_ASSERT(j + k <= gn && !memcmp(g + j, f + r.off[i], k));
		j += k;
	}
	FZ_ASSERT(j == gn);
	free(f);
	free(g);
	/* kept messages keep UIDs, flags and keywords */
	vopen(&va, VM_RO);
	for (i = 0, k = 1; i < nmm; i++) {
		if (!mm[i].live)
			continue;
		FZ_ASSERT(view_seek_msn(&va, k++, &m));
		FZ_ASSERT(m.uid == mm[i].uid && (m.flags & MF_SYSTEM) == mm[i].flags && m.flags >> 16 == mm[i].kw);
	}
	FZ_ASSERT(view_count(&va) == k - 1);
	view_close(&va);
	settle();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mailbox mb;
	static struct uids u, v;
	struct fz_split sp;
	const uint8_t *a, *b, *m, *c;
	size_t an, bn, mn, cn, off = 0, i;
	unsigned ctl;

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

	/* 3: sessions on the shared folder */
	mailbox_close(&mb);
	sessions(m, mn);
	open_mb(&mb);
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

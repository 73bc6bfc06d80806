/*
 * folder.c: shared folders, per-session views, notifications, the flag
 * flush, compaction policy, appends and copies.  The contract and the
 * design are in folder.h; the index engine under it is mailbox.c.
 *
 * A folder is published in two steps: the engine may be adding records
 * (an incremental scan of appended mail) beyond f->n, which views never
 * look at until the scan is done.  A full reindex (another program
 * rewrote the mbox) runs on a second engine over a copy of the records,
 * so views keep working on the old ones until it is swapped in; UIDs,
 * generations and flag changes made meanwhile are carried over by UID.
 */
#include "kotak.h"
#include "mailbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUSY_TRIES	30		/* seconds a foreign lock may keep us waiting */
#define CHEAP_TAIL	(64 * 1024)	/* compact at once when no more must move */
#define DEAD_MIN	(1024 * 1024)	/* ... or when this much is dead and a quarter of the file */
#define COPY_PASS	(256 * 1024)	/* bytes an append or copy writes per pass */
#define FAIL_WAIT	60		/* seconds after a failed compaction */

enum { FS_LOAD, FS_READY, FS_SCAN, FS_REBUILD, FS_COMPACT, FS_DEAD };
enum { REP_NONE, REP_X, REP_F };
enum { VS_OPENING, VS_OPEN, VS_FAILED, VS_RESET, VS_COMMIT };

struct folder {
	struct folder *next;
	struct mailbox mb;
	struct mailbox *nb;	/* a full reindex under way (FS_REBUILD) */
	uint32_t *gen, gcap;	/* per record: the generation it last changed in */
	uint32_t n;		/* records published to views */
	uint32_t g, epoch;
	uint32_t *tomb, ntomb, tcap;	/* indices of the tombstones, ascending */
	uint32_t dlo, dhi;	/* records changed and not written yet */
	int	 refs;
	struct view *views;
	struct fop *writer;	/* the append or copy holding the lock */
	struct fop *waiting;	/* woken when the lock is free */
	struct mbox_lock lk;
	struct mbox_append ap;
	uint8_t	 st, hdirty, tries, err;
	time_t	 checked, unsynced, failed;
	uint64_t cfrom;		/* compaction: bytes from here are moving */
	struct loop_timer work, flush;
};

static struct folder *folders;
void	(*folder_crash_hook)(int step);	/* unit tests only; NULL in the daemon */

static int fwork_step(struct folder *);
static void fwork(struct loop_timer *t);
static void fflush_t(struct loop_timer *t);

/* ---- helpers ---- */

#define F_OF(t, m) ((struct folder *)((char *)(t) - offsetof(struct folder, m)))

static int
is_inbox(const char *name)
{
	return !strcasecmp(name, "INBOX");
}

int
folder_name_ok(const char *name)
{
	char p[MBOX_PATH];
	size_t n = strlen(name);
	const char *s;

	if (n == 0 || n > FOLDER_NAME_MAX || name[0] == '.' || (n >= 5 && !strcmp(name + n - 5, ".lock")))
		return 0;
	for (s = name; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f || *s == '/' || *s == '\\' ||
		    *s == '*' || *s == '%')
			return 0;
	/* every path derived from it fits: .NAME.idx.tmp is the longest */
	return mbox_path(p, sizeof(p), "x", ".", name, ".idx.tmp") == 0 &&
	    strlen(p) + USER_MAX < sizeof(p);
}

static void
wake_views(struct folder *f, struct view *except)
{
	struct view *v;

	for (v = f->views; v; v = v->next)
		if (v != except && v->c)
			loop_wake(v->c, 0);
}

static void
wake_op(struct fop *o)
{
	if (o && o->c)
		loop_wake(o->c, 0);
}

static int
gen_grow(struct folder *f, uint32_t need)
{
	uint32_t nc = f->gcap ? f->gcap : 256, *p;

	if (need <= f->gcap)
		return 0;
	while (nc < need)
		nc *= 2;
	if ((p = realloc(f->gen, nc * sizeof(*p))) == NULL)
		return -1;
	memset(p + f->gcap, 0, (nc - f->gcap) * sizeof(*p));
	f->gen = p;
	f->gcap = nc;
	f->mb.aux = p;
	return 0;
}

/* The tombstone list, from the records (after a load, a swap, a compaction). */
static int
tomb_build(struct folder *f)
{
	uint32_t i, k = 0;

	for (i = 0; i < f->n; i++)
		k += (f->mb.rec[i].flags & MF_EXPUNGED) != 0;
	if (k > f->tcap) {
		uint32_t *p = realloc(f->tomb, (k + 16) * sizeof(*p));
		if (p == NULL)
			return -1;
		f->tomb = p;
		f->tcap = k + 16;
	}
	for (i = f->ntomb = 0; i < f->n; i++)
		if (f->mb.rec[i].flags & MF_EXPUNGED)
			f->tomb[f->ntomb++] = i;
	return 0;
}

static int
tomb_add(struct folder *f, uint32_t i)
{
	uint32_t k;

	if (f->ntomb == f->tcap) {
		uint32_t *p = realloc(f->tomb, (f->tcap * 2 + 16) * sizeof(*p));
		if (p == NULL)
			return -1;
		f->tomb = p;
		f->tcap = f->tcap * 2 + 16;
	}
	for (k = f->ntomb; k > 0 && f->tomb[k - 1] > i; k--)
		f->tomb[k] = f->tomb[k - 1];
	f->tomb[k] = i;
	f->ntomb++;
	return 0;
}

static void
dirty(struct folder *f, uint32_t i)
{
	if (f->dlo >= f->dhi) {
		f->dlo = i;
		f->dhi = i + 1;
	} else {
		if (i < f->dlo)
			f->dlo = i;
		if (i + 1 > f->dhi)
			f->dhi = i + 1;
	}
	if (!f->flush.on)
		loop_timer_set(&f->flush, 0);
}

/* ---- views: what is in a view ---- */

static int
told(const struct folder *f, const struct view *v, uint32_t i)
{
	return (f->mb.rec[i].flags & MF_EXPUNGED) && f->gen[i] <= v->xgen;
}

static int
visible(const struct folder *f, const struct view *v, uint32_t i)
{
	return i < f->n && f->mb.rec[i].uid < v->uidnext && !told(f, v, i);
}

/* Sequence number of visible record i: its rank. */
static uint32_t
rank(const struct folder *f, const struct view *v, uint32_t i)
{
	uint32_t k, r = i + 1;

	for (k = 0; k < f->ntomb && f->tomb[k] < i; k++)
		r -= told(f, v, f->tomb[k]);
	return r;
}

/* First record with a UID >= uid (f->n if none). */
static uint32_t
find_uid(const struct folder *f, uint32_t uid)
{
	uint32_t lo = 0, hi = f->n, m;

	while (lo < hi) {
		m = (lo + hi) / 2;
		if (f->mb.rec[m].uid < uid)
			lo = m + 1;
		else
			hi = m;
	}
	return lo;
}

static void
fill(const struct folder *f, const struct view *v, uint32_t i, uint32_t msn, struct vmsg *m)
{
	const struct mb_rec *r = &f->mb.rec[i];

	m->i = i;
	m->epoch = f->epoch;
	m->msn = msn;
	m->uid = r->uid;
	m->size = r->size;
	m->flags = (r->flags & MF_SYSTEM) | ((uint32_t)r->kw << 16) |
	    (r->uid >= v->rlo && r->uid < v->rhi ? MF_RECENT : 0);
	m->gone = (r->flags & MF_EXPUNGED) != 0;
}

/* Find m's record again after records moved (by UID).  0, or -1 gone. */
static int
refind(struct view *v, struct vmsg *m)
{
	struct folder *f = v->f;
	uint32_t i;

	if (m->epoch == f->epoch && m->i < f->n && f->mb.rec[m->i].uid == m->uid)
		return 0;
	i = find_uid(f, m->uid);
	if (i >= f->n || f->mb.rec[i].uid != m->uid)
		return -1;
	m->i = i;
	m->epoch = f->epoch;
	return 0;
}

static int
usable(const struct view *v)
{
	return v->f && v->st == VS_OPEN && v->f->st != FS_LOAD && v->f->st != FS_DEAD;
}

uint32_t
view_count(const struct view *v)
{
	return usable(v) ? v->exists : 0;
}

int
view_seek_msn(struct view *v, uint32_t msn, struct vmsg *m)
{
	struct folder *f = v->f;
	uint32_t i, k;

	if (!usable(v) || msn == 0 || msn > v->exists)
		return 0;
	/* the msn-th visible record: skip the told tombstones before it */
	for (i = msn - 1, k = 0; k < f->ntomb && f->tomb[k] <= i; k++)
		i += told(f, v, f->tomb[k]);
	if (i >= f->n || !visible(f, v, i))
		return 0;
	fill(f, v, i, msn, m);
	return 1;
}

int
view_seek_uid(struct view *v, uint32_t uid, struct vmsg *m)
{
	struct folder *f = v->f;
	uint32_t i;

	if (!usable(v))
		return 0;
	for (i = find_uid(f, uid); i < f->n && !visible(f, v, i); i++)
		if (f->mb.rec[i].uid >= v->uidnext)
			return 0;
	if (i >= f->n)
		return 0;
	fill(f, v, i, rank(f, v, i), m);
	return 1;
}

int
view_next(struct view *v, struct vmsg *m)
{
	struct folder *f = v->f;
	uint32_t i, msn = m->msn;

	if (!usable(v))
		return 0;
	if (refind(v, m) < 0)	/* compacted away meanwhile: continue by UID */
		return view_seek_uid(v, m->uid + 1, m);
	for (i = m->i + 1; i < f->n && !visible(f, v, i); i++)
		if (f->mb.rec[i].uid >= v->uidnext)
			return 0;
	if (i >= f->n)
		return 0;
	fill(f, v, i, m->epoch == f->epoch ? msn + 1 : rank(f, v, i), m);
	return 1;
}

uint32_t
view_last_uid(struct view *v)
{
	struct vmsg m;

	return view_seek_msn(v, v->exists, &m) ? m.uid : 0;
}

void
view_status(struct view *v, struct fstatus *s)
{
	struct folder *f = v->f;
	uint32_t i;

	memset(s, 0, sizeof(*s));
	if (!usable(v))
		return;
	s->messages = v->exists;
	s->uidnext = f->mb.h.next_uid;
	s->uidvalidity = f->mb.h.uidvalidity;
	for (i = 0; i < f->n; i++) {
		const struct mb_rec *r = &f->mb.rec[i];
		if (!visible(f, v, i))
			continue;
		if (v->mode == VM_RW ? (r->uid >= v->rlo && r->uid < v->rhi) : r->uid >= f->mb.h.recent)
			s->recent++;
		if (!(r->flags & MF_SEEN) && !s->unseen++)
			s->first_unseen = rank(f, v, i);
	}
}

/* ---- opening and closing folders ---- */

static struct folder *
folder_find(const char *user, const char *name)
{
	struct folder *f;

	for (f = folders; f; f = f->next)
		if (f->st != FS_DEAD && !strcmp(f->mb.user, user) && !strcmp(f->mb.folder, name))
			return f;
	return NULL;
}

/* The folder's mbox exists (INBOX always does). */
static int
exists(const char *user, const char *name)
{
	char p[MBOX_PATH];
	struct stat st;

	if (is_inbox(name))
		return 1;
	return mbox_path(p, sizeof(p), user, "", name, "") == 0 && lstat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static struct folder *
folder_get(const char *user, const char *name)
{
	struct folder *f;

	if (is_inbox(name))
		name = "INBOX";
	if (!folder_name_ok(name) || !user_name_ok(user))
		return errno = EINVAL, NULL;
	if ((f = folder_find(user, name)) != NULL) {
		f->refs++;
		return f;
	}
	if (!exists(user, name))
		return errno = ENOENT, NULL;
	if ((f = calloc(1, sizeof(*f))) == NULL)
		return NULL;
	mailbox_open(&f->mb, user, name);
	f->mb.keep_old = 0;
	f->g = 1;
	f->refs = 1;
	f->lk.fd = -1;
	f->lk.reg = -1;
	f->work.fn = fwork;
	f->flush.fn = fflush_t;
	f->st = FS_LOAD;
	f->next = folders;
	folders = f;
	loop_timer_set(&f->work, 0);
	return f;
}

static void
folder_free(struct folder *f)
{
	struct folder **p;

	for (p = &folders; *p; p = &(*p)->next)
		if (*p == f) {
			*p = f->next;
			break;
		}
	loop_timer_stop(&f->work);
	loop_timer_stop(&f->flush);
	if (f->nb) {
		mailbox_close(f->nb);
		free(f->nb);
	}
	mailbox_close(&f->mb);
	free(f->gen);
	free(f->tomb);
	free(f);
}

static void write_dirty(struct folder *, int sync);
static int compact_want(struct folder *);

/* A reference dropped: a folder nobody uses is written and freed, once
 * its pending work (compaction) is done. */
static void
folder_put(struct folder *f)
{
	if (--f->refs > 0)
		return;
	f->refs = 0;
	if (f->st != FS_DEAD && f->st != FS_LOAD && (f->st == FS_COMPACT || compact_want(f))) {
		loop_timer_set(&f->work, 0);	/* quiet now: compaction first */
		return;
	}
	write_dirty(f, 1);
	folder_free(f);
}

static void
view_unlink(struct view *v)
{
	struct view **p;

	for (p = &v->f->views; *p; p = &(*p)->next)
		if (*p == v) {
			*p = v->next;
			break;
		}
}

static void
view_setup(struct view *v)
{
	struct folder *f = v->f;
	uint32_t i, n = 0;

	v->uidnext = f->n ? f->mb.rec[f->n - 1].uid + 1 : 1;
	if (v->uidnext < f->mb.h.next_uid)
		v->uidnext = f->mb.h.next_uid;
	v->fgen = v->xgen = f->g;
	for (i = 0; i < f->n; i++)
		n += visible(f, v, i);
	v->exists = n;
	if (v->mode == VM_RW) {	/* \Recent: what nobody claimed yet is ours */
		v->rlo = f->mb.h.recent;
		v->rhi = v->uidnext > v->rlo ? v->uidnext : v->rlo;
		if (f->mb.h.recent != v->rhi) {
			f->mb.h.recent = v->rhi;
			f->hdirty = 1;
			if (!f->flush.on)
				loop_timer_set(&f->flush, 0);
		}
	}
	v->st = VS_OPEN;
}

int
view_open(struct view *v, struct conn *c, const char *user, const char *name, int mode)
{
	struct folder *f;

	memset(v, 0, sizeof(*v));
	if ((f = folder_get(user, name)) == NULL)
		return -1;
	v->f = f;
	v->c = c;
	v->mode = mode;
	v->next = f->views;
	f->views = v;
	v->st = VS_OPENING;
	return view_ready(v);
}

int
view_ready(struct view *v)
{
	struct folder *f = v->f;

	if (f == NULL)
		return errno = EINVAL, -1;
	if (v->st == VS_OPEN)
		return 0;
	if (f->st == FS_LOAD)
		return F_WAIT;
	if (f->st == FS_DEAD || v->st != VS_OPENING) {
		errno = f->err ? f->err : EIO;
		view_close(v);
		return -1;
	}
	view_setup(v);
	return 0;
}

int
view_is_open(const struct view *v)
{
	return v->f != NULL;
}

void
view_close(struct view *v)
{
	struct folder *f = v->f;

	if (f == NULL)
		return;
	view_unlink(v);
	free(v->del);
	v->del = NULL;
	v->f = NULL;
	if (f->views)
		loop_timer_set(&f->work, 0);	/* what this view held back may compact now */
	folder_put(f);
}

/* ---- changes by other programs ---- */

/* Look (at most once a second) whether the mbox changed behind us. */
static void
check(struct folder *f)
{
	int r;

	if (f->st != FS_READY || f->checked == now)
		return;
	f->checked = now;
	if ((r = mailbox_changed(&f->mb)) == 0)
		return;
	f->st = r == 1 ? FS_SCAN : FS_REBUILD;
	loop_timer_set(&f->work, 0);
}

void
folder_appended(const char *user, const char *name)
{
	struct folder *f = folder_find(user, name);

	if (f && f->st == FS_READY) {
		f->checked = 0;
		check(f);
	}
}

/* Records the engine added beyond f->n are complete: publish them. */
static int
publish(struct folder *f)
{
	uint32_t i;

	if (gen_grow(f, f->mb.n + 1) < 0)
		return -1;
	for (i = f->n; i < f->mb.n; i++)
		f->gen[i] = 0;	/* new mail: told through EXISTS, not as a change */
	if (f->mb.n < f->n)
		f->epoch++;
	f->n = f->mb.n;
	return tomb_build(f);
}

/* A full reindex (f->nb) is done: carry generations, flags and
 * tombstones over by UID and swap it in.  Messages another program
 * removed came back from the engine as tombstones without bytes: an
 * expunge for the views.  A new UIDVALIDITY kills every view. */
static int
swap(struct folder *f)
{
	struct mailbox *nb = f->nb;
	uint32_t *g, i, j = 0, reset = nb->h.uidvalidity != f->mb.h.uidvalidity;
	struct view *v;

	if ((g = calloc(nb->n + 16, sizeof(*g))) == NULL)
		return -1;
	for (i = 0; i < nb->n && !reset; i++) {
		struct mb_rec *r = &nb->rec[i];
		while (j < f->n && f->mb.rec[j].uid < r->uid)
			j++;
		if (j == f->n || f->mb.rec[j].uid != r->uid)
			continue;
		g[i] = f->gen[j];
		if ((r->flags & MF_NOBYTES) && !(f->mb.rec[j].flags & MF_NOBYTES) &&
		    !(f->mb.rec[j].flags & MF_EXPUNGED))
			g[i] = ++f->g;	/* removed by another program: an expunge to tell */
		/* what the sessions did meanwhile wins */
		r->flags = (f->mb.rec[j].flags & ~MF_NOBYTES) | (r->flags & (MF_NOBYTES | MF_EXPUNGED));
		r->kw = f->mb.rec[j].kw;
	}
	if (!reset && f->mb.h.recent > nb->h.recent)
		nb->h.recent = f->mb.h.recent;
	nb->h.dead = 0;
	for (i = 0; i < nb->n; i++)
		if ((nb->rec[i].flags & (MF_EXPUNGED | MF_NOBYTES)) == MF_EXPUNGED)
			nb->h.dead += mailbox_span_end(nb, i) - nb->rec[i].off;
	nb->nkw = f->mb.nkw > nb->nkw ? f->mb.nkw : nb->nkw;
	memcpy(nb->kw, f->mb.kw, sizeof(nb->kw));	/* ours may have more */
	mailbox_close(&f->mb);
	free(f->gen);
	f->mb = *nb;
	free(nb);
	f->nb = NULL;
	f->gen = g;
	f->gcap = f->mb.n + 16;
	f->mb.aux = g;
	f->mb.append_only = 1;
	f->n = f->mb.n;
	f->epoch++;
	f->dlo = 0;	/* flags carried over: written again */
	f->dhi = f->n;
	f->hdirty = 1;
	loop_timer_set(&f->flush, 0);
	for (v = f->views; reset && v; v = v->next)
		v->st = VS_RESET;
	return tomb_build(f);
}

static int
rebuild_start(struct folder *f)
{
	struct mailbox *nb = malloc(sizeof(*nb));

	if (nb == NULL)
		return -1;
	mailbox_open(nb, f->mb.user, f->mb.folder);
	if (mailbox_set_records(nb, f->mb.rec, f->n) < 0) {
		free(nb);
		return -1;
	}
	nb->h = f->mb.h;
	nb->idx_ok = f->mb.idx_ok;
	nb->loaded = 1;
	nb->trust = f->mb.trust;	/* an append of ours under way: its last message is whole */
	nb->keep_old = 1;	/* it decides: the last message again, or everything */
	nb->nkw = f->mb.nkw;
	memcpy(nb->kw, f->mb.kw, sizeof(nb->kw));
	f->nb = nb;
	return 0;
}

/* ---- the folder's own work: indexing, reindexing, compaction ---- */

static void
fail(struct folder *f, int e)
{
	struct view *v;

	f->err = e;
	f->st = FS_DEAD;	/* views fail; the folder goes with its last user */
	for (v = f->views; v; v = v->next)
		if (v->st == VS_OPEN)
			v->st = VS_FAILED;
	wake_views(f, NULL);
	wake_op(f->writer);
	wake_op(f->waiting);
}

/* Which tombstones every view was told about; mark them for compaction
 * when that is worth it now (see folder.h).  1 if marked. */
static int
compact_want(struct folder *f)
{
	uint32_t k, i, minx = UINT32_MAX, cand = 0, nobytes = 0;
	uint64_t from = 0, dead = 0, span;
	int quiet = 1;
	struct view *v;

	if (f->st != FS_READY || f->writer || !f->ntomb || (f->failed && now - f->failed < FAIL_WAIT))
		return 0;
	for (v = f->views; v; v = v->next) {
		if (v->xgen < minx)
			minx = v->xgen;
		quiet &= v->st == VS_COMMIT || v->mode == VM_STATUS;
	}
	for (k = 0; k < f->ntomb; k++)
		if (f->gen[f->tomb[k]] <= minx) {
			cand++;
			nobytes += (f->mb.rec[f->tomb[k]].flags & MF_NOBYTES) != 0;
		}
	if (!cand || (!IMAP_PARTS && !quiet))
		return 0;	/* (POP3 alone: at QUIT, when its view is the last) */
	if (IMAP_PARTS && !quiet && !(f->mb.h.dead >= DEAD_MIN && f->mb.h.dead * 4 >= f->mb.h.size)) {
		/* busy: only a cheap tail, the lowest tombstone after which at
		 * most CHEAP_TAIL bytes would move (everything deleted: none) */
		from = UINT64_MAX;
		for (k = f->ntomb; k-- > 0; ) {
			i = f->tomb[k];
			if (f->gen[i] > minx || (f->mb.rec[i].flags & MF_NOBYTES))
				continue;
			span = mailbox_span_end(&f->mb, i) - f->mb.rec[i].off;
			dead += span;
			if (f->mb.h.size - f->mb.rec[i].off - dead <= CHEAP_TAIL)
				from = f->mb.rec[i].off;
		}
		if (from == UINT64_MAX && !nobytes)
			return 0;
	}
	for (k = 0; k < f->ntomb; k++) {
		i = f->tomb[k];
		if (f->gen[i] <= minx && (f->mb.rec[i].off >= from || (f->mb.rec[i].flags & MF_NOBYTES)))
			f->mb.rec[i].xflags |= MX_COMPACT;
	}
	return 1;
}

static void
compact_unmark(struct folder *f)
{
	uint32_t i;

	for (i = 0; i < f->n; i++)
		f->mb.rec[i].xflags &= ~MX_COMPACT;
}

static void
write_dirty(struct folder *f, int sync)
{
	if (f->st == FS_LOAD || f->st == FS_DEAD || f->mb.fd < 0)
		return;	/* (no mbox: nothing to index) */
	if (f->dlo < f->dhi || f->hdirty || (sync && f->unsynced)) {
		if (f->dhi > f->n)
			f->dhi = f->n;
		if (f->dlo > f->dhi)
			f->dlo = f->dhi;
		if (mailbox_write(&f->mb, f->dlo, f->dhi, sync) == 0) {
			f->dlo = f->dhi = 0;
			f->hdirty = 0;
			f->unsynced = sync ? 0 : f->unsynced ? f->unsynced : now;
		}
	}
}

/* Once per pass: changed records written; fdatasync FOLDER_FLUSH_SECS
 * after the first unsynced write. */
static void
fflush_t(struct loop_timer *t)
{
	struct folder *f = F_OF(t, flush);

	write_dirty(f, f->unsynced && now - f->unsynced >= FOLDER_FLUSH_SECS);
	if (f->unsynced)
		loop_timer_set(&f->flush, FOLDER_FLUSH_SECS - (now - f->unsynced) > 0 ?
		    (int)(FOLDER_FLUSH_SECS - (now - f->unsynced)) : 0);
}

/* One slice: 0 idle, MB_MORE again next pass, MB_BUSY again in a second. */
static int
fwork_step(struct folder *f)
{
	struct view *v;
	int r;

	switch (f->st) {
	case FS_LOAD:
		if ((r = mailbox_sync(&f->mb)) != 0) {
			if (r == MB_BUSY && ++f->tries >= BUSY_TRIES)
				fail(f, EAGAIN);
			else if (r < 0)
				fail(f, errno);
			return f->st == FS_DEAD ? 0 : r;
		}
		f->mb.append_only = 1;
		f->tries = 0;
		if (publish(f) < 0) {
			fail(f, ENOMEM);
			return 0;
		}
		f->st = FS_READY;
		wake_views(f, NULL);
		break;
	case FS_SCAN:
		mailbox_restart(&f->mb);
		if ((r = mailbox_sync(&f->mb)) == MB_MORE || r == MB_BUSY)
			return r;
		if (r < 0) {	/* not an append after all: index it all again */
			f->mb.n = f->n;
			f->st = FS_REBUILD;
			return MB_MORE;
		}
		if (publish(f) < 0) {
			fail(f, ENOMEM);
			return 0;
		}
		f->st = FS_READY;
		wake_views(f, NULL);
		wake_op(f->writer);
		break;
	case FS_REBUILD:
		if (f->nb == NULL && rebuild_start(f) < 0) {
			fail(f, ENOMEM);
			return 0;
		}
		if ((r = mailbox_sync(f->nb)) == MB_MORE || r == MB_BUSY)
			return r;
		if (r < 0 || swap(f) < 0) {
			fail(f, errno);
			return 0;
		}
		f->st = FS_READY;
		wake_views(f, NULL);
		break;
	case FS_COMPACT:
		r = mailbox_compact(&f->mb, &f->cfrom);
		if (r == MB_MORE || (r == MB_BUSY && ++f->tries < BUSY_TRIES))
			return r;
		f->tries = 0;
		f->cfrom = UINT64_MAX;
		if (r == 0) {
			f->n = f->mb.n;
			f->epoch++;
			f->dlo = f->dhi = 0;	/* the engine wrote the whole index */
			f->hdirty = 0;
			f->unsynced = 0;
			tomb_build(f);
			f->failed = 0;
		} else {
			compact_unmark(f);
			if (errno == ESTALE && !mailbox_compacting(&f->mb)) {
				f->st = FS_REBUILD;	/* changed behind us: index again, then retry */
				return MB_MORE;
			}
			f->failed = now;
		}
		f->st = FS_READY;
		wake_views(f, NULL);
		for (v = f->views; v; v = v->next)
			if (v->st == VS_COMMIT && v->c)
				loop_wake(v->c, 0);
		break;
	case FS_READY:
		if (compact_want(f)) {
			f->st = FS_COMPACT;
			return MB_MORE;
		}
		wake_op(f->waiting);
		return 0;
	default:
		return 0;
	}
	return f->st == FS_READY && compact_want(f) ? (f->st = FS_COMPACT, MB_MORE) : 0;
}

static void
fwork(struct loop_timer *t)
{
	struct folder *f = F_OF(t, work);
	int r = fwork_step(f);

	if (r == MB_MORE || r == MB_BUSY)
		loop_timer_set(&f->work, r == MB_BUSY);
	else if (f->refs == 0 && f->st != FS_COMPACT) {
		write_dirty(f, 1);
		folder_free(f);
	} else if (f->st == FS_READY) {
		wake_op(f->waiting);
	}
}

/* ---- flags, keywords, expunge ---- */

static int
writable(struct view *v, struct vmsg *m)
{
	if (!usable(v))
		return errno = EIO, -1;
	if (v->mode == VM_RO || v->mode == VM_STATUS)
		return errno = EROFS, -1;
	if (refind(v, m) < 0 || (v->f->mb.rec[m->i].flags & MF_EXPUNGED))
		return errno = ESTALE, -1;
	return 0;
}

/* Record i changed in this view: a new generation.  Own changes are not
 * reported back to a view that was up to date; an expunge does not make
 * other views' flags stale. */
static void
changed(struct folder *f, struct view *v, uint32_t i, int expunge)
{
	struct view *o;
	int own = v && v->fgen == f->g;

	f->gen[i] = ++f->g;
	if (own)
		v->fgen = f->g;
	for (o = f->views; expunge && o; o = o->next)
		if (o != v && o->fgen == f->g - 1)
			o->fgen = f->g;
	dirty(f, i);
	wake_views(f, v);
}

int
view_store(struct view *v, struct vmsg *m, int op, uint32_t flags)
{
	struct folder *f = v->f;
	struct mb_rec *r;
	uint8_t sys;
	uint16_t kw;

	if (writable(v, m) < 0)
		return -1;
	r = &f->mb.rec[m->i];
	sys = r->flags & MF_SYSTEM;
	kw = r->kw;
	flags &= MF_SYSTEM | MF_KWALL;
	if (op == FS_SET) {
		sys = flags & MF_SYSTEM;
		kw = flags >> 16;
	} else if (op == FS_ADD) {
		sys |= flags & MF_SYSTEM;
		kw |= flags >> 16;
	} else {
		sys &= ~flags;
		kw &= ~(flags >> 16);
	}
	if (sys != (r->flags & MF_SYSTEM) || kw != r->kw) {
		r->flags = (r->flags & ~MF_SYSTEM) | sys;
		r->kw = kw;
		changed(f, v, m->i, 0);
	}
	fill(f, v, m->i, m->msn, m);
	return 0;
}

int
view_keyword(struct view *v, const char *name, int add)
{
	struct folder *f = v->f;
	size_t n = strlen(name);
	const char *s;
	int k;

	if (!usable(v))
		return errno = EIO, -1;
	for (s = name; *s; s++)
		if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f || strchr("(){%*\"\\]", *s))
			return errno = EINVAL, -1;
	if ((k = mailbox_kw(&f->mb, name, n, add && v->mode != VM_RO)) < 0)
		return errno = n && n < FOLDER_KW_LEN ? ENOSPC : EINVAL, -1;
	if (f->mb.kwdirty && mailbox_kw_save(&f->mb) < 0)
		log_warn("folder %s/%s: keywords", f->mb.user, f->mb.folder);
	return k;
}

const char *
view_keyword_name(struct view *v, int k)
{
	return v->f && k >= 0 && k < v->f->mb.nkw ? v->f->mb.kw[k] : NULL;
}

int
view_kw_room(struct view *v)
{
	return v->f ? FOLDER_KW_MAX - v->f->mb.nkw : 0;
}

static void
tombstone(struct folder *f, struct view *v, uint32_t i)
{
	struct mb_rec *r = &f->mb.rec[i];

	r->flags |= MF_EXPUNGED;
	if (!(r->flags & MF_NOBYTES))
		f->mb.h.dead += mailbox_span_end(&f->mb, i) - r->off;
	f->hdirty = 1;
	if (tomb_add(f, i) < 0)
		tomb_build(f);
	changed(f, v, i, 1);
}

int
view_expunge(struct view *v, struct vmsg *m)
{
	if (writable(v, m) < 0)
		return -1;
	tombstone(v->f, v, m->i);
	fill(v->f, v, m->i, m->msn, m);
	return 0;
}

void
view_dele(struct view *v, const struct vmsg *m)
{
	if (!usable(v) || m->msn == 0 || m->msn > v->exists)
		return;
	if (v->del == NULL && (v->del = calloc(v->exists / 8 + 1, 1)) == NULL)
		return;
	v->del[(m->msn - 1) / 8] |= 1 << ((m->msn - 1) % 8);
}

int
view_is_dele(const struct view *v, const struct vmsg *m)
{
	return v->del && m->msn && m->msn <= v->exists && (v->del[(m->msn - 1) / 8] >> ((m->msn - 1) % 8) & 1);
}

void
view_dele_reset(struct view *v)
{
	free(v->del);
	v->del = NULL;
}

int
view_sync(struct view *v)
{
	struct folder *f = v->f;

	if (f == NULL || f->st == FS_DEAD)
		return errno = EIO, -1;
	write_dirty(f, 1);
	return f->dlo < f->dhi || f->hdirty || f->unsynced ? -1 : 0;
}

int
view_pop3_commit(struct view *v)
{
	struct folder *f = v->f;
	struct vmsg m;
	struct view *o;
	int r, alone = 1;

	if (f == NULL)
		return errno = EIO, -1;
	if (v->st == VS_OPEN) {
		if (v->del)
			for (r = view_seek_msn(v, 1, &m); r; r = view_next(v, &m))
				if (view_is_dele(v, &m) && writable(v, &m) == 0)
					tombstone(f, v, m.i);
		v->xgen = f->g;	/* its own: nothing to hold back for this view */
		v->st = VS_COMMIT;
		if (view_sync(v) < 0)
			return -1;
		loop_timer_set(&f->work, 0);
	}
	for (o = f->views; o; o = o->next)
		alone &= o == v || o->mode == VM_STATUS;
	/* alone: the bytes go now, before the answer (mutt and Dovecot then
	 * see them gone when the client does); else they wait (folder.h) */
	if (alone && (f->st == FS_COMPACT || f->st == FS_SCAN || f->st == FS_REBUILD ||
	    (f->st == FS_READY && compact_want(f) && (f->st = FS_COMPACT))))
		return loop_timer_set(&f->work, 0), F_WAIT;
	return 0;
}

/* ---- telling a view what changed ---- */

unsigned
view_changes(struct view *v)
{
	struct folder *f = v->f;
	unsigned r = 0;
	uint32_t k, i;

	if (f == NULL)
		return 0;
	if (v->st == VS_RESET)
		return VC_RESET;
	if (!usable(v) || v->mode == VM_POP3)
		return 0;
	check(f);
	for (k = 0; k < f->ntomb && !r; k++) {
		i = f->tomb[k];
		if (f->mb.rec[i].uid < v->uidnext && f->gen[i] > v->xgen)
			r = VC_EXPUNGE;
	}
	if (f->g > v->fgen || v->frep)
		r |= VC_FLAGS;
	if (f->n && f->mb.rec[f->n - 1].uid >= v->uidnext)
		r |= VC_EXISTS;
	return r;
}

int
view_next_expunge(struct view *v, uint32_t *msn)
{
	struct folder *f = v->f;
	uint32_t k, i, uid;

	if (!usable(v))
		return 0;
	if (!v->xrep) {
		v->xrep = 1;
		v->xtarget = f->g;
		v->xcur = v->uidnext;
	}
	/* highest first: the numbers below stay right as each one goes */
	for (k = f->ntomb; k-- > 0; ) {
		i = f->tomb[k];
		uid = f->mb.rec[i].uid;
		if (uid >= v->xcur || f->gen[i] <= v->xgen || f->gen[i] > v->xtarget)
			continue;
		*msn = rank(f, v, i);
		v->xcur = uid;
		v->exists--;
		return 1;
	}
	if (v->xgen != v->xtarget)	/* told: what everyone was told may compact now */
		loop_timer_set(&f->work, 0);
	v->xgen = v->xtarget;
	v->xrep = 0;
	return 0;
}

int
view_next_flags(struct view *v, struct vmsg *m)
{
	struct folder *f = v->f;
	uint32_t i;

	if (!usable(v))
		return 0;
	if (!v->frep) {
		v->frep = 1;
		v->ftarget = f->g;
		v->fcur = 0;
	}
	for (i = find_uid(f, v->fcur); i < f->n && f->mb.rec[i].uid < v->uidnext; i++)
		if (f->gen[i] > v->fgen && f->gen[i] <= v->ftarget && !(f->mb.rec[i].flags & MF_EXPUNGED) &&
		    visible(f, v, i)) {
			fill(f, v, i, rank(f, v, i), m);
			v->fcur = m->uid + 1;
			return 1;
		}
	v->fgen = v->ftarget;
	v->frep = 0;
	return 0;
}

int
view_next_exists(struct view *v, uint32_t *exists, uint32_t *recent)
{
	struct folder *f = v->f;
	uint32_t i, last, add = 0, from, r = 0;

	if (!usable(v) || !f->n || (last = f->mb.rec[f->n - 1].uid) < v->uidnext)
		return 0;
	for (i = find_uid(f, v->uidnext); i < f->n; i++)
		add += !told(f, v, i);
	from = v->uidnext;
	v->uidnext = last + 1;
	v->exists += add;
	if (v->mode == VM_RW) {
		/* new \Recent ones: this view's if nobody claimed any after
		 * what it holds (or it holds none) */
		if (f->mb.h.recent < from)
			f->mb.h.recent = from;
		if (v->rhi == f->mb.h.recent || v->rlo == v->rhi) {
			if (v->rlo == v->rhi)
				v->rlo = f->mb.h.recent;
			v->rhi = f->mb.h.recent = v->uidnext;
			f->hdirty = 1;
			dirty(f, 0);
		}
	}
	if (!add)
		return 0;
	for (i = find_uid(f, v->rlo); i < f->n && f->mb.rec[i].uid < v->rhi; i++)
		r += visible(f, v, i);
	*exists = v->exists;
	*recent = r;
	return 1;
}

/* ---- reading ---- */

/* Where m's content is (cached per view): 0, -F_WAIT, -1. */
static int
where(struct view *v, struct vmsg *m, uint64_t *s, uint64_t *e)
{
	struct folder *f = v->f;
	int r;

	if (!v->f || v->st == VS_RESET || v->st == VS_FAILED || f->st == FS_DEAD)
		return errno = EIO, -1;
	if (f->st == FS_REBUILD || f->st == FS_LOAD)
		return -F_WAIT;	/* woken when the records are right again */
	if (refind(v, m) < 0 || (f->mb.rec[m->i].flags & MF_NOBYTES))
		return errno = ESTALE, -1;
	/* bytes from cfrom on are moving; a message ending right there waits
	 * too: its end is checked against the next message, cut away by now */
	if (f->st == FS_COMPACT && mailbox_span_end(&f->mb, m->i) >= f->cfrom)
		return -F_WAIT;
	if (v->luid != m->uid || v->lepoch != f->epoch || !v->luid) {
		if ((r = mailbox_locate(&f->mb, m->i, &v->ls, &v->le)) != 0) {
			if (r == MB_BUSY) {
				if (v->c)
					loop_wake(v->c, 1);
				return -F_WAIT;
			}
			if (errno == ESTALE && f->st == FS_READY) {	/* moved: index again */
				f->st = FS_REBUILD;
				loop_timer_set(&f->work, 0);
				return -F_WAIT;
			}
			return -1;
		}
		v->luid = m->uid;
		v->lepoch = f->epoch;
	}
	*s = v->ls;
	*e = v->le;
	return 0;
}

long
view_read(struct view *v, const struct vmsg *cm, uint64_t off, char *buf, size_t n)
{
	struct vmsg m = *cm;
	uint64_t s, e;
	long r;

	if ((r = where(v, &m, &s, &e)) != 0)
		return r;
	if (off >= e - s)
		return 0;
	if (n > e - s - off)
		n = e - s - off;
	r = mailbox_read(&v->f->mb, m.i, buf, n, s + off);
	if (r == -MB_BUSY) {
		if (v->c)
			loop_wake(v->c, 1);
		return -F_WAIT;
	}
	if (r < 0 && errno == ESTALE) {
		v->luid = 0;
		if (v->f->st == FS_READY) {
			v->f->st = FS_REBUILD;
			loop_timer_set(&v->f->work, 0);
		}
		return -F_WAIT;
	}
	return r == 0 ? (errno = ESTALE, -1) : r;
}

static const char *
unum(const char *p, unsigned *v)
{
	const char *s;

	while (*p == ' ')
		p++;
	for (s = p, *v = 0; *p >= '0' && *p <= '9' && p - s < 5; p++)
		*v = *v * 10 + (*p - '0');
	return p > s ? p : NULL;
}

static int
alpha3(const char *p)
{
	int i;

	for (i = 0; i < 3; i++)
		if ((p[i] | 0x20) < 'a' || (p[i] | 0x20) > 'z')
			return 0;
	return 1;
}

/* The date of a From_ line "From sender Www Mmm dd hh:mm:ss yyyy" (the
 * sender may hold spaces: each is tried).  No sscanf: it links a
 * floating-point scanner (12 KB on mips, and FPU-less CPUs trap on it). */
static int
from_date(const char *l, time_t *t)
{
	static const char mon[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	const char *p, *q;
	unsigned d, hh, mm, ss, y, i;

	for (p = l; (p = strchr(p, ' ')) != NULL; p++) {
		for (q = p; *q == ' '; q++)
			;
		if (!alpha3(q) || q[3] != ' ')
			continue;
		for (q += 3; *q == ' '; q++)
			;
		for (i = 0; i < 12 && (!alpha3(q) || strncasecmp(mon + 3 * i, q, 3)); i++)
			;
		if (i == 12 || !(q = unum(q + 3, &d)) || !(q = unum(q, &hh)) || *q != ':' ||
		    !(q = unum(q + 1, &mm)) || *q != ':' || !(q = unum(q + 1, &ss)) || !unum(q, &y))
			continue;
		if (d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60 || y < 1970 || y > 9999)
			continue;
		*t = (time_t)(civil_days(y, i + 1, d) * 86400 + hh * 3600 + mm * 60 + ss);
		return 0;
	}
	return -1;
}

int
view_date(struct view *v, const struct vmsg *cm, time_t *t)
{
	struct vmsg m = *cm;
	struct folder *f = v->f;
	uint64_t s, e;
	char b[256];
	long r;

	if ((r = where(v, &m, &s, &e)) != 0)
		return r == -F_WAIT ? F_WAIT : -1;
	r = s - f->mb.rec[m.i].off < sizeof(b) - 1 ? (long)(s - f->mb.rec[m.i].off) : (long)sizeof(b) - 1;
	r = mailbox_read(&f->mb, m.i, b, r, f->mb.rec[m.i].off);
	if (r == -MB_BUSY)
		return F_WAIT;
	if (r <= 0)
		return -1;
	b[r] = '\0';
	if (from_date(b, t) < 0)
		*t = 0;	/* a From_ line without a date we know */
	return 0;
}

#if IMAP_PARTS
/* ---- appending and copying ---- */

enum { OP_APPEND = 1, OP_COPY };
enum { OS_LOCK = 1, OS_WRITE, OS_SYNC, OS_SCAN, OS_DONE };
#define NOQID	"0000000000000000"	/* dotlock line of an append no queue file backs */

static int
fop_fail(struct fop *o, int e)
{
	struct folder *f = o->dst;

	if (f && f->writer == o) {
		if ((o->st == OS_WRITE || o->st == OS_SYNC) && ftruncate(f->lk.fd, o->base) < 0)
			log_warn("folder %s/%s: cut back", f->mb.user, f->mb.folder);
		mbox_unlock(&f->lk);
		f->writer = NULL;
		f->mb.trust = 0;
		loop_timer_set(&f->work, 0);
	}
	if (f && f->waiting == o)
		f->waiting = NULL;
	if (f)
		folder_put(f);
	free(o->uids);
	o->uids = NULL;
	o->dst = NULL;
	o->st = OS_DONE;
	o->err = e;
	return errno = e, -1;
}

static int
fop_start(struct fop *o, struct conn *c, const char *user, const char *name, int kind)
{
	o->c = c;
	o->uids = NULL;
	o->dst = NULL;
	o->kind = kind;
	o->st = OS_LOCK;
	o->tries = 0;
	o->n = o->uid0 = 0;
	o->cap = 0;
	if (is_inbox(name))
		name = "INBOX";
	if ((o->dst = folder_get(user, name)) == NULL) {
		o->st = OS_DONE;
		return o->err = errno, -1;
	}
	return fop_step(o);
}

int
folder_append(struct fop *o, struct conn *c, const char *user, const char *name, int fd,
    uint64_t off, uint64_t len, uint32_t flags, const char *keywords, time_t date)
{
	memset(o, 0, sizeof(*o));
	if ((long long)len > cfg.max_message_size)
		return o->err = EFBIG, errno = EFBIG, -1;
	o->fd = fd;
	o->off = off;
	o->len = len;
	o->flags = flags & MF_SYSTEM;
	o->kw = keywords;
	o->date = date ? date : time(NULL);
	return fop_start(o, c, user, name, OP_APPEND);
}

int
folder_copy(struct fop *o, struct view *src, const uint32_t (*set)[2], uint32_t nset, const char *name, int move)
{
	memset(o, 0, sizeof(*o));
	if (!usable(src))
		return o->err = EIO, errno = EIO, -1;
	if (move && (src->mode == VM_RO || src->mode == VM_STATUS))
		return o->err = EROFS, errno = EROFS, -1;
	o->src = src;
	o->set = set;
	o->nset = nset;
	o->move = move;
	o->suid = nset ? set[0][0] : 0;
	return fop_start(o, src->c, src->f->mb.user, name, OP_COPY);
}

/* The next source message of a copy: 1 (m filled), 0 none left. */
static int
next_source(struct fop *o, struct vmsg *m)
{
	while (o->si < o->nset) {
		if (o->suid < o->set[o->si][0])
			o->suid = o->set[o->si][0];
		if (o->suid <= o->set[o->si][1] && view_seek_uid(o->src, o->suid, m) && m->uid <= o->set[o->si][1])
			return 1;
		o->si++;
	}
	return 0;
}

/* One slice of writing: 0 all written, F_WAIT, -1. */
static int
fop_write(struct fop *o)
{
	static char b[16384];
	struct folder *f = o->dst, *sf;
	long budget = COPY_PASS, r;
	struct vmsg m;
	uint64_t s, e;
	char *sp;
	time_t t;

	while (budget > 0) {
		if (o->kind == OP_APPEND) {
			if (!o->msg) {
				if (mbox_append_begin(&f->lk, &f->ap, "MAILER-DAEMON", o->date, NULL, NOQID, 1,
				    APPEND_CRLF | APPEND_FILTER) < 0)
					return -1;
				o->msg = 1;
			}
			if (o->done == o->len)
				break;
			r = pread(o->fd, b, o->len - o->done < sizeof(b) ? o->len - o->done : sizeof(b), o->off + o->done);
			if (r <= 0 || mbox_append_data(&f->lk, &f->ap, b, r) < 0)
				return errno = r == 0 ? EIO : errno, -1;
			o->done += r;
			budget -= r;
			continue;
		}
		/* a copy: the source's From_ line and its stored (quoted) bytes as they are */
		if (!next_source(o, &m))
			return 0;
		sf = o->src->f;
		if ((r = where(o->src, &m, &s, &e)) != 0) {
			if (r == -F_WAIT)
				return F_WAIT;
			o->suid = m.uid + 1;	/* gone meanwhile: not copied */
			continue;
		}
		if (!o->msg) {
			r = s - sf->mb.rec[m.i].off < sizeof(b) - 1 ? (long)(s - sf->mb.rec[m.i].off) : (long)sizeof(b) - 1;
			if ((r = mailbox_read(&sf->mb, m.i, b, r, sf->mb.rec[m.i].off)) < 0)
				return r == -MB_BUSY ? F_WAIT : -1;
			b[r] = '\0';
			if (from_date(b, &t) < 0)
				t = time(NULL);
			sp = strchr(b + 5, ' ');
			if (sp)
				*sp = '\0';
			if (mbox_append_begin(&f->lk, &f->ap, r > 5 ? b + 5 : "MAILER-DAEMON", t, NULL, NOQID, 1,
			    APPEND_RAW) < 0)
				return -1;
			o->msg = 1;
			o->done = 0;
		}
		while (budget > 0 && o->done < e - s) {
			r = mailbox_read(&sf->mb, m.i, b, e - s - o->done < sizeof(b) ? e - s - o->done : sizeof(b),
			    s + o->done);
			if (r == -MB_BUSY)
				return F_WAIT;
			if (r <= 0 || mbox_append_data(&f->lk, &f->ap, b, r) < 0)
				return errno = r == 0 ? ESTALE : errno, -1;
			o->done += r;
			budget -= r;
		}
		if (o->done < e - s)
			return F_WAIT;
		if (mbox_append_end(&f->lk, &f->ap) < 0)
			return -1;
		if (o->n == o->cap) {
			uint32_t *p = realloc(o->uids, (o->cap * 2 + 16) * sizeof(*p));
			if (p == NULL)
				return errno = ENOMEM, -1;
			o->uids = p;
			o->cap = o->cap * 2 + 16;
		}
		o->uids[o->n++] = m.uid;
		o->suid = m.uid + 1;
		o->msg = 0;
	}
	if (o->kind == OP_APPEND && o->done == o->len) {
		if (mbox_append_end(&f->lk, &f->ap) < 0)
			return -1;
		o->n = 1;
		return 0;
	}
	return F_WAIT;
}

/* The appended records are indexed: flags and keywords onto them. */
static int
fop_apply(struct fop *o)
{
	struct folder *f = o->dst, *sf = o->src ? o->src->f : NULL;
	uint32_t i = find_uid(f, 0), k, j, bit;
	const char *w, *p;
	struct vmsg m;

	for (i = 0; i < f->n && f->mb.rec[i].off < o->base; i++)
		;
	if (f->n - i < o->n)
		return errno = ESTALE, -1;	/* the file changed under our lock: cannot happen */
	o->uid0 = f->mb.rec[i].uid;
	o->uidvalidity = f->mb.h.uidvalidity;
	for (k = 0; k < o->n; k++, i++) {
		struct mb_rec *r = &f->mb.rec[i];
		if (o->kind == OP_APPEND) {
			r->flags |= o->flags;
			for (p = o->kw; p && *p; ) {
				while (*p == ' ')
					p++;
				for (w = p; *p && *p != ' '; p++)
					;
				if (p > w && (bit = mailbox_kw(&f->mb, w, p - w, 1)) != (uint32_t)-1)
					r->kw |= 1u << bit;
			}
		} else if (view_seek_uid(o->src, o->uids[k], &m) && m.uid == o->uids[k]) {
			r->flags |= m.flags & MF_SYSTEM;
			for (j = 0; j < 16; j++)
				if ((m.flags >> 16) >> j & 1 &&
				    (bit = mailbox_kw(&f->mb, sf->mb.kw[j], strlen(sf->mb.kw[j]), 1)) != (uint32_t)-1)
					r->kw |= 1u << bit;
		}
		dirty(f, i);
	}
	if (f->mb.kwdirty)
		mailbox_kw_save(&f->mb);
	return 0;
}

int
fop_step(struct fop *o)
{
	struct folder *f = o->dst;
	struct vmsg m;
	uint32_t k;
	int r;

	if (o->st == OS_DONE)
		return o->err ? (errno = o->err, -1) : 0;
	if (f->st == FS_DEAD)
		return fop_fail(o, f->err ? f->err : EIO);
	switch (o->st) {
	case OS_LOCK:
		if (f->st != FS_READY || (f->writer && f->writer != o)) {
			if (!f->waiting || f->waiting == o)
				f->waiting = o;
			else if (o->c)
				loop_wake(o->c, 1);	/* a queue of one: the others look again */
			return F_WAIT;
		}
		if (f->waiting == o)
			f->waiting = NULL;
		if ((r = mbox_lock_open(&f->lk, f->mb.user, f->mb.folder, LK_APPEND, !strcmp(f->mb.folder, "INBOX"))) != 0) {
			if (r < 0)
				return fop_fail(o, errno == ENOENT ? ENOENT : errno);
			if (++o->tries >= BUSY_TRIES)
				return fop_fail(o, EAGAIN);
			if (o->c)
				loop_wake(o->c, 1);
			return F_WAIT;
		}
		f->writer = o;
		o->base = lseek(f->lk.fd, 0, SEEK_END);
		o->st = OS_WRITE;
		/* fall through */
	case OS_WRITE:
		if ((r = fop_write(o)) != 0) {
			if (r == F_WAIT && o->c)
				loop_wake(o->c, 0);	/* the next slice, next pass */
			return r == F_WAIT ? F_WAIT : fop_fail(o, errno ? errno : EIO);
		}
		if (o->n == 0) {	/* nothing to copy (all gone) */
			mbox_unlock(&f->lk);
			f->writer = NULL;
			o->uidvalidity = f->mb.h.uidvalidity;
			o->st = OS_DONE;
			folder_put(f);
			o->dst = NULL;
			return 0;
		}
		o->st = OS_SYNC;
		/* fall through */
	case OS_SYNC:
		/* the whole append is in: fsync it (nothing partial is made durable) */
		if (fsync(f->lk.fd) < 0)
			return fop_fail(o, errno);
		f->mb.trust = 1;	/* our lock: the last message is whole */
		f->checked = 0;
		check(f);
		o->st = OS_SCAN;
		/* fall through */
	case OS_SCAN:
		if (f->st != FS_READY)
			return F_WAIT;	/* woken after the scan (wake_op) */
		f->mb.trust = 0;
		if (fop_apply(o) < 0)
			return fop_fail(o, errno);
		/* the dotlock's removal confirms the appends: durable before OK */
		mbox_unlock(&f->lk);
		f->writer = NULL;
		if (mbox_sync_dir(f->mb.user) < 0)
			log_warn("folder %s/%s: directory sync", f->mb.user, f->mb.folder);
		wake_views(f, NULL);
		wake_op(f->waiting);
		loop_timer_set(&f->work, 0);
		if (o->move) {
			for (k = 0; k < o->n; k++)
				if (view_seek_uid(o->src, o->uids[k], &m) && m.uid == o->uids[k])
					view_expunge(o->src, &m);
			/* moved for every view either way: a failed write leaves the
			 * tombstones dirty for the next write, and a power cut before
			 * it a copy in both folders (RFC 6851 3.3: never in neither) */
			if (view_sync(o->src) < 0 && o->src->f)
				log_warn("folder %s/%s: move: the source's expunge not yet durable", o->src->f->mb.user,
				    o->src->f->mb.folder);
		}
		free(o->uids);
		o->uids = NULL;
		o->st = OS_DONE;
		o->dst = NULL;
		folder_put(f);
		return 0;
	}
	return errno = EINVAL, -1;
}

void
fop_abort(struct fop *o)
{
	if (o->dst && o->st != OS_DONE) {
		if (o->st == OS_SCAN) {	/* durable already: a copy stays, unlocked */
			o->dst->mb.trust = 0;
			mbox_unlock(&o->dst->lk);
			o->dst->writer = NULL;
			o->st = OS_DONE;
			folder_put(o->dst);
			o->dst = NULL;
			free(o->uids);
			o->uids = NULL;
			return;
		}
		fop_fail(o, EINTR);
	}
}

/* ---- folders on disk ---- */

static int
user_dir(const char *user, char *d, size_t n, int make)
{
	char top[MBOX_PATH];

	if (!user_name_ok(user) || mbox_path(d, n, user, "", "", "") < 0)
		return errno = EINVAL, -1;
	if (!make)
		return 0;
	if (mkdir(d, 0700) == 0)
		return mbox_path(top, sizeof(top), "", "", "", "") < 0 ? -1 : fsync_dir(top);
	return errno == EEXIST ? 0 : -1;
}

static void
unlink_dot(const char *user, const char *name)
{
	static const char *const sfx[] = { ".idx", ".kw", ".exp", ".idx.tmp", ".kw.tmp", NULL };
	char p[MBOX_PATH];
	int i;

	for (i = 0; sfx[i]; i++)
		if (mbox_path(p, sizeof(p), user, ".", name, sfx[i]) == 0)
			unlink(p);
}

int
folder_create(const char *user, const char *name)
{
	char d[MBOX_PATH], p[MBOX_PATH];
	int fd;

	if (is_inbox(name))
		return errno = EEXIST, -1;
	if (!folder_name_ok(name) || user_dir(user, d, sizeof(d), 1) < 0 || mbox_path(p, sizeof(p), user, "", name, "") < 0)
		return errno = errno ? errno : EINVAL, -1;
	unlink_dot(user, name);	/* what a deleted folder of that name left */
	if ((fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
		return -1;
	close(fd);
	return fsync_dir(d);
}

/* Nobody uses it: no view, no operation, no work. */
static int
idle(const char *user, const char *name)
{
	struct folder *f = folder_find(user, name);

	return f == NULL || (f->refs == 0 && !f->views && !f->writer);
}

int
folder_delete(const char *user, const char *name)
{
	struct mbox_lock lk;
	char d[MBOX_PATH];
	int r;

	if (is_inbox(name) || !folder_name_ok(name) || user_dir(user, d, sizeof(d), 0) < 0)
		return errno = EINVAL, -1;
	if (!exists(user, name))
		return errno = ENOENT, -1;
	if (!idle(user, name))
		return errno = EBUSY, -1;
	if ((r = mbox_lock_open(&lk, user, name, LK_REWRITE, 0)) != 0)
		return errno = r > 0 ? EBUSY : errno, -1;
	if (folder_find(user, name))
		folder_free(folder_find(user, name));
	r = unlink(lk.path);	/* the commit point: the folder is gone */
	mbox_unlock(&lk);
	unlink_dot(user, name);
	return r < 0 ? -1 : fsync_dir(d);
}

/* A rename: its intent (.rename, "FROM\nTO\n") made durable first, then
 * each file moved, the mbox last; recovery redoes what is missing. */
static int
rename_files(const char *user, const char *from, const char *to)
{
	static const char *const pre[] = { ".", ".", "" }, *const sfx[] = { ".idx", ".kw", "" };
	char a[MBOX_PATH], b[MBOX_PATH];
	struct stat st;
	int i;

	for (i = 0; i < 3; i++) {
		if (mbox_path(a, sizeof(a), user, pre[i], from, sfx[i]) < 0 ||
		    mbox_path(b, sizeof(b), user, pre[i], to, sfx[i]) < 0)
			return -1;
		if (lstat(a, &st) == 0 && lstat(b, &st) < 0 && rename(a, b) < 0)
			return -1;
		if (folder_crash_hook)
			folder_crash_hook(i);	/* unit tests: kill -9 after each step */
	}
	return 0;
}

int
folder_rename(const char *user, const char *from, const char *to)
{
	char d[MBOX_PATH], j[MBOX_PATH], t[MBOX_PATH], b[2 * FOLDER_NAME_MAX + 4];
	struct mbox_lock lk;
	int fd, n, r;

	if (is_inbox(from) || is_inbox(to) || !folder_name_ok(from) || !folder_name_ok(to) ||
	    user_dir(user, d, sizeof(d), 0) < 0)
		return errno = EINVAL, -1;
	if (!exists(user, from))
		return errno = ENOENT, -1;
	if (exists(user, to))
		return errno = EEXIST, -1;
	if (!idle(user, from))
		return errno = EBUSY, -1;
	if (mbox_path(j, sizeof(j), user, "", ".rename", "") < 0 || mbox_path(t, sizeof(t), user, "", ".rename.tmp", "") < 0)
		return -1;
	if ((r = mbox_lock_open(&lk, user, from, LK_REWRITE, 0)) != 0)
		return errno = r > 0 ? EBUSY : errno, -1;
	if (folder_find(user, from))
		folder_free(folder_find(user, from));
	n = snprintf(b, sizeof(b), "%s\n%s\n", from, to);
	fd = open(t, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	r = fd >= 0 && write(fd, b, n) == n && fsync(fd) == 0 && rename(t, j) == 0 && fsync_dir(d) == 0 ? 0 : -1;
	if (fd >= 0)
		close(fd);
	if (r == 0)
		r = rename_files(user, from, to);
	n = errno;
	mbox_unlock(&lk);
	if (r == 0 && fsync_dir(d) == 0)
		unlink(j);
	errno = n;
	return r;
}

/* The subscriptions, Dovecot's format: "V\t2\n\n" then one name a line. */
static int
subs_read(const char *user, char *b, size_t n)
{
	char p[MBOX_PATH];
	ssize_t k;
	int fd;

	b[0] = '\0';
	if (mbox_path(p, sizeof(p), user, "", ".subscriptions", "") < 0)
		return -1;
	if ((fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return errno == ENOENT ? 0 : -1;
	k = read(fd, b, n - 1);
	close(fd);
	if (k < 0)
		return -1;
	b[k] = '\0';
	return 0;
}

/* The next name in the subscriptions at *pos; NULL at the end. */
static const char *
subs_next(char *b, char **pos)
{
	char *l = *pos ? *pos : b, *e;

	for (; *l; l = e + 1) {
		if ((e = strchr(l, '\n')) == NULL)
			return NULL;
		*e = '\0';
		*pos = e + 1;
		if (*l && strcmp(l, "V\t2"))
			return l;
	}
	return NULL;
}

static int
subscribed(char *b, size_t n, const char *name)
{
	char *pos = NULL, *c;
	const char *s;
	int r = 0;

	if ((c = malloc(n)) == NULL)
		return 0;
	memcpy(c, b, n);
	while ((s = subs_next(c, &pos)) != NULL)
		r |= !strcmp(s, name);
	free(c);
	return r;
}

#define SUBS_MAX	8192

int
folder_list(const char *user, int subs, void (*cb)(void *arg, const char *name, unsigned attr), void *arg)
{
	char d[MBOX_PATH], *b, *pos = NULL;
	const char *s;
	struct dirent *de;
	struct stat st;
	DIR *dir;
	int n = 0;

	if (user_dir(user, d, sizeof(d), 0) < 0 || (b = malloc(SUBS_MAX)) == NULL)
		return -1;
	if (subs_read(user, b, SUBS_MAX) < 0) {
		free(b);
		return -1;
	}
	if (subs) {
		while ((s = subs_next(b, &pos)) != NULL) {
			cb(arg, s, FA_SUBSCRIBED | (exists(user, s) ? 0 : FA_NONEXISTENT));
			n++;
		}
		free(b);
		return n;
	}
	cb(arg, "INBOX", subscribed(b, SUBS_MAX, "INBOX") ? FA_SUBSCRIBED : 0);
	n++;
	if ((dir = opendir(d)) != NULL) {
		while ((de = readdir(dir)) != NULL) {
			if (!folder_name_ok(de->d_name) || !strcmp(de->d_name, "INBOX") ||
			    fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
				continue;
			cb(arg, de->d_name, subscribed(b, SUBS_MAX, de->d_name) ? FA_SUBSCRIBED : 0);
			n++;
		}
		closedir(dir);
	}
	free(b);
	return n;
}

int
folder_subscribe(const char *user, const char *name, int on)
{
	char d[MBOX_PATH], p[MBOX_PATH], t[MBOX_PATH], *b, *o, *pos = NULL;
	const char *s;
	size_t k = 0;
	int fd, r = -1, found = 0;

	if (is_inbox(name))
		name = "INBOX";
	if (!folder_name_ok(name) || user_dir(user, d, sizeof(d), 1) < 0 ||
	    mbox_path(p, sizeof(p), user, "", ".subscriptions", "") < 0 ||
	    mbox_path(t, sizeof(t), user, "", ".subscriptions.tmp", "") < 0)
		return errno = EINVAL, -1;
	if ((b = malloc(2 * SUBS_MAX)) == NULL)
		return -1;
	o = b + SUBS_MAX;
	if (subs_read(user, b, SUBS_MAX) < 0)
		goto out;
	k = snprintf(o, SUBS_MAX, "V\t2\n\n");
	while ((s = subs_next(b, &pos)) != NULL) {
		if (!strcmp(s, name)) {
			found = 1;
			if (!on)
				continue;
		}
		k += snprintf(o + k, SUBS_MAX - k, "%s\n", s);
	}
	if (on && !found)
		k += snprintf(o + k, SUBS_MAX - k, "%s\n", name);
	if (k >= SUBS_MAX) {
		errno = ENOSPC;
		goto out;
	}
	if ((fd = open(t, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
		goto out;
	r = write(fd, o, k) == (ssize_t)k && fdatasync(fd) == 0 && rename(t, p) == 0 ? 0 : -1;
	close(fd);
	if (r < 0)
		unlink(t);
out:
	free(b);
	return r;
}

#endif

/* ---- the daemon ---- */

#if IMAP_PARTS
/* A rename a crash interrupted: finish it from its intent. */
static void
rename_recover(const char *user)
{
	char j[MBOX_PATH], b[2 * FOLDER_NAME_MAX + 4], *to;
	ssize_t n;
	int fd;

	if (mbox_path(j, sizeof(j), user, "", ".rename", "") < 0 || (fd = open(j, O_RDONLY | O_CLOEXEC)) < 0)
		return;
	n = read(fd, b, sizeof(b) - 1);
	close(fd);
	b[n > 0 ? n : 0] = '\0';
	if (n > 0 && (to = strchr(b, '\n')) != NULL && strchr(to + 1, '\n')) {
		*to++ = '\0';
		*strchr(to, '\n') = '\0';
		if (folder_name_ok(b) && folder_name_ok(to) && rename_files(user, b, to) == 0)
			log_warnx("folder %s: interrupted rename %s -> %s finished", user, b, to);
	}
	if (mbox_sync_dir(user) == 0)
		unlink(j);
}

#endif

void
folder_recover_all(void)
{
	char p[MBOX_PATH];
	struct dirent *de, *fe;
	DIR *d, *u;
	size_t n;

	mbox_recover_all();	/* dotlocks of every folder */
	if (mbox_path(p, sizeof(p), "", "", "", "") < 0 || (d = opendir(p)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (!user_name_ok(de->d_name) || mbox_path(p, sizeof(p), de->d_name, "", "", "") < 0)
			continue;
#if IMAP_PARTS
		rename_recover(de->d_name);
#endif
		if ((u = opendir(p)) == NULL)
			continue;
		while ((fe = readdir(u)) != NULL) {
			n = strlen(fe->d_name);
			if (fe->d_name[0] != '.' || n < 6 || strcmp(fe->d_name + n - 4, ".exp"))
				continue;
			fe->d_name[n - 4] = '\0';
			if (folder_name_ok(fe->d_name + 1))
				mailbox_recover(de->d_name, fe->d_name + 1);
		}
		closedir(u);
	}
	closedir(d);
}

void
folder_shutdown(void)
{
	struct folder *f;

	for (f = folders; f; f = f->next)
		write_dirty(f, 1);
}

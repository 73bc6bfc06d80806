/*
 * folder.h: the store under POP3 and IMAP.  Folders are mbox files; every
 * session that has one open shares one in-memory folder and looks at it
 * through its own small view.  This header is the whole contract: IMAP
 * and POP3 use nothing of folder.c, mailbox.c or stream.c but what is
 * declared here.
 *
 * DESIGN NOTE
 *
 * Files.  data_dir/mail/USER/NAME is folder NAME's mbox (mboxrd, LF,
 * "From " postmarks; the layout Dovecot reads with
 * mail_location = mbox:~/mail:INBOX=~/mail/INBOX, mutt and Python too).
 * Beside it, dot files that a listing never shows: .NAME.idx (the index,
 * always rebuildable from the mbox), .NAME.exp (a compaction's journal),
 * .NAME.kw (keyword names); NAME.lock is the dotlock (mbox.c writes and
 * reads it, nobody else).  .subscriptions is Dovecot's subscription file.
 * One level of folders: "/" is the hierarchy delimiter IMAP announces,
 * but a name containing it is refused (see folder_name_ok).
 *
 * Shared folder, private views.  One struct folder per open (user, name),
 * reference-counted, holds the index records once (24 bytes a message,
 * plus a 4-byte change generation each, in memory only).  A session holds
 * a struct view (under 100 bytes, inside its session struct): what it
 * has been told.  50 sessions on a 5,000-message folder cost one copy of the
 * records (140 KB) plus 50 views, not 50 copies.
 *
 * Generations.  Every change (mail appended by kotak's delivery, APPEND,
 * COPY, MOVE, a flag store, an expunge, a change by another program found
 * by fstat) bumps the folder's generation, stamps the records it touched,
 * and wakes every view's connection through loop_wake() (kotak.h).  A
 * view remembers the generation up to which it was told about flags
 * (fgen) and expunges (xgen), and the UIDNEXT up to which it was told
 * about new messages (uidnext).  A session's own flag change is not
 * reported back to it when the session was up to date before the change
 * (so STORE .SILENT stays silent); its own expunges are (EXPUNGE needs
 * them).
 *
 * Sequence numbers without per-session arrays.  Records stay in UID
 * order.  A record is in a view when its UID is below view.uidnext and it
 * is live, or it is a tombstone the view has not been told about yet.  A
 * message's sequence number is its rank among the records in the view:
 * the record's index minus the told tombstones before it (the folder
 * keeps the few tombstones in a sorted list).  UID lookups are binary
 * searches.  A message expunged by another session stays in every view
 * that was not told, readable (its bytes stay until compaction) but not
 * changeable, so nothing is renumbered under a FETCH, STORE or SEARCH.
 *
 * Tombstone now, compact later.  Expunging sets a bit in the message's
 * index record (a few bytes written, durable at once for the session that
 * asks: view_sync).  POP3 and IMAP stop showing the message at once.  The
 * bytes leave the mbox later, all tombstones at once, through the
 * crash-safe journal expunge, when nobody can still see them and it is
 * cheap (the tail after the first tombstone is small, or everything after
 * it is deleted), or the folder is quiet (no view open), or the dead
 * bytes pass a threshold.  Until then mutt and Dovecot still see those
 * messages (kotak never writes Status: headers into the mbox).
 *
 * Flags and keywords live in the index record (one byte of system flags,
 * a 16-bit keyword bitmap; 16 keywords a folder, names in .NAME.kw), never
 * in the mbox: a flag change writes one record, the changed records of a
 * folder are written once per loop pass, fdatasync'ed within
 * FOLDER_FLUSH_SECS seconds, at once for view_sync(), and at close.  A
 * power cut can lose the flag changes of the last few seconds, never a
 * message and never an acknowledged expunge.
 *
 * First index of an mbox: Status: (R = \Seen, O = not \Recent),
 * X-Status: (A \Answered, F \Flagged, T \Draft, D \Deleted), X-Keywords:,
 * and Dovecot's X-IMAPbase: (UIDVALIDITY, UIDNEXT, keyword names) and
 * X-UID: are imported when the UIDs ascend, so mail that mutt or Dovecot
 * handled keeps its read state and its UIDs (POP3 UIDLs stay the same).
 *
 * No call does work that grows with a folder's size: indexing, resync
 * after another program's rewrite, compaction, copies and appends run in
 * slices of bounded work per loop pass (at most about a megabyte of I/O),
 * and callers are woken when a slice finishes what they wait for.
 *
 * Return values, for every int function below unless it says otherwise:
 *	0	done
 *	F_WAIT	not yet; the connection given at view_open (or to the
 *		operation) is woken through loop_wake() (its proto->wake)
 *		when calling again is worth it.  Nothing to poll.
 *	-1	failed, errno says why:
 *		ENOENT	no such folder (IMAP: NO [NONEXISTENT])
 *		EEXIST	the folder exists (NO [ALREADYEXISTS])
 *		EINVAL	a bad name or argument (NO [CANNOT])
 *		EBUSY	someone has the folder selected (NO [INUSE])
 *		EROFS	a read-only view (NO [READ-ONLY])
 *		ESTALE	the message was expunged meanwhile (NO [EXPUNGEISSUED])
 *		ENOSPC, EDQUOT	disk full (NO [OVERQUOTA] or [SERVERBUG])
 *		EFBIG	larger than max_message_size (NO [TOOBIG])
 *		EAGAIN	locked by another program for too long (NO [INUSE])
 *		other	I/O error (NO [SERVERBUG])
 */
#ifndef FOLDER_H
#define FOLDER_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct conn;
struct buf;
struct folder;			/* folder.c: opaque */

#define F_WAIT		3

#define FOLDER_NAME_MAX	100	/* bytes of a folder name (the IMAP wire form) */
#define FOLDER_KW_MAX	16	/* keywords a folder can hold */
#define FOLDER_KW_LEN	64	/* bytes of a keyword name */
#define FOLDER_FLUSH_SECS 3	/* flag changes reach the disk within this */

/* Message flags, as view_msg and view_store use them: system flags in the
 * low byte, keyword k (folder_keyword) as bit 16 + k. */
#define MF_SEEN		0x01
#define MF_ANSWERED	0x02
#define MF_FLAGGED	0x04
#define MF_DELETED	0x08
#define MF_DRAFT	0x10
#define MF_RECENT	0x40	/* \Recent in this view (read only) */
#define MF_SYSTEM	0x1f	/* the flags STORE may change */
#define MF_KW(k)	(1u << (16 + (k)))
#define MF_KWALL	0xffff0000u

/* ---- views: a session's window on a shared folder ---- */

enum {
	VM_RW,		/* IMAP SELECT: read-write, claims \Recent */
	VM_RO,		/* IMAP EXAMINE: read-only; sees changes, makes none */
	VM_POP3,	/* POP3: the folder as it was at open.  New mail and
			 * others' expunges stay hidden until close; DELE marks
			 * (view_dele) become expunges only at view_pop3_commit */
	VM_STATUS	/* STATUS: counters only (view_status), nothing claimed */
};

struct view {			/* all fields private: use the functions */
	struct folder *f;	/* NULL: not open */
	struct view *next;	/* the folder's views */
	struct conn *c;		/* woken on changes */
	uint32_t uidnext;	/* messages below this UID are known (EXISTS) */
	uint32_t exists;	/* the count last told */
	uint32_t fgen, xgen;	/* flag changes, expunges told up to these */
	uint32_t rlo, rhi;	/* UIDs [rlo, rhi) are \Recent in this view */
	uint32_t xcur, xtarget;	/* an expunge report under way: UID bound, generation */
	uint32_t fcur, ftarget;	/* a flag report under way */
	uint32_t luid, lepoch;	/* view_read: the message located last */
	uint64_t ls, le;	/* its content on disk */
	uint8_t	 mode, st, xrep, frep;
	uint8_t	*del;		/* VM_POP3: DELE bitmap by sequence number */
};

/* Open folder (user, name) for connection c in mode VM_*.  0: ready;
 * F_WAIT: c is woken when view_ready() may say so (the folder is being
 * indexed, or locked by another program); -1: failed, the view is closed.
 * user is a canonical user name (users_find); name is validated here
 * ("INBOX" in any case is INBOX, which always exists: it is created on
 * first use).  A view must be closed with view_close.  c may be NULL
 * (tests, tools): nobody is woken, the caller calls again itself. */
int	 view_open(struct view *, struct conn *c, const char *user, const char *name, int mode);
int	 view_ready(struct view *);	/* after a wake: 0, F_WAIT, -1 (closed) */
/* Never waits.  A POP3 view's DELE marks are dropped (RFC 1939: only QUIT
 * deletes).  Flag changes are kept and written; pending compaction goes
 * on in the folder after the last view leaves. */
void	 view_close(struct view *);
int	 view_is_open(const struct view *);

/* Counters, any mode.  For STATUS on a folder that is not selected: open
 * a VM_STATUS view, wait for it, read, close.  unseen is the number of
 * messages without \Seen; first_unseen the sequence number of the first
 * of them in this view (SELECT's [UNSEEN]), 0 if none. */
struct fstatus {
	uint32_t messages, recent, unseen, first_unseen;
	uint32_t uidnext, uidvalidity;
};
void	 view_status(struct view *, struct fstatus *);

/* ---- messages of a view ---- */

/* A message as this view sees it; also a cursor for walking the view in
 * sequence order.  Valid across loop passes: a cursor whose records
 * moved (compaction, another program's rewrite) finds its place again
 * by UID on the next call. */
struct vmsg {
	uint32_t msn, uid;
	uint32_t size;		/* RFC822.SIZE: CRLF octets, mboxrd unquoted */
	uint32_t flags;		/* MF_*, MF_RECENT, MF_KW(k) */
	uint8_t	 gone;		/* expunged meanwhile, not yet told to this view:
				 * readable, flags frozen (STORE: ESTALE) */
	uint8_t	 pad[3];
	uint32_t i, epoch;	/* private */
};

uint32_t view_count(const struct view *);	/* the EXISTS this view has told */
/* Seek: 1 found (m filled), 0 none.  by msn: 1..view_count(); by UID:
 * the first message with a UID >= uid (check m->uid for an exact match);
 * next: the message after m. */
int	 view_seek_msn(struct view *, uint32_t msn, struct vmsg *m);
int	 view_seek_uid(struct view *, uint32_t uid, struct vmsg *m);
int	 view_next(struct view *, struct vmsg *m);
/* The highest UID in the view (for "*" in UID sets), 0 when empty. */
uint32_t view_last_uid(struct view *);

/* INTERNALDATE: the date of the message's From_ line (UTC).  0, F_WAIT, -1. */
int	 view_date(struct view *, const struct vmsg *, time_t *);
/* Raw bytes of the message's content as stored (LF line ends, mboxrd
 * quoted), from offset off (0 = the first byte after the From_ line) up to
 * the blank separator line: for the MIME parser.  Bytes read (> 0), 0 at
 * the end, -F_WAIT (woken later), -1 (ESTALE: another program rewrote the
 * folder and the message is gone).  Reads are taken under a reader lock
 * and sized by the caller: there is no shared read cache. */
long	 view_read(struct view *, const struct vmsg *, uint64_t off, char *buf, size_t n);

/* ---- flags and keywords ---- */

enum { FS_SET, FS_ADD, FS_DEL };
/* STORE on one message: op FS_* with flags (MF_SYSTEM | MF_KWALL bits;
 * others ignored).  m->flags is updated.  0; -1 EROFS (read-only view) or
 * ESTALE (m->gone).  Other views are told at their next report; this
 * view is not, if it was up to date (STORE answers FETCH itself unless
 * .SILENT).  Durable within FOLDER_FLUSH_SECS, or at view_sync. */
int	 view_store(struct view *, struct vmsg *m, int op, uint32_t flags);
/* The keyword bit for name (case-insensitive, an IMAP atom: no \, no
 * wildcards, no controls, < FOLDER_KW_LEN bytes): 0..15, or -1 when the
 * folder has no such keyword (add 0), or no room left or a bad name
 * (add 1; errno ENOSPC or EINVAL).  add 1 creates it (PERMANENTFLAGS
 * gets \* while view_kw_room() > 0). */
int	 view_keyword(struct view *, const char *name, int add);
const char *view_keyword_name(struct view *, int k);	/* NULL: unused bit */
int	 view_kw_room(struct view *);	/* keywords that can still be added */

/* ---- expunge ---- */

/* Tombstone message m (IMAP EXPUNGE: the caller walks the \Deleted
 * messages; UID EXPUNGE: those in its set).  0; -1 EROFS, or ESTALE
 * (already gone).  The view then reports it like any other expunge.
 * Make it durable with view_sync before the tagged OK. */
int	 view_expunge(struct view *, struct vmsg *m);
/* POP3: DELE (mark 1, RSET: view_dele_reset), the mark, and at QUIT the
 * commit that turns marks into tombstones, durable (0, F_WAIT, -1). */
void	 view_dele(struct view *, const struct vmsg *m);
int	 view_is_dele(const struct view *, const struct vmsg *m);
void	 view_dele_reset(struct view *);
int	 view_pop3_commit(struct view *);
/* Every change this view made so far (flags, expunges) is on disk:
 * 0, F_WAIT (woken when it is), -1. */
int	 view_sync(struct view *);

/* ---- telling a session what changed ---- */

/* What the view has not been told yet: VC_* bits.  Cheap; also looks
 * (fstat, at most once a second per folder) for another program's
 * changes, which are then indexed in slices and announced by a wake.
 * IMAP: call at the end of every command, and on every wake while
 * IDLE.  POP3 views never have anything to tell. */
#define VC_EXPUNGE	0x01
#define VC_FLAGS	0x02
#define VC_EXISTS	0x04
#define VC_RESET	0x08	/* another program made the UIDs unkeepable (new
				 * UIDVALIDITY): the view is dead; IMAP: "* BYE",
				 * close the connection (as Dovecot); POP3: -ERR */
unsigned view_changes(struct view *);

/* Reports, in this order.  Expunges must not be sent during FETCH, STORE
 * or SEARCH (RFC 3501 7.4.1; UID forms may): skip straight to flags.
 * Each function returns 1 with one response to send and 0 when none is
 * left; call again after sending (the output buffer may fill between two
 * calls: a report resumes where it stopped, across loop passes). */
/* "* msn EXPUNGE"; the numbers are already right for sending in order
 * (highest first), and later msns of the view are renumbered after the
 * last one is taken. */
int	 view_next_expunge(struct view *, uint32_t *msn);
/* "* m->msn FETCH (FLAGS (...))" (add UID m->uid inside UID commands). */
int	 view_next_flags(struct view *, struct vmsg *m);
/* "* exists EXISTS" and "* recent RECENT" when it returns 1. */
int	 view_next_exists(struct view *, uint32_t *exists, uint32_t *recent);

/* ---- streaming message bytes (POP3 RETR/TOP, IMAP BODY[...]<p.n>) ---- */

#define MS_DOTS		0x01	/* dot-stuff lines (POP3) */
#define MS_TOP		0x02	/* POP3 TOP: header, blank line, then `lines` lines */

struct mstream {		/* lives in the session; private fields */
	uint64_t pos, end;	/* content bytes still to read (offsets as view_read's) */
	uint64_t skip, left;	/* output octets to drop, then to send */
	struct vmsg m;
	long	 lines;
	uint8_t	 flags, bol, hdr, pad;
};

/* The whole message: its content (no From_ line, no separator) with CRLF
 * line ends and one '>' taken off ^>+From lines (mboxrd); a last line
 * without LF gets CRLF.  *octets: exactly what mstream_send will emit
 * (m->size, or less with skip/limit: min(limit, size - skip)); with
 * MS_DOTS or MS_TOP the count is not known in advance (*octets = 0).
 * skip, limit: IMAP <origin.size> in output octets (limit UINT64_MAX for
 * all).  0, F_WAIT, -1 (ESTALE: gone). */
int	 mstream_open(struct mstream *, struct view *, const struct vmsg *m, int flags, long lines,
	    uint64_t skip, uint64_t limit, uint64_t *octets);
/* A section found by the MIME parser: raw content bytes [start, end)
 * (offsets as view_read's; start at a line start) whose output is
 * `octets` long (the parser counts CRLF octets and mboxrd unquoting as
 * the scanner does: a line is unquoted when mailbox_quoted() below says
 * so).  Then as mstream_open,
 * *out_octets after skip and limit. */
int	 mstream_section(struct mstream *, struct view *, const struct vmsg *m, uint64_t start,
	    uint64_t end, uint64_t octets, uint64_t skip, uint64_t limit, uint64_t *out_octets);
/* Fill out with the next bytes, reading no more than fits.  0: all sent;
 * 1: out is full, call again once it drained; F_WAIT; -1: failed (the
 * folder was rewritten under us: an IMAP literal already announced
 * cannot be finished: close the connection). */
int	 mstream_send(struct mstream *, struct view *, struct buf *out);
/* Between mstream_burst(1) and mstream_burst(0), within one callback,
 * mstream_send reads MSTREAM_BURST bytes at a time and serves the next
 * calls from them (IMAP FETCH sends many output buffers a pass; a read is
 * 4 system calls: lock, fstat, pread, unlock).  Nothing is kept after
 * mstream_burst(0): no cache between passes or sessions. */
#define MSTREAM_BURST	16384
void	 mstream_burst(int on);
/* Output buffers a sender (FETCH, RETR) fills a pass while the socket
 * takes each at once (conn_flush): a 20 MB message is not 10,000 passes. */
#define STREAM_PASS	32

/* The line at p[0..n) (judged on its first 64 bytes) is mboxrd-quoted,
 * ^>+From : it goes out with one '>' less. */
int	 mailbox_quoted(const char *p, size_t n);

/* ---- appending, copying, moving ---- */

/* An operation that takes loop passes: lives in the session, started by
 * folder_append or folder_copy, then stepped by fop_step after each wake
 * until it returns 0 or -1.  Durable (fsynced, dotlock released and its
 * removal on disk) before it returns 0: answer OK only then. */
struct fop {
	/* results, valid when fop_step returned 0 */
	uint32_t uidvalidity;	/* of the destination */
	uint32_t uid0, n;	/* destination UIDs uid0 .. uid0 + n - 1, in the order
				 * of the sources (ascending UID) */
	/* private */
	struct conn *c;
	struct view *src;
	const uint32_t (*set)[2];
	uint32_t nset, si, suid, cap;
	uint32_t *uids;		/* the sources copied, in order */
	struct folder *dst;
	int	 fd, err;
	uint64_t off, len, done, base;
	uint32_t flags;
	time_t	 date;
	const char *kw;
	uint8_t	 kind, st, move, tries, msg;
};

/* APPEND: the message is in fd [off, off + len) with CRLF line ends (an
 * IMAP literal, spooled first: a message being uploaded is never written
 * under the mailbox lock); stored with LF, mboxrd-quoted, with Status:,
 * X-Status:, X-Keywords:, X-UID:, X-IMAP:, X-IMAPbase: and
 * Content-Length: headers left out (as SMTP does).  flags: MF_SYSTEM
 * bits; keywords: space-separated names (may be NULL); date: INTERNALDATE
 * (0: now).  fd and keywords stay the caller's until the operation
 * ends.  -1 ENOENT: no such folder (IMAP: NO [TRYCREATE]), EFBIG.  Then
 * fop_step. */
int	 folder_append(struct fop *, struct conn *c, const char *user, const char *name, int fd,
	    uint64_t off, uint64_t len, uint32_t flags, const char *keywords, time_t date);
/* COPY (move 0) / MOVE (move 1): the messages of src whose UIDs fall in
 * the sorted, disjoint ranges set[0..nset) (inclusive; an MSN set is
 * first turned into UID ranges with view_seek_msn), into folder name of
 * the same user, flags and keywords with them (\Recent is not copied).
 * set must stay valid until the operation ends.  MOVE then tombstones
 * the sources (durably) and src reports them as expunges (RFC 6851).
 * Copying a folder into itself works. */
int	 folder_copy(struct fop *, struct view *src, const uint32_t (*set)[2], uint32_t nset,
	    const char *name, int move);
int	 fop_step(struct fop *);	/* 0 done, F_WAIT, -1 (nothing was added) */
/* The session went away: undo what is not durable yet, never waits (a
 * MOVE stopped after its copy was durable leaves a copy: no loss). */
void	 fop_abort(struct fop *);

/* ---- folders on disk ---- */

/* A valid folder name: 1..FOLDER_NAME_MAX printable ASCII bytes (IMAP's
 * modified UTF-7 is ASCII), no '/', no leading '.', not "..", no '*',
 * '%' or '\\', not ending in ".lock", not one of kotak's own files; and
 * every path derived from it fits.  "INBOX" in any case names INBOX. */
int	 folder_name_ok(const char *name);
/* Create an empty folder (its directory entry durable).  -1 EEXIST,
 * EINVAL. */
int	 folder_create(const char *user, const char *name);
/* Delete a folder and its files; INBOX cannot be deleted (EINVAL).  -1
 * EBUSY while any view has it open or an operation uses it.  Crash-safe:
 * the folder is either there or gone. */
int	 folder_delete(const char *user, const char *name);
/* Rename, keeping UIDs, UIDVALIDITY and flags.  -1 EBUSY (open), EEXIST,
 * ENOENT, EINVAL (INBOX either side).  Crash-safe: a crash at any step
 * leaves the folder under one of the two names, whole, with its index
 * (finished at the next start). */
int	 folder_rename(const char *user, const char *from, const char *to);
/* The user's folders: INBOX first, then the others in no set order.
 * attr: FA_SUBSCRIBED; FA_NONEXISTENT (with subscribed 1: a subscribed
 * name that does not exist).  subscribed 1: the subscriptions (LSUB),
 * else every folder.  Returns the count, or -1. */
#define FA_SUBSCRIBED	0x01
#define FA_NONEXISTENT	0x02
int	 folder_list(const char *user, int subscribed,
	    void (*cb)(void *arg, const char *name, unsigned attr), void *arg);
/* SUBSCRIBE (on 1) / UNSUBSCRIBE: the .subscriptions file (Dovecot's
 * format), replaced atomically.  Any valid name, existing or not. */
int	 folder_subscribe(const char *user, const char *name, int on);

/* ---- the daemon ---- */

/* At start, before the loop serves anyone: for every user and every
 * folder, a dotlock left by kotak (or dated before this boot) is
 * recovered at once (interrupted appends cut), interrupted compactions
 * and renames are finished. */
void	 folder_recover_all(void);
/* Delivery appended to user's folder and released the lock: index the
 * new mail and wake the views (a no-op when nobody has it open). */
void	 folder_appended(const char *user, const char *name);
/* The daemon is stopping: flush every folder's flags (fdatasync). */
void	 folder_shutdown(void);

#endif

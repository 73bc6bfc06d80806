/*
 * mailbox.h: the index engine under folder.c (nobody else uses it): an
 * mbox (the source of truth) plus a small index beside it,
 * <user dir>/.<folder>.idx, that kotak can always rebuild from the mbox.
 *
 * Index file, version 2: a 64-byte header (struct mb_hdr) and one 24-byte
 * record per message (struct mb_rec), host byte order (the magic number
 * catches a file from the other byte order: it is rebuilt).  A version 1
 * index (48-byte header, same records) is converted in place of a
 * rebuild.  Records are in mbox order, UIDs ascending.  A message spans
 * [off, next record's off) on disk, or up to hdr.size for the last one;
 * its content starts after the From_ line and ends before the blank
 * separator line.  A tombstone (MF_EXPUNGED) keeps its record until
 * compaction removes its bytes; one with MF_NOBYTES has no bytes left (an
 * other program removed the message) and spans nothing.
 *
 * All functions return 0 when done, MB_MORE when they want to be called
 * again (a slice of bounded work was done: the caller comes back in the
 * next loop pass), MB_BUSY when a foreign lock stood in the way (retry in
 * a second), or -1 on an error (errno set).
 */
#ifndef MAILBOX_H
#define MAILBOX_H

#include <stdint.h>
#include "folder.h"

#define MB_MORE		1
#define MB_BUSY		2

/* record flags beyond folder.h's MF_* (on disk) */
#define MF_NOBYTES	0x20	/* a tombstone whose bytes are gone already */
#define MF_EXPUNGED	0x80	/* a tombstone */
/* xflags: in memory only, zero when loaded */
#define MX_USED		0x01	/* an old record matched during a rebuild */
#define MX_COMPACT	0x02	/* chosen for the compaction under way */
#define MX_RECENT	0x04	/* import: Status: without O */

struct mb_rec {
	uint64_t off;		/* the From_ line */
	uint32_t size;		/* octets on the wire: CRLF, mboxrd unquoted, no From_ line */
	uint32_t uid;
	uint32_t hash;		/* FNV-1a of the first 256 bytes from off: identity across rewrites */
	uint8_t	 flags, xflags;
	uint16_t kw;		/* keyword bitmap (.NAME.kw names them) */
};

struct mb_hdr {
	uint32_t magic, uidvalidity, next_uid, count;
	uint64_t size;		/* mbox bytes the index covers */
	int64_t	 mtime;		/* the mbox's mtime (ns) when it was indexed */
	uint32_t clean;		/* the covered part ends with a blank line (or is empty) */
	uint32_t recent;	/* UIDs from here on are \Recent, claimed by nobody yet */
	uint64_t dead;		/* bytes of tombstones still in the mbox */
	uint64_t ino;		/* the mbox's inode (a file renamed over it is another) */
	uint32_t pad;
	uint32_t sum;		/* FNV-1a of the bytes above */
};

struct mb_scan {		/* the resumable mbox scanner */
	uint64_t pos;		/* next byte to read */
	uint64_t end;		/* file size when this pass started */
	uint32_t size, hash, hashed, xuid;
	uint8_t	 bol, blank, in_from, have, rebuild, hdr, touch, import;
	uint32_t base_uv, base_next;	/* X-IMAPbase of the first message */
};

struct mailbox {
	int	 fd;		/* the mbox, read-only; -1: none (empty mailbox) */
	char	 user[USER_MAX];
	char	 folder[FOLDER_NAME_MAX + 1];
	struct mb_rec *rec, *old;	/* anonymous mappings, cap/ocap records */
	uint32_t n, cap, on, ocap, base;
	struct mb_hdr h;	/* the index header as it will be written */
	int64_t	 seen_mtime;	/* mtime at which the open messages were last verified */
	uint8_t	 phase, sub, idx_ok, dirty, rebuilt, keep_old, nkw, kwdirty;
	uint8_t	 loaded;	/* the index file was read: memory is the truth now */
	uint8_t	 append_only;	/* a live folder: scan appended bytes, else fail ESTALE */
	uint8_t	 trust;		/* the dotlock is ours: the last message is whole */
	uint32_t uv_before;	/* UIDVALIDITY before a rebuild */
	uint32_t *aux;		/* the caller's per-record array, moved along by compaction */
	struct mb_scan sc;
	struct mb_rec last;	/* the last record while it is scanned again */
	char	 kw[FOLDER_KW_MAX][FOLDER_KW_LEN];
};

/* Open user's folder and bring its index up to date: call mailbox_sync
 * until it returns 0.  rec[0..n) then holds the messages.  After a
 * rebuild (mb->rebuilt) with keep_old set, old[0..on) still holds the
 * records before it, for the caller to map, until mailbox_drop_old. */
int	 mailbox_open(struct mailbox *, const char *user, const char *folder);
int	 mailbox_sync(struct mailbox *);
void	 mailbox_drop_old(struct mailbox *);
void	 mailbox_close(struct mailbox *);
/* Has the mbox changed since it was indexed (size, mtime, inode)?
 * 1 grown with new messages after the indexed part, 2 anything else, 0 no. */
int	 mailbox_changed(struct mailbox *);
/* Start indexing what changed (mailbox_sync then goes on from it). */
void	 mailbox_restart(struct mailbox *);

/* Message i's content on disk: [*start, *end), its From_ line skipped,
 * after checking that the message is still where the index says.
 * -1 with errno ESTALE: the mbox was rewritten under us; MB_BUSY. */
int	 mailbox_locate(struct mailbox *, uint32_t i, uint64_t *start, uint64_t *end);
/* Read bytes [pos, pos + n) of message i under a reader lock (no cache):
 * bytes read, 0 at EOF, -MB_BUSY, or -1 (ESTALE: message i moved). */
long	 mailbox_read(struct mailbox *, uint32_t i, char *buf, size_t n, uint64_t pos);
uint64_t mailbox_span_end(const struct mailbox *, uint32_t i);

/* Write records [lo, hi) and the header in place (flags, tombstones);
 * sync: fdatasync after. */
int	 mailbox_write(struct mailbox *, uint32_t lo, uint32_t hi, int sync);
int	 mailbox_write_all(struct mailbox *);	/* a new index file, temp + rename */
int	 mailbox_kw_save(struct mailbox *);	/* .NAME.kw, temp + rename */
/* Keyword name[0..n): its bit, -1 unknown (or full, with add 1). */
int	 mailbox_kw(struct mailbox *, const char *name, size_t n, int add);
int	 mailbox_set_records(struct mailbox *, const struct mb_rec *, uint32_t n);

/* Compaction: remove the bytes of the records marked MX_COMPACT (all
 * tombstones), crash-safe, then drop their records and rewrite the
 * index: call until it returns 0.  *from: during the run, reads of
 * records at or after this offset must wait. */
int	 mailbox_compact(struct mailbox *, uint64_t *from);
void	 mailbox_compact_abort(struct mailbox *);
int	 mailbox_compacting(const struct mailbox *);

void	 mailbox_recover(const char *user, const char *folder);	/* at start: a journal left */
uint32_t mailbox_fnv(uint32_t h, const void *p, size_t n);
/* mailbox_quoted: folder.h */

#endif

/*
 * mailbox.h: the mailbox layer shared by POP3 and IMAP: an mbox (the
 * source of truth, mboxrd, readable by mutt, Dovecot and Python) plus a
 * small index beside it, <user dir>/.<folder>.idx (a dot file, so a folder
 * listing never shows it), that kotak can always rebuild from the mbox.
 *
 * Index file: a 48-byte header (struct mb_hdr) and one 24-byte record per
 * message (struct mb_rec), host byte order (the magic number catches a
 * file from the other byte order: it is rebuilt).  Records are in mbox
 * order, UIDs ascending.  A message spans [off, next record's off) on disk,
 * or up to hdr.size for the last one; its content starts after the From_
 * line and ends before the blank separator line.
 *
 * All functions return 0 when done, MB_MORE when they want to be called
 * again (a slice of bounded work was done: the caller comes back in the
 * next loop pass), MB_BUSY when a foreign lock stood in the way (retry in
 * a second), or -1 on an error (errno set).
 */
#ifndef MAILBOX_H
#define MAILBOX_H

#include <stdint.h>

#define MB_MORE		1
#define MB_BUSY		2

/* persistent flags (IMAP system flags) */
#define MF_SEEN		0x01
#define MF_ANSWERED	0x02
#define MF_FLAGGED	0x04
#define MF_DELETED	0x08
#define MF_DRAFT	0x10
/* session flags: cleared when the index is read, never meaningful on disk */
#define MS_DEL		0x01	/* POP3 DELE: remove at expunge */
#define MS_DIRTY	0x02	/* flags changed: write back */
#define MS_GONE		0x04	/* removed by another program during the session */

struct mb_rec {
	uint64_t off;		/* the From_ line */
	uint32_t size;		/* octets on the wire: CRLF, mboxrd unquoted, no From_ line */
	uint32_t uid;
	uint32_t hash;		/* FNV-1a of the first 256 bytes from off: identity across rewrites */
	uint8_t	 flags, sflags;
	uint16_t pad;
};

struct mb_hdr {
	uint32_t magic, uidvalidity, next_uid, count;
	uint64_t size;		/* mbox bytes the index covers */
	int64_t	 mtime;		/* the mbox's mtime (ns) when it was indexed */
	uint32_t clean;		/* the covered part ends with a blank line (or is empty) */
	uint32_t sum;		/* FNV-1a of the bytes above */
	uint32_t pad[2];
};

struct mb_scan {		/* the resumable mbox scanner */
	uint64_t pos;		/* next byte to read */
	uint64_t end;		/* file size when this pass started */
	uint32_t size, hash, hashed;
	uint8_t	 bol, blank, in_from, have, rebuild;
	uint8_t	 touch;		/* nothing to scan: end stays (mail appended meanwhile waits) */
};

struct mailbox {
	int	 fd;		/* the mbox, read-only; -1: none (empty mailbox) */
	char	 user[USER_MAX];
	char	 folder[USER_MAX];
	struct mb_rec *rec, *old;	/* anonymous mappings, cap/ocap records */
	uint32_t n, cap, on, ocap, base;
	struct mb_hdr h;	/* the index header as it will be written */
	int64_t	 seen_mtime;	/* mtime at which the open messages were last verified */
	uint8_t	 phase, sub, idx_ok, dirty;	/* sub: index everything again */
	struct mb_scan sc;
	struct mb_rec last;	/* the last record while it is scanned again */
};

/* Open user's folder and bring its index up to date: call mailbox_sync
 * until it returns 0.  The mailbox then shows n messages in rec[];
 * mail that arrives later shows after the next open. */
int	 mailbox_open(struct mailbox *, const char *user, const char *folder);
int	 mailbox_sync(struct mailbox *);
void	 mailbox_close(struct mailbox *);

/* Message i's content on disk: [*start, *end), its From_ line skipped,
 * after checking that the message is still where the index says.
 * -1 with errno ESTALE: the mbox was rewritten under us. */
int	 mailbox_locate(struct mailbox *, uint32_t i, uint64_t *start, uint64_t *end);
/* Read message i's bytes from pos: up to 32 KiB are read at once under a
 * reader lock (taken and dropped here) and later calls for the same
 * message are served from that copy.  Bytes read, 0 at EOF, -MB_BUSY, or
 * -1 (ESTALE: message i moved). */
long	 mailbox_read(struct mailbox *, uint32_t i, char *buf, size_t n, uint64_t pos);

/* Write changed flags back (a few KiB); remove the MS_DEL messages from the
 * mbox, crash-safe, then rewrite the index: call until it returns 0. */
int	 mailbox_save_flags(struct mailbox *);
int	 mailbox_expunge(struct mailbox *);

/* The mbox was rewritten by another program under an open session: index
 * it again and move the session's records (its message numbers stay) to
 * where their UIDs are now; a message that is gone gets MS_GONE.  -1 when
 * the UIDs could not be kept. */
int	 mailbox_resync(struct mailbox *);
void	 mailbox_recover_all(void);	/* at start: finish interrupted expunges */

/* The line at p[0..n) (at least its first 64 bytes) is mboxrd-quoted: ^>+From */
int	 mailbox_quoted(const char *p, size_t n);
uint32_t mailbox_fnv(uint32_t h, const void *p, size_t n);

#endif

/*
 * mime.h: a MIME push parser (RFC 2045/2046, RFC 5322 headers) that turns a
 * stored message into a part table, for IMAP's BODYSTRUCTURE, ENVELOPE and
 * BODY[section].  Fed the message's bytes as stored in the mbox (LF or CRLF
 * lines, mboxrd-quoted) in slices of any size, BearSSL style: mime_push()
 * as bytes come, mime_end() at the end of the message.
 *
 * Parts are in pre-order: part 0 is the message; the children of a
 * multipart follow it at depth + 1; a message/rfc822 part is followed by one
 * child, the message inside (its header is that message's header).  Offsets
 * are disk offsets from the message's first byte (after the From_ line);
 * sizes are wire octets (CRLF line ends, one '>' off ^>+From  lines), as
 * IMAP counts them and the message streamer sends them.
 *
 * Memory: everything lives in the caller's block (struct mime_slot, a few
 * tens of KiB): part records from its end downwards, captured header values
 * from its start.  Hostile input stays within it: at most MIME_DEPTH levels
 * (deeper multiparts are leaf parts), boundaries up to MIME_BOUNDARY bytes,
 * header values kept up to MIME_FIELD bytes (folded lines joined by an LF; the
 * rest is counted, not kept),
 * and when the block is full no new part starts: the rest of the message is
 * body of the part under way (a 10,000-part message costs what the block
 * holds).  Header lines of any length are fine (only 84 bytes of a line are
 * ever buffered).
 */
#ifndef MIME_H
#define MIME_H

#include <stddef.h>
#include <stdint.h>

#define MIME_DEPTH	16	/* multipart/message nesting followed */
#define MIME_BOUNDARY	80	/* longest boundary (RFC 2046: 70; Dovecot allows 80) */
#define MIME_FIELD	4000	/* bytes of one header value kept */
#define MIME_LKEEP	(MIME_BOUNDARY + 4)	/* bytes of a line looked at */

/* part kinds */
enum { MK_OTHER, MK_TEXT, MK_MULTI, MK_MSG };

/* captured header fields; HF_DATE.. only in message headers (ENVELOPE) */
enum { HF_CTYPE, HF_CTE, HF_CDISP, HF_CLANG, HF_CID, HF_CDESC, HF_CLOC, HF_CMD5,
	HF_DATE, HF_SUBJECT, HF_FROM, HF_SENDER, HF_REPLYTO, HF_TO, HF_CC, HF_BCC,
	HF_INREPLYTO, HF_MSGID, HF_NUM };
#define HF_ENV0	HF_DATE

struct mime_part {
	uint32_t hoff, boff, end;	/* disk: header start, body start, body end */
	uint32_t hsize, bsize, lines;	/* wire octets of header (with its blank line), of body; body lines */
	uint32_t str, nstr;		/* captured fields: [id][len hi][len lo][value] records */
	uint8_t	 depth, kind;
	uint8_t	 msg:1;			/* a message header (ENVELOPE fields kept) */
	uint8_t	 digest:1;		/* multipart/digest */
	uint8_t	 defmsg:1;		/* in a digest: no Content-Type means message/rfc822 */
	uint8_t	 pad;
};

struct mime {
	char	*mem;			/* the block: strings up from mem, parts down from mem + size */
	uint32_t size, used;		/* block size, string bytes used */
	uint32_t n;			/* parts */
	uint8_t	 hdr_only, done, full, st;
	/* parser state */
	uint64_t dpos, wpos, lno;	/* disk offset, wire octets, LFs so far */
	uint32_t lstart;		/* disk offset of the line under way */
	uint32_t seen;			/* fields captured in this header (bits) */
	uint32_t cap, caplen;		/* the field being captured: its length byte offset, bytes */
	uint8_t	 ll, decided, prevcr, quoted, capturing, capcr, eol, act, vstart;
	uint8_t	 nlvl, depth, epi;	/* epi: in an epilogue (after a close delimiter) */
	uint32_t open[MIME_DEPTH + 2];	/* open part at each depth */
	uint32_t wb[MIME_DEPTH + 2], lb[MIME_DEPTH + 2];	/* their body's wire/line start */
	uint32_t wh[MIME_DEPTH + 2];	/* their header's wire start */
	struct {
		uint32_t part;		/* the multipart */
		uint8_t	 len;
		char	 b[MIME_BOUNDARY];
	} lvl[MIME_DEPTH];
	uint32_t pend;			/* disk end of the previous line's content (before its CRLF) */
	char	 line[MIME_LKEEP];
};

/* Start parsing into mem[0..size) (at least 4 KiB).  hdr_only: stop after
 * the message header (part 0's header and body start; enough for
 * ENVELOPE and HEADER fetches): mime_push then returns 1. */
void	 mime_init(struct mime *, void *mem, size_t size, int hdr_only);
/* Feed bytes; 1 once nothing more is wanted (hdr_only), else 0. */
int	 mime_push(struct mime *, const char *, size_t);
/* The message ended: close every open part. */
void	 mime_end(struct mime *);
struct mime_part *mime_part(const struct mime *, uint32_t i);
/* Header field f of part i: its value (not NUL-terminated), length in *n,
 * or NULL when the header has none. */
const char *mime_field(const struct mime *, uint32_t i, int f, size_t *n);
/* The next sibling of part i (or m->n): skips i's subtree. */
uint32_t mime_next(const struct mime *, uint32_t i);

/* Content-Type and friends, RFC 2045 5.1: value = token *(";" param).
 * mime_token reads a token or quoted string from *p (< e) into out
 * (unquoted, NUL-terminated, cut to max): its length, or -1 if none. */
int	 mime_token(const char **p, const char *e, char *out, size_t max, const char *stop);
/* The type/subtype of part i (defaults applied), lower case. */
void	 mime_type(const struct mime *, uint32_t i, char *type, char *sub, size_t max);
/* Parameter name into name, value into val: 1 each, 0 at the end. */
int	 mime_param(const char **p, const char *e, char *name, size_t nmax, char *val, size_t vmax);

/* A small cache of recent messages' part tables, shared by all sessions
 * (MIME_SLOTS blocks of MIME_SLOT bytes, touched only when used).  A key
 * names a message: the folder's id and UIDVALIDITY, and its UID. */
#define MIME_SLOTS	4
#define MIME_SLOT	(48 * 1024)
struct mime_key {
	uint32_t folder, uidvalidity, uid, size;
};
/* The cached table for key, parsed at least as far as hdr_only asks: NULL
 * when not there.  mime_cache_fill reserves a slot to parse into (the least
 * recently used one no session is filling), NULL when all are being filled:
 * try again in the next pass.  Release it with mime_cache_done (ok: keep
 * it) once mime_end was called, or on any error. */
struct mime *mime_cache_get(const struct mime_key *, int hdr_only);
struct mime *mime_cache_fill(const struct mime_key *, int hdr_only);
void	 mime_cache_done(struct mime *, int ok);

#endif

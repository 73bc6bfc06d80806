/* imap.h: the IMAP server (imap.c), its command parser (imap_parse.c) and
 * its renderers (imap_mime.c). */
#ifndef IMAP_H
#define IMAP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "folder.h"
#include "mime.h"


/* imap_mime.c: output that can resume.  Bytes go to p (room left), the
 * first skip bytes are dropped (sent by an earlier pass); n counts every
 * byte produced, full says some did not fit. */
struct isink {
	char	*p;
	size_t	 room, skip, n;
	int	 full;
};
void	 imap_put(struct isink *, const char *, size_t);
void	 imap_puts(struct isink *, const char *);
void	 imap_string(struct isink *, const char *, size_t);	/* quoted or literal */
void	 imap_nstring(struct isink *, const char *, size_t);	/* NIL when NULL */
void	 imap_envelope(struct isink *, const struct mime *, uint32_t part);
void	 imap_bodystructure(struct isink *, const struct mime *, uint32_t part, int ext);

/* imap_parse.c: a cursor over one assembled command; -1 on a syntax
 * error (err then sticks).  Strings are copied NUL-terminated into out
 * (max bytes with the NUL; longer is an error; out NULL: skipped). */
struct icur {
	const char *b, *p, *e;	/* b: where the arguments start */
	int	 err;
};
void	 imap_cur(struct icur *, const char *, size_t);
int	 imap_end(const struct icur *);		/* 1: all consumed, no error */
int	 imap_sp(struct icur *);
int	 imap_atom(struct icur *, char *out, size_t max);
int	 imap_tag(struct icur *, char *out, size_t max);
int	 imap_astring(struct icur *, char *out, size_t max);
int	 imap_skip_value(struct icur *);	/* NIL, a string or a list (bounded depth) */
/* s[0..n) ends in {len} or {len+}: 1, *plus set for LITERAL+ */
int	 imap_literal_at_end(const char *s, size_t n, unsigned long long *len, int *plus);
int	 imap_number(struct icur *, uint32_t *);	/* number (RFC 3501: 32 bits) */
int	 imap_peek(const struct icur *, const char *word);	/* 1: word (any case) comes next */
/* A mailbox name (astring, wildcards refused), checked as modified UTF-7
 * (RFC 3501 5.1.3); "INBOX" in any case becomes INBOX. */
int	 imap_mailbox(struct icur *, char *out, size_t max);
int	 imap_mutf7_ok(const char *);
int	 imap_match(const char *pat, const char *name);	/* LIST: '*' and '%' */
int	 imap_list_mailbox(struct icur *, char *out, size_t max);	/* LIST's pattern */
/* A flag: MF_* (folder.h) of a system flag (MF_RECENT for \Recent), 0 for
 * a keyword (its name into kw), -1 bad (\Unknown, not an atom). */
int	 imap_flag(struct icur *, char *kw, size_t max);
/* date (SEARCH: d-Mon-yyyy, maybe quoted) as days since 1970-01-01;
 * date-time (APPEND: "dd-Mon-yyyy hh:mm:ss +zzzz") as UTC seconds. */
int	 imap_date(struct icur *, long *day);
int	 imap_datetime(struct icur *, time_t *);

/*
 * Sequence sets (RFC 3501 sequence-set) stay text in the command: walked,
 * never expanded into ranges.  The bound is the command's: IMAP_LINE_MAX
 * (8 KiB: about 1,000 ranges of Thunderbird's kind).  A set whose ranges
 * ascend (what clients send) is walked once whatever the number of
 * messages; any other costs one pass over its text per run found.
 */
struct iset {
	const char *s, *e;	/* its text */
	const char *p;		/* an ascending set: where the walk is */
	uint32_t star;		/* what '*' stands for */
	uint32_t last;		/* the last value asked for */
	uint8_t	 sorted;
};
int	 imap_set(struct icur *, struct iset *);	/* parse and check */
void	 iset_star(struct iset *, uint32_t star);	/* before walking */
/* The smallest member >= x: 1 with it in *lo and the end of its range in
 * *hi, 0 when none.  Asking for ascending x is cheapest. */
int	 iset_next(struct iset *, uint32_t x, uint32_t *lo, uint32_t *hi);
uint32_t iset_max(const struct iset *);	/* largest member, '*' resolved */

/* FETCH items (RFC 3501 6.4.5), parsed one at a time from the command
 * text each time a message is answered: nothing is kept but the text. */
enum { FI_FLAGS = 1, FI_UID, FI_DATE, FI_SIZE, FI_ENVELOPE, FI_BODY, FI_BODYSTRUCTURE, FI_SECTION };
enum { SEC_ALL, SEC_HEADER, SEC_FIELDS, SEC_FIELDS_NOT, SEC_TEXT, SEC_MIME };
#define FI_PATH_MAX	20	/* part numbers in a section (deeper: BAD) */
struct fitem {
	uint8_t	 kind, sect, peek, partial;
	uint8_t	 rfc;			/* RFC822 (1), .HEADER (2), .TEXT (3) */
	uint8_t	 npath;
	uint32_t path[FI_PATH_MAX];
	const char *sec, *sece;		/* the section as sent, for the reply */
	const char *fld, *flde;		/* HEADER.FIELDS: inside the parentheses */
	uint32_t origin, size;		/* <origin.size> */
};
/* The items of FETCH's argument: a cursor over the list's inside, one item,
 * or a macro's expansion (ALL, FAST, FULL). */
int	 imap_fetch_att(struct icur *, struct icur *items);
int	 imap_fetch_item(struct icur *, struct fitem *);
/* Header field names of a HEADER.FIELDS list: the next one into out. */
int	 imap_field_next(struct icur *, char *out, size_t max);

/*
 * imap_search.c: SEARCH keys (RFC 3501 6.4.4), checked once, then
 * evaluated by walking their text for each message.  Text keys (FROM, TO,
 * CC, BCC, SUBJECT, HEADER, BODY, TEXT) are case-insensitive (ASCII)
 * substrings of the stored bytes: nothing is decoded (no RFC 2047 words,
 * no base64 or quoted-printable bodies, folded header lines stay folded).
 */
#define SEARCH_TEXT_MAX	32	/* text keys in one SEARCH */
#define SD_INTERNAL	1	/* BEFORE, ON, SINCE */
#define SD_SENT		2	/* SENTBEFORE, SENTON, SENTSINCE */
/* Check the keys: 0, -1 BAD.  *ntext: text keys; *dates: SD_* used. */
int	 imap_search_check(struct icur *, unsigned *ntext, int *dates);
/* One message as SEARCH sees it.  Text keys are numbered in the order of
 * the program; known says which have been looked for, found which are
 * there.  sday: the Date: header's day (LONG_MIN: none or unknown). */
struct smsg {
	uint32_t msn, uid, size, flags;
	uint32_t mstar, ustar;		/* '*' for sequence numbers, for UIDs */
	long	 iday, sday;
	uint32_t found, known;
	int	 sknown;		/* sday is known */
	int	(*keyword)(void *arg, const char *name);	/* its MF_KW bit, -1 none */
	void	*arg;
};
/* 1 matches, 0 does not, 2: cannot tell before the text is scanned. */
int	 imap_search_eval(struct icur *, const struct smsg *);

/* Scanning one message's stored bytes for every text key at once
 * (streaming KMP; the tables are rebuilt from the program for each slice,
 * in a buffer all sessions share: nothing per key is kept but 2 bytes). */
struct sscan {
	uint32_t found;		/* text keys found */
	uint32_t active, pend;	/* header keys whose field this line is / will be after ':' */
	uint32_t body, text;	/* keys that look past the header; TEXT keys */
	uint16_t kmp[SEARCH_TEXT_MAX];
	uint8_t	 hdr, bol, date, ndate;	/* in the header; at a line start; capturing Date: */
	uint8_t	 wdate;			/* the Date: header is wanted (SENT* keys) */
	char	 dbuf[40];
};
/* Build the tables from the program (each slice); 0, -1 (too many keys). */
int	 imap_search_keys(struct icur *);
void	 imap_scan_start(struct sscan *, int sday);	/* sday: SENT* keys need Date: */
/* Feed stored bytes; returns how many were taken (fewer when a header
 * line's field name is cut by the end of p: read again from there; last:
 * the message ends with p).  Sets found bits. */
size_t	 imap_scan(struct sscan *, const char *p, size_t n, int last);
/* Done with the message: 1 when nothing more can be found (every key
 * found, or only header keys remain and the header ended), and the Date:
 * header was seen if wanted. */
int	 imap_scan_done(const struct sscan *);
long	 imap_scan_sday(const struct sscan *);	/* the Date: header's day, LONG_MIN */

/* imap_mime.c: formatted output into a sink (short pieces: numbers,
 * dates, atoms) */
void	 imap_printf(struct isink *, const char *, ...) __attribute__((format(printf, 2, 3)));

/* A message set being walked (FETCH, STORE, SEARCH, EXPUNGE, COPY). */
struct iwalk {
	struct iset set;
	uint32_t x, hi;		/* the next value wanted; the end of the run under way */
	uint8_t	 uid, run;	/* a UID set; a run is under way */
};

/* HEADER.FIELDS[.NOT] of one header: a count pass, then an output pass. */
struct hfilt {
	uint64_t pos, end;	/* the header's stored bytes still to look at */
	uint64_t total;		/* output octets (the count pass's result) */
	uint64_t skip, left;	/* <partial>: octets to drop, then to send */
	uint8_t	 keep, bol, emit, blank;
};

/* FETCH, STORE, SEARCH, EXPUNGE: a command walking messages across passes. */
struct imsg {
	struct iwalk w;
	struct vmsg m;
	struct icur items;	/* FETCH items; SEARCH program */
	const char *ip;		/* FETCH: the item under way */
	uint32_t flags;		/* STORE: the flags; FETCH: FN_* needs */
	uint32_t nout;		/* items (FETCH) or hits (SEARCH) out for this message/command */
	uint8_t	 ph, op, silent, seen, err, sect;
	uint16_t ntext;		/* SEARCH: text keys */
	int	 dates;		/* SEARCH: SD_* */
	uint64_t off;		/* reading the message: where */
	uint64_t start, end, octets;	/* FETCH: the section under way */
	long	 iday;
	struct mime *mp;	/* a part table being filled */
	union {
		struct mstream ms;
		struct sscan sc;
		struct hfilt hf;
	} u;
};

/* COPY, MOVE, APPEND: a folder operation and what COPYUID reports. */
struct iop {
	struct fop op;
	uint32_t (*set)[2];	/* COPY: the UID ranges (malloc'ed) */
	uint32_t nset;
	uint8_t	 move;
};

/*
 * imap.c: the session, in the connection slot.  The command being
 * assembled lives in a per-slot buffer of CONFIG_IMAP_LINE_MAX bytes in
 * imap.c (touched only by IMAP sessions); it stays there, and is parsed
 * again, while the command runs across loop passes.
 */
struct imap_sess {
	uint8_t	 st, errors, fails, ready, skip;
	uint8_t	 run;			/* R_*: the command running across passes */
	uint8_t	 uid;			/* it is a UID command */
	uint8_t	 rx;			/* EXPUNGE responses may end it (RFC 3501 7.4.1); 2: LSUB */
	uint8_t	 ntail, tofile, toobig, rpend;
	uint8_t	 ro;			/* the selected folder is read-only (EXAMINE) */
	uint32_t len, vlen;		/* bytes in cmd; where the verb starts */
	uint64_t lit;			/* literal bytes due (LITERAL+ may announce 4 GB and more) */
	uint32_t sent;			/* octets of the output unit under way already out */
	uint32_t uidvalidity, fid;	/* the selected folder's, for the MIME cache */
	uint32_t k;			/* a step's counter (lines, entries) */
	int	 fd;			/* APPEND: the literal, spooled; -1 */
	uint64_t alen;
	char	*cmd;
	char	 tag[64];
	char	 tail[24];		/* the end of an overlong line: a literal announced there? */
	char	 user[USER_MAX];
	char	 sel[FOLDER_NAME_MAX + 1];	/* the selected folder */
	char	 ok[120];		/* the tagged reply, once the command is done */
	struct view v;			/* the selected folder */
	struct vmsg rm;			/* a flag report under way */
	union {
		struct imsg m;
		struct iop o;
		struct view sv;			/* STATUS */
		char	 pat[2 * FOLDER_NAME_MAX + 2];	/* LIST, LSUB */
	} x;
};
extern const struct proto imap_proto;

/* imap.c for imap_fetch.c */
enum { R_NONE, R_OPEN, R_SELOUT, R_STATUS, R_LIST, R_FETCH, R_STORE, R_SEARCH, R_EXPUNGE, R_SYNC,
	R_COPY, R_COPYUID, R_APPEND, R_IDLE, R_REPORT, R_BYE };
void	 imap_bad(struct conn *, const char *);
/* What the folder layer has not told yet: EXPUNGE (xok), FETCH FLAGS,
 * EXISTS.  0 all told, 1 the output is full (or the session ends). */
int	 imap_report(struct conn *, int xok);
void	 imap_finish(struct conn *);	/* the command is over, its tagged reply sent */
void	 imap_done(struct conn *, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *imap_errcode(int err);
void	 imap_unit_begin(struct conn *, struct isink *);
int	 imap_unit_end(struct conn *, struct isink *);	/* 1 whole, 0 the output is full */
void	 imap_flags(struct conn *, struct isink *, uint32_t flags);	/* FLAGS (...) */
int	 imap_flag_list(struct icur *, uint32_t *sys, char *kw, size_t kwmax, int paren);
/* imap_fetch.c: the commands that walk messages */
void	 imap_walk_start(struct iwalk *, const struct iset *, int uid);
int	 imap_walk(struct view *, struct iwalk *, struct vmsg *);	/* 1 next message, 0 none */
void	 imap_c_fetch(struct conn *, struct icur *, int);
void	 imap_c_store(struct conn *, struct icur *, int);
void	 imap_c_search(struct conn *, struct icur *, int);
void	 imap_c_copy(struct conn *, struct icur *, int move);
int	 imap_fetch_step(struct conn *);
int	 imap_store_step(struct conn *);
int	 imap_search_step(struct conn *);
int	 imap_copyuid_step(struct conn *);
void	 imap_msg_end(struct conn *);	/* release what a message command holds */

#endif

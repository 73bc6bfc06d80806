/* imap.h: the IMAP server (imap.c), its command parser (imap_parse.c) and
 * its renderers (imap_mime.c). */
#ifndef IMAP_H
#define IMAP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct mime;

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
/* A flag: MF_* (folder.h) of a system flag (MF_RECENT for \Recent), 0 for
 * a keyword (its name into kw), -1 bad (\Unknown, not an atom). */
int	 imap_flag(struct icur *, char *kw, size_t max);
/* date (SEARCH: d-Mon-yyyy, maybe quoted) as days since 1970-01-01;
 * date-time (APPEND: "dd-Mon-yyyy hh:mm:ss +zzzz") as UTC seconds. */
int	 imap_date(struct icur *, long *day);
int	 imap_datetime(struct icur *, time_t *);
long	 imap_days(long y, unsigned m, unsigned d);

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

/* imap.c: the session, in the connection slot.  The command being
 * assembled lives in a per-slot buffer of CONFIG_IMAP_LINE_MAX bytes in
 * imap.c (touched only by IMAP sessions). */
struct imap_sess {
	uint8_t	 st, errors, fails, ready, skip;
	uint32_t len, vlen, lit;	/* bytes in cmd; where the verb starts; literal bytes due */
	char	*cmd;
	char	 tag[64];
	char	 tail[24];		/* the end of an overlong line: a literal announced there? */
	uint8_t	 ntail;
	char	 user[64];
};
extern const struct proto imap_proto;

#endif

/* imap.h: the IMAP server (imap.c), its command parser (imap_parse.c) and
 * its renderers (imap_mime.c). */
#ifndef IMAP_H
#define IMAP_H

#include <stddef.h>
#include <stdint.h>

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
 * (max bytes with the NUL; longer is an error). */
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

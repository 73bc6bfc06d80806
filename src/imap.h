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

#endif

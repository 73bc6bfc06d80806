/*
 * data.c: the DATA phase as a push parser.  Bytes from the socket go in;
 * message bytes with LF line ends go out to the spool file.
 *
 * - Only CRLF "." CRLF after a CRLF-ended line ends the message.  A bare LF
 *   ends a line of content (stored as LF) but can never start the end
 *   marker, and a bare CR is plain content: `\n.\n`, `\r.\r`, `\n.\r\n`
 *   never split a message (SMTP smuggling, CVE-2023-51764).  Relaying
 *   writes CRLF and dot-stuffs again, so what we store cannot smuggle either.
 * - Dot-unstuffing: one leading "." is removed from every line.
 * - In the header section, Status, X-Status, X-UID, X-IMAP, X-IMAPbase,
 *   X-Keywords and Content-Length headers are dropped (with their folded
 *   continuation lines): a sender must not forge mbox flags or UIDs or
 *   hide a message behind a Content-Length.  Received: headers are counted.
 * - Sticky errors (size, line length, write): parsing goes on to the end
 *   marker, so the reply comes once, at the end.
 */
#include "kotak.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

enum { D_BOL, D_DOT, D_DOTCR, D_MID, D_CR };	/* transport states */
enum { H_BOL, H_NAME, H_PASS, H_SKIP, H_BODY };	/* header filter states */

static char out[8192];	/* shared: one data_push runs at a time */
static size_t olen;

static const char *const strip[] = {
	"status", "x-status", "x-uid", "x-imap", "x-imapbase", "x-keywords", "content-length", NULL
};

static void
flush(struct data_rd *d)
{
	size_t off = 0;
	ssize_t n;

	while (off < olen && d->err != DE_IO) {
		n = write(d->fd, out + off, olen - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			d->err = DE_IO;
			d->err_errno = n < 0 ? errno : ENOSPC;
			break;
		}
		off += n;
		d->written += n;
	}
	olen = 0;
}

static void
emit(struct data_rd *d, const char *p, size_t n)
{
	if (d->err)
		return;
	while (n) {
		size_t c = sizeof(out) - olen < n ? sizeof(out) - olen : n;
		memcpy(out + olen, p, c);
		olen += c, p += c, n -= c;
		if (olen == sizeof(out))
			flush(d);
	}
}

/* The header name kept in d->hname is this one (any case)? */
static int
hname_is(struct data_rd *d, const char *name)
{
	return strlen(name) == d->hlen && !strncasecmp(d->hname, name, d->hlen);
}

static int
hname_stripped(struct data_rd *d)
{
	int i;

	for (i = 0; strip[i]; i++)
		if (hname_is(d, strip[i]))
			return 1;
	return 0;
}

/* Take back the header line emitted so far (a field to drop): from the
 * buffer, or from the file when a push ended in its name. */
static void
retract(struct data_rd *d)
{
	long long back = d->written + (long long)olen - d->hpos;
	off_t end;

	if (d->err)
		return;
	if ((long long)olen >= back) {
		olen -= back;
		return;
	}
	back -= olen;
	olen = 0;
	if ((end = lseek(d->fd, 0, SEEK_CUR)) < back || ftruncate(d->fd, end - back) < 0 ||
	    lseek(d->fd, end - back, SEEK_SET) < 0) {
		d->err = DE_IO;
		d->err_errno = errno;
		return;
	}
	d->written -= back;
}

/* One content byte (line ends already reduced to '\n') through the header filter. */
static void
content(struct data_rd *d, char c)
{
	if (c == '\n')
		d->linelen = 0;
	else if (++d->linelen > CONFIG_DATA_LINE_MAX && !d->err)
		d->err = DE_LINE;
	if (++d->size > d->max && !d->err)
		d->err = DE_SIZE;

	switch (d->hst) {
	case H_BODY:
	case H_PASS:
		emit(d, &c, 1);
		break;
	case H_SKIP:
		break;
	case H_BOL:
		if (c == '\n') {		/* blank line: the body starts */
			d->hst = H_BODY;
			emit(d, &c, 1);
			return;
		}
		if (c == ' ' || c == '\t') {	/* folded continuation */
			d->hst = d->skip ? H_SKIP : H_PASS;
			if (!d->skip)
				emit(d, &c, 1);
			break;
		}
		d->hlen = d->nlen = d->nul = d->skip = 0;
		d->hpos = d->written + (long long)olen;
		d->hst = H_NAME;
		/* fall through */
	case H_NAME:
		/* the name ends at ':', maybe after blanks (RFC 5322 4.5's
		 * obsolete syntax, which Dovecot accepts: so must the filter),
		 * however many; bytes go out as they come and a field to drop
		 * is taken back at its ':' (readers compare the name as a C
		 * string, so a NUL ends it) */
		if (c == ':') {
			d->received += hname_is(d, "received");
			if ((d->skip = hname_stripped(d))) {
				retract(d);
				d->hst = H_SKIP;
				break;
			}
			d->hst = H_PASS;
		} else if (c == ' ' || c == '\t') {
			d->nlen = 1;
		} else if (c == '\n' || d->nlen || d->hlen == sizeof(d->hname)) {
			d->hst = H_PASS;	/* not a field we drop */
		} else if (c == '\0') {
			d->nul = 1;
		} else if (!d->nul) {
			d->hname[d->hlen++] = c;
		}
		emit(d, &c, 1);
		break;
	}
	if (c == '\n' && d->hst != H_BODY)
		d->hst = H_BOL;
}

void
data_start(struct data_rd *d, int fd, long long max)
{
	memset(d, 0, sizeof(*d));
	d->fd = fd;
	d->max = max;
	d->prev_crlf = 1;	/* the DATA command line ended in CRLF */
	d->st = D_BOL;
	d->hst = H_BOL;
	olen = 0;
}

/*
 * Feed n bytes; returns how many were used.  *done is set when the end
 * marker was consumed (bytes after it belong to the next command).  All
 * output is flushed to the file before returning.
 */
size_t
data_push(struct data_rd *d, const char *p, size_t n, int *done)
{
	size_t i;

	*done = 0;
	for (i = 0; i < n && !*done; i++) {
		char c = p[i];

		switch (d->st) {
		case D_BOL:
			if (c == '.') {
				d->st = D_DOT;
				break;
			}
			d->st = D_MID;
			/* fall through */
		case D_MID:
		mid:
			if (c == '\r')
				d->st = D_CR;
			else if (c == '\n') {	/* bare LF: a line end, never an end marker */
				content(d, '\n');
				d->prev_crlf = 0;
				d->st = D_BOL;
			} else
				content(d, c);
			break;
		case D_CR:
			if (c == '\n') {
				content(d, '\n');
				d->prev_crlf = 1;
				d->st = D_BOL;
				break;
			}
			content(d, '\r');	/* bare CR is content */
			d->st = D_MID;
			goto mid;
		case D_DOT:	/* the leading dot is dropped (unstuffing) */
			if (c == '\r') {
				d->st = D_DOTCR;
				break;
			}
			d->st = D_MID;
			goto mid;
		case D_DOTCR:
			if (c == '\n' && d->prev_crlf) {
				*done = 1;
				break;
			}
			d->st = D_CR;	/* ".\r" then something: content "\r..." */
			i--;		/* re-read c in D_CR */
			break;
		}
	}
	flush(d);
	return i;
}

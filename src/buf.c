/* buf.c: fixed-capacity byte buffer and a bounded line reader (no malloc). */
#include "kotak.h"

#include <stdio.h>
#include <string.h>

void
buf_init(struct buf *b, char *mem, size_t cap)
{
	b->p = mem;
	b->len = 0;
	b->cap = cap;
}

size_t
buf_room(const struct buf *b)
{
	return b->cap - b->len;
}

int
buf_add(struct buf *b, const void *d, size_t n)
{
	if (n > buf_room(b))
		return -1;
	memcpy(b->p + b->len, d, n);
	b->len += n;
	return 0;
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;
	size_t room = buf_room(b);

	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= room)
		return -1;	/* nothing counted: the partial bytes stay beyond len */
	b->len += n;
	return 0;
}

void
buf_drop(struct buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
}

/*
 * Find one LF-terminated line.  Returns the bytes it spans (to pass to
 * buf_drop once the line is used), 0 when no whole line is buffered yet.
 * *line points into the buffer, NUL-terminated with CRLF (or LF) cut off;
 * it is valid until the next buf_drop.  An embedded NUL shows up as a
 * string shorter than the returned span minus its line end.
 */
/* Undo buf_line's cut on a line of span n: it stays in the buffer, whole
 * (a line that must wait, as for the login brake). */
void
buf_line_keep(char *line, long n)
{
	if (n >= 2 && line[n - 2] == '\0')
		line[n - 2] = '\r';
	line[n - 1] = '\n';
}

long
buf_line(struct buf *b, char **line)
{
	char *lf = memchr(b->p, '\n', b->len);
	size_t n;

	if (lf == NULL)
		return 0;
	n = lf - b->p + 1;
	*lf = '\0';
	if (lf > b->p && lf[-1] == '\r')
		lf[-1] = '\0';
	*line = b->p;
	return (long)n;
}

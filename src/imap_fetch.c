/*
 * imap_fetch.c: the IMAP commands that walk messages: FETCH, STORE,
 * SEARCH, COPY and MOVE (and EXPUNGE's walk, in imap.c).  Each is a step
 * function that imap.c calls again on every wake and output drain, so a
 * command over 10,000 messages, a 20 MB BODY[] or a SEARCH BODY through
 * 100 MB goes out a bounded slice per loop pass: message bytes stream
 * from the mbox as the socket drains (folder.h mstream), part tables come
 * from the shared MIME cache (mime.c), and nothing grows with a message's
 * size.  Output that does not fit resumes where it stopped (imap.c's
 * units).
 */
#include "kotak.h"
#include "imap.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* the session needs the store's IMAP parts (kotak.h IMAP_PARTS): an IMAP=n
 * build that links every source (make asan) leaves it out */
#if IMAP_PARTS

#define READ_PASS	(256 * 1024)	/* bytes read per pass to parse or search */
#define STORE_PASS	2000		/* messages changed per pass */
#define SEARCH_PASS	5000		/* messages looked at per pass (flags, dates) */

/* what FETCH's items need (imsg.flags) */
#define FN_HDR		0x01	/* the message header's part table */
#define FN_ALL		0x02	/* the whole part table */
#define FN_SEEN		0x04	/* a BODY[...] without PEEK: sets \Seen */
#define FN_FLAGS	0x08	/* FLAGS asked for */
#define FN_UID		0x10	/* UID asked for */

/* FETCH's phases (imsg.ph) */
enum { P_NEXT, P_TABLE, P_OPEN, P_ITEM, P_BODY, P_COUNT, P_FIELDS, P_CLOSE };
/* how a section goes out (imsg.sect) */
enum { SK_NONE, SK_WHOLE, SK_RANGE, SK_FIELDS, SK_EMPTY };

static char rb[16384];	/* read buffer: used within one call, by anyone */
static long fetch_left;	/* FETCH: bytes the part tables and field filters may still read this pass */

/* ---- walking a message set ---- */

void
imap_walk_start(struct iwalk *w, const struct iset *set, int uid)
{
	memset(w, 0, sizeof(*w));
	w->set = *set;
	w->uid = uid;
	w->x = 1;
}

/* The next message of the set, in ascending order: 1 (m filled), 0 none.
 * Runs of UIDs that hold no message are jumped over (binary search). */
int
imap_walk(struct view *v, struct iwalk *w, struct vmsg *m)
{
	uint32_t lo, hi, got;

	for (;;) {
		if (!w->run) {
			if (w->x == 0 || !iset_next(&w->set, w->x, &lo, &hi))
				return 0;
			w->x = lo;
			w->hi = hi;
			w->run = 1;
		}
		if (w->x > w->hi) {
			w->run = 0;
			continue;
		}
		if (!(w->uid ? view_seek_uid(v, w->x, m) : view_seek_msn(v, w->x, m)))
			return 0;
		got = w->uid ? m->uid : m->msn;
		if (got > w->hi) {	/* no message left in this run */
			w->run = 0;
			w->x = got;
			continue;
		}
		w->x = got + 1;	/* 0 after the last UID: done */
		if (!w->x)
			w->run = 0;
		return 1;
	}
}

/* A set argument: '*' resolved; a sequence number beyond EXISTS is BAD
 * (as Dovecot).  1, or a BAD went out. */
static int
set_arg(struct conn *c, struct iset *set)
{
	struct imap_sess *s = &c->u.imap;

	iset_star(set, s->uid ? view_last_uid(&s->v) : view_count(&s->v));
	if (!s->uid && iset_max(set) > view_count(&s->v)) {
		imap_bad(c, "Invalid message set: no such message.");
		return 0;
	}
	return 1;
}

void
imap_msg_end(struct conn *c)
{
	struct imsg *f = &c->u.imap.x.m;

	if (f->mp)
		mime_cache_done(f->mp, 0);
	f->mp = NULL;
}

/* ---- FETCH ---- */

void
imap_c_fetch(struct conn *c, struct icur *a, int arg)
{
	struct imap_sess *s = &c->u.imap;
	struct imsg *f = &s->x.m;
	struct icur it, p;
	struct fitem fi;
	struct iset set;

	if (imap_set(a, &set) < 0 || imap_sp(a) < 0 || imap_fetch_att(a, &it) < 0 || !imap_end(a)) {
		imap_bad(c, "Syntax: FETCH set items");
		return;
	}
	if (!set_arg(c, &set))
		return;
	memset(f, 0, sizeof(*f));
	imap_walk_start(&f->w, &set, s->uid);
	f->items = it;
	for (p = it; p.p < p.e;) {	/* what the items need, once */
		if (p.p > it.p)
			imap_sp(&p);
		imap_fetch_item(&p, &fi);
		f->flags |= fi.kind == FI_FLAGS ? FN_FLAGS : fi.kind == FI_UID ? FN_UID :
		    fi.kind == FI_ENVELOPE ? FN_HDR : fi.kind == FI_BODY || fi.kind == FI_BODYSTRUCTURE ? FN_ALL : 0;
		if (fi.kind == FI_SECTION) {
			f->flags |= fi.peek ? 0 : FN_SEEN;
			f->flags |= fi.npath ? FN_ALL : fi.sect != SEC_ALL ? FN_HDR : 0;
		}
	}
	s->rx = s->uid;
	s->run = R_FETCH;
}

/* The part table of the message under way, parsed a slice per pass into
 * the shared cache: 0 with *mt, 1 wait (woken), -1 the message is gone. */
static int
table(struct conn *c, struct mime **mt)
{
	struct imap_sess *s = &c->u.imap;
	struct imsg *f = &s->x.m;
	struct mime_key k = { s->fid, s->uidvalidity, f->m.uid, f->m.size };
	int hdr = !(f->flags & FN_ALL), done = 0;
	long r;

	if (!f->mp && (*mt = mime_cache_get(&k, hdr)) != NULL)
		return 0;
	if (!f->mp) {
		if ((f->mp = mime_cache_fill(&k, hdr)) == NULL) {
			loop_wake(c, 0);	/* every slot is being filled: the next pass */
			return 1;
		}
		f->off = 0;
	}
	while (!done && fetch_left > 0) {
		r = view_read(&s->v, &f->m, f->off, rb, sizeof(rb));
		if (r == -F_WAIT)
			return 1;
		if (r < 0) {
			imap_msg_end(c);
			return -1;
		}
		f->off += r;
		fetch_left -= r;
		done = r == 0 || mime_push(f->mp, rb, r);
	}
	if (!done) {
		loop_wake(c, 0);
		return 1;
	}
	mime_end(f->mp);
	mime_cache_done(f->mp, 1);
	f->mp = NULL;
	*mt = mime_cache_get(&k, hdr);
	return *mt ? 0 : 1;
}

/* Where section fi is: f->sect SK_*, and for SK_RANGE / SK_FIELDS the
 * stored bytes [start, end) and (SK_RANGE) their octets.  The part path
 * as Dovecot walks it: a multipart's children by number, a non-multipart
 * only 1, a message/rfc822 entered when the path goes on; a part that
 * does not exist is empty. */
static void
resolve(struct imsg *f, const struct mime *mt, const struct fitem *fi)
{
	const struct mime_part *p;
	uint32_t i = 0, j, n, k;

	f->sect = SK_EMPTY;
	for (k = 0; k < fi->npath; k++) {
		p = mime_part(mt, i);
		if (p->kind == MK_MULTI) {
			for (j = i + 1, n = 1; n < fi->path[k] && j < mt->n && mime_part(mt, j)->depth == p->depth + 1; n++)
				j = mime_next(mt, j);
			if (j >= mt->n || mime_part(mt, j)->depth != p->depth + 1)
				return;
			i = j;
		} else if (fi->path[k] != 1 || (k + 1 < fi->npath && p->kind != MK_MSG)) {
			return;
		}
		if (k + 1 < fi->npath && mime_part(mt, i)->kind == MK_MSG && ++i >= mt->n)
			return;
	}
	p = mime_part(mt, i);
	if (fi->sect == SEC_ALL && !fi->npath) {
		f->sect = SK_WHOLE;
		return;
	}
	if (fi->sect != SEC_ALL && fi->sect != SEC_MIME && fi->npath) {	/* n.HEADER, n.TEXT */
		if (p->kind != MK_MSG || i + 1 >= mt->n)
			return;
		p = mime_part(mt, i + 1);
	}
	f->sect = fi->sect == SEC_FIELDS || fi->sect == SEC_FIELDS_NOT ? SK_FIELDS : SK_RANGE;
	if (fi->sect == SEC_ALL || fi->sect == SEC_TEXT) {
		f->start = p->boff;
		f->end = p->end;
		f->octets = p->bsize;
		if (!fi->npath) {	/* the message's TEXT: known from its header alone */
			f->end = UINT64_MAX;
			f->octets = f->m.size > p->hsize ? f->m.size - p->hsize : 0;
		}
	} else {
		f->start = p->hoff;
		f->end = p->boff;
		f->octets = p->hsize;
	}
}

/* Is header field name[0..n) in HEADER.FIELDS's list? */
static int
listed(const struct fitem *fi, const char *name, size_t n)
{
	struct icur l;
	char b[80];
	int k;

	imap_cur(&l, fi->fld, fi->flde - fi->fld);
	while (l.p < l.e && (k = imap_field_next(&l, b, sizeof(b))) >= 0)
		if ((size_t)k == n && !strncasecmp(b, name, n))
			return 1;
	return 0;
}

/* Output of the field filter: in the count pass, counted; in the output
 * pass, <partial>'s skip and limit applied.  Bytes of p taken. */
static size_t
hout(struct conn *c, struct hfilt *h, const char *p, size_t n)
{
	size_t d, w;

	if (!h->emit) {
		h->total += n;
		return n;
	}
	d = h->skip < n ? h->skip : n;
	h->skip -= d;
	w = n - d < h->left ? n - d : h->left;
	w = w < buf_room(&c->out) ? w : buf_room(&c->out);
	buf_add(&c->out, p + d, w);
	h->left -= w;
	return h->left ? d + w : n;
}

/*
 * HEADER.FIELDS[.NOT]: the lines of the header whose field is (not) in
 * the list, continuation lines with their field, CRLF line ends, one '>'
 * off quoted lines (as the streamer), then the blank line (FIELDS.NOT:
 * when the header ends in one).  The same walk
 * counts (emit 0) and then sends: 0 done, 1 the output is full, 2 the next
 * pass (a long header), -1 the message is gone.
 */
static int
fields(struct conn *c, const struct fitem *fi)
{
	struct imap_sess *s = &c->u.imap;
	struct hfilt *h = &s->x.m.u.hf;
	long r;
	size_t i, k, want, got;
	const char *q, *e;
	int not = fi->sect == SEC_FIELDS_NOT;

	while (h->pos < h->end) {
		if (h->emit && (!h->left || buf_room(&c->out) < 2))
			return h->left ? 1 : 0;
		if (fetch_left <= 0) {
			loop_wake(c, 0);
			return 2;
		}
		want = h->end - h->pos < sizeof(rb) ? h->end - h->pos : sizeof(rb);
		if ((r = view_read(&s->v, &s->x.m.m, h->pos, rb, want)) == -F_WAIT)
			return 1;
		if (r <= 0)
			return -1;
		fetch_left -= r;
		for (i = 0; i < (size_t)r;) {
			if (h->bol) {
				if (rb[i] == '\n' || (rb[i] == '\r' && i + 1 < (size_t)r && rb[i + 1] == '\n')) {
					h->end = h->pos + i;	/* the blank line: the header ends */
					h->blank = 1;
					break;
				}
				e = memchr(rb + i, '\n', r - i);
				if (e == NULL && (size_t)r - i < 1024 && (size_t)r == want && want == sizeof(rb))
					break;	/* read again from this line's start */
				if (rb[i] != ' ' && rb[i] != '\t') {
					q = memchr(rb + i, ':', (e ? e : rb + r) - (rb + i));
					for (k = q ? q - (rb + i) : 0; k && (rb[i + k - 1] == ' ' || rb[i + k - 1] == '\t'); k--)
						;
					h->keep = (q && listed(fi, rb + i, k)) != not;
				}
				h->bol = 0;
				k = e ? (size_t)(e + 1 - (rb + i)) : (size_t)r - i;
				if (h->keep && mailbox_quoted(rb + i, k < 64 ? k : 64))
					i++;
			}
			e = memchr(rb + i, '\n', r - i);
			k = (e ? (size_t)(e - (rb + i)) : r - i);
			if (e && k && rb[i + k - 1] == '\r')
				k--;
			if (h->keep && k) {
				got = hout(c, h, rb + i, k);
				i += got;
				if (got < k) {
					h->pos += i;
					return 1;
				}
			} else {
				i += k;
			}
			if (!e) {
				i = r;
				break;
			}
			if (h->keep) {
				if (h->emit && buf_room(&c->out) < 2 && h->left) {
					h->pos += i;
					return 1;
				}
				hout(c, h, "\r\n", 2);
			}
			i = e - rb + 1;
			h->bol = 1;
		}
		h->pos += i;
		if ((size_t)r < want)
			break;
	}
	h->blank |= !not;	/* as Dovecot: FIELDS always ends in one, FIELDS.NOT as the header did */
	if (h->blank && h->emit && h->left && buf_room(&c->out) < 2)
		return 1;
	h->pos = h->end;
	if (h->blank && (h->emit ? h->left : 1))
		hout(c, h, "\r\n", 2);
	return 0;
}

static void
date_str(char *b, size_t n, time_t t)
{
	static const char mon[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(b, n, "\"%02d-%.3s-%d %02d:%02d:%02d +0000\"", tm.tm_mday, mon + 3 * tm.tm_mon,
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* A section's name in the reply: BODY[<as asked, in capitals>]<origin> */
static void
section_name(struct isink *o, const struct fitem *fi)
{
	static const char *const rfc[] = { "", "RFC822", "RFC822.HEADER", "RFC822.TEXT" };
	char b[80];
	const char *p;
	struct icur l;
	int k;

	if (fi->rfc) {
		imap_puts(o, rfc[fi->rfc]);
		return;
	}
	imap_puts(o, "BODY[");
	for (p = fi->sec; p < (fi->fld ? fi->fld : fi->sece); p++) {
		b[0] = *p >= 'a' && *p <= 'z' ? *p - 32 : *p;
		imap_put(o, b, 1);
	}
	if (fi->fld) {	/* names in capitals (a literal sent is not echoed) */
		imap_cur(&l, fi->fld, fi->flde - fi->fld);
		for (k = 0; l.p < l.e && imap_field_next(&l, b, sizeof(b)) >= 0; k++) {
			for (p = b; *p; p++)
				if (*p >= 'a' && *p <= 'z')
					b[p - b] = *p - 32;
			imap_puts(o, k ? " " : "");
			for (p = b; *p > ' ' && *p < 0x7f && !strchr("(){%*\"\\]", *p); p++)
				;
			if (*p || !*b)
				imap_string(o, b, strlen(b));
			else
				imap_puts(o, b);	/* an atom stays an atom, as Dovecot */
		}
		imap_puts(o, ")");
	}
	imap_puts(o, "]");
	if (fi->partial)
		imap_printf(o, "<%u>", fi->origin);
}

/* The item at f->ip is sent: on to the next. */
static void
next_item(struct imsg *f)
{
	struct icur a;
	struct fitem fi;

	imap_cur(&a, f->ip, f->items.e - f->ip);
	imap_fetch_item(&a, &fi);
	f->ip = a.p + (a.p < a.e && *a.p == ' ');
	f->nout++;
	f->sect = SK_NONE;
	f->ph = P_ITEM;
}

/* One item of the message under way: 1 wait, 0 go on (f->ph says where). */
static int
item(struct conn *c)
{
	struct imap_sess *s = &c->u.imap;
	struct imsg *f = &s->x.m;
	struct mime *mt = NULL;
	struct fitem fi;
	struct icur a;
	struct isink o;
	uint64_t oct = 0, lim;
	time_t t;
	char b[48];
	int r;

	imap_cur(&a, f->ip, f->items.e - f->ip);
	imap_fetch_item(&a, &fi);
	if (fi.kind == FI_ENVELOPE || fi.kind == FI_BODY || fi.kind == FI_BODYSTRUCTURE ||
	    (fi.kind == FI_SECTION && f->sect == SK_NONE && (fi.npath || fi.sect != SEC_ALL))) {
		if ((r = table(c, &mt)) != 0) {
			if (r < 0) {	/* gone under an answer half sent: cannot be finished */
				c->flags |= CF_CLOSE;
				return 1;
			}
			return 1;
		}
	}
	if (fi.kind == FI_DATE && (r = view_date(&s->v, &f->m, &t)) != 0) {
		if (r == F_WAIT)
			return 1;
		t = 0;
	}
	lim = fi.partial ? fi.size : UINT64_MAX;
	if (fi.kind == FI_SECTION) {
		if (f->sect == SK_NONE) {
			if (mt)
				resolve(f, mt, &fi);
			else
				f->sect = SK_WHOLE;
			if (f->sect == SK_FIELDS) {	/* count first: the literal's size */
				memset(&f->u.hf, 0, sizeof(f->u.hf));
				f->u.hf.pos = f->start;
				f->u.hf.end = f->end;
				f->u.hf.bol = 1;
				f->ph = P_COUNT;
				return 0;
			}
		}
		if (f->sect == SK_WHOLE)
			mstream_open(&f->u.ms, &s->v, &f->m, 0, -1, fi.origin, lim, &oct);
		else if (f->sect == SK_RANGE)
			mstream_section(&f->u.ms, &s->v, &f->m, f->start, f->end, f->octets, fi.origin, lim, &oct);
		else if (f->sect == SK_FIELDS && f->u.hf.total > fi.origin)
			oct = f->u.hf.total - fi.origin < lim ? f->u.hf.total - fi.origin : lim;
	}
	imap_unit_begin(c, &o);
	imap_puts(&o, f->nout ? " " : "");
	switch (fi.kind) {
	case FI_FLAGS:
		imap_flags(c, &o, f->m.flags);
		break;
	case FI_UID:
		imap_printf(&o, "UID %u", f->m.uid);
		break;
	case FI_DATE:
		date_str(b, sizeof(b), t);
		imap_printf(&o, "INTERNALDATE %s", b);
		break;
	case FI_SIZE:
		imap_printf(&o, "RFC822.SIZE %u", f->m.size);
		break;
	case FI_ENVELOPE:
		imap_puts(&o, "ENVELOPE ");
		imap_envelope(&o, mt, 0);
		break;
	case FI_BODY:
	case FI_BODYSTRUCTURE:
		imap_puts(&o, fi.kind == FI_BODY ? "BODY " : "BODYSTRUCTURE ");
		imap_bodystructure(&o, mt, 0, fi.kind == FI_BODYSTRUCTURE);
		break;
	default:
		section_name(&o, &fi);
		imap_printf(&o, " {%llu}\r\n", (unsigned long long)oct);
		break;
	}
	if (!imap_unit_end(c, &o))
		return 1;
	if (fi.kind != FI_SECTION || !oct) {
		next_item(f);
		return 0;
	}
	if (f->sect == SK_FIELDS) {	/* the output pass, from the header's start again */
		f->u.hf.pos = f->start;
		f->u.hf.end = f->end;
		f->u.hf.bol = 1;
		f->u.hf.keep = 0;
		f->u.hf.emit = 1;
		f->u.hf.skip = fi.origin;
		f->u.hf.left = oct;
		f->ph = P_FIELDS;
	} else {
		f->ph = P_BODY;
	}
	return 0;
}

static void
fetch_done(struct conn *c)
{
	struct imsg *f = &c->u.imap.x.m;

	if (f->err)
		imap_done(c, "NO %s", imap_errcode(ESTALE));
	else
		imap_done(c, "OK Fetch completed.");
}

static int
fetch_run(struct conn *c)
{
	struct imap_sess *s = &c->u.imap;
	struct imsg *f = &s->x.m;
	struct mime *mt;
	struct isink o;
	struct fitem fi;
	struct icur a;
	int r;

	for (;;) {
		switch (f->ph) {
		case P_NEXT:
			if (!imap_walk(&s->v, &f->w, &f->m)) {
				fetch_done(c);
				return 0;
			}
			f->seen = 0;
			if ((f->flags & FN_SEEN) && !s->ro && !(f->m.flags & MF_SEEN) && !f->m.gone &&
			    view_store(&s->v, &f->m, FS_ADD, MF_SEEN) == 0)
				f->seen = 1;	/* RFC 3501 6.4.5: and FLAGS says so */
			f->ip = f->items.p;
			f->nout = 0;
			f->sect = SK_NONE;
			f->ph = f->flags & (FN_HDR | FN_ALL) ? P_TABLE : P_OPEN;
			break;
		case P_TABLE:	/* before anything of the message is sent */
			if ((r = table(c, &mt)) > 0)
				return 1;
			if (r < 0) {
				f->err = 1;	/* gone meanwhile: skipped, NO at the end */
				f->ph = P_NEXT;
				break;
			}
			f->ph = P_OPEN;
			break;
		case P_OPEN:
			imap_unit_begin(c, &o);
			imap_printf(&o, "* %u FETCH (", f->m.msn);
			if (s->uid && !(f->flags & FN_UID))
				imap_printf(&o, "UID %u", f->m.uid);	/* RFC 3501 6.4.8, first as Dovecot */
			if (!imap_unit_end(c, &o))
				return 1;
			f->nout = s->uid && !(f->flags & FN_UID);
			f->ph = P_ITEM;
			break;
		case P_ITEM:
			if (f->ip >= f->items.e) {
				f->ph = P_CLOSE;
				break;
			}
			if (item(c))
				return 1;
			break;
		case P_BODY:
			r = mstream_send(&f->u.ms, &s->v, &c->out);
			if (r == 1 || r == F_WAIT)
				return 1;
			if (r < 0) {	/* a literal announced cannot be finished */
				log_warn("imap %08x user=%s: %s uid %u", c->id, s->user, s->sel, f->m.uid);
				c->flags |= CF_CLOSE;
				return 1;
			}
			next_item(f);
			break;
		case P_COUNT:
		case P_FIELDS:
			imap_cur(&a, f->ip, f->items.e - f->ip);
			imap_fetch_item(&a, &fi);
			if ((r = fields(c, &fi)) == 1 || r == 2)
				return 1;
			if (r < 0) {
				log_warn("imap %08x user=%s: %s uid %u", c->id, s->user, s->sel, f->m.uid);
				c->flags |= CF_CLOSE;
				return 1;
			}
			if (f->ph == P_FIELDS)
				next_item(f);
			else
				f->ph = P_ITEM;	/* counted: now its name and literal */
			break;
		case P_CLOSE:
			imap_unit_begin(c, &o);
			if (f->seen && !(f->flags & FN_FLAGS)) {
				imap_puts(&o, " ");
				imap_flags(c, &o, f->m.flags);
			}
			imap_puts(&o, ")\r\n");
			if (!imap_unit_end(c, &o))
				return 1;
			f->ph = P_NEXT;
			break;
		}
	}
}

/*
 * FETCH's step.  The output buffer is small (CONFIG_OBUF, 2 KiB): one a
 * pass made a 20 MB literal 10,000 passes and 10,000 small messages more,
 * each a select() round.  So a pass goes on while its output is what
 * stops it and the socket takes it at once (conn_flush, through TLS too),
 * up to STREAM_PASS buffers; never past a wake
 * asked for the next pass (a slice's reading done) or a close.  The part
 * tables and field filters share READ_PASS bytes of reading a pass.
 */
int
imap_fetch_step(struct conn *c)
{
	int r, n = 0;

	fetch_left = READ_PASS;
	mstream_burst(1);
	while ((r = fetch_run(c)) == 1 && ++n < STREAM_PASS && c->out.len &&
	    !(c->flags & CF_CLOSE) && !((c->flags & CF_WAKE) && c->wake <= now) && conn_flush(c))
		;
	mstream_burst(0);
	return r;
}

/* ---- STORE ---- */

void
imap_c_store(struct conn *c, struct icur *a, int arg)
{
	struct imap_sess *s = &c->u.imap;
	struct imsg *f = &s->x.m;
	char what[16], kw[FOLDER_KW_LEN + 1];
	struct iset set;
	struct icur l;
	uint32_t sys;
	const char *w;
	int op, r, k;

	if (imap_set(a, &set) < 0 || imap_sp(a) < 0 || imap_atom(a, what, sizeof(what)) < 0 || imap_sp(a) < 0) {
		imap_bad(c, "Syntax: STORE set [+|-]FLAGS[.SILENT] (flags)");
		return;
	}
	l = *a;
	w = what + (*what == '+' || *what == '-');
	op = *what == '+' ? FS_ADD : *what == '-' ? FS_DEL : FS_SET;
	if ((strcasecmp(w, "FLAGS") && strcasecmp(w, "FLAGS.SILENT")) ||
	    imap_flag_list(a, &sys, NULL, 0, 0) < 0 || !imap_end(a)) {
		imap_bad(c, "Syntax: STORE set [+|-]FLAGS[.SILENT] (flags)");
		return;
	}
	if (!set_arg(c, &set))
		return;
	if (s->ro) {
		imap_done(c, "NO %s", imap_errcode(EROFS));
		return;
	}
	memset(f, 0, sizeof(*f));
	f->flags = sys;
	/* keywords: their bits, made when set or added */
	l.p += l.p < l.e && *l.p == '(';
	while (l.p < l.e && *l.p != ')') {
		l.p += *l.p == ' ';
		if ((r = imap_flag(&l, kw, sizeof(kw))) != 0)
			continue;
		if ((k = view_keyword(&s->v, kw, op != FS_DEL)) >= 0) {
			f->flags |= MF_KW(k);
		} else if (op != FS_DEL) {
			imap_done(c, "NO %s", errno == ENOSPC ? "[LIMIT] Too many keywords in this mailbox." :
			    "[CANNOT] Invalid keyword.");
			return;
		}
	}
	imap_walk_start(&f->w, &set, s->uid);
	f->op = op;
	f->silent = strlen(w) > 5;
	s->rx = s->uid;
	s->run = R_STORE;
}

int
imap_store_step(struct conn *c)
{
	struct imap_sess *s = &c->u.imap;
	struct imsg *f = &s->x.m;
	struct isink o;
	int n;

	for (n = 0; n < STORE_PASS; n++) {
		if (!f->nout) {	/* no answer pending: the next message */
			if (!imap_walk(&s->v, &f->w, &f->m)) {
				if (f->err)
					imap_done(c, "NO %s", imap_errcode(ESTALE));
				else
					imap_done(c, "OK Store completed.");
				return 0;
			}
			if (view_store(&s->v, &f->m, f->op, f->flags) < 0) {
				f->err = 1;	/* expunged meanwhile */
				continue;
			}
			if (f->silent)
				continue;
			f->nout = 1;
		}
		imap_unit_begin(c, &o);
		imap_printf(&o, "* %u FETCH (", f->m.msn);
		if (s->uid)
			imap_printf(&o, "UID %u ", f->m.uid);
		imap_flags(c, &o, f->m.flags);
		imap_puts(&o, ")\r\n");
		if (!imap_unit_end(c, &o))
			return 1;
		f->nout = 0;
	}
	loop_wake(c, 0);
	return 1;
}

/* ---- SEARCH ---- */

static int
kwbit(void *arg, const char *name)
{
	return view_keyword(arg, name, 0);
}

void
imap_c_search(struct conn *c, struct icur *a, int arg)
{
	struct imap_sess *s = &c->u.imap;
	struct imsg *f = &s->x.m;
	char cs[32];
	struct iset all;
	struct icur one;
	unsigned ntext;
	int dates;

	if (imap_peek(a, "CHARSET")) {
		a->p += 7;
		if (imap_sp(a) < 0 || imap_astring(a, cs, sizeof(cs)) < 0 || imap_sp(a) < 0) {
			imap_bad(c, "Syntax: SEARCH [CHARSET charset] keys");
			return;
		}
		if (strcasecmp(cs, "UTF-8") && strcasecmp(cs, "US-ASCII")) {
			imap_done(c, "NO [BADCHARSET (US-ASCII UTF-8)] Unsupported charset.");
			return;
		}
	}
	if (imap_search_check(a, &ntext, &dates) < 0) {
		imap_bad(c, "Invalid search keys.");
		return;
	}
	memset(f, 0, sizeof(*f));
	f->items = *a;
	f->ntext = ntext;
	f->dates = dates;
	imap_cur(&one, "1:*", 3);
	imap_set(&one, &all);
	imap_walk_start(&f->w, &all, 0);
	iset_star(&f->w.set, view_count(&s->v));
	s->rx = s->uid;
	s->run = R_SEARCH;
}

enum { Q_NEXT, Q_SCAN, Q_HIT };

int
imap_search_step(struct conn *c)
{
	struct imap_sess *s = &c->u.imap;
	struct imsg *f = &s->x.m;
	struct smsg sm;
	long r, budget = READ_PASS;
	size_t got;
	time_t t;
	int n, v;

	if (!f->nout) {	/* the answer's start */
		if (buf_room(&c->out) < 16)
			return 1;
		buf_add(&c->out, "* SEARCH", 8);
		f->nout = 1;
	}
	if (f->ntext)
		imap_search_keys(&f->items);	/* this slice's tables (checked at the start) */
	for (n = 0; n < SEARCH_PASS && budget > 0;) {
		if (f->ph == Q_HIT) {
			if (buf_room(&c->out) < 16)
				return 1;
			buf_printf(&c->out, " %u", s->uid ? f->m.uid : f->m.msn);
			f->ph = Q_NEXT;
		}
		if (f->ph == Q_NEXT) {
			n++;
			if (!imap_walk(&s->v, &f->w, &f->m)) {
				if (buf_room(&c->out) < 2)
					return 1;
				buf_add(&c->out, "\r\n", 2);
				imap_done(c, "OK Search completed.");
				return 0;
			}
			f->iday = LONG_MIN;
		}
		if ((f->dates & SD_INTERNAL) && f->iday == LONG_MIN) {
			if ((v = view_date(&s->v, &f->m, &t)) == F_WAIT)
				return 1;
			f->iday = v == 0 && t ? (long)(t / 86400) : LONG_MIN + 1;
		}
		memset(&sm, 0, sizeof(sm));
		sm.msn = f->m.msn;
		sm.uid = f->m.uid;
		sm.size = f->m.size;
		sm.flags = f->m.flags;
		sm.mstar = view_count(&s->v);
		sm.ustar = view_last_uid(&s->v);
		sm.iday = f->iday;
		sm.sday = LONG_MIN;
		sm.keyword = kwbit;
		sm.arg = &s->v;
		if (f->ph == Q_SCAN) {	/* the text keys: a slice of the message */
			r = view_read(&s->v, &f->m, f->off, rb, sizeof(rb));
			if (r == -F_WAIT)
				return 1;
			if (r > 0) {
				got = imap_scan(&f->u.sc, rb, r, 0);
				f->off += got;
				budget -= r;
				if (!imap_scan_done(&f->u.sc) && (got || (size_t)r == sizeof(rb)))
					continue;
			}
			sm.known = f->ntext >= 32 ? 0xffffffffu : (1u << f->ntext) - 1;
			sm.found = f->u.sc.found;
			sm.sknown = 1;
			sm.sday = imap_scan_sday(&f->u.sc);
		}
		v = imap_search_eval(&f->items, &sm);
		if (v == 2) {
			imap_scan_start(&f->u.sc, f->dates & SD_SENT);
			f->off = 0;
			f->ph = Q_SCAN;
			continue;
		}
		f->ph = v == 1 ? Q_HIT : Q_NEXT;
	}
	loop_wake(c, 0);
	return 1;
}

/* ---- COPY, MOVE ---- */

void
imap_c_copy(struct conn *c, struct icur *a, int move)
{
	struct imap_sess *s = &c->u.imap;
	struct iop *o = &s->x.o;
	char name[FOLDER_NAME_MAX + 1];
	struct iset set;
	struct vmsg m;
	uint32_t x = 1, lo, hi, n = 0, cap = 0;
	uint32_t (*r)[2] = NULL;

	if (imap_set(a, &set) < 0 || imap_sp(a) < 0 || imap_mailbox(a, name, sizeof(name)) < 0 || !imap_end(a)) {
		if (a->err == 2)
			imap_done(c, "NO [CANNOT] Mailbox name is not valid modified UTF-7.");
		else
			imap_bad(c, move ? "Syntax: MOVE set mailbox" : "Syntax: COPY set mailbox");
		return;
	}
	if (!set_arg(c, &set))
		return;
	if (move && s->ro) {
		imap_done(c, "NO %s", imap_errcode(EROFS));
		return;
	}
	/* the set as sorted, disjoint UID ranges (what folder_copy takes);
	 * sequence numbers become the UIDs of a run's ends */
	while (iset_next(&set, x, &lo, &hi)) {
		x = hi + 1;
		if (!s->uid) {
			if (!view_seek_msn(&s->v, lo, &m))
				break;
			lo = m.uid;
			hi = view_seek_msn(&s->v, hi, &m) ? m.uid : lo;
		}
		if (n && lo <= r[n - 1][1] + 1) {
			r[n - 1][1] = hi > r[n - 1][1] ? hi : r[n - 1][1];
		} else {
			if (n == cap) {
				uint32_t (*p)[2] = realloc(r, (cap * 2 + 8) * sizeof(*r));
				if (p == NULL) {
					free(r);
					imap_done(c, "NO %s", imap_errcode(ENOMEM));
					return;
				}
				r = p;
				cap = cap * 2 + 8;
			}
			r[n][0] = lo;
			r[n++][1] = hi;
		}
		if (x == 0)
			break;
	}
	memset(o, 0, sizeof(*o));
	o->set = r;
	o->nset = n;
	o->move = move;
	s->run = R_COPY;	/* from here on, imap_done frees the ranges */
	if (n == 0) {
		imap_done(c, "OK No messages %s.", move ? "moved" : "copied");
		return;
	}
	if (folder_copy(&o->op, &s->v, (const uint32_t (*)[2])r, n, name, move) < 0)
		imap_done(c, "NO %s", errno == ENOENT ? "[TRYCREATE] No such mailbox." : imap_errcode(errno));
}

/* COPYUID's source UIDs: the view's messages in the ranges, consecutive
 * UIDs joined; how many into *cnt. */
static void
source_set(struct view *v, const struct iop *o, struct isink *out, uint32_t *cnt)
{
	struct vmsg m;
	uint32_t i, first = 0, last = 0, n = 0;
	int have = 0, r;

	for (i = 0; i < o->nset; i++)
		for (r = view_seek_uid(v, o->set[i][0], &m); r && m.uid <= o->set[i][1]; r = view_next(v, &m)) {
			n++;
			if (have && m.uid == last + 1) {
				last = m.uid;
				continue;
			}
			if (have)
				imap_printf(out, first == last ? "%u," : "%u:%u,", first, last);
			first = last = m.uid;
			have = 1;
		}
	if (have)
		imap_printf(out, first == last ? "%u" : "%u:%u", first, last);
	*cnt = n;
}

int
imap_copyuid_step(struct conn *c)
{
	struct imap_sess *s = &c->u.imap;
	struct iop *o = &s->x.o;
	struct isink out, cnt = { NULL, 0, 0, 0, 0 };
	uint32_t n = 0;

	if (o->op.n == 0) {
		imap_done(c, "OK No messages %s.", o->move ? "moved" : "copied");
		return 0;
	}
	if (!o->move && imap_report(c, 1))	/* COPY: what changed goes before its tagged reply */
		return 1;
	source_set(&s->v, o, &cnt, &n);	/* the count first: all or nothing */
	if (n != o->op.n) {	/* some vanished meanwhile: no COPYUID rather than a wrong one */
		imap_done(c, "OK %s completed.", o->move ? "Move" : "Copy");
		return 0;
	}
	imap_unit_begin(c, &out);
	imap_printf(&out, "%s OK [COPYUID %u ", o->move ? "*" : s->tag, o->op.uidvalidity);
	source_set(&s->v, o, &out, &n);
	imap_printf(&out, n > 1 ? " %u:%u] " : " %u] ", o->op.uid0, o->op.uid0 + n - 1);
	imap_puts(&out, o->move ? "Moved.\r\n" : "Copy completed.\r\n");
	if (!imap_unit_end(c, &out))
		return 1;
	if (o->move) {
		imap_done(c, "OK Move completed.");
		return 0;
	}
	imap_finish(c);	/* COPY's tagged reply went out with COPYUID */
	return 0;
}

#endif	/* IMAP_PARTS */

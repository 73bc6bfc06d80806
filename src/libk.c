/* libk.c: kotak's own small versions of the C library functions it uses
 * (Kconfig LIBK; what and why in libk.h).  Each does what kotak asks of it
 * and no more, and is tested against the libc it replaces
 * (tests/unit/test_libk.c, on every target).  No floating point. */
#include "config.h"
#ifndef LIBK_NOMAP
#define LIBK_NOMAP	/* libk.h: declarations only, no name mapping here */
#endif
#include "libk.h"

#if ENABLE_LIBK
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/vfs.h>

/* ==== the formatter: one engine for every printf-family function */

struct sink {
	char	*p;		/* snprintf: the buffer, cap bytes before its NUL */
	size_t	 cap;
	size_t	 len;		/* bytes produced, also those that did not fit */
	k_FILE	*f;		/* or a stream */
};

static void	 put(k_FILE *, const char *, size_t);

static void
emit(struct sink *s, const char *p, size_t n)
{
	if (s->f)
		put(s->f, p, n);
	else if (s->len < s->cap)
		memcpy(s->p + s->len, p, n < s->cap - s->len ? n : s->cap - s->len);
	s->len += n;
}

static void
pad(struct sink *s, char c, int n)
{
	while (n-- > 0)
		emit(s, &c, 1);
}

static int
atoi_fmt(const char **f)
{
	int n = 0;

	while (**f >= '0' && **f <= '9')
		n = 10 * n + *(*f)++ - '0';
	return n;
}

/* The conversions scripts/fmtcheck.py lets through; anything else is
 * copied as it stands (it cannot be reached: the build refuses it). */
static void
vformat(struct sink *s, const char *f, va_list ap)
{
	static const char hex[] = "0123456789abcdef0123456789ABCDEF";
	char num[24], *e = num + sizeof(num), *d, *sign;
	const char *q, *spec;
	unsigned long long v;
	int left, zero, width, prec, lng, n, z;

	for (;;) {
		for (q = f; *q && *q != '%'; q++)
			;
		emit(s, f, q - f);
		if (!*q)
			return;
		spec = q++;
		left = zero = lng = 0;
		for (;; q++) {
			if (*q == '-')
				left = 1;
			else if (*q == '0')
				zero = 1;
			else
				break;
		}
		if (*q == '*') {
			q++;
			if ((width = va_arg(ap, int)) < 0) {
				left = 1;
				width = -width;
			}
		} else
			width = atoi_fmt(&q);
		prec = -1;
		if (*q == '.') {
			if (*++q == '*') {
				q++;
				prec = va_arg(ap, int);
			} else
				prec = atoi_fmt(&q);
		}
		for (; *q == 'l'; q++)
			lng++;
		if ((z = *q == 'z'))
			q++;
		if (!*q) {
			emit(s, spec, q - spec);
			return;
		}
		f = q + 1;
		sign = "";
		switch (*q) {
		case '%':
			emit(s, "%", 1);
			continue;
		case 'c':
			num[0] = (char)va_arg(ap, int);
			d = num;
			n = 1;
			break;
		case 's':
			if ((d = va_arg(ap, char *)) == NULL)
				d = "(null)";
			for (n = 0; (prec < 0 || n < prec) && d[n]; n++)
				;
			break;
		case 'd':
		case 'i':
			if (z)
				v = (unsigned long long)(long long)(ssize_t)va_arg(ap, size_t);
			else if (lng > 1)
				v = (unsigned long long)va_arg(ap, long long);
			else if (lng)
				v = (unsigned long long)(long long)va_arg(ap, long);
			else
				v = (unsigned long long)(long long)va_arg(ap, int);
			if ((long long)v < 0) {
				v = -v;
				sign = "-";
			}
			goto number;
		case 'u':
		case 'x':
		case 'X':
		case 'o':
			if (z)
				v = va_arg(ap, size_t);
			else if (lng > 1)
				v = va_arg(ap, unsigned long long);
			else if (lng)
				v = va_arg(ap, unsigned long);
			else
				v = va_arg(ap, unsigned);
number:
			d = e;
			if (*q == 'u' || *q == 'd' || *q == 'i') {
				unsigned long w;

				/* 64-bit division only for what needs it: on a
				 * 32-bit CPU it is a libgcc call per digit */
				for (; v > ULONG_MAX; v /= 10)
					*--d = '0' + (int)(v - v / 10 * 10);
				for (w = (unsigned long)v; w; w /= 10)
					*--d = '0' + (int)(w % 10);
			} else {
				const char *dig = hex + (*q == 'X' ? 16 : 0);
				int sh = *q == 'o' ? 3 : 4;

				for (; v; v >>= sh)
					*--d = dig[v & ((1u << sh) - 1)];
			}
			n = e - d;
			if (prec < 0 && !n)
				*--d = '0', n = 1;	/* the digits of 0 */
			if (prec > n)
				zero = 0;
			else if (prec >= 0 || left)
				zero = 0, prec = n;
			else
				prec = n;
			if (zero && width > (int)strlen(sign) + n)
				prec = width - (int)strlen(sign);
			n = (int)strlen(sign) + prec;
			if (!left)
				pad(s, ' ', width - n);
			emit(s, sign, strlen(sign));
			pad(s, '0', prec - (e - d));
			emit(s, d, e - d);
			if (left)
				pad(s, ' ', width - n);
			continue;
		default:
			emit(s, spec, f - spec);
			continue;
		}
		if (!left)
			pad(s, ' ', width - n);
		emit(s, d, n);
		if (left)
			pad(s, ' ', width - n);
	}
}

int
k_vsnprintf(char *p, size_t size, const char *fmt, va_list ap)
{
	struct sink s = { p, size ? size - 1 : 0, 0, NULL };

	vformat(&s, fmt, ap);
	if (size)
		p[s.len < s.cap ? s.len : s.cap] = '\0';
	return s.len > INT_MAX ? -1 : (int)s.len;
}

int
k_snprintf(char *p, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = k_vsnprintf(p, size, fmt, ap);
	va_end(ap);
	return n;
}

/* ==== stdio: what kotak reads (config, users, passwd, queue files) and
 * writes (CLI output, the users file) */

enum { K_RD = 1, K_WR = 2, K_ERR = 4, K_EOF = 8, K_UNBUF = 16 };

static char k_buf[3 + K_FOPEN_MAX][K_BUFSIZ];
k_FILE k_stdio[3] = {
	{ 0, K_RD, 0, 0, 0, k_buf[0] },
	{ 1, K_WR, 0, 0, 0, k_buf[1] },
	{ 2, K_WR | K_UNBUF, 0, 0, 0, k_buf[2] },	/* written out at each call's end */
};
static k_FILE k_files[K_FOPEN_MAX];

static int
wr(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n) {
		if ((w = write(fd, p, n)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= w;
	}
	return 0;
}

int
k_fflush(k_FILE *f)
{
	int i, r = 0;

	if (f == NULL) {
		r = k_fflush(&k_stdio[1]);
		for (i = 0; i < K_FOPEN_MAX; i++)
			if (k_files[i].mode & K_WR)
				r |= k_fflush(&k_files[i]);
		return r;
	}
	if (!(f->mode & K_WR) || !f->pos)
		return f->mode & K_ERR ? EOF : 0;
	if (wr(f->fd, f->buf, f->pos) < 0)
		f->mode |= K_ERR;
	f->pos = 0;
	return f->mode & K_ERR ? EOF : 0;
}

/* stdout goes out at exit (and return from main): a destructor, run by
 * exit() from .fini_array (atexit() would bring musl's calloc back) */
static void __attribute__((destructor))
flush_stdout(void)
{
	k_fflush(&k_stdio[1]);
}

static void
put(k_FILE *f, const char *p, size_t n)
{
	size_t k;

	if (!(f->mode & K_WR)) {
		f->mode |= K_ERR;
		return;
	}
	while (n) {
		if (f->pos == K_BUFSIZ && k_fflush(f))
			return;
		if (!f->pos && n >= K_BUFSIZ) {	/* large: straight out */
			if (wr(f->fd, p, n) < 0)
				f->mode |= K_ERR;
			return;
		}
		k = (size_t)(K_BUFSIZ - f->pos) < n ? (size_t)(K_BUFSIZ - f->pos) : n;
		memcpy(f->buf + f->pos, p, k);
		f->pos += k;
		p += k;
		n -= k;
	}
}

/* the end of a write call: stderr goes out now, in one write */
static int
done(k_FILE *f)
{
	if (f->mode & K_UNBUF)
		k_fflush(f);
	return f->mode & K_ERR ? EOF : 0;
}

static k_FILE *
slot(int fd, int mode)
{
	int i;

	for (i = 0; i < K_FOPEN_MAX; i++)
		if (!k_files[i].mode) {
			k_FILE *f = &k_files[i];
			off_t o = lseek(fd, 0, SEEK_CUR);

			f->fd = fd;
			f->mode = mode;
			f->pos = f->len = 0;
			f->off = o < 0 ? 0 : o;
			f->buf = k_buf[3 + i];
			return f;
		}
	errno = EMFILE;
	return NULL;
}

/* "r", "w", "a", with "e" (close-on-exec), "x" and "b"; no "+" */
static int
mode_flags(const char *m, int *fl)
{
	*fl = 0;
	if (strchr(m, '+') || !strchr("rwa", *m) || !*m) {
		errno = EINVAL;
		return -1;
	}
	if (*m != 'r')
		*fl = O_WRONLY | O_CREAT | (*m == 'w' ? O_TRUNC : O_APPEND);
	if (strchr(m, 'e'))
		*fl |= O_CLOEXEC;
	if (strchr(m, 'x'))
		*fl |= O_EXCL;
	return *m == 'r' ? K_RD : K_WR;
}

k_FILE *
k_fopen(const char *path, const char *m)
{
	int fl, mode = mode_flags(m, &fl), fd, e;
	k_FILE *f;

	if (mode < 0 || (fd = open(path, fl, 0666)) < 0)
		return NULL;
	if ((f = slot(fd, mode)) == NULL) {
		e = errno;
		close(fd);
		errno = e;
	}
	return f;
}

k_FILE *
k_fdopen(int fd, const char *m)
{
	int fl, mode = mode_flags(m, &fl);

	return mode < 0 ? NULL : slot(fd, mode);
}

int
k_fclose(k_FILE *f)
{
	int r = k_fflush(f);

	if (close(f->fd) < 0)
		r = EOF;
	f->mode = 0;
	return r;
}

static int
fill(k_FILE *f)
{
	ssize_t r;

	if (!(f->mode & K_RD) || (f->mode & (K_EOF | K_ERR)))
		return 0;
	f->off += f->len;
	f->pos = f->len = 0;
	while ((r = read(f->fd, f->buf, K_BUFSIZ)) < 0 && errno == EINTR)
		;
	if (r <= 0) {
		f->mode |= r ? K_ERR : K_EOF;
		return 0;
	}
	f->len = r;
	return 1;
}

char *
k_fgets(char *s, int size, k_FILE *f)
{
	char *q = s, *nl = NULL;
	size_t k;

	if (size < 1)
		return NULL;
	while (!nl && q < s + size - 1 && (f->pos < f->len || fill(f))) {
		k = f->len - f->pos;
		if (k > (size_t)(s + size - 1 - q))
			k = s + size - 1 - q;
		if ((nl = memchr(f->buf + f->pos, '\n', k)) != NULL)
			k = nl - (f->buf + f->pos) + 1;
		memcpy(q, f->buf + f->pos, k);
		f->pos += k;
		q += k;
	}
	if (q == s && size > 1)
		return NULL;
	*q = '\0';
	return s;
}

int
k_fgetc(k_FILE *f)
{
	return f->pos < f->len || fill(f) ? (unsigned char)f->buf[f->pos++] : EOF;
}

int
k_fileno(k_FILE *f)
{
	return f->fd;
}

int
k_ferror(k_FILE *f)
{
	return !!(f->mode & K_ERR);
}

int
k_feof(k_FILE *f)
{
	return !!(f->mode & K_EOF);
}

long
k_ftell(k_FILE *f)
{
	off_t o = f->mode & K_RD ? f->off : lseek(f->fd, 0, SEEK_CUR);

	return o < 0 ? -1 : (long)(o + f->pos);
}

int
k_fseek(k_FILE *f, long off, int whence)
{
	off_t o;

	if (whence == SEEK_CUR) {
		if (k_ftell(f) < 0)
			return -1;
		off += k_ftell(f);
		whence = SEEK_SET;
	}
	if (k_fflush(f) || (o = lseek(f->fd, off, whence)) < 0)
		return -1;
	f->off = o;
	f->pos = f->len = 0;
	f->mode &= ~K_EOF;
	return 0;
}

size_t
k_fwrite(const void *p, size_t size, size_t n, k_FILE *f)
{
	if (!size || !n)
		return 0;
	put(f, p, size * n);
	return done(f) ? 0 : n;
}

int
k_fputs(const char *s, k_FILE *f)
{
	put(f, s, strlen(s));
	return done(f);
}

int
k_fputc(int c, k_FILE *f)
{
	char b = (char)c;

	put(f, &b, 1);
	return done(f) ? EOF : (unsigned char)c;
}

int
k_putchar(int c)
{
	return k_fputc(c, &k_stdio[1]);
}

int
k_puts(const char *s)
{
	put(&k_stdio[1], s, strlen(s));
	return k_fputc('\n', &k_stdio[1]) == EOF ? EOF : 0;
}

int
k_vfprintf(k_FILE *f, const char *fmt, va_list ap)
{
	struct sink s = { NULL, 0, 0, f };

	vformat(&s, fmt, ap);
	return done(f) ? -1 : (int)s.len;
}

int
k_fprintf(k_FILE *f, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = k_vfprintf(f, fmt, ap);
	va_end(ap);
	return n;
}

int
k_printf(const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = k_vfprintf(&k_stdio[1], fmt, ap);
	va_end(ap);
	return n;
}

/* dprintf: formatted through a buffer on the stack, written as it fills */
int
k_dprintf(int fd, const char *fmt, ...)
{
	char b[K_BUFSIZ];
	k_FILE f = { fd, K_WR, 0, 0, 0, b };
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = k_vfprintf(&f, fmt, ap);
	va_end(ap);
	return k_fflush(&f) ? -1 : n;
}

/* ==== memory.  kotak allocates only outside the I/O path: the CA bundle
 * (freed and loaded again at each reload) and the CLI commands.  Blocks are
 * powers of two from 32 bytes to 32 KiB, carved from 64 KiB mmap chunks;
 * a freed block waits on its class's list for the next of its size (a
 * reload asks for the same sizes again).  Larger blocks are mapped alone. */

#ifdef K_ASAN	/* the sanitizer's malloc, which checks every access */
#define K_TOO_BIG(n) ((n) > SIZE_MAX / 4 ? (errno = ENOMEM, 1) : 0)	/* as ours: NULL, not an abort */
void *k_malloc(size_t n) { return K_TOO_BIG(n) ? NULL : malloc(n); }
void *k_calloc(size_t n, size_t m) { return m && K_TOO_BIG(n / 4 * m) ? NULL : calloc(n, m); }
void *k_realloc(void *p, size_t n) { return K_TOO_BIG(n) ? NULL : realloc(p, n); }
void k_free(void *p) { free(p); }
#else
union khdr {		/* before each block: its class, or its mapped size */
	size_t	 cls;
	union khdr *next;	/* on a free list */
	long long ll;		/* (alignment) */
	long double ld;
	void	*p;
};
#define KMIN	5		/* 32 bytes */
#define KMAX	15		/* 32 KiB */
#define KCHUNK	(64 * 1024)

static union khdr *kfree_list[KMAX + 1];
static char *kchunk;
static size_t kleft;

static void *
kmap(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		errno = ENOMEM;
		return NULL;
	}
	return p;
}

void *
k_malloc(size_t n)
{
	size_t need = n + sizeof(union khdr);
	union khdr *h;
	unsigned c;

	if (need < n || need > SIZE_MAX - 4096) {
		errno = ENOMEM;
		return NULL;
	}
	for (c = KMIN; c <= KMAX && ((size_t)1 << c) < need; c++)
		;
	if (c > KMAX) {
		need = (need + 4095) & ~(size_t)4095;
		if ((h = kmap(need)) == NULL)
			return NULL;
		h->cls = need;
		return h + 1;
	}
	if ((h = kfree_list[c]) != NULL)
		kfree_list[c] = h->next;
	else {
		if (kleft < ((size_t)1 << c)) {
			/* the old chunk's rest goes to the lists, largest first */
			unsigned k;

			for (k = KMAX; k >= KMIN; k--)
				if (kleft >= ((size_t)1 << k)) {
					h = (union khdr *)kchunk;
					h->next = kfree_list[k];
					kfree_list[k] = h;
					kchunk += (size_t)1 << k;
					kleft -= (size_t)1 << k;
				}
			if ((kchunk = kmap(KCHUNK)) == NULL) {
				kleft = 0;
				return NULL;
			}
			kleft = KCHUNK;
		}
		h = (union khdr *)kchunk;
		kchunk += (size_t)1 << c;
		kleft -= (size_t)1 << c;
	}
	h->cls = c;
	return h + 1;
}

static size_t
kcap(union khdr *h)
{
	return (h->cls <= KMAX ? (size_t)1 << h->cls : h->cls) - sizeof(*h);
}

void
k_free(void *p)
{
	union khdr *h = (union khdr *)p - 1;
	size_t c;

	if (p == NULL)
		return;
	if ((c = h->cls) > KMAX)
		munmap(h, c);
	else {
		h->next = kfree_list[c];
		kfree_list[c] = h;
	}
}

void *
k_realloc(void *p, size_t n)
{
	size_t cap;
	void *q;

	if (p == NULL)
		return k_malloc(n);
	if (n <= (cap = kcap((union khdr *)p - 1)))
		return p;
	/* a large block grows by half again: a buffer grown piece by piece
	 * is not copied at every piece */
	if ((q = k_malloc(n > (1u << KMAX) && n + n / 2 > n ? n + n / 2 : n)) == NULL)
		return NULL;
	memcpy(q, p, cap);
	k_free(p);
	return q;
}

void *
k_calloc(size_t n, size_t m)
{
	void *p;

	if (m && n > SIZE_MAX / m) {
		errno = ENOMEM;
		return NULL;
	}
	if ((p = k_malloc(n * m)) != NULL)
		memset(p, 0, n * m);
	return p;
}
#endif

char *
k_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = k_malloc(n);

	return p ? memcpy(p, s, n) : NULL;
}

/* ==== directories, through getdents64 (musl's opendir allocates with
 * calloc, which would bring its malloc back) */

struct k_dir {
	int	 fd;
	int	 pos, len;
	long long buf[256];	/* 2 KiB of struct k_dirent */
};

k_DIR *
k_opendir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), e;
	k_DIR *d;

	if (fd < 0)
		return NULL;
	if ((d = k_malloc(sizeof(*d))) == NULL) {
		e = errno;
		close(fd);
		errno = e;
		return NULL;
	}
	d->fd = fd;
	d->pos = d->len = 0;
	return d;
}

struct k_dirent *
k_readdir(k_DIR *d)
{
	struct k_dirent *de;

	if (d->pos >= d->len) {
		long n = syscall(SYS_getdents64, d->fd, d->buf, sizeof(d->buf));

		if (n <= 0)
			return NULL;	/* the end, or an error in errno */
		d->len = (int)n;
		d->pos = 0;
	}
	de = (struct k_dirent *)((char *)d->buf + d->pos);
	d->pos += de->d_reclen;
	return de;
}

int
k_dirfd(k_DIR *d)
{
	return d->fd;
}

int
k_closedir(k_DIR *d)
{
	int r = close(d->fd);

	k_free(d);
	return r;
}

/* ==== strtol and friends: C's rules (blanks, sign, 0x and 0 prefixes for
 * base 16 and 0, ERANGE and the limit on overflow, *end at the first
 * character not taken, or at the start when no digit was) */

static unsigned long long
strto(const char *s, char **end, int base, int *neg, int *big)
{
	const char *p = s, *d0;
	unsigned long long v = 0, lim;
	unsigned dv;

	*neg = *big = 0;
	if (base < 0 || base == 1 || base > 36) {
		errno = EINVAL;
		if (end)
			*end = (char *)s;
		return 0;
	}
	while (*p == ' ' || (*p >= '\t' && *p <= '\r'))
		p++;
	if (*p == '-' || *p == '+')
		*neg = *p++ == '-';
	if ((base == 0 || base == 16) && p[0] == '0' && (p[1] | 32) == 'x' &&
	    ((unsigned)(p[2] - '0') < 10 || (unsigned)((p[2] | 32) - 'a') < 6)) {
		p += 2;
		base = 16;
	} else if (base == 0)
		base = *p == '0' ? 8 : 10;
	lim = ULLONG_MAX / base;
	for (d0 = p;; p++) {
		if ((unsigned)(*p - '0') < 10)
			dv = *p - '0';
		else if ((unsigned)((*p | 32) - 'a') < 26)
			dv = (*p | 32) - 'a' + 10;
		else
			break;
		if (dv >= (unsigned)base)
			break;
		if (v > lim || v * base > ULLONG_MAX - dv)
			*big = 1;
		else
			v = v * base + dv;
	}
	if (p == d0) {		/* no digit: as musl */
		errno = EINVAL;
		p = s;
	}
	if (end)
		*end = (char *)p;
	return v;
}

/* the value within [-max - 1, max], or the limit and ERANGE */
static long long
to_signed(unsigned long long v, int neg, int big, long long max)
{
	if (big || v > (unsigned long long)max + neg) {
		errno = ERANGE;
		return neg ? -max - 1 : max;
	}
	return neg ? (long long)(0 - v) : (long long)v;
}

/* the value up to max, negated if a '-' came first, or max and ERANGE */
static unsigned long long
to_unsigned(unsigned long long v, int neg, int big, unsigned long long max)
{
	if (big || v > max) {
		errno = ERANGE;
		return max;
	}
	return neg ? (0 - v) & max : v;
}

unsigned long long
k_strtoull(const char *s, char **end, int base)
{
	int neg, big;
	unsigned long long v = strto(s, end, base, &neg, &big);

	return to_unsigned(v, neg, big, ULLONG_MAX);
}

long long
k_strtoll(const char *s, char **end, int base)
{
	int neg, big;
	unsigned long long v = strto(s, end, base, &neg, &big);

	return to_signed(v, neg, big, LLONG_MAX);
}

unsigned long
k_strtoul(const char *s, char **end, int base)
{
	int neg, big;
	unsigned long long v = strto(s, end, base, &neg, &big);

	return (unsigned long)to_unsigned(v, neg, big, ULONG_MAX);
}

long
k_strtol(const char *s, char **end, int base)
{
	int neg, big;
	unsigned long long v = strto(s, end, base, &neg, &big);

	return (long)to_signed(v, neg, big, LONG_MAX);
}

int
k_atoi(const char *s)
{
	return (int)k_strtol(s, NULL, 10);
}

/* ==== qsort: a shell sort (Knuth's gaps), no recursion, no allocation;
 * kotak sorts only `queue list`'s names */
void
k_qsort(void *base, size_t n, size_t sz, int (*cmp)(const void *, const void *))
{
	char *b = base, *x, *y, t;
	size_t h = 1, i, j, k;

	while (h < n / 3)
		h = 3 * h + 1;
	for (; h; h /= 3)
		for (i = h; i < n; i++)
			for (j = i; j >= h && cmp(x = b + (j - h) * sz, y = b + j * sz) > 0; j -= h)
				for (k = 0; k < sz; k++) {
					t = x[k];
					x[k] = y[k];
					y[k] = t;
				}
}

/* ==== getopt as musl's: no permutation ("+" accepted and ignored), "::"
 * for an optional argument attached to its option, ':' first for quiet
 * errors, optind 0 restarts.  Single-byte option characters. */
char *k_optarg;
int k_optind = 1, k_opterr = 1, k_optopt;
static int k_optpos;

static void
getopt_msg(const char *prog, const char *what, int c)
{
	char b = (char)c;

	put(&k_stdio[2], prog, strlen(prog));
	put(&k_stdio[2], what, strlen(what));
	put(&k_stdio[2], &b, 1);
	k_fputc('\n', &k_stdio[2]);
}

int
k_getopt(int argc, char *const argv[], const char *opts)
{
	const char *o;
	int c;

	if (!k_optind) {
		k_optind = 1;
		k_optpos = 0;
	}
	if (k_optind >= argc || !argv[k_optind] || argv[k_optind][0] != '-' || !argv[k_optind][1])
		return -1;
	if (argv[k_optind][1] == '-' && !argv[k_optind][2]) {
		k_optind++;
		return -1;
	}
	if (!k_optpos)
		k_optpos = 1;
	c = (unsigned char)argv[k_optind][k_optpos++];
	if (!argv[k_optind][k_optpos]) {
		k_optind++;
		k_optpos = 0;
	}
	if (*opts == '-' || *opts == '+')
		opts++;
	o = c == ':' ? NULL : strchr(opts, c);
	if (o == NULL) {
		k_optopt = c;
		if (*opts != ':' && k_opterr)
			getopt_msg(argv[0], ": unrecognized option: ", c);
		return '?';
	}
	if (o[1] == ':') {
		k_optarg = NULL;
		if (o[2] != ':' || k_optpos) {
			k_optarg = k_optpos ? argv[k_optind] + k_optpos : argv[k_optind];
			k_optind++;
			k_optpos = 0;
		}
		if (k_optind > argc) {
			k_optopt = c;
			k_optarg = NULL;
			if (*opts == ':')
				return ':';
			if (k_opterr)
				getopt_msg(argv[0], ": option requires an argument: ", c);
			return '?';
		}
	}
	return c;
}

/* ==== gmtime_r: days to a civil date (proleptic Gregorian, era-based;
 * H. Hinnant's algorithm), in 32-bit arithmetic: dates within about
 * 5.8 million years of 1970, else EOVERFLOW */
struct tm *
k_gmtime_r(const time_t *t, struct tm *tm)
{
	long long s = *t, dd = s / 86400;
	long d, sec = (long)(s - dd * 86400), era, doe, yoe, doy, mp, y;

	if (sec < 0) {
		sec += 86400;
		dd--;
	}
	if (dd > 2000000000 || dd < -2000000000) {
		errno = EOVERFLOW;
		return NULL;
	}
	d = (long)dd + 719468;			/* days since 0000-03-01 */
	era = (d >= 0 ? d : d - 146096) / 146097;
	doe = d - era * 146097;			/* [0, 146096] */
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);	/* from March 1 */
	mp = (5 * doy + 2) / 153;
	y = yoe + era * 400 + (mp >= 10);
	memset(tm, 0, sizeof(*tm));
	tm->tm_sec = (int)(sec % 60);
	tm->tm_min = (int)(sec / 60 % 60);
	tm->tm_hour = (int)(sec / 3600);
	tm->tm_mday = (int)(doy - (153 * mp + 2) / 5 + 1);
	tm->tm_mon = (int)(mp < 10 ? mp + 2 : mp - 10);
	tm->tm_year = (int)(y - 1900);
	tm->tm_wday = (int)(((long)dd % 7 + 11) % 7);	/* 1970-01-01 was a Thursday */
	tm->tm_yday = (int)(mp >= 10 ? doy - 306 :
	    doy + 59 + ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
	return tm;
}

/* ==== strerror: musl's words for the errors a mail server meets */
static const unsigned short err_code[] = {
	EPERM, ENOENT, ESRCH, EINTR, EIO, ENXIO, EBADF, EAGAIN, ENOMEM, EACCES,
	EFAULT, EBUSY, EEXIST, EXDEV, ENODEV, ENOTDIR, EISDIR, EINVAL, ENFILE,
	EMFILE, EFBIG, ENOSPC, ESPIPE, EROFS, EMLINK, EPIPE, ERANGE, ENAMETOOLONG,
	ENOLCK, ENOSYS, ENOTEMPTY, ELOOP, EOVERFLOW, EPROTO, ENOTSOCK, EMSGSIZE,
	EOPNOTSUPP, EAFNOSUPPORT, EADDRINUSE, EADDRNOTAVAIL, ENETDOWN,
	ENETUNREACH, ECONNABORTED, ECONNRESET, ENOBUFS, EISCONN, ENOTCONN,
	ETIMEDOUT, ECONNREFUSED, EHOSTDOWN, EHOSTUNREACH, EALREADY, EINPROGRESS,
	ESTALE, EDQUOT,
};
static const char err_text[] =
	"Operation not permitted\0No such file or directory\0No such process\0"
	"Interrupted system call\0I/O error\0No such device or address\0"
	"Bad file descriptor\0Resource temporarily unavailable\0Out of memory\0"
	"Permission denied\0Bad address\0Resource busy\0File exists\0"
	"Cross-device link\0No such device\0Not a directory\0Is a directory\0"
	"Invalid argument\0Too many open files in system\0"
	"No file descriptors available\0File too large\0No space left on device\0"
	"Invalid seek\0Read-only file system\0Too many links\0Broken pipe\0"
	"Result not representable\0Filename too long\0No locks available\0"
	"Function not implemented\0Directory not empty\0Symbolic link loop\0"
	"Value too large for data type\0Protocol error\0Not a socket\0"
	"Message too large\0Not supported\0"
	"Address family not supported by protocol\0Address in use\0"
	"Address not available\0Network is down\0Network unreachable\0"
	"Connection aborted\0Connection reset by peer\0"
	"No buffer space available\0Socket is connected\0Socket not connected\0"
	"Operation timed out\0Connection refused\0Host is down\0"
	"Host is unreachable\0Operation already in progress\0"
	"Operation in progress\0Stale file handle\0Quota exceeded";

char *
k_strerror(int e)
{
	static char unknown[32];
	const char *s = err_text;
	size_t i;

	for (i = 0; i < sizeof(err_code) / sizeof(err_code[0]); i++, s += strlen(s) + 1)
		if (err_code[i] == e)
			return (char *)s;
	k_snprintf(unknown, sizeof(unknown), "Unknown error %d", e);
	return unknown;
}

char *
k_strstr(const char *h, const char *n)
{
	size_t l = strlen(n);

	for (; *h; h++)
		if (!strncmp(h, n, l))
			return (char *)h;
	return *n ? NULL : (char *)h;
}

/* ==== set*id: one process without threads needs no more than the system
 * call (musl's versions synchronise every thread, 2 KB on MIPS).  32-bit
 * ARM's are the *32 calls. */
#ifdef SYS_setuid32
#define K_SYS_setuid	SYS_setuid32
#define K_SYS_setgid	SYS_setgid32
#define K_SYS_setgroups	SYS_setgroups32
#else
#define K_SYS_setuid	SYS_setuid
#define K_SYS_setgid	SYS_setgid
#define K_SYS_setgroups	SYS_setgroups
#endif

int
k_setuid(uid_t u)
{
	return (int)syscall(K_SYS_setuid, u);
}

int
k_setgid(gid_t g)
{
	return (int)syscall(K_SYS_setgid, g);
}

int
k_setgroups(size_t n, const gid_t *g)
{
	return (int)syscall(K_SYS_setgroups, n, g);
}

/* if_nametoindex: the ioctl as a plain system call (musl's ioctl() carries
 * 1.3 KB of time64 conversions for other requests) */
unsigned
k_if_nametoindex(const char *name)
{
	struct ifreq ifr;
	int fd, r;

	if (strlen(name) >= sizeof(ifr.ifr_name)) {
		errno = ENODEV;
		return 0;
	}
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return 0;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, name, strlen(name));
	r = (int)syscall(SYS_ioctl, fd, SIOCGIFINDEX, &ifr);
	close(fd);
	return r < 0 ? 0 : (unsigned)ifr.ifr_ifindex;
}

#ifdef __UCLIBC__
/* -fstack-protector (OpenWrt's and Buildroot's SSP): uClibc-ng's
 * __stack_chk_fail reports through syslog(), which brings its printf
 * engine, localtime and strerror: 27 KB of a MIPS binary.  This one says it
 * on stderr and aborts (musl's just crashes); __stack_chk_guard stays the
 * libc's, set at start.  (Calls to it appear only at LTO code generation:
 * "used" keeps it, and the unit tests link libk.o itself, not from the
 * archive, whose members are chosen before.) */
void __stack_chk_fail(void) __attribute__((noreturn, used, externally_visible));
void
__stack_chk_fail(void)
{
	static const char m[] = "kotak: stack smashing detected, aborting\n";

	(void)!write(2, m, sizeof(m) - 1);
	abort();
}
#endif

/* inet_ntop as musl's: IPv4 dotted, IPv6 in hex groups (an IPv4-mapped
 * address ends in dotted IPv4), the longest run of two or more zero groups
 * (the first of equal runs) as "::" (RFC 5952) */
const char *
k_inet_ntop(int af, const void *src, char *dst, socklen_t size)
{
	const unsigned char *a = src;
	char b[64];
	size_t i, j, best = 0, max = 2;

	if (af == AF_INET)
		k_snprintf(b, sizeof(b), "%d.%d.%d.%d", a[0], a[1], a[2], a[3]);
	else if (af == AF_INET6) {
		int n = 0;

		for (i = 0; i < (memcmp(a, "\0\0\0\0\0\0\0\0\0\0\377\377", 12) ? 16u : 12u); i += 2)
			n += k_snprintf(b + n, sizeof(b) - n, "%x:", 256 * a[i] + a[i + 1]);
		if (i == 12)
			k_snprintf(b + n, sizeof(b) - n, "%d.%d.%d.%d", a[12], a[13], a[14], a[15]);
		else
			b[n - 1] = '\0';
		/* the longest run of ":0" at a group's start, if over 3 chars */
		for (i = 0; b[i]; i++) {
			if (i && b[i] != ':')
				continue;
			if ((j = strspn(b + i, ":0")) > max)
				best = i, max = j;
		}
		if (max > 3) {
			b[best] = b[best + 1] = ':';
			memmove(b + best + 2, b + best + max, i - best - max + 1);
		}
	} else {
		errno = EAFNOSUPPORT;
		return NULL;
	}
	if (strlen(b) >= size) {
		errno = ENOSPC;
		return NULL;
	}
	return strcpy(dst, b);
}

/* inet_pton: dotted IPv4 (four decimal parts to 255, no leading zeros);
 * IPv6: up to 8 groups of 1-4 hex digits, at most one "::" standing for one
 * or more zero groups, and dotted IPv4 as the last two groups */
static int
pton4(const char *s, unsigned char *a)
{
	int i, k, v;

	for (i = 0; i < 4; i++, s += k + 1) {
		for (v = k = 0; k < 3 && s[k] >= '0' && s[k] <= '9'; k++)
			v = 10 * v + s[k] - '0';
		if (!k || (k > 1 && *s == '0') || v > 255 || s[k] != (i < 3 ? '.' : '\0'))
			return 0;
		a[i] = (unsigned char)v;
	}
	return 1;
}

static int
hexdig(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : (c | 32) >= 'a' && (c | 32) <= 'f' ? (c | 32) - 'a' + 10 : -1;
}

int
k_inet_pton(int af, const char *s, void *dst)
{
	unsigned short g[8];
	unsigned char *a = dst, v4[4];
	int n = 0, gap = -1, k, v, d, i;

	if (af == AF_INET)
		return pton4(s, dst);
	if (af != AF_INET6) {
		errno = EAFNOSUPPORT;
		return -1;
	}
	if (*s == ':') {
		if (*++s != ':')
			return 0;
		gap = 0;
		s++;
	}
	while (*s) {
		for (v = k = 0; k < 4 && (d = hexdig(s[k])) >= 0; k++)
			v = 16 * v + d;
		if (!k)
			return 0;
		if (s[k] == '.') {	/* the IPv4 tail: the last two groups */
			if (n > 6 || (gap < 0 && n != 6) || !pton4(s, v4))
				return 0;
			g[n++] = (unsigned short)(v4[0] << 8 | v4[1]);
			g[n++] = (unsigned short)(v4[2] << 8 | v4[3]);
			break;
		}
		if (n == 8)
			return 0;
		g[n++] = (unsigned short)v;
		s += k;
		if (*s && (*s++ != ':' || !*s))
			return 0;	/* not a separator, or one at the end */
		if (*s == ':') {
			if (gap >= 0)
				return 0;
			gap = n;
			s++;
		}
	}
	if (gap < 0 ? n != 8 : n > 7)
		return 0;
	memset(a, 0, 16);
	for (i = 0; i < n; i++) {
		k = gap < 0 || i < gap ? i : 8 - n + i;
		a[2 * k] = (unsigned char)(g[i] >> 8);
		a[2 * k + 1] = (unsigned char)g[i];
	}
	return 1;
}

/* statvfs through statfs, as musl's (uClibc-ng's reads /proc/mounts with
 * its stdio for the mount flags, which statfs has had since Linux 2.6.36) */
int
k_statvfs(const char *path, struct statvfs *v)
{
	struct statfs f;

	if (statfs(path, &f) < 0)
		return -1;
	memset(v, 0, sizeof(*v));
	v->f_bsize = f.f_bsize;
	v->f_frsize = f.f_frsize ? f.f_frsize : f.f_bsize;
	v->f_blocks = f.f_blocks;
	v->f_bfree = f.f_bfree;
	v->f_bavail = f.f_bavail;
	v->f_files = f.f_files;
	v->f_ffree = f.f_ffree;
	v->f_favail = f.f_ffree;
	v->f_flag = f.f_flags;
	v->f_namemax = f.f_namelen;
	return 0;
}
#endif

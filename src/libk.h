/* libk.h: kotak's own small versions of the C library functions it uses
 * (Kconfig LIBK, default on), in src/libk.c.
 *
 * Why: a static binary carries every libc function it calls, and the
 * general ones are large for what kotak asks of them: musl's printf engine
 * alone is 9 KB on MIPS (and drags floating point into the soft-float
 * build, which an FPU-less router traps on), its malloc 9 KB, stdio 5 KB.
 * Measured on mips musl: README "Cross builds".
 *
 * How: kotak's sources keep calling snprintf, fopen, malloc, qsort...; with
 * LIBK on, this header (included by kotak.h after the system headers that
 * declare them) maps those names to k_ versions: function-like macros for
 * functions (so format(printf, ...) attributes keep their meaning), plain
 * ones for FILE, stdin/stdout/stderr, DIR, struct dirent and optarg & co.  Each does what kotak
 * needs and no more:
 *   - printf family: the conversions kotak uses (%d %i %u %x %X %o %c %s
 *     %%, lengths l ll z, flags - 0, width and precision, * for either).
 *     scripts/fmtcheck.py refuses anything else at compile time;
 *   - stdio: fopen/fdopen ("r", "w", "a", "e"), fgets, getc/fgetc,
 *     fputs, fputc/putc, putchar, puts, fwrite, fflush, fseek, ftell, fileno,
 *     ferror, feof, fclose on at most K_FOPEN_MAX files at a time; stdout
 *     is flushed at exit;
 *   - malloc/calloc/realloc/free/strdup: power-of-two classes carved from
 *     64 KiB mmap chunks, freed blocks reused by size; large ones mmap'd;
 *     kotak allocates only outside the I/O path (CA bundle, CLI commands);
 *   - opendir/readdir/closedir/dirfd (getdents64), strtol family and atoi, qsort
 *     (shell sort), getopt ("+", "::"), gmtime_r, strerror (the errors a
 *     mail server meets, else "Error N"), strstr, setuid/setgid/setgroups
 *     (one process, no threads: the plain system calls), if_nametoindex,
 *     inet_ntop (musl's formats with snprintf: its printf engine again),
 *     inet_pton, statvfs (statfs: uClibc-ng's reads /proc/mounts with stdio).
 * Each is tested against the libc it replaces on every target
 * (tests/unit/test_libk.c, also under qemu by make test-cross).
 * With LIBK off nothing here is mapped and kotak uses the libc's own.
 */
#ifndef LIBK_H
#define LIBK_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>
#include <dirent.h>
#include <grp.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#define KFMT(f, a) __attribute__((format(printf, f, a)))

/* ---- formatter */
int	 k_vsnprintf(char *, size_t, const char *, va_list) KFMT(3, 0);
int	 k_snprintf(char *, size_t, const char *, ...) KFMT(3, 4);
int	 k_dprintf(int, const char *, ...) KFMT(2, 3);

/* ---- stdio */
#define K_FOPEN_MAX	4	/* files open at once besides stdin/out/err */
#define K_BUFSIZ	1024
typedef struct k_file {
	int	 fd;
	unsigned char mode;	/* K_RD, K_WR, K_ERR, K_EOF, K_UNBUF */
	unsigned short pos;	/* read: next byte of buf; write: bytes held */
	unsigned short len;	/* read: bytes in buf */
	off_t	 off;		/* read: file offset of buf[0] */
	char	*buf;
} k_FILE;
extern k_FILE	 k_stdio[3];
k_FILE	*k_fopen(const char *, const char *);
k_FILE	*k_fdopen(int, const char *);
int	 k_fclose(k_FILE *);
int	 k_fflush(k_FILE *);
char	*k_fgets(char *, int, k_FILE *);
int	 k_fgetc(k_FILE *);
int	 k_fileno(k_FILE *);
int	 k_ferror(k_FILE *);
int	 k_feof(k_FILE *);
int	 k_fputs(const char *, k_FILE *);
int	 k_fputc(int, k_FILE *);
int	 k_putchar(int);
int	 k_puts(const char *);
size_t	 k_fwrite(const void *, size_t, size_t, k_FILE *);
int	 k_fseek(k_FILE *, long, int);
long	 k_ftell(k_FILE *);
int	 k_vfprintf(k_FILE *, const char *, va_list) KFMT(2, 0);
int	 k_fprintf(k_FILE *, const char *, ...) KFMT(2, 3);
int	 k_printf(const char *, ...) KFMT(1, 2);

/* ---- memory: under AddressSanitizer the libc's malloc, which it checks */
#if defined(__SANITIZE_ADDRESS__)
#define K_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define K_ASAN 1
#endif
#endif
void	*k_malloc(size_t);
void	*k_calloc(size_t, size_t);
void	*k_realloc(void *, size_t);
void	 k_free(void *);
char	*k_strdup(const char *);

/* ---- directories: struct k_dirent is the kernel's linux_dirent64 */
struct k_dirent {
	unsigned long long d_ino;
	long long d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char	 d_name[];
};
typedef struct k_dir k_DIR;
k_DIR	*k_opendir(const char *);
struct k_dirent *k_readdir(k_DIR *);
int	 k_closedir(k_DIR *);
int	 k_dirfd(k_DIR *);

/* ---- the rest */
long	 k_strtol(const char *, char **, int);
unsigned long k_strtoul(const char *, char **, int);
long long k_strtoll(const char *, char **, int);
unsigned long long k_strtoull(const char *, char **, int);
int	 k_atoi(const char *);
void	 k_qsort(void *, size_t, size_t, int (*)(const void *, const void *));
extern char *k_optarg;
extern int k_optind, k_opterr, k_optopt;
int	 k_getopt(int, char *const[], const char *);
struct tm *k_gmtime_r(const time_t *, struct tm *);
char	*k_strerror(int);
char	*k_strstr(const char *, const char *);
int	 k_setuid(uid_t);
int	 k_setgid(gid_t);
int	 k_setgroups(size_t, const gid_t *);
unsigned k_if_nametoindex(const char *);
const char *k_inet_ntop(int, const void *, char *, socklen_t);
int	 k_inet_pton(int, const char *, void *);
int	 k_statvfs(const char *, struct statvfs *);

#if ENABLE_LIBK && !defined(LIBK_NOMAP)
typedef int k_libk_names_mapped;	/* scripts/fmtcheck.py --libk looks for it */
#undef FILE
#undef stdin
#undef stdout
#undef stderr
#undef fopen
#undef fdopen
#undef fclose
#undef fflush
#undef fgets
#undef fgetc
#undef getc
#undef fileno
#undef ferror
#undef feof
#undef fputs
#undef fputc
#undef putc
#undef putchar
#undef puts
#undef fwrite
#undef fseek
#undef ftell
#undef printf
#undef fprintf
#undef vfprintf
#undef snprintf
#undef vsnprintf
#undef dprintf
#undef malloc
#undef calloc
#undef realloc
#undef free
#undef strdup
#undef DIR
#undef dirent
#undef opendir
#undef readdir
#undef closedir
#undef dirfd
#undef strtol
#undef strtoul
#undef strtoll
#undef strtoull
#undef atoi
#undef qsort
#undef optarg
#undef optind
#undef opterr
#undef optopt
#undef getopt
#undef gmtime_r
#undef strerror
#undef strstr
#undef setuid
#undef setgid
#undef setgroups
#undef if_nametoindex
#undef inet_ntop
#undef inet_pton
#undef statvfs
#define FILE		k_FILE
#define stdin		(&k_stdio[0])
#define stdout		(&k_stdio[1])
#define stderr		(&k_stdio[2])
#define fopen(...)		k_fopen(__VA_ARGS__)
#define fdopen(...)		k_fdopen(__VA_ARGS__)
#define fclose(...)		k_fclose(__VA_ARGS__)
#define fflush(...)		k_fflush(__VA_ARGS__)
#define fgets(...)		k_fgets(__VA_ARGS__)
#define fgetc(...)		k_fgetc(__VA_ARGS__)
#define getc(...)		k_fgetc(__VA_ARGS__)
#define fileno(...)		k_fileno(__VA_ARGS__)
#define ferror(...)		k_ferror(__VA_ARGS__)
#define feof(...)		k_feof(__VA_ARGS__)
#define fputs(...)		k_fputs(__VA_ARGS__)
#define fputc(...)		k_fputc(__VA_ARGS__)
#define putc(...)		k_fputc(__VA_ARGS__)
#define putchar(...)		k_putchar(__VA_ARGS__)
#define puts(...)		k_puts(__VA_ARGS__)
#define fwrite(...)		k_fwrite(__VA_ARGS__)
#define fseek(...)		k_fseek(__VA_ARGS__)
#define ftell(...)		k_ftell(__VA_ARGS__)
#define printf(...)		k_printf(__VA_ARGS__)
#define fprintf(...)		k_fprintf(__VA_ARGS__)
#define vfprintf(...)		k_vfprintf(__VA_ARGS__)
#define snprintf(...)		k_snprintf(__VA_ARGS__)
#define vsnprintf(...)		k_vsnprintf(__VA_ARGS__)
#define dprintf(...)		k_dprintf(__VA_ARGS__)
#define malloc(...)		k_malloc(__VA_ARGS__)
#define calloc(...)		k_calloc(__VA_ARGS__)
#define realloc(...)		k_realloc(__VA_ARGS__)
#define free(...)		k_free(__VA_ARGS__)
#define strdup(...)		k_strdup(__VA_ARGS__)
#define DIR		k_DIR
#define dirent		k_dirent
#define opendir(...)		k_opendir(__VA_ARGS__)
#define readdir(...)		k_readdir(__VA_ARGS__)
#define closedir(...)		k_closedir(__VA_ARGS__)
#define dirfd(...)		k_dirfd(__VA_ARGS__)
#define strtol(...)		k_strtol(__VA_ARGS__)
#define strtoul(...)		k_strtoul(__VA_ARGS__)
#define strtoll(...)		k_strtoll(__VA_ARGS__)
#define strtoull(...)		k_strtoull(__VA_ARGS__)
#define atoi(...)		k_atoi(__VA_ARGS__)
#define qsort(...)		k_qsort(__VA_ARGS__)
#define optarg		k_optarg
#define optind		k_optind
#define opterr		k_opterr
#define optopt		k_optopt
#define getopt(...)		k_getopt(__VA_ARGS__)
#define gmtime_r(...)		k_gmtime_r(__VA_ARGS__)
#define strerror(...)		k_strerror(__VA_ARGS__)
#define strstr(...)		k_strstr(__VA_ARGS__)
#define setuid(...)		k_setuid(__VA_ARGS__)
#define setgid(...)		k_setgid(__VA_ARGS__)
#define setgroups(...)		k_setgroups(__VA_ARGS__)
#define if_nametoindex(...)	k_if_nametoindex(__VA_ARGS__)
#define inet_ntop(...)		k_inet_ntop(__VA_ARGS__)
#define inet_pton(...)		k_inet_pton(__VA_ARGS__)
#define statvfs(...)		k_statvfs(__VA_ARGS__)
#endif

#endif

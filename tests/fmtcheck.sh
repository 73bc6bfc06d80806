#!/usr/bin/env bash
# tests/fmtcheck.sh: scripts/fmtcheck.py refuses at build time every printf
# format src/libk.c cannot format, and lets kotak's own through.  Each case
# is a C snippet preprocessed like a source of kotak's (with kotak.h, so
# with libk's name mapping).  Last line "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-/usr/bin/python3}
CC=${CC:-cc}
P=0 F=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ -f build/config.h ] || make -s build/config.h >/dev/null
INC="-Ibuild -Isrc -isystem $(scripts/bearssl.sh src)/inc"

# case WANT NAME BODY: WANT is ok or refused
# (a NAME starting with raw_: BODY alone, without kotak.h, checked --libk)
case_() {
	local want=$1 name=$2 body=$3 got opt=--libk
	grep -q 'define ENABLE_LIBK 1' build/config.h || opt=
	case $name in
	raw_*) printf '%s\n' "$body" >"$tmp/c.c"; opt=--libk ;;
	*) printf '#include "kotak.h"\n%s\n' "$body" >"$tmp/c.c" ;;
	esac
	if [ "$body" != "${body#src/}" ]; then
		cp "$body" "$tmp/c.c"	# a source of kotak's as the build sees it
	fi
	if ! $CC -std=c99 -D_DEFAULT_SOURCE -D_XOPEN_SOURCE=700 -D_FILE_OFFSET_BITS=64 $INC \
		-E "$tmp/c.c" -o "$tmp/c.i" 2>"$tmp/err"; then
		echo "FAIL $name: does not preprocess: $(head -n 1 "$tmp/err")"
		F=$((F + 1))
		return
	fi
	if "$PY" scripts/fmtcheck.py $opt "$tmp/c.i" 2>"$tmp/err"; then got=ok; else got=refused; fi
	if [ "$got" = "$want" ]; then
		echo "PASS $name ($got$([ $got = refused ] && echo ": $(head -n 1 "$tmp/err" | sed 's/.*: //')"))"
		P=$((P + 1))
	else
		echo "FAIL $name: $got, want $want"
		sed 's/^/    /' "$tmp/err"
		F=$((F + 1))
	fi
}

V='void f(char *b, size_t n, int i, long l, long long ll, unsigned u, const char *s, double d, void *p, FILE *fp)'
case_ ok every_conversion_kotak_uses "$V { snprintf(b, n, \"%d %i %u %x %X %o %c %s %% %ld %lu %lld %llu %llx %zu %zd\", i, i, u, u, u, u, i, s, l, (unsigned long)l, ll, (unsigned long long)ll, (unsigned long long)ll, n, (ssize_t)n); }"
case_ ok widths_and_precisions "$V { snprintf(b, n, \"%02d %-8s %020lld %8lld %.3s %.*s %*d %.0d %08x %04o %-3c\", i, s, ll, ll, s, i, s, i, i, i, u, u, i); }"
case_ ok ternary_of_literals "$V { printf(i ? \"%s\\\\n\" : i > 1 ? \"[%s]\" : (\"<%s>\"), s); }"
case_ ok concatenated_literals "$V { fprintf(fp, \"a \" \"%s\" \" b %d\\\\n\", s, i); }"
case_ ok passed_through_format "void g(const char *fmt, ...) __attribute__((format(printf, 1, 2))); void g(const char *fmt, ...) { va_list ap; char b[9]; va_start(ap, fmt); vsnprintf(b, 9, fmt, ap); va_end(ap); }"
case_ ok own_format_function "void g(int, const char *, ...) __attribute__((format(printf, 2, 3))); void h(void) { g(1, \"%s %d\", \"x\", 2); }"
case_ refused float "$V { snprintf(b, n, \"%f\", d); }"
case_ refused float_g "$V { printf(\"%g\", d); }"
case_ refused pointer "$V { snprintf(b, n, \"%p\", p); }"
case_ refused plus_flag "$V { snprintf(b, n, \"%+d\", i); }"
case_ refused alt_flag "$V { snprintf(b, n, \"%#x\", u); }"
case_ refused space_flag "$V { snprintf(b, n, \"% d\", i); }"
case_ refused short "$V { snprintf(b, n, \"%hd\", (short)i); }"
case_ refused char_length "$V { snprintf(b, n, \"%hhx\", (unsigned char)u); }"
case_ refused intmax "$V { snprintf(b, n, \"%jd\", (intmax_t)i); }"
case_ refused wide_char "$V { snprintf(b, n, \"%lc\", i); }"
case_ refused zero_padded_string "$V { snprintf(b, n, \"%05s\", s); }"
case_ refused errno_m "$V { snprintf(b, n, \"%m\"); }"
case_ refused lone_percent "$V { snprintf(b, n, \"100%\"); }"
case_ refused percent_n "$V { snprintf(b, n, \"%n\", &i); }"
case_ refused in_own_format_function "void g(int, const char *, ...) __attribute__((format(printf, 2, 3))); void h(double d) { g(1, \"%.2f\", d); }"
case_ refused in_a_ternary "$V { printf(i ? \"%s\" : \"%e\", s); }"
case_ refused variable_format "$V { snprintf(b, n, s); }"
case_ refused built_format "$V { printf(i ? s : \"x\"); }"
case_ refused sprintf "$V { sprintf(b, \"%d\", i); }"
case_ refused asprintf "$V { char *x; asprintf(&x, \"%d\", i); }"
case_ refused sscanf "$V { sscanf(s, \"%d\", &i); }"
case_ refused syslog "$V { syslog(3, \"%s\", s); }"
# a source that does not include kotak.h would call the libc's functions
# with the libc's FILE, where the rest of kotak passes libk's
case_ refused raw_libc_fprintf_without_kotak_h '#include <stdio.h>
void f(FILE *fp, int i) { fprintf(fp, "%d", i); }'
case_ refused raw_libc_malloc_without_kotak_h '#include <stdlib.h>
void *f(void) { return malloc(8); }'
case_ ok raw_no_libc_calls_without_kotak_h 'int f(int i) { return i * 2; }'
case_ ok raw_with_libk_h '#include "config.h"
#include "libk.h"
void f(FILE *fp, int i) { fprintf(fp, "%d", i); }'
# every source of kotak's as the build sees it
for f in src/*.c; do
	case_ ok "$f" "$f"
done
echo "$P passed, $F failed"
[ "$F" -eq 0 ]

#!/usr/bin/env bash
# tests/fuzz/build.sh MODE: build kotak's fuzz targets (sourced by run.sh
# and replay.sh, or run alone).
#   MODE=libfuzzer  clang -fsanitize=fuzzer,address,undefined  -> build-fuzz/
#   MODE=replay     gcc (cc) -fsanitize=address,undefined with
#                   tests/fuzz/standalone.c as main()       -> build-fuzz/replay/
# Each target links an archive of src/*.c but main.c, so a target pulls in
# only what it uses and may stub the rest (fuzz_smtp stubs queue.c/log.c).
# The config is build/config.h with TLS off (BearSSL parses TLS, not
# kotak; conn.c then has its no-TLS stubs) and LIBK off (the harnesses hand
# the libc's FILEs, open_memstream's, to kotak's writers; ASan checks the
# libc's allocator).  Targets marked small are also
# built against a config.h with tiny limits (DATA_LINE_MAX 40,
# SMTP_LINE_MAX 64, IBUF 128; mailbox.c reading 128 bytes at a time and
# scanning or moving 256 per call) as NAME_small, so the line-length,
# buffer-full and slice paths are reachable with small inputs.
set -eu
cd "$(dirname "$0")/../.."

MODE=${1:-libfuzzer}
TARGETS=${FUZZ_TARGETS:-$(cd tests/fuzz && ls fuzz_*.c | sed 's/\.c$//')}
SMALL="fuzz_data fuzz_imap fuzz_mailbox fuzz_mboxquote fuzz_pop3 fuzz_smtp"
CSTD="-std=c99 -D_DEFAULT_SOURCE -D_FILE_OFFSET_BITS=64 -DKOTAK_VERSION=\"fuzz\" -DFOLDER_TEST -Wall -Wextra -Wno-unused-parameter"

case $MODE in
libfuzzer)
	CC=${FUZZ_CC:-clang}
	OUT=build-fuzz
	LIBFLAGS="-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"
	BINFLAGS="-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
	MAIN=
	;;
replay)
	CC=${FUZZ_CC:-gcc}
	OUT=build-fuzz/replay
	LIBFLAGS="-g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined"
	BINFLAGS=$LIBFLAGS
	MAIN=tests/fuzz/standalone.c
	$CC --version 2>/dev/null | grep -qi clang || CSTD="$CSTD -Wno-format-truncation"
	;;
*)
	echo "usage: $0 libfuzzer|replay" >&2
	exit 2
	;;
esac

make -s build/config.h >/dev/null
# mkconfig DIR SED-ARGS...: DIR/config.h from build/config.h, touched only when it changes
mkconfig() {
	local d=$1
	shift
	mkdir -p "$d"
	sed -e 's/^#define ENABLE_TLS .*/#define ENABLE_TLS 0/' -e 's/^#define ENABLE_LIBK .*/#define ENABLE_LIBK 0/' "$@" build/config.h > "$d/config.h.new"
	if cmp -s "$d/config.h.new" "$d/config.h"; then
		rm -f "$d/config.h.new"
	else
		mv "$d/config.h.new" "$d/config.h"
	fi
}
mkconfig "$OUT/std"
mkconfig "$OUT/small" \
	-e 's/^#define CONFIG_DATA_LINE_MAX .*/#define CONFIG_DATA_LINE_MAX 40/' \
	-e 's/^#define CONFIG_SMTP_LINE_MAX .*/#define CONFIG_SMTP_LINE_MAX 64/' \
	-e 's/^#define CONFIG_IBUF .*/#define CONFIG_IBUF 128/' \
	-e '$a #define SCAN_SLICE 256\n#define COPY_SLICE 256\n#define CUT_SLICE 512\n#define SBUF 128'

# lib VARIANT INCDIR: objects and archive, rebuilt when a source or header is newer
lib() {
	local v=$1 inc=$2 f o objs="" stale=0
	mkdir -p "$OUT/obj-$v"
	for f in src/*.c; do
		[ "$f" = src/main.c ] && continue
		o=$OUT/obj-$v/$(basename "$f" .c).o
		if [ ! -f "$o" ] || [ -n "$(find "$f" src/*.h "$inc/config.h" -newer "$o" 2>/dev/null | head -n 1)" ]; then
			stale=1
			# a source that does not compile (work in progress) is left
			# out; a target that needs it then fails to link
			if ! $CC $CSTD $LIBFLAGS -I"$inc" -Isrc -c -o "$o" "$f" 2>"$o.err"; then
				echo "build.sh: $f does not compile, left out of the archive:" >&2
				head -n 5 "$o.err" >&2
				rm -f "$o" "$o.err"
				continue
			fi
			cat "$o.err" >&2
			rm -f "$o.err"
		fi
		objs="$objs $o"
	done
	# drop objects of sources that went away
	for o in "$OUT/obj-$v"/*.o; do
		[ -f "src/$(basename "$o" .o).c" ] || { rm -f "$o"; stale=1; }
	done
	if [ $stale = 1 ] || [ ! -f "$OUT/libkotak-$v.a" ]; then
		rm -f "$OUT/libkotak-$v.a"
		ar rcs "$OUT/libkotak-$v.a" $objs
	fi
}

lib std "$OUT/std"
lib small "$OUT/small"
for t in $TARGETS; do
	$CC $CSTD $BINFLAGS -DLIBK_NOMAP -I"$OUT/std" -Isrc -o "$OUT/$t" tests/fuzz/$t.c $MAIN "$OUT/libkotak-std.a"
	case " $SMALL " in *" $t "*)
		$CC $CSTD $BINFLAGS -DLIBK_NOMAP -I"$OUT/small" -Isrc -o "$OUT/${t}_small" tests/fuzz/$t.c $MAIN "$OUT/libkotak-small.a" ;;
	esac
done

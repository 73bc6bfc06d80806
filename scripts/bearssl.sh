#!/usr/bin/env bash
# scripts/bearssl.sh src            print the BearSSL 0.6 source dir (fetching it once)
# scripts/bearssl.sh lib OUT CC AR CFLAGS...  build OUT/libbearssl.a with that compiler
#
# The source is never committed: BEARSSL_SRC (a packager's unpacked tree) wins;
# else Debian's source package is fetched once into ${KOTAK_CACHE:-/var/cache/kotak}
# (apt-get source needs a deb-src entry: added as a copy of the deb one).
# BearSSL is built with -fno-strict-aliasing: with LTO and no-PIE gcc 12
# miscompiles its unaligned-access unions otherwise (BUILD-NOTES 1.6.1).
set -eu
cache=${KOTAK_CACHE:-/var/cache/kotak}

src() {
	if [ -n "${BEARSSL_SRC:-}" ]; then
		echo "$BEARSSL_SRC"
		return
	fi
	local d
	d=$(ls -d "$cache"/src/bearssl-0.6*/ 2>/dev/null | head -n 1 || true)
	if [ -z "$d" ]; then
		mkdir -p "$cache/src"
		exec 9>"$cache/src/.lock"
		flock 9
		d=$(ls -d "$cache"/src/bearssl-0.6*/ 2>/dev/null | head -n 1 || true)
		if [ -z "$d" ]; then
			if ! grep -rqs '^Types: deb-src' /etc/apt/sources.list.d/ && [ -f /etc/apt/sources.list.d/debian.sources ]; then
				sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
					> /etc/apt/sources.list.d/debian-src.sources
				apt-get update -q >/dev/null
			fi
			command -v dpkg-source >/dev/null || \
				DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q dpkg-dev >/dev/null
			(cd "$cache/src" && apt-get source -q bearssl >/dev/null 2>&1) || {
				apt-get update -q >/dev/null
				(cd "$cache/src" && apt-get source -q bearssl >/dev/null)
			}
			d=$(ls -d "$cache"/src/bearssl-0.6*/ | head -n 1)
		fi
	fi
	echo "${d%/}"
}

case "${1:-}" in
src)
	src
	;;
lib)
	out=$2 cc=$3 ar=$4
	shift 4
	s=$(src)
	mkdir -p "$out/obj"
	find "$s/src" -name '*.c' | sort | while read -r f; do
		o="$out/obj/$(echo "${f#"$s"/src/}" | tr / _ | sed 's/\.c$/.o/')"
		[ "$o" -nt "$f" ] || echo "$f $o"
	done | xargs -r -n 2 -P "$(nproc)" sh -c 'exec '"$cc"' '"$*"' -fno-strict-aliasing -I'"$s"'/inc -I'"$s"'/src -c "$0" -o "$1"'
	rm -f "$out/libbearssl.a"
	"$ar" rcs "$out/libbearssl.a" "$out"/obj/*.o
	;;
*)
	sed -n '2,4p' "$0"
	exit 2
	;;
esac

#!/bin/sh
# scripts/genconfig.sh KCONFIG DOTCONFIG OUT: OUT (build/config.h) from the
# Kconfig file and a .config (or a defconfig, or a packager's fragment),
# with POSIX awk: no python3-kconfiglib on the build host (OpenWrt and
# Buildroot provide none).  menuconfig and savedefconfig still use it.
#
# The BusyBox way, as kconfiglib's genconfig did it here before: every bool
# is ENABLE_X 0|1 (code says `#if ENABLE_X`; -Wundef catches typos), every
# int CONFIG_X, KOTAK_FEATURES lists the bools for `kotak -V`.  A symbol
# missing from DOTCONFIG takes its default; `depends on` (names, !, &&, ||)
# turns a bool off and leaves an int empty; an int out of its range takes
# its default; a symbol without a prompt ignores DOTCONFIG.  Anything else of the Kconfig language (select, choice,
# conditional defaults, string...) stops with an error rather than guess.
# tests/board/test_genconfig.sh compares the output with kconfiglib's.
set -eu
[ $# -eq 3 ] || { echo "usage: $0 KCONFIG DOTCONFIG OUT" >&2; exit 2; }
tmp="$3.tmp$$"
awk '
function die(m) { printf "genconfig.sh: %s:%d: %s\n", FILENAME, FNR, m > "/dev/stderr"; err = 1; exit 1 }
# a dependency expression: || of && of [!]NAME
function dep(e,   o, a, i, j, na, nb, b, ok, v, nm) {
	gsub(/[ \t]/, "", e)
	na = split(e, o, /\|\|/)
	for (i = 1; i <= na; i++) {
		nb = split(o[i], b, /&&/); ok = 1
		for (j = 1; j <= nb; j++) {
			nm = b[j]; v = 1
			if (substr(nm, 1, 1) == "!") { v = 0; nm = substr(nm, 2) }
			if (nm !~ /^[A-Z0-9_]+$/ || !(nm in type)) die("cannot evaluate depends on " e)
			if ((bval(nm) == "y") != v) ok = 0
		}
		if (ok) return 1
	}
	return 0
}
# the value of a bool, its dependencies first (they may be defined after it)
function bval(s,   v) {
	if (s in val) return val[s]
	if (busy[s]++) die("dependency loop at " s)
	v = (s in user) && (s in prompt) ? user[s] : ((s in def) ? def[s] : "n")
	if (type[s] != "bool" || v != "y" || ((s in deps) && !dep(deps[s]))) v = "n"
	return val[s] = v
}
FNR == 1 { f++ }
f == 1 && /^[ \t]*#/ { next }
f == 1 && inhelp && (/^[ \t]/ || /^$/) { next }
f == 1 { inhelp = 0 }
f == 1 && $1 == "config" { cur = $2; order[++n] = cur; next }
f == 1 && ($1 == "menu" || $1 == "endmenu" || $1 == "mainmenu" || NF == 0) { next }
f == 1 && ($1 == "bool" || $1 == "int") { type[cur] = $1; if (NF > 1) prompt[cur] = 1; next }
f == 1 && $1 == "default" { if (NF != 2 || (cur in def)) die("unsupported default"); def[cur] = $2; next }
f == 1 && $1 == "depends" && $2 == "on" { sub(/^[ \t]*depends[ \t]+on[ \t]+/, ""); deps[cur] = (cur in deps) ? deps[cur] "&&" $0 : $0; next }
f == 1 && $1 == "range" { lo[cur] = $2; hi[cur] = $3; next }
f == 1 && ($1 == "help" || $1 == "---help---") { inhelp = 1; next }
f == 1 { die("unsupported Kconfig line: " $0) }
f == 2 && /^CONFIG_[A-Za-z0-9_]+=/ { s = $0; sub(/^CONFIG_/, "", s); k = s; sub(/=.*/, "", k); sub(/^[^=]*=/, "", s); gsub(/"/, "", s); user[k] = s; next }
f == 2 && /^# CONFIG_[A-Za-z0-9_]+ is not set/ { k = $2; sub(/^CONFIG_/, "", k); user[k] = "n"; next }
END {
	if (err) exit 1
	print "/* generated from .config by scripts/genconfig.sh: do not edit */"
	print "#ifndef KOTAK_CONFIG_H"
	print "#define KOTAK_CONFIG_H"
	feats = ""
	for (i = 1; i <= n; i++) {
		s = order[i]
		if (!(s in type)) { printf "genconfig.sh: %s has no type\n", s > "/dev/stderr"; exit 1 }
		on = !(s in deps) || dep(deps[s])
		if (type[s] == "bool") {
			bval(s)
			printf "#define ENABLE_%s %d\n", s, val[s] == "y"
			feats = feats (feats == "" ? "" : " ") (val[s] == "y" ? "+" : "-") tolower(s)
		} else {
			v = ""
			if (on) {
				v = (s in def) ? def[s] : ""
				if ((s in user) && (s in prompt) && user[s] ~ /^-?[0-9]+$/ && (!(s in lo) || (user[s] + 0 >= lo[s] + 0 && user[s] + 0 <= hi[s] + 0)))
					v = user[s]
			}
			val[s] = v
			printf "#define CONFIG_%s %s\n", s, v
		}
	}
	printf "#define KOTAK_FEATURES \"%s\"\n", feats
	print "#endif"
}' "$1" "$2" > "$tmp" || { rm -f "$tmp"; exit 1; }
if cmp -s "$tmp" "$3"; then
	rm -f "$tmp"
else
	mv "$tmp" "$3"
fi

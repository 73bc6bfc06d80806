#!/usr/bin/env bash
# The Buildroot package (board/buildroot) without a Buildroot tree:
# - the rules of Buildroot's check-package that apply (sysv init script:
#   DAEMON and PIDFILE lines, not executable, tabs, shellcheck; .mk header;
#   Config.in help text and indentation), reimplemented here;
# - kotak.mk's commands run by a stand-in of generic-package in an empty
#   network namespace with apt-get a tripwire: Buildroot's TARGET_CONFIGURE_OPTS
#   (-O2) and its BearSSL from staging (a libbearssl.a and headers built
#   elsewhere); kotak's objects still -Os, no BearSSL of its own, the
#   BR2_PACKAGE_KOTAK_* options in kotak's Kconfig, the installed files.
# What only a real Buildroot tree can show is listed in board/README.md.
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
pass() { echo "PASS buildroot $1"; }
fail() { echo "FAIL buildroot $1"; }
P=board/buildroot/package/kotak

# ---- check-package's rules
probs=""
[ -x $P/S50kotak ] && probs="$probs S50kotak is executable (install sets the mode);"
grep -qx 'DAEMON="kotak"' $P/S50kotak || probs="$probs no DAEMON=\"kotak\";"
grep -qx 'PIDFILE="/var/run/$DAEMON.pid"' $P/S50kotak || probs="$probs PIDFILE is not \"/var/run/\$DAEMON.pid\";"
grep -nE '^[[:space:]]* +[^[:space:]]' $P/S50kotak | grep -v '^[0-9]*:#' | head -n 1 | grep -q . && probs="$probs S50kotak indented with spaces;"
command -v shellcheck >/dev/null && ! shellcheck $P/S50kotak >/dev/null && probs="$probs shellcheck S50kotak;"
busybox sh -n $P/S50kotak 2>/dev/null || probs="$probs BusyBox sh cannot parse S50kotak;"
[ "$(sed -n '1p;5p' $P/kotak.mk | sort -u)" = "$(printf '#%.0s' $(seq 80))" ] &&
	[ "$(sed -n '2p;4p' $P/kotak.mk | sort -u)" = "#" ] && [ "$(sed -n 3p $P/kotak.mk)" = "# kotak" ] ||
	probs="$probs kotak.mk header;"
grep -nE '^[A-Z0-9_]+_[A-Z0-9_]+ *[:+]?=' $P/kotak.mk | grep -vE ':(KOTAK_|BR2_)' | head -n 1 | grep -q . &&
	probs="$probs a variable not prefixed KOTAK_ in kotak.mk;"
tail -n 1 $P/kotak.mk | grep -qx '$(eval $(generic-package))' || probs="$probs kotak.mk does not end with generic-package;"
awk 'FNR == 1 { h = 0 } /^\thelp$/ { h = 1; next } h && /^\t  / { if (length($0) > 64) { print FILENAME ":" FNR; bad = 1 } next }
	/^[^\t]/ { h = 0 } /^\t(bool|default|depends|select|help)/ { next } /^[ ]+(bool|default|depends|select|help|config)/ { print FILENAME ":" FNR; bad = 1 }
	/^\tdefault n$/ { print FILENAME ":" FNR " default n"; bad = 1 } END { exit bad }' $P/Config.in board/buildroot/Config.in >"$t/cfg" ||
	probs="$probs Config.in: $(tr '\n' ' ' <"$t/cfg");"
[ -z "$probs" ] && pass "check-package rules (S50kotak, kotak.mk, Config.in)" || fail "check-package rules:$probs"

# ---- S50kotak under BusyBox sh and BusyBox start-stop-daemon, with its
# paths pointed at a test config (sed) and the kotak under test
BIN=${KOTAK_BIN:-$ROOT/kotak}
mkdir -p "$t/s50/path"
for a in sh start-stop-daemon awk sleep cat mkdir chmod chown rm kill; do ln -s "$(command -v busybox)" "$t/s50/path/$a"; done
sed -e "s|^EXEC=.*|EXEC=\"$BIN\"|" -e "s|^CONF=.*|CONF=\"$t/s50/kotak.conf\"|" \
	-e "s|^PIDFILE=.*|PIDFILE=\"$t/s50/kotak.pid\"|" $P/S50kotak >"$t/s50/S50kotak"
s50conf() {
	printf "config kotak 'main'\n\toption enabled '%s'\n\toption hostname 'mail.example.lan'\n\toption data_dir '%s'\n\toption users_file '%s'\n\toption dns_server '127.0.0.1:9'\n%s\nconfig listen\n\toption proto 'smtp'\n\toption address '127.0.0.1'\n\toption port '%s'\n" \
		"$1" "$t/s50/data" "$t/s50/users" "${2:-}" "$s50port" >"$t/s50/kotak.conf"
}
s50() { PATH="$t/s50/path" sh "$t/s50/S50kotak" "$1" 2>&1; }
s50port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
probs=""
s50conf 0
out=$(s50 start)
case "$out" in *disabled*) ;; *) probs="$probs enabled 0 started it ($out);" ;; esac
[ -e "$t/s50/kotak.pid" ] && probs="$probs pid file while disabled;"
s50conf 1
out=$(s50 start)
pid=$(cat "$t/s50/kotak.pid" 2>/dev/null)
case "$out" in *OK*) ;; *) probs="$probs start: $out;" ;; esac
[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || probs="$probs not running after start;"
s50conf 1 "	option bogus '1'"
out=$(s50 reload)
case "$out" in *FAIL*) ;; *) probs="$probs reload of a bad config: $out;" ;; esac
kill -0 "$pid" 2>/dev/null || probs="$probs a bad reload stopped kotak;"
s50conf 1
out=$(s50 reload)
case "$out" in *OK*) ;; *) probs="$probs reload: $out;" ;; esac
out=$(s50 stop)
case "$out" in *OK*) ;; *) probs="$probs stop: $out;" ;; esac
kill -0 "$pid" 2>/dev/null && { probs="$probs still running after stop;"; kill "$pid"; }
[ -z "$probs" ] && pass "S50kotak under BusyBox: disabled until enabled, start, bad reload kept, reload, stop" ||
	fail "S50kotak:$probs"

# ---- kotak.mk by a stand-in of generic-package
if ! command -v unshare >/dev/null || ! unshare -n true 2>/dev/null; then
	echo "SKIP buildroot package build: cannot make a network namespace (unshare -n)"
	exit 0
fi
bsrc=$(scripts/bearssl.sh src 2>/dev/null)
[ -f build/bearssl/libbearssl.a ] || make -s build/bearssl/libbearssl.a >/dev/null 2>&1
if [ -z "$bsrc" ] || [ ! -f build/bearssl/libbearssl.a ]; then
	echo "SKIP buildroot package build: no BearSSL at hand to stand for Buildroot's"
	exit 0
fi
# Buildroot's bearssl package installs inc/*.h into usr/include and
# libbearssl.a into usr/lib of staging: stand-ins made from the host build
stage=$t/staging target=$t/target src=$t/kotak-custom
mkdir -p "$stage/usr/include" "$stage/usr/lib" "$target" "$t/fakebin"
cp "$bsrc"/inc/*.h "$stage/usr/include/"
cp build/bearssl/libbearssl.a "$stage/usr/lib/"
# Buildroot rsyncs the local SITE without the exclusions
rsync -a --exclude /.git $(sed -n '/RSYNC_EXCLUSIONS = /,/^$/p' $P/kotak.mk | grep -o -- "--exclude [^ \\]*" | tr -d "'") ./ "$src/"
for x in apt-get apt dpkg-source wget curl git python3; do
	printf '#!/bin/sh\necho "%s $*" >>%s\nexit 1\n' "$x" "$t/tripwire.log" >"$t/fakebin/$x"
	chmod +x "$t/fakebin/$x"
done
brmake() {	# extra make variables (the BR2_ options)
	unshare -n env PATH="$t/fakebin:$PATH" make --no-print-directory -f "$t/Makefile" "$@" >"$t/build.log" 2>&1
}
cat >"$t/Makefile" <<MK
BR2_EXTERNAL_KOTAK_PATH := $ROOT/board/buildroot
KOTAK_BUILDDIR := $src
STAGING_DIR := $stage
TARGET_DIR := $target
KOTAK_PKGDIR := $ROOT/$P/
INSTALL := install
TARGET_CROSS :=
TARGET_MAKE_ENV := PATH=\$(PATH)
TARGET_CONFIGURE_OPTS := CC="musl-gcc" AR="ar" CFLAGS="-D_LARGEFILE_SOURCE -D_LARGEFILE64_SOURCE -D_FILE_OFFSET_BITS=64 -O2 -g0" LDFLAGS=""
include $ROOT/tests/board/buildroot-stub/pkg.mk
include $ROOT/$P/kotak.mk
MK
if brmake BR2_PACKAGE_KOTAK=y BR2_PACKAGE_KOTAK_TLS=y BR2_PACKAGE_KOTAK_RELAY=y BR2_PACKAGE_KOTAK_RPC=y BR2_PACKAGE_KOTAK_POP3=y \
	BR2_PACKAGE_KOTAK_WWW=y BR2_PACKAGE_BUSYBOX=y BR2_SHARED_STATIC_LIBS=y; then
	pass "kotak.mk builds and installs with no network, no apt-get, no python3"
else
	fail "kotak.mk build: $(grep -E 'error|Error' "$t/build.log" | head -n 5 | tr '\n' '|')"
	tail -n 15 "$t/build.log"
	exit 0
fi
[ -s "$t/tripwire.log" ] && fail "the build called: $(tr '\n' ' ' <"$t/tripwire.log")" || pass "the build called nothing from the network nor python3"
probs=""
grep -E ' -c -o build/[a-z_0-9]+\.o src/' "$t/build.log" >"$t/cc.log"
[ -s "$t/cc.log" ] || probs="$probs no compile lines;"
# the last -O on each compile line is kotak's -Os, after Buildroot's -O2
awk '{ o = ""; for (i = 1; i <= NF; i++) if ($i ~ /^-O/) o = o " " $i; if (o !~ /-O2.* -Os$/) { print; exit 1 } }' "$t/cc.log" >/dev/null ||
	probs="$probs an object not built -Os after Buildroot's -O2;"
[ -e "$src/build/bearssl" ] && probs="$probs kotak built a BearSSL of its own;"
grep -q -- "-isystem $stage/usr/include" "$t/cc.log" || probs="$probs not compiled against staging's BearSSL;"
grep -q "$stage/usr/lib/libbearssl.a" "$t/build.log" || probs="$probs not linked with staging's libbearssl.a;"
[ -z "$probs" ] && pass "kotak's objects -Os after Buildroot's -O2, Buildroot's BearSSL" || fail "flags:$probs"
probs=""
for f in 755:usr/sbin/kotak 755:etc/init.d/S50kotak 644:etc/config/kotak 644:var/www/kotak/index.html \
	644:var/www/kotak/kotak.js 755:var/www/kotak/cgi-bin/kotak; do
	m=$(stat -c %a "$target/${f#*:}" 2>/dev/null) || { probs="$probs no /${f#*:};"; continue; }
	[ "$m" = "${f%%:*}" ] || probs="$probs /${f#*:} mode $m;"
done
[ -d "$target/etc/kotak" ] || probs="$probs no /etc/kotak;"
has() { for w in "$@"; do case " $feat " in *" $w "*) ;; *) return 1 ;; esac; done; }
feat=$("$target/usr/sbin/kotak" -V 2>&1 | sed -n 's/^features: //p')
has +tls +relay +pop3 +rpc || probs="$probs features '$feat';"
file "$target/usr/sbin/kotak" | grep -q 'statically linked' || probs="$probs not static;"
[ -z "$probs" ] && pass "installed files, modes, static binary with the chosen features" || fail "install:$probs"
# the options reach kotak's Kconfig: POP3 and RPC off, no web page
rm -rf "$target" && mkdir -p "$target"
rm -f "$src/kotak" "$src/build/config.h" "$src/.stamp_all"
if brmake BR2_PACKAGE_KOTAK=y BR2_PACKAGE_KOTAK_TLS=y BR2_SHARED_STATIC_LIBS=y; then
	feat=$("$target/usr/sbin/kotak" -V 2>&1 | sed -n 's/^features: //p')
	if ! has +tls -relay -pop3 -rpc; then
		fail "options: features '$feat' with POP3, RELAY and RPC off"
	elif [ -e "$target/var/www" ]; then
		fail "options: web page installed without BR2_PACKAGE_KOTAK_WWW"
	else
		pass "BR2_PACKAGE_KOTAK_* options map to kotak's Kconfig ($feat)"
	fi
else
	fail "kotak.mk build with options off: $(grep -E 'error|Error' "$t/build.log" | head -n 3 | tr '\n' '|')"
fi

#!/usr/bin/env bash
# The OpenWrt packages (board/openwrt) without an OpenWrt tree:
# - shellcheck of the init script, uci-defaults, rpcd plugin and CGI;
# - the procd init script against stand-ins of rc.common/procd (disabled
#   until option enabled '1'; a reload with a bad config keeps kotak
#   running; a reload signals HUP; data_dir in RAM warns);
# - the uci-defaults script against a stand-in uci (names kotak after the
#   router once, leaves a changed config alone);
# - the package Makefiles run by stand-ins of OpenWrt's rules.mk,
#   package.mk and luci.mk (tests/board/openwrt-stub): Build/Prepare,
#   Build/Compile (OpenWrt's mips_24kc flags, MIPS16, with the soft-float
#   MIPS musl toolchain) and the install steps, in an empty network
#   namespace (unshare -n) with apt-get replaced by a tripwire; the .ipk's
#   control fields and files; the binary runs under qemu.
# What only a real OpenWrt tree can show is listed in board/README.md.
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
BIN=${KOTAK_BIN:-$ROOT/kotak}
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
pass() { echo "PASS openwrt $1"; }
fail() { echo "FAIL openwrt $1"; }
F=board/openwrt/kotak/files

# ---- shellcheck
if command -v shellcheck >/dev/null; then
	if out=$(shellcheck $F/kotak.init && shellcheck -s sh $F/kotak.defaults $F/kotak.rpcd board/www/cgi-bin/kotak 2>&1); then
		pass "shellcheck of init, uci-defaults, rpcd plugin and CGI"
	else
		fail "shellcheck: $out"
	fi
else
	echo "SKIP openwrt shellcheck: not installed"
fi

# ---- the init script under stand-ins of /etc/rc.common and procd
conf=$t/kotak.conf
mkconf() {	# enabled data_dir [extra line]
	cat >"$conf" <<EOF
config kotak 'main'
	option enabled '$1'
	option hostname 'mail.example.lan'
	option data_dir '$2'
	option users_file '$t/users'
	option dns_server '127.0.0.1:9'
${3:-}

config listen
	option proto 'smtp'
	option address '127.0.0.1'
	option port '2525'
EOF
}
cat >"$t/procd-stub.sh" <<'EOF'
# stand-in for /etc/rc.common + /lib/functions/procd.sh: records calls
uci_get() {	# uci_get kotak @kotak[0] OPTION [DEFAULT]: from $CONF's config kotak
	local v
	v=$(awk -v k="$3" '$1 == "config" { s = $2 } s == "kotak" && $1 == "option" && $2 == k {
		v = $3; gsub(/^\047|\047$/, "", v); print v; exit }' "$CONF")
	echo "${v:-${4:-}}"
}
procd_open_instance() { echo "open_instance" >>"$LOG"; }
procd_set_param() { echo "param $*" >>"$LOG"; }
procd_close_instance() { echo "close_instance" >>"$LOG"; }
procd_running() { [ -e "$STATE" ]; }
procd_send_signal() { echo "signal $*" >>"$LOG"; }
logger() { echo "logger $*" >>"$LOG"; }
start() { start_service && echo "started" >>"$LOG"; }
stop() { echo "stopped" >>"$LOG"; }
EOF
run_init() {	# running? function
	: >"$t/log"
	if [ "$1" = running ]; then : >"$t/state"; else rm -f "$t/state"; fi
	( export LOG=$t/log STATE=$t/state
	  # shellcheck disable=SC1090,SC1091
	  . "$t/procd-stub.sh"
	  # shellcheck disable=SC1090
	  . "$ROOT/$F/kotak.init"
	  PROG=$BIN CONF=$conf
	  export CONF
	  "$2" ) >>"$t/log" 2>&1
	echo "rc=$?" >>"$t/log"
}
checklog() {	# name, grep -E pattern that must match, pattern that must not
	if grep -qE "$2" "$t/log" && { [ -z "$3" ] || ! grep -qE "$3" "$t/log"; }; then
		pass "init: $1"
	else
		fail "init: $1: $(tr '\n' '|' <"$t/log" | cut -c1-400)"
	fi
}
mkconf 0 "$t/data"
run_init stopped start_service
checklog "disabled until option enabled '1'" "logger.*disabled" "open_instance"
mkconf 1 "$t/data"
run_init stopped start_service
checklog "enabled: starts kotak -c the config" "param command $BIN -c $conf" "logger.*err"
run_init running reload_service
checklog "reload of a good config sends HUP" "signal kotak \\* HUP" "open_instance"
mkconf 1 "$t/data" "	option bogus '1'"
run_init running reload_service
checklog "reload of a bad config keeps kotak running (no HUP, error logged)" "logger.*daemon.err.*bogus" "signal|open_instance|stopped"
mkconf 0 "$t/data"
run_init running reload_service
checklog "reload after disabling stops kotak" "stopped" "signal"
mkconf 1 /tmp/kotak-board-test-ram/data
run_init stopped start_service
checklog "data_dir in RAM warns" "logger.*warn.*in RAM" ""
rm -rf /tmp/kotak-board-test-ram

# ---- uci-defaults against a stand-in uci (key=value store)
mkdir -p "$t/ucibin"
cat >"$t/ucibin/uci" <<'EOF'
#!/bin/sh
# stand-in uci: `-q get KEY` and `-q batch` (set/delete/add_list/commit) on $UCI_DB
[ "$1" = -q ] && shift
case "$1" in
get) v=$(grep -F "$2=" "$UCI_DB" | head -n 1); [ -n "$v" ] || exit 1; echo "${v#*=}" ;;
batch) while read -r c k; do
	case "$c" in
	set) key=${k%%=*}; val=${k#*=}; val=${val#\'}; val=${val%\'}
	     grep -vF "$key=" "$UCI_DB" >"$UCI_DB.n"; echo "$key=$val" >>"$UCI_DB.n"; mv "$UCI_DB.n" "$UCI_DB" ;;
	delete) grep -vF "$k=" "$UCI_DB" >"$UCI_DB.n"; mv "$UCI_DB.n" "$UCI_DB" ;;
	add_list) key=${k%%=*}; val=${k#*=}; val=${val#\'}; val=${val%\'}; echo "$key=$val" >>"$UCI_DB" ;;
	commit) echo "commit $k" >>"$UCI_DB.log" ;;
	esac
done ;;
esac
EOF
chmod +x "$t/ucibin/uci"
printf '%s\n' 'kotak.main.hostname=mail.lan' 'kotak.main.domain=lan' 'system.@system[0].hostname=router' \
	'dhcp.@dnsmasq[0].domain=office.example' >"$t/uci.db"
PATH=$t/ucibin:$PATH UCI_DB=$t/uci.db sh $F/kotak.defaults
if grep -qx 'kotak.main.hostname=router.office.example' "$t/uci.db" && grep -qx 'kotak.main.domain=office.example' "$t/uci.db" &&
	! grep -qx 'kotak.main.domain=lan' "$t/uci.db" && grep -q 'commit kotak' "$t/uci.db.log"; then
	pass "uci-defaults names kotak after the router"
else
	fail "uci-defaults: $(tr '\n' ' ' <"$t/uci.db")"
fi
printf '%s\n' 'kotak.main.hostname=mx.mine.example' 'system.@system[0].hostname=router' >"$t/uci.db"
rm -f "$t/uci.db.log"
PATH=$t/ucibin:$PATH UCI_DB=$t/uci.db sh $F/kotak.defaults
if grep -qx 'kotak.main.hostname=mx.mine.example' "$t/uci.db" && [ ! -e "$t/uci.db.log" ]; then
	pass "uci-defaults leaves a configured kotak alone"
else
	fail "uci-defaults changed a configured kotak: $(tr '\n' ' ' <"$t/uci.db")"
fi

# ---- the package Makefiles with stand-ins of OpenWrt's make flow
grep -q '^PKG_HASH:=6705bba1714961b41a728dfc5debbe348d2966c117649392f8c8139efc83ff14$' board/openwrt/kotak/Makefile &&
	grep -q '^PKG_SOURCE:=bearssl-0.6.tar.gz$' board/openwrt/kotak/Makefile &&
	pass "BearSSL is a declared source (bearssl-0.6.tar.gz, Buildroot's hash)" ||
	fail "BearSSL is not declared as bearssl-0.6.tar.gz with the known hash"
sr=/var/cache/kotak/sysroot/mips-sf
if ! command -v unshare >/dev/null || ! unshare -n true 2>/dev/null; then
	echo "SKIP openwrt package build: cannot make a network namespace (unshare -n)"
	exit 0
fi
if [ ! -f $sr/.stamp ]; then
	scripts/toolchain.sh mips-sf >/dev/null 2>&1 || { echo "SKIP openwrt package build: no mips-sf toolchain"; exit 0; }
fi
top=$t/openwrt
mkdir -p "$top/dl" "$top/bin" "$top/fakebin" "$top/build_dir"
cp -R tests/board/openwrt-stub/. "$top/"
bsrc=$(scripts/bearssl.sh src)
# the declared source as OpenWrt's download step leaves it in dl/ (made here
# from the BearSSL tree at hand: the hash check is the download step's)
tar -C "$(dirname "$bsrc")" --transform "s,^$(basename "$bsrc"),bearssl-0.6," -czf "$top/dl/bearssl-0.6.tar.gz" "$(basename "$bsrc")"
for x in apt-get apt dpkg-source wget curl git; do
	printf '#!/bin/sh\necho "%s $*" >>%s\nexit 1\n' "$x" "$t/tripwire.log" >"$top/fakebin/$x"
	chmod +x "$top/fakebin/$x"
done
# OpenWrt's default flags for mips_24kc (MIPS16, stack protector, FORTIFY, relro;
# not -fhonour-copts, an option of OpenWrt's patched gcc only)
OWCFLAGS="-Os -pipe -mno-branch-likely -mips32r2 -mtune=24kc -fno-caller-saves -fno-plt -msoft-float -mips16 -minterlink-mips16 -fstack-protector -D_FORTIFY_SOURCE=1"
OWLDFLAGS="-znow -zrelro -Wl,-z,now -Wl,-z,relro"
owmake() {
	unshare -n env PATH="$top/fakebin:$PATH" make --no-print-directory "$@" TOPDIR="$top" \
		TARGET_CC=$sr/bin/mips-sf-cc TARGET_AR=mips-linux-gnu-gcc-ar TARGET_CROSS=mips-linux-gnu- \
		TARGET_CFLAGS="$OWCFLAGS" TARGET_LDFLAGS="$OWLDFLAGS" BIN_DIR="$top/bin" ARCH_PACKAGES=mips_24kc
}
start=$(date +%s)
if owmake -C board/openwrt/kotak ipk-kotak >"$t/build.log" 2>&1 && owmake -C board/openwrt/luci-app-kotak ipk-luci-app-kotak >>"$t/build.log" 2>&1; then
	pass "package builds (Prepare, Compile, install) with no network and no apt-get ($(($(date +%s) - start)) s)"
else
	fail "package build: $(grep -E 'error|Error|No such' "$t/build.log" | head -n 5 | tr '\n' '|')"
	tail -n 20 "$t/build.log"
	exit 0
fi
if [ -s "$t/tripwire.log" ]; then
	fail "the build called: $(tr '\n' ' ' <"$t/tripwire.log")"
else
	pass "the build called no apt-get, wget, curl or git"
fi
ipk=$top/bin/kotak_0.1.0-1_mips_24kc.ipk
mkdir -p "$t/ipk/data" "$t/ipk/control"
tar -C "$t/ipk" -xzf "$ipk" && tar -C "$t/ipk/data" -xzf "$t/ipk/data.tar.gz" && tar -C "$t/ipk/control" -xzf "$t/ipk/control.tar.gz"
ctl=$t/ipk/control/control
probs=""
for want in 'Package: kotak' 'Version: 0.1.0-1' 'Depends: libc, jsonfilter, flock' 'Require-User: kotak=451:kotak=451' \
	'Alternatives: 200:/usr/sbin/sendmail:/usr/sbin/kotak' 'Architecture: mips_24kc' 'Section: mail'; do
	grep -qxF "$want" "$ctl" || probs="$probs missing '$want';"
done
for want in /etc/config/kotak /etc/kotak/; do
	grep -qxF "$want" "$t/ipk/control/conffiles" || probs="$probs conffile $want;"
done
grep -q 'rpcd reload' "$t/ipk/control/postinst-pkg" || probs="$probs postinst does not reload rpcd;"
[ -z "$probs" ] && pass "ipk control fields, conffiles, postinst" || fail "ipk control:$probs $(tr '\n' '|' <"$ctl")"
probs=""
for f in 755:usr/sbin/kotak 755:etc/init.d/kotak 644:etc/config/kotak 644:etc/uci-defaults/90-kotak 755:usr/libexec/rpcd/kotak; do
	m=$(stat -c %a "$t/ipk/data/${f#*:}" 2>/dev/null) || { probs="$probs no ${f#*:};"; continue; }
	[ "$m" = "${f%%:*}" ] || probs="$probs ${f#*:} mode $m;"
done
[ -d "$t/ipk/data/etc/kotak" ] || probs="$probs no /etc/kotak;"
[ "$(sed -n 1p "$t/ipk/data/usr/libexec/rpcd/kotak")" = "#!/bin/sh" ] && [ "$(wc -l <"$t/ipk/data/usr/libexec/rpcd/kotak")" = 2 ] ||
	probs="$probs rpcd plugin is not a two-line wrapper;"
grep -q "option enabled '0'" "$t/ipk/data/etc/config/kotak" || probs="$probs config not disabled;"
grep -q "option log 'syslog'" "$t/ipk/data/etc/config/kotak" || probs="$probs config does not log to syslog;"
[ -z "$probs" ] && pass "ipk files and modes (binary, init, config, uci-defaults, rpcd plugin)" || fail "ipk files:$probs"
k=$t/ipk/data/usr/sbin/kotak
if file "$k" | grep -q 'MIPS.*statically linked' && qemu-mips-static -cpu 24Kc "$k" -V | grep -q '+rpc' &&
	qemu-mips-static -cpu 24Kc "$k" rpc list | grep -q '"user_add"' &&
	qemu-mips-static -cpu 24Kc "$k" -c "$t/ipk/data/etc/config/kotak" rpc call config_check </dev/null | grep -q '"output"'; then
	s=$(stat -c %s "$k")
	pass "the packaged binary (static MIPS, OpenWrt flags) runs under qemu: $s bytes stripped"
else
	fail "the packaged binary: $(file "$k")"
fi
lipk=$top/bin/luci-app-kotak_git-1_mips_24kc.ipk
mkdir -p "$t/lipk/data"
tar -C "$t/lipk" -xzf "$lipk" && tar -C "$t/lipk/data" -xzf "$t/lipk/data.tar.gz" && tar -C "$t/lipk" -xzf "$t/lipk/control.tar.gz"
probs=""
for f in www/luci-static/resources/view/kotak/status.js www/luci-static/resources/view/kotak/settings.js \
	usr/share/luci/menu.d/luci-app-kotak.json usr/share/rpcd/acl.d/luci-app-kotak.json; do
	[ -f "$t/lipk/data/$f" ] || probs="$probs no /$f;"
done
grep -qxF 'Depends: libc, luci-base, kotak' "$t/lipk/control" || probs="$probs $(grep Depends "$t/lipk/control");"
[ -z "$probs" ] && pass "luci-app-kotak ipk files and dependencies" || fail "luci-app-kotak ipk:$probs"
# BEARSSL_SRC instead of the download: no declared source at all then
if owmake -C board/openwrt/kotak -n ipk-kotak BEARSSL_SRC=/nonexistent 2>/dev/null | grep -q 'dl/bearssl'; then
	fail "BEARSSL_SRC still unpacks the download"
else
	pass "BEARSSL_SRC replaces the declared source"
fi

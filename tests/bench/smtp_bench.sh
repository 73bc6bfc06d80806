#!/usr/bin/env bash
# tests/bench/smtp_bench.sh: kotak against Postfix, side by side, on this machine.
#
#   tests/bench/smtp_bench.sh [--strict] [--keep]
#
# A benchmark, not a test: `make test` does not run it (tests/bench/run.sh does).
# Run as root on Debian 12.  It installs postfix (debconf "Local only") when
# smtp-source is missing, builds kotak when needed, and then measures, for the
# workload `smtp-source -s 10 -m 2000 -l 2048` to 127.0.0.1 (bench1@bench.lan):
#   1. msg/s end to end: from the start of smtp-source until the recipient's
#      mbox holds all 2000 messages (fsync on: kotak's spool + mbox, Postfix's
#      queue file + mbox, Postfix's default);
#   2. memory: RSS and PSS (/proc/PID/smaps_rollup) idle, under that load and
#      with 100 open SMTP sessions (greeting read, EHLO sent); Postfix as the
#      sum over its process tree;
#   3. disk bytes written per delivered message: the sectors-written counter of
#      the block device holding the data (sync before and after), and
#      /proc/PID/io write_bytes (Postfix: the whole tree).
# and prints a table with kotak/Postfix ratios and the goals of issue 2.
#
# Network: loopback only.  When it can, the measuring part runs in a private
# network namespace (`unshare -n`) holding nothing but lo, so neither server
# could reach anything else even by mistake; Postfix is also configured for
# 127.0.0.1, IPv4, no DNS, no relaying (default_transport = error).  Postfix is
# stopped at the end, whatever happens.
#
# What it leaves on the machine: the postfix package, its main.cf with the
# settings above (postconf -e; also default_process_limit = 150), user bench1
# and an empty /var/mail/bench1.  kotak runs from a temp dir under BENCH_DIR,
# removed at the end unless --keep or a failure.
# Disk figures: "least of rounds" is the headline, since other writers on the
# device can only add to its counter; the idle write rate of the device is
# measured before and after, and the report says when it disturbed the run.
#
# Exit: 0 when both runs completed with every message delivered exactly once,
# 1 on a failure (lost or duplicated messages, a server that died, timeouts).
# --strict: exit 2 as well when a goal was missed.  --keep: keep the temp dir.
# Environment: KOTAK (binary, default ./kotak, built with make), BENCH_DIR
# (parent of the temp dir, default /var/tmp), MSGS (default 2000), ROUNDS
# (default 3: the load runs that often per server, alternating kotak and
# Postfix; the table shows medians, the raw lines every round).
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
py=/usr/bin/python3
[ -x "$py" ] || py=python3
helper="$here/smtp_bench.py"
strict=0 keep=0
for a in "$@"; do
	case "$a" in
	--strict) strict=1 ;;
	--keep) keep=1 ;;
	-h|--help) sed -n '2,/^set -u$/{/^set -u$/d;p}' "$0"; exit 0 ;;
	*) echo "smtp_bench: unknown argument $a" >&2; exit 1 ;;
	esac
done
MSGS=${MSGS:-2000}
ROUNDS=${ROUNDS:-3}
SESS=10
SIZE=2048
RCPT=bench1@bench.lan
FROM=sender@example.org
HOLD=100

say() { echo "smtp_bench: $*" >&2; }
die() { say "$*"; exit 1; }

# Stop Postfix if it runs (in this or any namespace: master.lock is a file).
postfix_stop() {
	if command -v postfix >/dev/null 2>&1 && postfix status >/dev/null 2>&1; then
		postfix stop </dev/null >/dev/null 2>&1
		local i
		for i in $(seq 50); do
			postfix status >/dev/null 2>&1 || break
			sleep 0.1
		done
	fi
}

# ------------------------------------------------------------------ setup (host namespace)
if [ -z "${KOTAK_BENCH_INNER:-}" ]; then
	[ "$(id -u)" -eq 0 ] || die "run as root (it installs and drives Postfix)"
	command -v "$py" >/dev/null || die "python3 is needed"
	if [ ! -x /usr/sbin/smtp-source ]; then
		say "installing postfix (Local only) for smtp-source and the comparison"
		echo "postfix postfix/main_mailer_type select Local only" | debconf-set-selections
		echo "postfix postfix/mailname string bench.localdomain" | debconf-set-selections
		# keep the package from starting the daemon with its stock config
		made_policy=0
		if [ ! -e /usr/sbin/policy-rc.d ]; then
			printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
			chmod 755 /usr/sbin/policy-rc.d
			made_policy=1
		fi
		DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q postfix \
			>/dev/null || { apt-get update -q >/dev/null &&
			DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q postfix \
			>/dev/null; }
		[ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
		[ -x /usr/sbin/smtp-source ] || die "postfix did not install"
	fi
	if [ -n "${KOTAK:-}" ]; then
		[ -x "$KOTAK" ] || die "KOTAK=$KOTAK is not an executable"
		export KOTAK_BENCH_GIVEN=1
	else
		make -C "$root" -s kotak >/dev/null || die "make kotak failed (or set KOTAK=/path/to/kotak)"
		KOTAK=$root/kotak
	fi
	export KOTAK=$(cd "$(dirname "$KOTAK")" && pwd)/$(basename "$KOTAK")
	# a Postfix started by the package or by hand would hold 127.0.0.1:25
	postfix_stop
	if unshare -n true 2>/dev/null; then
		export KOTAK_BENCH_INNER=netns
		exec unshare -n "$BASH" "$0" "$@"
	fi
	say "unshare -n not available: running in the host namespace (loopback addresses only)"
	export KOTAK_BENCH_INNER=host
fi

# ------------------------------------------------------------------ measuring part
if [ "$KOTAK_BENCH_INNER" = netns ]; then
	ip link set lo up || die "cannot bring lo up in the private namespace"
fi

base=${BENCH_DIR:-/var/tmp}
tmp=$(mktemp -d "$base/kotak-bench.XXXXXX") || die "mktemp in $base"
res=$tmp/results
: > "$res"
kpid=
failed=0
cleanup() {
	if [ -n "$kpid" ] && kill -0 "$kpid" 2>/dev/null; then
		kill -TERM "$kpid" 2>/dev/null
		wait "$kpid" 2>/dev/null
	fi
	postfix_stop
	if [ "$keep" = 1 ] || [ "$failed" != 0 ]; then
		say "kept $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

put() { echo "$1=$2" >> "$res"; }
kv() {	# kv PREFIX < key=value lines: store with a prefix, also echo to stderr
	local l
	while IFS= read -r l; do
		[ -n "$l" ] && echo "$1.$l" >> "$res"
	done
}
get() { sed -n "s/^$1=//p" "$res" | tail -n 1; }
fail() { say "FAIL: $*"; failed=1; }

# the block device under a path: its /sys/class/block/NAME/stat
blockdev() {
	local src name
	src=$(findmnt -n -o SOURCE -T "$1" 2>/dev/null | sed 's/\[.*//')
	name=$(basename "$(readlink -f "$src" 2>/dev/null)")
	[ -n "$name" ] && [ -r "/sys/class/block/$name/stat" ] && echo "$name"
}
sectors() { awk '{print $7}' "/sys/class/block/$1/stat"; }

listening() {	# listening PORT: true once something listens on 127.0.0.1:PORT
	ss -ltnH "sport = :$1" 2>/dev/null | grep -q .
}
wait_listen() {
	local i
	for i in $(seq 100); do
		listening "$1" && return 0
		sleep 0.1
	done
	return 1
}
# wait_until SECONDS CMD...: poll CMD every 50 ms
wait_until() {
	local end=$((SECONDS + $1))
	shift
	while [ $SECONDS -le $end ]; do
		"$@" && return 0
		sleep 0.05
	done
	return 1
}
count_is() { [ "$("$py" "$helper" count "$1")" -ge "$2" ]; }
dir_empty() { [ -z "$(find "$@" -type f 2>/dev/null | head -n 1)" ]; }

dev=$(blockdev "$tmp")
[ -n "$dev" ] || say "no block device found under $tmp: disk figures will be n/a"
pdev=$(blockdev /var/spool/postfix)
[ "$pdev" = "$dev" ] || say "note: Postfix's spool is on ${pdev:-?}, kotak's data on ${dev:-?}"
put dev "${dev:-n/a}"
put msgs "$MSGS"

bg_rate() {	# bg_rate KEY: the device's write rate over 3 idle seconds, KB/s
	[ -n "$dev" ] || return
	local a b
	sync
	a=$(sectors "$dev")
	sleep 3
	b=$(sectors "$dev")
	put "$1" "$(( (b - a) * 512 / 3 / 1000 ))"
}

src=(smtp-source -s "$SESS" -m "$MSGS" -l "$SIZE" -t "$RCPT" -f "$FROM")
warm=(smtp-source -s 2 -m 20 -l "$SIZE" -t "$RCPT" -f "$FROM")

# ------------------------------------------------------------------ start kotak
kport=2525
if [ "$KOTAK_BENCH_INNER" = host ]; then
	kport=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
fi
kd=$tmp/kotak
mkdir -p "$kd/data"
cat > "$kd/kotak.conf" <<EOF
config kotak 'main'
	option hostname 'mail.bench.lan'
	list domain 'bench.lan'
	option data_dir '$kd/data'
	option users_file '$kd/users'
	option max_sessions '120'
	option max_sessions_per_ip '120'

config listen
	option proto 'smtp'
	option address '127.0.0.1'
	option port '$kport'

config alias
	option name 'postmaster'
	list to 'bench1'
EOF
echo benchpass | "$KOTAK" -c "$kd/kotak.conf" user add bench1 >/dev/null || die "kotak user add failed"
"$KOTAK" -c "$kd/kotak.conf" -t >/dev/null || die "kotak rejects the bench config"
"$KOTAK" -c "$kd/kotak.conf" 2> "$kd/kotak.log" &
kpid=$!
wait_listen "$kport" || die "kotak does not listen on 127.0.0.1:$kport (log: $(tail -n 3 "$kd/kotak.log"))"
sleep 0.5
kmbox=$kd/data/mail/bench1/INBOX
kqueue=$kd/data/spool/queue
say "$("$KOTAK" -V 2>&1 | head -n 1), pid $kpid on 127.0.0.1:$kport, data $kd/data (${dev:-?})"
"$py" "$helper" mem "$kpid" | sed 's/^/idle_/' | kv kotak

# ------------------------------------------------------------------ start Postfix
getent passwd bench1 >/dev/null || useradd -m -s /usr/sbin/nologin bench1 || die "useradd bench1"
pmbox=/var/mail/bench1
postconf -e "inet_interfaces = 127.0.0.1" "inet_protocols = ipv4" \
	"myhostname = bench.localdomain" \
	"mydestination = bench.localdomain, bench.lan, localhost.localdomain, localhost, \$myhostname" \
	"mynetworks = 127.0.0.0/8" "mail_spool_directory = /var/mail" "home_mailbox =" \
	"mailbox_command =" "mailbox_size_limit = 0" "maillog_file = /var/log/postfix.log" \
	"relayhost =" "default_transport = error" "relay_transport = error" \
	"disable_dns_lookups = yes" "smtp_host_lookup = native" "lmtp_host_lookup = native" \
	"smtpd_peername_lookup = no" "default_process_limit = 150" ||
	die "postconf failed"
# anything left from an earlier run must not be delivered into the measurement
postsuper -d ALL >/dev/null 2>&1
[ -e "$pmbox" ] || install -o bench1 -g mail -m 0600 /dev/null "$pmbox"
: > "$pmbox"
if [ -x /usr/lib/postfix/configure-instance.sh ]; then
	/usr/lib/postfix/configure-instance.sh - >/dev/null 2>&1
fi
listening 25 && die "something already listens on port 25 here"
postfix start </dev/null >/dev/null 2>&1 || die "postfix start failed (see /var/log/postfix.log)"
wait_listen 25 || die "Postfix does not listen on 127.0.0.1:25"
ss -ltnH "sport = :25" | awk '{print $4}' | grep -qvx '127.0.0.1:25' &&
	die "Postfix listens on more than 127.0.0.1:25: $(ss -ltnH 'sport = :25' | awk '{print $4}' | tr '\n' ' ')"
pmaster=$(sed -n '1s/ //gp' /var/spool/postfix/pid/master.pid)
kill -0 "$pmaster" 2>/dev/null || die "no Postfix master process"
pqueue=(/var/spool/postfix/incoming /var/spool/postfix/active /var/spool/postfix/deferred /var/spool/postfix/maildrop)
say "Postfix $(postconf -h mail_version), master pid $pmaster on 127.0.0.1:25, mbox $pmbox (${pdev:-?})"
sleep 0.5
"$py" "$helper" mem "$pmaster" --tree | sed 's/^/idle_/' | kv postfix

# ------------------------------------------------------------------ warm-up
# page cache, process pools, first mbox creation (the rounds empty the mboxes)
"${warm[@]}" "127.0.0.1:$kport" >/dev/null 2>&1
"${warm[@]}" 127.0.0.1:25 >/dev/null 2>&1
wait_until 30 count_is "$kmbox" 20 || fail "kotak warm-up: $("$py" "$helper" count "$kmbox") of 20 delivered"
wait_until 30 dir_empty "$kqueue" || fail "kotak warm-up: queue not empty"
wait_until 30 count_is "$pmbox" 20 || fail "Postfix warm-up: $("$py" "$helper" count "$pmbox") of 20 delivered"
wait_until 30 dir_empty "${pqueue[@]}" || fail "Postfix warm-up: queue not empty"

# ------------------------------------------------------------------ the load, ROUNDS times
# one_round SIDE ROUND PORT PID MBOX DEV TREE-FLAG QUEUE-DIRS...
one_round() {
	local side=$1 r=$2 port=$3 pid=$4 mbox=$5 d=$6 treeflag=$7
	shift 7
	local s0 s1 io0 io1 c0 c1 delivered rc ival=0.1
	[ -n "$treeflag" ] && ival=0.25
	: > "$mbox"
	say "round $r, $side: ${src[*]} 127.0.0.1:$port"
	sync
	s0=$( [ -n "$d" ] && sectors "$d")
	io0=$("$py" "$helper" io "$pid" $treeflag)
	c0=$("$py" "$helper" cpu "$pid" $treeflag)
	"$py" "$helper" load --mbox "$mbox" --want "$MSGS" --pid "$pid" $treeflag --timeout 120 \
		--interval "$ival" -- "${src[@]}" "127.0.0.1:$port" | sed "s/^/load_/; s/=/.$r=/" | kv "$side"
	wait_until 30 dir_empty "$@" ||
		fail "$side round $r: queue not empty 30 s after the run: $(find "$@" -type f | wc -l) files"
	c1=$("$py" "$helper" cpu "$pid" $treeflag)
	io1=$("$py" "$helper" io "$pid" $treeflag)
	sync
	s1=$( [ -n "$d" ] && sectors "$d")
	put "$side.e2e_s.$r" "$(get "$side.load_e2e_s.$r")"
	put "$side.accept_s.$r" "$(get "$side.load_accept_s.$r")"
	put "$side.cpu_s.$r" "$(awk -v a="$c0" -v b="$c1" 'BEGIN{printf "%.2f", b-a}')"
	put "$side.io_bytes.$r" $(( ${io1% *} - ${io0% *} ))
	put "$side.io_cancelled_bytes.$r" $(( ${io1#* } - ${io0#* } ))
	[ -n "$d" ] && put "$side.dev_bytes.$r" $(( (s1 - s0) * 512 ))
	delivered=$(get "$side.load_delivered.$r")
	rc=$(get "$side.load_rc.$r")
	[ "$delivered" = "$MSGS" ] ||
		fail "$side round $r: $delivered of $MSGS in the mbox (smtp-source exit $rc: $(get "$side.load_stderr.$r"))"
	[ "$rc" = 0 ] || fail "$side round $r: smtp-source exit $rc: $(get "$side.load_stderr.$r")"
	"$py" "$helper" verify "$mbox" "$MSGS" | sed "s/^/verify_/; s/=/.$r=/" | kv "$side"
	[ "$(get "$side.verify_parsed.$r")" = "$MSGS" ] ||
		fail "$side round $r: Python mailbox reads $(get "$side.verify_parsed.$r") messages, not $MSGS"
	[ "$(get "$side.verify_msgid_dups.$r")" = 0 ] ||
		fail "$side round $r: $(get "$side.verify_msgid_dups.$r") duplicated Message-Ids"
}

put rounds "$ROUNDS"
bg_rate bg_kbps.before
for r in $(seq "$ROUNDS"); do
	# alternate the order, so that a burst of noise on the machine hits both sides
	if [ $((r % 2)) = 1 ]; then
		one_round kotak "$r" "$kport" "$kpid" "$kmbox" "$dev" "" "$kqueue"
		one_round postfix "$r" 25 "$pmaster" "$pmbox" "$pdev" --tree "${pqueue[@]}"
	else
		one_round postfix "$r" 25 "$pmaster" "$pmbox" "$pdev" --tree "${pqueue[@]}"
		one_round kotak "$r" "$kport" "$kpid" "$kmbox" "$dev" "" "$kqueue"
	fi
	kill -0 "$kpid" 2>/dev/null || { fail "kotak died in round $r (log: $(tail -n 3 "$kd/kotak.log"))"; break; }
done
bg_rate bg_kbps.after

# ------------------------------------------------------------------ 100 sessions
say "kotak: $HOLD sessions"
"$py" "$helper" hold --port "$kport" --n "$HOLD" --pid "$kpid" | sed 's/^/s100_/' | kv kotak
[ "$(get kotak.s100_sessions_ok)" = "$HOLD" ] ||
	fail "kotak: $(get kotak.s100_sessions_ok) of $HOLD sessions: $(get kotak.s100_first_error)"
say "Postfix: $HOLD sessions"
"$py" "$helper" hold --port 25 --n "$HOLD" --pid "$pmaster" --tree --settle 2 | sed 's/^/s100_/' | kv postfix
[ "$(get postfix.s100_sessions_ok)" = "$HOLD" ] ||
	say "Postfix: $(get postfix.s100_sessions_ok) of $HOLD sessions: $(get postfix.s100_first_error)"

# ------------------------------------------------------------------ stop both
sleep 0.5
"$py" "$helper" mem "$kpid" | sed 's/^/after_/' | kv kotak
put kotak.hwm_kb "$("$py" "$helper" hwm "$kpid")"
kill -0 "$kpid" 2>/dev/null || fail "kotak died during the bench (log: $(tail -n 3 "$kd/kotak.log"))"
kill -TERM "$kpid"
wait "$kpid"
put kotak.exit "$?"
kpid=
put kotak.log_lines "$(wc -l < "$kd/kotak.log")"
put kotak.log_warnings "$(grep -ciE 'warn|error|fail|deferred|corrupt' "$kd/kotak.log")"
# every accepted message (warm-up included) accepted and delivered once;
# removed from the queue unless it was delivered directly (never queued)
total=$((MSGS * ROUNDS + 20))
put kotak.log_queued "$(grep -c ': queued from=' "$kd/kotak.log")"
put kotak.log_delivered "$(grep -c 'status=delivered' "$kd/kotak.log")"
put kotak.log_removed "$(grep -c ': removed$' "$kd/kotak.log")"
for k in queued delivered; do
	[ "$(get kotak.log_$k)" = "$total" ] ||
		fail "kotak log: $(get kotak.log_$k) '$k' lines, expected $total"
done
[ "$(get kotak.log_removed)" -le "$total" ] ||
	fail "kotak log: $(get kotak.log_removed) 'removed' lines, more than $total"
[ "$(get kotak.log_warnings)" = 0 ] ||
	say "kotak logged warnings: $(grep -iE 'warn|error|fail|deferred|corrupt' "$kd/kotak.log" | head -n 3)"

postfix_stop
listening 25 && fail "Postfix still listens on port 25 after postfix stop"
: > "$pmbox"

# ------------------------------------------------------------------ report
echo
echo "kotak vs Postfix $(postconf -h mail_version 2>/dev/null), smtp-source -s $SESS -m $MSGS -l $SIZE to 127.0.0.1," \
	"rcpt $RCPT, until the mbox holds all $MSGS"
if [ -n "${KOTAK_BENCH_GIVEN:-}" ]; then
	built="given as KOTAK"
else
	rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null)
	git -C "$root" diff --quiet HEAD -- src Kconfig Makefile 2>/dev/null || rev="$rev + uncommitted changes"
	built="built from $root at ${rev:-?}"
fi
echo "binary: $KOTAK ($(stat -c %s "$KOTAK") bytes, $(date -u -r "$KOTAK" '+%Y-%m-%d %H:%M UTC'), $built)"
echo "machine: $(uname -r), $(nproc) vCPU, data on ${dev:-?} ($(findmnt -n -o FSTYPE -T "$tmp")), $("$KOTAK" -V 2>&1 | head -n 1)," \
	"network: ${KOTAK_BENCH_INNER/netns/private namespace (lo only)}, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
"$py" "$helper" report "$res"
echo
echo "note: a noisy shared machine (2 vCPU, virtio disk): figures move by about +-30% from run to run;"
echo "      disk counters are for the whole device and include other writers (background rate above)."
if [ "$failed" != 0 ]; then
	echo "smtp_bench: FAILED (see the FAIL lines above; temp dir kept: $tmp)"
	exit 1
fi
if [ "$strict" = 1 ] && "$py" "$helper" report "$res" | grep -q MISSED; then
	echo "smtp_bench: a goal was missed (--strict)"
	exit 2
fi
exit 0

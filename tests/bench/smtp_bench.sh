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
# Exit: 0 when both runs completed with every message delivered exactly once,
# 1 on a failure (lost or duplicated messages, a server that died, timeouts).
# --strict: exit 2 as well when a goal was missed.  --keep: keep the temp dir.
# Environment: KOTAK (binary, default ./kotak, built with make), BENCH_DIR
# (parent of the temp dir, default /var/tmp), MSGS (default 2000).
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
	-h|--help) sed -n '2,32p' "$0"; exit 0 ;;
	*) echo "smtp_bench: unknown argument $a" >&2; exit 1 ;;
	esac
done
MSGS=${MSGS:-2000}
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
	else
		make -C "$root" -s kotak >/dev/null || die "make kotak failed"
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

# background write rate of the machine (other users of the disk)
if [ -n "$dev" ]; then
	sync
	s0=$(sectors "$dev")
	sleep 3
	s1=$(sectors "$dev")
	put bg_kbps "$(( (s1 - s0) * 512 / 3 / 1000 ))"
fi

src=(smtp-source -s "$SESS" -m "$MSGS" -l "$SIZE" -t "$RCPT" -f "$FROM")

# ------------------------------------------------------------------ kotak
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
"$KOTAK" -c "$kd/kotak.conf" -t || die "kotak rejects the bench config"
"$KOTAK" -c "$kd/kotak.conf" 2> "$kd/kotak.log" &
kpid=$!
wait_listen "$kport" || die "kotak does not listen on 127.0.0.1:$kport (log: $(tail -n 3 "$kd/kotak.log"))"
sleep 0.5
kmbox=$kd/data/mail/bench1/INBOX
kqueue=$kd/data/spool/queue
say "kotak $("$KOTAK" -V 2>&1 | head -n 1) pid $kpid on 127.0.0.1:$kport, data $kd/data (${dev:-?})"
"$py" "$helper" mem "$kpid" | sed 's/^/idle_/' | kv kotak

# warm-up (page cache, first mbox creation), then an empty mbox
smtp-source -s 2 -m 20 -l "$SIZE" -t "$RCPT" -f "$FROM" "127.0.0.1:$kport" >/dev/null 2>&1
wait_until 30 count_is "$kmbox" 20 || fail "kotak warm-up: $("$py" "$helper" count "$kmbox") of 20 delivered"
wait_until 30 dir_empty "$kqueue" || fail "kotak warm-up: queue not empty"
: > "$kmbox"

say "kotak: smtp-source -s $SESS -m $MSGS -l $SIZE ..."
sync
s0=$( [ -n "$dev" ] && sectors "$dev")
io0=$("$py" "$helper" io "$kpid")
c0=$("$py" "$helper" cpu "$kpid")
"$py" "$helper" load --mbox "$kmbox" --want "$MSGS" --pid "$kpid" --timeout 120 -- \
	"${src[@]}" "127.0.0.1:$kport" | sed 's/^/load_/' | kv kotak
wait_until 30 dir_empty "$kqueue" || fail "kotak: queue not empty 30 s after the run: $(ls "$kqueue" | wc -l) files"
c1=$("$py" "$helper" cpu "$kpid")
io1=$("$py" "$helper" io "$kpid")
sync
s1=$( [ -n "$dev" ] && sectors "$dev")
put kotak.e2e_s "$(get kotak.load_e2e_s)"
put kotak.accept_s "$(get kotak.load_accept_s)"
put kotak.cpu_s "$(awk -v a="$c0" -v b="$c1" 'BEGIN{printf "%.2f", b-a}')"
put kotak.io_bytes $(( ${io1% *} - ${io0% *} ))
put kotak.io_cancelled_bytes $(( ${io1#* } - ${io0#* } ))
[ -n "$dev" ] && put kotak.dev_bytes $(( (s1 - s0) * 512 ))
[ "$(get kotak.load_delivered)" = "$MSGS" ] ||
	fail "kotak: $(get kotak.load_delivered) of $MSGS in the mbox (smtp-source rc $(get kotak.load_rc): $(get kotak.load_stderr))"
[ "$(get kotak.load_rc)" = 0 ] || fail "kotak: smtp-source exit $(get kotak.load_rc): $(get kotak.load_stderr)"
"$py" "$helper" verify "$kmbox" "$MSGS" | sed 's/^/verify_/' | kv kotak
[ "$(get kotak.verify_parsed)" = "$MSGS" ] || fail "kotak: Python mailbox reads $(get kotak.verify_parsed) messages, not $MSGS"
[ "$(get kotak.verify_msgid_dups)" = 0 ] || fail "kotak: $(get kotak.verify_msgid_dups) duplicated Message-Ids"

say "kotak: $HOLD sessions"
"$py" "$helper" hold --port "$kport" --n "$HOLD" --pid "$kpid" | sed 's/^/s100_/' | kv kotak
[ "$(get kotak.s100_sessions_ok)" = "$HOLD" ] || fail "kotak: $(get kotak.s100_sessions_ok) of $HOLD sessions: $(get kotak.s100_first_error)"
sleep 0.5
"$py" "$helper" mem "$kpid" | sed 's/^/after_/' | kv kotak
put kotak.hwm_kb "$("$py" "$helper" hwm "$kpid")"
put kotak.log_lines "$(wc -l < "$kd/kotak.log")"
put kotak.log_warnings "$(grep -ciE 'warn|error|fail|deferred|corrupt' "$kd/kotak.log")"
# every accepted message (warm-up included) queued, delivered and removed once
put kotak.log_queued "$(grep -c ': queued from=' "$kd/kotak.log")"
put kotak.log_delivered "$(grep -c 'status=delivered' "$kd/kotak.log")"
put kotak.log_removed "$(grep -c ': removed$' "$kd/kotak.log")"
for k in queued delivered removed; do
	[ "$(get kotak.log_$k)" = $((MSGS + 20)) ] ||
		fail "kotak log: $(get kotak.log_$k) '$k' lines, expected $((MSGS + 20))"
done
kill -0 "$kpid" 2>/dev/null || fail "kotak died during the bench (log: $(tail -n 3 "$kd/kotak.log"))"
kill -TERM "$kpid"
wait "$kpid"
put kotak.exit "$?"
kpid=

# ------------------------------------------------------------------ Postfix
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
ppid_master=$(sed -n '1s/ //gp' /var/spool/postfix/pid/master.pid)
kill -0 "$ppid_master" 2>/dev/null || die "no Postfix master process"
pqueue=(/var/spool/postfix/incoming /var/spool/postfix/active /var/spool/postfix/deferred /var/spool/postfix/maildrop)
say "Postfix $(postconf -h mail_version) master pid $ppid_master on 127.0.0.1:25, mbox $pmbox (${pdev:-?})"
sleep 0.5
"$py" "$helper" mem "$ppid_master" --tree | sed 's/^/idle_/' | kv postfix

smtp-source -s 2 -m 20 -l "$SIZE" -t "$RCPT" -f "$FROM" 127.0.0.1:25 >/dev/null 2>&1
wait_until 30 count_is "$pmbox" 20 || fail "Postfix warm-up: $("$py" "$helper" count "$pmbox") of 20 delivered"
wait_until 30 dir_empty "${pqueue[@]}" || fail "Postfix warm-up: queue not empty"
: > "$pmbox"

say "Postfix: smtp-source -s $SESS -m $MSGS -l $SIZE ..."
sync
s0=$( [ -n "$pdev" ] && sectors "$pdev")
io0=$("$py" "$helper" io "$ppid_master" --tree)
c0=$("$py" "$helper" cpu "$ppid_master" --tree)
"$py" "$helper" load --mbox "$pmbox" --want "$MSGS" --pid "$ppid_master" --tree --interval 0.25 \
	--timeout 150 -- "${src[@]}" 127.0.0.1:25 | sed 's/^/load_/' | kv postfix
wait_until 30 dir_empty "${pqueue[@]}" || say "Postfix: queue not empty 30 s after the run"
c1=$("$py" "$helper" cpu "$ppid_master" --tree)
io1=$("$py" "$helper" io "$ppid_master" --tree)
sync
s1=$( [ -n "$pdev" ] && sectors "$pdev")
put postfix.e2e_s "$(get postfix.load_e2e_s)"
put postfix.accept_s "$(get postfix.load_accept_s)"
put postfix.cpu_s "$(awk -v a="$c0" -v b="$c1" 'BEGIN{printf "%.2f", b-a}')"
put postfix.io_bytes $(( ${io1% *} - ${io0% *} ))
put postfix.io_cancelled_bytes $(( ${io1#* } - ${io0#* } ))
[ -n "$pdev" ] && put postfix.dev_bytes $(( (s1 - s0) * 512 ))
[ "$(get postfix.load_delivered)" = "$MSGS" ] ||
	fail "Postfix: $(get postfix.load_delivered) of $MSGS in the mbox: $(get postfix.load_stderr)"
"$py" "$helper" verify "$pmbox" "$MSGS" | sed 's/^/verify_/' | kv postfix

say "Postfix: $HOLD sessions"
"$py" "$helper" hold --port 25 --n "$HOLD" --pid "$ppid_master" --tree --settle 2 | sed 's/^/s100_/' | kv postfix
[ "$(get postfix.s100_sessions_ok)" = "$HOLD" ] ||
	say "Postfix: $(get postfix.s100_sessions_ok) of $HOLD sessions: $(get postfix.s100_first_error)"
postfix_stop
listening 25 && fail "Postfix still listens on port 25 after postfix stop"
: > "$pmbox"

# ------------------------------------------------------------------ report
echo
echo "kotak vs Postfix $(postconf -h mail_version 2>/dev/null), smtp-source -s $SESS -m $MSGS -l $SIZE to 127.0.0.1," \
	"rcpt $RCPT, until the mbox holds all $MSGS"
echo "machine: $(uname -r), $(nproc) vCPU, data on ${dev:-?} ($(findmnt -n -o FSTYPE -T "$tmp")), kotak $("$KOTAK" -V 2>&1 | head -n 1)," \
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

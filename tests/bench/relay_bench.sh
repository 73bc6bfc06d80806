#!/usr/bin/env bash
# tests/bench/relay_bench.sh: the outbound relay, kotak against Postfix, on this machine.
#
#   tests/bench/relay_bench.sh [--strict] [--keep]
#
# Measured 2026-11-26 23:47 UTC, kotak at 97495e9, Postfix 3.7.11, Debian 12,
# 2 vCPU, `ROUNDS=3 tests/bench/relay_bench.sh`: queue empty after kotak 0.89 s
# (0.82, 0.91, 0.89), Postfix 2.82 s (2.82, 3.04, 2.06): 1,120 vs 355 msg/s,
# kotak/Postfix time ratio 0.3 (3.2x the rate).  Injection (SMTP accept,
# fsync): kotak 0.62 s, Postfix 2.76 s.
# Before 97495e9 kotak took at most RELAY_SLOTS * 4 = 16 messages in hand and
# put any other back for 30 s: 250-300 of the 1,000 after 120 s (runs at
# 23:40-23:44 with 60086b3).  Now the others wait in order in memory (up to
# 4096) and start as soon as a place frees.
#
# A benchmark, not a test: `make test` does not run it (tests/bench/run.sh does).
# Run as root on Debian 12 (needs unshare, dnsmasq, postfix for smtp-sink,
# smtp-source and the comparison; installs dnsmasq-base and postfix when missing).
#
# The load: MSGS (1000) messages of 2 KB, one recipient each, spread evenly
# over DOMAINS (20) remote domains d01.test ... d20.test, injected over SMTP by
# DOMAINS smtp-source processes at once (one session each) from 127.0.0.1.  A
# dnsmasq on 127.0.0.53:53 answers for .test only (--no-resolv --local=/test/:
# it forwards nothing), giving every domain the MX mx.dNN.test = 127.0.0.10,
# where Postfix's smtp-sink accepts everything on port 25.  The time is from
# the start of the injection until the server's queue is empty (kotak:
# data_dir/spool/queue; Postfix: incoming, active, deferred, maildrop, hold)
# and smtp-sink has counted every message; the injection time alone is shown
# too.  kotak relays with its own resolver (option dns_server '127.0.0.53')
# from 127.0.0.1:2525 (relay_net 127.0.0.0/8), Postfix 3.7 from a temporary
# instance (config_directory and queue_directory under the temp dir, chroot
# off, smtpd on 127.0.0.1:25, mynetworks 127.0.0.0/8, MX lookups through
# libc's resolver: smtp_host_lookup = dns).
#
# Network: everything (dnsmasq, smtp-sink, kotak, Postfix, smtp-source) runs in
# one private network and mount namespace (`unshare -n -m`) holding only lo,
# with a resolv.conf naming 127.0.0.53 bind-mounted over /etc/resolv.conf, so
# Postfix's libc resolver asks the loopback dnsmasq; nothing could reach a
# non-loopback address even by mistake.  The machine's Postfix, its main.cf
# and its queue are not touched.
#
# Rounds: ROUNDS (3) per server, alternating kotak and Postfix, after a
# warm-up of 10 messages each (fewer than kotak's RELAY_SLOTS * 4 = 16
# messages in hand, so it shows the relay's speed without waits); the figures
# are medians.  A round must see every message at smtp-sink and an empty
# queue within DEADLINE (120) s.  Postfix missing it is a failure.  kotak
# missing it (it does: a message that finds its 16 messages in hand taken
# waits 30 s, "relay busy, next try in 30s", and the queue is scanned again
# only then) is measured as it is: kotak is stopped, the report gives how
# many it relayed by then, the time ratio as a lower bound (">=") and the
# rate ratio as an upper bound ("<="), and there are no more kotak rounds.
# Nothing may be deferred or bounced, and every message at smtp-sink must be
# one the server logged as sent.  Runtime: about 2.5 minutes (kotak's round
# is DEADLINE long, the rest takes about 30 s).
# Environment: KOTAK (binary, default ./kotak, built with make), MSGS,
# DOMAINS, ROUNDS, DEADLINE, BENCH_DIR (parent of the temp dir, /var/tmp).
# Exit 0 when the run was sound (kotak finishing or not); 1 on a failure
# (lost, duplicated, deferred messages, a server that died, Postfix too
# slow); 2 with --strict when kotak did not empty its queue in time.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
keep=0 strict=0
for a in "$@"; do
	case "$a" in
	--keep) keep=1 ;;
	--strict) strict=1 ;;
	-h|--help) sed -n '2,/^set -u$/{/^set -u$/d;p}' "$0"; exit 0 ;;
	*) echo "relay_bench: unknown argument $a" >&2; exit 1 ;;
	esac
done
MSGS=${MSGS:-1000}
DOMAINS=${DOMAINS:-20}
ROUNDS=${ROUNDS:-3}
DEADLINE=${DEADLINE:-120}
SIZE=2048
DNS_IP=127.0.0.53
SINK_IP=127.0.0.10
KPORT=2525
WARM=10		# below kotak's messages in hand (RELAY_SLOTS * 4 = 16): see above

say() { echo "relay_bench: $*" >&2; }
die() { say "$*"; exit 1; }

# ------------------------------------------------------------------ setup (host namespace)
if [ -z "${KOTAK_RELAY_INNER:-}" ]; then
	[ "$(id -u)" -eq 0 ] || die "run as root (unshare, a temporary Postfix instance)"
	pkgs=
	command -v dnsmasq >/dev/null || pkgs="$pkgs dnsmasq-base"
	if [ ! -x /usr/sbin/smtp-sink ] || [ ! -x /usr/sbin/postfix ]; then
		echo "postfix postfix/main_mailer_type select Local only" | debconf-set-selections
		echo "postfix postfix/mailname string bench.localdomain" | debconf-set-selections
		pkgs="$pkgs postfix"
	fi
	if [ -n "$pkgs" ]; then
		say "installing$pkgs"
		made_policy=0
		if [ ! -e /usr/sbin/policy-rc.d ]; then	# no daemon started by the package
			printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
			chmod 755 /usr/sbin/policy-rc.d
			made_policy=1
		fi
		DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q $pkgs >/dev/null
		[ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
		command -v dnsmasq >/dev/null && [ -x /usr/sbin/smtp-sink ] || die "could not install$pkgs"
	fi
	if [ -n "${KOTAK:-}" ]; then
		[ -x "$KOTAK" ] || die "KOTAK=$KOTAK is not an executable"
		export KOTAK_BENCH_GIVEN=1
	else
		make -C "$root" -s kotak >/dev/null || die "make kotak failed (or set KOTAK=/path/to/kotak)"
		KOTAK=$root/kotak
	fi
	export KOTAK=$(cd "$(dirname "$KOTAK")" && pwd)/$(basename "$KOTAK")
	unshare -n -m true 2>/dev/null || die "unshare -n -m does not work here: refusing to run Postfix" \
		"next to the machine's resolver"
	export KOTAK_RELAY_INNER=1
	exec unshare -n -m "$BASH" "$0" "$@"
fi

# ------------------------------------------------------------------ inside the namespace
ip link set lo up || die "cannot bring lo up in the private namespace"
[ -z "$(ip -o link show | awk -F': ' '{print $2}' | grep -vx lo)" ] || die "namespace has more than lo"
mount --make-rprivate / || die "mount --make-rprivate /"

base=${BENCH_DIR:-/var/tmp}
tmp=$(mktemp -d "$base/kotak-relay-bench.XXXXXX") || die "mktemp in $base"
chmod 755 "$tmp"
pids=()
pc=$tmp/postfix/etc
failed=0
cleanup() {
	local p
	if [ -f "$pc/main.cf" ]; then
		postfix -c "$pc" stop </dev/null >/dev/null 2>&1
	fi
	for p in "${pids[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null
	done
	if [ "$keep" = 1 ] || [ "$failed" != 0 ]; then
		say "kept $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
fail() { say "FAIL: $*"; failed=1; }

# resolv.conf for everything in this namespace (Postfix's libc resolver)
printf 'nameserver %s\noptions attempts:1 timeout:1\n' "$DNS_IP" > "$tmp/resolv.conf"
mount --bind "$tmp/resolv.conf" /etc/resolv.conf || die "cannot bind-mount a private /etc/resolv.conf"

now() { echo "${EPOCHREALTIME/,/.}"; }
listening() { ss -ltnH "src $1" 2>/dev/null | grep -q .; }	# listening ADDR:PORT
wait_listen() {
	local i
	for i in $(seq 100); do
		listening "$1" && return 0
		sleep 0.1
	done
	return 1
}

# ------------------------------------------------------------------ dnsmasq
dom() { printf 'd%02d.test' "$1"; }
dargs=(--no-resolv --no-hosts --no-poll --conf-file=/dev/null --keep-in-foreground --pid-file=
	--port=53 --listen-address=$DNS_IP --bind-interfaces --local=/test/ --log-facility=-
	--user=root --cache-size=1000)
for i in $(seq "$DOMAINS"); do
	dargs+=(--mx-host="$(dom "$i"),mx.$(dom "$i"),10" --host-record="mx.$(dom "$i"),$SINK_IP")
done
dnsmasq "${dargs[@]}" 2> "$tmp/dnsmasq.log" &
pids+=($!)
wait_listen "$DNS_IP:53" 2>/dev/null
sleep 0.3
# libc (what Postfix uses) must get the loopback answers
# (gethostbyname: getaddrinfo's AI_ADDRCONFIG finds no IPv4 beside lo and asks nobody)
mxip=$(python3 -c 'import socket, sys; print(socket.gethostbyname(sys.argv[1]))' "mx.$(dom 1)" 2>/dev/null)
[ "$mxip" = "$SINK_IP" ] || die "mx.$(dom 1) does not resolve to $SINK_IP through /etc/resolv.conf" \
	"(got '${mxip}'; dnsmasq: $(tail -n 3 "$tmp/dnsmasq.log"))"

# ------------------------------------------------------------------ smtp-sink
smtp-sink -c -u nobody -m 512 "$SINK_IP:25" 1024 > "$tmp/sink.out" 2> "$tmp/sink.err" &
pids+=($!)
wait_listen "$SINK_IP:25" || die "smtp-sink does not listen on $SINK_IP:25 ($(cat "$tmp/sink.err"))"
sink_count() { tr '\r' '\n' < "$tmp/sink.out" | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -n 1; }
sink_n() { local n; n=$(sink_count); echo "${n:-0}"; }

# ------------------------------------------------------------------ kotak
kd=$tmp/kotak
mkdir -p "$kd/data"
cat > "$kd/kotak.conf" <<EOF
config kotak 'main'
	option hostname 'kotak.relay-bench.lan'
	list domain 'relay-bench.lan'
	option data_dir '$kd/data'
	option users_file '$kd/users'
	option max_sessions '100'
	option max_sessions_per_ip '100'
	list relay_net '127.0.0.0/8'
	option dns_server '$DNS_IP'
	option relay_port '25'
	option retry_min '1'
	option retry_max '2'

config listen
	option proto 'smtp'
	option address '127.0.0.1'
	option port '$KPORT'

config alias
	option name 'postmaster'
	list to 'bench1'
EOF
echo benchpass | "$KOTAK" -c "$kd/kotak.conf" user add bench1 >/dev/null || die "kotak user add failed"
"$KOTAK" -c "$kd/kotak.conf" -t >/dev/null || die "kotak rejects the bench config"
"$KOTAK" -c "$kd/kotak.conf" 2> "$kd/kotak.log" &
kpid=$!
pids+=($kpid)
wait_listen "127.0.0.1:$KPORT" || die "kotak does not listen on 127.0.0.1:$KPORT ($(tail -n 3 "$kd/kotak.log"))"
kqueue=("$kd/data/spool/queue")

# ------------------------------------------------------------------ Postfix (temporary instance)
pq=$tmp/postfix/spool
mkdir -p "$pc" "$pq" "$tmp/postfix/data"
chown postfix "$tmp/postfix/data"
cp /etc/postfix/master.cf "$pc/master.cf"
cat > "$pc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $pq
data_directory = $tmp/postfix/data
command_directory = $(postconf -h command_directory)
daemon_directory = $(postconf -h daemon_directory)
meta_directory = $(postconf -h meta_directory)
shlib_directory = $(postconf -h shlib_directory)
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.relay-bench.lan
mydomain = relay-bench.lan
myorigin = \$myhostname
mydestination =
local_transport = error:local delivery is off in this benchmark
alias_maps =
alias_database =
local_recipient_maps =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_peername_lookup = no
smtp_host_lookup = dns
disable_dns_lookups = no
smtp_tls_security_level = none
smtpd_tls_security_level = none
biff = no
append_dot_mydomain = no
maillog_file = $tmp/postfix/postfix.log
EOF
# every service unchrooted (no copy of resolv.conf and friends in the spool)
postconf -c "$pc" -F '*/*/chroot = n' || die "postconf -F failed"
postconf -c "$pc" -n >/dev/null || die "postconf rejects the bench main.cf"
listening 127.0.0.1:25 && die "something already listens on 127.0.0.1:25 in the namespace"
postfix -c "$pc" start </dev/null >"$tmp/postfix/start.log" 2>&1 ||
	die "postfix start failed: $(tail -n 5 "$tmp/postfix/start.log") $(tail -n 5 "$tmp/postfix/postfix.log" 2>/dev/null)"
wait_listen 127.0.0.1:25 || die "Postfix does not listen on 127.0.0.1:25"
pqueue=("$pq/incoming" "$pq/active" "$pq/deferred" "$pq/maildrop" "$pq/hold")

# ------------------------------------------------------------------ the load
queue_empty() { [ -z "$(find "$@" -type f -print -quit 2>/dev/null)" ]; }
qcount() { find "$@" -type f 2>/dev/null | wc -l; }
# inject SMTP-PORT N: N messages over the domains, one smtp-source process
# per domain, all at once; waits for them
inject() {
	local port=$1 n=$2 i m p rc=0 ps=()
	for i in $(seq "$DOMAINS"); do
		m=$((n / DOMAINS + (i <= n % DOMAINS)))
		[ "$m" -gt 0 ] || continue
		smtp-source -s 1 -m "$m" -l "$SIZE" -f "sender@relay-bench.lan" \
			-t "rcpt$i@$(dom "$i")" "127.0.0.1:$port" >/dev/null 2>>"$tmp/inject.err" &
		ps+=($!)
	done
	for p in "${ps[@]}"; do
		wait "$p" || rc=1
	done
	return $rc
}
# one_round SIDE PORT N QUEUE-DIRS...: prints "total_s inject_s delivered half_s"
# total_s "-": the queue was not empty after DEADLINE s; half_s: time until
# half of the messages were at smtp-sink ("-": never)
one_round() {
	local side=$1 port=$2 n=$3 s0 t0 t1 t2 th=- end got tick=5
	shift 3
	s0=$(sink_n)
	: > "$tmp/timeline.$side"
	t0=$(now)
	inject "$port" "$n" || fail "$side: smtp-source failed: $(tail -n 2 "$tmp/inject.err")"
	t1=$(now)
	end=$((SECONDS + DEADLINE))
	while :; do
		got=$(( $(sink_n) - s0 ))
		[ "$th" = - ] && [ "$got" -ge $((n / 2)) ] && th=$(now)
		if [ $((SECONDS - end + DEADLINE)) -ge $tick ]; then	# relayed so far, every 5 s
			echo "${tick}s:$got" >> "$tmp/timeline.$side"
			tick=$((tick + 5))
		fi
		if [ "$got" -ge "$n" ] && queue_empty "$@"; then
			t2=$(now)
			break
		fi
		if [ $SECONDS -ge $end ]; then
			t2=-
			break
		fi
		sleep 0.02
	done
	awk -v a="$t0" -v b="$t1" -v c="$t2" -v h="$th" -v g="$got" 'BEGIN {
		printf "%s %.3f %d %s\n", c == "-" ? "-" : sprintf("%.3f", c - a), b - a, g,
		    h == "-" ? "-" : sprintf("%.3f", h - a) }'
}
# kotak_stop: SIGTERM, wait; its sessions in flight end with it
kotak_stop() {
	kill -TERM "$kpid" 2>/dev/null
	wait "$kpid" 2>/dev/null
}

say "$("$KOTAK" -V 2>&1 | head -n 1) on 127.0.0.1:$KPORT; Postfix $(postconf -h mail_version) on 127.0.0.1:25;" \
	"dnsmasq on $DNS_IP:53, smtp-sink on $SINK_IP:25, $DOMAINS domains"
# warm-up: page cache, process pools, first DNS answers
say "warm-up: $WARM messages each"
ksink=0 psink=0
for side in kotak postfix; do
	if [ $side = kotak ]; then
		out=$(one_round kotak "$KPORT" "$WARM" "${kqueue[@]}")
	else
		out=$(one_round postfix 25 "$WARM" "${pqueue[@]}")
	fi
	set -- $out
	[ "$1" != - ] || die "$side warm-up: $3 of $WARM messages relayed after ${DEADLINE}s" \
		"(kotak log: $(tail -n 2 "$kd/kotak.log"))"
	if [ $side = kotak ]; then ksink=$((ksink + $3)) kwarm=$1; else psink=$((psink + $3)) pwarm=$1; fi
done

res=$tmp/results
: > "$res"
kdone=0		# 1: kotak missed the deadline and was stopped; no more kotak rounds
for r in $(seq "$ROUNDS"); do
	if [ $((r % 2)) = 1 ]; then order="kotak postfix"; else order="postfix kotak"; fi
	for side in $order; do
		if [ "$side" = kotak ]; then
			[ "$kdone" = 0 ] || continue
			out=$(one_round kotak "$KPORT" "$MSGS" "${kqueue[@]}")
		else
			out=$(one_round postfix 25 "$MSGS" "${pqueue[@]}")
		fi
		set -- $out
		if [ "$1" = - ]; then
			left=$(qcount "${kqueue[@]}")
			[ "$side" = postfix ] && left=$(qcount "${pqueue[@]}")
			say "round $r $side: NOT DONE after ${DEADLINE}s: $3 of $MSGS at smtp-sink, $left queue files left" \
				"(injection $2 s, half delivered after $4 s)"
			if [ "$side" = kotak ]; then
				kdone=1
				kotak_stop
				sleep 0.5
				set -- $1 $2 $(( $(sink_n) - ksink - psink )) $4	# what reached the sink before the stop
			else
				fail "Postfix did not empty its queue within ${DEADLINE}s"
			fi
		else
			say "round $r $side: $MSGS messages, queue empty after $1 s (injection $2 s, half after $4 s)"
		fi
		echo "$side $r $*" >> "$res"
		if [ "$side" = kotak ]; then ksink=$((ksink + $3)); else psink=$((psink + $3)); fi
	done
	[ "$kdone" = 1 ] || kill -0 "$kpid" 2>/dev/null ||
		{ fail "kotak died in round $r ($(tail -n 3 "$kd/kotak.log"))"; break; }
done

# ------------------------------------------------------------------ checks
# every message that reached smtp-sink is one the server logged as sent,
# nothing deferred or bounced (kotak's "relay busy" waits are not deferrals)
[ "$kdone" = 1 ] || kotak_stop
ksent=$(grep -c 'status=sent' "$kd/kotak.log")
kdef=$(grep -cE 'status=(deferred|bounced)' "$kd/kotak.log")
kbusy=$(grep -c 'relay busy' "$kd/kotak.log")
psent=$(grep -c 'status=sent' "$tmp/postfix/postfix.log")
pdef=$(grep -cE 'status=(deferred|bounced)' "$tmp/postfix/postfix.log")
ptotal=$((WARM + MSGS * ROUNDS))
[ "$psent" = "$ptotal" ] || fail "Postfix log: $psent 'status=sent', expected $ptotal"
[ "$psink" = "$ptotal" ] || fail "smtp-sink counted $psink messages from Postfix, expected $ptotal"
if [ "$kdone" = 0 ]; then
	[ "$ksent" = "$ksink" ] && [ "$ksink" = $((WARM + MSGS * ROUNDS)) ] ||
		fail "kotak log: $ksent 'status=sent', smtp-sink $ksink, expected $((WARM + MSGS * ROUNDS))"
else	# stopped mid-session: a message may be at the sink, not yet logged
	[ "$ksent" -le "$ksink" ] && [ "$ksent" -ge $((ksink - 4)) ] ||
		fail "kotak log: $ksent 'status=sent', smtp-sink counted $ksink"
fi
[ "$kdef" = 0 ] || fail "kotak deferred or bounced $kdef: $(grep -E 'status=(deferred|bounced)' "$kd/kotak.log" | head -n 2)"
[ "$pdef" = 0 ] || fail "Postfix deferred or bounced $pdef: $(grep -E 'status=(deferred|bounced)' "$tmp/postfix/postfix.log" | head -n 2)"

# ------------------------------------------------------------------ report
med() { awk -v s="$1" -v f="$2" '$1 == s && $f != "-" { print $f }' "$res" | sort -g |
	awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
pt=$(med postfix 3) pi=$(med postfix 4) ph=$(med postfix 6)
if [ "$kdone" = 0 ]; then
	kt=$(med kotak 3) ki=$(med kotak 4) kh=$(med kotak 6)
	kn=$MSGS
else	# the one kotak round there was
	set -- $(awk '$1 == "kotak" && $3 == "-"' "$res")
	kt=$DEADLINE ki=$4 kn=$5 kh=$6
	[ "$kh" = - ] && kh=
fi
if [ -n "${KOTAK_BENCH_GIVEN:-}" ]; then
	built="given as KOTAK"
else
	rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null)
	git -C "$root" diff --quiet HEAD -- src Kconfig Makefile 2>/dev/null || rev="$rev + uncommitted changes"
	built="built from $root at ${rev:-?}"
fi
echo
echo "relay: $MSGS messages of $SIZE B to $DOMAINS domains (MX via dnsmasq, smtp-sink on $SINK_IP:25)," \
	"from injection start until the queue is empty; medians of $(awk '$1 == "postfix"' "$res" | wc -l)" \
	"Postfix and $(awk '$1 == "kotak"' "$res" | wc -l) kotak round(s)"
echo "binary: $KOTAK ($(stat -c %s "$KOTAK") bytes, $built), $("$KOTAK" -V 2>&1 | head -n 1)"
echo "machine: $(uname -r), $(nproc) vCPU, private network namespace (lo only), $(date -u '+%Y-%m-%d %H:%M UTC')"
awk -v kt="$kt" -v pt="$pt" -v ki="$ki" -v pi="$pi" -v kh="$kh" -v ph="$ph" -v n="$MSGS" -v kn="$kn" \
    -v kd="$kdone" -v pv="$(postconf -h mail_version)" 'BEGIN {
	ge = kd ? ">=" : ""
	printf "%-28s %12s %12s %14s\n", "", "kotak", "Postfix " pv, "kotak/Postfix"
	printf "%-28s %12s %12.2f %14s\n", "seconds until queue empty", (kd ? ">" : "") sprintf("%.2f", kt), pt,
	    ge sprintf("%.1f", kt / pt)
	printf "%-28s %12.1f %12.1f %14s\n", "messages/s (relayed)", kn / kt, n / pt, (kd ? "<=" : "") sprintf("%.3f", (kn / kt) / (n / pt))
	if (kh != "" && ph != "")
		printf "%-28s %12.2f %12.2f %14.1f\n", "seconds until half relayed", kh, ph, kh / ph
	printf "%-28s %12.2f %12.2f %14.2f\n", "injection seconds", ki, pi, ki / pi
	if (kd)
		printf "kotak: %d of %d relayed when stopped after %d s (queue not empty)\n", kn, n, kt
}'
[ "$kdone" = 1 ] && echo "kotak, messages at smtp-sink so far: $(tr '\n' ' ' < "$tmp/timeline.kotak")"
echo "warm-up, $WARM messages (fit in kotak's messages in hand): kotak $kwarm s, Postfix $pwarm s until the queue was empty"
echo "kotak logged 'relay busy, next try in 30s' $kbusy times (its $((4 * 4)) messages in hand were full)"
echo "rounds (side round total_s inject_s at_sink half_s):"
sed 's/^/  /' "$res"
if [ "$failed" != 0 ]; then
	echo "relay_bench: FAILED (see the FAIL lines above; temp dir kept: $tmp)"
	exit 1
fi
if [ "$kdone" = 1 ] && [ "$strict" = 1 ]; then
	echo "relay_bench: kotak did not empty its queue within ${DEADLINE}s (--strict: exit 2)"
	exit 2
fi
exit 0

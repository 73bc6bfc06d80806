#!/usr/bin/env bash
# tests/bench/tls_bench.sh: what TLS costs kotak, and kotak beside Postfix.
#
#   tests/bench/tls_bench.sh [--keep]
#
# A benchmark, not a test: `make test` does not run it (tests/bench/run.sh does).
# Run as root on Debian 12 (it installs postfix, "Local only", when missing).
# It measures:
#   1. `make size` with TLS on and off: two copies of the working tree under a
#      temp dir (the tree itself is not touched), one built from
#      configs/defconfig, one from it with CONFIG_TLS unset; plus a check that
#      the TLS-less binary runs and offers no STARTTLS;
#   2. memory: RSS and PSS (/proc/PID/smaps_rollup) of kotak idle, with SESS
#      (50) idle plain sessions and with SESS idle TLS sessions (smtps:
#      handshake done, greeting read, EHLO answered, held open);
#   3. full TLS 1.2 handshakes per second with `openssl s_time -new` against
#      implicit-TLS ports, for ECDHE-RSA (RSA 2048) and ECDHE-ECDSA (P-256),
#      suite pinned to AES128-GCM-SHA256 on both servers, 1 and 2 clients at
#      once, kotak beside Postfix's smtpd (OpenSSL; a private instance with its
#      own config, queue and log dirs, smtpd_tls_wrappermode), as ratios;
#   4. bulk TLS: one message of BULK_MB (20) MiB sent over smtps (EC cert),
#      suite pinned to AES128-GCM, then to ChaCha20-Poly1305: MiB/s from
#      DATA to the final 250 (median of 3) and server CPU per MiB, kotak
#      beside Postfix.
# Network: loopback only; the measuring part runs in a private network
# namespace (`unshare -n`) when it can.  The private Postfix is stopped at the
# end, whatever happens; the system Postfix is not touched.
# Environment: SECS (seconds per s_time run, default 10), SESS (default 50),
# BENCH_DIR (parent of the temp dir, default /var/tmp).
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
py=/usr/bin/python3
[ -x "$py" ] || py=python3
keep=0
for a in "$@"; do
	case "$a" in
	--keep) keep=1 ;;
	-h|--help) sed -n '2,/^set -u$/{/^set -u$/d;p}' "$0"; exit 0 ;;
	*) echo "tls_bench: unknown argument $a" >&2; exit 1 ;;
	esac
done
SECS=${SECS:-10}
SESS=${SESS:-50}
BULK_MB=${BULK_MB:-20}

say() { echo "tls_bench: $*" >&2; }
die() { say "$*"; exit 1; }

# ------------------------------------------------------------------ setup (host namespace)
if [ -z "${TLS_BENCH_INNER:-}" ]; then
	[ "$(id -u)" -eq 0 ] || die "run as root (it drives a private Postfix)"
	command -v openssl >/dev/null || die "openssl is needed"
	if [ ! -x /usr/sbin/postfix ]; then
		say "installing postfix (Local only) for the comparison"
		echo "postfix postfix/main_mailer_type select Local only" | debconf-set-selections
		echo "postfix postfix/mailname string bench.localdomain" | debconf-set-selections
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
		[ -x /usr/sbin/postfix ] || die "postfix did not install"
	fi
	base=${BENCH_DIR:-/var/tmp}
	TLS_BENCH_TMP=$(mktemp -d "$base/kotak-tlsbench.XXXXXX") || die "mktemp in $base"
	export TLS_BENCH_TMP
	chmod 755 "$TLS_BENCH_TMP"

	# ---- 1. make size, TLS on and off, in copies of the tree
	for v in tls notls; do
		d=$TLS_BENCH_TMP/src-$v
		mkdir -p "$d"
		tar -C "$root" --exclude=./.git --exclude=./build --exclude='./build-*' --exclude=./kotak \
			--exclude=./.config --exclude=./demo -cf - . | tar -C "$d" -xf -
		if [ $v = tls ]; then
			cp "$root/configs/defconfig" "$TLS_BENCH_TMP/$v.defconfig"
		else
			sed 's/^CONFIG_TLS=y$/# CONFIG_TLS is not set/' "$root/configs/defconfig" \
				> "$TLS_BENCH_TMP/$v.defconfig"
			grep -q '^# CONFIG_TLS is not set' "$TLS_BENCH_TMP/$v.defconfig" ||
				echo '# CONFIG_TLS is not set' >> "$TLS_BENCH_TMP/$v.defconfig"
		fi
		say "building the $v copy"
		make -C "$d" -s DEFCONFIG="$TLS_BENCH_TMP/$v.defconfig" kotak >"$TLS_BENCH_TMP/build-$v.log" 2>&1 ||
			{ tail -n 20 "$TLS_BENCH_TMP/build-$v.log" >&2; die "build ($v) failed"; }
		make -C "$d" -s DEFCONFIG="$TLS_BENCH_TMP/$v.defconfig" size 2>/dev/null | grep -m1 "^kotak:" \
			> "$TLS_BENCH_TMP/size-$v.txt"
		"$d/kotak" -V | sed -n 2p > "$TLS_BENCH_TMP/features-$v.txt"
	done
	if unshare -n true 2>/dev/null; then
		export TLS_BENCH_INNER=netns
		exec unshare -n "$BASH" "$0" "$@"
	fi
	say "unshare -n not available: running in the host namespace (loopback only)"
	export TLS_BENCH_INNER=host
fi

# ------------------------------------------------------------------ measuring part
[ "$TLS_BENCH_INNER" = netns ] && { ip link set lo up || die "cannot bring lo up"; }
tmp=$TLS_BENCH_TMP
KOTAK=$tmp/src-tls/kotak
NOTLS=$tmp/src-notls/kotak
P=$tmp/postfix
pids=()
failed=0
cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	if [ -f "$P/spool/pid/master.pid" ]; then
		postfix -c "$P/etc" stop >/dev/null 2>&1
		for p in $(seq 50); do
			[ -f "$P/spool/pid/master.pid" ] && kill -0 "$(tr -d ' ' < "$P/spool/pid/master.pid")" 2>/dev/null ||
				break
			sleep 0.1
		done
	fi
	if [ "$keep" = 1 ] || [ "$failed" != 0 ]; then
		say "kept $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_listen() {
	local i
	for i in $(seq 100); do
		ss -ltnH "sport = :$1" 2>/dev/null | grep -q . && return 0
		sleep 0.1
	done
	return 1
}

# ---- certificates
openssl req -x509 -nodes -newkey rsa:2048 -keyout "$tmp/rsa.key" -out "$tmp/rsa.pem" -days 30 \
	-subj /CN=mail.example.lan -addext subjectAltName=DNS:mail.example.lan 2>/dev/null || die "rsa cert"
openssl req -x509 -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -keyout "$tmp/ec.key" \
	-out "$tmp/ec.pem" -days 30 -subj /CN=mail.example.lan \
	-addext subjectAltName=DNS:mail.example.lan 2>/dev/null || die "ec cert"
chmod 644 "$tmp"/*.key "$tmp"/*.pem

# ---- kotak instances: kotak_start NAME BIN CERTKIND -> sets port_NAME, pid_NAME
kotak_start() {
	local name=$1 bin=$2 kind=$3 d=$tmp/k-$1 sp pp
	mkdir -p "$d/data"
	sp=$(free_port)
	pp=$(free_port)
	{
		printf "config kotak 'main'\n\toption hostname 'mail.example.lan'\n\tlist domain 'example.lan'\n"
		printf "\toption data_dir '%s/data'\n\toption users_file '%s/users'\n" "$d" "$d"
		printf "\toption max_sessions '120'\n\toption max_sessions_per_ip '120'\n"
		printf "\toption max_message_size '%s'\n" $(( (BULK_MB + 8) * 1048576 ))
		[ -n "$kind" ] && printf "\toption cert '%s/%s.pem'\n\toption key '%s/%s.key'\n" "$tmp" "$kind" "$tmp" "$kind"
		printf "\nconfig listen\n\toption proto 'smtp'\n\toption address '127.0.0.1'\n\toption port '%s'\n" "$pp"
		[ -n "$kind" ] && printf "\nconfig listen\n\toption proto 'smtps'\n\toption address '127.0.0.1'\n\toption port '%s'\n" "$sp"
		printf "\nconfig alias\n\toption name 'postmaster'\n\tlist to 'bench'\n"
	} > "$d/kotak.conf"
	echo secret | "$bin" -c "$d/kotak.conf" user add bench >/dev/null || die "kotak user add ($name)"
	"$bin" -c "$d/kotak.conf" 2>"$d/log" &
	pids+=($!)
	eval "pid_$name=$!; sport_$name=$sp; pport_$name=$pp"
	wait_listen "$pp" || die "kotak ($name) did not start: $(tail -n 3 "$d/log")"
}

# ---- 1b. the TLS-less binary works and offers no STARTTLS
kotak_start notls "$NOTLS" ""
notls_ehlo=$("$py" - "$pport_notls" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
f = s.makefile("rb")
f.readline()
s.sendall(b"EHLO bench.example.org\r\n")
kw = []
while True:
    l = f.readline().decode().strip()
    kw.append(l[4:])
    if l[3:4] != "-":
        break
s.sendall(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<bench@example.lan>\r\nQUIT\r\n")
codes = [f.readline()[:3].decode() for _ in range(3)]
print(("STARTTLS" in kw and "starttls-offered" or "no-starttls") + " " + ",".join(codes))
EOF
)

# ---- 2. memory with SESS idle sessions
mem() {	# mem PID -> "rss_kb pss_kb"
	awk '/^Rss:/{r=$2} /^Pss:/{p=$2} END{print r, p}' "/proc/$1/smaps_rollup"
}
hold_sessions() {	# hold_sessions PORT N tls|plain FIFO: opens N sessions, prints "ready", waits on stdin
	"$py" -c '
import socket, ssl, sys, time
port, n, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
held = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port), 10)
    if mode.startswith("tls"):
        s = ctx.wrap_socket(s, server_hostname="mail.example.lan")
    f = s.makefile("rb")
    assert f.readline().startswith(b"220"), "greeting"
    s.sendall(b"EHLO bench.example.org\r\n")
    while True:
        l = f.readline()
        if l[3:4] != b"-":
            break
    if mode == "tls-data":	# mid-DATA after one full 16 KiB record: the whole input buffer touched
        s.sendall(b"AUTH PLAIN AGJlbmNoAHNlY3JldA==\r\n")	# bench / secret
        s.sendall(b"MAIL FROM:<bench@example.lan>\r\nRCPT TO:<bench@example.lan>\r\nDATA\r\n")
        codes = [f.readline()[:3] for _ in range(4)]
        assert codes == [b"235", b"250", b"250", b"354"], codes
        s.sendall((b"x" * 78 + b"\r\n") * 204)
    held.append((s, f))
print("ready", flush=True)
sys.stdin.readline()
' "$@"
}
measure_mem() {	# measure_mem NAME PORT MODE -> prints "rss pss"
	local pid=$1 port=$2 mode=$3 fifo=$tmp/fifo.$$ line
	rm -f "$fifo"
	mkfifo "$fifo"
	hold_sessions "$port" "$SESS" "$mode" < "$fifo" > "$tmp/hold.out" 2>&1 &
	local hp=$!
	exec 8>"$fifo"
	for line in $(seq 300); do
		grep -q ready "$tmp/hold.out" 2>/dev/null && break
		kill -0 $hp 2>/dev/null || break
		sleep 0.1
	done
	grep -q ready "$tmp/hold.out" || { exec 8>&-; die "holding $SESS $mode sessions failed: $(cat "$tmp/hold.out")"; }
	sleep 0.5
	mem "$pid"
	echo >&8
	exec 8>&-
	wait $hp 2>/dev/null
	rm -f "$fifo"
	sleep 0.5
}
kotak_start ec "$KOTAK" ec
kotak_start rsa "$KOTAK" rsa
sleep 0.3
mem_idle=$(mem "$pid_ec")
mem_plain=$(measure_mem "$pid_ec" "$pport_ec" plain)
mem_tls=$(measure_mem "$pid_ec" "$sport_ec" tls)
mem_tls2=$(measure_mem "$pid_ec" "$sport_ec" tls)	# slots touched again: no growth expected
mem_data=$(measure_mem "$pid_ec" "$sport_ec" tls-data)
mem_rsa_idle=$(mem "$pid_rsa")
mem_rsa=$(measure_mem "$pid_rsa" "$sport_rsa" tls)

# ---- 3. Postfix, private instance, smtps on two ports (RSA and EC certs)
pf_rsa=$(free_port)
pf_ec=$(free_port)
pf_smtp=$(free_port)
mkdir -p "$P/etc" "$P/spool" "$P/data"
chmod 755 "$P" "$P/spool"
chown postfix "$P/data"
cp /etc/postfix/master.cf /etc/postfix/dynamicmaps.cf /etc/postfix/postfix-files "$P/etc/"
cp -r /etc/postfix/dynamicmaps.cf.d /etc/postfix/postfix-files.d "$P/etc/" 2>/dev/null
cat > "$P/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $P/spool
data_directory = $P/data
maillog_file = $P/postfix.log
maillog_file_prefixes = $P
myhostname = mail.example.lan
mydestination = example.lan
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
default_transport = error
relay_transport = error
disable_dns_lookups = yes
smtpd_peername_lookup = no
alias_maps =
alias_database =
default_process_limit = 150
message_size_limit = $(( (BULK_MB + 8) * 1048576 ))
local_transport = discard:
smtpd_tls_security_level = may
smtpd_tls_cert_file = $tmp/rsa.pem
smtpd_tls_key_file = $tmp/rsa.key
EOF
sed -i "s/^smtp      inet.*/127.0.0.1:$pf_smtp inet n - n - - smtpd/" "$P/etc/master.cf"
cat >> "$P/etc/master.cf" <<EOF
127.0.0.1:$pf_rsa inet n - n - - smtpd -o smtpd_tls_wrappermode=yes
127.0.0.1:$pf_ec inet n - n - - smtpd -o smtpd_tls_wrappermode=yes -o smtpd_tls_cert_file=$tmp/ec.pem -o smtpd_tls_key_file=$tmp/ec.key
EOF
postfix -c "$P/etc" start >/dev/null 2>&1 || { failed=1; die "private postfix did not start: $(tail -n 3 "$P/postfix.log" 2>/dev/null)"; }
wait_listen "$pf_ec" || { failed=1; die "postfix does not listen"; }
pf_version=$(postconf -c "$P/etc" -h mail_version 2>/dev/null)
ossl_version=$(openssl version | awk '{print $2}')

# s_time: "N connections in T real seconds" -> conn/s
stime() {	# stime PORT SUITE SECS
	openssl s_time -connect "127.0.0.1:$1" -new -tls1_2 -cipher "$2" -time "$3" 2>/dev/null |
		awk '/connections in .* real seconds/ {printf "%.1f\n", $1 / $4; found=1} END {if (!found) print "0"}'
}
stime2() {	# two clients at once: sum of their rates
	local a b
	stime "$1" "$2" "$3" > "$tmp/st.a" &
	local p1=$!
	stime "$1" "$2" "$3" > "$tmp/st.b" &
	local p2=$!
	wait $p1 $p2
	a=$(cat "$tmp/st.a")
	b=$(cat "$tmp/st.b")
	awk -v a="$a" -v b="$b" 'BEGIN {printf "%.1f\n", a + b}'
}
check_suite() {	# the suite really negotiated
	echo QUIT | openssl s_client -connect "127.0.0.1:$1" -tls1_2 -cipher "$2" 2>/dev/null |
		grep -q "Cipher is $2"
}
RSA_SUITE=ECDHE-RSA-AES128-GCM-SHA256
EC_SUITE=ECDHE-ECDSA-AES128-GCM-SHA256
for pair in "$sport_rsa $RSA_SUITE kotak-rsa" "$sport_ec $EC_SUITE kotak-ec" \
	"$pf_rsa $RSA_SUITE postfix-rsa" "$pf_ec $EC_SUITE postfix-ec"; do
	set -- $pair
	check_suite "$1" "$2" || { failed=1; die "$3: suite $2 not negotiated on port $1"; }
	stime "$1" "$2" 1 >/dev/null	# warm up (Postfix: smtpd processes forked)
done
say "handshake runs: ${SECS}s each, 8 runs"
cpu_of() { awk '{print $14 + $15}' "/proc/$1/stat"; }	# clock ticks
c0=$(cpu_of "$pid_rsa")
k_rsa1=$(stime "$sport_rsa" $RSA_SUITE "$SECS")
c1=$(cpu_of "$pid_rsa")
k_rsa_ms=$(awk -v c="$((c1 - c0))" -v t="$(getconf CLK_TCK)" -v r="$k_rsa1" -v s="$SECS" \
	'BEGIN {if (r > 0) printf "%.2f", c / t * 1000 / (r * s); else print "n/a"}')
pf_cpu() {	# master + its children (live smtpd) + reaped children, clock ticks
	local m
	m=$(tr -d ' ' < "$P/spool/pid/master.pid")
	{
		awk '{print $14 + $15 + $16 + $17}' "/proc/$m/stat"
		for c in $(pgrep -P "$m"); do awk '{print $14 + $15}' "/proc/$c/stat" 2>/dev/null; done
	} | awk '{s += $1} END {print s}'
}
c0=$(pf_cpu)
p_rsa1=$(stime "$pf_rsa" $RSA_SUITE "$SECS")
c1=$(pf_cpu)
p_rsa_ms=$(awk -v c="$((c1 - c0))" -v t="$(getconf CLK_TCK)" -v r="$p_rsa1" -v s="$SECS" \
	'BEGIN {if (r > 0) printf "%.2f", c / t * 1000 / (r * s); else print "n/a"}')
c0=$(cpu_of "$pid_ec")
k_ec1=$(stime "$sport_ec" $EC_SUITE "$SECS")
c1=$(cpu_of "$pid_ec")
k_ec_ms=$(awk -v c="$((c1 - c0))" -v t="$(getconf CLK_TCK)" -v r="$k_ec1" -v s="$SECS" \
	'BEGIN {if (r > 0) printf "%.2f", c / t * 1000 / (r * s); else print "n/a"}')
c0=$(pf_cpu)
p_ec1=$(stime "$pf_ec" $EC_SUITE "$SECS")
c1=$(pf_cpu)
p_ec_ms=$(awk -v c="$((c1 - c0))" -v t="$(getconf CLK_TCK)" -v r="$p_ec1" -v s="$SECS" \
	'BEGIN {if (r > 0) printf "%.2f", c / t * 1000 / (r * s); else print "n/a"}')
k_rsa2=$(stime2 "$sport_rsa" $RSA_SUITE "$SECS")
p_rsa2=$(stime2 "$pf_rsa" $RSA_SUITE "$SECS")
k_ec2=$(stime2 "$sport_ec" $EC_SUITE "$SECS")
p_ec2=$(stime2 "$pf_ec" $EC_SUITE "$SECS")

# ---- 4. bulk: one message over smtps, the suite pinned; prints seconds
bulk() {	# bulk PORT SUITE RCPT
	"$py" - "$@" "$BULK_MB" <<'EOF'
import socket, ssl, sys, time
port, suite, rcpt, mb = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.maximum_version = ssl.TLSVersion.TLSv1_2
ctx.set_ciphers(suite)
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), 60), server_hostname="mail.example.lan")
assert s.cipher()[0] == suite, s.cipher()
f = s.makefile("rb")
def reply():
    while True:
        l = f.readline()
        if l[3:4] != b"-":
            return l[:3]
assert reply() == b"220"
s.sendall(b"EHLO bench.example.org\r\n")
ehlo = []
while True:
    l = f.readline()
    ehlo.append(l[4:].upper())
    if l[3:4] != b"-":
        break
sender = b"a@example.org"
if any(k.startswith(b"AUTH") for k in ehlo):	# kotak before 2026-11-28 wanted a login on smtps
    s.sendall(b"AUTH PLAIN AGJlbmNoAHNlY3JldA==\r\n")	# bench / secret
    assert reply() == b"235"
    sender = b"bench@example.lan"
for c in (b"MAIL FROM:<" + sender + b">", b"RCPT TO:<" + rcpt.encode() + b">"):
    s.sendall(c + b"\r\n")
    r = reply()
    assert r == b"250", (c, r)
s.sendall(b"DATA\r\n")
assert reply() == b"354"
block = b"Subject: bulk\r\n\r\n" + (b"0123456789" * 7 + b"abcdef\r\n") * 840
t0 = time.monotonic()
for i in range(mb * 1048576 // len(block)):
    s.sendall(block)
s.sendall(b".\r\n")
r = reply()
t = time.monotonic() - t0
assert r == b"250", r
s.sendall(b"QUIT\r\n")
print("%.3f" % t)
EOF
}
bulk3() {	# bulk3 PORT SUITE RCPT CPUCMD -> "MiB/s ms-cpu-per-MiB" (medians of 3)
	local i t c0 c1
	for i in 1 2 3; do
		c0=$($4)
		t=$(bulk "$1" "$2" "$3") || { echo "0 n/a"; return; }
		c1=$($4)
		echo "$t $((c1 - c0))"
	done | sort -n | sed -n 2p | awk -v mb="$BULK_MB" -v hz="$(getconf CLK_TCK)" \
		'{printf "%.1f %.1f\n", mb / $1, $2 / hz * 1000 / mb}'
}
AES_SUITE=ECDHE-ECDSA-AES128-GCM-SHA256
CHA_SUITE=ECDHE-ECDSA-CHACHA20-POLY1305
say "bulk runs: $BULK_MB MiB, 3 per suite and server"
k_cpu_ec() { cpu_of "$pid_ec"; }
b_k_aes=$(bulk3 "$sport_ec" $AES_SUITE bench@example.lan k_cpu_ec)
b_p_aes=$(bulk3 "$pf_ec" $AES_SUITE root@example.lan pf_cpu)
b_k_cha=$(bulk3 "$sport_ec" $CHA_SUITE bench@example.lan k_cpu_ec)
b_p_cha=$(bulk3 "$pf_ec" $CHA_SUITE root@example.lan pf_cpu)
kill -0 "$pid_ec" && kill -0 "$pid_rsa" || { failed=1; say "FAIL: a kotak died during the runs"; }

# ------------------------------------------------------------------ report
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "n/a"}'; }
kib() { awk -v a="$1" 'BEGIN {printf "%.0f", a}'; }
per() { awk -v a="$1" -v b="$2" -v n="$SESS" 'BEGIN {printf "%.1f", (a - b) / n}'; }
set -- $mem_idle; ri=$1 pi=$2
set -- $mem_plain; rp=$1 pp=$2
set -- $mem_tls; rt=$1 pt=$2
set -- $mem_tls2; rt2=$1 pt2=$2
set -- $mem_rsa; rr=$1 prr=$2
set -- $mem_rsa_idle; rri=$1 prri=$2
set -- $mem_data; rd=$1 pd=$2
s_on=$(sed -n 's/^kotak: \([0-9]*\) bytes.*/\1/p' "$tmp/size-tls.txt")
s_off=$(sed -n 's/^kotak: \([0-9]*\) bytes.*/\1/p' "$tmp/size-notls.txt")
cat <<EOF

== kotak TLS benchmark ($(uname -m), $(nproc) CPUs; OpenSSL $ossl_version clients; Postfix $pf_version)
make size
  TLS on : $(cat "$tmp/size-tls.txt")
           $(cat "$tmp/features-tls.txt")
  TLS off: $(cat "$tmp/size-notls.txt")
           $(cat "$tmp/features-notls.txt")
  TLS adds $((s_on - s_off)) bytes ($(( (s_on - s_off) / 1024 )) KiB)
  TLS-off binary: EHLO $notls_ehlo (MAIL,RCPT,QUIT codes)

memory of kotak (KiB; smaps_rollup; EC P-256 cert unless said)
                                      RSS     PSS
  idle                              $(printf "%6s  %6s" "$ri" "$pi")
  $SESS idle plain sessions           $(printf "%6s  %6s" "$rp" "$pp")   (+$(per "$rp" "$ri") KiB RSS per session)
  $SESS idle TLS sessions (smtps)     $(printf "%6s  %6s" "$rt" "$pt")   (+$(per "$rt" "$ri") KiB RSS per session)
  $SESS TLS sessions again            $(printf "%6s  %6s" "$rt2" "$pt2")
  $SESS TLS sessions mid-DATA, after
    one 16 KiB record each          $(printf "%6s  %6s" "$rd" "$pd")   (+$(per "$rd" "$ri") KiB RSS per session over idle)
  RSA 2048 instance: idle           $(printf "%6s  %6s" "$rri" "$prri")
  RSA 2048 instance: $SESS TLS        $(printf "%6s  %6s" "$rr" "$prr")   (+$(per "$rr" "$rri") KiB RSS per session)

full TLS 1.2 handshakes per second (openssl s_time -new, implicit TLS, ${SECS}s per run)
                                          kotak   Postfix  kotak/Postfix
  ECDHE-RSA   2048  (1 client)          $(printf "%7s  %8s  %6s" "$k_rsa1" "$p_rsa1" "$(ratio "$k_rsa1" "$p_rsa1")")
  ECDHE-ECDSA P-256 (1 client)          $(printf "%7s  %8s  %6s" "$k_ec1" "$p_ec1" "$(ratio "$k_ec1" "$p_ec1")")
  ECDHE-RSA   2048  (2 clients)         $(printf "%7s  %8s  %6s" "$k_rsa2" "$p_rsa2" "$(ratio "$k_rsa2" "$p_rsa2")")
  ECDHE-ECDSA P-256 (2 clients)         $(printf "%7s  %8s  %6s" "$k_ec2" "$p_ec2" "$(ratio "$k_ec2" "$p_ec2")")
  (suites pinned: $RSA_SUITE, $EC_SUITE; the s_time client runs on the same CPUs)
  server CPU per handshake (1 client), ms:  kotak  Postfix (master + smtpd processes)
    ECDHE-RSA   2048                    $(printf "%7s  %8s  %6s" "$k_rsa_ms" "$p_rsa_ms" "$(ratio "$p_rsa_ms" "$k_rsa_ms")") (Postfix/kotak)
    ECDHE-ECDSA P-256                   $(printf "%7s  %8s  %6s" "$k_ec_ms" "$p_ec_ms" "$(ratio "$p_ec_ms" "$k_ec_ms")")

bulk TLS: one $BULK_MB MiB message over smtps, DATA to 250 (median of 3)
                                          kotak   Postfix  kotak/Postfix
  AES128-GCM        MiB/s               $(set -- $b_k_aes; k=$1; set -- $b_p_aes; printf "%7s  %8s  %6s" "$k" "$1" "$(ratio "$k" "$1")")
  ChaCha20-Poly1305 MiB/s               $(set -- $b_k_cha; k=$1; set -- $b_p_cha; printf "%7s  %8s  %6s" "$k" "$1" "$(ratio "$k" "$1")")
  server CPU ms per MiB: AES128-GCM     $(set -- $b_k_aes; k=$2; set -- $b_p_aes; printf "%7s  %8s" "$k" "$2")
                         ChaCha20       $(set -- $b_k_cha; k=$2; set -- $b_p_cha; printf "%7s  %8s" "$k" "$2")
  (kotak: BearSSL's portable constant-time AES and ChaCha20, no assembly; Postfix: OpenSSL with AES-NI)
EOF
exit $failed

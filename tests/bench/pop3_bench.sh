#!/usr/bin/env bash
# tests/bench/pop3_bench.sh: kotak's POP3 against Dovecot's pop3d, side by side.
#
#   tests/bench/pop3_bench.sh [--keep]
#
# A benchmark, not a test: `make test` does not run it.  Run as root on
# Debian 12.  It installs dovecot-pop3d when missing, makes user bench1
# (PEERS.md), generates two mailboxes with a seeded generator (the same
# bytes every run):
#   mbox5000: 5,000 messages, ~19.7 MB: text/plain, multipart/alternative,
#             multipart/mixed with a base64 attachment, some large ones, and
#             body lines beginning with "From " (stored >From, as Postfix does);
#   big100m:  ~100 MB of larger messages;
# and measures for each server, on the same file on this machine:
#   1. LOGIN, STAT, RETR every message, QUIT on mbox5000 (Python poplib),
#      cold (kotak: no .INBOX.idx; Dovecot: index dir removed and the mbox
#      restored) and warm (the next session);
#   2. LOGIN+STAT+QUIT on big100m, the first and the second time;
#   3. disk bytes written by each of those sessions: kotak's own
#      /proc/PID/io write_bytes (one process), and for both the
#      sectors-written counter of the block device holding the data (sync
#      before and after; Dovecot forks a process per session, so the device
#      is the only fair meter for it).
# Times are medians of ROUNDS runs (default 3); ratios are kotak/Dovecot
# (below 1: kotak faster).  Loopback only: kotak on 127.0.0.1:11210, Dovecot
# on 127.0.0.1:11110 with a private config and base_dir (PEERS.md).
# Environment: KOTAK (binary, default ./kotak), BENCH_DIR (default /var/tmp),
# ROUNDS, SEED.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
KOTAK=${KOTAK:-$root/kotak}
BENCH_DIR=${BENCH_DIR:-/var/tmp}
ROUNDS=${ROUNDS:-3}
SEED=${SEED:-4242}
keep=0
[ "${1:-}" = "--keep" ] && keep=1
py=/usr/bin/python3

say() { echo "pop3_bench: $*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root"
[ -x "$KOTAK" ] || (cd "$root" && make kotak >/dev/null) || die "no kotak binary"
"$KOTAK" -V | grep -q '+pop3' || die "$KOTAK lacks POP3"
# dovecot-imapd (make test installs it) brings the dovecot binary, not pop3
if ! command -v dovecot >/dev/null || [ ! -x /usr/lib/dovecot/pop3 ]; then
	say "installing dovecot-pop3d"
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q dovecot-pop3d >/dev/null ||
		die "apt-get install dovecot-pop3d failed"
fi
id bench1 >/dev/null 2>&1 || useradd -m -s /usr/sbin/nologin bench1

W=$(mktemp -d "$BENCH_DIR/pop3bench.XXXXXX")
DV=$W/dovecot
KD=$W/kotak
mkdir -p "$DV"/run "$DV"/state "$DV"/log "$DV"/index "$KD"/data/mail/bench1
chown bench1 "$DV"/index
kpid= dpid=
cleanup() {
	[ -n "$kpid" ] && kill "$kpid" 2>/dev/null
	[ -n "$dpid" ] && dovecot -c "$DV/dovecot.conf" stop 2>/dev/null
	: > /var/mail/bench1 2>/dev/null
	if [ $keep = 1 ]; then say "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT

# ---- the seeded generator
cat > "$W/gen.py" <<'EOF'
import random, sys, base64
def gen(path, n, seed, big):
    r = random.Random(seed)
    words = ("mail router flash kotak index message office lunch report budget meeting "
             "invoice delivery network printer coffee tomorrow please thanks").split()
    def para(k):
        return "\n".join(" ".join(r.choice(words) for _ in range(r.randint(6, 14))) for _ in range(k)) + "\n"
    with open(path, "wb") as f:
        total = 0
        i = 0
        while (n and i < n) or (not n and total < 100 * 1000 * 1000):
            kind = r.random()
            frm = "user%d@example.org" % r.randint(1, 300)
            day = 1 + i % 28
            hdr = ("From %s Thu Nov %2d 12:%02d:%02d 2026\nReturn-Path: <%s>\nFrom: <%s>\nTo: <bench1@bench.lan>\n"
                   "Subject: message %d\nDate: Thu, %d Nov 2026 12:00:00 +0000\nMessage-ID: <%d.%d@example.org>\n"
                   % (frm, day, i % 60, i % 59, frm, frm, i, day, seed, i))
            lines = r.randint(3, 40) * (4 if big else 1)
            if kind < 0.66:
                body = hdr + "Content-Type: text/plain; charset=utf-8\n\n" + para(lines)
            elif kind < 0.85:
                body = (hdr + 'MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary="b%d"\n\n--b%d\n'
                        'Content-Type: text/plain\n\n%s\n--b%d\nContent-Type: text/html\n\n<p>%s</p>\n--b%d--\n'
                        % (i, i, para(lines), i, para(lines), i))
            else:
                size = (r.randint(50000, 150000) if kind > 0.992 else r.randint(1500, 6000)) * (3 if big else 1)
                att = base64.encodebytes(r.randbytes(size)).decode()
                body = (hdr + 'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="m%d"\n\n--m%d\n'
                        'Content-Type: text/plain\n\n%s\n--m%d\nContent-Type: application/octet-stream\n'
                        'Content-Transfer-Encoding: base64\n\n%s--m%d--\n' % (i, i, para(5), i, att, i))
            if r.random() < 0.08:   # body lines that begin with "From ", quoted as mboxo writers do
                body += "\n>From the desk of %s\nregards\n>From here on\n" % frm
            b = body.encode() + b"\n"
            f.write(b)
            total += len(b)
            i += 1
    print(i, total)
gen(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "big")
EOF
say "generating mailboxes (seed $SEED)"
read -r n5 s5 < <($py "$W/gen.py" "$W/mbox5000" 5000 "$SEED" small)
read -r nb sb < <($py "$W/gen.py" "$W/big100m" 0 "$SEED" big)
say "mbox5000: $n5 messages, $s5 bytes; big100m: $nb messages, $sb bytes"

# ---- the client
cat > "$W/client.py" <<'EOF'
import poplib, sys, time
port, mode = int(sys.argv[1]), sys.argv[2]
t = time.monotonic()
p = poplib.POP3("127.0.0.1", port, timeout=600)
p.user("bench1"); p.pass_("benchpass")
n, size = p.stat()
got = 0
if mode == "all":
    for i in range(1, n + 1):
        got += p.retr(i)[2]
p.quit()
print("%.4f %d %d %d" % (time.monotonic() - t, n, size, got))
EOF

# ---- Dovecot (PEERS.md), private instance
cat > "$DV/dovecot.conf" <<EOF
instance_name = benchdovecot
base_dir = $DV/run
state_dir = $DV/state
log_path = $DV/log/dovecot.log
protocols = pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1000
mail_location = mbox:~/mail:INBOX=/var/mail/%u:INDEX=$DV/index/%u
mail_privileged_group = mail
pop3_uidl_format = %08Xu%08Xv
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $DV/users
}
userdb {
  driver = passwd-file
  args = username_format=%u $DV/users
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = 11110
  }
  inet_listener pop3s {
    port = 0
  }
}
protocol pop3 {
  mail_max_userip_connections = 200
}
EOF
echo "bench1:{PLAIN}benchpass:$(id -u bench1):$(id -g bench1)::/home/bench1::" > "$DV/users"
chmod 755 "$W"
dovecot -c "$DV/dovecot.conf" || die "dovecot did not start"
dpid=1

# ---- kotak
cat > "$KD/kotak.conf" <<EOF
config kotak 'main'
	option hostname 'bench.lan'
	list domain 'bench.lan'
	option data_dir '$KD/data'
	option users_file '$KD/users'
	list cleartext_auth_net '127.0.0.0/8'

config listen
	option proto 'pop3'
	option address '127.0.0.1'
	option port '11210'
EOF
echo benchpass | "$KOTAK" -c "$KD/kotak.conf" user add bench1 >/dev/null || die "kotak user add"
"$KOTAK" -c "$KD/kotak.conf" 2>"$KD/log" &
kpid=$!
sleep 0.5

dev=$(lsblk -no PKNAME "$(df --output=source "$W" | tail -1)" 2>/dev/null | head -1)
[ -n "$dev" ] || dev=$(basename "$(df --output=source "$W" | tail -1)")
sectors() { awk '{print $7}' "/sys/block/$dev/stat" 2>/dev/null || echo 0; }
kio() { awk '/^write_bytes/ {print $2}' "/proc/$kpid/io"; }
wait_port() { local i; for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return; sleep 0.05; done; }
wait_port 11110
wait_port 11210

# one measured session: prints "secs disk_bytes kotak_io_bytes"
session() {	# port mode
	local s0 s1 k0 k1 out
	sync; s0=$(sectors); k0=$(kio)
	out=$($py "$W/client.py" "$1" "$2") || die "client failed on port $1"
	sync; s1=$(sectors); k1=$(kio)
	echo "$(echo "$out" | cut -d' ' -f1) $(( (s1 - s0) * 512 )) $(( k1 - k0 )) $(echo "$out" | cut -d' ' -f2)"
}
prep_kotak() {	# mbox, cold?
	cp "$1" "$KD/data/mail/bench1/INBOX"
	rm -f "$KD"/data/mail/bench1/.INBOX.*
}
prep_dovecot() {
	cp "$1" /var/mail/bench1
	chown bench1:mail /var/mail/bench1; chmod 600 /var/mail/bench1
	rm -rf "$DV/index/bench1"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A R
for round in $(seq "$ROUNDS"); do
	for srv in kotak dovecot; do
		port=11210; [ $srv = dovecot ] && port=11110
		prep_$srv /dev/null
		R[$srv,login,$round]=$(session $port stat)
		prep_$srv "$W/mbox5000"
		R[$srv,cold,$round]=$(session $port all)
		R[$srv,warm,$round]=$(session $port all)
		prep_$srv "$W/big100m"
		R[$srv,open1,$round]=$(session $port stat)
		R[$srv,open2,$round]=$(session $port stat)
	done
	say "round $round done"
done

col() {	# srv what field: times are medians; bytes written the least of the rounds
	local r	# (other writers on the device can only add to its counter)
	for r in $(seq "$ROUNDS"); do echo "${R[$1,$2,$r]}" | cut -d' ' -f"$3"; done |
		if [ "$3" = 1 ]; then median; else sort -n | head -1; fi
}
printf "\nPOP3 on this machine (%s rounds, medians; seed %s)\n" "$ROUNDS" "$SEED"
printf "mbox5000: %s messages, %s bytes; big100m: %s messages, %s bytes\n\n" "$n5" "$s5" "$nb" "$sb"
printf "%-40s %12s %12s %8s\n" "workload" "kotak" "Dovecot" "ratio"
for w in "login:LOGIN+STAT+QUIT, empty mailbox (s)" "cold:LOGIN+STAT+RETR all+QUIT, cold (s)" "warm:LOGIN+STAT+RETR all+QUIT, warm (s)" \
	 "open1:100 MB mailbox, first open (s)" "open2:100 MB mailbox, second open (s)"; do
	key=${w%%:*}; label=${w#*:}
	k=$(col kotak "$key" 1); d=$(col dovecot "$key" 1)
	printf "%-40s %12s %12s %8s\n" "$label" "$k" "$d" "$(awk -v a="$k" -v b="$d" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}')"
done
# the login itself differs (kotak checks a SHA512-crypt hash, Dovecot's
# PEERS.md passdb is PLAIN): the mailbox work alone, login time subtracted
kl=$(col kotak login 1); dl=$(col dovecot login 1)
for w in "open1:100 MB first open, minus login (s)" "open2:100 MB second open, minus login (s)"; do
	key=${w%%:*}; label=${w#*:}
	k=$(awk -v a="$(col kotak "$key" 1)" -v b="$kl" 'BEGIN {printf "%.4f", a - b}')
	d=$(awk -v a="$(col dovecot "$key" 1)" -v b="$dl" 'BEGIN {printf "%.4f", a - b}')
	printf "%-40s %12s %12s %8s\n" "$label" "$k" "$d" "$(awk -v a="$k" -v b="$d" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}')"
done
printf "\ndisk bytes written (block device %s, sync around each session; kotak also /proc/PID/io)\n" "$dev"
printf "%-40s %12s %12s %12s\n" "session" "kotak dev" "kotak io" "Dovecot dev"
for w in "cold:5000-message session, cold" "warm:5000-message session, warm" \
	 "open1:100 MB first open" "open2:100 MB second open"; do
	key=${w%%:*}; label=${w#*:}
	printf "%-40s %12s %12s %12s\n" "$label" "$(col kotak "$key" 2)" "$(col kotak "$key" 3)" "$(col dovecot "$key" 2)"
done
printf "\nindex size: %s bytes for mbox5000 (%s%% of the mbox)\n" "$(
	prep_kotak "$W/mbox5000"; $py "$W/client.py" 11210 stat >/dev/null; stat -c %s "$KD/data/mail/bench1/.INBOX.idx")" \
	"$(awk -v i="$(stat -c %s "$KD/data/mail/bench1/.INBOX.idx")" -v m="$s5" 'BEGIN {printf "%.2f", 100 * i / m}')"
for r in $(seq "$ROUNDS"); do
	for s in kotak dovecot; do
		for w in login cold warm open1 open2; do echo "raw $s $w round $r: ${R[$s,$w,$r]}"; done
	done
done

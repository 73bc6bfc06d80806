#!/usr/bin/env bash
# tests/bench/imap_bench.sh: kotak's IMAP against Dovecot's imapd, side by side.
#
#   tests/bench/imap_bench.sh [--keep]
#
# A benchmark, not a test: `make test` does not run it.  Run as root on
# Debian 12 (installs dovecot-imapd when missing; user bench1 as PEERS.md,
# but its mail in a private directory: pop3_bench.sh may run meanwhile).
# A seeded generator (the same bytes every run, pop3_bench.sh's) makes
# mbox10k: 10,000 messages, ~40 MB; huge20m: one small message and one of
# ~20 MB (a base64 attachment); big100m: ~100 MB.  For each server, on the
# same file on this machine (kotak: an IMAP build, KOTAK=./kotak when it
# has +imap, else build-x86_64-imap/kotak):
#   1. LOGIN+SELECT INBOX+LOGOUT on mbox10k, cold (kotak: a fresh process,
#      no index; Dovecot: its index dir removed and the mbox restored) and
#      warm (again);
#   2. FETCH 1:* (FLAGS UID RFC822.SIZE ENVELOPE);
#   3. UID FETCH 1:* BODY.PEEK[] (every byte of the mailbox);
#   4. UID SEARCH HEADER Message-ID <one near the end>;
#   5. STORE 1 +FLAGS (\Seen), then STORE 1:* +FLAGS.SILENT (\Flagged)
#      (a flag on all 10,000), each its own session to LOGOUT;
#   6. UID FETCH 2 BODY.PEEK[] of the 20 MB message in huge20m;
#   7. bytes written to the block device by the first session (cold
#      SELECT), and by those of 5 (sync before and after; the least of the
#      rounds: other writers can only add);
#   8. memory with 50 sessions (SELECT INBOX each) and with 20 of them in
#      IDLE: kotak's PSS (one process) against the sum of the PSS of every
#      process of this Dovecot (master and its children: one imap a session);
#   9. kotak alone: the longest NOOP round trip on another session while a
#      SEARCH BODY reads big100m, and while the 20 MB FETCH of 6 streams
#      (the loop is never held: slices).
# Times are medians of ROUNDS runs (default 3), measured by a raw-socket
# Python client (the same for both: it reads what a server sends, no
# parsing), from the command to its tagged OK; ratios kotak/Dovecot (below
# 1: kotak faster or smaller).  Loopback only, free ports; every client is
# bounded by `timeout`.  Environment: KOTAK, BENCH_DIR (default /var/tmp),
# ROUNDS, SEED.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if [ -z "${KOTAK:-}" ]; then
	KOTAK=$root/kotak
	"$KOTAK" -V 2>/dev/null | grep -q '+imap' || KOTAK=$root/build-x86_64-imap/kotak
fi
BENCH_DIR=${BENCH_DIR:-/var/tmp}
ROUNDS=${ROUNDS:-3}
SEED=${SEED:-4242}
keep=0
[ "${1:-}" = "--keep" ] && keep=1
py=/usr/bin/python3

say() { echo "imap_bench: $*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root"
[ -x "$KOTAK" ] || (cd "$root" && make imap-builds >/dev/null) || die "no kotak binary"
"$KOTAK" -V | grep -q '+imap' || die "$KOTAK lacks IMAP (make imap-builds, or KOTAK=...)"
if ! command -v dovecot >/dev/null || [ ! -x /usr/lib/dovecot/imap ]; then
	say "installing dovecot-imapd"
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q dovecot-imapd >/dev/null ||
		die "apt-get install dovecot-imapd failed"
fi
id bench1 >/dev/null 2>&1 || useradd -m -s /usr/sbin/nologin bench1

W=$(mktemp -d "$BENCH_DIR/imapbench.XXXXXX")
chmod 755 "$W"
DV=$W/dovecot
KD=$W/kotak
DM=$W/dvmail		# Dovecot's mail: INBOX and folders, owned by bench1
mkdir -p "$DV"/run "$DV"/state "$DV"/log "$DV"/index "$KD"/data/mail "$DM"
chown bench1 "$DV"/index "$DM"
kpid= dpid=
cleanup() {
	[ -n "$kpid" ] && kill "$kpid" 2>/dev/null && wait "$kpid" 2>/dev/null
	[ -n "$dpid" ] && dovecot -c "$DV/dovecot.conf" stop </dev/null >/dev/null 2>&1
	if [ $keep = 1 ]; then say "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT

# ---- the seeded generator (pop3_bench.sh's), and the 20 MB message
sed -n '/^cat > "$W\/gen.py" <<.EOF.$/,/^EOF$/p' "$here/pop3_bench.sh" | sed '1d;$d' > "$W/gen.py"
[ -s "$W/gen.py" ] || die "no generator in pop3_bench.sh"
say "generating mailboxes (seed $SEED)"
read -r n10 s10 < <($py "$W/gen.py" "$W/mbox10k" 10000 "$SEED" small)
read -r nb sb < <($py "$W/gen.py" "$W/big100m" 0 "$SEED" big)
$py "$W/gen.py" "$W/huge20m" 1 "$SEED" small >/dev/null
$py - "$W/huge20m" "$SEED" <<'EOF'
import base64, random, sys
r = random.Random(int(sys.argv[2]))
att = base64.encodebytes(r.randbytes(15 * 1000 * 1000))
with open(sys.argv[1], "ab") as f:
    f.write(b"From user1@example.org Thu Nov 26 12:00:00 2026\nFrom: <user1@example.org>\n"
            b"To: <bench1@bench.lan>\nSubject: huge\nMessage-ID: <huge@example.org>\nMIME-Version: 1.0\n"
            b'Content-Type: multipart/mixed; boundary="h"\n\n--h\nContent-Type: text/plain\n\nthe video\n'
            b"--h\nContent-Type: video/mp4\nContent-Transfer-Encoding: base64\n\n" + att + b"--h--\n\n")
EOF
sh=$(stat -c %s "$W/huge20m")
say "mbox10k: $n10 messages, $s10 bytes; huge20m: 2 messages, $sh bytes; big100m: $nb messages, $sb bytes"

# ---- the client: raw sockets (imaplib is too slow to measure servers with)
cat > "$W/client.py" <<'EOF'
import socket, sys, time

class C:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), 300)
        self.n = 0
        self.buf = bytearray()
        self.read_until(b"\r\n")

    def read_until(self, end):
        """Up to and with end; the search starts where the last one stopped
        (a 40 MB answer is not scanned again for every piece read)."""
        at = 0
        while True:
            i = self.buf.find(end, at)
            if i >= 0:
                out = bytes(self.buf[:i + len(end)])
                del self.buf[:i + len(end)]
                return out
            at = max(0, len(self.buf) - len(end) + 1)
            d = self.s.recv(1 << 20)
            if not d:
                raise SystemExit("closed")
            self.buf += d

    def send(self, text):
        self.n += 1
        tag = b"b%d " % self.n
        self.s.sendall(tag + text.encode() + b"\r\n")
        return tag

    def done(self, tag, text=""):
        """The untagged bytes up to the tagged line, which must be OK
        (generated mail never holds CRLF + our tag)."""
        while len(self.buf) < len(tag):
            d = self.s.recv(1 << 20)
            if not d:
                raise SystemExit("closed")
            self.buf += d
        if self.buf.startswith(tag):
            got = b""
            del self.buf[:len(tag)]
        else:
            got = self.read_until(b"\r\n" + tag)
        line = self.read_until(b"\r\n")
        if not line.startswith(b"OK"):
            raise SystemExit("%s: %r" % (text, line))
        return got

    def cmd(self, text):
        return self.done(self.send(text), text)

def login(port):
    c = C(port)
    c.cmd("LOGIN bench1 benchpass")
    return c

def noops_while(port, a, tag):
    """NOOPs on another session until session a has its tagged line:
    (the longest round trip, their number, the time to a's tagged OK)."""
    b = login(port)
    b.cmd("EXAMINE INBOX")
    worst, n, t0 = 0.0, 0, time.monotonic()
    a.s.setblocking(False)
    while True:
        try:
            d = a.s.recv(1 << 20)
            if not d:
                raise SystemExit("closed")
            a.buf += d
        except BlockingIOError:
            pass
        if a.buf.find(b"\r\n" + tag, max(0, len(a.buf) - (1 << 21))) >= 0 and a.buf.endswith(b"\r\n"):
            break
        t1 = time.monotonic()
        b.cmd("NOOP")
        worst, n = max(worst, time.monotonic() - t1), n + 1
    return worst, n, time.monotonic() - t0

port, mode = int(sys.argv[1]), sys.argv[2]
t = time.monotonic()
if mode == "select":
    c = login(port)
    c.cmd("SELECT INBOX")
    c.cmd("LOGOUT")
elif mode in ("envelope", "bodies", "search", "seen", "store", "huge"):
    c = login(port)
    c.cmd("EXAMINE INBOX" if mode not in ("seen", "store") else "SELECT INBOX")
    t = time.monotonic()
    if mode == "envelope":
        n = len(c.cmd("FETCH 1:* (FLAGS UID RFC822.SIZE ENVELOPE)"))
    elif mode == "bodies":
        n = len(c.cmd("UID FETCH 1:* BODY.PEEK[]"))
    elif mode == "huge":
        n = len(c.cmd("UID FETCH 2 BODY.PEEK[]"))
        assert n > 20000000, n
    elif mode == "search":
        r = c.cmd("UID SEARCH HEADER Message-ID %s" % sys.argv[3])
        n = len(r.split(b"\r\n")[0].split()) - 2
        assert n == 1, r
    elif mode == "seen":
        n = len(c.cmd("STORE 1 +FLAGS (\\Seen)"))
    else:
        n = len(c.cmd("STORE 1:* +FLAGS.SILENT (\\Flagged)"))
    if mode in ("seen", "store"):
        c.cmd("LOGOUT")	# a server may write the change at the session's end: timed too
    print("%.4f %d" % (time.monotonic() - t, n))
    if mode not in ("seen", "store"):
        c.cmd("LOGOUT")
    sys.exit(0)
elif mode == "sessions":   # hold N sessions (SELECT INBOX; some IDLE) until stdin closes
    n, idle = int(sys.argv[3]), int(sys.argv[4])
    cs = []
    for i in range(n):
        c = login(port)
        c.cmd("SELECT INBOX")
        cs.append(c)
    for c in cs[:idle]:
        c.send("IDLE")
        if not c.read_until(b"\r\n").startswith(b"+"):
            raise SystemExit("IDLE refused")
    print("ready", flush=True)
    sys.stdin.read()
    sys.exit(0)
elif mode in ("stall", "stallfetch"):   # the longest NOOP round trip meanwhile
    a = login(port)
    a.cmd("EXAMINE INBOX")
    tag = a.send("SEARCH BODY nowhere-to-be-found" if mode == "stall" else "UID FETCH 2 BODY.PEEK[]")
    worst, n, secs = noops_while(port, a, tag)
    print("%.4f %d %.4f" % (worst, n, secs))
    sys.exit(0)
print("%.4f 0" % (time.monotonic() - t))
EOF
freeport() { $py -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
kport=$(freeport)
dport=$(freeport)
[ "$kport" != "$dport" ] || dport=$(freeport)

# ---- Dovecot (PEERS.md), private instance; its mail in $DM
cat > "$DV/dovecot.conf" <<EOF
instance_name = benchdovecotimap$dport
base_dir = $DV/run
state_dir = $DV/state
log_path = $DV/log/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1000
mail_location = mbox:$DM:INBOX=$DM/inbox:INDEX=$DV/index/%u
mail_privileged_group = mail
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $DV/users
}
userdb {
  driver = passwd-file
  args = username_format=%u $DV/users
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $dport
  }
  inet_listener imaps {
    port = 0
  }
}
protocol imap {
  mail_max_userip_connections = 200
}
EOF
echo "bench1:{PLAIN}benchpass:$(id -u bench1):$(id -g bench1)::/home/bench1::" > "$DV/users"
# no inherited pipes: the daemon keeps them (a caller's `| tee` would wait)
dovecot -c "$DV/dovecot.conf" </dev/null >"$DV/log/start.log" 2>&1 || die "dovecot did not start: $(cat "$DV/log/start.log")"
dpid=$(cat "$DV/run/master.pid")

# ---- kotak: restarted for each cold start
cat > "$KD/kotak.conf" <<EOF
config kotak 'main'
	option hostname 'bench.lan'
	list domain 'bench.lan'
	option data_dir '$KD/data'
	option users_file '$KD/users'
	option max_sessions '120'
	option max_sessions_per_ip '100'
	option dns_server '127.0.0.1:9'
	list cleartext_auth_net '127.0.0.0/8'

config listen
	option proto 'imap'
	option address '127.0.0.1'
	option port '$kport'
EOF
echo benchpass | "$KOTAK" -c "$KD/kotak.conf" user add bench1 >/dev/null || die "kotak user add"

wait_port() { local i; for i in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return; sleep 0.05; done; die "nothing on port $1"; }
kotak_stop() { [ -n "$kpid" ] && kill "$kpid" 2>/dev/null && wait "$kpid" 2>/dev/null; kpid=; }
kotak_start() {
	"$KOTAK" -c "$KD/kotak.conf" </dev/null >>"$KD/log" 2>&1 &
	kpid=$!
	wait_port "$kport"
}
wait_port "$dport"

dev=$(lsblk -no PKNAME "$(df --output=source "$W" | tail -1)" 2>/dev/null | head -1)
[ -n "$dev" ] || dev=$(basename "$(df --output=source "$W" | tail -1)")
sectors() { awk '{print $7}' "/sys/block/$dev/stat" 2>/dev/null || echo 0; }
kio() { awk '/^write_bytes/ {print $2}' "/proc/$kpid/io" 2>/dev/null || echo 0; }
client() { timeout 600 $py "$W/client.py" "$@"; }
# one measured session: "secs disk_bytes n kotak_io_bytes"
session() {	# port mode [arg]
	local s0 s1 k0 k1 out
	sync; s0=$(sectors); k0=$(kio)
	out=$(client "$@") || die "client failed: $*"
	sync; s1=$(sectors); k1=$(kio)
	echo "$(echo "$out" | cut -d' ' -f1) $(( (s1 - s0) * 512 )) $(echo "$out" | cut -d' ' -f2) $(( k1 - k0 ))"
}
prep_kotak() {	# a fresh process on a mailbox without index or folders
	kotak_stop
	rm -rf "$KD/data/mail/bench1"
	mkdir -p "$KD/data/mail/bench1"
	cp "$1" "$KD/data/mail/bench1/INBOX"
	kotak_start
}
prep_dovecot() {
	rm -rf "$DM"/* "$DM"/.[!.]* "$DV/index/bench1"
	cp "$1" "$DM/inbox"
	chown -R bench1 "$DM"; chmod 600 "$DM/inbox"
}
pss() {	# the summed PSS (KiB) of the processes given
	local p t=0
	for p in "$@"; do
		t=$(( t + $(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0) ))
	done
	echo $t
}
dovecot_pids() { echo "$dpid"; pgrep -P "$dpid"; }	# this Dovecot: its master and children
measure() { R[$1]=$(session "${@:2}") || die "client failed: ${*:2}"; }	# key port mode [arg]
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mid=$(( n10 - 3 ))

declare -A R
for round in $(seq "$ROUNDS"); do
	for srv in kotak dovecot; do
		port=$kport; [ $srv = dovecot ] && port=$dport
		prep_$srv "$W/mbox10k"
		measure $srv,cold,$round $port select
		measure $srv,warm,$round $port select
		measure $srv,env,$round $port envelope
		measure $srv,bodies,$round $port bodies
		measure $srv,search,$round $port search "<$SEED.$mid@example.org>"
		measure $srv,seen,$round $port seen
		measure $srv,store,$round $port store
		prep_$srv "$W/huge20m"
		session $port select >/dev/null || die "select"
		measure $srv,huge,$round $port huge
	done
	say "round $round done"
done

# memory: 50 sessions, then 50 with 20 of them in IDLE
mem() {	# srv port idle
	local fifo=$W/fifo.$1.$3 v cpid i
	rm -f "$fifo"; mkfifo "$fifo"
	timeout 600 $py "$W/client.py" "$2" sessions 50 "$3" < "$fifo" > "$W/ready.$1.$3" &
	cpid=$!
	exec 9> "$fifo"
	for i in $(seq 600); do grep -q ready "$W/ready.$1.$3" 2>/dev/null && break; sleep 0.1; done
	grep -q ready "$W/ready.$1.$3" || die "$1: 50 sessions did not come up"
	sleep 1
	if [ "$1" = kotak ]; then v=$(pss "$kpid"); else v=$(pss $(dovecot_pids | sort -u)); fi
	exec 9>&-
	wait $cpid
	echo "$v"
}
prep_kotak "$W/mbox10k"; prep_dovecot "$W/mbox10k"
{ session $kport select && session $dport select; } >/dev/null || die "select"
idle_k=$(pss "$kpid")
for srv in kotak dovecot; do
	port=$kport; [ $srv = dovecot ] && port=$dport
	R[$srv,mem50]=$(mem $srv $port 0) || die "$srv: 50 sessions"
	R[$srv,mem20idle]=$(mem $srv $port 20) || die "$srv: 20 in IDLE"
done
prep_kotak "$W/huge20m"
session $kport select >/dev/null || die "select"
stallfetch=$(client $kport stallfetch) || die "stallfetch"
prep_kotak "$W/big100m"
session $kport select >/dev/null || die "select"
stall=$(client $kport stall) || die "stall"
kotak_stop

col() {	# srv what field: times are medians; bytes written the least of the rounds
	local r
	for r in $(seq "$ROUNDS"); do echo "${R[$1,$2,$r]}" | cut -d' ' -f"$3"; done |
		if [ "$3" = 1 ]; then median; else sort -n | head -1; fi
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}'; }
printf "\nIMAP on this machine (%s rounds, medians; seed %s; %s; %s)\n" "$ROUNDS" "$SEED" \
	"$("$KOTAK" -V | head -1)" "$(dovecot --version | cut -d' ' -f1)"
printf "mbox10k: %s messages, %s bytes; huge20m: %s bytes; big100m: %s messages, %s bytes\n\n" \
	"$n10" "$s10" "$sh" "$nb" "$sb"
printf "%-52s %10s %10s %7s\n" "workload (s)" "kotak" "Dovecot" "ratio"
for w in "cold:LOGIN+SELECT+LOGOUT, 10,000 messages, cold" "warm:LOGIN+SELECT+LOGOUT, warm" \
	 "env:FETCH 1:* (FLAGS UID RFC822.SIZE ENVELOPE)" "bodies:UID FETCH 1:* BODY.PEEK[] (40 MB)" \
	 "search:UID SEARCH HEADER Message-ID x" "seen:STORE 1 +FLAGS (\\Seen) + LOGOUT" \
	 "store:STORE 1:* +FLAGS.SILENT (\\Flagged) + LOGOUT" "huge:UID FETCH of one 20 MB message"; do
	key=${w%%:*}; label=${w#*:}
	k=$(col kotak "$key" 1); d=$(col dovecot "$key" 1)
	printf "%-52s %10s %10s %7s\n" "$label" "$k" "$d" "$(ratio "$k" "$d")"
done
printf "\ndisk bytes written (block device %s, sync around each session; kotak also /proc/PID/io)\n" "$dev"
printf "%-52s %10s %10s %10s %7s\n" "session" "kotak dev" "kotak io" "Dovecot" "ratio"
for w in "cold:the first session (cold SELECT)" "warm:a second session (SELECT)" \
	 "bodies:a session that reads every message" "seen:a session that marks one message read" \
	 "store:a session that flags all 10,000"; do
	key=${w%%:*}; label=${w#*:}
	k=$(col kotak "$key" 2); d=$(col dovecot "$key" 2)
	printf "%-52s %10s %10s %10s %7s\n" "$label" "$k" "$(col kotak "$key" 4)" "$d" "$(ratio "$k" "$d")"
done
printf "\nmemory, PSS KiB (kotak: its one process, %s with one session done; Dovecot: master and children)\n" "$idle_k"
for w in "mem50:50 sessions with INBOX selected" "mem20idle:50 sessions, 20 of them in IDLE"; do
	key=${w%%:*}; label=${w#*:}
	printf "%-52s %10s %10s %7s\n" "$label" "${R[kotak,$key]}" "${R[dovecot,$key]}" \
		"$(ratio "${R[kotak,$key]}" "${R[dovecot,$key]}")"
done
set -- $stall
printf "\nkotak: longest NOOP round trip on another session while SEARCH BODY reads big100m: %s s (%s NOOPs; the search took %s s)\n" "$1" "$2" "$3"
set -- $stallfetch
printf "kotak: longest NOOP round trip on another session while the 20 MB FETCH streams: %s s (%s NOOPs; the FETCH took %s s)\n" "$1" "$2" "$3"
for r in $(seq "$ROUNDS"); do
	for s in kotak dovecot; do
		for w in cold warm env bodies search seen store huge; do echo "raw $s $w round $r: ${R[$s,$w,$r]}"; done
	done
done

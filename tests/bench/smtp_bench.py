#!/usr/bin/env python3
"""smtp_bench.py: measuring helpers for tests/bench/smtp_bench.sh (stdlib only).

    smtp_bench.py mem   PID [--tree]             RSS/PSS (kB) of PID, or of PID and its descendants
    smtp_bench.py cpu   PID [--tree]             CPU ticks used (utime+stime, + reaped children)
    smtp_bench.py io    PID [--tree]             write_bytes, cancelled_write_bytes (reaped children included)
    smtp_bench.py load  --mbox F --want N --pid PID [--tree] [--timeout S] -- CMD...
            runs CMD (smtp-source), then polls the mbox until it holds N messages;
            samples memory of PID (or its tree) meanwhile; prints key=value lines
    smtp_bench.py hold  --port P --n N --pid PID [--tree]
            opens N SMTP sessions to 127.0.0.1:P (greeting, EHLO), measures, QUITs
    smtp_bench.py count MBOX                     messages in MBOX ("From " lines)
    smtp_bench.py verify MBOX N                  Python mailbox: count, Message-Id duplicates
    smtp_bench.py report RESULTS                 prints the table from key=value lines

Everything talks to 127.0.0.1 only.
"""

import mailbox
import os
import socket
import subprocess
import sys
import time

HZ = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- /proc

def _stat_fields(pid):
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    return s[s.rindex(")") + 2:].split()  # fields from 3 (state) on


def tree(pid):
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            ppid = int(_stat_fields(int(d))[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    out, i = [pid], 0
    while i < len(out):
        out.extend(kids.get(out[i], []))
        i += 1
    return out


def pids_of(pid, whole_tree):
    return tree(pid) if whole_tree else [pid]


def mem(pids):
    """(rss_kb, pss_kb, nprocs) summed over pids (smaps_rollup)."""
    rss = pss = n = 0
    for p in pids:
        r = s = None
        try:
            with open("/proc/%d/smaps_rollup" % p) as f:
                for line in f:
                    if line.startswith("Rss:"):
                        r = int(line.split()[1])
                    elif line.startswith("Pss:"):
                        s = int(line.split()[1])
        except OSError:
            continue
        if r is None or s is None:
            continue
        rss += r
        pss += s
        n += 1
    return rss, pss, n


def cpu_ticks(pids):
    t = 0
    for p in pids:
        try:
            f = _stat_fields(p)
        except OSError:
            continue
        # utime stime cutime cstime = fields 14..17 (index 11..14 here)
        t += sum(int(x) for x in f[11:15])
    return t


def write_bytes(pids):
    """(write_bytes, cancelled_write_bytes) over pids; a parent's counts
    include those of its reaped children."""
    w = c = 0
    for p in pids:
        try:
            with open("/proc/%d/io" % p) as f:
                for line in f:
                    if line.startswith("write_bytes:"):
                        w += int(line.split()[1])
                    elif line.startswith("cancelled_write_bytes:"):
                        c += int(line.split()[1])
        except OSError:
            continue
    return w, c


def hwm_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


# ---------------------------------------------------------------- mbox

class MboxCounter:
    """Counts lines that start with "From " in a growing file, reading only new bytes."""

    def __init__(self, path):
        self.path, self.off, self.rest, self.n = path, 0, b"", 0

    def poll(self):
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return self.n
        try:
            size = os.fstat(fd).st_size
            if size < self.off:  # truncated under us: start over
                self.off, self.rest, self.n = 0, b"", 0
            while self.off < size:
                chunk = os.pread(fd, min(1 << 20, size - self.off), self.off)
                if not chunk:
                    break
                self.off += len(chunk)
                buf = self.rest + chunk
                cut = buf.rfind(b"\n") + 1
                lines, self.rest = buf[:cut], buf[cut:]
                if lines:
                    self.n += lines.startswith(b"From ") + lines.count(b"\nFrom ")
        finally:
            os.close(fd)
        return self.n


def out(**kv):
    for k, v in kv.items():
        print("%s=%s" % (k, v))
    sys.stdout.flush()


# ---------------------------------------------------------------- commands

def cmd_load(args):
    mbox = want = pid = None
    whole = False
    timeout, interval = 120.0, 0.1
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            cmd = args[i + 1:]
            break
        if a == "--tree":
            whole = True
            i += 1
            continue
        v = args[i + 1]
        if a == "--mbox":
            mbox = v
        elif a == "--want":
            want = int(v)
        elif a == "--pid":
            pid = int(v)
        elif a == "--timeout":
            timeout = float(v)
        elif a == "--interval":
            interval = float(v)
        i += 2
    counter = MboxCounter(mbox)
    base = counter.poll()
    samples = []
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t_acc = t_e2e = None
    next_sample = t0
    n = base
    last_n, last_change = base, 0.0
    stall_max = stall_at = 0.0
    stalls = 0      # pauses over 0.5 s in delivery while messages were missing
    stderr_tail = b""
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(p.stderr, selectors.EVENT_READ)
    while True:
        now = time.monotonic()
        if now - t0 > timeout:
            break
        if t_acc is None and p.poll() is not None:
            t_acc = now - t0
        n = counter.poll()
        if n != last_n:
            gap = (now - t0) - last_change
            if gap > 0.5:
                stalls += 1
            if gap > stall_max:
                stall_max, stall_at = gap, last_change
            last_n, last_change = n, now - t0
        if n - base >= want and t_e2e is None:
            t_e2e = now - t0
        if now >= next_sample:
            samples.append(mem(pids_of(pid, whole)))
            next_sample = now + interval
        if t_e2e is not None and t_acc is not None:
            break
        for key, _ in sel.select(0.01):
            d = os.read(key.fd, 4096)
            if d:
                stderr_tail = (stderr_tail + d)[-2000:]
            else:
                sel.unregister(key.fileobj)
    if p.poll() is None:
        p.kill()
        p.wait()
    try:
        stderr_tail += p.stderr.read()
    except Exception:
        pass
    pss = [s[1] for s in samples if s[2]]
    rss = [s[0] for s in samples if s[2]]
    nproc = [s[2] for s in samples]
    out(rc=p.returncode,
        accept_s="%.3f" % t_acc if t_acc is not None else "",
        e2e_s="%.3f" % t_e2e if t_e2e is not None else "",
        delivered=n - base,
        stall_max_s="%.2f" % stall_max,
        stall_at_s="%.2f" % stall_at,
        stalls=stalls,
        samples=len(samples),
        pss_peak_kb=max(pss) if pss else 0,
        pss_mean_kb=sum(pss) // len(pss) if pss else 0,
        rss_peak_kb=max(rss) if rss else 0,
        nproc_peak=max(nproc) if nproc else 0,
        stderr=stderr_tail.decode("utf-8", "replace").strip().replace("\n", " | ")[-300:])


def _read_reply(s, deadline):
    """Reads one complete SMTP reply; returns its text (or raises)."""
    buf = b""
    while True:
        lines = buf.split(b"\r\n")
        for ln in lines[:-1]:
            if len(ln) >= 4 and ln[3:4] == b" ":
                return buf.decode("latin-1")
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("reply timeout, got %r" % buf[:80])
        s.settimeout(left)
        d = s.recv(4096)
        if not d:
            raise ConnectionError("closed, got %r" % buf[:80])
        buf += d


def cmd_hold(args):
    port, n, pid, whole, settle = 25, 100, None, False, 1.0
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--tree":
            whole = True
            i += 1
            continue
        v = args[i + 1]
        if a == "--port":
            port = int(v)
        elif a == "--n":
            n = int(v)
        elif a == "--pid":
            pid = int(v)
        elif a == "--settle":
            settle = float(v)
        i += 2
    socks, errors = [], []
    t0 = time.monotonic()
    # connect all first (a server that forks per session greets in parallel)
    for k in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(10)
        try:
            s.connect(("127.0.0.1", port))
            socks.append(s)
        except OSError as e:
            errors.append("connect %d: %s" % (k, e))
            s.close()
    ok = []
    deadline = time.monotonic() + 60
    for k, s in enumerate(socks):
        try:
            g = _read_reply(s, deadline)
            if not g.startswith("220"):
                raise ConnectionError("greeting %r" % g.strip()[:80])
            s.sendall(b"EHLO bench.client\r\n")
            r = _read_reply(s, deadline)
            if not r.startswith("250"):
                raise ConnectionError("EHLO %r" % r.strip()[:80])
            ok.append(s)
        except (OSError, ConnectionError, TimeoutError) as e:
            errors.append("session %d: %s" % (k, e))
    t_open = time.monotonic() - t0
    time.sleep(settle)
    rss, pss, nproc = mem(pids_of(pid, whole))
    # a second look: a server that keeps growing would show here
    time.sleep(0.5)
    rss2, pss2, nproc2 = mem(pids_of(pid, whole))
    quit_ok = 0
    for s in ok:
        try:
            s.sendall(b"QUIT\r\n")
        except OSError:
            pass
    deadline = time.monotonic() + 20
    for s in ok:
        try:
            if _read_reply(s, deadline).startswith("221"):
                quit_ok += 1
        except (OSError, ConnectionError, TimeoutError):
            pass
        s.close()
    for s in socks:
        s.close()
    out(sessions_ok=len(ok), open_s="%.3f" % t_open,
        rss_kb=max(rss, rss2), pss_kb=max(pss, pss2), nproc=max(nproc, nproc2),
        quit_ok=quit_ok, errors=len(errors),
        first_error=(errors[0] if errors else "").replace("\n", " ")[:200])


def cmd_verify(path, want):
    mb = mailbox.mbox(path, create=False)
    ids, n, noid, sizes = {}, 0, 0, set()
    for m in mb:
        n += 1
        mid = m.get("Message-Id") or m.get("Message-ID")
        if mid is None:
            noid += 1
        else:
            ids[mid] = ids.get(mid, 0) + 1
        sizes.add(len(m.get_payload(decode=False) or ""))
    dups = sum(c - 1 for c in ids.values() if c > 1)
    out(parsed=n, want=want, msgid_unique=len(ids), msgid_dups=dups, no_msgid=noid,
        body_sizes=",".join(str(x) for x in sorted(sizes)[:5]))


# ---------------------------------------------------------------- report

def _num(r, k):
    """r[k] as a number; else the median of r[k.1], r[k.2], ... (the rounds)."""
    try:
        return float(r[k])
    except (KeyError, ValueError):
        pass
    v = _rounds(r, k)
    if not v:
        return None
    v.sort()
    m = len(v) // 2
    return v[m] if len(v) % 2 else (v[m - 1] + v[m]) / 2


def _rounds(r, k):
    v, i = [], 1
    while k + "." + str(i) in r:
        try:
            v.append(float(r[k + "." + str(i)]))
        except ValueError:
            pass
        i += 1
    return v


def cmd_report(path):
    r = {}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if "=" in line:
                k, v = line.split("=", 1)
                r[k] = v
    n = int(r.get("msgs", "2000"))

    def f(v, fmt):
        return "n/a" if v is None else fmt % v

    def ratio(a, b):
        return "n/a" if a is None or b is None or b == 0 else "%.2fx" % (a / b)

    def mib(kb):
        return None if kb is None else kb / 1024.0

    def rate(side, key):
        t = _num(r, side + "." + key)
        return None if not t else n / t

    def per_msg_kb(side, key):
        v = _num(r, side + "." + key)
        return None if v is None else v / n / 1000.0

    rows = []   # label, kotak, postfix, ratio, goal

    def row(label, k, p, fmt, goal="", rat=True):
        rows.append((label, f(k, fmt), f(p, fmt), ratio(k, p) if rat else "", goal))

    ke, pe = rate("kotak", "e2e_s"), rate("postfix", "e2e_s")
    goal_tp = ""
    if ke and pe:
        goal_tp = ">= 2x: %s" % ("met" if ke / pe >= 2 else "MISSED")
    row("throughput, end to end (msg/s)", ke, pe, "%.0f", goal_tp)
    row("  accepted by SMTP (msg/s)", rate("kotak", "accept_s"), rate("postfix", "accept_s"), "%.0f")
    row("  wall time to 2000 in mbox (s)", _num(r, "kotak.e2e_s"), _num(r, "postfix.e2e_s"), "%.2f")
    row("  longest pause in deliveries (s)", _num(r, "kotak.load_stall_max_s"),
        _num(r, "postfix.load_stall_max_s"), "%.2f", rat=False)
    row("  pauses over 0.5 s", _num(r, "kotak.load_stalls"), _num(r, "postfix.load_stalls"), "%.0f", rat=False)
    kc, pc = _num(r, "kotak.cpu_s"), _num(r, "postfix.cpu_s")
    row("  CPU used by the server (s)", kc, pc, "%.2f")
    row("memory idle, RSS (MiB)", mib(_num(r, "kotak.idle_rss_kb")), mib(_num(r, "postfix.idle_rss_kb")), "%.2f")
    row("memory idle, PSS (MiB)", mib(_num(r, "kotak.idle_pss_kb")), mib(_num(r, "postfix.idle_pss_kb")), "%.2f")
    row("memory under load, peak PSS (MiB)", mib(_num(r, "kotak.load_pss_peak_kb")),
        mib(_num(r, "postfix.load_pss_peak_kb")), "%.2f")
    row("  processes under load (peak)", _num(r, "kotak.load_nproc_peak"),
        _num(r, "postfix.load_nproc_peak"), "%.0f", rat=False)
    k100 = _num(r, "kotak.s100_rss_kb")
    goal_mem = "" if k100 is None else "< 1 MiB: %s" % ("met" if k100 < 1024 else "MISSED")
    row("memory, 100 sessions, RSS (MiB)", mib(k100), mib(_num(r, "postfix.s100_rss_kb")), "%.2f", goal_mem)
    row("memory, 100 sessions, PSS (MiB)", mib(_num(r, "kotak.s100_pss_kb")),
        mib(_num(r, "postfix.s100_pss_kb")), "%.2f")
    row("  sessions held (of 100)", _num(r, "kotak.s100_sessions_ok"),
        _num(r, "postfix.s100_sessions_ok"), "%.0f", rat=False)
    row("  processes with 100 sessions", _num(r, "kotak.s100_nproc"),
        _num(r, "postfix.s100_nproc"), "%.0f", rat=False)
    row("kotak peak RSS, whole run (VmHWM, MiB)", mib(_num(r, "kotak.hwm_kb")), None, "%.2f", rat=False)
    def min_per_msg_kb(side, key):
        # other writers can only add to a device counter: the least of the rounds is the best estimate
        v = _rounds(r, side + "." + key) or ([_num(r, side + "." + key)] if _num(r, side + "." + key) is not None else [])
        return min(v) / n / 1000.0 if v else None

    kd, pd = min_per_msg_kb("kotak", "dev_bytes"), min_per_msg_kb("postfix", "dev_bytes")
    goal_disk = "" if kd is None or pd is None or pd == 0 else \
        "<= 1/3: %s" % ("met" if kd / pd <= 1 / 3.0 else "MISSED")
    row("disk written per message, %s, least of rounds (KB)" % r.get("dev", "dev"), kd, pd, "%.1f", goal_disk)
    row("  the same, median of rounds (KB)", per_msg_kb("kotak", "dev_bytes"), per_msg_kb("postfix", "dev_bytes"),
        "%.1f")
    row("  write_bytes per message, /proc io (KB)", per_msg_kb("kotak", "io_bytes"),
        per_msg_kb("postfix", "io_bytes"), "%.1f")
    row("  of which cancelled (unlinked before writeback, KB)", per_msg_kb("kotak", "io_cancelled_bytes"),
        per_msg_kb("postfix", "io_cancelled_bytes"), "%.1f", rat=False)
    rows.append(("  other writers on %s, before / after (KB/s)" % r.get("dev", "dev"),
                 "%s / %s" % (f(_num(r, "bg_kbps.before"), "%.0f"), f(_num(r, "bg_kbps.after"), "%.0f")),
                 "", "", "3 s idle each"))

    w = [max(len(x[i]) for x in rows + [("metric", "kotak", "Postfix", "kotak/Postfix", "goal")])
         for i in range(5)]
    hdr = ("metric", "kotak", "Postfix", "kotak/Postfix", "goal")
    line = "%-*s  %*s  %*s  %*s  %s"
    print(line % (w[0], hdr[0], w[1], hdr[1], w[2], hdr[2], w[3], hdr[3], hdr[4]))
    print("-" * (sum(w) + 8 + 4))
    for x in rows:
        print(line % (w[0], x[0], w[1], x[1], w[2], x[2], w[3], x[3], x[4]))
    rounds = int(r.get("rounds", "1"))
    bg = [x for x in (_num(r, "bg_kbps.before"), _num(r, "bg_kbps.after")) if x is not None]
    if bg:
        bgr = sum(bg) / len(bg)
        est = []
        for side in ("kotak", "postfix"):
            t = _num(r, side + ".e2e_s")
            est.append("n/a" if t is None else "%.1f" % (bgr * (t + 1) / n))
        noisy = any(e != "n/a" and kd_pd and float(e) > 0.2 * kd_pd
                    for e, kd_pd in zip(est, (kd, pd)))
        print()
        print("other writers on the disk, at the idle rates measured: about %s KB/msg in a kotak round, %s in a "
              "Postfix round%s" % (est[0], est[1],
                                   " -- DISK FIGURES DISTURBED, run again on a quieter machine" if noisy else ""))
    print()
    print("figures above: medians of %d round(s) (memory: measured once); per round, kotak | Postfix:" % rounds)
    for i in range(1, rounds + 1):
        def g(side, key, scale, fmt):
            try:
                return fmt % (scale(float(r["%s.%s.%d" % (side, key, i)])))
            except (KeyError, ValueError, ZeroDivisionError):
                return "n/a"
        print("  round %d: %s msg/s, %s KB/msg on disk, %s s longest pause | %s msg/s, %s KB/msg, %s s" % (
            i, g("kotak", "e2e_s", lambda t: n / t, "%.0f"),
            g("kotak", "dev_bytes", lambda b: b / n / 1000.0, "%.1f"),
            g("kotak", "load_stall_max_s", lambda x: x, "%.2f"),
            g("postfix", "e2e_s", lambda t: n / t, "%.0f"),
            g("postfix", "dev_bytes", lambda b: b / n / 1000.0, "%.1f"),
            g("postfix", "load_stall_max_s", lambda x: x, "%.2f")))
    print()
    print("raw:")
    for k in sorted(r):
        print("  %s=%s" % (k, r[k]))


def main():
    a = sys.argv[1:]
    if not a:
        sys.exit(__doc__)
    c = a[0]
    if c == "mem":
        rss, pss, n = mem(pids_of(int(a[1]), "--tree" in a))
        out(rss_kb=rss, pss_kb=pss, nproc=n)
    elif c == "cpu":
        print(cpu_ticks(pids_of(int(a[1]), "--tree" in a)) / float(HZ))
    elif c == "io":
        print("%d %d" % write_bytes(pids_of(int(a[1]), "--tree" in a)))
    elif c == "hwm":
        print(hwm_kb(int(a[1])))
    elif c == "load":
        cmd_load(a[1:])
    elif c == "hold":
        cmd_hold(a[1:])
    elif c == "count":
        print(MboxCounter(a[1]).poll())
    elif c == "verify":
        cmd_verify(a[1], int(a[2]))
    elif c == "report":
        cmd_report(a[1])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()

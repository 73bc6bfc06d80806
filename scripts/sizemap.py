#!/usr/bin/env python3
"""scripts/sizemap.py [-v] MAP [MAP2]: where the bytes of a static kotak go.

Reads a GNU ld map file (-Wl,-Map=FILE, made by every cross build) and sums
the sizes of the input sections that end up in the file (everything
allocated but .bss/.sbss/.tbss) by where they came from: kotak's objects,
BearSSL, the C library, libgcc, crt files.  With a second map file prints
both side by side with the difference.  LTO output (ltrans objects) mixes
kotak's code with BearSSL's: it is one group.
"""
import re
import sys

GROUPS = ("kotak", "BearSSL", "LTO", "libc", "libgcc", "crt+linker")
LABEL = {"LTO": "kotak+BearSSL after LTO"}
NOBITS = re.compile(r"^\.(s|t)?bss\b|^COMMON$|^\.scommon$")


def group(path):
    p = path.split("(")[0]
    if "libbearssl.a" in p or "/bearssl/" in p:
        return "BearSSL"
    if p.endswith("libgcc.a"):
        return "libgcc"
    if p.endswith("libc.a"):
        return "libc"
    if re.search(r"/(crt1|crti|crtn|crtbegin\w*|crtend\w*|rcrt1|Scrt1)\.o$", p):
        return "crt+linker"
    if ".ltrans" in p or p.endswith(".ltrans.o"):
        return "LTO"
    if p.endswith(".o") or p.endswith("libkotak.a"):
        return "kotak"
    return "crt+linker"


def read(path):
    sums = dict.fromkeys(GROUPS, 0)
    members = {}
    out = None          # output section being read
    pending = None      # input section name waiting for its address line
    started = False
    sec = re.compile(r"^ (\S+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$")
    cont = re.compile(r"^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$")
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not started:
                started = line.startswith("Linker script and memory map")
                continue
            if line.startswith("/DISCARD/"):
                break
            m = re.match(r"^(\.\S+|COMMON)\s*(0x[0-9a-f]+)?", line)
            if m and not line.startswith(" "):
                out = m.group(1)
                pending = None
                continue
            if out is None or NOBITS.match(out) or not out.startswith(".") or \
               out in (".comment", ".pdr", ".gnu.attributes", ".mdebug.abi32") or \
               out.startswith(".debug") or out.startswith(".stab"):
                continue
            m = sec.match(line)
            if m:
                name, size, src = m.group(1), int(m.group(3), 16), m.group(4)
            else:
                m = cont.match(line)
                if m and pending:
                    name, size, src = pending, int(m.group(2), 16), m.group(3)
                else:
                    pending = line.strip() if re.match(r"^ \S+$", line) else None
                    continue
            pending = None
            if name.startswith("*") or src.startswith("load address") or NOBITS.match(name):
                continue
            if size == 0 or src.startswith("*") or "=" in src:
                continue
            g = group(src)
            sums[g] += size
            key = src.split("/")[-1]
            members[key] = members.get(key, 0) + size
    return sums, members


def main():
    args = [a for a in sys.argv[1:] if a != "-v"]
    if not 1 <= len(args) <= 2:
        sys.exit(__doc__)
    maps = [read(p) for p in args]
    total = [sum(s.values()) for s, _ in maps]
    for g in GROUPS:
        row = [s[g] for s, _ in maps]
        if not any(row):
            continue
        label = LABEL.get(g, g)
        if g == "LTO" and all(s["BearSSL"] for s, _ in maps):
            label = "kotak after LTO"  # BearSSL kept out of it (MIPS16 builds)
        line = "  %-24s" % label + "".join(" %9d %5.1f%%" % (v, 100.0 * v / t if t else 0)
                                      for v, t in zip(row, total))
        if len(row) == 2:
            line += " %+9d" % (row[1] - row[0])
        print(line)
    line = "  %-24s" % "all loaded sections" + "".join(" %9d %6s" % (t, "") for t in total)
    if len(total) == 2:
        line += " %+9d" % (total[1] - total[0])
    print(line)
    if "-v" in sys.argv:     # the largest input files/archive members
        for k, v in sorted(maps[-1][1].items(), key=lambda kv: -kv[1])[:40]:
            print("  %8d %s" % (v, k))


if __name__ == "__main__":
    main()

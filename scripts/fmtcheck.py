#!/usr/bin/env python3
"""scripts/fmtcheck.py [--list] [--libk] FILE.i|- ...: printf formats kotak's formatter handles.

kotak formats with its own small printf (src/libk.c), which knows only the
conversions kotak uses.  This check runs on every preprocessed source in the
build (make runs it after `cc -E`) and refuses, at compile time:
  - a conversion, flag or length the formatter does not implement;
  - a format that is not a string literal (or a ?: of literals), unless it is
    the format parameter of a function that itself takes a format;
  - sprintf, asprintf, syslog, sscanf and the other printf/scanf-family
    functions libk does not provide (each would link the libc's engine);
  - with --libk (the build has Kconfig LIBK): a call of a libc function
    libk replaces (fprintf, putc, malloc, opendir ...) in a source that
    does not include kotak.h (or libk.h): it would go to the libc's, with
    the libc's FILE where the rest of kotak passes libk's.
Format-taking functions are the printf family (libc's names and k_*) and
every function declared with __attribute__((format(printf, N, M))).
--list prints every conversion seen, with counts.  Exit 1 on a refusal.
"""
import re
import sys

# What src/libk.c's vformat implements (keep in step with it and with
# tests/unit/test_libk.c, which checks each against the libc's snprintf)
INT_CONVS = "diuxXo"
LENGTHS = ("", "l", "ll", "z")

BUILTIN = {  # name: index of the format argument (0-based)
    "printf": 0, "fprintf": 1, "dprintf": 1, "snprintf": 2,
    "vfprintf": 1, "vsnprintf": 2,
}
# printf-family functions libk does not provide: each would link the libc's
# whole printf engine back in
# what src/libk.h maps when Kconfig LIBK is on
MAPPED = set("""printf fprintf vfprintf snprintf vsnprintf dprintf fopen fdopen fclose fflush fgets
fgetc getc fileno ferror feof fputs fputc putc putchar puts fwrite fseek ftell malloc calloc realloc
free strdup opendir readdir closedir dirfd strtol strtoul strtoll strtoull atoi qsort getopt gmtime_r
strerror strstr setuid setgid setgroups if_nametoindex inet_ntop inet_pton statvfs""".split())
REFUSED = {"sprintf": "snprintf", "vsprintf": "vsnprintf", "vprintf": "vfprintf(stdout, ...)",
           "asprintf": "snprintf", "vasprintf": "vsnprintf", "vdprintf": "dprintf",
           "syslog": "log_info/log_warn", "vsyslog": "log_info/log_warn", "sscanf": "strtol",
           "scanf": "fgets", "fscanf": "fgets", "perror": "log_warn"}

TOKEN = re.compile(r'''
    (?P<str>(?:u8|[uUL])?"(?:[^"\\\n]|\\.)*")
  | (?P<chr>(?:u8|[uUL])?'(?:[^'\\\n]|\\.)*')
  | (?P<id>[A-Za-z_]\w*)
  | (?P<num>\.?\d[\w.]*(?:[eEpP][+-][\w.]*)*)
  | (?P<op>->|\+\+|--|<<=|>>=|<<|>>|<=|>=|==|!=|&&|\|\||[-+*/%&|^!=<>]=|\.\.\.|[^\s])
''', re.X)


def tokens(text):
    """(kind, value, file, line) for the preprocessed text, line markers followed."""
    out = []
    fname, lineno = "?", 1
    for raw in text.split("\n"):
        m = re.match(r'^#\s*(?:line\s+)?(\d+)\s+"([^"]*)"', raw)
        if m:
            lineno, fname = int(m.group(1)), m.group(2)
            continue
        if raw.startswith("#"):
            lineno += 1
            continue
        for t in TOKEN.finditer(raw):
            kind = t.lastgroup
            out.append((kind, t.group(kind), fname, lineno))
        lineno += 1
    return out


def unescape(lit):
    def rep(m):
        e = m.group(1)
        simple = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}
        if e in simple:
            return simple[e]
        if e[0] == "x":
            return chr(int(e[1:], 16) & 0xff)
        if e[0] in "01234567":
            return chr(int(e, 8) & 0xff)
        return e
    return re.sub(r'\\(x[0-9a-fA-F]+|[0-7]{1,3}|.)', rep, lit[lit.index('"') + 1:-1])


CONV = re.compile(r"%([-+ #0]*)(\*|\d+)?(?:\.(\*|\d+))?(hh|h|ll|l|j|z|t|L)?(.?)")


def conversions(fmt):
    """[(spec, error or None)] for the format string."""
    res = []
    for m in CONV.finditer(fmt):
        flags, width, prec, length, conv = m.groups()
        length = length or ""
        spec = m.group(0)
        err = None
        if not conv:
            err = "a lone % at the end"
        elif conv == "%":
            if spec != "%%":
                err = "%% takes no flag, width or length"
        elif conv in INT_CONVS:
            if any(f not in "-0" for f in flags):
                err = "flag '%s' is not implemented" % flags
            elif length not in LENGTHS:
                err = "length '%s' is not implemented" % length
        elif conv == "s":
            if any(f != "-" for f in flags) or length:
                err = "%s takes only '-', a width and a precision"
        elif conv == "c":
            if any(f != "-" for f in flags) or length or prec is not None:
                err = "%c takes only '-' and a width"
        else:
            err = "conversion %%%s is not implemented" % conv
        res.append((spec, err))
    return res


def literal_runs(arg):
    """The string literals a format argument can evaluate to: one run of
    adjacent literals, or the branches of (nested) ?: of such; None if the
    argument is anything else."""
    while len(arg) > 2 and arg[0][1] == "(" and arg[-1][1] == ")":
        arg = arg[1:-1]
    if arg and all(a[0] == "str" for a in arg):
        return ["".join(unescape(a[1]) for a in arg)]
    depth, q = 0, None
    for k, a in enumerate(arg):       # the first ? at depth 0 ...
        if a[1] in "([{":
            depth += 1
        elif a[1] in ")]}":
            depth -= 1
        elif a[1] == "?" and depth == 0:
            q = k
            break
    if q is None:
        return None
    depth, nest = 0, 0
    for k in range(q + 1, len(arg)):  # ... and its :
        v = arg[k][1]
        if v in "([{":
            depth += 1
        elif v in ")]}":
            depth -= 1
        elif depth == 0 and v == "?":
            nest += 1
        elif depth == 0 and v == ":":
            if nest:
                nest -= 1
                continue
            a, b = literal_runs(arg[q + 1:k]), literal_runs(arg[k + 1:])
            return a + b if a is not None and b is not None else None
    return None


def split_args(toks, i):
    """toks[i] is '(': ([argument token lists], index after the matching ')')."""
    depth, args, cur = 0, [], []
    j = i
    while j < len(toks):
        v = toks[j][1]
        if toks[j][0] == "op" and v in "([{":
            depth += 1
            if depth > 1:
                cur.append(toks[j])
        elif toks[j][0] == "op" and v in ")]}":
            depth -= 1
            if depth == 0:
                args.append(cur)
                return args, j + 1
            cur.append(toks[j])
        elif toks[j][0] == "op" and v == "," and depth == 1:
            args.append(cur)
            cur = []
        else:
            cur.append(toks[j])
        j += 1
    return args, j


def format_funcs(toks):
    """Functions declared with format(printf, N, M): name -> N-1."""
    funcs = dict(BUILTIN)
    funcs.update({"k_" + k: v for k, v in BUILTIN.items()})
    for i, t in enumerate(toks):
        if t[1] not in ("format", "__format__"):
            continue
        # format ( printf , N , M )
        w = [x[1] for x in toks[i:i + 8]]
        if len(w) < 8 or w[1] != "(" or w[2] not in ("printf", "__printf__", "gnu_printf",
                                                     "__gnu_printf__") or w[3] != ",":
            continue
        n = int(w[4], 0) - 1
        # the declarator: the last NAME ( at depth 0 of this declaration
        j, depth, name = i, 0, None
        while j > 0:
            j -= 1
            v = toks[j][1]
            if toks[j][0] == "op" and v in ";{}" and depth == 0:
                break
            if v == ")":
                depth += 1
            elif v == "(":
                depth -= 1
                if depth < 0:
                    depth = 0
                if depth == 0 and toks[j - 1][0] == "id" and toks[j - 1][1] not in (
                        "__attribute__", "__attribute", "format", "__format__", "noreturn"):
                    name = toks[j - 1][1]
        if name is None:  # attribute before the declarator: the next NAME (
            j = i
            while j + 1 < len(toks) and toks[j][1] not in (";", "{"):
                if toks[j][0] == "id" and toks[j + 1][1] == "(" and toks[j][1] not in (
                        "__attribute__", "__attribute", "format", "__format__"):
                    name = toks[j][1]
                j += 1
        if name:
            funcs[name] = n
    return funcs


def enclosing(toks, i):
    """Name of the function definition around toks[i] (or None)."""
    depth = 0
    j = i
    while j > 0:
        j -= 1
        v = toks[j][1]
        if v == "}":
            depth += 1
        elif v == "{":
            if depth == 0:
                # walk back over the parameter list to the name
                k = j - 1
                while k > 0 and toks[k][1] != ")":
                    if toks[k][1] in (";", "}", "="):
                        return None
                    k -= 1
                d = 0
                while k > 0:
                    if toks[k][1] == ")":
                        d += 1
                    elif toks[k][1] == "(":
                        d -= 1
                        if d == 0:
                            return toks[k - 1][1] if toks[k - 1][0] == "id" else None
                    k -= 1
                return None
            depth -= 1
    return None


def check(path, seen, libk=False):
    text = sys.stdin.read() if path == "-" else open(path, errors="replace").read()
    toks = tokens(text)
    funcs = format_funcs(toks)
    errors = []
    if libk and not any(t[1] == "k_libk_names_mapped" for t in toks):
        for i, t in enumerate(toks[:-1]):
            if t[0] == "id" and t[1] in MAPPED and toks[i + 1][1] == "(" and \
                    (not i or (toks[i - 1][0] != "id" or toks[i - 1][1] == "return") and
                     toks[i - 1][1] not in ("*", ".", "->")):
                errors.append("%s:%d: %s() goes to the libc's, not src/libk.c's: this source does "
                              "not include kotak.h (or libk.h) first" % (t[2], t[3], t[1]))
                break
    for i, t in enumerate(toks[:-1]):
        if t[0] != "id" or toks[i + 1][1] != "(" or (t[1] not in funcs and t[1] not in REFUSED):
            continue
        prev = toks[i - 1] if i else ("op", ";", "", 0)
        if (prev[0] == "id" and prev[1] not in ("return", "else", "do", "case")) or \
                prev[1] in ("*", ".", "->"):
            continue  # a declaration (int printf(...)) or a member
        if t[1] in REFUSED:
            errors.append("%s:%d: %s() is not in src/libk.c (it would bring the libc's printf or "
                          "scanf engine back): use %s" % (t[2], t[3], t[1], REFUSED[t[1]]))
            continue
        args, _ = split_args(toks, i + 1)
        n = funcs[t[1]]
        if n >= len(args):
            continue
        arg = args[n]
        where = "%s:%d" % (t[2], t[3])
        if arg and len(arg) == 1 and arg[0][0] == "id":
            if enclosing(toks, i) in funcs:
                continue  # passed through from a function that takes a format
            errors.append("%s: %s: the format '%s' is not a string literal (if it is the format "
                          "parameter of the function around, declare that function with "
                          "__attribute__((format(printf, N, M))))" % (where, t[1], arg[0][1]))
            continue
        lits = literal_runs(arg)
        if lits is None:
            errors.append("%s: %s: the format is not a string literal" % (where, t[1]))
            continue
        for lit in lits:
            for spec, err in conversions(lit):
                seen[spec] = seen.get(spec, 0) + 1
                if err:
                    errors.append("%s: %s(\"%s\"): %s (src/libk.c formats only what kotak uses)"
                                  % (where, t[1], lit.replace("\n", "\\n"), err))
    return errors


def main():
    args = sys.argv[1:]
    listing = "--list" in args
    libk = "--libk" in args
    args = [a for a in args if a not in ("--list", "--libk")]
    if not args:
        sys.exit(__doc__)
    seen, errors = {}, []
    for p in args:
        errors += check(p, seen, libk)
    if listing:
        for k, v in sorted(seen.items(), key=lambda kv: (kv[0][-1], kv[0])):
            print("%6d %s" % (v, k))
    for e in errors:
        print("fmtcheck: " + e, file=sys.stderr)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()

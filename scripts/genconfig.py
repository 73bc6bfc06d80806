#!/usr/bin/python3
# .config -> config.h the BusyBox way: every bool is ENABLE_X 0|1 (so code
# says `#if ENABLE_X` and -Wundef catches typos), ints are CONFIG_X, and
# KOTAK_FEATURES lists the enabled bools for `kotak -V`.
import sys, kconfiglib
kconf = kconfiglib.Kconfig(sys.argv[1], warn_to_stderr=True)
kconf.load_config(sys.argv[2])
out, feats = ["/* generated from .config by scripts/genconfig.py: do not edit */",
              "#ifndef KOTAK_CONFIG_H", "#define KOTAK_CONFIG_H"], []
for s in kconf.unique_defined_syms:
    if s.type == kconfiglib.BOOL:
        on = s.str_value == "y"
        out.append("#define ENABLE_%s %d" % (s.name, on))
        feats.append(("+" if on else "-") + s.name.lower())
    elif s.type in (kconfiglib.INT, kconfiglib.HEX):
        out.append("#define CONFIG_%s %s" % (s.name, s.str_value))
    elif s.type == kconfiglib.STRING:
        out.append('#define CONFIG_%s "%s"' % (s.name, s.str_value))
out.append('#define KOTAK_FEATURES "%s"' % " ".join(feats))
out.append("#endif")
text = "\n".join(out) + "\n"
try:
    old = open(sys.argv[3]).read()
except OSError:
    old = None
if old != text:
    open(sys.argv[3], "w").write(text)

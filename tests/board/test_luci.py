#!/usr/bin/python3
"""Checks of board/openwrt/luci-app-kotak without a LuCI runtime: every
view is valid JavaScript (`node --check`, wrapped in a function as LuCI's
loader runs it) and runs (load, render, its buttons, its validators) under
stand-ins of LuCI's runtime (luci_smoke.js), the menu and ACL files are valid JSON, every menu
entry names a view that exists and the ACL group the app declares, every
rpc method a view declares is in the ACL (read-only methods under "read",
the others under "write") and in `kotak rpc list`, the ACL grants nothing
more than the views use and only uci kotak, and every option a view
writes is one kotak's config parser knows (`kotak -t` does not call it
unknown)."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
APP = os.path.join(ROOT, "board", "openwrt", "luci-app-kotak")
VIEWS = os.path.join(APP, "htdocs", "luci-static", "resources", "view", "kotak")
BIN = os.environ.get("KOTAK_BIN") or os.path.join(ROOT, "kotak")
READ_ONLY = {"status", "user_list", "queue_list", "config_check", "config_get"}

passed = failed = 0


def result(name, problems):
    global passed, failed
    if problems:
        failed += 1
        print("FAIL luci %s: %s" % (name, "; ".join(problems)[:600]))
    else:
        passed += 1
        print("PASS luci %s" % name)


views = {f[:-3]: open(os.path.join(VIEWS, f)).read() for f in sorted(os.listdir(VIEWS)) if f.endswith(".js")}

# ---- JavaScript syntax
if not shutil.which("node"):
    print("SKIP luci node --check: node is not installed")
else:
    probs = []
    tmp = tempfile.mkdtemp()
    for name, src in views.items():
        # LuCI's loader compiles a view as a function body (its `return view.extend(...)`)
        p = os.path.join(tmp, name + ".js")
        with open(p, "w") as f:
            f.write("(function(L, _, E) {\n" + src + "\n})\n")
        r = subprocess.run(["node", "--check", p], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if r.returncode:
            probs.append("%s.js: %s" % (name, r.stdout.decode(errors="replace").strip()[:300]))
        if not src.startswith("'use strict';"):
            probs.append("%s.js does not start with 'use strict'" % name)
    shutil.rmtree(tmp)
    result("node --check of %d views" % len(views), probs)

# ---- the views run against stand-ins of LuCI's runtime and kotak's answers
if shutil.which("node"):
    r = subprocess.run(["node", os.path.join(HERE, "luci_smoke.js")] +
                       [os.path.join(VIEWS, v + ".js") for v in views], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = r.stdout.decode(errors="replace")
    bad = [ln for ln in out.splitlines() if not ln.startswith("PASS")]
    result("views load, render and press their buttons under stand-ins of LuCI (%d)" % out.count("PASS"),
           bad if (bad or r.returncode) else [])

# ---- JSON files
probs = []
try:
    menu = json.load(open(os.path.join(APP, "root/usr/share/luci/menu.d/luci-app-kotak.json")))
    acl = json.load(open(os.path.join(APP, "root/usr/share/rpcd/acl.d/luci-app-kotak.json")))
except ValueError as e:
    probs.append(str(e))
    menu, acl = {}, {}
result("menu.d and acl.d are valid JSON", probs)

probs = []
for path, entry in menu.items():
    act = entry.get("action", {})
    if act.get("type") == "view" and act.get("path", "").split("/")[-1] not in views:
        probs.append("%s: no view %s" % (path, act.get("path")))
    if act.get("type") == "alias" and act.get("path") not in menu:
        probs.append("%s: alias to a missing entry %s" % (path, act.get("path")))
    for g in entry.get("depends", {}).get("acl", []):
        if g not in acl:
            probs.append("%s depends on an ACL group %s that is not declared" % (path, g))
shown = {e["action"]["path"].split("/")[-1] for e in menu.values() if e.get("action", {}).get("type") == "view"}
if shown != set(views):
    probs.append("views not in the menu: %s" % sorted(set(views) - shown))
result("menu entries and views agree", probs)

# ---- rpc methods: views, ACL, kotak rpc list
calls = {}
for name, src in views.items():
    for obj, meth in re.findall(r"rpc\.declare\(\{\s*object:\s*'(\w+)',\s*method:\s*'(\w+)'", src):
        calls.setdefault((obj, meth), set()).add(name)
g = acl.get("luci-app-kotak", {})
read = set(g.get("read", {}).get("ubus", {}).get("kotak", []))
write = set(g.get("write", {}).get("ubus", {}).get("kotak", []))
probs = []
for (obj, meth), where in sorted(calls.items()):
    if obj != "kotak":
        probs.append("%s calls ubus object %s" % (sorted(where), obj))
    elif meth not in read | write:
        probs.append("%s calls kotak.%s, which the ACL does not grant" % (sorted(where), meth))
    elif (meth in READ_ONLY) != (meth in read):
        probs.append("kotak.%s is granted under %s" % (meth, "read" if meth in read else "write"))
for m in (read | write) - {m for _, m in calls}:
    probs.append("the ACL grants kotak.%s, which no view calls" % m)
if read & write:
    probs.append("granted both for read and write: %s" % sorted(read & write))
for k in ("read", "write"):
    if set(g.get(k, {})) - {"ubus", "uci"} or g.get(k, {}).get("uci") != ["kotak"] or \
            set(g.get(k, {}).get("ubus", {})) != {"kotak"}:
        probs.append("%s grants more than ubus kotak and uci kotak: %s" % (k, g.get(k)))
result("ACL: every method a view calls, read and write apart, nothing more", probs)

if not os.access(BIN, os.X_OK):
    print("SKIP luci rpc list and config options: no kotak binary at %s" % BIN)
elif b"+rpc" not in subprocess.run([BIN, "-V"], stdout=subprocess.PIPE).stdout:
    print("SKIP luci rpc list and config options: %s is built without Kconfig RPC "
          "(tests/board/run.sh --bin build-x86_64-rpc/kotak)" % BIN)
else:
    probs = []
    r = subprocess.run([BIN, "rpc", "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode:
        probs.append("kotak rpc list failed (a build without RPC?): %r" % r.stderr)
    else:
        known = json.loads(r.stdout)
        for _, meth in sorted(calls):
            if meth not in known:
                probs.append("kotak rpc list has no %s" % meth)
        for (_, meth), where in calls.items():
            src = "".join(views[w] for w in where)
            m = re.search(r"method:\s*'%s'(?:,\s*params:\s*\[([^\]]*)\])?" % meth, src)
            params = re.findall(r"'(\w+)'", m.group(1) or "") if m else []
            if meth in known and not set(params) <= set(known[meth]):
                probs.append("%s: the view passes %s, kotak takes %s" % (meth, params, sorted(known[meth])))
    result("every method a view calls is in kotak rpc list, with its arguments", probs)

    # ---- options the views write, by section type
    probs = []
    written = []
    for name, src in views.items():
        secvar = {}
        for var, kind, typ in re.findall(r"(\w+) = m\.section\(form\.(\w+), '(\w+)'", src):
            secvar.setdefault(var, []).append((src.find("%s = m.section(form.%s, '%s'" % (var, kind, typ)), typ))
        for mo in re.finditer(r"(\w+)\.(?:tab)?option\((?:'\w+', )?form\.(\w+), '(\w+)'", src):
            var, kind, opt = mo.groups()
            if kind in ("Button", "DummyValue", "SectionValue") or opt.startswith("_"):
                continue    # not written to the file
            # the section variable as last assigned before this line
            typ = max((p, t) for p, t in secvar.get(var, [(-1, None)]) if p < mo.start())[1]
            written.append((name, typ, opt, kind in ("DynamicList", "MultiValue")))
    if len(written) < 20:
        probs.append("found only %d options in the views: the parser of this test is broken" % len(written))
    tmp = tempfile.mkdtemp()
    for view, typ, opt, islist in written:
        kw = "list" if islist else "option"
        text = ("config kotak 'main'\n\toption hostname 'mail.example.lan'\n\toption data_dir '%s/data'\n"
                "\toption users_file '%s/users'\n" % (tmp, tmp))
        if typ == "kotak":
            text += "\t%s %s '1'\n" % (kw, opt)
        else:
            text += "\nconfig %s\n\t%s %s '1'\n" % (typ, kw, opt)
        p = os.path.join(tmp, "c")
        with open(p, "w") as f:
            f.write(text)
        r = subprocess.run([BIN, "-c", p, "-t"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out = r.stdout.decode(errors="replace")
        if "unknown" in out or "takes one value" in out:
            probs.append("%s.js writes %s %s in config %s: %s" % (view, kw, opt, typ, out.strip()))
    shutil.rmtree(tmp)
    result("every option a view writes (%d) is known to kotak's config parser" % len(written), probs)

print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)

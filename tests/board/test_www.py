#!/usr/bin/python3
"""The plain web page (board/www) in a real browser: Debian's BusyBox httpd
serves it and its CGI on loopback behind basic authentication, a running
kotak behind that, headless Chromium driven by Debian's python3-selenium
through chromium-driver.  Log in, see the status, add a user (who then logs
in over POP3), change a setting and see kotak reload (the SMTP greeting
names the new host), send a test mail and find it in the mailbox, delete a
queued message, add an alias.  Screenshots go to build/board-www/.

Run by tests/board/run.sh with Debian's /usr/bin/python3 (selenium is a
Debian package there).  Chromium starts with the network features off: the
machine has no network, and the page loads nothing from elsewhere."""

import base64
import json
import os
import poplib
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integ"))
import kt  # noqa: E402

OUT = os.path.join(ROOT, "build", "board-www")
PW = "webadmin-pw"


def skip_all(why):
    print("SKIP www: %s" % why)
    sys.exit(0)


try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:
    skip_all("python3-selenium is not installed")
for tool in ("busybox", "chromium", "chromedriver"):
    if not shutil.which(tool):
        skip_all("%s is not installed" % tool)
if not os.access(kt.BIN, os.X_OK):
    skip_all("no kotak binary at %s" % kt.BIN)
if subprocess.run([kt.BIN, "rpc", "list"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode:
    skip_all("this kotak is built without RPC")

results = []


def step(name):
    def deco(fn):
        try:
            fn()
            print("PASS www %s" % name, flush=True)
            results.append(True)
        except Exception as e:
            print("FAIL www %s: %s" % (name, kt._one_line(e)), flush=True)
            results.append(False)
            shot("FAILED-" + name.replace(" ", "_"))
            raise SystemExit(1)
        return fn
    return deco


def shot(name):
    try:
        drv.save_screenshot(os.path.join(OUT, name + ".png"))
    except Exception:
        pass


class K(kt.Kotak):
    def __init__(self, **kw):
        self.pop_port = kt.free_port()
        kw.setdefault("main", {})["cleartext_auth_net"] = "127.0.0.0/8"
        super().__init__(**kw)

    def config_text(self):
        return super().config_text() + (
            "config listen\n\toption proto 'pop3'\n\toption address '127.0.0.1'\n\toption port '%d'\n" % self.pop_port)


os.makedirs(OUT, exist_ok=True)
for f in os.listdir(OUT):
    if f.endswith(".png"):
        os.unlink(os.path.join(OUT, f))
k = K(users=("admin", "alice"))
tmp = tempfile.mkdtemp(prefix="kt-www-")
www = os.path.join(tmp, "www")
shutil.copytree(os.path.join(ROOT, "board", "www"), www)
for f in os.listdir(www):
    if f.endswith(".png"):
        os.unlink(os.path.join(www, f))
with open(os.path.join(tmp, "httpd.conf"), "w") as f:
    f.write("/:admin:%s\n" % PW)          # basic authentication for the page and the CGI
port = kt.free_port()
env = dict(os.environ, KOTAK=kt.BIN, KOTAK_CONFIG=k.conf)
httpd = subprocess.Popen(["busybox", "httpd", "-f", "-p", "127.0.0.1:%d" % port, "-h", www,
                          "-c", os.path.join(tmp, "httpd.conf"), "-r", "kotak"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
base = "http://127.0.0.1:%d/" % port
drv = None


def cleanup():
    if drv is not None:
        try:
            drv.quit()
        except Exception:
            pass
    httpd.kill()
    httpd.wait()
    k.cleanup()
    shutil.rmtree(tmp, ignore_errors=True)


def http(path, data=None, auth=True, ctype="application/json"):
    req = urllib.request.Request(base + path, data=data)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(b"admin:" + PW.encode()).decode())
    if data is not None:
        req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError as e:
        return 0, str(e).encode()


def wait(cond, what, timeout=15):
    return WebDriverWait(drv, timeout, poll_frequency=0.1).until(lambda d: cond(), message=what)


def msg():
    return drv.find_element(By.ID, "msg").text


def pop_ok(user, pw):
    try:
        p = poplib.POP3(kt.LOOPBACK, k.pop_port, timeout=10)
        p.user(user)
        p.pass_(pw)
        p.quit()
        return True
    except poplib.error_proto:
        return False


try:
    kt.wait_for(lambda: http("index.html", auth=False)[0] in (200, 401), 10, what="busybox httpd")

    @step("basic authentication guards the page and the CGI")
    def _():
        kt.eq(http("index.html", auth=False)[0], 401, "page without a login")
        kt.eq(http("cgi-bin/kotak?status", b"{}", auth=False)[0], 401, "CGI without a login")
        st, body = http("cgi-bin/kotak?status", b"{}")
        kt.eq(st, 200, "CGI with the login")
        kt.eq(json.loads(body)["running"], True, "status through the CGI")
        # a cross-site form cannot send JSON: other methods and types are refused
        kt.check("error" in json.loads(http("cgi-bin/kotak?user_add", b'{"name":"x","password":"y"}',
                                            ctype="text/plain")[1]), "text/plain POST was not refused")
        kt.check("error" in json.loads(http("cgi-bin/kotak?user_list")[1]), "GET was not refused")
        kt.check("error" in json.loads(http("cgi-bin/kotak?a;id", b"{}")[1]), "bad method name")
        kt.eq(json.loads(http("cgi-bin/kotak?user_list", b"{}")[1])["users"], ["admin", "alice"], "users")

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
              "--disable-dev-shm-usage", "--window-size=1100,900",
              "--user-data-dir=" + os.path.join(tmp, "chrome-profile")):
        opts.add_argument(a)
    drv = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    drv.set_page_load_timeout(20)

    @step("log in and see kotak running")
    def _():
        # the login: credentials in the first navigation, then Chromium's
        # cache for the realm sends them with the page's fetch() calls
        drv.get("http://admin:%s@127.0.0.1:%d/" % (PW, port))
        wait(lambda: "running (pid %d" % k.proc.pid in drv.find_element(By.ID, "st-running").text,
             "the status page to show kotak running")
        kt.check("smtp" in drv.find_element(By.ID, "status-table").text, "listeners on the status page")
        shot("status")

    @step("add a user who then logs in over POP3")
    def _():
        drv.get(base + "#users")
        wait(lambda: "alice" in drv.find_element(By.ID, "user-table").text, "the user list")
        drv.find_element(By.ID, "user-name").send_keys("bob")
        drv.find_element(By.ID, "user-pass").send_keys("bobs pass'word")
        drv.find_element(By.ID, "user-add").click()
        wait(lambda: "User bob added; kotak reloaded its users." in msg(), "the user added")
        wait(lambda: "bob" in drv.find_element(By.ID, "user-table").text, "bob in the user list")
        kt.wait_for(lambda: pop_ok("bob", "bobs pass'word"), 10, what="bob's POP3 login")
        shot("users")

    @step("change a setting and see kotak reload")
    def _():
        drv.get(base + "#settings")
        h = wait(lambda: drv.find_element(By.ID, "set-hostname"), "the settings form")
        wait(lambda: h.get_attribute("value") == kt.HOSTNAME, "the host name in the form")
        d = drv.find_element(By.ID, "set-data_dir")
        d.clear()
        d.send_keys("/tmp/x")
        d.send_keys("\t")
        wait(lambda: "is in RAM" in drv.find_element(By.ID, "hint-data_dir").text, "the /tmp warning")
        d.clear()
        d.send_keys(k.data_dir)
        h.clear()
        h.send_keys("bad host!")
        drv.find_element(By.ID, "settings-save").click()
        wait(lambda: "not valid" in msg(), "the form refusing a bad host name")
        kt.check("bad host" not in open(k.conf).read(), "a refused value reached the config")
        h.clear()
        h.send_keys("mx2.example.lan")
        shot("settings")
        drv.find_element(By.ID, "settings-save").click()
        wait(lambda: "kotak reloaded it" in msg(), "the save")
        kt.check("option hostname 'mx2.example.lan'" in open(k.conf).read(), "config file: %s" % open(k.conf).read())

        def greeting():
            c = k.connect()
            try:
                return c.greeting.text
            finally:
                c.close()
        kt.wait_for(lambda: "mx2.example.lan" in greeting(), 10, what="the new host name in the SMTP greeting")

    @step("send a test mail and find it in the mailbox")
    def _():
        drv.get(base + "#status")
        to = wait(lambda: drv.find_element(By.ID, "test-to"), "the test mail form")
        to.send_keys("bob@" + kt.DOMAIN)
        drv.find_element(By.ID, "test-send").click()
        wait(lambda: "Test message queued as" in msg(), "the test mail queued")
        msgs = k.wait_count("bob", 1, timeout=10)
        kt.check(b"Subject: kotak test message" in msgs[0], "bob's message: %r" % msgs[0][:200])

    @step("delete a queued message")
    def _():
        st, body = http("cgi-bin/kotak?test_mail", json.dumps({"to": "someone@elsewhere.example"}).encode())
        qid = json.loads(body)["id"]
        drv.get(base + "#queue")
        row = wait(lambda: drv.find_element(By.CSS_SELECTOR, "tr[data-id='%s']" % qid), "the queued message")
        kt.check("someone@elsewhere.example" in row.text, "recipient in the queue row: %r" % row.text)
        shot("queue")
        row.find_element(By.TAG_NAME, "button").click()
        drv.switch_to.alert.accept()
        wait(lambda: "Message %s deleted." % qid in msg(), "the deletion")
        wait(lambda: "The queue is empty." in drv.find_element(By.ID, "queue-table").text, "an empty queue")
        kt.eq(json.loads(http("cgi-bin/kotak?queue_list", b"{}")[1])["queue"], [], "queue after the deletion")

    @step("add an alias")
    def _():
        drv.get(base + "#aliases")
        wait(lambda: drv.find_elements(By.CSS_SELECTOR, "#alias-table tbody tr"), "the alias list")
        drv.find_element(By.ID, "alias-add").click()
        inputs = drv.find_elements(By.CSS_SELECTOR, "#alias-table tbody tr:last-child input")
        inputs[0].send_keys("sales")
        inputs[1].send_keys("alice, bob")
        drv.find_element(By.ID, "alias-save").click()
        wait(lambda: "kotak reloaded it" in msg(), "the aliases saved")
        text = open(k.conf).read()
        kt.check("option name 'sales'" in text and "list to 'bob'" in text, "alias in the config: %s" % text)
        r = k.send("sales@" + kt.DOMAIN, kt.msg("to sales"))
        kt.eq(r.code, 250, "mail to the new alias")
        k.wait_count("alice", 1)
        shot("aliases")
finally:
    cleanup()
print("%d passed, %d failed" % (results.count(True), results.count(False)))
sys.exit(0 if all(results) else 1)

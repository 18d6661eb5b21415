"""End-to-end: the whole suite (bus-relay and the six services) from the
same config run.sh uses (deploy/opsdesk.local.json, rewritten to this
test's ports), with the fake Bot API in poll mode standing in for
Telegram.

- test_support_and_outage: a user opens a ticket in the chat, the admin
  chat gets it, the admin answers by replying to that notification, the
  user gets the answer and rates it with the rating button; then a probed
  local web server goes down -> incident opened -> admin alerted -> status
  page JSON and /status_page show the outage -> a ticket opened meanwhile
  is linked -> the server comes back -> incident resolved -> that ticket's
  owner is told.
- test_kill9_loses_nothing_acknowledged: users open tickets through the
  bot while each process in turn is killed with SIGKILL and restarted;
  every ticket confirmed to its user exists exactly once, and every
  incident whose creation opsctl saw acknowledged exists.

Where the machine allows it (root, `ip netns`, a bridge) every executable
runs in a network namespace of its own, like a container on its own host,
joined to the others and to the test (fake Bot API, probed server, opsctl)
by a bridge on a random 10.x.y.0/24; otherwise, or with
OPSDESK_E2E_NETNS=0, all run on loopback. The test prints which."""

import http.server
import functools
import json
import os
import random
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from fake_telegram import FakeTelegram  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
LOCAL_CONFIG = os.path.join(ROOT, "deploy", "opsdesk.local.json")

ADMIN = 1
ADMIN_CHAT = -500
TOKEN = "424242:e2e-SECRET-token"
# Start order of run.sh: the relay first, the gateway last.
BACKENDS = ["ticket-service", "incident-service", "health-prober",
            "status-publisher"]
# run.sh's default HTTP ports -> the executable listening there.
DEFAULT_HTTP = {"9400": "bus-relay", "9410": "ticket-service",
                "9420": "incident-service", "9430": "health-prober",
                "8080": "status-publisher", "9450": "telegram-gateway"}


def _ip(*args):
    r = subprocess.run(["ip"] + list(args), capture_output=True, timeout=20)
    if r.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args),
                                          r.stderr.decode().strip()))


class Network:
    """Where the suite's processes live. Loopback (host "127.0.0.1" for
    all), or one network namespace per executable on a bridge: .host is
    the test's own address on it, .ips[exe] each process's."""

    def __init__(self):
        self.host = "127.0.0.1"
        self.ips = {}
        self.namespaces = []
        self.bridge = None
        self.saved_exe_path = None
        self.note = "loopback"

    def setup(self, s):
        if os.environ.get("OPSDESK_E2E_NETNS", "1") == "0":
            self.note = "loopback (OPSDESK_E2E_NETNS=0)"
            return self
        if os.geteuid() != 0:
            self.note = "loopback (network namespaces need root)"
            return self
        try:
            self._create()
        except (RuntimeError, OSError, subprocess.SubprocessError) as e:
            self.close()
            self.ips = {}
            self.host = "127.0.0.1"
            self.note = "loopback (no network namespaces here: %s)" % e
            return self
        self._rewire(s)
        return self

    def _create(self):
        tag = "%04x" % random.randrange(1 << 16)
        net = "10.%d.%d" % (random.randint(100, 250), random.randint(0, 255))
        self.bridge = "odbr" + tag
        _ip("link", "add", "name", self.bridge, "type", "bridge")
        _ip("addr", "add", net + ".1/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        self.host = net + ".1"
        for i, exe in enumerate(h.EXECUTABLES):
            ns = "od%s-%d" % (tag, i)
            _ip("netns", "add", ns)
            self.namespaces.append(ns)
            veth = "odv%s%d" % (tag, i)
            _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0",
                "netns", ns)
            _ip("link", "set", veth, "master", self.bridge)
            _ip("link", "set", veth, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "addr", "add", "%s.%d/24" % (net, 10 + i),
                "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            self.ips[exe] = ("%s.%d" % (net, 10 + i), ns)
        self.note = ("one network namespace per executable on bridge %s "
                     "(%s.0/24)" % (self.bridge, net))

    def _rewire(self, s):
        """Every address of the suite to its process's namespace, and
        every executable started through `ip netns exec`."""
        def move(addr, exe):
            return re.sub(r"127\.0\.0\.1", self.ips[exe][0], addr)

        def secure(url):
            return "tls+" + url if url.startswith("tcp://") else url
        s.bus_publish = secure(move(s.bus_publish, "bus-relay"))
        s.bus_subscribe = secure(move(s.bus_subscribe, "bus-relay"))
        for k, (exe, _) in h.SERVICES.items():
            s.urls[k] = secure(move(s.urls[k], exe))
        # Off loopback the suite runs as it ships: TLS with the suite's
        # own CA and every request and frame authenticated.
        tls = s.path("tls")
        r = subprocess.run([h.exe_path("opsctl"), "certs", "init", tls],
                           capture_output=True)
        if r.returncode != 0:
            raise RuntimeError("opsctl certs init: %r" % r.stderr)
        s.extra_env["OPSDESK_TLS_DIR"] = tls
        self.note += ", tls+tcp with OPSDESK_TLS_DIR"
        for exe in list(s.http):
            s.http[exe] = move(s.http[exe], exe)
        wrappers = {}
        os.makedirs(s.path("netns-bin"))
        for exe, (_, ns) in self.ips.items():
            w = s.path("netns-bin", exe)
            with open(w, "w") as f:
                # exec twice: the pid the test kills is the service's.
                f.write("#!/bin/sh\nexec ip netns exec %s %s \"$@\"\n" %
                        (ns, h.exe_path(exe)))
            os.chmod(w, 0o755)
            wrappers[exe] = w
        self.saved_exe_path = h.exe_path
        orig = h.exe_path
        h.exe_path = lambda name: wrappers.get(name) or orig(name)

    def close(self):
        if self.saved_exe_path is not None:
            h.exe_path = self.saved_exe_path
            self.saved_exe_path = None
        for ns in self.namespaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.namespaces = []
        if self.bridge:
            subprocess.run(["ip", "link", "del", self.bridge],
                           capture_output=True)
            self.bridge = None


def networked(fn):
    """Run a test with its Network set up first and torn down after."""
    @functools.wraps(fn)
    def run(s):
        s.net = Network().setup(s)
        print("  network: %s" % s.net.note, flush=True)
        try:
            fn(s)
        finally:
            s.net.close()
    return run


class WebServer:
    """The probed local server: a python http.server answering 200 "ok"
    on a fixed port, which the test turns off (connection refused) and
    on again."""

    def __init__(self, host):
        self.host = host
        self.port = h.free_port()
        self.server = None
        self.on()

    def on(self):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = b"ok\n"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        # The port was just closed by off(): rebinding may need a retry.
        self.server = h.wait_until(
            lambda: http.server.ThreadingHTTPServer(
                (self.host, self.port), Handler), 10, "web server bind")
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever,
                         daemon=True).start()

    def off(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def local_config(s, web):
    """run.sh's config with this suite's ports, a group as the admin chat
    and short timings, plus the probed web server as a public, critical
    component."""
    with open(LOCAL_CONFIG) as f:
        text = f.read()
    for port, exe in DEFAULT_HTTP.items():
        text = text.replace("127.0.0.1:%s" % port, s.http[exe])
    c = json.loads(text)
    c["admins"] = [ADMIN]
    c["admin_chat"] = ADMIN_CHAT
    for t in c["targets"]:
        t["interval"] = "2s"
        t["timeout"] = "2s"
    c["targets"].append({
        "id": "web", "name": "Web shop", "group": "Product", "kind": "http",
        "url": "http://%s:%d/" % (web.host, web.port), "body_contains": "ok",
        "interval": "1s", "timeout": "1s", "failure_threshold": 2,
        "success_threshold": 2, "criticality": "critical", "public": True})
    c["status_page"]["components"].insert(
        0, {"id": "web", "name": "Web shop", "group": "Product"})
    c["incidents"]["stable_period"] = "3s"
    c["incidents"]["tick"] = "200ms"
    c["gateway"]["throttle"] = {"enabled": False}
    c["gateway"]["poll_timeout"] = "1s"
    # Many users, one ticket each, in the kill -9 test.
    c["tickets"]["limits"] = {"open_per_user": 0, "creations_per_hour": 0}
    return c


def start_suite(s):
    web = WebServer(s.net.host)
    s.web = web
    s.config = local_config(s, web)
    fake = FakeTelegram(TOKEN, max_poll_wait=1.0, host=s.net.host)
    s.fake = fake
    s.start("bus-relay", timeout=30)
    for b in BACKENDS:
        s.start(b, timeout=30)
    s.start("telegram-gateway", timeout=30, env={
        "TELEGRAM_API_URL": fake.url, "TELEGRAM_BOT_TOKEN": TOKEN,
        "OPSDESK_GATEWAY_MODE": "poll"})
    for p in s.procs:  # each really is on a host of its own
        if p.exe in s.net.ips:
            r = subprocess.run(["ip", "netns", "identify", str(p.pid)],
                               capture_output=True, timeout=10)
            h.eq(r.stdout.decode().strip(), s.net.ips[p.exe][1],
                 "%s's network namespace" % p.exe)
    return fake, web


def summary(s):
    st, body, _ = s.proc("status-publisher").http_get(
        "/api/v2/summary.json")
    h.eq(st, 200, "summary.json")
    return json.loads(body)


def component(summ, cid):
    for c in summ["components"]:
        if c["id"] == cid:
            return c
    return None


def all_green(s):
    summ = summary(s)
    ids = {t["id"] for t in s.config["targets"]}
    shown = {c["id"]: c["status"] for c in summ["components"]}
    return (ids <= set(shown) and
            all(v == "operational" for v in shown.values()) and
            summ["status"]["indicator"] == "none" and
            not summ["incidents"])


def prober_all_up(s):
    cur = s.call("prober", "current", {})
    states = {t["id"]: t.get("state") for t in cur["current"]["targets"]}
    return all(v == "COMPONENT_STATE_UP" for v in states.values()) and states


def rss(s):
    """{executable: resident MiB} from each /metrics (a sizing figure for
    deploy/k8s; printed, not asserted)."""
    out = {}
    for p in s.procs:
        v = h.metric(p.metrics(), "process_resident_memory_bytes")
        if v is not None:
            out[p.exe] = round(v / 1048576.0, 1)
    return out


def ask(fake, text, user, chat=None, timeout=15.0, **kw):
    chat = user if chat is None else chat
    m = fake.mark()
    fake.message(text, user=user, chat=chat, **kw)
    return fake.wait_sent(lambda r: r.chat == chat, timeout, after=m)


def wait_chat(fake, chat, pred, timeout, after=0):
    """The first message to chat (from request index after) with
    pred(text); on a time-out the failure lists what that chat got."""
    try:
        return fake.wait_sent(lambda r: r.chat == chat and pred(r.text),
                              timeout, after=after)
    except AssertionError:
        got = [(r.method, r.text[:160], r.buttons)
               for r in fake.sent(chat=chat)]
        raise h.Failure("chat %d: no matching message in %.0fs; it got %r"
                        % (chat, timeout, got[-8:]))


def message_id(fake, chat, text):
    ids = [k[1] for k, v in list(fake.messages.items())
           if k[0] == chat and v == text]
    h.check(ids, "no message id for %r" % text[:80])
    return ids[-1]


def ticket_id(text):
    m = re.search(r"T-(\d+)</b> opened", text)
    h.check(m, "no ticket confirmation in %r" % text[:200])
    return int(m.group(1))


@networked
def test_support_and_outage(s):
    fake, web = start_suite(s)
    gw = s.proc("telegram-gateway")
    # A fresh suite from run.sh's config is all green: every target up,
    # the page operational.
    h.wait_until(lambda: prober_all_up(s), 40, "every target up")
    h.wait_until(lambda: all_green(s), 20, "status page all green")
    print("  RSS idle (MiB): %s" % json.dumps(rss(s)), flush=True)
    tail = s.tail("incident.", "alert.", "ticket.")

    # --- support: open, answer by replying, rate ---
    user = 42
    r = ask(fake, "/support my payment failed", user)
    tid = ticket_id(r.text)
    note = fake.wait_sent(lambda r: r.chat == ADMIN_CHAT and
                          "New ticket" in r.text and
                          ("T-%d<" % tid) in r.text, 15)
    h.contains(note.text, "my payment failed")
    m = fake.mark()
    fake.message("Refunded, please try again", user=ADMIN, chat=ADMIN_CHAT,
                 chat_type="supergroup",
                 reply_to=message_id(fake, ADMIN_CHAT, note.text))
    got = fake.wait_sent(lambda r: r.chat == user and
                         "Support replied" in r.text, 15, after=m)
    h.contains(got.text, "Refunded, please try again")
    # Staff resolve it from the admin chat; the owner is told how to rate
    # and sees the buttons.
    m = fake.mark()
    fake.message("/resolve T-%d" % tid, user=ADMIN, chat=ADMIN_CHAT,
                 chat_type="supergroup")
    fake.wait_sent(lambda r: r.chat == user and ("T-%d" % tid) in r.text,
                   15, after=m)
    view = ask(fake, "/ticket T-%d" % tid, user)
    rate = [d for label, d in view.buttons if label.startswith("5")]
    h.check(rate, "rating buttons: %r" % view.buttons)
    m = fake.mark()
    fake.press(rate[0], user=user,
               message_id=message_id(fake, user, view.text))
    r = wait_chat(fake, user, lambda t: "Thank you" in t or "comment" in t,
                  20, after=m)
    if "Thank you" not in r.text:
        # The gateway asks for an optional comment before it rates.
        m = fake.mark()
        fake.message("Quick and friendly, thanks", user=user)
        wait_chat(fake, user, lambda t: "Thank you" in t, 20, after=m)
    t = s.call("ticket", "get", {"id": tid})["ticket"]
    h.eq(t.get("rating"), 5, "rating stored")
    tail.wait_topic("ticket.rated", 15)

    # --- outage: the web server goes down ---
    m_admin = fake.mark()
    n = tail.mark()
    web.off()
    ev = tail.wait_for(lambda e: e.get("topic") == "incident.opened" and
                       "web" in [c.get("component_id") for c in
                                 e["envelope"]["incident"]["incident"].get(
                                     "components", [])], 30, start=n)
    inc = ev["envelope"]["incident"]["incident"]
    h.eq(inc.get("severity"), "SEVERITY_CRITICAL", "severity from "
         "criticality")
    alert = fake.wait_sent(lambda r: r.chat == ADMIN_CHAT and
                           "Alert" in r.text, 20, after=m_admin)
    h.check(any(d == "1:ia:%s" % inc["id"] for _, d in alert.buttons),
            "acknowledge button: %r" % alert.buttons)

    def page_shows_outage():
        summ = summary(s)
        c = component(summ, "web")
        return (c and c["status"] in ("major_outage", "partial_outage") and
                summ["status"]["indicator"] in ("major", "critical") and
                summ["incidents"] and summ)
    summ = h.wait_until(page_shows_outage, 20, "status page outage")
    h.eq(summ["incidents"][0]["status"], "investigating")
    other = component(summ, "ticket_service")
    h.eq(other["status"], "operational", "the rest stays green")
    st, page, _ = s.proc("status-publisher").http_get("/")
    h.eq(st, 200)
    h.contains(page.decode(), "Web shop")
    r = ask(fake, "/status_page", 77)
    h.contains(r.text, "Active incidents")
    h.check("🔴" in r.text or "🟠" in r.text, r.text)
    # A ticket opened during the incident is linked to it.
    linked_user = 43
    r = ask(fake, "/support checkout is broken", linked_user)
    linked = ticket_id(r.text)
    h.contains(r.text, "INC-%s" % inc["id"])

    # --- the server comes back: resolved after the stable period ---
    m = fake.mark()
    n = tail.mark()
    web.on()
    ev = tail.wait_for(lambda e: e.get("topic") == "incident.resolved" and
                       e["envelope"]["incident"]["incident"]["id"] ==
                       inc["id"], 40, start=n)
    told = fake.wait_sent(lambda r: r.chat == linked_user and
                          ("T-%d" % linked) in r.text, 20, after=m)
    h.check("resolved" in told.text.lower(), told.text)
    h.wait_until(lambda: all_green(s), 30, "status page green again")
    h.check(TOKEN not in gw.log_text(), "token in the gateway log")
    print("  RSS after traffic (MiB): %s" % json.dumps(rss(s)), flush=True)
    for p in reversed(s.procs):
        p.stop()


@networked
def test_kill9_loses_nothing_acknowledged(s):
    fake, web = start_suite(s)
    order = BACKENDS + ["telegram-gateway", "bus-relay"]
    sent_users = []
    incidents = []
    stop = threading.Event()

    def sender():
        # A new user every 50 ms, so every kill lands in live traffic, but
        # at most 10 unanswered at a time: a slow (loaded, sanitized) suite
        # gets less traffic, not a backlog.
        u = 1000
        while not stop.is_set():
            answered = {r.chat for r in fake.sent()}
            if len([x for x in sent_users if x not in answered]) < 10:
                fake.message("/support kill test (%d)" % u, user=u)
                sent_users.append(u)
                u += 1
            stop.wait(0.05)

    def confirmed_count():
        return len([r for r in fake.sent() if "</b> opened" in r.text])

    th = threading.Thread(target=sender, daemon=True)
    th.start()
    try:
        for exe in order:
            proc = s.proc(exe)
            n = confirmed_count()
            h.wait_until(lambda: confirmed_count() >= n + 3, 30,
                         "tickets confirmed before killing %s" % exe)
            proc.kill()
            proc.restart(timeout=30)
            r = s.opsctl("call", "incident", "create", json.dumps(
                {"severity": "SEVERITY_LOW", "title": "after %s" % exe}))
            if r.rc == 0:
                incidents.append(r.json["incident"]["id"])
        n = confirmed_count()
        h.wait_until(lambda: confirmed_count() >= n + 3, 30,
                     "tickets confirmed after the last restart")
    finally:
        stop.set()
        th.join(5)
    h.check(incidents, "no incident creation was acknowledged")
    # Every update is handled once (answered with a ticket or an error).
    h.wait_until(lambda: all(fake.sent(chat=u) for u in sent_users), 60,
                 "every user answered")
    confirmed = {}
    for u in sent_users:
        for r in fake.sent(chat=u):
            if "</b> opened" in r.text:
                confirmed.setdefault(ticket_id(r.text), set()).add(u)
    h.check(len(confirmed) >= len(sent_users) // 2,
            "only %d of %d confirmed" % (len(confirmed), len(sent_users)))
    stored = []
    cursor = ""
    while True:  # every open ticket, page by page
        q = s.call("ticket", "queue", {"page": {"limit": 100,
                                                "cursor": cursor}})
        stored += q.get("tickets", {}).get("tickets", [])
        cursor = q.get("tickets", {}).get("next_cursor", "")
        if not cursor:
            break
    by_id = {}
    for t in stored:
        by_id.setdefault(int(t["id"]), []).append(t)
    owners = [int(t["owner_id"]) for t in stored]
    h.eq(len(owners), len(set(owners)), "one ticket per user message")
    for tid, us in confirmed.items():
        h.eq(len(us), 1, "T-%d confirmed to several users" % tid)
        h.check(tid in by_id, "confirmed T-%d lost" % tid)
        h.eq(len(by_id[tid]), 1, "T-%d stored once" % tid)
        h.eq(int(by_id[tid][0]["owner_id"]), us.pop(), "owner of T-%d" % tid)
    for iid in incidents:
        s.call("incident", "get", {"id": iid})
    print("  %d messages, %d tickets confirmed, %d stored, %d incidents "
          "acknowledged" % (len(sent_users), len(confirmed), len(stored),
                            len(incidents)), flush=True)
    for p in reversed(s.procs):
        p.stop()


if __name__ == "__main__":
    h.main()

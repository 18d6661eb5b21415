"""e2e_bench.py -- opsdesk's chat path end to end against two peers doing
the same work durably, on the same fake Bot API and machine, in one run.

Workload (throttling off): 3,000 updates from 300 users, queued at once;
half `/support <text>` (a durable ticket, confirmed with its id), half
`/help` and `/status_page`. Timed from the first update queued to the
last reply sent.

- opsdesk: fake API -> telegram-gateway -> ticket-service (tickets) and
  status-publisher (/status_page) -> reply sent. CPU is the sum over every
  opsdesk process (gateway, ticket-service, status-publisher, bus-relay).
- grammY (tests/bench/peers/grammy_bot.js; `npm ci` in tests/bench/peers):
  bot.start() long polling; each ticket an fdatasync'd append.
- python-telegram-bot 13.15 (tests/bench/peers/ptb_bot.py; Debian's
  python3-python-telegram-bot under /usr/bin/python3): 4 workers, tickets
  in SQLite, WAL, synchronous=FULL.

The fake Bot API is tests/bench/peers/fake_botapi.js (Node, no
dependencies) when node is installed: the system tests' recording fake is
one Python core under its GIL, and it was the ceiling every bot met first
(E2E_BENCH_FAKE=python uses it anyway). Each run prints the fake's own CPU
per update beside the bot's. The Node fake serves FAKE_WARM_UP (6,000)
requests to itself before the first bot: cold, V8 spent twice the CPU per
update on whichever bot came first. Its GET /control/timeline lists when
each getUpdates page was answered and each reply arrived, to see where a
run's time goes.

E2E_BENCH_WORKERS sets the gateway's `workers` (default 16);
E2E_BENCH_PEERS=grammy,ptb picks the peers ("none": opsdesk alone).

A peer that is not installed is skipped (scripts/bootstrap.sh installs
both with OPSDESK_BENCH_PEERS=1). Prints updates/s, CPU ms per update,
the fake Bot API's own CPU per update in each run (it shares the machine's
cores with the bot: on 2 cores it takes about a fifth of them) and the
gateway's idle RSS, and the issue's goals (updates/s >= 2x grammY and
>= 4x PTB, CPU/update <= 0.5x grammY's, idle RSS <= 16 MB) as met or not:
the machine may be shared, so only ratios of the same run mean anything.
Asserts that every update was answered and every ticket stored.
"""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "system"))
import harness as h  # noqa: E402
from fake_telegram import FakeTelegram  # noqa: E402

TOKEN = "555:bench-token"
PEERS = os.path.join(here, "peers")
USERS = int(os.environ.get("E2E_BENCH_USERS", "300"))
PER_USER = int(os.environ.get("E2E_BENCH_PER_USER", "10"))
FIRST_USER = 10000
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


class NodeFake:
    """tests/bench/peers/fake_botapi.js: the same Bot API surface the
    bench needs, without the system tests' recording fake's ceiling (one
    Python core under its GIL, which every bot's updates/s met first and
    which spent more CPU per update than the bot when the bot used many
    connections). Same interface as FakeTelegram's parts used here."""

    def __init__(self, token):
        self.token = token
        self.proc = subprocess.Popen(
            ["node", os.path.join(PEERS, "fake_botapi.js"), token, "0.5"],
            stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "listening":
            raise RuntimeError("fake_botapi.js did not start")
        self.url = "http://127.0.0.1:%s" % line[1]
        self.pending = []

    def _req(self, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path, data=data,
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def message(self, text, user):
        self.pending.append({"user": user, "text": text})

    def flush(self):
        if self.pending:
            self._req("/control/updates", self.pending)
            self.pending = []

    def calls(self):
        return self._req("/control/stats")["calls"]

    def wait_call(self, method, timeout=10.0):
        h.wait_until(lambda: self.calls().get(method, 0) > 0, timeout,
                     "a %s call" % method)

    def mark(self):
        self._req("/control/reset", {})
        return 0

    def stats(self):
        return self._req("/control/stats?lo=%d&hi=%d" % (
            FIRST_USER, FIRST_USER + USERS))

    def cpu(self):
        return cpu_seconds([self.proc.pid])

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


def use_node_fake():
    want = os.environ.get("E2E_BENCH_FAKE", "node")
    return want == "node" and shutil.which("node") is not None


def new_fake():
    if use_node_fake():
        return NodeFake(TOKEN)
    return FakeTelegram(TOKEN, max_poll_wait=0.5)


def workload(fake):
    """Queue the updates; the number of /support among them."""
    tickets = 0
    for k in range(PER_USER):
        for u in range(USERS):
            user = FIRST_USER + u
            if k % 2 == 0:
                fake.message("/support printer %d-%d on fire" % (user, k),
                             user=user)
                tickets += 1
            else:
                fake.message("/help" if k % 4 == 1 else "/status_page",
                             user=user)
    if isinstance(fake, NodeFake):
        fake.flush()
    return tickets


def replies(fake, after):
    if isinstance(fake, NodeFake):
        return fake.stats()["replies"]
    n = 0
    for r in fake.requests[after:]:
        if (r.method == "sendMessage" and r.status == 200 and
                FIRST_USER <= r.chat < FIRST_USER + USERS):
            n += 1
    return n


FAKE_CPU = {}  # bot name -> CPU s of this process (the fake) in run()


def run(fake, pids, name):
    """Queue the workload and wait for every reply: (seconds, cpu s)."""
    total = USERS * PER_USER
    m = fake.mark()
    c0 = cpu_seconds(pids)
    node = isinstance(fake, NodeFake)
    f0 = fake.cpu() if node else time.process_time()
    t0 = time.monotonic()
    tickets = workload(fake)
    h.wait_until(lambda: replies(fake, m) >= total, 600,
                 "%d replies" % total, interval=0.02)
    took = time.monotonic() - t0
    FAKE_CPU[name] = (fake.cpu() if node else time.process_time()) - f0
    return took, cpu_seconds(pids) - c0, tickets


def bench_opsdesk():
    with h.Suite("e2e-bench") as s:
        s.config = {
            "admins": [1],
            "gateway": {"throttle": {"enabled": False},
                        "poll_timeout": "1s",
                        "workers": int(os.environ.get(
                            "E2E_BENCH_WORKERS", "16"))},
            "tickets": {"limits": {"open_per_user": 1000,
                                   "creations_per_hour": 100000}}}
        fake = new_fake()
        procs = [s.start("bus-relay"), s.start("ticket-service"),
                 s.start("status-publisher")]
        gw = s.start("telegram-gateway", env={
            "TELEGRAM_API_URL": fake.url, "TELEGRAM_BOT_TOKEN": TOKEN,
            "OPSDESK_LOG_LEVEL": "warn"})
        fake.wait_call("setMyCommands")
        idle = rss_mb(gw.popen.pid)
        pids = [p.popen.pid for p in procs + [gw]]
        took, cpu, tickets = run(fake, pids, "opsdesk")
        if isinstance(fake, NodeFake):
            opened = fake.stats()["opened"]
        else:
            opened = sum(1 for r in fake.sent() if "opened" in r.text)
        h.check(opened >= tickets, "%d of %d tickets confirmed" %
                (opened, tickets))
        gw.stop()
        fake.close()
    return took, cpu, idle


def bench_peer(name, argv, store_count):
    tmp = tempfile.mkdtemp(prefix="e2e-%s-" % name)
    fake = new_fake()
    store = os.path.join(tmp, "tickets")
    log = open(os.path.join(tmp, "log"), "w")
    p = subprocess.Popen(argv + [fake.url, TOKEN, store], stdout=log,
                         stderr=subprocess.STDOUT, cwd=PEERS)
    try:
        fake.wait_call("getUpdates", timeout=30)
        took, cpu, tickets = run(fake, [p.pid], name)
        stored = store_count(store)
        h.eq(stored, tickets, "%s: tickets stored" % name)
    finally:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        log.close()
        fake.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return took, cpu


def lines(path):
    with open(path) as f:
        return sum(1 for _ in f)


def rows(path):
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT COUNT(*) FROM tickets").fetchone()[0]
    finally:
        db.close()


def have_grammy():
    return (shutil.which("node") is not None and
            os.path.isdir(os.path.join(PEERS, "node_modules", "grammy")))


def have_ptb():
    r = subprocess.run(["/usr/bin/python3", "-c",
                        "import telegram; print(telegram.__version__)"],
                       capture_output=True, text=True)
    return r.returncode == 0 and r.stdout.startswith("13.")


def main():
    h.parse_args()
    total = USERS * PER_USER
    results = {}
    took, cpu, idle = bench_opsdesk()
    results["opsdesk"] = (took, cpu)
    peers = os.environ.get("E2E_BENCH_PEERS", "grammy,ptb").split(",")
    if "grammy" not in peers:
        pass
    elif have_grammy():
        results["grammY"] = bench_peer(
            "grammy", ["node", os.path.join(PEERS, "grammy_bot.js")],
            lines)
    else:
        print("grammY not installed (npm ci in tests/bench/peers): skipped")
    if "ptb" not in peers:
        pass
    elif have_ptb():
        results["PTB 13"] = bench_peer(
            "ptb", ["/usr/bin/python3", os.path.join(PEERS, "ptb_bot.py")],
            rows)
    else:
        print("python-telegram-bot 13 not installed: skipped")

    print("%d updates from %d users (half /support), throttling off:" %
          (total, USERS))
    fakes = {"opsdesk": "opsdesk", "grammY": "grammy", "PTB 13": "ptb"}
    for name, (t, c) in results.items():
        print("  %-8s %7.0f updates/s  %6.3f CPU ms/update  (%.2fs, "
              "CPU %.2fs; the fake API meanwhile %.3f CPU ms/update)" % (
                  name, total / t, c * 1000.0 / total, t, c,
                  FAKE_CPU.get(fakes[name], 0) * 1000.0 / total))
    print("  gateway idle RSS %.1f MB (goal <= 16): %s" %
          (idle, "met" if idle <= 16 else "NOT met"))
    rate = total / results["opsdesk"][0]
    cpu = results["opsdesk"][1]
    for peer, want_rate in (("grammY", 2.0), ("PTB 13", 4.0)):
        if peer not in results:
            continue
        r = rate / (total / results[peer][0])
        print("  updates/s vs %s: %.2fx (goal >= %.0fx): %s" % (
            peer, r, want_rate, "met" if r >= want_rate else "NOT met"))
    if "grammY" in results:
        r = cpu / max(results["grammY"][1], 1e-9)
        print("  CPU/update vs grammY: %.2fx (goal <= 0.5x): %s" % (
            r, "met" if r <= 0.5 else "NOT met"))


if __name__ == "__main__":
    main()

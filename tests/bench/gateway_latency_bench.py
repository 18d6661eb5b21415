"""gateway_latency_bench.py -- interactive latency under load, with
Telegram's default limits on (30 sends/s overall, 1/s per chat, 20/min
per group), in one run.

Two phases, each a fresh suite (bus-relay, status-publisher,
incident-service, telegram-gateway against the recording fake Bot API):

- idle: nothing queued, nobody flooding;
- load: the gateway's store filled with LATENCY_BENCH_BROADCASTS (20,000)
  status broadcasts before it starts (outbox_bench --fill, as
  gateway_rss_bench.py does), and one user sending `/status` 20 times a
  second for the whole phase.

In each, LATENCY_BENCH_USERS (60) other users send one `/help` each, one
every 0.2 s, and a critical incident is raised every 2 s (6 in all; the
alert goes to the admin chat, a group). Latency is from the update being
queued at the fake to the reply (or the alert) arriving there.

Prints p50/p99/max of the replies and the alerts' latencies in both
phases, the load phase's p99 against the idle one's, the broadcast lane's
depth and the flooder's answered commands, and the issue's goals under
load (reply p99 <= 2 s, every alert <= 2 s) as met or not: the machine
may be shared. Asserts that every reply and alert arrived, that the
backlog stayed queued, and that no Telegram limit was breached.
"""

import os
import subprocess
import sys
import threading
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "system"))
import harness as h  # noqa: E402
from fake_telegram import FakeTelegram  # noqa: E402

TOKEN = "555:bench-token"
ADMIN = 1
ADMIN_CHAT = -500
BROADCASTS = int(os.environ.get("LATENCY_BENCH_BROADCASTS", "20000"))
USERS = int(os.environ.get("LATENCY_BENCH_USERS", "60"))
ALERTS = 6
FLOODER = 900
FIRST_USER = 5000
GOAL_S = 2.0


def start(s, fake, fill):
    s.config = {"admins": [ADMIN], "admin_chat": ADMIN_CHAT,
                "gateway": {"bot_username": "opsdesk_bot",
                            "poll_timeout": "1s"}}
    if fill:
        r = subprocess.run([os.path.join(h.ARGS.bin, "outbox_bench"),
                            "--fill", os.path.join(s.data_dir,
                                                   "telegram-gateway"),
                            str(BROADCASTS)], capture_output=True, text=True)
        h.eq(r.returncode, 0, "outbox_bench --fill: " + r.stderr)
    for exe in ("bus-relay", "status-publisher", "incident-service"):
        s.start(exe)
    gw = s.start("telegram-gateway", env={
        "TELEGRAM_API_URL": fake.url, "TELEGRAM_BOT_TOKEN": TOKEN,
        "OPSDESK_GATEWAY_MODE": "poll", "OPSDESK_LOG_LEVEL": "warn"})
    fake.wait_call("setMyCommands")
    return gw


def flood(fake, stop, sent):
    while not stop.is_set():
        fake.message("/status", user=FLOODER)
        sent[0] += 1
        stop.wait(0.05)


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def phase(name, fill):
    """Run one phase; a dict of its figures."""
    with h.Suite("gateway-latency-" + name) as s:
        fake = FakeTelegram(TOKEN, max_poll_wait=1.0)
        gw = start(s, fake, fill)
        if fill:
            h.wait_until(lambda: (h.metric(
                gw.metrics(), "opsdesk_gateway_outbox_lane_depth",
                lane="broadcast") or 0) > BROADCASTS - 1000, 30,
                "the broadcast backlog seen")
        stop = threading.Event()
        flooded = [0]
        flooder = None
        if fill:
            flooder = threading.Thread(target=flood,
                                       args=(fake, stop, flooded))
            flooder.start()
            # The flood is under way: its first answers are out.
            h.wait_until(lambda: fake.sent(chat=FLOODER), 10,
                         "the flood answered")
        m = fake.mark()
        asked, raised = {}, {}
        t_start = time.monotonic()
        for i in range(USERS):
            due = t_start + i * 0.2
            time.sleep(max(0.0, due - time.monotonic()))
            user = FIRST_USER + i
            asked[user] = time.monotonic()
            fake.message("/help", user=user)
            if i % 10 == 0 and len(raised) < ALERTS:
                title = "Bench alert %d" % len(raised)
                raised[title] = time.monotonic()
                s.call("incident", "create",
                       {"severity": "SEVERITY_CRITICAL", "title": title})
        replies = []
        for user, t0 in asked.items():
            r = fake.wait_sent(lambda r: r.chat == user, timeout=30, after=m)
            replies.append(r.at - t0)
        alerts = []
        for title, t0 in raised.items():
            a = fake.wait_sent(lambda r: r.chat == ADMIN_CHAT and
                               title in r.text, timeout=30, after=m)
            alerts.append(a.at - t0)
        stop.set()
        if flooder is not None:
            flooder.join()
        depth = h.metric(gw.metrics(), "opsdesk_gateway_outbox_lane_depth",
                         lane="broadcast") or 0
        answered = len(fake.sent(chat=FLOODER))
        breaches = list(fake.breaches[:5])
        gw.stop()
        fake.close()
    if fill:
        h.check(depth > BROADCASTS / 2,
                "the backlog stayed queued: depth %s" % depth)
    h.eq(breaches, [], "Telegram limits breached")
    return {"replies": replies, "alerts": alerts, "depth": depth,
            "flooded": flooded[0], "answered": answered}


def describe(f):
    r, a = f["replies"], f["alerts"]
    return ("replies p50 %.0f ms, p99 %.0f ms, max %.0f ms (%d users); "
            "alerts p50 %.0f ms, max %.0f ms (%d)" %
            (1000 * percentile(r, 50), 1000 * percentile(r, 99),
             1000 * max(r), len(r), 1000 * percentile(a, 50),
             1000 * max(a), len(a)))


def main():
    h.parse_args()
    idle = phase("idle", False)
    load = phase("load", True)
    p99_idle = percentile(idle["replies"], 99)
    p99_load = percentile(load["replies"], 99)
    alert_max = max(load["alerts"])
    print("interactive latency, default limits (30/s, 1/s per chat, "
          "20/min per group):")
    print("  idle gateway:   " + describe(idle))
    print("  under load:     " + describe(load))
    print("  load: %d broadcasts queued (lane depth %d at the end); one "
          "user sent %d /status, %d answered (the command budget)" %
          (BROADCASTS, load["depth"], load["flooded"], load["answered"]))
    print("  reply p99 under load vs idle: %.2fx" %
          (p99_load / p99_idle if p99_idle > 0 else 0))
    print("  reply p99 under load %.2f s (goal <= %.0f s): %s" %
          (p99_load, GOAL_S, "met" if p99_load <= GOAL_S else "NOT met"))
    print("  slowest alert under load %.2f s (goal <= %.0f s): %s" %
          (alert_max, GOAL_S, "met" if alert_max <= GOAL_S else "NOT met"))


if __name__ == "__main__":
    main()

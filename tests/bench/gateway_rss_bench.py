"""gateway_rss_bench.py -- the whole telegram-gateway's memory with
100,000 messages queued, against the same gateway idle, in one run.

The store is filled offline (outbox_bench --fill: 100,000 status
broadcasts to as many chats), then the gateway starts on it against the
fake Bot API with the default throttle (30/s), so the backlog stays while
it sends. RSS (VmRSS, and RssAnon) is sampled until 150 messages went.
The backlog lives in LMDB (file-backed pages, mapped read-only), not in
the heap: asserts VmRSS <= 64 MB.
"""

import os
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "system"))
import harness as h  # noqa: E402
from fake_telegram import FakeTelegram  # noqa: E402

TOKEN = "555:bench-token"
N = int(os.environ.get("GATEWAY_RSS_BENCH_N", "100000"))
LIMIT_MB = 64


def status_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def gateway(s, fake):
    s.start("bus-relay")
    return s.start("telegram-gateway", env={
        "TELEGRAM_API_URL": fake.url, "TELEGRAM_BOT_TOKEN": TOKEN,
        "OPSDESK_LOG_LEVEL": "warn"})


def main():
    h.parse_args()
    config = {"admins": [1], "gateway": {"poll_timeout": "1s"}}
    with h.Suite("gateway-rss-idle") as s:
        s.config = config
        fake = FakeTelegram(TOKEN, max_poll_wait=0.5)
        gw = gateway(s, fake)
        fake.wait_call("setMyCommands")
        idle = status_kb(gw.popen.pid, "VmRSS")
        idle_anon = status_kb(gw.popen.pid, "RssAnon")
        gw.stop()
        fake.close()

    with h.Suite("gateway-rss-100k") as s:
        s.config = config
        r = subprocess.run([os.path.join(h.ARGS.bin, "outbox_bench"),
                            "--fill", os.path.join(s.data_dir,
                                                   "telegram-gateway"),
                            str(N)], capture_output=True, text=True)
        h.eq(r.returncode, 0, "outbox_bench --fill: " + r.stderr)
        fake = FakeTelegram(TOKEN, max_poll_wait=0.5)
        gw = gateway(s, fake)
        peak = {"VmRSS": 0, "RssAnon": 0}

        def sample():
            for k in peak:
                peak[k] = max(peak[k], status_kb(gw.popen.pid, k))
            return len(fake.sent()) >= 150

        h.wait_until(sample, 60, "150 messages sent")
        depth = h.metric(gw.metrics(), "opsdesk_gateway_outbox_lane_depth",
                         lane="broadcast")
        gw.stop()
        fake.close()
    print("telegram-gateway idle: VmRSS %.1f MB, RssAnon %.1f MB" %
          (idle / 1024.0, idle_anon / 1024.0))
    print("with %d queued (broadcast lane depth %s while sending at "
          "30/s): VmRSS peak %.1f MB, RssAnon peak %.1f MB (limit %d MB)" %
          (N, depth, peak["VmRSS"] / 1024.0, peak["RssAnon"] / 1024.0,
           LIMIT_MB))
    h.check(depth is not None and depth > N - 1000,
            "the backlog was queued: depth %s" % depth)
    h.check(peak["VmRSS"] <= LIMIT_MB * 1024,
            "VmRSS %.1f MB over %d MB" % (peak["VmRSS"] / 1024.0, LIMIT_MB))


if __name__ == "__main__":
    main()

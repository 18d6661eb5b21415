"""gateway_bench.py -- telegram-gateway end to end.

1. Baseline: how many requests per second the fake Bot API itself serves
   (keep-alive sendMessage from one client thread per gateway sender),
   measured in the same run, so the gateway's figure reads as a ratio.
2. Throughput: N updates (/tickets from N different users, so chats do not
   serialize) queued at once; time until every reply was sent. Path: fake
   getUpdates -> gateway (inbox commit, worker, ticket-service list_mine,
   outbox commit) -> sendMessage to the fake. Throttling is off.
3. Latency: updates sent one at a time; per update the time from its
   delivery in getUpdates to its reply, minus the backend call's time
   (from the gateway's own histogram): p50 and p99 of what the gateway
   adds (two store commits, routing, rendering, the HTTP send).

Prints figures; asserts only that everything was answered.
"""

import http.client
import json
import os
import socket
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "system"))
import harness as h  # noqa: E402
from fake_telegram import FakeTelegram  # noqa: E402

TOKEN = "555:bench-token"


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def baseline(fake, n=2000):
    c = http.client.HTTPConnection("127.0.0.1", fake.port)
    c.connect()
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    body = json.dumps({"chat_id": 1, "text": "x", "parse_mode": "HTML"})
    t0 = time.monotonic()
    for _ in range(n):
        c.request("POST", "/bot%s/sendMessage" % TOKEN, body,
                  {"Content-Type": "application/json"})
        c.getresponse().read()
    return n / (time.monotonic() - t0)


def backend_seconds(gw):
    s = gw.metrics()
    total = count = 0.0
    for (name, labels), v in s.items():
        if name == "opsdesk_gateway_backend_duration_seconds_sum":
            total += v
        if name == "opsdesk_gateway_backend_duration_seconds_count":
            count += v
    return total, count


def main():
    h.parse_args()
    n = int(os.environ.get("GATEWAY_BENCH_N", "1000"))
    with h.Suite("gateway-bench") as s:
        s.config = {"admins": [1], "gateway": {
            "throttle": {"enabled": False}, "poll_timeout": "1s",
            "workers": 4}}
        fake = FakeTelegram(TOKEN, max_poll_wait=0.5)
        s.start("bus-relay")
        s.start("ticket-service")
        gw = s.start("telegram-gateway", env={
            "TELEGRAM_API_URL": fake.url, "TELEGRAM_BOT_TOKEN": TOKEN,
            "OPSDESK_LOG_LEVEL": "info"})
        fake.wait_call("setMyCommands")
        base = baseline(fake)

        # Throughput.
        m = fake.mark()
        t0 = time.monotonic()
        for i in range(n):
            fake.message("/tickets", user=10000 + i)
        h.wait_until(lambda: len([r for r in fake.requests[m:]
                                  if r.method == "sendMessage"]) >= n,
                     240, "%d replies" % n)
        took = time.monotonic() - t0
        rate = n / took

        # Latency, one update at a time.
        lat = []
        b0, c0 = backend_seconds(gw)
        k = 200
        for i in range(k):
            user = 50000 + i
            m = fake.mark()
            uid = fake.message("/tickets", user=user)
            r = fake.wait_sent(lambda r: r.chat == user, 10, after=m)
            lat.append(r.at - fake.delivered[uid])
        b1, c1 = backend_seconds(gw)
        backend = (b1 - b0) / max(1.0, c1 - c0)
        added = [max(0.0, x - backend) for x in lat]
        gw.stop()
        fake.close()
    print("fake Bot API alone: %.0f requests/s (one keep-alive client)"
          % base)
    print("gateway end to end: %d updates in %.2fs = %.0f updates/s "
          "(%.2f of the fake's own rate)" % (n, took, rate, rate / base))
    print("latency per update (delivery -> reply sent), sequential: "
          "p50 %.1f ms, p99 %.1f ms; backend call mean %.2f ms"
          % (pct(lat, 50) * 1e3, pct(lat, 99) * 1e3, backend * 1e3))
    print("added by the gateway: p50 %.1f ms, p99 %.1f ms"
          % (pct(added, 50) * 1e3, pct(added, 99) * 1e3))


if __name__ == "__main__":
    main()

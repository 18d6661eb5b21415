"""System tests of the gateway's own webhook listener
(gateway.webhook_listen): slow heads and bodies are cut off after their
time-outs, connections over the cap are answered 503 at once, the fd
count stays bounded, and a normal update is handled meanwhile."""

import http.client
import json
import os
import select
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from fake_telegram import FakeTelegram  # noqa: E402

TOKEN = "987654:SeCrEt-token-NEVER-logged"
SECRET = "hook_secret-123"
PATH = "/telegram/webhook"
USER = 42
CAP = 40


def start(s, **gateway):
    port = h.free_port()
    g = {"bot_username": "opsdesk_bot", "throttle": {"enabled": False},
         "webhook_listen": "127.0.0.1:%d" % port,
         "webhook_max_connections": CAP,
         "webhook_header_timeout": "1s", "webhook_body_timeout": "1s",
         "webhook_max_body": 4096}
    g.update(gateway)
    s.config = {"admins": [1], "admin_chat": -500, "gateway": g}
    fake = FakeTelegram(TOKEN, max_poll_wait=1.0)
    s.fake = fake
    s.start("bus-relay")
    gw = s.start("telegram-gateway", env={
        "TELEGRAM_API_URL": fake.url, "TELEGRAM_BOT_TOKEN": TOKEN,
        "OPSDESK_GATEWAY_MODE": "webhook",
        "TELEGRAM_WEBHOOK_SECRET": SECRET})
    h.wait_until(lambda: "webhook: listening" in gw.log_text(), 15,
                 "the webhook listener")
    return fake, gw, port


def update(uid, text="/help", user=USER):
    return json.dumps({"update_id": uid, "message": {
        "message_id": uid, "from": {"id": user, "first_name": "Ann"},
        "chat": {"id": user, "type": "private"}, "date": 1,
        "text": text}}).encode()


def post(port, body, secret=SECRET, conn=None):
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    hdr = {"Content-Type": "application/json"}
    if secret is not None:
        hdr["X-Telegram-Bot-Api-Secret-Token"] = secret
    c.request("POST", PATH, body=body, headers=hdr)
    r = c.getresponse()
    data = r.read()
    if conn is None:
        c.close()
    return r.status, data


def fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def connect(port):
    c = socket.create_connection(("127.0.0.1", port), timeout=5)
    c.setblocking(False)
    return c


def closed_by_peer(c):
    """True when the server has closed c (EOF or reset)."""
    r, _, _ = select.select([c], [], [], 0)
    if not r:
        return False
    try:
        data = c.recv(4096)
    except (ConnectionResetError, BlockingIOError):
        return True
    return data == b"" or data.startswith(b"HTTP/1.1 ")


def test_slow_clients_are_cut_off(s):
    fake, gw, port = start(s)
    base = fds(gw.pid)
    # The webhook is on its own listener now, not on the shared one.
    st, _, _ = gw.http_post(PATH, update(1))
    h.eq(st, 404, "the shared listener does not serve the webhook")

    # Slow heads and slow bodies, each trickling a byte every 0.2 s: a
    # time-out that restarted on every byte would never fire.
    slow = []
    for i in range(CAP // 2):
        c = connect(port)
        c.send(b"POST " + PATH.encode() + b" HTTP/1.1\r\n")
        slow.append(c)
    for i in range(CAP // 2):
        c = connect(port)
        c.send(b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: x\r\n"
               b"X-Telegram-Bot-Api-Secret-Token: " + SECRET.encode() +
               b"\r\nContent-Length: 3000\r\n\r\n{")
        slow.append(c)
    # The cap is reached: more connections are answered 503 at once.
    extra = [socket.create_connection(("127.0.0.1", port), timeout=5)
             for _ in range(10)]
    for c in extra:
        h.contains(c.recv(4096).decode(), "HTTP/1.1 503")
        c.close()
    h.check(fds(gw.pid) <= base + CAP + 2,
            "fds bounded by the cap: %d over %d" % (fds(gw.pid), base))

    t0 = time.monotonic()
    open_ = list(slow)
    while open_ and time.monotonic() - t0 < 6:
        still = []
        for c in open_:
            if closed_by_peer(c):
                c.close()
                continue
            try:
                c.send(b"a")
            except (BrokenPipeError, ConnectionResetError):
                c.close()
                continue
            still.append(c)
        open_ = still
        time.sleep(0.2)
    elapsed = time.monotonic() - t0
    h.eq(len(open_), 0, "slow connections still open after %.1fs"
         % elapsed)
    h.check(elapsed >= 0.5, "cut off before the time-out: %.1fs" % elapsed)
    h.wait_until(lambda: fds(gw.pid) <= base + 1, 5, "fds released")
    h.check((h.metric(gw.metrics(), "opsdesk_gateway_webhook_timeouts_total")
             or 0) >= CAP, "time-outs counted")
    h.check((h.metric(gw.metrics(), "opsdesk_gateway_webhook_refused_total")
             or 0) >= 10, "refusals counted")

    # Meanwhile (slow clients again, under the cap) a normal update is
    # answered at once and handled.
    slow = [connect(port) for _ in range(CAP - 5)]
    for c in slow:
        c.send(b"POST ")
    h.wait_until(lambda: (h.metric(
        gw.metrics(), "opsdesk_gateway_webhook_connections") or 0)
        >= CAP - 5, 5, "slow clients accepted")
    m = fake.mark()
    t = time.monotonic()
    st, body = post(port, update(2))
    h.eq(st, 200, body)
    h.check(time.monotonic() - t < 0.9, "answered before the time-out")
    r = fake.wait_sent(lambda r: r.chat == USER, after=m)
    h.contains(r.text, "Hello")
    for c in slow:
        c.close()
    gw.stop()


def test_requests(s):
    fake, gw, port = start(s)
    h.eq(post(port, update(10), secret=None)[0], 401, "no secret")
    h.eq(post(port, update(10), secret="wrong")[0], 401, "wrong secret")
    h.eq(post(port, b"not json")[0], 400)
    h.eq(post(port, b"x" * 5000)[0], 413, "over webhook_max_body")
    # Telegram keeps its connections: several updates on one.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    m = fake.mark()
    for uid in (11, 12, 13):
        h.eq(post(port, update(uid, user=USER + uid), conn=conn)[0], 200)
    conn.close()
    for uid in (11, 12, 13):
        fake.wait_sent(lambda r, u=uid: r.chat == USER + u, after=m)
    # A redelivered update is answered 200 and handled once.
    h.eq(post(port, update(11, user=USER + 11))[0], 200)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", "/elsewhere")
    h.eq(c.getresponse().status, 404)
    c.close()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", PATH)
    h.eq(c.getresponse().status, 405)
    c.close()
    time.sleep(0.5)  # an absence: no second answer
    h.eq(len(fake.sent(chat=USER + 11)), 1, "redelivery ignored")
    gw.stop()


if __name__ == "__main__":
    h.main()

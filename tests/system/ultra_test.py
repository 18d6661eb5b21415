"""System tests of the ultra tier and the support objectives: the real
gateway against the fake Bot API (fake_telegram.py) and the real
services. An ultra customer's tickets reach the ultra chat (or the admin
chat marked ULTRA, first in /queue), their /status_page holds a live view
edited in place while a free user's does not; ticket-service's support
objectives show in `opsctl call` and its metrics."""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from fake_telegram import FakeTelegram  # noqa: E402

ADMIN = 1
ULTRA = 42
FREE = 43
ADMIN_CHAT = -500
ULTRA_CHAT = -700
TOKEN = "987654:ultra-test-token"
BACKENDS = ["ticket-service", "incident-service", "health-prober",
            "status-publisher"]


def start(s, ultra_chat=None, tickets=None):
    s.config = {
        "admins": [ADMIN],
        "admin_chat": ADMIN_CHAT,
        "tickets": dict(tickets or {}),
        "targets": [
            {"id": "api", "name": "API", "group": "Core", "kind": "tcp",
             "host": "127.0.0.1",
             "port": int(s.http["bus-relay"].split(":")[1]),
             "interval": "1s", "timeout": "500ms", "failure_threshold": 1,
             "success_threshold": 1, "public": True}],
        "status_page": {"components": [{"id": "api", "name": "API"}],
                        "resync_interval": "1h", "history_interval": "1h"},
        "gateway": {"bot_username": "opsdesk_bot",
                    "throttle": {"enabled": False}, "poll_timeout": "1s",
                    "live_refresh": "1s", "live_ttl": "1m"},
    }
    if ultra_chat is not None:
        s.config["tickets"]["ultra_chat"] = ultra_chat
    fake = FakeTelegram(TOKEN, max_poll_wait=1.0)
    s.fake = fake
    s.start("bus-relay")
    for b in BACKENDS:
        s.start(b)
    gw = s.start("telegram-gateway", env={
        "TELEGRAM_API_URL": fake.url, "TELEGRAM_BOT_TOKEN": TOKEN,
        "OPSDESK_GATEWAY_MODE": "poll"})
    return fake, gw


def ask(fake, text, user, chat=None, timeout=8.0):
    chat = user if chat is None else chat
    m = fake.mark()
    fake.message(text, user=user, chat=chat)
    return fake.wait_sent(lambda r: r.chat == chat, timeout, after=m)


def message_id(fake, r):
    """The id the fake gave the message r sent."""
    with fake.lock:
        for (chat, mid), text in fake.messages.items():
            if chat == r.chat and text == r.text:
                return mid
    raise AssertionError("no message id for %r" % r)


def make_ultra(fake, user):
    h.contains(ask(fake, "/tier %d ultra" % user, ADMIN).text, "ultra")


def test_ultra_chat_and_live_status(s):
    fake, gw = start(s, ultra_chat=ULTRA_CHAT)
    make_ultra(fake, ULTRA)

    # A new ticket: the admin chat and the ultra chat, marked.
    m = fake.mark()
    h.contains(ask(fake, "/support the API is slow for us", ULTRA).text,
               "T-1")
    r = fake.wait_sent(lambda r: r.chat == ULTRA_CHAT, after=m)
    h.contains(r.text, "ULTRA")
    h.contains(r.text, "T-1")
    h.contains(r.text, "the API is slow")
    h.contains(r.text, "first response due in")
    a = fake.wait_sent(lambda r: r.chat == ADMIN_CHAT, after=m)
    h.contains(a.text, "ULTRA")
    # Staff answer by replying to it in the ultra chat.
    m = fake.mark()
    fake.message("we are on it", user=ADMIN, chat=ULTRA_CHAT,
                 chat_type="supergroup", reply_to=message_id(fake, r))
    c = fake.wait_sent(lambda x: x.chat == ULTRA and "we are on it" in
                       x.text, after=m)
    h.contains(c.text, "Support replied on T-1")
    # A free user's ticket stays in the admin chat, unmarked.
    m = fake.mark()
    h.contains(ask(fake, "/support my invoice", FREE).text, "T-2")
    a = fake.wait_sent(lambda r: r.chat == ADMIN_CHAT, after=m)
    h.contains(a.text, "T-2")
    h.check("ULTRA" not in a.text, a.text)
    # The ultra customer's later message goes to the ultra chat too; a
    # chat's messages go in order, so a copy of T-2 would be there first.
    m = fake.mark()
    ask(fake, "/addmsg 1 still slow after lunch", ULTRA)
    r = fake.wait_sent(lambda r: r.chat == ULTRA_CHAT, after=m)
    h.contains(r.text, "still slow after lunch")
    h.check(all("T-2" not in r.text for r in fake.sent(ULTRA_CHAT)),
            "a free ticket in the ultra chat")

    # The ultra user's /status_page: live latency per public component,
    # and its uptime once the component's state is settled (the latency
    # comes with the first check, the uptime after the checks that settle
    # it: an ASan run once asked in between).
    def live():
        r = ask(fake, "/status_page", ULTRA)
        return r if (re.search(r"API: now <b>\d+ ms</b>", r.text) and
                     "uptime 30 d" in r.text) else None
    r = h.wait_until(live, 20, "a live view with the API's latency and "
                     "uptime")
    h.contains(r.text, "Live monitoring")
    # Nothing of the probes (the target's address, its kind) in it; the
    # public page's own address is the only URL.
    section = r.text[r.text.index("Live monitoring"):]
    section = section[:section.index("Full page")]
    for secret in ("127.0.0.1", s.http["bus-relay"].split(":")[1], "tcp"):
        h.check(secret not in section, "%r in %r" % (secret, section))
    mid = message_id(fake, r)
    # ... edited in place by the refresher.
    m = fake.mark()
    e = fake.wait_call("editMessageText", lambda x: x.chat == ULTRA and
                       int(x.body.get("message_id", 0)) == mid,
                       timeout=10, after=m)
    h.contains(e.text, "Live monitoring")
    h.check(re.search(r"API: now <b>\d+ ms</b>", e.text), e.text)

    # A free user: the summary, no live view, nothing edited.
    r = ask(fake, "/status_page", FREE)
    h.contains(r.text, "API")
    h.check("Live monitoring" not in r.text, r.text)
    m = fake.mark()
    fake.wait_call("editMessageText", lambda x: x.chat == ULTRA, after=m,
                   timeout=10)  # the refresher ran meanwhile
    h.eq([x for x in fake.calls("editMessageText", chat=FREE)], [],
         "a free user's status was edited")

    # /help says what each has.
    h.contains(ask(fake, "/help", ULTRA).text, "Your ultra plan")
    h.contains(ask(fake, "/help", ULTRA).text, "dedicated support channel")
    h.check("ultra plan" not in ask(fake, "/help", FREE).text)

    # Back to free: the refresher stops editing within its cache's minute
    # at most; /status_page at once (the /tier forgets the cached tier).
    ask(fake, "/tier %d free" % ULTRA, ADMIN)
    h.check("Live monitoring" not in ask(fake, "/status_page", ULTRA).text)
    gw.stop()


def test_ultra_mark_and_queue(s):
    # Free tickets answer within 10 min here, so by due time alone the
    # free ticket would lead the queue; the ultra one still goes first.
    fake, gw = start(s, tickets={"sla": {"free": {"normal": {
        "first_response": "10m", "resolution": "1d"}}}})
    make_ultra(fake, ULTRA)
    m = fake.mark()
    h.contains(ask(fake, "/support printer jammed", FREE).text, "T-1")
    a = fake.wait_sent(lambda r: r.chat == ADMIN_CHAT and "T-1" in r.text,
                       after=m)
    h.check("ULTRA" not in a.text, a.text)
    m = fake.mark()
    h.contains(ask(fake, "/support checkout is down", ULTRA).text, "T-2")
    a = fake.wait_sent(lambda r: r.chat == ADMIN_CHAT and "T-2" in r.text,
                       after=m)
    h.contains(a.text, "⭐ <b>ULTRA</b>")
    h.contains(a.text, "first response due in")
    # The ultra ticket leads /queue with its clock, the free one after.
    q = ask(fake, "/queue", ADMIN).text
    h.contains(q, "⭐ ULTRA ⏱")
    h.check(q.index("T-2") < q.index("T-1"), q)
    # Answered: its clock stopped, it takes its place by due time.
    ask(fake, "/reply 2 looking into it", ADMIN)
    q = ask(fake, "/queue", ADMIN).text
    h.check("⭐ ULTRA" not in q, q)
    h.check(q.index("T-1") < q.index("T-2"), q)
    gw.stop()


def test_support_objectives(s):
    fake, gw = start(s, tickets={"objectives": {
        "first_response": 90, "csat": 4.5, "window": "7d"}})
    ticket = s.proc("ticket-service")
    ask(fake, "/support one", FREE)
    ask(fake, "/reply 1 here you go", ADMIN)
    m = fake.mark()
    ask(fake, "/resolve 1", ADMIN)
    fake.wait_sent(lambda r: r.chat == FREE and "/rate" in r.text, after=m)
    ask(fake, "/rate 1 4 fine", FREE)
    r = s.call("ticket", "objectives", {})
    obj = {o["name"]: o for o in r["objectives"]["objectives"]}
    fr = obj["support_first_response"]
    h.eq(int(fr["good"]), 1)
    h.eq(int(fr["total"]), 1)
    h.eq(fr["met"], True)
    h.eq(fr["target"], 90)
    h.eq(fr["window_days"], 7)
    cs = obj["support_csat"]
    h.eq(cs["actual"], 4)
    h.eq(cs.get("met", False), False, "4.0 < 4.5")
    # Not for users.
    s.call("ticket", "objectives", {}, as_user=FREE, expect=1)
    # The report's ticket part lists them, met or missed.
    rep = ask(fake, "/report", ADMIN).text
    h.contains(rep, "Support objectives (7 d)")
    h.contains(rep, "first response within SLA: 100.0% (target 90%, "
               "1 tickets) — met")
    h.contains(rep, "CSAT: 4.00 (target 4.5, 1 ratings) — MISSED")

    def gauges():
        m = ticket.metrics()
        v = h.metric(m, "opsdesk_slo_attainment_ratio",
                     objective="support_csat")
        return m if v is not None and abs(v - 0.8) < 1e-9 else None
    m = h.wait_until(gauges, 10, "the objectives' gauges")
    h.eq(h.metric(m, "opsdesk_slo_attainment_ratio",
                  objective="support_first_response"), 1)
    h.eq(h.metric(m, "opsdesk_slo_met", objective="support_csat"), 0)
    h.eq(h.metric(m, "opsdesk_slo_target_ratio",
                  objective="support_csat"), 0.9)
    h.eq(h.metric(m, "opsdesk_slo_error_budget_remaining_ratio",
                  objective="support_first_response"), 1)
    gw.stop()


if __name__ == "__main__":
    h.main()

"""System tests of the chat as a product (issue 15): subscriptions,
follow-ups by reply, /cancel, alerts edited in place, button refusals,
runbooks and postmortems — the real gateway against the fake Bot API
(fake_telegram.py) and the real opsdesk services."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from fake_telegram import FakeTelegram  # noqa: E402

ADMIN = 1
USER = 42
OTHER = 43
ADMIN_CHAT = -500
TOKEN = "987654:chat-test-token"
BACKENDS = ["ticket-service", "incident-service", "health-prober",
            "status-publisher"]


def config():
    return {
        "admins": [ADMIN],
        "admin_chat": ADMIN_CHAT,
        "status_page": {
            "components": [{"id": "db", "name": "Database"},
                           {"id": "api", "name": "API"},
                           {"id": "web", "name": "Web app"}],
            "resync_interval": "1h", "history_interval": "1h"},
        "incidents": {
            "runbooks": {"critical": "Page the on-call, open a bridge.",
                         "high": "Check the dashboards first."}},
        "gateway": {"bot_username": "opsdesk_bot",
                    "throttle": {"enabled": False},
                    "poll_timeout": "1s"},
    }


def start(s, backends=BACKENDS):
    s.config = config()
    fake = FakeTelegram(TOKEN, max_poll_wait=1.0)
    s.fake = fake
    s.start("bus-relay")
    for b in backends:
        s.start(b)
    e = {"TELEGRAM_API_URL": fake.url, "TELEGRAM_BOT_TOKEN": TOKEN,
         "OPSDESK_GATEWAY_MODE": "poll"}
    gw = s.start("telegram-gateway", env=e)
    return fake, gw


def ask(fake, text, user=USER, chat=None, timeout=8.0, **kw):
    """Send text as user, return the first reply to that chat."""
    chat = user if chat is None else chat
    m = fake.mark()
    fake.message(text, user=user, chat=chat, **kw)
    return fake.wait_sent(lambda r: r.chat == chat, timeout, after=m)


def press(fake, data, user=USER, chat=None, message_id=1, timeout=8.0,
          reply=True):
    """Press a button: (the reply or None, the answerCallbackQuery)."""
    chat = user if chat is None else chat
    m = fake.mark()
    fake.press(data, user=user, chat=chat, message_id=message_id)
    ans = fake.wait_call("answerCallbackQuery", timeout=timeout, after=m)
    try:
        r = fake.wait_sent(lambda r: r.chat == chat,
                           timeout if reply else 0.5, after=m)
    except AssertionError:
        r = None
    return r, ans


def quiet(fake, chat, m, secs=0.7):
    """Nothing was sent to chat since mark m (waits secs first)."""
    time.sleep(secs)
    got = [r for r in fake.sent(chat=chat) if fake.requests.index(r) >= m]
    h.eq(got, [], "nothing to %d" % chat)


def seed_components(s):
    """Make db, api and web known to status-publisher, as the prober's
    first health events would."""
    import json
    for cid, name in (("db", "Database"), ("api", "API"),
                      ("web", "Web app")):
        s.publish("health.changed", {"health_changed": {
            "target_id": cid, "name": name, "new_state": "UP",
            "public": True, "at_ms": int(time.time() * 1000)}})
    sp = s.proc("status-publisher")

    def known():
        st, body, _ = sp.http_get("/api/v2/components.json")
        return st == 200 and len(json.loads(body)["components"]) >= 3
    h.wait_until(known, msg="components on the page")


def status_change(s, comp, name, old, new, indicator="minor"):
    s.publish("status.changed", {"status_changed": {
        "indicator": indicator, "description": "Partial outage",
        "changes": [{"component_id": comp, "name": name,
                     "old_status": old, "new_status": new}]}})


def test_unsubscribe_one_from_all_keeps_the_others(s):
    fake, gw = start(s, backends=["status-publisher"])
    seed_components(s)
    h.contains(ask(fake, "/subscribe").text, "Subscribed")
    r = ask(fake, "/unsubscribe Database")
    h.contains(r.text, "Unsubscribed from Database")
    h.contains(r.text, "API")
    h.contains(r.text, "Web app")
    # The others still come...
    m = fake.mark()
    status_change(s, "api", "API", "operational", "major_outage")
    r = fake.wait_sent(lambda r: r.chat == USER, after=m)
    h.contains(r.text, "API")
    # ...the one dropped does not.
    m = fake.mark()
    status_change(s, "db", "Database", "operational", "major_outage")
    quiet(fake, USER, m)
    # By id too; the last one ends the subscription.
    h.contains(ask(fake, "/unsubscribe api").text, "Web app")
    h.contains(ask(fake, "/unsubscribe web").text, "no status notif")
    m = fake.mark()
    status_change(s, "web", "Web app", "operational", "major_outage")
    quiet(fake, USER, m)
    # An unknown name is said so, and changes nothing.
    ask(fake, "/subscribe api")
    h.contains(ask(fake, "/unsubscribe nosuch").text, "No public component")
    m = fake.mark()
    status_change(s, "api", "API", "major_outage", "operational")
    fake.wait_sent(lambda r: r.chat == USER, after=m)
    gw.stop()


if __name__ == "__main__":
    h.main()

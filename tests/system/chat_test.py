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


def msg_id(fake, chat, needle):
    """The id of the latest message to chat whose text has needle."""
    with fake.lock:
        ids = [mid for (c, mid), t in fake.messages.items()
               if c == chat and needle in t]
    h.check(ids, "no message with %r to %d" % (needle, chat))
    return max(ids)


def ticket(s, tid):
    return s.call("ticket", "get", {"id": tid})["ticket"]


def tickets_of(s, user):
    r = s.call("ticket", "list_mine", {"include_closed": True},
               as_user=user)
    return r["tickets"].get("tickets", [])


def texts(t):
    return [m.get("text", "") for m in t.get("messages", [])]


def test_cancel_ends_any_conversation(s):
    fake, gw = start(s, backends=["ticket-service"])
    # New ticket -> Urgent -> /cancel: nothing is filed.
    r = ask(fake, "/newticket")
    h.check(("✖️ Cancel", "1:cx") in r.buttons, r.buttons)
    r, _ = press(fake, "1:nt:urgent")
    h.contains(r.text, "describe the problem")
    h.check(("✖️ Cancel", "1:cx") in r.buttons, r.buttons)
    h.contains(ask(fake, "/cancel").text, "Cancelled")
    r = ask(fake, "The printer is on fire")
    h.contains(r.text, "I understand commands")
    h.eq(tickets_of(s, USER), [], "no ticket after /cancel")
    # The Cancel button does the same, editing the prompt in place.
    press(fake, "1:nt:high")
    r, ans = press(fake, "1:cx")
    h.contains(r.text, "Cancelled")
    h.eq(r.method, "editMessageText")
    ask(fake, "still nothing")
    h.eq(tickets_of(s, USER), [], "no ticket after Cancel")
    # With @bot in a group, and with nothing to cancel.
    h.contains(ask(fake, "/cancel@opsdesk_bot").text, "Nothing to cancel")
    # Adding a message and rating a ticket: Cancel on each step too.
    h.contains(ask(fake, "/support my disk is full").text, "T-1")
    r = ask(fake, "/addmsg 1")
    h.check(("✖️ Cancel", "1:cx") in r.buttons, r.buttons)
    h.contains(ask(fake, "/cancel").text, "Cancelled")
    ask(fake, "not for the ticket")
    h.eq(len(texts(ticket(s, 1))), 1, "the message was not added")
    gw.stop()


def test_replies_go_to_the_ticket(s):
    fake, gw = start(s, backends=["ticket-service"])
    h.contains(ask(fake, "/support printer on fire").text, "T-1")
    # A staff reply reaches the user; the user answers with Telegram's
    # reply to it.
    m = fake.mark()
    ask(fake, "/reply 1 What is your e-mail?", user=ADMIN)
    fake.wait_sent(lambda r: r.chat == USER and "Support replied" in r.text,
                   after=m)
    mid = msg_id(fake, USER, "Support replied on T-1")
    r = ask(fake, "My email is ann@example.com", reply_to=mid)
    h.contains(r.text, "Added to <b>T-1</b>")
    h.contains(texts(ticket(s, 1))[-1], "ann@example.com")
    # Resolved: a reply to the notice reopens it.
    m = fake.mark()
    ask(fake, "/resolve 1", user=ADMIN)
    fake.wait_sent(lambda r: r.chat == USER and "T-1" in r.text and
                   r.method == "sendMessage", after=m)
    h.eq(ticket(s, 1)["status"], "TICKET_STATUS_RESOLVED")
    mid = msg_id(fake, USER, "T-1")
    r = ask(fake, "It broke again", reply_to=mid)
    h.contains(r.text, "T-1")
    h.eq(ticket(s, 1)["status"], "TICKET_STATUS_OPEN")
    # An admin's reply in the admin chat is a staff reply, as before.
    mid = msg_id(fake, ADMIN_CHAT, "T-1")
    m = fake.mark()
    fake.message("Try turning it off and on", user=ADMIN, chat=ADMIN_CHAT,
                 chat_type="supergroup", reply_to=mid)
    fake.wait_sent(lambda r: r.chat == USER and "turning it off" in r.text,
                   after=m)
    # Plain follow-up text with one open ticket: offered to it.
    r = ask(fake, "Also my phone is 555")
    h.contains(r.text, "T-1")
    h.check(("✅ Add to T-1", "1:oy:1") in r.buttons, r.buttons)
    h.check(("📝 New ticket", "1:on") in r.buttons, r.buttons)
    h.check(("✖️ Cancel", "1:cx") in r.buttons, r.buttons)
    r, _ = press(fake, "1:oy:1")
    h.contains(r.text, "Added to <b>T-1</b>")
    h.contains(texts(ticket(s, 1))[-1], "phone is 555")
    # ...or a new ticket with it.
    ask(fake, "A different problem: invoices")
    r, _ = press(fake, "1:on")
    h.contains(r.text, "T-2")
    h.contains(ticket(s, 2)["subject"], "invoices")
    # Two open tickets: asked which; Cancel drops it, an old button after
    # that has expired.
    r = ask(fake, "which one?")
    h.check(("T-1", "1:oy:1") in r.buttons and
            ("T-2", "1:oy:2") in r.buttons, r.buttons)
    r, _ = press(fake, "1:cx")
    h.contains(r.text, "Cancelled")
    r, _ = press(fake, "1:oy:1")
    h.contains(r.text, "expired")
    h.check(all("which one" not in t for t in texts(ticket(s, 1))))
    # Someone else's ticket named in a reply: refused by the service.
    with fake.lock:
        fake.messages[(OTHER, 999)] = "ℹ️ T-2 is waiting for you"
    r = ask(fake, "let me in", user=OTHER, reply_to=999, chat=OTHER)
    h.check("Added" not in r.text, r.text)
    gw.stop()


if __name__ == "__main__":
    h.main()

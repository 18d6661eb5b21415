"""System tests of the chat as a product (issue 15): subscriptions,
follow-ups by reply, /cancel, alerts edited in place, button refusals,
runbooks and postmortems — the real gateway against the fake Bot API
(fake_telegram.py) and the real opsdesk services."""

import os
import re
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
            "stable_period": "2s", "tick": "100ms",
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


def press_in(fake, data, user, chat, message_id, chat_type="supergroup"):
    """Press a button on a message of a group; the answerCallbackQuery."""
    fake._cb_seq = getattr(fake, "_cb_seq", 0) + 1
    m = fake.mark()
    fake._update("callback_query", {
                         "id": "g%d" % fake._cb_seq,
                         "from": {"id": user, "is_bot": False,
                                  "first_name": "Bob" if user != ADMIN
                                  else "Alice"},
                         "message": {"message_id": message_id,
                                     "chat": {"id": chat,
                                              "type": chat_type},
                                     "date": int(time.time()),
                                     "text": "alert"},
                         "chat_instance": "2", "data": data})
    return fake.wait_call("answerCallbackQuery", timeout=8, after=m), m


def edit_of(fake, chat, mid, pred, m=0, timeout=10):
    return fake.wait_call(
        "editMessageText", lambda r: r.chat == chat and
        int(r.body.get("message_id", 0)) == mid and r.status == 200 and
        pred(r), timeout=timeout, after=m)


def health(s, target, new, old="UP"):
    s.publish("health.changed", {"health_changed": {
        "target_id": target, "name": target.upper(), "old_state": old,
        "new_state": new, "criticality": "CRITICAL", "public": True,
        "reason": "injected", "at_ms": int(time.time() * 1000)}})


def test_alerts_edited_in_place(s):
    fake, gw = start(s, backends=["incident-service"])
    m = fake.mark()
    s.call("incident", "create", {"severity": "SEVERITY_CRITICAL",
                                  "title": "API down"})
    alert = fake.wait_sent(lambda r: r.chat == ADMIN_CHAT and
                           "API down" in r.text, after=m)
    # The runbook of its severity comes with it.
    h.contains(alert.text, "Page the on-call")
    h.check(("✋ Acknowledge", "1:ia:1") in alert.buttons, alert.buttons)
    mid = msg_id(fake, ADMIN_CHAT, "API down")
    # ...and in /incident show; help lists the configured ones.
    h.contains(ask(fake, "/incident show 1", user=ADMIN).text,
               "Page the on-call")
    r = ask(fake, "/help_operations", user=ADMIN)
    h.contains(r.text, "Page the on-call")
    h.contains(r.text, "Check the dashboards first")
    h.contains(r.text, "15m response")
    # A non-admin pressing it in the group: a pop-up to them, nothing
    # in the group.
    ans, m = press_in(fake, "1:ia:1", OTHER, ADMIN_CHAT, mid)
    h.contains(ans.body.get("text", ""), "Admins only")
    h.check(ans.body.get("show_alert") is True, ans.body)
    quiet(fake, ADMIN_CHAT, m)
    h.eq(s.call("incident", "get", {"id": 1})["incident"].get(
        "acknowledged", False), False)
    # The admin acknowledges by button: the alert says who and when, and
    # loses its Acknowledge button.
    ans, m = press_in(fake, "1:ia:1", ADMIN, ADMIN_CHAT, mid)
    e = edit_of(fake, ADMIN_CHAT, mid, lambda r: "Acknowledged" in r.text,
                m)
    h.contains(e.text, "Alice")
    h.contains(e.text, "UTC")
    h.check(not any(d == "1:ia:1" for _, d in e.buttons), e.buttons)
    h.check(("✅ Resolve", "1:ir:1") in e.buttons, e.buttons)
    # ...and the press posts nothing new in the group (an absence).
    time.sleep(0.5)
    h.eq([r for r in fake.sent(chat=ADMIN_CHAT)
          if fake.requests.index(r) >= m and r.method == "sendMessage"],
         [], "only the alert changed")
    # A severity change by command edits it too.
    m = fake.mark()
    ask(fake, "/severity INC-1 high calmer now", user=ADMIN)
    edit_of(fake, ADMIN_CHAT, mid, lambda r: "<b>high</b>" in r.text, m)
    # A stale button pressed after the change: a pop-up, not a message.
    m = fake.mark()
    ask(fake, "/incident resolve 1 fixed the pool", user=ADMIN)
    e = edit_of(fake, ADMIN_CHAT, mid, lambda r: "Resolved" in r.text, m)
    h.contains(e.text, "Alice")
    h.check(not any(d in ("1:ia:1", "1:ir:1") for _, d in e.buttons),
            e.buttons)
    h.check(("📝 Postmortem", "1:ip:1") in e.buttons, e.buttons)
    ans, m = press_in(fake, "1:ir:1", ADMIN, ADMIN_CHAT, mid)
    h.check(ans.body.get("show_alert") is True, ans.body)
    quiet(fake, ADMIN_CHAT, m, 0.5)
    # Automatic: a component down opens one, its recovery resolves it
    # after the stable period; the alert is edited and the resolve told.
    m = fake.mark()
    health(s, "db", "DOWN")
    fake.wait_sent(lambda r: r.chat == ADMIN_CHAT and "DB" in r.text and
                   r.method == "sendMessage", after=m)
    mid2 = msg_id(fake, ADMIN_CHAT, "DB")
    health(s, "db", "UP", old="DOWN")
    e = edit_of(fake, ADMIN_CHAT, mid2,
                lambda r: "Resolved automatically" in r.text, m, 20)
    h.check(not any(d.startswith("1:ia") or d.startswith("1:ir")
                    for _, d in e.buttons), e.buttons)
    fake.wait_sent(lambda r: r.chat == ADMIN_CHAT and
                   "resolved automatically" in r.text and
                   r.method == "sendMessage", after=m)
    gw.stop()


def sent_since(fake, chat, m):
    return [r for r in fake.sent(chat=chat) if fake.requests.index(r) >= m]


def test_subscriber_notices(s):
    fake, gw = start(s, backends=["status-publisher", "incident-service"])
    seed_components(s)
    # Time passes on purpose: the gateway's status batching window (a
    # timer, nothing to poll) closes on the seeding's changes, whose
    # notices then go to nobody.
    time.sleep(3.5)
    h.contains(ask(fake, "/subscribe").text, "Subscribed")
    h.contains(ask(fake, "/subscribe web", user=OTHER).text, "Web app")
    # An outage of API: one notice, in words, with the incident.
    m = fake.mark()
    health(s, "api", "DOWN")
    r = fake.wait_sent(lambda r: r.chat == USER, after=m, timeout=15)
    time.sleep(4)  # an absence: the rest of the change would be here now
    h.eq(len(sent_since(fake, USER, m)), 1,
         "one notice per change: %r" % sent_since(fake, USER, m))
    h.check("major_outage" not in r.text and "operational" not in r.text,
            r.text)
    h.contains(r.text, "🔴 <b>Major outage</b>")
    h.contains(r.text, "<b>API</b>: Major outage (was Operational)")
    h.contains(r.text, "📣")
    h.eq(sent_since(fake, OTHER, m), [], "not their component")
    # Recovery: a green header, never a red one.
    m = fake.mark()
    health(s, "api", "UP", old="DOWN")
    r = fake.wait_sent(lambda r: r.chat == USER, after=m, timeout=15)
    h.contains(r.text, "✅ <b>Back to normal</b>")
    h.contains(r.text, "Operational again (was Major outage)")
    h.check("🔴" not in r.text and "🟠" not in r.text, r.text)
    # Maintenance: the maintenance symbol, to the web subscriber too.
    m = fake.mark()
    health(s, "web", "MAINTENANCE")
    r = fake.wait_sent(lambda r: r.chat == OTHER, after=m, timeout=15)
    h.contains(r.text, "🔧 <b>Maintenance</b>")
    h.contains(r.text, "Under maintenance")
    h.check("🟢" not in r.text, r.text)
    gw.stop()


def test_postmortem_in_chat_and_as_a_document(s):
    fake, gw = start(s, backends=["incident-service"])
    m = fake.mark()
    health(s, "db", "DOWN")
    fake.wait_sent(lambda r: r.chat == ADMIN_CHAT and "DB" in r.text,
                   after=m)
    ask(fake, "/incident ack 1", user=ADMIN)
    health(s, "db", "UP", old="DOWN")
    h.wait_until(lambda: s.call("incident", "get", {"id": 1})["incident"]
                 ["status"] == "INCIDENT_STATUS_RESOLVED", timeout=15,
                 msg="auto-resolved")
    r = ask(fake, "/incident postmortem 1", user=ADMIN)
    h.contains(r.text, "Postmortem INC-1")
    h.contains(r.text, "<b>Timeline</b>")
    h.contains(r.text, "Acknowledged")
    h.contains(r.text, "Affected: DB (down)")
    # One duration for the impact, in the summary and the window.
    import re
    lasted = re.search(r"lasted (\w+)", r.text).group(1)
    h.contains(r.text, "(%s)" % lasted)
    h.check(("📄 Markdown file", "1:ipm:1") in r.buttons, r.buttons)
    # Action items with an owner and a due date, from the chat.
    r = ask(fake, "/incident postmortem 1 action Alert on disk usage "
            "owner=alice due=2030-01-15", user=ADMIN)
    h.contains(r.text, "1. ◻️ Alert on disk usage — owner: alice — due "
               "2030-01-15")
    r = ask(fake, "/incident postmortem 1 action x due=2030-13-45",
            user=ADMIN)
    h.contains(r.text, "Usage")
    r = ask(fake, "/incident postmortem 1 done 1", user=ADMIN)
    h.contains(r.text, "1. ☑️ Alert on disk usage")
    # The Markdown as a file, by command and by button.
    m = fake.mark()
    fake.message("/incident postmortem INC-1 md", user=ADMIN)
    d = fake.wait_call("sendDocument", lambda r: r.chat == ADMIN, after=m)
    h.eq(d.status, 200)
    doc = d.body["document"]
    h.eq(doc["filename"], "INC-1-postmortem.md")
    h.contains(doc["content"], "# Postmortem: INC-1")
    h.contains(doc["content"], "owner: alice")
    h.contains(doc["content"], lasted)
    m = fake.mark()
    fake.press("1:ipm:1", user=ADMIN)
    d = fake.wait_call("sendDocument", lambda r: r.chat == ADMIN, after=m)
    h.eq(d.body["document"]["filename"], "INC-1-postmortem.md")
    gw.stop()


def test_smaller_items(s):
    s.config = config()
    s.config["tickets"] = {"limits": {"open_per_user": 1}}
    s.config["maintenance"] = {"reminder_before": "2s"}
    s.config["targets"] = [{"id": "db", "name": "Database", "kind": "tcp",
                            "host": "127.0.0.1", "port": h.free_port(),
                            "interval": "1h"}]
    fake = FakeTelegram(TOKEN, max_poll_wait=1.0)
    s.fake = fake
    for b in ["bus-relay"] + BACKENDS:
        s.start(b)
    gw = s.start("telegram-gateway", env={
        "TELEGRAM_API_URL": fake.url, "TELEGRAM_BOT_TOKEN": TOKEN,
        "OPSDESK_GATEWAY_MODE": "poll"})
    # The limit is said once.
    h.contains(ask(fake, "/support first").text, "T-1")
    r = ask(fake, "/support second")
    h.contains(r.text, "Limit reached")
    h.eq(r.text.lower().count("limit reached"), 1, r.text)
    # /assign says to whom.
    h.contains(ask(fake, "/assign 1 me", user=ADMIN).text,
               "assigned to you")
    h.contains(ask(fake, "/assign 1 77", user=ADMIN).text,
               "assigned to user 77")
    # Closed tickets stay in /tickets.
    ask(fake, "/close 1", user=ADMIN)
    r = ask(fake, "/tickets")
    h.contains(r.text, "T-1")
    h.check("None yet" not in r.text, r.text)
    # /maintenance add: unknown components refused, each mistake said,
    # the example in the future with real components.
    r = ask(fake, "/maintenance add 2099-01-01T02:00Z 90m nosuch Upgrade",
            user=ADMIN)
    h.contains(r.text, "There is no component <b>nosuch</b>")
    h.contains(r.text, "Components: db")
    h.check(s.call("incident", "maintenance_list", {}).get(
        "maintenance", {}).get("windows", []) == [], "nothing scheduled")
    h.contains(ask(fake, "/maintenance add tomorrow 90m db Up",
                   user=ADMIN).text, "The start is a date")
    h.contains(ask(fake, "/maintenance add 2099-01-01T02:00Z soon db Up",
                   user=ADMIN).text, "The duration is like")
    h.contains(ask(fake, "/maintenance add 2001-01-01T02:00Z 1h db Up",
                   user=ADMIN).text, "already be over")
    r = ask(fake, "/maintenance", user=ADMIN)
    ex = re.search(r"/maintenance add (\d{4}-\d\d-\d\d)T", r.text)
    h.check(ex and ex.group(1) > time.strftime("%Y-%m-%d", time.gmtime()),
            r.text)
    h.contains(ask(fake, "/maintenance add 2099-01-01T02:00Z 90m DB Up",
                   user=ADMIN).text, "MNT-1")
    h.contains(ask(fake, "/maintenance list", user=ADMIN).text,
               "components: Database")
    # A reminder names the components (not their ids).
    m = fake.mark()
    now = int(time.time() * 1000)
    s.call("incident", "maintenance_create", {
        "title": "Disk swap", "components": ["db"],
        "start_ms": now + 4000, "end_ms": now + 60000})
    r = fake.wait_sent(lambda r: r.chat == ADMIN_CHAT and
                       "Disk swap" in r.text, after=m, timeout=15)
    h.contains(r.text, "Affects: Database")
    # /monitor lists recent alerts.
    s.call("incident", "create", {"severity": "SEVERITY_CRITICAL",
                                  "title": "Checkout broken"})
    h.wait_until(lambda: "Checkout broken" in ask(
        fake, "/monitor", user=ADMIN).text.split("Recent alerts")[-1],
        msg="the alert in /monitor")
    gw.stop()


if __name__ == "__main__":
    h.main()

"""System tests of telegram-gateway: the real gateway against the fake Bot
API server (fake_telegram.py) and the real opsdesk services."""

import json
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from fake_telegram import FakeTelegram  # noqa: E402

ADMIN = 1
USER = 42
OTHER = 43
ADMIN_CHAT = -500
TOKEN = "987654:SeCrEt-token-NEVER-logged"
BACKENDS = ["ticket-service", "incident-service", "health-prober",
            "status-publisher"]


def config(throttle=False):
    return {
        "admins": [ADMIN],
        "admin_chat": ADMIN_CHAT,
        "faq": [{"question": "How do I open a ticket?",
                 "answer": "Send /support <text>.", "tags": ["ticket"]}],
        "checklists": {"daily": [{"id": "backups", "text":
                                  "Check backups"}]},
        "gateway": {"bot_username": "opsdesk_bot",
                    "throttle": {"enabled": throttle},
                    "poll_timeout": "1s"},
    }


def start(s, backends=BACKENDS, throttle=False, mode="poll", env=None,
          wait="/readyz"):
    s.config = config(throttle)
    fake = FakeTelegram(TOKEN, max_poll_wait=1.0)
    s.fake = fake
    s.start("bus-relay")
    for b in backends:
        s.start(b)
    e = {"TELEGRAM_API_URL": fake.url, "TELEGRAM_BOT_TOKEN": TOKEN,
         "OPSDESK_GATEWAY_MODE": mode}
    e.update(env or {})
    gw = s.start("telegram-gateway", env=e, wait=wait)
    return fake, gw


def ask(fake, text, user=USER, chat=None, timeout=8.0, **kw):
    """Send text as user, return the first reply to that chat."""
    chat = user if chat is None else chat
    m = fake.mark()
    fake.message(text, user=user, chat=chat, **kw)
    return fake.wait_sent(lambda r: r.chat == chat, timeout, after=m)


def press(fake, data, user=USER, message_id=1, timeout=8.0, reply=True):
    """Press a button; (reply or None, the answerCallbackQuery). The
    answer goes out when the update is committed, the reply through the
    outbox just after: wait for it (reply=False: make sure none comes)."""
    m = fake.mark()
    fake.press(data, user=user, message_id=message_id)
    ans = fake.wait_call("answerCallbackQuery", timeout=timeout, after=m)
    try:
        r = fake.wait_sent(lambda r: r.chat == user,
                           timeout if reply else 0.5, after=m)
    except AssertionError:
        r = None
    return r, ans


def check_html(text):
    """Telegram HTML: only the allowed tags, every & an entity."""
    for tag in re.findall(r"</?([a-zA-Z-]+)[^>]*>", text):
        h.check(tag in ("b", "i", "u", "s", "code", "pre", "a",
                        "blockquote", "tg-spoiler"),
                "tag <%s> not allowed in %r" % (tag, text[:200]))
    for amp in re.finditer(r"&", text):
        h.check(re.match(r"&(lt|gt|amp|quot);", text[amp.start():]),
                "bare & in %r" % text[max(0, amp.start() - 20):][:60])
    h.check(len(text) <= 4096, "message over 4096: %d" % len(text))


def no_token(s, gw):
    h.check(TOKEN not in gw.log_text(), "token in the log")
    st, body, _ = gw.http_get("/metrics")
    h.check(TOKEN.encode() not in body, "token in /metrics")
    h.check(TOKEN.split(":")[1] not in gw.log_text(), "token part in log")


def test_user_and_admin_commands(s):
    fake, gw = start(s)
    # Everyone's commands, answered for a user and an admin.
    for who in (USER, ADMIN):
        for cmd, want in [
                ("/start", "Hello"), ("/help", "/support"),
                ("/help@opsdesk_bot", "Hello"),
                ("/help_operations", "Operations"),
                ("/status_page", ""),
                ("/status", ""), ("/subscribe", "Subscribed"),
                ("/unsubscribe", "Unsubscribed"), ("/support", "Support"),
                ("/support my printer is on fire", "opened"),
                ("/tickets", "Your tickets"), ("/faq", "FAQ"),
                ("/faq ticket", "open a ticket"),
                ("/ticket", "Usage"), ("/nonsense", "Unknown command")]:
            r = ask(fake, cmd, user=who)
            check_html(r.text)
            h.contains(r.text, want, "%s as %d" % (cmd, who))
    # The status summary comes with Refresh and Subscribe buttons.
    r = ask(fake, "/status")
    h.check(("🔄 Refresh", "1:st") in r.buttons, r.buttons)
    # Menus: help has an Operations button.
    r = ask(fake, "/help")
    h.check(any(d == "1:ho" for _, d in r.buttons), r.buttons)
    # Admin commands: refused for a user, answered for the admin.
    admin_cmds = [
        ("/health", "Health"), ("/monitor", "Monitor"), ("/ops", "Operations"),
        ("/incident", "Incidents"),
        ("/incident new high Database is slow", "INC-"),
        ("/incident list", "INC-"), ("/incident list all", "INC-"),
        ("/incident show 1", "INC-1"), ("/incident ack INC-1", "Acknowledged"),
        ("/incident update 1 identified found it", "Updated"),
        ("/incident resolve 1 fixed", "Resolved"),
        ("/incident postmortem 1", "Postmortem"),
        ("/incident postmortem 1 rootcause disk full", "disk full"),
        ("/maintenance", "Maintenance"),
        ("/maintenance add 2030-01-01T02:00Z 90m api Upgrade", "MNT-"),
        ("/maintenance list", "MNT-"), ("/maintenance cancel 1", "cancelled"),
        ("/queue", "Queue"), ("/reply 1 hello from staff", "Reply sent"),
        ("/note 1 internal", "note"), ("/assign 1 me", "assigned"),
        ("/priority 1 high", "priority"), ("/pending 1", "pending"),
        ("/resolve 1", "resolved"), ("/close 1", "closed"),
        ("/tier 42 ultra", "ultra"), ("/report", "Report"),
        ("/report week", "Report"), ("/help_admin", "Admin reference"),
        ("/incident new nonsense x", "Usage"), ("/tier 42 gold", "Usage"),
    ]
    for cmd, want in admin_cmds:
        r = ask(fake, cmd, user=OTHER)
        h.contains(r.text, "admins only", cmd)
    for cmd, want in admin_cmds:
        r = ask(fake, cmd, user=ADMIN)
        check_html(r.text)
        h.contains(r.text, want, cmd)
    # The user's tier shows in /support after /tier.
    h.contains(ask(fake, "/support").text, "ultra")
    # The staff reply reached the ticket's owner (ticket.replied), and
    # the close came with rating buttons (ticket.notify).
    fake.wait_sent(lambda r: r.chat == USER and "Support replied" in r.text)
    r = fake.wait_sent(lambda r: r.chat == USER and "closed" in r.text)
    h.check(("5⭐", "1:tr:1:5") in r.buttons, r.buttons)
    r, ans = press(fake, "1:tr:1:5")
    h.contains(r.text, "Add a comment")
    h.contains(ask(fake, "Great <support>!").text, "Thank you")
    t = s.call("ticket", "get", {"id": 1}, as_user=USER)
    h.eq(t["ticket"].get("rating"), 5)
    h.eq(t["ticket"].get("rating_comment"), "Great <support>!")
    # And the new ticket reached the admin chat (ticket.created).
    fake.wait_sent(lambda r: r.chat == ADMIN_CHAT and "New ticket" in r.text)
    # Group: a command for another bot is ignored, ours answered.
    m = fake.mark()
    fake.message("/help@other_bot", user=USER, chat=-77,
                 chat_type="supergroup")
    r = ask(fake, "/help@OpsDesk_Bot", user=USER, chat=-77,
            chat_type="supergroup")
    h.eq(len([x for x in fake.sent(chat=-77)
              if fake.requests.index(x) >= m]), 1)
    # setMyCommands at start-up, for users and scoped for admins.
    scoped = [c for c in fake.calls("setMyCommands") if "scope" in c.body]
    h.check(scoped and scoped[0].body["scope"]["chat_id"] == ADMIN, scoped)
    plain = [c for c in fake.calls("setMyCommands") if "scope" not in c.body]
    h.check(plain and not any(c["command"] == "health"
                              for c in plain[0].body["commands"]), plain)
    samples = gw.metrics()
    h.check(h.metric(samples, "opsdesk_gateway_commands_total",
                     command="help") >= 2, "commands metric")
    h.check(h.metric(samples, "opsdesk_gateway_updates_total",
                     type="message") > 50, "updates metric")
    no_token(s, gw)
    gw.stop()


def test_buttons_and_forged_buttons(s):
    fake, gw = start(s)
    inc = ask(fake, "/incident new critical API down", user=ADMIN)
    h.contains(inc.text, "INC-1")
    h.check(("✋ Acknowledge", "1:ia:1") in inc.buttons, inc.buttons)
    # A non-admin forging every admin button: refused, nothing changed.
    for data in ["1:ia:1", "1:ir:1", "1:is:1", "1:il", "1:mo", "1:hl",
                 "1:op", "1:ck:daily:backups", "1:q", "1:rp:day", "1:im",
                 "1:ha", "1:mt"]:
        r, ans = press(fake, data, user=OTHER)
        h.check(r is not None and "admins only" in r.text, (data, r))
        h.contains(ans.body.get("text", ""), "Admins only", data)
    # Malformed and stale data: answered, nothing else.
    for data in ["garbage", "0:ia:1", "1:zz", "1:ia:1:2:3", "1:ia:/x"]:
        r, ans = press(fake, data, user=OTHER, reply=False)
        h.check(r is None, (data, r))
        h.check(ans.body.get("text"), "answer text for %s" % data)
    inc = s.call("incident", "get", {"id": 1})
    h.check(not inc["incident"].get("acknowledged"), inc)
    h.check(inc["incident"]["status"] != "INCIDENT_STATUS_RESOLVED", inc)
    # The admin's button works; Refresh edits in place.
    r, ans = press(fake, "1:ia:1", user=ADMIN)
    h.contains(r.text, "Acknowledged")
    r, ans = press(fake, "1:mo", user=ADMIN, message_id=r.body.get(
        "message_id", 5) or 5)
    h.eq(r.method, "editMessageText")
    # Pressing Refresh again on an unchanged page: "not modified" is fine.
    fake.fail("editMessageText", 400)
    r2, ans = press(fake, "1:st", user=USER, message_id=99)
    h.check(ans is not None)
    # Conversation: New ticket -> priority -> text.
    r, _ = press(fake, "1:nt")
    h.check(("🟠 High", "1:nt:high") in r.buttons, r.buttons)
    r, _ = press(fake, "1:nt:high")
    h.contains(r.text, "describe")
    r = ask(fake, "The export button does nothing")
    h.contains(r.text, "opened (priority high)")
    # Another user's ticket: not found, by command and by button.
    tid = re.search(r"T-(\d+)", r.text).group(1)
    h.contains(ask(fake, "/ticket T-%s" % tid, user=OTHER).text, "Not found")
    r, _ = press(fake, "1:tv:%s" % tid, user=OTHER)
    h.contains(r.text, "Not found")
    r, _ = press(fake, "1:tm:%s" % tid, user=OTHER)
    h.contains(ask(fake, "sneaky message", user=OTHER).text, "Not found")
    r, _ = press(fake, "1:tr:%s:1" % tid, user=OTHER)
    h.contains(r.text, "Not found")
    t = s.call("ticket", "get", {"id": int(tid)}, as_user=USER)
    h.eq(len(t["ticket"]["messages"]), 1, "nobody else wrote on it")
    # Every callback query was answered.
    h.wait_until(lambda: len(fake.calls("answerCallbackQuery")) ==
                 fake._cb_seq, 5, "an answer for every press")
    # An admin replying to the ticket notification answers the customer.
    note = fake.wait_sent(lambda r: r.chat == ADMIN_CHAT and
                          ("T-%s" % tid) in r.text and "New ticket" in r.text)
    msg_id = [k[1] for k, v in fake.messages.items()
              if k[0] == ADMIN_CHAT and v == note.text][0]
    m = fake.mark()
    fake.message("We are on it", user=ADMIN, chat=ADMIN_CHAT,
                 chat_type="supergroup", reply_to=msg_id)
    fake.wait_sent(lambda r: r.chat == USER and "We are on it" in r.text,
                   after=m)
    no_token(s, gw)
    gw.stop()


def test_hostile_text(s):
    fake, gw = start(s, backends=["ticket-service"])
    hostile = "<b>bold</b> & <script>x</script> \udcff\udcfe " + "é" * 1900
    # Over the service's limit: a clear error, escaped, nothing created.
    r = ask(fake, "/support " + "<&>" + "x" * 5000)
    check_html(r.text)
    h.contains(r.text, "Could not do that")
    r = ask(fake, "/support " + hostile)
    h.contains(r.text, "opened")
    tid = re.search(r"T-(\d+)", r.text).group(1)
    # Two long messages make a thread over 4096 characters.
    h.contains(ask(fake, "/addmsg %s %s" % (tid, hostile)).text, "Added")
    m = fake.mark()
    fake.message("/ticket " + tid)

    def thread_parts():
        return [x for x in fake.sent(chat=USER)
                if fake.requests.index(x) >= m]
    # The thread is split into messages: wait for them, not a fixed time.
    h.wait_until(lambda: len(thread_parts()) >= 2, 15,
                 "the thread in two messages or more")
    parts = thread_parts()
    for p in parts:
        check_html(p.text)
    text = "".join(p.text for p in parts)
    h.contains(text, "&lt;b&gt;bold&lt;/b&gt; &amp; &lt;script&gt;")
    h.check(len(parts) >= 2, "a long thread is split: %d" % len(parts))
    # Unknown commands echo escaped too.
    r = ask(fake, "/x<b>")
    check_html(r.text)
    gw.stop()


def test_429_and_5xx(s):
    fake, gw = start(s, backends=[])
    fake.fail("sendMessage", 429, retry_after=2)
    m = fake.mark()
    fake.message("/help", user=USER)
    fake.message("/help", user=OTHER)
    first = fake.wait_call("sendMessage", lambda r: r.status == 429,
                           after=m)
    ok = fake.wait_sent(lambda r: r.method == "sendMessage" and
                        r.chat == first.chat, after=m, timeout=10)
    # Sends already in flight when the 429 came may land just after it;
    # none may start within retry_after of it.
    later = [r for r in fake.calls("sendMessage")
             if r.at > first.at + 0.2]
    h.check(later, "a send after the 429")
    h.check(min(r.at for r in later) - first.at >= 1.95,
            "sendMessage again %.2fs after a 429 with retry_after=2" %
            (min(r.at for r in later) - first.at))
    h.check(ok.at - first.at >= 1.95)
    fake.wait_sent(lambda r: r.chat == OTHER, after=m)
    h.check(h.metric(gw.metrics(), "opsdesk_gateway_botapi_429_total")
            >= 1, "429 metric")
    # 5xx: retried with backoff until delivered.
    fake.fail("sendMessage", 502, times=2)
    m = fake.mark()
    fake.message("/help", user=USER)
    r = fake.wait_sent(lambda r: r.chat == USER, after=m, timeout=10)
    fails = [x for x in fake.calls("sendMessage")
             if x.status == 502 and fake.requests.index(x) >= m]
    h.eq(len(fails), 2)
    h.check(r.at - fails[0].at >= 2.5, "backoff 1 s then 2 s")
    # 403: the chat is marked blocked, nothing more is sent to it.
    fake.block(OTHER)
    m = fake.mark()
    fake.message("/help", user=OTHER)
    fake.wait_call("sendMessage", lambda r: r.status == 403, after=m)
    h.wait_until(lambda: h.metric(gw.metrics(),
                                  "opsdesk_gateway_blocked_chats") == 1,
                 5, "blocked chats gauge")
    no_token(s, gw)
    gw.stop()


def test_409_backs_off(s):
    fake, gw = start(s, backends=[])
    fake.fail("getUpdates", 409, times=3)
    t0 = time.monotonic()
    r = ask(fake, "/help", timeout=20)
    h.wait_until(lambda: len([c for c in fake.calls("getUpdates")
                              if c.status == 409]) == 3, 15, "3 conflicts")
    conflicts = [c for c in fake.calls("getUpdates") if c.status == 409]
    h.check(fake.wait_call("getUpdates", lambda c: c.status == 200,
                           after=fake.requests.index(conflicts[-1])),
            "polling again after the conflicts")
    gaps = [b.at - a.at for a, b in zip(conflicts, conflicts[1:])]
    h.check(all(g >= 2.9 for g in gaps), "409 backoff gaps %r" % gaps)
    gw.stop()


def test_kill9_exactly_once(s):
    fake, gw = start(s, backends=["ticket-service"])
    per_round, rounds = 30, 4
    users = []
    for k in range(rounds):
        ids = []
        for i in range(per_round):
            user = 1000 + k * per_round + i
            users.append(user)
            ids.append(fake.message("/support crash test %d" % user,
                                    user=user))
        # Crash mid-batch: at a different point each round (accepting,
        # handling, sending).
        time.sleep(0.02 + 0.06 * k)
        gw.kill()
        gw.restart()
    h.wait_until(lambda: all(
        any("opened" in r.text for r in fake.sent(chat=u)) for u in users),
        30, "every update answered")
    fake.wait_confirmed(ids[-1])
    q = s.call("ticket", "queue", {"page": {"limit": 100}})
    tickets = q.get("tickets", {}).get("tickets", [])
    q2 = s.call("ticket", "queue", {"page": {
        "limit": 100, "cursor": q["tickets"].get("next_cursor", "")}}) \
        if q["tickets"].get("next_cursor") else {}
    tickets += q2.get("tickets", {}).get("tickets", [])
    owners = sorted(int(t["owner_id"]) for t in tickets)
    h.eq(owners, sorted(users), "one ticket per update after %d kills"
         % rounds)
    replays = gw.log_text().count("replaying")
    print("  kill -9 x%d: %d restarts replayed accepted updates" %
          (rounds, replays))
    gw.stop()


def test_severity_command(s):
    """/severity re-classifies an incident: admins only (the gateway and
    the service both check), usage on bad input, the service's refusal
    shown, the change in the incident's timeline and SLA."""
    fake, gw = start(s, backends=["incident-service"])
    h.contains(ask(fake, "/severity 1 high", user=OTHER).text,
               "admins only")
    for bad in ("/severity", "/severity 1", "/severity INC-1 urgent",
                "/severity x high"):
        r = ask(fake, bad, user=ADMIN)
        h.contains(r.text, "Usage", bad)
        h.contains(r.text, "/severity INC-&lt;id&gt; "
                   "&lt;critical|high|medium|low&gt; [reason]", bad)
    h.contains(ask(fake, "/severity 9 high", user=ADMIN).text,
               "INC-9 does not exist")
    h.contains(ask(fake, "/incident new low Checkout slow",
                   user=ADMIN).text, "INC-1")
    r = ask(fake, "/severity INC-1 critical card payments <fail>",
            user=ADMIN)
    check_html(r.text)
    h.contains(r.text, "Severity set to critical")
    h.contains(r.text, "Severity: <b>critical</b>")
    inc = s.call("incident", "get", {"id": 1})["incident"]
    h.eq(inc["severity"], "SEVERITY_CRITICAL")
    h.eq(inc["response_due_ms"], inc["created_ms"] + 15 * 60 * 1000)
    e = inc["timeline"][-1]
    h.eq(e["text"], "Severity low -> critical: card payments <fail>")
    h.eq(e["author_id"], ADMIN)
    h.check(not e.get("public"), "internal")
    h.contains(ask(fake, "/severity 1 CRITICAL", user=ADMIN).text,
               "already of that severity")
    h.contains(ask(fake, "/help_admin", user=ADMIN).text, "/severity")
    h.contains(ask(fake, "/help_operations", user=ADMIN).text, "/severity")
    admin_menu = [c for c in fake.calls("setMyCommands")
                  if "scope" in c.body]
    h.check(any(c["command"] == "severity"
                for c in admin_menu[0].body["commands"]), admin_menu)
    gw.stop()


def test_postmortem_says_what_is_live(s):
    """With health-prober and ticket-service absent, nothing of the
    postmortem's window is stored yet: the chat says those parts were
    asked live."""
    fake, gw = start(s, backends=["incident-service"])
    ask(fake, "/incident new high API errors", user=ADMIN)
    ask(fake, "/incident resolve 1 rolled back", user=ADMIN)
    r = ask(fake, "/incident postmortem 1", user=ADMIN)
    check_html(r.text)
    h.contains(r.text, "Postmortem INC-1")
    h.contains(r.text, "the health prober did not answer")
    h.contains(r.text, "asked live: not stored with the postmortem yet")
    gw.stop()


def test_backends_down_answer_fast(s):
    fake, gw = start(s)
    cases = {
        "ticket-service": [
            "/support", "/support help me", "/tickets", "/ticket 1",
            "/faq", "/faq printer", "/queue", "/reply 1 hi", "/note 1 x",
            "/close 1", "/resolve 1", "/pending 1", "/assign 1 me", "/priority 1 high", "/tier 5 pro",
            "/addmsg 1 more", "/rate 1 5"],
        "incident-service": [
            "/incident list", "/incident list all", "/incident show 1",
            "/incident new low x", "/incident ack 1",
            "/incident update 1 identified x", "/incident resolve 1",
            "/incident postmortem 1", "/severity 1 high", "/maintenance",
            "/maintenance list",
            "/maintenance add 2030-01-01T00:00Z 1h api x",
            "/maintenance cancel 1", "/report", "/report month",
            "/tick daily backups"],
        "health-prober": ["/health"],
        "status-publisher": ["/status", "/status_page", "/subscribe api"],
    }
    names = {"ticket-service": "support desk",
             "incident-service": "incident service",
             "health-prober": "health prober",
             "status-publisher": "status service"}
    for exe, cmds in cases.items():
        s.proc(exe).stop(expect=None)  # their exit code is their test
        for cmd in cmds:
            t0 = time.monotonic()
            r = ask(fake, cmd, user=ADMIN, timeout=5)
            took = time.monotonic() - t0
            h.check(took < 3.0, "%s with %s down took %.2fs" %
                    (cmd, exe, took))
            if cmd != "/support":
                h.contains(r.text, names[exe], cmd)
        # Dashboards still render the other sections.
        for cmd, want in (("/monitor", "Monitor"), ("/ops", "Operations"),
                          ("/help", "Hello")):
            t0 = time.monotonic()
            r = ask(fake, cmd, user=ADMIN, timeout=5)
            h.check(time.monotonic() - t0 < 3.0, cmd)
            h.contains(r.text, want)
        s.proc(exe).restart()
    no_token(s, gw)
    gw.stop()


def test_webhook(s):
    secret = "hook_secret-123"
    fake, gw = start(s, backends=[], mode="webhook",
                     env={"TELEGRAM_WEBHOOK_SECRET": secret})
    upd = {"update_id": 555, "message": {
        "message_id": 1, "from": {"id": USER, "first_name": "Ann"},
        "chat": {"id": USER, "type": "private"}, "date": 1,
        "text": "/help"}}
    body = json.dumps(upd).encode()
    path = "/telegram/webhook"
    st, _, _ = gw.http_post(path, body)
    h.eq(st, 401, "no secret")
    st, _, _ = gw.http_post(path, body, headers={
        "X-Telegram-Bot-Api-Secret-Token": "wrong"})
    h.eq(st, 401, "wrong secret")
    hdr = {"X-Telegram-Bot-Api-Secret-Token": secret,
           "Content-Type": "application/json"}
    st, _, _ = gw.http_post(path, body, headers=hdr)
    h.eq(st, 200)
    fake.wait_sent(lambda r: r.chat == USER)
    # Telegram redelivers: handled once.
    st, _, _ = gw.http_post(path, body, headers=hdr)
    h.eq(st, 200)
    st, _, _ = gw.http_post(path, b"not json", headers=hdr)
    h.eq(st, 400)
    time.sleep(1.0)  # an absence: no second answer within 1 s
    h.eq(len(fake.sent(chat=USER)), 1, "a redelivered update is ignored")
    gw.stop()


def test_alerts_replayed_after_downtime(s):
    fake, gw = start(s, backends=["incident-service"])
    gw.stop()
    # An alert raised while the gateway is down...
    s.call("incident", "create", {"severity": "SEVERITY_CRITICAL",
                                  "title": "Payments failing"})
    # ...arrives after the restart, with its buttons.
    gw.restart()
    r = fake.wait_sent(lambda r: r.chat == ADMIN_CHAT and
                       "Payments failing" in r.text, timeout=15)
    h.check(any(d == "1:ia:1" for _, d in r.buttons), r.buttons)
    gw.restart()
    time.sleep(2)  # an absence: no second delivery after the restart
    alerts = [x for x in fake.sent(chat=ADMIN_CHAT)
              if "Payments failing" in x.text and "Alert" in x.text]
    h.eq(len(alerts), 1, "an alert is delivered once: %r" % [(a.at, fake.requests.index(a)) for a in alerts])
    gw.stop()


def test_notifications_from_the_bus(s):
    fake, gw = start(s, backends=["status-publisher"])
    h.contains(ask(fake, "/subscribe").text, "Subscribed")
    # The status page's deep link t.me/<bot>?start=subscribe.
    h.contains(ask(fake, "/start subscribe", user=OTHER).text, "Subscribed")
    h.contains(ask(fake, "/help", user=77).text, "Hello")  # not subscribed
    fake.block(OTHER)
    tail = s.tail("gateway.")
    change = {"status_changed": {
        "indicator": "major", "description": "Partial <outage>",
        "changes": [{"component_id": "api", "name": "API",
                     "old_status": "operational",
                     "new_status": "major_outage"}]}}
    m = fake.mark()
    s.publish("status.changed", change)
    r = fake.wait_sent(lambda r: r.chat == USER, after=m)
    check_html(r.text)
    h.contains(r.text, "Partial &lt;outage&gt;")
    h.contains(r.text, "API")
    fake.wait_call("sendMessage", lambda r: r.chat == OTHER and
                   r.status == 403, after=m)
    ev = tail.wait_topic("gateway.chat_blocked")
    h.eq(int(ev["envelope"]["gateway"]["chat_id"]), OTHER)
    # The blocked chat gets nothing more; the others still do.
    m = fake.mark()
    s.publish("status.changed", change)
    fake.wait_sent(lambda r: r.chat == USER, after=m)
    time.sleep(0.5)  # an absence: nothing to the others
    h.eq([r for r in fake.calls(chat=OTHER)
          if fake.requests.index(r) >= m], [], "nothing to a blocked chat")
    h.eq([r for r in fake.calls(chat=77)
          if fake.requests.index(r) >= m], [], "not subscribed")
    # ticket.notify goes to the ticket's owner.
    m = fake.mark()
    s.publish("ticket.notify", {"ticket_notify": {
        "ticket_id": 7, "user_id": USER, "chat_id": USER,
        "text": "Incident INC-1 is resolved"}})
    r = fake.wait_sent(lambda r: r.chat == USER, after=m)
    h.contains(r.text, "INC-1 is resolved")
    samples = gw.metrics()
    h.check(h.metric(samples, "opsdesk_gateway_blocked_chats") == 1)
    gw.stop()


def test_slow_backend_stalls_only_its_chat(s):
    fake, gw = start(s, backends=["ticket-service"])
    h.contains(ask(fake, "/tickets").text, "Your tickets")
    ticket = s.proc("ticket-service")
    os.kill(ticket.pid, signal.SIGSTOP)  # connected, but never answers
    try:
        m = fake.mark()
        t0 = time.monotonic()
        fake.message("/tickets", user=USER)
        fake.message("/support still there?", user=USER)
        # Other chats, and polling, go on meanwhile.
        for i in range(5):
            r = ask(fake, "/help", user=200 + i, timeout=5)
            h.check(r.at - t0 < 2.4, "/help waited %.2fs behind a slow "
                    "backend" % (r.at - t0))
        r = fake.wait_sent(lambda r: r.chat == USER, after=m, timeout=5)
        h.check(r.at - t0 <= 3.2, "time-out answered after %.2fs" %
                (r.at - t0))
        h.contains(r.text, "did not answer in time")
        # The chat's second update came after its first, in order.
        r2 = fake.wait_sent(lambda x: x.chat == USER and x is not r,
                            after=m, timeout=5)
        h.check(r2.at >= r.at)
    finally:
        os.kill(ticket.pid, signal.SIGCONT)
    gw.stop()


def test_emulator_that_does_not_block(s):
    fake, gw = start(s, backends=[])
    fake.max_poll_wait = 0.0  # answers getUpdates at once, like some
    time.sleep(0.5)           # emulators: the gateway must not spin
    m = fake.mark()
    time.sleep(2.0)
    polls = len([r for r in fake.requests[m:] if r.method == "getUpdates"])
    h.check(polls <= 10, "%d getUpdates in 2 s against a server that "
            "does not block" % polls)
    h.contains(ask(fake, "/help").text, "Hello")
    gw.stop()


if __name__ == "__main__":
    h.main()

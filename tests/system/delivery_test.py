"""System tests of the gateway's delivery engine against the fake Bot API:
fairness between users and lanes under Telegram's limits, faults retried
until delivered, hung sends holding only their chat, backpressure."""

import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from fake_telegram import FakeTelegram  # noqa: E402

ADMIN = 1
ADMIN_CHAT = -500
TOKEN = "987654:SeCrEt-token-NEVER-logged"


def config(throttle=True, **gateway):
    g = {"bot_username": "opsdesk_bot", "throttle": {"enabled": throttle},
         "poll_timeout": "1s"}
    g.update(gateway)
    return {"admins": [ADMIN], "admin_chat": ADMIN_CHAT, "gateway": g}


def start(s, backends=(), throttle=True, env=None, **gateway):
    s.config = config(throttle, **gateway)
    fake = FakeTelegram(TOKEN, max_poll_wait=1.0)
    s.fake = fake
    s.start("bus-relay")
    for b in backends:
        s.start(b)
    e = {"TELEGRAM_API_URL": fake.url, "TELEGRAM_BOT_TOKEN": TOKEN,
         "OPSDESK_GATEWAY_MODE": "poll"}
    e.update(env or {})
    gw = s.start("telegram-gateway", env=e)
    return fake, gw


def raise_alert(s, title):
    s.call("incident", "create", {"severity": "SEVERITY_CRITICAL",
                                  "title": title})


def test_flood_does_not_silence_others(s):
    """400 commands from one user: another user's /help and a critical
    alert still go out within seconds, under the default limits."""
    fake, gw = start(s, backends=["status-publisher", "incident-service"])
    flooder, other = 900, 901
    for _ in range(400):
        fake.message("/status", user=flooder)
    # The flood is being handled: its first answers are out.
    h.wait_until(lambda: fake.sent(chat=flooder), 10, "the flood handled")
    m = fake.mark()
    t0 = time.monotonic()
    fake.message("/help", user=other)
    raise_alert(s, "Checkout down")
    r = fake.wait_sent(lambda r: r.chat == other, timeout=10, after=m)
    h.check(r.at - t0 < 4.0, "/help of another user after %.1fs" %
            (r.at - t0))
    a = fake.wait_sent(lambda r: r.chat == ADMIN_CHAT and
                       "Checkout down" in r.text, timeout=10, after=m)
    h.check(a.at - t0 < 4.0, "alert after %.1fs" % (a.at - t0))
    print("  behind a 400-command flood: /help %.2fs, alert %.2fs" %
          (r.at - t0, a.at - t0))
    # The flooder is told once to slow down; the rest is ignored.
    # Burst 10, then one more every 3 s while the flood is handled.
    h.wait_until(lambda: h.metric(gw.metrics(),
                                  "opsdesk_gateway_updates_total",
                                  type="message") == 401, 20,
                 "the flood handled")
    over = h.metric(gw.metrics(), "opsdesk_gateway_updates_throttled_total")
    h.check(370 <= over <= 390, "%s of 400 over the budget" % over)
    h.wait_until(lambda: gw.http_get("/metrics")[1].find(
        b"opsdesk_gateway_outbox_depth 0") >= 0, 30, "outbox drained")
    to_flooder = fake.sent(chat=flooder)
    slow = [r for r in to_flooder if "faster than I can answer" in r.text]
    # One notice per episode: a token refilled while the flood is still
    # being handled (a slow machine, a sanitizer build) lets one more
    # command through, and the next one over starts a new episode.
    accepted = 400 - over
    h.check(1 <= len(slow) <= 1 + max(0, accepted - 10),
            "%d slow-down notices for %d accepted commands" %
            (len(slow), accepted))
    h.check(len(to_flooder) <= 2 * accepted + 1,
            "%d messages to the flooder" % len(to_flooder))
    h.eq(fake.breaches[:5], [], "Telegram limits breached")
    gw.stop()


def test_broadcast_does_not_hold_replies_or_alerts(s):
    """A status change to many subscribers is queued; a user's command
    and an alert raised after it go out within seconds."""
    n = int(os.environ.get("OPSDESK_TEST_SUBSCRIBERS", "10000"))
    fake, gw = start(s, backends=["incident-service"], throttle=False)
    first = 100000
    for i in range(n):
        fake.message("/subscribe", user=first + i)
    h.wait_until(lambda: len(fake.sent()) >= n, 120,
                 "%d subscriptions answered" % n)
    gw.stop()
    s.config = config(True)
    s.write_config()
    fake.reset_limits()
    gw.restart()
    m = fake.mark()
    for attempt in range(6):
        # Pub/sub drops what comes before the gateway's subscription.
        s.publish("status.changed", {"status_changed": {
            "indicator": "major", "description": "Partial outage",
            "changes": []}})
        try:
            fake.wait_sent(lambda r: "Partial outage" in r.text,
                           timeout=3, after=m)
            break
        except AssertionError:
            h.check(attempt < 5, "the status change never came")
    h.wait_until(lambda: h.metric(gw.metrics(),
                                  "opsdesk_gateway_outbox_depth") > n / 2,
                 10, "the broadcast queued")
    t0 = time.monotonic()
    fake.message("/help", user=777)
    raise_alert(s, "Database down")
    r = fake.wait_sent(lambda r: r.chat == 777, timeout=10, after=m)
    h.check(r.at - t0 < 4.0, "/help behind a broadcast: %.1fs" %
            (r.at - t0))
    a = fake.wait_sent(lambda r: r.chat == ADMIN_CHAT and
                       "Database down" in r.text, timeout=10, after=m)
    h.check(a.at - t0 < 4.0, "alert behind a broadcast: %.1fs" %
            (a.at - t0))
    print("  behind a %d-message broadcast: /help %.2fs, alert %.2fs" %
          (n, r.at - t0, a.at - t0))

    # Each lane says how deep and how old it is: the broadcast is still
    # queued, the reply and alert lanes are empty again.
    def lane(name, what="depth"):
        return h.metric(gw.metrics(), "opsdesk_gateway_outbox_lane_" + what,
                        lane=name)
    h.wait_until(lambda: lane("reply") == 0 and lane("alert") == 0, 10,
                 "the reply and alert lanes drained")
    h.check(lane("broadcast") > n / 2, "broadcast lane depth %s" %
            lane("broadcast"))
    h.wait_until(lambda: lane("broadcast", "oldest_seconds") >= 1, 10,
                 "the broadcast lane's oldest message ages")
    h.eq(lane("reply", "oldest_seconds"), 0, "empty reply lane's age")
    h.check(h.metric(gw.metrics(), "opsdesk_gateway_outbox_depth") > n / 2,
            "the broadcast is still going out at 30/s")
    h.eq(fake.breaches[:5], [], "Telegram limits breached")
    gw.stop()


def test_page_in_one_commit(s):
    """A getUpdates page is handled and committed with its offset at
    once; two updates of one chat in the page still run in order, the
    second seeing the first's conversation step."""
    s.config = config(False)
    fake = FakeTelegram(TOKEN, max_poll_wait=1.0)
    s.fake = fake
    s.start("bus-relay")
    s.start("ticket-service")
    users = list(range(2000, 2040))
    for u in users:
        fake.message("/help", user=u)
    fake.message("/newticket high", user=3000)
    fake.message("printer on fire", user=3000)
    gw = s.start("telegram-gateway", env={
        "TELEGRAM_API_URL": fake.url, "TELEGRAM_BOT_TOKEN": TOKEN,
        "OPSDESK_GATEWAY_MODE": "poll"})
    h.wait_until(lambda: all(fake.sent(chat=u) for u in users), 20,
                 "every /help answered")
    r = fake.wait_sent(lambda r: r.chat == 3000 and "opened" in r.text,
                       timeout=20)
    h.check("printer on fire" in r.text or "T-" in r.text, r.text)
    t = s.call("ticket", "queue", {"page": {"limit": 10}})
    texts = [x.get("subject", "") + x.get("text", "")
             for x in t.get("tickets", {}).get("tickets", [])]
    h.check(any("printer on fire" in x for x in texts),
            "the ticket has the second update's text: %r" % texts)

    def commits(how):
        return h.metric(gw.metrics(), "opsdesk_gateway_update_commits_total",
                        how=how) or 0
    h.wait_until(lambda: commits("page") + commits("own") == 42, 10,
                 "42 updates committed")
    pages = h.metric(gw.metrics(), "opsdesk_gateway_pages_total")
    print("  42 updates: %d page commit(s), %d with the page, %d on their "
          "own" % (pages, commits("page"), commits("own")))
    # The first of the chat's two commits on its own; the others go with
    # their page unless they missed its 200 ms (a slow sanitizer build).
    h.check(commits("own") >= 1, "the chat's first update on its own")
    h.check(commits("page") >= 20, "%d with their page" % commits("page"))
    h.check(pages <= 3, "%d page commits for one page" % pages)
    gw.stop()


def test_faults_are_retried_and_delivered(s):
    """Nothing Telegram did not refuse is dropped: each fault is retried
    with backoff until the message goes."""
    fake, gw = start(s, throttle=False, send_timeout="1s")
    cases = [("nonjson", None, "bad_reply"), ("truncated", None, "network"),
             (None, 401, "401"), (None, 404, "404"), (None, 502, "5xx"),
             ("hang", None, "timeout")]
    for i, (kind, code, reason) in enumerate(cases):
        user = 300 + i
        if kind is not None:
            fake.fault("sendMessage", kind, seconds=3)
        else:
            fake.fail("sendMessage", code, description="Unauthorized"
                      if code == 401 else "Not Found" if code == 404
                      else "Bad Gateway")
        m = fake.mark()
        fake.message("/help", user=user)
        r = fake.wait_sent(lambda r: r.chat == user, timeout=10, after=m)
        h.contains(r.text, "Hello", "%s delivered" % (kind or code))
        h.check((h.metric(gw.metrics(),
                          "opsdesk_gateway_outbox_retries_total",
                          reason=reason) or 0) >= 1, reason)
    h.eq(h.metric(gw.metrics(), "opsdesk_gateway_outbox_dropped_total",
                  method="sendMessage"), None, "nothing dropped")
    # A 400 from Telegram is final: dropped after one call.
    fake.fail("sendMessage", 400, description="Bad Request: chat not found")
    m = fake.mark()
    fake.message("/help", user=399)
    fake.wait_call("sendMessage", lambda r: r.status == 400, after=m)
    h.wait_until(lambda: h.metric(gw.metrics(),
                                  "opsdesk_gateway_outbox_dropped_total",
                                  method="sendMessage") == 1, 5, "dropped")
    time.sleep(1.5)  # an absence: no retry within 1.5 s
    h.eq(len([r for r in fake.calls("sendMessage", chat=399)]), 1,
         "a refusal is not retried")
    gw.stop()


def test_lasting_failure_logged_once(s):
    """A failure that lasts (a 401 during a token rotation) is logged as
    an error once, not on every retry, and only after it has lasted; the
    messages are still delivered when it ends. The minute is shortened to
    1.5 s by OPSDESK_GATEWAY_LASTING_MS, an env var for tests only."""
    fake, gw = start(s, throttle=False,
                     env={"OPSDESK_GATEWAY_LASTING_MS": "1500"})
    fake.fail("sendMessage", 401, description="Unauthorized", times=24)
    users = list(range(700, 706))
    t0 = time.monotonic()
    for u in users:
        fake.message("/help", user=u)

    def errors():
        return [x for x in gw.log_lines() if x.get("level") == "error"
                and "have failed for" in x.get("msg", "")]

    def retries():
        return h.metric(gw.metrics(), "opsdesk_gateway_outbox_retries_total",
                        reason="401") or 0
    h.wait_until(lambda: errors(), 20, "the lasting failure logged")
    h.check(time.monotonic() - t0 >= 1.5, "logged before it lasted")
    h.contains(errors()[0]["msg"], "401")
    n = retries()
    for u in users:
        fake.wait_sent(lambda r, u=u: r.chat == u, timeout=60)
    h.eq(retries(), 24, "every 401 retried")
    h.check(n < 24, "retries after the error was logged: %d" % (24 - n))
    h.eq(len(errors()), 1, "logged once")
    h.eq(h.metric(gw.metrics(), "opsdesk_gateway_outbox_dropped_total",
                  method="sendMessage"), None, "nothing dropped")
    gw.stop()


def test_hung_send_holds_only_its_chat(s):
    """Three sends hang; a fourth chat's reply still goes at once."""
    fake, gw = start(s, throttle=False, send_timeout="10s")
    fake.fault("sendMessage", "hang", times=3, seconds=8)
    for u in (501, 502, 503):
        fake.message("/help", user=u)
    h.wait_until(lambda: fake.fault_hits == 3, 5, "three hung sends")
    m = fake.mark()
    t0 = time.monotonic()
    fake.message("/help", user=504)
    r = fake.wait_sent(lambda r: r.chat == 504, timeout=5, after=m)
    h.check(r.at - t0 < 1.5, "reply behind hung sends after %.1fs" %
            (r.at - t0))
    gw.stop()


def test_backend_timeout_is_confirmed_not_failed(s):
    """ticket-service stopped for 4 s during /support: the user hears
    once that it is in progress, then the real result; one ticket."""
    fake, gw = start(s, backends=["ticket-service"], throttle=False)
    user = 4242
    m = fake.mark()
    fake.message("/tickets", user=user)
    fake.wait_sent(lambda r: r.chat == user, after=m)
    ticket = s.proc("ticket-service")
    os.kill(ticket.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        m = fake.mark()
        fake.message("/support printer on fire", user=user)
        r = fake.wait_sent(lambda r: r.chat == user, after=m, timeout=8)
        h.contains(r.text, "Still working on it")
        h.check("cannot be done" not in r.text, r.text)
        # The scenario: the service is gone for 4 s in all.
        time.sleep(max(0.0, 4.0 - (time.monotonic() - t0)))
    finally:
        os.kill(ticket.pid, signal.SIGCONT)
    done = fake.wait_sent(lambda r: r.chat == user and "T-" in r.text,
                          after=m, timeout=20)
    h.contains(done.text, "opened")
    ticket_id = re.search(r"T-(\d+)", done.text).group(1)
    mine = [r for r in fake.sent(chat=user)
            if fake.requests.index(r) >= m]
    h.eq(len([r for r in mine if "Still working" in r.text]), 1,
         "told once that it is in progress")
    h.check(all("cannot be done" not in r.text for r in mine),
            [r.text for r in mine])
    m = fake.mark()
    fake.message("/tickets", user=user)
    r = fake.wait_sent(lambda r: r.chat == user, after=m)
    h.eq(sorted(set(re.findall(r"T-(\d+)", r.text))), [ticket_id],
         "exactly one ticket")
    gw.stop()


def test_backlog_pauses_intake(s):
    """Over outbox_max queued messages, updates are left with Telegram
    (not fetched) until the backlog is back under the bound."""
    fake, gw = start(s, throttle=False)
    for i in range(300):
        fake.message("/subscribe", user=5000 + i)
    h.wait_until(lambda: len(fake.sent()) >= 300, 30, "subscribed")
    gw.stop()
    s.config = config(True, outbox_max=100)
    s.write_config()
    gw.restart()
    for attempt in range(6):
        s.publish("status.changed", {"status_changed": {
            "indicator": "minor", "description": "Slow API",
            "changes": []}})
        try:
            h.wait_until(lambda: (h.metric(
                gw.metrics(), "opsdesk_gateway_intake_paused_total")
                or 0) >= 1, 3, "intake paused")
            break
        except h.Failure:
            h.check(attempt < 5, "the backlog never paused intake")
    uid = fake.message("/help", user=6000)
    time.sleep(1.0)  # an absence: not fetched within 1 s
    h.check(fake.last_offset <= uid, "update fetched under backlog")
    # 30/s drains the queue under 100 within seconds, then it is taken
    # (each send's outcome is a synced commit: a loaded disk slows it).
    r = fake.wait_sent(lambda r: r.chat == 6000, timeout=60)
    h.contains(r.text, "Hello")
    gw.stop()


if __name__ == "__main__":
    h.main()

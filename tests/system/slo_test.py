"""Service level objectives end to end: health-prober evaluates a target's
objectives, publishes slo.burn / slo.resolved, and the gateway tells the
admin chat (through the fake Bot API, fake_telegram.py); /monitor, the
prober's `slo` method and /metrics show attainment, budget and burn."""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from fake_telegram import FakeTelegram  # noqa: E402

ADMIN = 1
USER = 42
ADMIN_CHAT = -500
TOKEN = "987654:slo-test-token"


def ask(fake, text, user, timeout=10.0):
    m = fake.mark()
    fake.message(text, user=user, chat=user)
    return fake.wait_sent(lambda r: r.chat == user, timeout, after=m)


def admin_texts(fake, needle, after=0):
    return [r for r in fake.calls(chat=ADMIN_CHAT)
            if r.method == "sendMessage" and needle in r.text
            and fake.requests.index(r) >= after]


def objectives(s, **kw):
    r = s.call("prober", "slo", {}, **kw)
    return r.get("slo", {}).get("objectives", [])


def test_fast_burn_alerts_the_admin_chat_and_resolves(s):
    h.need("health-prober", "bus-relay", "telegram-gateway",
         "incident-service", "opsctl")
    web = h.FlipTarget()
    fake = None
    try:
        s.config = {
            "admins": [ADMIN],
            "admin_chat": ADMIN_CHAT,
            "gateway": {"bot_username": "opsdesk_bot",
                        "poll_timeout": "1s"},
            "targets": [
                {"id": "api", "name": "Public API", "kind": "http",
                 "url": "http://127.0.0.1:%d/" % web.port,
                 "interval": "1s", "timeout": "1s", "public": True,
                 "slo": {"availability": 99.9,
                         "latency": {"p95": "500ms"},
                         "window": "1h", "public": True}},
                {"id": "internal", "kind": "http",
                 "url": "http://127.0.0.1:%d/" % web.port,
                 "interval": "1s", "timeout": "1s",
                 "slo": {"availability": 99.5, "window": "1h"}},
            ],
        }
        fake = FakeTelegram(TOKEN, max_poll_wait=1.0)
        s.start("bus-relay")
        s.start("incident-service")
        prober = s.start("health-prober")
        s.start("telegram-gateway", env={
            "TELEGRAM_API_URL": fake.url, "TELEGRAM_BOT_TOKEN": TOKEN})
        tail = s.tail("slo.")

        # Up for a few checks: every objective met, the budget whole.
        def attained():
            o = objectives(s)
            return len(o) == 3 and all(x.get("attainment", -1) == 100
                                       for x in o
                                       if x["objective"] == "availability")
        h.wait_until(attained, 15, "objectives attained")
        o = {(x["target_id"], x["objective"]): x for x in objectives(s)}
        api = o[("api", "availability")]
        h.eq(int(api["window_ms"]), 3600000)
        h.check(abs(api["budget_remaining"] - 1.0) < 1e-9, repr(api))
        h.check(abs(api["budget_minutes"] - 0.06) < 1e-9, repr(api))
        h.eq(len(api["burn"]), 4)
        h.contains(o[("api", "latency")]["description"], "p95")
        # Others see only the public objectives of public targets.
        pub = objectives(s, as_user=USER)
        h.eq(sorted(x["target_id"] for x in pub), ["api", "api"])

        r = ask(fake, "/monitor", ADMIN)
        h.contains(r.text, "Objectives")
        h.contains(r.text, "Public API")
        h.contains(r.text, "budget left 100 %")

        # A total outage: a fast burn reaches the admin chat at once, with
        # a button to open an incident; once for the episode.
        m = fake.mark()
        web.down = True
        t0 = time.monotonic()
        fire = fake.wait_sent(
            lambda r: r.chat == ADMIN_CHAT
            and "burning fast" in r.text and "Public API" in r.text,
            120, after=m)
        took = time.monotonic() - t0
        h.check(took < 120, "alerted after %.0f s" % took)
        h.contains(fire.text, "availability 99.9 %")
        h.contains(fire.text, "(1h)")
        h.check(("🚨 Open incident", "1:isp:api") in fire.buttons,
                repr(fire.buttons))
        ev = tail.wait_topic("slo.burn")
        h.eq(ev["envelope"]["slo"]["severity"], "page")
        burning = [x for x in objectives(s) if x["target_id"] == "api"
                   and x["objective"] == "availability"][0]
        h.eq(burning["alert"], "page")
        h.check(burning["budget_remaining"] < 0, repr(burning))
        samples = h.parse_prometheus(prober.http_get("/metrics")[1]
                                     .decode())
        h.check(h.metric(samples, "opsdesk_slo_burn_rate", target="api",
                         objective="availability", window="1m") > 14.4)
        h.check(h.metric(samples, "opsdesk_slo_attainment_ratio",
                         target="api", objective="availability") < 1)
        h.check(h.metric(samples,
                         "opsdesk_slo_error_budget_remaining_ratio",
                         target="api", objective="availability") < 0)

        # The button opens an incident as the admin who pressed it.
        pm = fake.mark()
        fake.press("1:isp:api", user=ADMIN, message_id=1)
        r = fake.wait_sent(lambda r: r.chat == ADMIN
                           and "INC-" in r.text, 10, after=pm)
        h.contains(r.text, "Error budget burning fast: api")

        # Recovered: resolved within about a minute (the 1 h objective's
        # burn windows are a minute), and said once.
        m2 = fake.mark()
        web.down = False
        fake.wait_sent(lambda r: r.chat == ADMIN_CHAT
                       and "burn stopped" in r.text
                       and "Public API" in r.text, 120, after=m2)
        tail.wait_topic("slo.resolved")
        # (the incident the button opened alerts too: not counted)
        fast = admin_texts(fake, "<b>Error budget burning fast</b>", m)
        h.eq(len(fast), 2, "one alert for each of api and internal")
        h.eq(len([r for r in fast if "Public API" in r.text]), 1,
             "once per episode")
        r = ask(fake, "/monitor", ADMIN)
        h.contains(r.text, "budget left -")
    finally:
        web.close()
        if fake is not None:
            fake.close()


def test_public_page_and_report(s):
    h.need("health-prober", "bus-relay", "status-publisher",
         "incident-service", "opsctl")
    web = h.FlipTarget()
    try:
        url = "http://127.0.0.1:%d/" % web.port
        s.config = {
            "admins": [ADMIN],
            "status_page": {"title": "Status", "history_interval": "1s"},
            "targets": [
                {"id": "api", "name": "Public API", "kind": "http",
                 "url": url, "interval": "1s", "timeout": "1s",
                 "public": True,
                 "slo": {"availability": 99.9, "window": "1h",
                         "public": True}},
                # Public component, internal objective: not shown.
                {"id": "web", "name": "Web app", "kind": "http",
                 "url": url, "interval": "1s", "timeout": "1s",
                 "public": True,
                 "slo": {"availability": 99.5, "window": "1h"}},
            ],
        }
        s.start("bus-relay")
        s.start("incident-service")
        s.start("health-prober")
        st = s.start("status-publisher")

        def page():
            code, body, _ = st.http_get("/")
            return body.decode() if code == 200 else ""
        h.wait_until(lambda: "100 % (target 99.9 %)" in page(), 30,
                     "the public objective on the page")
        body = page()
        h.eq(body.count("(target "), 1, "only the public objective")
        h.check("99.5" not in body, "the internal objective leaked")

        # The day's report lists the objectives met or missed.
        def report():
            return s.call("incident", "report",
                          {"period": "DAY"})["report"]
        h.wait_until(lambda: "Objectives: 2 met, 0 missed"
                     in report().get("text", ""), 20, "objectives met")
        text = report()["text"]
        h.contains(text, "met Public API, availability 99.9 %: 100.000%")
        objs = report()["objectives"]
        h.eq(sorted(o["component_id"] for o in objs), ["api", "web"])
        h.check(all(o["met"] for o in objs), repr(objs))
    finally:
        web.close()


def test_objectives_are_validated(s):
    h.need("health-prober")
    s.config = {"targets": [
        {"id": "api", "kind": "http", "url": "http://127.0.0.1:1/",
         "slo": {"availability": 99.9, "window": "90s"}}]}
    s.write_config()
    r = subprocess.run([h.exe_path("health-prober"), "--check-config",
                        s.config_path], env=s.env(), capture_output=True,
                       timeout=30)
    h.eq(r.returncode, 1, "a bad window is refused")
    h.contains(r.stderr.decode(), "targets[0].slo.window")


if __name__ == "__main__":
    h.main()

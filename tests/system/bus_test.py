"""The bus end to end: bus-relay forwarding between real publishers
(opsctl publish, nngcat) and subscribers (opsctl tail, nngcat --sub),
frames as the spec defines them, garbage and oversized frames, the relay's
metrics, clean exits; and opsctl against fake and missing services."""

import os
import subprocess

import harness as h

HEALTH = ('schema_version: 1 event_id: "e1" source: "test" seq: '
          '9007199254740993 topic: "health.changed" health_changed { }')


def relay_metrics(relay):
    text = relay.http_get("/metrics")[1].decode()
    samples = h.parse_prometheus(text)
    h.promtool_check(text)
    return samples


def test_help_and_version():
    for exe in ("bus-relay", "opsctl"):
        for flag in ("--help", "--version"):
            s = h.Suite("help")
            try:
                p = s.start(exe, args=[flag], wait=None)
                h.eq(p.popen.wait(10), 0, "%s %s exit" % (exe, flag))
                h.contains(p.log_text(), exe if flag == "--version"
                           else "Usage")
            finally:
                s.close()


def test_publish_and_tail(s):
    relay = s.start("bus-relay")
    all_events = s.tail()
    health_only = s.tail("health.")
    capture = s.capture_bus(count=1)
    # nngcat --sub gives no signal: wait until the relay counts 3 pipes
    h.wait_until(lambda: h.metric(relay_metrics(relay),
                                  "opsdesk_relay_subscribers") == 3,
                 10, "three subscribers")
    frame = s.frame("health.changed", HEALTH)
    # published by another NNG implementation than ours: nngcat
    path = s.path("health.bin")
    with open(path, "wb") as f:
        f.write(frame)
    r = subprocess.run(["nngcat", "--pub", "--dial", s.bus_publish,
                        "--file", path, "--delay", "1", "--count", "1"],
                       capture_output=True, timeout=30)
    h.eq(r.returncode, 0, "nngcat --pub: %r" % r.stderr)
    ev = all_events.wait_topic("health.changed")
    env = ev["envelope"]
    h.eq(env["seq"], "9007199254740993", "64-bit seq kept exactly")
    h.eq(env["health_changed"], {})
    h.eq(env["source"], "test")
    h.eq(health_only.wait_topic("health.changed")["envelope"]["event_id"],
         "e1")
    # nngcat's raw capture: topic, 0x00, an Envelope protoc can read
    raw = capture.wait()
    h.eq(raw, frame, "captured frame")
    topic, _, body = raw.partition(b"\0")
    h.eq(topic, b"health.changed")
    text = s.decode_envelope(body)
    h.contains(text, "seq: 9007199254740993")
    h.contains(text, "health_changed {")

    # opsctl publish fills the header; the prefix filter holds
    s.publish("ticket.created", {"ticket": {"change": "created"}})
    ev = all_events.wait_topic("ticket.created")
    h.eq(ev["envelope"]["ticket"], {"change": "created"})
    h.eq(ev["envelope"]["source"], "opsctl")
    h.eq(ev["envelope"]["schema_version"], 1)
    h.eq(len(ev["envelope"]["event_id"]), 32)
    s.publish("health.result", {"health_result": {}})
    health_only.wait_topic("health.result")
    h.check(all(e.get("topic", "").startswith("health.")
                for e in health_only.events), "prefix filter")

    m = relay_metrics(relay)
    h.eq(h.metric(m, "opsdesk_relay_messages_total", domain="health"), 2.0)
    h.eq(h.metric(m, "opsdesk_relay_messages_total", domain="ticket"), 1.0)
    h.check(h.metric(m, "opsdesk_relay_bytes_total", domain="health")
            >= len(frame), "bytes counted")
    h.check(h.metric(m, "opsdesk_relay_connections_total",
                     side="publish") >= 3, "publisher connections")
    all_events.stop()       # Ctrl-C: exit 0
    health_only.stop()
    h.wait_until(lambda: h.metric(relay_metrics(relay),
                                  "opsdesk_relay_subscribers") == 0,
                 10, "subscribers gone")
    relay.stop()            # SIGTERM: exit 0


def test_garbage_keeps_everyone_going(s):
    relay = s.start("bus-relay")
    tail = s.tail()
    s.publish_raw([b"\xff\xfeno topic at all",
                   b"ticket.created\0\xff\xff\xff\xff",
                   b"\x01bad\0x"])
    e1 = tail.wait_for(lambda e: e.get("bytes") == 17)
    h.eq(e1["topic"], None)
    h.contains(e1["error"], "malformed")
    e2 = tail.wait_topic("ticket.created")
    h.eq(e2["error"], "envelope does not decode")
    h.eq(e2["bytes"], 19)
    h.check("envelope" not in e2)
    h.eq(tail.wait_for(lambda e: e.get("bytes") == 6)["topic"], None)
    # both still work
    s.publish("gateway.started", {"gateway": {"kind": "started",
                                              "text": "caf\u00e9"}})
    ev = tail.wait_topic("gateway.started")
    h.eq(ev["envelope"]["gateway"]["text"], "caf\u00e9")
    h.check(tail.alive(), "tail alive")
    h.eq(relay.http_get("/healthz")[0], 200)
    m = relay_metrics(relay)
    h.eq(h.metric(m, "opsdesk_relay_messages_total", domain="malformed"), 2.0)
    h.eq(h.metric(m, "opsdesk_relay_messages_total", domain="ticket"), 1.0)
    h.eq(h.metric(m, "opsdesk_relay_messages_total", domain="gateway"), 1.0)
    tail.stop()
    relay.stop()


def test_oversized_frame_is_refused(s):
    relay = s.start("bus-relay")
    tail = s.tail()
    big = b"health.big\0" + b"x" * (1024 * 1024 + 10)
    s.publish_raw(big)
    s.publish("health.after", {"health_result": {}})
    tail.wait_topic("health.after")
    h.check(not any(e.get("topic") == "health.big" for e in tail.events),
            "oversized frame not forwarded")
    m = relay_metrics(relay)
    h.eq(h.metric(m, "opsdesk_relay_messages_total", domain="health"), 1.0)
    tail.stop()
    relay.stop()


def test_tail_waits_for_relay(s):
    tail = s.tail("ops.", connected=False)
    h.check(tail.alive(), "tail runs without a relay")
    relay = s.start("bus-relay")
    tail.wait_connected()
    s.publish("ops.reload", {"ops": {"kind": "reload", "actor_id": 7}})
    ev = tail.wait_topic("ops.reload")
    h.eq(ev["envelope"]["ops"], {"kind": "reload", "actor_id": 7})
    # a relay restart: tail reconnects by itself
    relay.stop()
    relay.restart()
    h.wait_until(lambda: tail.stderr_text().count('"connected"') >= 2, 10,
                 "tail reconnected")
    n = tail.mark()
    s.publish("ops.again", {"ops": {"kind": "again"}})
    s.publish("ops.reload", {"ops": {"kind": "second"}})
    tail.wait_topic("ops.again", start=n)
    h.eq(tail.wait_topic("ops.reload", start=n)["envelope"]["ops"]["kind"],
         "second", "a second event of a topic, after the mark")
    h.eq(tail.topics(), ["ops.reload", "ops.again", "ops.reload"])
    tail.stop()
    relay.stop()


def test_count_and_relay_down(s):
    relay = s.start("bus-relay")
    tail = h.Tail(s, ["health."], args=["--count", "1"])
    s.tails.append(tail)
    tail.wait_connected()
    r = s.opsctl("publish", "health.one", "-",
                 input=b'{"health_result": {}}')   # JSON from stdin
    h.eq(r.rc, 0, "publish from stdin: %r" % r)
    h.check("health_result" in tail.wait_topic("health.one")["envelope"],
            "payload read from stdin")
    h.eq(tail.popen.wait(10), 0, "tail --count 1 exits by itself")
    relay.stop()
    r = s.opsctl("--timeout", "300", "publish", "health.x")
    h.eq(r.rc, 2, "publish without a relay")
    h.contains(r.stderr, s.bus_publish)


def test_address_in_use_is_a_clear_error(s):
    relay = s.start("bus-relay")
    second = s.start("bus-relay", wait=None)
    h.eq(second.popen.wait(15), 1, "second relay on the same addresses")
    h.contains(second.log_text(), s.bus_subscribe)
    h.eq(relay.http_get("/healthz")[0], 200, "the first one serves on")
    relay.stop()


def test_call_and_ping_against_fake_service(s):
    fake = s.fake_service("ticket", 'ping { service: "ticket-service" '
                          'version: "9.9" instance: "fake-1" }')
    r = s.ping("ticket")
    h.eq(r.rc, 0, "ping rc: %r" % r)
    line = r.lines()[0]
    h.eq(line["ok"], True)
    h.eq(line["version"], "9.9")
    h.eq(line["instance"], "fake-1")
    h.eq(line["url"], s.urls["ticket"])
    h.check(0 <= line["ms"] < 3000, "round trip ms")
    req = fake.request_text()
    h.contains(req, "ping {")
    h.contains(req, "is_admin: true")

    # a call as a plain user, CamelCase method, 64-bit id as a string
    fake = s.fake_service("ticket", 'error { code: ERROR_CODE_NOT_FOUND '
                          'message: "no T-18446744073709551615" }')
    r = s.opsctl("--as", "42", "call", "ticket", "SetPriority",
                 '{"id":"18446744073709551615","priority":"urgent"}')
    h.eq(r.rc, 1, "Error reply exit: %r" % r)
    h.eq(r.json["error"]["code"], "ERROR_CODE_NOT_FOUND")
    h.contains(r.stderr, "NOT_FOUND")
    req = fake.request_text()
    h.contains(req, "user_id: 42")
    h.check("is_admin" not in req, "--as is not admin")
    h.contains(req, "id: 18446744073709551615")
    h.contains(req, "priority: TICKET_PRIORITY_URGENT")
    rid = [l for l in req.splitlines() if l.startswith("request_id")][0]
    h.eq(len(rid.split('"')[1]), 32, "generated request id")

    fake = s.fake_service("incident", 'ping { version: "1" }')
    r = s.opsctl("call", "incident", "Ping", "-", input=b"{}")
    h.eq(r.rc, 0, "call with JSON from stdin: %r" % r)
    h.eq(r.json["ping"]["version"], "1")
    fake.requests()


def test_opsctl_errors(s):
    r = s.opsctl("--timeout", "300", "call", "ticket", "ping")
    h.eq(r.rc, 2, "unavailable")
    h.contains(r.stderr, "ticket")
    h.contains(r.stderr, s.urls["ticket"])
    r = s.opsctl("--timeout", "200", "ping")
    h.eq(r.rc, 2, "ping with everything down")
    lines = r.lines()
    h.eq(sorted(l["service"] for l in lines),
         ["incident", "prober", "status", "ticket"])
    h.check(not any(l["ok"] for l in lines), "all down")
    for args, want in [
            (["call", "ticket", "frobnicate"], "list_mine"),
            (["call", "nope", "ping"], "unknown service"),
            (["call", "ticket", "create", '{"priority":"hgih"}'],
             'create.priority: unknown enum value "hgih"'),
            (["call", "ticket", "create", "{"], "invalid JSON"),
            (["--as", "bob", "call", "ticket", "ping"], "numeric user id"),
            (["frob"], "unknown command"),
            (["call", "ticket"], "usage"),
            (["publish", "bad topic"], "topic")]:
        r = s.opsctl(*args)
        h.eq(r.rc, 64, "usage error %r: %r" % (args, r))
        h.contains(r.stderr, want)
    r = s.opsctl("backup", "ticket", s.path("bk"))
    h.eq(r.rc, 1, "backup without a store")
    h.contains(r.stderr, "no store")
    h.check(not os.path.exists(s.path("bk")), "nothing created")


if __name__ == "__main__":
    h.main()

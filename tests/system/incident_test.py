"""incident-service as a real process: automatic incidents from
health.changed (one per component, alert at once, monitoring then resolved
after the stable period), maintenance suppression, kill -9 and restart
losing nothing, and a report while ticket-service is stopped.

health.changed events are injected with `opsctl publish` through the relay,
as health-prober would send them."""

import json
import os
import shutil
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

CONFIG = {
    "admins": [1],
    "incidents": {"stable_period": "2s", "tick": "100ms"},
    "checklists": {"daily": [{"id": "backups", "text": "check backups"}]},
}


def start(s, ticket=False, **incidents):
    s.config = json.loads(json.dumps(CONFIG))
    s.config["incidents"].update(incidents)
    s.start("bus-relay")
    if ticket:
        s.start("ticket-service")
    return s.start("incident-service")


def health(s, target, new, old="UP", criticality="CRITICAL", name=None):
    ev = {"health_changed": {
        "target_id": target, "name": name or target, "old_state": old,
        "new_state": new, "criticality": criticality, "public": True,
        "reason": "injected by the test", "at_ms": int(time.time() * 1000)}}
    r = s.opsctl("publish", "health.changed", json.dumps(ev))
    h.check(r.rc == 0, "opsctl publish: %r" % r)


def sp_request(url, body, timeout=10.0):
    """One request over NNG's REQ/REP on TCP, spoken directly (the SP
    header, then 8-byte length-prefixed messages; a REQ message starts with
    its 4-byte request id), so a test can repeat the very same bytes."""
    host, port = url[len("tcp://"):].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as c:
        c.sendall(b"\0SP\0\x00\x30\0\0")        # we speak req0
        peer = _recv_exact(c, 8)
        h.eq(peer[:4], b"\0SP\0", "SP header")
        msg = struct.pack(">I", 0x80000001) + body
        c.sendall(struct.pack(">Q", len(msg)) + msg)
        n = struct.unpack(">Q", _recv_exact(c, 8))[0]
        rep = _recv_exact(c, n)
        h.eq(rep[:4], msg[:4], "reply to our request id")
        return rep[4:]


def _recv_exact(c, n):
    out = b""
    while len(out) < n:
        chunk = c.recv(n - len(out))
        if not chunk:
            raise h.Failure("connection closed")
        out += chunk
    return out


def incidents(s, include_resolved=True):
    r = s.call("incident", "list",
               {"include_resolved": include_resolved, "page": {"limit": 100}})
    return r["incidents"].get("incidents", [])


def for_component(s, comp):
    return [i for i in incidents(s)
            if any(c["component_id"] == comp for c in i.get("components", []))]


def wait_opened(tail, comp, start=0):
    return tail.wait_for(
        lambda e: e["topic"] == "incident.opened" and
        e["envelope"]["incident"]["incident"]["components"][0]
        ["component_id"] == comp, timeout=15, start=start)


def test_down_opens_one_incident_alerts_and_auto_resolves(s):
    start(s)
    tail = s.tail("incident.", "alert.")
    health(s, "db", "DOWN", criticality="CRITICAL", name="Database")
    ev = wait_opened(tail, "db")
    inc = ev["envelope"]["incident"]["incident"]
    h.eq(inc["severity"], "SEVERITY_CRITICAL")
    h.eq(inc["dedup_key"], "component:db")
    h.check(inc.get("automatic"), "automatic")
    alert = tail.wait_for(lambda e: e["topic"] == "alert.incident")
    h.eq(alert["envelope"]["alert"]["incident"]["id"], inc["id"])

    # The same down again opens nothing. A marker component's incident
    # shows the second event was processed (one subscriber, in order).
    health(s, "db", "DOWN", criticality="CRITICAL", name="Database")
    health(s, "marker", "DOWN", criticality="LOW")
    wait_opened(tail, "marker")
    h.eq(len(for_component(s, "db")), 1, "one incident for db")
    alerts = s.call("incident", "alerts", {})["alerts"].get("alerts", [])
    h.eq(len([a for a in alerts if a["kind"] == "incident"]), 1,
         "one alert (low severity does not alert)")

    # Recovery: monitoring at once, resolved after the 2 s stable period.
    health(s, "db", "UP", old="DOWN")
    tail.wait_for(lambda e: e["topic"] == "incident.updated" and
                  e["envelope"]["incident"]["incident"]["status"] ==
                  "INCIDENT_STATUS_MONITORING", timeout=15)
    ev = tail.wait_topic("incident.resolved", timeout=15)
    got = ev["envelope"]["incident"]["incident"]
    h.eq(got["id"], inc["id"])
    h.check(got["resolved_ms"] - got["monitoring_ms"] >= 2000,
            "resolved only after the stable period")
    pm = s.call("incident", "postmortem_markdown", {"id": inc["id"]})
    md = pm["postmortem"]["markdown"]
    h.contains(md, "# Postmortem: INC-%d" % inc["id"])
    h.contains(md, "Database (down)")
    h.contains(md, "_health-prober did not answer_")
    # /metrics: the marker's low incident is the only one open.
    m = s.proc("incident-service").metrics()
    h.eq(h.metric(m, "opsdesk_incidents_open", severity="low"), 1.0)
    h.eq(h.metric(m, "opsdesk_incidents_open", severity="critical"), 0.0)
    h.eq(h.metric(m, "opsdesk_incidents_unacknowledged"), 1.0)
    h.check(h.metric(m, "opsdesk_incident_alert_seq") >= 1, "alert seq")
    # SIGTERM: exit 0 after a clean shutdown (and no leaks under ASan).
    s.proc("incident-service").stop()


def test_maintenance_window_suppresses(s):
    start(s)
    tail = s.tail("incident.", "maintenance.")
    now = int(time.time() * 1000)
    w = s.call("incident", "maintenance_create", {
        "title": "db upgrade", "components": ["api"],
        "start_ms": now - 1000, "end_ms": now + 3600 * 1000})
    h.eq(w["maintenance"]["status"], "MAINTENANCE_STATUS_IN_PROGRESS")
    tail.wait_topic("maintenance.started")
    health(s, "api", "DOWN", criticality="HIGH")
    health(s, "marker", "DOWN", criticality="LOW")
    wait_opened(tail, "marker")
    h.eq(for_component(s, "api"), [], "no incident during maintenance")
    # Bad input: a clear error, nothing stored.
    r = s.opsctl("call", "incident", "maintenance_create", json.dumps(
        {"title": "x", "components": ["api"], "start_ms": now + 10,
         "end_ms": now}))
    h.eq(r.rc, 1, "error reply")
    h.contains(r.stdout + r.stderr, "end must be after the start")
    lst = s.call("incident", "maintenance_list", {})
    h.eq(len(lst["maintenance_list"]["windows"]), 1)


def test_kill9_and_restart_lose_nothing(s):
    p = start(s)
    a = s.call("incident", "create", {"severity": "HIGH", "title": "api slow",
                                      "components": ["api"]})["incident"]
    b = s.call("incident", "create", {"severity": "LOW",
                                      "title": "typo on page"})["incident"]
    s.call("incident", "ack", {"id": a["id"]})
    s.call("incident", "update", {"id": a["id"],
                                  "status": "IDENTIFIED",
                                  "text": "bad deploy"})
    s.call("incident", "resolve", {"id": b["id"], "text": "fixed"})
    s.call("incident", "postmortem_edit", {"incident_id": b["id"],
                                           "root_cause": "no review"})
    s.call("incident", "tick", {"list_id": "daily", "item_id": "backups",
                                "done": True})
    # An automatic incident in its stable period when the process dies:
    # the auto-resolve timer survives the restart.
    tail = s.tail("incident.")
    health(s, "cache", "DOWN", criticality="MEDIUM")
    c = wait_opened(tail, "cache")["envelope"]["incident"]["incident"]
    health(s, "cache", "UP", old="DOWN")
    tail.wait_for(lambda e: e["topic"] == "incident.updated" and
                  e["envelope"]["incident"]["incident"]["id"] == c["id"])
    p.kill()
    p.restart()

    got = s.call("incident", "get", {"id": a["id"]})["incident"]
    h.eq(got["status"], "INCIDENT_STATUS_IDENTIFIED")
    h.check(got.get("acknowledged"), "ack survived")
    h.eq(got["timeline"][-1]["text"], "bad deploy")
    got = s.call("incident", "get", {"id": b["id"]})["incident"]
    h.eq(got["status"], "INCIDENT_STATUS_RESOLVED")
    pm = s.call("incident", "postmortem", {"id": b["id"]})["postmortem"]
    h.eq(pm["root_cause"], "no review")
    lists = s.call("incident", "checklists", {})["checklists"]["lists"]
    h.eq(lists[0]["done"], 1, "tick survived")
    h.wait_until(lambda: s.call("incident", "get", {"id": c["id"]})
                 ["incident"]["status"] == "INCIDENT_STATUS_RESOLVED",
                 timeout=15, msg="auto-resolve after restart")
    h.eq(len(incidents(s)), 3)
    p.stop()


def test_report_with_ticket_service_stopped(s):
    if not h.have_exe("ticket-service"):
        raise h.Skip("ticket-service not built")
    start(s, ticket=True)
    s.call("incident", "create", {"severity": "CRITICAL", "title": "outage"})
    r = s.call("incident", "report", {"period": "DAY"})["report"]
    h.check(r.get("tickets_available"), "ticket stats while it runs: %r" % r)
    h.contains(r["text"], "Tickets: 0 created")
    s.proc("ticket-service").stop()
    t0 = time.time()
    r = s.call("incident", "report", {"period": "DAY"})["report"]
    h.check(time.time() - t0 < 8, "report answered without waiting long")
    h.eq(r["incidents_total"], 1)
    h.check(not r.get("tickets_available"), "tickets marked unavailable")
    h.check(not r.get("uptime_available"), "uptime marked unavailable")
    h.contains(r["text"], "Tickets: unavailable")
    h.contains(r["text"], "Uptime: unavailable")
    s.proc("incident-service").stop()


def test_non_admin_is_refused(s):
    start(s)
    r = s.opsctl("--as", "99", "call", "incident", "create",
                 json.dumps({"severity": "HIGH", "title": "x"}))
    h.eq(r.rc, 1, "refused")
    h.contains(r.stdout + r.stderr, "PERMISSION_DENIED")
    h.eq(incidents(s), [])


def test_resync_from_prober_on_start(s):
    """A component already down when the service starts (its
    health.changed long gone) still gets its incident: the service asks
    health-prober for a snapshot on start."""
    if shutil.which("nngcat") is None:
        raise h.Skip("nngcat missing")
    fake = s.fake_service("prober", """snapshot {
      targets { id: "db" name: "Database" state: COMPONENT_STATE_DOWN
                criticality: SEVERITY_HIGH public: true reason: "timeout" }
      targets { id: "web" name: "Web" state: COMPONENT_STATE_UP }
    }""")
    start(s)
    h.contains(fake.request_text(), "snapshot")
    h.wait_until(lambda: len(for_component(s, "db")) == 1, timeout=15,
                 msg="incident opened from the snapshot")
    h.eq(for_component(s, "web"), [])
    inc = for_component(s, "db")[0]
    h.eq(inc["severity"], "SEVERITY_HIGH")


def test_repeated_request_id_applies_once(s):
    """NNG's REQ resends: a repeated request id gets the first reply and
    changes nothing."""
    start(s)
    req = s.encode("opsdesk.v1.IncidentRequest", """
      request_id: "same-id-1"
      actor { user_id: 1 is_admin: true name: "ann" }
      create { severity: SEVERITY_HIGH title: "api errors" }""",
                   "incident.proto")
    replies = [sp_request(s.urls["incident"], req) for _ in range(2)]
    h.eq(replies[0], replies[1], "the same reply")
    h.contains(s.decode("opsdesk.v1.IncidentReply", replies[0],
                        "incident.proto"), 'title: "api errors"')
    h.eq(len(incidents(s)), 1, "applied once")
    s.proc("incident-service").stop()


class BlackHole:
    """A peer that accepts REQ connections (SP handshake as rep0) and never
    answers: a service that is up but hung."""

    def __init__(self, url):
        host, port = url[len("tcp://"):].rsplit(":", 1)
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind((host, int(port)))
        self.ls.listen(8)
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            c.sendall(b"\0SP\0\x00\x31\0\0")
            self.conns.append(c)

    def close(self):
        self.ls.close()
        for c in self.conns:
            c.close()


def test_report_answers_in_time_with_hung_peers(s):
    """health-prober and ticket-service connected but not answering: the
    report still comes back within the caller's 3 s, both sections marked
    unavailable (the peers are asked together, not one after the other)."""
    holes = [BlackHole(s.urls["prober"]), BlackHole(s.urls["ticket"])]
    try:
        # 1.5 s per peer: asked one after the other they would overrun
        # opsctl's 3 s; asked together there is margin on a loaded host.
        start(s, peer_timeout=1.5)
        h.wait_until(lambda: all(b.conns for b in holes), timeout=10,
                     msg="incident-service connected to both peers")
        s.call("incident", "create", {"severity": "HIGH", "title": "x"})
        t0 = time.time()
        r = s.call("incident", "report", {"period": "WEEK"})["report"]
        took = time.time() - t0
        print("  report with two hung peers: %.2f s" % took)
        h.check(not r.get("uptime_available"), "uptime unavailable")
        h.check(not r.get("tickets_available"), "tickets unavailable")
        h.eq(r["incidents_total"], 1)
        s.proc("incident-service").stop()
    finally:
        for b in holes:
            b.close()


def error_of(s, method, body):
    r = s.opsctl("call", "incident", method, json.dumps(body))
    h.eq(r.rc, 1, "an Error reply to %s: %r" % (method, r))
    return r.stdout + r.stderr


def test_bad_input_is_refused_and_changes_nothing(s):
    start(s)
    h.contains(error_of(s, "create", {"severity": "HIGH", "title": ""}),
               "INVALID_ARGUMENT")
    h.contains(error_of(s, "create", {"title": "no severity"}),
               "INVALID_ARGUMENT")
    h.contains(error_of(s, "get", {"id": 99}), "INC-99 does not exist")
    h.eq(incidents(s), [])
    a = s.call("incident", "create", {"severity": "MEDIUM",
                                      "title": "a"})["incident"]
    h.contains(error_of(s, "postmortem", {"id": a["id"]}),
               "not resolved yet")
    h.contains(error_of(s, "update", {"id": a["id"],
                                      "status": "RESOLVED", "text": "x"}),
               "INVALID_ARGUMENT")
    s.call("incident", "resolve", {"id": a["id"]})
    h.contains(error_of(s, "update", {"id": a["id"], "text": "late"}),
               "FAILED_PRECONDITION")
    h.contains(error_of(s, "ack", {"id": a["id"]}), "FAILED_PRECONDITION")
    h.contains(error_of(s, "tick", {"list_id": "daily", "item_id": "x",
                                    "done": True}), 'no item "x"')
    h.contains(error_of(s, "runbook", {}), "INVALID_ARGUMENT")
    got = s.call("incident", "get", {"id": a["id"]})["incident"]
    h.eq(len(got["timeline"]), 2, "nothing added by refused changes")


def test_list_pages_newest_first(s):
    start(s)
    ids = [s.call("incident", "create", {"severity": "LOW",
                                         "title": "n%d" % i})["incident"]["id"]
           for i in range(5)]
    s.call("incident", "resolve", {"id": ids[4]})
    page = s.call("incident", "list", {"page": {"limit": 2}})["incidents"]
    h.eq([i["id"] for i in page["incidents"]], [ids[3], ids[2]])
    page = s.call("incident", "list", {"page": {
        "limit": 2, "cursor": page["next_cursor"]}})["incidents"]
    h.eq([i["id"] for i in page["incidents"]], [ids[1], ids[0]])
    h.check(not page.get("next_cursor"), "last page")
    h.eq(len(incidents(s)), 5, "resolved ones with include_resolved")
    h.contains(error_of(s, "list", {"page": {"limit": 2, "cursor": "x1"}}),
               "INVALID_ARGUMENT")


def test_postmortem_and_report_sections_from_peers(s):
    """The peers' sections: health events of the window from the prober's
    transitions, tickets opened from ticket-service's stats."""
    if shutil.which("nngcat") is None:
        raise h.Skip("nngcat missing")
    s.fake_service("prober", prober_transitions(), count=1000)
    s.fake_service("ticket", """stats { created: 3 resolved: 2
      first_response_p50_ms: 600000 csat_average: 4.5 csat_count: 2
      sla_percent: 100 }""", count=1000)
    start(s)
    a = s.call("incident", "create", {"severity": "HIGH", "title": "db",
                                      "components": ["db"]})["incident"]
    s.call("incident", "resolve", {"id": a["id"], "text": "ok"})
    pm = s.call("incident", "postmortem_markdown",
                {"id": a["id"]})["postmortem"]
    h.eq(pm["tickets_opened"], 3)
    h.check(pm.get("health_available"), "health events available")
    h.contains(pm["markdown"], "Database: up -> down (HTTP 503)")
    h.check("start-up" not in pm["markdown"], "an event an hour before "
            "the incident is not in its window")
    r = s.call("incident", "report", {"period": "MONTH"})["report"]
    h.check(r.get("tickets_available"), "tickets available")
    h.contains(r["text"], "Tickets: 3 created, 2 resolved, first response "
               "p50 10m, CSAT 4.5 (2 ratings), within SLA 100.0%")
    h.check(not r.get("uptime_available"), "a transitions reply is no "
            "uptime report")


def test_set_severity(s):
    """Admins re-classify: timeline entry, SLA clocks from the start with
    the new targets, incident.updated and an alert when raised to
    critical; non-admins and bad severities are refused."""
    start(s)
    tail = s.tail("incident.", "alert.")
    a = s.call("incident", "create", {"severity": "LOW", "title": "slow",
                                      "components": ["api"]})["incident"]
    r = s.opsctl("--as", "99", "call", "incident", "set_severity",
                 json.dumps({"id": a["id"], "severity": "CRITICAL"}))
    h.eq(r.rc, 1, "non-admin refused")
    h.contains(r.stdout + r.stderr, "PERMISSION_DENIED")
    h.contains(error_of(s, "set_severity", {"id": a["id"]}),
               "the severity is critical, high, medium or low")
    h.contains(error_of(s, "set_severity", {"id": a["id"],
                                            "severity": "LOW"}),
               "already of that severity")
    h.contains(error_of(s, "set_severity", {"id": 99, "severity": "HIGH"}),
               "INC-99 does not exist")
    h.eq(len(s.call("incident", "get", {"id": a["id"]})["incident"]
             ["timeline"]), 1, "nothing changed")

    got = s.call("incident", "set_severity", {
        "id": a["id"], "severity": "CRITICAL",
        "reason": "checkout fails"}, as_user=1, admin=True)["incident"]
    h.eq(got["severity"], "SEVERITY_CRITICAL")
    h.eq(got["response_due_ms"], a["created_ms"] + 15 * 60 * 1000)
    h.eq(got["resolution_due_ms"], a["created_ms"] + 4 * 3600 * 1000)
    e = got["timeline"][-1]
    h.eq(e["text"], "Severity low -> critical: checkout fails")
    h.eq(e["author_id"], 1)
    h.check(not e.get("public"), "internal by default")
    ev = tail.wait_for(lambda e: e["topic"] == "incident.updated" and
                       e["envelope"]["incident"]["change"] == "severity")
    h.eq(ev["envelope"]["incident"]["incident"]["id"], a["id"])
    alert = tail.wait_for(lambda e: e["topic"] == "alert.incident")
    h.contains(alert["envelope"]["alert"]["text"], "escalated to critical")


def prober_transitions():
    """The fake prober's answer: a transition just now (a postmortem keeps
    only the events of its window), and one long before (dropped)."""
    now = int(time.time() * 1000)
    return """transitions {
  transitions { target_id: "db" name: "Database"
                old_state: COMPONENT_STATE_UP
                new_state: COMPONENT_STATE_DOWN reason: "HTTP 503"
                at_ms: %d }
  transitions { target_id: "db" name: "Database"
                old_state: COMPONENT_STATE_UNKNOWN
                new_state: COMPONENT_STATE_UP reason: "start-up"
                at_ms: %d } }""" % (now, now - 3600 * 1000)
TICKET_STATS = """stats { created: 3 resolved: 2 }"""


def postmortem(s, inc_id):
    return s.call("incident", "postmortem_markdown",
                  {"id": inc_id})["postmortem"]


def frozen(pm):
    return bool(pm.get("health_frozen") and pm.get("tickets_frozen"))


def check_frozen_sections(pm):
    h.check(frozen(pm), "both parts frozen: %r" % pm)
    h.eq(pm["tickets_opened"], 3)
    h.check(pm.get("health_available"), "health events available")
    h.contains(pm["markdown"], "Database: up -> down (HTTP 503)")
    h.check("not frozen" not in pm["markdown"], "no live section")


def test_postmortem_frozen_survives_the_peers(s):
    """The health events and tickets of the window are stored with the
    postmortem after the resolve: with both peers gone, a read still
    shows them (and asks nobody)."""
    if shutil.which("nngcat") is None:
        raise h.Skip("nngcat missing")
    fakes = [s.fake_service("prober", prober_transitions(), count=1000),
             s.fake_service("ticket", TICKET_STATS, count=1000)]
    start(s)
    a = s.call("incident", "create", {"severity": "HIGH", "title": "db",
                                      "components": ["db"]})["incident"]
    s.call("incident", "resolve", {"id": a["id"], "text": "ok"})
    h.wait_until(lambda: frozen(postmortem(s, a["id"])), timeout=15,
                 msg="postmortem frozen after the resolve")
    for f in fakes:
        f.kill()
    check_frozen_sections(postmortem(s, a["id"]))
    m = s.proc("incident-service").metrics()
    h.eq(h.metric(m, "opsdesk_postmortems_unfrozen"), 0.0)
    s.proc("incident-service").stop()


def test_postmortem_frozen_once_the_peers_are_back(s):
    """Peers down at the resolve: reads ask live and say so; the
    freezer retries (across a kill -9, from its index) and freezes once
    the peers answer."""
    if shutil.which("nngcat") is None:
        raise h.Skip("nngcat missing")
    p = start(s, freeze_retry="200ms")
    a = s.call("incident", "create", {"severity": "HIGH", "title": "db",
                                      "components": ["db"]})["incident"]
    s.call("incident", "resolve", {"id": a["id"], "text": "ok"})
    pm = postmortem(s, a["id"])
    h.check(not pm.get("health_frozen") and not pm.get("tickets_frozen"),
            "nothing frozen while the peers are down: %r" % pm)
    h.contains(pm["markdown"],
               "_not frozen yet: asked health-prober at this read_")
    h.contains(pm["markdown"], "_health-prober did not answer_")
    h.contains(pm["markdown"], "_ticket-service did not answer_")
    h.eq(h.metric(p.metrics(), "opsdesk_postmortems_unfrozen"), 1.0)
    p.kill()
    p.restart()
    fakes = [s.fake_service("prober", prober_transitions(), count=1000),
             s.fake_service("ticket", TICKET_STATS, count=1000)]
    h.wait_until(lambda: h.metric(p.metrics(),
                                  "opsdesk_postmortems_unfrozen") == 0.0,
                 timeout=15, msg="frozen once the peers are back")
    for f in fakes:
        f.kill()
    pm = postmortem(s, a["id"])
    check_frozen_sections(pm)
    h.check(pm.get("freeze_attempts", 0) >= 2, "retried: %r" % pm)
    p.stop()


def test_with_the_real_health_prober(s):
    """End to end with health-prober: a TCP target on a closed port goes
    down, its incident opens with the target's criticality; the report's
    uptime section comes from the prober."""
    if not h.have_exe("health-prober"):
        raise h.Skip("health-prober not built")
    port = h.free_port()
    s.config = json.loads(json.dumps(CONFIG))
    s.config["targets"] = [{
        "id": "closed", "name": "Closed port", "kind": "tcp",
        "host": "127.0.0.1", "port": port, "interval": "1s",
        "timeout": "500ms", "criticality": "high", "public": True,
        "failure_threshold": 1}]
    s.start("bus-relay")
    s.start("health-prober")
    s.start("incident-service")
    h.wait_until(lambda: len(for_component(s, "closed")) == 1, timeout=20,
                 msg="an incident for the closed port")
    inc = for_component(s, "closed")[0]
    h.eq(inc["severity"], "SEVERITY_HIGH")
    h.eq(inc["title"], "Closed port is down")
    r = s.call("incident", "report", {"period": "DAY"})["report"]
    h.check(r.get("uptime_available"), "uptime from the prober: %r" % r)
    h.contains(r["text"], "Closed port")


if __name__ == "__main__":
    h.main()

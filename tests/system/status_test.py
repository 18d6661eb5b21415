"""status-publisher end to end: events in through bus-relay -> page, JSON,
feeds and badges out; restart -> same output; a dropped event repaired by
resync from the owners' snapshots (served here by a tiny fake REP server
speaking NNG's SP protocol over TCP, so the test does not depend on the
real health-prober and incident-service)."""

import os
import random
import shutil
import socket
import struct
import subprocess
import threading
import time

import harness as h

HOSTILE = "<script>alert(\"x\")</script> & 'q'"
NOW = int(time.time() * 1000)
T0 = NOW - 3600 * 1000

# Fields and types of the Statuspage v2 objects (reference/statuspage-v2.md).
STR, NUM, BOOL, ARR, OBJ, STR_NULL = "str", "num", "bool", "arr", "obj", "s|n"
PAGE = {"id": STR, "name": STR, "url": STR, "time_zone": STR,
        "updated_at": STR}
STATUS = {"indicator": STR, "description": STR}
COMPONENT = {"id": STR, "name": STR, "status": STR, "created_at": STR,
             "updated_at": STR, "position": NUM, "description": STR_NULL,
             "showcase": BOOL, "start_date": STR_NULL, "group_id": STR_NULL,
             "page_id": STR, "group": BOOL, "only_show_if_degraded": BOOL}
INCIDENT = {"id": STR, "name": STR, "status": STR, "created_at": STR,
            "updated_at": STR, "monitoring_at": STR_NULL,
            "resolved_at": STR_NULL, "impact": STR, "shortlink": STR,
            "started_at": STR, "page_id": STR, "incident_updates": ARR,
            "components": ARR}
UPDATE = {"id": STR, "status": STR, "body": STR, "incident_id": STR,
          "created_at": STR, "updated_at": STR, "display_at": STR,
          "affected_components": ARR}
AFFECTED = {"code": STR, "name": STR, "old_status": STR, "new_status": STR}
MAINT = dict(INCIDENT, scheduled_for=STR, scheduled_until=STR)
COMP_STATUS = {"operational", "degraded_performance", "partial_outage",
               "major_outage", "under_maintenance"}

SECRETS = ["INTERNAL-NOTE", "Alice Admin", "secret-target", "Hidden Group",
           "PRIVATE-INC"]


def check_shape(obj, fields, what):
    h.check(isinstance(obj, dict), "%s is not an object" % what)
    for k, t in fields.items():
        h.check(k in obj, "%s: field %s missing" % (what, k))
        v = obj[k]
        ok = {STR: isinstance(v, str),
              NUM: isinstance(v, (int, float)) and not isinstance(v, bool),
              BOOL: isinstance(v, bool),
              ARR: isinstance(v, list),
              OBJ: isinstance(v, dict),
              STR_NULL: v is None or isinstance(v, str)}[t]
        h.check(ok, "%s: field %s has type %s, want %s" %
                (what, k, type(v).__name__, t))


def check_incident(inc, maint=False):
    check_shape(inc, MAINT if maint else INCIDENT, "incident")
    for u in inc["incident_updates"]:
        check_shape(u, UPDATE, "incident_update")
        for a in u["affected_components"]:
            check_shape(a, AFFECTED, "affected_component")
    for c in inc["components"]:
        check_shape(c, COMPONENT, "incident component")


def q(s):
    """A protobuf text-format string literal."""
    return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')


def proto_encode(message, proto_file, text):
    r = subprocess.run(
        ["protoc", "-I", h.ARGS.proto, "--encode=opsdesk.v1." + message,
         os.path.join(h.ARGS.proto, proto_file)],
        input=text.encode(), capture_output=True, timeout=20)
    if r.returncode != 0:
        raise h.Failure("protoc --encode %s: %s" % (message, r.stderr))
    return r.stdout


class Source:
    """A fake event source with its own sequence numbers."""

    def __init__(self, suite, name="test-source"):
        self.s = suite
        self.name = name
        self.seq = 0
        self.topic_seq = {}
        with open(os.path.join(h.ARGS.proto, "envelope.proto")) as f:
            self.numbers_topics = "topic_seq" in f.read()

    def frame(self, topic, body, skip=0):
        """A frame numbered after the last one, `skip` numbers later."""
        self.seq += 1 + skip
        tseq = self.topic_seq.get(topic, 0) + 1 + skip
        self.topic_seq[topic] = tseq
        text = ("schema_version: 1\nevent_id: %s\nsource: %s\n"
                "instance: \"t1\"\nseq: %d\nts_ms: %d\ntopic: %s\n" %
                (q("%032x" % random.getrandbits(128)), q(self.name),
                 self.seq, int(time.time() * 1000), q(topic)))
        if self.numbers_topics:
            text += "topic_seq: %d\n" % tseq
        text += body + "\n"
        return topic.encode() + b"\0" + self.s.encode_envelope(text)

    def send(self, topic, body, skip=0):
        self.s.publish_raw(self.frame(topic, body, skip))


def health(tid, name, group, state, public, at):
    return ("health_changed { target_id: %s name: %s group: %s "
            "new_state: COMPONENT_STATE_%s public: %s at_ms: %d }" %
            (q(tid), q(name), q(group), state,
             "true" if public else "false", at))


def incident_body(iid, title, public, at):
    return (
        "incident { change: \"opened\" incident { id: %d title: %s "
        "severity: SEVERITY_HIGH status: INCIDENT_STATUS_INVESTIGATING "
        "public: %s created_ms: %d updated_ms: %d "
        "acknowledged_by_name: \"Alice Admin\" "
        "components { component_id: \"api\" name: \"API\" "
        "state: COMPONENT_STATE_DOWN } "
        "components { component_id: \"secret-target\" state: "
        "COMPONENT_STATE_DOWN } "
        "timeline { at_ms: %d author_id: 5 author_name: \"Alice Admin\" "
        "status: INCIDENT_STATUS_INVESTIGATING text: %s public: true } "
        "timeline { at_ms: %d author_id: 5 author_name: \"Alice Admin\" "
        "text: \"INTERNAL-NOTE restart it\" public: false } } }" %
        (iid, q(title), "true" if public else "false", at, at + 1, at,
         q(HOSTILE + " we are on it"), at + 1))


def maintenance_body(mid, start, end):
    return ("maintenance { change: \"scheduled\" window { id: %d "
            "title: \"DB upgrade & more\" components: \"db\" "
            "components: \"secret-target\" start_ms: %d end_ms: %d "
            "status: MAINTENANCE_STATUS_SCHEDULED created_ms: %d "
            "updated_ms: %d description: \"Rolling restart\" } }" %
            (mid, start, end, NOW, NOW))


def config():
    return {"status_page": {
        "title": "Ops <&> Status",
        "url": "https://status.example.com",
        "components": [{"id": "db", "name": "Database",
                        "description": "Primary store"}, "api"],
        # Only the resyncs under test: start, reconnect and gaps.
        "resync_interval": "1h", "history_interval": "1h"}}


def get(p, path, headers=None):
    st, body, hdrs = p.http_get(path, headers=headers)
    return st, body, {k.lower(): v for k, v in dict(hdrs).items()}


def get_json(p, path):
    import json
    st, body, hdrs = get(p, path)
    h.eq(st, 200, path)
    h.contains(hdrs.get("content-type", ""), "application/json")
    return json.loads(body)


def comp_status(p, cid):
    for c in get_json(p, "/api/v2/components.json")["components"]:
        if c["id"] == cid:
            return c["status"]
    return None


def xmllint(data, what):
    tool = shutil.which("xmllint")
    if tool is None:
        raise h.Skip("xmllint missing (package libxml2-utils)")
    r = subprocess.run([tool, "--noout", "-"], input=data,
                       capture_output=True, timeout=20)
    h.check(r.returncode == 0, "%s is not well-formed XML: %s" %
            (what, r.stderr.decode()))


def start(s):
    s.config = config()
    s.start("bus-relay")
    return s.start("status-publisher")


def test_events_to_page(s):
    p = start(s)
    tail = s.tail("status.")
    src = Source(s)
    src.send("health.changed", health("db", "Database", "Core", "UP", True,
                                      T0))
    src.send("health.changed", health("api", "API", "Edge", "UP", True, T0))
    src.send("health.changed", health("secret-target", "Hidden",
                                      "Hidden Group", "DOWN", False, T0))
    h.wait_until(lambda: comp_status(p, "api") == "operational", 10,
                 "api on the page")

    # The API goes down, an incident is opened, maintenance is planned.
    src.send("health.changed", health("api", "API", "Edge", "DOWN", True,
                                      T0 + 60000))
    src.send("incident.opened", incident_body(7, HOSTILE, True, T0 + 61000))
    src.send("incident.opened", incident_body(8, "PRIVATE-INC", False,
                                              T0 + 62000))
    src.send("maintenance.scheduled",
             maintenance_body(3, NOW + 3600000, NOW + 7200000))
    h.wait_until(lambda: len(get_json(p, "/api/v2/scheduled-maintenances/"
                                      "upcoming.json")
                             ["scheduled_maintenances"]) == 1, 10,
                 "maintenance on the page")

    # status.changed went out for the API and the indicator.
    ev = tail.wait_for(lambda e: e.get("topic") == "status.changed" and
                       any(c.get("component_id") == "api" for c in
                           e["envelope"]["status_changed"].get("changes",
                                                               [])), 10)
    sc = ev["envelope"]["status_changed"]
    h.eq(sc["indicator"], "major")
    h.eq(sc["changes"][0]["new_status"], "major_outage")

    # JSON, field by field.
    summ = get_json(p, "/api/v2/summary.json")
    check_shape(summ["page"], PAGE, "page")
    check_shape(summ["status"], STATUS, "status")
    h.eq(summ["status"]["indicator"], "major")
    h.eq(summ["status"]["description"], "Partial System Outage")
    h.eq(summ["page"]["name"], "Ops <&> Status")
    ids = [c["id"] for c in summ["components"]]
    h.check("db" in ids and "api" in ids and "secret-target" not in ids,
            "public components only: %r" % ids)
    for c in summ["components"]:
        check_shape(c, COMPONENT, "component")
        h.check(c["status"] in COMP_STATUS, c["status"])
    db = [c for c in summ["components"] if c["id"] == "db"][0]
    h.eq(db["name"], "Database")
    h.eq(db["description"], "Primary store")
    h.eq(len(summ["incidents"]), 1)
    inc = summ["incidents"][0]
    check_incident(inc)
    h.eq(inc["name"], HOSTILE)
    h.eq(inc["impact"], "major")
    h.eq(len(inc["incident_updates"]), 1)
    h.eq([a["code"] for a in
          inc["incident_updates"][0]["affected_components"]], ["api"])
    h.eq(len(summ["scheduled_maintenances"]), 1)
    check_incident(summ["scheduled_maintenances"][0], maint=True)
    for path, key in [("/api/v2/status.json", "status"),
                      ("/api/v2/incidents.json", "incidents"),
                      ("/api/v2/incidents/unresolved.json", "incidents"),
                      ("/api/v2/scheduled-maintenances.json",
                       "scheduled_maintenances"),
                      ("/api/v2/scheduled-maintenances/active.json",
                       "scheduled_maintenances")]:
        j = get_json(p, path)
        check_shape(j["page"], PAGE, path)
        h.check(key in j, "%s lacks %s" % (path, key))

    # Page, feeds, badges: escaped, well-formed, nothing internal.
    pages = {}
    for path in ["/", "/history.rss", "/history.atom", "/badge/db.svg",
                 "/badge/api.svg", "/badge/api/uptime.svg",
                 "/api/v2/summary.json", "/api/v2/incidents.json"]:
        st, body, hdrs = get(p, path)
        h.eq(st, 200, path)
        pages[path] = body
        text = body.decode()
        for secret in SECRETS:
            h.check(secret not in text, "%s leaks %s" % (path, secret))
        if not path.startswith("/api/"):
            h.check("<script>" not in text, "%s: raw <script>" % path)
            xmllint(body, path) if path != "/" else None
    html = pages["/"].decode()
    h.contains(html, "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;")
    h.contains(html, "Ops &lt;&amp;&gt; Status")
    h.contains(html, "Major Outage")
    h.check(html.count('class="b') >= 2 * 90, "90 bars per component")
    h.contains(pages["/history.rss"].decode(), "&lt;script&gt;")
    h.contains(pages["/badge/api.svg"].decode(), "major outage")
    h.contains(pages["/badge/db.svg"].decode(), "operational")
    st, _, _ = get(p, "/badge/secret-target.svg")
    h.eq(st, 404, "private badge")

    # Caching: ETag and Last-Modified validate; Cache-Control is set.
    st, body, hdrs = get(p, "/api/v2/summary.json")
    h.check(hdrs.get("etag", "").startswith('"'), "ETag: %r" % hdrs)
    h.check("max-age" in hdrs.get("cache-control", ""), "Cache-Control")
    st, body, _ = get(p, "/api/v2/summary.json",
                      {"If-None-Match": hdrs["etag"]})
    h.eq(st, 304, "If-None-Match")
    h.eq(body, b"")
    st, _, _ = get(p, "/", {"If-Modified-Since": hdrs["last-modified"]})
    h.eq(st, 304, "If-Modified-Since")
    st, _, _ = get(p, "/api/v2/summary.json", {"If-None-Match": '"x"'})
    h.eq(st, 200)

    # The chat summary over req/rep.
    if h.have_exe("opsctl"):
        r = s.call("status", "summary", {}, as_user=99)
        sm = r.get("summary", r)
        h.eq(sm["indicator"], "major")
        h.eq(sm["page_url"], "https://status.example.com")
        h.eq(sorted(c["id"] for c in sm["components"]), ["api", "db"])
        h.eq(len(sm["incidents"]), 1)
        h.contains(sm["incidents"][0]["latest_update"], "we are on it")

    # Its own metrics, in a valid exposition.
    m = p.metrics()
    h.check((h.metric(m, "opsdesk_status_renders_total") or 0) >= 1,
            "renders counted")
    h.check((h.metric(m, "opsdesk_status_events_total") or 0) >= 7,
            "events counted")

    # Restart: the same bytes from the store, before any owner answers.
    p.restart()
    for path, body in pages.items():
        st, again, _ = get(p, path)
        h.eq(st, 200, path)
        h.eq(again, body, "after restart: %s" % path)


class FakeRep:
    """A REP socket on NNG's SP-over-TCP wire protocol that answers every
    request with self.reply (bytes, or a function of the request's bytes
    returning them), so an owner's snapshot can be scripted without the
    owner."""

    def __init__(self, url):
        host, port = url[len("tcp://"):].rsplit(":", 1)
        self.reply = b""
        self.requests = 0
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, int(port)))
        self.sock.listen(8)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,),
                             daemon=True).start()

    @staticmethod
    def _recv(c, n):
        buf = b""
        while len(buf) < n:
            chunk = c.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def _serve(self, c):
        try:
            c.sendall(b"\x00SP\x00\x00\x31\x00\x00")  # rep0
            self._recv(c, 8)
            while True:
                n = struct.unpack(">Q", self._recv(c, 8))[0]
                msg = self._recv(c, n)
                # The REQ header: 32-bit words up to the request id,
                # the one with the high bit set; echoed back.
                i = 0
                while i + 4 <= len(msg):
                    i += 4
                    if msg[i - 4] & 0x80:
                        break
                reply = self.reply
                if callable(reply):  # answers by what was asked
                    reply = reply(msg[i:])
                out = msg[:i] + reply
                self.requests += 1
                c.sendall(struct.pack(">Q", len(out)) + out)
        except (EOFError, OSError):
            pass
        finally:
            c.close()

    def close(self):
        self.sock.close()


def prober_snapshot(db_state, since):
    return proto_encode("ProberReply", "health.proto", (
        "snapshot { targets { id: \"db\" name: \"Database\" group: \"Core\" "
        "state: COMPONENT_STATE_%s public: true since_ms: %d } "
        "targets { id: \"api\" name: \"API\" group: \"Edge\" "
        "state: COMPONENT_STATE_UP public: true since_ms: %d } at_ms: %d }"
        % (db_state, since, T0, int(time.time() * 1000))))


def test_dropped_event_repaired_by_resync(s):
    prober = FakeRep(s.urls["prober"])
    incident = FakeRep(s.urls["incident"])
    try:
        prober.reply = prober_snapshot("UP", T0)
        incident.reply = proto_encode("IncidentReply", "incident.proto",
                                      "snapshot { at_ms: 1 }")
        p = start(s)
        # The start resync brings both components in with no event.
        h.wait_until(lambda: comp_status(p, "db") == "operational" and
                     comp_status(p, "api") == "operational", 10,
                     "components from the start resync")
        src = Source(s)
        src.send("health.changed", health("api", "API", "Edge", "UP", True,
                                          T0 + 1000))
        # The owner now knows db is down; the event saying so is lost.
        prober.reply = prober_snapshot("DOWN", T0 + 5000)
        time.sleep(1.5)
        h.eq(comp_status(p, "db"), "operational",
             "no resync without a reason")
        # The next event's sequence number jumps: a gap -> resync.
        src.send("health.changed", health("api", "API", "Edge", "UP", True,
                                          T0 + 6000), skip=1)
        h.wait_until(lambda: comp_status(p, "db") == "major_outage", 15,
                     "db repaired by the gap resync")
        h.check(any("gap" in (l.get("msg", "") + str(l.get("reason", "")))
                    for l in p.log_lines()), "a gap was logged")
    finally:
        prober.close()
        incident.close()


def test_reconnect_resyncs(s):
    """A relay restart loses whatever was published meanwhile; the
    reconnection alone makes status-publisher resync."""
    prober = FakeRep(s.urls["prober"])
    incident = FakeRep(s.urls["incident"])
    try:
        prober.reply = prober_snapshot("UP", T0)
        incident.reply = proto_encode("IncidentReply", "incident.proto",
                                      "snapshot { at_ms: 1 }")
        p = start(s)
        h.wait_until(lambda: comp_status(p, "db") == "operational", 10,
                     "db from the start resync")
        relay = s.proc("bus-relay")
        relay.stop()
        prober.reply = prober_snapshot("DOWN", T0 + 5000)
        time.sleep(1.5)
        h.eq(comp_status(p, "db"), "operational", "no resync while away")
        relay.restart()
        h.wait_until(lambda: comp_status(p, "db") == "major_outage", 15,
                     "db repaired after the reconnect")
        h.check(any("reconnect" in l.get("msg", "") for l in p.log_lines()),
                "a reconnect resync was logged")
    finally:
        prober.close()
        incident.close()


def test_with_real_owners(s):
    """Against the real health-prober and incident-service: probe states
    and an incident reach the page through events, and what changed while
    status-publisher was down arrives through the start resync."""
    for exe in ("health-prober", "incident-service"):
        if not h.have_exe(exe):
            raise h.Skip("%s not built" % exe)
    closed = h.free_port()
    s.config = config()
    s.config["targets"] = [
        {"id": "web", "name": "Web", "group": "Edge", "kind": "tcp",
         "host": "127.0.0.1", "port": int(s.http["bus-relay"].split(":")[1]),
         "interval": "1s", "timeout": "500ms", "failure_threshold": 1,
         "success_threshold": 1, "public": True},
        {"id": "db", "name": "Database", "group": "Core", "kind": "tcp",
         "host": "127.0.0.1", "port": closed, "interval": "1s",
         "timeout": "500ms", "failure_threshold": 1, "success_threshold": 1,
         "criticality": "low", "public": True},
        {"id": "secret-target", "name": "Hidden", "group": "Hidden Group",
         "kind": "tcp", "host": "127.0.0.1", "port": closed,
         "interval": "1s", "timeout": "500ms", "failure_threshold": 1,
         "public": False},
    ]
    s.start("bus-relay")
    s.start("health-prober")
    s.start("incident-service")
    p = s.start("status-publisher")
    h.wait_until(lambda: comp_status(p, "web") == "operational" and
                 comp_status(p, "db") == "major_outage", 20,
                 "probe states on the page")
    h.eq(comp_status(p, "secret-target"), None, "private target")
    # Today's bar fills from the probe results (and the prober's history,
    # whose day aggregates lag them).
    h.wait_until(lambda: "100% up, " in get(p, "/")[1].decode(), 15,
                 "web's bar of today from its checks")
    h.contains(get(p, "/badge/web/uptime.svg")[1].decode(), "100%")

    r = s.call("incident", "create", {"severity": "high", "title": HOSTILE,
                                      "components": ["db"],
                                      "text": "Looking into it"})
    iid = r["incident"]["id"]

    def listed(status):
        for inc in get_json(p, "/api/v2/incidents.json")["incidents"]:
            if inc["id"] == "INC-%s" % iid and inc["status"] == status:
                return inc
        return None
    h.wait_until(lambda: listed("investigating"), 10, "incident on the page")
    h.eq(listed("investigating")["name"], HOSTILE)
    for path in ["/", "/api/v2/summary.json", "/api/v2/incidents.json",
                 "/history.rss", "/history.atom"]:
        _, body, _ = get(p, path)
        for secret in SECRETS:
            h.check(secret not in body.decode(),
                    "%s leaks %s: %s" % (path, secret, body[:3000]))

    # Resolved while the page is down: the start resync brings it in.
    p.stop()
    s.call("incident", "resolve", {"id": iid, "text": "Fixed & verified"})
    p.restart()
    h.wait_until(lambda: listed("resolved"), 15, "resolution after restart")
    h.contains(listed("resolved")["incident_updates"][0]["body"],
               "Fixed & verified")


if __name__ == "__main__":
    h.main()

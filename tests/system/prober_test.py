"""health-prober against real targets on loopback.

A local HTTP server the test turns up, down, slow and wrong-body; TCP
open and closed; a self-signed certificate near expiry; a `service`
target following a real opsdesk service (a second health-prober) killed
and restarted; metric targets; history across a restart; config reloads
(ops.config_reload and SIGHUP); headers and basic/bearer credentials.
Events are read with `opsctl tail health.`.
"""

import http.server
import base64
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


class Target:
    """An HTTP server whose behaviour the test sets: mode is "ok",
    "down" (503), "slow" (answers after 2.5 s) or "wrong" (200 with a
    body that lacks the expected text). Serves /metrics.json and /prom
    for metric targets, and counts requests. fail_next: that many of the
    next requests of / get a 503 whatever the mode (a number of failures
    that does not depend on how fast the test polls)."""

    def __init__(self, tls_dir=None, require=None):
        self.mode = "ok"
        self.fail_next = 0
        self.lock = threading.Lock()
        self.hits = 0
        # require: {header: value} every request must carry, else 401.
        self.require = require or {}
        self.seen = []  # the headers of each request, as dicts
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *a):
                pass

            def do_GET(self):
                outer.hits += 1
                outer.seen.append(dict(self.headers.items()))
                for k, v in outer.require.items():
                    if self.headers.get(k) != v:
                        return self.reply(401, "unauthorized")
                if self.path == "/metrics.json":
                    return self.reply(200, json.dumps(
                        {"active_signals": 42, "ai": {"win_rate": 0.61}}))
                if self.path == "/prom":
                    return self.reply(200, "# TYPE api_requests counter\n"
                                      'api_requests{code="200"} 1234\n'
                                      'api_requests{code="500"} 7\n')
                mode = outer.mode
                with outer.lock:
                    if outer.fail_next > 0:
                        outer.fail_next -= 1
                        mode = "down"
                if mode == "down":
                    return self.reply(503, "unavailable")
                if mode == "slow":
                    time.sleep(2.5)
                if mode == "wrong":
                    return self.reply(200, "maintenance page")
                return self.reply(200, "status ok")

            def reply(self, code, body):
                data = body.encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      Handler)
        self.server.daemon_threads = True
        if tls_dir:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(os.path.join(tls_dir, "cert.pem"),
                                os.path.join(tls_dir, "key.pem"))
            self.server.socket = ctx.wrap_socket(self.server.socket,
                                                 server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def http_target(id_, port, **kw):
    t = {"id": id_, "kind": "http", "url": "http://127.0.0.1:%d/" % port,
         "interval": "1s", "timeout": "1s"}
    t.update(kw)
    return t


def current(s):
    r = s.call("prober", "current", {})
    return {t["id"]: t for t in r["current"]["targets"]}


def state_of(s, id_):
    return current(s)[id_].get("state", "COMPONENT_STATE_UNKNOWN")


def changes(tail, id_):
    """(old, new) of every health.changed of target id_ so far."""
    out = []
    for e in list(tail.events):
        if e.get("topic") != "health.changed":
            continue
        hc = e["envelope"]["health_changed"]
        if hc["target_id"] == id_:
            out.append((hc.get("old_state", "COMPONENT_STATE_UNKNOWN")[16:],
                        hc.get("new_state", "COMPONENT_STATE_UNKNOWN")[16:]))
    return out


def expect_changes(tail, id_, want, msg=None):
    """The transitions of id_ are want, once as many have arrived: the
    rpc state can show a transition before its event has crossed the
    relay to the tail."""
    h.wait_until(lambda: len(changes(tail, id_)) >= len(want), 5,
                 "%d transitions of %s on the bus" % (len(want), id_))
    h.eq(changes(tail, id_), want, msg)


def wait_state(s, id_, state, timeout=15.0):
    h.wait_until(lambda: state_of(s, id_) == "COMPONENT_STATE_" + state,
                 timeout, "%s %s" % (id_, state))


def test_http_flap_damping_and_history(s):
    h.need("health-prober", "bus-relay", "opsctl")
    web = Target()
    try:
        s.config = {"targets": [
            http_target("web", web.port, name="Web application",
                        body_contains="status ok", public=True,
                        criticality="critical", failure_threshold=4),
            {"id": "biz", "kind": "metric", "interval": "1s",
             "timeout": "1s",
             "url": "http://127.0.0.1:%d/metrics.json" % web.port,
             "values": [{"name": "active_signals", "path": "active_signals"},
                        {"name": "ai_win_rate", "path": "ai.win_rate",
                         "unit": "ratio"}]},
            {"id": "prom", "kind": "metric", "format": "prometheus",
             "interval": "1s", "timeout": "1s",
             "url": "http://127.0.0.1:%d/prom" % web.port,
             "values": [{"name": "api_requests", "metric": "api_requests",
                         "labels": 'code="200"'}]},
        ], "prober": {"flush_interval": "1s"}}
        s.start("bus-relay")
        tail = s.tail("health.")
        p = s.start("health-prober")
        wait_state(s, "web", "UP")
        expect_changes(tail, "web", [("UNKNOWN", "UP")])

        # Two failures are below the threshold (4): no event. The
        # target fails exactly two probes, however slow the polling
        # here (a sanitizer build).
        with web.lock:
            web.fail_next = 2
        h.wait_until(lambda: web.fail_next == 0 and current(s)["web"].get(
            "consecutive_successes", 0) >= 2, 10,
            "two failures, then successes again")
        expect_changes(tail, "web", [("UNKNOWN", "UP")], "no flapping")

        # A wrong body four times: down, with the reason.
        web.mode = "wrong"
        wait_state(s, "web", "DOWN")
        ev = tail.wait_for(lambda e: e.get("topic") == "health.changed" and
                           e["envelope"]["health_changed"]["target_id"] ==
                           "web" and e["envelope"]["health_changed"].get(
                               "new_state") == "COMPONENT_STATE_DOWN")
        h.contains(ev["envelope"]["health_changed"]["reason"],
                   "body does not contain")
        h.eq(ev["envelope"]["health_changed"]["criticality"],
             "SEVERITY_CRITICAL")
        h.check(ev["envelope"]["instance"], "events carry the instance")
        # Slow answers time out: still down, reason changes, no event.
        web.mode = "slow"
        h.wait_until(lambda: "timeout" in current(s)["web"].get(
            "reason", "") or any("timeout" in (r.get("error") or "")
                                 for r in s.call("prober", "history", {
                                     "target_id": "web", "recent": 3})
                                 ["history"].get("recent", [])),
            15, "a timed-out probe")
        # One success is not recovery; two are.
        web.mode = "ok"
        wait_state(s, "web", "UP")
        expect_changes(tail, "web",
                       [("UNKNOWN", "UP"), ("UP", "DOWN"), ("DOWN", "UP")])

        # Business metrics from JSON and Prometheus text.
        def values():
            r = s.call("prober", "metrics", {})
            return {m["name"]: m["value"]
                    for m in r["metrics"].get("metrics", [])}
        h.wait_until(lambda: len(values()) == 3, 10, "business metrics")
        v = values()
        h.eq(v["active_signals"], 42)
        h.eq(v["ai_win_rate"], 0.61)
        h.eq(v["api_requests"], 1234)
        samples = p.metrics()  # validates the exposition format
        h.check(any(k[0] == "opsdesk_probe_state" for k in samples),
                "per-target gauges in /metrics")
        text = p.http_get("/metrics")[1].decode()
        h.contains(text, 'opsdesk_probe_success{target="web",kind="http"} 1')
        h.contains(text, 'opsdesk_business_metric{name="active_signals",'
                   'target="biz"} 42')

        # Non-admins: no resources, and only public targets.
        s.call("prober", "resources", {}, as_user=5, expect=1)
        pub = s.call("prober", "current", {}, as_user=5)
        h.eq([t["id"] for t in pub["current"]["targets"]], ["web"])
        res = s.call("prober", "resources", {})["resources"]
        h.check(res["mem_total_bytes"] > 0, "memory from /proc")

        # History survives a restart.
        def history():
            return s.call("prober", "history", {"target_id": "web",
                                                "recent": 50})["history"]
        # Results are stored in batches (a flush interval): poll.
        h.wait_until(lambda: len(history().get("recent", [])) >= 5, 10,
                     "recent results stored")
        before = history()
        h.eq(len(before["transitions"]), 3)
        p.stop()
        p.restart()
        after = s.call("prober", "history", {"target_id": "web",
                                             "recent": 50})["history"]
        h.eq(after["target"]["state"], "COMPONENT_STATE_UP")
        h.eq(len(after["transitions"]), 3)
        h.check(len(after.get("recent", [])) >= len(before["recent"]),
                "results kept across the restart")
        h.check(0 < after["uptime_24h"] < 100, "uptime with the failures")
        h.eq(len(after["daily"]), 90)
        h.check(after["daily"][-1]["checks"] > 0, "today's bar")
        # The restarted prober continues from the stored state: no
        # unknown->up again, once it has probed and stored since.
        n_after = after["daily"][-1]["checks"]
        h.wait_until(lambda: history()["daily"][-1]["checks"] > n_after,
                     10, "a probe stored after the restart")
        expect_changes(tail, "web",
                       [("UNKNOWN", "UP"), ("UP", "DOWN"), ("DOWN", "UP")])
    finally:
        web.close()


def test_tcp_and_certificate(s):
    h.need("health-prober", "bus-relay", "opsctl")
    if not shutil.which("openssl"):
        raise h.Skip("openssl not installed")
    # A certificate that expires in 3 days; the warning is at 14.
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-days", "3", "-subj", "/CN=127.0.0.1",
                    "-keyout", s.path("key.pem"), "-out",
                    s.path("cert.pem")], check=True, capture_output=True)
    tls = Target(tls_dir=s.dir)
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    closed = h.free_port()
    try:
        s.config = {"targets": [
            {"id": "tls", "kind": "http", "interval": "1s", "timeout": "1s",
             "url": "https://127.0.0.1:%d/" % tls.port, "tls_verify": False,
             "cert_expiry_warn_days": 14},
            {"id": "open", "kind": "tcp", "host": "127.0.0.1",
             "port": lsock.getsockname()[1], "interval": "1s",
             "timeout": "1s"},
            {"id": "closed", "kind": "tcp", "host": "127.0.0.1",
             "port": closed, "interval": "1s", "timeout": "1s"},
        ]}
        s.start("bus-relay")
        p = s.start("health-prober")
        wait_state(s, "open", "UP")
        wait_state(s, "closed", "DOWN")
        wait_state(s, "tls", "DEGRADED")
        t = current(s)["tls"]
        h.check(t["cert_days_left"] in (2, 3), "days left: %r" % t)
        h.contains(t["reason"], "certificate expires in")
        text = p.http_get("/metrics")[1].decode()
        h.contains(text, 'opsdesk_probe_ssl_earliest_cert_expiry{target="tls"')
        h.contains(text, 'opsdesk_probe_success{target="closed",kind="tcp"} 0')
    finally:
        tls.close()
        lsock.close()


def test_service_target_follows_a_real_service(s):
    h.need("health-prober", "bus-relay", "opsctl")
    other_url = "tcp://127.0.0.1:%d" % h.free_port()
    s.config = {"targets": [
        {"id": "peer", "kind": "service", "url": other_url,
         "interval": "1s", "timeout": "1s", "failure_threshold": 2,
         "success_threshold": 1},
    ]}
    s.start("bus-relay")
    tail = s.tail("health.")
    # The watched service: another opsdesk service with its own store and
    # no targets, started first so the first ping finds it.
    with open(s.path("peer.json"), "w") as f:
        f.write("{}")
    peer = s.start("health-prober", instance="peer", env={
        "OPSDESK_CONFIG": s.path("peer.json"),
        "OPSDESK_PROBER_URL": other_url,
        "OPSDESK_DATA_DIR": s.path("peer-data")})
    s.start("health-prober", instance="watcher")
    wait_state(s, "peer", "UP")
    peer.kill()
    wait_state(s, "peer", "DOWN")
    peer.restart()
    wait_state(s, "peer", "UP")
    expect_changes(tail, "peer",
                   [("UNKNOWN", "UP"), ("UP", "DOWN"), ("DOWN", "UP")],
                   "events: %r" % tail.raw)


def test_maintenance_from_the_bus(s):
    h.need("health-prober", "bus-relay", "opsctl")
    web = Target()
    try:
        s.config = {"targets": [
            http_target("web", web.port, group="Frontend",
                        failure_threshold=2, success_threshold=1)]}
        s.start("bus-relay")
        tail = s.tail("health.")
        s.start("health-prober")
        wait_state(s, "web", "UP")
        win = {"id": "4", "title": "frontend upgrade",
               "components": ["frontend"],
               "status": "MAINTENANCE_STATUS_IN_PROGRESS"}

        def announce(change, status):
            # Pub/sub may drop a frame: publish until the state shows it.
            win["status"] = status
            s.publish("maintenance." + change,
                      {"maintenance": {"window": win, "change": change}})
            return True

        h.wait_until(lambda: announce("started",
                                      "MAINTENANCE_STATUS_IN_PROGRESS") and
                     state_of(s, "web") == "COMPONENT_STATE_MAINTENANCE",
                     20, "maintenance shown", interval=1.0)
        ev = tail.wait_for(lambda e: e.get("topic") == "health.changed" and
                           e["envelope"]["health_changed"].get(
                               "new_state") ==
                           "COMPONENT_STATE_MAINTENANCE")
        h.contains(ev["envelope"]["health_changed"]["reason"], "MNT-4")
        # Down during the window: no down event, health moves below.
        web.mode = "down"
        h.wait_until(lambda: current(s)["web"].get("health") ==
                     "COMPONENT_STATE_DOWN", 10, "health down below")
        h.eq(state_of(s, "web"), "COMPONENT_STATE_MAINTENANCE")
        h.wait_until(lambda: announce("completed",
                                      "MAINTENANCE_STATUS_COMPLETED") and
                     state_of(s, "web") == "COMPONENT_STATE_DOWN",
                     20, "maintenance over", interval=1.0)
        web.mode = "ok"
        wait_state(s, "web", "UP")
        expect_changes(tail, "web",
                       [("UNKNOWN", "UP"), ("UP", "MAINTENANCE"),
                        ("MAINTENANCE", "DOWN"), ("DOWN", "UP")])
    finally:
        web.close()


def test_maintenance_resync_when_incident_service_comes_up(s):
    """incident-service is down when the prober starts: the prober keeps
    asking for its snapshot and shows a window in progress once it
    answers, with no maintenance.* event to prompt it."""
    h.need("health-prober", "bus-relay", "incident-service", "opsctl")
    web = Target()
    try:
        s.config = {"targets": [
            http_target("web", web.port, group="Frontend",
                        failure_threshold=2, success_threshold=1)]}
        s.start("bus-relay")
        inc = s.start("incident-service")
        now = int(time.time() * 1000)
        w = s.call("incident", "maintenance_create", {
            "title": "frontend upgrade", "components": ["frontend"],
            "start_ms": now - 1000, "end_ms": now + 3600 * 1000})
        h.eq(w["maintenance"]["status"], "MAINTENANCE_STATUS_IN_PROGRESS")
        inc.stop()
        p = s.start("health-prober")
        wait_state(s, "web", "UP")

        def failed():
            return h.metric(p.metrics(), "opsdesk_resyncs_total",
                            source="incident-service",
                            result="failed") or 0
        h.wait_until(lambda: failed() >= 1, 15, "a failed resync")
        h.eq(state_of(s, "web"), "COMPONENT_STATE_UP")
        inc.restart()
        wait_state(s, "web", "MAINTENANCE", timeout=30)
        h.check((h.metric(p.metrics(), "opsdesk_resyncs_total",
                          source="incident-service", result="ok") or 0)
                >= 1, "resync counted")
    finally:
        web.close()


def test_shards_split_the_targets(s):
    h.need("health-prober", "opsctl")
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    try:
        ids = ["t%d" % i for i in range(12)]
        s.config = {"targets": [
            {"id": i, "kind": "tcp", "host": "127.0.0.1",
             "port": lsock.getsockname()[1], "interval": "1s",
             "timeout": "1s"} for i in ids]}
        urls = ["tcp://127.0.0.1:%d" % h.free_port() for _ in range(2)]
        for k in range(2):
            s.start("health-prober", wait="/healthz",
                    instance="shard-%d" % k,
                    env={"OPSDESK_PROBER_SHARD": "%d/2" % k,
                         "OPSDESK_PROBER_URL": urls[k],
                         "OPSDESK_DATA_DIR": s.path("shard-%d" % k)})
        seen = []
        for k in range(2):
            def answer():
                r = s.opsctl("call", "prober", "current", "{}",
                             env={"OPSDESK_PROBER_URL": urls[k]})
                return r.json if r.rc == 0 else None
            cur = h.wait_until(answer, 10, "shard %d answers" % k)["current"]
            h.eq(cur["shard"], "%d/2" % k)
            mine = [t["id"] for t in cur.get("targets", [])]
            h.check(0 < len(mine) < len(ids), "shard %d: %r" % (k, mine))
            seen += mine
        h.eq(sorted(seen), sorted(ids), "every target in exactly one shard")
        r = s.opsctl("ping", env={"OPSDESK_PROBER_URL": urls[1]})
        h.contains(r.stdout + r.stderr, "1/2")
    finally:
        lsock.close()


def test_config_reload(s):
    h.need("health-prober", "bus-relay", "opsctl")
    web = Target()
    bad = Target()
    bad.mode = "down"
    try:
        keep = http_target("keep", web.port)
        broken = http_target("broken", bad.port, failure_threshold=1)
        s.config = {"targets": [keep, http_target("gone", web.port),
                                broken]}
        s.start("bus-relay")
        tail = s.tail("health.")
        p = s.start("health-prober")
        wait_state(s, "keep", "UP")
        wait_state(s, "gone", "UP")
        wait_state(s, "broken", "DOWN")
        before = current(s)

        # An added and a removed target; keep and broken unchanged.
        s.config = {"targets": [keep, broken,
                                http_target("new", web.port)]}
        s.write_config()

        def reload_until(pred, what, send):
            # Pub/sub may drop a frame: send until the state shows it.
            h.wait_until(lambda: send() and pred(), 20, what, interval=1.0)

        # `opsctl reload` is the operator's spelling of the event.
        reload_until(lambda: "new" in current(s), "the new target",
                     lambda: s.opsctl("reload").rc == 0)
        wait_state(s, "new", "UP")
        cur = current(s)
        h.check(int(cur["new"].get("last_check_ms", 0)) > 0, "new probed")
        h.check("gone" not in cur, "a removed target disappears")
        # Unchanged targets kept their state: same since, counters that
        # went on, and no second first transition.
        for id_ in ("keep", "broken"):
            h.eq(cur[id_]["since_ms"], before[id_]["since_ms"], id_)
            h.eq(cur[id_]["state"], before[id_]["state"], id_)
        h.wait_until(lambda: current(s)["keep"].get(
            "consecutive_successes", 0) >
            before["keep"].get("consecutive_successes", 0), 10,
            "keep's successes go on")
        h.check(current(s)["broken"].get("consecutive_failures", 0) >=
                before["broken"].get("consecutive_failures", 0),
                "broken's failures go on")
        expect_changes(tail, "keep", [("UNKNOWN", "UP")])
        expect_changes(tail, "broken", [("UNKNOWN", "DOWN")])

        # An invalid config changes nothing: logged with the key path.
        s.config = {"targets": [keep, {"id": "x", "kind": "http",
                                       "url": "ftp://nope"}]}
        s.write_config()
        reload_until(lambda: "targets[1].url" in p.log_text(),
                     "the rejection logged", lambda: s.publish(
                         "ops.config_reload",
                         {"ops": {"kind": "config_reload"}}))
        h.contains(p.log_text(), "config reload rejected")
        h.eq(sorted(current(s)), ["broken", "keep", "new"])
        h.check(p.alive(), "still running")

        # SIGHUP reloads too (it does not end the process).
        s.config = {"targets": [keep, http_target("hup", web.port)]}
        s.write_config()
        p.popen.send_signal(signal.SIGHUP)
        h.wait_until(lambda: sorted(current(s)) == ["hup", "keep"], 10,
                     "SIGHUP reload")
        wait_state(s, "hup", "UP")
        h.eq(current(s)["keep"]["since_ms"], before["keep"]["since_ms"])
        n = sum(v for (name, _), v in p.metrics().items()
                if name == "opsdesk_prober_config_reloads_total")
        h.check(n >= 2, "reloads counted: %r" % n)
    finally:
        web.close()
        bad.close()


def test_headers_and_credentials(s):
    h.need("health-prober", "bus-relay", "opsctl")
    token = "s3cret-t0ken-abc"
    api = Target(require={"Authorization": "Bearer " + token,
                          "X-Api-Key": "k3y-v4lue-123"})
    basic = Target(require={"Authorization": "Basic " + base64.b64encode(
        b"ops:pa55-w0rd").decode()})
    with open(s.path("token"), "w") as f:
        f.write(token + "\n")
    try:
        s.config = {"targets": [
            http_target("bearer-ok", api.port, bearer_token_file=s.path(
                "token"), headers={"X-Api-Key": "k3y-v4lue-123",
                                   "X-Probe": "opsdesk"}),
            http_target("bearer-bad", api.port, bearer_token="wrong-token",
                        headers={"X-Api-Key": "k3y-v4lue-123"},
                        failure_threshold=1),
            http_target("basic-ok", basic.port, basic_auth={
                "username": "ops", "password": "pa55-w0rd"}),
            http_target("basic-bad", basic.port, basic_auth={
                "username": "ops", "password": "nope-nope"},
                failure_threshold=1),
        ]}
        s.start("bus-relay")
        p = s.start("health-prober")
        wait_state(s, "bearer-ok", "UP")
        wait_state(s, "basic-ok", "UP")
        wait_state(s, "bearer-bad", "DOWN")
        wait_state(s, "basic-bad", "DOWN")
        h.contains(current(s)["bearer-bad"]["reason"], "HTTP 401")
        h.check(any(r.get("X-Probe") == "opsdesk" and
                    r.get("X-Api-Key") == "k3y-v4lue-123" for r in api.seen),
                "the configured headers arrive: %r" % api.seen[-1:])
        # The secrets appear nowhere: log (the headers are logged
        # redacted at debug level), state, /metrics.
        log = p.log_text()
        h.contains(log, "X-Api-Key: <redacted>")
        h.contains(log, "X-Probe: opsdesk")
        shown = (log + json.dumps(s.call("prober", "current", {})) +
                 p.http_get("/metrics")[1].decode())
        for secret in (token, "k3y-v4lue-123", "pa55-w0rd", "wrong-token",
                       "nope-nope"):
            h.check(secret not in shown, "%s leaked" % secret)
    finally:
        api.close()
        basic.close()


def test_bad_config_is_refused(s):
    h.need("health-prober")
    s.config = {"targets": [{"id": "x", "kind": "http", "url": "ftp://x"}]}
    p = s.start("health-prober", wait=None)
    h.wait_until(lambda: not p.alive(), 10, "exit on a bad config")
    h.eq(p.popen.returncode, 1)
    h.contains(p.log_text(), "targets[0].url")
    # A bearer token that cannot be read: the key and file are named,
    # a token given inline never is.
    s.config = {"targets": [http_target("x", 1, headers={
        "X-Token": "in\r\nline-s3cret"})]}
    p = s.start("health-prober", wait=None)
    h.wait_until(lambda: not p.alive(), 10, "exit on a bad header")
    h.contains(p.log_text(), "targets[0].headers.X-Token")
    h.check("s3cret" not in p.log_text(), "the bad value is not logged")


if __name__ == "__main__":
    h.main()

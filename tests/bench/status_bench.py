"""status_bench.py -- status-publisher's `/` and /api/v2/summary.json against
nginx serving the very same bytes as static files, measured with wrk in the
same run: the same threads, connections and duration for both, alternating,
best of each. The page is a realistic one with its response-time charts:
six public components whose history (90 daily bars, the 24 h / 7 d / 30 d
latency series) comes from a scripted prober, an open incident and a
maintenance window from a scripted incident-service. Prints every figure
and the ratios; fails only when status-publisher serves either route at
less than 0.8x nginx's requests/s.

    python3 status_bench.py --bin <build>/bin --proto <src>/proto
"""

import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "system"))

import harness as h  # noqa: E402
import status_test as st  # noqa: E402

ROUNDS = 2
SECONDS = 3
THREADS = 2
CONNECTIONS = 32
TARGET = 0.8
DAY = 86400000
COMPONENTS = [("api", "API", "Edge"), ("web", "Web application", "Edge"),
              ("cdn", "CDN", "Edge"), ("auth", "Login", "Core"),
              ("db", "Database", "Core"), ("mail", "Email delivery",
                                           "Core")]
# nginx's path for each route: the same bytes as static files.
ROUTES = [("/", "/index.html"),
          ("/api/v2/summary.json", "/api/v2/summary.json")]


def wrk(url):
    r = subprocess.run(["wrk", "-t%d" % THREADS, "-c%d" % CONNECTIONS,
                        "-d%ds" % SECONDS, url],
                       capture_output=True, timeout=SECONDS + 30)
    out = r.stdout.decode()
    m = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    if r.returncode != 0 or m is None:
        raise h.Failure("wrk %s failed: %s%s" % (url, out, r.stderr))
    if "Non-2xx" in out or "Socket errors" in out:
        raise h.Failure("wrk %s: errors\n%s" % (url, out))
    return float(m.group(1))


def target(tid, name, group):
    return ("id: %s name: %s group: %s state: COMPONENT_STATE_UP "
            "public: true since_ms: %d" %
            (st.q(tid), st.q(name), st.q(group), st.T0))


def series(field, n, step, now, base):
    pts = []
    for i in range(n):
        p50 = base + (i * 7) % 23
        pts.append("%s { start_ms: %d p50_ms: %d p95_ms: %d checks: %d }" %
                   (field, now - (n - i) * step, p50,
                    p50 * 2 + (i * 5) % 17, 0 if i == 3 else 60))
    return " ".join(pts)


def history_reply(k, now):
    """What the prober answers for a history request of COMPONENTS[k]:
    90 daily bars and the three latency windows, one gap each."""
    tid, name, group = COMPONENTS[k]
    today = now - now % DAY
    bars = " ".join(
        "daily { day_ms: %d uptime: %.2f checks: 1440 failures: %d "
        "worst: COMPONENT_STATE_%s }" %
        (today - d * DAY, 100.0 - (3 if (d + k) % 11 == 0 else 0),
         43 if (d + k) % 11 == 0 else 0,
         "DEGRADED" if (d + k) % 11 == 0 else "UP")
        for d in range(89, -1, -1))
    text = ("history { target { %s } uptime_24h: 100 uptime_7d: 99.9 "
            "uptime_30d: 99.8 uptime_90d: 99.7 p50_ms: 41 p95_ms: 90 "
            "p99_ms: 120 %s %s %s %s }" %
            (target(tid, name, group), bars,
             series("latency_24h", 96, 900000, now, 30 + 10 * k),
             series("latency_7d", 56, 3 * 3600000, now, 30 + 10 * k),
             series("latency_30d", 30, DAY, now, 30 + 10 * k)))
    return st.proto_encode("ProberReply", "health.proto", text)


def scripted_owners(s):
    """A prober and an incident-service answering status-publisher's
    resyncs: the snapshot, each component's history, the incidents."""
    now = int(time.time() * 1000)
    snapshot = st.proto_encode("ProberReply", "health.proto", (
        "snapshot { %s at_ms: %d }" % (
            " ".join("targets { %s }" % target(*c) for c in COMPONENTS),
            now)))
    histories = {}
    for k, (tid, _, _) in enumerate(COMPONENTS):
        histories[bytes([len(tid)]) + tid.encode()] = history_reply(k, now)

    def prober_reply(req):
        # A history request names its target: a length-prefixed id.
        for key, reply in histories.items():
            if key in req:
                return reply
        return snapshot

    incidents = st.proto_encode("IncidentReply", "incident.proto", (
        "snapshot { active { id: 1 title: \"Slow API responses\" "
        "severity: SEVERITY_MEDIUM status: INCIDENT_STATUS_IDENTIFIED "
        "public: true created_ms: %(t)d updated_ms: %(u)d "
        "components { component_id: \"api\" name: \"API\" "
        "state: COMPONENT_STATE_DEGRADED } "
        "timeline { at_ms: %(t)d status: INCIDENT_STATUS_INVESTIGATING "
        "text: \"We are investigating slow responses.\" public: true } "
        "timeline { at_ms: %(u)d status: INCIDENT_STATUS_IDENTIFIED "
        "text: \"A slow database query; a fix is rolling out.\" "
        "public: true } } "
        "maintenance { id: 2 title: \"Database upgrade\" components: "
        "\"db\" start_ms: %(m)d end_ms: %(e)d "
        "status: MAINTENANCE_STATUS_SCHEDULED created_ms: %(t)d "
        "updated_ms: %(t)d description: \"A rolling restart.\" } "
        "at_ms: %(n)d }" % {"t": now - 3600000, "u": now - 600000,
                           "m": now + 3600000, "e": now + 7200000,
                           "n": now}))
    prober = st.FakeRep(s.urls["prober"])
    prober.reply = prober_reply
    incident = st.FakeRep(s.urls["incident"])
    incident.reply = incidents
    return prober, incident


def start_nginx(s, files):
    www = s.path("www")
    for path, body in files.items():
        f = os.path.join(www, path.lstrip("/"))
        os.makedirs(os.path.dirname(f), exist_ok=True)
        with open(f, "wb") as out:
            out.write(body)
    port = h.free_port()
    conf = s.path("nginx.conf")
    with open(conf, "w") as f:
        f.write("""
user root;
worker_processes 2;
daemon off;
pid %(dir)s/nginx.pid;
error_log %(dir)s/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  keepalive_requests 100000;
  types { text/html html; application/json json; }
  client_body_temp_path %(dir)s/tmp;
  proxy_temp_path %(dir)s/tmp;
  fastcgi_temp_path %(dir)s/tmp;
  uwsgi_temp_path %(dir)s/tmp;
  scgi_temp_path %(dir)s/tmp;
  server {
    listen 127.0.0.1:%(port)d;
    root %(www)s;
  }
}
""" % {"dir": s.dir, "port": port, "www": www})
    os.makedirs(s.path("tmp"))
    p = subprocess.Popen(["nginx", "-c", conf, "-p", s.dir],
                         stdout=subprocess.DEVNULL,
                         stderr=open(s.path("nginx.log"), "wb"))
    base = "http://127.0.0.1:%d" % port

    def up():
        if p.poll() is not None:
            raise h.Failure("nginx exited: %s" %
                            open(s.path("nginx.log")).read())
        return all(h.http_request("GET", base + path, timeout=1.0)[:2] ==
                   (200, body) for path, body in files.items())
    h.wait_until(up, 10, "nginx serving the files")
    return p, base


def test_page_and_summary_vs_nginx(s):
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None:
            raise h.Skip("%s missing (Debian package %s)" %
                         (tool, "nginx-light" if tool == "nginx" else tool))
    prober, incident = scripted_owners(s)
    try:
        s.config = {"status_page": {
            "title": "Example status", "url": "https://status.example.com",
            "resync_interval": "1h", "history_interval": "1s"}}
        s.start("bus-relay")
        p = s.start("status-publisher")

        def filled():
            page = st.get(p, "/")[1].decode()
            summary = st.get_json(p, "/api/v2/summary.json")
            return (all('aria-label="%s response time, last 24 hours' %
                        name in page for _, name, _ in COMPONENTS) and
                    len(summary["incidents"]) == 1 and
                    len(summary["scheduled_maintenances"]) == 1)
        h.wait_until(filled, 20, "the page with its six charts")
        bodies = {}
        for ours, theirs in ROUTES:
            code, bodies[theirs], _ = p.http_get(ours)
            h.eq(code, 200, ours)
        nginx, base = start_nginx(s, bodies)
        try:
            bench(p, base, bodies)
        finally:
            nginx.terminate()
            nginx.wait(10)
    finally:
        prober.close()
        incident.close()


def bench(p, base, bodies):
    ratios = {}
    print("wrk -t%d -c%d -d%ds, alternating, best of %d:" %
          (THREADS, CONNECTIONS, SECONDS, ROUNDS))
    for ours_path, theirs_path in ROUTES:
        ours, theirs = [], []
        for _ in range(ROUNDS):
            theirs.append(wrk(base + theirs_path))
            ours.append(wrk(p.url(ours_path)))
        ratio = max(ours) / max(theirs)
        ratios[ours_path] = ratio
        print("%s (%d bytes):" % (ours_path, len(bodies[theirs_path])))
        print("  nginx static file: %9.0f req/s  %s" %
              (max(theirs), " ".join("%.0f" % x for x in theirs)))
        print("  status-publisher:  %9.0f req/s  %s" %
              (max(ours), " ".join("%.0f" % x for x in ours)))
        print("  ratio: %.2fx (target >= %.1fx)" % (ratio, TARGET))
    for path, ratio in ratios.items():
        h.check(ratio >= TARGET, "%s: status-publisher at %.2fx of nginx" %
                (path, ratio))


if __name__ == "__main__":
    h.main()

"""status_bench.py -- /api/v2/summary.json served by status-publisher against
nginx serving the same bytes as a static file, measured with wrk in the same
run (alternating, best of each). Prints both figures and their ratio; fails
when status-publisher reaches less than half of nginx's requests/s.

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
SECONDS = 4
CONNECTIONS = 32
TARGET = 0.5


def wrk(url):
    r = subprocess.run(["wrk", "-t2", "-c%d" % CONNECTIONS,
                        "-d%ds" % SECONDS, url],
                       capture_output=True, timeout=SECONDS + 30)
    out = r.stdout.decode()
    m = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    if r.returncode != 0 or m is None:
        raise h.Failure("wrk %s failed: %s%s" % (url, out, r.stderr))
    if "Non-2xx" in out or "Socket errors" in out:
        print(out)
    return float(m.group(1))


def start_nginx(s, body):
    www = s.path("www")
    os.makedirs(www)
    with open(os.path.join(www, "summary.json"), "wb") as f:
        f.write(body)
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
  client_body_temp_path %(dir)s/tmp;
  proxy_temp_path %(dir)s/tmp;
  fastcgi_temp_path %(dir)s/tmp;
  uwsgi_temp_path %(dir)s/tmp;
  scgi_temp_path %(dir)s/tmp;
  server {
    listen 127.0.0.1:%(port)d;
    root %(www)s;
    location / { default_type application/json; }
  }
}
""" % {"dir": s.dir, "port": port, "www": www})
    os.makedirs(s.path("tmp"))
    p = subprocess.Popen(["nginx", "-c", conf, "-p", s.dir],
                         stdout=subprocess.DEVNULL,
                         stderr=open(s.path("nginx.log"), "wb"))
    url = "http://127.0.0.1:%d/summary.json" % port

    def up():
        if p.poll() is not None:
            raise h.Failure("nginx exited: %s" %
                            open(s.path("nginx.log")).read())
        code, got, _ = h.http_request("GET", url, timeout=1.0)
        return code == 200 and got == body
    h.wait_until(up, 10, "nginx serving the file")
    return p, url


def test_summary_vs_nginx(s):
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None:
            raise h.Skip("%s missing (Debian package %s)" %
                         (tool, "nginx-light" if tool == "nginx" else tool))
    p = st.start(s)
    src = st.Source(s)
    # A realistic page: two groups of components, one down, an incident
    # and a maintenance window.
    for i in range(6):
        src.send("health.changed", st.health(
            "c%d" % i, "Component %d" % i, "Group %d" % (i // 3),
            "DOWN" if i == 4 else "UP", True, st.T0 + i))
    src.send("incident.opened", st.incident_body(1, "Slow API", True,
                                                 st.T0 + 100))
    src.send("maintenance.scheduled", st.maintenance_body(
        1, st.NOW + 3600000, st.NOW + 7200000))
    path = "/api/v2/summary.json"
    h.wait_until(lambda: len(st.get_json(p, path)["components"]) == 8, 15,
                 "the page filled")
    code, body, _ = p.http_get(path)
    h.eq(code, 200)
    nginx, nginx_url = start_nginx(s, body)
    try:
        ours_url = p.url(path)
        ours, theirs = [], []
        for _ in range(ROUNDS):
            theirs.append(wrk(nginx_url))
            ours.append(wrk(ours_url))
        best_ours, best_theirs = max(ours), max(theirs)
        ratio = best_ours / best_theirs
        print("summary.json (%d bytes), wrk -t2 -c%d -d%ds, best of %d:" %
              (len(body), CONNECTIONS, SECONDS, ROUNDS))
        print("  nginx static file: %10.0f req/s  %s" %
              (best_theirs, ["%.0f" % x for x in theirs]))
        print("  status-publisher:  %10.0f req/s  %s" %
              (best_ours, ["%.0f" % x for x in ours]))
        print("  ratio: %.2fx (target >= %.1fx)" % (ratio, TARGET))
        h.check(ratio >= TARGET, "status-publisher at %.2fx of nginx" %
                ratio)
    finally:
        nginx.terminate()
        nginx.wait(10)


if __name__ == "__main__":
    h.main()

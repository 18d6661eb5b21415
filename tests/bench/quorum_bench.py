"""Probing from three locations against one, in the same run.

2,000 local HTTP targets (one nginx, distinct URLs over 4 ports) probed
every 5 s:
  - one location: a plain health-prober (as today);
  - three locations: three health-probers with OPSDESK_PROBER_LOCATION
    and the decider (OPSDESK_PROBER_ROLE=decider) folding their
    health.observed views into the decided states.
CPU is utime+stime from /proc of the probing processes (and, shown
apart, of the bus relay, which carries the views) over the same window;
"CPU per decided round" is that CPU per round of every target probed by
every location (probes / locations / targets). Goal: three locations
<= 3.3x one location's CPU per decided round.

Then the decided-state latency: 200 of the targets fail from two of the
three locations at once (their URL there is on a port whose nginx server
is switched to 503 by a reload); for each, the time from the view that
completed the quorum (the later of the two locations' first "down"
views) to the decider's health.changed, both from the envelopes' ts_ms
(same host clock). Goal: p99 <= 100 ms. Prints the figures; never
asserts on time. nginx is installed with apt when missing.
"""

import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "system"))
import harness as h  # noqa: E402
from prober_bench import cpu_seconds, ensure, probes_total  # noqa: E402

TARGETS = 2000
FLIP = 200
INTERVAL = 5.0
WINDOW = float(os.environ.get("QUORUM_BENCH_SECONDS", "30"))
PORTS = 4
LOCATIONS = ["eu-west", "us-east", "ap-south"]
FAILING = LOCATIONS[:2]


def write_flip(s, port, code):
    with open(s.path("flip.conf"), "w") as f:
        f.write("server { listen 127.0.0.1:%d; access_log off;"
                " location / { return %d \"x\\n\"; } }\n" % (port, code))


def start_nginx(s, ports, flip_port):
    conf = s.path("nginx.conf")
    servers = "\n".join(
        "server { listen 127.0.0.1:%d; access_log off;"
        " location / { return 200 \"ok\\n\"; } }" % p for p in ports)
    write_flip(s, flip_port, 200)
    with open(conf, "w") as f:
        f.write("""worker_processes 1;
daemon off;
user root;
error_log %s/nginx-error.log warn;
pid %s/nginx.pid;
events { worker_connections 8192; }
http {
  client_body_temp_path %s; proxy_temp_path %s; fastcgi_temp_path %s;
  uwsgi_temp_path %s; scgi_temp_path %s;
  %s
  include %s/flip.conf;
}
""" % ((s.dir,) * 7 + (servers, s.dir)))
    p = subprocess.Popen(["nginx", "-c", conf, "-p", s.dir],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    h.wait_until(lambda: h.http_request(
        "GET", "http://127.0.0.1:%d/" % flip_port)[0] == 200, 10, "nginx")
    return p


def targets(ports, flip_port=None):
    out = []
    for i in range(TARGETS):
        port = ports[i % len(ports)]
        if flip_port is not None and i < FLIP:
            port = flip_port
        out.append({"id": "t%d" % i, "kind": "http",
                    "url": "http://127.0.0.1:%d/t/%d" % (port, i),
                    "interval": "5s", "timeout": "4s",
                    "failure_threshold": 1, "success_threshold": 1})
    return out


def measure(procs, relay):
    c0 = [cpu_seconds(p.pid) for p in procs]
    r0 = cpu_seconds(relay.pid)
    n0 = sum(probes_total(p) for p in procs)
    time.sleep(WINDOW)
    c1 = [cpu_seconds(p.pid) for p in procs]
    r1 = cpu_seconds(relay.pid)
    n1 = sum(probes_total(p) for p in procs)
    return sum(c1) - sum(c0), r1 - r0, n1 - n0


def one_location(s, ports):
    s.config = {"targets": targets(ports), "prober": {"concurrency": 256}}
    relay = s.start("bus-relay")
    p = s.start("health-prober", wait="/healthz", timeout=60)
    time.sleep(INTERVAL + 1)  # one full round first: steady state
    cpu, rcpu, probes = measure([p], relay)
    p.stop()
    relay.stop()
    return cpu, rcpu, probes


def three_locations(s, ports, flip_port):
    import json
    s.config = {"targets": targets(ports), "prober": {"concurrency": 256}}
    relay = s.start("bus-relay")
    decider = s.start("health-prober", wait="/healthz", timeout=60,
                      instance="decider",
                      env={"OPSDESK_PROBER_ROLE": "decider"})
    procs = []
    for loc in LOCATIONS:
        cfg = dict(s.config, targets=targets(
            ports, flip_port if loc in FAILING else None))
        path = s.path("%s.json" % loc)
        with open(path, "w") as f:
            json.dump(cfg, f)
        data = s.path("data-%s" % loc)
        os.makedirs(data, exist_ok=True)
        procs.append(s.start(
            "health-prober", wait="/healthz", timeout=60,
            instance="prober-%s" % loc,
            env={"OPSDESK_PROBER_LOCATION": loc, "OPSDESK_CONFIG": path,
                 "OPSDESK_DATA_DIR": data,
                 "OPSDESK_PROBER_URL": "tcp://127.0.0.1:%d" %
                 h.free_port()}))
    time.sleep(INTERVAL + 1)
    cpu_l, rcpu, probes = measure(procs, relay)
    # The decider's CPU over the same kind of window, measured apart so
    # that the probers' figure is not disturbed by a second /metrics.
    d0 = cpu_seconds(decider.pid)
    time.sleep(WINDOW)
    d1 = cpu_seconds(decider.pid)
    cpu_d = (d1 - d0)

    # Decided-state latency: FLIP targets down from two locations.
    tail = s.tail("health.changed", "health.observed")
    write_flip(s, flip_port, 503)
    with open(s.path("nginx.pid")) as f:
        os.kill(int(f.read().strip()), signal.SIGHUP)

    def downs():
        return sum(1 for e in list(tail.events)
                   if e.get("topic") == "health.changed" and
                   e["envelope"]["health_changed"].get("new_state") ==
                   "COMPONENT_STATE_DOWN")
    h.wait_until(lambda: downs() >= FLIP, 60, "%d decided down" % FLIP)
    first_down = {}  # (target, location) -> ts_ms of its first down view
    changed = {}
    for e in list(tail.events):
        env = e["envelope"]
        ts = int(env.get("ts_ms", 0))
        if e.get("topic") == "health.observed":
            # A changed view goes out alone; unchanged ones in batches.
            views = env.get("health_observed_batch", {}).get("views", [])
            if "health_observed" in env:
                views = [env["health_observed"]]
            for o in views:
                if o.get("state") == "COMPONENT_STATE_DOWN":
                    first_down.setdefault(
                        (o["target_id"], o["location"]), ts)
        elif env["health_changed"].get("new_state") == \
                "COMPONENT_STATE_DOWN":
            changed.setdefault(env["health_changed"]["target_id"], ts)
    lat = []
    for tid, ts in changed.items():
        need = [first_down.get((tid, loc)) for loc in FAILING]
        if None not in need:
            lat.append(ts - max(need))
    lat.sort()
    tail.stop()
    for p in procs + [decider, relay]:
        p.stop()
    return cpu_l, cpu_d, rcpu, probes, lat


def pct(v, q):
    return v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")


def main():
    h.parse_args()
    for exe in ("health-prober", "bus-relay", "opsctl"):
        if not h.have_exe(exe):
            print("bench_quorum: SKIP: %s is not built" % exe)
            return 0
    if not ensure("nginx", "nginx-light"):
        print("bench_quorum: SKIP: nginx is not installed and apt failed")
        return 0
    with h.Suite("quorum-bench") as s:
        ports = [h.free_port() for _ in range(PORTS)]
        flip_port = h.free_port()
        ngx = start_nginx(s, ports, flip_port)
        try:
            c1, r1, n1 = one_location(s, ports)
            cl, cd, r3, n3, lat = three_locations(s, ports, flip_port)
            rounds1 = n1 / TARGETS
            rounds3 = n3 / TARGETS / len(LOCATIONS)
            per1 = c1 / max(rounds1, 1e-9)
            per3 = (cl + cd) / max(rounds3, 1e-9)
            print("targets %d, interval %.0f s, window %.0f s" %
                  (TARGETS, INTERVAL, WINDOW))
            print("one location:    %6d probes (%.1f rounds) %6.2f CPU s "
                  "(%.3f per round); relay %.2f CPU s" %
                  (n1, rounds1, c1, per1, r1))
            print("three locations: %6d probes (%.1f rounds) %6.2f CPU s "
                  "probers + %.2f CPU s decider (%.3f per round); relay "
                  "%.2f CPU s" % (n3, rounds3, cl, cd, per3, r3))
            if per1 > 0:
                ratio = per3 / per1
                print("CPU per decided round, three locations / one: %.2f "
                      "(goal <= 3.3): %s" %
                      (ratio, "met" if ratio <= 3.3 else "NOT met"))
                ratio_r = (per3 + r3 / max(rounds3, 1e-9)) / \
                    (per1 + r1 / max(rounds1, 1e-9))
                print("  with the relay's CPU on both sides: %.2f" % ratio_r)
            print("decided-state latency over %d targets: p50 %.0f ms, "
                  "p99 %.0f ms, max %.0f ms (goal p99 <= 100 ms): %s" %
                  (len(lat), pct(lat, 0.5), pct(lat, 0.99),
                   lat[-1] if lat else float("nan"),
                   "met" if lat and pct(lat, 0.99) <= 100 else "NOT met"))
        finally:
            ngx.terminate()
            ngx.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())

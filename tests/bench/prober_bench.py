"""health-prober against prometheus-blackbox-exporter, in the same run.

2,000 local HTTP targets (one nginx, distinct URLs over 4 ports) probed
every 5 s:
  - health-prober with the 2,000 targets in its config (bus relay up, so
    health.result events and the store writes are part of the cost);
  - blackbox_exporter driven the way Prometheus drives it: one
    /probe?target=…&module=http_2xx request per target every 5 s, from
    a client in this script whose own CPU is not counted.
CPU is utime+stime of the probing process from /proc over the same
window; probes are counted by each (opsdesk_probes_total, answered
/probe requests). Then resident memory of health-prober with 10,000
configured targets. Prints the ratios against the goals (CPU per probe
<= 0.5x blackbox's, RSS <= 32 MB); never asserts on time.
nginx and prometheus-blackbox-exporter are installed with apt when
missing; the bench skips with a message when that is not possible.
"""

import http.client
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "system"))
import harness as h  # noqa: E402

TARGETS = 2000
INTERVAL = 5.0
WINDOW = float(os.environ.get("PROBER_BENCH_SECONDS", "30"))
RSS_TARGETS = 10000
PORTS = 4
CLK_TCK = os.sysconf("SC_CLK_TCK")
BLACKBOX = "/usr/bin/prometheus-blackbox-exporter"


def ensure(binary, package):
    if os.path.exists(binary) or shutil.which(binary):
        return True
    print("bench: installing %s" % package, flush=True)
    r = subprocess.run(["apt-get", "install", "-y", "-qq",
                        "--no-install-recommends", package],
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
                       capture_output=True)
    return r.returncode == 0 and (os.path.exists(binary) or
                                  shutil.which(binary))


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def status_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def start_nginx(s, ports):
    conf = s.path("nginx.conf")
    servers = "\n".join(
        "server { listen 127.0.0.1:%d; access_log off;"
        " location / { return 200 \"ok\\n\"; } }" % p for p in ports)
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
  keepalive_requests 100000;
  %s
}
""" % ((s.dir,) * 7 + (servers,)))
    p = subprocess.Popen(["nginx", "-c", conf, "-p", s.dir],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    h.wait_until(lambda: h.http_request(
        "GET", "http://127.0.0.1:%d/" % ports[0])[0] == 200, 10, "nginx")
    return p


def target_urls(ports, n):
    return ["http://127.0.0.1:%d/t/%d" % (ports[i % len(ports)], i)
            for i in range(n)]


def probes_total(proc):
    total = 0
    for (name, labels), v in proc.metrics().items():
        if name == "opsdesk_probes_total":
            total += v
    return total


def bench_prober(s, urls):
    s.config = {"targets": [
        {"id": "t%d" % i, "kind": "http", "url": u, "interval": "5s",
         "timeout": "4s"} for i, u in enumerate(urls)],
        "prober": {"concurrency": 256}}
    s.start("bus-relay")
    p = s.start("health-prober", wait="/healthz")
    time.sleep(INTERVAL + 1)  # one full round first: steady state
    n0, c0 = probes_total(p), cpu_seconds(p.pid)
    time.sleep(WINDOW)
    n1, c1 = probes_total(p), cpu_seconds(p.pid)
    rss = status_kb(p.pid, "VmRSS")
    p.stop()
    return n1 - n0, c1 - c0, rss


def bench_blackbox(s, urls):
    port = h.free_port()
    cfg = s.path("blackbox.yml")
    with open(cfg, "w") as f:
        f.write("modules:\n  http_2xx:\n    prober: http\n    timeout: 4s\n"
                "    http:\n      preferred_ip_protocol: ip4\n")
    bb = subprocess.Popen([BLACKBOX, "--config.file=" + cfg,
                           "--web.listen-address=127.0.0.1:%d" % port],
                          stdout=subprocess.DEVNULL,
                          stderr=open(s.path("blackbox.log"), "wb"))
    try:
        h.wait_until(lambda: h.http_request(
            "GET", "http://127.0.0.1:%d/metrics" % port)[0] == 200, 15,
            "blackbox_exporter")
        stop = threading.Event()
        done = [0, 0]  # answered, probe_success 1
        lock = threading.Lock()
        work = queue.Queue()

        def client():
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            while not stop.is_set():
                try:
                    url = work.get(timeout=0.2)
                except queue.Empty:
                    continue
                try:
                    conn.request("GET", "/probe?module=http_2xx&target=" + url)
                    body = conn.getresponse().read()
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port,
                                                      timeout=10)
                    continue
                with lock:
                    done[0] += 1
                    if b"\nprobe_success 1" in body:
                        done[1] += 1

        threads = [threading.Thread(target=client, daemon=True)
                   for _ in range(32)]
        for t in threads:
            t.start()

        def scheduler():
            # Prometheus-like: each target once per interval, spread.
            step = INTERVAL / len(urls)
            nxt = time.monotonic()
            while not stop.is_set():
                for u in urls:
                    if stop.is_set():
                        return
                    work.put(u)
                    nxt += step
                    d = nxt - time.monotonic()
                    if d > 0:
                        time.sleep(d)

        sch = threading.Thread(target=scheduler, daemon=True)
        sch.start()
        time.sleep(INTERVAL + 1)
        with lock:
            n0 = done[0]
        c0 = cpu_seconds(bb.pid)
        time.sleep(WINDOW)
        with lock:
            n1, ok = done[0], done[1]
        c1 = cpu_seconds(bb.pid)
        rss = status_kb(bb.pid, "VmRSS")
        stop.set()
        sch.join(5)
        return n1 - n0, c1 - c0, rss, ok
    finally:
        bb.terminate()
        bb.wait(10)


def bench_rss(s, urls):
    """RSS with 10,000 targets at a 60 s interval, after one full round
    (every target probed, its first transition stored) and a flush."""
    s.config = {"targets": [
        {"id": "t%d" % i, "kind": "http", "url": u, "interval": "60s",
         "timeout": "10s"} for i, u in enumerate(urls)]}
    p = s.start("health-prober", wait="/healthz", timeout=60)
    time.sleep(75)
    probes = probes_total(p)
    out = {k: status_kb(p.pid, k)
           for k in ("VmRSS", "VmHWM", "RssAnon", "RssFile")}
    p.stop()
    return out, probes


def main():
    h.parse_args()
    for exe in ("health-prober", "bus-relay"):
        if not h.have_exe(exe):
            print("bench_prober: SKIP: %s is not built" % exe)
            return 0
    if not ensure("nginx", "nginx-light"):
        print("bench_prober: SKIP: nginx is not installed and apt failed")
        return 0
    if not ensure(BLACKBOX, "prometheus-blackbox-exporter"):
        print("bench_prober: SKIP: prometheus-blackbox-exporter is not "
              "installed and apt failed")
        return 0
    with h.Suite("prober-bench") as s:
        ports = [h.free_port() for _ in range(PORTS)]
        ngx = start_nginx(s, ports)
        try:
            urls = target_urls(ports, TARGETS)
            pn, pc, prss = bench_prober(s, urls)
            bn, bc, brss, bok = bench_blackbox(s, urls)
            print("targets %d, interval %.0f s, window %.0f s" %
                  (TARGETS, INTERVAL, WINDOW))
            print("health-prober:     %6d probes  %6.2f CPU s  "
                  "%6.3f CPU s/1000 probes  RSS %d kB" %
                  (pn, pc, 1000 * pc / max(pn, 1), prss))
            print("blackbox_exporter: %6d probes  %6.2f CPU s  "
                  "%6.3f CPU s/1000 probes  RSS %d kB (%d successful)" %
                  (bn, bc, 1000 * bc / max(bn, 1), brss, bok))
            if pn and bn and bc > 0:
                ratio = (pc / pn) / (bc / bn)
                print("CPU per probe ratio prober/blackbox: %.3f "
                      "(goal <= 0.5): %s" %
                      (ratio, "met" if ratio <= 0.5 else "NOT met"))
            m, probes = bench_rss(s, target_urls(ports, RSS_TARGETS))
            print("health-prober with %d targets after %d probes: RSS %.1f "
                  "MB (peak %.1f MB) = private %.1f MB + file-backed "
                  "(shared libraries and the LMDB map) %.1f MB" %
                  (RSS_TARGETS, probes, m["VmRSS"] / 1024,
                   m["VmHWM"] / 1024, m["RssAnon"] / 1024,
                   m["RssFile"] / 1024))
            print("RSS goal <= 32 MB: %s (private memory alone: %s)" %
                  ("met" if m["VmRSS"] <= 32 * 1024 else "NOT met",
                   "met" if m["RssAnon"] <= 32 * 1024 else "NOT met"))
        finally:
            ngx.terminate()
            ngx.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())

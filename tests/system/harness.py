"""harness.py -- the shared helper of opsdesk's system tests (stdlib only).

A system test is tests/system/<name>_test.py. ctest runs it as

    python3 <name>_test.py --bin <build>/bin --proto <src>/proto

and it looks like this:

    import harness as h

    def test_create_ticket(s):           # s: a fresh h.Suite, closed after
        s.config = {"admins": [1]}        # written to OPSDESK_CONFIG on start
        s.start("bus-relay")
        s.start("ticket-service")         # waits for /readyz
        tail = s.tail("ticket.")          # `opsctl tail`, lines collected
        r = s.call("ticket", "create", {"subject": "hi"}, as_user=42)
        h.eq(r["create"]["ticket"]["subject"], "hi")
        ev = tail.wait_for(lambda e: e["topic"] == "ticket.created")
        ...

    if __name__ == "__main__":
        h.main()

What it gives:
  - main(): parses --bin/--proto (and -k SUBSTR to pick tests), runs every
    module-level test_* function in file order, each with a fresh Suite
    when it takes one argument, prints PASS/FAIL per test and a final line
    "N passed, M failed", exits 1 on any failure. Raise h.Skip("why") to
    skip (e.g. an optional tool is missing).
  - Suite: a temp dir (kept and printed when a test fails), free TCP ports
    for every address of spec/interfaces.md (bus publish/subscribe, the four
    req/rep urls, one HTTP port per executable), the OPSDESK_* environment
    (s.env()), the config file from the dict s.config, start()/stop() of any
    executable in --bin with its log in <tmp>/<exe>.log, opsctl helpers
    (opsctl, call, ping), tail() to read the bus without NNG, publish()
    (`opsctl publish`), publish_raw() and capture_bus() (nngcat), encode()/
    decode()/frame() (protoc), and fake_service(): nngcat --rep answering
    a fixed Reply on a service's url, recording the requests it got.
  - Tail (from s.tail()): .events (parsed lines), wait_for(pred),
    wait_topic(topic), mark() + start= to wait only for later events,
    topics(), stop() (Ctrl-C, asserts exit 0), wait_connected().
  - Proc: one running executable: http_get(path), metrics(), wait_http(),
    stop() (SIGTERM, asserts exit 0 by default), kill() (SIGKILL),
    log_lines() (its JSON log lines), restart().
  - assertions: check(cond, msg), eq(a, b, msg), contains(hay, needle),
    wait_until(fn, timeout, msg), parse_prometheus(text) which validates
    the text exposition format 0.0.4 and returns the samples.
  - TIME_SCALE / scaled(seconds): OPSDESK_TEST_TIME_SCALE (the ctest
    environment sets it in sanitizer builds, 1 otherwise) multiplies every
    wait of the harness (wait_until, tail waits, readiness, exits,
    opsctl's per-request time-out); a test scales its own bounds with
    scaled().
Nothing here sleeps a fixed time where it can poll instead.
"""

import argparse
import base64
import inspect
import http.server
import itertools
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request

ARGS = None  # set by main() or parse_args(): .bin, .proto, .k

# Every executable and where it listens; short names are opsctl's.
SERVICES = {
    "ticket": ("ticket-service", "OPSDESK_TICKET_URL"),
    "incident": ("incident-service", "OPSDESK_INCIDENT_URL"),
    "prober": ("health-prober", "OPSDESK_PROBER_URL"),
    "status": ("status-publisher", "OPSDESK_STATUS_URL"),
}
EXECUTABLES = ["bus-relay", "ticket-service", "incident-service",
               "health-prober", "status-publisher", "telegram-gateway"]


class Skip(Exception):
    """Raise to skip the current test (counted, not failed)."""


class Failure(AssertionError):
    pass


# ---- time ----

def _time_scale():
    try:
        return max(1.0, float(os.environ.get("OPSDESK_TEST_TIME_SCALE")
                              or 1))
    except ValueError:
        return 1.0


# How much slower than a plain build the executables run (ThreadSanitizer
# about 5-15x on a busy 2-core machine): every time-out of a wait is
# multiplied by it, never a bound a test asserts on its own.
TIME_SCALE = _time_scale()


def scaled(seconds):
    """seconds, stretched by TIME_SCALE for sanitizer builds."""
    return seconds * TIME_SCALE


# ---- assertions ----

def check(cond, msg="check failed"):
    if not cond:
        raise Failure(msg)


def eq(got, want, msg=""):
    if got != want:
        raise Failure("%s%sgot %r, want %r" %
                      (msg, ": " if msg else "", got, want))


def contains(hay, needle, msg=""):
    if needle not in hay:
        raise Failure("%s%s%r not in %r" %
                      (msg, ": " if msg else "", needle, hay))


def wait_until(fn, timeout=10.0, msg="condition", interval=0.05):
    """Poll fn() until it returns a truthy value (returned) or time out
    (timeout is scaled by TIME_SCALE)."""
    timeout = scaled(timeout)
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = fn()
            if v:
                return v
        except Failure:
            raise
        except Exception as e:  # the thing polled may not be up yet
            last_exc = e
        if time.monotonic() > deadline:
            extra = " (last error: %r)" % last_exc if last_exc else ""
            raise Failure("timed out after %.1fs waiting for %s%s" %
                          (timeout, msg, extra))
        time.sleep(interval)


# ---- environment ----

def parse_args(argv=None):
    global ARGS
    p = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    p.add_argument("--bin", default=os.environ.get(
        "OPSDESK_BIN", os.path.join(root, "build", "bin")))
    p.add_argument("--proto", default=os.path.join(root, "proto"))
    p.add_argument("-k", default=None, help="run tests whose name has this")
    p.add_argument("--keep", action="store_true", help="keep temp dirs")
    ARGS = p.parse_args(argv)
    ARGS.bin = os.path.abspath(ARGS.bin)
    ARGS.proto = os.path.abspath(ARGS.proto)
    return ARGS


def _args():
    if ARGS is None:
        parse_args([])
    return ARGS


def exe_path(name):
    return os.path.join(_args().bin, name)


def have_exe(name):
    return os.access(exe_path(name), os.X_OK)


def need(*exes):
    """Skip while an executable this test drives is not built yet."""
    for e in exes:
        if not have_exe(e):
            raise Skip("%s is not built" % e)


class FlipTarget:
    """A probe target on loopback: answers 200, or 503 while down is set
    (one location's way to a service, or the service itself)."""

    def __init__(self):
        self.down = False
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *a):
                pass

            def do_GET(self):
                code, body = (503, b"unavailable") if outer.down else \
                    (200, b"ok")
                try:
                    self.send_response(code)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever,
                         daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


_ports_given = set()
_ports_lock = threading.Lock()


def _port_range():
    """Below the kernel's ephemeral range, so that no outgoing connection
    (of any test running in parallel) can be given a port we hand out."""
    lo = 32768
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    if lo > 12000:
        return 10000, lo - 1
    return 49152, 65535 - 1  # an unusual range: the IANA dynamic one


_port_locks = []  # held open for the life of this process
_PORT_LOCK_DIR = os.path.join(tempfile.gettempdir(), "opsdesk-test-ports")


def _reserve_across_processes(port):
    """Claim `port` against every other test process on this machine: an
    flock on a per-port file, held until this process exits (the kernel
    drops it even after kill -9). Without it two system tests running in
    parallel could both pick the same free port and one would fail its
    bind ("Address in use") a second later."""
    try:
        os.makedirs(_PORT_LOCK_DIR, mode=0o777, exist_ok=True)
        fd = os.open(os.path.join(_PORT_LOCK_DIR, "%d.lock" % port),
                     os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        return True  # no shared lock directory: fall back to chance
    try:
        import fcntl
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _port_locks.append(fd)
    return True


def free_port():
    """A TCP port free on 127.0.0.1 now, not handed out before by this
    process and not held by any other test process (see
    _reserve_across_processes); something outside the tests may still take
    it between here and the bind, and random choice makes that rare."""
    lo, hi = _port_range()
    with _ports_lock:
        for _ in range(400):
            port = random.randint(lo, hi)
            if port in _ports_given or not _reserve_across_processes(port):
                continue
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            finally:
                s.close()
            _ports_given.add(port)
            return port
        raise RuntimeError("no free port")


# ---- processes ----

class Proc:
    """One running executable started by Suite.start()."""

    def __init__(self, suite, exe, args, env, http_addr, log_path):
        self.suite = suite
        self.exe = exe
        self.args = list(args)
        self.env = env
        self.http_addr = http_addr  # "127.0.0.1:port" or None
        self.log_path = log_path
        self.popen = None
        self.returncode = None
        self._spawn()

    def _spawn(self):
        self.returncode = None
        log = open(self.log_path, "ab")
        try:
            self.popen = subprocess.Popen(
                [exe_path(self.exe)] + self.args, env=self.env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                cwd=self.suite.dir)
        finally:
            log.close()

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def url(self, path="/"):
        return "http://%s%s" % (self.http_addr, path)

    def http_get(self, path, timeout=5.0, headers=None):
        """(status, body bytes, headers) of a GET; HTTP errors included."""
        return http_request("GET", self.url(path), timeout=timeout,
                            headers=headers)

    def http_post(self, path, body, timeout=5.0, headers=None):
        return http_request("POST", self.url(path), body=body,
                            timeout=timeout, headers=headers)

    def wait_http(self, path="/readyz", timeout=15.0):
        """Wait until path answers 200; fail early if the process dies."""
        def ready():
            if not self.alive():
                raise Failure("%s exited with %s before %s was 200:\n%s" % (
                    self.exe, self.popen.returncode, path, self.log_tail()))
            st, _, _ = self.http_get(path, timeout=1.0)
            return st == 200
        wait_until(ready, timeout, "%s %s" % (self.exe, path))
        return self

    def metrics(self):
        """The /metrics samples, validated: {(name, labels tuple): value}."""
        st, body, _ = self.http_get("/metrics")
        eq(st, 200, "%s /metrics status" % self.exe)
        return parse_prometheus(body.decode())

    def stop(self, timeout=15.0, expect=0):
        """SIGTERM and wait; asserts the exit code (expect=None: any)."""
        timeout = scaled(timeout)
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
                raise Failure("%s did not exit within %.0fs of SIGTERM:\n%s"
                              % (self.exe, timeout, self.log_tail()))
        self.returncode = self.popen.returncode
        if expect is not None and self.returncode != expect:
            raise Failure("%s exited with %s, want %s:\n%s" % (
                self.exe, self.returncode, expect, self.log_tail()))
        return self.returncode

    def kill(self):
        """SIGKILL (a crash) and reap."""
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait()
        self.returncode = self.popen.returncode
        return self.returncode

    def restart(self, wait="/readyz", timeout=15.0):
        """Start the same executable again with the same env and ports."""
        if self.alive():
            self.stop()
        self._spawn()
        if wait and self.http_addr:
            self.wait_http(wait, timeout)
        return self

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_tail(self, n=30):
        return "\n".join(self.log_text().splitlines()[-n:])

    def log_lines(self):
        """The JSON log lines written so far (others are skipped)."""
        out = []
        for line in self.log_text().splitlines():
            try:
                v = json.loads(line)
            except ValueError:
                continue
            if isinstance(v, dict):
                out.append(v)
        return out


def http_request(method, url, body=None, timeout=5.0, headers=None):
    if isinstance(body, str):
        body = body.encode()
    req = urllib.request.Request(url, data=body, method=method,
                                 headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


class Result:
    """A finished command: rc, stdout, stderr (text) and json (stdout
    parsed when it is one JSON value, else None)."""

    def __init__(self, argv, rc, out, err):
        self.argv, self.rc, self.stdout, self.stderr = argv, rc, out, err
        try:
            self.json = json.loads(out) if out.strip() else None
        except ValueError:
            self.json = None

    def lines(self):
        """stdout as a list of JSON values, one a line."""
        return [json.loads(l) for l in self.stdout.splitlines() if l.strip()]

    def __repr__(self):
        return "Result(%r rc=%s stdout=%r stderr=%r)" % (
            self.argv, self.rc, self.stdout[-2000:], self.stderr[-2000:])


_tail_ids = itertools.count()


class Tail:
    """`opsctl tail PREFIX…` running in the background; every stdout line
    is parsed as JSON and kept in .events (in arrival order)."""

    def __init__(self, suite, prefixes, args=()):
        self.suite = suite
        self.events = []
        self.raw = []
        self.cond = threading.Condition()
        self.err_path = os.path.join(
            suite.dir, "opsctl-tail-%d.log" % next(_tail_ids))
        errf = open(self.err_path, "ab")
        try:
            self.popen = subprocess.Popen(
                [exe_path("opsctl")] + list(args) + ["tail"] + list(prefixes),
                env=suite.env(), stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=errf, cwd=suite.dir)
        finally:
            errf.close()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.popen.stdout:
            text = line.decode("utf-8", "replace").rstrip("\n")
            try:
                v = json.loads(text)
            except ValueError:
                v = {"unparsed": text}
            with self.cond:
                self.raw.append(text)
                self.events.append(v)
                self.cond.notify_all()

    def stderr_text(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_connected(self, timeout=10.0):
        """Wait for tail's log line saying its pipe to the relay is up."""
        wait_until(lambda: '"connected"' in self.stderr_text() or
                   self._dead(), timeout, "opsctl tail connected")
        return self

    def _dead(self):
        if self.popen.poll() is not None:
            raise Failure("opsctl tail exited with %s: %s" %
                          (self.popen.returncode, self.stderr_text()))
        return False

    def wait_for(self, pred=None, timeout=10.0, start=0):
        """The first event from index start on with pred(event) true."""
        timeout = scaled(timeout)
        deadline = time.monotonic() + timeout
        i = start
        with self.cond:
            while True:
                while i < len(self.events):
                    ev = self.events[i]
                    i += 1
                    if pred is None or pred(ev):
                        return ev
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Failure("tail: no matching event in %.1fs; got %r"
                                  % (timeout, self.events[-10:]))
                self.cond.wait(min(left, 0.2))

    def wait_topic(self, topic, timeout=10.0, start=0):
        return self.wait_for(lambda e: e.get("topic") == topic, timeout,
                             start)

    def mark(self):
        """The index the next event will get: pass it as start= to wait
        only for what happens after an action, e.g. a second event of a
        topic already seen:  n = tail.mark(); act(); tail.wait_topic(t,
        start=n)."""
        with self.cond:
            return len(self.events)

    def topics(self):
        """The topics seen so far, in order."""
        with self.cond:
            return [e.get("topic") for e in self.events]

    def stop(self, expect=0, timeout=10.0):
        """Ctrl-C (SIGINT) and wait; asserts the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(scaled(timeout))
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
                raise Failure("opsctl tail ignored SIGINT")
        self.thread.join(5)
        if expect is not None:
            eq(self.popen.returncode, expect, "opsctl tail exit code")
        return self.popen.returncode

    def alive(self):
        return self.popen.poll() is None

    def kill(self):
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait()


class Capture:
    """Raw frames read from the relay by nngcat --sub --raw."""

    def __init__(self, suite, count, topic):
        self.suite = suite
        self.count = count
        self.out_path = suite.path("capture-%d.bin" % free_port())
        self.out = open(self.out_path, "wb")
        self.popen = subprocess.Popen(
            ["nngcat", "--sub", "--dial", suite.bus_subscribe, "--raw",
             "--subscribe", topic, "--count", str(count)],
            stdout=self.out, stderr=subprocess.DEVNULL)

    def wait(self, timeout=15.0):
        """The bytes received once nngcat has its count (raw frames are
        written back to back: split them yourself if count > 1)."""
        try:
            self.popen.wait(scaled(timeout))
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            raise Failure("nngcat --sub got fewer than %d frames" %
                          self.count)
        finally:
            self.out.close()
        with open(self.out_path, "rb") as f:
            return f.read()

    def kill(self):
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait()
        self.out.close()


class FakeService:
    """nngcat --rep answering a fixed reply on a service's url."""

    PROTO = {"ticket": ("ticket.proto", "Ticket"),
             "incident": ("incident.proto", "Incident"),
             "prober": ("health.proto", "Prober"),
             "status": ("status.proto", "Status")}

    def __init__(self, suite, service, reply_text, count):
        self.suite = suite
        self.proto, prefix = self.PROTO[service]
        self.request_type = "opsdesk.v1.%sRequest" % prefix
        reply = suite.encode("opsdesk.v1.%sReply" % prefix, reply_text,
                             self.proto)
        self.reply_path = suite.path("reply-%d.bin" % free_port())
        with open(self.reply_path, "wb") as f:
            f.write(reply)
        self.out_path = suite.path("requests-%d.bin" % free_port())
        self.out = open(self.out_path, "wb")
        self.popen = subprocess.Popen(
            ["nngcat", "--rep", "--listen", suite.urls[service], "--raw",
             "--file", self.reply_path, "--count", str(count)],
            stdout=self.out, stderr=subprocess.DEVNULL)
        suite.fakes.append(self)
        # nngcat has no readiness signal: wait for its listening port.
        port = int(suite.urls[service].rsplit(":", 1)[1])
        wait_until(lambda: _port_open(port), 10, "nngcat --rep listening")

    def requests(self, timeout=10.0):
        """All request bytes received, once nngcat has answered count."""
        try:
            self.popen.wait(scaled(timeout))
        except subprocess.TimeoutExpired:
            self.kill()
        self.out.close()
        with open(self.out_path, "rb") as f:
            return f.read()

    def request_text(self, timeout=10.0):
        """The (single) request received, decoded by protoc."""
        return self.suite.decode(self.request_type,
                                 self.requests(timeout), self.proto)

    def kill(self):
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait()
        self.out.close()


def _port_open(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(0.2)
    try:
        s.connect(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


class Suite:
    """A set of opsdesk processes sharing one temp dir, config and ports."""

    def __init__(self, name="suite", config=None):
        _args()
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="opsdesk-%s-" % name)
        self.data_dir = os.path.join(self.dir, "data")
        os.makedirs(self.data_dir)
        self.config = config if config is not None else {}
        self.config_path = os.path.join(self.dir, "opsdesk.json")
        self.procs = []
        self.tails = []
        self.fakes = []
        self.bus_publish = "tcp://127.0.0.1:%d" % free_port()
        self.bus_subscribe = "tcp://127.0.0.1:%d" % free_port()
        self.urls = {k: "tcp://127.0.0.1:%d" % free_port() for k in SERVICES}
        self.http = {e: "127.0.0.1:%d" % free_port() for e in EXECUTABLES}
        self.extra_env = {}
        self.failed = False

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        if et is not None:
            self.failed = True
        self.close()
        return False

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def write_config(self):
        # Atomic (rename): every opsctl run rewrites it, and a service
        # reloading on SIGHUP must never read it half written.
        tmp = "%s.%d.%d.tmp" % (self.config_path, os.getpid(),
                                threading.get_ident())
        with open(tmp, "w") as f:
            json.dump(self.config, f, indent=1)
        os.replace(tmp, self.config_path)

    def env(self, **extra):
        """The environment every process of this suite gets."""
        e = {k: v for k, v in os.environ.items()
             if not k.startswith("OPSDESK_") and not k.startswith("TELEGRAM_")}
        e.update({
            "OPSDESK_CONFIG": self.config_path,
            "OPSDESK_DATA_DIR": self.data_dir,
            "OPSDESK_BUS_PUBLISH": self.bus_publish,
            "OPSDESK_BUS_SUBSCRIBE": self.bus_subscribe,
            "OPSDESK_LOG_LEVEL": "debug",
        })
        for k, (_, var) in SERVICES.items():
            e[var] = self.urls[k]
        e.update(self.extra_env)
        e.update({k: str(v) for k, v in extra.items()})
        return e

    def start(self, exe, args=(), env=None, wait="/readyz", timeout=15.0,
              instance=None):
        """Start exe from --bin with the suite env (+ env dict) and its own
        HTTP port; wait until `wait` answers 200 (None: do not wait).
        A second start of the same exe gets a fresh HTTP port."""
        if not have_exe(exe):
            raise Failure("%s not built in %s" % (exe, _args().bin))
        self.write_config()
        n = sum(1 for p in self.procs if p.exe == exe)
        http_addr = self.http.get(exe)
        if http_addr is None or n > 0:
            http_addr = "127.0.0.1:%d" % free_port()
        extra = {"OPSDESK_HTTP_ADDR": http_addr,
                 "OPSDESK_INSTANCE": instance or "%s-%d" % (exe, n)}
        extra.update(env or {})
        log = self.path("%s%s.log" % (exe, "" if n == 0 else "-%d" % n))
        p = Proc(self, exe, args, self.env(**extra), http_addr, log)
        self.procs.append(p)
        if wait:
            p.wait_http(wait, timeout)
        return p

    def proc(self, exe):
        """The first started Proc of exe."""
        for p in self.procs:
            if p.exe == exe:
                return p
        raise KeyError(exe)

    # ---- opsctl ----

    def opsctl(self, *args, timeout=20.0, env=None, input=None):
        """Run `opsctl args…` with the suite env; a Result. Under
        TIME_SCALE > 1 opsctl's per-request time-out (3 s) is stretched
        too unless args set one."""
        self.write_config()
        args = [str(a) for a in args]
        if TIME_SCALE > 1 and not any(
                a in ("-t", "--timeout") or a.startswith("--timeout=")
                for a in args):
            args = ["--timeout", str(int(scaled(3000)))] + args
        argv = [exe_path("opsctl")] + args
        r = subprocess.run(argv, env=self.env(**(env or {})), cwd=self.dir,
                           input=input, capture_output=True,
                           timeout=scaled(timeout))
        return Result(argv, r.returncode, r.stdout.decode("utf-8", "replace"),
                      r.stderr.decode("utf-8", "replace"))

    def call(self, service, method, body=None, as_user=None, admin=False,
             expect=0, timeout_ms=None):
        """`opsctl call service method JSON`; asserts the exit code (0 ok,
        1 Error reply, 2 unavailable) and returns the JSON printed.
        as_user: act as that (non-admin) user id; admin=True with it makes
        them admin. Without as_user the actor is opsctl's admin operator."""
        args = []
        if as_user is not None:
            args += ["--as", str(as_user)]
            if admin:
                args.append("--admin")
        if timeout_ms is not None:
            args += ["--timeout", str(timeout_ms)]
        args += ["call", service, method]
        if body is not None:
            args.append(body if isinstance(body, str) else json.dumps(body))
        r = self.opsctl(*args)
        if expect is not None and r.rc != expect:
            raise Failure("opsctl call %s %s: exit %s, want %s: %r" %
                          (service, method, r.rc, expect, r))
        return r.json

    def ping(self, *services):
        """`opsctl ping` -> its Result (parse r.lines())."""
        return self.opsctl("ping", *services)

    def tail(self, *prefixes, connected=True):
        """Start `opsctl tail`; by default wait for its connection."""
        # opsctl reads OPSDESK_CONFIG at start: it must exist even when
        # tail is the suite's first process.
        self.write_config()
        t = Tail(self, prefixes)
        self.tails.append(t)
        if connected:
            t.wait_connected()
        return t

    # ---- the bus without NNG code ----

    def encode(self, msg_type, text, proto="envelope.proto"):
        """Bytes of a message from protobuf text format, e.g.
        encode("opsdesk.v1.TicketReply", 'ping {version: "1"}',
        "ticket.proto")."""
        r = subprocess.run(
            ["protoc", "-I", _args().proto, "--encode=" + msg_type,
             os.path.join(_args().proto, proto)],
            input=text.encode(), capture_output=True, timeout=20)
        if r.returncode != 0:
            raise Failure("protoc --encode %s: %s" %
                          (msg_type, r.stderr.decode()))
        return r.stdout

    def decode(self, msg_type, data, proto="envelope.proto"):
        """protoc --decode of bytes, as protobuf text format."""
        r = subprocess.run(
            ["protoc", "-I", _args().proto, "--decode=" + msg_type,
             os.path.join(_args().proto, proto)],
            input=data, capture_output=True, timeout=20)
        if r.returncode != 0:
            raise Failure("protoc --decode %s: %s" %
                          (msg_type, r.stderr.decode()))
        return r.stdout.decode()

    def encode_envelope(self, text):
        return self.encode("opsdesk.v1.Envelope", text)

    def decode_envelope(self, data):
        return self.decode("opsdesk.v1.Envelope", data)

    def frame(self, topic, envelope_text=""):
        """A bus frame: topic, 0x00, Envelope from text format."""
        return topic.encode() + b"\0" + self.encode_envelope(envelope_text)

    def publish(self, topic, envelope=None):
        """`opsctl publish topic JSON` (envelope: dict or JSON text; the
        header fields are filled by opsctl). Waits for its connection,
        so the frame is sent, but pub/sub may still drop it."""
        args = ["publish", topic]
        if envelope is not None:
            args.append(envelope if isinstance(envelope, str)
                        else json.dumps(envelope))
        r = self.opsctl(*args)
        if r.rc != 0:
            raise Failure("opsctl publish: %r" % r)
        return r

    def publish_raw(self, frames, delay=1):
        """Publish raw frames (bytes each, garbage too) to the relay, in
        order: with `opsctl publish-raw` on one connection (fast), or,
        without opsctl, one nngcat --pub per frame that sends after
        `delay` whole seconds (pub drops what precedes its pipe)."""
        if isinstance(frames, bytes):
            frames = [frames]
        paths = []
        for fr in frames:
            path = self.path("frame-%d.bin" % free_port())
            with open(path, "wb") as f:
                f.write(fr)
            paths.append(path)
        if have_exe("opsctl"):
            r = self.opsctl("publish-raw", *paths)
            if r.rc != 0:
                raise Failure("opsctl publish-raw: %r" % r)
            return
        for path in paths:
            r = subprocess.run(
                ["nngcat", "--pub", "--dial", self.bus_publish, "--file",
                 path, "--delay", str(max(1, int(delay))), "--count", "1"],
                capture_output=True, timeout=30)
            if r.returncode != 0:
                raise Failure("nngcat --pub: %s" % r.stderr.decode())

    def capture_bus(self, count=1, topic=""):
        """nngcat --sub on the relay's subscriber side: a Capture whose
        .wait() returns the raw frames received (count of them)."""
        return Capture(self, count, topic)

    def fake_service(self, service, reply_text, count=1):
        """Stand in for a service with nngcat --rep on its req/rep url:
        every request gets the reply built from reply_text (protobuf text
        format of that service's Reply). .requests() gives the request
        bytes received; .request_text(i) decodes one with protoc."""
        return FakeService(self, service, reply_text, count)

    def close(self):
        for t in self.tails:
            t.kill()
        for f in self.fakes:
            f.kill()
        for p in reversed(self.procs):
            p.kill()
        # Under ThreadSanitizer a report goes to the service's log and
        # only changes the exit code of a process that exits by itself:
        # one killed here, or never stopped, would hide its races. So
        # any report in any log fails the suite.
        races = [p for p in self.procs
                 if os.path.exists(p.log_path)
                 and "WARNING: ThreadSanitizer:" in p.log_text()]
        if races and not self.failed:
            self.failed = True
            print("  kept %s" % self.dir, flush=True)
            raise Failure("ThreadSanitizer report in %s:\n%s" % (
                ", ".join(p.log_path for p in races),
                races[0].log_text()[-6000:]))
        if self.failed or _args().keep:
            print("  kept %s" % self.dir, flush=True)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


# ---- Prometheus text format ----

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"\s*')
_TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


def _parse_labels(s, lineno):
    labels = []
    pos = 0
    while pos < len(s):
        m = _LABEL.match(s, pos)
        if not m:
            raise Failure("metrics line %d: bad labels %r" % (lineno, s))
        labels.append((m.group(1), m.group(2)))
        pos = m.end()
        if pos < len(s):
            if s[pos] != ",":
                raise Failure("metrics line %d: bad labels %r" % (lineno, s))
            pos += 1
    names = [k for k, _ in labels]
    if len(names) != len(set(names)):
        raise Failure("metrics line %d: repeated label" % lineno)
    return tuple(labels)


def parse_prometheus(text):
    """Validate the text exposition format 0.0.4 the way promtool does for
    the common mistakes (syntax, TYPE before samples and once per name,
    one group per family, counters ending in _total, histogram _bucket
    with le and +Inf) and return {(name, labels): float}."""
    samples = {}
    types = {}
    seen_families = []
    check(text.endswith("\n") or text == "", "metrics: no final newline")
    for lineno, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 2 and parts[1] in ("TYPE", "HELP"):
                check(len(parts) >= 3 and _METRIC_NAME.match(parts[2]),
                      "metrics line %d: bad %s" % (lineno, parts[1]))
                if parts[1] == "TYPE":
                    check(len(parts) == 4 and parts[3] in _TYPES,
                          "metrics line %d: bad type" % lineno)
                    check(parts[2] not in types,
                          "metrics line %d: second TYPE for %s" %
                          (lineno, parts[2]))
                    check(not any(n == parts[2] or
                                  n.startswith(parts[2] + "_")
                                  for n, _ in samples),
                          "metrics line %d: TYPE after samples of %s" %
                          (lineno, parts[2]))
                    types[parts[2]] = parts[3]
            continue
        check(line.strip() != "", "metrics line %d: empty line" % lineno)
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$",
                     line)
        check(m, "metrics line %d: bad sample %r" % (lineno, line))
        name, labels = m.group(1), _parse_labels(m.group(3) or "", lineno)
        try:
            value = float(m.group(4))
        except ValueError:
            raise Failure("metrics line %d: bad value %r" % (lineno, line))
        family = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and name[:-len(suffix)] in types:
                family = name[:-len(suffix)]
        if family not in seen_families:
            seen_families.append(family)
        elif seen_families[-1] != family:
            raise Failure("metrics line %d: %s not grouped" %
                          (lineno, family))
        t = types.get(family)
        if t == "counter":
            check(name.endswith("_total"),
                  "metrics line %d: counter %s without _total" %
                  (lineno, name))
            check(value >= 0, "metrics line %d: negative counter" % lineno)
        if t == "histogram" and name.endswith("_bucket"):
            check(any(k == "le" for k, _ in labels),
                  "metrics line %d: bucket without le" % lineno)
        key = (name, labels)
        check(key not in samples, "metrics line %d: duplicate %r" %
              (lineno, line))
        samples[key] = value
    for name, t in types.items():
        if t == "histogram" and any(n == name + "_bucket" for n, _ in samples):
            check(any(n == name + "_bucket" and ("le", "+Inf") in l
                      for n, l in samples),
                  "metrics: histogram %s without le=\"+Inf\"" % name)
    return samples


def metric(samples, name, **labels):
    """The value of one sample (labels as keywords), or None."""
    want = sorted(labels.items())
    for (n, l), v in samples.items():
        if n == name and sorted(l) == want:
            return v
    return None


def promtool_check(text):
    """Run `promtool check metrics` when promtool is installed; raises
    Failure on problems, returns False when promtool is absent."""
    tool = shutil.which("promtool")
    if tool is None:
        return False
    r = subprocess.run([tool, "check", "metrics"], input=text.encode(),
                       capture_output=True, timeout=30)
    if r.returncode != 0:
        raise Failure("promtool check metrics: %s%s" %
                      (r.stdout.decode(), r.stderr.decode()))
    return True


# ---- the runner ----

# What the executables read from the environment: a test never inherits
# it from the shell that runs it (a developer's OPSDESK_BUS_PUBLISH would
# point every process, tools included, at their own suite). The knobs of
# the tests themselves (OPSDESK_BIN, OPSDESK_E2E_*, OPSDESK_TEST_*) stay.
_TEST_KNOBS = ("OPSDESK_BIN", "OPSDESK_E2E_", "OPSDESK_TEST_")


def clear_env():
    for k in list(os.environ):
        if (k.startswith("OPSDESK_") and not k.startswith(_TEST_KNOBS)) \
                or k.startswith("TELEGRAM_"):
            del os.environ[k]


def main(module=None):
    """Run every test_* of the calling module; exit 1 on failure."""
    args = parse_args()
    clear_env()
    if module is None:
        module = sys.modules["__main__"]
    tests = [(n, f) for n, f in vars(module).items()
             if n.startswith("test_") and callable(f)]
    tests.sort(key=lambda t: t[1].__code__.co_firstlineno)
    if args.k:
        tests = [t for t in tests if args.k in t[0]]
    passed = failed = skipped = 0
    for name, fn in tests:
        t0 = time.monotonic()
        suite = None
        try:
            if len(inspect.signature(fn).parameters) >= 1:
                suite = Suite(name)
                fn(suite)
            else:
                fn()
            passed += 1
            print("PASS %s (%.1fs)" % (name, time.monotonic() - t0),
                  flush=True)
        except Skip as e:
            skipped += 1
            print("SKIP %s: %s" % (name, e), flush=True)
        except BaseException as e:  # report and go on with the next test
            if isinstance(e, KeyboardInterrupt):
                raise
            failed += 1
            if suite is not None:
                suite.failed = True
            print("FAIL %s (%.1fs)\n%s" % (name, time.monotonic() - t0,
                                           traceback.format_exc()),
                  flush=True)
            if suite is not None:
                for p in suite.procs:
                    print("  --- %s log tail (%s)\n%s" %
                          (p.exe, p.log_path, p.log_tail(15)), flush=True)
        finally:
            if suite is not None:
                suite.close()
    line = "%d passed, %d failed" % (passed, failed)
    if skipped:
        line += " (%d skipped)" % skipped
    print(line, flush=True)
    sys.exit(1 if failed or not tests else 0)

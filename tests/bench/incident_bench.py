"""incident_bench.py -- incident-service throughput and latency, as ratios
against baselines measured in the same run:

  * ping (answered by the rpc layer, no store) vs create (a durable write
    in the group commit) vs get (a read txn), sequential and with
    CONCURRENCY clients: concurrent creates must beat sequential ones
    (group commit shares the fsync), or the bench fails;
  * health.changed -> incident.opened through the relay, against a bare
    opsctl publish -> tail round trip of an event nobody acts on.

    python3 incident_bench.py --bin <build>/bin --proto <src>/proto
"""

import json
import os
import socket
import statistics
import struct
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "system"))

import harness as h  # noqa: E402

SECONDS = 3.0
CONCURRENCY = 16
EVENTS = 20


class ReqConn:
    """One REQ/REP connection over TCP spoken directly (SP header, 8-byte
    length-prefixed messages, a 4-byte request id in front of each)."""

    def __init__(self, url):
        host, port = url[len("tcp://"):].rsplit(":", 1)
        self.c = socket.create_connection((host, int(port)), timeout=10)
        self.c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.c.sendall(b"\0SP\0\x00\x30\0\0")
        self._recv(8)
        self.next_id = 1

    def _recv(self, n):
        out = b""
        while len(out) < n:
            chunk = self.c.recv(n - len(out))
            if not chunk:
                raise h.Failure("connection closed")
            out += chunk
        return out

    def call(self, body):
        rid = struct.pack(">I", 0x80000000 | self.next_id)
        self.next_id += 1
        self.c.sendall(struct.pack(">Q", len(body) + 4) + rid + body)
        n = struct.unpack(">Q", self._recv(8))[0]
        rep = self._recv(n)
        return rep[4:]

    def close(self):
        self.c.close()


def with_request_id(rest, rid):
    """IncidentRequest bytes: field 1 (request_id) + the rest."""
    b = rid.encode()
    return b"\x0a" + bytes([len(b)]) + b + rest


def rate(url, make_body, clients, seconds=SECONDS):
    """Requests/s of make_body(i) over `clients` connections; the replies
    must carry no Error (field 1 of the Reply)."""
    stop = time.time() + seconds
    counts = [0] * clients
    errors = []

    def worker(k):
        c = ReqConn(url)
        i = 0
        try:
            while time.time() < stop:
                rep = c.call(make_body("%d-%d" % (k, i)))
                if rep[:1] == b"\x0a":
                    errors.append(rep)
                    return
                i += 1
        finally:
            counts[k] = i
            c.close()

    t0 = time.time()
    ts = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise h.Failure("error reply: %r" % errors[0][:200])
    return sum(counts) / (time.time() - t0)


def main():
    h.parse_args()
    with h.Suite("incident-bench") as s:
        s.config = {"admins": [1], "incidents": {"tick": "1s"}}
        s.start("bus-relay")
        s.start("incident-service")
        url = s.urls["incident"]
        actor = 'actor { user_id: 1 is_admin: true name: "bench" } '
        enc = lambda t: s.encode("opsdesk.v1.IncidentRequest", actor + t,
                                 "incident.proto")
        ping = enc("ping {}")
        create = enc('create { severity: SEVERITY_LOW title: "bench" }')
        get = enc("get { id: 1 }")
        seq = "seq-%d" % os.getpid()
        n = [0]

        def uniq(body):
            def make(k):
                n[0] += 1
                return with_request_id(body, "%s-%s-%d" % (seq, k, n[0]))
            return make

        ReqConn(url).call(with_request_id(create, "warm-up"))
        res = {}
        for name, body in (("ping", ping), ("create", create), ("get", get)):
            res[name, 1] = rate(url, uniq(body), 1)
            res[name, CONCURRENCY] = rate(url, uniq(body), CONCURRENCY)
        for name in ("ping", "create", "get"):
            print("%-7s %8.0f req/s sequential  %8.0f req/s with %d clients"
                  % (name, res[name, 1], res[name, CONCURRENCY],
                     CONCURRENCY))
        print("create/ping: %.2f sequential, %.2f concurrent; "
              "concurrent/sequential create: %.1fx (group commit)" %
              (res["create", 1] / res["ping", 1],
               res["create", CONCURRENCY] / res["ping", CONCURRENCY],
               res["create", CONCURRENCY] / res["create", 1]))

        # health.changed -> incident.opened, against publish -> tail of
        # an event nobody acts on (the bus's own latency).
        tail = s.tail("incident.opened", "ops.bench")
        base, auto = [], []
        for i in range(EVENTS):
            t0 = time.time()
            s.publish("ops.bench", {"ops": {"kind": "bench", "text": str(i)}})
            tail.wait_for(lambda e: e["topic"] == "ops.bench" and
                          e["envelope"]["ops"].get("text") == str(i))
            base.append(time.time() - t0)
            t0 = time.time()
            s.publish("health.changed", {"health_changed": {
                "target_id": "c%d" % i, "old_state": "UP",
                "new_state": "DOWN", "criticality": "HIGH"}})
            tail.wait_for(lambda e: e["topic"] == "incident.opened" and
                          e["envelope"]["incident"]["incident"]
                          ["dedup_key"] == "component:c%d" % i)
            auto.append(time.time() - t0)
        mb, ma = statistics.median(base), statistics.median(auto)
        print("publish->tail median %.1f ms; health.changed->incident.opened"
              " median %.1f ms (ratio %.2f; both include opsctl start-up)"
              % (mb * 1000, ma * 1000, ma / mb))
        s.proc("incident-service").stop()
        if res["create", CONCURRENCY] < res["create", 1]:
            raise h.Failure("concurrent creates slower than sequential: "
                            "group commit is not working")


if __name__ == "__main__":
    main()

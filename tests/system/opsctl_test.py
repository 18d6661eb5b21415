"""opsctl against a real service: ping, call as different actors, the
event of a call seen by tail, and a backup taken while the service runs
that another instance can serve from."""

import os
import shutil

import harness as h


def test_call_tail_and_actors(s):
    s.start("bus-relay")
    s.start("ticket-service")
    tail = s.tail("ticket.")
    r = s.ping("ticket")
    h.eq(r.rc, 0, "ping: %r" % r)
    line = r.lines()[0]
    h.check(line["ok"] and line["version"], "ping reply")
    h.eq(line["executable"], "ticket-service")

    created = s.call("ticket", "Create", {"subject": "login broken",
                                          "text": "cannot log in"},
                     as_user=42)
    t = created["created"]["ticket"]
    h.eq(t["owner_id"], 42)
    h.eq(t["subject"], "login broken")
    ev = tail.wait_topic("ticket.created")
    h.eq(ev["envelope"]["source"], "ticket-service")
    h.eq(ev["envelope"]["ticket"]["ticket"]["id"], t["id"])

    # the owner sees it, another user does not (exit 1, error printed)
    got = s.call("ticket", "get", {"id": t["id"]}, as_user=42)
    h.eq(got["ticket"]["subject"], "login broken")
    err = s.call("ticket", "get", {"id": t["id"]}, as_user=43, expect=1)
    h.eq(err["error"]["code"], "ERROR_CODE_NOT_FOUND")
    # the default actor is an admin operator
    q = s.call("ticket", "queue", {})
    h.check(any(x["id"] == t["id"] for x in q["tickets"]["tickets"]),
            "admin queue lists it: %r" % q)

    # only ticket-service is up: ping of all says so and fails
    r = s.opsctl("--timeout", "300", "ping")
    h.eq(r.rc, 2)
    ok = {l["service"]: l["ok"] for l in r.lines()}
    h.eq(ok, {"ticket": True, "incident": False, "prober": False,
              "status": False})
    tail.stop()


def test_request_id_retry_applies_once(s):
    s.start("bus-relay")
    s.start("ticket-service")
    args = ["--as", "55", "--request-id", "retry-1", "call", "ticket",
            "create", '{"subject": "once", "text": "x"}']
    first = s.opsctl(*args)
    again = s.opsctl(*args)
    h.eq(first.rc, 0, "first: %r" % first)
    h.eq(again.json, first.json, "the retry gets the first reply")
    mine = s.call("ticket", "list_mine", {}, as_user=55)
    h.eq(len(mine["tickets"]["tickets"]), 1, "applied once")
    r = s.opsctl("--request-id", "x" * 33, "call", "ticket", "ping")
    h.eq(r.rc, 64)
    h.contains(r.stderr, "--request-id")


def test_backup_while_running(s):
    s.start("bus-relay")
    svc = s.start("ticket-service")
    # different users: a user may only have a few open tickets
    ids = [s.call("ticket", "create", {"subject": "t%d" % i, "text": "x"},
                  as_user=100 + i)["created"]["ticket"]["id"]
           for i in range(5)]
    dest = s.path("backup-1")
    r = s.opsctl("backup", "ticket-service", dest)
    h.eq(r.rc, 0, "backup: %r" % r)
    h.eq(r.json["to"], dest)
    h.check(r.json["bytes"] > 0, "bytes")
    h.check(os.path.exists(os.path.join(dest, "data.mdb")), "data.mdb")
    # a second backup into the same, now non-empty, dir is refused
    r = s.opsctl("backup", "ticket", dest)
    h.eq(r.rc, 1)
    h.contains(r.stderr, "not empty")
    # the service went on serving during and after
    h.eq(svc.http_get("/readyz")[0], 200)

    # another instance serves the copy
    data2 = s.path("restore")
    shutil.copytree(dest, os.path.join(data2, "ticket-service"))
    url2 = "tcp://127.0.0.1:%d" % h.free_port()
    s.start("ticket-service", env={"OPSDESK_DATA_DIR": data2,
                                   "OPSDESK_TICKET_URL": url2})
    r = s.opsctl("--url", url2, "--as", "104", "call", "ticket", "get",
                 '{"id": %d}' % ids[-1])
    h.eq(r.rc, 0, "get from the restored copy: %r" % r)
    h.eq(r.json["ticket"]["subject"], "t4")


if __name__ == "__main__":
    h.main()

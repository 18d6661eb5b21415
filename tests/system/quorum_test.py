"""Multi-location probing with quorum: three health-probers with different
locations (OPSDESK_PROBER_LOCATION) probe the same target, a fourth
(OPSDESK_PROBER_ROLE=decider) decides its state from their health.observed
views, and incident-service opens incidents from the decided
health.changed only.

Faults are injected per location: each location reaches the service over
its own "network path", a local HTTP server of its own (its config file
points the target's URL there), which the test turns down. So: down from
one location -> no incident, the component stays up with "down from
eu-west only"; from two -> down, one incident naming both locations; a
location's prober killed -> "not reporting", no state change; it (and the
decider) restarted -> no duplicate event.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

LOCATIONS = ["eu-west", "us-east", "ap-south"]


def api_target(port):
    return {"id": "api", "name": "Public API", "kind": "http",
            "url": "http://127.0.0.1:%d/" % port, "interval": "1s",
            "timeout": "1s", "failure_threshold": 2, "success_threshold": 1,
            "public": True, "criticality": "critical"}


def api_of(s):
    r = s.call("prober", "current", {})
    h.eq(r["current"].get("role"), "decider")
    return [t for t in r["current"]["targets"] if t["id"] == "api"][0]


def locs(t):
    return {lo["location"]: lo for lo in t.get("locations", [])}


def changes(tail, decider_instance):
    """The health.changed of api so far: (old, new, instance)."""
    out = []
    for e in list(tail.events):
        if e.get("topic") != "health.changed":
            continue
        hc = e["envelope"]["health_changed"]
        if hc["target_id"] == "api":
            out.append((hc.get("old_state", "COMPONENT_STATE_UNKNOWN")[16:],
                        hc.get("new_state", "COMPONENT_STATE_UNKNOWN")[16:]))
            h.eq(e["envelope"].get("instance"), decider_instance,
                 "only the decider publishes health.changed")
    return out


def api_incidents(s):
    r = s.call("incident", "list",
               {"include_resolved": True, "page": {"limit": 100}})
    return [i for i in r["incidents"].get("incidents", [])
            if any(c["component_id"] == "api"
                   for c in i.get("components", []))]


def located_current(s, url):
    r = s.opsctl("call", "prober", "current", "{}",
                 env={"OPSDESK_PROBER_URL": url})
    h.check(r.rc == 0, "located prober current: %r" % r)
    return r.json["current"]


def views_after(s, proc_by_loc, loc, n):
    """Wait until location loc's own prober has n more results."""
    url = proc_by_loc[loc][1]
    start = located_current(s, url)["targets"][0].get("last_check_ms", 0)
    seen = set()

    def more():
        t = located_current(s, url)["targets"][0]
        seen.add(t.get("last_check_ms", 0))
        return len([x for x in seen if int(x) > int(start)]) >= n
    h.wait_until(more, 15, "%d more results from %s" % (n, loc))


def start_locations(s, paths, target_fn):
    """The decider (the suite's prober url) and one located prober per
    path, each with its own config (its path's URL), store and rpc url.
    Returns {location: (Proc, rpc url)}."""
    decider = s.start("health-prober", instance="decider",
                      env={"OPSDESK_PROBER_ROLE": "decider"})
    procs = {}
    for loc in LOCATIONS:
        cfg = dict(s.config, targets=[target_fn(paths[loc].port)])
        cfg_path = s.path("%s.json" % loc)
        with open(cfg_path, "w") as f:
            json.dump(cfg, f)
        data = s.path("data-%s" % loc)
        os.makedirs(data)
        url = "tcp://127.0.0.1:%d" % h.free_port()
        p = s.start("health-prober", instance="prober-%s" % loc,
                    env={"OPSDESK_PROBER_LOCATION": loc,
                         "OPSDESK_CONFIG": cfg_path,
                         "OPSDESK_DATA_DIR": data,
                         "OPSDESK_PROBER_URL": url})
        procs[loc] = (p, url)
    return decider, procs


def test_three_locations_one_decision(s):
    h.need("health-prober", "bus-relay", "incident-service", "opsctl")
    paths = {loc: h.FlipTarget() for loc in LOCATIONS}
    try:
        s.config = {"targets": [api_target(1)],
                    "prober": {"location_timeout": "3s"}}
        s.start("bus-relay")
        tail = s.tail("health.changed")
        s.start("incident-service")
        decider, procs = start_locations(s, paths, api_target)
        h.eq(located_current(s, procs["eu-west"][1]).get("location"),
             "eu-west")

        # All three up: one decided transition to up.
        h.wait_until(lambda: api_of(s).get("state") ==
                     "COMPONENT_STATE_UP" and
                     len(locs(api_of(s))) == 3, 20, "decided up")
        t = api_of(s)
        for loc in LOCATIONS:
            lo = locs(t)[loc]
            h.eq(lo.get("state"), "COMPONENT_STATE_UP", loc)
            h.check(lo.get("reporting"), "%s reporting" % loc)
            h.check("latency_ms" in lo or lo.get("last_report_ms"),
                    "%s has a latency and report time" % loc)
        h.wait_until(lambda: changes(tail, "decider") == [("UNKNOWN", "UP")],
                     10, "one health.changed to up")

        # The history keeps each location's results and latency.
        # One result per decided round, with every location's view.
        def recent_locations():
            r = s.call("prober", "history", {"target_id": "api",
                                             "recent": 20})
            return {lo.get("location") for x in
                    r["history"].get("recent", [])
                    for lo in x.get("locations", [])
                    if "latency_ms" in lo or lo.get("state")}
        h.wait_until(lambda: recent_locations() >= set(LOCATIONS), 10,
                     "per-location results in the history")

        # Down from eu-west only: still up, the location named, no
        # incident and no event while eu-west keeps failing.
        paths["eu-west"].down = True
        h.wait_until(lambda: "down from eu-west only" in
                     api_of(s).get("reason", ""), 15, "down from eu-west")
        t = api_of(s)
        h.eq(t.get("state"), "COMPONENT_STATE_UP")
        h.eq(t.get("down_locations"), ["eu-west"])
        h.eq(locs(t)["eu-west"].get("state"), "COMPONENT_STATE_DOWN")
        views_after(s, procs, "eu-west", 3)
        h.eq(api_of(s).get("state"), "COMPONENT_STATE_UP")
        h.eq(changes(tail, "decider"), [("UNKNOWN", "UP")],
             "no event for one location")
        h.eq(api_incidents(s), [], "no incident for one location")

        # From two: down, one event naming both, one incident whose
        # timeline says where it was seen.
        paths["us-east"].down = True
        h.wait_until(lambda: api_of(s).get("state") ==
                     "COMPONENT_STATE_DOWN", 15, "decided down")
        h.wait_until(lambda: len(changes(tail, "decider")) == 2, 10,
                     "health.changed to down")
        h.eq(changes(tail, "decider")[1], ("UP", "DOWN"))
        ev = [e for e in tail.events if e.get("topic") == "health.changed"
              ][-1]["envelope"]["health_changed"]
        h.eq(ev.get("down_locations"), ["eu-west", "us-east"])
        h.contains(ev["reason"], "down from eu-west, us-east (2 of 3)")
        h.wait_until(lambda: len(api_incidents(s)) == 1, 15,
                     "incident opened")
        inc = api_incidents(s)[0]
        got = s.call("incident", "get", {"id": inc["id"]})["incident"]
        text = json.dumps(got["timeline"])
        h.contains(text, "eu-west")
        h.contains(text, "us-east")

        # ap-south's prober dies: not reporting, never counted as down,
        # and the decided state does not change (2 of 2 still down).
        procs["ap-south"][0].kill()
        h.wait_until(lambda: not locs(api_of(s))["ap-south"].get(
            "reporting"), 15, "ap-south not reporting")
        t = api_of(s)
        h.contains(t.get("reason", ""), "ap-south not reporting")
        h.eq(t.get("state"), "COMPONENT_STATE_DOWN")
        # It comes back (its state from its own store): reporting again,
        # no duplicate event.
        procs["ap-south"][0].restart()
        h.wait_until(lambda: locs(api_of(s))["ap-south"].get("reporting"),
                     15, "ap-south reporting again")
        # The decider restarts too: its decided state is durable and it
        # waits for every location before deciding again.
        decider.kill()
        decider.restart()
        h.eq(api_of(s).get("state"), "COMPONENT_STATE_DOWN",
             "the decided state survives a restart")
        h.wait_until(lambda: len(locs(api_of(s))) == 3 and all(
            lo.get("reporting") for lo in locs(api_of(s)).values()), 15,
            "three locations after the decider's restart")
        views_after(s, procs, "ap-south", 4)  # past the warm-up (3 s)
        h.eq(api_of(s).get("state"), "COMPONENT_STATE_DOWN")
        h.eq(len(changes(tail, "decider")), 2, "no duplicate event")
        h.eq(len(api_incidents(s)), 1, "no second incident")

        # us-east recovers: 1 of 3 down is below the quorum, so up
        # again (one event), still naming eu-west.
        paths["us-east"].down = False
        h.wait_until(lambda: api_of(s).get("state") ==
                     "COMPONENT_STATE_UP", 15, "decided up again")
        h.wait_until(lambda: len(changes(tail, "decider")) == 3, 10,
                     "health.changed to up")
        h.eq(changes(tail, "decider")[2], ("DOWN", "UP"))
        h.contains(api_of(s).get("reason", ""), "down from eu-west only")
    finally:
        for p in paths.values():
            p.close()


def test_regional_partial_outage(s):
    """A regional target down in one location: degraded, and the status
    page says whose users are affected; a second location failing below
    the quorum (3) changes only whose users: the page follows at once
    (one health.affected), and a restarted decider does not repeat it."""
    h.need("health-prober", "bus-relay", "status-publisher", "opsctl")
    paths = {loc: h.FlipTarget() for loc in LOCATIONS}

    def web(port):
        return dict(api_target(port), id="web", name="Web shop",
                    regional=True, quorum=3)
    try:
        s.config = {"targets": [web(1)],
                    "prober": {"location_timeout": "3s"},
                    "status_page": {"title": "Shop status"}}
        s.start("bus-relay")
        tail = s.tail("health.changed", "health.affected")
        status = s.start("status-publisher")
        decider, procs = start_locations(s, paths, web)

        def events(topic):
            return [e["envelope"] for e in list(tail.events)
                    if e.get("topic") == topic]

        def comp():
            st, body, _ = status.http_get("/api/v2/components.json")
            h.eq(st, 200)
            for c in json.loads(body)["components"]:
                if c["id"] == "web":
                    return c["status"]
            return None

        def page():
            st, body, _ = status.http_get("/")
            h.eq(st, 200)
            return body.decode()

        h.wait_until(lambda: comp() == "operational", 20, "web up")
        h.check("Partial outage" not in page(), "nothing partial yet")
        paths["ap-south"].down = True
        h.wait_until(lambda: comp() == "partial_outage", 15,
                     "partial outage")
        h.contains(page(), "Partial outage: affects users in ap-south")
        r = s.call("prober", "current", {})
        t = [t for t in r["current"]["targets"] if t["id"] == "web"][0]
        h.eq(t.get("state"), "COMPONENT_STATE_DEGRADED")
        h.eq(t.get("affected_locations"), ["ap-south"])
        h.check(t.get("regional"), "regional")
        n_changed = len(events("health.changed"))
        h.eq(events("health.affected"), [], "no set change yet")

        # eu-west too: 2 of 3, below the quorum: still degraded, only
        # the affected users change, and the page shows them before any
        # transition.
        paths["eu-west"].down = True
        h.wait_until(lambda: "ap-south, eu-west" in page(), 15,
                     "the page names both locations")
        h.contains(page(), "Partial outage: affects users in ap-south, "
                   "eu-west")
        h.eq(comp(), "partial_outage")
        ev = events("health.affected")
        h.eq(len(ev), 1, "one health.affected")
        h.eq(ev[0]["health_affected"].get("affected_locations"),
             ["ap-south", "eu-west"])
        h.eq(ev[0]["health_affected"].get("state"),
             "COMPONENT_STATE_DEGRADED")
        h.eq(len(events("health.changed")), n_changed, "no transition")
        # Nothing more while the set stays, across a decider restart
        # (the set is stored with the state): the located probers
        # report more rounds, past the decider's warm-up.
        decider.kill()
        decider.restart()
        h.wait_until(lambda: len(locs(s.call("prober", "current", {})[
            "current"]["targets"][0])) == 3, 15, "views after the restart")
        views_after(s, procs, "ap-south", 5)
        h.eq(len(events("health.affected")), 1, "no duplicate")
        h.eq(len(events("health.changed")), n_changed, "no transition")

        paths["eu-west"].down = False
        h.wait_until(lambda: len(events("health.affected")) == 2, 15,
                     "back to ap-south alone")
        h.wait_until(lambda: "affects users in ap-south<" in page(), 15,
                     "the page names ap-south alone")
        paths["ap-south"].down = False
        h.wait_until(lambda: comp() == "operational", 15, "web up again")
        h.check("Partial outage" not in page(), "the note is gone")
    finally:
        for p in paths.values():
            p.close()


if __name__ == "__main__":
    h.main()

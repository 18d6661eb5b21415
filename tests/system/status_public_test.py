"""The public status page shows only what is explicitly public, against the
real health-prober, incident-service and status-publisher: probe errors
full of internals (an address and port, a host name, a URL with
credentials) and internal notes reach the admin views but none of the
page, the JSON, the feeds, the badges or the chat summary, whose automatic
incidents read like a status page ("We are investigating ...")."""

import json
import re

import harness as h

PUBLIC_ROUTES = ["/", "/index.html", "/api/v2/summary.json",
                 "/api/v2/status.json", "/api/v2/components.json",
                 "/api/v2/incidents.json",
                 "/api/v2/incidents/unresolved.json",
                 "/api/v2/scheduled-maintenances.json",
                 "/history.rss", "/history.atom", "/badge.svg",
                 "/badge/web.svg", "/badge/web/uptime.svg",
                 "/badge/auth.svg", "/badge/auth/uptime.svg"]


def get(p, path):
    st, body, _ = p.http_get(path)
    return st, body.decode("utf-8", "replace")


def leaks(secret, body):
    """secret in body, a number only as a whole number: the port 5432
    leaks, a timestamp such as 1796341543209 does not (the CI once
    failed on one)."""
    pattern = re.escape(secret)
    if secret[0].isdigit():
        pattern = r"(?<!\d)" + pattern
    if secret[-1].isdigit():
        pattern += r"(?!\d)"
    return re.search(pattern, body) is not None


def incidents(p):
    st, body = get(p, "/api/v2/incidents/unresolved.json")
    return json.loads(body)["incidents"] if st == 200 else []


def test_no_internals_on_public_surfaces(s):
    for exe in ("health-prober", "incident-service"):
        if not h.have_exe(exe):
            raise h.Skip("%s not built" % exe)
    closed = h.free_port()
    s.config = {
        "status_page": {
            "title": "Example status", "url": "https://status.example.com",
            "templates": {"down": "Our {component} is unreachable; "
                                  "we are on it."},
            "resync_interval": "1h", "history_interval": "1s"},
        "prober": {"flush_interval": "1s"},
        "targets": [
            {"id": "api", "name": "API", "kind": "tcp",
             "host": "127.0.0.1",
             "port": int(s.http["bus-relay"].split(":")[1]),
             "interval": "1s", "timeout": "1s", "failure_threshold": 1,
             "success_threshold": 1, "public": True},
            {"id": "web", "name": "Web application", "kind": "http",
             "url": "http://127.0.0.1:%d/health" % closed,
             "interval": "1s", "timeout": "1s", "failure_threshold": 1,
             "success_threshold": 1, "public": True},
            {"id": "auth", "name": "Login", "kind": "http",
             "url": "http://admin:hunter2@db-primary.corp.invalid:5432/",
             "interval": "1s", "timeout": "1s", "failure_threshold": 1,
             "success_threshold": 1, "public": True},
        ]}
    secrets = ["127.0.0.1", "port %d" % closed, ":%d" % closed, "hunter2",
               "admin:", "db-primary", "corp.invalid", "5432",
               "Failed to connect", "resolve host", "Couldn't",
               "10.9.8.7", "6379", "cache-7", "s3cr3t", "INTERNAL-NOTE",
               "Opened automatically"]
    s.start("bus-relay")
    s.start("health-prober")
    s.start("incident-service")
    p = s.start("status-publisher")

    h.wait_until(lambda: {"Web application is down", "Login is down"} <=
                 {i["name"] for i in incidents(p)}, 30,
                 "the two automatic incidents on the page")
    # The working one gets its response-time chart from the prober's
    # aggregates, and the chat summary its latency.
    h.wait_until(lambda: 'aria-label="API response time, last 24 hours' in
                 get(p, "/")[1], 30, "API's chart on the page")
    # The chart comes from the prober's aggregates, the chat's latency
    # from its latest result: two events, so wait for the second too.

    def api_summary():
        comps = s.call("status", "summary", {})["summary"]["components"]
        return [c for c in comps if c["id"] == "api"][0]
    h.wait_until(lambda: api_summary().get("has_latency") is True, 30,
                 "API latency in the chat summary")
    by_name = {i["name"]: i for i in incidents(p)}
    # The admin's view keeps the probe's words in the internal timeline.
    web_id = None
    for inc in s.call("incident", "list", {})["incidents"]["incidents"]:
        full = s.call("incident", "get", {"id": inc["id"]})["incident"]
        texts = " ".join(e.get("text", "") for e in full["timeline"])
        if full["title"].startswith("Web application"):
            web_id = inc["id"]
            h.contains(texts, "port %d" % closed)
        elif full["title"].startswith("Login"):
            h.contains(texts, "db-primary.corp.invalid")
    h.check(web_id is not None, "the web incident in the admin list")
    s.call("incident", "update", {
        "id": web_id, "internal": True,
        "text": "INTERNAL-NOTE redis://ops:s3cr3t@cache-7.internal "
                "10.9.8.7:6379 is full"})
    s.call("incident", "update", {
        "id": web_id, "status": "IDENTIFIED",
        "text": "We found the cause and are fixing it."})
    h.wait_until(lambda: any(
        u["body"] == "We found the cause and are fixing it."
        for i in incidents(p) for u in i["incident_updates"]), 15,
        "the public update on the page")

    bodies = {path: get(p, path) for path in PUBLIC_ROUTES}
    summary = json.dumps(s.call("status", "summary", {}))
    bodies["chat summary"] = (200, summary)
    for path, (st, body) in bodies.items():
        h.eq(st, 200, path)
        for secret in secrets:
            h.check(not leaks(secret, body), "%s leaks %r: %s" %
                    (path, secret, body[:2000]))
    # What the public reads instead.
    page = bodies["/"][1]
    h.contains(page, "Our Web application is unreachable; we are on it.")
    h.contains(page, "Our Login is unreachable; we are on it.")
    h.contains(bodies["/history.rss"][1], "Our Web application is "
               "unreachable")
    h.contains(summary, "We found the cause")
    h.check("Web application is down" in by_name, "titles: %s" % by_name)


def test_cors_last_modified_and_overall_badge(s):
    """Before any fact: a Last-Modified of now, not 1970; every public
    route readable cross-origin (the Statuspage widget on another site)
    and its preflight answered; the overall badge."""
    import http.client
    s.config = {"status_page": {"resync_interval": "1h",
                                "history_interval": "1h"}}
    s.start("bus-relay")
    p = s.start("status-publisher")
    host, port = p.http_addr.split(":")
    for path in ["/api/v2/summary.json", "/api/v2/status.json",
                 "/history.rss", "/history.atom", "/badge.svg"]:
        st, body, hdrs = p.http_get(path)
        hdrs = {k.lower(): v for k, v in dict(hdrs).items()}
        h.eq(st, 200, path)
        h.eq(hdrs.get("access-control-allow-origin"), "*", path)
        lm = hdrs.get("last-modified", "")
        h.check("1970" not in lm and lm.endswith("GMT"),
                "%s: Last-Modified %r" % (path, lm))
        c = http.client.HTTPConnection(host, int(port), timeout=5)
        c.request("OPTIONS", path, headers={
            "Origin": "https://product.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "accept"})
        r = c.getresponse()
        r.read()
        h.check(r.status in (200, 204), "%s preflight: %d" %
                (path, r.status))
        h.eq(r.getheader("Access-Control-Allow-Origin"), "*", path)
        h.contains(r.getheader("Access-Control-Allow-Methods") or "", "GET")
        c.close()
    st, body, _ = p.http_get("/badge.svg")
    h.contains(body.decode(), "All Systems Operational")


if __name__ == "__main__":
    h.main()

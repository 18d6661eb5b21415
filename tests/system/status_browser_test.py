"""The status page in a real browser (Debian's chromium, headless), fed by
the real health-prober, incident-service and status-publisher:

- test_page_in_chromium: light and dark, at 1280x1600 and 390x844. The
  page is shown in an iframe of that size (headless Chromium's own window
  is never narrower than 500 px) by a wrapper page of the same origin
  whose script measures the laid-out page: 90 day bars per component,
  each focusable with its label; the response-time chart's SVG; no
  horizontal overflow; the dark scheme applied; WCAG AA contrast (4.5:1)
  of every visible text. Screenshots are kept in
  <build>/test-artifacts/status_browser/.
- test_statuspage_widget_embed: a page on another origin loads Atlassian's
  @statuspage/status-widget (npm, installed into the build tree) pointed at
  the status page; the widget shows the page's current description, which
  needs the CORS headers. Skipped when npm or the registry is unreachable.
"""

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading

import harness as h

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-quic", "--no-first-run",
                  "--disable-background-networking",
                  "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]
SIZES = [(1280, 1600), (390, 844)]
DAY_LABEL = re.compile(
    r"^\d{4}-\d\d-\d\d: (no data|\d+(\.\d+)?% up)(, \d+ incidents?)?$")

# Measures the page in the iframe and writes the findings into the
# wrapper's DOM, which --dump-dom prints.
MEASURE = r"""
function rgb(c) {
  var m = c.match(/rgba?\(([^)]+)\)/);
  if (!m) return null;
  var p = m[1].split(',').map(parseFloat);
  return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
}
function lum(c) {
  function f(v) { v /= 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }
  return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
}
function bgOf(el, win) {
  for (var e = el; e; e = e.parentElement) {
    var c = rgb(win.getComputedStyle(e).backgroundColor);
    if (c && c.a > 0.5) return c;
  }
  return {r: 255, g: 255, b: 255, a: 1};
}
function measure() {
  var f = document.getElementById('f');
  var d = f.contentDocument, w = f.contentWindow;
  var out = {width: d.documentElement.clientWidth,
             scrollWidth: d.documentElement.scrollWidth,
             bars: d.querySelectorAll('.bars .b').length,
             comps: d.querySelectorAll('.comp:not(.group)').length,
             charts: d.querySelectorAll('svg.rt').length,
             downCharts: d.querySelectorAll('#c-web svg.rt').length,
             downRt: (d.querySelector('#c-web .rth') || {}).textContent
                     || '',
             chartsVisible: 0, labels: [], unfocusable: 0,
             bodyBg: w.getComputedStyle(d.body).backgroundColor,
             dark: w.matchMedia('(prefers-color-scheme: dark)').matches,
             minContrast: 99, lowContrast: [], banner: ''};
  d.querySelectorAll('svg.rt').forEach(function (s) {
    if (s.getBoundingClientRect().height > 10) out.chartsVisible++;
  });
  d.querySelectorAll('.bars .b').forEach(function (b, i) {
    if (b.tabIndex !== 0) out.unfocusable++;
    if (i % 30 === 29) out.labels.push(b.getAttribute('aria-label'));
  });
  var firstBars = d.querySelector('.bars');
  out.todayBg = firstBars ? w.getComputedStyle(
      firstBars.lastElementChild).backgroundColor : '';
  var ban = d.querySelector('.banner');
  out.banner = ban ? ban.textContent : '';
  d.body.querySelectorAll('*').forEach(function (el) {
    var text = false;
    el.childNodes.forEach(function (n) {
      if (n.nodeType === 3 && n.textContent.trim()) text = true;
    });
    if (!text || !el.checkVisibility()) return;
    var fg = rgb(w.getComputedStyle(el).color), bg = bgOf(el, w);
    var a = lum(fg), b = lum(bg);
    var r = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (r < out.minContrast) out.minContrast = r;
    if (r < 4.5) out.lowContrast.push(el.tagName + '.' + el.className +
        ' "' + el.textContent.slice(0, 30) + '" ' +
        w.getComputedStyle(el).color + ' on ' + JSON.stringify(bg) +
        ' = ' + r.toFixed(2));
  });
  var pre = document.createElement('pre');
  pre.id = 'result';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
}
"""


def artefact_dir():
    d = os.path.join(os.path.dirname(os.path.abspath(h.ARGS.bin)),
                     "test-artifacts", "status_browser")
    os.makedirs(d, exist_ok=True)
    return d


def chromium():
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        raise h.Skip("chromium missing (Debian package chromium; "
                     "scripts/bootstrap.sh installs it)")
    return exe


def run_chromium(s, args, timeout=240):
    profile = tempfile.mkdtemp(prefix="chromium-", dir=s.dir)
    argv = [chromium()] + CHROMIUM_FLAGS + \
        ["--user-data-dir=" + profile] + args
    r = subprocess.run(argv, capture_output=True, timeout=timeout)
    if r.returncode != 0:
        raise h.Failure("chromium %s: exit %d: %s" %
                        (" ".join(args), r.returncode,
                         r.stderr.decode("utf-8", "replace")[-2000:]))
    return r.stdout.decode("utf-8", "replace")


class Static:
    """A tiny HTTP server for a directory, on its own port (origin)."""

    def __init__(self, root, host="127.0.0.1"):
        handler = functools.partial(Quiet, directory=root)
        self.srv = http.server.ThreadingHTTPServer((host, 0), handler)
        self.port = self.srv.server_address[1]
        self.t = threading.Thread(target=self.srv.serve_forever,
                                  daemon=True)
        self.t.start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


def scene(s):
    """bus-relay, health-prober (a working and a failing public target),
    incident-service and status-publisher; returns the page's Proc once
    the failing target's incident and the working one's chart show."""
    for exe in ("health-prober", "incident-service"):
        if not h.have_exe(exe):
            raise h.Skip("%s not built" % exe)
    chromium()
    closed = h.free_port()
    s.config = {
        "status_page": {"title": "Example status",
                        "url": "https://status.example.com",
                        "components": [
                            {"id": "api", "name": "Public API",
                             "group": "Platform"},
                            {"id": "web", "name": "Web application",
                             "group": "Platform"}],
                        "resync_interval": "1h", "history_interval": "1s"},
        "gateway": {"bot_username": "example_status_bot"},
        "prober": {"flush_interval": "1s"},
        "targets": [
            # Must stay up however loaded the machine (its chart, its
            # green bar): 2 s a check, and five failures to call it down.
            {"id": "api", "name": "API", "kind": "tcp", "host": "127.0.0.1",
             "port": int(s.http["bus-relay"].split(":")[1]),
             "interval": "2s", "timeout": "2s", "failure_threshold": 5,
             "success_threshold": 1, "public": True},
            {"id": "web", "name": "Web application", "kind": "http",
             "url": "http://127.0.0.1:%d/" % closed, "interval": "1s",
             "timeout": "1s", "failure_threshold": 1,
             "success_threshold": 1, "public": True}]}
    s.start("bus-relay")
    s.start("health-prober")
    s.start("incident-service")
    p = s.start("status-publisher")

    def ready():
        st, body, _ = p.http_get("/")
        page = body.decode()
        # The incident and the component's state come by different
        # events: wait for both.
        return (st == 200 and "Public API response time" in page and
                "We are investigating an outage of Web application" in page
                and "not responding" in page)
    h.wait_until(ready, 120, "the incident and the chart on the page")
    return p


def test_page_in_chromium(s):
    p = scene(s)
    out = artefact_dir()
    site = s.path("site")
    os.makedirs(site)
    with open(os.path.join(site, "page.html"), "wb") as f:
        f.write(p.http_get("/")[1])
    srv = Static(site)
    try:
        for w, ht in SIZES:
            with open(os.path.join(site, "wrap-%d.html" % w), "w") as f:
                f.write("<!DOCTYPE html><html><head><style>body{margin:0}"
                        "iframe{border:0;display:block}</style></head>"
                        "<body><iframe id=\"f\" src=\"page.html\" "
                        "width=\"%d\" height=\"%d\" onload=\"measure()\">"
                        "</iframe><script>%s</script></body></html>" %
                        (w, ht, MEASURE))
            for mode in ("light", "dark"):
                url = "http://127.0.0.1:%d/wrap-%d.html" % (srv.port, w)
                flags = ["--window-size=%d,%d" % (w, ht)]
                if mode == "dark":
                    flags.append("--force-dark-mode")
                shot = os.path.join(out, "status-%s-%dx%d.png" %
                                    (mode, w, ht))
                run_chromium(s, flags + ["--screenshot=" + shot, url])
                h.check(os.path.getsize(shot) > 5000, "screenshot %s" % shot)
                dom = run_chromium(s, flags + ["--dump-dom", url])
                m = re.search(r'<pre id="result">(.*?)</pre>', dom, re.S)
                h.check(m is not None, "no measurement in %s" % dom[-3000:])
                r = json.loads(m.group(1).replace("&quot;", '"')
                               .replace("&amp;", "&").replace("&lt;", "<")
                               .replace("&gt;", ">"))
                what = "%s %dx%d" % (mode, w, ht)
                with open(os.path.join(out, "status-%s-%dx%d.json" %
                                       (mode, w, ht)), "w") as f:
                    json.dump(r, f, indent=1)
                h.eq(r["width"], w, what + " layout width")
                h.eq(r["comps"], 2, what + " components")
                h.eq(r["bars"], 90 * r["comps"], what + " day bars")
                h.eq(r["unfocusable"], 0, what + " bars reachable by tab/tap")
                for label in r["labels"]:
                    h.check(DAY_LABEL.match(label or ""),
                            "%s: day label %r" % (what, label))
                h.check(r["charts"] >= 1 and r["chartsVisible"] >= 1,
                        "%s: charts %d (visible %d)" %
                        (what, r["charts"], r["chartsVisible"]))
                # The failing one is down: no chart, "not responding".
                h.eq(r["downCharts"], 0, what + " charts of a down one")
                h.contains(r["downRt"], "not responding")
                h.check(r["scrollWidth"] <= r["width"],
                        "%s: horizontal overflow %d > %d" %
                        (what, r["scrollWidth"], r["width"]))
                h.eq(r["dark"], mode == "dark", what + " color scheme")
                bg = [int(x) for x in re.findall(r"\d+", r["bodyBg"])[:3]]
                h.check((sum(bg) < 150) == (mode == "dark"),
                        "%s: body background %s" % (what, r["bodyBg"]))
                h.check(r["minContrast"] >= 4.5,
                        "%s: text below WCAG AA: %s" %
                        (what, r["lowContrast"][:10]))
                h.contains(r["banner"], "Outage")
                # Public API's bar of today: green in both schemes.
                tb = [int(x) for x in re.findall(r"\d+", r["todayBg"])[:3]]
                h.check(len(tb) == 3 and tb[1] > tb[0] + 60 and
                        tb[1] > tb[2] + 60,
                        "%s: today's bar %s" % (what, r["todayBg"]))
    finally:
        srv.close()


def test_statuspage_widget_embed(s):
    npm = shutil.which("npm")
    if npm is None:
        raise h.Skip("npm missing: the embed test needs "
                     "@statuspage/status-widget from npm")
    p = scene(s)
    mods = os.path.join(os.path.dirname(os.path.abspath(h.ARGS.bin)),
                        "test-artifacts", "npm")
    widget = os.path.join(mods, "node_modules", "@statuspage",
                          "status-widget", "dist", "index.js")
    if not os.path.exists(widget):
        os.makedirs(mods, exist_ok=True)
        r = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", mods,
             "@statuspage/status-widget@1"], capture_output=True,
            timeout=180)
        if r.returncode != 0 or not os.path.exists(widget):
            raise h.Skip("npm install @statuspage/status-widget failed "
                         "(registry unreachable?): %s" %
                         r.stderr.decode("utf-8", "replace")[-500:])
    site = s.path("embed")
    os.makedirs(site)
    shutil.copy(widget, os.path.join(site, "status-widget.js"))
    status_url = "http://%s" % p.http_addr
    with open(os.path.join(site, "index.html"), "w") as f:
        f.write("""<!DOCTYPE html><html><head><title>Product</title></head>
<body><h1>Our product</h1>
<statuspage-widget src="%s"></statuspage-widget>
<script src="status-widget.js"></script>
<script>
// The widget renders into its shadow root once its fetch of
// summary.json answers; copy what it shows where --dump-dom sees it.
var tries = 0;
var t = setInterval(function () {
  var w = document.querySelector('statuspage-widget');
  var root = w && (w.shadowRoot || w);
  var text = root ? root.textContent.trim() : '';
  if (text || ++tries > 250) {
    clearInterval(t);
    var pre = document.createElement('pre');
    pre.id = 'widget';
    pre.textContent = text || '(empty)';
    document.body.appendChild(pre);
  }
}, 100);
</script></body></html>""" % status_url)
    # Another origin: "localhost" and another port.
    srv = Static(site, host="127.0.0.1")
    try:
        desc = json.loads(p.http_get("/api/v2/status.json")[1])[
            "status"]["description"]
        dom = run_chromium(s, [
            "--virtual-time-budget=30000", "--window-size=800,600",
            "--dump-dom", "http://localhost:%d/index.html" % srv.port])
        m = re.search(r'<pre id="widget">(.*?)</pre>', dom, re.S)
        h.check(m is not None, "widget probe did not run: %s" % dom[-2000:])
        with open(os.path.join(artefact_dir(), "widget.txt"), "w") as f:
            f.write(m.group(1))
        h.contains(m.group(1), desc)
    finally:
        srv.close()


if __name__ == "__main__":
    h.main()

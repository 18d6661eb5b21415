"""The suite is deployable as shipped: `cmake --install` lays out every
executable and documented file, each executable answers --version and
one --help usage block, and the deployment files pass the validators
this machine has (promtool, kubectl kustomize, systemd-analyze, a YAML
parser); a validator that is not installed skips its test."""

import json
import os
import re
import shutil
import subprocess
import tempfile

import harness as h

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPLOY = os.path.join(ROOT, "deploy")
SERVICES = ["bus-relay", "ticket-service", "incident-service",
            "health-prober", "status-publisher", "telegram-gateway"]
EXECUTABLES = SERVICES + ["opsctl"]
# What `cmake --install` must lay out besides bin/ (docs/operations.md,
# "Deploying", and the systemd unit's Documentation= rely on these).
INSTALLED_FILES = [
    "share/doc/opsdesk/README.md",
    "share/doc/opsdesk/operations.md",
    "share/doc/opsdesk/interfaces.md",
    "share/doc/opsdesk/hacking.md",
    "share/opsdesk/opsdesk.example.json",
    "share/opsdesk/systemd/opsdesk@.service",
    "share/opsdesk/systemd/opsdesk.target",
    "share/opsdesk/systemd/opsdesk.sysusers.conf",
    "share/opsdesk/systemd/opsdesk@health-prober.service.d/reload.conf",
    "share/opsdesk/systemd/opsdesk@telegram-gateway.service.d/token.conf",
    "share/opsdesk/prometheus/prometheus.yml",
    "share/opsdesk/prometheus/opsdesk.rules.yml",
    "share/opsdesk/grafana/opsdesk.json",
]


def _run(argv, timeout=60, **kw):
    return subprocess.run(argv, capture_output=True, text=True,
                          timeout=timeout, **kw)


def test_install_lays_out_every_executable_and_documented_file():
    cmake = shutil.which("cmake")
    if cmake is None:
        raise h.Skip("cmake not installed")
    build = os.path.dirname(h.exe_path("opsctl"))
    build = os.path.dirname(build)
    h.check(os.path.exists(os.path.join(build, "cmake_install.cmake")),
            "%s is not a CMake build tree" % build)
    prefix = tempfile.mkdtemp(prefix="opsdesk-install-")
    try:
        r = _run([cmake, "--install", build, "--prefix", prefix],
                 timeout=120)
        h.eq(r.returncode, 0, r.stdout + r.stderr)
        for exe in EXECUTABLES:
            path = os.path.join(prefix, "bin", exe)
            h.check(os.access(path, os.X_OK), "%s not installed" % path)
            v = _run([path, "--version"], timeout=20)
            h.eq(v.returncode, 0, "%s --version: %s" % (exe, v.stderr))
            h.check(re.fullmatch(r"%s \d+\.\d+\.\d+\n" % re.escape(exe),
                                 v.stdout),
                    "%s --version printed %r" % (exe, v.stdout))
        for f in INSTALLED_FILES:
            h.check(os.path.isfile(os.path.join(prefix, f)),
                    "%s not installed" % f)
        # The unit's Documentation= names a file that the install has.
        with open(os.path.join(DEPLOY, "systemd", "opsdesk@.service")) as f:
            doc = re.search(r"^Documentation=file:///opt/opsdesk/(\S+)$",
                            f.read(), re.M)
        h.check(doc, "opsdesk@.service: no Documentation=file:///opt/opsdesk/")
        h.check(os.path.isfile(os.path.join(prefix, doc.group(1))),
                "Documentation= names %s, which is not installed" %
                doc.group(1))
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


def test_help_is_one_usage_block():
    for exe in EXECUTABLES:
        r = _run([h.exe_path(exe), "--help"], timeout=20)
        h.eq(r.returncode, 0, "%s --help: %s" % (exe, r.stderr))
        h.eq(r.stdout.count("Usage:"), 1,
             "%s --help: Usage: lines in %r" % (exe, r.stdout))
        h.check(r.stdout.startswith("Usage: %s " % exe),
                "%s --help starts with %r" % (exe, r.stdout[:60]))


def test_example_config_is_valid_json_and_k8s_copy_matches():
    with open(os.path.join(DEPLOY, "opsdesk.example.json")) as f:
        example = json.load(f)
    with open(os.path.join(DEPLOY, "k8s", "opsdesk.json")) as f:
        k8s = json.load(f)
    h.eq(k8s, example, "deploy/k8s/opsdesk.json must equal the example")
    for key in ("admins", "tickets", "faq", "incidents", "checklists",
                "targets", "status_page", "gateway"):
        h.check(key in example, "example config lacks %s" % key)


def test_kustomize_renders():
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise h.Skip("kubectl not installed")
    out = subprocess.run([kubectl, "kustomize", os.path.join(DEPLOY, "k8s")],
                         capture_output=True, text=True, timeout=60)
    h.eq(out.returncode, 0, out.stderr)
    kinds = re.findall(r"^kind: (\w+)$", out.stdout, re.M)
    h.eq(kinds.count("StatefulSet"), 3, "stateful stores")
    h.eq(kinds.count("Deployment"), 3, "stateless services")
    h.eq(kinds.count("Service"), 6, "services")
    h.check("ConfigMap" in kinds and "Secret" in kinds)
    for svc in SERVICES:
        h.contains(out.stdout, "name: %s\n" % svc)
    h.contains(out.stdout, "path: /readyz")
    h.contains(out.stdout, "path: /healthz")


def test_compose_parses():
    try:
        import yaml
    except ImportError:
        raise h.Skip("python3-yaml not installed")
    with open(os.path.join(DEPLOY, "compose.yaml")) as f:
        doc = yaml.safe_load(f)
    services = doc["services"]
    h.eq(sorted(services), sorted(SERVICES))
    for name, svc in services.items():
        h.eq(svc["command"], [name])
        h.contains(" ".join(svc["healthcheck"]["test"]), "/healthz")
        env = svc["environment"]
        h.eq(env["OPSDESK_BUS_SUBSCRIBE"],
             "tcp://0.0.0.0:7401" if name == "bus-relay"
             else "tcp://bus-relay:7401")
    for name in ("ticket-service", "incident-service", "health-prober",
                 "status-publisher", "telegram-gateway"):
        h.check(services[name].get("volumes"), "%s needs a volume" % name)


def test_systemd_units_verify():
    sa = shutil.which("systemd-analyze")
    if sa is None:
        raise h.Skip("systemd-analyze not installed")
    tmp = tempfile.mkdtemp(prefix="opsdesk-units-")
    try:
        src = os.path.join(DEPLOY, "systemd")
        with open(os.path.join(src, "opsdesk@.service")) as f:
            unit = f.read()
        h.contains(unit, "ProtectSystem=strict")
        h.contains(unit, "NoNewPrivileges=yes")
        h.contains(unit, "StateDirectory=opsdesk")
        h.contains(unit, "User=opsdesk")
        # verify wants the binary to exist: point at the built one.
        for svc in SERVICES:
            exe = h.exe_path(svc)
            if not os.path.exists(exe):
                exe = "/bin/true"
            with open(os.path.join(tmp, "opsdesk@%s.service" % svc), "w") as f:
                f.write(unit.replace("/opt/opsdesk/bin/%i", exe))
        shutil.copy(os.path.join(src, "opsdesk.target"), tmp)
        for d in os.listdir(src):
            if d.endswith(".service.d"):
                shutil.copytree(os.path.join(src, d), os.path.join(tmp, d))
        # Only the prober handles SIGHUP (a reload); for the others it
        # would be fatal, so the template must not have ExecReload.
        h.check("ExecReload" not in unit, "ExecReload in the template")
        with open(os.path.join(src, "opsdesk@health-prober.service.d",
                               "reload.conf")) as f:
            h.contains(f.read(), "ExecReload=/bin/kill -HUP $MAINPID")
        units = [os.path.join(tmp, "opsdesk@%s.service" % s) for s in SERVICES]
        units.append(os.path.join(tmp, "opsdesk.target"))
        out = subprocess.run([sa, "verify", "--man=no"] + units,
                             capture_output=True, text=True, timeout=60)
        h.eq(out.returncode, 0, out.stderr)
        bad = [l for l in out.stderr.splitlines()
               if l.strip() and "is dropped" not in l]
        h.eq(bad, [], "systemd-analyze complaints")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _code_metric_names():
    """Every metric name the C code registers or renders."""
    names = set()
    pat = re.compile(r'"((?:opsdesk|process)_[a-z0-9_]+)[ "{]')
    for top in ("common", "services"):
        for d, _, files in os.walk(os.path.join(ROOT, top)):
            for fn in files:
                if fn.endswith(".c") and not fn.endswith("_test.c"):
                    with open(os.path.join(d, fn)) as f:
                        names.update(pat.findall(f.read()))
    return names


def _expr_metric_names(expr):
    """Metric names used in a PromQL expression (our prefixes only)."""
    names = set()
    for n in re.findall(r"\b((?:opsdesk|process)_[a-z0-9_]+)", expr):
        for suffix in ("_bucket", "_sum", "_count"):
            if n.endswith(suffix):
                n = n[:-len(suffix)]
        names.add(n)
    return names


def _anchors(md_path):
    """GitHub-style anchors of a Markdown file's headings."""
    out = set()
    with open(md_path) as f:
        for line in f:
            m = re.match(r"^#+\s+(.*?)\s*$", line)
            if m:
                a = re.sub(r"[^\w\- ]", "", m.group(1).lower())
                out.add(a.replace(" ", "-"))
    return out


def test_prometheus_rules_and_scrape_config():
    try:
        import yaml
    except ImportError:
        raise h.Skip("python3-yaml not installed")
    prom = os.path.join(DEPLOY, "prometheus")
    with open(os.path.join(prom, "opsdesk.rules.yml")) as f:
        rules = yaml.safe_load(f)
    anchors = _anchors(os.path.join(ROOT, "docs", "operations.md"))
    known = _code_metric_names()
    n = 0
    for group in rules["groups"]:
        for rule in group["rules"]:
            n += 1
            name = rule["alert"]
            h.check(rule["labels"]["severity"] in ("page", "ticket"),
                    "%s: severity" % name)
            ann = rule["annotations"]
            h.check(ann.get("summary") and ann.get("description"),
                    "%s: summary and description" % name)
            url = ann["runbook_url"]
            h.check(url.startswith("docs/operations.md#"), url)
            h.check(url.split("#", 1)[1] in anchors,
                    "%s: runbook %s has no heading in operations.md" %
                    (name, url))
            for m in _expr_metric_names(rule["expr"]):
                h.check(m in known, "%s: %s is not a metric of the code" %
                        (name, m))
    h.check(n >= 5, "only %d rules" % n)
    with open(os.path.join(ROOT, "docs", "operations.md")) as f:
        ops = f.read()
    h.contains(ops, "deploy/prometheus/opsdesk.rules.yml")
    h.check("- alert:" not in ops,
            "alert rules belong in deploy/prometheus, not operations.md")
    promtool = shutil.which("promtool")
    if promtool is None:
        raise h.Skip("promtool not installed (Debian: prometheus)")
    for argv in (["check", "rules", "opsdesk.rules.yml"],
                 ["check", "config", "prometheus.yml"],
                 ["test", "rules", "opsdesk.rules.test.yml"]):
        r = _run([promtool] + argv, cwd=prom)
        h.eq(r.returncode, 0, "promtool %s: %s%s" %
             (" ".join(argv), r.stdout, r.stderr))


def test_grafana_dashboard_uses_the_suites_metrics():
    with open(os.path.join(DEPLOY, "grafana", "opsdesk.json")) as f:
        dash = json.load(f)
    h.eq(dash["uid"], "opsdesk")
    known = _code_metric_names()
    used = set()
    for p in dash["panels"]:
        for t in p.get("targets", []):
            used |= _expr_metric_names(t["expr"])
    missing = sorted(m for m in used if m not in known)
    h.eq(missing, [], "dashboard metrics the code does not export")
    for want in ("opsdesk_rpc_requests_total",
                 "opsdesk_rpc_duration_seconds",
                 "opsdesk_gateway_outbox_depth", "opsdesk_probes_total",
                 "opsdesk_probe_state", "opsdesk_bus_resyncs_total",
                 "process_cpu_seconds_total"):
        h.check(want in used, "dashboard lacks %s" % want)


def test_counters_end_in_total():
    """Every counter the code registers is named ..._total."""
    pat = re.compile(r'metrics_counter\([^,]+,\s*"([a-z0-9_]+)"', re.S)
    bad = []
    for top in ("common", "services"):
        for d, _, files in os.walk(os.path.join(ROOT, top)):
            for fn in files:
                if fn.endswith(".c") and not fn.endswith("_test.c"):
                    with open(os.path.join(d, fn)) as f:
                        text = f.read()
                    bad += [n for n in pat.findall(text)
                            if not n.endswith("_total")]
                    bad += [n for n in re.findall(
                        r"# TYPE ([a-z0-9_]+) counter", text)
                        if not n.endswith("_total")]
    h.eq(bad, [], "counters without _total")


if __name__ == "__main__":
    h.main()

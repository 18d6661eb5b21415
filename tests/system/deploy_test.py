"""The suite is deployable as shipped: `cmake --install` lays out every
executable and documented file, each executable answers --version and
one --help usage block, and the deployment files pass the validators
this machine has (promtool, kubectl kustomize, systemd-analyze, a YAML
parser); a validator that is not installed skips its test."""

import json
import os
import re
import resource
import shutil
import subprocess
import tempfile
import time

import harness as h

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPLOY = os.path.join(ROOT, "deploy")
SERVICES = ["bus-relay", "ticket-service", "incident-service",
            "health-prober", "status-publisher", "telegram-gateway"]
EXECUTABLES = SERVICES + ["opsctl"]
# Who may reach each component's rpc/bus ports: the authorization table of
# docs/operations.md ("Trust boundary"); deploy/k8s/base/networkpolicy.yaml
# admits exactly these (opsctl: an operator pod with that name label).
RPC_PEERS = {
    "bus-relay": {"ticket-service", "incident-service", "health-prober",
                  "status-publisher", "telegram-gateway", "opsctl"},
    "ticket-service": {"telegram-gateway", "incident-service",
                       "health-prober", "opsctl"},
    "incident-service": {"telegram-gateway", "ticket-service",
                         "health-prober", "status-publisher", "opsctl"},
    "health-prober": {"telegram-gateway", "incident-service",
                      "status-publisher", "opsctl"},
    "status-publisher": {"telegram-gateway", "health-prober", "opsctl"},
}
# What opsdesk-tls-split gives each identity: whose .secret it verifies
# (the relay: every publisher; a service: its rpc callers).
VERIFIES = dict(RPC_PEERS, **{"telegram-gateway": set(), "opsctl": set()})
# A plain tcp:// URL that is not loopback: refused since issue 13.
PLAIN_NONLOCAL = re.compile(
    r"(?<![+\w])tcp://(?!127\.|localhost[:/]|\[::1\])[^\s\"']+")
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
    "share/opsdesk/systemd/opsdesk@telegram-gateway.service.d/token.conf",
    "share/opsdesk/prometheus/prometheus.yml",
    "share/opsdesk/prometheus/opsdesk.rules.yml",
    "share/opsdesk/grafana/opsdesk.json",
]


def _run(argv, timeout=60, **kw):
    return subprocess.run(argv, capture_output=True, text=True,
                          timeout=timeout, **kw)


def wait_all_green(summary, timeout):
    """Wait until summary() -> (summary.json, {component: status}) shows
    at least six components, all operational, and no incident."""
    def all_green():
        got = summary()
        if got is None:
            return False
        doc, comps = got
        return (len(comps) >= 6 and
                all(v == "operational" for v in comps.values()) and
                doc["status"]["indicator"] == "none" and
                not doc["incidents"])
    try:
        h.wait_until(all_green, timeout=timeout,
                     msg="every component operational")
    except h.Failure:
        raise h.Failure("status page not green: %r" % (summary(),))

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


def _version():
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        return re.search(r"^project\(opsdesk VERSION ([0-9.]+)", f.read(),
                         re.M).group(1)


def _loopback_targets(config):
    """Targets of a suite config that point at this host."""
    bad = []
    for t in config["targets"]:
        where = " ".join(str(t.get(k, "")) for k in ("url", "host"))
        if t.get("kind") == "service" and not t.get("url"):
            bad.append(t["id"] + " (service without url: the prober's "
                       "own listen address)")
        elif re.search(r"127\.0\.0\.1|localhost|0\.0\.0\.0|\[::1?\]", where):
            bad.append("%s (%s)" % (t["id"], where.strip()))
    return bad


def test_example_configs_are_valid_json():
    for name in ("opsdesk.example.json", "opsdesk.local.json",
                 "opsdesk.container.json"):
        with open(os.path.join(DEPLOY, name)) as f:
            config = json.load(f)
        for key in ("tickets", "faq", "incidents", "checklists", "targets",
                    "status_page", "gateway"):
            h.check(key in config, "%s lacks %s" % (name, key))


def test_container_config_probes_by_service_name():
    with open(os.path.join(DEPLOY, "opsdesk.container.json")) as f:
        container = json.load(f)
    h.eq(_loopback_targets(container), [], "loopback targets")
    # Every process of the suite is probed, by its service name.
    urls = " ".join(t.get("url", "") for t in container["targets"])
    for svc in SERVICES:
        h.contains(urls, "//%s:" % svc)
    # The Kubernetes copy differs only in the public URL placeholder.
    with open(os.path.join(DEPLOY, "k8s", "base", "opsdesk.json")) as f:
        k8s = json.load(f)
    h.eq(k8s["status_page"]["url"], "https://REPLACE-ME")
    k8s["status_page"]["url"] = container["status_page"]["url"]
    h.eq(k8s, container, "deploy/k8s/base/opsdesk.json must be "
         "deploy/opsdesk.container.json with a placeholder url")


def test_loopback_check_catches_loopback():
    """The check above fails on the configs made for one host."""
    with open(os.path.join(DEPLOY, "opsdesk.local.json")) as f:
        bad = _loopback_targets(json.load(f))
    h.check(any(b.startswith("bus_relay") for b in bad), bad)
    h.check(any(b.startswith("ticket_service") for b in bad), bad)


def test_one_image_tag_everywhere():
    tag = "opsdesk:" + _version()
    with open(os.path.join(DEPLOY, "compose.yaml")) as f:
        compose = f.read()
    h.eq(sorted(set(re.findall(r"image: (\S+)", compose))), [tag])
    with open(os.path.join(DEPLOY, "k8s", "base", "kustomization.yaml")) as f:
        kust = f.read()
    h.contains(kust, "newTag: %s " % _version())
    with open(os.path.join(DEPLOY, "Dockerfile")) as f:
        h.contains(f.read(), tag)
    r = _run([os.path.join(ROOT, "scripts", "version.sh")])
    h.eq(r.stdout, _version() + "\n")
    # No other spelling of the image anywhere in the docs and deploy files.
    for d in (DEPLOY, os.path.join(ROOT, "docs"), ROOT):
        for dirpath, _, files in os.walk(d):
            if "/build" in dirpath or "/.git" in dirpath:
                continue
            for fn in files:
                if not fn.endswith((".md", ".yaml", ".yml", "Dockerfile")):
                    continue
                with open(os.path.join(dirpath, fn)) as f:
                    for m in re.findall(r"\bopsdesk:(latest|[0-9][0-9.]*[0-9])\b",
                                        f.read()):
                        h.eq("opsdesk:" + m, tag, os.path.join(dirpath, fn))
            if d == ROOT:
                break


def _render(overlay):
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise h.Skip("kubectl not installed (not a Debian package; "
                     "kustomize rendering is checked where it is)")
    import yaml
    r = _run([kubectl, "kustomize", os.path.join(DEPLOY, "k8s", "overlays",
                                                 overlay)])
    h.eq(r.returncode, 0, r.stderr)
    return r.stdout, [d for d in yaml.safe_load_all(r.stdout) if d]


def _pods(docs):
    for d in docs:
        if d["kind"] in ("StatefulSet", "Deployment", "Job", "DaemonSet"):
            yield d, d["spec"]["template"]


def _check_rendered(overlay):
    text, docs = _render(overlay)
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    ns = next(iter(by_kind["Namespace"]))
    # Stores on volume claims; the relay alone is stateless.
    h.eq(sorted(by_kind["StatefulSet"]), sorted(s for s in SERVICES
                                               if s != "bus-relay"))
    h.eq(sorted(by_kind["Deployment"]), ["bus-relay"])
    h.eq(by_kind["Deployment"]["bus-relay"]["spec"]["strategy"]["type"],
         "Recreate")
    for name, sts in by_kind["StatefulSet"].items():
        claims = [c["metadata"]["name"]
                  for c in sts["spec"].get("volumeClaimTemplates", [])]
        h.eq(claims, ["data"], name)
        vols = [v["name"] for v in sts["spec"]["template"]["spec"]["volumes"]]
        h.check("data" not in vols, "%s: data must be the claim" % name)
        h.eq(sts["spec"]["serviceName"], name)
    env = {e["name"]: e.get("value")
           for e in by_kind["StatefulSet"]["health-prober"]["spec"]
           ["template"]["spec"]["containers"][0]["env"]}
    h.eq(env.get("OPSDESK_PROBER_SHARDS"),
         str(by_kind["StatefulSet"]["health-prober"]["spec"]["replicas"]),
         "shards = prober replicas")
    configmaps = set(by_kind["ConfigMap"])
    secrets = set(by_kind["Secret"])
    services = by_kind["Service"]
    h.eq(sorted(services), sorted(SERVICES))
    pdbs = by_kind["PodDisruptionBudget"]
    tag = "opsdesk:" + _version()
    for w, tmpl in _pods(docs):
        name = w["metadata"]["name"]
        h.eq(tmpl["metadata"]["labels"]["app.kubernetes.io/part-of"],
             "opsdesk", name)
        for k, v in w["spec"]["selector"]["matchLabels"].items():
            h.eq(tmpl["metadata"]["labels"].get(k), v, name + " selector")
        spec = tmpl["spec"]
        psc = spec["securityContext"]
        h.eq(psc["seccompProfile"]["type"], "RuntimeDefault", name)
        h.eq(psc["runAsNonRoot"], True, name)
        h.eq(spec.get("automountServiceAccountToken"), False, name)
        for c in spec.get("initContainers", []) + spec["containers"]:
            sc = c["securityContext"]
            h.eq(sc["allowPrivilegeEscalation"], False, c["name"])
            h.eq(sc["readOnlyRootFilesystem"], True, c["name"])
            h.eq(sc["capabilities"]["drop"], ["ALL"], c["name"])
            h.check("add" not in sc["capabilities"], c["name"])
            h.eq(c["image"], tag, c["name"])
            h.check(c["resources"]["limits"]["memory"], c["name"])
            for ef in c.get("envFrom", []):
                h.check(ef["configMapRef"]["name"] in configmaps, ef)
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    h.check(ref["name"] in secrets, ref)
            ports = {p["name"] for p in c.get("ports", [])}
            for probe in ("livenessProbe", "readinessProbe"):
                if probe in c:
                    h.check(c[probe]["httpGet"]["port"] in ports,
                            "%s %s port" % (c["name"], probe))
        for v in spec["volumes"]:
            if "configMap" in v:
                h.check(v["configMap"]["name"] in configmaps, v)
            if "secret" in v and v["name"] == "tls":
                # Made by the documented one-time step, not rendered.
                h.eq(v["secret"]["secretName"], "opsdesk-tls-" + name)
            elif "secret" in v:
                h.check(v["secret"]["secretName"] in secrets, v)
        h.check(name in services, "%s has no Service" % name)
        svc = services[name]
        cports = {p["name"] for c in spec["containers"]
                  for p in c.get("ports", [])}
        for p in svc["spec"]["ports"]:
            h.check(p["targetPort"] in cports, "%s: %r" % (name, p))
        h.check(name in pdbs, "%s has no PodDisruptionBudget" % name)
        h.eq(pdbs[name]["spec"]["selector"]["matchLabels"],
             w["spec"]["selector"]["matchLabels"])
    # The gateway registers or deletes its webhook before it starts.
    gw = by_kind["StatefulSet"]["telegram-gateway"]["spec"]["template"]
    h.eq([c["command"] for c in gw["spec"]["initContainers"]],
         [["opsdesk-telegram-webhook"]])
    # The config the pods get probes the suite by service name.
    cfg = next(v for k, v in by_kind["ConfigMap"].items()
               if k.startswith("opsdesk-config"))
    config = json.loads(cfg["data"]["opsdesk.json"])
    h.eq(_loopback_targets(config), [], "loopback targets in %s" % overlay)
    h.check("127.0.0.1" not in text, "127.0.0.1 in the %s render" % overlay)
    settings = next(v for k, v in by_kind["ConfigMap"].items()
                    if k.startswith("opsdesk-settings"))["data"]
    # The Ingress serves the status page and the webhook path.
    ing = by_kind["Ingress"]["opsdesk"]["spec"]
    h.eq(ing["rules"][0]["host"], settings["OPSDESK_PUBLIC_HOST"])
    paths = {p["path"]: p["backend"]["service"]["name"]
             for p in ing["rules"][0]["http"]["paths"]}
    h.eq(paths, {config["gateway"]["webhook_path"]: "telegram-gateway",
                 "/": "status-publisher"})
    h.eq(settings["OPSDESK_WEBHOOK_PATH"], config["gateway"]["webhook_path"])
    # The webhook path goes to the gateway's own listener (time-outs, a
    # connection cap): the Service's port "webhook", the container's port
    # of that name, the port of gateway.webhook_listen.
    hook = next(p["backend"]["service"]["port"]["name"]
                for p in ing["rules"][0]["http"]["paths"]
                if p["path"] == config["gateway"]["webhook_path"])
    h.eq(hook, "webhook")
    gw_ports = {p["name"]: p["containerPort"]
                for p in gw["spec"]["containers"][0]["ports"]}
    h.eq(str(gw_ports["webhook"]),
         config["gateway"]["webhook_listen"].rsplit(":", 1)[1])
    h.check({"default-deny-ingress", "allow-public", "allow-webhook",
             "allow-metrics", "allow-prober-http"}
            <= set(by_kind["NetworkPolicy"]))
    _check_tls(text, docs, by_kind)
    h.eq(by_kind["Namespace"][ns]["metadata"]["labels"]
         ["pod-security.kubernetes.io/enforce"], "restricted")
    for d in docs:
        if d["kind"] != "Namespace":
            h.eq(d["metadata"].get("namespace"), ns,
                 "%s %s" % (d["kind"], d["metadata"]["name"]))
    return by_kind, settings


def _check_tls(text, docs, by_kind):
    """TLS on in a render: no plain non-loopback URL, every workload loads
    its own credentials, and each NetworkPolicy admits only the table's
    peers on rpc/bus ports."""
    h.eq(PLAIN_NONLOCAL.findall(text), [], "plain tcp:// in the render")
    h.check("tls+tcp://" in text, "no tls+tcp:// URL in the render")
    for w, tmpl in _pods(docs):
        name = w["metadata"]["name"]
        c = tmpl["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        tls_dir = env.get("OPSDESK_TLS_DIR")
        h.check(tls_dir, "%s sets no OPSDESK_TLS_DIR" % name)
        mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
        h.eq(mounts.get(tls_dir), "tls", "%s mounts its credentials" % name)
        for k, v in env.items():
            if k.startswith("OPSDESK_") and k.endswith(
                    ("_URL", "_PUBLISH", "_SUBSCRIBE")):
                h.check(v.startswith("tls+tcp://"), "%s %s=%s" %
                        (name, k, v))
    admitted = {}
    # Open to anyone (the Ingress controller): the status page's http and
    # the gateway's webhook listener; never the gateway's /metrics port.
    public = {"http": {"status-publisher"}, "webhook": {"telegram-gateway"}}
    for pname, pol in by_kind["NetworkPolicy"].items():
        spec = pol["spec"]
        sel = spec["podSelector"]
        targets = set(SERVICES) if not sel else (
            {sel["matchLabels"]["app.kubernetes.io/name"]}
            if "matchLabels" in sel and
            "app.kubernetes.io/name" in sel["matchLabels"] else
            set(sel["matchExpressions"][0]["values"])
            if "matchExpressions" in sel else set(SERVICES))
        for rule in spec.get("ingress", []):
            ports = {p["port"] for p in rule.get("ports", [])}
            h.check(ports, "%s: a rule without ports admits all" % pname)
            if ports == {"http"} or ports == {"webhook"}:
                # Public, monitoring or the prober's http probes.
                port = next(iter(ports))
                if not rule.get("from"):
                    h.eq(targets, public[port], pname + " public " + port)
                elif port == "webhook":
                    h.check(False, pname + ": the webhook is public")
                continue
            froms = rule.get("from", [])
            h.check(froms, "%s opens rpc ports to everyone" % pname)
            peers = set()
            for f in froms:
                h.check("namespaceSelector" not in f, pname)
                ps = f["podSelector"]
                if "matchLabels" in ps:
                    peers |= {ps["matchLabels"]["app.kubernetes.io/name"]}
                else:
                    e = ps["matchExpressions"][0]
                    h.eq((e["key"], e["operator"]),
                         ("app.kubernetes.io/name", "In"))
                    peers |= set(e["values"])
            for t in targets:
                admitted.setdefault(t, set()).update(peers)
    h.eq(admitted, RPC_PEERS, "rpc/bus peers admitted by the policies")


def test_kustomize_production():
    by_kind, settings = _check_rendered("production")
    h.eq(settings["OPSDESK_GATEWAY_MODE"], "webhook")
    h.check("tls" in by_kind["Ingress"]["opsdesk"]["spec"])
    # Placeholders that must be edited are there, loudly.
    h.eq(settings["OPSDESK_ADMINS"], "REPLACE-ME")
    h.eq(by_kind["Secret"]["opsdesk-telegram"]["stringData"]["bot-token"],
         "REPLACE-ME")
    # The optional monitoring component: the rules file, unchanged.
    import yaml
    with open(os.path.join(DEPLOY, "prometheus", "opsdesk.rules.yml")) as f:
        rules = yaml.safe_load(f)
    h.eq(by_kind["PrometheusRule"]["opsdesk"]["spec"], rules,
         "components/monitoring/prometheusrule.yaml vs "
         "deploy/prometheus/opsdesk.rules.yml")
    sm = by_kind["ServiceMonitor"]["opsdesk"]["spec"]
    h.eq(sm["endpoints"][0]["port"], "http")


def test_kustomize_dev():
    by_kind, settings = _check_rendered("dev")
    h.eq(settings["OPSDESK_GATEWAY_MODE"], "poll")
    h.check("PrometheusRule" not in by_kind, "monitoring is optional")


def test_compose_locations_parses():
    """compose.locations.yaml on top of compose.yaml: the prober becomes
    the decider, three located probers with their own stores, TLS on."""
    try:
        import yaml
    except ImportError:
        raise h.Skip("python3-yaml not installed")
    with open(os.path.join(DEPLOY, "compose.locations.yaml")) as f:
        text = f.read()
    h.eq(PLAIN_NONLOCAL.findall(text), [], "plain tcp:// URLs")
    services = yaml.safe_load(text)["services"]
    h.eq(services["health-prober"]["environment"],
         {"OPSDESK_PROBER_ROLE": "decider"})
    stores = set()
    for loc in ("eu-west", "us-east", "ap-south"):
        svc = services["prober-%s" % loc]
        env = svc["environment"]
        h.eq(env["OPSDESK_PROBER_LOCATION"], loc)
        h.eq(env["OPSDESK_TLS_DIR"], "/etc/opsdesk-tls")
        h.check("tls-health-prober:/etc/opsdesk-tls:ro" in svc["volumes"],
                loc)
        stores |= {v for v in svc["volumes"] if v.endswith(
            ":/var/lib/opsdesk")}
    h.eq(len(stores), 3, "a store per location")


def test_kustomize_locations():
    """components/locations on the dev overlay: the base's prober is the
    decider, one StatefulSet per location probes, and the prober Service
    reaches the decider only."""
    import tempfile
    tmp = tempfile.mkdtemp(prefix="opsdesk-k8s-")
    try:
        with open(os.path.join(tmp, "kustomization.yaml"), "w") as f:
            f.write("resources:\n  - %s\ncomponents:\n  - %s\n" % (
                os.path.relpath(os.path.join(DEPLOY, "k8s", "overlays",
                                             "dev"), tmp),
                os.path.relpath(os.path.join(DEPLOY, "k8s", "components",
                                             "locations"), tmp)))
        _, docs = _render(tmp)
    finally:
        shutil.rmtree(tmp)
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d

    def env(sts):
        c = sts["spec"]["template"]["spec"]["containers"][0]
        return {e["name"]: e.get("value") for e in c.get("env", [])}
    sets = by_kind["StatefulSet"]
    h.eq(env(sets["health-prober"]).get("OPSDESK_PROBER_ROLE"), "decider")
    for loc in ("eu-west", "us-east", "ap-south"):
        sts = sets["health-prober-%s" % loc]
        h.eq(env(sts).get("OPSDESK_PROBER_LOCATION"), loc)
        h.check("OPSDESK_PROBER_ROLE" not in env(sts), loc)
        tmpl = sts["spec"]["template"]
        labels = tmpl["metadata"]["labels"]
        h.check(labels["app.kubernetes.io/name"] != "health-prober",
                "the prober Service must not select %s" % loc)
        for k, v in sts["spec"]["selector"]["matchLabels"].items():
            h.eq(labels.get(k), v, loc + " selector")
        h.eq(tmpl["spec"]["securityContext"]["runAsNonRoot"], True, loc)
        tls = [v for v in tmpl["spec"]["volumes"] if v["name"] == "tls"]
        h.eq(tls[0]["secret"]["secretName"], "opsdesk-tls-health-prober")
    pol = by_kind["NetworkPolicy"]["allow-prober-locations"]["spec"]
    h.eq(pol["ingress"][0]["from"][0]["podSelector"]["matchLabels"],
         {"app.kubernetes.io/name": "health-prober-location"})
    h.eq(by_kind["Service"]["health-prober"]["spec"]["selector"],
         {"app.kubernetes.io/name": "health-prober"})


def test_kubectl_dry_run_when_a_cluster_answers():
    """kubectl apply --dry-run=client needs an API server (it downloads
    the OpenAPI schema for validation), so offline it cannot run; with
    a cluster in the kubeconfig it validates both overlays."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise h.Skip("kubectl not installed")
    if not os.environ.get("KUBECONFIG") and not os.path.exists(
            os.path.expanduser("~/.kube/config")):
        raise h.Skip("no kubeconfig: kubectl apply --dry-run=client "
                     "needs an API server for its schema")
    r = _run([kubectl, "version", "-o", "json", "--request-timeout=5s"])
    if r.returncode != 0 or '"serverVersion"' not in r.stdout:
        raise h.Skip("no API server answers: %s" % r.stderr.strip()[:200])
    for overlay in ("dev", "production"):
        text, _ = _render(overlay)
        r = _run([kubectl, "apply", "--dry-run=client", "-f", "-"],
                 input=text)
        h.eq(r.returncode, 0, "%s: %s" % (overlay, r.stderr))


def test_compose_parses():
    try:
        import yaml
    except ImportError:
        raise h.Skip("python3-yaml not installed")
    with open(os.path.join(DEPLOY, "compose.yaml")) as f:
        doc = yaml.safe_load(f)
    services = doc["services"]
    h.eq(sorted(services), sorted(SERVICES + ["tls-init"]))
    with open(os.path.join(DEPLOY, "compose.yaml")) as f:
        h.eq(PLAIN_NONLOCAL.findall(f.read()), [], "plain tcp:// URLs")
    init = services.pop("tls-init")
    cmd = " ".join(init["command"])
    h.contains(cmd, "opsctl certs init /tls/ca")
    h.contains(cmd, "opsdesk-tls-split /tls/ca /tls")
    h.contains(" ".join(init["volumes"]), "tls-ca:/tls/ca")
    for name, svc in services.items():
        env = svc["environment"]
        h.eq(env["OPSDESK_TLS_DIR"], "/etc/opsdesk-tls", name)
        # Its own credentials only: never the CA volume (ca.key).
        h.check("tls-%s:/etc/opsdesk-tls:ro" % name in svc["volumes"],
                name)
        h.check(not any(v.startswith("tls-ca") for v in svc["volumes"]),
                name)
        h.eq(svc["depends_on"]["tls-init"]["condition"],
             "service_completed_successfully", name)
        for k, v in env.items():
            if k.endswith(("_URL", "_PUBLISH", "_SUBSCRIBE")):
                h.check(v.startswith("tls+tcp://"), "%s %s" % (name, k))
        h.eq(svc["command"], [name])
        h.eq(svc["image"], "opsdesk:" + _version())
        h.eq(svc["healthcheck"]["test"], ["CMD", "opsdesk-healthcheck"])
        h.eq(svc["read_only"], True, name)
        h.eq(svc["cap_drop"], ["ALL"], name)
        env = svc["environment"]
        h.eq(env["OPSDESK_BUS_SUBSCRIBE"],
             "tls+tcp://0.0.0.0:7401" if name == "bus-relay"
             else "tls+tcp://bus-relay:7401")
        h.check(env["OPSDESK_HTTP_ADDR"].startswith("0.0.0.0:"), name)
    for name in SERVICES:
        if name != "bus-relay":
            h.check(services[name].get("volumes"), "%s needs a volume" %
                    name)
    h.eq(doc["configs"]["opsdesk"]["file"], "./opsdesk.container.json")
    # The prober starts once the others are healthy: a first probe of a
    # service not up yet would open an incident on a fresh stack.
    deps = services["health-prober"]["depends_on"]
    h.eq(sorted(deps), sorted(["tls-init"] + [s for s in SERVICES
                                               if s != "health-prober"]))
    for k, d in deps.items():
        if k != "tls-init":
            h.eq(d["condition"], "service_healthy")


def test_compose_webhook_override():
    """deploy/compose.webhook.yaml (opt-in) puts the gateway in webhook
    mode on its own listener: the port of gateway.webhook_listen,
    published on loopback only (for a TLS proxy), the webhook registered
    before the gateway starts."""
    try:
        import yaml
    except ImportError:
        raise h.Skip("python3-yaml not installed")
    with open(os.path.join(DEPLOY, "compose.webhook.yaml")) as f:
        doc = yaml.safe_load(f)
    with open(os.path.join(DEPLOY, "opsdesk.container.json")) as f:
        listen = json.load(f)["gateway"]["webhook_listen"]
    port = listen.rsplit(":", 1)[1]
    h.eq(sorted(doc["services"]), ["telegram-gateway"])
    gw = doc["services"]["telegram-gateway"]
    h.eq(gw["environment"]["OPSDESK_GATEWAY_MODE"], "webhook")
    h.eq(gw["ports"], ["127.0.0.1:%s:%s" % (port, port)])
    cmd = " ".join(gw["entrypoint"])
    h.check(cmd.index("opsdesk-telegram-webhook") <
            cmd.index("exec opsdesk-entrypoint telegram-gateway"), cmd)
    h.eq(sorted(gw["secrets"]),
         ["telegram_bot_token", "telegram_webhook_secret"])


def _fake_bin(tmp):
    """A PATH dir where every executable prints its env and args."""
    os.makedirs(tmp, exist_ok=True)
    for exe in EXECUTABLES:
        with open(os.path.join(tmp, exe), "w") as f:
            f.write("#!/bin/sh\necho \"$0 $*\"; env | grep -E "
                    "'^OPSDESK_' | sort\n")
        os.chmod(os.path.join(tmp, exe), 0o755)
    return tmp


def test_entrypoint_listens_everywhere_and_refuses_placeholders():
    tmp = tempfile.mkdtemp(prefix="opsdesk-entry-")
    try:
        fake = _fake_bin(os.path.join(tmp, "bin"))
        entry = os.path.join(DEPLOY, "container", "entrypoint.sh")
        base = {"PATH": fake + ":/usr/bin:/bin", "HOME": tmp}

        def run(*args, **env):
            e = dict(base)
            e.update(env)
            return _run(["sh", entry] + list(args), env=e)

        # No credentials: a service refuses, saying how to turn TLS on.
        r = run("ticket-service")
        h.eq(r.returncode, 78, r.stdout)
        h.contains(r.stderr, "OPSDESK_TLS_DIR")
        h.contains(r.stderr, "opsctl certs init")
        tls = os.path.join(tmp, "tls")
        os.makedirs(tls)
        r = run("ticket-service", OPSDESK_TLS_DIR=tls)
        h.eq(r.returncode, 78, "a TLS dir without ca.crt")
        h.contains(r.stderr, "ca.crt")
        with open(os.path.join(tls, "ca.crt"), "w") as f:
            f.write("x\n")
        base["OPSDESK_TLS_DIR"] = tls
        r = run("ticket-service")
        h.eq(r.returncode, 0, r.stderr)
        h.contains(r.stdout, "OPSDESK_HTTP_ADDR=0.0.0.0:9410")
        h.contains(r.stdout, "OPSDESK_TICKET_URL=tls+tcp://0.0.0.0:7410")
        r = run("bus-relay")
        h.contains(r.stdout, "OPSDESK_BUS_PUBLISH=tls+tcp://0.0.0.0:7400")
        h.contains(r.stdout,
                   "OPSDESK_BUS_SUBSCRIBE=tls+tcp://0.0.0.0:7401")
        # Plain tcp only when asked for, with a warning.
        r = run("ticket-service", OPSDESK_TLS_DIR="",
                OPSDESK_ALLOW_INSECURE="1")
        h.eq(r.returncode, 0, r.stderr)
        h.contains(r.stdout, "OPSDESK_TICKET_URL=tcp://0.0.0.0:7410")
        h.contains(r.stderr, "warning")
        r = run("ticket-service", OPSDESK_HTTP_ADDR="10.1.2.3:1")
        h.contains(r.stdout, "OPSDESK_HTTP_ADDR=10.1.2.3:1")
        r = run("health-prober", HOSTNAME="health-prober-2",
                OPSDESK_PROBER_SHARDS="3")
        h.eq(r.returncode, 0, r.stderr)
        h.contains(r.stdout, "OPSDESK_PROBER_SHARD=2/3")
        r = run("health-prober", HOSTNAME="prober",
                OPSDESK_PROBER_SHARDS="3")
        h.eq(r.returncode, 78, r.stdout)
        r = run("telegram-gateway", OPSDESK_ADMINS="REPLACE-ME")
        h.eq(r.returncode, 78)
        h.contains(r.stderr, "OPSDESK_ADMINS")
        cfg = os.path.join(tmp, "c.json")
        with open(cfg, "w") as f:
            f.write('{"status_page": {"url": "https://REPLACE-ME"}}\n')
        r = run("status-publisher", OPSDESK_CONFIG=cfg)
        h.eq(r.returncode, 78)
        h.contains(r.stderr, cfg)
        token = os.path.join(tmp, "token")
        with open(token, "w") as f:
            f.write("REPLACE-ME\n")
        r = run("telegram-gateway", TELEGRAM_BOT_TOKEN_FILE=token)
        h.eq(r.returncode, 78)
        h.check("REPLACE-ME" not in r.stdout, "the token must not print")
        # --version and opsctl need no settings.
        r = run("status-publisher", "--version", OPSDESK_CONFIG=cfg)
        h.eq(r.returncode, 0, r.stderr)
        r = run("opsctl", "ping", OPSDESK_ADMINS="REPLACE-ME")
        h.eq(r.returncode, 0, r.stderr)
        h.eq(run().returncode, 64)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _split_credentials(s):
    """opsctl certs init + opsdesk-tls-split as compose's tls-init runs
    them; each identity's directory holds exactly what it needs."""
    ca = s.path("tls", "ca")
    os.makedirs(s.path("tls"))
    r = s.opsctl("certs", "init", ca, "--days", "2")
    h.eq(r.rc, 0, r)
    split = os.path.join(DEPLOY, "container", "tls-split.sh")
    out = s.path("tls")
    r = _run(["sh", split, ca, out])
    h.eq(r.returncode, 0, r.stderr)
    for ident, peers in VERIFIES.items():
        want = {"ca.crt", ident + ".crt", ident + ".key", ident + ".secret"}
        want |= {p + ".secret" for p in peers}
        h.eq(set(os.listdir(os.path.join(out, ident))), want, ident)
        mode = os.stat(os.path.join(out, ident, ident + ".key")).st_mode
        h.eq(mode & 0o077, 0, ident + ".key is private")
    # Running it again (a restart of tls-init) refreshes in place.
    r = _run(["sh", split, ca, out])
    h.eq(r.returncode, 0, r.stderr)
    return out


def test_container_config_runs_with_tls(s):
    """The shipped container config, its addresses moved to free ports
    on this host, with TLS as compose and Kubernetes run it: every
    process loads only its opsdesk-tls-split directory, every rpc/bus URL
    is tls+tcp://, and the suite comes up green on its own status page
    (the prober reaching each service over TLS as itself)."""
    from fake_telegram import FakeTelegram
    with open(os.path.join(DEPLOY, "opsdesk.container.json")) as f:
        config = json.load(f)
    tls = _split_credentials(s)
    s.bus_publish = "tls+" + s.bus_publish
    s.bus_subscribe = "tls+" + s.bus_subscribe
    for k in s.urls:
        s.urls[k] = "tls+" + s.urls[k]
    by_exe = {exe: s.urls[k] for k, (exe, _) in h.SERVICES.items()}
    n_service = 0
    for t in config["targets"]:
        exe = t["id"].replace("_", "-")
        if t["kind"] == "service":
            h.check(t["url"].startswith("tls+tcp://"), t)
            t["url"] = by_exe[exe]
            n_service += 1
        else:
            host = re.match(r"http://([^/]+)", t["url"]).group(1)
            svc = host.split(":")[0]
            t["url"] = t["url"].replace(host, s.http[svc])
    h.eq(n_service, 4)
    config["admins"] = [1]
    s.config = config
    fake = FakeTelegram("123456:TEST-token-s3cr3t", max_poll_wait=1.0)
    try:
        order = ["bus-relay", "ticket-service", "incident-service",
                 "status-publisher", "telegram-gateway", "health-prober"]
        for exe in order:
            env = {"OPSDESK_TLS_DIR": os.path.join(tls, exe)}
            if exe == "telegram-gateway":
                env.update({"TELEGRAM_API_URL": fake.url,
                            "TELEGRAM_BOT_TOKEN": fake.token,
                            "OPSDESK_GATEWAY_MODE": "poll"})
            s.start(exe, env=env)
        # The operator, with its own directory only.
        r = s.opsctl("ping", env={"OPSDESK_TLS_DIR":
                                  os.path.join(tls, "opsctl")})
        h.eq(r.rc, 0, r)
        status = s.proc("status-publisher")

        def summary():
            code, body, _ = status.http_get("/api/v2/summary.json")
            if code != 200:
                return None
            doc = json.loads(body)
            return doc, {c["name"]: c["status"] for c in doc["components"]
                         if not c.get("group")}

        wait_all_green(summary, 60)
        # Nothing was refused on the way: every identity had what it
        # needed and no more was asked of it.
        for p in s.procs:
            for bad in ("PERMISSION_DENIED", "refused a request",
                        "OPSDESK_ALLOW_INSECURE"):
                h.check(bad not in p.log_text(), "%s: %s in %s" %
                        (p.exe, bad, p.log_tail()))
    finally:
        fake.close()


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
        # Every service reloads on SIGHUP (credentials, admin list).
        h.contains(unit, "ExecReload=/bin/kill -HUP $MAINPID")
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
                 "opsdesk_store_commit_seconds",
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


def test_telegram_webhook_step():
    """The gateway's start-up step: setWebhook with the public URL and the
    secret token in webhook mode, deleteWebhook in poll mode; the token
    never printed; a refused call fails the step."""
    if shutil.which("curl") is None:
        raise h.Skip("curl not installed")
    from fake_telegram import FakeTelegram
    fake = FakeTelegram()
    tmp = tempfile.mkdtemp(prefix="opsdesk-webhook-")
    try:
        token = os.path.join(tmp, "token")
        with open(token, "w") as f:
            f.write(fake.token + "\n")
        script = os.path.join(DEPLOY, "container", "telegram-webhook.sh")
        env = {"PATH": "/usr/bin:/bin", "TELEGRAM_API_URL": fake.url,
               "TELEGRAM_BOT_TOKEN_FILE": token,
               "OPSDESK_PUBLIC_HOST": "status.example.org",
               "TELEGRAM_WEBHOOK_SECRET": "s3cret-Token_1",
               "OPSDESK_GATEWAY_MODE": "webhook"}
        r = _run(["sh", script], env=env)
        h.eq(r.returncode, 0, r.stderr)
        call = fake.wait_call("setWebhook")
        h.eq(call.body["url"],
             "https://status.example.org/telegram/webhook")
        h.eq(call.body["secret_token"], "s3cret-Token_1")
        h.eq(json.loads(call.body["allowed_updates"]),
             ["message", "edited_message", "callback_query"])
        h.check(fake.token not in r.stdout + r.stderr, "token printed")
        env["OPSDESK_GATEWAY_MODE"] = "poll"
        r = _run(["sh", script], env=env)
        h.eq(r.returncode, 0, r.stderr)
        fake.wait_call("deleteWebhook")
        # A wrong token: Telegram says 401 and the step fails, quietly.
        with open(token, "w") as f:
            f.write("999:wrong-token-value\n")
        r = _run(["sh", script], env=env)
        h.eq(r.returncode, 1)
        h.contains(r.stderr, "deleteWebhook failed")
        h.check("wrong-token-value" not in r.stdout + r.stderr,
                "token printed")
        # Webhook mode without its settings refuses to guess.
        env["OPSDESK_GATEWAY_MODE"] = "webhook"
        del env["OPSDESK_PUBLIC_HOST"]
        r = _run(["sh", script], env=env)
        h.check(r.returncode != 0, "webhook mode without a host")
    finally:
        fake.close()
        shutil.rmtree(tmp, ignore_errors=True)


# ---- the image, built and run (opt-in: OPSDESK_TEST_IMAGE=1) ----

BASE_IMAGE = "localhost/opsdesk-debian:12"


def _engine():
    """The container engine argv prefix that works here, or None.
    podman on Debian 12 is run with runc (bookworm's crun fails to set up
    cgroups in some VMs); docker when podman is absent."""
    podman = shutil.which("podman")
    if podman:
        argv = [podman]
        if shutil.which("runc"):
            argv.append("--runtime=runc")
        r = _run(argv + ["info", "--format", "{{.Host.OCIRuntime.Name}}"])
        if r.returncode == 0:
            return argv
    docker = shutil.which("docker")
    if docker:
        r = _run([docker, "info", "--format", "{{.ServerVersion}}"])
        if r.returncode == 0:
            return [docker]
    return None


def _apt_mirror():
    """The Debian mirror apt uses here (deb822 or one-line sources)."""
    for path in ("/etc/apt/sources.list.d/debian.sources",
                 "/etc/apt/sources.list"):
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        m = (re.search(r"^URIs:\s*(\S+/debian)\s*$", text, re.M) or
             re.search(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+/debian)\s", text,
                       re.M))
        if m:
            return m.group(1)
    return "http://deb.debian.org/debian"


def _base_image(engine):
    """A Debian 12 base made locally with debootstrap (no registry needed);
    kept between runs under the name BASE_IMAGE."""
    if _run(engine + ["image", "exists", BASE_IMAGE]).returncode == 0:
        return BASE_IMAGE
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise h.Skip("no %s and no debootstrap to make it" % BASE_IMAGE)
    root = tempfile.mkdtemp(prefix="opsdesk-debootstrap-")
    try:
        r = _run([debootstrap, "--variant=minbase", "bookworm", root,
                  _apt_mirror()], timeout=1200)
        h.eq(r.returncode, 0, "debootstrap: " + r.stderr[-2000:])
        shutil.rmtree(os.path.join(root, "var/cache/apt/archives"),
                      ignore_errors=True)
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."],
                               stdout=subprocess.PIPE)
        r = subprocess.run(engine + ["import", "-", BASE_IMAGE],
                           stdin=tar.stdout, capture_output=True,
                           text=True, timeout=600)
        tar.wait()
        h.eq(r.returncode, 0, "import: " + r.stderr)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return BASE_IMAGE


def test_image_runs_the_suite():
    """Build deploy/Dockerfile, run the six services as compose does (one
    network, service names, read-only roots, no capabilities, TLS from a
    tls-init run into one volume per identity), and check
    every /healthz by service name and that the fresh stack is all green
    on its own status page. Takes several minutes (debootstrap the first
    time, then the image build): OPSDESK_TEST_IMAGE=1 turns it on."""
    if os.environ.get("OPSDESK_TEST_IMAGE") != "1":
        raise h.Skip("set OPSDESK_TEST_IMAGE=1 to build and run the image "
                     "(about 5-10 minutes; needs podman or docker)")
    engine = _engine()
    if engine is None:
        raise h.Skip("no working container engine (podman or docker)")
    base = _base_image(engine)
    tag = "opsdesk:" + _version()
    t0 = time.monotonic()
    fmt = ["--format", "docker"] if "podman" in engine[0] else []
    r = _run(engine + ["build"] + fmt + ["-f",
                       os.path.join(DEPLOY, "Dockerfile"),
                       "--build-arg", "BASE=" + base,
                       "--build-arg", "RUNTIME_BASE=" + base,
                       "-t", tag, ROOT], timeout=1800)
    h.eq(r.returncode, 0, "build: " + (r.stdout + r.stderr)[-3000:])
    print("  image built in %.0f s" % (time.monotonic() - t0), flush=True)
    # podman asks for rlimits above this host's hard limits by default,
    # which a VM without CAP_SYS_RESOURCE refuses: stay within them.
    ulimits = []
    if "podman" in engine[0]:
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        if nofile == resource.RLIM_INFINITY:
            nofile = 65536
        ulimits = ["--ulimit", "nofile=%d:%d" % (nofile, nofile),
                   "--ulimit", "nproc=4096:4096"]
    r = _run(engine + ["run", "--rm", *ulimits, tag, "status-publisher",
                       "--version"])
    h.eq(r.stdout, "status-publisher %s\n" % _version(), r.stderr)
    r = _run(engine + ["run", "--rm", *ulimits, "--entrypoint", "id", tag])
    h.contains(r.stdout, "uid=999")
    suffix = "%d" % os.getpid()
    net = "opsdesk-test-" + suffix
    names = []
    vols = []
    tmp = tempfile.mkdtemp(prefix="opsdesk-image-")
    try:
        h.eq(_run(engine + ["network", "create", net]).returncode, 0)
        token = os.path.join(tmp, "token")
        with open(token, "w") as f:
            f.write("123456:not-a-real-token\n")
        os.chmod(token, 0o644)
        # TLS as compose's tls-init makes it: certs init into the CA
        # volume, opsdesk-tls-split into one volume per identity.
        tls_vols = {i: "opsdesk-test-tls-%s-%s" % (i, suffix)
                    for i in ["ca"] + EXECUTABLES}
        vols.extend(tls_vols.values())
        init = engine + ["run", "--rm", *ulimits, "--user", "0",
                         "--read-only", "--entrypoint", "/bin/sh"]
        for i, v in tls_vols.items():
            init += ["-v", "%s:/tls/%s" % (v, i)]
        r = _run(init + [tag, "-ec",
                         "opsctl certs init /tls/ca; "
                         "opsdesk-tls-split /tls/ca /tls; chown -R "
                         "999:999 " + " ".join("/tls/" + i
                                               for i in EXECUTABLES)])
        h.eq(r.returncode, 0, "tls-init: " + r.stderr)
        env = {"OPSDESK_ADMINS": "1", "OPSDESK_ADMIN_CHAT": "1",
               "OPSDESK_TLS_DIR": "/etc/opsdesk-tls"}
        for svc, port in (("BUS_PUBLISH", 7400), ("BUS_SUBSCRIBE", 7401)):
            env["OPSDESK_" + svc] = "tls+tcp://bus-relay:%d" % port
        for var, svc, port in (("TICKET", "ticket-service", 7410),
                               ("INCIDENT", "incident-service", 7420),
                               ("PROBER", "health-prober", 7430),
                               ("STATUS", "status-publisher", 7440)):
            env["OPSDESK_%s_URL" % var] = "tls+tcp://%s:%d" % (svc, port)
        for svc in ("bus-relay", "ticket-service", "incident-service",
                    "status-publisher", "telegram-gateway",
                    "health-prober"):
            name = "%s-%s" % (svc, suffix)
            argv = engine + ["run", "-d", "--name", name, "--network", net,
                             *ulimits,
                             "--network-alias", svc, "--read-only",
                             "--cap-drop", "ALL",
                             "--security-opt", "no-new-privileges"]
            own = dict(env)
            # Each service listens on its own address (the entrypoint's
            # 0.0.0.0 default); the others' point at service names.
            for k in list(own):
                if svc == "bus-relay" and k.startswith("OPSDESK_BUS"):
                    del own[k]
                elif own[k].startswith("tls+tcp://%s:" % svc):
                    del own[k]
            argv += ["-v", "%s:/etc/opsdesk-tls:ro" % tls_vols[svc]]
            if svc == "telegram-gateway":
                own["OPSDESK_GATEWAY_MODE"] = "poll"
                own["TELEGRAM_API_URL"] = "http://127.0.0.1:9"
                own["TELEGRAM_BOT_TOKEN_FILE"] = "/run/token"
                argv += ["-v", "%s:/run/token:ro" % token]
            if svc != "bus-relay":
                vol = "opsdesk-test-%s-%s" % (svc, suffix)
                vols.append(vol)
                argv += ["-v", "%s:/var/lib/opsdesk" % vol]
            for k, v in sorted(own.items()):
                argv += ["-e", "%s=%s" % (k, v)]
            r = _run(argv + [tag, svc])
            h.eq(r.returncode, 0, "%s: %s" % (svc, r.stderr))
            names.append(name)
        ports = {"bus-relay": 9400, "ticket-service": 9410,
                 "incident-service": 9420, "health-prober": 9430,
                 "status-publisher": 8080, "telegram-gateway": 9450}
        probe = names[0]

        def healthy(svc):
            r = _run(engine + ["exec", probe, "curl", "-fsS",
                               "http://%s:%d/healthz" % (svc, ports[svc])])
            return r.returncode == 0

        for svc in ports:
            h.wait_until(lambda: healthy(svc), timeout=60,
                         msg="%s /healthz by service name" % svc)
        for name in names:
            r = _run(engine + ["healthcheck", "run", name]) \
                if "podman" in engine[0] else None
            if r is not None:
                h.eq(r.returncode, 0, "%s HEALTHCHECK: %s" %
                     (name, r.stdout + r.stderr))

        def summary():
            r = _run(engine + ["exec", probe, "curl", "-fsS",
                               "http://status-publisher:8080/api/v2/"
                               "summary.json"])
            if r.returncode != 0:
                return None
            doc = json.loads(r.stdout)
            comps = {c["name"]: c["status"] for c in doc["components"]
                     if not c.get("group")}
            return doc, comps

        wait_all_green(summary, 120)
        # Figures for the record: image size, idle RSS per service.
        r = _run(engine + ["image", "inspect", tag, "--format",
                           "{{.Size}}"])
        print("  image %s: %.1f MB" % (tag, int(r.stdout) / 1e6),
              flush=True)
        for name in names:
            r = _run(engine + ["exec", name, "sh", "-c",
                               "grep VmRSS /proc/1/status"])
            print("  %s idle %s" % (name.rsplit("-", 1)[0],
                                    " ".join(r.stdout.split()[1:])),
                  flush=True)
    finally:
        for name in names:
            _run(engine + ["rm", "-f", "-v", "-t", "5", name], timeout=120)
        for vol in vols:
            _run(engine + ["volume", "rm", "-f", vol])
        _run(engine + ["network", "rm", "-f", net])
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    h.main()

"""The deployment files parse and pass the validators this machine has:
kubectl kustomize renders deploy/k8s (when kubectl is installed), the
compose file is valid YAML with every service wired, and
systemd-analyze verify accepts the units."""

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


if __name__ == "__main__":
    h.main()

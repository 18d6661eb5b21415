"""The config rules, as an operator meets them: `<exe> --check-config
[FILE]` accepts the shipped configs and rejects a typo, a duplicate key,
bad UTF-8 and an oversize value with exit 1 and exactly one JSON log line
naming the key; a service started on a bad config does the same."""

import json
import os
import subprocess
import tempfile

import harness as h

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPLOY = os.path.join(ROOT, "deploy")
SHIPPED = [os.path.join(DEPLOY, "opsdesk.example.json"),
           os.path.join(DEPLOY, "opsdesk.local.json"),
           os.path.join(DEPLOY, "opsdesk.container.json"),
           os.path.join(DEPLOY, "k8s", "base", "opsdesk.json")]


def clean_env(**extra):
    """The environment without the shell's OPSDESK_* / TELEGRAM_*."""
    e = {k: v for k, v in os.environ.items()
         if not k.startswith("OPSDESK_") and not k.startswith("TELEGRAM_")}
    e.update(extra)
    return e


def check_config(exe, path=None, env=None, cwd=None):
    argv = [h.exe_path(exe), "--check-config"] + ([path] if path else [])
    r = subprocess.run(argv, env=env or clean_env(), cwd=cwd,
                       capture_output=True, timeout=30)
    return r.returncode, r.stdout.decode(), r.stderr.decode("utf-8", "replace")


def one_json_error(exe, rc, out, err):
    """Exit 1 and exactly one line on stderr, a JSON error record."""
    h.eq(rc, 1, "%s exit code (stderr %r)" % (exe, err))
    lines = [l for l in (out + err).splitlines() if l.strip()]
    h.eq(len(lines), 1, "%s must print one line: %r" % (exe, lines))
    rec = json.loads(lines[0])
    h.eq(rec["level"], "error", exe)
    h.eq(rec["service"], exe)
    return rec["error"]


def write(tmp, name, data):
    path = os.path.join(tmp, name)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    return path


def test_shipped_configs_pass():
    for exe in h.EXECUTABLES:
        for path in SHIPPED:
            rc, out, err = check_config(exe, path)
            h.eq(rc, 0, "%s --check-config %s: %s" % (exe, path, err))
            rec = json.loads(err.strip().splitlines()[-1])
            h.eq(rec["msg"], "config ok")
            h.eq(rec["config"], path)


def test_typos_name_path_and_suggestion():
    cases = [
        # (executable, config, the error it must say)
        ("bus-relay", {"adminz": [1]},
         'adminz: unknown key, did you mean "admins"?'),
        ("telegram-gateway", {"gateway": {"throtle": {}}},
         'gateway.throtle: unknown key, did you mean "throttle"?'),
        ("incident-service", {"incidents": {"stable_perod": "10m"}},
         'incidents.stable_perod: unknown key, did you mean '
         '"stable_period"?'),
        ("health-prober", {"targets": [{"id": "a", "kind": "tcp",
                                        "host": "h", "port": 1,
                                        "intervall": "10s"}]},
         'targets[0].intervall: unknown key, did you mean "interval"?'),
        ("ticket-service", {"tickets": {"limits": {"open_per_usr": 1}}},
         'tickets.limits.open_per_usr: unknown key, did you mean '
         '"open_per_user"?'),
        ("status-publisher", {"status_page": {"titel": "x"}},
         'status_page.titel: unknown key, did you mean "title"?'),
        # a range error only the owner's parse finds: --check-config
        # runs it too
        ("ticket-service", {"tickets": {"reopen_days": 99999}},
         "tickets.reopen_days: expected an integer from 0 to 3650"),
        ("health-prober", {"targets": [{"id": "a", "kind": "tcp",
                                        "host": "h"}]},
         "targets[0].port"),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for exe, conf, want in cases:
            path = write(tmp, "c.json", json.dumps(conf))
            msg = one_json_error(exe, *check_config(exe, path))
            if want.endswith("?"):
                h.eq(msg, "%s: %s" % (path, want), exe)
            h.contains(msg, want)
            # the same through OPSDESK_CONFIG
            msg = one_json_error(exe, *check_config(
                exe, env=clean_env(OPSDESK_CONFIG=path)))
            h.contains(msg, want)


def test_duplicates_utf8_and_sizes():
    big = "x" * (5 << 20)
    cases = [
        ("bus-relay", b'{"admins": [1], "admins": [2]}',
         "admins: duplicate key"),
        ("telegram-gateway", b'{"gateway": {"workers": 2, "workers": 3}}',
         "gateway.workers: duplicate key"),
        ("incident-service", b'{"status_page": {\n"title": "caf\xe9"}}',
         ":2: invalid UTF-8"),
        ("status-publisher",
         ('{"status_page": {"title": "%s"}}' % big).encode(),
         "status_page.title: a string of at most 256 bytes expected"),
        ("ticket-service", ('{"faq": [%s]}' % ",".join(
            ['{"question": "q", "answer": "a"}'] * 201)).encode(),
         "faq: at most 200 entries"),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for exe, data, want in cases:
            path = write(tmp, "c.json", data)
            h.contains(one_json_error(exe, *check_config(exe, path)), want)


def test_service_start_on_bad_config_is_one_json_line(s):
    """Not only --check-config: a plain start logs the same one line and
    exits 1, for the service that used to print plain text too."""
    s.config = {"tickets": {"sla": {"free": {"normal": {
        "first_response": "1h", "resolutoin": "2h"}}}}}
    s.write_config()
    r = subprocess.run([h.exe_path("ticket-service")], env=s.env(
        OPSDESK_HTTP_ADDR="127.0.0.1:%d" % h.free_port()),
        capture_output=True, timeout=30)
    msg = one_json_error("ticket-service", r.returncode, r.stdout.decode(),
                         r.stderr.decode())
    h.contains(msg, "tickets.sla.free.normal.resolutoin: unknown key, "
               'did you mean "resolution"?')
    # a range error found by the service's own parse, after the schema
    s.config = {"tickets": {"reopen_days": -1}}
    s.write_config()
    r = subprocess.run([h.exe_path("ticket-service")], env=s.env(
        OPSDESK_HTTP_ADDR="127.0.0.1:%d" % h.free_port()),
        capture_output=True, timeout=30)
    # the "starting" line came first here; every line is JSON and one is
    # the error
    h.eq(r.returncode, 1)
    recs = [json.loads(l) for l in r.stderr.decode().splitlines() if l]
    errors = [x["error"] for x in recs if x["level"] == "error"]
    h.eq(len(errors), 1, repr(recs))
    h.contains(errors[0], "tickets.reopen_days: expected an integer")


def test_check_config_does_not_start(s):
    """--check-config opens no store and binds no port."""
    s.config = {"admins": [1]}
    s.write_config()
    port = h.free_port()
    for exe in h.EXECUTABLES:
        r = subprocess.run([h.exe_path(exe), "--check-config"],
                           env=s.env(OPSDESK_HTTP_ADDR="127.0.0.1:%d" % port),
                           capture_output=True, timeout=30)
        h.eq(r.returncode, 0, "%s: %r" % (exe, r.stderr))
    h.eq(os.listdir(s.data_dir) if os.path.isdir(s.data_dir) else [], [],
         "no store may be created")


if __name__ == "__main__":
    h.main()

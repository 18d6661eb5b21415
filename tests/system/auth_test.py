"""The trust boundary: with OPSDESK_TLS_DIR every process speaks tls+tcp
with the suite's CA (both sides verified), signs every request and bus
frame as its identity, and is held to the authorization table
(docs/operations.md)."""

import json
import os
import shutil
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from fake_telegram import FakeTelegram  # noqa: E402

ADMIN = 1
USER = 42
TOKEN = "987654:SeCrEt-token-NEVER-logged"


def secure(s):
    """Credentials for the suite and every address on tls+tcp://."""
    s.config = {"admins": [ADMIN], "admin_chat": -500}
    tls = s.path("tls")
    r = s.opsctl("certs", "init", tls, "--days", "2")
    h.eq(r.rc, 0, r)
    names = sorted(os.listdir(tls))
    for ident in ("bus-relay", "ticket-service", "incident-service",
                  "health-prober", "status-publisher", "telegram-gateway",
                  "opsctl"):
        for ext in ("crt", "key", "secret"):
            h.check("%s.%s" % (ident, ext) in names, (ident, ext, names))
        mode = os.stat(os.path.join(tls, ident + ".key")).st_mode & 0o777
        h.eq(mode, 0o600, ident + ".key")
    # Idempotent: a second run changes nothing.
    before = open(os.path.join(tls, "ca.crt")).read()
    r = s.opsctl("certs", "init", tls)
    h.eq(r.rc, 0, r)
    h.contains(r.stderr, "nothing changed")
    h.eq(open(os.path.join(tls, "ca.crt")).read(), before)

    def tls_url(u):
        return "tls+" + u
    s.bus_publish = tls_url(s.bus_publish)
    s.bus_subscribe = tls_url(s.bus_subscribe)
    for k in s.urls:
        s.urls[k] = tls_url(s.urls[k])
    s.extra_env["OPSDESK_TLS_DIR"] = tls
    return tls


def error_code(r):
    try:
        return json.loads(r.stdout)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def test_plain_and_foreign_clients_get_no_reply(s):
    secure(s)
    s.start("bus-relay")
    s.start("ticket-service")
    # The suite's own opsctl is answered.
    r = s.opsctl("ping", "ticket")
    h.eq(r.rc, 0, r)
    port = s.urls["ticket"].rsplit(":", 1)[1]
    # A plain client: no TLS handshake, no reply.
    r = s.opsctl("--timeout", "1500", "--url", "tcp://127.0.0.1:" + port,
                 "call", "ticket", "ping", env={"OPSDESK_TLS_DIR": ""})
    h.eq(r.rc, 2, r)
    # A client with a certificate from another CA: the server refuses it.
    other = s.path("other-ca")
    h.eq(s.opsctl("certs", "init", other).rc, 0)
    r = s.opsctl("--timeout", "1500", "call", "ticket", "ping",
                 env={"OPSDESK_TLS_DIR": other})
    h.eq(r.rc, 2, r)
    # A plain subscriber hears nothing while a suite one hears the event.
    tail = s.tail("ops.")
    plain = subprocess.Popen(
        [h.exe_path("opsctl"), "--url", s.bus_subscribe.replace("tls+", ""),
         "-n", "1", "tail"], env=s.env(OPSDESK_TLS_DIR=""),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=s.dir)
    try:
        s.publish("ops.note", {"ops": {"kind": "note", "text": "hello"}})
        tail.wait_topic("ops.note", 10)
        try:
            out, _ = plain.communicate(timeout=1.5)
        except subprocess.TimeoutExpired:
            out = b""
        h.eq(out, b"", "a plain subscriber got an event")
    finally:
        plain.kill()
        plain.wait()


def test_service_identity_gets_only_its_reads(s):
    secure(s)
    s.start("bus-relay")
    s.start("ticket-service")
    s.start("incident-service")
    t = s.call("ticket", "create", {"text": "my secret problem"},
               as_user=USER)["created"]["ticket"]
    as_status = {"OPSDESK_IDENTITY": "status-publisher"}
    # status-publisher asking for a ticket, as admin: refused.
    r = s.opsctl("--as", str(ADMIN), "--admin", "call", "ticket", "get",
                 json.dumps({"id": int(t["id"])}), env=as_status)
    h.eq(r.rc, 1, r)
    h.eq(error_code(r), "ERROR_CODE_PERMISSION_DENIED", r)
    # ... and as the system (no user): still not one of its reads.
    r = s.opsctl("call", "ticket", "get",
                 json.dumps({"id": int(t["id"])}), env=as_status)
    h.eq(error_code(r), "ERROR_CODE_PERMISSION_DENIED", r)
    # Its own read, the incident snapshot, is answered.
    r = s.opsctl("--timeout", "15000", "call", "incident", "snapshot", "{}",
                 env=as_status)
    h.eq(r.rc, 0, r)
    # An identity without a credential does not even start talking.
    r = s.opsctl("call", "ticket", "ping", env={"OPSDESK_IDENTITY": "eve"})
    h.check(r.rc != 0, r)
    # opsctl as the operator: the admin gets the ticket.
    got = s.call("ticket", "get", {"id": int(t["id"])}, as_user=ADMIN,
                 admin=True)
    h.eq(got["ticket"]["text"] if "text" in got["ticket"]
         else got["ticket"]["subject"], "my secret problem")


def test_claimed_admin_refused_by_each_service(s):
    secure(s)
    s.start("bus-relay")
    for svc in ("ticket-service", "incident-service", "health-prober",
                "status-publisher"):
        s.start(svc)
    # An admin-only method of each service, with a user id that is not
    # in the admin list claiming is_admin (status: any method).
    cases = [("ticket", "queue"), ("incident", "list"),
             ("prober", "resources"), ("status", "summary")]
    for svc, method in cases:
        r = s.opsctl("--as", "999999", "--admin", "call", svc, method, "{}")
        h.eq(error_code(r), "ERROR_CODE_PERMISSION_DENIED", (svc, r))
        h.contains(r.stdout, "not an admin", svc)
        r = s.opsctl("--as", str(ADMIN), "--admin", "call", svc, method,
                     "{}")
        h.eq(r.rc, 0, (svc, r))


def test_alerts_never_show_an_internal_incident_to_a_user(s):
    s.config = {"admins": [ADMIN]}
    s.start("bus-relay")
    s.start("incident-service")
    for title, internal in (("Public outage", False),
                            ("Secret db migration", True)):
        s.call("incident", "create", {"severity": "SEVERITY_HIGH",
                                      "title": title, "internal": internal},
               as_user=ADMIN, admin=True)

    def titles(**kw):
        r = s.call("incident", "alerts", {}, **kw)
        return sorted({a["incident"]["title"]
                       for a in r["alerts"].get("alerts", [])
                       if "incident" in a})
    h.wait_until(lambda: len(titles(as_user=ADMIN, admin=True)) == 2, 10,
                 "both incidents alerted")
    h.eq(titles(as_user=USER), ["Public outage"])


def test_notify_from_a_non_owner_never_reaches_the_bot(s):
    secure(s)
    fake = FakeTelegram(TOKEN, max_poll_wait=1.0)
    try:
        notify_checks(s, fake)
    finally:
        fake.close()


def notify_checks(s, fake):
    relay = s.start("bus-relay")
    s.start("telegram-gateway", env={
        "TELEGRAM_API_URL": fake.url, "TELEGRAM_BOT_TOKEN": TOKEN,
        "OPSDESK_GATEWAY_MODE": "poll"})
    forged = {"ticket_notify": {"ticket_id": 7, "user_id": USER,
                                "chat_id": USER, "text": "FORGED phish"}}
    # opsctl (ops.* only) and the incident-service identity do not own
    # ticket.*: the relay drops both, counts them and logs once.
    s.publish("ticket.notify", forged)
    r = s.opsctl("publish", "ticket.notify", json.dumps(forged),
                 env={"OPSDESK_IDENTITY": "incident-service"})
    h.eq(r.rc, 0, r)
    h.wait_until(lambda: (h.metric(relay.metrics(),
                                   "opsdesk_relay_refused_total") or 0) >= 2,
                 10, "relay refusals counted")
    h.wait_until(lambda: "opsctl ticket.notify" in relay.log_text(), 5,
                 "the refusal logged")
    # The owner's frame goes through: the path works.
    m = fake.mark()
    genuine = {"ticket_notify": {"ticket_id": 7, "user_id": USER,
                                 "chat_id": USER, "text": "genuine note"}}
    r = s.opsctl("publish", "ticket.notify", json.dumps(genuine),
                 env={"OPSDESK_IDENTITY": "ticket-service"})
    h.eq(r.rc, 0, r)
    got = fake.wait_sent(lambda r: r.chat == USER, after=m)
    h.contains(got.text, "genuine note")
    h.eq([x for x in fake.calls(chat=USER) if "FORGED" in (x.text or "")],
         [], "the forged notices never reached the Bot API")


def test_plain_non_loopback_refuses_to_start(s):
    s.config = {"admins": [ADMIN]}
    s.bus_publish = "tcp://0.0.0.0:%d" % h.free_port()
    p = s.start("bus-relay", wait=None)
    h.wait_until(lambda: not p.alive(), 10, "bus-relay exits")
    h.contains(p.log_text(), "opsctl certs init")
    s.procs.remove(p)
    p = s.start("bus-relay", env={"OPSDESK_ALLOW_INSECURE": "1"})
    h.contains(p.log_text(), "OPSDESK_ALLOW_INSECURE")


def reloads(p, result):
    return h.metric(p.metrics(), "opsdesk_reloads_total", result=result) or 0


def hup(p, result, before):
    """SIGHUP p and wait until its reload with result is counted."""
    p.popen.send_signal(signal.SIGHUP)
    h.wait_until(lambda: reloads(p, result) > before, 10,
                 "a %s reload counted" % result)


def test_sighup_reloads_credentials(s):
    tls = secure(s)
    s.start("bus-relay")
    svc = s.start("ticket-service")
    t = s.call("ticket", "create", {"text": "before the rotation"},
               as_user=USER)["created"]["ticket"]
    old = s.path("tls-old")
    shutil.copytree(tls, old)
    as_old = {"OPSDESK_TLS_DIR": old}
    h.eq(s.opsctl("ping", "ticket").rc, 0)

    # opsctl's HMAC key rotated: refused until ticket-service reloads.
    with open(os.path.join(tls, "opsctl.secret"), "w") as f:
        f.write(os.urandom(32).hex() + "\n")
    r = s.opsctl("call", "ticket", "ping")
    h.eq(error_code(r), "ERROR_CODE_PERMISSION_DENIED", r)
    hup(svc, "ok", 0)
    h.eq(s.opsctl("ping", "ticket").rc, 0)
    r = s.opsctl("call", "ticket", "ping", env=as_old)
    h.eq(error_code(r), "ERROR_CODE_PERMISSION_DENIED", r)
    h.contains(r.stdout, "bad MAC")

    # A key that does not load: logged, the running credentials stay.
    with open(os.path.join(tls, "ticket-service.key"), "w") as f:
        f.write("not a key\n")
    hup(svc, "error", 0)
    h.contains(svc.log_text(), "the running credentials stay")
    h.eq(s.opsctl("ping", "ticket").rc, 0)

    # A new CA for everything: a client of the new CA gets no reply until
    # the reload, a client of the old one none after it.
    other = s.path("tls-new")
    h.eq(s.opsctl("certs", "init", other).rc, 0)
    for name in os.listdir(other):
        shutil.copy(os.path.join(other, name), os.path.join(tls, name))
    r = s.opsctl("--timeout", "1500", "ping", "ticket")
    h.eq(r.rc, 2, r)
    hup(svc, "ok", 1)
    h.eq(s.opsctl("ping", "ticket").rc, 0)
    r = s.opsctl("--timeout", "1500", "ping", "ticket", env=as_old)
    h.eq(r.rc, 2, r)
    # No restart: the same process, the acknowledged ticket still there.
    h.check(svc.alive(), "ticket-service still runs")
    got = s.call("ticket", "get", {"id": int(t["id"])}, as_user=USER)
    h.eq(got["ticket"]["id"], t["id"])


if __name__ == "__main__":
    h.main()

"""fake_telegram.py -- a fake Telegram Bot API server for the gateway's
system tests and bench (python3 standard library only).

It speaks `POST /bot<token>/<method>` with JSON (or form) bodies, records
every request, serves scripted updates to getUpdates (long polling that
honours `offset` and `timeout`), answers sendMessage/editMessageText with
message objects, and replies with scripted errors: 429 with retry_after,
5xx, 401, 404, 403 (blocked chat), 409 (getUpdates conflict) and 400
"message is not modified"; and with scripted faults (`fault`): a 200 whose
body is not JSON (a proxy's page), a 200 cut short, a call that hangs.
It also checks Telegram's limits on every send (30/s overall, 1/s per
chat, 20/min per group) and lists each breach in `breaches`.

    fake = FakeTelegram(token="123:ABC")      # starts on a free port
    env TELEGRAM_API_URL=fake.url, TELEGRAM_BOT_TOKEN=fake.token
    uid = fake.message("/help", user=42)      # queue an update
    msg = fake.wait_sent(lambda r: r.chat == 42)
    fake.fail("sendMessage", 429, retry_after=2)   # the next call gets 429
    fake.block(42)                            # 403 for chat 42 from now on
    fake.fault("sendMessage", "hang", seconds=5)   # no answer for 5 s
    fake.breaches                             # limits exceeded, [] is good

Standalone (bench): python3 fake_telegram.py --port 0 prints its url.
"""

import email.parser
import email.policy
import json
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import scaled  # waits stretch in sanitizer builds


def _multipart(ctype, raw):
    """A multipart/form-data body (sendDocument) as a dict; a file part
    becomes {"filename": ..., "content": text}."""
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + raw)
    body = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True) or b""
        fn = part.get_filename()
        if fn is not None:
            body[name] = {"filename": fn,
                          "content": data.decode("utf-8", "replace")}
        else:
            body[name] = data.decode("utf-8", "replace")
    return body


class Request:
    """One recorded call."""

    def __init__(self, method, token, body, at, status):
        self.method = method
        self.token = token
        self.body = body
        self.at = at          # time.monotonic() when received
        self.status = status  # the HTTP status answered
        self.fault = None     # the fault met ("hang", ...), if any

    @property
    def chat(self):
        v = self.body.get("chat_id")
        return int(v) if v is not None else None

    @property
    def text(self):
        return self.body.get("text", "")

    @property
    def buttons(self):
        """[(text, callback_data)] of an inline keyboard."""
        rm = self.body.get("reply_markup") or {}
        if isinstance(rm, str):
            rm = json.loads(rm)
        return [(b.get("text"), b.get("callback_data"))
                for row in rm.get("inline_keyboard", []) for b in row]

    def __repr__(self):
        return "<%s %s %s>" % (self.method, self.status,
                               json.dumps(self.body)[:300])


class FakeTelegram:
    def __init__(self, token="123456:TEST-token-s3cr3t", port=0,
                 max_poll_wait=2.0, host="127.0.0.1"):
        self.token = token
        self.lock = threading.Condition()
        self.requests = []
        self.updates = []          # pending update dicts
        self.next_update_id = 1000
        self.next_message_id = 1
        self.failures = []         # [method, code, description, params, n]
        self.blocked = set()
        self.max_poll_wait = max_poll_wait
        self.last_offset = 0
        self.messages = {}         # (chat, message_id) -> text
        self.delivered = {}        # update_id -> first getUpdates time
        self.faults = []           # [method, kind, seconds, n]
        self.breaches = []         # (kind, chat, time) of limit breaches
        self._sends = []           # times of sends, the last second
        self._chat_last = {}       # chat -> time of its last send
        self._group_sends = {}     # group chat -> times, the last minute
        self.fault_hits = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body are two writes: without TCP_NODELAY each
            # reply waits for the client's delayed ACK (40 ms).
            disable_nagle_algorithm = True

            def log_message(self, *a):
                pass

            def do_GET(self):
                self.handle_call()

            def do_POST(self):
                self.handle_call()

            def handle_call(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                path, _, query = self.path.partition("?")
                parts = path.strip("/").split("/")
                status, reply = 404, {"ok": False, "error_code": 404,
                                      "description": "Not Found"}
                if len(parts) == 2 and parts[0].startswith("bot"):
                    body = {}
                    ctype = self.headers.get("Content-Type", "")
                    try:
                        if raw and "json" in ctype:
                            body = json.loads(raw)
                        elif raw and "multipart/form-data" in ctype:
                            body = _multipart(ctype, raw)
                        elif raw:
                            body = dict(urllib.parse.parse_qsl(raw.decode()))
                        if query:
                            body.update(urllib.parse.parse_qsl(query))
                    except ValueError:
                        body = {"_unparsed": raw.decode("utf-8", "replace")}
                    fault = fake._fault(parts[1], body)
                    if fault is not None:
                        self._fault_reply(fault)
                        return
                    status, reply = fake._call(parts[0][3:], parts[1], body)
                # Raw bytes: a test may smuggle invalid UTF-8 into an
                # update as surrogate escapes ("\udcff" -> 0xff).
                data = json.dumps(reply, ensure_ascii=False).encode(
                    "utf-8", "surrogateescape")
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client went away (shutdown, kill -9)

            def _fault_reply(self, fault):
                kind, seconds = fault
                self.close_connection = True
                try:
                    if kind == "hang":
                        time.sleep(seconds)
                        return  # closed without an answer
                    if kind == "nonjson":
                        data = (b"<html><body><h1>502 Bad Gateway</h1>"
                                b"</body></html>")
                        self.send_response(200)
                        self.send_header("Content-Type", "text/html")
                        self.send_header("Content-Length", str(len(data)))
                        self.end_headers()
                        self.wfile.write(data)
                    elif kind == "truncated":
                        data = b'{"ok":true,"result":{"message_id":1,"da'
                        self.send_response(200)
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Content-Length", str(len(data)))
                        self.end_headers()
                        self.wfile.write(data[:len(data) // 2])
                        self.wfile.flush()
                        self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        # host: another address when the gateway runs in its own network
        # namespace (e2e_test) and cannot reach this loopback.
        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        # A client killed mid-request (kill -9 tests) is not an error.
        self.server.handle_error = lambda request, address: None
        self.port = self.server.server_address[1]
        self.url = "http://%s:%d" % (host, self.port)
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    # ---- scripting ----

    def _update(self, kind, obj):
        with self.lock:
            self.next_update_id += 1
            u = {"update_id": self.next_update_id, kind: obj}
            self.updates.append(u)
            self.lock.notify_all()
            return self.next_update_id

    def message(self, text, user=42, chat=None, first_name="Ann",
                chat_type="private", reply_to=None):
        """Queue a message update; returns its update_id."""
        chat = user if chat is None else chat
        m = {"message_id": self._new_message_id(),
             "from": {"id": user, "is_bot": False, "first_name": first_name},
             "chat": {"id": chat, "type": chat_type},
             "date": int(time.time()), "text": text}
        if isinstance(text, str) and text.startswith("/"):
            # As Telegram marks it (frameworks route on the entity).
            m["entities"] = [{"type": "bot_command", "offset": 0,
                              "length": len(text.split()[0].encode(
                                  "utf-16-le", "surrogatepass")) // 2}]
        if reply_to is not None:
            m["reply_to_message"] = {
                "message_id": reply_to,
                "text": self.messages.get((chat, reply_to), "")}
        return self._update("message", m)

    def press(self, data, user=42, chat=None, message_id=1):
        """Queue a callback_query (a pressed button, possibly forged)."""
        chat = user if chat is None else chat
        self._cb_seq = getattr(self, "_cb_seq", 0) + 1
        cq = {"id": "cb%d" % self._cb_seq,
              "from": {"id": user, "is_bot": False, "first_name": "Ann"},
              "message": {"message_id": message_id,
                          "from": {"id": 1, "is_bot": True},
                          "chat": {"id": chat, "type": "private"},
                          "date": int(time.time()), "text": "menu"},
              "chat_instance": "1", "data": data}
        return self._update("callback_query", cq)

    def raw_update(self, obj):
        with self.lock:
            self.updates.append(obj)
            self.lock.notify_all()

    def fail(self, method, code, description=None, retry_after=None,
             times=1):
        """The next `times` calls of method get this error."""
        desc = description or {
            429: "Too Many Requests: retry after %s" % retry_after,
            403: "Forbidden: bot was blocked by the user",
            409: "Conflict: terminated by other getUpdates request",
            400: "Bad Request: message is not modified",
        }.get(code, "Internal Server Error")
        params = {"retry_after": retry_after} if retry_after else None
        with self.lock:
            self.failures.append([method, code, desc, params, times])

    def fault(self, method, kind, times=1, seconds=5.0):
        """The next `times` calls of method meet a fault: "nonjson" (200
        with an HTML page), "truncated" (200 cut short, connection
        closed) or "hang" (no answer for `seconds`, then closed)."""
        assert kind in ("nonjson", "truncated", "hang"), kind
        with self.lock:
            self.faults.append([method, kind, seconds, times])

    def _fault(self, method, body):
        now = time.monotonic()
        with self.lock:
            for f in self.faults:
                if f[0] == method and f[3] > 0:
                    f[3] -= 1
                    self.fault_hits += 1
                    self._record(method, self.token, body, now,
                                 {"hang": 0, "nonjson": 200,
                                  "truncated": 200}[f[1]], fault=f[1])
                    return f[1], f[2]
        return None

    def _check_limits(self, method, body, now):
        """Telegram's limits, measured on arrival, with slack for the
        network: 30 in 0.9 s overall, 1 per 0.95 s per chat."""
        if method not in ("sendMessage", "editMessageText", "sendDocument"):
            return
        chat = body.get("chat_id")
        self._sends = [t for t in self._sends if now - t < 0.9]
        self._sends.append(now)
        if len(self._sends) > 30:
            self.breaches.append(("global", chat, now))
        if chat is None:
            return
        chat = int(chat)
        last = self._chat_last.get(chat)
        if last is not None and now - last < 0.95:
            self.breaches.append(("chat", chat, now))
        self._chat_last[chat] = now
        if chat < 0:
            g = [t for t in self._group_sends.get(chat, [])
                 if now - t < 59.0]
            g.append(now)
            self._group_sends[chat] = g
            if len(g) > 20:
                self.breaches.append(("group", chat, now))

    def reset_limits(self):
        """Forget sends so far (a phase without limits is over)."""
        with self.lock:
            self.breaches = []
            self._sends = []
            self._chat_last = {}
            self._group_sends = {}

    def block(self, chat):
        with self.lock:
            self.blocked.add(int(chat))

    def _new_message_id(self):
        with self.lock:
            self.next_message_id += 1
            return self.next_message_id

    # ---- serving ----

    def _call(self, token, method, body):
        now = time.monotonic()
        with self.lock:
            self._check_limits(method, body, now)
        if token != self.token:
            self._record(method, token, body, now, 401)
            return 401, {"ok": False, "error_code": 401,
                         "description": "Unauthorized"}
        with self.lock:
            for f in self.failures:
                if f[0] == method and f[4] > 0:
                    f[4] -= 1
                    r = {"ok": False, "error_code": f[1], "description": f[2]}
                    if f[3]:
                        r["parameters"] = f[3]
                    self._record(method, token, body, now, f[1])
                    return f[1], r
            chat = body.get("chat_id")
            if chat is not None and int(chat) in self.blocked:
                self._record(method, token, body, now, 403)
                return 403, {"ok": False, "error_code": 403,
                             "description":
                             "Forbidden: bot was blocked by the user"}
        if method == "getUpdates":
            return self._get_updates(token, body, now)
        result = True
        if method in ("sendMessage", "editMessageText"):
            chat = int(body.get("chat_id", 0))
            text = body.get("text", "")
            if not text:
                self._record(method, token, body, now, 400)
                return 400, {"ok": False, "error_code": 400,
                             "description": "Bad Request: message text is "
                                            "empty"}
            if method == "sendMessage":
                mid = self._new_message_id()
            else:
                mid = int(body.get("message_id", 0))
                if self.messages.get((chat, mid)) == text:
                    self._record(method, token, body, now, 400)
                    return 400, {"ok": False, "error_code": 400,
                                 "description": "Bad Request: message is "
                                                "not modified"}
            self.messages[(chat, mid)] = text
            result = {"message_id": mid, "date": int(time.time()),
                      "chat": {"id": chat, "type": "private"}, "text": text}
        elif method == "sendDocument":
            chat = int(body.get("chat_id", 0))
            mid = self._new_message_id()
            doc = body.get("document") or {}
            result = {"message_id": mid, "date": int(time.time()),
                      "chat": {"id": chat, "type": "private"},
                      "caption": body.get("caption", ""),
                      "document": {"file_name": doc.get("filename", "")
                                   if isinstance(doc, dict) else ""}}
        elif method == "getMe":
            result = {"id": 1, "is_bot": True, "first_name": "opsdesk",
                      "username": "opsdesk_bot"}
        self._record(method, token, body, now, 200)
        return 200, {"ok": True, "result": result}

    def _get_updates(self, token, body, now):
        offset = int(body.get("offset", 0) or 0)
        timeout = float(body.get("timeout", 0) or 0)
        limit = int(body.get("limit", 100) or 100)
        deadline = time.monotonic() + min(timeout, self.max_poll_wait)
        with self.lock:
            self.last_offset = max(self.last_offset, offset)
            # Confirmed updates are gone for good, as with Telegram.
            self.updates = [u for u in self.updates
                            if u["update_id"] >= offset]
            while not self.updates and time.monotonic() < deadline:
                self.lock.wait(max(0.0, deadline - time.monotonic()))
                self.updates = [u for u in self.updates
                                if u["update_id"] >= offset]
            batch = self.updates[:limit]
            t = time.monotonic()
            for u in batch:
                self.delivered.setdefault(u["update_id"], t)
        self._record("getUpdates", token, body, now, 200)
        return 200, {"ok": True, "result": batch}

    def _record(self, method, token, body, at, status, fault=None):
        with self.lock:
            r = Request(method, token, body, at, status)
            r.fault = fault
            self.requests.append(r)
            self.lock.notify_all()

    # ---- inspecting ----

    def calls(self, method=None, chat=None):
        with self.lock:
            return [r for r in self.requests
                    if (method is None or r.method == method) and
                    (chat is None or r.chat == chat)]

    def sent(self, chat=None):
        """Successful sendMessage/editMessageText calls (to chat)."""
        return [r for r in self.calls(chat=chat)
                if r.method in ("sendMessage", "editMessageText") and
                r.status == 200 and r.fault is None]

    def wait_sent(self, pred=lambda r: True, timeout=10.0, after=0):
        """The first successful send (index >= after) matching pred."""
        timeout = scaled(timeout)
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                ok = [r for r in self.requests[after:]
                      if r.method in ("sendMessage", "editMessageText")
                      and r.status == 200 and r.fault is None and pred(r)]
                if ok:
                    return ok[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        "no matching message within %.1fs; last requests:"
                        "\n%s" % (timeout, "\n".join(
                            repr(r) for r in self.requests[-8:])))
                self.lock.wait(left)

    def wait_call(self, method, pred=lambda r: True, timeout=10.0, after=0):
        timeout = scaled(timeout)
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                ok = [r for r in self.requests[after:]
                      if r.method == method and pred(r)]
                if ok:
                    return ok[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no %s within %.1fs" %
                                         (method, timeout))
                self.lock.wait(left)

    def mark(self):
        """An index for wait_sent(after=...): only later requests."""
        with self.lock:
            return len(self.requests)

    def wait_confirmed(self, update_id, timeout=10.0):
        """Wait until a getUpdates offset past update_id was asked for."""
        deadline = time.monotonic() + scaled(timeout)
        with self.lock:
            while self.last_offset <= update_id:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("update %d never confirmed" %
                                         update_id)
                self.lock.wait(left)


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--token", default="123456:TEST-token-s3cr3t")
    a = ap.parse_args()
    f = FakeTelegram(a.token, a.port)
    print(f.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        f.close()

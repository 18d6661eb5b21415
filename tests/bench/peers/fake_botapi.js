// A fast fake Telegram Bot API for tests/bench/e2e_bench.py, in Node with
// no dependencies. The system tests' fake (tests/system/fake_telegram.py)
// records every request for inspection and is one Python core under its
// GIL: in the end-to-end bench it became the ceiling of every bot's
// updates/s and spent more CPU per update than the bot it served when
// the bot kept many connections. This one does only what the bench needs,
// the same way for every bot:
//
//   getUpdates  long polling with offset, limit and timeout (confirmed
//               updates are dropped, as Telegram does);
//   sendMessage counted (per chat range, and those confirming a ticket);
//   anything else {"ok": true, "result": true} (getMe has a bot).
//
// Control, for the bench (same port):
//   POST /control/updates  [{"user": id, "text": "..."}, ...]: queue them
//   POST /control/reset    zero the counters
//   GET  /control/timeline  [[ms since reset, "g" (a getUpdates answered)
//        or "s" (a sendMessage), updates in the page or 1], ...]
//   GET  /control/stats?lo=A&hi=B  {"replies": sendMessage to chats in
//        [A, B), "opened": those whose text has "opened", "calls": {...}}
//
//   node fake_botapi.js <token> [max poll wait s]
// prints "listening <port>" on stdout once it listens on 127.0.0.1.
"use strict";
const http = require("http");

const [token, maxWaitArg] = process.argv.slice(2);
const maxWait = 1000 * Number(maxWaitArg || "0.5");
const prefix = "/bot" + token + "/";

let updates = []; // queued, oldest first
let nextUpdate = 0;
let nextMessage = 0;
let waiters = []; // long polls: {offset, limit, res, timer}
let calls = {};
let sent = []; // chat ids of successful sendMessage
let opened = 0;
let openedChats = [];
let t0 = process.hrtime.bigint();
let timeline = []; // [ms since reset, "g" poll answered n | "s" sent]

function stamp(kind, n) {
	timeline.push([Number(process.hrtime.bigint() - t0) / 1e6, kind, n]);
}

// The counters and the timeline start again from zero.
function resetCounters() {
	calls = {};
	sent = [];
	opened = 0;
	openedChats = [];
	t0 = process.hrtime.bigint();
	timeline = [];
}

function reply(res, status, obj) {
	const data = Buffer.from(JSON.stringify(obj));
	res.writeHead(status, {
		"Content-Type": "application/json",
		"Content-Length": data.length,
	});
	res.end(data);
}

function drop(offset) {
	let i = 0;
	while (i < updates.length && updates[i].update_id < offset) {
		i++;
	}
	if (i > 0) {
		updates = updates.slice(i);
	}
}

function answerPoll(w) {
	clearTimeout(w.timer);
	drop(w.offset);
	const page = updates.slice(0, w.limit);
	stamp("g", page.length);
	reply(w.res, 200, { ok: true, result: page });
}

function wake() {
	const ws = waiters;
	waiters = [];
	for (const w of ws) {
		answerPoll(w);
	}
}

function getUpdates(body, res) {
	const offset = Number(body.offset || 0);
	const limit = Number(body.limit || 100);
	const timeout = 1000 * Number(body.timeout || 0);
	drop(offset);
	if (updates.length > 0 || timeout <= 0) {
		const page = updates.slice(0, limit);
		stamp("g", page.length);
		reply(res, 200, { ok: true, result: page });
		return;
	}
	const w = { offset, limit, res };
	w.timer = setTimeout(() => {
		waiters = waiters.filter((x) => x !== w);
		answerPoll(w);
	}, Math.min(timeout, maxWait));
	waiters.push(w);
}

function queue(list) {
	const now = Math.floor(Date.now() / 1000);
	for (const m of list) {
		const msg = {
			message_id: ++nextMessage,
			from: { id: m.user, is_bot: false, first_name: "Ann" },
			chat: { id: m.user, type: "private" },
			date: now,
			text: m.text,
		};
		if (m.text.startsWith("/")) {
			msg.entities = [{
				type: "bot_command", offset: 0,
				length: m.text.split(" ")[0].length,
			}];
		}
		updates.push({ update_id: ++nextUpdate, message: msg });
	}
	wake();
}

function method(name, body, res) {
	calls[name] = (calls[name] || 0) + 1;
	if (name === "getUpdates") {
		getUpdates(body, res);
		return;
	}
	let result = true;
	if (name === "sendMessage") {
		const chat = Number(body.chat_id || 0);
		const text = String(body.text || "");
		if (text === "") {
			reply(res, 400, {
				ok: false, error_code: 400,
				description: "Bad Request: message text is empty",
			});
			return;
		}
		sent.push(chat);
		stamp("s", 1);
		if (text.includes("opened")) {
			opened++;
			openedChats.push(chat);
		}
		result = {
			message_id: ++nextMessage, date: Math.floor(Date.now() / 1000),
			chat: { id: chat, type: "private" }, text,
		};
	} else if (name === "getMe") {
		result = {
			id: 1, is_bot: true, first_name: "opsdesk",
			username: "opsdesk_bot",
		};
	}
	reply(res, 200, { ok: true, result });
}

function control(path, query, body, res) {
	if (path === "/control/updates") {
		queue(body);
		reply(res, 200, { ok: true, queued: body.length });
	} else if (path === "/control/reset") {
		resetCounters();
		reply(res, 200, { ok: true });
	} else if (path === "/control/stats") {
		const lo = Number(query.get("lo") || 0);
		const hi = Number(query.get("hi") || Number.MAX_SAFE_INTEGER);
		const inRange = (c) => c >= lo && c < hi;
		reply(res, 200, {
			replies: sent.filter(inRange).length,
			opened: openedChats.filter(inRange).length,
			calls,
		});
	} else if (path === "/control/timeline") {
		reply(res, 200, { ok: true, timeline });
	} else {
		reply(res, 404, { ok: false, error_code: 404 });
	}
}

const server = http.createServer((req, res) => {
	const chunks = [];
	req.on("data", (c) => chunks.push(c));
	req.on("end", () => {
		const url = new URL(req.url, "http://fake");
		const raw = Buffer.concat(chunks).toString("utf8");
		let body = {};
		try {
			const ctype = req.headers["content-type"] || "";
			if (raw && ctype.includes("json")) {
				body = JSON.parse(raw);
			} else if (raw) {
				body = Object.fromEntries(new URLSearchParams(raw));
			}
		} catch (e) {
			reply(res, 400, { ok: false, error_code: 400,
				description: "Bad Request: can't parse JSON" });
			return;
		}
		for (const [k, v] of url.searchParams) {
			body[k] = v;
		}
		if (url.pathname.startsWith("/control/")) {
			control(url.pathname, url.searchParams, body, res);
		} else if (url.pathname.startsWith(prefix)) {
			method(url.pathname.slice(prefix.length), body, res);
		} else {
			reply(res, 401, { ok: false, error_code: 401,
				description: "Unauthorized" });
		}
	});
});
server.keepAliveTimeout = 60000;
// Warm up before the bench: V8 compiles the request path only once it is
// hot, and a cold fake spent twice the CPU per update of a warm one in
// the first 3,000 updates, on whichever bot came first. Every bot gets a
// fake that has already served WARM_UP requests (to a chat no bot uses),
// as the real Bot API always has.
const WARM_UP = Number(process.env.FAKE_WARM_UP || "6000");

function warmUp(port, done) {
	const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
	let left = WARM_UP;
	let inFlight = 0;
	const one = (i) => {
		const body = i % 10 === 0
			? JSON.stringify({ offset: nextUpdate + 1, timeout: 0 })
			: JSON.stringify({ chat_id: 0, text: "warm up " + i,
				parse_mode: "HTML" });
		const name = i % 10 === 0 ? "getUpdates" : "sendMessage";
		const req = http.request({
			host: "127.0.0.1", port, method: "POST", agent,
			path: prefix + name,
			headers: { "Content-Type": "application/json",
				"Content-Length": Buffer.byteLength(body) },
		}, (res) => {
			res.resume();
			res.on("end", () => {
				inFlight--;
				if (left > 0) {
					one(left--);
				} else if (inFlight === 0) {
					agent.destroy();
					done();
				}
			});
		});
		req.end(body);
		inFlight++;
	};
	if (left <= 0) {
		done();
		return;
	}
	for (let k = 0; k < 32 && left > 0; k++) {
		one(left--);
	}
}

server.listen(0, "127.0.0.1", () => {
	const port = server.address().port;
	warmUp(port, () => {
		resetCounters();
		process.stdout.write("listening " + port + "\n");
	});
});
process.on("SIGTERM", () => process.exit(0));

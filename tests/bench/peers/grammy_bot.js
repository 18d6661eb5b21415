// The grammY peer of tests/bench/e2e_bench.py: the same work as opsdesk's
// gateway for the bench's commands. /help and /status_page are answered
// from memory; /support <text> appends the ticket to a file and fdatasyncs
// it (durable, as opsdesk's ticket-service commits), then confirms it with
// its id. Long polling with grammY's own bot.start(), no throttler.
//
//   node grammy_bot.js <api root> <token> <tickets file>
"use strict";
const fs = require("fs");
const { Bot } = require("grammy");

const [apiRoot, token, file] = process.argv.slice(2);
const bot = new Bot(token, {
	client: { apiRoot },
	botInfo: {
		id: 1, is_bot: true, first_name: "bench", username: "opsdesk_bot",
		can_join_groups: true, can_read_all_group_messages: false,
		supports_inline_queries: false,
	},
});
const fd = fs.openSync(file, "a");
let next = 1;

const HELP = "<b>opsdesk</b>\n/status_page — service status\n" +
	"/support &lt;text&gt; — open a ticket\n/tickets — your tickets";

function durable(line) {
	return new Promise((resolve, reject) => {
		fs.write(fd, line, (err) => {
			if (err) return reject(err);
			fs.fdatasync(fd, (err2) => (err2 ? reject(err2) : resolve()));
		});
	});
}

bot.command("help", (ctx) => ctx.reply(HELP, { parse_mode: "HTML" }));
bot.command("status_page", (ctx) =>
	ctx.reply("🟢 <b>All systems operational</b>", { parse_mode: "HTML" }));
bot.command("support", async (ctx) => {
	const id = next++;
	await durable(JSON.stringify({
		id, user: ctx.from.id, chat: ctx.chat.id, text: ctx.match,
		at: Date.now(),
	}) + "\n");
	await ctx.reply(`✅ Ticket T-${id} opened`);
});
bot.catch((err) => console.error("grammy:", err.message));
bot.start({ onStart: () => console.log("ready") });
process.on("SIGTERM", () => bot.stop().then(() => process.exit(0)));

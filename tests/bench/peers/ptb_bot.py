"""The python-telegram-bot 13 peer of tests/bench/e2e_bench.py (Debian 12's
python3-python-telegram-bot 13.15, run with /usr/bin/python3): the same
work as opsdesk's gateway for the bench's commands. /help and /status_page
are answered from memory; /support <text> stores the ticket in SQLite
(WAL, synchronous=FULL: durable) and confirms it with its id.

    /usr/bin/python3 ptb_bot.py <api root> <token> <sqlite file>
"""

import signal
import sqlite3
import sys
import threading
import time

from telegram.ext import CommandHandler, Updater

HELP = ("<b>opsdesk</b>\n/status_page — service status\n"
        "/support &lt;text&gt; — open a ticket\n/tickets — your tickets")


def main():
    api, token, path = sys.argv[1:4]
    db = sqlite3.connect(path, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS tickets (id INTEGER PRIMARY KEY,"
               " user INTEGER, chat INTEGER, text TEXT, at REAL)")
    lock = threading.Lock()

    def help_(update, context):
        update.message.reply_text(HELP, parse_mode="HTML")

    def status_page(update, context):
        update.message.reply_text("🟢 <b>All systems operational</b>",
                                  parse_mode="HTML")

    def support(update, context):
        m = update.message
        with lock:
            cur = db.execute(
                "INSERT INTO tickets (user, chat, text, at) "
                "VALUES (?, ?, ?, ?)",
                (m.from_user.id, m.chat_id, " ".join(context.args),
                 time.time()))
            db.commit()
            tid = cur.lastrowid
        m.reply_text("✅ Ticket T-%d opened" % tid)

    up = Updater(token, base_url=api + "/bot", workers=4, use_context=True)
    up.dispatcher.add_handler(CommandHandler("help", help_, run_async=True))
    up.dispatcher.add_handler(
        CommandHandler("status_page", status_page, run_async=True))
    up.dispatcher.add_handler(
        CommandHandler("support", support, run_async=True))
    up.start_polling(timeout=1)
    print("ready", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    done.wait()
    up.stop()


if __name__ == "__main__":
    main()

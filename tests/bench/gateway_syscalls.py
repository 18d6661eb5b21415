"""gateway_syscalls.py -- system calls, and futex calls (thread hand-offs),
per update in telegram-gateway, counted for the throughput phase of
gateway_bench: N /tickets from N users queued at once, throttling off,
until every reply was sent. Counted by `perf stat` on the syscall
tracepoints when perf may (root or perf_event_paranoid <= 1), else by
`strace -c -f`, which slows the gateway enough to change how it batches:
its figures are higher and only comparable with each other.

Opt-in, not a ctest (it needs perf or strace and the right to trace).
Also prints the gateway's commits (store batches) per update. To compare
with another build of the gateway (e.g. the one before a change):

    python3 tests/bench/gateway_syscalls.py --bin build/bin
    GATEWAY_EXE=/path/to/old/telegram-gateway \\
        python3 tests/bench/gateway_syscalls.py --bin build/bin

Prints syscalls/update and futex/update; asserts only that everything was
answered.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "system"))
import harness as h  # noqa: E402
from fake_telegram import FakeTelegram  # noqa: E402

TOKEN = "555:bench-token"


def bin_dir(tmp):
    """ARGS.bin, or a copy of it (links) with GATEWAY_EXE as the gateway."""
    exe = os.environ.get("GATEWAY_EXE")
    if not exe:
        return h.ARGS.bin
    d = os.path.join(tmp, "bin")
    os.mkdir(d)
    for name in os.listdir(h.ARGS.bin):
        os.symlink(os.path.join(h.ARGS.bin, name), os.path.join(d, name))
    os.remove(os.path.join(d, "telegram-gateway"))
    os.symlink(os.path.abspath(exe), os.path.join(d, "telegram-gateway"))
    return d


def summary(path):
    """{syscall: calls} and the total from strace -c output."""
    calls, total = {}, 0
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 5 or not parts[3].isdigit():
                continue
            if parts[-1] == "total":
                total = int(parts[3])
            else:
                calls[parts[-1]] = int(parts[3])
    return calls, total


def use_perf():
    if os.environ.get("GATEWAY_SYSCALLS_STRACE") or not shutil.which("perf"):
        return False
    try:
        with open("/proc/sys/kernel/perf_event_paranoid") as f:
            paranoid = int(f.read())
    except OSError:
        return False
    return os.geteuid() == 0 or paranoid <= 1


def perf_fds(pid):
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if "perf_event" in os.readlink("/proc/%d/fd/%s" % (pid, fd)):
                n += 1
        except OSError:
            pass
    return n


def perf_summary(path):
    """{"futex": n} and the total from perf stat -x, output."""
    calls, total = {}, 0
    with open(path) as f:
        for line in f:
            parts = line.strip().split(",")
            if len(parts) < 3 or not parts[0].isdigit():
                continue
            if parts[2] == "raw_syscalls:sys_enter":
                total = int(parts[0])
            elif parts[2] == "syscalls:sys_enter_futex":
                calls["futex"] = int(parts[0])
    return calls, total


def commits(gw):
    """Store batches the gateway committed so far."""
    return h.metric(gw.metrics(), "opsdesk_store_commit_seconds_count") or 0


def main():
    h.parse_args()
    if not use_perf() and shutil.which("strace") is None:
        print("neither perf nor strace usable: skipped")
        return
    n = int(os.environ.get("GATEWAY_BENCH_N", "1000"))
    tmp = tempfile.mkdtemp(prefix="gw-syscalls-")
    try:
        h.ARGS.bin = bin_dir(tmp)
        out = os.path.join(tmp, "strace.txt")
        with h.Suite("gateway-syscalls") as s:
            s.config = {"admins": [1], "gateway": {
                "throttle": {"enabled": False}, "poll_timeout": "1s",
                "workers": 4}}
            fake = FakeTelegram(TOKEN, max_poll_wait=0.5)
            s.start("bus-relay")
            s.start("ticket-service")
            gw = s.start("telegram-gateway", env={
                "TELEGRAM_API_URL": fake.url, "TELEGRAM_BOT_TOKEN": TOKEN,
                "OPSDESK_LOG_LEVEL": "info"})
            fake.wait_call("setMyCommands")
            pid = gw.popen.pid
            threads = len(os.listdir("/proc/%d/task" % pid))
            if use_perf():
                st = subprocess.Popen(
                    ["perf", "stat", "-x,", "-o", out, "-e",
                     "raw_syscalls:sys_enter,syscalls:sys_enter_futex",
                     "-p", str(pid)], stderr=subprocess.DEVNULL)
                # Attached when it holds an event per thread and kind.
                h.wait_until(lambda: perf_fds(st.pid) >= 2 * threads, 10,
                             "perf attached")
            else:
                st = subprocess.Popen(
                    ["strace", "-f", "-c", "-o", out, "-p", str(pid)],
                    stderr=subprocess.PIPE, text=True)
                # strace says when it is attached (to every thread).
                line = st.stderr.readline()
                h.check("attached" in line, "strace: %s" % line)
            c0 = commits(gw)
            m = fake.mark()
            for i in range(n):
                fake.message("/tickets", user=10000 + i)
            h.wait_until(lambda: len([r for r in fake.requests[m:]
                                      if r.method == "sendMessage"]) >= n,
                         300, "%d replies" % n)
            st.send_signal(signal.SIGINT)
            st.wait(30)
            c1 = commits(gw)
            gw.stop()
            fake.close()
        calls, total = perf_summary(out) if use_perf() else summary(out)
        print("gateway %s (%s): %d updates: %.1f syscalls/update, "
              "%.2f futex/update, %.3f store commits/update" % (
                  os.environ.get("GATEWAY_EXE", "this build"),
                  "perf" if use_perf() else "strace", n, total / n,
                  calls.get("futex", 0) / n, (c1 - c0) / n))
        if not use_perf():
            top = sorted(calls.items(), key=lambda kv: -kv[1])[:8]
            print("  per update: " + ", ".join(
                "%s %.2f" % (k, v / n) for k, v in top))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

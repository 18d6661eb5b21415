"""A full disk is visible: ticket-service on a small tmpfs that fills up
logs it once (with the store's path and the free space), counts it in
/metrics, turns /readyz to 503 and tells the client that the disk is
full; when space is freed it is ready again by itself and writes commit.

Needs mount(8) and the right to mount a tmpfs (CI runs as root); skipped
with the reason otherwise."""

import errno
import os
import subprocess

import harness as h


def mount_tmpfs(path, size):
    os.makedirs(path, exist_ok=True)
    if os.geteuid() != 0:
        raise h.Skip("mounting a tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size,
                        "tmpfs", path], capture_output=True, timeout=20)
    if r.returncode != 0:
        raise h.Skip("cannot mount a tmpfs here: %s" %
                     r.stderr.decode().strip())


def umount(path):
    r = subprocess.run(["umount", path], capture_output=True, timeout=20)
    if r.returncode != 0:
        subprocess.run(["umount", "-l", path], capture_output=True,
                       timeout=20)


def fill(path):
    """Write a file until the filesystem is full."""
    chunk = b"\0" * 4096
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(chunk)
        except OSError as e:
            h.eq(e.errno, errno.ENOSPC, "filling the tmpfs")


def create(s, text):
    return s.opsctl("--as", "42", "call", "ticket", "create",
                    '{"text": "%s"}' % text)


def sample(p, name, **labels):
    return h.metric(p.metrics(), name, **labels)


def test_disk_full_then_freed(s):
    mnt = s.path("small")
    mount_tmpfs(mnt, "2m")
    try:
        s.config = {"admins": [1]}
        s.start("bus-relay")
        svc = s.start("ticket-service", env={"OPSDESK_DATA_DIR": mnt})
        h.eq(create(s, "before").rc, 0)
        h.eq(sample(svc, "opsdesk_store_writable"), 1)

        filler = os.path.join(mnt, "filler")
        fill(filler)
        # LMDB reuses its free pages first: create until a commit needs
        # a new page of the file.
        failed = None
        for i in range(300):
            r = create(s, "while full %d" % i)
            if r.rc != 0:
                failed = r
                break
        h.check(failed is not None, "no create failed on a full disk")
        h.contains(failed.stdout + failed.stderr, "the disk is full")

        st, body, _ = svc.http_get("/readyz")
        h.eq(st, 503, "/readyz while writes fail")
        h.contains(body.decode(), "store")
        h.eq(sample(svc, "opsdesk_store_writable"), 0)
        h.check(sample(svc, "opsdesk_store_write_errors_total",
                       reason="disk_full") >= 1, "disk_full counted")
        # once per episode, however many writes fail
        h.check(create(s, "still full").rc != 0, "a second write fails")
        full = [l for l in svc.log_lines()
                if l["msg"] == "store: writes fail, the disk is full"]
        h.eq(len(full), 1, "one log line per episode")
        h.eq(full[0]["level"], "error")
        h.eq(full[0]["path"], os.path.join(mnt, "ticket-service"))
        h.check(int(full[0]["free_bytes"]) < 64 * 1024, "free space shown")

        # space again: ready again without a write from outside
        os.unlink(filler)
        svc.wait_http("/readyz", timeout=10)
        h.wait_until(lambda: any(
            l["msg"] == "store: writes commit again"
            for l in svc.log_lines()), 5, "recovery logged")
        h.eq(sample(svc, "opsdesk_store_writable"), 1)
        r = create(s, "after")
        h.eq(r.rc, 0, r.stderr)
    finally:
        for p in s.procs:
            p.kill()
        umount(mnt)


if __name__ == "__main__":
    h.main()

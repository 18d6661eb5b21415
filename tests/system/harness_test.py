"""Self-test of harness.py: the parts that need no opsdesk executable
(ports, the Prometheus format check, the envelope helpers)."""

import os

import harness as h


def test_free_ports_distinct():
    ports = [h.free_port() for _ in range(50)]
    h.eq(len(set(ports)), 50, "distinct ports")


def test_free_ports_distinct_across_processes():
    """Two test processes running at once never get the same port: the
    CI once failed on "Address in use" when two system tests picked the
    same random port in the same second."""
    import subprocess
    import sys
    mine = set(h.free_port() for _ in range(300))
    here = os.path.dirname(os.path.abspath(h.__file__))
    code = ("import sys; sys.path.insert(0, %r); import harness as h; "
            "print(' '.join(str(h.free_port()) for _ in range(300)))" % here)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True).stdout
    theirs = set(int(x) for x in out.split())
    h.eq(len(theirs), 300, "the other process got its ports")
    h.eq(mine & theirs, set(), "no port given to both")


def test_suite_env(s):
    e = s.env(FOO=1)
    h.eq(e["OPSDESK_DATA_DIR"], s.data_dir)
    h.eq(e["FOO"], "1")
    urls = [s.bus_publish, s.bus_subscribe] + list(s.urls.values())
    h.eq(len(set(urls)), len(urls), "addresses distinct")
    s.config = {"admins": [7]}
    s.write_config()
    with open(s.config_path) as f:
        h.contains(f.read(), "7")


def test_shell_environment_cleared():
    """A developer's OPSDESK_* does not reach what the tests start."""
    import os
    import subprocess
    os.environ["OPSDESK_BUS_PUBLISH"] = "tcp://127.0.0.1:1"
    os.environ["OPSDESK_TEST_QUICK"] = "1"
    h.clear_env()
    h.check("OPSDESK_BUS_PUBLISH" not in os.environ, "cleared")
    h.eq(os.environ.get("OPSDESK_TEST_QUICK"), "1", "test knobs stay")
    del os.environ["OPSDESK_TEST_QUICK"]
    out = subprocess.run(["env"], capture_output=True, text=True).stdout
    h.check("OPSDESK_BUS_PUBLISH" not in out, "a child inherits none")


GOOD = """# HELP opsdesk_relay_messages_total Messages forwarded.
# TYPE opsdesk_relay_messages_total counter
opsdesk_relay_messages_total{domain="health"} 3
opsdesk_relay_messages_total{domain="a\\"b"} 1
# TYPE opsdesk_lat_seconds histogram
opsdesk_lat_seconds_bucket{le="0.1"} 1
opsdesk_lat_seconds_bucket{le="+Inf"} 2
opsdesk_lat_seconds_sum 0.3
opsdesk_lat_seconds_count 2
# TYPE up gauge
up 1
"""


def test_prometheus_good():
    s = h.parse_prometheus(GOOD)
    h.eq(h.metric(s, "opsdesk_relay_messages_total", domain="health"), 3.0)
    h.eq(h.metric(s, "up"), 1.0)
    h.eq(h.metric(s, "missing"), None)


def test_prometheus_bad():
    bad = [
        GOOD.replace("opsdesk_relay_messages_total", "opsdesk_relay_msgs"),
        GOOD.replace("} 3", "} x"),
        GOOD.replace('{domain="health"}', '{domain=health}'),
        GOOD.replace('le="+Inf"', 'le="1"'),
        GOOD + "# TYPE up gauge\n",
        GOOD + "opsdesk_relay_messages_total{domain=\"z\"} 1\n",
        GOOD.rstrip("\n"),
        GOOD + "up 2\n",
    ]
    for i, text in enumerate(bad):
        try:
            h.parse_prometheus(text)
        except h.Failure:
            continue
        raise h.Failure("bad exposition %d accepted" % i)


def test_envelope_roundtrip(s):
    data = s.encode_envelope('schema_version: 1 topic: "health.changed" '
                             'seq: 9007199254740993')
    h.check(len(data) > 0)
    text = s.decode_envelope(data)
    h.contains(text, "seq: 9007199254740993")
    h.contains(text, 'topic: "health.changed"')


if __name__ == "__main__":
    h.main()

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>

#include "auth.h"
#include "util/util.h"

static char dir[64];

static int
setup_dir(void **state)
{
	strcpy(dir, "/tmp/auth_test.XXXXXX");
	assert_non_null(mkdtemp(dir));
	char err[256];
	assert_int_equal(auth_certs_init(dir, 3, false, err, sizeof(err)), 0);
	return 0;
}

static int
teardown_dir(void **state)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	unsetenv("OPSDESK_TLS_DIR");
	unsetenv("OPSDESK_IDENTITY");
	unsetenv("OPSDESK_ALLOW_INSECURE");
	auth_process_reset();
	return 0;
}

static void
test_loopback(void **state)
{
	static const char *yes[]
	    = { "tcp://127.0.0.1:7410", "tcp://127.3.4.5:1",
		      "tcp://localhost:7400", "tls+tcp://127.0.0.1:7410",
		      "tcp://[::1]:7410", "ipc:///tmp/x", "inproc://a" };
	static const char *no[] = { "tcp://0.0.0.0:7410", "tcp://*:7410",
		"tcp://10.0.0.1:7410", "tcp://ticket-service:7410",
		"tcp://[::]:7410", "tcp://:7410", "tcp://128.0.0.1:1",
		"tls+tcp://0.0.0.0:7410", "nonsense", "" };
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!auth_url_is_loopback(yes[i])) {
			fail_msg("%s should be loopback", yes[i]);
		}
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		if (auth_url_is_loopback(no[i])) {
			fail_msg("%s should not be loopback", no[i]);
		}
	}
	assert_false(auth_url_is_loopback(NULL));
}

static void
test_url_check(void **state)
{
	unsetenv("OPSDESK_TLS_DIR");
	auth_process_reset();
	assert_int_equal(auth_url_check("tcp://127.0.0.1:1", "dial"), 0);
	assert_int_equal(
	    auth_url_check("tcp://0.0.0.0:1", "listen"), OD_EPERM);
	assert_int_equal(
	    auth_url_check("tls+tcp://0.0.0.0:1", "listen"), OD_EINVAL);
	setenv("OPSDESK_ALLOW_INSECURE", "1", 1);
	assert_int_equal(auth_url_check("tcp://0.0.0.0:1", "listen"), 0);
	unsetenv("OPSDESK_ALLOW_INSECURE");
	setenv("OPSDESK_TLS_DIR", dir, 1);
	setenv("OPSDESK_IDENTITY", "ticket-service", 1);
	auth_process_reset();
	assert_int_equal(auth_url_check("tls+tcp://0.0.0.0:1", "listen"), 0);
	assert_int_equal(
	    auth_url_check("tcp://0.0.0.0:1", "listen"), OD_EPERM);
	/* An identity without credentials: everything refuses. */
	setenv("OPSDESK_IDENTITY", "mallory", 1);
	auth_process_reset();
	auth *a = (auth *) 1;
	assert_int_equal(auth_process(&a), OD_EINVAL);
	assert_int_equal(
	    auth_url_check("tcp://127.0.0.1:1", "dial"), OD_EINVAL);
	auth_process_reset();
}

static void
test_rpc_policy(void **state)
{
	Opsdesk__V1__Actor sys = OPSDESK__V1__ACTOR__INIT;
	sys.is_admin = true;
	Opsdesk__V1__Actor user = OPSDESK__V1__ACTOR__INIT;
	user.user_id = 42;
	Opsdesk__V1__Actor admin = OPSDESK__V1__ACTOR__INIT;
	admin.user_id = 1;
	admin.is_admin = true;
	Opsdesk__V1__Actor fake = OPSDESK__V1__ACTOR__INIT;
	fake.user_id = 42;
	fake.is_admin = true;
	char why[160];
	int64_t admins[] = { 1 };
	auth_set_admins(admins, 1);

	/* Auth off: only the admin list applies. */
	assert_true(auth_rpc_allowed(
	    NULL, "ticket-service", "get", &user, why, sizeof(why)));
	assert_true(auth_rpc_allowed(
	    NULL, "ticket-service", "get", &admin, why, sizeof(why)));
	assert_false(auth_rpc_allowed(
	    NULL, "ticket-service", "get", &fake, why, sizeof(why)));
	assert_non_null(strstr(why, "not an admin"));
	/* The gateway and opsctl act for users. */
	assert_true(auth_rpc_allowed("telegram-gateway", "ticket-service",
	    "create", &user, why, sizeof(why)));
	assert_true(auth_rpc_allowed(
	    "opsctl", "ticket-service", "set_tier", &admin, why, sizeof(why)));
	assert_true(auth_rpc_allowed(
	    "opsctl", "incident-service", "tick", &sys, why, sizeof(why)));
	assert_false(auth_rpc_allowed("telegram-gateway", "ticket-service",
	    "set_tier", &fake, why, sizeof(why)));
	assert_false(auth_rpc_allowed("telegram-gateway", "ticket-service",
	    "queue", &sys, why, sizeof(why)));
	assert_true(auth_rpc_allowed("telegram-gateway", "incident-service",
	    "alerts", &sys, why, sizeof(why)));
	/* Service identities: their reads, a system actor, nothing else. */
	struct {
		const char *id, *svc, *method;
		bool ok;
	} t[] = {
		{ "status-publisher", "health-prober", "snapshot", true },
		{ "status-publisher", "health-prober", "history", true },
		{ "status-publisher", "incident-service", "snapshot", true },
		{ "status-publisher", "ticket-service", "get", false },
		{ "status-publisher", "ticket-service", "snapshot", false },
		{ "status-publisher", "incident-service", "create", false },
		{ "incident-service", "health-prober", "snapshot", true },
		{ "incident-service", "health-prober", "transitions", true },
		{ "incident-service", "ticket-service", "stats", true },
		{ "incident-service", "ticket-service", "set_tier", false },
		{ "ticket-service", "incident-service", "snapshot", true },
		{ "ticket-service", "incident-service", "create", false },
		{ "health-prober", "incident-service", "snapshot", true },
		{ "health-prober", "ticket-service", "ping", true },
		{ "bus-relay", "ticket-service", "get", false },
		{ "bus-relay", "ticket-service", "ping", true },
		{ "status-publisher", "health-prober", "snapshots", false },
		{ "status-publisher", "health-prober", "snap", false },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (auth_rpc_allowed(
		        t[i].id, t[i].svc, t[i].method, &sys, why, sizeof(why))
		    != t[i].ok) {
			fail_msg("%s -> %s.%s: want %d", t[i].id, t[i].svc,
			    t[i].method, t[i].ok);
		}
	}
	/* A service identity never acts for a user, admin or not. */
	assert_false(auth_rpc_allowed("status-publisher", "incident-service",
	    "snapshot", &admin, why, sizeof(why)));
	assert_non_null(strstr(why, "may not act for a user"));
	assert_false(auth_rpc_allowed("incident-service", "ticket-service",
	    "stats", &user, why, sizeof(why)));
	/* No admin list loaded: is_admin is not checked against it. */
	auth_clear_admins();
	assert_true(auth_rpc_allowed(
	    NULL, "ticket-service", "get", &fake, why, sizeof(why)));
	/* An empty list: nobody is an admin. */
	auth_set_admins(NULL, 0);
	assert_false(auth_rpc_allowed(
	    "opsctl", "ticket-service", "get", &admin, why, sizeof(why)));
	auth_clear_admins();
}

static void
test_topic_acl(void **state)
{
	struct {
		const char *id, *topic;
		bool ok;
	} t[] = {
		{ "ticket-service", "ticket.created", true },
		{ "ticket-service", "ticket.notify", true },
		{ "incident-service", "ticket.notify", false },
		{ "opsctl", "ticket.notify", false },
		{ "incident-service", "incident.opened", true },
		{ "incident-service", "maintenance.scheduled", true },
		{ "incident-service", "alert.incident", true },
		{ "incident-service", "ops.digest", true },
		{ "opsctl", "ops.reload", true },
		{ "opsctl", "alert.incident", false },
		{ "health-prober", "health.changed", true },
		{ "health-prober", "healthy.x", false },
		{ "status-publisher", "status.changed", true },
		{ "telegram-gateway", "gateway.sent", true },
		{ "telegram-gateway", "ticket.notify", false },
		{ "bus-relay", "health.changed", false },
		{ "ticket-service", "tickets.x", false },
		{ "ticket-service", "ticket", false },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (auth_topic_allowed(t[i].id, t[i].topic) != t[i].ok) {
			fail_msg(
			    "%s %s: want %d", t[i].id, t[i].topic, t[i].ok);
		}
	}
	assert_false(auth_topic_allowed(NULL, "ticket.x"));
}

static void
test_certs_files(void **state)
{
	char err[256];
	/* Populated: nothing changes. */
	struct stat before, after;
	char path[256];
	snprintf(path, sizeof(path), "%s/ca.crt", dir);
	assert_int_equal(stat(path, &before), 0);
	assert_int_equal(
	    auth_certs_init(dir, 3, false, err, sizeof(err)), OD_EEXIST);
	assert_non_null(strstr(err, "nothing changed"));
	for (int i = 0; auth_identities[i] != NULL; i++) {
		const char *ext[] = { "key", "secret" };
		for (int e = 0; e < 2; e++) {
			snprintf(path, sizeof(path), "%s/%s.%s", dir,
			    auth_identities[i], ext[e]);
			struct stat st;
			assert_int_equal(stat(path, &st), 0);
			assert_int_equal(st.st_mode & 0777, 0600);
		}
		snprintf(
		    path, sizeof(path), "%s/%s.crt", dir, auth_identities[i]);
		assert_int_equal(access(path, R_OK), 0);
	}
	/* A missing credential is added, the rest stays. */
	snprintf(path, sizeof(path), "%s/opsctl.secret", dir);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(auth_certs_init(dir, 3, false, err, sizeof(err)), 0);
	assert_int_equal(access(path, R_OK), 0);
	snprintf(path, sizeof(path), "%s/ca.crt", dir);
	assert_int_equal(stat(path, &after), 0);
	assert_int_equal(before.st_ino, after.st_ino);
	assert_int_equal(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);
}

static int64_t
fixed_clock(void *arg)
{
	return *(int64_t *) arg;
}

static void
test_seal_verify(void **state)
{
	char err[256];
	auth *gw, *tk, *sp;
	assert_int_equal(
	    auth_open(&gw, dir, "telegram-gateway", err, sizeof(err)), 0);
	assert_int_equal(
	    auth_open(&tk, dir, "ticket-service", err, sizeof(err)), 0);
	assert_int_equal(
	    auth_open(&sp, dir, "nobody", err, sizeof(err)), OD_ENOTFOUND);
	assert_string_equal(auth_identity(gw), "telegram-gateway");

	/* A bus frame: the header goes after the topic's 0x00. */
	const char frame[] = "ticket.notify\0\x08\x01payload";
	size_t len = sizeof(frame) - 1;
	uint8_t *buf = malloc(len);
	memcpy(buf, frame, len);
	assert_int_equal(auth_seal(tk, &buf, &len, 14), 0);
	assert_true(auth_has_header(buf + 14, len - 14));
	char id[AUTH_MAX_IDENTITY + 1];
	size_t off = 0;
	assert_int_equal(
	    auth_verify(gw, buf, len, 14, id, &off, err, sizeof(err)), 0);
	assert_string_equal(id, "ticket-service");
	assert_int_equal(len - off, sizeof(frame) - 1 - 14);
	assert_memory_equal(buf + off, frame + 14, len - off);
	/* The same bytes again: a replay. */
	assert_int_equal(
	    auth_verify(gw, buf, len, 14, id, &off, err, sizeof(err)),
	    OD_EPERM);
	assert_non_null(strstr(err, "replayed"));
	/* Any byte changed, the topic included: refused. */
	for (size_t i = 0; i < len; i++) {
		if (i >= 14 && i < 19) {
			continue; /* magic and length: malformed, below */
		}
		buf[i] ^= 0x20;
		int rv = auth_verify(
		    gw, buf, len, 14, id, &off, err, sizeof(err));
		if (rv == 0) {
			fail_msg("byte %zu changed and still verifies", i);
		}
		buf[i] ^= 0x20;
	}
	free(buf);

	/* An rpc request (no prefix), checked against the clock. */
	int64_t now = od_now_ms();
	od_clock_set(fixed_clock, &now);
	uint8_t hdr[AUTH_MAX_HEADER];
	size_t hlen;
	const char req[] = "\x0a\x02id";
	assert_int_equal(auth_header_make(gw, NULL, 0, req, 4, hdr, &hlen), 0);
	uint8_t msg[AUTH_MAX_HEADER + 4];
	memcpy(msg, hdr, hlen);
	memcpy(msg + hlen, req, 4);
	now += AUTH_WINDOW_MS + 1;
	assert_int_equal(
	    auth_verify(tk, msg, hlen + 4, 0, id, &off, err, sizeof(err)),
	    OD_EPERM);
	assert_non_null(strstr(err, "off the clock"));
	now -= 2;
	assert_int_equal(
	    auth_verify(tk, msg, hlen + 4, 0, id, &off, err, sizeof(err)), 0);
	assert_string_equal(id, "telegram-gateway");
	assert_int_equal(off, hlen);
	od_clock_set(NULL, NULL);

	/* No header at all, or cut short. */
	assert_int_equal(
	    auth_verify(tk, req, 4, 0, id, &off, err, sizeof(err)),
	    OD_EMALFORMED);
	assert_int_equal(
	    auth_verify(tk, msg, hlen - 1, 0, id, &off, err, sizeof(err)),
	    OD_EMALFORMED);
	auth_header h;
	assert_int_equal(auth_header_parse(msg, 5, &h), OD_EMALFORMED);
	msg[4] = 0;
	assert_int_equal(auth_header_parse(msg, hlen, &h), OD_EMALFORMED);
	msg[4] = AUTH_MAX_IDENTITY + 1;
	assert_int_equal(
	    auth_header_parse(msg, sizeof(msg), &h), OD_EMALFORMED);

	/* A peer whose secret this process does not hold is refused. */
	char path[256];
	snprintf(path, sizeof(path), "%s/opsctl.secret", dir);
	char keep[256];
	snprintf(keep, sizeof(keep), "%s/opsctl.secret.keep", dir);
	assert_int_equal(rename(path, keep), 0);
	auth *tk2;
	assert_int_equal(
	    auth_open(&tk2, dir, "ticket-service", err, sizeof(err)), 0);
	assert_int_equal(rename(keep, path), 0);
	auth *op;
	assert_int_equal(auth_open(&op, dir, "opsctl", err, sizeof(err)), 0);
	assert_int_equal(auth_header_make(op, NULL, 0, req, 4, hdr, &hlen), 0);
	memcpy(msg, hdr, hlen);
	memcpy(msg + hlen, req, 4);
	assert_int_equal(
	    auth_verify(tk2, msg, hlen + 4, 0, id, &off, err, sizeof(err)),
	    OD_EPERM);
	assert_non_null(strstr(err, "no key"));
	assert_int_equal(
	    auth_verify(tk, msg, hlen + 4, 0, id, &off, err, sizeof(err)), 0);
	auth_close(op);
	auth_close(tk2);
	auth_close(gw);
	auth_close(tk);
}

/* A TLS listener on a port the kernel picks (not a guessed one that a
 * test running in parallel may hold); `url` is rewritten to the port. */
static void
listen_tls(nng_socket rep, nng_listener *l, char *url, size_t len)
{
	int port = 0;
	snprintf(url, len, "tls+tcp://127.0.0.1:0");
	assert_int_equal(nng_listener_create(l, rep, url), 0);
	assert_int_equal(auth_listener_setup(*l, url), 0);
	assert_int_equal(nng_listener_start(*l, 0), 0);
	assert_int_equal(
	    nng_listener_get_int(*l, NNG_OPT_TCP_BOUND_PORT, &port), 0);
	assert_true(port > 0);
	snprintf(url, len, "tls+tcp://127.0.0.1:%d", port);
}

/* Both sides verified: a suite credential connects, a plain or foreign
 * one does not. */
static void
test_tls_transport(void **state)
{
	setenv("OPSDESK_TLS_DIR", dir, 1);
	setenv("OPSDESK_IDENTITY", "ticket-service", 1);
	auth_process_reset();
	char url[64];
	nng_socket rep, req;
	nng_listener l;
	nng_dialer d;
	assert_int_equal(nng_rep0_open(&rep), 0);
	listen_tls(rep, &l, url, sizeof(url));

	/* A dialer with NNG's default TLS config (no client certificate,
	 * no CA): the handshake fails. */
	assert_int_equal(nng_req0_open(&req), 0);
	nng_socket_set_ms(req, NNG_OPT_RECVTIMEO, 500);
	nng_socket_set_ms(req, NNG_OPT_SENDTIMEO, 500);
	int rv = nng_dial(req, url, NULL, 0);
	assert_int_not_equal(rv, 0);
	nng_close(req);

	/* The suite's client config. */
	assert_int_equal(nng_req0_open(&req), 0);
	nng_socket_set_ms(req, NNG_OPT_RECVTIMEO, 5000);
	assert_int_equal(nng_dialer_create(&d, req, url), 0);
	assert_int_equal(auth_dialer_setup(d, url), 0);
	assert_int_equal(nng_dialer_start(d, 0), 0);
	assert_int_equal(nng_send(req, "hi", 2, 0), 0);
	char *got;
	size_t n;
	assert_int_equal(nng_recv(rep, &got, &n, NNG_FLAG_ALLOC), 0);
	assert_int_equal(n, 2);
	nng_free(got, n);
	nng_close(req);
	nng_close(rep);
}

static void
write_text(const char *name, const char *text)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static char *
read_text(const char *d, const char *name)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", d, name);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	static char buf[8192];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	return strdup(buf);
}

/* Seal a request as a and verify it at b: 0 or auth_verify's error. */
static int
roundtrip(auth *a, auth *b, char *err, size_t errlen)
{
	static const char req[] = "\x0a\x02id";
	uint8_t msg[AUTH_MAX_HEADER + 4];
	size_t hlen, off;
	char id[AUTH_MAX_IDENTITY + 1];
	assert_int_equal(auth_header_make(a, NULL, 0, req, 4, msg, &hlen), 0);
	memcpy(msg + hlen, req, 4);
	return auth_verify(b, msg, hlen + 4, 0, id, &off, err, errlen);
}

#define KEY_A                                                                 \
	"aa00000000000000000000000000000000000000000000000000000000000001"
#define KEY_B                                                                 \
	"bb00000000000000000000000000000000000000000000000000000000000002"

/* A reload takes the directory's keys as they are now; a file holding
 * two keys accepts both (the first signs); a file that does not load
 * changes nothing. */
static void
test_reload_keys(void **state)
{
	char err[256];
	char *saved = read_text(dir, "opsctl.secret");
	auth *tk, *op_old, *op_a, *op_b, *op_ab;
	assert_int_equal(
	    auth_open(&tk, dir, "ticket-service", err, sizeof(err)), 0);
	assert_int_equal(
	    auth_open(&op_old, dir, "opsctl", err, sizeof(err)), 0);
	assert_int_equal(roundtrip(op_old, tk, err, sizeof(err)), 0);

	/* opsctl gets a new key: until the verifier reloads it is refused. */
	write_text("opsctl.secret", KEY_A "\n");
	assert_int_equal(auth_open(&op_a, dir, "opsctl", err, sizeof(err)), 0);
	assert_int_equal(roundtrip(op_a, tk, err, sizeof(err)), OD_EPERM);
	assert_non_null(strstr(err, "bad MAC"));
	assert_int_equal(auth_reload(tk, err, sizeof(err)), 0);
	assert_int_equal(roundtrip(op_a, tk, err, sizeof(err)), 0);
	assert_int_equal(roundtrip(op_old, tk, err, sizeof(err)), OD_EPERM);

	/* A rotation without a gap: "B A" accepts both, B signs. */
	write_text("opsctl.secret", KEY_B "\n" KEY_A "\n");
	assert_int_equal(auth_reload(tk, err, sizeof(err)), 0);
	assert_int_equal(
	    auth_open(&op_ab, dir, "opsctl", err, sizeof(err)), 0);
	write_text("opsctl.secret", KEY_B);
	assert_int_equal(auth_open(&op_b, dir, "opsctl", err, sizeof(err)), 0);
	assert_int_equal(roundtrip(op_a, tk, err, sizeof(err)), 0);
	assert_int_equal(roundtrip(op_b, tk, err, sizeof(err)), 0);
	assert_int_equal(roundtrip(op_ab, tk, err, sizeof(err)), 0);
	/* ... and op_ab signed with B: a verifier with B alone takes it. */
	assert_int_equal(auth_reload(tk, err, sizeof(err)), 0);
	assert_int_equal(roundtrip(op_ab, tk, err, sizeof(err)), 0);
	assert_int_equal(roundtrip(op_a, tk, err, sizeof(err)), OD_EPERM);

	/* Bad files: the reload fails, says which, and B still verifies. */
	const char *bad[]
	    = { "zz", KEY_B "x", KEY_B " " KEY_A " " KEY_A " " KEY_A " " KEY_A,
		      "", KEY_A "\n" KEY_B "\n..." };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_text("opsctl.secret", bad[i]);
		assert_int_equal(
		    auth_reload(tk, err, sizeof(err)), OD_EMALFORMED);
		assert_non_null(strstr(err, "opsctl.secret"));
		assert_int_equal(roundtrip(op_b, tk, err, sizeof(err)), 0);
	}
	write_text("opsctl.secret", KEY_B);
	char *ca = read_text(dir, "ca.crt");
	write_text("ca.crt", "-----BEGIN CERTIFICATE-----\nnope\n");
	assert_int_equal(auth_reload(tk, err, sizeof(err)), OD_EMALFORMED);
	assert_non_null(strstr(err, "TLS credentials"));
	write_text("ca.crt", ca);
	free(ca);
	assert_int_equal(roundtrip(op_b, tk, err, sizeof(err)), 0);

	/* Nothing to reload without a directory. */
	uint8_t key[AUTH_KEY_LEN] = { 1 };
	auth *k;
	assert_int_equal(auth_open_key(&k, "opsctl", key), 0);
	assert_int_equal(auth_reload(k, err, sizeof(err)), OD_EINVAL);
	auth_close(k);

	write_text("opsctl.secret", saved);
	free(saved);
	auth_close(op_old);
	auth_close(op_a);
	auth_close(op_b);
	auth_close(op_ab);
	auth_close(tk);
}

/* Dial url with the credential of identity in directory d; true when a
 * message gets through (the handshake verified both sides). */
static bool
tls_client_gets_through(const char *url, const char *d, nng_socket rep)
{
	char *ca = read_text(d, "ca.crt");
	char *crt = read_text(d, "opsctl.crt");
	char *key = read_text(d, "opsctl.key");
	nng_tls_config *cfg;
	assert_int_equal(nng_tls_config_alloc(&cfg, NNG_TLS_MODE_CLIENT), 0);
	assert_int_equal(nng_tls_config_ca_chain(cfg, ca, NULL), 0);
	assert_int_equal(nng_tls_config_own_cert(cfg, crt, key, NULL), 0);
	assert_int_equal(
	    nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED), 0);
	free(ca);
	free(crt);
	free(key);
	nng_socket req;
	nng_dialer dl;
	assert_int_equal(nng_req0_open(&req), 0);
	assert_int_equal(nng_dialer_create(&dl, req, url), 0);
	assert_int_equal(nng_dialer_set_ptr(dl, NNG_OPT_TLS_CONFIG, cfg), 0);
	nng_tls_config_free(cfg);
	bool ok = false;
	if (nng_dialer_start(dl, 0) == 0) {
		char *got;
		size_t n;
		ok = nng_send(req, "hi", 2, 0) == 0
		    && nng_recv(rep, &got, &n, NNG_FLAG_ALLOC) == 0;
		if (ok) {
			nng_free(got, n);
		}
	}
	nng_close(req);
	return ok;
}

/* A listener set up by auth takes the reloaded certificate and CA for
 * its next connections; a bad file keeps the running ones. */
static void
test_reload_tls(void **state)
{
	char other[64], old[64], cmd[512], err[256];
	strcpy(other, "/tmp/auth_test_other.XXXXXX");
	strcpy(old, "/tmp/auth_test_old.XXXXXX");
	assert_non_null(mkdtemp(other));
	assert_non_null(mkdtemp(old));
	assert_int_equal(
	    auth_certs_init(other, 3, false, err, sizeof(err)), 0);
	snprintf(cmd, sizeof(cmd), "cp -p '%s'/* '%s'/", dir, old);
	assert_int_equal(system(cmd), 0);

	setenv("OPSDESK_TLS_DIR", dir, 1);
	setenv("OPSDESK_IDENTITY", "ticket-service", 1);
	auth_process_reset();
	char url[64];
	nng_socket rep;
	nng_listener l;
	assert_int_equal(nng_rep0_open(&rep), 0);
	nng_socket_set_ms(rep, NNG_OPT_RECVTIMEO, 5000);
	listen_tls(rep, &l, url, sizeof(url));
	assert_true(tls_client_gets_through(url, old, rep));
	assert_false(tls_client_gets_through(url, other, rep));

	/* The whole directory replaced by one of another CA, then SIGHUP. */
	snprintf(cmd, sizeof(cmd), "cp -p '%s'/* '%s'/", other, dir);
	assert_int_equal(system(cmd), 0);
	assert_false(tls_client_gets_through(url, other, rep));
	assert_int_equal(auth_process_reload(err, sizeof(err)), 0);
	assert_true(tls_client_gets_through(url, other, rep));
	assert_false(tls_client_gets_through(url, old, rep));

	/* A key that does not load: logged by the caller, the running
	 * credentials stay. */
	write_text("ticket-service.key", "garbage");
	assert_int_not_equal(auth_process_reload(err, sizeof(err)), 0);
	assert_true(tls_client_gets_through(url, other, rep));
	nng_close(rep);

	/* Auth off: nothing to reload. */
	unsetenv("OPSDESK_TLS_DIR");
	auth_process_reset();
	assert_int_equal(auth_process_reload(err, sizeof(err)), OD_ENOTFOUND);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", other, old);
	assert_int_equal(system(cmd), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loopback),
		cmocka_unit_test(test_url_check),
		cmocka_unit_test(test_rpc_policy),
		cmocka_unit_test(test_topic_acl),
		cmocka_unit_test(test_certs_files),
		cmocka_unit_test(test_seal_verify),
		cmocka_unit_test(test_tls_transport),
		/* these two rewrite the directory: last */
		cmocka_unit_test(test_reload_keys),
		cmocka_unit_test(test_reload_tls),
	};
	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}

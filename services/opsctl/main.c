/*
 * opsctl — the operator's CLI: tail the bus as JSON, call any service
 * method with JSON, ping the services, back up a store. Addresses come
 * from the same environment and config file as the services.
 *
 * Exit codes: 0 ok; 1 an Error reply or a failed backup; 2 a service or
 * the relay unreachable or silent past the time-out; 64 bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/supplemental/util/platform.h>

#include "auth/auth.h"
#include "bus/bus.h"
#include "config/config.h"
#include "log/log.h"
#include "opsctl.h"
#include "pbjson/pbjson.h"
#include "rpc/rpc.h"
#include "store/store.h"
#include "util/util.h"

#define EXIT_ERROR_REPLY 1
#define EXIT_UNAVAILABLE 2
#define EXIT_USAGE       64

static const char usage_text[]
    = "Usage: opsctl [options] <command> [args]\n"
      "\n"
      "Commands:\n"
      "  tail [PREFIX...]                print every bus event as one JSON\n"
      "                                  line "
      "{\"topic\":…,\"envelope\":{…}};\n"
      "                                  undecodable ones as {\"topic\":…,\n"
      "                                  \"error\":…,\"bytes\":N}; Ctrl-C "
      "stops\n"
      "  call <service> <Method> [JSON]  send one request, print the reply\n"
      "                                  as JSON; Method as in the .proto\n"
      "                                  (list_mine) or CamelCase "
      "(ListMine);\n"
      "                                  JSON is that method's message\n"
      "                                  (\"-\": read it from stdin)\n"
      "  ping [service...]               round trip and version (default: "
      "all)\n"
      "  backup <service> <dir>          compacted copy of a service's "
      "store,\n"
      "                                  taken while it runs\n"
      "  publish <topic> [JSON]          send one event (JSON: an Envelope,\n"
      "                                  e.g. {\"ops\":{…}}; header filled)\n"
      "  publish-raw FILE...             send each file's bytes as one "
      "frame,\n"
      "                                  as is, in order (tests)\n"
      "  reload                          publish ops.config_reload: the\n"
      "                                  services that reload their config\n"
      "                                  (health-prober) re-read it\n"
      "  certs init DIR                  write a suite CA and one credential\n"
      "                                  per identity into DIR (--days N,\n"
      "                                  default 825; a populated DIR is\n"
      "                                  left alone unless --force)\n"
      "Services: ticket, incident, prober, status (and gateway for backup);\n"
      "executable names (ticket-service) work too.\n"
      "\n"
      "Options:\n"
      "  -t, --timeout MS   per request, and to connect (default 3000)\n"
      "      --url URL      the service's (call, ping) or the relay's\n"
      "                     (tail, publish) address\n"
      "      --as USER_ID   act as that Telegram user (not admin)\n"
      "      --admin        with --as: that user is an admin\n"
      "      --pretty       indent JSON output\n"
      "  -n, --count N      tail: stop after N events\n"
      "      --request-id ID  call: use ID (up to 32 characters) instead of "
      "a\n"
      "                     fresh one; a retry with the same ID is applied\n"
      "                     once and gets the first reply\n"
      "  -h, --help, --version\n"
      "\n"
      "Without --as the actor is an admin operator {user_id 0, \"opsctl\"}.\n"
      "Addresses: OPSDESK_TICKET_URL, OPSDESK_INCIDENT_URL, "
      "OPSDESK_PROBER_URL,\n"
      "OPSDESK_STATUS_URL, OPSDESK_BUS_SUBSCRIBE, OPSDESK_BUS_PUBLISH;\n"
      "stores under OPSDESK_DATA_DIR;\n"
      "OPSDESK_CONFIG as for the services.\n"
      "Exit: 0 ok, 1 error reply or failed backup, 2 unreachable or "
      "time-out,\n"
      "64 bad usage.\n";

typedef struct opts {
	int timeout_ms;
	const char *url;
	bool as_set;
	int64_t as_user;
	bool admin;
	bool pretty;
	long count;
	const char *request_id; /* --request-id: retry a call safely */
	int days;               /* certs init --days */
	bool force;             /* certs init --force */
	config *cfg;
} opts;

/* Set by the signal handler, read by the main and NNG threads. */
static atomic_int stop_requested;

static void
on_signal(int sig)
{
	int saved = errno;
	(void) sig;
	atomic_store(&stop_requested, 1);
	errno = saved;
}

static int
usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "opsctl: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n(try opsctl --help)\n");
	return EXIT_USAGE;
}

static const opsctl_service *
find_service(const char *name, bool need_rpc)
{
	const opsctl_service *s = opsctl_service_find(name);
	if (s == NULL || (need_rpc && s->request == NULL)) {
		fprintf(stderr,
		    "opsctl: unknown service \"%s\" (ticket, incident, "
		    "prober, status%s)\n",
		    name, need_rpc ? "" : ", gateway");
		return NULL;
	}
	return s;
}

static void
print_json(const ProtobufCMessage *m, const opts *o)
{
	char *text = pbjson_encode_string(m, o->pretty ? PBJSON_PRETTY : 0);
	if (text != NULL) {
		printf("%s\n", text);
	}
	free(text);
	fflush(stdout);
}

/* ---- call and ping ---- */

typedef struct target {
	const opsctl_service *svc;
	const char *url;
	rpc_client *client;
} target;

static int
target_open(target *t, const opsctl_service *svc, const opts *o)
{
	t->svc = svc;
	t->url = o->url ? o->url : config_service_url(o->cfg, svc->name);
	if (t->url == NULL || t->url[0] == '\0') {
		t->url = "(none)";
		return OD_EINVAL;
	}
	return rpc_client_open(&t->client, t->url, o->timeout_ms);
}

/* Dialing does not block: give the connection until the deadline. */
static bool
target_wait(target *t, int64_t deadline)
{
	while (t->client != NULL && !rpc_client_connected(t->client)) {
		if (od_mono_ms() >= deadline || stop_requested) {
			return false;
		}
		nng_msleep(5);
	}
	return t->client != NULL;
}

/* Send req and wait for the reply; prints the transport's failure. */
static int
target_call(target *t, const ProtobufCMessage *req, int64_t deadline,
    const opts *o, ProtobufCMessage **reply, char *why, size_t whylen)
{
	int rv;

	if (!target_wait(t, deadline)) {
		snprintf(
		    why, whylen, "not reachable within %d ms", o->timeout_ms);
		return OD_EUNAVAIL;
	}
	int left = (int) (deadline - od_mono_ms());
	rv = rpc_client_call(
	    t->client, req, t->svc->reply, reply, left < 100 ? 100 : left);
	if (rv == OD_ETIMEDOUT) {
		snprintf(why, whylen, "no reply within %d ms", o->timeout_ms);
	} else if (rv != 0) {
		snprintf(why, whylen, "%s", od_strerror(rv));
	}
	return rv;
}

static opsctl_actor
actor_of(const opts *o)
{
	opsctl_actor a = { .user_id = 0, .is_admin = true, .name = "opsctl" };
	if (o->as_set) {
		a.user_id = o->as_user;
		a.chat_id = o->as_user; /* a private chat's id is the user's */
		a.is_admin = o->admin;
	}
	return a;
}

/*
 * The JSON argument: "-" reads it from stdin (large or generated
 * payloads). *owned is set when the text must be freed.
 */
static const char *
json_arg(const char *arg, char **owned)
{
	sbuf b = SBUF_INIT;
	char buf[4096];
	size_t n;

	*owned = NULL;
	if (arg == NULL || strcmp(arg, "-") != 0) {
		return arg;
	}
	while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0) {
		sbuf_append_len(&b, buf, n);
	}
	if (sbuf_failed(&b)) {
		sbuf_free(&b);
		return NULL;
	}
	*owned = sbuf_take(&b, NULL);
	return *owned != NULL ? *owned : "";
}

static int
cmd_call(opts *o, int argc, char **argv)
{
	const opsctl_service *svc = find_service(argv[0], true);
	ProtobufCMessage *req = NULL, *reply = NULL;
	target t = { 0 };
	char err[512], rid[33];
	opsctl_actor actor = actor_of(o);
	int rv, code = 0;

	if (svc == NULL) {
		return EXIT_USAGE;
	}
	if (o->request_id != NULL) {
		od_strlcpy(rid, o->request_id, sizeof(rid));
	} else {
		od_random_hex(rid, 16);
	}
	char *stdin_json;
	const char *json = json_arg(argc > 2 ? argv[2] : NULL, &stdin_json);
	rv = opsctl_build_request(
	    svc, argv[1], json, rid, &actor, &req, err, sizeof(err));
	free(stdin_json);
	if (rv != 0) {
		fprintf(stderr, "opsctl: %s\n", err);
		return EXIT_USAGE;
	}
	int64_t deadline = od_mono_ms() + o->timeout_ms;
	if ((rv = target_open(&t, svc, o)) != 0) {
		fprintf(stderr, "opsctl: %s (%s) at %s: %s\n", svc->name,
		    svc->exe, t.url, od_strerror(rv));
		code = EXIT_UNAVAILABLE;
		goto out;
	}
	if ((rv = target_call(&t, req, deadline, o, &reply, err, sizeof(err)))
	    != 0) {
		fprintf(stderr, "opsctl: %s (%s) at %s: %s\n", svc->name,
		    svc->exe, t.url, err);
		code = EXIT_UNAVAILABLE;
		goto out;
	}
	print_json(reply, o);
	const Opsdesk__V1__Error *e = rpc_reply_error(reply);
	if (e != NULL && e->code != 0) {
		fprintf(stderr, "opsctl: %s %s: %s: %s\n", svc->name, argv[1],
		    rpc_error_code_name(e->code), e->message);
		code = EXIT_ERROR_REPLY;
	}
out:
	protobuf_c_message_free_unpacked(reply, NULL);
	protobuf_c_message_free_unpacked(req, NULL);
	rpc_client_close(t.client);
	return code;
}

/* One JSON line for a ping: the PingReply's fields plus ours. */
static void
print_ping(const target *t, const ProtobufCMessage *reply, double ms,
    const char *why, const opts *o)
{
	cJSON *line = cJSON_CreateObject();
	cJSON *r = reply != NULL ? pbjson_encode(reply, 0) : NULL;
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(r, "ping");
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(r, "error");

	cJSON_AddStringToObject(line, "service", t->svc->name);
	cJSON_AddStringToObject(line, "url", t->url);
	cJSON_AddBoolToObject(line, "ok", p != NULL && e == NULL);
	if (p != NULL) {
		static const char *const keys[] = { "version", "instance",
			"service", "started_ms", "shard" };
		cJSON_AddNumberToObject(
		    line, "ms", (double) (int) (ms * 1000) / 1000);
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			const cJSON *v
			    = cJSON_GetObjectItemCaseSensitive(p, keys[i]);
			if (v != NULL) {
				cJSON_AddItemToObject(line,
				    strcmp(keys[i], "service") == 0
				        ? "executable"
				        : keys[i],
				    cJSON_Duplicate(v, true));
			}
		}
	} else if (e != NULL) {
		cJSON_AddItemToObject(line, "error", cJSON_Duplicate(e, true));
	} else {
		cJSON_AddStringToObject(line, "error", why);
	}
	char *text
	    = o->pretty ? cJSON_Print(line) : cJSON_PrintUnformatted(line);
	if (text != NULL) {
		printf("%s\n", text);
	}
	cJSON_free(text);
	cJSON_Delete(line);
	cJSON_Delete(r);
	fflush(stdout);
}

static int
cmd_ping(opts *o, int argc, char **argv)
{
	size_t n_all, n = argc > 0 ? (size_t) argc : opsctl_rpc_services();
	const opsctl_service *all = opsctl_services(&n_all);
	target *t = calloc(n, sizeof(*t));
	opsctl_actor actor = actor_of(o);
	int code = 0;

	if (t == NULL) {
		return EXIT_UNAVAILABLE;
	}
	/* Open every client first so they all connect in parallel. */
	for (size_t i = 0; i < n; i++) {
		const opsctl_service *svc
		    = argc > 0 ? find_service(argv[i], true) : &all[i];
		if (svc == NULL) {
			code = EXIT_USAGE;
			goto out;
		}
		if (target_open(&t[i], svc, o) != 0) {
			t[i].client = NULL;
		}
	}
	int64_t deadline = od_mono_ms() + o->timeout_ms;
	for (size_t i = 0; i < n; i++) {
		ProtobufCMessage *req = NULL, *reply = NULL;
		char err[256] = "", rid[33];
		double ms = 0;
		od_random_hex(rid, 16);
		if (opsctl_build_request(t[i].svc, "ping", NULL, rid, &actor,
		        &req, err, sizeof(err))
		    == 0) {
			if (target_wait(&t[i], deadline)) {
				uint64_t t0 = od_mono_ns();
				target_call(&t[i], req, deadline, o, &reply,
				    err, sizeof(err));
				ms = (double) (od_mono_ns() - t0) / 1e6;
			} else {
				snprintf(err, sizeof(err),
				    "not reachable within %d ms",
				    o->timeout_ms);
			}
		}
		print_ping(&t[i], reply, ms, err, o);
		if (reply == NULL || rpc_reply_error(reply) != NULL) {
			code = EXIT_UNAVAILABLE;
		}
		protobuf_c_message_free_unpacked(reply, NULL);
		protobuf_c_message_free_unpacked(req, NULL);
	}
out:
	for (size_t i = 0; i < n; i++) {
		rpc_client_close(t[i].client);
	}
	free(t);
	return code;
}

/* ---- tail ---- */

static void
tail_pipe_event(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	(void) p;
	/* The harness and scripts wait for "connected" before publishing:
	 * pub/sub drops what is sent before the subscription is up. */
	if (stop_requested) {
		return; /* our own close, not news */
	}
	log_kv(ev == NNG_PIPE_EV_ADD_POST ? LOG_INFO : LOG_WARN,
	    ev == NNG_PIPE_EV_ADD_POST ? "connected" : "disconnected", "url",
	    (const char *) arg, NULL);
}

static int
cmd_tail(opts *o, int argc, char **argv)
{
	const char *url = o->url ? o->url : o->cfg->bus_subscribe;
	nng_socket s;
	nng_dialer d;
	long seen = 0;
	int rv, code = 0;

	if ((rv = nng_sub0_open(&s)) != 0) {
		fprintf(stderr, "opsctl: %s\n", nng_strerror(rv));
		return EXIT_UNAVAILABLE;
	}
	for (int i = 0; i < argc; i++) {
		nng_socket_set(
		    s, NNG_OPT_SUB_SUBSCRIBE, argv[i], strlen(argv[i]));
	}
	if (argc == 0) {
		nng_socket_set(s, NNG_OPT_SUB_SUBSCRIBE, "", 0);
	}
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 100);
	nng_socket_set_int(s, NNG_OPT_RECVBUF, 1024);
	nng_pipe_notify(
	    s, NNG_PIPE_EV_ADD_POST, tail_pipe_event, (void *) url);
	nng_pipe_notify(
	    s, NNG_PIPE_EV_REM_POST, tail_pipe_event, (void *) url);
	if ((rv = nng_dialer_create(&d, s, url)) != 0) {
		fprintf(
		    stderr, "opsctl: bus at %s: %s\n", url, nng_strerror(rv));
		(void) od_nng_close(s);
		return EXIT_UNAVAILABLE;
	}
	if ((rv = auth_dialer_setup(d, url)) != 0) {
		fprintf(
		    stderr, "opsctl: bus at %s: %s\n", url, od_strerror(rv));
		(void) od_nng_close(s);
		return EXIT_UNAVAILABLE;
	}
	nng_dialer_set_size(d, NNG_OPT_RECVMAXSZ, BUS_MAX_MSG + 4096);
	nng_dialer_set_ms(d, NNG_OPT_RECONNMINT, 50);
	nng_dialer_set_ms(d, NNG_OPT_RECONNMAXT, 1000);
	/* Non-blocking: a relay that is not up yet is retried, tail waits. */
	nng_dialer_start(d, NNG_FLAG_NONBLOCK);
	while (!stop_requested && (o->count <= 0 || seen < o->count)) {
		nng_msg *msg;
		rv = nng_recvmsg(s, &msg, 0);
		if (rv == NNG_ETIMEDOUT) {
			continue;
		}
		if (rv != 0) {
			fprintf(stderr, "opsctl: bus: %s\n", nng_strerror(rv));
			code = EXIT_UNAVAILABLE;
			break;
		}
		char *line
		    = opsctl_tail_line(nng_msg_body(msg), nng_msg_len(msg));
		nng_msg_free(msg);
		if (line == NULL) {
			continue;
		}
		bool ok = printf("%s\n", line) >= 0 && fflush(stdout) == 0;
		free(line);
		if (!ok) {
			break; /* the reader went away (| head) */
		}
		seen++;
	}
	(void) od_nng_close(s);
	return code;
}

/* ---- publish ---- */

static void
publish_pipe_event(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	(void) p;
	(void) ev;
	atomic_store((atomic_bool *) arg, true); /* an NNG thread */
}

/*
 * Send frames (borrowed) to the relay on one connection, in order. PUB
 * drops what is sent before its pipe is added, so wait for it first.
 */
static int
send_frames(
    const opts *o, uint8_t *const *frames, const size_t *lens, size_t n)
{
	const char *url = o->url ? o->url : o->cfg->bus_publish;
	static atomic_bool up;
	nng_socket s;
	int rv;

	if ((rv = nng_pub0_open(&s)) != 0) {
		fprintf(stderr, "opsctl: %s\n", nng_strerror(rv));
		return EXIT_UNAVAILABLE;
	}
	/* Room for every frame: a full queue would drop the rest. */
	nng_socket_set_int(s, NNG_OPT_SENDBUF, 8192);
	nng_pipe_notify(
	    s, NNG_PIPE_EV_ADD_POST, publish_pipe_event, (void *) &up);
	nng_dialer d;
	auth *a = NULL;
	int arv = 0;
	if ((rv = nng_dialer_create(&d, s, url)) != 0
	    || (arv = auth_dialer_setup(d, url)) != 0
	    || (arv = auth_process(&a)) != 0
	    || (rv = nng_dialer_start(d, 0)) != 0) {
		fprintf(stderr, "opsctl: bus relay at %s: %s\n", url,
		    arv != 0 ? od_strerror(arv) : nng_strerror(rv));
		(void) od_nng_close(s);
		return EXIT_UNAVAILABLE;
	}
	int64_t deadline = od_mono_ms() + o->timeout_ms;
	while (!up && od_mono_ms() < deadline) {
		nng_msleep(2);
	}
	for (size_t i = 0; i < n && up && rv == 0; i++) {
		/* With auth on, a frame that has a topic is sealed as this
		 * identity (the relay drops the rest). */
		const uint8_t *nul = memchr(frames[i], 0,
		    lens[i] < BUS_MAX_TOPIC ? lens[i] : BUS_MAX_TOPIC);
		uint8_t *sealed = NULL;
		size_t slen = lens[i];
		if (a != NULL && nul != NULL
		    && (sealed = malloc(lens[i] ? lens[i] : 1)) != NULL) {
			memcpy(sealed, frames[i], lens[i]);
			if (auth_seal(a, &sealed, &slen,
			        (size_t) (nul - frames[i]) + 1)
			    != 0) {
				free(sealed);
				sealed = NULL;
				slen = lens[i];
			}
		}
		rv = nng_send(s, sealed != NULL ? sealed : frames[i], slen, 0);
		free(sealed);
	}
	if (!up || rv != 0) {
		fprintf(stderr, "opsctl: bus relay at %s: %s\n", url,
		    up ? nng_strerror(rv) : "not connected in time");
		(void) od_nng_close(s);
		return EXIT_UNAVAILABLE;
	}
	/* The pipe writes asynchronously and closing discards its queue:
	 * give the frames time to leave over loopback or a LAN. */
	nng_msleep(100 + (int) (n / 10));
	(void) od_nng_close(s);
	return 0;
}

static int
cmd_publish(opts *o, int argc, char **argv)
{
	uint8_t *frame = NULL;
	size_t len;
	char err[512];
	int code;

	char *stdin_json;
	const char *json = json_arg(argc > 1 ? argv[1] : NULL, &stdin_json);
	int built = opsctl_publish_frame(
	    argv[0], json, o->cfg->instance, &frame, &len, err, sizeof(err));
	free(stdin_json);
	if (built != 0) {
		fprintf(stderr, "opsctl: %s\n", err);
		return EXIT_USAGE;
	}
	if ((code = send_frames(o, &frame, &len, 1)) == 0) {
		cJSON *line = cJSON_CreateObject();
		cJSON_AddStringToObject(line, "topic", argv[0]);
		cJSON_AddNumberToObject(line, "bytes", (double) len);
		char *text = cJSON_PrintUnformatted(line);
		if (text != NULL) {
			printf("%s\n", text);
		}
		cJSON_free(text);
		cJSON_Delete(line);
	}
	free(frame);
	return code;
}

/* One ops.config_reload, as `publish` sends it: the operator need not
 * know the topic or the envelope. */
static int
cmd_reload(opts *o, int argc, char **argv)
{
	char topic[] = "ops.config_reload";
	char json[] = "{\"ops\":{\"kind\":\"config_reload\","
	              "\"text\":\"opsctl reload\"}}";
	char *args[] = { topic, json };
	(void) argc;
	(void) argv;
	return cmd_publish(o, 2, args);
}

/* Read a whole file; caller frees *out with free(). */
static int
read_file(const char *path, uint8_t **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t n = 0, cap = 0, got;

	if (f == NULL) {
		return OD_ENOTFOUND;
	}
	do {
		if (n == cap) {
			cap = cap ? cap * 2 : 4096;
			uint8_t *nb = realloc(buf, cap);
			if (nb == NULL) {
				free(buf);
				fclose(f);
				return OD_ENOMEM;
			}
			buf = nb;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
	} while (got > 0);
	fclose(f);
	*out = buf;
	*len = n;
	return 0;
}

/* Each file's bytes as one frame, as is: tests send garbage with it. */
static int
cmd_publish_raw(opts *o, int argc, char **argv)
{
	uint8_t **frames = calloc((size_t) argc, sizeof(*frames));
	size_t *lens = calloc((size_t) argc, sizeof(*lens));
	int code = 0;

	if (frames == NULL || lens == NULL) {
		code = EXIT_UNAVAILABLE;
		goto out;
	}
	for (int i = 0; i < argc; i++) {
		if (read_file(argv[i], &frames[i], &lens[i]) != 0) {
			fprintf(stderr, "opsctl: cannot read %s: %s\n",
			    argv[i], strerror(errno));
			code = EXIT_USAGE;
			goto out;
		}
	}
	if ((code = send_frames(o, frames, lens, (size_t) argc)) == 0) {
		printf("{\"frames\":%d}\n", argc);
	}
out:
	for (int i = 0; frames != NULL && i < argc; i++) {
		free(frames[i]);
	}
	free(frames);
	free(lens);
	return code;
}

/* ---- backup ---- */

static int
cmd_backup(opts *o, int argc, char **argv)
{
	const opsctl_service *svc = find_service(argv[0], false);
	char from[1200];
	(void) argc;

	if (svc == NULL) {
		return EXIT_USAGE;
	}
	snprintf(from, sizeof(from), "%s/%s", o->cfg->data_dir, svc->exe);
	int64_t t0 = od_mono_ms();
	int rv = store_backup_path(from, argv[1]);
	if (rv != 0) {
		const char *why = rv == OD_ENOTFOUND
		    ? "no store there (check OPSDESK_DATA_DIR)"
		    : rv == OD_EEXIST ? "the destination is not empty"
		                      : od_strerror(rv);
		fprintf(stderr, "opsctl: backup of %s from %s to %s: %s\n",
		    svc->exe, from, argv[1], why);
		return EXIT_ERROR_REPLY;
	}
	char data[1300];
	struct stat st;
	snprintf(data, sizeof(data), "%s/data.mdb", argv[1]);
	cJSON *line = cJSON_CreateObject();
	cJSON_AddStringToObject(line, "service", svc->exe);
	cJSON_AddStringToObject(line, "from", from);
	cJSON_AddStringToObject(line, "to", argv[1]);
	cJSON_AddNumberToObject(
	    line, "bytes", stat(data, &st) == 0 ? (double) st.st_size : 0);
	cJSON_AddNumberToObject(line, "ms", (double) (od_mono_ms() - t0));
	char *text = cJSON_PrintUnformatted(line);
	if (text != NULL) {
		printf("%s\n", text);
	}
	cJSON_free(text);
	cJSON_Delete(line);
	return 0;
}

/* ---- certs ---- */

static int
cmd_certs(opts *o, int argc, char **argv)
{
	char err[512];
	if (strcmp(argv[0], "init") != 0) {
		return usage_error(
		    "%s", "usage: opsctl certs init DIR [--days N] [--force]");
	}
	int rv = auth_certs_init(argv[1], o->days, o->force, err, sizeof(err));
	if (rv == OD_EEXIST) {
		fprintf(stderr, "opsctl: %s\n", err);
		return 0;
	}
	if (rv != 0) {
		fprintf(stderr, "opsctl: certs init: %s\n",
		    err[0] ? err : od_strerror(rv));
		return EXIT_FAILURE;
	}
	printf("{\"dir\":\"%s\",\"identities\":[", argv[1]);
	for (int i = 0; auth_identities[i] != NULL; i++) {
		printf("%s\"%s\"", i ? "," : "", auth_identities[i]);
	}
	printf("]}\n");
	return 0;
}

/* ---- main ---- */

typedef struct command {
	const char *name;
	int min_args;
	int max_args; /* -1: any */
	int (*fn)(opts *o, int argc, char **argv);
	const char *usage;
} command;

static const command commands[] = {
	{ "tail", 0, -1, cmd_tail, "tail [PREFIX...]" },
	{ "call", 2, 3, cmd_call, "call <service> <Method> [JSON]" },
	{ "ping", 0, -1, cmd_ping, "ping [service...]" },
	{ "backup", 2, 2, cmd_backup, "backup <service> <dir>" },
	{ "publish", 1, 2, cmd_publish, "publish <topic> [ENVELOPE_JSON]" },
	{ "publish-raw", 1, -1, cmd_publish_raw, "publish-raw FILE..." },
	{ "reload", 0, 0, cmd_reload, "reload" },
	{ "certs", 2, 2, cmd_certs, "certs init DIR [--days N] [--force]" },
};

static int
parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (s[0] == '\0' || *end != '\0' || errno != 0 || v < min || v > max) {
		return OD_EINVAL;
	}
	*out = v;
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "url", required_argument, NULL, 'u' },
		{ "as", required_argument, NULL, 'a' },
		{ "admin", no_argument, NULL, 'A' },
		{ "pretty", no_argument, NULL, 'p' },
		{ "count", required_argument, NULL, 'n' },
		{ "request-id", required_argument, NULL, 'r' },
		{ "days", required_argument, NULL, 'D' },
		{ "force", no_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	opts o = { .timeout_ms = RPC_DEFAULT_TIMEOUT_MS };
	char err[512];
	int64_t v;
	int c, code;

	while ((c = getopt_long(argc, argv, "t:n:h", longopts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (parse_i64(optarg, 1, 3600000, &v) != 0) {
				return usage_error(
				    "--timeout wants milliseconds, got \"%s\"",
				    optarg);
			}
			o.timeout_ms = (int) v;
			break;
		case 'u':
			o.url = optarg;
			break;
		case 'a':
			if (parse_i64(optarg, INT64_MIN, INT64_MAX, &v) != 0) {
				return usage_error(
				    "--as wants a numeric user id, got \"%s\"",
				    optarg);
			}
			o.as_set = true;
			o.as_user = v;
			break;
		case 'A':
			o.admin = true;
			break;
		case 'p':
			o.pretty = true;
			break;
		case 'r':
			if (optarg[0] == '\0' || strlen(optarg) > 32) {
				return usage_error("--request-id wants 1 to "
				                   "32 characters, got "
				                   "\"%s\"",
				    optarg);
			}
			o.request_id = optarg;
			break;
		case 'n':
			if (parse_i64(optarg, 1, INT32_MAX, &v) != 0) {
				return usage_error("--count wants a positive "
				                   "number, got \"%s\"",
				    optarg);
			}
			o.count = (long) v;
			break;
		case 'D':
			if (parse_i64(optarg, 1, 36500, &v) != 0) {
				return usage_error("--days wants 1 to 36500, "
				                   "got \"%s\"",
				    optarg);
			}
			o.days = (int) v;
			break;
		case 'F':
			o.force = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case 'V':
			printf("opsctl %s\n", OPSDESK_VERSION);
			return 0;
		default:
			return usage_error("%s", "unknown option");
		}
	}
	if (optind >= argc) {
		fputs(usage_text, stderr);
		return EXIT_USAGE;
	}
	const command *cmd = NULL;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(commands[i].name, argv[optind]) == 0) {
			cmd = &commands[i];
		}
	}
	if (cmd == NULL) {
		return usage_error("unknown command \"%s\"", argv[optind]);
	}
	int nargs = argc - optind - 1;
	if (nargs < cmd->min_args
	    || (cmd->max_args >= 0 && nargs > cmd->max_args)) {
		return usage_error("usage: opsctl %s", cmd->usage);
	}
	if (config_load(&o.cfg, "opsctl", NULL, err, sizeof(err)) != 0) {
		fprintf(stderr, "opsctl: %s\n", err);
		return EXIT_USAGE;
	}
	log_init("opsctl", o.cfg->instance,
	    log_level_parse(o.cfg->log_level) >= 0
	        ? log_level_parse(o.cfg->log_level)
	        : LOG_INFO);

	/* Ctrl-C ends tail (exit 0) and cuts a wait short. */
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	code = cmd->fn(&o, nargs, argv + optind + 1);
	config_free(o.cfg);
	return code;
}

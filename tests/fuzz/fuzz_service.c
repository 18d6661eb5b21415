/*
 * fuzz_service.c — the rpc server, store and client that the service
 * request fuzzers share (see fuzz_service.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_service.h"

static fuzz_service *at_exit; /* the one fuzz_service_start registered */

void
fuzz_service_open_store(fuzz_service *f, const char *name, store_options *so)
{
	snprintf(f->dir, sizeof(f->dir), "/tmp/fuzz_%s.XXXXXX", name);
	if (mkdtemp(f->dir) == NULL) {
		abort();
	}
	strcat(f->dir, "/s");
	so->path = f->dir;
	so->nosync = true; /* a throwaway store: speed over durability */
	if (store_open(&f->st, so) != 0) {
		abort();
	}
}

/* Stop in the order the service needs: no calls, then its fini, then
 * the store under it. */
static void
close_at_exit(void)
{
	fuzz_service *f = at_exit;
	char cmd[128];

	rpc_client_close(f->cli);
	rpc_server_stop(f->srv);
	if (f->fini != NULL) {
		f->fini(f->svc);
	}
	store_close(f->st);
	f->dir[strlen(f->dir) - 2] = '\0';
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "could not remove %s\n", f->dir);
	}
}

void
fuzz_service_start(fuzz_service *f, const char *name, rpc_server_options *ro,
    void (*fini)(void *svc))
{
	char url[64];

	snprintf(
	    url, sizeof(url), "inproc://fuzz-%s-%d", name, (int) getpid());
	ro->url = url;
	ro->store = f->st;
	ro->instance = "fuzz";
	ro->contexts = 4;
	ro->workers = 1;
	if (rpc_server_start(&f->srv, ro) != 0
	    || rpc_client_open(&f->cli, url, 10000) != 0) {
		abort();
	}
	for (int i = 0; i < 1000 && !rpc_client_connected(f->cli); i++) {
		usleep(1000);
	}
	f->fini = fini;
	f->svc = ro->arg;
	at_exit = f;
	atexit(close_at_exit);
}

ProtobufCMessage *
fuzz_service_call(fuzz_service *f, ProtobufCMessage *req, const char *method,
    ProtobufCMessage *msg, const ProtobufCMessageDescriptor *reply_desc)
{
	ProtobufCMessage *r = NULL;

	if (rpc_request_set_method(req, method, msg) != 0
	    || rpc_client_call(f->cli, req, reply_desc, &r, 10000) != 0
	    || rpc_reply_error(r) != NULL) {
		fprintf(stderr, "fuzz setup: %s failed\n", method);
		abort();
	}
	return r;
}

ProtobufCMessage *
fuzz_service_call_raw(fuzz_service *f, const uint8_t *data, size_t size,
    const ProtobufCMessageDescriptor *reply_desc)
{
	ProtobufCMessage *r;
	void *out = NULL;
	size_t out_len = 0;

	if (rpc_client_call_raw(f->cli, data, size, &out, &out_len, 10000)
	    != 0) {
		fprintf(stderr, "no reply to a %zu-byte request\n", size);
		abort();
	}
	if ((r = protobuf_c_message_unpack(reply_desc, NULL, out_len, out))
	    == NULL) {
		fprintf(stderr, "the reply does not decode\n");
		abort();
	}
	free(out);
	return r;
}

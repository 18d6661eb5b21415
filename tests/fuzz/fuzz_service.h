/*
 * fuzz_service.h — what the request fuzzers of the services share: a
 * service's real rpc server over inproc on a throwaway store in a temp
 * dir, a client to it, setup calls that must succeed, and the raw call
 * that feeds an input through. Every failure aborts: in a fuzzer that is
 * the finding (or a broken harness), never something to recover from.
 */
#ifndef OPSDESK_FUZZ_SERVICE_H
#define OPSDESK_FUZZ_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#include "rpc/rpc.h"
#include "store/store.h"

typedef struct fuzz_service {
	char dir[64];
	store *st;
	rpc_server *srv;
	rpc_client *cli;
	void (*fini)(void *svc); /* the service's own teardown, or NULL */
	void *svc;               /* rpc_server_options.arg */
} fuzz_service;

/*
 * Open a store in a new temp dir named for `name` (borrowed, e.g.
 * "ticket"). so (borrowed) is the service's options; its path is set
 * here, and nosync, since the store is thrown away.
 */
void fuzz_service_open_store(
    fuzz_service *f, const char *name, store_options *so);

/*
 * Start the server on inproc://fuzz-<name>-<pid> over f's store and
 * connect the client. ro (borrowed) is the service's options; url, store,
 * instance, contexts and workers are set here. At exit the client and
 * server stop, fini(ro->arg) runs (fini may be NULL), the store closes
 * and its dir goes: f (borrowed) must be static, one per process.
 */
void fuzz_service_start(fuzz_service *f, const char *name,
    rpc_server_options *ro, void (*fini)(void *svc));

/*
 * A setup call: req (borrowed, actor already set) with method `method`
 * set to msg (borrowed). Aborts unless a reply without an Error comes
 * back; the caller frees the reply with protobuf_c_message_free_unpacked.
 */
ProtobufCMessage *fuzz_service_call(fuzz_service *f, ProtobufCMessage *req,
    const char *method, ProtobufCMessage *msg,
    const ProtobufCMessageDescriptor *reply_desc);

/*
 * Send the input data as it is and decode the reply as reply_desc.
 * Aborts when no reply comes back or it does not decode; the caller frees
 * the reply with protobuf_c_message_free_unpacked.
 */
ProtobufCMessage *fuzz_service_call_raw(fuzz_service *f, const uint8_t *data,
    size_t size, const ProtobufCMessageDescriptor *reply_desc);

#endif

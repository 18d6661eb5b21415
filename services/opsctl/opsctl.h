/*
 * opsctl core — what the CLI does that needs no network: the service
 * table, method-name spelling, building a request from JSON, and turning
 * a bus frame into the one JSON line `opsctl tail` prints. main.c adds
 * argument parsing, the sockets and the exit codes.
 */
#ifndef OPSDESK_OPSCTL_H
#define OPSDESK_OPSCTL_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct opsctl_service {
	const char *name; /* "ticket": what users type, config's url key */
	const char *exe;  /* "ticket-service": also its store directory */
	/* The Request/Reply pair; NULL for a service without req/rep
	 * (telegram-gateway: backup only). */
	const ProtobufCMessageDescriptor *request;
	const ProtobufCMessageDescriptor *reply;
} opsctl_service;

/* By short or executable name ("ticket", "ticket-service"); NULL if
 * unknown. */
const opsctl_service *opsctl_service_find(const char *name);
/* The whole table (*n entries); the req/rep services come first. */
const opsctl_service *opsctl_services(size_t *n);
/* How many of the table's first entries have req/rep (ping's default). */
size_t opsctl_rpc_services(void);

/*
 * A method as typed ("ListMine", "listMine", "list_mine") as the oneof
 * member name ("list_mine"). OD_EINVAL if it is not a plausible name or
 * does not fit in out.
 */
int opsctl_method_name(const char *in, char *out, size_t size);

/* "ping, create, get, …": the methods of svc; caller frees with free(). */
char *opsctl_method_list(const opsctl_service *svc);

typedef struct opsctl_actor {
	int64_t user_id;
	bool is_admin;
	const char *name; /* borrowed */
	int64_t chat_id;
} opsctl_actor;

/*
 * The Request of svc for method (any spelling) with json (the member's
 * message as JSON text; NULL or "" means {}), request_id and actor
 * (borrowed). On success *out is freed by the caller with
 * protobuf_c_message_free_unpacked. OD_ENOTFOUND for an unknown method,
 * OD_EINVAL for bad JSON; err says which and where ("create.priority:
 * unknown enum value \"hgih\"").
 */
int opsctl_build_request(const opsctl_service *svc, const char *method,
    const char *json, const char *request_id, const opsctl_actor *actor,
    ProtobufCMessage **out, char *err, size_t errlen);

/*
 * The line `opsctl tail` prints for a frame (borrowed), without the
 * newline: {"topic":…,"envelope":{…}} or, for a frame that does not
 * decode, {"topic":…,"error":"…","bytes":N} (topic null when even the
 * topic is missing). Caller frees with free(); NULL on OOM.
 */
char *opsctl_tail_line(const void *frame, size_t len);

/*
 * The frame `opsctl publish` sends: topic (printable ASCII, no spaces),
 * 0x00, and the Envelope given as JSON (NULL: {}), its header fields
 * filled where the JSON leaves them unset (schema_version 1, a fresh
 * event_id, source "opsctl", instance, seq 1, ts_ms now, topic). Caller
 * frees *frame with free(). OD_EINVAL with err for a bad topic or JSON.
 */
int opsctl_publish_frame(const char *topic, const char *json,
    const char *instance, uint8_t **frame, size_t *len, char *err,
    size_t errlen);

#endif /* OPSDESK_OPSCTL_H */

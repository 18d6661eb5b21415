/*
 * relay — the bus forwarder: a raw SUB socket that publishers dial and a
 * raw PUB socket that subscribers dial. Every frame received is forwarded
 * as is (malformed ones too: filtering is the subscribers' business and
 * `opsctl tail` must see them) and counted per topic domain.
 *
 * Metrics (in the registry given):
 *   opsdesk_relay_messages_total{domain}  frames forwarded, by the topic's
 *                                         first segment (known domains;
 *                                         "other", "malformed")
 *   opsdesk_relay_bytes_total{domain}     their bytes
 *   opsdesk_relay_send_errors_total       frames the PUB side refused
 *   opsdesk_relay_refused_total           frames dropped by the publisher
 *                                         checks (OPSDESK_TLS_DIR set: a
 *                                         valid header from an identity
 *                                         that owns the topic)
 *   opsdesk_relay_publishers              pipes from publishers now
 *   opsdesk_relay_subscribers             pipes to subscribers now
 *   opsdesk_relay_connections_total{side} pipes accepted since start
 * NNG's PUB drops frames silently for a subscriber whose queue is full;
 * that loss is not visible here (subscribers see it as a sequence gap).
 */
#ifndef OPSDESK_RELAY_H
#define OPSDESK_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include "metrics/metrics.h"

typedef struct relay relay;

typedef struct relay_options {
	const char *publish_url;   /* listened on; publishers dial it */
	const char *subscribe_url; /* listened on; subscribers dial it */
	size_t max_msg;            /* NNG_OPT_RECVMAXSZ; 0: 1 MiB */
	metrics *metrics;          /* borrowed, may be NULL */
} relay_options;

/* Listen on both urls and start forwarding on a thread of its own. */
int relay_start(relay **out, const relay_options *opt);
/* Close both sockets and join the thread. NULL-safe. */
void relay_stop(relay *r);

typedef struct relay_stats {
	uint64_t messages;
	uint64_t bytes;
	uint64_t malformed;
	uint64_t send_errors;
	uint64_t refused; /* dropped by the publisher checks (auth on) */
	int publishers;
	int subscribers;
} relay_stats;

void relay_get_stats(relay *r, relay_stats *out);

/*
 * The metrics label of a frame's topic: its first dot-separated segment
 * when it is a known domain, "other" for any other well-formed topic,
 * "malformed" when no 0x00 ends a printable (0x20-0x7e) topic within
 * 128 bytes, as bus_frame_split judges.
 * Static string.
 */
const char *relay_frame_domain(const void *frame, size_t len);

#endif /* OPSDESK_RELAY_H */

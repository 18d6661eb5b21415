/*
 * bus — publisher and subscriber on NNG pub0/sub0 through bus-relay, and
 * the frame format (topic, 0x00, packed Envelope).
 */
#include "bus/bus.h"
#include "auth/auth.h"

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "util/util.h"

/* Reconnect backoff towards the relay. */
#define BUS_RECONN_MIN_MS 100
#define BUS_RECONN_MAX_MS 2000
/*
 * Messages received but not yet handled by the subscriber's thread (more
 * are dropped, counted, and the seq check reports a gap), and the
 * publisher's queue towards the relay.
 */
#define BUS_SUB_QUEUE 1024
/*
 * After a start or reconnect resync, publishers not heard from yet are
 * learned at whatever seq they are for this long without another resync:
 * the consumer has just resynced anyway.
 */
#define BUS_LEARN_MS 5000
#define BUS_MAX_NAME 128

static bool
topic_valid(const char *topic, size_t len)
{
	if (len == 0 || len >= BUS_MAX_TOPIC) {
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char) topic[i];
		if (ch < 0x20 || ch > 0x7e) {
			return false;
		}
	}
	return true;
}

int
bus_frame_split(const void *frame, size_t len, const char **topic,
    size_t *topic_len, const uint8_t **body, size_t *body_len)
{
	if (frame == NULL) {
		return OD_EMALFORMED;
	}
	const uint8_t *p = frame;
	size_t limit = len < BUS_MAX_TOPIC ? len : BUS_MAX_TOPIC;
	const uint8_t *nul = memchr(p, 0, limit);
	if (nul == NULL) {
		return OD_EMALFORMED;
	}
	size_t tlen = (size_t) (nul - p);
	if (!topic_valid((const char *) p, tlen)) {
		return OD_EMALFORMED;
	}
	*topic = (const char *) p;
	*topic_len = tlen;
	*body = nul + 1;
	*body_len = len - tlen - 1;
	/* A publisher's authentication header (checked by the relay). */
	auth_header h;
	if (auth_header_parse(*body, *body_len, &h) == 0) {
		*body += h.len;
		*body_len -= h.len;
	}
	return 0;
}

/*
 * A frame from a topic and up to two packed pieces of an Envelope (a
 * header and a payload packed earlier): protobuf merges concatenated
 * messages, so the receiver decodes one Envelope.
 */
static int
frame_concat(const char *topic, const ProtobufCMessage *a, const uint8_t *tail,
    size_t tail_len, uint8_t **out, size_t *out_len)
{
	size_t tlen = strlen(topic);
	if (!topic_valid(topic, tlen)) {
		return OD_EINVAL;
	}
	size_t alen = protobuf_c_message_get_packed_size(a);
	size_t total = tlen + 1 + alen + tail_len;
	if (total > BUS_MAX_MSG + BUS_MAX_TOPIC) {
		return OD_ETOOBIG;
	}
	uint8_t *buf = malloc(total);
	if (buf == NULL) {
		return OD_ENOMEM;
	}
	memcpy(buf, topic, tlen);
	buf[tlen] = 0;
	protobuf_c_message_pack(a, buf + tlen + 1);
	if (tail_len > 0) {
		memcpy(buf + tlen + 1 + alen, tail, tail_len);
	}
	*out = buf;
	*out_len = total;
	return 0;
}

int
bus_frame_build(const char *topic, const Opsdesk__V1__Envelope *env,
    uint8_t **out, size_t *out_len)
{
	if (topic == NULL || env == NULL || out == NULL || out_len == NULL) {
		return OD_EINVAL;
	}
	return frame_concat(topic, &env->base, NULL, 0, out, out_len);
}

/* ---- publisher ---- */

typedef struct topic_count {
	char *topic;
	uint64_t seq;
} topic_count;

struct bus_publisher {
	nng_socket sock;
	nng_dialer dialer;
	pthread_mutex_t mtx; /* seq order == send order */
	uint64_t seq;
	topic_count *topics; /* topic_seq per topic; a service has few */
	size_t n_topics;
	size_t cap_topics;
	atomic_int pipes;
	char *source;
	char *instance;
	auth *auth;         /* the process's: frames are sealed; or NULL */
	nng_aio *aio;       /* every send, under mtx: nng_send allocates one */
	char id_prefix[17]; /* event ids: random per publisher, then n_ids */
	uint64_t n_ids;
	metric *published;
	metric *send_errors;
};

static void
pub_pipe_cb(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	bus_publisher *p = arg;
	if (ev == NNG_PIPE_EV_ADD_POST) {
		atomic_fetch_add(&p->pipes, 1);
	} else if (ev == NNG_PIPE_EV_REM_POST) {
		atomic_fetch_sub(&p->pipes, 1);
	}
}

/* Dial url from sock without blocking, with backoff and a size limit. */
static int
dial_nonblock(
    nng_socket sock, const char *url, size_t max_msg, nng_dialer *out)
{
	nng_dialer d;
	int rv = nng_dialer_create(&d, sock, url);
	if (rv != 0) {
		return od_nng_err(rv);
	}
	if ((rv = auth_dialer_setup(d, url)) != 0) {
		nng_dialer_close(d);
		return rv;
	}
	if ((rv = nng_dialer_set_size(d, NNG_OPT_RECVMAXSZ, max_msg)) != 0
	    || (rv = nng_dialer_set_ms(
	            d, NNG_OPT_RECONNMINT, BUS_RECONN_MIN_MS))
	        != 0
	    || (rv = nng_dialer_set_ms(
	            d, NNG_OPT_RECONNMAXT, BUS_RECONN_MAX_MS))
	        != 0
	    || (rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK)) != 0) {
		nng_dialer_close(d);
		return od_nng_err(rv);
	}
	*out = d;
	return 0;
}

int
bus_publisher_open(bus_publisher **out, const char *url, const char *source,
    const char *instance, metrics *m)
{
	if (out == NULL || url == NULL || source == NULL) {
		return OD_EINVAL;
	}
	int rv = OD_ENOMEM;
	bool sock_open = false;
	bus_publisher *p = calloc(1, sizeof(*p));
	if (p == NULL) {
		return OD_ENOMEM;
	}
	pthread_mutex_init(&p->mtx, NULL);
	atomic_init(&p->pipes, 0);
	p->source = strdup(source);
	p->instance = strdup(instance != NULL ? instance : "");
	if (p->source == NULL || p->instance == NULL) {
		goto out;
	}
	if ((rv = auth_process(&p->auth)) != 0) {
		goto out;
	}
	rv = OD_ENOMEM;
	p->published = metrics_counter(m, "opsdesk_bus_published_total",
	    "Events published to the bus", NULL);
	p->send_errors = metrics_counter(m, "opsdesk_bus_send_errors_total",
	    "Events that could not be handed to NNG", NULL);
	if ((rv = od_nng_err(nng_aio_alloc(&p->aio, NULL, NULL))) != 0) {
		goto out;
	}
	od_random_hex(p->id_prefix, 8);
	if ((rv = od_nng_err(nng_pub0_open(&p->sock))) != 0) {
		goto out;
	}
	sock_open = true;
	/* Room for bursts while the relay reads: pub0 drops, never
	 * blocks, when a pipe's queue is full. */
	if ((rv = od_nng_err(
	         nng_socket_set_int(p->sock, NNG_OPT_SENDBUF, BUS_SUB_QUEUE)))
	    != 0) {
		goto out;
	}
	if ((rv = od_nng_err(nng_pipe_notify(
	         p->sock, NNG_PIPE_EV_ADD_POST, pub_pipe_cb, p)))
	        != 0
	    || (rv = od_nng_err(nng_pipe_notify(
	            p->sock, NNG_PIPE_EV_REM_POST, pub_pipe_cb, p)))
	        != 0) {
		goto out;
	}
	rv = dial_nonblock(
	    p->sock, url, BUS_MAX_MSG + BUS_MAX_TOPIC, &p->dialer);
out:
	if (rv != 0) {
		if (sock_open) {
			nng_close(p->sock);
		}
		nng_aio_free(p->aio);
		pthread_mutex_destroy(&p->mtx);
		free(p->source);
		free(p->instance);
		free(p);
		return rv;
	}
	*out = p;
	return 0;
}

void
bus_publisher_close(bus_publisher *p)
{
	if (p == NULL) {
		return;
	}
	if (!od_nng_close(p->sock)) {
		od_nng_abandon(p); /* its pipe callback may still run */
		return;
	}
	nng_aio_free(p->aio);
	pthread_mutex_destroy(&p->mtx);
	for (size_t i = 0; i < p->n_topics; i++) {
		free(p->topics[i].topic);
	}
	free(p->topics);
	free(p->source);
	free(p->instance);
	free(p);
}

/* The counter of topic, added at 0 when new; NULL on OOM. Locked. */
static topic_count *
topic_counter(bus_publisher *p, const char *topic)
{
	for (size_t i = 0; i < p->n_topics; i++) {
		if (strcmp(p->topics[i].topic, topic) == 0) {
			return &p->topics[i];
		}
	}
	if (p->n_topics == p->cap_topics) {
		size_t cap = p->cap_topics ? p->cap_topics * 2 : 8;
		topic_count *n = realloc(p->topics, cap * sizeof(*n));
		if (n == NULL) {
			return NULL;
		}
		p->topics = n;
		p->cap_topics = cap;
	}
	topic_count *t = &p->topics[p->n_topics];
	if ((t->topic = strdup(topic)) == NULL) {
		return NULL;
	}
	t->seq = 0;
	p->n_topics++;
	return t;
}

bool
bus_publisher_connected(bus_publisher *p)
{
	return p != NULL && atomic_load(&p->pipes) > 0;
}

uint64_t
bus_publisher_seq(bus_publisher *p)
{
	if (p == NULL) {
		return 0;
	}
	pthread_mutex_lock(&p->mtx);
	uint64_t seq = p->seq;
	pthread_mutex_unlock(&p->mtx);
	return seq;
}

/*
 * Number, stamp and send one event. hdr holds the payload (bus_publish)
 * or nothing (then payload holds it, packed earlier). The lock makes seq
 * order the send order.
 */
static int
publish_locked(bus_publisher *p, const char *topic, Opsdesk__V1__Envelope *hdr,
    const uint8_t *payload, size_t payload_len, const char *correlation_id)
{
	char event_id[33];
	hdr->schema_version = BUS_SCHEMA_VERSION;
	hdr->event_id = event_id;
	hdr->source = p->source;
	hdr->instance = p->instance;
	hdr->ts_ms = od_now_ms();
	hdr->correlation_id
	    = (char *) (correlation_id != NULL ? correlation_id : "");
	hdr->topic = (char *) topic;

	uint8_t *frame = NULL;
	size_t len = 0;
	int rv = OD_ENOMEM;
	pthread_mutex_lock(&p->mtx);
	/* Unique without a getrandom(2) per event: the publisher's random
	 * half, then its count. */
	snprintf(event_id, sizeof(event_id), "%s%016llx", p->id_prefix,
	    (unsigned long long) ++p->n_ids);
	topic_count *tc = topic_counter(p, topic);
	if (tc != NULL) {
		hdr->seq = p->seq + 1;
		hdr->topic_seq = tc->seq + 1;
		rv = frame_concat(
		    topic, &hdr->base, payload, payload_len, &frame, &len);
		if (rv == 0 && p->auth != NULL) {
			rv = auth_seal(
			    p->auth, &frame, &len, strlen(topic) + 1);
		}
	}
	if (rv == 0) {
		/* The numbers are used even when NNG drops the event:
		 * subscribers then see a gap and resync, which is the
		 * truth. */
		p->seq++;
		tc->seq++;
		nng_msg *m;
		if ((rv = nng_msg_alloc(&m, len)) == 0) {
			memcpy(nng_msg_body(m), frame, len);
			nng_aio_set_msg(p->aio, m);
			nng_aio_set_timeout(p->aio, NNG_DURATION_ZERO);
			nng_send_aio(p->sock, p->aio);
			nng_aio_wait(p->aio);
			if ((rv = nng_aio_result(p->aio)) != 0) {
				nng_msg_free(m); /* not sent: still ours */
			}
		}
		rv = rv == NNG_EAGAIN || rv == NNG_ETIMEDOUT ? 0
		                                             : od_nng_err(rv);
	}
	pthread_mutex_unlock(&p->mtx);
	free(frame);
	metric_inc(rv == 0 ? p->published : p->send_errors);
	return rv;
}

int
bus_publish(bus_publisher *p, const char *topic,
    const Opsdesk__V1__Envelope *env, const char *correlation_id)
{
	if (p == NULL || topic == NULL || env == NULL
	    || !topic_valid(topic, strlen(topic))) {
		return OD_EINVAL;
	}
	Opsdesk__V1__Envelope hdr = *env; /* shallow: payload borrowed */
	return publish_locked(p, topic, &hdr, NULL, 0, correlation_id);
}

typedef struct pending_event {
	bus_publisher *p;
	char *topic;
	char *correlation_id;
	uint8_t *payload;
	size_t payload_len;
} pending_event;

static void
pending_free(void *arg)
{
	pending_event *e = arg;
	if (e == NULL) {
		return;
	}
	free(e->topic);
	free(e->correlation_id);
	free(e->payload);
	free(e);
}

static void
pending_fire(void *arg)
{
	pending_event *e = arg;
	Opsdesk__V1__Envelope hdr = OPSDESK__V1__ENVELOPE__INIT;
	int rv = publish_locked(e->p, e->topic, &hdr, e->payload,
	    e->payload_len, e->correlation_id);
	if (rv != 0) {
		log_warn("bus: publishing %s after commit failed: %s",
		    e->topic, od_strerror(rv));
	}
}

int
bus_publish_on_commit(bus_publisher *p, store_txn *txn, const char *topic,
    const Opsdesk__V1__Envelope *env, const char *correlation_id)
{
	if (p == NULL || txn == NULL || topic == NULL || env == NULL
	    || !topic_valid(topic, strlen(topic))) {
		return OD_EINVAL;
	}
	/* Only the payload now; the header (seq, time) at send time. */
	Opsdesk__V1__Envelope body = OPSDESK__V1__ENVELOPE__INIT;
	body.payload_case = env->payload_case;
	/* The payload members share an anonymous union of pointers:
	 * copying one copies whichever is set. */
	body.health_changed = env->health_changed;
	size_t len = protobuf_c_message_get_packed_size(&body.base);
	if (len > BUS_MAX_MSG) {
		return OD_ETOOBIG;
	}
	pending_event *e = calloc(1, sizeof(*e));
	if (e == NULL) {
		return OD_ENOMEM;
	}
	e->p = p;
	e->topic = strdup(topic);
	e->correlation_id
	    = correlation_id != NULL ? strdup(correlation_id) : NULL;
	e->payload = malloc(len ? len : 1);
	if (e->topic == NULL || e->payload == NULL
	    || (correlation_id != NULL && e->correlation_id == NULL)) {
		pending_free(e);
		return OD_ENOMEM;
	}
	e->payload_len = protobuf_c_message_pack(&body.base, e->payload);
	return store_txn_on_commit(txn, pending_fire, e, pending_free);
}

/* ---- subscriber ---- */

/* The last number seen from a publisher (and topic, when filtering). */
typedef struct seq_entry {
	char *source;
	char *instance;
	char *topic; /* NULL: the publisher's seq */
	uint64_t last;
	unsigned epoch; /* connects_seen when last updated */
} seq_entry;

/*
 * NNG receives on an aio into a local queue; the thread waits on a
 * condition for a message or a connection change. (A receive time-out
 * to look at connection changes would race with delivery in NNG 1.5 and
 * lose messages.)
 */
struct bus_subscriber {
	nng_socket sock;
	nng_dialer dialer;
	nng_aio *aio;
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t mtx;
	pthread_cond_t cv;
	bool stop;     /* under mtx */
	nng_msg **q;   /* ring of BUS_SUB_QUEUE, under mtx */
	size_t q_head; /* next to take */
	size_t q_len;
	atomic_int pipes;
	atomic_uint connects; /* pipes ever added: a change means resync */
	unsigned connects_seen;
	int64_t learn_until_ms; /* see BUS_LEARN_MS */
	/* With prefixes, seq also counts events we filter out: track
	 * topic_seq per topic instead. */
	bool by_topic;
	bus_event_fn on_event;
	bus_resync_fn on_resync;
	void *arg;
	bus_resync *resync;
	char *ignore_source;
	seq_entry *seqs;
	size_t n_seqs;
	size_t cap_seqs;
	metric *received;
	metric *decode_errors;
	metric *resyncs;
	metric *dropped;
};

static void
sub_pipe_cb(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	bus_subscriber *s = arg;
	switch (ev) {
	case NNG_PIPE_EV_ADD_PRE:
		/* Before the pipe delivers anything, so the resync comes
		 * before the first event of the new connection. */
		atomic_fetch_add(&s->connects, 1);
		break;
	case NNG_PIPE_EV_ADD_POST:
		atomic_fetch_add(&s->pipes, 1);
		break;
	case NNG_PIPE_EV_REM_POST:
		atomic_fetch_sub(&s->pipes, 1);
		break;
	default:
		break;
	}
	pthread_mutex_lock(&s->mtx);
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mtx);
}

static void
sub_resync(bus_subscriber *s, const char *reason)
{
	metric_inc(s->resyncs);
	log_info("bus: resync (%s)", reason);
	if (s->on_resync != NULL) {
		s->on_resync(s->arg, reason);
	}
	if (s->resync != NULL) {
		bus_resync_mark(s->resync, -1, reason);
	}
}

/* Call on_resync("start"/"reconnect") when a pipe was added since the
 * last look. */
static void
sub_check_connects(bus_subscriber *s)
{
	unsigned c = atomic_load(&s->connects);
	if (c == s->connects_seen) {
		return;
	}
	const char *reason = s->connects_seen == 0 ? "start" : "reconnect";
	s->connects_seen = c;
	s->learn_until_ms = od_mono_ms() + BUS_LEARN_MS;
	sub_resync(s, reason);
}

/*
 * Track a publisher's number (per topic when by_topic). Returns the
 * resync reason, or NULL when the event follows the last one seen.
 */
static const char *
sub_track_seq(
    bus_subscriber *s, const Opsdesk__V1__Envelope *env, const char *topic)
{
	uint64_t seq = s->by_topic ? env->topic_seq : env->seq;
	if (s->by_topic && seq == 0) {
		return NULL; /* a publisher that does not number topics */
	}
	for (size_t i = 0; i < s->n_seqs; i++) {
		seq_entry *e = &s->seqs[i];
		if (strcmp(e->source, env->source) != 0
		    || strcmp(e->instance, env->instance) != 0
		    || (s->by_topic && strcmp(e->topic, topic) != 0)) {
			continue;
		}
		uint64_t last = e->last;
		bool same_epoch = e->epoch == s->connects_seen;
		e->last = seq;
		e->epoch = s->connects_seen;
		if (seq == last + 1) {
			return NULL;
		}
		if (seq <= last) {
			return "restart";
		}
		/* Events lost while we were disconnected are covered by the
		 * reconnect's resync. */
		return same_epoch ? "gap" : NULL;
	}
	if (s->n_seqs == s->cap_seqs) {
		size_t cap = s->cap_seqs ? s->cap_seqs * 2 : 8;
		seq_entry *n = realloc(s->seqs, cap * sizeof(*n));
		if (n == NULL) {
			return "gap"; /* cannot track: be safe */
		}
		s->seqs = n;
		s->cap_seqs = cap;
	}
	seq_entry *e = &s->seqs[s->n_seqs];
	e->source = strdup(env->source);
	e->instance = strdup(env->instance);
	e->topic = s->by_topic ? strdup(topic) : NULL;
	if (e->source == NULL || e->instance == NULL
	    || (s->by_topic && e->topic == NULL)) {
		free(e->source);
		free(e->instance);
		free(e->topic);
		return "gap";
	}
	e->last = seq;
	e->epoch = s->connects_seen;
	s->n_seqs++;
	if (seq <= 1 || od_mono_ms() < s->learn_until_ms) {
		return NULL;
	}
	return "gap"; /* a publisher we never heard from, past its start */
}

static void
sub_handle(bus_subscriber *s, const uint8_t *frame, size_t len)
{
	const char *topic;
	size_t tlen;
	const uint8_t *body;
	size_t blen;
	char topic_buf[BUS_MAX_TOPIC];
	Opsdesk__V1__Envelope *env = NULL;

	if (bus_frame_split(frame, len, &topic, &tlen, &body, &blen) != 0
	    || (env = opsdesk__v1__envelope__unpack(NULL, blen, body))
	        == NULL) {
		metric_inc(s->decode_errors);
		log_warn(
		    "bus: skipping an undecodable message (%zu bytes)", len);
		return;
	}
	memcpy(topic_buf, topic, tlen);
	topic_buf[tlen] = 0;
	metric_inc(s->received);
	if (s->ignore_source != NULL
	    && strcmp(env->source, s->ignore_source) == 0) {
		goto out;
	}
	const char *reason = sub_track_seq(s, env, topic_buf);
	if (reason != NULL) {
		sub_resync(s, reason);
	}
	if (s->on_event != NULL) {
		s->on_event(s->arg, topic_buf, env);
	}
out:
	opsdesk__v1__envelope__free_unpacked(env, NULL);
}

/* NNG's callback: queue the message, receive the next. */
static void
sub_recv_cb(void *arg)
{
	bus_subscriber *s = arg;
	int rv = nng_aio_result(s->aio);
	if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
		return; /* closing */
	}
	if (rv == 0) {
		nng_msg *msg = nng_aio_get_msg(s->aio);
		pthread_mutex_lock(&s->mtx);
		if (s->q_len < BUS_SUB_QUEUE) {
			s->q[(s->q_head + s->q_len) % BUS_SUB_QUEUE] = msg;
			s->q_len++;
			msg = NULL;
			pthread_cond_broadcast(&s->cv);
		}
		pthread_mutex_unlock(&s->mtx);
		if (msg != NULL) {
			nng_msg_free(msg);
			metric_inc(s->dropped);
		}
	} else {
		log_warn("bus: receive failed: %s", nng_strerror(rv));
	}
	nng_recv_aio(s->sock, s->aio);
}

static void *
sub_thread(void *arg)
{
	bus_subscriber *s = arg;
	pthread_mutex_lock(&s->mtx);
	for (;;) {
		while (!s->stop && s->q_len == 0
		    && atomic_load(&s->connects) == s->connects_seen) {
			pthread_cond_wait(&s->cv, &s->mtx);
		}
		if (s->stop) {
			break;
		}
		/* A new connection first: its resync comes before its
		 * events (connects grows before the pipe delivers). */
		if (atomic_load(&s->connects) != s->connects_seen) {
			pthread_mutex_unlock(&s->mtx);
			sub_check_connects(s);
			pthread_mutex_lock(&s->mtx);
			continue;
		}
		nng_msg *msg = s->q[s->q_head];
		s->q_head = (s->q_head + 1) % BUS_SUB_QUEUE;
		s->q_len--;
		pthread_mutex_unlock(&s->mtx);
		sub_handle(s, nng_msg_body(msg), nng_msg_len(msg));
		nng_msg_free(msg);
		pthread_mutex_lock(&s->mtx);
	}
	pthread_mutex_unlock(&s->mtx);
	return NULL;
}

void
bus_subscriber_close(bus_subscriber *s)
{
	if (s == NULL) {
		return;
	}
	pthread_mutex_lock(&s->mtx);
	s->stop = true;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mtx);
	if (s->thread_started) {
		pthread_join(s->thread, NULL);
	}
	if (!od_nng_close(s->sock)) {
		od_nng_abandon(s); /* its aio and callbacks may still run */
		return;
	}
	if (s->aio != NULL) {
		nng_aio_stop(s->aio); /* no callback runs after this */
		nng_aio_free(s->aio);
	}
	for (size_t i = 0; i < s->q_len; i++) {
		nng_msg_free(s->q[(s->q_head + i) % BUS_SUB_QUEUE]);
	}
	free(s->q);
	for (size_t i = 0; i < s->n_seqs; i++) {
		free(s->seqs[i].source);
		free(s->seqs[i].instance);
		free(s->seqs[i].topic);
	}
	free(s->seqs);
	free(s->ignore_source);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mtx);
	free(s);
}

int
bus_subscriber_open(bus_subscriber **out, const bus_subscriber_options *opt)
{
	if (out == NULL || opt == NULL || opt->url == NULL
	    || opt->on_event == NULL) {
		return OD_EINVAL;
	}
	int rv;
	bus_subscriber *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		return OD_ENOMEM;
	}
	pthread_mutex_init(&s->mtx, NULL);
	pthread_cond_init(&s->cv, NULL);
	atomic_init(&s->pipes, 0);
	atomic_init(&s->connects, 0);
	s->on_event = opt->on_event;
	s->on_resync = opt->on_resync;
	s->arg = opt->arg;
	s->resync = opt->resync;
	s->by_topic = opt->prefixes != NULL;
	s->received
	    = metrics_counter(opt->metrics, "opsdesk_bus_received_total",
	        "Events received from the bus", NULL);
	s->decode_errors
	    = metrics_counter(opt->metrics, "opsdesk_bus_decode_errors_total",
	        "Bus messages skipped because they did not decode", NULL);
	s->resyncs = metrics_counter(opt->metrics, "opsdesk_bus_resyncs_total",
	    "Times the subscriber asked its consumer to resync", NULL);
	s->dropped = metrics_counter(opt->metrics, "opsdesk_bus_dropped_total",
	    "Events dropped because the subscriber fell behind", NULL);
	if ((rv = od_nng_err(nng_sub0_open(&s->sock))) != 0) {
		pthread_cond_destroy(&s->cv);
		pthread_mutex_destroy(&s->mtx);
		free(s);
		return rv;
	}
	/* From here bus_subscriber_close cleans up. */
	if ((opt->ignore_source != NULL
	        && (s->ignore_source = strdup(opt->ignore_source)) == NULL)
	    || (s->q = calloc(BUS_SUB_QUEUE, sizeof(*s->q))) == NULL) {
		rv = OD_ENOMEM;
		goto out;
	}
	if ((rv = od_nng_err(nng_aio_alloc(&s->aio, sub_recv_cb, s))) != 0) {
		goto out;
	}
	if (opt->prefixes == NULL) {
		rv = od_nng_err(
		    nng_socket_set(s->sock, NNG_OPT_SUB_SUBSCRIBE, "", 0));
	} else {
		/* With the length: a string setter would add the NUL and
		 * match nothing. */
		for (size_t i = 0; rv == 0 && opt->prefixes[i] != NULL; i++) {
			rv = od_nng_err(
			    nng_socket_set(s->sock, NNG_OPT_SUB_SUBSCRIBE,
			        opt->prefixes[i], strlen(opt->prefixes[i])));
		}
	}
	if (rv != 0) {
		goto out;
	}
	static const nng_pipe_ev evs[] = { NNG_PIPE_EV_ADD_PRE,
		NNG_PIPE_EV_ADD_POST, NNG_PIPE_EV_REM_POST };
	for (size_t i = 0; rv == 0 && i < sizeof(evs) / sizeof(evs[0]); i++) {
		rv = od_nng_err(
		    nng_pipe_notify(s->sock, evs[i], sub_pipe_cb, s));
	}
	if (rv != 0
	    || (rv = dial_nonblock(s->sock, opt->url,
	            BUS_MAX_MSG + BUS_MAX_TOPIC, &s->dialer))
	        != 0) {
		goto out;
	}
	if (pthread_create(&s->thread, NULL, sub_thread, s) != 0) {
		rv = OD_ENOMEM;
		goto out;
	}
	s->thread_started = true;
	nng_recv_aio(s->sock, s->aio);
out:
	if (rv != 0) {
		bus_subscriber_close(s);
		return rv;
	}
	*out = s;
	return 0;
}

bool
bus_subscriber_connected(bus_subscriber *s)
{
	return s != NULL && atomic_load(&s->pipes) > 0;
}

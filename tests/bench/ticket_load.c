/*
 * ticket_load — drives ticket-service over its real req/rep socket, for
 * the crash test in tests/system/ticket_test.py and by hand.
 *
 *   ticket_load create --url U --count N [--clients C] [--out FILE]
 *                      [--user-base B] [--prefix P] [--skip-acked F]
 *       N creates from C threads; create i is made by user B+i with
 *       request id P-i. Every create that got a success reply is
 *       appended to FILE as "i id" (flushed per line), so a test can kill
 *       the service at any moment and know what was acknowledged.
 *       --skip-acked F leaves out the creates F lists (a resend of what
 *       got no reply, with the same request ids).
 *   ticket_load verify --url U --count N --acked FILE [--user-base B]
 *       For every i: user B+i has at most one ticket, and exactly one
 *       (with the acknowledged id) when FILE lists i; an i listed twice
 *       (a rerun with the same request ids) must have the same id both
 *       times. Prints a JSON
 *       summary; exit 1 on any violation.
 *   ticket_load raw --url U --file F
 *       Send the bytes of F as a request (garbage, oversized) and print
 *       the reply's error code name, or "NO_REPLY"; exit 0 on a reply.
 *   ticket_load dup --url U [--user-base B]
 *       The same create twice with one request id from two connections;
 *       prints both ids and the user's ticket count; exit 1 unless one
 *       ticket was made.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rpc/rpc.h"
#include "ticket.pb-c.h"
#include "util/util.h"

typedef struct load {
	const char *url;
	long count;
	int clients;
	long long user_base;
	const char *prefix;
	FILE *out;
	pthread_mutex_t mu;
	atomic_long next;
	atomic_long ok;
	atomic_long failed;
	long long *acked; /* verify: id by i, 0 if not acked */
	atomic_long present, missing, dupes, wrong;
} load;

static int
connect_client(const char *url, rpc_client **out)
{
	rpc_client *c;
	int rv = rpc_client_open(&c, url, 10000);

	if (rv != 0) {
		return rv;
	}
	for (int i = 0; i < 1000 && !rpc_client_connected(c); i++) {
		usleep(5000);
	}
	*out = c;
	return 0;
}

static int
do_call(rpc_client *c, const char *rid, long long uid, const char *method,
    ProtobufCMessage *msg, Opsdesk__V1__TicketReply **out)
{
	Opsdesk__V1__TicketRequest req = OPSDESK__V1__TICKET_REQUEST__INIT;
	Opsdesk__V1__Actor a = OPSDESK__V1__ACTOR__INIT;

	a.user_id = uid;
	a.chat_id = uid;
	a.name = "load";
	req.request_id = (char *) rid;
	req.actor = &a;
	rpc_request_set_method(&req.base, method, msg);
	return rpc_client_call(c, &req.base,
	    &opsdesk__v1__ticket_reply__descriptor, (ProtobufCMessage **) out,
	    0);
}

static void *
create_thread(void *arg)
{
	load *l = arg;
	rpc_client *c = NULL;
	char rid[96], text[64];

	if (connect_client(l->url, &c) != 0) {
		return NULL;
	}
	for (;;) {
		long i = atomic_fetch_add(&l->next, 1);
		Opsdesk__V1__CreateTicketRequest cr
		    = OPSDESK__V1__CREATE_TICKET_REQUEST__INIT;
		Opsdesk__V1__TicketReply *r = NULL;
		int rv;

		if (i >= l->count) {
			break;
		}
		if (l->acked != NULL && l->acked[i] != 0) {
			continue; /* --skip-acked: answered before */
		}
		snprintf(rid, sizeof(rid), "%s-%ld", l->prefix, i);
		snprintf(text, sizeof(text), "load test ticket %ld", i);
		cr.text = text;
		rv = do_call(c, rid, l->user_base + i, "create", &cr.base, &r);
		if (rv == 0 && r->error == NULL
		    && r->result_case
		        == OPSDESK__V1__TICKET_REPLY__RESULT_CREATED) {
			atomic_fetch_add(&l->ok, 1);
			if (l->out != NULL) {
				pthread_mutex_lock(&l->mu);
				fprintf(l->out, "%ld %llu\n", i,
				    (unsigned long long)
				        r->created->ticket->id);
				fflush(l->out);
				pthread_mutex_unlock(&l->mu);
			}
		} else {
			atomic_fetch_add(&l->failed, 1);
		}
		protobuf_c_message_free_unpacked(
		    r != NULL ? &r->base : NULL, NULL);
	}
	rpc_client_close(c);
	return NULL;
}

static void *
verify_thread(void *arg)
{
	load *l = arg;
	rpc_client *c = NULL;

	if (connect_client(l->url, &c) != 0) {
		return NULL;
	}
	for (;;) {
		long i = atomic_fetch_add(&l->next, 1);
		Opsdesk__V1__ListTicketsRequest lr
		    = OPSDESK__V1__LIST_TICKETS_REQUEST__INIT;
		Opsdesk__V1__TicketReply *r = NULL;
		int rv;

		if (i >= l->count) {
			break;
		}
		lr.include_closed = true;
		rv = do_call(
		    c, "", l->user_base + i, "list_mine", &lr.base, &r);
		if (rv != 0 || r->error != NULL
		    || r->result_case
		        != OPSDESK__V1__TICKET_REPLY__RESULT_TICKETS) {
			fprintf(stderr, "verify %ld: call failed (%s)\n", i,
			    rv != 0 ? od_strerror(rv)
			            : (r->error ? r->error->message : "?"));
			atomic_fetch_add(&l->failed, 1);
		} else {
			uint32_t n = r->tickets->total;
			if (n > 1) {
				atomic_fetch_add(&l->dupes, 1);
			}
			if (n >= 1) {
				atomic_fetch_add(&l->present, 1);
			}
			if (l->acked[i] != 0) {
				if (n == 0) {
					atomic_fetch_add(&l->missing, 1);
				} else if (r->tickets->n_tickets < 1
				    || (long long) r->tickets->tickets[0]->id
				        != l->acked[i]) {
					atomic_fetch_add(&l->wrong, 1);
				}
			}
		}
		protobuf_c_message_free_unpacked(
		    r != NULL ? &r->base : NULL, NULL);
	}
	rpc_client_close(c);
	return NULL;
}

/* Load "i id" lines into l->acked; a second line for one i must carry
 * the same id. Returns how many distinct i were read. */
static long
read_acked(load *l, FILE *f)
{
	long i, acked = 0;
	unsigned long long id;

	while (fscanf(f, "%ld %llu", &i, &id) == 2) {
		if (i < 0 || i >= l->count) {
			continue;
		}
		if (l->acked[i] == 0) {
			l->acked[i] = (long long) id;
			acked++;
		} else if (l->acked[i] != (long long) id) {
			/* A resent request id answered another ticket. */
			l->wrong++;
		}
	}
	return acked;
}

static int
run_threads(load *l, void *(*fn)(void *) )
{
	pthread_t *t = calloc((size_t) l->clients, sizeof(*t));

	if (t == NULL) {
		return 1;
	}
	for (int i = 0; i < l->clients; i++) {
		pthread_create(&t[i], NULL, fn, l);
	}
	for (int i = 0; i < l->clients; i++) {
		pthread_join(t[i], NULL);
	}
	free(t);
	return 0;
}

static int
cmd_dup(load *l)
{
	rpc_client *a = NULL, *b = NULL;
	Opsdesk__V1__CreateTicketRequest cr
	    = OPSDESK__V1__CREATE_TICKET_REQUEST__INIT;
	Opsdesk__V1__ListTicketsRequest lr
	    = OPSDESK__V1__LIST_TICKETS_REQUEST__INIT;
	Opsdesk__V1__TicketReply *r1 = NULL, *r2 = NULL, *r3 = NULL;
	char rid[64];
	int rc = 1;

	snprintf(rid, sizeof(rid), "dup-%lld", l->user_base);
	cr.text = "the same request twice";
	if (connect_client(l->url, &a) != 0 || connect_client(l->url, &b) != 0
	    || do_call(a, rid, l->user_base, "create", &cr.base, &r1) != 0
	    || do_call(b, rid, l->user_base, "create", &cr.base, &r2) != 0
	    || do_call(a, "", l->user_base, "list_mine", &lr.base, &r3) != 0) {
		fprintf(stderr, "dup: a call failed\n");
		goto out;
	}
	if (r1->error || r2->error || r3->error) {
		fprintf(stderr, "dup: error reply\n");
		goto out;
	}
	printf("{\"first\":%llu,\"second\":%llu,\"tickets\":%u}\n",
	    (unsigned long long) r1->created->ticket->id,
	    (unsigned long long) r2->created->ticket->id, r3->tickets->total);
	rc = r1->created->ticket->id == r2->created->ticket->id
	        && r3->tickets->total == 1
	    ? 0
	    : 1;
out:
	protobuf_c_message_free_unpacked(r1 ? &r1->base : NULL, NULL);
	protobuf_c_message_free_unpacked(r2 ? &r2->base : NULL, NULL);
	protobuf_c_message_free_unpacked(r3 ? &r3->base : NULL, NULL);
	rpc_client_close(a);
	rpc_client_close(b);
	return rc;
}

static int
cmd_raw(load *l, const char *path)
{
	rpc_client *c = NULL;
	FILE *f = path != NULL ? fopen(path, "rb") : NULL;
	char *buf = NULL;
	void *out = NULL;
	size_t out_len = 0;
	long n;
	int rc = 1;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0
	    || fseek(f, 0, SEEK_SET) != 0
	    || (buf = malloc((size_t) n + 1)) == NULL
	    || fread(buf, 1, (size_t) n, f) != (size_t) n) {
		fprintf(stderr, "raw: cannot read --file\n");
		goto out;
	}
	if (connect_client(l->url, &c) != 0) {
		goto out;
	}
	if (rpc_client_call_raw(c, buf, (size_t) n, &out, &out_len, 5000)
	    == 0) {
		Opsdesk__V1__TicketReply *r
		    = opsdesk__v1__ticket_reply__unpack(NULL, out_len, out);
		printf("%s\n",
		    r == NULL ? "UNDECODABLE"
		        : r->error == NULL
		        ? "OK"
		        : rpc_error_code_name(r->error->code));
		protobuf_c_message_free_unpacked(r ? &r->base : NULL, NULL);
		rc = 0;
	} else {
		printf("NO_REPLY\n");
	}
out:
	if (f != NULL) {
		fclose(f);
	}
	free(buf);
	free(out);
	rpc_client_close(c);
	return rc;
}

int
main(int argc, char **argv)
{
	load l = { .count = 0,
		.clients = 64,
		.user_base = 5000000,
		.prefix = "load" };
	const char *out_path = NULL, *acked_path = NULL, *file = NULL;
	const char *skip_path = NULL;
	const char *cmd = argc > 1 ? argv[1] : "";
	int64_t t0;
	int rc = 0;

	for (int i = 2; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--url") == 0) {
			l.url = argv[i + 1];
		} else if (strcmp(argv[i], "--count") == 0) {
			l.count = atol(argv[i + 1]);
		} else if (strcmp(argv[i], "--clients") == 0) {
			l.clients = atoi(argv[i + 1]);
		} else if (strcmp(argv[i], "--out") == 0) {
			out_path = argv[i + 1];
		} else if (strcmp(argv[i], "--acked") == 0) {
			acked_path = argv[i + 1];
		} else if (strcmp(argv[i], "--user-base") == 0) {
			l.user_base = atoll(argv[i + 1]);
		} else if (strcmp(argv[i], "--skip-acked") == 0) {
			skip_path = argv[i + 1];
		} else if (strcmp(argv[i], "--file") == 0) {
			file = argv[i + 1];
		} else if (strcmp(argv[i], "--prefix") == 0) {
			l.prefix = argv[i + 1];
		} else {
			fprintf(stderr, "ticket_load: unknown option %s\n",
			    argv[i]);
			return 64;
		}
	}
	if (l.url == NULL || l.clients < 1) {
		fprintf(stderr,
		    "usage: ticket_load create|verify|dup --url U "
		    "[--count N] [--clients C] [--out F] "
		    "[--acked F] [--user-base B] [--prefix P]\n");
		return 64;
	}
	pthread_mutex_init(&l.mu, NULL);
	t0 = od_mono_ms();
	if (strcmp(cmd, "create") == 0) {
		if (skip_path != NULL) {
			FILE *f = fopen(skip_path, "r");
			if (f == NULL
			    || (l.acked = calloc(
			            (size_t) l.count + 1, sizeof(long long)))
			        == NULL) {
				perror(skip_path);
				return 64;
			}
			read_acked(&l, f);
			fclose(f);
		}
		if (out_path != NULL
		    && (l.out = fopen(out_path, "a")) == NULL) {
			perror(out_path);
			return 1;
		}
		run_threads(&l, create_thread);
		printf("{\"ok\":%ld,\"failed\":%ld,\"ms\":%lld}\n",
		    atomic_load(&l.ok), atomic_load(&l.failed),
		    (long long) (od_mono_ms() - t0));
		if (l.out != NULL) {
			fclose(l.out);
		}
		free(l.acked);
	} else if (strcmp(cmd, "verify") == 0) {
		FILE *f;
		long acked = 0;
		if (acked_path == NULL || (f = fopen(acked_path, "r")) == NULL
		    || (l.acked
		           = calloc((size_t) l.count + 1, sizeof(long long)))
		        == NULL) {
			fprintf(
			    stderr, "verify: --acked FILE and --count N\n");
			return 64;
		}
		acked = read_acked(&l, f);
		fclose(f);
		run_threads(&l, verify_thread);
		printf("{\"acked\":%ld,\"present\":%ld,\"missing\":%ld,"
		       "\"dupes\":%ld,\"wrong\":%ld,\"failed\":%ld}\n",
		    acked, atomic_load(&l.present), atomic_load(&l.missing),
		    atomic_load(&l.dupes), atomic_load(&l.wrong),
		    atomic_load(&l.failed));
		rc = atomic_load(&l.missing) || atomic_load(&l.dupes)
		        || atomic_load(&l.wrong) || atomic_load(&l.failed)
		    ? 1
		    : 0;
		free(l.acked);
	} else if (strcmp(cmd, "raw") == 0) {
		rc = cmd_raw(&l, file);
	} else if (strcmp(cmd, "dup") == 0) {
		rc = cmd_dup(&l);
	} else {
		fprintf(stderr, "ticket_load: unknown command \"%s\"\n", cmd);
		rc = 64;
	}
	pthread_mutex_destroy(&l.mu);
	return rc;
}

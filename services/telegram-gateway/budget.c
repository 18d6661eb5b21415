/*
 * budget — inbound fairness: a token bucket per user, so one user's flood
 * of commands costs the others nothing. A user over budget is told once to
 * slow down, then ignored until the bucket refills. A fixed table: the
 * least recently seen user of a probe run gives way to a new one (who then
 * starts with a full bucket: a burst, not a flood).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"

#define BUDGET_SLOTS 8192
#define BUDGET_PROBE 8

typedef struct bucket {
	int64_t user; /* 0: free */
	int64_t last_ms;
	double tokens;
	bool warned;
} bucket;

struct budget {
	pthread_mutex_t mtx;
	double per_ms;
	double burst;
	bucket *slots;
};

int
gw_budget_new(budget **out, int per_min, int burst)
{
	budget *b = calloc(1, sizeof(*b));
	if (b == NULL) {
		return OD_ENOMEM;
	}
	b->per_ms = (double) per_min / 60000.0;
	b->burst = burst > 0 ? burst : 1;
	if (per_min > 0
	    && (b->slots = calloc(BUDGET_SLOTS, sizeof(bucket))) == NULL) {
		free(b);
		return OD_ENOMEM;
	}
	pthread_mutex_init(&b->mtx, NULL);
	*out = b;
	return 0;
}

void
gw_budget_free(budget *b)
{
	if (b != NULL) {
		pthread_mutex_destroy(&b->mtx);
		free(b->slots);
		free(b);
	}
}

static bucket *
bucket_of(budget *b, int64_t user)
{
	uint64_t h = (uint64_t) user * 0x9e3779b97f4a7c15ULL;
	bucket *victim = NULL;
	for (int i = 0; i < BUDGET_PROBE; i++) {
		bucket *s = &b->slots[(h + (uint64_t) i) % BUDGET_SLOTS];
		if (s->user == user) {
			return s;
		}
		if (s->user == 0) {
			if (victim == NULL || victim->user != 0) {
				victim = s; /* a free slot beats any other */
			}
		} else if (victim == NULL
		    || (victim->user != 0 && s->last_ms < victim->last_ms)) {
			victim = s;
		}
	}
	memset(victim, 0, sizeof(*victim));
	victim->user = user;
	victim->tokens = b->burst;
	return victim;
}

budget_verdict
gw_budget_take(budget *b, int64_t user, int64_t now)
{
	budget_verdict v = BUDGET_OK;
	if (b == NULL || b->slots == NULL) {
		return BUDGET_OK;
	}
	pthread_mutex_lock(&b->mtx);
	bucket *s = bucket_of(b, user);
	if (s->last_ms != 0 && now > s->last_ms) {
		s->tokens += (double) (now - s->last_ms) * b->per_ms;
		if (s->tokens > b->burst) {
			s->tokens = b->burst;
		}
	}
	s->last_ms = now;
	if (s->tokens >= 1.0) {
		s->tokens -= 1.0;
		s->warned = false;
	} else if (!s->warned) {
		s->warned = true;
		v = BUDGET_WARN;
	} else {
		v = BUDGET_IGNORE;
	}
	pthread_mutex_unlock(&b->mtx);
	return v;
}

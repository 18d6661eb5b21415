/*
 * prober_fixture — the unit tests' prober over a real store in a temp
 * directory, with an injected clock (fake_now) read by the store's writer
 * thread while a test moves it. Included by one test file each.
 */
#ifndef OPSDESK_PROBER_FIXTURE_H
#define OPSDESK_PROBER_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>

#include "prober_impl.h"
#include "util/util.h"

static _Atomic int64_t fake_now;

static int64_t
fake_clock(void *arg)
{
	(void) arg;
	return fake_now;
}

typedef struct fixture {
	char dir[64];
	config *cfg;
	store *st;
	prober *p;
} fixture;

static void
open_all(fixture *f)
{
	char err[256];
	store_options so
	    = { .path = f->dir, .dbs = prober_db_names, .nosync = true };
	assert_int_equal(store_open(&f->st, &so), 0);
	assert_int_equal(prober_new(&f->p, f->cfg, NULL, err, sizeof(err)), 0);
	assert_int_equal(
	    prober_attach(f->p, f->st, NULL, NULL, "test", "/"), 0);
}

static void
close_all(fixture *f)
{
	prober_stop(f->p);
	store_close(f->st);
	prober_free(f->p);
	f->st = NULL;
	f->p = NULL;
}

/* A fixture named name (the temp directory's prefix) for cfg_json, the
 * clock at now. */
static int
fixture_setup(
    void **state, const char *name, const char *cfg_json, int64_t now)
{
	fixture *f = calloc(1, sizeof(*f));
	char err[256];
	config_env_clear();
	snprintf(f->dir, sizeof(f->dir), "/tmp/%s.XXXXXX", name);
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(config_load_string(&f->cfg, "health-prober", NULL,
	                     cfg_json, err, sizeof(err)),
	    0);
	fake_now = now;
	od_clock_set(fake_clock, NULL);
	open_all(f);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	fixture *f = *state;
	char cmd[128];
	close_all(f);
	config_free(f->cfg);
	od_clock_set(NULL, NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

#endif /* OPSDESK_PROBER_FIXTURE_H */

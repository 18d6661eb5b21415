/*
 * probe_tcp — a TCP connect, done by curl (CURLOPT_CONNECT_ONLY) so the
 * same multi handle runs it beside the HTTP probes, with the same
 * concurrency bound and per-probe time-out.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "prober.h"
#include "util/util.h"

int
probe_tcp_setup(void *easy, const target *t)
{
	char url[320];
	CURLcode rc = CURLE_OK;

	/* An IPv6 literal needs brackets in a URL. */
	snprintf(url, sizeof(url),
	    strchr(t->host, ':') != NULL ? "http://[%s]:%d/" : "http://%s:%d/",
	    t->host, t->port);
	rc |= curl_easy_setopt(easy, CURLOPT_URL, url);
	rc |= curl_easy_setopt(easy, CURLOPT_CONNECT_ONLY, 1L);
	return rc == CURLE_OK ? 0 : OD_EINVAL;
}

void
probe_tcp_judge(
    void *easy, int curl_code, const char *curl_err, probe_result *r)
{
	curl_off_t us = 0;

	curl_easy_getinfo(easy, CURLINFO_CONNECT_TIME_T, &us);
	r->latency_ms = (uint32_t) (us / 1000);
	if (curl_code == CURLE_OK) {
		r->observed = OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_UP;
		return;
	}
	r->observed = OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_DOWN;
	if (curl_code == CURLE_OPERATION_TIMEDOUT) {
		snprintf(r->error, sizeof(r->error), "connect timed out");
	} else {
		snprintf(r->error, sizeof(r->error), "%s",
		    curl_err != NULL && curl_err[0] != '\0'
		        ? curl_err
		        : curl_easy_strerror((CURLcode) curl_code));
	}
}

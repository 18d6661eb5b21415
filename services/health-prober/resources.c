/*
 * resources — the prober host's CPU, memory, disk and load for /monitor,
 * read from /proc and statvfs. Parsers take text so tests feed them
 * fixed /proc contents.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "prober.h"
#include "util/util.h"

int
prober_resources_parse_stat(const char *text, cpu_sample *out)
{
	unsigned long long v[10] = { 0 };
	int n;

	if (text == NULL || strncmp(text, "cpu ", 4) != 0) {
		return OD_EMALFORMED;
	}
	n = sscanf(text + 4,
	    "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
	    &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]);
	if (n < 4) {
		return OD_EMALFORMED;
	}
	/* user nice system idle iowait irq softirq steal (guest is already
	 * in user): idle and iowait are not busy. */
	out->total = 0;
	for (int i = 0; i < n && i < 8; i++) {
		out->total += v[i];
	}
	out->busy = out->total - v[3] - (n > 4 ? v[4] : 0);
	return 0;
}

double
prober_resources_cpu_percent(const cpu_sample *prev, const cpu_sample *cur)
{
	if (cur->total <= prev->total || cur->busy < prev->busy) {
		return 0;
	}
	return 100.0 * (double) (cur->busy - prev->busy)
	    / (double) (cur->total - prev->total);
}

static int
meminfo_field(const char *text, const char *name, uint64_t *out)
{
	const char *p = strstr(text, name);
	unsigned long long kb;
	if (p == NULL || sscanf(p + strlen(name), " %llu", &kb) != 1) {
		return OD_ENOTFOUND;
	}
	*out = (uint64_t) kb * 1024;
	return 0;
}

int
prober_resources_parse_meminfo(
    const char *text, uint64_t *total, uint64_t *available)
{
	uint64_t t, a;
	if (text == NULL || meminfo_field(text, "MemTotal:", &t) != 0
	    || meminfo_field(text, "MemAvailable:", &a) != 0) {
		return OD_EMALFORMED;
	}
	*total = t;
	*available = a;
	return 0;
}

int
prober_resources_parse_loadavg(
    const char *text, double *l1, double *l5, double *l15)
{
	double a, b, c;
	if (text == NULL || sscanf(text, "%lf %lf %lf", &a, &b, &c) != 3) {
		return OD_EMALFORMED;
	}
	*l1 = a;
	*l5 = b;
	*l15 = c;
	return 0;
}

/* The start of a small /proc file into buf (NUL-terminated). */
static int
read_small(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");
	size_t n;
	if (f == NULL) {
		return OD_EIO;
	}
	n = fread(buf, 1, size - 1, f);
	buf[n] = '\0';
	fclose(f);
	return 0;
}

int
prober_resources_read(
    Opsdesk__V1__HostResources *out, const char *disk_path, cpu_sample *prev)
{
	char buf[4096];
	cpu_sample cur;
	struct statvfs vfs;
	double up;

	out->at_ms = od_now_ms();
	if (read_small("/proc/stat", buf, sizeof(buf)) == 0
	    && prober_resources_parse_stat(buf, &cur) == 0) {
		if (prev != NULL) {
			out->cpu_percent
			    = prober_resources_cpu_percent(prev, &cur);
			*prev = cur;
		}
	}
	if (read_small("/proc/meminfo", buf, sizeof(buf)) == 0) {
		(void) prober_resources_parse_meminfo(
		    buf, &out->mem_total_bytes, &out->mem_available_bytes);
	}
	if (read_small("/proc/loadavg", buf, sizeof(buf)) == 0) {
		(void) prober_resources_parse_loadavg(
		    buf, &out->load1, &out->load5, &out->load15);
	}
	if (read_small("/proc/uptime", buf, sizeof(buf)) == 0
	    && sscanf(buf, "%lf", &up) == 1) {
		out->uptime_s = (uint64_t) up;
	}
	if (disk_path != NULL && statvfs(disk_path, &vfs) == 0) {
		out->disk_total_bytes = (uint64_t) vfs.f_blocks * vfs.f_frsize;
		out->disk_free_bytes = (uint64_t) vfs.f_bavail * vfs.f_frsize;
	}
	return 0;
}

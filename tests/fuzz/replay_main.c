/*
 * A main() for fuzz targets when libFuzzer is not used: replay every file
 * given (or every file in a given directory), then a fixed number of
 * deterministic mutations of each, so ctest exercises the decoder under
 * the sanitizers without clang.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t
next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void
run_mutations(const uint8_t *data, size_t size, int rounds)
{
	size_t cap = size + 64;
	uint8_t *buf = malloc(cap);
	if (buf == NULL) {
		return;
	}
	for (int r = 0; r < rounds; r++) {
		size_t n = size;
		memcpy(buf, data, size);
		int edits = 1 + (int) (next_rand() % 4);
		for (int e = 0; e < edits; e++) {
			switch (next_rand() % 4) {
			case 0: /* flip a byte */
				if (n > 0) {
					buf[next_rand() % n] ^= (uint8_t) (1u
					    << (next_rand() % 8));
				}
				break;
			case 1: /* truncate */
				if (n > 0) {
					n = next_rand() % n;
				}
				break;
			case 2: /* insert a random byte */
				if (n < cap) {
					size_t at = n ? next_rand() % n : 0;
					memmove(
					    buf + at + 1, buf + at, n - at);
					buf[at] = (uint8_t) next_rand();
					n++;
				}
				break;
			default: /* set an interesting value */
				if (n > 0) {
					static const uint8_t v[] = { 0, 0xff,
						0x7f, 0x80, 0x0a, 0x22 };
					buf[next_rand() % n]
					    = v[next_rand() % sizeof(v)];
				}
				break;
			}
		}
		uint8_t *exact = malloc(n ? n : 1);
		if (exact != NULL) {
			memcpy(exact, buf, n);
			LLVMFuzzerTestOneInput(exact, n);
			free(exact);
		}
	}
	free(buf);
}

static int
replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		perror(path);
		return 1;
	}
	uint8_t *data = NULL;
	size_t size = 0, cap = 0;
	for (;;) {
		if (size == cap) {
			cap = cap ? cap * 2 : 4096;
			uint8_t *n = realloc(data, cap);
			if (n == NULL) {
				free(data);
				fclose(f);
				return 1;
			}
			data = n;
		}
		size_t got = fread(data + size, 1, cap - size, f);
		if (got == 0) {
			break;
		}
		size += got;
	}
	fclose(f);
	uint8_t *exact = malloc(size ? size : 1);
	if (exact != NULL) {
		memcpy(exact, data, size);
		LLVMFuzzerTestOneInput(exact, size);
		free(exact);
	}
	run_mutations(data, size, 2000);
	free(data);
	return 0;
}

int
main(int argc, char **argv)
{
	int files = 0, rv = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) != 0) {
			perror(argv[i]);
			return 1;
		}
		if (!S_ISDIR(st.st_mode)) {
			rv |= replay_file(argv[i]);
			files++;
			continue;
		}
		DIR *d = opendir(argv[i]);
		if (d == NULL) {
			perror(argv[i]);
			return 1;
		}
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.') {
				continue;
			}
			char path[4096];
			snprintf(
			    path, sizeof(path), "%s/%s", argv[i], de->d_name);
			rv |= replay_file(path);
			files++;
		}
		closedir(d);
	}
	/* Empty and tiny inputs are always worth one run each. */
	LLVMFuzzerTestOneInput((const uint8_t *) "", 0);
	printf("replayed %d inputs with mutations: %s\n", files,
	    rv ? "errors" : "ok");
	return rv;
}

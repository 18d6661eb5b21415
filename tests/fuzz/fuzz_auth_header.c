/*
 * Fuzz the authentication header every rpc server and the relay parse
 * before anything else (common/auth): auth_header_parse and auth_verify
 * at every prefix length the first byte picks, bus_frame_split over a
 * header, and a seal of the input that must verify back to it. A parse
 * stays inside the buffer; a verify never accepts what was not sealed
 * with the key.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "bus/bus.h"

static auth *a;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (a == NULL) {
		uint8_t key[AUTH_KEY_LEN];
		memset(key, 0x42, sizeof(key));
		if (auth_open_key(&a, "opsctl", key) != 0) {
			abort();
		}
	}
	auth_header h;
	if (auth_header_parse(data, size, &h) == 0) {
		if (h.len > size || h.identity_len == 0
		    || h.identity_len > AUTH_MAX_IDENTITY
		    || (const uint8_t *) h.identity < data
		    || (const uint8_t *) h.identity + h.identity_len
		        > data + size
		    || h.mac + AUTH_MAC_LEN != data + h.len) {
			abort();
		}
	}
	size_t at = size > 0 ? data[0] % (size < 16 ? size + 1 : 17) : 0;
	char id[AUTH_MAX_IDENTITY + 1];
	size_t off = 0;
	if (auth_verify(a, data, size, at, id, &off, NULL, 0) == 0) {
		if (off > size || off < at || strlen(id) == 0) {
			abort();
		}
	}
	const char *topic;
	size_t tlen, blen;
	const uint8_t *body;
	if (bus_frame_split(data, size, &topic, &tlen, &body, &blen) == 0) {
		if (body < data + tlen + 1 || body + blen != data + size) {
			abort();
		}
	}
	/* Sealed here, it verifies, and the payload comes back. */
	uint8_t *buf = malloc(size ? size : 1);
	if (buf == NULL) {
		abort();
	}
	memcpy(buf, data, size);
	size_t len = size;
	if (auth_seal(a, &buf, &len, at) != 0
	    || auth_verify(a, buf, len, at, id, &off, NULL, 0) != 0
	    || strcmp(id, "opsctl") != 0 || len - off != size - at
	    || memcmp(buf + off, data + at, size - at) != 0
	    || memcmp(buf, data, at) != 0) {
		abort();
	}
	free(buf);
	return 0;
}

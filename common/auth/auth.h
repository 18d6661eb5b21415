/*
 * auth — who is calling: suite identities, TLS transport, an HMAC on
 * every rpc request and bus frame, and what each identity may do.
 *
 * Off unless OPSDESK_TLS_DIR names a directory written by `opsctl certs
 * init`. Then this process is OPSDESK_IDENTITY (default: the executable's
 * name) and loads:
 *   DIR/ca.crt            the suite CA (both TLS sides verify against it)
 *   DIR/<identity>.crt    its certificate, DIR/<identity>.key its key
 *   DIR/<identity>.secret its HMAC key (64 hex characters)
 *   DIR/<peer>.secret     every other suite identity's HMAC key present,
 *                         to verify what that peer sends (a missing one
 *                         means that peer is refused)
 * A .secret file may hold up to AUTH_MAX_KEYS keys separated by white
 * space (one a line): the first signs, every one verifies, so a key is
 * rotated without a gap (docs/operations.md, Rotation). auth_reload
 * (SIGHUP in a service) reads the directory again.
 *
 * The header that authenticates a message (inserted before the payload:
 * at the start of an rpc request, after the topic's 0x00 of a bus frame):
 *   "ODA1" (4)  u8 identity length  identity  u64 ts_ms (BE)
 *   u64 nonce   32-byte HMAC-SHA256
 * The HMAC, keyed with the identity's secret, covers everything before
 * the header (the topic and its 0x00), the header up to the MAC, and the
 * payload. 'O' (0x4f) is never the first byte of a valid protobuf
 * message (wire type 7), so a header is told apart from a bare payload.
 * A verified message is at most AUTH_WINDOW_MS old (or early), and its
 * MAC not seen before within that window (a bounded replay cache).
 */
#ifndef OPSDESK_AUTH_H
#define OPSDESK_AUTH_H

#include <nng/nng.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.pb-c.h"

#define AUTH_MAGIC        "ODA1"
#define AUTH_MAX_IDENTITY 32
#define AUTH_MAC_LEN      32
#define AUTH_KEY_LEN      32
#define AUTH_MAX_KEYS     4 /* per .secret file */
#define AUTH_MAX_HEADER   (4 + 1 + AUTH_MAX_IDENTITY + 8 + 8 + AUTH_MAC_LEN)
#define AUTH_WINDOW_MS    30000

/* The suite's identities, NULL-terminated. */
extern const char *const auth_identities[];
bool auth_identity_known(const char *identity);

typedef struct auth auth;

/*
 * Load dir for identity (see above). err gets a sentence on failure.
 * OD_ENOTFOUND / OD_EIO / OD_EMALFORMED.
 */
int auth_open(auth **out, const char *dir, const char *identity, char *err,
    size_t errlen);
void auth_close(auth *a); /* NULL-safe */
/*
 * Read a's directory again (auth_open's): on success every message
 * sealed or verified after it uses the new keys, and every dialer and
 * listener given TLS by auth_dialer_tls / auth_listener_tls makes its
 * new connections with the new certificate, key and CA (connections
 * already open keep theirs). On failure (err says which file) nothing
 * changes: the old credentials stay. The replay cache is kept.
 */
int auth_reload(auth *a, char *err, size_t errlen);
/* Tests and fuzzers: identity with key, every suite identity's key the
 * same, no TLS. */
int auth_open_key(
    auth **out, const char *identity, const uint8_t key[AUTH_KEY_LEN]);
const char *auth_identity(const auth *a);

/*
 * This process's auth: NULL when OPSDESK_TLS_DIR is unset (auth off).
 * Loaded once, on first use; a directory that does not load makes every
 * later call return OD_EINVAL (logged once) so that servers, clients and
 * the relay refuse to start.
 */
int auth_process(auth **out);
/* auth_reload of the process's auth. OD_ENOTFOUND when auth is off. */
int auth_process_reload(char *err, size_t errlen);
/* Tests: forget the process's auth so the environment is read again. */
void auth_process_reset(void);

/* A parsed header; identity points into the buffer (not terminated). */
typedef struct auth_header {
	const char *identity;
	size_t identity_len;
	int64_t ts_ms;
	uint64_t nonce;
	const uint8_t *mac;
	size_t len; /* the header's whole length */
} auth_header;

/* True when buf starts with the magic. */
bool auth_has_header(const void *buf, size_t len);
/* Parse the header at buf. 0 or OD_EMALFORMED. */
int auth_header_parse(const void *buf, size_t len, auth_header *out);

/*
 * Make the header for prefix (may be empty) and payload into hdr (at
 * least AUTH_MAX_HEADER bytes); *hdr_len is its length.
 */
int auth_header_make(auth *a, const void *prefix, size_t prefix_len,
    const void *payload, size_t payload_len, uint8_t *hdr, size_t *hdr_len);
/*
 * Insert a header into the malloc'ed *buf at offset at (the prefix is
 * buf[0, at)): *buf is reallocated, *len grows.
 */
int auth_seal(auth *a, uint8_t **buf, size_t *len, size_t at);

/*
 * Verify the header at buf + at (buf[0, at) is the prefix). On 0 the
 * caller's identity (terminated) is in identity and the payload starts
 * at buf + *payload_off. OD_EMALFORMED (no or bad header), OD_EPERM
 * (unknown identity, bad MAC, outside the window, replayed); err says
 * which (may be NULL).
 */
int auth_verify(auth *a, const void *buf, size_t len, size_t at,
    char identity[AUTH_MAX_IDENTITY + 1], size_t *payload_off, char *err,
    size_t errlen);

/* ---- transport ---- */

/*
 * True for ipc:// and inproc:// URLs and tcp hosts on loopback
 * (127.0.0.0/8, ::1, localhost). 0.0.0.0, * and names are not.
 */
bool auth_url_is_loopback(const char *url);
/*
 * Check url against the safe defaults and give a dialer / listener the
 * suite's TLS config when url is tls+tcp://. A plain url that is not on
 * loopback is refused (OD_EPERM, logged with how to enable TLS) unless
 * OPSDESK_ALLOW_INSECURE=1 (then a warning); tls+tcp:// without
 * OPSDESK_TLS_DIR is OD_EINVAL. Call before starting it.
 */
int auth_dialer_setup(nng_dialer d, const char *url);
int auth_listener_setup(nng_listener l, const char *url);
/* Only the TLS part (after auth_url_check): 0 or an NNG error. */
int auth_dialer_tls(nng_dialer d, const char *url);
int auth_listener_tls(nng_listener l, const char *url);
/* The check alone (no socket), e.g. for a URL before it is dialed. */
int auth_url_check(const char *url, const char *what);

/* ---- authorization ---- */

/*
 * May identity call service's method with actor? identity NULL: auth is
 * off (only the admin list applies). Reason gets a sentence when not.
 *   telegram-gateway, opsctl: any method, any actor;
 *   a service identity: only the reads in the policy table, and only
 *   with a system actor (user_id 0);
 *   everyone: ping.
 * An actor claiming is_admin for a user id that is not in the admin list
 * is refused (when the process has loaded one: auth_set_admins).
 */
bool auth_rpc_allowed(const char *identity, const char *service,
    const char *method, const Opsdesk__V1__Actor *actor, char *reason,
    size_t reason_len);
/* May identity publish topic? (the relay's publisher ACL) */
bool auth_topic_allowed(const char *identity, const char *topic);

/* The suite's admin list, from the config (config_load sets it). */
void auth_set_admins(const int64_t *ids, int n);
/* Tests: no admin list (nothing checked against it). */
void auth_clear_admins(void);

/* ---- key material (auth_certs.c; `opsctl certs init`) ---- */

/*
 * Write into dir (created 0700 if missing) a suite CA (ca.crt, ca.key)
 * and for every suite identity <id>.crt (signed by the CA, CN and DNS
 * name the identity, for TLS clients and servers), <id>.key and
 * <id>.secret (32 random bytes as hex). EC P-256 keys, certificates valid
 * for days (0: 825). Keys and secrets are 0600. A populated dir is left
 * as it is (OD_EEXIST) unless force; a partly populated one gets what is
 * missing, signed by its existing CA. err says what went wrong.
 */
int auth_certs_init(
    const char *dir, int days, bool force, char *err, size_t errlen);

#endif /* OPSDESK_AUTH_H */

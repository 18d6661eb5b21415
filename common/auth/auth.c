#include "auth/auth.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <nng/supplemental/tls/tls.h>

#include "log/log.h"
#include "util/util.h"

const char *const auth_identities[]
    = { "bus-relay", "ticket-service", "incident-service", "health-prober",
	      "status-publisher", "telegram-gateway", "opsctl", NULL };

#define N_IDENTITIES  7
#define REPLAY_SLOTS  65536 /* a power of two */
#define REPLAY_PROBES 8

typedef struct replay_slot {
	uint64_t mac;
	int64_t ts_ms;
} replay_slot;

/* What a directory holds for one identity: replaced whole by a reload. */
typedef struct auth_creds {
	uint8_t keys[N_IDENTITIES][AUTH_MAX_KEYS][AUTH_KEY_LEN];
	int n_keys[N_IDENTITIES]; /* 0: that peer is refused */
	uint8_t own_key[AUTH_KEY_LEN];
	EVP_MAC_CTX *ctx[N_IDENTITIES][AUTH_MAX_KEYS]; /* keyed: mac3 */
	EVP_MAC_CTX *own_ctx;
	nng_tls_config *tls_client;
	nng_tls_config *tls_server;
} auth_creds;

/* A dialer or listener given the TLS config: a reload gives it the new
 * one (NNG swaps it under its lock; open connections keep theirs). */
typedef struct auth_endpoint {
	uint32_t id;
	bool listener;
} auth_endpoint;

struct auth {
	char identity[AUTH_MAX_IDENTITY + 1];
	int self;                    /* index in auth_identities, or -1 */
	char dir[4096];              /* "" for auth_open_key */
	pthread_rwlock_t creds_lock; /* cr's keys (readers: seal, verify) */
	auth_creds cr;
	pthread_mutex_t ep_mtx; /* cr's TLS configs and eps */
	auth_endpoint *eps;
	size_t n_eps, cap_eps;
	/* Only unique (two messages of one millisecond get different MACs,
	 * so the replay cache tells them apart): a counter from a random
	 * start, not RAND_bytes per message (a getpid() each). */
	_Atomic uint64_t nonce;
	pthread_mutex_t mtx; /* the replay cache */
	replay_slot *replay;
};

bool
auth_identity_known(const char *identity)
{
	for (int i = 0; auth_identities[i] != NULL; i++) {
		if (strcmp(auth_identities[i], identity) == 0) {
			return true;
		}
	}
	return false;
}

static int
identity_index(const char *id, size_t len)
{
	for (int i = 0; auth_identities[i] != NULL; i++) {
		if (strlen(auth_identities[i]) == len
		    && memcmp(auth_identities[i], id, len) == 0) {
			return i;
		}
	}
	return -1;
}

static bool
identity_valid(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > AUTH_MAX_IDENTITY) {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		if (!isalnum((unsigned char) id[i]) && id[i] != '-'
		    && id[i] != '_' && id[i] != '.') {
			return false;
		}
	}
	return true;
}

/* Read DIR/name into a NUL-terminated malloc'ed buffer. */
static int
read_file(const char *dir, const char *name, char **out, size_t *out_len)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		return errno == ENOENT ? OD_ENOTFOUND : OD_EIO;
	}
	sbuf b;
	sbuf_init(&b);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		sbuf_append_len(&b, chunk, n);
	}
	bool bad = ferror(f) != 0;
	fclose(f);
	if (bad || sbuf_failed(&b)) {
		sbuf_free(&b);
		return OD_EIO;
	}
	*out = sbuf_take(&b, out_len);
	if (*out == NULL) {
		*out = strdup("");
		*out_len = 0;
	}
	return *out != NULL ? 0 : OD_ENOMEM;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/*
 * A secret file: one to AUTH_MAX_KEYS keys of 64 hex characters each,
 * separated by white space. The first signs; all of them verify.
 */
static int
load_secret(const char *dir, const char *id,
    uint8_t keys[AUTH_MAX_KEYS][AUTH_KEY_LEN], int *n_keys)
{
	char name[AUTH_MAX_IDENTITY + 16];
	snprintf(name, sizeof(name), "%s.secret", id);
	char *text = NULL;
	size_t len = 0;
	int rv = read_file(dir, name, &text, &len);
	if (rv != 0) {
		return rv;
	}
	int n = 0;
	size_t i = 0;
	for (;;) {
		while (i < len && isspace((unsigned char) text[i])) {
			i++;
		}
		if (i == len) {
			break;
		}
		if (n == AUTH_MAX_KEYS || len - i < 2 * AUTH_KEY_LEN) {
			rv = OD_EMALFORMED;
			break;
		}
		for (size_t k = 0; rv == 0 && k < AUTH_KEY_LEN; k++) {
			int hi = hexval((unsigned char) text[i + 2 * k]);
			int lo = hexval((unsigned char) text[i + 2 * k + 1]);
			if (hi < 0 || lo < 0) {
				rv = OD_EMALFORMED;
			} else {
				keys[n][k] = (uint8_t) (hi << 4 | lo);
			}
		}
		i += 2 * AUTH_KEY_LEN;
		if (rv != 0
		    || (i < len && !isspace((unsigned char) text[i]))) {
			rv = OD_EMALFORMED;
			break;
		}
		n++;
	}
	if (rv == 0 && n == 0) {
		rv = OD_EMALFORMED;
	}
	if (rv == 0) {
		*n_keys = n;
	}
	OPENSSL_cleanse(text, len);
	free(text);
	return rv;
}

static int
tls_config(nng_tls_config **out, nng_tls_mode mode, const char *ca,
    const char *cert, const char *key)
{
	nng_tls_config *cfg;
	int rv = nng_tls_config_alloc(&cfg, mode);
	if (rv != 0) {
		return rv;
	}
	if ((rv = nng_tls_config_ca_chain(cfg, ca, NULL)) != 0
	    || (rv = nng_tls_config_own_cert(cfg, cert, key, NULL)) != 0
	    || (rv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED))
	        != 0) {
		nng_tls_config_free(cfg);
		return rv;
	}
	*out = cfg;
	return 0;
}

static EVP_MAC *hmac_alg; /* fetched once; shared, thread-safe */
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

static void
hmac_fetch(void)
{
	hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

/*
 * A context keyed with key, kept as a template: each message's MAC
 * starts from a copy (EVP_MAC_CTX_dup reads it only), which skips the
 * digest fetch by name and the key schedule of EVP_MAC_init (most of
 * an HMAC's cost on a 300-byte request). NULL when out of memory.
 */
static EVP_MAC_CTX *
mac_keyed(const uint8_t key[AUTH_KEY_LEN])
{
	pthread_once(&hmac_once, hmac_fetch);
	if (hmac_alg == NULL) {
		return NULL;
	}
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(hmac_alg);
	if (ctx == NULL) {
		return NULL;
	}
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(
		    "digest", (char *) "SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	if (!EVP_MAC_init(ctx, key, AUTH_KEY_LEN, params)) {
		EVP_MAC_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* HMAC-SHA256 with keyed's key over a, b and c, one after the other. */
static int
mac3(const EVP_MAC_CTX *keyed, const void *a, size_t alen, const void *b,
    size_t blen, const void *c, size_t clen, uint8_t mac[AUTH_MAC_LEN])
{
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(keyed);
	if (ctx == NULL) {
		return OD_ENOMEM;
	}
	size_t n = 0;
	int ok = (alen == 0 || EVP_MAC_update(ctx, a, alen))
	    && (blen == 0 || EVP_MAC_update(ctx, b, blen))
	    && (clen == 0 || EVP_MAC_update(ctx, c, clen))
	    && EVP_MAC_final(ctx, mac, &n, AUTH_MAC_LEN) && n == AUTH_MAC_LEN;
	EVP_MAC_CTX_free(ctx);
	return ok ? 0 : OD_EINTERNAL;
}

/* The keyed contexts of cr's keys. */
static int
creds_keyed(auth_creds *cr)
{
	if ((cr->own_ctx = mac_keyed(cr->own_key)) == NULL) {
		return OD_ENOMEM;
	}
	for (int i = 0; i < N_IDENTITIES; i++) {
		for (int k = 0; k < cr->n_keys[i]; k++) {
			if ((cr->ctx[i][k] = mac_keyed(cr->keys[i][k]))
			    == NULL) {
				return OD_ENOMEM;
			}
		}
	}
	return 0;
}

static void
creds_free(auth_creds *cr)
{
	if (cr->tls_client != NULL) {
		nng_tls_config_free(cr->tls_client);
	}
	if (cr->tls_server != NULL) {
		nng_tls_config_free(cr->tls_server);
	}
	EVP_MAC_CTX_free(cr->own_ctx);
	for (int i = 0; i < N_IDENTITIES; i++) {
		for (int k = 0; k < AUTH_MAX_KEYS; k++) {
			EVP_MAC_CTX_free(cr->ctx[i][k]);
		}
	}
	OPENSSL_cleanse(cr, sizeof(*cr));
}

/* Read identity's credentials from dir into *cr (zeroed first). */
static int
creds_load(auth_creds *cr, const char *dir, const char *identity, char *err,
    size_t errlen)
{
	char *ca = NULL, *cert = NULL, *key = NULL;
	size_t n;
	char name[AUTH_MAX_IDENTITY + 16];
	uint8_t own[AUTH_MAX_KEYS][AUTH_KEY_LEN];
	int n_own = 0;
	int rv;

	memset(cr, 0, sizeof(*cr));
	if ((rv = load_secret(dir, identity, own, &n_own)) != 0) {
		snprintf(err, errlen, "%s/%s.secret: %s", dir, identity,
		    od_strerror(rv));
		goto out;
	}
	memcpy(cr->own_key, own[0], AUTH_KEY_LEN);
	for (int i = 0; auth_identities[i] != NULL; i++) {
		int lr = load_secret(
		    dir, auth_identities[i], cr->keys[i], &cr->n_keys[i]);
		if (lr != 0 && lr != OD_ENOTFOUND) {
			snprintf(err, errlen, "%s/%s.secret: %s", dir,
			    auth_identities[i], od_strerror(lr));
			rv = lr;
			goto out;
		}
	}
	if ((rv = read_file(dir, "ca.crt", &ca, &n)) != 0) {
		snprintf(err, errlen, "%s/ca.crt: %s", dir, od_strerror(rv));
		goto out;
	}
	snprintf(name, sizeof(name), "%s.crt", identity);
	if ((rv = read_file(dir, name, &cert, &n)) != 0) {
		snprintf(err, errlen, "%s/%s: %s", dir, name, od_strerror(rv));
		goto out;
	}
	snprintf(name, sizeof(name), "%s.key", identity);
	if ((rv = read_file(dir, name, &key, &n)) != 0) {
		snprintf(err, errlen, "%s/%s: %s", dir, name, od_strerror(rv));
		goto out;
	}
	int nrv;
	if ((nrv = tls_config(
	         &cr->tls_client, NNG_TLS_MODE_CLIENT, ca, cert, key))
	        != 0
	    || (nrv = tls_config(
	            &cr->tls_server, NNG_TLS_MODE_SERVER, ca, cert, key))
	        != 0) {
		snprintf(err, errlen, "%s: TLS credentials of %s: %s", dir,
		    identity, nng_strerror(nrv));
		rv = OD_EMALFORMED;
		goto out;
	}
	if ((rv = creds_keyed(cr)) != 0) {
		snprintf(err, errlen, "HMAC keys: %s", od_strerror(rv));
	}
out:
	OPENSSL_cleanse(own, sizeof(own));
	free(ca);
	free(cert);
	if (key != NULL) {
		OPENSSL_cleanse(key, strlen(key));
		free(key);
	}
	if (rv != 0) {
		creds_free(cr);
	}
	return rv;
}

static auth *
auth_alloc(const char *identity)
{
	auth *a = calloc(1, sizeof(*a));
	if (a == NULL) {
		return NULL;
	}
	if ((a->replay = calloc(REPLAY_SLOTS, sizeof(*a->replay))) == NULL) {
		free(a);
		return NULL;
	}
	pthread_mutex_init(&a->mtx, NULL);
	pthread_mutex_init(&a->ep_mtx, NULL);
	pthread_rwlock_init(&a->creds_lock, NULL);
	od_strlcpy(a->identity, identity, sizeof(a->identity));
	a->self = identity_index(identity, strlen(identity));
	uint64_t start;
	if (RAND_bytes((unsigned char *) &start, sizeof(start)) != 1) {
		auth_close(a);
		return NULL;
	}
	atomic_init(&a->nonce, start);
	return a;
}

int
auth_open(auth **out, const char *dir, const char *identity, char *err,
    size_t errlen)
{
	char dummy[8];
	if (err == NULL) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = 0;
	if (out == NULL || dir == NULL || identity == NULL) {
		return OD_EINVAL;
	}
	if (!identity_valid(identity)) {
		snprintf(
		    err, errlen, "identity \"%s\" is not a name", identity);
		return OD_EINVAL;
	}
	if (strlen(dir) >= sizeof(((auth *) NULL)->dir)) {
		snprintf(err, errlen, "directory name too long");
		return OD_EINVAL;
	}
	auth *a = auth_alloc(identity);
	if (a == NULL) {
		return OD_ENOMEM;
	}
	od_strlcpy(a->dir, dir, sizeof(a->dir));
	int rv = creds_load(&a->cr, dir, identity, err, errlen);
	if (rv != 0) {
		auth_close(a);
		return rv;
	}
	*out = a;
	return 0;
}

/*
 * NNG 1.5.2's TLS listener allocates a connection, with the config of
 * that moment, when it posts an accept, and posts the next one as soon
 * as a TCP connection is accepted: one accept is always armed with the
 * config it had. Connecting once (and closing at once) to the listener
 * uses that accept up, so the next peer's gets the new config: the
 * kernel hands out connections in order. Best effort: a failure only
 * means one more connection with the old credentials.
 */
static void
listener_kick(uint32_t id)
{
	nng_listener l = { .id = id };
	nng_sockaddr sa;
	if (nng_listener_get_addr(l, NNG_OPT_LOCADDR, &sa) != 0) {
		return;
	}
	struct sockaddr_storage ss;
	socklen_t sl;
	memset(&ss, 0, sizeof(ss));
	if (sa.s_family == NNG_AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *) &ss;
		in->sin_family = AF_INET;
		in->sin_port = sa.s_in.sa_port; /* both network order */
		in->sin_addr.s_addr = sa.s_in.sa_addr != 0
		    ? sa.s_in.sa_addr
		    : htonl(INADDR_LOOPBACK);
		sl = sizeof(*in);
	} else if (sa.s_family == NNG_AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = sa.s_in6.sa_port;
		memcpy(&in6->sin6_addr, sa.s_in6.sa_addr, 16);
		if (memcmp(&in6->sin6_addr, &in6addr_any, 16) == 0) {
			in6->sin6_addr = in6addr_loopback;
		}
		in6->sin6_scope_id = sa.s_in6.sa_scope;
		sl = sizeof(*in6);
	} else {
		return;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		return;
	}
	struct timeval tv = { .tv_sec = 1 };
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	(void) connect(fd, (struct sockaddr *) &ss, sl);
	close(fd);
}

int
auth_reload(auth *a, char *err, size_t errlen)
{
	char dummy[8];
	if (err == NULL) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = 0;
	if (a == NULL || a->dir[0] == 0) {
		snprintf(err, errlen, "no credential directory to reload");
		return OD_EINVAL;
	}
	auth_creds *fresh = malloc(sizeof(*fresh));
	if (fresh == NULL) {
		return OD_ENOMEM;
	}
	int rv = creds_load(fresh, a->dir, a->identity, err, errlen);
	if (rv != 0) {
		free(fresh);
		return rv;
	}
	/* The keys: every seal and verify after this uses the new ones. */
	pthread_mutex_lock(&a->ep_mtx);
	pthread_rwlock_wrlock(&a->creds_lock);
	auth_creds old = a->cr;
	a->cr = *fresh;
	pthread_rwlock_unlock(&a->creds_lock);
	/* The TLS configs: every connection made after this. NNG holds a
	 * reference per endpoint, so the old ones go when the last
	 * endpoint using them lets go. An endpoint closed since is gone
	 * from NNG (NNG_ENOENT) and from the list. */
	size_t kept = 0;
	int nrv = 0;
	for (size_t i = 0; i < a->n_eps; i++) {
		auth_endpoint *e = &a->eps[i];
		int r;
		if (e->listener) {
			nng_listener l = { .id = e->id };
			r = nng_listener_set_ptr(
			    l, NNG_OPT_TLS_CONFIG, a->cr.tls_server);
		} else {
			nng_dialer d = { .id = e->id };
			r = nng_dialer_set_ptr(
			    d, NNG_OPT_TLS_CONFIG, a->cr.tls_client);
		}
		if (r == NNG_ENOENT || r == NNG_ECLOSED) {
			continue;
		}
		if (r != 0 && nrv == 0) {
			nrv = r;
		}
		a->eps[kept++] = *e;
	}
	a->n_eps = kept;
	for (size_t i = 0; i < a->n_eps; i++) {
		if (a->eps[i].listener) {
			listener_kick(a->eps[i].id);
		}
	}
	pthread_mutex_unlock(&a->ep_mtx);
	creds_free(&old);
	OPENSSL_cleanse(fresh, sizeof(*fresh));
	free(fresh);
	if (nrv != 0) {
		snprintf(err, errlen,
		    "an endpoint kept its old TLS credentials: %s",
		    nng_strerror(nrv));
		return od_nng_err(nrv);
	}
	return 0;
}

int
auth_open_key(
    auth **out, const char *identity, const uint8_t key[AUTH_KEY_LEN])
{
	if (out == NULL || identity == NULL || !identity_valid(identity)) {
		return OD_EINVAL;
	}
	auth *a = auth_alloc(identity);
	if (a == NULL) {
		return OD_ENOMEM;
	}
	memcpy(a->cr.own_key, key, AUTH_KEY_LEN);
	for (int i = 0; i < N_IDENTITIES; i++) {
		memcpy(a->cr.keys[i][0], key, AUTH_KEY_LEN);
		a->cr.n_keys[i] = 1;
	}
	if (creds_keyed(&a->cr) != 0) {
		auth_close(a);
		return OD_ENOMEM;
	}
	*out = a;
	return 0;
}

void
auth_close(auth *a)
{
	if (a == NULL) {
		return;
	}
	creds_free(&a->cr);
	pthread_mutex_destroy(&a->mtx);
	pthread_mutex_destroy(&a->ep_mtx);
	pthread_rwlock_destroy(&a->creds_lock);
	free(a->eps);
	free(a->replay);
	free(a);
}

const char *
auth_identity(const auth *a)
{
	return a != NULL ? a->identity : NULL;
}

/* ---- the process's auth ---- */

static pthread_mutex_t g_mtx = PTHREAD_MUTEX_INITIALIZER;
static bool g_loaded;
static int g_rv;
static auth *g_auth;

static void
exe_name(char *out, size_t size)
{
	char path[4096];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
	if (n <= 0) {
		od_strlcpy(out, "unknown", size);
		return;
	}
	path[n] = 0;
	const char *slash = strrchr(path, '/');
	od_strlcpy(out, slash != NULL ? slash + 1 : path, size);
}

int
auth_process(auth **out)
{
	pthread_mutex_lock(&g_mtx);
	if (!g_loaded) {
		g_loaded = true;
		const char *dir = getenv("OPSDESK_TLS_DIR");
		if (dir != NULL && dir[0] != 0) {
			char id[256];
			const char *env = getenv("OPSDESK_IDENTITY");
			if (env != NULL && env[0] != 0) {
				od_strlcpy(id, env, sizeof(id));
			} else {
				exe_name(id, sizeof(id));
			}
			char err[512];
			g_rv = auth_open(&g_auth, dir, id, err, sizeof(err));
			if (g_rv != 0) {
				log_error(
				    "auth: OPSDESK_TLS_DIR=%s as %s does "
				    "not load: %s (write it with `opsctl "
				    "certs init %s`)",
				    dir, id, err, dir);
				g_rv = OD_EINVAL;
			} else {
				log_info(
				    "auth: on, as %s (OPSDESK_TLS_DIR=%s)", id,
				    dir);
			}
		}
	}
	int rv = g_rv;
	*out = g_auth;
	pthread_mutex_unlock(&g_mtx);
	return rv;
}

int
auth_process_reload(char *err, size_t errlen)
{
	pthread_mutex_lock(&g_mtx);
	auth *a = g_loaded && g_rv == 0 ? g_auth : NULL;
	pthread_mutex_unlock(&g_mtx);
	if (a == NULL) {
		if (err != NULL && errlen > 0) {
			snprintf(err, errlen, "auth is off");
		}
		return OD_ENOTFOUND;
	}
	/* g_auth is freed only by auth_process_reset (tests). */
	return auth_reload(a, err, errlen);
}

void
auth_process_reset(void)
{
	pthread_mutex_lock(&g_mtx);
	auth_close(g_auth);
	g_auth = NULL;
	g_loaded = false;
	g_rv = 0;
	pthread_mutex_unlock(&g_mtx);
}

/* ---- the header ---- */

bool
auth_has_header(const void *buf, size_t len)
{
	return buf != NULL && len >= 4 && memcmp(buf, AUTH_MAGIC, 4) == 0;
}

int
auth_header_parse(const void *buf, size_t len, auth_header *out)
{
	const uint8_t *p = buf;
	if (!auth_has_header(buf, len) || len < 5) {
		return OD_EMALFORMED;
	}
	size_t idlen = p[4];
	if (idlen == 0 || idlen > AUTH_MAX_IDENTITY
	    || len < 5 + idlen + 16 + AUTH_MAC_LEN) {
		return OD_EMALFORMED;
	}
	for (size_t i = 0; i < idlen; i++) {
		if (p[5 + i] < 0x21 || p[5 + i] > 0x7e) {
			return OD_EMALFORMED;
		}
	}
	out->identity = (const char *) p + 5;
	out->identity_len = idlen;
	out->ts_ms = (int64_t) od_get_be64(p + 5 + idlen);
	out->nonce = od_get_be64(p + 5 + idlen + 8);
	out->mac = p + 5 + idlen + 16;
	out->len = 5 + idlen + 16 + AUTH_MAC_LEN;
	return 0;
}

int
auth_header_make(auth *a, const void *prefix, size_t prefix_len,
    const void *payload, size_t payload_len, uint8_t *hdr, size_t *hdr_len)
{
	if (a == NULL) {
		return OD_EINVAL;
	}
	size_t idlen = strlen(a->identity);
	memcpy(hdr, AUTH_MAGIC, 4);
	hdr[4] = (uint8_t) idlen;
	memcpy(hdr + 5, a->identity, idlen);
	od_put_be64(hdr + 5 + idlen, (uint64_t) od_now_ms());
	uint64_t nonce = atomic_fetch_add(&a->nonce, 1);
	memcpy(hdr + 5 + idlen + 8, &nonce, 8);
	size_t body = 5 + idlen + 16;
	pthread_rwlock_rdlock(&a->creds_lock);
	int rv = mac3(a->cr.own_ctx, prefix, prefix_len, hdr, body, payload,
	    payload_len, hdr + body);
	pthread_rwlock_unlock(&a->creds_lock);
	if (rv == 0) {
		*hdr_len = body + AUTH_MAC_LEN;
	}
	return rv;
}

int
auth_seal(auth *a, uint8_t **buf, size_t *len, size_t at)
{
	uint8_t hdr[AUTH_MAX_HEADER];
	size_t hlen;
	if (at > *len) {
		return OD_EINVAL;
	}
	int rv
	    = auth_header_make(a, *buf, at, *buf + at, *len - at, hdr, &hlen);
	if (rv != 0) {
		return rv;
	}
	uint8_t *nb = realloc(*buf, *len + hlen);
	if (nb == NULL) {
		return OD_ENOMEM;
	}
	memmove(nb + at + hlen, nb + at, *len - at);
	memcpy(nb + at, hdr, hlen);
	*buf = nb;
	*len += hlen;
	return 0;
}

/* True when mac was seen within the window; else remember it. */
static bool
replay_seen(auth *a, const uint8_t *mac, int64_t now)
{
	uint64_t h;
	memcpy(&h, mac, sizeof(h));
	size_t i0 = (size_t) (h & (REPLAY_SLOTS - 1));
	bool seen = false;
	pthread_mutex_lock(&a->mtx);
	replay_slot *victim = NULL;
	for (size_t k = 0; k < REPLAY_PROBES; k++) {
		replay_slot *s = &a->replay[(i0 + k) & (REPLAY_SLOTS - 1)];
		bool live
		    = s->ts_ms != 0 && now - s->ts_ms <= 2 * AUTH_WINDOW_MS;
		if (live && s->mac == h) {
			seen = true;
			break;
		}
		if (!live) {
			if (victim == NULL || victim->ts_ms != 0) {
				victim = s;
			}
		} else if (victim == NULL
		    || (victim->ts_ms != 0 && s->ts_ms < victim->ts_ms)) {
			victim = s; /* full: the oldest goes */
		}
	}
	if (!seen && victim != NULL) {
		victim->mac = h;
		victim->ts_ms = now;
	}
	pthread_mutex_unlock(&a->mtx);
	return seen;
}

int
auth_verify(auth *a, const void *buf, size_t len, size_t at,
    char identity[AUTH_MAX_IDENTITY + 1], size_t *payload_off, char *err,
    size_t errlen)
{
	char dummy[8];
	if (err == NULL) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = 0;
	if (a == NULL || buf == NULL || at > len) {
		return OD_EINVAL;
	}
	const uint8_t *p = buf;
	auth_header h;
	if (auth_header_parse(p + at, len - at, &h) != 0) {
		snprintf(err, errlen, "no authentication header");
		return OD_EMALFORMED;
	}
	memcpy(identity, h.identity, h.identity_len);
	identity[h.identity_len] = 0;
	int i = identity_index(h.identity, h.identity_len);
	uint8_t mac[AUTH_MAC_LEN];
	size_t body = h.len - AUTH_MAC_LEN;
	bool have = false, good = false;
	pthread_rwlock_rdlock(&a->creds_lock);
	/* Every key of the identity's file (during a rotation: the new and
	 * the old one), the signing one first. */
	for (int k = 0; i >= 0 && !good && k < a->cr.n_keys[i]; k++) {
		have = true;
		good = mac3(a->cr.ctx[i][k], p, at, p + at, body,
		           p + at + h.len, len - at - h.len, mac)
		        == 0
		    && CRYPTO_memcmp(mac, h.mac, AUTH_MAC_LEN) == 0;
	}
	pthread_rwlock_unlock(&a->creds_lock);
	if (!have) {
		snprintf(err, errlen, "no key for identity %s", identity);
		return OD_EPERM;
	}
	if (!good) {
		snprintf(err, errlen, "bad MAC from %s", identity);
		return OD_EPERM;
	}
	int64_t now = od_now_ms();
	if (h.ts_ms < now - AUTH_WINDOW_MS || h.ts_ms > now + AUTH_WINDOW_MS) {
		snprintf(err, errlen,
		    "message from %s is %lld ms off the clock (window %d ms)",
		    identity, (long long) (h.ts_ms - now), AUTH_WINDOW_MS);
		return OD_EPERM;
	}
	if (replay_seen(a, h.mac, now)) {
		snprintf(err, errlen, "replayed message from %s", identity);
		return OD_EPERM;
	}
	*payload_off = at + h.len;
	return 0;
}

/* ---- transport ---- */

bool
auth_url_is_loopback(const char *url)
{
	if (url == NULL) {
		return false;
	}
	if (strncmp(url, "ipc://", 6) == 0 || strncmp(url, "inproc://", 9) == 0
	    || strncmp(url, "abstract://", 11) == 0) {
		return true;
	}
	const char *p = strstr(url, "://");
	if (p == NULL) {
		return false;
	}
	p += 3;
	char host[256];
	size_t n;
	if (*p == '[') {
		const char *e = strchr(p, ']');
		if (e == NULL) {
			return false;
		}
		n = (size_t) (e - p - 1);
		p++;
	} else {
		const char *e = strrchr(p, ':');
		n = e != NULL ? (size_t) (e - p) : strlen(p);
	}
	if (n == 0 || n >= sizeof(host)) {
		return false;
	}
	memcpy(host, p, n);
	host[n] = 0;
	if (strcasecmp(host, "localhost") == 0) {
		return true;
	}
	struct in_addr v4;
	struct in6_addr v6;
	if (inet_pton(AF_INET, host, &v4) == 1) {
		return (ntohl(v4.s_addr) >> 24) == 127;
	}
	if (inet_pton(AF_INET6, host, &v6) == 1) {
		return memcmp(&v6, &in6addr_loopback, sizeof(v6)) == 0;
	}
	return false;
}

static bool
url_is_tls(const char *url)
{
	return strncmp(url, "tls+", 4) == 0;
}

int
auth_url_check(const char *url, const char *what)
{
	if (url == NULL) {
		return OD_EINVAL;
	}
	auth *a;
	int rv = auth_process(&a);
	if (rv != 0) {
		return rv;
	}
	if (url_is_tls(url)) {
		if (a == NULL) {
			log_error("%s %s: a tls+tcp:// URL needs "
			          "OPSDESK_TLS_DIR (write one with `opsctl "
			          "certs init DIR`)",
			    what, url);
			return OD_EINVAL;
		}
		return 0;
	}
	/* Only the transports that cross hosts (others: NNG's answer). */
	bool net
	    = strncmp(url, "tcp", 3) == 0 || strncmp(url, "ws://", 5) == 0;
	if (!net || auth_url_is_loopback(url)) {
		return 0;
	}
	const char *insecure = getenv("OPSDESK_ALLOW_INSECURE");
	if (insecure != NULL && strcmp(insecure, "1") == 0) {
		log_warn("%s %s: plain transport off loopback, allowed by "
		         "OPSDESK_ALLOW_INSECURE=1: anyone who reaches it is "
		         "trusted",
		    what, url);
		return 0;
	}
	log_error("%s %s: refusing a plain address that is not loopback: "
	          "run `opsctl certs init DIR`, set OPSDESK_TLS_DIR=DIR and "
	          "use tls+tcp:// URLs (or OPSDESK_ALLOW_INSECURE=1 to accept "
	          "the risk)",
	    what, url);
	return OD_EPERM;
}

/* Give endpoint id its TLS config and remember it for reloads. */
static int
endpoint_tls(auth *a, uint32_t id, bool listener)
{
	int rv = NNG_ENOMEM;
	pthread_mutex_lock(&a->ep_mtx);
	if (a->n_eps == a->cap_eps) {
		size_t cap = a->cap_eps ? 2 * a->cap_eps : 8;
		auth_endpoint *n = realloc(a->eps, cap * sizeof(*n));
		if (n == NULL) {
			goto out;
		}
		a->eps = n;
		a->cap_eps = cap;
	}
	/* TCP_NODELAY: NNG 1.5.2 leaves Nagle on (its TCP dialers and
	 * listeners default to nodelay false), and its TLS stream sends a
	 * message as one record per piece (length, SP header, body), each
	 * its own TCP send: with Nagle the second and third wait for the
	 * peer's ACK of the first. Plain tcp:// writes the three at once. */
	if (listener) {
		nng_listener l = { .id = id };
		if ((rv = nng_listener_set_ptr(
		         l, NNG_OPT_TLS_CONFIG, a->cr.tls_server))
		    == 0) {
			rv = nng_listener_set_bool(
			    l, NNG_OPT_TCP_NODELAY, true);
		}
	} else {
		nng_dialer d = { .id = id };
		if ((rv = nng_dialer_set_ptr(
		         d, NNG_OPT_TLS_CONFIG, a->cr.tls_client))
		    == 0) {
			rv = nng_dialer_set_bool(d, NNG_OPT_TCP_NODELAY, true);
		}
	}
	if (rv == 0) {
		a->eps[a->n_eps++] = (auth_endpoint) { id, listener };
	}
out:
	pthread_mutex_unlock(&a->ep_mtx);
	return rv;
}

int
auth_dialer_tls(nng_dialer d, const char *url)
{
	auth *a;
	if (!url_is_tls(url) || auth_process(&a) != 0 || a == NULL) {
		return 0; /* auth_url_check refused it already */
	}
	return endpoint_tls(a, d.id, false);
}

int
auth_listener_tls(nng_listener l, const char *url)
{
	auth *a;
	if (!url_is_tls(url) || auth_process(&a) != 0 || a == NULL) {
		return 0;
	}
	return endpoint_tls(a, l.id, true);
}

int
auth_dialer_setup(nng_dialer d, const char *url)
{
	int rv = auth_url_check(url, "dial");
	if (rv == 0 && (rv = auth_dialer_tls(d, url)) != 0) {
		rv = od_nng_err(rv);
	}
	return rv;
}

int
auth_listener_setup(nng_listener l, const char *url)
{
	int rv = auth_url_check(url, "listen");
	if (rv == 0 && (rv = auth_listener_tls(l, url)) != 0) {
		rv = od_nng_err(rv);
	}
	return rv;
}

/* ---- authorization ---- */

typedef struct rpc_grant {
	const char *identity;
	const char *service;
	const char *methods; /* space separated */
} rpc_grant;

/* What a service identity may call (with a system actor). */
static const rpc_grant grants[] = {
	{ "status-publisher", "health-prober", "snapshot history" },
	{ "status-publisher", "incident-service", "snapshot" },
	{ "incident-service", "health-prober", "snapshot transitions" },
	{ "incident-service", "ticket-service", "stats" },
	{ "ticket-service", "incident-service", "snapshot" },
	{ "health-prober", "incident-service", "snapshot" },
	/* the gateway as the system: the alert catch-up after a restart */
	{ "telegram-gateway", "incident-service", "alerts" },
};

typedef struct topic_grant {
	const char *prefix;
	const char *identity;
} topic_grant;

static const topic_grant topic_grants[] = {
	{ "ticket.", "ticket-service" },
	{ "incident.", "incident-service" },
	{ "maintenance.", "incident-service" },
	{ "alert.", "incident-service" },
	{ "health.", "health-prober" },
	{ "status.", "status-publisher" },
	{ "gateway.", "telegram-gateway" },
	{ "ops.", "opsctl" },
	{ "ops.", "incident-service" },
};

static bool
word_in(const char *list, const char *word)
{
	size_t n = strlen(word);
	const char *p = list;
	while ((p = strstr(p, word)) != NULL) {
		bool start = p == list || p[-1] == ' ';
		bool end = p[n] == 0 || p[n] == ' ';
		if (start && end) {
			return true;
		}
		p += n;
	}
	return false;
}

static pthread_mutex_t admins_mtx = PTHREAD_MUTEX_INITIALIZER;
static int64_t *admins;
static int n_admins = -1; /* -1: no list loaded */

void
auth_set_admins(const int64_t *ids, int n)
{
	int64_t *copy = NULL;
	if (n > 0 && (copy = malloc((size_t) n * sizeof(*copy))) == NULL) {
		return;
	}
	if (n > 0) {
		memcpy(copy, ids, (size_t) n * sizeof(*copy));
	}
	pthread_mutex_lock(&admins_mtx);
	free(admins);
	admins = copy;
	n_admins = n > 0 ? n : 0;
	pthread_mutex_unlock(&admins_mtx);
}

void
auth_clear_admins(void)
{
	pthread_mutex_lock(&admins_mtx);
	free(admins);
	admins = NULL;
	n_admins = -1;
	pthread_mutex_unlock(&admins_mtx);
}

/* true: listed or no list loaded. */
static bool
admin_listed(int64_t user_id)
{
	bool ok;
	pthread_mutex_lock(&admins_mtx);
	ok = n_admins < 0;
	for (int i = 0; !ok && i < n_admins; i++) {
		ok = admins[i] == user_id;
	}
	pthread_mutex_unlock(&admins_mtx);
	return ok;
}

bool
auth_rpc_allowed(const char *identity, const char *service, const char *method,
    const Opsdesk__V1__Actor *actor, char *reason, size_t reason_len)
{
	char dummy[8];
	if (reason == NULL) {
		reason = dummy;
		reason_len = sizeof(dummy);
	}
	reason[0] = 0;
	int64_t uid = actor != NULL ? actor->user_id : 0;
	bool admin = actor != NULL && actor->is_admin;
	if (method != NULL && strcmp(method, "ping") == 0) {
		return true;
	}
	if (admin && uid != 0 && !admin_listed(uid)) {
		snprintf(reason, reason_len, "user %lld is not an admin",
		    (long long) uid);
		return false;
	}
	if (identity == NULL) {
		return true; /* auth off: loopback, zero-config */
	}
	if (strcmp(identity, "opsctl") == 0) {
		return true;
	}
	bool gateway = strcmp(identity, "telegram-gateway") == 0;
	if (gateway && (uid != 0 || !admin)) {
		return true; /* for a user (or anonymous, not admin) */
	}
	if (!gateway && uid != 0) {
		snprintf(reason, reason_len,
		    "%s may not act for a user (only telegram-gateway and "
		    "opsctl)",
		    identity);
		return false;
	}
	for (size_t i = 0; i < sizeof(grants) / sizeof(grants[0]); i++) {
		if (strcmp(grants[i].identity, identity) == 0
		    && service != NULL
		    && strcmp(grants[i].service, service) == 0
		    && method != NULL && word_in(grants[i].methods, method)) {
			return true;
		}
	}
	snprintf(reason, reason_len, "%s may not call %s.%s", identity,
	    service ? service : "?", method ? method : "?");
	return false;
}

bool
auth_topic_allowed(const char *identity, const char *topic)
{
	if (identity == NULL || topic == NULL) {
		return false;
	}
	for (size_t i = 0; i < sizeof(topic_grants) / sizeof(topic_grants[0]);
	     i++) {
		const topic_grant *g = &topic_grants[i];
		if (strncmp(topic, g->prefix, strlen(g->prefix)) == 0
		    && strcmp(identity, g->identity) == 0) {
			return true;
		}
	}
	return false;
}

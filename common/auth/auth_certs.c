/*
 * The suite's key material, made with libcrypto: a CA and, per identity,
 * a certificate, its key and an HMAC secret (see auth.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/auth.h"
#include "util/util.h"

#define DEFAULT_DAYS 825

static int fail(char *err, size_t errlen, int rv, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
fail(char *err, size_t errlen, int rv, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return rv;
}

static bool
exists(const char *dir, const char *name)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

/* Open dir/name for writing with mode (also when it exists). */
static FILE *
open_out(const char *dir, const char *name, mode_t mode)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0) {
		return NULL;
	}
	if (fchmod(fd, mode) != 0) {
		close(fd);
		return NULL;
	}
	FILE *f = fdopen(fd, "w");
	if (f == NULL) {
		close(fd);
	}
	return f;
}

static bool
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (e == NULL) {
		return false;
	}
	bool ok = X509_add_ext(x, e, -1) == 1;
	X509_EXTENSION_free(e);
	return ok;
}

/* A certificate for key, CN cn, signed by issuer (NULL: self-signed). */
static X509 *
make_cert(
    EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *ikey, int days)
{
	X509 *x = X509_new();
	BIGNUM *bn = BN_new();
	bool ok = x != NULL && bn != NULL && X509_set_version(x, 2) == 1
	    && BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1
	    && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL
	    && X509_gmtime_adj(X509_getm_notBefore(x), -3600) != NULL
	    && X509_gmtime_adj(X509_getm_notAfter(x), (long) days * 86400)
	        != NULL
	    && X509_set_pubkey(x, key) == 1;
	X509_NAME *name = ok ? X509_get_subject_name(x) : NULL;
	ok = ok
	    && X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
	           (const unsigned char *) "opsdesk", -1, -1, 0)
	        == 1
	    && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	           (const unsigned char *) cn, -1, -1, 0)
	        == 1
	    && X509_set_issuer_name(
	           x, issuer != NULL ? X509_get_subject_name(issuer) : name)
	        == 1;
	X509 *is = issuer != NULL ? issuer : x;
	if (ok && issuer == NULL) {
		ok = add_ext(x, is, NID_basic_constraints, "critical,CA:TRUE")
		    && add_ext(
		        x, is, NID_key_usage, "critical,keyCertSign,cRLSign")
		    && add_ext(x, is, NID_subject_key_identifier, "hash");
	} else if (ok) {
		char san[AUTH_MAX_IDENTITY + 8];
		snprintf(san, sizeof(san), "DNS:%s", cn);
		ok = add_ext(x, is, NID_basic_constraints, "critical,CA:FALSE")
		    && add_ext(x, is, NID_key_usage,
		        "critical,digitalSignature,keyAgreement")
		    && add_ext(
		        x, is, NID_ext_key_usage, "serverAuth,clientAuth")
		    && add_ext(x, is, NID_subject_alt_name, san)
		    && add_ext(x, is, NID_authority_key_identifier, "keyid");
	}
	ok = ok && X509_sign(x, ikey != NULL ? ikey : key, EVP_sha256()) > 0;
	BN_free(bn);
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static int
write_pair(const char *dir, const char *base, X509 *x, EVP_PKEY *key,
    char *err, size_t errlen)
{
	char name[AUTH_MAX_IDENTITY + 16];
	snprintf(name, sizeof(name), "%s.key", base);
	FILE *f = open_out(dir, name, 0600);
	if (f == NULL) {
		return fail(err, errlen, OD_EIO, "%s/%s: %s", dir, name,
		    strerror(errno));
	}
	bool ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1;
	ok = fclose(f) == 0 && ok;
	if (!ok) {
		return fail(
		    err, errlen, OD_EIO, "%s/%s: write failed", dir, name);
	}
	snprintf(name, sizeof(name), "%s.crt", base);
	if ((f = open_out(dir, name, 0644)) == NULL) {
		return fail(err, errlen, OD_EIO, "%s/%s: %s", dir, name,
		    strerror(errno));
	}
	ok = PEM_write_X509(f, x) == 1;
	ok = fclose(f) == 0 && ok;
	return ok
	    ? 0
	    : fail(err, errlen, OD_EIO, "%s/%s: write failed", dir, name);
}

static int
write_secret(const char *dir, const char *id, char *err, size_t errlen)
{
	uint8_t key[AUTH_KEY_LEN];
	if (RAND_bytes(key, sizeof(key)) != 1) {
		return fail(err, errlen, OD_EINTERNAL, "no random bytes");
	}
	char name[AUTH_MAX_IDENTITY + 16];
	snprintf(name, sizeof(name), "%s.secret", id);
	FILE *f = open_out(dir, name, 0600);
	if (f == NULL) {
		return fail(err, errlen, OD_EIO, "%s/%s: %s", dir, name,
		    strerror(errno));
	}
	for (size_t i = 0; i < sizeof(key); i++) {
		fprintf(f, "%02x", key[i]);
	}
	fputc('\n', f);
	OPENSSL_cleanse(key, sizeof(key));
	return fclose(f) == 0
	    ? 0
	    : fail(err, errlen, OD_EIO, "%s/%s: write failed", dir, name);
}

static int
load_ca(const char *dir, X509 **x, EVP_PKEY **key, char *err, size_t errlen)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/ca.crt", dir);
	FILE *f = fopen(path, "r");
	if (f != NULL) {
		*x = PEM_read_X509(f, NULL, NULL, NULL);
		fclose(f);
	}
	snprintf(path, sizeof(path), "%s/ca.key", dir);
	if ((f = fopen(path, "r")) != NULL) {
		*key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
	}
	if (*x == NULL || *key == NULL) {
		return fail(err, errlen, OD_EMALFORMED,
		    "%s: ca.crt and ca.key do not load (use --force to "
		    "start over)",
		    dir);
	}
	return 0;
}

int
auth_certs_init(
    const char *dir, int days, bool force, char *err, size_t errlen)
{
	char dummy[8];
	if (err == NULL) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = 0;
	if (dir == NULL || days < 0) {
		return OD_EINVAL;
	}
	if (days == 0) {
		days = DEFAULT_DAYS;
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		return fail(
		    err, errlen, OD_EIO, "%s: %s", dir, strerror(errno));
	}
	X509 *ca = NULL;
	EVP_PKEY *ca_key = NULL;
	int rv = 0;
	int written = 0;
	bool new_ca = false;
	if (!force && exists(dir, "ca.crt")) {
		rv = load_ca(dir, &ca, &ca_key, err, errlen);
	} else {
		ca_key = EVP_EC_gen("P-256");
		ca = ca_key != NULL
		    ? make_cert(ca_key, "opsdesk suite CA", NULL, NULL, days)
		    : NULL;
		rv = ca == NULL
		    ? fail(err, errlen, OD_EINTERNAL,
		        "cannot make the CA certificate")
		    : write_pair(dir, "ca", ca, ca_key, err, errlen);
		written++;
		new_ca = true;
	}
	for (int i = 0; rv == 0 && auth_identities[i] != NULL; i++) {
		const char *id = auth_identities[i];
		char crt[AUTH_MAX_IDENTITY + 8], key[AUTH_MAX_IDENTITY + 8],
		    sec[AUTH_MAX_IDENTITY + 8];
		snprintf(crt, sizeof(crt), "%s.crt", id);
		snprintf(key, sizeof(key), "%s.key", id);
		snprintf(sec, sizeof(sec), "%s.secret", id);
		if (force || new_ca || !exists(dir, crt)
		    || !exists(dir, key)) {
			EVP_PKEY *k = EVP_EC_gen("P-256");
			X509 *x = k != NULL
			    ? make_cert(k, id, ca, ca_key, days)
			    : NULL;
			rv = x == NULL
			    ? fail(err, errlen, OD_EINTERNAL,
			        "cannot make the certificate of %s", id)
			    : write_pair(dir, id, x, k, err, errlen);
			X509_free(x);
			EVP_PKEY_free(k);
			written++;
		}
		if (rv == 0 && (force || !exists(dir, sec))) {
			rv = write_secret(dir, id, err, errlen);
			written++;
		}
	}
	X509_free(ca);
	EVP_PKEY_free(ca_key);
	if (rv == 0 && written == 0) {
		snprintf(err, errlen,
		    "%s is already populated; nothing changed (--force "
		    "writes a new CA and credentials)",
		    dir);
		return OD_EEXIST;
	}
	return rv;
}

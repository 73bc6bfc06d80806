/*
 * tls.c: TLS through BearSSL, underneath the connection.  Protocol code
 * reads and writes c->in and c->out as always; for a TLS connection the
 * loop moves bytes between those buffers and the BearSSL engine, and
 * between the engine and the socket (tls_pump).
 *
 * Memory: a fixed pool of CONFIG_TLS_SLOTS engines, each a server context
 * (about 3.8 KiB on 32-bit) plus a 16,709-byte input buffer (a server cannot
 * go lower: clients send full 16 KiB records) and a small output buffer
 * (CONFIG_TLS_OBUF), touched only when used.  Two separate buffers with
 * br_ssl_engine_set_buffers_bidi: set_buffer(bidi=1) overlaps them in 0.6.
 *
 * Certificates: option cert/key (PEM, RSA or EC, cert file may hold the
 * chain), or a self-signed EC P-256 certificate for the hostname made on
 * first start in data_dir/tls/ (as OpenWrt's px5g does for the web UI).
 */
#include "kotak.h"

#if ENABLE_TLS
#include <bearssl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EC_X25519	br_ec_c25519_i31
#define HANDSHAKE_SECS	30	/* a handshake that stalls longer is dropped */
#define CHAIN_MAX	4
#define PEM_MAX		(64 * 1024)

struct tls_slot {
	union {	/* the engine is the first member of both */
		br_ssl_engine_context eng;
		br_ssl_server_context sc;
#if ENABLE_RELAY
		br_ssl_client_context cc;
#endif
	} u;
	unsigned char ibuf[BR_SSL_BUFSIZE_INPUT];
	unsigned char obuf[CONFIG_TLS_OBUF];
	unsigned char used, gen, hs_done, client;
};
static struct tls_slot slots[CONFIG_TLS_SLOTS];

/* A loaded certificate and key.  Two generations, so a reload never pulls
 * the key from under a session still using the old one. */
#define CHAIN_BYTES	16384	/* DER of the whole chain (static: no malloc, no leak) */
struct tls_cred {
	br_x509_certificate chain[CHAIN_MAX];
	size_t	 nchain, used;
	unsigned char der[CHAIN_BYTES];
	br_skey_decoder_context key;
	int	 refs, loaded;
};
static struct tls_cred creds[2];
static int cur;

/* Elliptic curves: BearSSL's default (br_ec_all_m31) carries a P-256
 * special (p256_m31) beside the generic i31 code that already serves
 * P-384/P-521 and shares its arithmetic with RSA.  kotak uses the generic
 * code for all three NIST curves: slower P-256 (a handshake on a router
 * is rare), every curve kept, and the bytes measured in Kconfig TLS. */
static const unsigned char *
ec_generator(int curve, size_t *len)
{
	return curve == BR_EC_curve25519 ? EC_X25519.generator(curve, len) : br_ec_prime_i31.generator(curve, len);
}

static const unsigned char *
ec_order(int curve, size_t *len)
{
	return curve == BR_EC_curve25519 ? EC_X25519.order(curve, len) : br_ec_prime_i31.order(curve, len);
}

static size_t
ec_xoff(int curve, size_t *len)
{
	return curve == BR_EC_curve25519 ? EC_X25519.xoff(curve, len) : br_ec_prime_i31.xoff(curve, len);
}

static uint32_t
ec_mul(unsigned char *g, size_t gl, const unsigned char *k, size_t kl, int curve)
{
	return curve == BR_EC_curve25519 ? EC_X25519.mul(g, gl, k, kl, curve) : br_ec_prime_i31.mul(g, gl, k, kl, curve);
}

static size_t
ec_mulgen(unsigned char *r, const unsigned char *x, size_t xl, int curve)
{
	return curve == BR_EC_curve25519 ? EC_X25519.mulgen(r, x, xl, curve) : br_ec_prime_i31.mulgen(r, x, xl, curve);
}

static uint32_t
ec_muladd(unsigned char *a, const unsigned char *b, size_t len, const unsigned char *x, size_t xl,
    const unsigned char *y, size_t yl, int curve)
{
	/* ECDSA only: never X25519 */
	return br_ec_prime_i31.muladd(a, b, len, x, xl, y, yl, curve);
}

static const br_ec_impl ec_impl = {
	(uint32_t)0x23800000,	/* secp256r1, secp384r1, secp521r1, curve25519 */
	ec_generator, ec_order, ec_xoff, ec_mul, ec_mulgen, ec_muladd
};

static const uint16_t suites[] = {
	BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
};

/* ---- PEM files ---- */

struct pem_sink {
	unsigned char *buf;
	size_t len;
};

static void
pem_append(void *ctx, const void *d, size_t n)
{
	struct pem_sink *s = ctx;

	if (s->len + n <= PEM_MAX) {
		memcpy(s->buf + s->len, d, n);
		s->len += n;
	} else {
		s->len = PEM_MAX + 1;
	}
}

/* Call fn(name, der, len) for each PEM object of a file, read 4 KiB at a
 * time (a CA bundle is 200 KiB); -1 on error. */
static int
pem_each(const char *path, int (*fn)(void *, const char *, unsigned char *, size_t), void *arg,
    char *err, size_t errlen)
{
	static unsigned char obj[PEM_MAX];
	unsigned char file[4096];
	br_pem_decoder_context pc;
	struct pem_sink sink = { obj, 0 };
	char name[128] = "";
	size_t len, off;
	ssize_t r;
	int fd = open(path, O_RDONLY | O_CLOEXEC), inobj = 0, n = 0;

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	br_pem_decoder_init(&pc);
	while ((r = read(fd, file, sizeof(file))) > 0) {
		len = r;
		off = 0;
		while (off < len) {
			off += br_pem_decoder_push(&pc, file + off, len - off);
			switch (br_pem_decoder_event(&pc)) {
			case BR_PEM_BEGIN_OBJ:
				strlcpy_k(name, br_pem_decoder_name(&pc), sizeof(name));
				sink.len = 0;
				br_pem_decoder_setdest(&pc, pem_append, &sink);
				inobj = 1;
				break;
			case BR_PEM_END_OBJ:
				if (inobj && sink.len <= PEM_MAX && fn(arg, name, obj, sink.len) < 0) {
					snprintf(err, errlen, "%s: too many or bad objects (%s)", path, name);
					close(fd);
					return -1;
				}
				inobj = 0;
				n++;
				break;
			case BR_PEM_ERROR:
				snprintf(err, errlen, "%s: not a PEM file", path);
				close(fd);
				return -1;
			}
		}
	}
	close(fd);
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (n == 0 || inobj) {
		snprintf(err, errlen, "%s: no complete PEM object", path);
		return -1;
	}
	return 0;
}

static int
add_cert(void *arg, const char *name, unsigned char *der, size_t len)
{
	struct tls_cred *c = arg;

	if (strcmp(name, "CERTIFICATE") && strcmp(name, "X509 CERTIFICATE"))
		return 0;
	if (c->nchain == CHAIN_MAX || len > CHAIN_BYTES - c->used)
		return -1;
	memcpy(c->der + c->used, der, len);
	c->chain[c->nchain].data = c->der + c->used;
	c->chain[c->nchain++].data_len = len;
	c->used += len;
	return 0;
}

static int
add_key(void *arg, const char *name, unsigned char *der, size_t len)
{
	struct tls_cred *c = arg;

	if (!strstr(name, "PRIVATE KEY") || c->loaded)
		return 0;
	br_skey_decoder_init(&c->key);
	br_skey_decoder_push(&c->key, der, len);
	if (br_skey_decoder_last_error(&c->key) != 0)
		return -1;
	c->loaded = 1;
	return 0;
}

static void
cred_free(struct tls_cred *c)
{
	memset(c, 0, sizeof(*c));	/* wipes the key too */
}

/* The leaf certificate must carry the public half of the key. */
static int
cred_check(struct tls_cred *c, const char *path, char *err, size_t errlen)
{
	br_x509_decoder_context xc;
	const br_x509_pkey *pk;
	unsigned char buf[600];
	int kt = br_skey_decoder_key_type(&c->key);
	uint32_t today = (uint32_t)(time(NULL) / 86400 + 719528);

	br_x509_decoder_init(&xc, NULL, NULL);
	br_x509_decoder_push(&xc, c->chain[0].data, c->chain[0].data_len);
	if ((pk = br_x509_decoder_get_pkey(&xc)) == NULL) {
		snprintf(err, errlen, "%s: cannot decode the certificate", path);
		return -1;
	}
	if (pk->key_type != kt) {
		snprintf(err, errlen, "%s: key type does not match the certificate", path);
		return -1;
	}
	if (kt == BR_KEYTYPE_EC) {
		const br_ec_private_key *sk = br_skey_decoder_get_ec(&c->key);
		size_t n = br_ec_compute_pub(&ec_impl, NULL, buf, sk);
		if (n == 0 || n != pk->key.ec.qlen || memcmp(buf, pk->key.ec.q, n)) {
			snprintf(err, errlen, "%s: key does not match the certificate", path);
			return -1;
		}
	} else {
		const br_rsa_private_key *sk = br_skey_decoder_get_rsa(&c->key);
		size_t n = br_rsa_compute_modulus_get_default()(NULL, sk);
		const unsigned char *m = pk->key.rsa.n;
		size_t ml = pk->key.rsa.nlen;
		while (ml > 0 && *m == 0)
			m++, ml--;
		if (n > sizeof(buf) || br_rsa_compute_modulus_get_default()(buf, sk) != n ||
		    n != ml || memcmp(buf, m, n)) {
			snprintf(err, errlen, "%s: key does not match the certificate", path);
			return -1;
		}
	}
	if (xc.notafter_days < today)
		log_warnx("tls: certificate %s has expired: clients will refuse it", path);
	return 0;
}

/* ---- a self-signed certificate for the hostname ---- */

/* DER: wrap content as one TLV into out; returns the bytes written. */
static size_t
der(unsigned char *out, int tag, const unsigned char *in, size_t n)
{
	size_t o = 0;

	out[o++] = tag;
	if (n < 128)
		out[o++] = n;
	else if (n < 256)
		out[o++] = 0x81, out[o++] = n;
	else
		out[o++] = 0x82, out[o++] = n >> 8, out[o++] = n;
	memmove(out + o, in, n);
	return o + n;
}

static size_t
der_time(unsigned char *out, time_t t)
{
	struct tm tm;
	char s[20];
	int gen;

	gmtime_r(&t, &tm);
	gen = tm.tm_year + 1900 >= 2050;
	snprintf(s, sizeof(s), "%04d%02d%02d%02d%02d%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
	    tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	return der(out, gen ? 0x18 : 0x17, (unsigned char *)s + (gen ? 0 : 2), gen ? 15 : 13);
}

static int
write_file(const char *path, const void *d, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0 || write(fd, d, n) != (ssize_t)n || fsync(fd) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return close(fd);
}

static int
make_selfsigned(const char *certp, const char *keyp)
{
	static const unsigned char ver[] = { 0xa0, 3, 2, 1, 2 };
	static const unsigned char sigalg[] = { 0x30, 10, 6, 8, 0x2a, 0x86, 0x48, 0xce, 0x3d, 4, 3, 2 };
	static const unsigned char cn[] = { 6, 3, 0x55, 4, 3 };
	static const unsigned char ecalg[] = { 0x30, 0x13, 6, 7, 0x2a, 0x86, 0x48, 0xce, 0x3d, 2, 1,
		6, 8, 0x2a, 0x86, 0x48, 0xce, 0x3d, 3, 1, 7 };
	static const unsigned char san_oid[] = { 6, 3, 0x55, 0x1d, 0x11 };
	unsigned char kbuf[BR_EC_KBUF_PRIV_MAX_SIZE], pub[BR_EC_KBUF_PUB_MAX_SIZE + 1];
	unsigned char tbs[1500], t[1500], u[1500], name[600], h[32], sig[80], cert[1700], pem[4000];
	unsigned char seed[32], serial[9];
	br_hmac_drbg_context rng;
	br_ec_private_key sk;
	br_ec_public_key pk;
	br_sha256_context sh;
	const br_ec_impl *ec = &ec_impl;
	size_t n, tl, nl, o, sl, hl = strlen(cfg.hostname);
	time_t now_w = time(NULL);

	random_bytes(seed, sizeof(seed));
	br_hmac_drbg_init(&rng, &br_sha256_vtable, seed, sizeof(seed));
	if (br_ec_keygen(&rng.vtable, ec, &sk, kbuf, BR_EC_secp256r1) == 0)
		return -1;
	pub[0] = 0;	/* BIT STRING: no unused bits */
	n = br_ec_compute_pub(ec, &pk, pub + 1, &sk);
	/* Name: SEQUENCE { SET { SEQUENCE { CN, UTF8String host } } } */
	memcpy(t, cn, sizeof(cn));
	o = sizeof(cn) + der(t + sizeof(cn), 0x0c, (unsigned char *)cfg.hostname, hl);
	o = der(u, 0x30, t, o);
	o = der(t, 0x31, u, o);
	nl = der(name, 0x30, t, o);
	/* TBSCertificate */
	tl = 0;
	memcpy(tbs, ver, sizeof(ver));
	tl += sizeof(ver);
	random_bytes(serial, sizeof(serial));
	serial[0] = (serial[0] & 0x7f) | 0x40;
	tl += der(tbs + tl, 2, serial, sizeof(serial));
	memcpy(tbs + tl, sigalg, sizeof(sigalg));
	tl += sizeof(sigalg);
	memcpy(tbs + tl, name, nl);
	tl += nl;
	o = der_time(t, now_w - 86400);
	o += der_time(t + o, now_w + 10 * 366 * 86400LL);
	tl += der(tbs + tl, 0x30, t, o);
	memcpy(tbs + tl, name, nl);
	tl += nl;
	memcpy(t, ecalg, sizeof(ecalg));
	o = sizeof(ecalg) + der(t + sizeof(ecalg), 3, pub, n + 1);
	tl += der(tbs + tl, 0x30, t, o);
	/* [3] { SEQUENCE { Extension subjectAltName DNS:host } } */
	o = der(t, 0x82, (unsigned char *)cfg.hostname, hl);
	o = der(u, 0x30, t, o);
	o = der(t, 4, u, o);
	memmove(t + sizeof(san_oid), t, o);
	memcpy(t, san_oid, sizeof(san_oid));
	o = der(u, 0x30, t, o + sizeof(san_oid));
	o = der(t, 0x30, u, o);
	tl += der(tbs + tl, 0xa3, t, o);
	tl = der(u, 0x30, tbs, tl);
	/* sign and assemble */
	br_sha256_init(&sh);
	br_sha256_update(&sh, u, tl);
	br_sha256_out(&sh, h);
	sig[0] = 0;
	if ((sl = br_ecdsa_i31_sign_asn1(ec, &br_sha256_vtable, h, &sk, sig + 1)) == 0)
		return -1;
	o = tl;
	memcpy(t, u, tl);
	memcpy(t + o, sigalg, sizeof(sigalg));
	o += sizeof(sigalg);
	o += der(t + o, 3, sig, sl + 1);
	o = der(cert, 0x30, t, o);
	n = br_pem_encode(pem, cert, o, "CERTIFICATE", BR_PEM_LINE64);
	if (write_file(certp, pem, n) < 0)
		return -1;
	o = br_encode_ec_raw_der(t, &sk, &pk);
	n = br_pem_encode(pem, t, o, "EC PRIVATE KEY", BR_PEM_LINE64);
	memset(kbuf, 0, sizeof(kbuf));
	memset(t, 0, sizeof(t));
	if (o == 0 || write_file(keyp, pem, n) < 0)
		return -1;
	memset(pem, 0, sizeof(pem));
	log_info("tls: made a self-signed certificate for %s in %s", cfg.hostname, certp);
	return 0;
}

/* Paths of the certificate in use: configured, or the generated one. */
static void
cred_paths(char *certp, char *keyp, size_t n)
{
	if (cfg.cert[0]) {
		strlcpy_k(certp, cfg.cert, n);
		strlcpy_k(keyp, cfg.key[0] ? cfg.key : cfg.cert, n);
	} else {
		snprintf(certp, n, "%s/tls/cert.pem", cfg.data_dir);
		snprintf(keyp, n, "%s/tls/key.pem", cfg.data_dir);
	}
}

/* Load (or make) the certificate; with create == 0 nothing is written. */
int
tls_load(int create, char *err, size_t errlen)
{
	char certp[PATH_MAX_K + 16], keyp[PATH_MAX_K + 16], d[PATH_MAX_K + 16];
	int next = cur ^ (creds[cur].loaded ? 1 : 0);
	struct tls_cred *c = &creds[next];

	if (creds[next].refs > 0) {
		snprintf(err, errlen, "tls: sessions still use an older certificate; reload again later");
		return 1;
	}
	cred_free(c);
	cred_paths(certp, keyp, sizeof(certp));
	if (!cfg.cert[0] && access(certp, F_OK) < 0) {
		if (!create)
			return 0;	/* made at start */
		snprintf(d, sizeof(d), "%s/tls", cfg.data_dir);
		if (mkdir_p(d, 0700) < 0 || make_selfsigned(certp, keyp) < 0) {
			snprintf(err, errlen, "tls: cannot create %s: %s", certp, strerror(errno));
			return -1;
		}
		/* `kotak cert` as root before the first start: the daemon reads them */
		give_to_user(cfg.data_dir);
		give_to_user(d);
		give_to_user(certp);
		give_to_user(keyp);
	}
	if (pem_each(certp, add_cert, c, err, errlen) < 0 || pem_each(keyp, add_key, c, err, errlen) < 0)
		goto fail;
	if (c->nchain == 0 || !c->loaded) {
		snprintf(err, errlen, "%s: no %s found", c->nchain ? keyp : certp,
		    c->nchain ? "private key" : "certificate");
		goto fail;
	}
	if (cred_check(c, certp, err, errlen) < 0)
		goto fail;
	cur = next;
	return 0;
fail:
	c->loaded = 0;
	cred_free(c);
	return -1;
}

int
tls_cert_cmd(void)
{
	char certp[PATH_MAX_K + 16], keyp[PATH_MAX_K + 16], err[400];
	unsigned char h[32];
	br_sha256_context sh;
	int i;

	if (tls_load(1, err, sizeof(err)) < 0) {
		fprintf(stderr, "kotak: %s\n", err);
		return 1;
	}
	cred_paths(certp, keyp, sizeof(certp));
	br_sha256_init(&sh);
	br_sha256_update(&sh, creds[cur].chain[0].data, creds[cur].chain[0].data_len);
	br_sha256_out(&sh, h);
	printf("%s\nSHA256 Fingerprint=", certp);
	for (i = 0; i < 32; i++)
		printf("%02X%s", h[i], i < 31 ? ":" : "\n");
	return 0;
}

#if ENABLE_RPC
/* DER: a TLV of tag at p (n bytes there): its content in *c, *cl; the
 * bytes of the whole TLV, or 0. */
static size_t
tlv(const unsigned char *p, size_t n, int tag, const unsigned char **c, size_t *cl)
{
	size_t h = 2, l;

	if (n < 2 || p[0] != tag)
		return 0;
	l = p[1];
	if (l == 0x81 && n > 2)
		l = p[2], h = 3;
	else if (l == 0x82 && n > 3)
		l = (size_t)p[2] << 8 | p[3], h = 4;
	else if (l >= 0x80)
		return 0;
	if (l > n - h)
		return 0;
	*c = p + h;
	*cl = l;
	return h + l;
}

struct dn_buf {
	unsigned char b[1024];
	size_t	 n;
};

static void
dn_grab(void *ctx, const void *d, size_t n)
{
	struct dn_buf *x = ctx;

	if (n > sizeof(x->b) - x->n)
		n = sizeof(x->b) - x->n;
	memcpy(x->b + x->n, d, n);
	x->n += n;
}

/* A Name's CN, C, L, ST, O and OU attributes (OID 2.5.4.x) as "CN=a, O=b". */
static void
dn_text(const unsigned char *p, size_t n, char *out, size_t on)
{
	static const struct { unsigned char oid; char name[3]; } at[] = {
		{ 3, "CN" }, { 6, "C" }, { 7, "L" }, { 8, "ST" }, { 10, "O" }, { 11, "OU" }
	};
	const unsigned char *set, *seq, *oid, *v;
	size_t sl, ql, ol, vl, k, o = 0, u;

	*out = '\0';
	(void)tlv(p, n, 0x30, &p, &n);	/* into the Name's SEQUENCE, if it is there */
	for (; n && (u = tlv(p, n, 0x31, &set, &sl)) != 0 && o < on; p += u, n -= u) {
		if (!tlv(set, sl, 0x30, &seq, &ql) || (u = tlv(seq, ql, 0x06, &oid, &ol)) == 0)
			break;
		v = seq + u;
		vl = ql - u;
		if (ol != 3 || oid[0] != 0x55 || oid[1] != 0x04 || vl < 2 || !tlv(v, vl, v[0], &v, &vl))
			continue;
		for (k = 0; k < sizeof(at) / sizeof(at[0]) && at[k].oid != oid[2]; k++)
			;
		if (k < sizeof(at) / sizeof(at[0]))
			o += snprintf(out + o, on - o, "%s%s=%.*s", o ? ", " : "", at[k].name, (int)vl, v);
	}
}

/* The certificate in use (configured, or the self-signed one): 0, 1 when
 * there is none yet (the daemon makes it at its first start), -1. */
int
tls_cert_info(struct tls_certinfo *ci, char *err, size_t errlen)
{
	static struct tls_cred c;
	static struct dn_buf dn;
	char keyp[PATH_MAX_K + 16];
	br_x509_decoder_context xc;
	br_sha256_context sh;

	cred_paths(ci->path, keyp, sizeof(ci->path));
	if (!cfg.cert[0] && access(ci->path, F_OK) < 0)
		return 1;
	memset(&c, 0, sizeof(c));
	dn.n = 0;
	if (pem_each(ci->path, add_cert, &c, err, errlen) < 0)
		return -1;
	br_x509_decoder_init(&xc, dn_grab, &dn);
	if (c.nchain)
		br_x509_decoder_push(&xc, c.chain[0].data, c.chain[0].data_len);
	if (!c.nchain || br_x509_decoder_get_pkey(&xc) == NULL) {
		snprintf(err, errlen, "%s: cannot decode the certificate", ci->path);
		return -1;
	}
	ci->not_after = ((long long)xc.notafter_days - 719528) * 86400 + xc.notafter_seconds;
	dn_text(dn.b, dn.n, ci->subject, sizeof(ci->subject));
	br_sha256_init(&sh);
	br_sha256_update(&sh, c.chain[0].data, c.chain[0].data_len);
	br_sha256_out(&sh, ci->sha256);
	return 0;
}
#endif

/* ---- sessions ---- */

int
conn_tls_ready(void)
{
	return creds[cur].loaded;
}

int
conn_is_tls(const struct conn *c)
{
	return c->tls != NULL;
}

/* A free engine of the pool (server sessions and relay clients alike). */
static struct tls_slot *
slot_get(void)
{
	int i;

	for (i = 0; i < CONFIG_TLS_SLOTS; i++)
		if (!slots[i].used)
			return &slots[i];
	return NULL;
}

/* What server and client engines share: TLS 1.2, ECDHE suites, AEADs. */
static void
eng_common(br_ssl_engine_context *e)
{
	br_ssl_engine_set_versions(e, BR_TLS12, BR_TLS12);
	br_ssl_engine_set_suites(e, suites, sizeof(suites) / sizeof(suites[0]));
	br_ssl_engine_set_ec(e, &ec_impl);
	br_ssl_engine_set_hash(e, br_sha256_ID, &br_sha256_vtable);
	br_ssl_engine_set_hash(e, br_sha384_ID, &br_sha384_vtable);
	br_ssl_engine_set_prf_sha256(e, &br_tls12_sha256_prf);
	br_ssl_engine_set_prf_sha384(e, &br_tls12_sha384_prf);
	br_ssl_engine_set_default_aes_gcm(e);
	br_ssl_engine_set_default_chapol(e);
}

static struct tls_slot *
slot_new(void)
{
	struct tls_cred *cr = &creds[cur];
	struct tls_slot *s;
	br_ssl_engine_context *e;

	if (!cr->loaded || (s = slot_get()) == NULL)
		return NULL;
	e = &s->u.eng;
	br_ssl_server_zero(&s->u.sc);
	eng_common(e);
	if (br_skey_decoder_key_type(&cr->key) == BR_KEYTYPE_RSA)
		br_ssl_server_set_single_rsa(&s->u.sc, cr->chain, cr->nchain, br_skey_decoder_get_rsa(&cr->key),
		    BR_KEYTYPE_SIGN, br_rsa_private_get_default(), br_rsa_pkcs1_sign_get_default());
	else
		br_ssl_server_set_single_ec(&s->u.sc, cr->chain, cr->nchain, br_skey_decoder_get_ec(&cr->key),
		    BR_KEYTYPE_SIGN, BR_KEYTYPE_EC, &ec_impl, &br_ecdsa_i31_sign_asn1);
	br_ssl_engine_add_flags(e, BR_OPT_ENFORCE_SERVER_PREFERENCES | BR_OPT_NO_RENEGOTIATION);
	br_ssl_engine_set_buffers_bidi(e, s->ibuf, sizeof(s->ibuf), s->obuf, sizeof(s->obuf));
	if (!br_ssl_server_reset(&s->u.sc))
		return NULL;
	s->used = 1;
	s->hs_done = 0;
	s->client = 0;
	s->gen = cur;
	cr->refs++;
	return s;
}

/* Start TLS on a connection right now (implicit TLS listeners). */
int
tls_start(struct conn *c)
{
	if ((c->tls = slot_new()) == NULL)
		return -1;
	c->deadline = now + HANDSHAKE_SECS;
	return 0;
}

/* STARTTLS/STLS: input buffered so far is thrown away (CVE-2011-0411); TLS
 * begins once the protocol's "go ahead" reply has left in cleartext. */
int
conn_starttls(struct conn *c)
{
	if (c->tls || (c->tls = slot_new()) == NULL)
		return -1;
	c->in.len = 0;
	c->flags |= CF_TLSWAIT;
	return 0;
}

void
tls_end(struct conn *c)
{
	struct tls_slot *s = c->tls;
	unsigned char *b;
	size_t len;

	if (s == NULL)
		return;
	if (s->hs_done && !(c->flags & CF_TLSWAIT)) {
		/* close_notify, best effort: the socket is non-blocking */
		br_ssl_engine_close(&s->u.eng);
		if (br_ssl_engine_current_state(&s->u.eng) & BR_SSL_SENDREC) {
			b = br_ssl_engine_sendrec_buf(&s->u.eng, &len);
			if (write(c->fd, b, len) < 0) {
				/* the peer is gone: nothing to tell it */
			}
		}
	}
	creds[s->gen].refs--;
	s->used = 0;
	c->tls = NULL;
}

int
tls_handshake_done(const struct conn *c)
{
	return c->tls == NULL || ((struct tls_slot *)c->tls)->hs_done;
}

/* ---- moving bytes: shared by server sessions and the relay client ---- */

/* As much app output as the engine takes now, flushed into a record
 * (the caller has checked BR_SSL_SENDAPP and that there is output). */
static void
app_out(br_ssl_engine_context *e, struct buf *out)
{
	unsigned char *b;
	size_t len;

	b = br_ssl_engine_sendapp_buf(e, &len);
	if (len > out->len)
		len = out->len;
	memcpy(b, out->p, len);
	br_ssl_engine_sendapp_ack(e, len);
	buf_drop(out, len);
	br_ssl_engine_flush(e, 0);
}

/* App output into the engine (when it takes app data), then what the
 * engine needs from the socket. */
static void
want(struct tls_slot *s, struct buf *out, int hold, int *rd, int *wr)
{
	br_ssl_engine_context *e = &s->u.eng;
	unsigned st = br_ssl_engine_current_state(e);

	if ((st & BR_SSL_SENDAPP) && out->len && !hold) {
		app_out(e, out);
		st = br_ssl_engine_current_state(e);
	}
	*rd = (st & BR_SSL_RECVREC) != 0;
	*wr = (st & BR_SSL_SENDREC) != 0;
}

enum { TS_MOVED = 1, TS_GOT = 2, TS_CLOSED = 4, TS_ERR = 8, TS_EOF = 16, TS_HS = 32 };

/* One round: records to and from the socket, app data to and from the
 * buffers.  TS_* bits say what happened. */
static int
step(struct tls_slot *s, int fd, struct buf *in, struct buf *out, int hold, int noread)
{
	br_ssl_engine_context *e = &s->u.eng;
	unsigned st = br_ssl_engine_current_state(e);
	unsigned char *b;
	size_t len;
	ssize_t n;
	int r = 0;

	if (st & BR_SSL_CLOSED)
		return TS_CLOSED;
	if (!s->hs_done && (st & (BR_SSL_SENDAPP | BR_SSL_RECVAPP))) {
		s->hs_done = 1;
		r |= TS_HS;
	}
	if (st & BR_SSL_SENDREC) {
		b = br_ssl_engine_sendrec_buf(e, &len);
		n = write(fd, b, len);
		if (n > 0) {
			br_ssl_engine_sendrec_ack(e, n);
			r |= TS_MOVED;
		} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			return r | TS_ERR;
		}
	}
	if ((st & BR_SSL_RECVAPP) && buf_room(in)) {
		b = br_ssl_engine_recvapp_buf(e, &len);
		if (len > buf_room(in))
			len = buf_room(in);
		buf_add(in, b, len);
		br_ssl_engine_recvapp_ack(e, len);
		r |= TS_MOVED | TS_GOT;
	}
	if ((st & BR_SSL_SENDAPP) && out->len && !hold) {
		app_out(e, out);
		r |= TS_MOVED;
	}
	if ((st & BR_SSL_RECVREC) && !noread) {
		b = br_ssl_engine_recvrec_buf(e, &len);
		n = read(fd, b, len);
		if (n > 0) {
			br_ssl_engine_recvrec_ack(e, n);
			r |= TS_MOVED;
		} else if (n == 0) {
			r |= TS_EOF;
		} else if (errno != EAGAIN && errno != EINTR) {
			r |= TS_ERR;
		}
	}
	return r;
}

/* What the engine needs from the socket; app output is moved in first. */
void
tls_interest(struct conn *c, int *rd, int *wr)
{
	if (c->flags & CF_TLSWAIT) {	/* still cleartext: the 220 goes out first */
		*rd = 0;
		*wr = c->out.len > 0;
		return;
	}
	want(c->tls, &c->out, c->flags & CF_HOLD, rd, wr);
}

int
tls_pending(const struct conn *c)
{
	struct tls_slot *s = c->tls;

	return s && !(c->flags & CF_TLSWAIT) && (br_ssl_engine_current_state(&s->u.eng) & BR_SSL_SENDREC);
}

/* conn_flush with TLS: app output into records and records onto the
 * socket until one of them blocks.  Never reads (received app data moved
 * here would wait for the next record to be processed) and never closes:
 * an error is left for tls_pump, which the loop calls for it. */
int
tls_flush(struct conn *c)
{
	struct tls_slot *s = c->tls;
	br_ssl_engine_context *e = &s->u.eng;
	unsigned st;
	unsigned char *b;
	size_t len;
	ssize_t n;

	if (c->flags & (CF_TLSWAIT | CF_HOLD))
		return c->out.len == 0;
	for (;;) {
		st = br_ssl_engine_current_state(e);
		if (st & BR_SSL_SENDREC) {
			b = br_ssl_engine_sendrec_buf(e, &len);
			if ((n = write(c->fd, b, len)) <= 0)
				return 0;	/* full (or an error, for the loop) */
			br_ssl_engine_sendrec_ack(e, n);
		} else if ((st & BR_SSL_SENDAPP) && c->out.len) {
			app_out(e, &c->out);
		} else {
			return c->out.len == 0 && !(st & BR_SSL_CLOSED);
		}
	}
}

/* Move records between the socket and the engine and app data between the
 * engine and the connection buffers, until nothing moves. */
void
tls_pump(struct conn *c)
{
	struct tls_slot *s = c->tls;
	int r, err;

	if (c->flags & CF_TLSWAIT) {	/* cleartext until the reply is out */
		conn_write(c);
		if (c->fd >= 0 && c->out.len == 0) {
			c->flags &= ~CF_TLSWAIT;
			c->in.len = 0;
			c->deadline = now + HANDSHAKE_SECS;
		}
		return;
	}
	do {
		r = step(s, c->fd, &c->in, &c->out, c->flags & CF_HOLD, c->flags & (CF_EOF | CF_CLOSE));
		if (r & TS_CLOSED) {
			err = br_ssl_engine_last_error(&s->u.eng);
			if (err)
				log_info("tls ip=%s error %d%s", c->ip, err, s->hs_done ? "" : " in handshake");
			conn_close(c);
			return;
		}
		if (r & TS_HS) {
			c->deadline = now + conn_login_timeout();	/* nobody logged in yet */
			log_info("tls ip=%s %s", c->ip, "handshake ok");
		}
		if ((r & TS_ERR) || ((r & TS_EOF) && !s->hs_done)) {
			conn_close(c);
			return;
		}
		if (r & TS_EOF) {
			c->flags |= CF_EOF;
			conn_process(c);
			c->flags |= CF_CLOSE;
		}
		if (r & TS_GOT) {
			conn_process(c);
			if (c->fd < 0 || c->tls == NULL)
				return;
		}
	} while (r & TS_MOVED);
	if (c->out.len < c->out.cap / 2)
		conn_process(c);	/* room again: streaming replies go on */
}

#if ENABLE_RELAY
/* ---- the relay client (smtp_out.c) ---- */

/* "Accept any certificate" for opportunistic TLS to an MX (as Postfix's
 * smtp_tls_security_level = may): the handshake runs in full, the leaf's
 * key signs the key exchange, but nothing is verified. */
struct noverify {
	const br_x509_class *vtable;
	br_x509_decoder_context dc;
	int	 n;
};

static void
nv_start_chain(const br_x509_class **ctx, const char *name)
{
	struct noverify *v = (struct noverify *)ctx;

	v->n = 0;
	br_x509_decoder_init(&v->dc, NULL, NULL);
}

static void
nv_start_cert(const br_x509_class **ctx, uint32_t len)
{
}

static void
nv_append(const br_x509_class **ctx, const unsigned char *b, size_t len)
{
	struct noverify *v = (struct noverify *)ctx;

	if (v->n == 0)
		br_x509_decoder_push(&v->dc, b, len);
}

static void
nv_end_cert(const br_x509_class **ctx)
{
	((struct noverify *)ctx)->n++;
}

static unsigned
nv_end_chain(const br_x509_class **ctx)
{
	struct noverify *v = (struct noverify *)ctx;

	if (v->n == 0)
		return BR_ERR_X509_EMPTY_CHAIN;
	return br_x509_decoder_get_pkey(&v->dc) ? 0 : BR_ERR_X509_UNSUPPORTED;
}

static const br_x509_pkey *
nv_get_pkey(const br_x509_class *const *ctx, unsigned *usages)
{
	struct noverify *v = (struct noverify *)ctx;

	if (usages)
		*usages = BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN;
	return br_x509_decoder_get_pkey(&v->dc);
}

static const br_x509_class nv_class = {
	sizeof(struct noverify), nv_start_chain, nv_start_cert, nv_append, nv_end_cert, nv_end_chain, nv_get_pkey
};

struct tls_client {
	struct tls_slot *s;
	union {
		struct noverify nv;
#if ENABLE_RELAY_VERIFY
		br_x509_minimal_context xm;
#endif
	} x;
};
static struct tls_client clients[CONFIG_RELAY_SLOTS];

#if ENABLE_RELAY_VERIFY
/* Trust anchors from option ca_file (a PEM bundle), kept in the heap: this
 * is load time, not the I/O path.  Only loaded when a smarthost is verified. */
static br_x509_trust_anchor *tas, *tas_next;	/* in use; read by tls_ca_load */
static size_t ntas, ntas_next;

struct dnbuf {
	unsigned char *p;
	size_t	 len;
	int	 bad;
};

static void
dn_add(void *ctx, const void *d, size_t n)
{
	struct dnbuf *b = ctx;
	unsigned char *p = realloc(b->p, b->len + n);

	if (p == NULL) {
		b->bad = 1;
		return;
	}
	memcpy(p + b->len, d, n);
	b->p = p;
	b->len += n;
}

static void *
dup_mem(const void *d, size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p)
		memcpy(p, d, n);
	return p;
}

static void
tas_free(br_x509_trust_anchor *t, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(t[i].dn.data);
		if (t[i].pkey.key_type == BR_KEYTYPE_RSA) {
			free(t[i].pkey.key.rsa.n);
			free(t[i].pkey.key.rsa.e);
		} else {
			free(t[i].pkey.key.ec.q);
		}
	}
	free(t);
}

struct talist {
	br_x509_trust_anchor *t;
	size_t	 n;
};

static int
add_ta(void *arg, const char *name, unsigned char *der, size_t len)
{
	struct talist *l = arg;
	br_x509_decoder_context dc;
	struct dnbuf dn = { NULL, 0, 0 };
	const br_x509_pkey *pk;
	br_x509_trust_anchor *ta, *nt;

	if (strcmp(name, "CERTIFICATE") && strcmp(name, "TRUSTED CERTIFICATE") && strcmp(name, "X509 CERTIFICATE"))
		return 0;
	br_x509_decoder_init(&dc, dn_add, &dn);
	br_x509_decoder_push(&dc, der, len);
	if ((pk = br_x509_decoder_get_pkey(&dc)) == NULL || dn.bad || dn.p == NULL) {
		free(dn.p);
		return 0;	/* a certificate BearSSL cannot use: skipped */
	}
	if ((nt = realloc(l->t, (l->n + 1) * sizeof(*nt))) == NULL) {
		free(dn.p);
		return -1;
	}
	l->t = nt;
	ta = &l->t[l->n];
	memset(ta, 0, sizeof(*ta));
	ta->dn.data = dn.p;
	ta->dn.len = dn.len;
	ta->flags = BR_X509_TA_CA;	/* a self-signed server certificate anchors itself */
	ta->pkey.key_type = pk->key_type;
	if (pk->key_type == BR_KEYTYPE_RSA) {
		ta->pkey.key.rsa.n = dup_mem(pk->key.rsa.n, pk->key.rsa.nlen);
		ta->pkey.key.rsa.nlen = pk->key.rsa.nlen;
		ta->pkey.key.rsa.e = dup_mem(pk->key.rsa.e, pk->key.rsa.elen);
		ta->pkey.key.rsa.elen = pk->key.rsa.elen;
	} else {
		ta->pkey.key.ec.curve = pk->key.ec.curve;
		ta->pkey.key.ec.q = dup_mem(pk->key.ec.q, pk->key.ec.qlen);
		ta->pkey.key.ec.qlen = pk->key.ec.qlen;
	}
	l->n++;
	return 0;
}

/* see tls.h */
int
tls_ca_load(const char *path, char *err, size_t errlen)
{
	struct talist l = { NULL, 0 };

	err[0] = '\0';
	if (pem_each(path, add_ta, &l, err, errlen) < 0 || l.n == 0) {
		if (!err[0])
			snprintf(err, errlen, "%s: no usable CA certificate", path);
		tas_free(l.t, l.n);
		return -1;
	}
	tas_free(tas_next, ntas_next);
	tas_next = l.t;
	ntas_next = l.n;
	return 0;
}

/* see tls.h */
void
tls_ca_commit(void)
{
	int i;

	if (tas_next == NULL)
		return;
	for (i = 0; i < CONFIG_RELAY_SLOTS; i++)
		if (clients[i].s) {	/* their engines point into the old bundle */
			log_warnx("ca_file: relay sessions are running: the new CA bundle waits for a reload");
			tas_free(tas_next, ntas_next);
			tas_next = NULL;
			ntas_next = 0;
			return;
		}
	tas_free(tas, ntas);
	tas = tas_next;
	ntas = ntas_next;
	tas_next = NULL;
	ntas_next = 0;
}
#endif

/* see tls.h */
struct tls_client *
tls_client_new(const char *name, int verify)
{
	struct tls_client *t = NULL;
	struct tls_slot *s;
	br_ssl_engine_context *e;
	int i;

	for (i = 0; i < CONFIG_RELAY_SLOTS && !t; i++)
		if (clients[i].s == NULL)
			t = &clients[i];
	if (t == NULL || (s = slot_get()) == NULL)
		return NULL;
	e = &s->u.eng;
	br_ssl_client_zero(&s->u.cc);
	eng_common(e);
	br_ssl_engine_set_default_rsavrfy(e);
	br_ssl_engine_set_ecdsa(e, &br_ecdsa_i31_vrfy_asn1);
	br_ssl_engine_add_flags(e, BR_OPT_NO_RENEGOTIATION);
#if ENABLE_RELAY_VERIFY
	if (verify) {
		br_x509_minimal_init(&t->x.xm, &br_sha256_vtable, tas, ntas);
		br_x509_minimal_set_hash(&t->x.xm, br_sha256_ID, &br_sha256_vtable);
		br_x509_minimal_set_hash(&t->x.xm, br_sha384_ID, &br_sha384_vtable);
		br_x509_minimal_set_hash(&t->x.xm, br_sha512_ID, &br_sha512_vtable);
		br_x509_minimal_set_rsa(&t->x.xm, br_rsa_pkcs1_vrfy_get_default());
		br_x509_minimal_set_ecdsa(&t->x.xm, &ec_impl, &br_ecdsa_i31_vrfy_asn1);
		br_ssl_engine_set_x509(e, &t->x.xm.vtable);
	} else
#endif
	{
		t->x.nv.vtable = &nv_class;
		br_ssl_engine_set_x509(e, &t->x.nv.vtable);
	}
	br_ssl_engine_set_buffers_bidi(e, s->ibuf, sizeof(s->ibuf), s->obuf, sizeof(s->obuf));
	if (!br_ssl_client_reset(&s->u.cc, name, 0))
		return NULL;
	s->used = 1;
	s->hs_done = 0;
	s->client = 1;
	t->s = s;
	return t;
}

void
tls_client_free(struct tls_client *t)
{
	if (t && t->s) {
		t->s->used = 0;
		t->s = NULL;
	}
}

void
tls_client_want(struct tls_client *t, struct buf *out, int *rd, int *wr)
{
	want(t->s, out, 0, rd, wr);
}

/* see tls.h */
int
tls_client_io(struct tls_client *t, int fd, struct buf *in, struct buf *out)
{
	int r, got = 0;

	do {
		r = step(t->s, fd, in, out, 0, 0);
		got |= r & TS_GOT;
		if (r & (TS_CLOSED | TS_ERR | TS_EOF))
			return -1;
	} while (r & TS_MOVED);
	return got != 0;
}

int
tls_client_done(const struct tls_client *t)
{
	return t->s->hs_done;
}

int
tls_client_error(const struct tls_client *t)
{
	return br_ssl_engine_last_error(&t->s->u.eng);
}
#endif
#endif

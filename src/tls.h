/* tls.h: the TLS layer under the connection (tls.c); stubs without TLS. */
#ifndef TLS_H
#define TLS_H

#if ENABLE_TLS
/* The certificate and key: 0, -1 (err), 1 the one in use stays (err: a
 * slot is still held by sessions of an older one; reload again later). */
int	 tls_load(int create, char *err, size_t errlen);
int	 tls_cert_cmd(void);				/* kotak cert */
int	 tls_start(struct conn *);			/* implicit TLS: now */
void	 tls_end(struct conn *);
int	 tls_handshake_done(const struct conn *);
void	 tls_interest(struct conn *, int *rd, int *wr);
int	 tls_pending(const struct conn *);		/* records not yet written */
void	 tls_pump(struct conn *);
int	 tls_flush(struct conn *);			/* conn_flush's TLS half */
struct tls_certinfo {
	char	 path[PATH_MAX_K + 16];
	char	 subject[256];		/* "CN=..., O=..." */
	long long not_after;		/* Unix time */
	unsigned char sha256[32];	/* of the DER certificate */
};
int	 tls_cert_info(struct tls_certinfo *, char *err, size_t);	/* 0, 1 none yet, -1 */
#endif
#if ENABLE_TLS && ENABLE_RELAY
/* The relay client's TLS (smtp_out.c): an engine from the same pool. */
struct tls_client;
struct tls_client *tls_client_new(const char *name, int verify);	/* NULL: pool full */
void	 tls_client_free(struct tls_client *);
void	 tls_client_want(struct tls_client *, struct buf *out, int *rd, int *wr);
int	 tls_client_io(struct tls_client *, int fd, struct buf *in, struct buf *out);	/* 1 got data, 0, -1 ended */
int	 tls_client_done(const struct tls_client *);	/* handshake complete */
int	 tls_client_error(const struct tls_client *);	/* BearSSL error code */
int	 tls_ca_load(const char *path, char *err, size_t errlen);	/* option ca_file, read aside */
void	 tls_ca_commit(void);		/* ... and in use (kept old while relay sessions run) */
#endif
#if !ENABLE_TLS
static inline int tls_load(int create, char *err, size_t n) { (void)create; (void)err; (void)n; return 0; }
static inline int tls_start(struct conn *c) { (void)c; return -1; }
static inline void tls_end(struct conn *c) { (void)c; }
static inline int tls_handshake_done(const struct conn *c) { (void)c; return 1; }
static inline void tls_interest(struct conn *c, int *rd, int *wr) { (void)c; *rd = *wr = 0; }
static inline int tls_pending(const struct conn *c) { (void)c; return 0; }
static inline void tls_pump(struct conn *c) { (void)c; }
static inline int tls_flush(struct conn *c) { (void)c; return 0; }
#endif
#endif

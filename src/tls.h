/* tls.h: the TLS layer under the connection (tls.c); stubs without TLS. */
#ifndef TLS_H
#define TLS_H

#define CF_TLSWAIT	0x20	/* STARTTLS said: TLS starts once the reply is out */

#if ENABLE_TLS
int	 tls_load(int create, char *err, size_t errlen);	/* certificate and key */
int	 tls_cert_cmd(void);				/* kotak cert */
int	 tls_start(struct conn *);			/* implicit TLS: now */
void	 tls_end(struct conn *);
int	 tls_handshake_done(const struct conn *);
void	 tls_interest(struct conn *, int *rd, int *wr);
int	 tls_pending(const struct conn *);		/* records not yet written */
void	 tls_pump(struct conn *);
#else
static inline int tls_load(int create, char *err, size_t n) { (void)create; (void)err; (void)n; return 0; }
static inline int tls_start(struct conn *c) { (void)c; return -1; }
static inline void tls_end(struct conn *c) { (void)c; }
static inline int tls_handshake_done(const struct conn *c) { (void)c; return 1; }
static inline void tls_interest(struct conn *c, int *rd, int *wr) { (void)c; *rd = *wr = 0; }
static inline int tls_pending(const struct conn *c) { (void)c; return 0; }
static inline void tls_pump(struct conn *c) { (void)c; }
#endif
#endif

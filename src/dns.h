/* dns.h: asynchronous stub resolver for the select() loop (MX, A, AAAA).
 *
 * Queries go over UDP to the configured servers, one fresh socket (so a
 * fresh kernel-chosen source port) and a fresh random ID per attempt; a
 * truncated answer is asked again over TCP.  An answer counts only when its
 * ID, source address and port, QNAME (any case), QTYPE and QCLASS all match
 * the attempt (RFC 5452); anything else is dropped and counted in
 * dns_stats.ignored.  Attempts are 2 s apart, rotating over the servers, at
 * most DNS_TRIES per server; a server that answers SERVFAIL, REFUSED or
 * garbage is not asked again for that query.
 *
 * Memory is fixed: DNS_MAX_Q queries, DNS_MAX_WAIT waiting callers,
 * DNS_MAX_TCP TCP answers of at most DNS_TCP_BUF bytes in flight.
 * No cache: callers that want one keep results themselves. */
#ifndef DNS_H
#define DNS_H

#include <stddef.h>
#include <sys/select.h>
#include <time.h>

#define DNS_T_A		1
#define DNS_T_CNAME	5
#define DNS_T_MX	15
#define DNS_T_AAAA	28

#define DNS_MAX_RR	16	/* records per result: the best 16 MX are plenty */
#define DNS_NAME_MAX	256	/* text name with NUL: 253 characters at most */
#define DNS_MAX_Q	16	/* outstanding queries (each holds one socket) */
#define DNS_MAX_WAIT	64	/* callers waiting on them */
#define DNS_MAX_TCP	2	/* TCP answers in flight, DNS_TCP_BUF bytes each */
#define DNS_TCP_BUF	4096	/* why: 512-byte UDP answers truncate; 4 KiB holds ~150 MX */
#define DNS_MAX_SRV	3	/* as in resolv.conf(5) */
#define DNS_TRIES	3	/* attempts per server */
#define DNS_RETRY	2	/* seconds between attempts */
#define DNS_TCP_WAIT	5	/* seconds for a whole TCP exchange */
#define DNS_MAX_CNAME	8	/* CNAME links followed per query */

enum {
	DNS_OK,		/* n records in rr[] */
	DNS_NXDOMAIN,	/* the name (or a CNAME's target) does not exist: permanent */
	DNS_NODATA,	/* the name exists, no records of that type (no MX: use A/AAAA) */
	DNS_NULLMX,	/* RFC 7505 "0 .": the domain accepts no mail: permanent */
	DNS_TEMPFAIL,	/* SERVFAIL, REFUSED, timeout, garbage, CNAME loop: try later */
	DNS_PERMFAIL	/* the name asked for is malformed */
};

struct dns_rr {
	unsigned short pref;		/* MX preference */
	unsigned char family;		/* AF_INET or AF_INET6 (A, AAAA) */
	unsigned char addr[16];		/* 4 or 16 bytes, network order */
	char	 name[DNS_NAME_MAX];	/* MX exchange: lowercase, no final dot */
};

struct dns_result {
	int	 status;	/* DNS_* above */
	int	 n;		/* records in rr[], > 0 only with DNS_OK */
	struct dns_rr rr[DNS_MAX_RR];	/* MX: by preference, ties in random order */
};

struct dns_stats {
	unsigned long sent;	/* UDP and TCP queries sent */
	unsigned long ignored;	/* answers dropped: wrong source, ID or question */
	unsigned long tcp;	/* truncated answers asked again over TCP */
	unsigned long failed;	/* queries that ended DNS_TEMPFAIL */
};
extern struct dns_stats dns_stats;

typedef void dns_cb(void *arg, const struct dns_result *);

/* Servers: server_opt NULL reads up to DNS_MAX_SRV nameserver lines from
 * /etc/resolv.conf (127.0.0.1 if there are none, as libc does); else one
 * server "ADDR", "ADDR:PORT" or "[V6]:PORT" (option dns_server).  May be
 * called again (reload); running queries go on with the new servers.
 * 0, or -1 (server_opt malformed; the old servers stay). */
int	 dns_init(const char *server_opt);
int	 dns_init_file(const char *resolv_conf);	/* the same from another file (tests) */

/* Ask for name's records of qtype (DNS_T_MX, DNS_T_A or DNS_T_AAAA); name
 * is a domain in text form, a final dot allowed.  A query already running
 * for the same name and type is joined.  The callback then runs exactly
 * once, always later from dns_io() or dns_timeout(), never from inside
 * dns_query(); the result it gets is valid only during the call, and it
 * may call dns_query() and dns_cancel().  -1 (tables full, or a bad
 * qtype): the callback never runs. */
int	 dns_query(const char *name, int qtype, dns_cb *cb, void *arg);
/* Forget every pending callback with this arg (its owner goes away). */
void	 dns_cancel(void *arg);

/* Loop glue.  dns_fds adds the resolver's sockets (all below FD_SETSIZE)
 * to the sets and returns the new maxfd; wr is needed for TCP connects.
 * dns_io handles the ready ones; dns_next gives the earliest deadline
 * (monotonic seconds like `now`, 0 = none), and dns_timeout handles those
 * due at `now`.  Both may run callbacks. */
int	 dns_fds(fd_set *rd, fd_set *wr, int maxfd);
void	 dns_io(fd_set *rd, fd_set *wr);
time_t	 dns_next(void);
void	 dns_timeout(void);

/* Internals shared with the unit tests and the fuzz target. */
enum { DNS_R_IGNORE, DNS_R_TC, DNS_R_SERVER, DNS_R_CHASE, DNS_R_DONE };
/* Text name to wire form (lowercase); its length, or -1 if malformed. */
int	 dns_name_wire(const char *name, unsigned char wire[256]);
/* Judge a reply to (id, name in wire form, qtype).  DNS_R_IGNORE: not an
 * answer to that question; DNS_R_TC: truncated; DNS_R_SERVER: the server
 * failed (RCODE, garbage); DNS_R_CHASE: name now holds a CNAME target to
 * ask for; DNS_R_DONE: res is filled.  *hops counts CNAME links. */
int	 dns_parse(const unsigned char *pkt, size_t len, unsigned id, unsigned char name[256],
	    int qtype, int *hops, struct dns_result *res);

#endif

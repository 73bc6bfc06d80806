/* kotak: umbrella header.  config.h first; prototypes grouped by file so
 * this header reads as the module map. */
#ifndef KOTAK_H
#define KOTAK_H

#include "config.h"

#include <sys/types.h>
#include <stddef.h>
#include <stdarg.h>
#include <time.h>
#include <sys/select.h>
#include "libk.h"	/* last: maps libc names to kotak's own (Kconfig LIBK) */

#if !ENABLE_SMTP
#error "kotak without SMTP has nothing to do"
#endif
#if CONFIG_MAX_CONNS + CONFIG_MAX_LISTEN + 16 > 1024
#error "MAX_CONNS must leave room below FD_SETSIZE"
#endif

#define KOTAK_NAME	"kotak"

/* Test-only behaviour (tests kill -9 between two steps, as the environment
 * asks): in test builds only (make asan: -DKOTAK_TEST_HOOKS=1, `kotak -V`
 * says +test-hooks); in what ships the name is not even in the binary. */
#ifndef KOTAK_TEST_HOOKS
#define KOTAK_TEST_HOOKS 0
#endif
#define TEST_HOOK(env)	(KOTAK_TEST_HOOKS && getenv(env) ? atoi(getenv(env)) : 0)
#define PATH_MAX_K	256	/* our own path limit: data_dir and friends */
#define ADDR_MAX	256	/* RFC 5321 4.5.3.1.3: path incl. <> */
#define USER_MAX	64	/* user (mailbox) names */
#define QID_LEN		16	/* hex digits of a queue id */
#define IP_MAX		48	/* text form of an IPv6 address */

struct conn;

/* buf.c: fixed-capacity byte buffer; storage is owned by the caller. */
struct buf {
	char	*p;
	size_t	 len, cap;
};
void	 buf_init(struct buf *, char *mem, size_t cap);
size_t	 buf_room(const struct buf *);
int	 buf_add(struct buf *, const void *, size_t);	/* 0, or -1: no room, nothing added */
int	 buf_printf(struct buf *, const char *, ...) __attribute__((format(printf, 2, 3)));
void	 buf_drop(struct buf *, size_t n);		/* remove n bytes from the front */
long	 buf_line(struct buf *, char **line);
void	 buf_line_keep(char *line, long n);	/* undo buf_line's cut: the line stays */

/* util.c */
extern time_t	now;		/* monotonic seconds, updated once per loop pass */
time_t	 mono_now(void);
size_t	 strlcpy_k(char *, const char *, size_t);
int	 strcaseeq(const char *, const char *);
int	 parse_uint(const char *, unsigned long long max, unsigned long long *);
int	 has_ctl(const char *);			/* CR, LF, NUL-free? 1 if a control char */
void	 rfc5322_date(char *, size_t, time_t);
long	 civil_days(long y, unsigned m, unsigned d);	/* days since 1970-01-01, proleptic Gregorian */
void	 ctime_date(char *, size_t, time_t);	/* mbox From_ line date */
int	 fsync_dir(const char *path);
int	 mkdir_p(const char *path, mode_t);
void	 random_bytes(void *, size_t);
int	 b64_decode(const char *in, unsigned char *out, size_t max);	/* length or -1 */
void	 b64_encode(const unsigned char *in, size_t n, char *out, size_t max);
int	 set_nonblock(int fd);
struct passwd;
struct passwd *pw_lookup(const char *name, uid_t uid);	/* /etc/passwd only */
int	 give_to_user(const char *path);	/* chown to option user when root */

/* log.c */
void	 log_init(int to_syslog);
void	 log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));	/* + strerror */
void	 log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 fatal(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));
void	 fatalx(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));
const char *log_recent(unsigned i, time_t *, unsigned long *dropped);	/* RPC: last warnings */

/* net.c */
struct net {
	unsigned char addr[16];	/* IPv4 as v4-mapped IPv6 */
	int	 bits;
};
int	 net_parse(const char *, struct net *);
int	 net_match(const struct net *, int count, const char *ip);
void	 net_group(const char *ip, unsigned char g[16]);	/* IPv4 itself, IPv6 its /64 */

/* cfg.c: the runtime configuration, UCI syntax. */
enum { PROTO_SMTP, PROTO_SUBMISSION, PROTO_SMTPS, PROTO_POP3, PROTO_POP3S, PROTO_IMAP, PROTO_IMAPS, PROTO_NUM };
#define MAX_NETS 16
#define DNS_HOST_MAX 256
#define MAX_ROUTES 8		/* config route sections: a smarthost per domain */
enum { SH_TLS_AUTO, SH_TLS_IMPLICIT, SH_TLS_STARTTLS };
struct cfg_route {
	char	 domains[256];		/* space-separated; "" (route 0): all others */
	char	 smarthost[DNS_HOST_MAX + 8];	/* "host[:port]", "[v6]:port"; "" = MX */
	char	 sh_host[DNS_HOST_MAX];		/* parsed from it */
	int	 sh_port, sh_tls;		/* SH_TLS_* */
	char	 smarthost_user[256];
	char	 smarthost_password_file[PATH_MAX_K];
	int	 smarthost_verify;
};
struct cfg_listen {
	int	 proto;
	char	 addr[IP_MAX];
	int	 port;
};
struct cfg_alias {
	char	 name[USER_MAX];
	char	 to[ADDR_MAX];
	int	 line;		/* of its `list to`, for errors found after the parse */
};
struct cfg {
	char	 hostname[256];
	char	 domain[CONFIG_MAX_DOMAINS][256];
	int	 ndomain;
	char	 data_dir[PATH_MAX_K];
	char	 users_file[PATH_MAX_K];
	char	 user[USER_MAX];
	char	 cert[PATH_MAX_K], key[PATH_MAX_K];
	long long max_message_size;
	int	 max_recipients, max_sessions, max_per_ip, max_errors;
	int	 timeout, data_timeout, login_timeout;
	int	 auth_fail_rate;	/* failed logins a minute, in all, from strangers; 0 no limit */
	int	 log_syslog;
	int	 auth_any_sender;
	struct net cleartext_auth_net[MAX_NETS];
	int	 ncleartext_auth_net;
	struct net relay_net[MAX_NETS];		/* clients that may relay without AUTH */
	int	 nrelay_net;
	char	 dns_server[IP_MAX + 8];	/* "" = /etc/resolv.conf */
	int	 relay_port;			/* MX port, 25 (tests use a high one) */
	int	 retry_min, retry_max, queue_lifetime;	/* seconds */
	int	 delay_warning;	/* seconds in the queue before the sender is told once; 0 never */
	int	 relay_tls_fallback;		/* MX TLS handshake failed: retry it in cleartext */
	int	 relay_connect_timeout, relay_greeting_timeout;	/* seconds, per address */
	int	 relay_attempt_timeout;		/* seconds over all MX hosts, before MAIL */
	struct cfg_route route[1 + MAX_ROUTES];	/* [0]: config kotak's (every other domain) */
	int	 nroute;			/* config route sections, route[1..nroute] */
	char	 ca_file[PATH_MAX_K];
	int	 enabled;			/* option enabled: read by the init scripts, not here */
	struct cfg_listen listen[CONFIG_MAX_LISTEN];
	int	 nlisten;
	struct cfg_alias alias[CONFIG_MAX_ALIASES];
	int	 nalias;
};
extern struct cfg cfg;
extern const char *proto_names[PROTO_NUM];
extern const int proto_ports[PROTO_NUM];
int	 cfg_load(const char *path, struct cfg *, char *err, size_t errlen);
int	 cfg_is_local_domain(const char *domain);
int	 cfg_route_for(const char *domain);	/* index into cfg.route: 0 unless a config route names it */

/* users.c: the users file, loaded into memory. */
int	 users_load(const char *path, char *err, size_t errlen);	/* read and commit */
int	 users_read(const char *path, char *err, size_t errlen);	/* read aside: 0, or -1 and err */
void	 users_commit(void);	/* what users_read read is the users now */
const char *users_find(const char *name);	/* canonical name or NULL */
const char *users_hash(const char *canonical);
int	 users_cmd(const char *path, int argc, char **argv);
int	 user_name_ok(const char *);
int	 users_edit(const char *path, int op, const char *name, const char *pw, char *err, size_t);
const char *users_name(int i);		/* the i-th user loaded, or NULL */

/* auth.c: logins for every protocol, with the brakes on failures. */
const char *auth_check(const char *ip, const char *user, const char *pass);	/* canonical name or NULL */
int	 auth_delay(const char *ip);	/* seconds to hold a failure reply from ip */
/* Before a password is checked: 0 go on, N > 0 hold the line N seconds
 * (ip's own brake), -1 refuse it now with a temporary failure, unchecked
 * (failed logins in all are over their budget; SMTP 454 4.7.0, POP3
 * -ERR [SYS/TEMP], IMAP NO [UNAVAILABLE]). */
int	 auth_wait(const char *ip);
int	 auth_allowed(const struct conn *);	/* TLS on, or cleartext allowed for this client */

/* addr.c: RFC 5321 paths. */
struct addr {
	char	 local[ADDR_MAX];	/* unquoted local part */
	char	 domain[ADDR_MAX];	/* "" for <> or a bare postmaster */
};
#define ADDR_UTF8	0x1	/* SMTPUTF8 given: UTF-8 allowed */
#define ADDR_NULL_OK	0x2	/* <> allowed (MAIL FROM) */
int	 addr_parse_path(const char *s, struct addr *, int flags, const char **rest);
void	 addr_format(const struct addr *, char *, size_t);
int	 alias_expand(const char *local, char out[][USER_MAX], int max);
int	 rcpt_line(char *line, size_t sz, const char *user, const char *orig);	/* "R - USER ADDR\n" */

/* data.c: DATA phase parser (dot-unstuffing, strict CRLF.CRLF end, header filter). */
enum { DE_OK, DE_SIZE, DE_LINE, DE_IO, DE_LOOP };
struct data_rd {
	unsigned char st, hst, prev_crlf, skip;
	unsigned char hlen, nlen, nul;	/* header name kept; blanks after it; a NUL ended it */
	char	 hname[15];		/* longer than any name dropped: passes */
	long long hpos;			/* where the header line began (written + buffered) */
	long long size, max;
	long	 linelen;
	int	 received;
	int	 err, err_errno;
	int	 fd;
	long long written;
};
void	 data_start(struct data_rd *, int fd, long long max);
size_t	 data_push(struct data_rd *, const char *, size_t, int *done);

/* conn.c and loop.c: connection slots and the select() loop. */
struct conn;
struct proto {
	const char *name;
	void	(*start)(struct conn *);
	void	(*input)(struct conn *);	/* bytes arrived / may continue */
	void	(*timeout)(struct conn *);
	void	(*close)(struct conn *);
	/* the refusal of a session kotak cannot take, in the protocol's own
	 * words; a reason and CRLF follow ("421 4.7.0", "-ERR [SYS/TEMP]",
	 * "* BYE [UNAVAILABLE]"); never sent on implicit-TLS listeners */
	const char *busy;
	void	(*wake)(struct conn *);		/* loop_wake came due; NULL: input */
};
/* Each flag has one owner, who alone sets and clears it. */
#define CF_CLOSE	0x01	/* close once the output is flushed */
#define CF_EOF		0x02	/* peer closed its side */
#define CF_COMMIT	0x04	/* queue.c: DATA ended, waits for the group commit */
#define CF_SKIP		0x08	/* discarding an overlong line up to its LF */
#define CF_HOLD		0x10	/* conn.c: replies and input held until c->hold (login brake) */
#define CF_TLSWAIT	0x20	/* tls.c: STARTTLS said, TLS starts once the reply is out */
#define CF_WAKE		0x40	/* loop.c: a wake is due at c->wake */
#define CF_STOPPED	(CF_CLOSE | CF_COMMIT | CF_HOLD | CF_TLSWAIT)	/* conn_process runs no input */

#include "smtp_in.h"
#include "pop3.h"
#include "imap.h"

struct conn {
	int	 fd;		/* -1: free slot */
	unsigned flags;
	unsigned id;
	const struct proto *proto;
	struct buf in, out;
	time_t	 deadline;	/* monotonic; 0 = none */
	time_t	 hold;		/* with CF_HOLD: release output and input then */
	time_t	 wake;		/* with CF_WAKE: call proto->wake then */
	char	 ip[IP_MAX];
	unsigned char grp[16];		/* net_group(ip): what per-address limits count */
	unsigned char listen_proto;	/* PROTO_* of the listener that accepted it */
	void	*tls;		/* TLS state (tls.c) or NULL */
	union {
		struct smtp_sess smtp;
		struct pop3_sess pop3;
		struct imap_sess imap;
	} u;
};
extern struct conn conns[CONFIG_MAX_CONNS];
#include "tls.h"
void	 conn_init(void);
struct conn *conn_new(int fd, const char *ip, int listen_proto, const struct proto *);
void	 conn_close(struct conn *);
int	 conn_count(void);
/* May a new session of listener protocol lproto from address group grp
 * (net_group) take a slot?  NULL, or why not: "sessions" (max_sessions),
 * "per-ip" (max_sessions_per_ip), "share" (the last quarter of the slots
 * is for addresses that hold none yet), "reserve" (the slots left are
 * reserved for the other protocol families that have listeners: SMTP,
 * POP3, IMAP each keep max_sessions/8).  fams: bit f set for each family
 * f (0 SMTP, 1 POP3, 2 IMAP) with a listener. */
const char *conn_admit(int lproto, const unsigned char *grp, unsigned fams);
int	 conn_family(int proto);
/* Idle time allowed before login (SMTP: before AUTH or MAIL): option
 * login_timeout (at most timeout), 10 s while the table is 3/4 full.  Every protocol uses
 * it for its pre-login deadline (IMAP too). */
int	 conn_login_timeout(void);
int	 conn_reply(struct conn *, const char *, ...) __attribute__((format(printf, 2, 3)));
void	 conn_hold(struct conn *, int secs);
int	 conn_is_tls(const struct conn *);
int	 conn_out_pending(const struct conn *);
/* Write what is queued now rather than in the next pass (a stream that
 * fills the buffer faster than passes come: a 20 MB FETCH): 1 when all is
 * gone (with TLS: encrypted and written).  Errors: for the loop. */
int	 conn_flush(struct conn *);
int	 conn_tls_ready(void);			/* a certificate is loaded: STARTTLS may be offered */
int	 conn_starttls(struct conn *);		/* 0: input discarded, TLS handshake starts next */
void	 conn_process(struct conn *);
void	 conn_read(struct conn *);
void	 conn_write(struct conn *);

void	 loop_init(void);
void	 loop_run(void);
/* wake.c: deferred work, one API (never a deadline of now and a timeout
 * callback): loop_wake runs c->proto->wake (input when it has none) once,
 * secs seconds from now, 0: in the next pass (select does not sleep
 * meanwhile); waking again before it ran keeps the earlier time.  A
 * timer calls fn once, secs from now (0: next pass); setting it again
 * moves it. */
void	 loop_wake(struct conn *, int secs);
struct loop_timer {
	void	(*fn)(struct loop_timer *);
	time_t	 when;			/* private */
	struct loop_timer *next;	/* private */
	unsigned pass;			/* private */
	unsigned char on;		/* private */
};
void	 loop_timer_set(struct loop_timer *, int secs);
void	 loop_timer_stop(struct loop_timer *);
int	 loop_deferred(void);	/* run what is due (each pass; unit tests): how many ran */
time_t	 loop_deferred_next(time_t next);	/* the earliest due, folded into next */
/* Listeners to match a config, all or nothing: listen_prepare opens the
 * new ones (-1, none kept, if one fails), then listen_commit closes the
 * ones gone and keeps the rest, or listen_abort closes the new ones. */
int	 listen_prepare(const struct cfg *);
void	 listen_commit(void);
void	 listen_abort(void);
void	 listen_close_all(void);
int	 listen_is_open(const struct cfg_listen *);
extern volatile int loop_quit;

/* queue.c: the spool and local delivery. */
int	 queue_init(void);
int	 queue_tx_open(char *qid, char *tmppath, size_t);
void	 queue_commit_add(struct conn *);
void	 queue_commit_cancel(struct conn *);
void	 queue_sync(void);
void	 queue_run(void);
void	 queue_kick(void);			/* SIGUSR1: retry everything now */
int	 queue_wait_ms(void);			/* group commit delay left, -1 none */
time_t	 queue_next(void);			/* monotonic time of the next queue work, 0 = none */
int	 queue_space_ok(long long need);
int	 queue_trailer(int fd, long long bodylen);
int	 queue_rcpt_done(const char *qid, const char *user);

/* submit.c: kotak sendmail (and a symlink named sendmail), kotak queue, the pid file. */
int	 submit_sendmail(const char *cfg_path, int argc, char **argv);	/* sendmail(1) exit codes */
int	 queue_cmd(int argc, char **argv);	/* argv: "queue", "list" [-j] | "del" ID | "flush" */
void	 pidfile_create(void);			/* daemon: data_dir/kotak.pid, locked while it runs */
void	 pidfile_remove(void);
pid_t	 pidfile_running(void);			/* the daemon of this data_dir, 0 if none */
int	 queue_del(const char *qid, char *err, size_t);
extern char submit_qid[QID_LEN + 1];		/* the last message kotak sendmail queued */

/* rpc.c and ctl.c: `kotak rpc` (web UIs, rpcd) and the daemon's status socket (Kconfig RPC). */
int	 rpc_cmd(const char *cfg_path, int argc, char **argv);
void	 ctl_open(void);
int	 ctl_fds(fd_set *rd, int maxfd);
void	 ctl_io(fd_set *rd);
int	 ctl_query(pid_t pid, char *buf, size_t n);	/* the daemon's status object: length or -1 */

/* For the relay and bounces: a queue file's envelope, opened O_RDWR. */
struct qenv {
	time_t	 arrival;
	int	 warned;	/* the sender was told of a delay ("W" for "T") */
	char	 sender[ADDR_MAX];
	off_t	 body_off, body_len;
};
int	 queue_env_open(const char *qid, struct qenv *);	/* fd, or -1 (gone or damaged) */
int	 queue_line(int fd, off_t, char *, size_t);	/* envelope line: length with LF, 0 end, -1 */
int	 queue_publish(const char *tmp, const char *qid);	/* fsynced tmp file into the queue */
void	 queue_retry(int fd, time_t delay);		/* next attempt in delay seconds */
int	 queue_warned(int fd);	/* mark: the delay warning went out */
int	 queue_is_warned(int fd);		/* 1: the delay warning went out ("W") */

/* smtp_out.c: the relay client (Kconfig RELAY). */
int	 smtp_out_add(const char *qid);	/* 0 taken (or already in hand), -1 busy */
void	 smtp_out_run(void);
int	 smtp_out_fds(fd_set *rd, fd_set *wr, int maxfd);
void	 smtp_out_io(fd_set *rd, fd_set *wr);
time_t	 smtp_out_next(void);
void	 smtp_out_timeout(void);
void	 smtp_out_stop(void);
int	 smtp_out_load(char *err, size_t errlen);	/* read the smarthost passwords, CA file aside */
void	 smtp_out_apply(void);		/* ... and use them (at start, and a reload's commit) */

/* bounce.c: RFC 3464 DSNs for the relay. */
#define DIAG_MAX	160
struct bounce_rcpt {
	char	 addr[ADDR_MAX];
	char	 diag[DIAG_MAX];	/* "550 5.1.1 ..." as the remote said, or ours */
};
int	 bounce_make(const char *qid, int qfd, const struct qenv *, const char *mta,
	    const struct bounce_rcpt *, int n, int delayed);	/* 0 queued (or nothing to send), -1 */

/* The store's IMAP-only parts (mbox.c, mailbox.c, folder.c: APPEND's
 * header filter, keywords, folder renames, the busy compaction policy):
 * in a build with IMAP, and in the store's own tests (FOLDER_TEST). */
#if defined(FOLDER_TEST)
#define IMAP_PARTS 1
#else
#define IMAP_PARTS ENABLE_IMAP
#endif

/* mbox.c: the dotlock (its format lives there alone) and locked appends
 * to any folder's mbox. */
#define MBOX_PATH	(PATH_MAX_K + USER_MAX + 128)	/* any path under mail/USER/ */
enum { LK_APPEND, LK_REWRITE };		/* what a lock of ours is for */
struct mbox_lock {
	int	 fd;		/* the mbox, O_APPEND, fcntl write-locked */
	int	 reg;		/* private: slot in mbox.c's table of our locks */
	unsigned char synced;	/* the dotlock's content is durable */
	char	 path[MBOX_PATH];
	char	 lock[MBOX_PATH];
};
/* data_dir/mail/USER/PRE FOLDER SFX (USER alone when the rest is empty);
 * -1 ENAMETOOLONG, never a truncated path. */
int	 mbox_path(char *, size_t, const char *user, const char *pre, const char *folder, const char *sfx);
/* Lock folder's mbox: 0, 1 busy (retry later), -1.  create: make the
 * user's directory and the mbox when missing, each directory entry
 * durable at once (INBOX). */
int	 mbox_lock_open(struct mbox_lock *, const char *user, const char *folder, int kind, int create);
void	 mbox_unlock(struct mbox_lock *);
void	 mbox_recover_all(void);	/* at start: dotlocks left by a crash, every folder */
int	 mbox_sync_dir(const char *user);	/* fsync <data_dir>/mail/<user> */
void	 mbox_lock_note(struct mbox_lock *, off_t size);	/* "kotak PID SIZE": cut back to SIZE */
int	 mbox_lock_add(struct mbox_lock *, const char *qid, off_t off, int direct);
int	 mbox_lock_sync(struct mbox_lock *);	/* dotlock content and name durable */
int	 mbox_lock_owner(const char *lockpath);	/* 0 none, 1 this process, 2 someone else */
struct stat;
int	 mbox_lock_mine(const struct stat *, off_t *base);	/* 0, 1 our append (base: size before), 2 our rewrite */
int	 mbox_from_line(char *, size_t, const char *sender, time_t);
size_t	 mbox_quote(const char *in, size_t n, char *out, int *state);
/* One message appended to a locked mbox: begin (blank line fixed, From_
 * line, Return-Path when rpath, the append noted in the dotlock), data
 * (mboxrd-quoted), end (final LF and blank line); on any error undo
 * (cut back to the size before).  The caller fsyncs. */
#define APPEND_CRLF	0x1	/* input has CRLF line ends: store LF */
#define APPEND_FILTER	0x2	/* drop Status, X-Status, X-UID, X-Keywords... headers */
#define APPEND_RAW	0x4	/* already mboxrd-quoted (a copy from another mbox) */
enum { HS_BOL, HS_NAME, HS_KEEP, HS_DROP, HS_BODY };
struct mbox_append {
	off_t	 old;		/* mbox size before */
	off_t	 start;		/* where the From_ line went */
	int	 qstate, flags;
	unsigned char cr, hst, drop, nlen;
	char	 last;
	char	 name[64];
};
int	 mbox_append_begin(struct mbox_lock *, struct mbox_append *, const char *sender, time_t date,
	    const char *rpath, const char *qid, int direct, int flags);
int	 mbox_append_data(struct mbox_lock *, struct mbox_append *, const char *, size_t);
int	 mbox_append_end(struct mbox_lock *, struct mbox_append *);
void	 mbox_append_undo(struct mbox_lock *, struct mbox_append *);

#endif

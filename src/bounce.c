/*
 * bounce.c: delivery status notifications (RFC 3464) for the relay.
 *
 * A DSN is a new queue file with MAIL FROM:<> (F empty) and the body
 *	From: MAILER-DAEMON, multipart/report; report-type=delivery-status:
 *	text/plain for people, message/delivery-status (per message and per
 *	recipient fields), text/rfc822-headers (the original's header).
 * It goes to the sender: a local one straight to the mbox, a remote one
 * through the relay.  Never a bounce for a bounce: when the failed message
 * had the null sender (a DSN itself, ours or another's), the notice goes
 * once to the local postmaster, whose delivery is local and never bounces,
 * so it ends there.
 */
#include "kotak.h"
#if ENABLE_RELAY

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HDR_MAX	(64 * 1024)	/* original header bytes quoted at most */

/* The x.y.z of "550 5.1.1 text", else a default from the class; a
 * failure is 5.y.z whatever the class said, a delay 4.y.z. */
static void
status_of(const char *diag, char *st, size_t n, char cls)
{
	const char *p = diag + 4;
	size_t l = strspn(p, "0123456789.");

	if (strlen(diag) > 4 && (p[0] == '4' || p[0] == '5') && p[1] == '.' && l >= 5 && l < n) {
		memcpy(st, p, l);
		st[l] = '\0';
		st[0] = cls;
	} else {
		snprintf(st, n, "%c.0.0", cls);
	}
}

/* see kotak.h */
int
bounce_make(const char *qid, int qfd, const struct qenv *e, const char *mta,
    const struct bounce_rcpt *r, int n, int delayed)
{
	char to[ADDR_MAX], users[16][USER_MAX], bq[QID_LEN + 1], tmp[PATH_MAX_K + 32];
	char date[40], adate[40], st[16], buf[4096], *at;
	const char *bnd = qid;
	off_t hoff, blen;
	ssize_t k, j;
	int i, nl, nu, fd, dbl = !e->sender[0], ok, prevnl = 1;

	if (delayed && dbl)
		return 0;	/* no warnings about notices */
	strlcpy_k(to, dbl ? "postmaster" : e->sender, sizeof(to));
	at = strrchr(to, '@');
	if (at == NULL || cfg_is_local_domain(at + 1)) {
		if (at)
			*at = '\0';
		nu = alias_expand(to, users, 16);
		if (at)
			*at = '@';
		/* a double bounce stays local: sent to a forwarded postmaster
		 * that refuses it, it would fail with the null sender again and
		 * bounce again, forever */
		for (i = nl = 0; dbl && i < nu; i++)
			if (users[i][0] != '!')
				memmove(users[nl++], users[i], USER_MAX);
			else
				log_warnx("%s: double bounce not forwarded to <%s>", qid,
				    cfg.alias[atoi(users[i] + 1)].to);
		if (dbl && nu > 0)
			nu = nl;
		if (nu <= 0) {
			log_warnx("%s: bounce to <%s> dropped: no local mailbox", qid, to);
			return 0;
		}
	} else {
		nu = 1;
		strlcpy_k(users[0], "!", USER_MAX);
	}
	if ((fd = queue_tx_open(bq, tmp, sizeof(tmp))) < 0)
		return -1;
	rfc5322_date(date, sizeof(date), time(NULL));
	rfc5322_date(adate, sizeof(adate), e->arrival);
	ok = dprintf(fd, "KOTAK1 %s\nT %lld\nF \n", bq, (long long)time(NULL)) > 0;
	for (i = 0; i < nu; i++) {
		char line[ADDR_MAX + USER_MAX + 16];

		rcpt_line(line, sizeof(line), users[i], to);
		ok &= dprintf(fd, "%s", line) > 0;
	}
	hoff = lseek(fd, 0, SEEK_CUR) + 1;	/* the message starts after the blank line */
	ok &= dprintf(fd, "\nFrom: Mail Delivery System <MAILER-DAEMON@%s>\nTo: <%s>\n"
	    "Subject: %s\nDate: %s\nMessage-ID: <%s.dsn@%s>\nAuto-Submitted: auto-replied\n"
	    "MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status;\n"
	    "\tboundary=\"%s/%s\"\n\nThis is a MIME-encapsulated message.\n\n"
	    "--%s/%s\nContent-Type: text/plain; charset=us-ascii\n\n"
	    "This is the mail system at host %s.\n\n%s\n\n",
	    cfg.hostname, to, delayed ? "Delayed Mail (still being retried)" :
	    dbl ? "Undelivered Mail (a bounce that could not be delivered)" :
	    "Undelivered Mail Returned to Sender", date, bq, cfg.hostname, bnd, cfg.hostname,
	    bnd, cfg.hostname, cfg.hostname, delayed ?
	    "Your message could not be delivered yet to the recipients below.\n"
	    "It will be retried; this is only a warning, you need not send it again." :
	    "I'm sorry to have to inform you that your message could not\n"
	    "be delivered to one or more recipients.") > 0;
	for (i = 0; i < n; i++)
		ok &= dprintf(fd, "<%s>: %s\n", r[i].addr, r[i].diag) > 0;
	ok &= dprintf(fd, "\n--%s/%s\nContent-Description: Delivery report\n"
	    "Content-Type: message/delivery-status\n\nReporting-MTA: dns; %s\n"
	    "X-Kotak-Queue-ID: %s\nArrival-Date: %s\n",
	    bnd, cfg.hostname, cfg.hostname, qid, adate) > 0;
	for (i = 0; i < n; i++) {
		status_of(r[i].diag, st, sizeof(st), delayed ? '4' : '5');
		ok &= dprintf(fd, "\nFinal-Recipient: rfc822; %s\nAction: %s\nStatus: %s\n", r[i].addr,
		    delayed ? "delayed" : "failed", st) > 0;
		if (mta)
			ok &= dprintf(fd, "Remote-MTA: dns; %.*s\n", (int)strcspn(mta, "["), mta) > 0;
		if (delayed) {
			char until[40];
			rfc5322_date(until, sizeof(until), e->arrival + cfg.queue_lifetime);
			ok &= dprintf(fd, "Will-Retry-Until: %s\n", until) > 0;
		}
		ok &= dprintf(fd, "Diagnostic-Code: smtp; %s\n", r[i].diag) > 0;
	}
	ok &= dprintf(fd, "\n--%s/%s\nContent-Description: Undelivered Message Headers\n"
	    "Content-Type: text/rfc822-headers\n\n", bnd, cfg.hostname) > 0;
	/* the original's header section, up to its blank line */
	for (blen = 0; ok && blen < e->body_len && blen < HDR_MAX; blen += k) {
		k = e->body_len - blen < (off_t)sizeof(buf) ? e->body_len - blen : (off_t)sizeof(buf);
		if ((k = pread(qfd, buf, k, e->body_off + blen)) <= 0)
			break;
		for (j = 0; j < k && !(buf[j] == '\n' && prevnl); j++)
			prevnl = buf[j] == '\n';
		ok &= write(fd, buf, j) == j;
		if (j < k)
			break;
	}
	ok &= dprintf(fd, "\n--%s/%s--\n", bnd, cfg.hostname) > 0;
	blen = lseek(fd, 0, SEEK_CUR) - hoff;
	if (!ok || queue_trailer(fd, blen) < 0 || fsync(fd) < 0) {
		log_warn("%s: writing a bounce", qid);
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	if (queue_publish(tmp, bq) < 0)
		return -1;
	log_info("%s: sender %s notification: %s to=<%s>", qid, delayed ? "delay" : "non-delivery", bq, to);
	return 0;
}
#endif

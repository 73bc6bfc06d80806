/* smtp_in.h: SMTP server session state (lives in the connection slot). */
#ifndef SMTP_IN_H
#define SMTP_IN_H

struct smtp_sess {
	unsigned char st;		/* ST_* in smtp_in.c */
	unsigned char esmtp, utf8, errors;
	unsigned char authst, authfails;	/* AUTH dialogue step; failed logins */
	unsigned char unknown;		/* RCPTs to unknown users: seconds the next one waits */
	unsigned char greeted;		/* the greeting has left (input before it: a violation) */
	char	 auth[USER_MAX];		/* authenticated user, "" if none */
	char	 authuser[USER_MAX];		/* AUTH LOGIN: the name, until the password */
	int	 nrcpt;			/* accepted recipients in this transaction */
	int	 fd;			/* spool temp file, -1 if none */
	long long declared;		/* SIZE= from MAIL */
	time_t	 dend;			/* DATA: its deadline before the first KiB */
	char	 helo[256];
	char	 from[ADDR_MAX];
	char	 rcpt1[ADDR_MAX];	/* first recipient, for Received: "for" */
	char	 qid[QID_LEN + 1];
	char	 tmp[PATH_MAX_K + 32];
	struct data_rd d;
};

extern const struct proto smtp_in_proto;
void	 smtp_in_committed(struct conn *, int ok, int err);
int	 smtp_in_busy(void);		/* sessions between MAIL and the end of DATA */

#endif

/* pop3.h: POP3 session state (lives in the connection slot). */
#ifndef POP3_H
#define POP3_H

#include "mailbox.h"

struct pop3_sess {
	unsigned char st;		/* ST_* in pop3.c */
	unsigned char errors, fails, wait, waits, kind, bol, hdr;
	char	 user[USER_MAX];	/* from USER; the mailbox owner once logged in */
	uint32_t msg;			/* RETR/TOP: the message; LIST/UIDL: the next line */
	long	 top;			/* TOP: body lines still to send; -1: RETR */
	uint64_t pos, end;		/* RETR/TOP: mbox bytes still to send */
	unsigned nretr, ndele;
	struct mailbox mb;
};

extern const struct proto pop3_proto;

#endif

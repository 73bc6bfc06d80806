/* pop3.h: POP3 session state (lives in the connection slot). */
#ifndef POP3_H
#define POP3_H

#include "folder.h"

struct pop3_sess {
	unsigned char st;		/* ST_* in pop3.c */
	unsigned char errors, fails, wait, kind;
	char	 user[USER_MAX];	/* from USER; the mailbox owner once logged in */
	uint32_t msg;			/* RETR/TOP: the message; LIST/UIDL: the next line */
	long	 top;			/* TOP: body lines; -1: RETR */
	unsigned nretr, ndele;
	struct vmsg m;			/* RETR/TOP, LIST/UIDL: where we are */
	struct mstream ms;
	struct view v;
};

extern const struct proto pop3_proto;

#endif

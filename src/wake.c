/* wake.c: deferred work, the loop's one API for it (kotak.h): wake a
 * connection in a later pass, call a timer's function.  loop.c folds the
 * earliest one into its select() timeout and runs what is due each pass. */
#include "kotak.h"

static struct loop_timer *timers;	/* armed timers, unordered: there are few */
static unsigned pass;		/* loop passes, for timers set during one */

void
loop_wake(struct conn *c, int secs)
{
	if (c->fd < 0)
		return;
	if (!(c->flags & CF_WAKE)) {
		c->flags |= CF_WAKE;
		c->wake = now + secs;
	} else if (now + secs < c->wake) {
		c->wake = now + secs;
	}
}

void
loop_timer_set(struct loop_timer *t, int secs)
{
	if (!t->on) {
		t->next = timers;
		timers = t;
		t->on = 1;
	}
	t->when = now + secs;
	t->pass = pass;
}

void
loop_timer_stop(struct loop_timer *t)
{
	struct loop_timer **p;

	for (p = &timers; *p; p = &(*p)->next)
		if (*p == t) {
			*p = t->next;
			break;
		}
	t->on = 0;
}

/* The earliest wake or timer, folded into next (0 = none); now when due. */
time_t
loop_deferred_next(time_t next)
{
	struct loop_timer *t;
	int i;

	for (t = timers; t; t = t->next)
		if (!next || t->when < next)
			next = t->when;
	for (i = 0; i < CONFIG_MAX_CONNS; i++)
		if (conns[i].fd >= 0 && (conns[i].flags & CF_WAKE) && (!next || conns[i].wake < next))
			next = conns[i].wake;
	return next;
}

/* Run the wakes and timers that are due.  One pass each: what a callback
 * sets again for "now" runs in the next pass (select then does not sleep). */
int
loop_deferred(void)
{
	struct loop_timer *t;
	int i, ran = 0;

	for (i = 0; i < CONFIG_MAX_CONNS; i++) {
		struct conn *c = &conns[i];
		if (c->fd < 0 || !(c->flags & CF_WAKE) || c->wake > now)
			continue;
		c->flags &= ~CF_WAKE;
		ran++;
		if (c->proto->wake)
			c->proto->wake(c);
		else
			conn_process(c);
	}
	/* a callback may set or stop any timer (even free it): start over
	 * after each; timers set in this pass wait for the next */
again:
	for (t = timers; t; t = t->next)
		if (t->when <= now && t->pass != pass) {
			loop_timer_stop(t);
			t->fn(t);
			ran++;
			goto again;
		}
	pass++;
	return ran;
}


/* imap: the command parser's pieces on their own (imap_parse.c,
 * imap_search.c): sequence sets walked as text, mailbox names (modified
 * UTF-7), LIST patterns, flags, dates, FETCH items, SEARCH programs and
 * the text scanner. */
#include "kotak.h"
#include "imap.h"
#include "folder.h"
#include "t.h"

#include <limits.h>
#include <stdlib.h>

static struct icur cur;

static struct icur *
C(const char *s)
{
	imap_cur(&cur, s, strlen(s));
	return &cur;
}

/* The members of set s (with '*' = star) walked from 1, as "a,b,c". */
static const char *
members(const char *s, uint32_t star)
{
	static char out[4096];
	struct iset set;
	uint32_t x = 1, lo, hi;
	uint64_t v;
	size_t n = 0;

	out[0] = '\0';
	if (imap_set(C(s), &set) < 0 || !imap_end(&cur))
		return "BAD";
	iset_star(&set, star);
	while (iset_next(&set, x, &lo, &hi)) {
		for (v = lo; v <= hi && n < sizeof(out) - 16; v++)
			n += snprintf(out + n, sizeof(out) - n, "%s%llu", n ? "," : "", (unsigned long long)v);
		if (hi == UINT32_MAX)
			break;
		x = hi + 1;
	}
	return out;
}

static void
sets(void)
{
	struct iset set;
	uint32_t lo, hi;

	CHECK_STR(members("1", 5), "1");
	CHECK_STR(members("1:3", 5), "1,2,3");
	CHECK_STR(members("3:1", 5), "1,2,3");
	CHECK_STR(members("2,4:*", 6), "2,4,5,6");
	CHECK_STR(members("*:4", 6), "4,5,6");
	CHECK_STR(members("*", 6), "6");
	CHECK_STR(members("5,1:2,2,9:8", 20), "1,2,5,8,9");	/* unsorted, overlapping */
	CHECK_STR(members("1:3,2:6", 20), "1,2,3,4,5,6");
	CHECK_STR(members("7:*", 3), "3,4,5,6,7");	/* RFC 3501: 7:* with 3 messages is 3:7 */
	CHECK_STR(members("4294967295", 1), "4294967295");
	CHECK_STR(members("0", 5), "BAD");
	CHECK_STR(members("1:0", 5), "BAD");
	CHECK_STR(members("4294967296", 5), "BAD");
	CHECK_STR(members("1,", 5), "BAD");
	CHECK_STR(members(",1", 5), "BAD");
	CHECK_STR(members("1::2", 5), "BAD");
	CHECK_STR(members("a", 5), "BAD");
	CHECK_STR(members("", 5), "BAD");
	CHECK(imap_set(C("1:2 rest"), &set) == 0 && !strcmp(cur.p, " rest"));
	iset_star(&set, 9);
	CHECK(set.sorted);
	CHECK(imap_set(C("3,1"), &set) == 0);
	iset_star(&set, 9);
	CHECK(!set.sorted);
	CHECK_INT(iset_max(&set), 3);
	/* an ascending walk asked out of order starts over */
	CHECK(imap_set(C("2,5:6,9"), &set) == 0);
	iset_star(&set, 9);
	CHECK(iset_next(&set, 7, &lo, &hi) && lo == 9 && hi == 9);
	CHECK(iset_next(&set, 1, &lo, &hi) && lo == 2 && hi == 2);
	CHECK(iset_next(&set, 6, &lo, &hi) && lo == 6 && hi == 6);
	CHECK(!iset_next(&set, 10, &lo, &hi));
}

/* A Thunderbird-sized set: 1,000 single UIDs in 8 KiB, walked once. */
static void
long_set(void)
{
	static char s[CONFIG_IMAP_LINE_MAX];
	struct iset set;
	uint32_t x = 1, lo, hi, n = 0, i;
	size_t k = 0;

	for (i = 0; i < 1000; i++)
		k += snprintf(s + k, sizeof(s) - k, "%s%u", i ? "," : "", 3 * i + 100000);
	CHECK(imap_set(C(s), &set) == 0 && imap_end(&cur));
	iset_star(&set, 1 << 20);
	CHECK(set.sorted);
	while (iset_next(&set, x, &lo, &hi)) {
		CHECK_INT(lo, 3 * n + 100000);
		n++;
		x = hi + 1;
	}
	CHECK_INT(n, 1000);
}

static void
mutf7(void)
{
	CHECK(imap_mutf7_ok("INBOX"));
	CHECK(imap_mutf7_ok("Sent Items"));
	CHECK(imap_mutf7_ok("&-"));			/* "&" */
	CHECK(imap_mutf7_ok("Entw&APw-rfe"));		/* Entwürfe */
	CHECK(imap_mutf7_ok("&ZeVnLIqe-"));		/* 日本語 */
	CHECK(imap_mutf7_ok("&2D3eAA-"));		/* U+1F600, a surrogate pair */
	CHECK(!imap_mutf7_ok("&"));
	CHECK(!imap_mutf7_ok("&APw"));			/* unterminated */
	CHECK(!imap_mutf7_ok("&AGE-"));			/* 'a' encoded: must be direct */
	CHECK(!imap_mutf7_ok("&APw."));
	CHECK(!imap_mutf7_ok("&APwA-"));		/* leftover bits not zero / a stray char */
	CHECK(!imap_mutf7_ok("&2D0-"));			/* a lone high surrogate */
	CHECK(!imap_mutf7_ok("&3gA-"));			/* a lone low surrogate */
	CHECK(!imap_mutf7_ok("Entw\xc3\xbcrfe"));	/* raw UTF-8 */
	CHECK(!imap_mutf7_ok("a\tb"));
}

static void
mailbox_names(void)
{
	char b[FOLDER_NAME_MAX + 1];

	CHECK(imap_mailbox(C("inbox"), b, sizeof(b)) == 0 && !strcmp(b, "INBOX"));
	CHECK(imap_mailbox(C("\"Sent Items\""), b, sizeof(b)) == 0 && !strcmp(b, "Sent Items"));
	CHECK(imap_mailbox(C("{5}\r\nDraft"), b, sizeof(b)) == 0 && !strcmp(b, "Draft"));
	CHECK(imap_mailbox(C("\"x&y\""), b, sizeof(b)) < 0 && cur.err == 2);	/* NO, not BAD */
	CHECK(imap_mailbox(C("(x)"), b, sizeof(b)) < 0 && cur.err == 1);
	CHECK(imap_match("*", "INBOX") && imap_match("%", "Sent") && imap_match("inbox", "INBOX"));
	CHECK(imap_match("S*t", "Sent") && imap_match("*e*", "Trash") == 0 && imap_match("T%h", "Trash"));
	CHECK(!imap_match("sent", "Sent") && !imap_match("Se", "Sent") && imap_match("", "") &&
	    !imap_match("", "INBOX"));
	CHECK(imap_match("a*b*c", "aXbYbZc") && !imap_match("a*b*c", "aXbYbZ"));
}

static void
flags_and_dates(void)
{
	char kw[64];
	long d;
	time_t t;

	CHECK_INT(imap_flag(C("\\Seen"), kw, sizeof(kw)), MF_SEEN);
	CHECK_INT(imap_flag(C("\\dElEtEd"), kw, sizeof(kw)), MF_DELETED);
	CHECK_INT(imap_flag(C("\\Recent"), kw, sizeof(kw)), MF_RECENT);
	CHECK_INT(imap_flag(C("$Forwarded"), kw, sizeof(kw)), 0);
	CHECK_STR(kw, "$Forwarded");
	CHECK_INT(imap_flag(C("\\Frob"), kw, sizeof(kw)), -1);
	CHECK_INT(imap_flag(C("(x"), kw, sizeof(kw)), -1);
	CHECK(imap_date(C("1-Feb-1994"), &d) == 0 && d == civil_days(1994, 2, 1));
	CHECK(imap_date(C("\"01-feb-1994\""), &d) == 0 && d == 8797);
	CHECK(imap_date(C("1-Fob-1994"), &d) < 0);
	CHECK(imap_date(C("32-Jan-1994"), &d) < 0);
	CHECK(imap_date(C("1-Jan-94"), &d) < 0);
	CHECK(imap_date(C("\"1-Jan-1994"), &d) < 0);
	CHECK(imap_datetime(C("\"17-Jul-1996 02:44:25 -0700\""), &t) == 0 && t == 837596665);
	CHECK(imap_datetime(C("\" 7-Jul-1996 09:44:25 +0000\""), &t) == 0 && t == 836732665);
	CHECK(imap_datetime(C("\"17-Jul-1996 02:44:25\""), &t) < 0);
	CHECK(imap_datetime(C("\"17-Jul-1996 24:44:25 +0000\""), &t) < 0);
	CHECK(imap_datetime(C("17-Jul-1996"), &t) < 0);
}

/* FETCH items parsed back as "kind/sect/peek/path/fields/partial" lines */
static const char *
items(const char *s)
{
	static char out[1024];
	struct icur it;
	struct fitem f;
	size_t n = 0;
	unsigned i;

	if (imap_fetch_att(C(s), &it) < 0 || !imap_end(&cur))
		return "BAD";
	out[0] = '\0';
	while (it.p < it.e) {
		if (n && imap_sp(&it) < 0)
			return "BAD walk";
		if (imap_fetch_item(&it, &f) < 0)
			return "BAD item";
		n += snprintf(out + n, sizeof(out) - n, "%s%d/%d/%d/%d/", n ? " " : "", f.kind, f.sect, f.peek, f.rfc);
		for (i = 0; i < f.npath; i++)
			n += snprintf(out + n, sizeof(out) - n, "%s%u", i ? "." : "", f.path[i]);
		if (f.fld)
			n += snprintf(out + n, sizeof(out) - n, "/(%.*s)", (int)(f.flde - f.fld), f.fld);
		if (f.partial)
			n += snprintf(out + n, sizeof(out) - n, "/<%u.%u>", f.origin, f.size);
		if (f.sec)
			n += snprintf(out + n, sizeof(out) - n, "/[%.*s]", (int)(f.sece - f.sec), f.sec);
	}
	return out;
}

static void
fetch_items(void)
{
	CHECK_STR(items("FLAGS"), "1/0/0/0/");
	CHECK_STR(items("fast"), "1/0/0/0/ 3/0/0/0/ 4/0/0/0/");
	CHECK_STR(items("ALL"), "1/0/0/0/ 3/0/0/0/ 4/0/0/0/ 5/0/0/0/");
	CHECK_STR(items("FULL"), "1/0/0/0/ 3/0/0/0/ 4/0/0/0/ 5/0/0/0/ 6/0/0/0/");
	CHECK_STR(items("(UID RFC822.SIZE BODYSTRUCTURE BODY)"), "2/0/0/0/ 4/0/0/0/ 7/0/0/0/ 6/0/0/0/");
	CHECK_STR(items("BODY[]"), "8/0/0/0//[]");
	CHECK_STR(items("BODY.PEEK[]<0.2048>"), "8/0/1/0//<0.2048>/[]");
	CHECK_STR(items("body.peek[header.fields (From To \"Message-ID\")]"),
	    "8/2/1/0//(From To \"Message-ID\")/[header.fields (From To \"Message-ID\")]");
	CHECK_STR(items("BODY[HEADER.FIELDS.NOT (X-A)]"), "8/3/0/0//(X-A)/[HEADER.FIELDS.NOT (X-A)]");
	CHECK_STR(items("BODY[1.2.3]"), "8/0/0/0/1.2.3/[1.2.3]");
	CHECK_STR(items("BODY[2.MIME]"), "8/5/0/0/2/[2.MIME]");
	CHECK_STR(items("BODY[2.HEADER]"), "8/1/0/0/2/[2.HEADER]");
	CHECK_STR(items("BODY[TEXT]<10.5>"), "8/4/0/0//<10.5>/[TEXT]");
	CHECK_STR(items("(RFC822 RFC822.HEADER RFC822.TEXT RFC822.PEEK)"),
	    "8/0/0/1/ 8/1/1/2/ 8/4/0/3/ 8/0/1/1/");
	/* K-9's fetch */
	CHECK_STR(items("(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (date subject)] "
	    "BODYSTRUCTURE BODY.PEEK[]<0.4096>)"),
	    "2/0/0/0/ 1/0/0/0/ 3/0/0/0/ 4/0/0/0/ 8/2/1/0//(date subject)/[HEADER.FIELDS (date subject)] "
	    "7/0/0/0/ 8/0/1/0//<0.4096>/[]");
	CHECK_STR(items("BODY[MIME]"), "BAD");
	CHECK_STR(items("BODY[1.]"), "BAD");
	CHECK_STR(items("BODY[0]"), "BAD");
	CHECK_STR(items("BODY[1.0]"), "BAD");
	CHECK_STR(items("BODY[HEADER.FIELDS ()]"), "BAD");
	CHECK_STR(items("BODY[HEADER.FIELDS]"), "BAD");
	CHECK_STR(items("BODY[TEXT]<1.0>"), "BAD");
	CHECK_STR(items("BODY[TEXT]<1>"), "BAD");
	CHECK_STR(items("BODY.PEEK"), "BAD");
	CHECK_STR(items("BODY[TEXT"), "BAD");
	CHECK_STR(items("()"), "BAD");
	CHECK_STR(items("(FLAGS"), "BAD");
	CHECK_STR(items("(FLAGS ALL)"), "BAD");
	CHECK_STR(items("FLAGS UID"), "BAD");
	CHECK_STR(items("FROB"), "BAD");
	CHECK_STR(items("BODY[1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21]"), "BAD");
}

static int
kwbit(void *arg, const char *name)
{
	return !strcasecmp(name, "$Junk") ? 3 : -1;
}

static int
ev(const char *prog, const struct smsg *m)
{
	return imap_search_eval(C(prog), m);
}

static void
search_keys(void)
{
	struct smsg m;
	unsigned n;
	int d;

	memset(&m, 0, sizeof(m));
	m.msn = 3, m.uid = 30, m.size = 1000, m.flags = MF_SEEN | MF_KW(3);
	m.mstar = 10, m.ustar = 100;
	m.iday = civil_days(2020, 3, 15), m.sday = LONG_MIN;
	m.keyword = kwbit;
	CHECK_INT(ev("ALL", &m), 1);
	CHECK_INT(ev("SEEN", &m), 1);
	CHECK_INT(ev("UNSEEN", &m), 0);
	CHECK_INT(ev("seen unflagged", &m), 1);
	CHECK_INT(ev("NEW", &m), 0);
	CHECK_INT(ev("OLD", &m), 1);
	CHECK_INT(ev("KEYWORD $Junk", &m), 1);
	CHECK_INT(ev("KEYWORD $NotJunk", &m), 0);
	CHECK_INT(ev("UNKEYWORD $NotJunk", &m), 1);
	CHECK_INT(ev("1:2,3", &m), 1);
	CHECK_INT(ev("4:*", &m), 0);
	CHECK_INT(ev("UID 30", &m), 1);
	CHECK_INT(ev("UID 31:*", &m), 0);
	CHECK_INT(ev("LARGER 999 SMALLER 1001", &m), 1);
	CHECK_INT(ev("LARGER 1000", &m), 0);
	CHECK_INT(ev("SINCE 15-Mar-2020", &m), 1);
	CHECK_INT(ev("ON 15-Mar-2020", &m), 1);
	CHECK_INT(ev("BEFORE 15-Mar-2020", &m), 0);
	CHECK_INT(ev("BEFORE \"16-Mar-2020\"", &m), 1);
	CHECK_INT(ev("NOT SEEN", &m), 0);
	CHECK_INT(ev("OR UNSEEN FLAGGED", &m), 0);
	CHECK_INT(ev("OR UNSEEN (SEEN UID 30)", &m), 1);
	CHECK_INT(ev("NOT (OR 1 2)", &m), 1);
	/* text keys are unknown until scanned, unless the rest decides */
	CHECK_INT(ev("BODY x", &m), 2);
	CHECK_INT(ev("UNSEEN BODY x", &m), 0);
	CHECK_INT(ev("OR SEEN BODY x", &m), 1);
	CHECK_INT(ev("NOT SUBJECT x", &m), 2);
	CHECK_INT(ev("SENTON 1-Jan-2020", &m), 2);
	m.known = 3, m.found = 2;
	CHECK_INT(ev("FROM a OR TO b BODY c", &m), 0);
	CHECK_INT(ev("HEADER Message-ID <x@y> TO b", &m), 0);
	CHECK_INT(ev("NOT FROM a TO b", &m), 1);
	m.sknown = 1, m.sday = civil_days(2020, 1, 1);
	CHECK_INT(ev("SENTON 1-Jan-2020 SENTBEFORE 2-Jan-2020 SENTSINCE 1-Jan-2020", &m), 1);
	m.sday = LONG_MIN;
	CHECK_INT(ev("SENTSINCE 1-Jan-1970", &m), 0);
	/* syntax */
	CHECK_INT(ev("", &m), -1);
	CHECK_INT(ev("FROB", &m), -1);
	CHECK_INT(ev("SEEN ", &m), -1);
	CHECK_INT(ev("(SEEN", &m), -1);
	CHECK_INT(ev("SEEN)", &m), -1);
	CHECK_INT(ev("OR SEEN", &m), -1);
	CHECK_INT(ev("HEADER x", &m), -1);
	CHECK_INT(ev("BEFORE 1-Jan", &m), -1);
	CHECK_INT(ev("LARGER x", &m), -1);
	CHECK_INT(ev("UID", &m), -1);
	CHECK_INT(ev("0", &m), -1);
	CHECK_INT(ev("NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT SEEN", &m), -1);
	CHECK_INT(ev("((((((((((((((((((SEEN))))))))))))))))))", &m), -1);
	CHECK_INT(ev("NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT SEEN", &m), 1);
	CHECK(imap_search_check(C("OR FROM a BODY {3}\r\nb c SENTON 1-Jan-2000 ON 1-Jan-2000"), &n, &d) == 0 &&
	    n == 2 && d == (SD_SENT | SD_INTERNAL));
	CHECK(imap_search_check(C("BODY a BODY a BODY a BODY a BODY a BODY a BODY a BODY a "
	    "BODY a BODY a BODY a BODY a BODY a BODY a BODY a BODY a BODY a BODY a BODY a BODY a "
	    "BODY a BODY a BODY a BODY a BODY a BODY a BODY a BODY a BODY a BODY a BODY a BODY a BODY a"), &n, &d) < 0);
}

/* Scan msg for the program's text keys, fed in pieces of `step` bytes
 * the way a reader would (again from where the scanner stopped). */
static uint32_t
scan(const char *prog, const char *msg, size_t step, long *sday)
{
	struct sscan s;
	size_t off = 0, n = strlen(msg), k, got;

	if (imap_search_keys(C(prog)) < 0)
		return 0xdead;
	imap_scan_start(&s, 1);
	while (off < n && !imap_scan_done(&s)) {
		k = n - off < step ? n - off : step;
		got = imap_scan(&s, msg + off, k, off + k == n);
		if (got == 0 && k < step)
			return 0xbad;
		if (got == 0)
			step *= 2;	/* as a reader does: a bigger piece */
		off += got;
	}
	*sday = imap_scan_sday(&s);
	return s.found;
}

static void
scanner(void)
{
	static const char msg[] =
	    "Return-Path: <a@b>\n"
	    "From: Alice Example <alice@example.org>\n"
	    "To: bob@example.org,\n"
	    "  carol@example.org\n"
	    "Subject: Quarterly REPORT\n"
	    "Message-ID: <abc.123@example.org>\n"
	    "Date: Tue, 3 Mar 2020 10:11:12 +0100\n"
	    "X-Empty:\n"
	    "\n"
	    "Hello Bob,\n"
	    "the aaab numbers are in. From: nobody\n";
	size_t steps[] = { 1, 2, 3, 7, 70, 100, 4096 }, i;
	long sday;

	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		CHECK_INT(scan("FROM alice", msg, steps[i], &sday), 1);
		CHECK_INT(sday, civil_days(2020, 3, 3));
		CHECK_INT(scan("TO CAROL", msg, steps[i], &sday), 1);	/* a folded line */
		CHECK_INT(scan("SUBJECT report BODY report", msg, steps[i], &sday), 1);
		CHECK_INT(scan("TEXT report BODY numbers BODY alice", msg, steps[i], &sday), 3);
		CHECK_INT(scan("HEADER message-id <abc.123@example.org>", msg, steps[i], &sday), 1);
		CHECK_INT(scan("HEADER X-Empty \"\" HEADER X-Missing \"\"", msg, steps[i], &sday), 1);
		CHECK_INT(scan("FROM nobody", msg, steps[i], &sday), 0);	/* in the body, not a field */
		CHECK_INT(scan("BODY aab", msg, steps[i], &sday), 1);	/* KMP: after "aa" a mismatch */
		CHECK_INT(scan("CC bob BCC bob FROM bob", msg, steps[i], &sday), 0);
		CHECK_INT(scan("BODY \"\"", msg, steps[i], &sday), 1);
		CHECK_INT(scan("HEADER \"Date\" \"10:11\"", msg, steps[i], &sday), 1);
	}
	/* a field name longer than what is compared, cut anywhere */
	{
		static char big[8192];
		size_t n = 0;
		memset(big, 'X', 5000);
		n = 5000;
		n += snprintf(big + n, sizeof(big) - n, ": v\nSubject: found\n\nbody\n");
		for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
			CHECK_INT(scan("SUBJECT found", big, steps[i], &sday), 1);
	}
}

static const struct t_case tests[] = {
	T(sets), T(long_set), T(mutf7), T(mailbox_names), T(flags_and_dates), T(fetch_items),
	T(search_keys), T(scanner), { NULL, NULL }
};

int
main(int argc, char **argv)
{
	return t_main(tests, argc, argv);
}

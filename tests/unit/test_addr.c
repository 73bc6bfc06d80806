/* RFC 5321 paths and alias expansion. */
#include "kotak.h"
#include "t.h"
#include <stdio.h>
#include <unistd.h>

static int
p(const char *s, int flags, struct addr *a)
{
	const char *rest;

	return addr_parse_path(s, a, flags, &rest);
}

static void
good(void)
{
	struct addr a;
	char f[ADDR_MAX];

	CHECK_INT(p("<user@example.lan>", 0, &a), 0);
	CHECK_STR(a.local, "user");
	CHECK_STR(a.domain, "example.lan");
	CHECK_INT(p("<\"john doe\"@x.org>", 0, &a), 0);
	CHECK_STR(a.local, "john doe");
	addr_format(&a, f, sizeof(f));
	CHECK_STR(f, "\"john doe\"@x.org");
	CHECK_INT(p("<@relay.a,@relay.b:u@dest.org>", 0, &a), 0);	/* source route dropped */
	CHECK_STR(a.local, "u");
	CHECK_STR(a.domain, "dest.org");
	CHECK_INT(p("<u@[127.0.0.1]>", 0, &a), 0);
	CHECK_INT(p("<u@[IPv6:::1]>", 0, &a), 0);
	CHECK_INT(p("<Postmaster>", 0, &a), 0);
	CHECK_STR(a.domain, "");
	CHECK_INT(p("<>", ADDR_NULL_OK, &a), 0);
	CHECK_INT(p("<first.last+tag@x.y>", 0, &a), 0);
	CHECK_INT(p("<\xc3\xbcser@x.y>", ADDR_UTF8, &a), 0);
}

static void
bad(void)
{
	struct addr a;
	const char *b[] = {
		"user@x.org", "<user>", "<>", "<user@>", "<@x:>", "<.u@x>", "<u.@x>", "<u..v@x>",
		"<u@-x.org>", "<u@x-.org>", "<u@x..org>", "<u@[1.2.3]>", "<u@[foo]>", "<\"unterminated@x>",
		"<u@x.org", "<u v@x>", "<\xc3\xbcser@x.y>", "<\xc3@x.y>", "<u@x\x01y>",
		"<aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@x>",	/* 65 */
		NULL
	};
	int i;

	for (i = 0; b[i]; i++) {
		int r = p(b[i], 0, &a);
		if (r == 0)
			printf("    accepted %s\n", b[i]);
		CHECK(r < 0);
	}
}

static void
relay_tricks(void)
{
	struct addr a;

	/* each parses to an odd local part at the local host: never a relay */
	CHECK_INT(p("<user%other.org@here.lan>", 0, &a), 0);
	CHECK_STR(a.domain, "here.lan");
	CHECK_INT(p("<\"user@other.org\"@here.lan>", 0, &a), 0);
	CHECK_STR(a.local, "user@other.org");
	CHECK_STR(a.domain, "here.lan");
	CHECK_INT(p("<other.org!user@here.lan>", 0, &a), 0);
	CHECK_STR(a.domain, "here.lan");
	CHECK_INT(p("<@here.lan:user@other.org>", 0, &a), 0);
	CHECK_STR(a.domain, "other.org");
}

static void
aliases(void)
{
	char u[8][USER_MAX], err[200];
	FILE *f = fopen("/tmp/kotak-unit-users", "w");

	fprintf(f, "alice:$6$aa$x\nbob:$6$bb$y\n");
	fclose(f);
	CHECK_INT(users_load("/tmp/kotak-unit-users", err, sizeof(err)), 0);
	memset(&cfg, 0, sizeof(cfg));
	strcpy(cfg.domain[0], "here.lan");
	cfg.ndomain = 1;
	strcpy(cfg.alias[0].name, "postmaster"), strcpy(cfg.alias[0].to, "staff");
	strcpy(cfg.alias[1].name, "staff"), strcpy(cfg.alias[1].to, "alice");
	strcpy(cfg.alias[2].name, "staff"), strcpy(cfg.alias[2].to, "bob@here.lan");
	strcpy(cfg.alias[3].name, "loop"), strcpy(cfg.alias[3].to, "loop2");
	strcpy(cfg.alias[4].name, "loop2"), strcpy(cfg.alias[4].to, "loop");
	strcpy(cfg.alias[5].name, "bob"), strcpy(cfg.alias[5].to, "bob");
	strcpy(cfg.alias[6].name, "bob"), strcpy(cfg.alias[6].to, "Alice");
	cfg.nalias = 7;
	CHECK_INT(alias_expand("PostMaster", u, 8), 2);
	CHECK_STR(u[0], "alice");
	CHECK_STR(u[1], "bob");
	CHECK_INT(alias_expand("loop", u, 8), -1);
	CHECK_INT(alias_expand("nobody", u, 8), 0);
	CHECK_INT(alias_expand("BOB", u, 8), 2);	/* self plus a copy to alice */
	CHECK_INT(alias_expand("alice", u, 8), 1);
	unlink("/tmp/kotak-unit-users");
}

int
main(int argc, char **argv)
{
	static const struct t_case tc[] = { T(good), T(bad), T(relay_tricks), T(aliases), { 0, 0 } };
	return t_main(tc, argc, argv);
}

/* UCI-syntax config parser: values, quoting, errors with file:line. */
#include "kotak.h"
#include "t.h"

#include <stdio.h>
#include <unistd.h>

static char err[400];
static struct cfg c;

static int
load(const char *text)
{
	FILE *f = fopen("/tmp/kotak-unit.conf", "w");

	fputs(text, f);
	fclose(f);
	err[0] = '\0';
	return cfg_load("/tmp/kotak-unit.conf", &c, err, sizeof(err));
}

static void
good(void)
{
	CHECK_INT(load("package kotak\n\n# comment\nconfig kotak 'main'\n"
	    "\toption hostname \"mail.x.lan\"  # trailing\n\tlist domain 'x.lan'\n\tlist domain y.lan\n"
	    "\toption data_dir '/srv/k k'\n\toption max_message_size 1048576\n\toption log stderr\n"
	    "config listen\n\toption proto smtp\n\toption address '::1'\n"
	    "config listen\n\toption port 2525\n\toption proto smtp\n"
	    "config alias\n\toption name postmaster\n\tlist to admin\n\tlist to 'bob@x.lan'\n"), 0);
	CHECK_STR(err, "");
	CHECK_STR(c.hostname, "mail.x.lan");
	CHECK_INT(c.ndomain, 2);
	CHECK_STR(c.domain[1], "y.lan");
	CHECK_STR(c.data_dir, "/srv/k k");
	CHECK_INT(c.max_message_size, 1048576);
	CHECK_INT(c.nlisten, 2);
	CHECK_INT(c.listen[0].port, 25);	/* default for smtp */
	CHECK_STR(c.listen[0].addr, "::1");
	CHECK_INT(c.listen[1].port, 2525);
	CHECK_STR(c.listen[1].addr, "0.0.0.0");
	CHECK_INT(c.nalias, 2);
	CHECK_STR(c.alias[1].to, "bob@x.lan");
	CHECK_INT(c.max_recipients, 100);	/* default */
}

static void
errors(void)
{
	static const struct { const char *text, *want; } e[] = {
		{ "config kotak\n\toption nosuch 1\n", ":2: unknown option 'nosuch'" },
		{ "config kotak\n\toption max_message_size 12x\n", ":2: option max_message_size" },
		{ "config kotak\n\toption hostname 'open\n", ":2: unterminated quote" },
		{ "config bogus\n", ":1: unknown section type 'bogus'" },
		{ "option hostname x\n", ":1: option outside a config section" },
		{ "config listen\n\toption proto smtp\n\toption port 70000\n", ":3: option port" },
		{ "config listen\n\toption proto smtp\n\toption address 1.2.3\n", ":3: option address" },
		{ "config listen\n\toption proto gopher\n", ":2: option proto" },
		{ "config alias\n\tlist to admin\nconfig kotak\n", ":1: config alias without option name" },
		{ "config kotak\n\tlist hostname x\n", ":2: option hostname takes one value" },
		{ "config kotak\n\toption max_recipients 0\n", ":2: option max_recipients" },
		{ "config kotak\n\toption data_dir relative\n", "absolute" },
		{ "config kotak\n\toption a b c d\n", ":2: too many words" },
		{ "config alias\n\toption name x\n\tlist to '<a@b.test>'\n", "list to: bad address '<a@b.test>'" },
		{ "config alias\n\toption name x\n\tlist to 'a@'\n", "list to: bad address 'a@'" },
		{ "config alias\n\toption name x\n\tlist to '@b.test'\n", "list to: bad address '@b.test'" },
		{ "config alias\n\toption name x\n\tlist to 'a@b.test,c@d.test'\n", "list to: bad address" },
	};
	unsigned i;

	for (i = 0; i < sizeof(e) / sizeof(e[0]); i++) {
		CHECK_INT(load(e[i].text), -1);
		if (!strstr(err, e[i].want) || strncmp(err, "/tmp/kotak-unit.conf", 20)) {
			printf("    case %u: got '%s', want '%s'\n", i, err, e[i].want);
			t_fail = 1;
		}
	}
	unlink("/tmp/kotak-unit.conf");
	CHECK_INT(cfg_load("/nonexistent/kotak.conf", &c, err, sizeof(err)), -1);
	CHECK(strstr(err, "/nonexistent/kotak.conf") != NULL);
}

int
main(int argc, char **argv)
{
	static const struct t_case tc[] = { T(good), T(errors), { 0, 0 } };
	return t_main(tc, argc, argv);
}

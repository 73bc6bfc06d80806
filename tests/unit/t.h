/* Tiny unit-test harness: one binary per module, a table of named tests,
 * run as `./test_x` (all) or `./test_x name...`.  Prints one line per test
 * and "N passed, N failed" last; exit status 1 on any failure. */
#ifndef T_H
#define T_H
#include <stdio.h>
#include <string.h>

static int t_fail;

#define CHECK(cond) do { if (!(cond)) { \
	printf("    %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
	t_fail = 1; } } while (0)
#define CHECK_STR(a, b) do { const char *a_ = (a), *b_ = (b); \
	if (strcmp(a_, b_) != 0) { \
	printf("    %s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__, a_, b_); \
	t_fail = 1; } } while (0)
#define CHECK_INT(a, b) do { long long a_ = (long long)(a), b_ = (long long)(b); \
	if (a_ != b_) { \
	printf("    %s:%d: %s = %lld, want %lld\n", __FILE__, __LINE__, #a, a_, b_); \
	t_fail = 1; } } while (0)

struct t_case { const char *name; void (*fn)(void); };
#define T(name) { #name, name }

static int t_main(const struct t_case *tc, int argc, char **argv)
{
	int pass = 0, fail = 0, i, j;

	for (i = 0; tc[i].name; i++) {
		int want = argc < 2;
		for (j = 1; j < argc; j++)
			if (!strcmp(argv[j], tc[i].name) || !strcmp(argv[j], "all"))
				want = 1;
		if (!want)
			continue;
		t_fail = 0;
		tc[i].fn();
		printf("%s %s\n", t_fail ? "FAIL" : "PASS", tc[i].name);
		if (t_fail)
			fail++;
		else
			pass++;
	}
	printf("%d passed, %d failed\n", pass, fail);
	return fail ? 1 : 0;
}
#endif

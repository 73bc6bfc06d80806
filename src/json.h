/* json.h: kotak's own small JSON reader (for `kotak rpc`) and string writer
 * (for every JSON kotak prints).  No allocation: the reader fills a caller's
 * token array and leaves strings escaped in the text until asked. */
#ifndef JSON_H
#define JSON_H

#include <stdio.h>

enum { JT_OBJ = 1, JT_ARR, JT_STR, JT_NUM, JT_TRUE, JT_FALSE, JT_NULL };
struct jtok {
	unsigned char type;
	int	 start, len;	/* the value's bytes; a string: between its quotes, escaped */
	int	 n;		/* object: members (each a key token, then its value); array: elements */
	int	 next;		/* index of the token after this value and everything in it */
};
#define JSON_DEPTH	16
enum { JE_SYNTAX = -1, JE_SHORT = -2, JE_BIG = -3 };

/* Parse one value from s[0..n): the count of tokens (token 0 is the value),
 * JE_SHORT when the text ends before the value does, JE_SYNTAX, or JE_BIG
 * (more than max tokens or JSON_DEPTH levels).  *end: the index after it. */
int	 json_parse(const char *s, size_t n, struct jtok *t, int max, size_t *end);
/* The value of key in object token obj, or -1. */
int	 json_get(const char *s, const struct jtok *t, int obj, const char *key);
/* String token i unescaped into out (UTF-8): its length, or -1 when it is
 * not a string, holds \u0000, or does not fit. */
int	 json_strv(const char *s, const struct jtok *t, int i, char *out, size_t n);
/* A quoted JSON string: quotes, backslashes and control characters
 * escaped, bytes that are not UTF-8 as U+FFFD. */
void	 json_str(FILE *, const char *);

#endif

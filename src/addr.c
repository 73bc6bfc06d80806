/* addr.c: RFC 5321 paths (4.1.2) and alias expansion.  Source routes are
 * parsed and dropped as 4.1.1.3 says, so `<@a:u@b>` is simply `u@b`: the
 * relay decision always rests on the final domain.  Local parts come out
 * unquoted, so `"u@b"@here`, `u%b@here`, `b!u@here` are just odd local
 * names that match no user: none of them can relay. */
#include "kotak.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
is_atext(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    (c && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static int
is_ldh(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

/* Length of one well-formed UTF-8 sequence of a non-ASCII character, or 0. */
static int
utf8_len(const unsigned char *s)
{
	int n, i;

	if (*s >= 0xc2 && *s <= 0xdf)
		n = 2;
	else if (*s >= 0xe0 && *s <= 0xef)
		n = 3;
	else if (*s >= 0xf0 && *s <= 0xf4)
		n = 4;
	else
		return 0;
	for (i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if ((*s == 0xe0 && s[1] < 0xa0) || (*s == 0xed && s[1] > 0x9f) ||
	    (*s == 0xf0 && s[1] < 0x90) || (*s == 0xf4 && s[1] > 0x8f))
		return 0;	/* overlong, surrogate, beyond U+10FFFF */
	return n;
}

/* A domain at s; copies it to out and returns the length consumed, 0 on error. */
static size_t
parse_domain(const char *s, char *out, int utf8)
{
	const char *p = s;
	size_t lab = 0;
	int u;

	if (*p == '[') {	/* address literal */
		const char *e = strchr(p, ']');
		char ip[IP_MAX];
		unsigned char a[16];
		size_t n;

		if (e == NULL || (n = e - p - 1) >= sizeof(ip))
			return 0;
		memcpy(ip, p + 1, n);
		ip[n] = '\0';
		if (inet_pton(AF_INET, ip, a) != 1 &&
		    (strncmp(ip, "IPv6:", 5) || inet_pton(AF_INET6, ip + 5, a) != 1))
			return 0;
		memcpy(out, p, n + 2);
		out[n + 2] = '\0';
		return n + 2;
	}
	for (;;) {
		if (is_ldh((unsigned char)*p)) {
			if (lab == 0 && *p == '-')
				return 0;
			p++, lab++;
		} else if (utf8 && (u = utf8_len((const unsigned char *)p)) > 0) {
			p += u, lab += u;
		} else if (*p == '.' && lab > 0 && p[-1] != '-') {
			p++, lab = 0;
			continue;
		} else {
			break;
		}
		if (lab > 63)
			return 0;
	}
	if (lab == 0 || p[-1] == '-' || p - s > 255)
		return 0;
	memcpy(out, s, p - s);
	out[p - s] = '\0';
	return p - s;
}

int
addr_parse_path(const char *s, struct addr *a, int flags, const char **rest)
{
	const char *p = s;
	char *l = a->local;
	int utf8 = flags & ADDR_UTF8, u;
	size_t n;

	a->local[0] = a->domain[0] = '\0';
	if (*p++ != '<')
		return -1;
	if (*p == '>') {
		if (!(flags & ADDR_NULL_OK))
			return -1;
		p++;
		goto done;
	}
	if (*p == '@') {	/* A-d-l: @one,@two: -- parsed, then ignored */
		char skip[ADDR_MAX];
		for (;;) {
			if (*p++ != '@' || (n = parse_domain(p, skip, 0)) == 0)
				return -1;
			p += n;
			if (*p == ':')
				break;
			if (*p++ != ',')
				return -1;
		}
		p++;
	}
	if (*p == '"') {
		for (p++; *p != '"'; p++) {
			if (*p == '\\' && p[1] >= 32 && p[1] <= 126)
				p++;
			else if (utf8 && (u = utf8_len((const unsigned char *)p)) > 0) {
				if (l + u >= a->local + 64)
					return -1;
				memcpy(l, p, u), l += u, p += u - 1;
				continue;
			} else if (*p < 32 || *p > 126 || *p == '\\')
				return -1;
			if (l >= a->local + 64)
				return -1;
			*l++ = *p;
		}
		p++;
	} else {
		const char *st = p;
		for (;;) {
			if (is_atext((unsigned char)*p))
				*l++ = *p++;
			else if (utf8 && (u = utf8_len((const unsigned char *)p)) > 0)
				memcpy(l, p, u), l += u, p += u;
			else if (*p == '.' && p > st && p[-1] != '.' && is_atext((unsigned char)p[1]))
				*l++ = *p++;
			else if (*p == '.' && p > st && p[-1] != '.' && utf8 && (unsigned char)p[1] >= 0x80)
				*l++ = *p++;
			else
				break;
			if (l - a->local > 64)
				return -1;
		}
		if (p == st)
			return -1;
	}
	*l = '\0';
	if (*p == '@') {
		if ((n = parse_domain(p + 1, a->domain, utf8)) == 0)
			return -1;
		p += 1 + n;
	} else if (!strcaseeq(a->local, "postmaster")) {
		return -1;	/* only <postmaster> may come without a domain (4.1.1.3) */
	}
	if (*p++ != '>')
		return -1;
	if ((size_t)(p - s) > ADDR_MAX)
		return -1;
done:
	while (*p == ' ')
		p++;
	*rest = p;
	return 0;
}

/* The address as text, quoting the local part when it needs it. */
void
addr_format(const struct addr *a, char *out, size_t n)
{
	const char *s = a->local;
	size_t o = 0;
	int q = *s == '\0' || *s == '.';

	for (; *s && !q; s++)
		if (!is_atext((unsigned char)*s) && (unsigned char)*s < 0x80 &&
		    !(*s == '.' && s[1] && s[1] != '.'))
			q = 1;
	if (!a->local[0] && !a->domain[0]) {
		out[0] = '\0';
		return;
	}
	if (q && o < n)
		out[o++] = '"';
	for (s = a->local; *s && o + 4 < n; s++) {
		if (q && (*s == '"' || *s == '\\'))
			out[o++] = '\\';
		out[o++] = *s;
	}
	if (q && o < n)
		out[o++] = '"';
	if (a->domain[0] && o < n)
		o += strlcpy_k(out + o, "@", n - o);
	if (o < n)
		strlcpy_k(out + o, a->domain, n - o);
	else
		out[n - 1] = '\0';
}

static int
add_unique(const char *u, char out[][USER_MAX], int max, int *n)
{
	int j;

	for (j = 0; j < *n; j++)
		if (!strcmp(out[j], u))
			return 0;
	if (*n == max)
		return -1;
	strlcpy_k(out[(*n)++], u, USER_MAX);
	return 0;
}

/*
 * Resolve a local part to local user names through the aliases (up to 8
 * levels deep); an alias wins over a user of the same name, and an alias
 * may name that user itself.  Returns how many names were written, 0 when
 * the name is neither user nor alias, -1 when an alias leads nowhere.
 */
static int
expand(const char *local, char out[][USER_MAX], int max, int *n, int depth)
{
	const char *u;
	int i, hit = 0;

	if (depth > 8)
		return -1;
	for (i = 0; i < cfg.nalias; i++) {
		const char *to = cfg.alias[i].to, *at = strchr(to, '@');
		char name[ADDR_MAX];

		if (!strcaseeq(cfg.alias[i].name, local))
			continue;
		hit = 1;
		strlcpy_k(name, to, sizeof(name));
		if (at != NULL && !cfg_is_local_domain(at + 1)) {
#if ENABLE_RELAY
			/* forwarding: "!N" names cfg.alias[N].to, for the relay
			 * (rcpt_line writes the address; the envelope sender is
			 * kept, as Postfix does without SRS) */
			snprintf(name, sizeof(name), "!%d", i);
			if (add_unique(name, out, max, n) < 0)
				return -1;
			continue;
#else
			return -1;	/* no relay in this build */
#endif
		}
		if (at != NULL)
			name[at - to] = '\0';
		if (strcaseeq(name, local)) {
			if ((u = users_find(name)) == NULL || add_unique(u, out, max, n) < 0)
				return -1;
		} else if (expand(name, out, max, n, depth + 1) < 0) {
			return -1;
		}
	}
	if (hit)
		return 0;
	if ((u = users_find(local)) == NULL)
		return depth ? -1 : 0;
	return add_unique(u, out, max, n);
}

int
alias_expand(const char *local, char out[][USER_MAX], int max)
{
	int n = 0;

	if (expand(local, out, max, &n, 0) < 0)
		return -1;
	return n;
}

/* The queue's recipient line for one alias_expand() result: a local user,
 * "!" (the remote address orig) or "!N" (forwarding to alias N's target). */
int
rcpt_line(char *line, size_t sz, const char *user, const char *orig)
{
	if (user[0] == '!' && user[1])
		return snprintf(line, sz, "R - ! %s\n", cfg.alias[atoi(user + 1)].to);
	return snprintf(line, sz, "R - %s %s\n", user, orig);
}

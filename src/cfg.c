/* cfg.c: the runtime configuration, parsed from UCI syntax (the format of
 * OpenWrt's /etc/config files, so the web UI can write it with uci).
 * Grammar per line: `config TYPE [NAME]`, `option KEY VALUE`,
 * `list KEY VALUE`, `package NAME` (ignored), `# comment`.  Values are bare
 * words, 'single quoted' or "double quoted" (backslash escapes). */
#include "kotak.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct cfg cfg;
/* Protocols a listener may name; ones this build lacks are refused at load. */
const char *proto_names[PROTO_NUM] = { "smtp", "submission", "smtps", "pop3", "pop3s", "imap", "imaps" };
const int proto_ports[PROTO_NUM] = { 25, 587, 465, 110, 995, 143, 993 };
static const unsigned char proto_built[PROTO_NUM] = {
	1, ENABLE_TLS, ENABLE_TLS, ENABLE_POP3, ENABLE_POP3 && ENABLE_TLS, ENABLE_IMAP, ENABLE_IMAP && ENABLE_TLS
};

enum { SEC_NONE, SEC_MAIN, SEC_LISTEN, SEC_ALIAS, SEC_ROUTE };
enum { T_STR, T_INT, T_LOG, T_SHTLS };

struct opt {
	const char *name;
	unsigned char type;
	unsigned int off, size;	/* T_STR: buffer size; T_INT: int or long long */
	long long min, max;
};
#define S(f)	offsetof(struct cfg, f), sizeof(((struct cfg *)0)->f)
static const struct opt main_opts[] = {
	{ "hostname", T_STR, S(hostname), 0, 0 },
	{ "data_dir", T_STR, S(data_dir), 0, 0 },
	{ "users_file", T_STR, S(users_file), 0, 0 },
	{ "user", T_STR, S(user), 0, 0 },
	{ "cert", T_STR, S(cert), 0, 0 },
	{ "key", T_STR, S(key), 0, 0 },
	{ "max_message_size", T_INT, S(max_message_size), 1024, 1LL << 40 },
	{ "max_recipients", T_INT, S(max_recipients), 1, CONFIG_MAX_RCPT },
	{ "max_sessions", T_INT, S(max_sessions), 1, CONFIG_MAX_CONNS },
	{ "max_sessions_per_ip", T_INT, S(max_per_ip), 1, CONFIG_MAX_CONNS },
	{ "max_errors", T_INT, S(max_errors), 1, 1000 },
	{ "timeout", T_INT, S(timeout), 1, 86400 },
	{ "data_timeout", T_INT, S(data_timeout), 1, 86400 },
	{ "login_timeout", T_INT, S(login_timeout), 1, 86400 },
	{ "auth_fail_rate", T_INT, S(auth_fail_rate), 0, 60 },
	{ "log", T_LOG, S(log_syslog), 0, 0 },
	{ "auth_any_sender", T_INT, S(auth_any_sender), 0, 1 },
	{ "dns_server", T_STR, S(dns_server), 0, 0 },
	{ "relay_port", T_INT, S(relay_port), 1, 65535 },
	{ "retry_min", T_INT, S(retry_min), 1, 86400 },
	{ "retry_max", T_INT, S(retry_max), 1, 86400 },
	{ "queue_lifetime", T_INT, S(queue_lifetime), 0, 100 * 86400 },
	{ "delay_warning", T_INT, S(delay_warning), 0, 100 * 86400 },
	{ "relay_tls_fallback", T_INT, S(relay_tls_fallback), 0, 1 },
	{ "relay_connect_timeout", T_INT, S(relay_connect_timeout), 1, 3600 },
	{ "relay_greeting_timeout", T_INT, S(relay_greeting_timeout), 1, 3600 },
	{ "relay_attempt_timeout", T_INT, S(relay_attempt_timeout), 1, 86400 },
	{ "ca_file", T_STR, S(ca_file), 0, 0 },
	{ "enabled", T_INT, S(enabled), 0, 1 },	/* for the init scripts only */
	{ NULL, 0, 0, 0, 0, 0 }
};
/* the smarthost options: config kotak's go to route[0], a config route's to its own */
#define R(f)	offsetof(struct cfg_route, f), sizeof(((struct cfg_route *)0)->f)
static const struct opt route_opts[] = {
	{ "smarthost", T_STR, R(smarthost), 0, 0 },
	{ "smarthost_user", T_STR, R(smarthost_user), 0, 0 },
	{ "smarthost_password_file", T_STR, R(smarthost_password_file), 0, 0 },
	{ "smarthost_verify", T_INT, R(smarthost_verify), 0, 1 },
	{ "smarthost_tls", T_SHTLS, R(sh_tls), 0, 0 },
	{ NULL, 0, 0, 0, 0, 0 }
};

struct parser {
	const char *file;
	int line;
	char *err;
	size_t errlen;
};

static int perr(struct parser *, const char *, ...) __attribute__((format(printf, 2, 3)));
static int
perr(struct parser *p, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(p->err, p->errlen, "%s:%d: ", p->file, p->line);

	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < p->errlen)
		vsnprintf(p->err + n, p->errlen - n, fmt, ap);
	va_end(ap);
	return -1;
}

/* Split a line into at most 4 tokens, unquoting in place.  -1 on a quote
 * left open. */
static int
tokenize(char *s, char **tok, int max, int *ntok)
{
	char *d;
	int n = 0;

	for (;;) {
		while (*s == ' ' || *s == '\t' || *s == '\r')
			s++;
		if (*s == '\0' || *s == '#' || *s == '\n')
			break;
		if (n == max)
			return -2;
		tok[n++] = d = s;
		while (*s && *s != ' ' && *s != '\t' && *s != '\r' && *s != '\n') {
			char q = *s;
			if (q == '\'' || q == '"') {
				for (s++; *s != q; s++) {
					if (*s == '\0' || *s == '\n')
						return -1;
					if (q == '"' && *s == '\\' && s[1] && s[1] != '\n')
						s++;
					*d++ = *s;
				}
				s++;
			} else {
				*d++ = *s++;
			}
		}
		if (*s)
			s++;
		*d = '\0';
	}
	*ntok = n;
	return 0;
}

static int set_opt(struct parser *, const struct opt *, void *, const char *, const char *, int);

static int
set_main(struct parser *p, struct cfg *c, const char *key, const char *val, int islist)
{
	int r;

	if (!strcmp(key, "cleartext_auth_net") || !strcmp(key, "relay_net")) {
		int *n = key[0] == 'r' ? &c->nrelay_net : &c->ncleartext_auth_net;
		struct net *t = key[0] == 'r' ? c->relay_net : c->cleartext_auth_net;
		if (*n == MAX_NETS)
			return perr(p, "too many %s entries (%d)", key, MAX_NETS);
		if (net_parse(val, &t[(*n)++]) < 0)
			return perr(p, "list %s: '%s' is not an address or CIDR", key, val);
		return 0;
	}
	/* it goes into greetings and headers, and may be the local domain */
	if (!strcmp(key, "hostname") && (!*val || strpbrk(val, " @\t<>()[]\\\"")))
		return perr(p, "option hostname: '%s' is not a host name", val);
	if (!strcmp(key, "domain")) {
		if (c->ndomain == CONFIG_MAX_DOMAINS)
			return perr(p, "too many domains (Kconfig MAX_DOMAINS is %d)", CONFIG_MAX_DOMAINS);
		if (!*val || strlen(val) >= sizeof(c->domain[0]) || strchr(val, ' ') || strchr(val, '@'))
			return perr(p, "option domain: bad domain '%s'", val);
		strlcpy_k(c->domain[c->ndomain++], val, sizeof(c->domain[0]));
		return 0;
	}
	if ((r = set_opt(p, main_opts, c, key, val, islist)) != 1 ||
	    (r = set_opt(p, route_opts, &c->route[0], key, val, islist)) != 1)	/* the default route */
		return r;
	return perr(p, "unknown option '%s' in config kotak", key);
}

/* An option of a table into the struct at base: 0, -1 bad value, 1 not
 * in the table. */
static int
set_opt(struct parser *p, const struct opt *o, void *base, const char *key, const char *val, int islist)
{
	unsigned long long v;
	char *c = base;

	for (; o->name; o++)
		if (!strcmp(o->name, key))
			break;
	if (!o->name)
		return 1;
	if (islist)
		return perr(p, "option %s takes one value: use 'option', not 'list'", key);
	switch (o->type) {
	case T_STR:
		if (strlen(val) >= o->size)
			return perr(p, "option %s: value too long (max %d)", key, o->size - 1);
		strlcpy_k(c + o->off, val, o->size);
		break;
	case T_INT:
		if (parse_uint(val, (unsigned long long)o->max, &v) < 0 || (long long)v < o->min)
			return perr(p, "option %s: '%s' is not a number from %lld to %lld", key, val, o->min, o->max);
		if (o->size == sizeof(long long))
			*(long long *)(c + o->off) = (long long)v;
		else
			*(int *)(c + o->off) = (int)v;
		break;
	case T_LOG:
		if (!strcmp(val, "stderr"))
			*(int *)(c + o->off) = 0;
		else if (!strcmp(val, "syslog") && ENABLE_SYSLOG)
			*(int *)(c + o->off) = 1;
		else
			return perr(p, "option log: '%s' is not stderr%s", val, ENABLE_SYSLOG ? " or syslog" : "");
		break;
	case T_SHTLS:
		if (!strcmp(val, "auto"))
			*(int *)(c + o->off) = SH_TLS_AUTO;
		else if (!strcmp(val, "implicit"))
			*(int *)(c + o->off) = SH_TLS_IMPLICIT;
		else if (!strcmp(val, "starttls"))
			*(int *)(c + o->off) = SH_TLS_STARTTLS;
		else
			return perr(p, "option smarthost_tls: '%s' is not auto, implicit or starttls", val);
		break;
	}
	return 0;
}

static int
set_listen(struct parser *p, struct cfg_listen *l, const char *key, const char *val)
{
	unsigned long long v;
	unsigned char a[16];
	int i;

	if (!strcmp(key, "proto")) {
		for (i = 0; i < PROTO_NUM; i++)
			if (!strcmp(val, proto_names[i]) && proto_built[i])
				break;
		if (i == PROTO_NUM)
			return perr(p, "option proto: '%s' is not a protocol of this build", val);
		l->proto = i;
	} else if (!strcmp(key, "address")) {
		if (inet_pton(AF_INET, val, a) != 1 && (!ENABLE_IPV6 || inet_pton(AF_INET6, val, a) != 1))
			return perr(p, "option address: '%s' is not an IP%s address", val, ENABLE_IPV6 ? "v4 or IPv6" : "v4");
		strlcpy_k(l->addr, val, sizeof(l->addr));
	} else if (!strcmp(key, "port")) {
		if (parse_uint(val, 65535, &v) < 0 || v == 0)
			return perr(p, "option port: '%s' is not a port number", val);
		l->port = (int)v;
	} else {
		return perr(p, "unknown option '%s' in config listen", key);
	}
	return 0;
}

static int
add_alias(struct parser *p, struct cfg *c, const char *name, const char *to)
{
	struct cfg_alias *a;
	const char *at = strrchr(to, '@');

	if (c->nalias == CONFIG_MAX_ALIASES)
		return perr(p, "too many aliases (Kconfig MAX_ALIASES is %d)", CONFIG_MAX_ALIASES);
	/* a remote target goes into RCPT TO as it stands: plain addresses only */
	if (strlen(to) >= sizeof(a->to) || !*to || strpbrk(to, " <>,;\"\\()[]\t") ||
	    (at && (at == to || !at[1])))
		return perr(p, "list to: bad address '%s'", to);
	a = &c->alias[c->nalias++];
	strlcpy_k(a->name, name, sizeof(a->name));
	strlcpy_k(a->to, to, sizeof(a->to));
	a->line = p->line;
	return 0;
}

static int
local_domain(const struct cfg *c, const char *d)
{
	int i;

	for (i = 0; i < c->ndomain; i++)
		if (strcaseeq(c->domain[i], d))
			return 1;
	return 0;
}

/* Alias i's local target, or NULL (a remote one); into t. */
static const char *
alias_local(const struct cfg *c, int i, char *t)
{
	const char *at = strrchr(c->alias[i].to, '@');

	if (at && !local_domain(c, at + 1))
		return NULL;
	strlcpy_k(t, c->alias[i].to, ADDR_MAX);
	if (at)
		t[at - c->alias[i].to] = '\0';
	return t;
}

/* The longest chain of aliases from the one whose first entry is i, as
 * addr.c's expand() follows them; -1 on a loop.  Memoised in adepth (0
 * unknown, -1 on the path), so a config costs its size, not its paths. */
static signed char adepth[CONFIG_MAX_ALIASES];

static int
alias_walk(const struct cfg *c, int i)
{
	char t[ADDR_MAX];
	int j, k, r, d = 1;

	if (adepth[i])
		return adepth[i];
	adepth[i] = -1;
	for (j = i; j < c->nalias; j++) {
		if (!strcaseeq(c->alias[j].name, c->alias[i].name) || !alias_local(c, j, t) ||
		    strcaseeq(t, c->alias[i].name))	/* remote, or the user of that name */
			continue;
		for (k = 0; k < c->nalias && !strcaseeq(c->alias[k].name, t); k++)
			;
		if (k < c->nalias && ((r = alias_walk(c, k)) < 0 || (d = d > r + 1 ? d : r + 1) > 9))
			return -1;
	}
	return adepth[i] = d;
}

/* Aliases that would fail every RCPT to them (451 forever) are errors at
 * load: a loop or more than 9 levels, a local target that cannot be a user
 * name ("../x"), forwarding in a build without the relay. */
static int
alias_check(const char *path, const struct cfg *c, char *err, size_t errlen)
{
	char t[ADDR_MAX];
	int i;

	memset(adepth, 0, sizeof(adepth));
	for (i = 0; i < c->nalias; i++) {
		const char *why = NULL;
		if (!alias_local(c, i, t))
			why = ENABLE_RELAY ? NULL : "forwarding needs the relay (Kconfig RELAY)";
		else if (!user_name_ok(t))
			why = "the target is not a user name (letters, digits, . _ -)";
		else if (alias_walk(c, i) < 0)
			why = "the alias loops, or nests deeper than 9 levels";
		if (why) {
			snprintf(err, errlen, "%s:%d: alias '%s' -> '%s': %s", path, c->alias[i].line,
			    c->alias[i].name, c->alias[i].to, why);
			return -1;
		}
	}
	return 0;
}

static void
cfg_defaults(struct cfg *c)
{
	memset(c, 0, sizeof(*c));
	strlcpy_k(c->data_dir, "/srv/kotak", sizeof(c->data_dir));
	strlcpy_k(c->users_file, "/etc/kotak/users", sizeof(c->users_file));
	c->max_message_size = 26214400;
	c->max_recipients = 100 < CONFIG_MAX_RCPT ? 100 : CONFIG_MAX_RCPT;
	c->max_sessions = 100 < CONFIG_MAX_CONNS ? 100 : CONFIG_MAX_CONNS;
	c->max_per_ip = 20;
	c->max_errors = 10;
	c->timeout = 300;
	c->data_timeout = 600;
	c->login_timeout = 60;
	c->auth_fail_rate = 5;
	c->relay_port = 25;
	c->relay_connect_timeout = 30;	/* Postfix smtp_connect_timeout */
	c->relay_greeting_timeout = 300;	/* smtp_helo_timeout */
	c->relay_attempt_timeout = 600;
	c->retry_min = 300;	/* Postfix minimal_backoff_time */
	c->retry_max = 4000;	/* maximal_backoff_time */
	c->queue_lifetime = 432000;	/* maximal_queue_lifetime: 5 days */
	c->delay_warning = 14400;	/* 4 h, as OpenSMTPD warns (Postfix: off) */
	c->route[0].smarthost_verify = 1;
	strlcpy_k(c->ca_file, "/etc/ssl/certs/ca-certificates.crt", sizeof(c->ca_file));
}

/* option smarthost: "host", "host:port", "1.2.3.4:port", "[v6]" or
 * "[v6]:port"; the port defaults to 587 (submission).  A password goes
 * only over TLS, so it needs TLS in the build and both user and file. */
static int
smarthost_parse(struct cfg_route *c, char *err, size_t errlen)
{
	char h[sizeof(c->smarthost)], *p, *colon;
	unsigned long long v = 587;
	unsigned char a[16];

	if (!c->smarthost[0]) {
		if (c->smarthost_user[0] || c->smarthost_password_file[0]) {
			snprintf(err, errlen, "smarthost_user and smarthost_password_file need option smarthost");
			return -1;
		}
		return 0;
	}
	if (!ENABLE_RELAY) {
		snprintf(err, errlen, "option smarthost: this build has no relay (Kconfig RELAY)");
		return -1;
	}
	strlcpy_k(h, c->smarthost, sizeof(h));
	p = h;
	if (*p == '[') {
		if ((colon = strchr(p, ']')) == NULL || (colon[1] && colon[1] != ':'))
			goto bad;
		*colon++ = '\0';
		p++;
		if (inet_pton(AF_INET6, p, a) != 1 || !ENABLE_IPV6)
			goto bad;
		colon = *colon ? colon : NULL;
	} else {
		colon = strchr(p, ':');
		if (colon && strchr(colon + 1, ':'))
			goto bad;	/* a bare IPv6 address: brackets, please */
	}
	if (colon) {
		*colon++ = '\0';
		if (parse_uint(colon, 65535, &v) < 0 || v == 0)
			goto bad;
	}
	if (!*p || strlen(p) >= sizeof(c->sh_host) || strpbrk(p, " /@"))
		goto bad;
	strlcpy_k(c->sh_host, p, sizeof(c->sh_host));
	c->sh_port = (int)v;
	if (c->sh_tls == SH_TLS_AUTO)
		c->sh_tls = v == 465 ? SH_TLS_IMPLICIT : SH_TLS_STARTTLS;
	if (!c->smarthost_user[0] != !c->smarthost_password_file[0]) {
		snprintf(err, errlen, "option smarthost: smarthost_user and smarthost_password_file go together");
		return -1;
	}
	if (!ENABLE_TLS) {
		snprintf(err, errlen, "option smarthost: this build has no TLS (Kconfig TLS)");
		return -1;
	}
	if (c->smarthost_verify && !ENABLE_RELAY_VERIFY) {
		snprintf(err, errlen, "option smarthost: this build cannot verify certificates"
		    " (Kconfig RELAY_VERIFY): set option smarthost_verify '0'");
		return -1;
	}
	return 0;
bad:
	snprintf(err, errlen, "option smarthost: '%s' is not host, host:port or [IPv6]:port", c->smarthost);
	return -1;
}

/* Alias sections are collected here until their `name` is known. */
static char pend_to[32][ADDR_MAX];
static int pend_line[32];

/* One line into b (at most n-1 bytes and its NUL, LF kept): its length, 0
 * at the end, -1 too long, -2 a NUL byte (a binary file, /dev/zero).
 * fgets into a buffer of LFs: its own NUL is the last one there. */
static int
read_line(FILE *f, char *b, int n)
{
	int i;

	memset(b, '\n', n);
	if (fgets(b, n, f) == NULL)
		return 0;
	for (i = n - 1; b[i]; i--)
		;
	if ((size_t)i != strlen(b))
		return -2;
	return i == n - 1 && b[i - 1] != '\n' ? -1 : i;
}

int
cfg_load(const char *path, struct cfg *c, char *err, size_t errlen)
{
	struct parser p = { path, 0, err, errlen };
	char line[1024], *tok[4], aname[USER_MAX];
	int sec = SEC_NONE, ntok = 0, r, npend = 0, i, aline = 0, got;
	struct stat st;
	FILE *f;

	cfg_defaults(c);
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		return -1;
	}
	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	aname[0] = '\0';
	for (;;) {
		p.line++;
		if ((got = read_line(f, line, sizeof(line))) < 0) {
			perr(&p, got == -1 ? "line too long" : "NUL byte (not a text file)");
			goto fail;
		}
		r = got ? tokenize(line, tok, 4, &ntok) : (ntok = 0);
		if (r == -1)
			r = perr(&p, "unterminated quote");
		else if (r == -2)
			r = perr(&p, "too many words");
		if (r < 0)
			goto fail;
		for (i = 0; i < ntok; i++)
			if (has_ctl(tok[i]) && (perr(&p, "control character in '%s'", tok[0]), 1))
				goto fail;
		/* a new section (or EOF) closes a pending alias section */
		if (sec == SEC_ALIAS && (!got || (ntok && !strcmp(tok[0], "config")))) {
			int save = p.line;
			p.line = aline;
			if (!aname[0] && (perr(&p, "config alias without option name"), 1))
				goto fail;
			if (!npend && (perr(&p, "config alias '%s' has no 'list to'", aname), 1))
				goto fail;
			for (i = 0; i < npend; i++)
				if ((p.line = pend_line[i]), add_alias(&p, c, aname, pend_to[i]) < 0)
					goto fail;
			p.line = save;
			sec = SEC_NONE;
		}
		if (!got)
			break;
		if (ntok == 0)
			continue;
		if (!strcmp(tok[0], "package"))
			continue;
		if (!strcmp(tok[0], "config")) {
			if (ntok < 2 || ntok > 3)
				r = perr(&p, "usage: config TYPE [NAME]");
			else if (!strcmp(tok[1], "kotak"))
				sec = SEC_MAIN;
			else if (!strcmp(tok[1], "listen")) {
				if (c->nlisten == CONFIG_MAX_LISTEN)
					r = perr(&p, "too many listen sections (Kconfig MAX_LISTEN is %d)", CONFIG_MAX_LISTEN);
				else {
					struct cfg_listen *l = &c->listen[c->nlisten++];
					l->proto = -1;
					strlcpy_k(l->addr, "0.0.0.0", sizeof(l->addr));
					sec = SEC_LISTEN;
				}
			} else if (!strcmp(tok[1], "route")) {
				if (c->nroute == MAX_ROUTES)
					r = perr(&p, "too many route sections (%d)", MAX_ROUTES);
				else {
					memset(&c->route[++c->nroute], 0, sizeof(c->route[0]));
					c->route[c->nroute].smarthost_verify = 1;
					sec = SEC_ROUTE;
				}
			} else if (!strcmp(tok[1], "alias")) {
				sec = SEC_ALIAS;
				aname[0] = '\0';
				npend = 0;
				aline = p.line;
			} else
				r = perr(&p, "unknown section type '%s'", tok[1]);
			if (r < 0)
				goto fail;
			continue;
		}
		if (strcmp(tok[0], "option") && strcmp(tok[0], "list")) {
			perr(&p, "unknown keyword '%s'", tok[0]);
			goto fail;
		}
		if (ntok != 3) {
			perr(&p, "usage: %s NAME VALUE", tok[0]);
			goto fail;
		}
		switch (sec) {
		case SEC_NONE:
			r = perr(&p, "%s outside a config section", tok[0]);
			break;
		case SEC_MAIN:
			r = set_main(&p, c, tok[1], tok[2], tok[0][0] == 'l');
			break;
		case SEC_LISTEN:
			r = set_listen(&p, &c->listen[c->nlisten - 1], tok[1], tok[2]);
			break;
		case SEC_ROUTE: {
			struct cfg_route *rt = &c->route[c->nroute];
			size_t dl = strlen(rt->domains);
			if (strcmp(tok[1], "domain")) {
				if ((r = set_opt(&p, route_opts, rt, tok[1], tok[2], tok[0][0] == 'l')) == 1)
					r = perr(&p, "unknown option '%s' in config route", tok[1]);
			} else if (!*tok[2] || strpbrk(tok[2], " @") || dl + strlen(tok[2]) + 2 > sizeof(rt->domains)) {
				r = perr(&p, "list domain: bad domain '%s' (or too many for one route)", tok[2]);
			} else {
				snprintf(rt->domains + dl, sizeof(rt->domains) - dl, "%s%s", dl ? " " : "", tok[2]);
			}
			break;
		}
		case SEC_ALIAS:
			if (!strcmp(tok[1], "name")) {
				if (!*tok[2] || strlen(tok[2]) >= sizeof(aname) || strchr(tok[2], '@') || strchr(tok[2], ' '))
					r = perr(&p, "option name: bad alias name '%s'", tok[2]);
				else
					strlcpy_k(aname, tok[2], sizeof(aname));
			} else if (!strcmp(tok[1], "to")) {
				if (npend == (int)(sizeof(pend_to) / sizeof(pend_to[0])))
					r = perr(&p, "too many targets for one alias");
				else if (strlen(tok[2]) >= ADDR_MAX)
					r = perr(&p, "list to: address too long");
				else {
					pend_line[npend] = p.line;
					strlcpy_k(pend_to[npend++], tok[2], ADDR_MAX);
				}
			} else
				r = perr(&p, "unknown option '%s' in config alias", tok[1]);
			break;
		}
		if (r < 0)
			goto fail;
	}
	fclose(f);
	for (i = 0; i < c->nlisten; i++) {
		if (c->listen[i].proto < 0) {
			snprintf(err, errlen, "%s: config listen #%d has no option proto", path, i + 1);
			return -1;
		}
		if (c->listen[i].port == 0)
			c->listen[i].port = proto_ports[c->listen[i].proto];
	}
	if (!c->hostname[0] && gethostname(c->hostname, sizeof(c->hostname) - 1) < 0)
		strlcpy_k(c->hostname, "localhost", sizeof(c->hostname));
	/* it goes into greetings and headers, and may be the local domain */
	if (strpbrk(c->hostname, " @\t<>()[]\\\"") || !c->hostname[0]) {
		snprintf(err, errlen, "%s: option hostname: '%s' is not a host name", path, c->hostname);
		return -1;
	}
	if (c->ndomain == 0)
		strlcpy_k(c->domain[c->ndomain++], c->hostname, sizeof(c->domain[0]));
	for (i = 0; i <= c->nroute; i++) {
		char e[300];
		if (i && (!c->route[i].domains[0] || !c->route[i].smarthost[0])) {
			snprintf(err, errlen, "%s: config route #%d needs list domain and option smarthost", path, i);
			return -1;
		}
		if (smarthost_parse(&c->route[i], err, errlen) < 0) {
			strlcpy_k(e, err, sizeof(e));
			snprintf(err, errlen, "%s: %s%.0d%s%s", path, i ? "config route #" : "", i, i ? ": " : "", e);
			return -1;
		}
	}
	if (alias_check(path, c, err, errlen) < 0)
		return -1;
	if (c->data_dir[0] != '/' || strlen(c->data_dir) > 160) {
		/* 160: room for spool/queue/QID and mail/USER/INBOX.lock in PATH_MAX_K */
		snprintf(err, errlen, "%s: option data_dir must be an absolute path of at most 160 bytes", path);
		return -1;
	}
	return 0;
fail:
	fclose(f);
	return -1;
}

int
cfg_is_local_domain(const char *d)
{
	int i;

	for (i = 0; i < cfg.ndomain; i++)
		if (strcaseeq(cfg.domain[i], d))
			return 1;
	return 0;
}

/* The route whose list domain names d (any case), else 0. */
int
cfg_route_for(const char *d)
{
	size_t n = strlen(d);
	const char *l;
	int i;

	for (i = 1; i <= cfg.nroute; i++)
		for (l = cfg.route[i].domains; *l; l += *l == ' ') {
			if (!strncasecmp(l, d, n) && (l[n] == ' ' || !l[n]))
				return i;
			while (*l && *l != ' ')
				l++;
		}
	return 0;
}

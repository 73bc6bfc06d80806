/*
 * rpc.c: `kotak rpc list` and `kotak rpc call METHOD`, the hook web UIs
 * call: LuCI through rpcd (/usr/libexec/rpcd/kotak runs `kotak rpc "$@"`),
 * board/www through its CGI.
 *
 * rpcd's exec-plugin protocol: `list` prints one JSON object naming each
 * method with its arguments and an example value of each ("str": rpcd
 * makes it a string argument); `call M` reads one JSON object (the
 * arguments, perhaps with rpcd's ubus_rpc_session) and prints one JSON
 * object, {"error": "..."} when it fails (exit 1: rpcd reads only stdout).
 * rpcd checks no types, so everything is checked here: the input is at
 * most 64 KiB of strict JSON, arguments are known and strings, and a value
 * that can reach the config file, a header or a protocol line holds no
 * control character (CR, LF, NUL, ...) and no ' (UCI writes it as '\''
 * which kotak's config reader does not take).  A bad call changes nothing.
 *
 * Read-only methods answer from the files with the daemon down.  A running
 * daemon is told of changes as by hand: SIGHUP (users, config, password
 * file; it rereads them without dropping sessions), SIGUSR1 (queue flush).
 * Its sessions, listeners and recent warnings come from its status socket
 * (ctl.c).  Passwords come only in the JSON: never on a command line,
 * never logged, hashed here.
 */
#include "kotak.h"

#if ENABLE_RPC
#include "json.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#define IN_MAX		65536
#define TOK_MAX		4096
#define A_NEED		1	/* argument flags */
#define A_ANY		2	/* a ' is fine: the value never reaches the config file */
#define A_TEXT		4	/* a whole file: line ends and any byte but NUL */

struct method {
	const char *name, *sig;
	int	(*fn)(const struct method *);
	int	 need_cfg;
};

static char in[IN_MAX + 1], text[IN_MAX + 1];
static struct jtok tok[TOK_MAX];
static const char *cfg_path;

int	 main(int, char **);

static int fail(const char *, ...) __attribute__((format(printf, 1, 2)));
static int
fail(const char *fmt, ...)
{
	char m[700];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m, sizeof(m), fmt, ap);
	va_end(ap);
	fputs("{\"error\":", stdout);
	json_str(stdout, m);
	puts("}");
	return -1;
}

/* String argument key into out: 0, 1 absent (not A_NEED), -1 failed. */
static int
arg(const char *key, char *out, size_t n, int flags)
{
	int i = json_get(in, tok, 0, key);

	*out = '\0';
	if (i < 0)
		return flags & A_NEED ? fail("missing argument '%s'", key) : 1;
	if (tok[i].type != JT_STR)
		return fail("argument '%s' must be a string", key);
	if (json_strv(in, tok, i, out, n) < 0)
		return fail("argument '%s' is longer than %d bytes or holds a NUL", key, (int)n - 1);
	if (!(flags & A_TEXT) && (has_ctl(out) || (!(flags & A_ANY) && strchr(out, '\''))))
		return fail("argument '%s' holds a control character (CR, LF, ...)%s", key,
		    flags & A_ANY ? "" : " or a '");
	return 0;
}

/* {"ok":true} and, when a daemon runs, SIGHUP it so it rereads what changed. */
static int
ok(int hup)
{
	pid_t pid = hup ? pidfile_running() : 0;

	printf("{\"ok\":true%s}\n", !hup ? "" : pid > 0 && kill(pid, SIGHUP) == 0 ?
	    ",\"reloaded\":true" : ",\"reloaded\":false");
	return 0;
}

/* fd `from` (kept open) as fd `to`. */
static void
move_fd(int from, int to)
{
	close(to);
	fcntl(from, F_DUPFD, to);
}

/* fn() with stdout and stderr into a pipe: its result, its output in out
 * (a line or two: far less than the pipe holds). */
static int
captured(int (*fn)(void), char *out, size_t n)
{
	int p[2], o, e, r;
	ssize_t got;

	fflush(stdout);
	if (pipe(p) < 0) {
		snprintf(out, n, "pipe: %s", strerror(errno));
		return -1;
	}
	o = dup(1);
	e = dup(2);
	move_fd(p[1], 1);
	move_fd(p[1], 2);
	close(p[1]);
	r = fn();
	fflush(stdout);
	move_fd(o, 1);
	move_fd(e, 2);
	close(o);
	close(e);
	got = read(p[0], out, n - 1);
	out[got > 0 ? got : 0] = '\0';
	close(p[0]);
	return r;
}

/* `kotak -c check_path -t`, in this process: it only loads and reports. */
static char *check_path;

static int
run_check(void)
{
	char *av[] = { "kotak", "-c", check_path, "-t", NULL };

	optind = 1;
	return main(4, av);
}

/* data into a new file beside path, fsynced: its name in tmp.  With keep,
 * the mode and owner of path when it exists, else mode. */
static int
write_tmp(const char *path, char *tmp, size_t tn, const char *data, size_t len, mode_t mode, int keep)
{
	const char *b = strrchr(path, '/');
	struct stat st;
	int fd, e;

	b = b ? b + 1 : path;
	snprintf(tmp, tn, "%.*s.%s.rpc%d", (int)(b - path), path, b, (int)getpid());
	if (keep && stat(path, &st) == 0)
		mode = st.st_mode & 07777;
	unlink(tmp);
	umask(0);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	umask(077);
	if (fd < 0)
		return -1;
	if (keep && fchown(fd, st.st_uid, st.st_gid) < 0) {
		/* not root: the file stays ours */
	}
	if (write(fd, data, len) != (ssize_t)len || fsync(fd) < 0) {
		e = errno;
		close(fd);
		unlink(tmp);
		errno = e;
		return -1;
	}
	return close(fd);
}

/* tmp over path, durably. */
static int
put_tmp(const char *tmp, const char *path)
{
	char d[PATH_MAX_K + 16];

	if (rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return fail("%s: %s", path, strerror(e));
	}
	snprintf(d, sizeof(d), "%s", path);
	if (strrchr(d, '/'))
		*strrchr(d, '/') = '\0';
	fsync_dir(strchr(path, '/') ? d : ".");
	return 0;
}

/* ---- methods ---- */

static int
m_status(const struct method *m)
{
	static char d[16384];
	char p[PATH_MAX_K + 40];
	unsigned long long oldest = 0, a;
	int n = -1, nq = 0, nd = 0;
	pid_t pid = pidfile_running();
	struct statvfs sv;
	struct dirent *de;
	struct stat st;
	time_t t = time(NULL);
	size_t end;
	DIR *dir;

	/* the daemon's own members; tok is free again (status takes no arguments) */
	if (pid > 0 && (n = ctl_query(pid, d, sizeof(d))) > 0 &&
	    (json_parse(d, (size_t)n, tok, TOK_MAX, &end) <= 0 || tok[0].type != JT_OBJ || !tok[0].n))
		n = -1;
	printf("{\"running\":%s,\"features\":\"%s\",\"hostname\":", pid > 0 ? "true" : "false", KOTAK_FEATURES);
	json_str(stdout, cfg.hostname);
	if (n > 0)
		printf(",%.*s", tok[0].len - 2, d + tok[0].start + 1);
	else	/* down, or a daemon without the socket (an older kotak) */
		printf(",\"pid\":%d,\"version\":\"%s\",\"sessions\":{},\"listeners\":[],\"errors\":[]",
		    (int)pid, KOTAK_VERSION);
	/* the queue from its directory: names begin with the arrival time, and
	 * a file's mtime is its next attempt (queue.c) */
	snprintf(p, sizeof(p), "%s/spool/queue", cfg.data_dir);
	if ((dir = opendir(p)) != NULL) {
		while ((de = readdir(dir)) != NULL) {
			if (strlen(de->d_name) != QID_LEN || strspn(de->d_name, "0123456789abcdef") != QID_LEN)
				continue;
			nq++;
			snprintf(p, 9, "%s", de->d_name);
			a = strtoull(p, NULL, 16);
			if (!oldest || a < oldest)
				oldest = a;
			if (fstatat(dirfd(dir), de->d_name, &st, 0) == 0 && st.st_mtime > t)
				nd++;
		}
		closedir(dir);
	}
	printf(",\"queue\":{\"messages\":%d,\"deferred\":%d,\"oldest_age\":", nq, nd);
	if (nq)
		printf("%lld}", (long long)t - (long long)oldest);
	else
		printf("null}");
	if (statvfs(cfg.data_dir, &sv) == 0) {
		printf(",\"disk\":{\"path\":");
		json_str(stdout, cfg.data_dir);
		printf(",\"free\":%llu,\"total\":%llu}", (unsigned long long)sv.f_bavail * sv.f_frsize,
		    (unsigned long long)sv.f_blocks * sv.f_frsize);
	}
#if ENABLE_TLS
	{
		struct tls_certinfo ci;
		char err[400];
		int r = tls_cert_info(&ci, err, sizeof(err)), i;

		printf(",\"certificate\":");
		if (r > 0) {
			printf("null");
		} else if (r < 0) {
			printf("{\"error\":");
			json_str(stdout, err);
			putchar('}');
		} else {
			printf("{\"path\":");
			json_str(stdout, ci.path);
			printf(",\"subject\":");
			json_str(stdout, ci.subject);
			printf(",\"not_after\":%lld,\"expired\":%s,\"sha256\":\"", ci.not_after,
			    ci.not_after < (long long)t ? "true" : "false");
			for (i = 0; i < 32; i++)
				printf("%02X%s", ci.sha256[i], i < 31 ? ":" : "\"}");
		}
	}
#endif
	puts("}");
	return 0;
}

static int
m_user_list(const struct method *m)
{
	char err[400];
	const char *u;
	int i;

	if (users_load(cfg.users_file, err, sizeof(err)) < 0)
		return fail("%s", err);
	printf("{\"users\":[");
	for (i = 0; (u = users_name(i)) != NULL; i++) {
		printf(i ? "," : "");
		json_str(stdout, u);
	}
	puts("]}");
	return 0;
}

/* user_add, user_passwd, user_del */
static int
m_user(const struct method *m)
{
	char name[USER_MAX + 1], pw[256], err[400];
	int op = m->name[5], r;

	if (arg("name", name, sizeof(name), A_NEED) < 0 ||
	    (op != 'd' && arg("password", pw, sizeof(pw), A_NEED | A_ANY) < 0))
		return -1;
	r = users_edit(cfg.users_file, op, name, op != 'd' ? pw : NULL, err, sizeof(err));
	memset(pw, 0, sizeof(pw));
	return r < 0 ? fail("%s", err) : ok(1);
}

static int
m_queue_list(const struct method *m)
{
	char p[PATH_MAX_K + 40], *a[] = { "queue", "list", "-j", NULL };

	snprintf(p, sizeof(p), "%s/spool/queue", cfg.data_dir);
	if (access(p, R_OK | X_OK) < 0 && errno != ENOENT)
		return fail("%s: %s", p, strerror(errno));
	fputs("{\"queue\":", stdout);
	queue_cmd(3, a);
	puts("}");
	return 0;
}

static int
m_queue_flush(const struct method *m)
{
	pid_t pid = pidfile_running();

	if (pid <= 0 || kill(pid, SIGUSR1) < 0)
		return fail("kotak is not running (it delivers the queue when it starts)");
	return ok(0);
}

static int
m_queue_del(const struct method *m)
{
	char id[QID_LEN + 2], err[400];

	if (arg("id", id, sizeof(id), A_NEED) < 0)
		return -1;
	return queue_del(id, err, sizeof(err)) < 0 ? fail("%s", err) : ok(0);
}

/* A message to `to` through kotak sendmail, fed through a pipe (a few
 * hundred bytes: the pipe holds them); its error caught for the answer. */
static char *mail_to;

static int
run_sendmail(void)
{
	char *av[] = { "sendmail", "-i", "--", mail_to, NULL };

	return submit_sendmail(cfg_path, 4, av);
}

static int
m_test_mail(const struct method *m)
{
	char to[ADDR_MAX], msg[ADDR_MAX * 2 + 600], e[600], *p;
	int ip[2], l;

	if (arg("to", to, sizeof(to), A_NEED | A_ANY) < 0)
		return -1;
	if (!*to || *to == '-' || strchr(to, ' '))
		return fail("'%s' is not an address", to);
	l = snprintf(msg, sizeof(msg), "Subject: kotak test message\nTo: <%s>\n\n"
	    "This is a test message from the kotak mail server on %s:\ndelivery to %s works.\n",
	    to, cfg.hostname, to);
	if (pipe(ip) < 0 || write(ip[1], msg, (size_t)l) != l)
		return fail("pipe: %s", strerror(errno));
	close(ip[1]);
	move_fd(ip[0], 0);
	close(ip[0]);
	mail_to = to;
	if (captured(run_sendmail, e, sizeof(e))) {
		e[strcspn(e, "\n")] = '\0';
		p = strncmp(e, "kotak: sendmail: ", 17) ? e : e + 17;
		return fail("%s", *p ? p : "kotak sendmail failed");
	}
	printf("{\"id\":\"%s\"}\n", submit_qid);
	return 0;
}

static int
m_config_check(const struct method *m)
{
	char out[4096], tmp[PATH_MAX_K + 64];
	int i, r;

	check_path = (char *)cfg_path;
	if ((i = arg("config", text, sizeof(text), A_TEXT)) < 0)
		return -1;
	if (i == 0) {
		if (write_tmp(cfg_path, tmp, sizeof(tmp), text, strlen(text), 0600, 0) < 0)
			return fail("%s: %s", tmp, strerror(errno));
		check_path = tmp;
	}
	r = captured(run_check, out, sizeof(out));
	if (i == 0)
		unlink(tmp);
	printf("{\"ok\":%s,\"output\":", r == 0 ? "true" : "false");
	json_str(stdout, out);
	puts("}");
	return 0;
}

/* The config file as it stands: {"config": "TEXT"}. */
static int
m_config_get(const struct method *m)
{
	ssize_t n = 0, r;
	int fd;

	if ((fd = open(cfg_path, O_RDONLY | O_CLOEXEC)) < 0)
		return fail("%s: %s", cfg_path, strerror(errno));
	while (n < IN_MAX && (r = read(fd, text + n, IN_MAX - n)) > 0)
		n += r;
	close(fd);
	if (n >= IN_MAX)
		return fail("%s: larger than %d bytes", cfg_path, IN_MAX);
	text[n] = '\0';
	fputs("{\"config\":", stdout);
	json_str(stdout, text);
	puts("}");
	return 0;
}

/* A whole new config file (UCI text, as uci writes it): written beside
 * the file, checked with `kotak -t` (which refuses control characters in
 * any value, and anything it cannot read), then renamed over it; a
 * running daemon reloads it.  A config that fails changes nothing. */
static int
m_config_set(const struct method *m)
{
	char tmp[PATH_MAX_K + 64], out[4096];

	if (arg("config", text, sizeof(text), A_NEED | A_TEXT) < 0)
		return -1;
	if (write_tmp(cfg_path, tmp, sizeof(tmp), text, strlen(text), 0644, 1) < 0)
		return fail("%s: %s", tmp, strerror(errno));
	check_path = tmp;
	if (captured(run_check, out, sizeof(out)) != 0) {
		unlink(tmp);
		printf("{\"error\":\"the new config does not pass kotak -t: nothing changed\",\"output\":");
		json_str(stdout, out);
		puts("}");
		return -1;
	}
	if (put_tmp(tmp, cfg_path) < 0)
		return -1;
	if (cfg_load(cfg_path, &cfg, out, sizeof(out)) < 0)	/* passed -t: cannot fail */
		return fail("%s", out);
	return ok(1);
}

/* The password of config kotak's smarthost into its smarthost_password_file
 * (0600, kotak's user's: the daemon rereads it as that user). */
static int
m_smarthost_password(const struct method *m)
{
	char pw[258], tmp[PATH_MAX_K + 64];
	const char *f = cfg.route[0].smarthost_password_file;
	size_t l;
	int r;

	if (arg("password", pw, sizeof(pw) - 1, A_NEED | A_ANY) < 0)
		return -1;
	if (!*f)
		return fail("set option smarthost_password_file first");
	if (!*pw)
		return fail("the password must not be empty");
	l = strlen(pw);
	pw[l++] = '\n';
	r = write_tmp(f, tmp, sizeof(tmp), pw, l, 0600, 0);
	memset(pw, 0, sizeof(pw));
	if (r < 0)
		return fail("%s: %s", f, strerror(errno));
	if (give_to_user(tmp) < 0 || put_tmp(tmp, f) < 0) {
		unlink(tmp);
		return fail("%s: cannot hand it to user %s", f, cfg.user);
	}
	return ok(1);
}

static const struct method methods[] = {
	{ "status", "{}", m_status, 1 },
	{ "user_list", "{}", m_user_list, 1 },
	{ "user_add", "{\"name\":\"str\",\"password\":\"str\"}", m_user, 1 },
	{ "user_passwd", "{\"name\":\"str\",\"password\":\"str\"}", m_user, 1 },
	{ "user_del", "{\"name\":\"str\"}", m_user, 1 },
	{ "queue_list", "{}", m_queue_list, 1 },
	{ "queue_flush", "{}", m_queue_flush, 1 },
	{ "queue_del", "{\"id\":\"str\"}", m_queue_del, 1 },
	{ "test_mail", "{\"to\":\"str\"}", m_test_mail, 1 },
	{ "config_check", "{\"config\":\"str\"}", m_config_check, 0 },
	{ "config_get", "{}", m_config_get, 0 },
	{ "config_set", "{\"config\":\"str\"}", m_config_set, 0 },
	{ "smarthost_password", "{\"password\":\"str\"}", m_smarthost_password, 1 },
};
#define NMETHODS	((int)(sizeof(methods) / sizeof(methods[0])))

int
rpc_cmd(const char *path, int argc, char **argv)
{
	const struct method *m;
	char err[400], k[64];
	size_t len = 0, end = 0;
	ssize_t r;
	int nt = JE_SHORT, i, x;

	cfg_path = path;
	if (argc == 2 && !strcmp(argv[1], "list")) {
		for (i = 0; i < NMETHODS; i++)
			printf("%s\"%s\":%s", i ? "," : "{", methods[i].name, methods[i].sig);
		puts("}");
		return 0;
	}
	if (argc != 3 || strcmp(argv[1], "call")) {
		fprintf(stderr, "usage: kotak [-c FILE] rpc list | rpc call METHOD < ARGUMENTS.json\n");
		return 2;
	}
	for (m = methods; m < methods + NMETHODS && strcmp(m->name, argv[2]); m++)
		;
	if (m == methods + NMETHODS)
		return fail("unknown method '%.64s'", argv[2]) < 0;
	/* read until the object is complete (no need to wait for end of input) */
	while (nt == JE_SHORT && len < IN_MAX) {
		if ((r = read(0, in + len, IN_MAX - len)) < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
		in[len] = '\0';
		nt = json_parse(in, len, tok, TOK_MAX, &end);
	}
	if (strspn(in, " \t\r\n") == len) {	/* no arguments at all */
		strcpy(in, "{}");
		nt = json_parse(in, len = 2, tok, TOK_MAX, &end);
	}
	if (nt == JE_SHORT)
		return fail(len >= IN_MAX ? "arguments larger than %d bytes" : "arguments: the JSON ends too early",
		    IN_MAX) < 0;
	if (nt == JE_BIG)
		return fail("arguments: more than %d values or %d levels", TOK_MAX, JSON_DEPTH) < 0;
	if (nt < 0 || strspn(in + end, " \t\r\n") != len - end)
		return fail("arguments: not valid JSON") < 0;
	if (tok[0].type != JT_OBJ)
		return fail("arguments must be a JSON object") < 0;
	for (x = 1, i = 0; i < tok[0].n; i++, x = tok[x + 1].next) {
		char q[70];
		if (json_strv(in, tok, x, k, sizeof(k)) >= 0 && !strcmp(k, "ubus_rpc_session"))
			continue;
		snprintf(q, sizeof(q), "\"%s\"", k);
		if (json_strv(in, tok, x, k, sizeof(k)) < 0 ||
		    strspn(k, "abcdefghijklmnopqrstuvwxyz_") != strlen(k) || !strstr(m->sig, q))
			return fail("%s takes no argument '%.64s'", m->name, k) < 0;
	}
	if (m->need_cfg && cfg_load(cfg_path, &cfg, err, sizeof(err)) < 0)
		return fail("%s", err) < 0;
	i = m->fn(m);
	memset(in, 0, sizeof(in));	/* a password was in there */
	fflush(stdout);
	return i < 0;
}
#endif

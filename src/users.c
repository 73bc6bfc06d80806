/* users.c: the users file (`name:$6$salt$hash` lines, the format of
 * `openssl passwd -6` and Dovecot's passwd-file) kept in memory, and the
 * `kotak user` commands that edit it atomically (temp file + rename). */
#include "kotak.h"
#include "pwhash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HASH_MAX 128
#define STR_(x) #x
#define STR(x) STR_(x)
#define ROUNDS_MAX 20000	/* 4x the default 5000: about 8 ms a login on x86-64, 0.1 s on a router */
struct user {
	char	 name[USER_MAX];
	char	 hash[HASH_MAX];
};
static struct user users[CONFIG_MAX_USERS];
static int nusers;

/* Names double as directory names under mail/: keep them boring. */
int
user_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= USER_MAX || *s == '.' || *s == '-')
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == '-'))
			return 0;
	return 1;
}

/* Parse one line into name and hash; 0 ok, -1 malformed, 1 blank/comment. */
static int
parse_line(char *l, char **name, char **hash)
{
	char *c, *e;

	l[strcspn(l, "\r\n")] = '\0';
	if (*l == '\0' || *l == '#')
		return 1;
	if ((c = strchr(l, ':')) == NULL)
		return -1;
	*c++ = '\0';
	if (!strncmp(c, "{SHA512-CRYPT}", 14))	/* Dovecot's scheme prefix */
		c += 14;
	if ((e = strchr(c, ':')) != NULL)	/* passwd-file: further fields */
		*e = '\0';
	if (!user_name_ok(l) || strncmp(c, "$6$", 3) || strlen(c) >= HASH_MAX)
		return -1;
	*name = l;
	*hash = c;
	/* each login hashes inside the one loop: "rounds=" costs are bounded */
	if (!strncmp(c + 3, "rounds=", 7) && strtoul(c + 10, &e, 10) > ROUNDS_MAX && *e == '$')
		return -2;
	return 0;
}

const char *
users_hash(const char *name)
{
	int i;

	for (i = 0; i < nusers; i++)
		if (!strcmp(users[i].name, name))
			return users[i].hash;
	return NULL;
}

static struct user tmp[CONFIG_MAX_USERS];
static int ntmp;

/* see kotak.h */
void
users_commit(void)
{
	memcpy(users, tmp, ntmp * sizeof(users[0]));
	nusers = ntmp;
}

/* see kotak.h */
int
users_load(const char *path, char *err, size_t errlen)
{
	return users_read(path, err, errlen) < 0 ? -1 : (users_commit(), 0);
}

/* see kotak.h */
int
users_read(const char *path, char *err, size_t errlen)
{
	char line[512], *name, *hash;
	int n = 0, ln = 0, r;
	FILE *f = fopen(path, "r");

	if (f == NULL) {
		if (errno == ENOENT) {	/* no users yet: aliases only */
			ntmp = 0;
			return 0;
		}
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		ln++;
		if ((r = parse_line(line, &name, &hash)) == 1)
			continue;
		if (r < 0 || n == CONFIG_MAX_USERS) {
			snprintf(err, errlen, "%s:%d: %s", path, ln, r == -2 ? "rounds= above " STR(ROUNDS_MAX)
			    " (every login would hold the loop)" : r < 0 ? "expected name:$6$salt$hash" :
			    "too many users (Kconfig MAX_USERS)");
			fclose(f);
			return -1;
		}
		strlcpy_k(tmp[n].name, name, USER_MAX);
		strlcpy_k(tmp[n].hash, hash, HASH_MAX);
		n++;
	}
	fclose(f);
	ntmp = n;
	return 0;
}

const char *
users_find(const char *name)
{
	int i;

	for (i = 0; i < nusers; i++)
		if (strcaseeq(users[i].name, name))
			return users[i].name;
	return NULL;
}

/* Rewrite the file without `skip`, plus `add` if given. */
static int
users_rewrite(const char *path, const char *skip, const char *add, int *found, char *err, size_t errlen)
{
	char tmp[PATH_MAX_K + 16], line[512], copy[512], *name, *hash;
	FILE *in, *out;
	struct stat st;
	int fd;

	*found = 0;
	snprintf(tmp, sizeof(tmp), "%s", path);
	if (strrchr(tmp, '/') && strrchr(tmp, '/') != tmp) {	/* first user: /etc/kotak may not exist */
		*strrchr(tmp, '/') = '\0';
		mkdir_p(tmp, 0755);
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp%d", path, (int)getpid());
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0 ||
	    (out = fdopen(fd, "w")) == NULL) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	/* root edits a file the daemon (option user) reads: keep its owner */
	if (stat(path, &st) == 0 && fchown(fd, st.st_uid, st.st_gid) < 0)
		fprintf(stderr, "kotak: %s: keeping owner: %s\n", path, strerror(errno));
	if ((in = fopen(path, "r")) != NULL) {
		while (fgets(line, sizeof(line), in)) {
			strlcpy_k(copy, line, sizeof(copy));
			if (parse_line(copy, &name, &hash) == 0 && strcaseeq(name, skip)) {
				*found = 1;
				continue;
			}
			fputs(line, out);
			if (line[0] && line[strlen(line) - 1] != '\n')
				fputc('\n', out);
		}
		fclose(in);
	}
	if (add)
		fprintf(out, "%s\n", add);
	if (fflush(out) != 0 || fsync(fd) < 0 || fclose(out) != 0 || rename(tmp, path) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* `user add|passwd|del` on the file at path: op 'a', 'p' or 'd'; pw is the
 * password for 'a' and 'p' (hashed here; it is never stored or logged).
 * 0, or -1 with the reason in err. */
int
users_edit(const char *path, int op, const char *name, const char *pw, char *err, size_t errlen)
{
	char salt[17], hash[HASH_MAX], entry[USER_MAX + HASH_MAX + 2];
	int found;

	if (!user_name_ok(name)) {
		snprintf(err, errlen, "bad user name '%.64s' (letters, digits, . _ -)", name);
		return -1;
	}
	if (users_load(path, err, errlen) < 0)
		return -1;
	if (op == 'a' && users_find(name)) {
		snprintf(err, errlen, "user %s exists (use user passwd)", name);
		return -1;
	}
	if (op != 'a' && !users_find(name)) {
		snprintf(err, errlen, "no user %s", name);
		return -1;
	}
	if (op != 'd') {
		if (!pw || !*pw || has_ctl(pw)) {
			snprintf(err, errlen, "the password must not be empty nor hold control characters");
			return -1;
		}
		pwhash_salt(salt, sizeof(salt));
		if (pwhash_make(pw, salt, hash, sizeof(hash)) < 0) {
			snprintf(err, errlen, "cannot hash the password");
			return -1;
		}
		snprintf(entry, sizeof(entry), "%s:%s", name, hash);
	}
	return users_rewrite(path, name, op != 'd' ? entry : NULL, &found, err, errlen);
}

static int
read_password(char *pw, size_t n)
{
	size_t l;

	if (fgets(pw, n, stdin) == NULL)
		return -1;
	l = strcspn(pw, "\r\n");
	pw[l] = '\0';
	return l ? 0 : -1;
}

int
users_cmd(const char *path, int argc, char **argv)
{
	char err[300], pw[256];
	const char *cmd = argc > 0 ? argv[0] : "";
	int i, r;

	if (!strcmp(cmd, "list") && argc == 1) {
		if (users_load(path, err, sizeof(err)) < 0) {
			fprintf(stderr, "kotak: %s\n", err);
			return 1;
		}
		for (i = 0; i < nusers; i++)
			printf("%s\n", users[i].name);
		return 0;
	}
	if (argc != 2 || (strcmp(cmd, "add") && strcmp(cmd, "passwd") && strcmp(cmd, "del"))) {
		fprintf(stderr, "usage: kotak [-c FILE] user add|passwd|del NAME | user list\n");
		return 2;
	}
	pw[0] = '\0';
	if (cmd[0] != 'd' && read_password(pw, sizeof(pw)) < 0) {
		snprintf(err, sizeof(err), "no password on standard input");
		r = -1;
	} else {
		r = users_edit(path, cmd[0], argv[1], pw, err, sizeof(err));
	}
	memset(pw, 0, sizeof(pw));
	if (r < 0) {
		fprintf(stderr, "kotak: %s\n", err);
		return 1;
	}
	return 0;
}

/* The names of the users loaded, one at a time (for kotak rpc). */
const char *
users_name(int i)
{
	return i < nusers ? users[i].name : NULL;
}

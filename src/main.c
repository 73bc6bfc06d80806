/* main.c: command line, startup, privileges, reload; then the loop. */
#include "kotak.h"
#include "folder.h"
#include "dns.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#ifndef KOTAK_VERSION
#define KOTAK_VERSION "dev"
#endif
#define DEFAULT_CONFIG "/etc/config/kotak"

static const char *cfg_path = DEFAULT_CONFIG;

static void
usage(void)
{
	fprintf(stderr,
	    "usage: kotak [-c FILE]            run in the foreground\n"
	    "       kotak [-c FILE] -t         check the config\n"
	    "       kotak -V                   version and features\n"
	    "       kotak [-c FILE] user add|passwd|del NAME | user list\n"
	    "       kotak [-c FILE] cert       certificate path and SHA-256 fingerprint\n"
	    "       kotak [-c FILE] sendmail [-t] [-i] [-f sender] [-F name] [rcpt ...]\n"
	    "       kotak [-c FILE] queue list [-j] | queue del ID | queue flush\n"
#if ENABLE_RPC
	    "       kotak [-c FILE] rpc list | rpc call METHOD < ARGUMENTS.json\n"
#endif
	    );
	exit(2);
}

/* Warnings that do not stop kotak, for -t and start-up. */
static void
cfg_lint(FILE *out)
{
	char u[4][USER_MAX];
	struct statvfs sv;

	if (alias_expand("postmaster", u, 4) <= 0)
		fprintf(out, "kotak: warning: no user or alias 'postmaster' (RFC 5321 4.5.1 requires one)\n");
	if (statvfs(cfg.data_dir, &sv) == 0 && (long long)sv.f_bavail * (long long)sv.f_frsize < cfg.max_message_size)
		fprintf(out, "kotak: warning: %s has less free space than max_message_size:"
		    " MAIL without SIZE is refused (452 4.3.1)\n", cfg.data_dir);
}

/* SIGHUP: all or nothing.  Everything is read aside under the new config
 * (users, smarthost passwords, CA bundle, new listeners, DNS server, the
 * certificate last); only when all of it is fine does any of it take
 * effect, else the whole running config stays. */
void
main_reload(void)
{
	static struct cfg next, old;
	char err[400];
	int r = 0;

	if (cfg_load(cfg_path, &next, err, sizeof(err)) < 0) {
		log_warnx("reload: %s (keeping the old config)", err);
		/* a user added meanwhile (kotak rpc) still counts */
		if (users_load(cfg.users_file, err, sizeof(err)) < 0)
			log_warnx("reload: %s", err);
		return;
	}
	if (strcmp(next.data_dir, cfg.data_dir))
		log_warnx("reload: data_dir changes need a restart (keeping %s)", cfg.data_dir);
	strlcpy_k(next.data_dir, cfg.data_dir, sizeof(next.data_dir));
	old = cfg;
	cfg = next;	/* the readers below take their paths from cfg */
	if (users_read(cfg.users_file, err, sizeof(err)) < 0)
		goto keep;
#if ENABLE_RELAY
	if (smtp_out_load(err, sizeof(err)) < 0)
		goto keep;
#endif
	if (listen_prepare(&cfg) < 0) {
		snprintf(err, sizeof(err), "cannot open every listener");
		goto keep;
	}
#if ENABLE_RELAY
	if (dns_init(cfg.dns_server[0] ? cfg.dns_server : NULL) < 0) {	/* a bad one keeps the old */
		snprintf(err, sizeof(err), "option dns_server: '%s' is not ADDR, ADDR:PORT or [V6]:PORT",
		    cfg.dns_server);
		goto abort;
	}
#endif
	if (ENABLE_TLS && (r = tls_load(0, err, sizeof(err))) < 0) {
#if ENABLE_RELAY
		dns_init(old.dns_server[0] ? old.dns_server : NULL);
#endif
		goto abort;
	}
	if (r > 0)
		log_warnx("reload: %s (keeping the certificate in use)", err);
	users_commit();
	listen_commit();
#if ENABLE_RELAY
	smtp_out_apply();
#endif
	log_init(cfg.log_syslog);
	log_info("reloaded %s", cfg_path);
	return;
abort:
	listen_abort();
keep:
	cfg = old;
	log_warnx("reload: %s (keeping the whole running config)", err);
}

static void
drop_privileges(void)
{
	struct passwd *pw;

	if (!cfg.user[0] || geteuid() != 0)
		return;
	if ((pw = pw_lookup(cfg.user, 0)) == NULL)
		fatalx("option user: no such user '%s'", cfg.user);
	if (mkdir_p(cfg.data_dir, 0700) == 0 && chown(cfg.data_dir, pw->pw_uid, pw->pw_gid) < 0)
		fatal("chown %s", cfg.data_dir);
	if (setgroups(1, &pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
		fatal("switching to user %s", cfg.user);
}

/* Descriptors inherited at start (a careless init script, a shell's
 * coprocess, a test harness): closed, so kotak holds nothing it did not
 * open and passes nothing on. */
static void
close_inherited(void)
{
	int fd;

	for (fd = 3; fd < FD_SETSIZE; fd++)	/* the loop never selects beyond it */
		close(fd);
}

int
main(int argc, char **argv)
{
	char err[400];
	int c, test = 0;
	const char *base = argc > 0 ? strrchr(argv[0], '/') : NULL;

	/* run as sendmail (a symlink): sendmail's options; KOTAK_CONFIG names the config */
	base = base ? base + 1 : argc > 0 ? argv[0] : "";
	if (!strcmp(base, "sendmail"))
		return submit_sendmail(getenv("KOTAK_CONFIG") && *getenv("KOTAK_CONFIG") ?
		    getenv("KOTAK_CONFIG") : DEFAULT_CONFIG, argc, argv);
	/* '+': options stop at the command (glibc would take sendmail's -t as ours) */
	while ((c = getopt(argc, argv, "+c:tVh")) != -1) {
		switch (c) {
		case 'c':
			cfg_path = optarg;
			break;
		case 't':
			test = 1;
			break;
		case 'V':
			printf("kotak %s\nfeatures: %s%s\nlimits: conns=%d ibuf=%d obuf=%d rcpt=%d\n",
			    KOTAK_VERSION, KOTAK_FEATURES, KOTAK_TEST_HOOKS ? " +test-hooks" : "",
			    CONFIG_MAX_CONNS, CONFIG_IBUF, CONFIG_OBUF, CONFIG_MAX_RCPT);
			return 0;
		default:
			usage();
		}
	}
	if (optind < argc && !strcmp(argv[optind], "sendmail"))
		return submit_sendmail(cfg_path, argc - optind, argv + optind);
	if (optind == argc && !test)
		close_inherited();
#if ENABLE_RPC
	/* before the config is loaded: rpc answers in JSON, even about that */
	if (optind < argc && !strcmp(argv[optind], "rpc"))
		return rpc_cmd(cfg_path, argc - optind, argv + optind);
#endif
	if (cfg_load(cfg_path, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "kotak: %s\n", err);
		return 1;
	}
	if (optind < argc) {
		if (!strcmp(argv[optind], "queue"))
			return queue_cmd(argc - optind, argv + optind);
#if ENABLE_TLS
		if (!strcmp(argv[optind], "cert") && optind + 1 == argc)
			return tls_cert_cmd();
#endif
		if (strcmp(argv[optind], "user"))
			usage();
		return users_cmd(cfg.users_file, argc - optind - 1, argv + optind + 1);
	}
	if (users_load(cfg.users_file, err, sizeof(err)) < 0) {
		fprintf(stderr, "kotak: %s\n", err);
		return 1;
	}
	/* a configured key may be readable by root only: load it before
	 * dropping privileges; the self-signed one is made after, as the user */
	if (cfg.cert[0] && tls_load(0, err, sizeof(err)) < 0) {
		fprintf(stderr, "kotak: %s\n", err);
		return 1;
	}
#if ENABLE_RELAY
	if (dns_init(cfg.dns_server[0] ? cfg.dns_server : NULL) < 0) {
		fprintf(stderr, "kotak: %s: option dns_server: '%s' is not ADDR, ADDR:PORT or [V6]:PORT\n",
		    cfg_path, cfg.dns_server);
		return 1;
	}
	if (smtp_out_load(err, sizeof(err)) < 0) {
		fprintf(stderr, "kotak: %s\n", err);
		return 1;
	}
	smtp_out_apply();
#endif
	if (test) {
		cfg_lint(stdout);
		printf("kotak: %s: ok\n", cfg_path);
		return 0;
	}
	log_init(cfg.log_syslog);
	cfg_lint(stderr);
	loop_init();
	now = mono_now();
	if (listen_prepare(&cfg) < 0)
		fatalx("cannot open all listeners");
	listen_commit();
	drop_privileges();
	umask(077);
	if (queue_init() < 0)
		fatalx("cannot use data_dir %s", cfg.data_dir);
	pidfile_create();
#if ENABLE_RPC
	ctl_open();
#endif
	folder_recover_all();	/* dotlocks, compactions and renames a crash left: before any reader */
	if (!cfg.cert[0] && tls_load(1, err, sizeof(err)) < 0)
		log_warnx("%s: TLS is off until this is fixed", err);
	log_info("kotak %s started, %d listener(s), data_dir %s", KOTAK_VERSION, cfg.nlisten, cfg.data_dir);
	loop_run();
#if ENABLE_RELAY
	smtp_out_stop();
#endif
	listen_close_all();
	for (c = 0; c < CONFIG_MAX_CONNS; c++)
		conn_close(&conns[c]);
	folder_shutdown();	/* flag changes of the last seconds */
	pidfile_remove();
	log_info("kotak stopped");
	return 0;
}

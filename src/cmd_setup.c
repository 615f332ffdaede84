// SPDX-License-Identifier: MIT
/*
 * hutch setup [--check | --uninstall]: what a host needs once, as root, so
 * that users run hutch without sudo.
 *
 * It gives hutch-helper (net/privd.h) its group, mode and file
 * capabilities, creates the `hutch` group and puts the invoking user
 * (SUDO_USER) in it, creates the helper's run directory and registry, and
 * checks the rest of the host: QEMU, virtiofsd, /dev/kvm, nftables,
 * ip_forward, firewalls that would fight hutch's rules.  Every step is
 * idempotent and says what it did; --check changes nothing and exits 78
 * when something is missing.  Groups and users are changed with groupadd,
 * usermod and groupdel (the distribution's own tools keep /etc/group and
 * /etc/gshadow consistent); the capabilities are set with libcap.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/nft.h"
#include "net/privd.h"
#include "share/share.h"
#include "src/cmd.h"
#include "src/log.h"
#include "src/proc.h"
#include "src/util.h"

#ifndef HUTCH_LIBEXECDIR
#define HUTCH_LIBEXECDIR "/usr/local/libexec/hutch"
#endif
#define SETUP_TMPFILES "/etc/tmpfiles.d/hutch.conf"
#define SETUP_HELPER_MAX (64u << 20)

static const char setup_help[] =
	"Prepares this host, once and as root, so that users run hutch without sudo:\n"
	"  - hutch-helper (the only privileged part of hutch) gets owner root:hutch,\n"
	"    mode 0750 and the file capabilities cap_net_admin, cap_net_raw,\n"
	"    cap_net_bind_service, cap_sys_admin, cap_dac_override and cap_setgid\n"
	"    (permitted only; README says why each one);\n"
	"  - the group 'hutch' is created and the invoking user (SUDO_USER, or --user)\n"
	"    is added to it: only its members may run the helper;\n"
	"  - the helper's registry (/run/hutch/registry.json, root's, mode 0600) and a\n"
	"    tmpfiles.d entry that recreates it at boot;\n"
	"  - checks: qemu-system-x86_64, qemu-img, virtiofsd, access to /dev/kvm,\n"
	"    nftables, ip_forward, firewalls that fight hutch's rules.\n"
	"It prints what it did and what is missing, and may be run again at any time.\n"
	"\n"
	"Options:\n"
	"  --check       change nothing; exit 78 when something is missing\n"
	"  --uninstall   take the capabilities away, remove the registry, the\n"
	"                tmpfiles.d entry and the group (refused while VMs run)\n"
	"  --user NAME   the user to add to the group (default: $SUDO_USER)\n"
	"For packagers and test rigs: --helper PATH (default $HUTCH_HELPER or\n"
	HUTCH_LIBEXECDIR "/hutch-helper), --group NAME, --rundir DIR.\n"
	"\n"
	"Exit 75 when VMs still run (--uninstall), 77 when not root, 78 when\n"
	"something is missing.\n"
	"\n"
	"Examples:\n"
	"  sudo hutch setup\n"
	"  hutch setup --check\n";

struct setup {
	bool check;
	bool uninstall;
	bool json;
	const char *user;
	const char *group;
	char helper[PATH_MAX];
	char rundir[PATH_MAX];
	json_t *done, *missing, *warn;
};

static void setup_note(struct setup *s, json_t *list, const char *tag, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* one line of the report: "done:", "missing:", "warning:" or "ok:" */
static void setup_note(struct setup *s, json_t *list, const char *tag, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);	/* a message: cutting it is harmless */
	va_end(ap);
	if (list)
		json_array_append_new(list, json_string(line));
	if (!s->json)
		printf("%-9s %s\n", tag, line);
}

static int setup_run(const char *const *argv)
{
	char *out = NULL;
	int status = 0, rc = proc_run(argv, NULL, &out, 4096, &status);

	if (rc == 0 && proc_exit_code(status) != 0) {
		log_err("%s failed: %s", argv[0], out ? out : "");
		rc = -EIO;
	} else if (rc) {
		log_errno(rc, "running %s", argv[0]);
	}
	free(out);
	return rc;
}

static bool setup_in_group(const char *user, const struct group *g)
{
	struct passwd *pw = getpwnam(user);

	if (pw && pw->pw_gid == g->gr_gid)
		return true;
	for (char **m = g->gr_mem; m && *m; m++)
		if (!strcmp(*m, user))
			return true;
	return false;
}

/* the group, and the user in it */
static void setup_group(struct setup *s)
{
	struct group *g = getgrnam(s->group);

	if (!g && !s->check && !s->uninstall) {
		const char *argv[] = { "groupadd", "--system", s->group, NULL };

		if (setup_run(argv) == 0) {
			setup_note(s, s->done, "done:", "created the group '%s'", s->group);
			g = getgrnam(s->group);
		}
	}
	if (!g) {
		setup_note(s, s->missing, "missing:", "the group '%s' (only its members may run "
			   "hutch-helper)", s->group);
		return;
	}
	if (!s->user || !strcmp(s->user, "root"))
		return;
	if (!getpwnam(s->user)) {
		setup_note(s, s->missing, "missing:", "the user '%s' does not exist", s->user);
		return;
	}
	if (setup_in_group(s->user, g)) {
		setup_note(s, NULL, "ok:", "%s is in the group '%s'", s->user, s->group);
		return;
	}
	if (!s->check) {
		const char *argv[] = { "usermod", "-a", "-G", s->group, s->user, NULL };

		if (setup_run(argv) == 0) {
			setup_note(s, s->done, "done:", "added %s to the group '%s' (log in again, "
				   "or run 'newgrp %s', for it to take effect)", s->user, s->group,
				   s->group);
			return;
		}
	}
	setup_note(s, s->missing, "missing:", "%s is not in the group '%s'", s->user, s->group);
}

/* the helper beside this hutch (a build tree), copied to @s->helper when that is missing */
static int setup_copy_helper(struct setup *s)
{
	char exe[PATH_MAX], src[PATH_MAX + 16], *slash, *buf = NULL, dir[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	size_t len;
	int rc;

	if (n <= 0)
		return -ENOENT;
	exe[n] = 0;
	slash = strrchr(exe, '/');
	if (!slash)
		return -ENOENT;
	*slash = 0;
	if (util_path_join(src, sizeof(src), exe, "hutch-helper") || access(src, R_OK) < 0 ||
	    !strcmp(src, s->helper))
		return -ENOENT;
	if ((rc = util_read_file(src, SETUP_HELPER_MAX, &buf, &len)))
		return rc;
	memcpy(dir, s->helper, strlen(s->helper) + 1);
	slash = strrchr(dir, '/');
	if (slash && slash != dir)
		*slash = 0;
	rc = util_mkdir_p(dir, 0755);
	if (!rc)
		rc = util_write_atomic(s->helper, buf, len, 0755);
	free(buf);
	if (!rc)
		setup_note(s, s->done, "done:", "installed %s from %s", s->helper, src);
	return rc;
}

/* owner root:group, mode 0750, exactly PRIVD_FILE_CAPS: the state --check expects */
static bool setup_helper_ok(const struct setup *s, const struct stat *st, gid_t gid)
{
	cap_t want = cap_from_text(PRIVD_FILE_CAPS), have = cap_get_file(s->helper);
	bool ok = want && have && cap_compare(want, have) == 0;

	cap_free(want);
	cap_free(have);
	return ok && st->st_uid == 0 && st->st_gid == gid && (st->st_mode & 07777) == 0750;
}

static int setup_helper_apply(struct setup *s, gid_t gid)
{
	cap_t caps;
	int rc = 0;

	/* chown clears file capabilities: owner and mode first, capabilities last */
	if (chown(s->helper, 0, gid) < 0 || chmod(s->helper, 0750) < 0)
		return -errno;
	caps = cap_from_text(PRIVD_FILE_CAPS);
	if (!caps)
		return -ENOMEM;
	if (cap_set_file(s->helper, caps) < 0)
		rc = -errno;
	cap_free(caps);
	return rc;
}

/* hutch-helper.conf beside the helper: the run directory and the network users may ask for */
static int setup_helper_conf(struct setup *s)
{
	char path[PATH_MAX], dir[PATH_MAX], text[PATH_MAX + 256], gw[INET_ADDRSTRLEN], *slash;
	struct net_conf nc;
	int rc;

	if (net_conf_get(&nc))
		return -EINVAL;
	memcpy(dir, s->helper, strlen(s->helper) + 1);
	slash = strrchr(dir, '/');
	if (!slash)
		return -EINVAL;
	*slash = 0;
	inet_ntop(AF_INET, &nc.gw, gw, sizeof(gw));
	if ((rc = util_path_join(path, sizeof(path), dir[0] ? dir : "/", PRIVD_CONF_NAME)) ||
	    (rc = util_snprintf(text, sizeof(text),
				"# hutch-helper's configuration, written by 'hutch setup'\n"
				"rundir %s\nnetwork %s %s/%u\n",
				s->rundir, nc.bridge, gw, nc.prefix)) ||
	    (rc = util_write_atomic(path, text, strlen(text), 0644)))
		return rc;
	return chown(path, 0, 0) < 0 ? -errno : 0;
}

static void setup_helper(struct setup *s)
{
	struct group *g = getgrnam(s->group);
	struct stat st;
	int rc;

	if (stat(s->helper, &st) < 0 && !s->check)
		setup_copy_helper(s);
	if (stat(s->helper, &st) < 0) {
		setup_note(s, s->missing, "missing:", "%s (run 'make install' first)", s->helper);
		return;
	}
	if (g && setup_helper_ok(s, &st, g->gr_gid)) {
		setup_note(s, NULL, "ok:", "%s: root:%s, mode 0750, %s", s->helper, s->group,
			   PRIVD_FILE_CAPS);
	} else if (s->check || !g) {
		setup_note(s, s->missing, "missing:", "%s is not set up (owner root:%s, mode 0750, "
			   "capabilities %s)", s->helper, s->group, PRIVD_FILE_CAPS);
		return;
	} else if ((rc = setup_helper_apply(s, g->gr_gid))) {
		setup_note(s, s->missing, "missing:", "%s: setting owner, mode and capabilities: %s",
			   s->helper, strerror(-rc));
		return;
	} else {
		setup_note(s, s->done, "done:", "%s: root:%s, mode 0750, %s", s->helper, s->group,
			   PRIVD_FILE_CAPS);
	}
	if (!s->check && (rc = setup_helper_conf(s)))
		setup_note(s, s->missing, "missing:", "writing %s beside the helper: %s",
			   PRIVD_CONF_NAME, strerror(-rc));
}

/* a registry whose header is damaged is refused by the helper: empty it (root's decision) */
static void setup_registry_damaged(struct setup *s, const char *reg)
{
	struct privd_reg r;
	int fd = open(reg, (s->check ? O_RDONLY : O_RDWR) | O_NOFOLLOW | O_CLOEXEC), rc;

	rc = fd < 0 ? -errno : privd_reg_load(fd, &r);
	if (rc == 0) {
		privd_reg_free(&r);
		setup_note(s, NULL, "ok:", "registry %s", reg);
	} else if (rc == -EUCLEAN && !s->check && ftruncate(fd, 0) == 0) {
		setup_note(s, s->done, "done:", "the registry %s was damaged: emptied (what it "
			   "recorded is removed by the next 'hutch gc')", reg);
	} else {
		setup_note(s, s->missing, "missing:", "a usable registry %s: %s", reg, strerror(-rc));
	}
	if (fd >= 0)
		close(fd);
}

/* <rundir>/registry.json, root's, 0600; and a tmpfiles.d line to recreate it at boot */
static void setup_rundir(struct setup *s)
{
	char reg[PATH_MAX + 32];
	struct stat st;
	int fd;

	if (util_path_join(reg, sizeof(reg), s->rundir, PRIVD_REGISTRY))
		return;
	if (stat(reg, &st) == 0 && st.st_uid == 0 && (st.st_mode & 0777) == 0600) {
		setup_registry_damaged(s, reg);
	} else if (s->check) {
		setup_note(s, s->missing, "missing:", "the registry %s (root's, mode 0600)", reg);
	} else if ((mkdir(s->rundir, 0755) < 0 && errno != EEXIST) ||
		   chown(s->rundir, 0, 0) < 0 || chmod(s->rundir, 0755) < 0 ||
		   (fd = open(reg, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0) {
		setup_note(s, s->missing, "missing:", "creating %s: %s", reg, strerror(errno));
	} else {
		if (fchown(fd, 0, 0) < 0 || fchmod(fd, 0600) < 0)
			log_warn("%s: %s", reg, strerror(errno));
		close(fd);
		setup_note(s, s->done, "done:", "created the registry %s", reg);
	}
	/* wireguard-go's UAPI sockets: root's directory, which hutch-helper must not make */
	if (!s->check && mkdir(WG_UAPI_DIR, 0755) == 0)
		setup_note(s, s->done, "done:", "created %s", WG_UAPI_DIR);
	if (strcmp(s->rundir, PRIVD_RUNDIR) || access("/etc/tmpfiles.d", F_OK) < 0)
		return;
	if (access(SETUP_TMPFILES, F_OK) == 0) {
		setup_note(s, NULL, "ok:", "%s", SETUP_TMPFILES);
	} else if (!s->check) {
		static const char t[] = "# hutch-helper's registry, wireguard-go's sockets (hutch setup)\n"
					"d " PRIVD_RUNDIR " 0755 root root -\n"
					"f " PRIVD_RUNDIR "/" PRIVD_REGISTRY " 0600 root root -\n"
					"d /run/wireguard 0755 root root -\n";	/* WG_UAPI_DIR, without /var */

		if (util_write_atomic(SETUP_TMPFILES, t, sizeof(t) - 1, 0644) == 0)
			setup_note(s, s->done, "done:", "wrote %s (the registry after a reboot)",
				   SETUP_TMPFILES);
	} else {
		setup_note(s, s->warn, "warning:", "%s is missing: after a reboot run 'sudo hutch "
			   "setup' again", SETUP_TMPFILES);
	}
}

/* the user may open /dev/kvm (else hutch falls back to TCG, which is slow) */
static void setup_check_kvm(struct setup *s)
{
	struct stat st;
	struct group *g;

	if (stat("/dev/kvm", &st) < 0) {
		setup_note(s, s->warn, "warning:", "no /dev/kvm: VMs run under TCG (slow)");
		return;
	}
	g = getgrgid(st.st_gid);
	if ((st.st_mode & 06) == 06 ||
	    (s->user && g && (st.st_mode & 060) == 060 && setup_in_group(s->user, g)) ||
	    (!s->user && access("/dev/kvm", R_OK | W_OK) == 0)) {
		setup_note(s, NULL, "ok:", "/dev/kvm");
		return;
	}
	setup_note(s, s->warn, "warning:", "%s cannot open /dev/kvm: 'usermod -aG %s %s' (else "
		   "TCG, slow)", s->user ? s->user : "this user", g ? g->gr_name : "kvm",
		   s->user ? s->user : "USER");
}

static void setup_check_firewalls(struct setup *s)
{
	char *buf = NULL;
	size_t n;

	if (access("/run/firewalld", F_OK) == 0)
		setup_note(s, s->warn, "warning:", "firewalld is running: its reloads flush "
			   "nftables; hutch-helper restores its rules, but put the bridge in a "
			   "trusted zone ('firewall-cmd --zone=trusted --add-interface=hutch0')");
	if (util_read_file("/etc/ufw/ufw.conf", 65536, &buf, &n) == 0 && strstr(buf, "ENABLED=yes"))
		setup_note(s, s->warn, "warning:", "ufw is enabled: its FORWARD policy may drop the "
			   "guests' traffic ('ufw route allow in on hutch0')");
	free(buf);
	if (access("/run/docker.sock", F_OK) == 0)
		setup_note(s, s->warn, "warning:", "Docker is installed: it sets the iptables FORWARD "
			   "policy to DROP, which also drops the guests' traffic unless allowed "
			   "(DOCKER-USER chain)");
}

static void setup_check_host(struct setup *s)
{
	static const char *const tools[] = { "qemu-system-x86_64", "qemu-img" };
	char path[PATH_MAX], *buf = NULL;
	size_t n;

	for (size_t i = 0; i < UTIL_ARRAY_SIZE(tools); i++) {
		if (proc_find_exe(tools[i], NULL, path, sizeof(path)) == 0)
			setup_note(s, NULL, "ok:", "%s", path);
		else
			setup_note(s, s->missing, "missing:", "%s (apt install qemu-system-x86 "
				   "qemu-utils)", tools[i]);
	}
	if (share_virtiofsd_find(path, sizeof(path)) == 0)
		setup_note(s, NULL, "ok:", "%s", path);
	else
		setup_note(s, s->warn, "warning:", "no virtiofsd: shared folders will not work "
			   "(apt install virtiofsd)");
	setup_check_kvm(s);
	if (geteuid() == 0) {
		if (nft_base_present() < 0)
			setup_note(s, s->missing, "missing:", "nftables in the kernel (nf_tables)");
		else
			setup_note(s, NULL, "ok:", "nftables");
	}
	if (util_read_file("/proc/sys/net/ipv4/ip_forward", 16, &buf, &n) == 0 && buf[0] == '0')
		setup_note(s, NULL, "ok:", "ip_forward is off: hutch turns it on for the first VM");
	free(buf);
	setup_check_firewalls(s);
}

/* --uninstall: refused while a VM registered with the helper still runs */
static int setup_uninstall(struct setup *s)
{
	char reg[PATH_MAX + 32];
	struct privd_reg r;
	size_t live = 0;
	int rc, fd;

	if (util_path_join(reg, sizeof(reg), s->rundir, PRIVD_REGISTRY))
		return EXIT_USAGE;
	fd = open(reg, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0 && privd_reg_load(fd, &r) == 0) {
		for (size_t i = 0; i < r.n; i++)
			live += privd_ent_alive(&r.e[i]);
		privd_reg_free(&r);
	}
	if (fd >= 0)
		close(fd);
	if (live) {
		log_err("%zu VM networks or mounts are still in use: halt the VMs first", live);
		return EXIT_BUSY;
	}
	if (access(s->helper, F_OK) == 0) {
		rc = 0;
		if (cap_set_file(s->helper, NULL) < 0 && errno != ENODATA)
			rc = -errno;
		if (!rc && (chown(s->helper, 0, 0) < 0 || chmod(s->helper, 0755) < 0))
			rc = -errno;
		if (rc)
			setup_note(s, s->missing, "failed:", "%s: %s", s->helper, strerror(-rc));
		else
			setup_note(s, s->done, "done:", "%s has no capabilities any more", s->helper);
	}
	{
		char conf[PATH_MAX], dir[PATH_MAX], *slash;

		memcpy(dir, s->helper, strlen(s->helper) + 1);
		slash = strrchr(dir, '/');
		if (slash && (*slash = 0, util_path_join(conf, sizeof(conf), dir, PRIVD_CONF_NAME) == 0) &&
		    unlink(conf) == 0)
			setup_note(s, s->done, "done:", "removed %s", conf);
	}
	if (unlink(reg) == 0)
		setup_note(s, s->done, "done:", "removed %s", reg);
	if (rmdir(s->rundir) == 0)
		setup_note(s, s->done, "done:", "removed %s", s->rundir);
	if (!strcmp(s->rundir, PRIVD_RUNDIR) && unlink(SETUP_TMPFILES) == 0)
		setup_note(s, s->done, "done:", "removed %s", SETUP_TMPFILES);
	if (getgrnam(s->group)) {
		const char *argv[] = { "groupdel", s->group, NULL };

		if (setup_run(argv) == 0)
			setup_note(s, s->done, "done:", "removed the group '%s'", s->group);
	}
	return json_array_size(s->missing) ? EXIT_ERR : EXIT_OK;
}

static int setup_args(struct setup *s, int argc, char **argv)
{
	const char *helper = getenv("HUTCH_HELPER"), *rundir = PRIVD_RUNDIR;
	int rc;

	s->user = getenv("SUDO_USER");
	s->group = "hutch";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--check")) {
			s->check = true;
		} else if (!strcmp(a, "--uninstall")) {
			s->uninstall = true;
		} else if (v && (!strcmp(a, "--user") || !strcmp(a, "--group") ||
				 !strcmp(a, "--helper") || !strcmp(a, "--rundir"))) {
			if (!strcmp(a, "--user"))
				s->user = v;
			else if (!strcmp(a, "--group"))
				s->group = v;
			else if (!strcmp(a, "--helper"))
				helper = v;
			else
				rundir = v;
			i++;
		} else {
			log_err("setup: unknown argument '%s'; see 'hutch setup --help'", a);
			return -EINVAL;
		}
	}
	if (s->check && s->uninstall) {
		log_err("setup: --check and --uninstall exclude each other");
		return -EINVAL;
	}
	if (!helper || !*helper)
		helper = HUTCH_LIBEXECDIR "/hutch-helper";
	if (helper[0] != '/' || rundir[0] != '/' || !util_name_valid(s->group)) {
		log_err("setup: --helper and --rundir take absolute paths, --group a plain name");
		return -EINVAL;
	}
	if ((rc = util_snprintf(s->helper, sizeof(s->helper), "%s", helper)) ||
	    (rc = util_snprintf(s->rundir, sizeof(s->rundir), "%s", rundir)))
		return rc;
	return 0;
}

static int cmd_setup(struct cli *cli, struct vm_target *t, int argc, char **argv)
{
	struct setup s = { .json = cli->json };
	int rc, ret;

	(void)t;
	rc = setup_args(&s, argc, argv);
	if (rc)
		return EXIT_USAGE;
	if (!s.check && geteuid() != 0) {
		log_err("hutch setup changes the system: run it as root ('sudo hutch setup'), or "
			"'hutch setup --check' to only look");
		return EXIT_NOPERM;
	}
	s.done = json_array();
	s.missing = json_array();
	s.warn = json_array();
	if (!s.done || !s.missing || !s.warn) {
		ret = EXIT_ERR;
		goto out;
	}
	if (s.uninstall) {
		ret = setup_uninstall(&s);
	} else {
		setup_group(&s);
		setup_helper(&s);
		setup_rundir(&s);
		setup_check_host(&s);
		ret = json_array_size(s.missing) ? EXIT_NOSETUP : EXIT_OK;
		if (!s.json)
			printf("%s\n", ret == EXIT_OK ? (s.check ? "hutch is set up on this host." :
						       "hutch is set up: users in the group run "
						       "'hutch up' without sudo.") :
				      "something is missing (above): 'sudo hutch setup' sets up "
				      "what it can.");
	}
	if (s.json) {
		json_t *o = json_pack("{s:b, s:O, s:O, s:O}", "ok", ret == EXIT_OK, "done", s.done,
				      "missing", s.missing, "warnings", s.warn);

		if (o)
			json_dumpf(o, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(o);
	}
out:
	json_decref(s.done);
	json_decref(s.missing);
	json_decref(s.warn);
	return ret;
}

static const char *const setup_valopts[] = { "--user", "--group", "--helper", "--rundir", NULL };

const struct cmd_entry cmd_setup_entry = {
	.name = "setup",
	.usage = "[--check | --uninstall] [--user NAME]",
	.summary = "check and install what the host needs (helper, group; as root)",
	.help = setup_help,
	.valopts = setup_valopts,
	.fn = cmd_setup,
};

// SPDX-License-Identifier: MIT
/*
 * hutch: per-project Linux VMs with QEMU, without libvirt.
 *
 * How to follow `hutch up` from here to QEMU and back:
 *  1. main() takes the global options out of argv (wherever they are) and
 *     calls cmd_run() (src/cmd.c) with the verb and its own arguments.
 *  2. cmd_run() finds the verb in cmd_table[], resolves the VM once
 *     (vm_target_open(), src/vm.c: hutch.yaml, then the VM lock, then
 *     state.json under it) and calls cmd_up() (src/cmd_up.c).
 *  3. cmd_up() creates the VM on first use (overlay over the cached base
 *     image, images/; NoCloud seed ISO, images/iso.c), runs every up_ext's
 *     before_up (src/ext.c lists them: net, share, ssh), and spawns the
 *     supervisor: this same binary as `hutch __supervise VM_DIR`, detached.
 *  4. The supervisor, sv_run() (src/sv.c), runs every sv_ext's prepare
 *     (net/net_sv.c: bridge, tap, rules, DHCP/DNS; share/share_sv.c: images,
 *     virtiofsd), builds QEMU's argv (src/qemu.c), spawns QEMU with QMP and
 *     the serial console on socketpairs, writes "running" to state.json and
 *     loops on poll: QMP events (qmp/), console, control socket, the
 *     extensions' fds, QEMU's pidfd.
 *  5. cmd_up() meanwhile waits for "running", then runs each up_ext's wait
 *     (lease, SSH, cloud-init, playbook) and after_up, and returns.
 *  6. `hutch halt` (src/cmd_down.c) asks the supervisor over control.sock;
 *     it powers the guest down over QMP, QEMU exits, the supervisor tears
 *     the extensions down in reverse order, saves state.json and exits.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/cmd.h"
#include "src/log.h"
#include "src/util.h"

static int resolve_dir(struct cli *cli, const char *opt)
{
	const char *d = opt ? opt : getenv("HUTCH_DIR");
	char buf[PATH_MAX];

	if (!d || !*d) {
		if (!getcwd(buf, sizeof(buf)))
			return -errno;
	} else if (!realpath(d, buf)) {
		return -errno;
	}
	return util_snprintf(cli->dir, sizeof(cli->dir), "%s", buf);
}

/* an option's value: "--opt=V" or the next argument */
static const char *opt_value(int argc, char **argv, int *i, const char *opt)
{
	size_t n = strlen(opt);

	if (!strncmp(argv[*i], opt, n) && argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (*i + 1 >= argc)
		die(EXIT_USAGE, "%s needs a value", opt);
	return argv[++*i];
}

/* set *@slot to @v, refusing a second, different value (a real conflict) */
static void opt_once(const char **slot, const char *v, const char *opt)
{
	if (*slot && strcmp(*slot, v))
		die(EXIT_USAGE, "%s given twice (%s, %s)", opt, *slot, v);
	*slot = v;
}

/*
 * Global options are taken wherever they appear before "--", so `hutch
 * status --json` and `hutch --json status` are the same.  Everything else
 * is kept, in order, for the verb.
 * Return: the new argc of @out (the verb and its own arguments)
 */
static int parse_globals(struct cli *cli, int argc, char **argv, char **out, const char **dir,
			 const char **color, bool *help, bool *version)
{
	bool dashdash = false;
	int n = 0, quiet = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (dashdash || a[0] != '-') {
			out[n++] = argv[i];
			continue;
		}
		if (!strcmp(a, "--")) {
			dashdash = true;
			out[n++] = argv[i];
		} else if (!strcmp(a, "-C")) {
			opt_once(dir, opt_value(argc, argv, &i, "-C"), "-C");
		} else if (!strncmp(a, "-C", 2)) {
			opt_once(dir, a + 2, "-C");
		} else if (!strcmp(a, "--vm") || !strncmp(a, "--vm=", 5)) {
			opt_once(&cli->vm, opt_value(argc, argv, &i, "--vm"), "--vm");
		} else if (!strcmp(a, "--json")) {
			cli->json = true;
		} else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
			quiet = 1;
		} else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
			cli->verbose++;
		} else if (!strcmp(a, "-vv")) {
			cli->verbose += 2;
		} else if (!strcmp(a, "--yes") || !strcmp(a, "-y")) {
			cli->yes = true;
		} else if (!strncmp(a, "--color=", 8) || !strcmp(a, "--color")) {
			*color = opt_value(argc, argv, &i, "--color");
			if (strcmp(*color, "auto") && strcmp(*color, "always") && strcmp(*color, "never"))
				die(EXIT_USAGE, "--color takes auto, always or never");
		} else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			*help = true;
		} else if (!strcmp(a, "--version") || !strcmp(a, "-V")) {
			*version = true;
		} else if (n == 0) {
			die(EXIT_USAGE, "unknown option '%s'; see 'hutch --help'", a);
		} else {
			out[n++] = argv[i];	/* the verb's own option */
		}
	}
	if (quiet && cli->verbose)
		die(EXIT_USAGE, "-q and -v contradict each other");
	cli->quiet = quiet;
	out[n] = NULL;
	return n;
}

int main(int argc, char **argv)
{
	struct cli cli = { 0 };
	const char *dir = NULL, *color = "auto";
	bool help = false, version = false;
	char **args;
	int n, rc;

	signal(SIGPIPE, SIG_IGN);
	log_init("hutch", LOG_LVL_INFO);
	args = calloc((size_t)argc + 2, sizeof(*args));
	if (!args)
		die(EXIT_ERR, "out of memory");
	n = parse_globals(&cli, argc, argv, args, &dir, &color, &help, &version);
	if (version) {
		printf("hutch %s\n", HUTCH_VERSION);
		return EXIT_OK;
	}
	if (help && n > 0 && strcmp(args[0], "help")) {
		/* `hutch up --help`: the verb's page, through the dispatcher */
		args[n++] = "--help";
		args[n] = NULL;
	} else if (help || n == 0) {
		cmd_list_verbs(help ? stdout : stderr);
		return help ? EXIT_OK : EXIT_USAGE;
	}
	cli.tty = isatty(STDERR_FILENO);
	if (!strcmp(color, "always"))
		log_set_color(true);
	else if (!strcmp(color, "auto"))
		log_set_color(cli.tty && !getenv("NO_COLOR") && getenv("TERM") &&
			      strcmp(getenv("TERM"), "dumb"));
	if (cli.quiet)
		log_set_level(LOG_LVL_WARN);
	else if (cli.verbose)
		log_set_level(LOG_LVL_DEBUG);
	rc = resolve_dir(&cli, dir);
	if (rc) {
		log_errno(rc, "project directory %s", dir ? dir : "");
		return EXIT_USAGE;
	}
	rc = cmd_run(&cli, n, args);
	free(args);
	return rc;
}

// SPDX-License-Identifier: MIT
/*
 * hutch: per-project Linux VMs with QEMU, without libvirt.
 * Global option parsing and verb dispatch; each verb lives in src/cmd_*.c.
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

struct verb {
	const char *name;
	cmd_fn fn;
	const char *args;
	const char *help;
};

static const struct verb verbs[] = {
	{ "up", cmd_up, "[NAME]", "create and/or start the VM and wait until it is ready" },
	{ "halt", cmd_halt, "[NAME]", "ACPI power-down, then quit, then kill" },
	{ "destroy", cmd_destroy, "[NAME]", "stop the VM and remove its disk, seed and snapshot" },
	{ "status", cmd_status, "[NAME]", "state of the VM (--json)" },
	{ "provision", cmd_provision, "[NAME]", "run playbook.yml again" },
	{ "snapshot", cmd_snapshot, "[save|restore|rm NAME|...]",
	  "halt and save the disk; named, push/pop, --running (warm)" },
	{ "reset", cmd_reset, "[NAME]", "rebuild the disk from the snapshot and start the VM" },
	{ "suspend", cmd_suspend, "[NAME]", "pause the VM's CPUs" },
	{ "resume", cmd_resume, "[NAME]", "continue a suspended VM" },
	{ "reload", cmd_reload, "[NAME]", "halt and up again with the current hutch.yaml" },
	{ "ssh", cmd_ssh, "[NAME] [-- CMD...]", "log in, or run a command, with the pinned host key" },
	{ "ssh-config", cmd_ssh_config, "[NAME]", "print an ssh_config block for the VM" },
	{ "console", cmd_console, "[NAME]", "attach to the serial console (Ctrl-] leaves)" },
	{ "ip", cmd_ip, "[NAME]", "print the VM's address (--json)" },
	{ "pubkey", cmd_pubkey, "", "print the managed public key, creating it if needed" },
	{ "tz", cmd_tz, "[ZONE]", "set the guest's time zone (default: the host's)" },
	{ "mount", cmd_mount, "[NAME]", "mount the shared folder images on the host" },
	{ "unmount", cmd_unmount, "[NAME]", "unmount them" },
	{ "logs", cmd_logs, "[--console|--provision] [-f]", "show the supervisor, console or provision log" },
	{ "setup", cmd_setup, "", "check and install what the host needs" },
	{ "list", cmd_list, "", "all VMs of this user (--json)" },
	{ "storage", cmd_storage, "", "disk space used by VMs and images (--json)" },
	{ "images", cmd_images, "[pull|list|rm|prune|build] ...", "manage the base image cache (--json)" },
	{ "gc", cmd_gc, "", "remove what crashed VMs left behind" },
	{ "wg", cmd_wg, "", "WireGuard status of the VM" },
	{ "inspect", cmd_inspect, "[NAME]", "QEMU argv, QMP status, rules in place (--json)" },
	{ "completion", cmd_completion, "bash|zsh|fish", "print a shell completion script" },
	{ "check-config", cmd_check_config, "[FILE]", "validate hutch.yaml and print the resolved config" },
	{ "__supervise", cmd_supervise, NULL, NULL },
};

/*
 * Completion scripts are generated from the verb table, so a new verb is
 * completed without touching three shell dialects by hand.
 */
int cmd_completion(struct cli *cli, int argc, char **argv)
{
	static const char opts[] = "-C --json -q -v --color=auto --color=always --color=never --help --version";
	size_t i;

	(void)cli;
	if (argc != 2) {
		log_err("usage: hutch completion bash|zsh|fish");
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "bash")) {
		printf("# bash completion for hutch\n_hutch() {\n"
		       "  local cur=${COMP_WORDS[COMP_CWORD]} i verb=\n"
		       "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
		       "    case ${COMP_WORDS[i]} in -C) ((i++));; -*) ;; *) verb=${COMP_WORDS[i]}; break;; esac\n"
		       "  done\n"
		       "  if [ -z \"$verb\" ]; then\n    COMPREPLY=($(compgen -W \"%s", opts);
		for (i = 0; i < UTIL_ARRAY_SIZE(verbs); i++)
			if (verbs[i].help)
				printf(" %s", verbs[i].name);
		printf(" help\" -- \"$cur\"))\n"
		       "  else\n    case $verb in\n"
		       "      logs) COMPREPLY=($(compgen -W \"--console --provision -f\" -- \"$cur\"));;\n"
		       "      images) COMPREPLY=($(compgen -W \"pull list rm prune build\" -- \"$cur\"));;\n"
		       "      snapshot) COMPREPLY=($(compgen -W \"save restore list rm push pop --running\" -- \"$cur\"));;\n"
		       "      completion) COMPREPLY=($(compgen -W \"bash zsh fish\" -- \"$cur\"));;\n"
		       "      *) COMPREPLY=();;\n    esac\n  fi\n}\ncomplete -F _hutch hutch\n");
	} else if (!strcmp(argv[1], "zsh")) {
		printf("#compdef hutch\n_hutch() {\n  local -a verbs\n  verbs=(\n");
		for (i = 0; i < UTIL_ARRAY_SIZE(verbs); i++)
			if (verbs[i].help)
				printf("    '%s:%s'\n", verbs[i].name, verbs[i].help);
		printf("  )\n  _arguments '-C[project directory]:dir:_files -/' '--json[JSON output]' "
		       "'-q[quiet]' '-v[verbose]' '1: :->verb' '*:: :->args'\n"
		       "  case $state in verb) _describe 'command' verbs;; esac\n}\n_hutch \"$@\"\n");
	} else if (!strcmp(argv[1], "fish")) {
		printf("# fish completion for hutch\ncomplete -c hutch -f\n"
		       "complete -c hutch -s C -r -d 'project directory'\n"
		       "complete -c hutch -l json -d 'JSON output'\n");
		for (i = 0; i < UTIL_ARRAY_SIZE(verbs); i++)
			if (verbs[i].help)
				printf("complete -c hutch -n __fish_use_subcommand -a %s -d '%s'\n",
				       verbs[i].name, verbs[i].help);
	} else {
		log_err("unknown shell '%s': bash, zsh or fish", argv[1]);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: hutch [-C DIR] [--json] [-q] [-v] [--color=auto|always|never] COMMAND [ARGS]\n\n"
		   "Per-project Linux VMs with QEMU.\n\nCommands:\n");
	for (i = 0; i < UTIL_ARRAY_SIZE(verbs); i++) {
		if (!verbs[i].help)
			continue;
		fprintf(f, "  %-12s %-26s %s\n", verbs[i].name, verbs[i].args, verbs[i].help);
	}
	fprintf(f, "\nGlobal options:\n"
		   "  -C DIR        project directory (default: $HUTCH_DIR or the current directory)\n"
		   "  --json        machine-readable output where supported\n"
		   "  -q, -v        quieter, more verbose\n"
		   "  --color=WHEN  auto, always or never (NO_COLOR is honoured)\n"
		   "  --help, --version\n"
		   "\n'hutch help COMMAND' describes one command.\n");
}

static const struct verb *verb_find(const char *name)
{
	size_t i;

	for (i = 0; i < UTIL_ARRAY_SIZE(verbs); i++)
		if (!strcmp(verbs[i].name, name))
			return &verbs[i];
	return NULL;
}

static int verb_help(const char *name)
{
	const struct verb *v = verb_find(name);

	if (!v || !v->help) {
		log_err("unknown command '%s'; see 'hutch --help'", name);
		return EXIT_USAGE;
	}
	printf("usage: hutch %s %s\n\n%s\n", v->name, v->args, v->help);
	return EXIT_OK;
}

static int resolve_dir(struct cli *cli, const char *opt)
{
	const char *d = opt ? opt : getenv("HUTCH_DIR");
	char buf[PATH_MAX];

	if (!d || !*d) {
		if (!getcwd(buf, sizeof(buf)))
			return -errno;
		d = buf;
	} else if (!realpath(d, buf)) {
		return -errno;
	} else {
		d = buf;
	}
	return util_snprintf(cli->dir, sizeof(cli->dir), "%s", d);
}

int main(int argc, char **argv)
{
	struct cli cli = { 0 };
	const char *dir = NULL, *color = "auto";
	const struct verb *v;
	int i, rc;

	signal(SIGPIPE, SIG_IGN);
	log_init("hutch", LOG_LVL_INFO);
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "-C")) {
			if (++i >= argc)
				die(EXIT_USAGE, "-C needs a directory");
			dir = argv[i];
		} else if (!strncmp(a, "-C", 2)) {
			dir = a + 2;
		} else if (!strcmp(a, "--json")) {
			cli.json = true;
		} else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
			cli.quiet = true;
		} else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
			cli.verbose++;
		} else if (!strncmp(a, "--color=", 8)) {
			color = a + 8;
			if (strcmp(color, "auto") && strcmp(color, "always") && strcmp(color, "never"))
				die(EXIT_USAGE, "--color takes auto, always or never");
		} else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return EXIT_OK;
		} else if (!strcmp(a, "--version") || !strcmp(a, "-V")) {
			printf("hutch %s\n", HUTCH_VERSION);
			return EXIT_OK;
		} else if (a[0] == '-') {
			log_err("unknown option '%s'; see 'hutch --help'", a);
			return EXIT_USAGE;
		} else {
			break;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return EXIT_USAGE;
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
	if (!strcmp(argv[i], "help")) {
		if (i + 1 >= argc) {
			usage(stdout);
			return EXIT_OK;
		}
		return verb_help(argv[i + 1]);
	}
	v = verb_find(argv[i]);
	if (!v) {
		log_err("unknown command '%s'; see 'hutch --help'", argv[i]);
		return EXIT_USAGE;
	}
	if (argc - i >= 2 && (!strcmp(argv[i + 1], "--help") || !strcmp(argv[i + 1], "-h")))
		return verb_help(argv[i]);
	return v->fn(&cli, argc - i, argv + i);
}

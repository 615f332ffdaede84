// SPDX-License-Identifier: MIT
/*
 * The verb table and the dispatcher: find the verb, take the VM name out of
 * its arguments, resolve the VM once (vm_target_open()), run the verb.
 * Help pages, the man page and the completion scripts are all printed from
 * the same table, so a verb's documentation cannot drift from the verb.
 */
#include "src/cmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "src/cfg.h"
#include "src/log.h"
#include "src/util.h"
#include "src/vm.h"

/* tmux's cmd_table[] is the model: one pointer per verb, in --help order */
const struct cmd_entry *const cmd_table[] = {
	&cmd_up_entry,
	&cmd_halt_entry,
	&cmd_destroy_entry,
	&cmd_status_entry,
	&cmd_wait_entry,
	&cmd_provision_entry,
	&cmd_suspend_entry,
	&cmd_resume_entry,
	&cmd_ssh_entry,
	&cmd_ssh_config_entry,
	&cmd_console_entry,
	&cmd_ip_entry,
	&cmd_pubkey_entry,
	&cmd_mount_entry,
	&cmd_unmount_entry,
	&cmd_logs_entry,
	&cmd_list_entry,
	&cmd_setup_entry,
	&cmd_images_entry,
	&cmd_gc_entry,
	&cmd_wg_entry,
	&cmd_inspect_entry,
	&cmd_allow_entry,
	&cmd_check_config_entry,
	&cmd_completion_entry,
	&cmd_help_entry,
	&cmd_supervise_entry,
	&cmd_man_entry,
	NULL,
};

/* Shown by `hutch --help`, every verb's help page and the man page */
static const char cmd_global_help[] =
	"  -C DIR          project directory (default: $HUTCH_DIR, else the current directory)\n"
	"  --vm NAME       the VM of a project with several (vms:)\n"
	"  --json          machine-readable output on stdout\n"
	"  -q, --quiet     only warnings and errors\n"
	"  -v, --verbose   more detail (debug messages)\n"
	"  --yes           consent without asking (hooks, playbook: see 'hutch help up')\n"
	"  --color=WHEN    auto, always or never (NO_COLOR is honoured)\n"
	"  -h, --help      help (after a verb: that verb's page)\n"
	"  --version       hutch's version\n";

static const char cmd_exit_help[] =
	"  0   success\n"
	"  1   error\n"
	"  2   usage or configuration error\n"
	"  69  a program hutch needs is missing on the host\n"
	"  75  busy: another hutch command holds this VM's lock\n"
	"  77  not allowed: consent missing, or a path outside the project\n"
	"  78  host not set up, or nothing to act on\n";

const struct cmd_entry *cmd_find(const char *name)
{
	for (size_t i = 0; cmd_table[i]; i++)
		if (!strcmp(cmd_table[i]->name, name))
			return cmd_table[i];
	return NULL;
}

int cmd_usage(const struct cmd_entry *e)
{
	fprintf(stderr, "usage: hutch %s%s%s\n(see 'hutch help %s')\n", e->name, *e->usage ? " " : "",
		e->usage, e->name);
	return EXIT_USAGE;
}

int cmd_print_json(json_t *j)
{
	int rc;

	if (!j)
		return -ENOMEM;
	rc = json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) ? -EIO : 0;
	if (!rc && putchar('\n') == EOF)
		rc = -EIO;
	json_decref(j);
	return rc;
}

/* ---- help ---- */

void cmd_list_verbs(FILE *f)
{
	fprintf(f, "usage: hutch [GLOBAL OPTIONS] COMMAND [ARGS]\n\n"
		   "Per-project Linux VMs with QEMU: hutch.yaml in a directory, 'hutch up' there.\n\n"
		   "Commands:\n");
	for (size_t i = 0; cmd_table[i]; i++) {
		const struct cmd_entry *e = cmd_table[i];

		if (!(e->flags & CMD_F_HIDDEN))
			fprintf(f, "  %-13s %s\n", e->name, e->summary);
	}
	fprintf(f, "\nGlobal options (before or after the command):\n%s\n"
		   "'hutch help COMMAND' (or 'hutch COMMAND --help') shows one command's page;\n"
		   "'man hutch' the whole manual.\n", cmd_global_help);
}

static int cmd_help_page(const char *name)
{
	const struct cmd_entry *e = cmd_find(name);

	if (!e || (e->flags & CMD_F_HIDDEN)) {
		log_err("unknown command '%s'; see 'hutch --help'", name);
		return EXIT_USAGE;
	}
	printf("usage: hutch %s%s%s\n\n%s.\n\n%s\nGlobal options:\n%s\nExit codes:\n%s", e->name,
	       *e->usage ? " " : "", e->usage, e->summary, e->help, cmd_global_help, cmd_exit_help);
	return EXIT_OK;
}

static const char cmd_help_help[] =
	"Prints the page of one command: what it does, its options, its exit codes and\n"
	"examples. Without a command, the list of commands.\n"
	"\n"
	"Examples:\n"
	"  hutch help up\n"
	"  hutch ssh --help\n";

static int cmd_help(struct cli *cli, struct vm_target *t, int argc, char **argv)
{
	(void)cli;
	(void)t;
	if (argc > 2)
		return cmd_usage(&cmd_help_entry);
	if (argc < 2) {
		cmd_list_verbs(stdout);
		return EXIT_OK;
	}
	return cmd_help_page(argv[1]);
}

const struct cmd_entry cmd_help_entry = {
	.name = "help",
	.usage = "[COMMAND]",
	.summary = "show the help page of a command",
	.help = cmd_help_help,
	.fn = cmd_help,
};

/* ---- the man page, hutch.1, from the same table ---- */

/* troff: a leading '.' or '\'' would be a request, '\' an escape, '-' a hyphen */
static void man_text(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (i == 0 && (s[i] == '.' || s[i] == '\''))
			fputs("\\&", stdout);
		if (s[i] == '\\')
			fputs("\\e", stdout);
		else if (s[i] == '-')
			fputs("\\-", stdout);
		else
			putchar(s[i]);
	}
}

/* paragraphs become .PP, lines indented by two spaces stay as they are (.nf) */
static void man_body(const char *text)
{
	bool pre = false, para = true;

	for (const char *l = text; *l;) {
		const char *nl = strchr(l, '\n');
		size_t n = nl ? (size_t)(nl - l) : strlen(l);

		if (n == 0) {
			para = true;
		} else if (n >= 2 && l[0] == ' ' && l[1] == ' ') {
			if (!pre)
				fputs(para ? ".PP\n.nf\n" : ".nf\n", stdout);
			pre = true;
			para = false;
			man_text(l, n);
			putchar('\n');
		} else {
			if (pre)
				fputs(".fi\n", stdout);
			pre = false;
			if (para)
				fputs(".PP\n", stdout);
			para = false;
			man_text(l, n);
			putchar('\n');
		}
		if (n == 0 && pre) {
			fputs(".fi\n", stdout);
			pre = false;
		}
		l += n + (nl ? 1 : 0);
	}
	if (pre)
		fputs(".fi\n", stdout);
}

static int cmd_man(struct cli *cli, struct vm_target *t, int argc, char **argv)
{
	(void)cli;
	(void)t;
	(void)argv;
	if (argc != 1)
		return cmd_usage(&cmd_man_entry);
	printf(".TH HUTCH 1 \"\" \"hutch %s\" \"User Commands\"\n.SH NAME\nhutch \\- per-project Linux VMs with QEMU\n"
	       ".SH SYNOPSIS\n.B hutch\n[\\fIGLOBAL OPTIONS\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]\n.SH DESCRIPTION\n",
	       HUTCH_VERSION);
	man_body("A project directory holds hutch.yaml (the VM), cloud-init.yml (standard cloud-init "
		 "user-data), optionally playbook.yml (Ansible), hooks/ and wireguard.conf. 'hutch up' "
		 "in that directory creates the VM from its base image, starts it under a small "
		 "per-VM supervisor, waits for DHCP, SSH, cloud-init and the playbook, and returns when "
		 "it is ready. The guest is assumed hostile and is isolated from the host and the LAN "
		 "by default; the project directory is assumed hostile too: its hooks and playbook run "
		 "only after 'hutch allow'.\n");
	puts(".SH COMMANDS");
	for (size_t i = 0; cmd_table[i]; i++) {
		const struct cmd_entry *e = cmd_table[i];

		if (e->flags & CMD_F_HIDDEN)
			continue;
		printf(".SS \"%s", e->name);
		if (*e->usage) {
			putchar(' ');
			man_text(e->usage, strlen(e->usage));
		}
		puts("\"");
		man_text(e->summary, strlen(e->summary));
		puts(".");
		man_body(e->help);
	}
	puts(".SH GLOBAL OPTIONS\nAccepted before or after the command.");
	man_body(cmd_global_help);
	puts(".SH EXIT STATUS");
	man_body(cmd_exit_help);
	puts(".SH ENVIRONMENT");
	man_body("  HUTCH_DIR          the project directory (like -C)\n"
		 "  XDG_DATA_HOME      VM state: $XDG_DATA_HOME/hutch/vms/NAME\n"
		 "  XDG_CACHE_HOME     base images: $XDG_CACHE_HOME/hutch/images\n"
		 "  HUTCH_BRIDGE       bridge of network mode nat (hutch0)\n"
		 "  HUTCH_SUBNET       its address (10.77.0.1/24)\n"
		 "  HUTCH_RESOLV_CONF  where the DNS forwarder reads the host's resolvers\n"
		 "  NO_COLOR           no colours\n");
	puts(".SH FILES");
	man_body("  hutch.yaml, cloud-init.yml, playbook.yml, hooks/, wireguard.conf\n"
		 "                     the project\n"
		 "  ~/.config/hutch/config.yaml\n"
		 "                     the user's own settings (places outside projects)\n"
		 "  ~/.ssh/hutch       the managed SSH key\n");
	puts(".SH SEE ALSO\n.BR ssh (1),\n.BR qemu-system-x86_64 (1),\n.BR ansible-playbook (1)");
	return fflush(stdout) ? EXIT_ERR : EXIT_OK;
}

const struct cmd_entry cmd_man_entry = {
	.name = "__man",
	.usage = "",
	.summary = "print the man page (troff)",
	.help = "",
	.flags = CMD_F_HIDDEN,
	.fn = cmd_man,
};

/* ---- completion ---- */

static const char cmd_completion_help[] =
	"Prints a completion script for bash, zsh or fish, generated from the list of\n"
	"commands. 'make install' installs all three.\n"
	"\n"
	"Examples:\n"
	"  source <(hutch completion bash)\n"
	"  hutch completion fish > ~/.config/fish/completions/hutch.fish\n";

static void completion_bash(const char *opts)
{
	printf("# bash completion for hutch\n_hutch() {\n"
	       "  local cur=${COMP_WORDS[COMP_CWORD]} i verb=\n"
	       "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
	       "    case ${COMP_WORDS[i]} in -C|--vm) ((i++));; -*) ;; *) verb=${COMP_WORDS[i]}; break;; esac\n"
	       "  done\n"
	       "  if [ -z \"$verb\" ]; then\n    COMPREPLY=($(compgen -W \"%s", opts);
	for (size_t i = 0; cmd_table[i]; i++)
		if (!(cmd_table[i]->flags & CMD_F_HIDDEN))
			printf(" %s", cmd_table[i]->name);
	printf("\" -- \"$cur\"))\n"
	       "  else\n    case $verb in\n"
	       "      logs) COMPREPLY=($(compgen -W \"--console --provision --supervisor -f\" -- \"$cur\"));;\n"
	       "      images) COMPREPLY=($(compgen -W \"pull list rm build\" -- \"$cur\"));;\n"
	       "      wait) COMPREPLY=($(compgen -W \"--for --timeout ip ssh cloud-init stopped\" -- \"$cur\"));;\n"
	       "      completion) COMPREPLY=($(compgen -W \"bash zsh fish\" -- \"$cur\"));;\n"
	       "      help) COMPREPLY=($(compgen -W \"");
	for (size_t i = 0; cmd_table[i]; i++)
		if (!(cmd_table[i]->flags & CMD_F_HIDDEN))
			printf(" %s", cmd_table[i]->name);
	printf("\" -- \"$cur\"));;\n"
	       "      *) COMPREPLY=($(compgen -W \"%s\" -- \"$cur\"));;\n    esac\n  fi\n}\n"
	       "complete -F _hutch hutch\n", opts);
}

static int cmd_completion(struct cli *cli, struct vm_target *t, int argc, char **argv)
{
	static const char opts[] = "-C --vm --json -q -v --yes --color=auto --color=always "
				   "--color=never --help --version";

	(void)cli;
	(void)t;
	if (argc != 2)
		return cmd_usage(&cmd_completion_entry);
	if (!strcmp(argv[1], "bash")) {
		completion_bash(opts);
	} else if (!strcmp(argv[1], "zsh")) {
		printf("#compdef hutch\n_hutch() {\n  local -a verbs\n  verbs=(\n");
		for (size_t i = 0; cmd_table[i]; i++)
			if (!(cmd_table[i]->flags & CMD_F_HIDDEN))
				printf("    '%s:%s'\n", cmd_table[i]->name, cmd_table[i]->summary);
		printf("  )\n  _arguments '-C[project directory]:dir:_files -/' '--vm[VM name]:name:' "
		       "'--json[JSON output]' '-q[quiet]' '-v[verbose]' '--yes[consent without asking]' "
		       "'1: :->verb' '*:: :->args'\n"
		       "  case $state in verb) _describe 'command' verbs;; esac\n}\n_hutch \"$@\"\n");
	} else if (!strcmp(argv[1], "fish")) {
		printf("# fish completion for hutch\ncomplete -c hutch -f\n"
		       "complete -c hutch -s C -r -d 'project directory'\n"
		       "complete -c hutch -l vm -r -d 'VM name'\n"
		       "complete -c hutch -l json -d 'JSON output'\n"
		       "complete -c hutch -l yes -d 'consent without asking'\n");
		for (size_t i = 0; cmd_table[i]; i++)
			if (!(cmd_table[i]->flags & CMD_F_HIDDEN))
				printf("complete -c hutch -n __fish_use_subcommand -a %s -d '%s'\n",
				       cmd_table[i]->name, cmd_table[i]->summary);
	} else {
		log_err("unknown shell '%s': bash, zsh or fish", argv[1]);
		return EXIT_USAGE;
	}
	return fflush(stdout) ? EXIT_ERR : EXIT_OK;
}

const struct cmd_entry cmd_completion_entry = {
	.name = "completion",
	.usage = "bash|zsh|fish",
	.summary = "print a shell completion script",
	.help = cmd_completion_help,
	.fn = cmd_completion,
};

/* ---- dispatch ---- */

static bool cmd_is_valopt(const struct cmd_entry *e, const char *a)
{
	for (size_t i = 0; e->valopts && e->valopts[i]; i++)
		if (!strcmp(e->valopts[i], a))
			return true;
	return false;
}

/* index of the first positional argument (before "--"), or 0 when there is none */
static int cmd_first_pos(const struct cmd_entry *e, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			return 0;
		if (argv[i][0] != '-' || !argv[i][1])
			return i;
		if (cmd_is_valopt(e, argv[i]))
			i++;
	}
	return 0;
}

/* does hutch.yaml in @dir hold a VM named @name?  (mount/unmount: NAME or TAG) */
static bool cmd_cfg_has_vm(const char *dir, const char *name)
{
	struct cfg_error ce = { { 0 } };
	char path[PATH_MAX];
	struct cfg *c = NULL;
	bool found = false;

	if (util_path_join(path, sizeof(path), dir, "hutch.yaml") || cfg_load(path, &c, &ce))
		return false;
	for (size_t i = 0; i < c->n_vms; i++)
		found |= !strcmp(c->vms[i].name, name);
	cfg_free(c);
	return found;
}

int cmd_run(struct cli *cli, int argc, char **argv)
{
	const struct cmd_entry *e = cmd_find(argv[0]);
	struct vm_target t;
	const char *name = cli->vm;
	int pos, rc;

	if (!e) {
		log_err("unknown command '%s'; see 'hutch --help'", argv[0]);
		return EXIT_USAGE;
	}
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return cmd_help_page(e->name);
	if (!(e->flags & CMD_F_VM))
		return e->fn(cli, NULL, argc, argv);
	pos = name || (e->flags & CMD_F_NO_NAME) ? 0 : cmd_first_pos(e, argc, argv);
	if (pos && (e->flags & CMD_F_NAME_IF_VM) && !cmd_cfg_has_vm(cli->dir, argv[pos]))
		pos = 0;
	if (pos) {
		name = argv[pos];
		memmove(&argv[pos], &argv[pos + 1], (size_t)(argc - pos) * sizeof(*argv));
		argc--;
	}
	rc = vm_target_open(cli, name, e->flags, &t);
	if (rc == EXIT_OK)
		rc = e->fn(cli, &t, argc, argv);
	vm_target_close(&t);
	return rc;
}

/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_CMD_H
#define HUTCH_CMD_H
/**
 * DOC: cmd - the verbs of the hutch CLI
 *
 * One table (cmd_table[] in src/cmd.c) lists every verb; each verb's file
 * defines its `struct cmd_entry`: name, usage, one-line summary, the full
 * help page (also the man page, `hutch.1`, and the completion scripts are
 * generated from the table, so they cannot drift), the options that take a
 * value, and what the verb needs before it runs (flags CMD_F_*).
 *
 * The dispatcher (cmd_run()) takes the global options out of argv wherever
 * they are (before `--`), finds the VM the verb acts on, and fills one
 * struct vm_target (src/vm.h): hutch.yaml, the VM's config, its state
 * directory, the VM lock when the verb changes the VM, and state.json read
 * under that lock.  The verb gets the target and its own arguments
 * (argv[0] is the verb; the VM name, when it was given as the first
 * argument, is taken out).  A verb returns an exit code of SPEC.md (EXIT_*
 * in util.h).
 */
#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>

struct vm_target;

/**
 * struct cli - global options, resolved
 * @dir:     project directory (-C, $HUTCH_DIR, or the current directory), absolute
 * @vm:      --vm NAME: the VM of a multi-VM project, for verbs whose
 *           positional arguments are something else (snapshot names, a zone)
 * @json:    --json
 * @quiet:   -q
 * @yes:     --yes: consent without asking (scripts)
 * @verbose: -v count
 * @tty:     stderr is a terminal (progress bars allowed)
 */
struct cli {
	char dir[PATH_MAX];
	const char *vm;
	bool json;
	bool quiet;
	bool yes;
	int verbose;
	bool tty;
};

/* What a verb needs before it runs (struct cmd_entry.flags) */
#define CMD_F_VM      (1u << 0)	/* acts on one VM: the dispatcher resolves it */
#define CMD_F_CFG     (1u << 1)	/* needs hutch.yaml (a VM name alone will not do) */
#define CMD_F_LOCK    (1u << 2)	/* holds the VM lock while it runs (exit 75 when busy) */
#define CMD_F_EXISTS  (1u << 3)	/* the VM must have been created */
#define CMD_F_RUNNING (1u << 4)	/* its supervisor must be alive */
#define CMD_F_CREATE  (1u << 5)	/* creates the VM's directory before locking (up) */
#define CMD_F_HIDDEN  (1u << 6)	/* internal: not listed, no help page */
#define CMD_F_NAME_IF_VM (1u << 7)	/* the first argument is a VM name only if
					   hutch.yaml has a VM of that name (mount TAG) */
#define CMD_F_NO_NAME (1u << 8)	/* positional arguments are never the VM (--vm picks it) */

typedef int (*cmd_fn)(struct cli *cli, struct vm_target *t, int argc, char **argv);

/**
 * struct cmd_entry - one verb
 * @name:    what the user types
 * @usage:   its arguments, e.g. "[NAME] [-- CMD...]"
 * @summary: one line for `hutch --help` and completions
 * @help:    the full page: what it does, options, exit codes, examples
 *           (plain text, paragraphs separated by blank lines; lines that
 *           start with two spaces are kept as they are)
 * @valopts: NULL-terminated list of the verb's options that take a value
 *           as the next argument ("--for", "--timeout"), so the dispatcher
 *           does not take that value for the VM name
 * @flags:   CMD_F_*
 * @fn:      the verb
 */
struct cmd_entry {
	const char *name;
	const char *usage;
	const char *summary;
	const char *help;
	const char *const *valopts;
	unsigned flags;
	cmd_fn fn;
};

/** cmd_table - every verb, in the order `hutch --help` lists them; NULL-terminated */
extern const struct cmd_entry *const cmd_table[];

/**
 * cmd_run() - run the verb in @argv (argv[0] is the verb, global options
 * already removed from the whole command line)
 * Return: the exit code
 */
int cmd_run(struct cli *cli, int argc, char **argv);

/** cmd_find() - the entry of verb @name, or NULL */
const struct cmd_entry *cmd_find(const char *name);

/** cmd_list_verbs() - `hutch --help`: the commands and the global options */
void cmd_list_verbs(FILE *f);

/** cmd_usage() - "usage: hutch VERB USAGE" on stderr; returns EXIT_USAGE */
int cmd_usage(const struct cmd_entry *e);

/** cmd_print_json() - @j on stdout (indented), then a newline; steals @j */
int cmd_print_json(json_t *j);

/**
 * cmd_console_attach() - the terminal on the console of the VM in @vm_dir
 * (`hutch console`, and `autoconnect: console` after up)
 * Return: an exit code
 */
int cmd_console_attach(const char *vm_dir, const char *name);

/* The verbs' entries, each defined in its own src/cmd_*.c */
extern const struct cmd_entry cmd_up_entry, cmd_halt_entry, cmd_destroy_entry,
	cmd_status_entry, cmd_provision_entry, cmd_suspend_entry, cmd_resume_entry,
	cmd_wait_entry, cmd_ssh_entry, cmd_ssh_config_entry, cmd_console_entry, cmd_ip_entry,
	cmd_pubkey_entry, cmd_mount_entry, cmd_unmount_entry, cmd_logs_entry, cmd_list_entry,
	cmd_images_entry, cmd_gc_entry, cmd_inspect_entry, cmd_completion_entry,
	cmd_check_config_entry, cmd_wg_entry, cmd_allow_entry, cmd_setup_entry, cmd_help_entry, cmd_supervise_entry, cmd_man_entry;

#endif

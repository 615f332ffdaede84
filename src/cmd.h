/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_CMD_H
#define HUTCH_CMD_H
/**
 * DOC: cmd - the verbs of the hutch CLI
 *
 * main.c parses the global options into a struct cli and dispatches to
 * cmd_<verb>().  Each verb returns an exit code of SPEC.md (EXIT_* in
 * util.h).  Verbs not built yet are weak stubs in cmd_todo.c; a module that
 * implements one defines the strong symbol in its own src/cmd_*.c file.
 */
#include <stdbool.h>

/**
 * struct cli - global options, resolved
 * @dir:     project directory (-C, $HUTCH_DIR, or the current directory), absolute
 * @json:    --json
 * @quiet:   -q
 * @verbose: -v count
 * @tty:     stderr is a terminal (progress bars allowed)
 */
struct cli {
	char dir[4096];
	bool json;
	bool quiet;
	int verbose;
	bool tty;
};

typedef int (*cmd_fn)(struct cli *cli, int argc, char **argv);

/* argv[0] is the verb itself; options after it are the verb's own */
#define CMD_DECL(n) int cmd_##n(struct cli *cli, int argc, char **argv)
CMD_DECL(up);
CMD_DECL(halt);
CMD_DECL(destroy);
CMD_DECL(status);
CMD_DECL(provision);
CMD_DECL(snapshot);
CMD_DECL(reset);
CMD_DECL(suspend);
CMD_DECL(resume);
CMD_DECL(reload);
CMD_DECL(ssh);
CMD_DECL(ssh_config);
CMD_DECL(console);
CMD_DECL(ip);
CMD_DECL(pubkey);
CMD_DECL(tz);
CMD_DECL(mount);
CMD_DECL(unmount);
CMD_DECL(logs);
CMD_DECL(setup);
CMD_DECL(list);
CMD_DECL(storage);
CMD_DECL(images);
CMD_DECL(gc);
CMD_DECL(wg);
CMD_DECL(inspect);
CMD_DECL(completion);
CMD_DECL(check_config);
CMD_DECL(supervise);
	/* hidden: the per-VM supervisor */

/*
 * The lifecycle as functions, for verbs that combine its steps (snapshot,
 * reset, reload): select the VM, take its lock, then halt and up while
 * holding it, so no other command slips in between.
 */
#include <limits.h>

#include "src/cfg.h"

/**
 * struct vm_sel - the VM a verb acts on
 * @cfg:  hutch.yaml, or NULL when there is none and a name was given
 * @vm:   its config (NULL without @cfg)
 * @name: the VM's name
 * @dir:  its state directory (may not exist)
 */
struct vm_sel {
	struct cfg *cfg;
	const struct cfg_vm *vm;
	char name[CFG_NAME_MAX + 1];
	char dir[PATH_MAX];
};

/**
 * vm_select() - the VM from hutch.yaml in @cli->dir and an optional @name
 * @need_cfg: the verb needs hutch.yaml (up); otherwise a name alone will do
 * Return: EXIT_OK with @s filled (vm_sel_free() it), or the exit code to return
 */
int vm_select(struct cli *cli, const char *name, bool need_cfg, struct vm_sel *s);
void vm_sel_free(struct vm_sel *s);
/** vm_exists() - the VM's state directory exists */
bool vm_exists(const struct vm_sel *s);
/** vm_take_lock() - <dir>/lock, non-blocking; EXIT_OK with *@fd set, or EXIT_BUSY/EXIT_ERR */
int vm_take_lock(const struct vm_sel *s, int *fd);
/**
 * vm_up_locked() - `up` with the lock held: create if new (and provision
 * then), start unless running, wait until ready.  Return: an exit code
 */
int vm_up_locked(struct cli *cli, const struct vm_sel *s);
/**
 * vm_halt_locked() - `halt` with the lock held; @trigger is HUTCH_TRIGGER
 * for the hooks ("halt", "snapshot", "reset", "reload"); a failing pre-down
 * hook aborts unless it is "reset".  Return: an exit code
 */
int vm_halt_locked(struct cli *cli, const struct vm_sel *s, const char *trigger);

/** cmd_not_implemented() - message + exit code for a verb not built yet */
int cmd_not_implemented(const char *verb);

#endif

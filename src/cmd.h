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
 * @yes:     --yes: answer yes to consent questions (allow the project's hooks,
 *           playbook and ansible.cfg, as `hutch allow` would); for scripts
 */
struct cli {
	char dir[4096];
	bool json;
	bool quiet;
	int verbose;
	bool tty;
	bool yes;
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
CMD_DECL(allow);
CMD_DECL(supervise);
	/* hidden: the per-VM supervisor */

/** cmd_not_implemented() - message + exit code for a verb not built yet */
int cmd_not_implemented(const char *verb);

#endif

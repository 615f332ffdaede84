// SPDX-License-Identifier: MIT
/*
 * `hutch check-config [FILE]`: load hutch.yaml exactly as `up` would and
 * print the resolved config (defaults filled in, paths absolute), so a user
 * sees what hutch will do before any VM starts.  Errors are the loader's
 * "file:line:col: message" on stderr and exit 2 (a config error is a usage
 * error in SPEC.md's exit codes), or 77 when the project names a place it
 * may not (outside the project, through a symlink) or hutch.yaml is not
 * the user's own file.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "net/wg_sv.h"
#include "src/cfg.h"
#include "src/cmd.h"
#include "src/log.h"
#include "src/util.h"

/* a refused wireguard.conf (others may read it, a symlink) is "not allowed" */
static int wg_exit_code(int rc)
{
	if (rc == -EACCES || rc == -ELOOP || rc == -EPERM)
		return EXIT_NOPERM;
	return rc == -EINVAL ? EXIT_USAGE : EXIT_ERR;
}

static int cmd_check_config(struct cli *cli, struct vm_target *t, int argc, char **argv)
{
	char def[4200];
	const char *path = NULL;
	struct cfg_error e = { .msg = "" };
	struct cfg *c = NULL;
	bool json = cli->json;
	json_t *j = NULL;
	int i, rc;

	(void)t;
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (argv[i][0] == '-' && argv[i][1]) {
			log_err("check-config: unknown option '%s'; usage: hutch check-config [--json] [FILE]",
				argv[i]);
			return EXIT_USAGE;
		} else if (path) {
			log_err("check-config: one file at most; usage: hutch check-config [--json] [FILE]");
			return EXIT_USAGE;
		} else {
			path = argv[i];
		}
	}
	if (!path) {
		if (util_path_join(def, sizeof(def), cli->dir, "hutch.yaml")) {
			log_err("check-config: project directory path too long");
			return EXIT_USAGE;
		}
		path = def;
	}
	rc = cfg_load(path, &c, &e);
	if (rc) {
		log_err("%s", e.msg);
		if (rc == -ENOENT)
			log_err("hint: create hutch.yaml (at least 'name: NAME') in the project directory, "
				"or use -C DIR");
		/* a path the project may not name is "not allowed", not a typo */
		return rc == -EPERM ? EXIT_NOPERM : EXIT_USAGE;
	}
	/* wireguard.conf beside it: checked the same way, shown with its keys redacted */
	if (json) {
		rc = cfg_to_json(c, &j);
		if (!rc && (rc = wg_check_config(c, NULL, j)) != 0) {
			json_decref(j);
			cfg_free(c);
			return wg_exit_code(rc);
		}
		if (!rc && json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER))
			rc = -EIO;
		if (!rc)
			fputc('\n', stdout);
		json_decref(j);
	} else {
		rc = cfg_print(stdout, c);
		if (!rc && (rc = wg_check_config(c, stdout, NULL)) != 0) {
			cfg_free(c);
			return wg_exit_code(rc);
		}
	}
	cfg_free(c);
	if (!rc && fflush(stdout))
		rc = -errno;
	if (rc) {
		log_errno(rc, "check-config: writing the result");
		return EXIT_ERR;
	}
	return EXIT_OK;
}

const struct cmd_entry cmd_check_config_entry = {
	.name = "check-config",
	.usage = "[FILE]",
	.summary = "validate hutch.yaml and print the resolved config",
	.help = "Loads hutch.yaml (or FILE) exactly as 'hutch up' would and prints the result:\n"
		"defaults filled in, paths absolute, and wireguard.conf beside it with its keys\n"
		"redacted. Errors name file:line:column, with a \"did you mean\" for misspelt\n"
		"keys, and exit 2 (77 for a wireguard.conf others may read). Nothing is started\n"
		"or changed.\n"
		"\n"
		"Examples:\n"
		"  hutch check-config\n"
		"  hutch check-config --json other/hutch.yaml\n",
	.fn = cmd_check_config,
};

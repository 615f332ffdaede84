// SPDX-License-Identifier: MIT
/*
 * `hutch allow`: the user's consent for the project's host-side code
 * (hooks/, playbook.yml, ansible.cfg and the playbook's folders), recorded
 * by content hash as `direnv allow` does (see src/consent.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "src/cmd.h"
#include "src/consent.h"
#include "src/log.h"
#include "src/trust.h"
#include "src/util.h"

static const char allow_help[] =
	"A project directory may come from someone else.  Its hooks/ (run on this\n"
	"host as you around up and halt), its playbook.yml (ansible-playbook runs on\n"
	"this host: lookups, filters and plugins execute here), its ansible.cfg and\n"
	"the folders Ansible loads beside the playbook (roles/, library/, the plugin\n"
	"folders, group_vars/, ...) run only after you allowed them.  `hutch allow`\n"
	"lists those files and records their sha256 for this project directory;\n"
	"`up` and `provision` then run them as long as none changed and none was\n"
	"added.  Read them first.\n"
	"\n"
	"Without consent, `up`, `provision` and the hooks refuse with exit 77 and\n"
	"list what would run; on a terminal they ask, and --yes answers for scripts.\n"
	"Exit 77 also when the code cannot be reviewed (a symlink, someone else's file).\n"
	"\n"
	"Options:\n"
	"  --revoke   forget the consent for this project\n"
	"  --json     print {\"project\", \"files\": {PATH: SHA256}} on stdout\n"
	"\n"
	"Examples:\n"
	"  cat hooks/* playbook.yml && hutch allow\n"
	"  hutch allow --revoke\n";

static int allow_print(struct cli *cli, bool json, const char *dir, const struct consent_set *s)
{
	json_t *files, *o;

	if (!json) {
		for (size_t i = 0; i < s->n; i++)
			printf("%s  %s\n", s->items[i].sha256, s->items[i].rel);
		return fflush(stdout) ? -EIO : 0;
	}
	(void)cli;
	files = json_object();
	for (size_t i = 0; files && i < s->n; i++)
		json_object_set_new(files, s->items[i].rel, json_string(s->items[i].sha256));
	o = files ? json_pack("{s:s, s:o}", "project", dir, "files", files) : NULL;
	if (!o)
		return -ENOMEM;
	json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	putchar('\n');
	json_decref(o);
	return fflush(stdout) ? -EIO : 0;
}

static int cmd_allow(struct cli *cli, struct vm_target *t, int argc, char **argv)
{
	struct consent_set s;
	char why[TRUST_WHY_MAX] = "";
	bool revoke = false, json = cli->json;
	int rc;

	(void)t;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--revoke"))
			revoke = true;
		else
			return cmd_usage(&cmd_allow_entry);
	}
	if (revoke) {
		rc = consent_revoke(cli->dir);
		if (rc) {
			log_errno(rc, "forgetting the consent for %s", cli->dir);
			return rc == -EPERM ? EXIT_NOPERM : EXIT_ERR;
		}
		log_info("consent for %s forgotten", cli->dir);
		return EXIT_OK;
	}
	rc = consent_scan(cli->dir, &s, why, sizeof(why));
	if (rc == -EPERM) {
		log_err("%s: %s", cli->dir, why);
		return EXIT_NOPERM;
	}
	if (rc) {
		log_errno(rc, "reviewing the code in %s", cli->dir);
		return EXIT_ERR;
	}
	if (!s.n) {
		log_info("nothing in %s runs on this host (no hooks/, playbook.yml, ansible.cfg)",
			 cli->dir);
	} else {
		rc = consent_compare(cli->dir, &s);
		if (!rc && !cli->quiet) {
			log_info("allowing this code of %s to run on this host as you:", cli->dir);
			consent_print(stderr, &s);
		}
		if (!rc)
			rc = consent_record(cli->dir, &s);
		if (rc) {
			log_errno(rc, "recording the consent for %s", cli->dir);
			consent_set_free(&s);
			return rc == -EPERM ? EXIT_NOPERM : EXIT_ERR;
		}
	}
	rc = allow_print(cli, json, cli->dir, &s);
	consent_set_free(&s);
	return rc ? EXIT_ERR : EXIT_OK;
}

const struct cmd_entry cmd_allow_entry = {
	.name = "allow",
	.usage = "[--revoke]",
	.summary = "allow the project's hooks, playbook and ansible.cfg to run",
	.help = allow_help,
	.fn = cmd_allow,
};

// SPDX-License-Identifier: MIT
/*
 * Verbs: ssh, ssh-config, pubkey, provision.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/cfg.h"
#include "src/consent.h"
#include "src/cmd.h"
#include "src/log.h"
#include "src/prov.h"
#include "src/ssh.h"
#include "src/ssh_ext.h"
#include "src/util.h"
#include "src/vm.h"

/* the index of "--" in @argv, or @argc; nothing else may come before it */
static int ssh_dashdash(int argc, char **argv)
{
	if (argc == 1)
		return argc;
	return strcmp(argv[1], "--") ? -1 : 1;
}

static int cmd_ssh(struct cli *cli, struct vm_target *t, int argc, char **argv)
{
	int dd = ssh_dashdash(argc, argv);

	if (dd < 0)
		return cmd_usage(&cmd_ssh_entry);
	/* returns only on failure */
	ssh_exec(t->vm, cli->dir, t->dir, t->state,
		 dd < argc - 1 ? (const char *const *)&argv[dd + 1] : NULL);
	return EXIT_ERR;
}

const struct cmd_entry cmd_ssh_entry = {
	.name = "ssh",
	.usage = "[NAME] [-- CMD...]",
	.summary = "log in, or run a command, with the pinned host key",
	.help = "Logs in to the VM over SSH, or runs CMD there and exits with its status. The\n"
		"connection uses the managed key (or ssh.key) and the VM's own host key, made by\n"
		"hutch and pinned: never StrictHostKeyChecking=no.\n"
		"\n"
		"Examples:\n"
		"  hutch ssh\n"
		"  hutch ssh -- make test\n"
		"  hutch ssh agent -- 'cd /workspace && ls'\n",
	.flags = CMD_F_VM | CMD_F_CFG | CMD_F_RUNNING,
	.fn = cmd_ssh,
};

static int cmd_ssh_config(struct cli *cli, struct vm_target *t, int argc, char **argv)
{
	struct ssh_conn *c;
	int rc = EXIT_OK;

	(void)argv;
	if (argc > 1)
		return cmd_usage(&cmd_ssh_config_entry);
	c = calloc(1, sizeof(*c));
	if (!c || ssh_conn_init(c, t->vm, cli->dir, t->dir, t->state) < 0 ||
	    ssh_config_print(stdout, c) < 0)
		rc = EXIT_ERR;
	free(c);
	return rc;
}

const struct cmd_entry cmd_ssh_config_entry = {
	.name = "ssh-config",
	.usage = "[NAME]",
	.summary = "print an ssh_config block for the VM",
	.help = "Prints a Host block for ssh_config(5) with the VM's address, user, key and\n"
		"pinned host key, so that plain ssh, scp, rsync or an editor's remote mode can\n"
		"reach the VM under the host name hutch-NAME.\n"
		"\n"
		"Example:\n"
		"  hutch ssh-config >> ~/.ssh/config && scp file hutch-agent:\n",
	.flags = CMD_F_VM | CMD_F_CFG | CMD_F_RUNNING,
	.fn = cmd_ssh_config,
};

static int cmd_pubkey(struct cli *cli, struct vm_target *t, int argc, char **argv)
{
	char path[PATH_MAX], line[SSH_PUB_MAX];
	bool created;
	int rc;

	(void)cli;
	(void)t;
	(void)argv;
	if (argc > 1)
		return cmd_usage(&cmd_pubkey_entry);
	if ((rc = ssh_managed_key_path(path, sizeof(path))) < 0 ||
	    (rc = ssh_keygen(path, "hutch", &created)) < 0 ||
	    (rc = ssh_pubkey_read(path, line, sizeof(line))) < 0) {
		log_errno(rc, "the managed key ~/.ssh/hutch");
		return rc == -ENOENT ? EXIT_NODEP : EXIT_ERR;
	}
	if (created)
		log_info("created %s (ed25519)", path);
	printf("%s\n", line);
	return fflush(stdout) == 0 ? EXIT_OK : EXIT_ERR;
}

const struct cmd_entry cmd_pubkey_entry = {
	.name = "pubkey",
	.usage = "",
	.summary = "print the managed public key, creating it if needed",
	.help = "Prints the public half of the managed key ~/.ssh/hutch (ed25519, comment\n"
		"'hutch'), creating the pair first if there is none. cloud-init.yml gets it where\n"
		"it says __HUTCH_PUBKEY__.\n"
		"\n"
		"Example:\n"
		"  hutch pubkey\n",
	.fn = cmd_pubkey,
};

static int cmd_provision(struct cli *cli, struct vm_target *t, int argc, char **argv)
{
	char pb[PATH_MAX];
	int rc;

	(void)argv;
	if (argc > 1)
		return cmd_usage(&cmd_provision_entry);
	if (util_path_join(pb, sizeof(pb), cli->dir, "playbook.yml") < 0 || access(pb, R_OK) < 0) {
		log_err("no readable playbook.yml in %s", cli->dir);
		return EXIT_ERR;
	}
	/* consent first: code nobody allowed is refused (77) whatever the VM's state */
	rc = consent_require(cli->dir, cli->yes, "provision");
	if (rc == 0 && !t->alive) {
		log_err("%s is not running (hutch up starts it)", t->name);
		return EXIT_ERR;
	}
	if (rc == 0)
		rc = prov_playbook(t->vm, cli->dir, t->dir, t->state, NULL, NULL);
	return rc == -EPERM ? EXIT_NOPERM : rc < 0 ? EXIT_ERR : EXIT_OK;
}

const struct cmd_entry cmd_provision_entry = {
	.name = "provision",
	.usage = "[NAME]",
	.summary = "run playbook.yml again",
	.help = "Runs the project's playbook.yml with ansible-playbook against the running VM,\n"
		"over SSH with its pinned host key (up runs it once, on first creation). Its\n"
		"output goes to the terminal and to provision.log ('hutch logs --provision').\n"
		"The playbook runs only after 'hutch allow' (or --yes).\n"
		"\n"
		"Example:\n"
		"  hutch provision\n",
	.flags = CMD_F_VM | CMD_F_CFG | CMD_F_LOCK | CMD_F_EXISTS,
	.fn = cmd_provision,
};

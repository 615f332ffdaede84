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
#include "src/cmd.h"
#include "src/consent.h"
#include "src/log.h"
#include "src/prov.h"
#include "src/ssh.h"
#include "src/ssh_ext.h"
#include "src/state.h"
#include "src/util.h"

/* Weak until the config and state modules are on main (the verbs then say so). */
extern int cfg_load(const char *path, struct cfg **out, struct cfg_error *e) __attribute__((weak));
extern void cfg_free(struct cfg *c) __attribute__((weak));
extern const struct cfg_vm *cfg_find_vm(const struct cfg *c, const char *name)
	__attribute__((weak));
extern int state_load(const char *vm_dir, json_t **out) __attribute__((weak));

/**
 * struct ssh_verb - what every ssh verb needs: the VM, its dir and state
 * Owned by the verb; ssh_verb_done() frees.
 */
struct ssh_verb {
	struct cfg *cfg;
	const struct cfg_vm *vm;
	char vm_dir[PATH_MAX];
	json_t *state;
};

static void ssh_verb_done(struct ssh_verb *v)
{
	json_decref(v->state);
	if (v->cfg && cfg_free)
		cfg_free(v->cfg);
}

/* Load hutch.yaml, pick the VM @name (NULL: the only/first), read its state. */
static int ssh_verb_init(struct cli *cli, const char *name, bool need_running, struct ssh_verb *v)
{
	char path[PATH_MAX];
	struct cfg_error e = { { 0 } };
	const char *status;
	int rc;

	memset(v, 0, sizeof(*v));
	if (!cfg_load || !cfg_find_vm || !state_load)
		return cmd_not_implemented("loading hutch.yaml");
	if (util_path_join(path, sizeof(path), cli->dir, "hutch.yaml") < 0)
		return EXIT_USAGE;
	rc = cfg_load(path, &v->cfg, &e);
	if (rc < 0) {
		log_err("%s", e.msg[0] ? e.msg : "cannot load hutch.yaml");
		return rc == -EINVAL ? EXIT_USAGE : rc == -EPERM ? EXIT_NOPERM : EXIT_ERR;
	}
	v->vm = cfg_find_vm(v->cfg, name);
	if (!v->vm) {
		log_err("no VM named '%s' in %s", name ? name : "", path);
		return EXIT_USAGE;
	}
	log_set_vm(v->vm->name);
	if (util_vm_dir(v->vm->name, v->vm_dir, sizeof(v->vm_dir)) < 0)
		return EXIT_ERR;
	rc = state_load(v->vm_dir, &v->state);
	if (rc == -ENOENT) {
		log_err("%s does not exist yet (hutch up)", v->vm->name);
		return EXIT_ERR;
	}
	if (rc < 0) {
		log_errno(rc, "reading the state of %s", v->vm->name);
		return EXIT_ERR;
	}
	status = json_string_value(json_object_get(v->state, "status"));
	if (need_running && (!status || strcmp(status, "running"))) {
		log_err("%s is not running (status %s): hutch up", v->vm->name,
			status ? status : "unknown");
		return EXIT_ERR;
	}
	return EXIT_OK;
}

/* [NAME] before an optional "--": the VM's name, or NULL. */
static int ssh_verb_args(int argc, char **argv, const char **name, int *dashdash)
{
	int i;

	*name = NULL;
	*dashdash = argc;
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			*dashdash = i;
			break;
		}
		if (argv[i][0] == '-' || *name) {
			log_err("usage: hutch %s [NAME]%s", argv[0],
				!strcmp(argv[0], "ssh") ? " [-- CMD...]" : "");
			return EXIT_USAGE;
		}
		*name = argv[i];
	}
	return EXIT_OK;
}

int cmd_ssh(struct cli *cli, int argc, char **argv)
{
	struct ssh_verb v;
	const char *name;
	int dd, rc;

	rc = ssh_verb_args(argc, argv, &name, &dd);
	if (rc)
		return rc;
	rc = ssh_verb_init(cli, name, true, &v);
	if (rc == EXIT_OK) {
		/* returns only on failure */
		ssh_exec(v.vm, cli->dir, v.vm_dir, v.state,
			 dd < argc - 1 ? (const char *const *)&argv[dd + 1] : NULL);
		rc = EXIT_ERR;
	}
	ssh_verb_done(&v);
	return rc;
}

int cmd_ssh_config(struct cli *cli, int argc, char **argv)
{
	struct ssh_verb v;
	struct ssh_conn *c = NULL;
	const char *name;
	int dd, rc;

	rc = ssh_verb_args(argc, argv, &name, &dd);
	if (rc)
		return rc;
	if (dd != argc) {
		log_err("usage: hutch ssh-config [NAME]");
		return EXIT_USAGE;
	}
	rc = ssh_verb_init(cli, name, true, &v);
	if (rc == EXIT_OK) {
		c = calloc(1, sizeof(*c));
		if (!c || ssh_conn_init(c, v.vm, cli->dir, v.vm_dir, v.state) < 0 ||
		    ssh_config_print(stdout, c) < 0)
			rc = EXIT_ERR;
	}
	free(c);
	ssh_verb_done(&v);
	return rc;
}

int cmd_pubkey(struct cli *cli, int argc, char **argv)
{
	char path[PATH_MAX], line[SSH_PUB_MAX];
	bool created;
	int rc;

	(void)cli;
	if (argc > 1) {
		log_err("usage: hutch %s", argv[0]);
		return EXIT_USAGE;
	}
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

int cmd_provision(struct cli *cli, int argc, char **argv)
{
	struct ssh_verb v;
	const char *name;
	int dd, rc;

	rc = ssh_verb_args(argc, argv, &name, &dd);
	if (rc)
		return rc;
	if (dd != argc) {
		log_err("usage: hutch provision [NAME]");
		return EXIT_USAGE;
	}
	rc = ssh_verb_init(cli, name, true, &v);
	if (rc == EXIT_OK) {
		char pb[PATH_MAX];
		int prc;

		if (util_path_join(pb, sizeof(pb), cli->dir, "playbook.yml") < 0 ||
		    access(pb, R_OK) < 0) {
			log_err("no readable playbook.yml in %s", cli->dir);
			rc = EXIT_ERR;
		} else if ((prc = consent_require(cli->dir, cli->yes, "provision")) < 0) {
			rc = prc == -EPERM ? EXIT_NOPERM : EXIT_ERR;
		} else {
			prc = prov_playbook(v.vm, cli->dir, v.vm_dir, v.state, NULL, NULL);
			rc = prc == -EPERM ? EXIT_NOPERM : prc < 0 ? EXIT_ERR : EXIT_OK;
		}
	}
	ssh_verb_done(&v);
	return rc;
}

// SPDX-License-Identifier: MIT
/*
 * `hutch reset`: the VM's disk rebuilt as an overlay on the snapshot that
 * `hutch snapshot` took (src/cmd_snapshot.c), then `up`.  The dispatcher
 * loads hutch.yaml before anything (CMD_F_CFG: a broken one refuses with
 * exit 2) and holds the VM lock throughout; a VM without a snapshot is
 * refused (78) before anything is halted or destroyed.
 */
#include <limits.h>
#include <stdint.h>
#include <unistd.h>

#include "src/cfg.h"
#include "src/cmd.h"
#include "src/log.h"
#include "src/snap.h"
#include "src/util.h"
#include "src/vm.h"

static int cmd_reset(struct cli *cli, struct vm_target *t, int argc, char **argv)
{
	char path[PATH_MAX];
	json_t *idx = NULL;
	int rc;

	(void)argv;
	if (argc > 1)
		return cmd_usage(&cmd_reset_entry);
	if (snap_path(t->dir, "anchor", NULL, path, sizeof(path)))
		return EXIT_ERR;
	if (!t->state || access(path, F_OK) < 0) {
		log_err("%s has no snapshot to reset to (take one with `hutch snapshot`); "
			"nothing was changed", t->name);
		return EXIT_NOSETUP;
	}
	if (snap_index_load(t->dir, &idx))
		return EXIT_ERR;
	rc = vm_halt_locked(cli, t, "reset");
	if (rc)
		goto out;
	log_info("rebuilding the disk of %s from its snapshot", t->name);
	rc = EXIT_ERR;
	if (snap_rebuild(t->dir, idx, path, (uint64_t)t->vm->disk_gib << 30))
		goto out;
	snap_set_str(idx, "current", "anchor");
	if (snap_index_save(t->dir, idx))
		goto out;
	/* the playbook does not run again: up runs it only for a VM it creates */
	rc = vm_up_locked(cli, t);
out:
	json_decref(idx);
	return rc;
}

static const char reset_help[] =
	"Destroys the VM's disk and rebuilds it as an overlay on the snapshot taken by\n"
	"'hutch snapshot', then brings the VM up. The playbook does not run again: the\n"
	"snapshot already holds its result. Saved running states (snapshot save\n"
	"--running) die with the old disk. The pre-down hook runs, but its failure does\n"
	"not stop the reset.\n"
	"\n"
	"Nothing is destroyed when hutch.yaml is invalid (exit 2) or when the VM has no\n"
	"snapshot (exit 78).\n"
	"\n"
	"Examples:\n"
	"  hutch snapshot && hutch up     # keep the state you set up\n"
	"  hutch ssh -- sudo rm -rf /etc  # the agent made a mess\n"
	"  hutch reset                    # back to the snapshot, and running\n";

const struct cmd_entry cmd_reset_entry = {
	.name = "reset",
	.usage = "[NAME]",
	.summary = "rebuild the disk from the snapshot and start the VM",
	.help = reset_help,
	.flags = CMD_F_VM | CMD_F_CFG | CMD_F_LOCK,
	.fn = cmd_reset,
};

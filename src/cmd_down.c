// SPDX-License-Identifier: MIT
/*
 * `hutch halt` and `hutch destroy`: ask the supervisor to power the guest
 * down (ACPI, then quit, then SIGKILL: the supervisor does the steps), wait
 * for it to be gone, or clean up after one that died.  destroy also removes
 * the VM's directory: disk, seed, snapshots, keys, logs; never the base
 * image nor a share's image, which live elsewhere.
 */
#include <stdio.h>
#include <string.h>

#include "src/cfg.h"
#include "src/cmd.h"
#include "src/ext.h"
#include "src/log.h"
#include "src/state.h"
#include "src/util.h"
#include "src/vm.h"

/* pre-down hooks; a failure aborts halt and snapshot, never destroy nor reset */
static int vm_before_down(struct up_ctx *u, const char *trigger, bool destroy)
{
	const struct up_ext *const *ext = ext_up_list();
	int rc;

	for (size_t i = 0; u->state && u->vm && ext[i]; i++) {
		if (ext[i]->before_down && (rc = ext[i]->before_down(u, trigger))) {
			log_errno(rc, "%s: before %s", ext[i]->name, trigger);
			if (!destroy && strcmp(trigger, "reset"))
				return rc;
		}
	}
	return 0;
}

/* halt or destroy with the lock held; @trigger is what hooks see (HUTCH_TRIGGER) */
static int vm_down_locked(struct cli *cli, struct vm_target *t, const char *trigger, bool destroy)
{
	const struct up_ext *const *ext = ext_up_list();
	struct up_ctx u = { .cli = cli, .cfg = t->cfg, .vm = t->vm, .vm_dir = t->dir,
			    .state = t->state, .t0 = util_monotonic_ms() };
	int rc, ret = EXIT_ERR;

	t->state = NULL;	/* u owns it from here */
	if (!u.state && !destroy) {
		log_info("%s does not exist", t->name);
		ret = EXIT_OK;
		goto out;
	}
	if (vm_before_down(&u, trigger, destroy) || vm_stop(t, &u, trigger))
		goto out;
	if (destroy) {
		rc = util_rm_rf(t->dir);
		if (rc) {
			log_errno(rc, "removing %s", t->dir);
			goto out;
		}
		log_info("%s destroyed", t->name);
	} else {
		const char *why = state_get_str(u.state, "exit_reason");

		log_info("%s is %s%s%s%s", t->name, vm_effective_status(t->dir, u.state),
			 why ? " (" : "", why ? why : "", why ? ")" : "");
	}
	for (size_t i = 0; t->vm && u.state && ext[i]; i++)
		if (ext[i]->after_down && (rc = ext[i]->after_down(&u, trigger)))
			log_warno(rc, "%s: after %s", ext[i]->name, trigger);
	ret = EXIT_OK;
out:
	json_decref(u.state);
	return ret;
}

int vm_halt_locked(struct cli *cli, struct vm_target *t, const char *trigger)
{
	int rc;

	if (!t->alive)
		return EXIT_OK;
	rc = vm_down_locked(cli, t, trigger, false);
	if (rc)
		return rc;
	/* what comes next (a disk copy, a rebuild) needs QEMU gone for sure */
	if (vm_target_reload(t) == 0 && t->alive) {
		log_err("%s is still running", t->name);
		return EXIT_ERR;
	}
	return EXIT_OK;
}

static int cmd_halt(struct cli *cli, struct vm_target *t, int argc, char **argv)
{
	(void)argv;
	if (argc > 1)
		return cmd_usage(&cmd_halt_entry);
	return vm_down_locked(cli, t, "halt", false);
}

static int cmd_destroy(struct cli *cli, struct vm_target *t, int argc, char **argv)
{
	(void)argv;
	if (argc > 1)
		return cmd_usage(&cmd_destroy_entry);
	return vm_down_locked(cli, t, "destroy", true);
}

static const char halt_help[] =
	"Powers the VM down: an ACPI power-button press over QMP, a wait of up to\n"
	"timeouts.shutdown seconds for the guest to turn itself off, then QEMU's quit,\n"
	"then SIGKILL. Networking (tap, rules) and share mounts are always torn down.\n"
	"The pre-down hook runs first; if it fails, the VM keeps running. Halting a VM\n"
	"that is not running is not an error.\n"
	"\n"
	"Examples:\n"
	"  hutch halt\n"
	"  hutch -C ~/work/agent halt\n";

const struct cmd_entry cmd_halt_entry = {
	.name = "halt",
	.usage = "[NAME]",
	.summary = "ACPI power-down, then quit, then kill",
	.help = halt_help,
	.flags = CMD_F_VM | CMD_F_LOCK,
	.fn = cmd_halt,
};

static const char destroy_help[] =
	"Stops the VM (as halt does, also when its pre-down hook fails) and removes its\n"
	"state directory: the disk overlay, the seed, snapshots, saved state, generated\n"
	"keys and logs. The cached base image and the images of shared folders stay.\n"
	"Destroying a VM that does not exist is not an error.\n"
	"\n"
	"Examples:\n"
	"  hutch destroy\n"
	"  hutch destroy agent     # by name, from any directory\n";

const struct cmd_entry cmd_destroy_entry = {
	.name = "destroy",
	.usage = "[NAME]",
	.summary = "stop the VM and remove its disk, seed and snapshots",
	.help = destroy_help,
	.flags = CMD_F_VM | CMD_F_LOCK,
	.fn = cmd_destroy,
};

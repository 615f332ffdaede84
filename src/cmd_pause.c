// SPDX-License-Identifier: MIT
/*
 * `hutch suspend` and `hutch resume`: pause and continue the guest's CPUs
 * (QMP stop/cont, through the supervisor's control socket).  Memory stays
 * allocated; the guest's clock jumps when it continues.
 */
#include <string.h>

#include "src/cmd.h"
#include "src/log.h"
#include "src/state.h"
#include "src/util.h"
#include "src/vm.h"

static int vm_pause(struct vm_target *t, int argc, const char *cmd, const struct cmd_entry *e)
{
	json_t *req, *resp = NULL;
	int rc, ret = EXIT_ERR;

	if (argc > 1)
		return cmd_usage(e);
	req = json_pack("{s:s}", "cmd", cmd);
	rc = vm_control(t->dir, req, &resp, VM_CTL_TIMEOUT_MS);
	json_decref(req);
	if (rc) {
		log_errno(rc, "control socket");
		goto out;
	}
	if (!json_is_true(json_object_get(resp, "ok"))) {
		log_err("%s: %s", cmd, state_get_str(resp, "error") ?: "failed");
		goto out;
	}
	log_info("%s %s", t->name, !strcmp(cmd, "suspend") ? "paused" : "running");
	ret = EXIT_OK;
out:
	json_decref(resp);
	return ret;
}

static int cmd_suspend(struct cli *cli, struct vm_target *t, int argc, char **argv)
{
	(void)cli;
	(void)argv;
	return vm_pause(t, argc, "suspend", &cmd_suspend_entry);
}

static int cmd_resume(struct cli *cli, struct vm_target *t, int argc, char **argv)
{
	(void)cli;
	(void)argv;
	return vm_pause(t, argc, "resume", &cmd_resume_entry);
}

const struct cmd_entry cmd_suspend_entry = {
	.name = "suspend",
	.usage = "[NAME]",
	.summary = "pause the VM's CPUs",
	.help = "Pauses the guest's virtual CPUs (QMP stop). Its memory stays allocated and\n"
		"its network quiet; 'hutch resume' continues it where it stopped.\n"
		"\n"
		"Example:\n"
		"  hutch suspend && hutch status\n",
	.flags = CMD_F_VM | CMD_F_LOCK | CMD_F_RUNNING,
	.fn = cmd_suspend,
};

const struct cmd_entry cmd_resume_entry = {
	.name = "resume",
	.usage = "[NAME]",
	.summary = "continue a suspended VM",
	.help = "Continues a VM paused by 'hutch suspend' (QMP cont).\n"
		"\n"
		"Example:\n"
		"  hutch resume\n",
	.flags = CMD_F_VM | CMD_F_LOCK | CMD_F_RUNNING,
	.fn = cmd_resume,
};

// SPDX-License-Identifier: MIT
/*
 * `hutch gc`: clean up after supervisors that died (kill -9, OOM, a host
 * crash): taps, rules, mounts, sockets, a QEMU that survived; then the
 * taps and rules whose VM directory is gone altogether.
 *
 * Each VM is locked before its state is read, and skipped when another
 * command holds the lock: a VM being started or stopped right now is not
 * garbage, and state read before the lock could be a moment old (an `up`
 * in between would otherwise have its fresh tap and rules removed).
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>

#include "net/priv.h"
#include "src/cmd.h"
#include "src/log.h"
#include "src/util.h"
#include "src/vm.h"

static int cmd_gc(struct cli *cli, struct vm_target *t0, int argc, char **argv)
{
	char dir[PATH_MAX];
	struct dirent *de;
	int n = 0, ret = EXIT_OK, rc;
	DIR *d;

	(void)cli;
	(void)t0;
	(void)argv;
	if (argc > 1)
		return cmd_usage(&cmd_gc_entry);
	if (vm_root_dir(dir, sizeof(dir)))
		return EXIT_ERR;
	d = opendir(dir);
	while (d && (de = readdir(d))) {
		struct vm_target t;

		if (!util_name_valid(de->d_name))
			continue;
		if (vm_target_by_dir(de->d_name, CMD_F_LOCK, &t) == EXIT_OK && t.state &&
		    vm_is_stale(t.dir, t.state)) {
			log_set_vm(t.name);
			if (vm_gc(t.dir, t.state))
				ret = EXIT_ERR;
			log_info("%s: cleaned up after a dead supervisor", t.name);
			n++;
		}
		vm_target_close(&t);
	}
	if (d)
		closedir(d);
	log_set_vm(NULL);
	/*
	 * Then the privileged side's sweep: taps, rules and mounts whose VM
	 * directory is gone (rm -rf, another user's crashed VM) have no state
	 * to be found by above.  Without the helper (a user with no network
	 * set up) there is nothing of that kind to sweep.
	 */
	if (priv_check() == 0) {
		rc = priv_gc(NULL);
		if (rc < 0 && rc != -ENOENT) {
			log_errno(rc, "sweeping taps and rules of VMs that are gone");
			ret = EXIT_ERR;
		}
	}
	priv_close();
	if (!n)
		log_info("nothing to clean up");
	return ret;
}

const struct cmd_entry cmd_gc_entry = {
	.name = "gc",
	.usage = "",
	.summary = "remove what crashed VMs left behind",
	.help = "Finds VMs whose supervisor died without cleaning up (kill -9, a host crash)\n"
		"and removes what they left: the tap and its rules, share mounts and virtiofsd,\n"
		"stale sockets, a QEMU that survived. A VM that another hutch command is working\n"
		"on is left alone. 'hutch up' does the same for its own VM before it starts.\n"
		"\n"
		"Example:\n"
		"  hutch gc\n",
	.fn = cmd_gc,
};

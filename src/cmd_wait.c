// SPDX-License-Identifier: MIT
/*
 * `hutch wait --for ip|ssh|cloud-init|stopped [--timeout S]`: for rigs that
 * start VMs with `up --no-wait` and wait for them later, in parallel.
 * The same waits as `up` (src/ssh_ext.c for SSH and cloud-init), each
 * stopping early when the VM dies.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "src/cmd.h"
#include "src/ext.h"
#include "src/log.h"
#include "src/ssh_ext.h"
#include "src/state.h"
#include "src/util.h"
#include "src/vm.h"

/* the guest's address: its DHCP lease (nat), or the SSH forward (user) */
static int wait_ip(struct up_ctx *u, unsigned timeout_s)
{
	uint64_t deadline = util_monotonic_ms() + (uint64_t)timeout_s * 1000;

	for (;;) {
		const char *ip;

		if (up_state_reload(u) == 0) {
			ip = state_get_str(json_object_get(u->state, "net"), "ip");
			if (!ip && state_get_int(json_object_get(u->state, "ssh"), "port", 0) > 0)
				ip = "127.0.0.1";
			if (ip) {
				printf("%s\n", ip);
				return 0;
			}
		}
		if (!up_vm_alive(u)) {
			log_err("%s is not running", u->vm ? u->vm->name : "the VM");
			return -ESRCH;
		}
		if (util_monotonic_ms() >= deadline)
			return -ETIMEDOUT;
		usleep(200 * 1000);
	}
}

static int wait_stopped(struct vm_target *t, unsigned timeout_s)
{
	long long pid = state_get_int(t->state, "supervisor_pid", 0);

	if (!t->alive)
		return 0;
	return vm_wait_pid_gone((pid_t)pid, (int)timeout_s * 1000);
}

static int cmd_wait(struct cli *cli, struct vm_target *t, int argc, char **argv)
{
	struct up_ctx u = { .cli = cli, .cfg = t->cfg, .vm = t->vm, .vm_dir = t->dir,
			    .t0 = util_monotonic_ms() };
	const char *what = NULL;
	long timeout = -1;
	struct cfg_vm vm;
	int rc;

	for (int i = 1; i < argc; i++) {
		const char *v = NULL;

		if (!strcmp(argv[i], "--for") && i + 1 < argc)
			what = argv[++i];
		else if (!strncmp(argv[i], "--for=", 6))
			what = argv[i] + 6;
		else if ((!strcmp(argv[i], "--timeout") && i + 1 < argc && (v = argv[++i])) ||
			 (!strncmp(argv[i], "--timeout=", 10) && (v = argv[i] + 10))) {
			if (util_parse_long(v, 1, 86400, &timeout)) {
				log_err("--timeout takes seconds (1..86400)");
				return EXIT_USAGE;
			}
		} else {
			return cmd_usage(&cmd_wait_entry);
		}
	}
	if (!what || (strcmp(what, "ip") && strcmp(what, "ssh") && strcmp(what, "cloud-init") &&
		      strcmp(what, "stopped")))
		return cmd_usage(&cmd_wait_entry);
	if (!strcmp(what, "stopped"))
		rc = wait_stopped(t, timeout > 0 ? (unsigned)timeout : 3600);
	else if (!t->alive)
		rc = -ESRCH;
	else if (!strcmp(what, "ip"))
		rc = wait_ip(&u, timeout > 0 ? (unsigned)timeout : (t->vm ? t->vm->timeouts.boot : 300));
	else if (!t->vm) {
		log_err("waiting for %s needs the project's hutch.yaml (-C DIR)", what);
		return EXIT_USAGE;
	} else {
		/* --timeout replaces the waits' own timeouts from hutch.yaml */
		vm = *t->vm;
		if (timeout > 0)
			vm.timeouts.ssh = vm.timeouts.cloud_init = (unsigned)timeout;
		u.vm = &vm;
		u.state = json_incref(t->state);
		rc = ssh_ext_wait_for(&u, !strcmp(what, "cloud-init"));
		if (rc == -ENOTSUP)
			log_err("%s has no SSH to wait for (see above)", t->name);
	}
	json_decref(u.state);
	if (rc == -ESRCH)
		log_err("%s is not running", t->name);
	else if (rc == -ETIMEDOUT)
		log_err("%s: no %s within the timeout", t->name, what);
	return rc ? EXIT_ERR : EXIT_OK;
}

static const char *const wait_valopts[] = { "--for", "--timeout", NULL };

const struct cmd_entry cmd_wait_entry = {
	.name = "wait",
	.usage = "[NAME] --for ip|ssh|cloud-init|stopped [--timeout S]",
	.summary = "wait until the VM has an address, answers SSH, or stopped",
	.help = "Waits for one thing and returns 0 when it happened, 1 when the VM stopped or\n"
		"the time ran out first. For scripts that start VMs with 'hutch up --no-wait'.\n"
		"\n"
		"  --for ip          the guest took its DHCP lease (prints the address)\n"
		"  --for ssh         SSH answers with the VM's pinned host key\n"
		"  --for cloud-init  SSH answers and cloud-init is done\n"
		"  --for stopped     the VM is not running any more\n"
		"  --timeout S       give up after S seconds (default: the timeouts in hutch.yaml;\n"
		"                    an hour for stopped)\n"
		"\n"
		"Examples:\n"
		"  hutch up --no-wait && hutch wait --for ssh\n"
		"  for d in vm1 vm2 vm3; do hutch -C $d wait --for ip --timeout 300 & done; wait\n",
	.valopts = wait_valopts,
	.flags = CMD_F_VM | CMD_F_EXISTS,
	.fn = cmd_wait,
};

/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_PROV_H
#define HUTCH_PROV_H
/**
 * DOC: prov - provisioning with ansible-playbook, and bounded child runs
 *
 * The playbook runs with the real ansible-playbook against an inventory
 * hutch writes (<vm_dir>/inventory.json), over the same pinned SSH as
 * everything else: ansible_ssh_common_args carries -F /dev/null, the
 * known_hosts file and HostKeyAlias, and ANSIBLE_HOST_KEY_CHECKING=True.
 * Its output goes to <vm_dir>/provision.log between marker lines
 * ("==> hutch provision: start ...", "==> hutch provision: end exit=N");
 * on failure the tail of that log is shown.  A successful run leaves
 * <vm_dir>/provisioned.
 *
 * ansible-playbook runs on the host, so the playbook is host code: it runs
 * only as `hutch allow` recorded it (consent_verify()).  And Ansible is
 * pinned to this VM: ANSIBLE_CONFIG names an ansible.cfg hutch writes in
 * <vm_dir> (the project's is never read), `--limit <vm>` keeps plays for
 * other hosts (`hosts: localhost`) from running, the VM's connection is
 * ssh whatever a play says, and localhost's is a plugin that does not exist,
 * so `delegate_to: localhost` fails.  No inventory value holds "{{".
 */
#include <stdbool.h>

#include <jansson.h>

#include "src/cfg.h"

/**
 * prov_run() - run a program to completion within @timeout_s seconds
 * @argv, @envp: as proc_spawn
 * @cwd:         working directory, or NULL
 * @out_fd:      receives the child's stdout and stderr (-1: /dev/null)
 * @timeout_s:   0 for no limit
 * @alive:       polled every half second; when it returns false the child is
 *               killed and -ESRCH returned (may be NULL)
 * @arg:         for @alive
 * @code:        set to the exit code (128+signal) when the child ended
 *
 * The child is killed (SIGTERM, then SIGKILL) on timeout: nothing is left running.
 * Return: 0, -ETIMEDOUT, -ESRCH, or a negative errno from spawning
 */
int prov_run(const char *const *argv, const char *const *envp, const char *cwd, int out_fd,
	     unsigned timeout_s, bool (*alive)(void *), void *arg, int *code);

/** prov_log_open() - <vm_dir>/provision.log for appending (O_CLOEXEC); the caller closes it */
int prov_log_open(const char *vm_dir);

/**
 * prov_playbook() - run <project>/playbook.yml against the VM
 * @alive, @arg: as prov_run (stop when the VM dies)
 *
 * Return: 0 on success, -ENOENT when the project has no playbook.yml,
 * -EPERM when it is not allowed (or not the project's own file), -ECANCELED
 * when ansible-playbook failed (log tail printed), or a negative errno.
 */
int prov_playbook(const struct cfg_vm *vm, const char *project_dir, const char *vm_dir,
		  json_t *state, bool (*alive)(void *), void *arg);

#endif

/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_SSH_EXT_H
#define HUTCH_SSH_EXT_H
/**
 * DOC: ssh_ext - the ssh module's up/halt/destroy extension (ssh_up_ext)
 * and the pieces the ssh verbs share with it.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "src/ci.h"
#include "src/cfg.h"
#include "src/ext.h"

extern const struct up_ext ssh_up_ext;

/**
 * ssh_ext_ci_load() - read and parse <project>/cloud-init.yml
 * @text, @len: set to the file (NULL when there is none); the caller frees
 * @info:       set to its ci_parse() (NULL when there is none); the caller frees
 *
 * The file is read as trust_read() allows (inside the project, no symlink,
 * a regular file of the user's) and must start with a header cloud-init
 * knows (ci_header_known()).
 * Return: 0, -EPERM (not the project's file: exit 77), -EINVAL (no known
 * header, or YAML ci_parse() refuses), or an errno; the reason is logged
 */
int ssh_ext_ci_load(const char *project_dir, char **text, size_t *len, struct ci_info **info);

/**
 * ssh_ext_wait_for() - wait until the VM answers SSH with its pinned host
 * key (timeouts.ssh), then, with @cloud_init, until `cloud-init status
 * --wait` says done (timeouts.cloud_init); stops early when the VM dies
 * Return: 0, -ENOTSUP when the guest has no SSH to wait for (mode none, no
 * key in cloud-init.yml), -ETIMEDOUT, -ESRCH (the VM stopped), or an errno
 */
int ssh_ext_wait_for(struct up_ctx *u, bool cloud_init);

/**
 * ssh_exec() - replace this process with ssh to the VM (pinned host key)
 * @cmd: remote command words, or NULL for a login shell
 * Return: only on failure, a negative errno
 */
int ssh_exec(const struct cfg_vm *vm, const char *project_dir, const char *vm_dir,
	     json_t *state, const char *const *cmd);

#endif

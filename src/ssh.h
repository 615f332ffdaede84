/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_SSH_H
#define HUTCH_SSH_H
/**
 * DOC: ssh - keys, host-key pinning and the ssh command line
 *
 * Every SSH connection hutch makes or hands out (`hutch ssh`, the readiness
 * wait, cloud-init's status, ansible, `hutch ssh-config`) uses the same
 * options: the user's ~/.ssh/config is not read (-F /dev/null), only the
 * chosen key is offered, and the server must present the ed25519 host key
 * hutch generated for this VM and gave it through cloud-init: the
 * known_hosts file holds that key alone, under the alias hutch-<name>, and
 * StrictHostKeyChecking is always yes.  A guest (or anything else on the
 * network) that answers with another key is refused, never learnt.
 *
 * Files: ~/.ssh/hutch (the managed key, comment "hutch"),
 * <vm_dir>/ssh/host_ed25519{,.pub} (the VM's host key),
 * <vm_dir>/ssh/known_hosts, <vm_dir>/ssh/id_ed25519 (ssh.key: generated),
 * <vm_dir>/ssh/user (the SSH user recorded when the VM was created).
 */
#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "src/cfg.h"

#define SSH_HOST_MAX 256
#define SSH_PUB_MAX  16384
#define SSH_ARGV_MAX 64

/**
 * struct ssh_conn - how to reach one VM over SSH
 * @name:        VM name
 * @host, @port: where (ssh_target())
 * @user:        login user
 * @key:         private key file
 * @known_hosts: the pinned known_hosts file
 * @alias:       HostKeyAlias, "hutch-<name>"
 * @s:           storage for the strings of ssh_argv()
 */
struct ssh_conn {
	char name[CFG_NAME_MAX + 1];
	char host[SSH_HOST_MAX];
	int port;
	char user[40];
	char key[PATH_MAX];
	char known_hosts[PATH_MAX];
	char alias[CFG_NAME_MAX + 8];
	struct {
		char o[8][PATH_MAX + 48];
		char port[8];
	} s;
};

/** ssh_managed_key_path() - "$HOME/.ssh/hutch" */
int ssh_managed_key_path(char *buf, size_t n);

/**
 * ssh_keygen() - make an ed25519 key pair at @path (+ ".pub") unless @path exists
 * @comment: the key's comment
 * @created: set to whether a key was made (may be NULL)
 *
 * Runs ssh-keygen through proc_run (argv, no shell), no passphrase.
 * Return: 0, -ENOENT when ssh-keygen is missing, -EIO when it failed.
 */
int ssh_keygen(const char *path, const char *comment, bool *created);

/**
 * ssh_pubkey_read() - the public key line of private key @priv (reads @priv.pub)
 * Return: 0 with @line set (no newline), -EINVAL if it is not one key line
 */
int ssh_pubkey_read(const char *priv, char *line, size_t n);

/**
 * ssh_host_key() - the VM's pinned host key: create it (and known_hosts) if missing
 * @vm_dir: the VM's state dir; <vm_dir>/ssh is created mode 0700
 * @name:   VM name (the alias in known_hosts)
 * @priv:   set to the malloc'd private key text; the caller frees it (may be NULL)
 * @pub:    set to the public key line
 */
int ssh_host_key(const char *vm_dir, const char *name, char **priv, char *pub, size_t n);

/**
 * ssh_client_key() - the private key hutch logs in with, per ssh.key
 * (managed: ~/.ssh/hutch, created if missing; generated: <vm_dir>/ssh/id_ed25519,
 * created if missing; PATH: must exist with PATH.pub)
 */
int ssh_client_key(const struct cfg_vm *vm, const char *vm_dir, char *buf, size_t n);

/**
 * ssh_target() - where the VM's sshd is, from state.json
 *
 * "ssh": {"host", "port"} when the core set it (network mode user), else
 * "net": {"ip"} and port 22.  state.json is untrusted: the host must be a
 * plain address or name (it lands in ssh's argv).
 * Return: 0, -ENOENT when no address is known yet, -EINVAL when malformed
 */
int ssh_target(json_t *state, char *host, size_t n, int *port);

/**
 * ssh_user() - the login user: ssh.user, else the one recorded at creation
 * (<vm_dir>/ssh/user), else the first user of cloud-init.yml, else ci_default_user()
 */
int ssh_user(const struct cfg_vm *vm, const char *project_dir, const char *vm_dir, char *buf,
	     size_t n);

/** ssh_conn_init() - fill @c for @vm from state; keys must exist (see ssh_client_key) */
int ssh_conn_init(struct ssh_conn *c, const struct cfg_vm *vm, const char *project_dir,
		  const char *vm_dir, json_t *state);

/**
 * ssh_argv() - the ssh command line for @c
 * @batch:  non-interactive (BatchMode, ConnectTimeout): for hutch's own probes
 * @cmd:    remote command words, NULL-terminated, or NULL for a login shell
 * @argv:   filled, NULL-terminated; strings point into @c and @cmd
 * @max:    room in @argv
 * Return: 0, -E2BIG
 */
int ssh_argv(struct ssh_conn *c, bool batch, const char *const *cmd, const char **argv, size_t max);

/**
 * ssh_common_args() - the pinning options as one shell-quoted string, for
 * ansible's ansible_ssh_common_args (which ansible splits with shlex)
 */
int ssh_common_args(struct ssh_conn *c, char *buf, size_t n);

/** ssh_config_print() - a "Host hutch-<name>" block for `ssh -F` and editors */
int ssh_config_print(FILE *f, const struct ssh_conn *c);

#endif

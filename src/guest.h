/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_GUEST_H
#define HUTCH_GUEST_H
/**
 * DOC: guest - small root actions inside the guest, over the pinned SSH
 *
 * What hutch must do inside a running guest and cannot do from QEMU: set
 * its time zone (`hutch tz`), unmount the virtiofs shares before a running
 * state is saved (vhost-user-fs cannot be migrated in QEMU 7.2: the devices
 * are unplugged for the save), and after a resume step the clock and mount
 * the shares again.  Each is one SSH session (the same pinned host key and
 * options as `hutch ssh`, src/ssh.h) running a short sh script as root:
 * directly when the login user is root, else through `sudo -n` (cloud
 * images give the first user passwordless sudo; without it the action
 * fails and says so, it never prompts).
 *
 * Strings from hutch.yaml that reach the script (share paths and tags, the
 * zone) are single-quoted (guest_sh_quote()), so none can run a command of
 * its own.
 *
 * The clock is stepped with a handshake rather than a time computed before
 * connecting: the script prints "R", hutch answers with the host's time at
 * that moment (CLOCK_REALTIME, nanoseconds), and the guest sets it at once,
 * so the SSH connection set-up (a second or more under TCG) does not leave
 * the guest behind.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "src/cfg.h"

/**
 * struct guest_target - the VM to act in
 * @vm:          its config
 * @project_dir: the directory of hutch.yaml
 * @vm_dir:      its state directory
 * @state:       state.json as last read (address, port)
 */
struct guest_target {
	const struct cfg_vm *vm;
	const char *project_dir;
	const char *vm_dir;
	json_t *state;
};

/**
 * guest_sh_quote() - @s as one single-quoted sh word ('it'\''s')
 * Return: 0, -ENAMETOOLONG when it does not fit in @n
 */
int guest_sh_quote(const char *s, char *buf, size_t n);

/**
 * guest_root_cmd() - the remote command of a root session: @script as one
 * quoted word for `sh -c`, through `sudo -n` unless the login user is root
 * (@as_root: the caller knows the user, so the guest need not run `id -u`)
 * Return: a malloc'd string, or NULL (no memory, or @script too long)
 */
char *guest_root_cmd(const char *script, bool as_root);

/**
 * guest_ssh_tune() - put the options of hutch's own root sessions (a key
 * exchange that is cheap for a guest under TCG) right after argv[0] of a
 * NULL-terminated ssh_argv() result of at most @max entries
 * Return: 0, -E2BIG when they do not fit, -EINVAL for an empty @argv
 */
int guest_ssh_tune(const char **argv, size_t max);

/**
 * guest_can_ssh() - whether hutch can log in to this VM at all (network
 * mode none or a guest given no key: no); the reason is logged at debug
 */
bool guest_can_ssh(const struct guest_target *t);

/**
 * guest_run_root() - run @script as root in the guest
 * @script:    sh script text (its strings quoted by the caller)
 * @clock:     the script starts with the clock handshake ("R" / time)
 * @timeout_s: for the whole session
 * @out:       if not NULL, set to the script's output (malloc'd, bounded)
 *
 * Return: 0 when the script exited 0; -EIO (it failed; its output logged),
 * -ECONNREFUSED (ssh itself failed: no connection yet, or a host key that
 * is not the pinned one), -ETIMEDOUT, -ENOENT (no address yet), or a
 * negative errno
 */
int guest_run_root(const struct guest_target *t, const char *script, bool clock,
		   unsigned timeout_s, char **out);

/**
 * guest_before_save() - before a running state is saved: wait (bounded)
 * until cloud-init and systemd's start-up jobs are done, so that the state
 * is of a quiet guest; sync; unmount every share of @t->vm (a share that
 * is not mounted is fine)
 */
int guest_before_save(const struct guest_target *t);

/**
 * guest_save_script() - the sh script guest_before_save() runs as root
 * Return: 0 with *@out malloc'd, or a negative errno
 */
int guest_save_script(const struct cfg_vm *vm, char **out);

/**
 * guest_after_resume() - step the guest's clock to the host's, then mount
 * every share again (waiting, bounded, for its hot-plugged device)
 */
int guest_after_resume(const struct guest_target *t);

/** guest_set_timezone() - `timedatectl set-timezone @zone` (falls back to /etc/localtime) */
int guest_set_timezone(const struct guest_target *t, const char *zone);

#endif

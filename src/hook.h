/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_HOOK_H
#define HUTCH_HOOK_H
/**
 * DOC: hook - the project's hooks/pre-up, post-up, pre-down, post-down
 *
 * A hook is an executable file in <project>/hooks/.  It runs as the user
 * who runs hutch (hutch never gains privileges for it), in the project
 * directory, through proc_spawn (argv, no shell), with a minimal
 * environment plus HUTCH_VM_NAME, HUTCH_VM_DIR, HUTCH_HOOK, HUTCH_TRIGGER
 * (up|halt|destroy) and HUTCH_VM_IP when the address is known.  Its output
 * goes to hutch's stderr, so stdout stays machine-readable.  Whether a
 * failure aborts anything is the caller's decision (src/ssh_ext.c).
 *
 * A hook is project code running on the host: it runs only when it is the
 * project's own file (trust_check(): no symlink, owned by the user) and
 * everything `hutch allow` covers is as the user allowed it
 * (consent_verify(), checked just before the run).
 */

/**
 * hook_run() - run one hook if the project has it
 * @project_dir: directory of hutch.yaml
 * @hook:        "pre-up", "post-up", "pre-down" or "post-down"
 * @vm_name:     HUTCH_VM_NAME
 * @vm_dir:      HUTCH_VM_DIR
 * @trigger:     HUTCH_TRIGGER
 * @ip:          HUTCH_VM_IP, or NULL when not known
 *
 * Return: 0 (ran and exited 0, or there is no such hook), -ECANCELED when
 * the hook failed (logged with its exit status), -EACCES when the file is
 * there but not executable, -EPERM when it is not allowed (not run; the
 * list of what changed is logged), or a negative errno when it could not run.
 */
int hook_run(const char *project_dir, const char *hook, const char *vm_name, const char *vm_dir,
	     const char *trigger, const char *ip);

#endif

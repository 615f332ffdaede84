// SPDX-License-Identifier: MIT
/*
 * Project hooks (see src/hook.h).
 */
#include "src/hook.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/consent.h"
#include "src/log.h"
#include "src/proc.h"
#include "src/trust.h"
#include "src/util.h"

#define HOOK_ENV_MAX 24

int hook_run(const char *project_dir, const char *hook, const char *vm_name, const char *vm_dir,
	     const char *trigger, const char *ip)
{
	char path[PATH_MAX], rel[64], e_name[64], e_dir[PATH_MAX + 16], e_hook[32], e_trig[32], e_ip[64];
	char why[TRUST_WHY_MAX];
	const char *env[HOOK_ENV_MAX], *argv[2];
	const char *const *base = proc_default_env();
	struct proc_fdmap fds[] = { { 2, 1 }, { 2, 2 } };
	struct proc_user u;
	struct proc_sandbox psb;
	struct proc_opts o = { .argv = argv, .envp = env, .fds = fds, .n_fds = 2,
			       .cwd = project_dir, .sb = &psb };
	struct stat sb;
	size_t n = 0;
	pid_t pid;
	int rc, status, code;

	if ((rc = util_snprintf(path, sizeof(path), "%s/hooks/%s", project_dir, hook)) < 0)
		return rc;
	/* the project's own file (no symlink out, the user's), and allowed as it is now */
	rc = trust_check(project_dir, path, TRUST_FILE, TRUST_MUST_EXIST, why, sizeof(why));
	if (rc == -ENOENT)
		return 0;
	if (rc == -EPERM) {
		log_err("hooks/%s %s: not run", hook, why);
		return rc;
	}
	if (rc < 0)
		return rc;
	if (stat(path, &sb) < 0)
		return -errno;
	if (!S_ISREG(sb.st_mode) || access(path, X_OK) < 0) {
		log_warn("hooks/%s is not an executable file", hook);
		return -EACCES;
	}
	rc = consent_verify(project_dir);
	if (rc < 0)
		return rc;
	for (; base && base[n] && n < HOOK_ENV_MAX - 6; n++)
		env[n] = base[n];
	if ((rc = util_snprintf(e_name, sizeof(e_name), "HUTCH_VM_NAME=%s", vm_name)) < 0 ||
	    (rc = util_snprintf(e_dir, sizeof(e_dir), "HUTCH_VM_DIR=%s", vm_dir)) < 0 ||
	    (rc = util_snprintf(e_hook, sizeof(e_hook), "HUTCH_HOOK=%s", hook)) < 0 ||
	    (rc = util_snprintf(e_trig, sizeof(e_trig), "HUTCH_TRIGGER=%s", trigger)) < 0)
		return rc;
	env[n++] = e_name;
	env[n++] = e_dir;
	env[n++] = e_hook;
	env[n++] = e_trig;
	if (ip && ip[0]) {
		if ((rc = util_snprintf(e_ip, sizeof(e_ip), "HUTCH_VM_IP=%s", ip)) < 0)
			return rc;
		env[n++] = e_ip;
	}
	env[n] = NULL;
	/*
	 * Relative to the project dir, which is the child's cwd (entered before
	 * it drops to the user): the user need not be able to walk the path
	 * above the project, only the project itself.
	 */
	if ((rc = util_snprintf(rel, sizeof(rel), "hooks/%s", hook)) < 0)
		return rc;
	argv[0] = rel;
	argv[1] = NULL;

	/* the project's code runs as the user (under sudo SUDO_UID), never as root */
	if ((rc = proc_user_resolve(&u)) < 0)
		return rc;
	proc_sandbox_user(&psb, &u);
	log_info("running hooks/%s", hook);
	fflush(stderr);
	rc = proc_spawn(&o, &pid, NULL);
	if (rc < 0) {
		log_errno(rc, "hooks/%s", hook);
		return rc;
	}
	rc = proc_wait(pid, &status);
	if (rc < 0)
		return rc;
	code = proc_exit_code(status);
	if (code != 0) {
		log_err("hooks/%s failed (exit status %d)", hook, code);
		return -ECANCELED;
	}
	return 0;
}

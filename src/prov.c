// SPDX-License-Identifier: MIT
/*
 * ansible-playbook over the pinned SSH, and bounded child runs (see src/prov.h).
 */
#include "src/prov.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "src/consent.h"
#include "src/log.h"
#include "src/proc.h"
#include "src/ssh.h"
#include "src/trust.h"
#include "src/util.h"

#define PROV_ENV_MAX 32

/* Kill a child we started and reap it; it must not outlive the run. */
static void prov_kill(pid_t pid, int pidfd)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };
	int status;

	kill(pid, SIGTERM);
	if (poll(&p, 1, 3000) <= 0)
		kill(pid, SIGKILL);
	proc_wait(pid, &status);
}

static int prov_run_sb(const char *const *argv, const char *const *envp, const char *cwd,
		       int out_fd, unsigned timeout_s, bool (*alive)(void *), void *arg, int *code,
		       const struct proc_sandbox *sb)
{
	struct proc_fdmap fds[] = { { out_fd, 1 }, { out_fd, 2 } };
	struct proc_opts o = { .argv = argv, .envp = envp, .fds = fds,
			       .n_fds = out_fd >= 0 ? 2 : 0, .cwd = cwd, .want_pidfd = true,
			       .sb = sb };
	uint64_t deadline = timeout_s ? util_monotonic_ms() + (uint64_t)timeout_s * 1000 : 0;
	pid_t pid;
	int pidfd, rc, status;

	rc = proc_spawn(&o, &pid, &pidfd);
	if (rc < 0)
		return rc;
	for (;;) {
		struct pollfd p = { .fd = pidfd, .events = POLLIN };

		rc = poll(&p, 1, 500);
		if (rc < 0 && errno != EINTR) {
			rc = -errno;
			prov_kill(pid, pidfd);
			break;
		}
		if (rc > 0) {
			rc = proc_wait(pid, &status);
			if (rc == 0)
				*code = proc_exit_code(status);
			break;
		}
		if (deadline && util_monotonic_ms() >= deadline) {
			prov_kill(pid, pidfd);
			rc = -ETIMEDOUT;
			break;
		}
		if (alive && !alive(arg)) {
			prov_kill(pid, pidfd);
			rc = -ESRCH;
			break;
		}
	}
	close(pidfd);
	return rc;
}

int prov_run(const char *const *argv, const char *const *envp, const char *cwd, int out_fd,
	     unsigned timeout_s, bool (*alive)(void *), void *arg, int *code)
{
	return prov_run_sb(argv, envp, cwd, out_fd, timeout_s, alive, arg, code, NULL);
}

/* copy @src to @dir/@name, 0600, owned by @u (for ansible-playbook running as @u) */
static int prov_copy_for(const char *src, const char *dir, const char *name,
			 const struct proc_user *u, char *out, size_t n)
{
	char *buf = NULL;
	size_t len = 0;
	int rc;

	if ((rc = util_path_join(out, n, dir, name)) < 0 ||
	    (rc = util_read_file(src, 1 << 20, &buf, &len)) < 0)
		return rc;
	rc = util_write_atomic(out, buf, len, 0600);
	free(buf);
	if (rc == 0 && chown(out, u->uid, u->gid) < 0)
		rc = -errno;
	return rc;
}

/*
 * ansible-playbook runs as the user (src/proc.h), who may not read the VM's
 * directory (root's, 0700) nor root's managed key: give it a private
 * directory of its own with copies of the key and the pinned known_hosts
 * (the inventory is written there too), removed when the run ends.  The
 * project itself must be readable by the user, as for hooks.
 */
static int prov_stage(struct ssh_conn *c, const struct proc_user *u, char *dir, size_t n)
{
	char key[PATH_MAX], kh[PATH_MAX];
	int rc;

	if ((rc = util_snprintf(dir, n, "/tmp/hutch-ansible.XXXXXX")) < 0)
		return rc;
	if (!mkdtemp(dir))
		return -errno;
	if (chown(dir, u->uid, u->gid) < 0 ||
	    (rc = prov_copy_for(c->key, dir, "key", u, key, sizeof(key))) < 0 ||
	    (rc = prov_copy_for(c->known_hosts, dir, "known_hosts", u, kh, sizeof(kh))) < 0) {
		rc = rc < 0 ? rc : -errno;
		util_rm_rf(dir);
		return rc;
	}
	memcpy(c->key, key, sizeof(c->key));
	memcpy(c->known_hosts, kh, sizeof(c->known_hosts));
	return 0;
}

int prov_log_open(const char *vm_dir)
{
	char path[PATH_MAX];
	int fd, rc;

	rc = util_path_join(path, sizeof(path), vm_dir, "provision.log");
	if (rc < 0)
		return rc;
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	return fd < 0 ? -errno : fd;
}

static void prov_mark(int fd, bool start, int code)
{
	char line[256], when[32];
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if ((start ? util_snprintf(line, sizeof(line), "==> hutch provision: start %s\n", when)
		   : util_snprintf(line, sizeof(line), "==> hutch provision: end %s exit=%d\n", when,
				   code)) == 0)
		(void)util_write_all(fd, line, strlen(line));
}

/* Ansible templates every inventory value: none of ours may hold a marker. */
static bool prov_plain(const char *v)
{
	return !strstr(v, "{{") && !strstr(v, "{%") && !strstr(v, "{#");
}

/*
 * The inventory: JSON, which ansible's yaml inventory plugin reads, so no
 * value (paths, user) needs INI quoting.  The VM's connection is pinned to
 * ssh as a host variable, which outranks a play's `connection: local`;
 * localhost and its addresses are listed with a connection plugin that does
 * not exist, so `delegate_to: localhost` and `local_action` fail instead of
 * running on this host, and `--limit` keeps `hosts: localhost` plays away.
 */
static int prov_inventory(struct ssh_conn *c, const char *path)
{
	/* Ansible takes 127.0.0.1 and ::1 for this same localhost */
	static const char *const local[] = { "localhost" };
	char common[8192];
	json_t *hosts, *host, *root;
	char *text;
	int rc;

	rc = ssh_common_args(c, common, sizeof(common));
	if (rc < 0)
		return rc;
	if (!prov_plain(c->host) || !prov_plain(c->user) || !prov_plain(c->key) ||
	    !prov_plain(common) || !prov_plain(c->name)) {
		log_err("a value for Ansible's inventory holds '{{', '{%%' or '{#' (it would run as a "
			"template on this host): refused");
		return -EPERM;
	}
	host = json_pack("{s:s, s:i, s:s, s:s, s:s, s:s}", "ansible_host", c->host, "ansible_port",
			 c->port, "ansible_user", c->user, "ansible_ssh_private_key_file", c->key,
			 "ansible_ssh_common_args", common, "ansible_connection", "ssh");
	hosts = host ? json_pack("{s:o}", c->name, host) : NULL;
	for (size_t i = 0; hosts && i < UTIL_ARRAY_SIZE(local); i++)
		if (json_object_set_new(hosts, local[i], json_pack("{s:s}", "ansible_connection",
								   "hutch-refuses-local")))
			break;
	root = hosts ? json_pack("{s:{s:o}}", "all", "hosts", hosts) : NULL;
	if (!root)
		return -ENOMEM;
	text = json_dumps(root, JSON_INDENT(2));
	json_decref(root);
	if (!text)
		return -ENOMEM;
	rc = util_write_atomic(path, text, strlen(text), 0600);
	free(text);
	return rc;
}

/*
 * hutch's own ansible.cfg, named by ANSIBLE_CONFIG: Ansible then reads no
 * other (the project's ./ansible.cfg could name plugin folders, callbacks
 * or an inventory that runs code on this host).  Most settings travel in
 * the environment; the file is the pin.  Its one setting: Ansible's 10 s
 * connection timeout, which also bounds the wait for sudo's prompt, is too
 * short for a TCG guest on a busy host ("Timeout (12s) waiting for
 * privilege escalation prompt"); the VM's own life bounds the run anyway.
 */
static int prov_ansible_cfg(const char *path)
{
	static const char text[] = "# written by hutch: ANSIBLE_CONFIG points here so that no "
				   "other ansible.cfg is read\n[defaults]\ntimeout = 120\n";

	return util_write_atomic(path, text, sizeof(text) - 1, 0600);
}

int prov_playbook(const struct cfg_vm *vm, const char *project_dir, const char *vm_dir,
		  json_t *state, bool (*alive)(void *), void *arg)
{
	char playbook[PATH_MAX], inv[PATH_MAX], log[PATH_MAX], done[PATH_MAX], stage[PATH_MAX] = "";
	char acfg[PATH_MAX], e_cfg[PATH_MAX + 16], e_home[PATH_MAX + 8], why[TRUST_WHY_MAX];
	struct proc_user pu;
	struct proc_sandbox sb;
	const char *argv[] = { "ansible-playbook", "-i", inv, "--limit", vm->name, playbook, NULL };
	const char *env[PROV_ENV_MAX];
	const char *const *base = proc_default_env();
	struct ssh_conn *c;
	size_t n = 0;
	int rc, fd, code = -1;

	if ((rc = util_path_join(playbook, sizeof(playbook), project_dir, "playbook.yml")) < 0 ||
	    (rc = util_path_join(inv, sizeof(inv), vm_dir, "inventory.json")) < 0 ||
	    (rc = util_path_join(acfg, sizeof(acfg), vm_dir, "ansible.cfg")) < 0 ||
	    (rc = util_path_join(log, sizeof(log), vm_dir, "provision.log")) < 0 ||
	    (rc = util_path_join(done, sizeof(done), vm_dir, "provisioned")) < 0)
		return rc;
	rc = trust_check(project_dir, playbook, TRUST_FILE, TRUST_MUST_EXIST, why, sizeof(why));
	if (rc == -EPERM)
		log_err("%s %s", playbook, why);
	if (rc < 0)
		return rc;
	/* the playbook and all Ansible loads beside it, as the user allowed them */
	rc = consent_verify(project_dir);
	if (rc < 0)
		return rc;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	rc = ssh_conn_init(c, vm, project_dir, vm_dir, state);
	if (rc < 0)
		goto out;
	/* the VM dir keeps the inventory for the user to read (ansible-inventory) */
	if ((rc = prov_inventory(c, inv)) < 0)
		goto out;
	/* Ansible runs as the user (under sudo SUDO_UID), never as root: then its
	 * inventory, config, key and HOME are a private copy it may read */
	if ((rc = proc_user_resolve(&pu)) < 0)
		goto out;
	proc_sandbox_user(&sb, &pu);
	if (pu.switch_ids &&
	    ((rc = prov_stage(c, &pu, stage, sizeof(stage))) < 0 ||
	     (rc = util_path_join(inv, sizeof(inv), stage, "inventory.json")) < 0 ||
	     (rc = util_path_join(acfg, sizeof(acfg), stage, "ansible.cfg")) < 0 ||
	     (rc = util_snprintf(e_home, sizeof(e_home), "HOME=%s", stage)) < 0))
		goto out;
	if ((stage[0] && (rc = prov_inventory(c, inv)) < 0) || (rc = prov_ansible_cfg(acfg)) < 0 ||
	    (rc = util_snprintf(e_cfg, sizeof(e_cfg), "ANSIBLE_CONFIG=%s", acfg)) < 0)
		goto out;
	if (stage[0] && (chown(inv, pu.uid, pu.gid) < 0 || chown(acfg, pu.uid, pu.gid) < 0)) {
		rc = -errno;
		goto out;
	}
	for (size_t i = 0; base && base[i] && n < PROV_ENV_MAX - 10; i++)
		if (!stage[0] || strncmp(base[i], "HOME=", 5))
			env[n++] = base[i];
	if (stage[0])
		env[n++] = e_home;	/* ~/.ansible/tmp must be the user's */
	env[n++] = e_cfg;
	/* Host keys are checked (against our pin, via the common args), no
	 * ControlPersist master is left behind after hutch returns, and no
	 * retry files litter the project. */
	env[n++] = "ANSIBLE_HOST_KEY_CHECKING=True";
	env[n++] = "ANSIBLE_SSH_ARGS=-C -o ControlMaster=no";
	env[n++] = "ANSIBLE_RETRY_FILES_ENABLED=False";
	env[n++] = "ANSIBLE_PYTHON_INTERPRETER=auto_silent";
	env[n++] = "ANSIBLE_NOCOLOR=1";
	env[n++] = "ANSIBLE_INVENTORY_ENABLED=yaml";
	env[n] = NULL;

	fd = prov_log_open(vm_dir);
	if (fd < 0) {
		rc = fd;
		goto out;
	}
	log_info("provisioning %s with playbook.yml (log: %s)", vm->name, log);
	prov_mark(fd, true, 0);
	rc = prov_run_sb(argv, env, project_dir, fd, 0, alive, arg, &code, &sb);
	prov_mark(fd, false, rc < 0 ? -1 : code);
	close(fd);
	if (rc == -ENOENT) {
		log_err("ansible-playbook not found: install ansible to use playbook.yml");
		goto out;
	}
	if (rc < 0) {
		log_errno(rc, "provisioning %s", vm->name);
		goto out;
	}
	if (code != 0) {
		log_err("the playbook failed (exit status %d); the end of %s:", code, log);
		util_print_tail(log, 30, stderr, "  ");
		rc = -ECANCELED;
		goto out;
	}
	rc = util_write_atomic(done, "1\n", 2, 0600);
out:
	if (stage[0])
		util_rm_rf(stage);
	free(c);
	return rc;
}

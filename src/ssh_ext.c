// SPDX-License-Identifier: MIT
/*
 * The ssh module's part of up/halt/destroy (struct up_ext of src/ext.h):
 * user-data, hooks, key checks, the SSH / cloud-init / playbook waits and
 * autoconnect.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "images/img.h"
#include "src/ci.h"
#include "src/cmd.h"
#include "src/ext.h"
#include "src/hook.h"
#include "src/log.h"
#include "src/proc.h"
#include "src/prov.h"
#include "src/ssh.h"
#include "src/ssh_ext.h"
#include "src/trust.h"
#include "src/util.h"
#include "src/warm.h"

static bool ssh_ext_alive(void *arg)
{
	return up_vm_alive(arg);
}

static void ssh_ext_reload(struct up_ctx *u)
{
	(void)up_state_reload(u);
}

/* The guest's address for HUTCH_VM_IP: the lease, when there is one. */
static const char *ssh_ext_ip(json_t *state)
{
	json_t *net = json_object_get(state, "net");
	json_t *ip = json_is_object(net) ? json_object_get(net, "ip") : NULL;

	return json_is_string(ip) ? json_string_value(ip) : NULL;
}

int ssh_ext_ci_load(const char *project_dir, char **text, size_t *len, struct ci_info **info)
{
	char path[PATH_MAX], why[TRUST_WHY_MAX];
	struct ci_info *i;
	int rc;

	*text = NULL;
	*info = NULL;
	rc = util_path_join(path, sizeof(path), project_dir, "cloud-init.yml");
	if (rc < 0)
		return rc;
	/* the project's file, not a link to /proc/self/environ or ~/.ssh/id_* */
	rc = trust_read(project_dir, path, CI_USER_MAX, text, len, why, sizeof(why));
	if (rc == -ENOENT)
		return 0;
	if (rc == -EPERM)
		log_err("%s %s", path, why);
	else if (rc == -EFBIG)
		log_err("%s is larger than %d bytes", path, CI_USER_MAX);
	else if (rc < 0)
		log_errno(rc, "%s", path);
	if (rc < 0)
		return rc;
	if (!ci_header_known(*text, *len)) {
		log_err("%s starts with no known header (#cloud-config, #!, a MIME Content-Type:, "
			"...): refused, it is not user-data", path);
		rc = -EINVAL;
		goto err;
	}
	i = calloc(1, sizeof(*i));
	if (!i) {
		rc = -ENOMEM;
		goto err;
	}
	rc = ci_parse(*text, *len, i);
	if (rc < 0) {
		free(i);
		goto err;
	}
	*info = i;
	return 0;
err:
	free(*text);
	*text = NULL;
	return rc;
}

/*
 * A key with the comment "hutch" in cloud-init.yml is meant to be the
 * managed key: if it is not ~/.ssh/hutch.pub, the VM would come up with a
 * key nobody here holds, and `up` would only time out much later.
 */
static int ssh_ext_check_hutch_keys(const struct ci_info *info)
{
	char path[PATH_MAX], pub[SSH_PUB_MAX];
	size_t i;
	int rc;

	if (!info || !info->n_hutch_keys)
		return 0;
	rc = ssh_managed_key_path(path, sizeof(path));
	if (rc < 0)
		return rc;
	rc = ssh_pubkey_read(path, pub, sizeof(pub));
	if (rc < 0) {
		log_errno(rc, "cloud-init.yml lists a key with the comment 'hutch' but %s.pub "
			  "cannot be read", path);
		return rc;
	}
	for (i = 0; i < info->n_hutch_keys; i++) {
		if (!ci_key_same(info->hutch_keys[i], pub)) {
			log_err("cloud-init.yml lists a key with the comment 'hutch' that is not "
				"%s.pub; use __HUTCH_PUBKEY__ or `hutch pubkey`", path);
			return -EKEYREJECTED;
		}
	}
	return 0;
}

/* Keys needed before the first boot: ours to log in, the VM's host key. */
static int ssh_ext_keys(struct up_ctx *u, char *key, size_t n)
{
	char pub[SSH_PUB_MAX];
	int rc;

	rc = ssh_client_key(u->vm, u->vm_dir, key, n);
	if (rc < 0) {
		log_errno(rc, "preparing the SSH key for %s", u->vm->name);
		return rc;
	}
	rc = ssh_host_key(u->vm_dir, u->vm->name, NULL, pub, sizeof(pub));
	if (rc < 0)
		log_errno(rc, "making the SSH host key of %s", u->vm->name);
	return rc;
}

static int ssh_ext_user_data(struct up_ctx *u, char **data, size_t *len)
{
	char key[PATH_MAX], pubkey[SSH_PUB_MAX], hostpub[SSH_PUB_MAX], user[40];
	char path[PATH_MAX], line[64];
	char *text = NULL, *hostpriv = NULL;
	struct ci_info *info = NULL;
	struct ci_mount *mounts = NULL;
	struct ci_input in = { 0 };
	size_t tlen = 0, i;
	int rc;

	rc = ssh_ext_keys(u, key, sizeof(key));
	if (rc < 0)
		return rc;
	if ((rc = ssh_pubkey_read(key, pubkey, sizeof(pubkey))) < 0 ||
	    (rc = ssh_host_key(u->vm_dir, u->vm->name, &hostpriv, hostpub, sizeof(hostpub))) < 0)
		return rc;
	rc = ssh_ext_ci_load(u->cfg->dir, &text, &tlen, &info);
	if (rc < 0)
		goto out;
	rc = ssh_ext_check_hutch_keys(info);
	if (rc < 0)
		goto out;
	if (u->vm->ssh.user)
		rc = util_snprintf(user, sizeof(user), "%s", u->vm->ssh.user);
	else if (info && info->user[0])
		rc = util_snprintf(user, sizeof(user), "%s", info->user);
	else
		ci_default_user(user, sizeof(user));
	if (rc < 0)
		goto out;
	if (info && !info->has_placeholder && !info->n_hutch_keys)
		log_warn("cloud-init.yml has no %s: hutch's key (%s.pub) is not given to the guest, "
			 "so it can log in only with the keys the file lists", CI_PLACEHOLDER, key);
	if (info && !info->user[0] && !u->vm->ssh.user)
		log_warn("cloud-init.yml names no user; hutch will log in as '%s' (set ssh.user)",
			 user);
	if (u->vm->n_shares) {
		mounts = calloc(u->vm->n_shares, sizeof(*mounts));
		if (!mounts) {
			rc = -ENOMEM;
			goto out;
		}
		for (i = 0; i < u->vm->n_shares; i++) {
			mounts[i].tag = u->vm->shares[i].tag;
			mounts[i].guest = u->vm->shares[i].guest;
		}
	}
	in.user_file = text;
	in.user_len = tlen;
	in.info = info;
	in.pubkey = pubkey;
	in.user = user;
	in.host_priv = hostpriv;
	in.host_pub = hostpub;
	in.mounts = mounts;
	in.n_mounts = u->vm->n_shares;
	rc = ci_render(&in, data, len);
	if (rc < 0) {
		log_errno(rc, "making the cloud-init user-data");
		goto out;
	}
	/* `hutch ssh` later logs in as the user this VM was made with */
	if (util_snprintf(path, sizeof(path), "%s/ssh/user", u->vm_dir) == 0 &&
	    util_snprintf(line, sizeof(line), "%s\n", user) == 0)
		(void)util_write_atomic(path, line, strlen(line), 0600);
out:
	if (hostpriv) {
		explicit_bzero(hostpriv, strlen(hostpriv));
		free(hostpriv);
	}
	free(mounts);
	free(info);
	free(text);
	return rc;
}

static int ssh_ext_before_up(struct up_ctx *u)
{
	char key[PATH_MAX], *text = NULL;
	struct ci_info *info = NULL;
	size_t len;
	int rc;

	/* QEMU follows the disk's backing name at every boot: still ours? */
	if ((rc = util_path_join(key, sizeof(key), u->vm_dir, "disk.qcow2")) < 0 ||
	    (rc = img_backing_check(key, u->cfg->dir)) < 0)
		return rc;
	rc = hook_run(u->cfg->dir, "pre-up", u->vm->name, u->vm_dir, "up", ssh_ext_ip(u->state));
	if (rc < 0) {
		log_err("pre-up hook failed: not starting %s", u->vm->name);
		return rc;
	}
	rc = ssh_ext_keys(u, key, sizeof(key));
	if (rc < 0)
		return rc;
	rc = ssh_ext_ci_load(u->cfg->dir, &text, &len, &info);
	if (rc == 0)
		rc = ssh_ext_check_hutch_keys(info);
	free(text);
	free(info);
	return rc;
}

static void ssh_ext_progress(struct up_ctx *u, const char *what, uint64_t start, bool end)
{
	if (!u->cli->tty || u->cli->quiet)
		return;
	if (end)
		fprintf(stderr, "\r\033[K");
	else
		fprintf(stderr, "\r\033[K%s... %llus", what,
			(unsigned long long)((util_monotonic_ms() - start) / 1000));
	fflush(stderr);
}

/* Bounded by timeouts.ssh; stops early when the VM is gone. */
static int ssh_ext_wait_ssh(struct up_ctx *u, struct ssh_conn *c)
{
	const char *true_cmd[] = { "true", NULL };
	const char *argv[SSH_ARGV_MAX];
	uint64_t start = util_monotonic_ms();
	uint64_t deadline = start + (uint64_t)u->vm->timeouts.ssh * 1000;
	char probe[PATH_MAX];
	int rc, code, fd;

	/* ssh's own words from the last try, shown if we give up: a host key
	 * that is not the pinned one says so there */
	rc = util_snprintf(probe, sizeof(probe), "%s/ssh/probe.log", u->vm_dir);
	if (rc < 0)
		return rc;

	for (;;) {
		ssh_ext_reload(u);
		if (!ssh_ext_alive(u)) {
			ssh_ext_progress(u, NULL, start, true);
			log_err("%s stopped while waiting for SSH", u->vm->name);
			return -ESRCH;
		}
		rc = ssh_target(u->state, c->host, sizeof(c->host), &c->port);
		if (rc == 0) {
			rc = ssh_argv(c, true, true_cmd, argv, SSH_ARGV_MAX);
			if (rc < 0)
				return rc;
			fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
			rc = prov_run(argv, NULL, NULL, fd, 30, ssh_ext_alive, u, &code);
			if (fd >= 0)
				close(fd);
			if (rc == 0 && code == 0)
				break;
		}
		if (util_monotonic_ms() >= deadline) {
			ssh_ext_progress(u, NULL, start, true);
			log_err("SSH on %s did not answer within %us (timeouts.ssh); last try:",
				u->vm->name, u->vm->timeouts.ssh);
			util_print_tail(probe, 5, stderr, "  ");
			return -ETIMEDOUT;
		}
		ssh_ext_progress(u, "waiting for SSH", start, false);
		sleep(2);
	}
	ssh_ext_progress(u, NULL, start, true);
	{
		struct timespec now;

		/* for tests/bench/bench-e2e.sh: hutch's own share of `up` */
		clock_gettime(CLOCK_BOOTTIME, &now);	/* the clock of /proc/uptime */
		log_debug("ssh: first answer at boottime %lld.%03ld", (long long)now.tv_sec,
			  now.tv_nsec / 1000000);
	}
	log_info("SSH ready on %s after %.1fs", u->vm->name,
		 (double)(util_monotonic_ms() - start) / 1000.0);
	return 0;
}

/* `cloud-init status --wait` over SSH, bounded by timeouts.cloud_init. */
static int ssh_ext_wait_cloud_init(struct up_ctx *u, struct ssh_conn *c)
{
	const char *cmd[] = { "cloud-init", "status", "--wait", NULL };
	const char *argv[SSH_ARGV_MAX];
	char log[PATH_MAX];
	uint64_t start = util_monotonic_ms();
	int rc, fd, code = -1;

	rc = ssh_argv(c, true, cmd, argv, SSH_ARGV_MAX);
	if (rc < 0)
		return rc;
	if ((rc = util_path_join(log, sizeof(log), u->vm_dir, "provision.log")) < 0)
		return rc;
	fd = prov_log_open(u->vm_dir);
	if (fd < 0)
		return fd;
	(void)util_write_all(fd, "==> cloud-init status --wait\n", 29);
	if (u->cli->tty && !u->cli->quiet)
		fprintf(stderr, "waiting for cloud-init...");
	rc = prov_run(argv, NULL, NULL, fd, u->vm->timeouts.cloud_init, ssh_ext_alive, u, &code);
	ssh_ext_progress(u, NULL, start, true);
	if (rc == 0 && code != 0 && code != 2) {
		/* say which module failed, in the log shown below */
		const char *lcmd[] = { "cloud-init", "status", "--long", NULL };
		int lcode;

		if (ssh_argv(c, true, lcmd, argv, SSH_ARGV_MAX) == 0)
			(void)prov_run(argv, NULL, NULL, fd, 60, ssh_ext_alive, u, &lcode);
	}
	close(fd);
	if (rc == -ETIMEDOUT) {
		log_err("cloud-init on %s did not finish within %us (timeouts.cloud_init)",
			u->vm->name, u->vm->timeouts.cloud_init);
		return rc;
	}
	if (rc < 0)
		return rc;
	if (code == 2) {
		/* newer cloud-init: done, with recoverable errors (deprecations) */
		log_warn("cloud-init on %s finished with warnings", u->vm->name);
		return 0;
	}
	if (code != 0) {
		log_err("cloud-init on %s reported an error (exit status %d):", u->vm->name, code);
		util_print_tail(log, 10, stderr, "  ");
		return -ECANCELED;
	}
	log_info("cloud-init done on %s after %llus", u->vm->name,
		 (unsigned long long)((util_monotonic_ms() - start) / 1000));
	return 0;
}

/* Is there an SSH server with our key to wait for?  1 yes, 0 no, or an error. */
static int ssh_ext_expects_ssh(struct up_ctx *u)
{
	struct ci_info *info = NULL;
	char *text = NULL;
	size_t len;
	int rc;

	rc = ssh_ext_ci_load(u->cfg->dir, &text, &len, &info);
	free(text);
	if (rc < 0)
		return rc;
	rc = 1;
	if (u->vm->network.mode == CFG_NET_NONE) {
		log_info("network mode none: not waiting for SSH");
		rc = 0;
	} else if (!info && u->vm->kernel.path) {
		/* a direct kernel boot (test rig) without cloud-init.yml: its
		 * initramfs runs no cloud-init, so there is no SSH to wait for */
		log_info("direct kernel boot without cloud-init.yml: not waiting for SSH");
		rc = 0;
	} else if (info && !info->has_keys) {
		log_info("cloud-init.yml gives the guest no SSH key: not waiting for SSH");
		rc = 0;
	}
	free(info);
	return rc;
}

int ssh_ext_wait_for(struct up_ctx *u, bool cloud_init)
{
	struct ssh_conn *c;
	int rc;

	rc = ssh_ext_expects_ssh(u);
	if (rc <= 0)
		return rc ? rc : -ENOTSUP;
	/* a resumed running state booted nothing: no cloud-init, no playbook;
	 * the first SSH session steps the guest's clock (src/warm.h) */
	ssh_ext_reload(u);
	if (warm_resumed(u->state))
		return warm_guest_ready(u);
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	/* the address may not be known yet: ssh_conn_init's -ENOENT is fine here */
	rc = ssh_conn_init(c, u->vm, u->cfg->dir, u->vm_dir, u->state);
	if (rc < 0 && rc != -ENOENT)
		goto out;
	rc = ssh_ext_wait_ssh(u, c);
	if (rc < 0)
		goto out;
	up_phase(u, "ssh-ready", NULL, NULL);
	if (cloud_init) {
		rc = ssh_ext_wait_cloud_init(u, c);
		if (rc == 0)
			up_phase(u, "cloud-init-done", NULL, NULL);
	}
out:
	free(c);
	return rc;
}

static int ssh_ext_wait(struct up_ctx *u)
{
	char playbook[PATH_MAX];
	int rc;

	rc = ssh_ext_wait_for(u, u->vm->cloud_init_wait);
	if (rc == -ENOTSUP)
		return 0;
	if (rc < 0)
		return rc;
	rc = util_path_join(playbook, sizeof(playbook), u->cfg->dir, "playbook.yml");
	if (rc < 0 || !u->created || access(playbook, F_OK))
		return rc;
	rc = prov_playbook(u->vm, u->cfg->dir, u->vm_dir, u->state, ssh_ext_alive, u);
	if (rc == 0)
		up_phase(u, "provisioned", NULL, NULL);
	return rc;
}

static int ssh_ext_after_up(struct up_ctx *u)
{
	ssh_ext_reload(u);
	if (hook_run(u->cfg->dir, "post-up", u->vm->name, u->vm_dir, "up", ssh_ext_ip(u->state)) < 0)
		log_warn("post-up hook failed (%s is up)", u->vm->name);
	switch (u->vm->autoconnect) {
	case CFG_AUTO_SSH:
		return ssh_exec(u->vm, u->cfg->dir, u->vm_dir, u->state, NULL);
	case CFG_AUTO_CONSOLE:
		return cmd_console_attach(u->vm_dir, u->vm->name) == 0 ? 0 : -EIO;
	case CFG_AUTO_NONE:
		break;
	}
	return 0;
}

static int ssh_ext_before_down(struct up_ctx *u, const char *trigger)
{
	int rc = hook_run(u->cfg->dir, "pre-down", u->vm->name, u->vm_dir, trigger,
			  ssh_ext_ip(u->state));

	/* not allowed (or changed since): it did not run, and stopping is always safe */
	if (rc == -EPERM) {
		log_warn("pre-down hook not run (not allowed: see 'hutch allow'); stopping %s anyway",
			 u->vm->name);
		return 0;
	}
	if (rc < 0 && (!strcmp(trigger, "destroy") || !strcmp(trigger, "reset"))) {
		log_warn("pre-down hook failed; going on with %s of %s anyway", trigger, u->vm->name);
		return 0;
	}
	if (rc < 0)
		log_err("pre-down hook failed: not stopping %s", u->vm->name);
	return rc;
}

static int ssh_ext_after_down(struct up_ctx *u, const char *trigger)
{
	if (hook_run(u->cfg->dir, "post-down", u->vm->name, u->vm_dir, trigger, NULL) < 0)
		log_warn("post-down hook failed");
	return 0;
}

int ssh_exec(const struct cfg_vm *vm, const char *project_dir, const char *vm_dir,
	     json_t *state, const char *const *cmd)
{
	const char *argv[SSH_ARGV_MAX + 256];
	char exe[PATH_MAX];
	struct ssh_conn *c;
	int rc;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	rc = ssh_conn_init(c, vm, project_dir, vm_dir, state);
	if (rc == -ENOENT)
		log_err("%s has no address yet: is it running? (hutch up)", vm->name);
	if (rc < 0)
		goto out;
	rc = ssh_argv(c, false, cmd, argv, UTIL_ARRAY_SIZE(argv));
	if (rc < 0)
		goto out;
	rc = proc_find_exe("ssh", NULL, exe, sizeof(exe));
	if (rc < 0) {
		log_err("ssh not found in PATH");
		goto out;
	}
	fflush(stdout);
	fflush(stderr);
	/* exec, not spawn: the terminal, signals and the exit status are ssh's */
	execv(exe, (char *const *)argv);
	rc = -errno;
	log_errno(rc, "exec %s", exe);
out:
	free(c);
	return rc;
}

const struct up_ext ssh_up_ext = {
	.name = "ssh",
	.user_data = ssh_ext_user_data,
	.before_up = ssh_ext_before_up,
	.wait = ssh_ext_wait,
	.after_up = ssh_ext_after_up,
	.before_down = ssh_ext_before_down,
	.after_down = ssh_ext_after_down,
};

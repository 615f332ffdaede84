// SPDX-License-Identifier: MIT
/*
 * `hutch up` and the hidden `hutch __supervise`.
 *
 * up holds the VM lock from before it reads state.json until the VM is
 * ready (or failed), so a second command on the same VM gets exit 75 at
 * once instead of queueing behind a boot.  The CLI writes state.json only
 * while no supervisor runs; from the moment the supervisor starts it is
 * the only writer.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "images/img.h"
#include "images/iso.h"
#include "src/accel.h"
#include "src/cfg.h"
#include "src/cmd.h"
#include "src/consent.h"
#include "src/ext.h"
#include "src/log.h"
#include "src/proc.h"
#include "src/qemu.h"
#include "src/state.h"
#include "src/sv.h"
#include "src/util.h"
#include "src/vm.h"

static int up_random_id(char *buf, size_t n)
{
	unsigned char r[8];

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return -EIO;
	return util_snprintf(buf, n, "i-%02x%02x%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3],
			     r[4], r[5], r[6], r[7]);
}

/* the disk overlay over the cached base image, when the VM boots one */
static int up_create_disk(struct up_ctx *u)
{
	const struct cfg_vm *vm = u->vm;
	struct img_ref ref;
	char path[PATH_MAX];
	int rc;

	if (!vm->image)
		return 0;
	rc = img_resolve(vm->image, vm->image_sha256, u->cfg->dir, u->cli->tty, &ref);
	if (rc) {
		log_errno(rc, "image %s", vm->image);
		return rc;
	}
	if ((rc = util_path_join(path, sizeof(path), u->vm_dir, "disk.qcow2")) ||
	    (rc = img_overlay_create(&ref, path, vm->disk_gib)))
		log_errno(rc, "creating the disk overlay");
	return rc;
}

/* the NoCloud seed: user-data from the first extension that has it */
static int up_create_seed(struct up_ctx *u, const char *iid)
{
	const struct up_ext *const *ext = ext_up_list();
	char path[PATH_MAX], *ud = NULL, *md = NULL;
	size_t udlen = 0;
	int rc = 0;

	for (size_t i = 0; ext[i] && !ud; i++) {
		if (!ext[i]->user_data)
			continue;
		rc = ext[i]->user_data(u, &ud, &udlen);
		if (rc) {
			/* a refusal (consent, a path) has said why already */
			if (rc != -EPERM && rc != -EACCES)
				log_errno(rc, "%s: user-data", ext[i]->name);
			return rc;
		}
	}
	if (!ud) {
		ud = strdup("#cloud-config\n");
		udlen = ud ? strlen(ud) : 0;
	}
	if (!ud || asprintf(&md, "instance-id: %s\nlocal-hostname: %s\n", iid, u->vm->name) < 0) {
		md = NULL;
		rc = -ENOMEM;
		goto out;
	}
	{
		struct iso_file files[] = { { "user-data", ud, udlen },
					    { "meta-data", md, strlen(md) } };

		rc = util_path_join(path, sizeof(path), u->vm_dir, "seed.iso");
		if (!rc)
			rc = iso_write(path, "cidata", files, UTIL_ARRAY_SIZE(files));
		if (rc)
			log_errno(rc, "writing the cloud-init seed");
	}
out:
	free(ud);
	free(md);
	return rc;
}

/* disk overlay, seed ISO and the first state.json of a new VM */
static int up_create(struct up_ctx *u)
{
	char iid[32], mac[32];
	json_t *st;
	int rc;

	if (!u->vm->image && !u->vm->kernel.path) {
		log_err("hutch.yaml sets neither image nor kernel: nothing to boot");
		return -EINVAL;
	}
	if ((rc = up_create_disk(u)) || (rc = up_random_id(iid, sizeof(iid))) ||
	    (rc = qemu_mac_for(u->vm->name, mac, sizeof(mac))) || (rc = up_create_seed(u, iid)))
		return rc;
	st = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "name", u->vm->name, "project", u->cfg->dir,
		       "status", "stopped", "mac", mac, "instance_id", iid, "created_at",
		       (json_int_t)time(NULL));
	rc = st ? state_save(u->vm_dir, st) : -ENOMEM;
	json_decref(st);
	return rc;
}

/* environment of the supervisor: the minimal one plus where hutch keeps things */
static const char *const *up_sv_env(void)
{
	static const char *env[64];
	/* at most 12: env[] keeps 13 slots for these and the NULL; the supervisor
	 * reads the user's config (allow_paths) too, and finds the helper */
	static const char *const keep[] = { "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_RUNTIME_DIR",
					    "XDG_CONFIG_HOME", "HUTCH_ALLOW_PATHS",
					    "HUTCH_TEST_KVM", "HUTCH_BRIDGE", "HUTCH_SUBNET",
					    "HUTCH_RESOLV_CONF", "HUTCH_HELPER", "HUTCH_RUN_DIR",
					    NULL };
	const char *const *d = proc_default_env();
	size_t n = 0;

	for (size_t i = 0; d[i] && n < UTIL_ARRAY_SIZE(env) - 13; i++)
		env[n++] = d[i];
	for (size_t i = 0; keep[i]; i++) {
		const char *v = getenv(keep[i]);
		char *kv;

		if (v && asprintf(&kv, "%s=%s", keep[i], v) >= 0)
			env[n++] = kv;
	}
	env[n] = NULL;
	return env;
}

static int up_spawn_supervisor(const char *vm_dir, pid_t *pid, int *pidfd)
{
	char exe[PATH_MAX], logp[PATH_MAX];
	const char *argv[4];
	struct proc_fdmap fds[2];
	struct proc_opts o = { .argv = argv, .envp = up_sv_env(), .fds = fds, .n_fds = 2,
			       .setsid = true, .cwd = "/", .want_pidfd = true };
	ssize_t n;
	int lfd, rc;

	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return -errno;
	exe[n] = 0;
	rc = util_path_join(logp, sizeof(logp), vm_dir, "supervisor.log");
	if (rc)
		return rc;
	lfd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lfd < 0)
		return -errno;
	argv[0] = exe;
	argv[1] = "__supervise";
	argv[2] = vm_dir;
	argv[3] = NULL;
	fds[0] = (struct proc_fdmap){ lfd, STDOUT_FILENO };
	fds[1] = (struct proc_fdmap){ lfd, STDERR_FILENO };
	rc = proc_spawn(&o, pid, pidfd);
	close(lfd);
	return rc;
}

/*
 * An extension's error as an exit code: a refused path or missing consent
 * is 77, a bad setting in the project's files is 2, a host without the
 * helper is 78 (SPEC.md)
 */
static int up_exit_code(int rc)
{
	if (rc == -ENOPKG)
		return EXIT_NOSETUP;	/* no hutch-helper: 'sudo hutch setup' */
	if (rc == -EACCES || rc == -EPERM || rc == -ELOOP)
		return EXIT_NOPERM;
	return rc == -EINVAL ? EXIT_USAGE : EXIT_ERR;
}

static bool up_state_is(struct up_ctx *u, const char *status)
{
	const char *st = state_get_str(u->state, "status");

	return st && !strcmp(st, status);
}

/* until state says running; 0, or -ECHILD when the supervisor died, -ETIMEDOUT */
static int up_wait_running(struct up_ctx *u, int pidfd, unsigned timeout_s)
{
	uint64_t deadline = util_monotonic_ms() + timeout_s * 1000ULL;

	for (;;) {
		struct pollfd p = { .fd = pidfd, .events = POLLIN };

		if (up_state_reload(u) == 0) {
			if (up_state_is(u, "running"))
				return 0;
			if ((up_state_is(u, "crashed") || up_state_is(u, "stopped")) &&
			    poll(&p, 1, 200) > 0)
				return -ECHILD;
		}
		if (poll(&p, 1, 50) > 0) {
			/* it may have written "running" just before a quick death */
			if (up_state_reload(u) == 0 && up_state_is(u, "running"))
				return 0;
			return -ECHILD;
		}
		if (util_monotonic_ms() >= deadline)
			return -ETIMEDOUT;
	}
}

/* a new VM, or one left by a dead supervisor, ready for its supervisor */
static int up_prepare(struct up_ctx *u, struct vm_target *t)
{
	int rc;

	u->created = !u->state;
	if (u->created) {
		rc = up_create(u);
		if (rc) {
			util_rm_rf(t->dir);
			return rc == -ELIBACC ? EXIT_NODEP : up_exit_code(rc);
		}
		up_phase(u, "created", NULL, NULL);
	}
	if ((rc = up_state_reload(u))) {
		log_errno(rc, "%s/state.json", t->dir);
		return EXIT_ERR;
	}
	if (vm_is_stale(t->dir, u->state)) {
		log_warn("cleaning up after a supervisor that died");
		vm_gc(t->dir, u->state);
	}
	return EXIT_OK;
}

/* pick the accelerator, run before_up, record "starting", spawn the supervisor */
static int up_start(struct up_ctx *u, struct vm_target *t, int *pidfd)
{
	const struct up_ext *const *ext = ext_up_list();
	enum accel_kind accel;
	pid_t svpid;
	int rc;

	if (accel_select(t->vm->accel, &accel))
		return EXIT_NODEP;
	for (size_t i = 0; ext[i]; i++) {
		if (ext[i]->before_up && (rc = ext[i]->before_up(u))) {
			log_errno(rc, "%s: before up", ext[i]->name);
			return up_exit_code(rc);
		}
	}
	json_object_set_new(u->state, "accel", json_string(accel_name(accel)));
	json_object_set_new(u->state, "project", json_string(t->cfg->dir));
	json_object_set_new(u->state, "status", json_string("starting"));
	json_object_del(u->state, "net");
	if ((rc = state_save(t->dir, u->state))) {
		log_errno(rc, "%s/state.json", t->dir);
		return EXIT_ERR;
	}
	log_info("starting %s (%s)", t->name, accel_name(accel));
	/* QEMU's user-mode stack maps 10.0.2.2 to the host's loopback: nothing
	 * on the host side can filter that, so isolation needs mode nat */
	if (t->vm->network.mode == CFG_NET_USER && t->vm->network.isolation)
		log_warn("network mode user does not isolate the guest: it can reach services "
			 "on the host's 127.0.0.1 through 10.0.2.2 (use mode nat for isolation)");
	rc = up_spawn_supervisor(t->dir, &svpid, pidfd);
	if (rc) {
		log_errno(rc, "starting the supervisor");
		return EXIT_ERR;
	}
	rc = up_wait_running(u, *pidfd, t->vm->timeouts.boot);
	if (rc) {
		if (rc == -ETIMEDOUT)
			log_err("%s did not start within %us (timeouts.boot)", t->name,
				t->vm->timeouts.boot);
		else
			log_err("%s failed to start", t->name);
		vm_print_tails(t->dir);
		return EXIT_ERR;
	}
	up_phase(u, "qemu-started", "accel", accel_name(accel));
	return EXIT_OK;
}

/* every extension's wait (lease, SSH, cloud-init, playbook), then after_up */
static int up_wait_ready(struct up_ctx *u, struct vm_target *t)
{
	const struct up_ext *const *ext = ext_up_list();
	int rc;

	for (size_t i = 0; ext[i]; i++) {
		if (ext[i]->wait && (rc = ext[i]->wait(u))) {
			log_errno(rc, "%s: waiting for the guest", ext[i]->name);
			vm_print_tails(t->dir);
			return up_exit_code(rc);
		}
	}
	for (size_t i = 0; ext[i]; i++)
		if (ext[i]->after_up && (rc = ext[i]->after_up(u)))
			log_warno(rc, "%s: after up", ext[i]->name);
	return EXIT_OK;
}

static void up_outcome(struct up_ctx *u, int code)
{
	json_t *o;

	if (!u->cli->json)
		return;
	o = json_pack("{s:s, s:s, s:i, s:I}", "phase", "done", "outcome",
		      code == EXIT_OK ? "ready" : "failed", "exit", code, "t_ms",
		      (json_int_t)(util_monotonic_ms() - u->t0));
	if (o) {
		json_dumpf(o, stdout, JSON_COMPACT);
		putchar('\n');
		fflush(stdout);
	}
	json_decref(o);
}

/*
 * up with the lock held (the dispatcher's, or a verb's that halts and
 * starts again: reset, reload, snapshot restore); t->state becomes ours
 */
static int up_locked(struct cli *cli, struct vm_target *t, bool no_wait)
{
	struct up_ctx u = { .cli = cli, .cfg = t->cfg, .vm = t->vm, .vm_dir = t->dir,
			    .t0 = util_monotonic_ms() };
	int pidfd = -1, ret;

	/* the state the dispatcher read under the lock is ours from here */
	u.state = t->state;
	t->state = NULL;
	if (t->alive) {
		log_info("%s is already %s", t->name, vm_effective_status(t->dir, u.state));
		up_phase(&u, "ready", "status", vm_effective_status(t->dir, u.state));
		ret = EXIT_OK;
		goto out;
	}
	/*
	 * Consent first, before anything of the project's is fetched, reaches
	 * the guest or runs here: a project the user declines costs no
	 * download of the image it names, no disk and no VM dir.
	 */
	if ((ret = consent_require(t->cfg->dir, cli->yes, "up"))) {
		if (!u.state)
			util_rm_rf(t->dir);	/* only its lock: this up made it */
		ret = up_exit_code(ret);
		goto out;
	}
	if ((ret = up_prepare(&u, t)) || (ret = up_start(&u, t, &pidfd)))
		goto out;
	if (no_wait) {
		log_info("%s is starting; 'hutch wait --for ssh' waits for it", t->name);
		goto out;
	}
	if ((ret = up_wait_ready(&u, t)))
		goto out;
	up_phase(&u, "ready", NULL, NULL);
	log_info("%s is running", t->name);
out:
	up_outcome(&u, ret);
	if (pidfd >= 0)
		close(pidfd);
	json_decref(u.state);
	return ret;
}

int vm_up_locked(struct cli *cli, struct vm_target *t)
{
	return up_locked(cli, t, false);
}

static int cmd_up(struct cli *cli, struct vm_target *t, int argc, char **argv)
{
	bool no_wait = false;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--no-wait"))
			no_wait = true;
		else
			return cmd_usage(&cmd_up_entry);
	}
	return up_locked(cli, t, no_wait);
}

static const char up_help[] =
	"Creates the VM described by hutch.yaml if it does not exist, starts it if it is\n"
	"stopped, and does nothing if it runs. On first use it fetches and verifies the\n"
	"base image (once, into the cache), makes a copy-on-write disk over it and the\n"
	"cloud-init seed. It then waits for the guest's DHCP lease, SSH, cloud-init and\n"
	"the playbook (first creation only), and returns when the VM is ready. If the\n"
	"guest dies or a timeout (timeouts: in hutch.yaml) passes, it fails and shows the\n"
	"end of the console log.\n"
	"\n"
	"hooks/, playbook.yml and ansible.cfg of the project run only after 'hutch allow'\n"
	"(or --yes).\n"
	"\n"
	"Options:\n"
	"  --no-wait   return once QEMU runs; 'hutch wait' waits for the rest (the\n"
	"              playbook is not run: 'hutch provision' runs it)\n"
	"  --json      one JSON object per line for each phase reached (created,\n"
	"              qemu-started, leased, ssh-ready, cloud-init-done, provisioned,\n"
	"              ready) with timestamps, then {\"phase\": \"done\", \"outcome\": ...}\n"
	"\n"
	"Examples:\n"
	"  hutch up\n"
	"  hutch up --no-wait && hutch wait --for ssh --timeout 600\n";

const struct cmd_entry cmd_up_entry = {
	.name = "up",
	.usage = "[NAME] [--no-wait]",
	.summary = "create and/or start the VM and wait until it is ready",
	.help = up_help,
	.flags = CMD_F_VM | CMD_F_CFG | CMD_F_CREATE | CMD_F_LOCK,
	.fn = cmd_up,
};

/* ---- the supervisor ---- */

static int cmd_supervise(struct cli *cli, struct vm_target *t, int argc, char **argv)
{
	(void)cli;
	(void)t;
	if (argc != 2 || argv[1][0] != '/') {
		log_err("__supervise takes the VM's directory (internal)");
		return EXIT_USAGE;
	}
	return sv_run(argv[1]);
}

const struct cmd_entry cmd_supervise_entry = {
	.name = "__supervise",
	.usage = "VM_DIR",
	.summary = "the per-VM supervisor (internal)",
	.help = "",
	.flags = CMD_F_HIDDEN,
	.fn = cmd_supervise,
};

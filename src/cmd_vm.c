// SPDX-License-Identifier: MIT
/*
 * Lifecycle verbs: up, halt, destroy, status, list, console, ip, logs,
 * inspect, suspend, resume, gc, and the hidden __supervise.
 *
 * Mutating verbs hold <vm_dir>/lock (flock, non-blocking: a second command
 * gets EXIT_BUSY at once instead of queueing behind a 5-minute boot).  The
 * CLI writes state.json only while no supervisor runs; otherwise it asks the
 * supervisor over control.sock.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "images/img.h"
#include "images/iso.h"
#include "src/accel.h"
#include "src/cfg.h"
#include "src/cmd.h"
#include "src/ext.h"
#include "src/log.h"
#include "src/proc.h"
#include "src/qemu.h"
#include "src/snap.h"
#include "src/state.h"
#include "src/sv.h"
#include "src/util.h"
#include "src/vm.h"

/*
 * Referenced by tests/helpers/fake_ext.c: a program linked from libhutch.a
 * would otherwise get cmd_todo.c's weak stubs for these verbs, since the
 * archive member found first for cmd_up is cmd_todo.o.
 */
const int cmd_vm_verbs = 1;

#define CTL_TIMEOUT_MS 10000
#define HALT_MARGIN_S 15	/* quit grace and teardown beyond timeouts.shutdown */

/*
 * Select the VM from hutch.yaml in cli->dir and an optional name argument.
 * @need_cfg: the verb needs the config (up); otherwise a name alone will do.
 * Return: EXIT_OK, or the exit code to return
 */
int vm_select(struct cli *cli, const char *name, bool need_cfg, struct vm_sel *s)
{
	struct cfg_error e = { { 0 } };
	char path[PATH_MAX];
	int rc;

	memset(s, 0, sizeof(*s));
	if (name && !util_name_valid(name)) {
		log_err("'%s' is not a VM name", name);
		return EXIT_USAGE;
	}
	rc = util_path_join(path, sizeof(path), cli->dir, "hutch.yaml");
	if (rc) {
		log_errno(rc, "%s", cli->dir);
		return EXIT_USAGE;
	}
	if (access(path, F_OK) < 0 && !need_cfg && name) {
		util_snprintf(s->name, sizeof(s->name), "%s", name);
	} else {
		rc = cfg_load(path, &s->cfg, &e);
		if (rc) {
			if (e.msg[0])
				log_err("%s", e.msg);
			else
				log_errno(rc, "%s", path);
			return EXIT_USAGE;
		}
		s->vm = cfg_find_vm(s->cfg, name);
		if (!s->vm) {
			log_err("%s: no VM named '%s'", path, name ? name : "");
			cfg_free(s->cfg);
			s->cfg = NULL;
			return EXIT_USAGE;
		}
		util_snprintf(s->name, sizeof(s->name), "%s", s->vm->name);
	}
	rc = util_vm_dir(s->name, s->dir, sizeof(s->dir));
	if (rc) {
		log_errno(rc, "VM directory of %s", s->name);
		cfg_free(s->cfg);
		s->cfg = NULL;
		return EXIT_ERR;
	}
	log_set_vm(s->name);
	return EXIT_OK;
}

void vm_sel_free(struct vm_sel *s)
{
	cfg_free(s->cfg);
	s->cfg = NULL;
}

bool vm_exists(const struct vm_sel *s)
{
	struct stat sb;

	return stat(s->dir, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* the only positional argument most verbs take: [NAME] */
static int vm_args(int argc, char **argv, const char **name)
{
	*name = NULL;
	for (int i = 1; i < argc; i++) {
		if (argv[i][0] == '-' || *name) {
			log_err("%s: unexpected argument '%s'", argv[0], argv[i]);
			return EXIT_USAGE;
		}
		*name = argv[i];
	}
	return EXIT_OK;
}

int vm_take_lock(const struct vm_sel *s, int *fd)
{
	int rc = vm_lock(s->dir, fd);

	if (rc == -EBUSY) {
		log_err("another hutch command is working on this VM; try again when it is done");
		return EXIT_BUSY;
	}
	if (rc) {
		log_errno(rc, "%s/lock", s->dir);
		return EXIT_ERR;
	}
	return EXIT_OK;
}

/* <data>/vms: where every VM's directory lives */
static int vm_root(char *buf, size_t n)
{
	char data[PATH_MAX];
	int rc = util_data_dir(data, sizeof(data));

	return rc ? rc : util_path_join(buf, n, data, "vms");
}

static void vm_print_tails(const char *vm_dir)
{
	char p[PATH_MAX];

	if (util_path_join(p, sizeof(p), vm_dir, "supervisor.log") == 0) {
		fprintf(stderr, "--- supervisor.log (last lines) ---\n");
		util_print_tail(p, 15, stderr, "  ");
	}
	if (util_path_join(p, sizeof(p), vm_dir, "console.log") == 0) {
		fprintf(stderr, "--- console (last lines) ---\n");
		util_print_tail(p, 30, stderr, "  ");
	}
}

/* ---- up ---- */

static int up_random_id(char *buf, size_t n)
{
	unsigned char r[8];

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return -EIO;
	return util_snprintf(buf, n, "i-%02x%02x%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3],
			     r[4], r[5], r[6], r[7]);
}

/* disk overlay, seed ISO and the first state.json of a new VM */
static int up_create(struct up_ctx *u, const struct vm_sel *s)
{
	const struct up_ext *const *ext = ext_up_list();
	char path[PATH_MAX], iid[32], mac[32], *ud = NULL, *md = NULL;
	size_t udlen = 0;
	json_t *st;
	int rc;

	if (!s->vm->image && !s->vm->kernel.path) {
		log_err("hutch.yaml sets neither image nor kernel: nothing to boot");
		return -EINVAL;
	}
	if (s->vm->image) {
		struct img_ref ref;

		rc = img_resolve(s->vm->image, s->vm->image_sha256, s->cfg->dir, u->cli->tty, &ref);
		if (rc) {
			log_errno(rc, "image %s", s->vm->image);
			return rc;
		}
		if ((rc = util_path_join(path, sizeof(path), s->dir, "disk.qcow2")) ||
		    (rc = img_overlay_create(&ref, path, s->vm->disk_gib))) {
			log_errno(rc, "creating the disk overlay");
			return rc;
		}
	}
	for (size_t i = 0; ext[i] && !ud; i++) {
		if (!ext[i]->user_data)
			continue;
		rc = ext[i]->user_data(u, &ud, &udlen);
		if (rc) {
			log_errno(rc, "%s: user-data", ext[i]->name);
			return rc;
		}
	}
	if (!ud) {
		ud = strdup("#cloud-config\n");
		udlen = ud ? strlen(ud) : 0;
	}
	if ((rc = up_random_id(iid, sizeof(iid))) || (rc = qemu_mac_for(s->name, mac, sizeof(mac))))
		goto out;
	if (asprintf(&md, "instance-id: %s\nlocal-hostname: %s\n", iid, s->name) < 0) {
		md = NULL;
		rc = -ENOMEM;
		goto out;
	}
	{
		struct iso_file files[] = { { "user-data", ud, udlen },
					    { "meta-data", md, strlen(md) } };

		rc = util_path_join(path, sizeof(path), s->dir, "seed.iso");
		if (!rc)
			rc = iso_write(path, "cidata", files, UTIL_ARRAY_SIZE(files));
		if (rc) {
			log_errno(rc, "writing the cloud-init seed");
			goto out;
		}
	}
	st = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "name", s->name, "project", s->cfg->dir,
		       "status", "stopped", "mac", mac, "instance_id", iid, "created_at",
		       (json_int_t)time(NULL));
	rc = st ? state_save(s->dir, st) : -ENOMEM;
	json_decref(st);
out:
	free(ud);
	free(md);
	return rc;
}

/* environment of the supervisor: the minimal one plus where hutch keeps things */
static const char *const *up_sv_env(void)
{
	static const char *env[64];
	/* at most 7: env[] keeps 8 slots for these and the NULL */
	static const char *const keep[] = { "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_RUNTIME_DIR",
					    "HUTCH_TEST_KVM", "HUTCH_BRIDGE", "HUTCH_SUBNET",
					    "HUTCH_RESOLV_CONF", NULL };
	const char *const *d = proc_default_env();
	size_t n = 0;

	for (size_t i = 0; d[i] && n < UTIL_ARRAY_SIZE(env) - 8; i++)
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

/* until state says running; 0, or -ECHILD when the supervisor died, -ETIMEDOUT */
static int up_wait_running(struct up_ctx *u, int pidfd, unsigned timeout_s)
{
	uint64_t deadline = util_monotonic_ms() + timeout_s * 1000ULL;

	for (;;) {
		struct pollfd p = { .fd = pidfd, .events = POLLIN };
		const char *st;

		if (up_state_reload(u) == 0) {
			st = state_get_str(u->state, "status");
			if (st && !strcmp(st, "running"))
				return 0;
			if (st && (!strcmp(st, "crashed") || !strcmp(st, "stopped")) &&
			    poll(&p, 1, 200) > 0)
				return -ECHILD;
		}
		if (poll(&p, 1, 50) > 0) {
			/* it may have written "running" just before a quick death */
			if (up_state_reload(u) == 0 && state_get_str(u->state, "status") &&
			    !strcmp(state_get_str(u->state, "status"), "running"))
				return 0;
			return -ECHILD;
		}
		if (util_monotonic_ms() >= deadline)
			return -ETIMEDOUT;
	}
}

/*
 * up with <vm_dir>/lock held by the caller: create the VM if it has no
 * state.json yet, start its supervisor unless it runs, wait until ready.
 * Return: an exit code
 */
int vm_up_locked(struct cli *cli, const struct vm_sel *sel)
{
	const struct up_ext *const *ext = ext_up_list();
	struct up_ctx u = { .cli = cli };
	const struct vm_sel s = *sel;
	enum accel_kind accel;
	int rc, ret = EXIT_ERR, pidfd = -1;
	uint64_t t0 = util_monotonic_ms();
	pid_t svpid;

	u.cfg = s.cfg;
	u.vm = s.vm;
	u.vm_dir = s.dir;
	/* under the lock: no state.json means new, or a creation that failed half-way */
	rc = state_load(s.dir, &u.state);
	if (rc && rc != -ENOENT) {
		log_errno(rc, "%s/state.json", s.dir);
		goto out;
	}
	u.created = rc == -ENOENT;
	if (u.created) {
		rc = up_create(&u, &s);
		if (rc) {
			util_rm_rf(s.dir);
			ret = rc == -EINVAL ? EXIT_USAGE : rc == -ELIBACC ? EXIT_NODEP : EXIT_ERR;
			goto out;
		}
	}
	if ((rc = up_state_reload(&u))) {
		log_errno(rc, "%s/state.json", s.dir);
		goto out;
	}
	/* VM names are per user, not per project: never boot another project's disk */
	if (state_get_str(u.state, "project") && strcmp(state_get_str(u.state, "project"), s.cfg->dir)) {
		log_err("a VM named %s already exists for %s; rename this one or destroy that one",
			s.name, state_get_str(u.state, "project"));
		goto out;
	}
	if (vm_supervisor_alive(s.dir, u.state)) {
		log_info("%s is already %s", s.name, vm_effective_status(s.dir, u.state));
		ret = EXIT_OK;
		goto out;
	}
	if (vm_is_stale(s.dir, u.state)) {
		log_warn("cleaning up after a supervisor that died");
		vm_gc(s.dir, u.state);
	}
	rc = accel_select(s.vm->accel, &accel);
	if (rc) {
		ret = EXIT_NODEP;
		goto out;
	}
	for (size_t i = 0; ext[i]; i++) {
		if (ext[i]->before_up && (rc = ext[i]->before_up(&u))) {
			log_errno(rc, "%s: before up", ext[i]->name);
			goto out;
		}
	}
	json_object_set_new(u.state, "accel", json_string(accel_name(accel)));
	json_object_set_new(u.state, "project", json_string(s.cfg->dir));
	json_object_set_new(u.state, "status", json_string("starting"));
	json_object_del(u.state, "net");
	if ((rc = state_save(s.dir, u.state))) {
		log_errno(rc, "%s/state.json", s.dir);
		goto out;
	}
	log_info("starting %s (%s)", s.name, accel_name(accel));
	/* QEMU's user-mode stack maps 10.0.2.2 to the host's loopback: nothing
	 * on the host side can filter that, so isolation needs mode nat */
	if (s.vm->network.mode == CFG_NET_USER && s.vm->network.isolation)
		log_warn("network mode user does not isolate the guest: it can reach services "
			 "on the host's 127.0.0.1 through 10.0.2.2 (use mode nat for isolation)");
	rc = up_spawn_supervisor(s.dir, &svpid, &pidfd);
	if (rc) {
		log_errno(rc, "starting the supervisor");
		goto out;
	}
	rc = up_wait_running(&u, pidfd, s.vm->timeouts.boot);
	if (rc) {
		if (rc == -ETIMEDOUT)
			log_err("%s did not start within %us (timeouts.boot)", s.name, s.vm->timeouts.boot);
		else
			log_err("%s failed to start", s.name);
		vm_print_tails(s.dir);
		goto out;
	}
	log_debug("running after %llu ms", (unsigned long long)(util_monotonic_ms() - t0));
	for (size_t i = 0; ext[i]; i++) {
		if (ext[i]->wait && (rc = ext[i]->wait(&u))) {
			log_errno(rc, "%s: waiting for the guest", ext[i]->name);
			vm_print_tails(s.dir);
			goto out;
		}
	}
	for (size_t i = 0; ext[i]; i++)
		if (ext[i]->after_up && (rc = ext[i]->after_up(&u)))
			log_warno(rc, "%s: after up", ext[i]->name);
	log_info("%s is running", s.name);
	ret = EXIT_OK;
out:
	if (pidfd >= 0)
		close(pidfd);
	json_decref(u.state);
	return ret;
}

CMD_DECL(up)
{
	struct vm_sel s;
	const char *name;
	char data[PATH_MAX];
	int lock = -1, rc, ret = EXIT_ERR;

	if ((rc = vm_args(argc, argv, &name)) || (rc = vm_select(cli, name, true, &s)))
		return rc;
	if ((rc = vm_root(data, sizeof(data))) ||
	    (rc = util_mkdir_p(data, 0700))) {
		log_errno(rc, "data directory");
		goto out;
	}
	if (mkdir(s.dir, 0700) < 0 && errno != EEXIST) {
		log_errno(-errno, "%s", s.dir);
		goto out;
	}
	ret = vm_take_lock(&s, &lock);
	if (ret)
		goto out;
	ret = vm_up_locked(cli, &s);
out:
	if (lock >= 0)
		close(lock);
	vm_sel_free(&s);
	return ret;
}

/* ---- halt / destroy ---- */

/* ask the supervisor to halt and wait for it to be gone */
static int vm_halt_running(const struct vm_sel *s, json_t *st, unsigned shutdown_s)
{
	long long svpid = state_get_int(st, "supervisor_pid", 0);
	json_t *req = json_pack("{s:s, s:i}", "cmd", "halt", "timeout", (int)shutdown_s), *resp = NULL;
	int rc = vm_control(s->dir, req, &resp, CTL_TIMEOUT_MS);

	json_decref(req);
	if (rc || !json_is_true(json_object_get(resp, "ok"))) {
		log_warn("the supervisor did not take the halt request (%s); terminating it",
			 rc ? strerror(-rc) : state_get_str(resp, "error") ?: "?");
		kill((pid_t)svpid, SIGTERM);
	}
	json_decref(resp);
	rc = vm_wait_pid_gone((pid_t)svpid, (int)(shutdown_s + HALT_MARGIN_S) * 1000);
	if (rc == -ETIMEDOUT) {
		log_warn("supervisor %lld still there; killing it", svpid);
		kill((pid_t)svpid, SIGKILL);
		rc = vm_wait_pid_gone((pid_t)svpid, 5000);
	}
	return rc;
}

/*
 * halt (or destroy) with <vm_dir>/lock held by the caller.  @trigger is
 * what the hooks see (HUTCH_TRIGGER): a failing pre-down hook aborts
 * everything but destroy and reset.
 */
static int vm_down_locked(struct cli *cli, const struct vm_sel *sel, const char *trigger,
			  bool destroy)
{
	const struct up_ext *const *ext = ext_up_list();
	struct up_ctx u = { .cli = cli };
	const struct vm_sel s = *sel;
	unsigned shutdown_s;
	int rc, ret = EXIT_ERR;

	u.cfg = s.cfg;
	u.vm = s.vm;
	u.vm_dir = s.dir;
	shutdown_s = s.vm ? s.vm->timeouts.shutdown : 60;
	rc = up_state_reload(&u);
	if (rc && rc != -ENOENT && !destroy) {
		log_errno(rc, "%s/state.json", s.dir);
		goto out;
	}
	if (u.state && s.vm) {
		for (size_t i = 0; ext[i]; i++) {
			if (ext[i]->before_down && (rc = ext[i]->before_down(&u, trigger))) {
				log_errno(rc, "%s: before %s", ext[i]->name, trigger);
				/* pre-down failing aborts halt and snapshot, never destroy or reset */
				if (!destroy && strcmp(trigger, "reset"))
					goto out;
			}
		}
	}
	if (u.state && vm_supervisor_alive(s.dir, u.state)) {
		log_info("halting %s", s.name);
		rc = vm_halt_running(&s, u.state, shutdown_s);
		if (rc) {
			log_errno(rc, "waiting for the supervisor to exit");
			goto out;
		}
		up_state_reload(&u);
	} else if (u.state && vm_is_stale(s.dir, u.state)) {
		log_warn("cleaning up after a supervisor that died");
		vm_gc(s.dir, u.state);
	} else if (!destroy) {
		log_info("%s is not running", s.name);
	}
	if (destroy) {
		rc = util_rm_rf(s.dir);
		if (rc) {
			log_errno(rc, "removing %s", s.dir);
			goto out;
		}
		log_info("%s destroyed", s.name);
	} else {
		const char *why = u.state ? state_get_str(u.state, "exit_reason") : NULL;

		log_info("%s is %s%s%s%s", s.name, u.state ? vm_effective_status(s.dir, u.state) : "stopped",
			 why ? " (" : "", why ? why : "", why ? ")" : "");
	}
	if (s.vm)
		for (size_t i = 0; ext[i]; i++)
			if (ext[i]->after_down && (rc = ext[i]->after_down(&u, trigger)))
				log_warno(rc, "%s: after %s", ext[i]->name, trigger);
	ret = EXIT_OK;
out:
	json_decref(u.state);
	return ret;
}

int vm_halt_locked(struct cli *cli, const struct vm_sel *s, const char *trigger)
{
	return vm_down_locked(cli, s, trigger, false);
}

static int vm_down(struct cli *cli, int argc, char **argv, bool destroy)
{
	struct vm_sel s;
	const char *name;
	int lock = -1, rc, ret;

	if ((rc = vm_args(argc, argv, &name)) || (rc = vm_select(cli, name, false, &s)))
		return rc;
	if (!vm_exists(&s)) {
		log_info("%s does not exist", s.name);
		vm_sel_free(&s);
		return EXIT_OK;
	}
	ret = vm_take_lock(&s, &lock);
	if (!ret)
		ret = vm_down_locked(cli, &s, destroy ? "destroy" : "halt", destroy);
	if (lock >= 0)
		close(lock);
	vm_sel_free(&s);
	return ret;
}

CMD_DECL(halt)
{
	return vm_down(cli, argc, argv, false);
}

CMD_DECL(destroy)
{
	return vm_down(cli, argc, argv, true);
}

/* ---- suspend / resume ---- */

static int vm_pause(struct cli *cli, int argc, char **argv, const char *cmd)
{
	struct vm_sel s;
	const char *name;
	json_t *st = NULL, *req, *resp = NULL;
	int lock = -1, rc, ret = EXIT_ERR;

	if ((rc = vm_args(argc, argv, &name)) || (rc = vm_select(cli, name, false, &s)))
		return rc;
	if (!vm_exists(&s)) {
		log_err("%s does not exist", s.name);
		goto out;
	}
	ret = vm_take_lock(&s, &lock);
	if (ret)
		goto out;
	ret = EXIT_ERR;
	if (state_load(s.dir, &st) || !vm_supervisor_alive(s.dir, st)) {
		log_err("%s is not running", s.name);
		goto out;
	}
	req = json_pack("{s:s}", "cmd", cmd);
	rc = vm_control(s.dir, req, &resp, CTL_TIMEOUT_MS);
	json_decref(req);
	if (rc) {
		log_errno(rc, "control socket");
		goto out;
	}
	if (!json_is_true(json_object_get(resp, "ok"))) {
		log_err("%s: %s", cmd, state_get_str(resp, "error") ?: "failed");
		goto out;
	}
	log_info("%s %s", s.name, !strcmp(cmd, "suspend") ? "paused" : "running");
	ret = EXIT_OK;
out:
	json_decref(resp);
	json_decref(st);
	if (lock >= 0)
		close(lock);
	vm_sel_free(&s);
	return ret;
}

CMD_DECL(suspend)
{
	return vm_pause(cli, argc, argv, "suspend");
}

CMD_DECL(resume)
{
	return vm_pause(cli, argc, argv, "resume");
}

/* ---- status / list ---- */

static json_t *vm_summary(const char *vm_dir, const char *name, json_t *st)
{
	const char *status = st ? vm_effective_status(vm_dir, st) : "not-created";
	json_t *o = json_pack("{s:s, s:s}", "name", name, "status", status);
	json_t *net = st ? json_object_get(st, "net") : NULL, *ssh = st ? json_object_get(st, "ssh") : NULL;
	const char *keys[] = { "accel", "project", "exit_reason", "mac" };
	bool active = !strcmp(status, "running") || !strcmp(status, "paused") ||
		      !strcmp(status, "starting");

	if (!st)
		return o;
	snap_summary(vm_dir, st, o);
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(keys); i++)
		if (state_get_str(st, keys[i]))
			json_object_set_new(o, keys[i], json_string(state_get_str(st, keys[i])));
	if (active) {
		long long t = state_get_int(st, "started_at", 0);

		json_object_set_new(o, "supervisor_pid", json_integer(state_get_int(st, "supervisor_pid", 0)));
		json_object_set_new(o, "qemu_pid", json_integer(state_get_int(st, "qemu_pid", 0)));
		if (t > 0)
			json_object_set_new(o, "uptime_s", json_integer((json_int_t)(time(NULL) - t)));
		if (state_get_str(net, "ip"))
			json_object_set_new(o, "ip", json_string(state_get_str(net, "ip")));
		else if (state_get_int(ssh, "port", 0) > 0)
			json_object_set_new(o, "ip", json_string("127.0.0.1"));
		if (state_get_int(ssh, "port", 0) > 0)
			json_object_set_new(o, "ssh_port", json_integer(state_get_int(ssh, "port", 0)));
	}
	return o;
}

CMD_DECL(status)
{
	struct vm_sel s;
	const char *name;
	json_t *st = NULL, *o;
	int rc;

	if ((rc = vm_args(argc, argv, &name)) || (rc = vm_select(cli, name, false, &s)))
		return rc;
	rc = state_load(s.dir, &st);
	if (rc && rc != -ENOENT) {
		log_errno(rc, "%s/state.json", s.dir);
		vm_sel_free(&s);
		return EXIT_ERR;
	}
	o = vm_summary(s.dir, s.name, st);
	if (cli->json) {
		json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
	} else {
		/* plain iteration, not json_object_foreach: cppcheck cannot expand it */
		for (void *it = json_object_iter(o); it; it = json_object_iter_next(o, it)) {
			const char *k = json_object_iter_key(it);
			json_t *v = json_object_iter_value(it);

			if (json_is_string(v))
				printf("%-12s %s\n", k, json_string_value(v));
			else if (json_is_integer(v))
				printf("%-12s %lld\n", k, (long long)json_integer_value(v));
		}
	}
	json_decref(o);
	json_decref(st);
	vm_sel_free(&s);
	return EXIT_OK;
}

CMD_DECL(list)
{
	char dir[PATH_MAX], vmd[PATH_MAX];
	json_t *arr = json_array();
	struct dirent *de;
	DIR *d;
	int rc;

	(void)argv;
	if (argc > 1) {
		log_err("list takes no arguments");
		json_decref(arr);
		return EXIT_USAGE;
	}
	if ((rc = vm_root(dir, sizeof(dir)))) {
		json_decref(arr);
		return EXIT_ERR;
	}
	d = opendir(dir);
	while (d && (de = readdir(d))) {
		json_t *st = NULL;

		if (!util_name_valid(de->d_name) || util_path_join(vmd, sizeof(vmd), dir, de->d_name))
			continue;
		if (state_load(vmd, &st))
			continue;
		json_array_append_new(arr, vm_summary(vmd, de->d_name, st));
		json_decref(st);
	}
	if (d)
		closedir(d);
	if (cli->json) {
		json_dumpf(arr, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
	} else {
		if (json_array_size(arr))
			printf("%-24s %-10s %-6s %s\n", "NAME", "STATUS", "ACCEL", "PROJECT");
		for (size_t i = 0; i < json_array_size(arr); i++) {
			json_t *o = json_array_get(arr, i);

			printf("%-24s %-10s %-6s %s\n", state_get_str(o, "name"), state_get_str(o, "status"),
			       state_get_str(o, "accel") ?: "-", state_get_str(o, "project") ?: "-");
		}
	}
	json_decref(arr);
	return EXIT_OK;
}

/* ---- ip ---- */

CMD_DECL(ip)
{
	struct vm_sel s;
	const char *name, *ip;
	json_t *st = NULL, *o = NULL;
	long long port;
	int rc, ret = EXIT_ERR;

	if ((rc = vm_args(argc, argv, &name)) || (rc = vm_select(cli, name, false, &s)))
		return rc;
	if (state_load(s.dir, &st) || !vm_supervisor_alive(s.dir, st)) {
		log_err("%s is not running", s.name);
		goto out;
	}
	ip = state_get_str(json_object_get(st, "net"), "ip");
	port = state_get_int(json_object_get(st, "ssh"), "port", 0);
	if (ip)
		o = json_pack("{s:s}", "ip", ip);
	else if (port > 0)
		o = json_pack("{s:s, s:I, s:s}", "ip", "127.0.0.1", "ssh_port", (json_int_t)port, "mode", "user");
	if (!o) {
		log_err("%s has no address yet", s.name);
		goto out;
	}
	if (cli->json) {
		json_dumpf(o, stdout, JSON_COMPACT);
		putchar('\n');
	} else {
		printf("%s\n", state_get_str(o, "ip"));
		if (!ip)
			log_info("user-mode networking: SSH is forwarded from 127.0.0.1:%lld", port);
	}
	ret = EXIT_OK;
out:
	json_decref(o);
	json_decref(st);
	vm_sel_free(&s);
	return ret;
}

/* ---- console ---- */

static struct termios console_saved;
static bool console_raw;

static void console_restore(void)
{
	if (console_raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &console_saved);
	console_raw = false;
}

CMD_DECL(console)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct vm_sel s;
	const char *name;
	bool in_open = true;
	int fd = -1, rc, ret = EXIT_ERR;

	if ((rc = vm_args(argc, argv, &name)) || (rc = vm_select(cli, name, false, &s)))
		return rc;
	if ((rc = vm_sock_path(s.dir, "console.sock", sa.sun_path, sizeof(sa.sun_path)))) {
		log_errno(rc, "console.sock");
		goto out;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		log_err("%s is not running (no console)", s.name);
		goto out;
	}
	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &console_saved) == 0) {
		struct termios raw = console_saved;

		cfmakeraw(&raw);
		if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0) {
			console_raw = true;
			atexit(console_restore);
		}
	}
	fprintf(stderr, "hutch: connected to %s's console; Ctrl-] leaves%s", s.name,
		console_raw ? "\r\n" : "\n");
	for (;;) {
		struct pollfd p[2] = { { .fd = fd, .events = POLLIN },
				       { .fd = in_open ? STDIN_FILENO : -1, .events = POLLIN } };
		char buf[4096];
		ssize_t r;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents) {
			r = read(fd, buf, sizeof(buf));
			if (r <= 0)
				break;	/* the VM stopped */
			if (util_write_all(STDOUT_FILENO, buf, (size_t)r))
				break;
		}
		if (p[1].revents) {
			char *esc;

			r = read(STDIN_FILENO, buf, sizeof(buf));
			if (r <= 0) {
				in_open = false;	/* keep showing output */
				continue;
			}
			esc = memchr(buf, 0x1d, (size_t)r);	/* Ctrl-] */
			if (esc) {
				if (esc > buf)
					util_write_all(fd, buf, (size_t)(esc - buf));
				break;
			}
			if (util_write_all(fd, buf, (size_t)r))
				break;
		}
	}
	console_restore();
	fprintf(stderr, "\nhutch: left the console\n");
	ret = EXIT_OK;
out:
	if (fd >= 0)
		close(fd);
	vm_sel_free(&s);
	return ret;
}

/* ---- logs ---- */

/*
 * Log bytes come from the guest: control characters other than newline and
 * tab are shown as \xNN so they cannot drive the user's terminal.
 */
static void logs_emit(const char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)buf[i];

		if (ch == '\n' || ch == '\t' || (ch >= 0x20 && ch != 0x7f))
			putchar(ch);
		else if (ch != '\r')
			printf("\\x%02x", ch);
	}
}

CMD_DECL(logs)
{
	const char *file = "console.log", *name = NULL;
	char path[PATH_MAX];
	bool follow = false;
	struct vm_sel s;
	off_t pos = 0;
	int rc, fd = -1;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--console"))
			file = "console.log";
		else if (!strcmp(argv[i], "--provision"))
			file = "provision.log";
		else if (!strcmp(argv[i], "--supervisor"))
			file = "supervisor.log";
		else if (!strcmp(argv[i], "-f") || !strcmp(argv[i], "--follow"))
			follow = true;
		else if (argv[i][0] != '-' && !name)
			name = argv[i];
		else {
			log_err("logs: unexpected argument '%s'", argv[i]);
			return EXIT_USAGE;
		}
	}
	if ((rc = vm_select(cli, name, false, &s)))
		return rc;
	if ((rc = util_path_join(path, sizeof(path), s.dir, file)))
		goto fail;
	for (;;) {
		char buf[8192];
		struct stat sb;
		ssize_t r;

		if (fd < 0) {
			fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0 && !follow) {
				rc = -errno;
				goto fail;
			}
			pos = 0;
		}
		while (fd >= 0 && (r = read(fd, buf, sizeof(buf))) > 0) {
			logs_emit(buf, (size_t)r);
			pos += r;
		}
		fflush(stdout);
		if (!follow)
			break;
		usleep(200 * 1000);
		/* rotated or truncated: start again from the new file */
		if (fd >= 0 && (stat(path, &sb) < 0 || sb.st_size < pos)) {
			close(fd);
			fd = -1;
		}
	}
	if (fd >= 0)
		close(fd);
	vm_sel_free(&s);
	return EXIT_OK;
fail:
	log_errno(rc, "%s", path);
	vm_sel_free(&s);
	return EXIT_ERR;
}

/* ---- inspect ---- */

CMD_DECL(inspect)
{
	const struct sv_ext *const *ext = ext_sv_list();
	struct vm_sel s;
	const char *name;
	json_t *st = NULL, *o = NULL, *argvj, *req, *resp = NULL;
	int rc, ret = EXIT_ERR;

	if ((rc = vm_args(argc, argv, &name)) || (rc = vm_select(cli, name, false, &s)))
		return rc;
	if ((rc = state_load(s.dir, &st))) {
		log_errno(rc, "%s/state.json", s.dir);
		goto out;
	}
	o = json_pack("{s:s, s:s}", "name", s.name, "status", vm_effective_status(s.dir, st));
	argvj = json_object_get(st, "qemu_argv");
	if (json_is_array(argvj))
		json_object_set(o, "qemu_argv", argvj);
	if (vm_supervisor_alive(s.dir, st)) {
		req = json_pack("{s:s}", "cmd", "status");
		if (vm_control(s.dir, req, &resp, CTL_TIMEOUT_MS) == 0 && state_get_str(resp, "qmp"))
			json_object_set_new(o, "qmp_status", json_string(state_get_str(resp, "qmp")));
		json_decref(req);
	}
	if (cli->json) {
		for (size_t i = 0; ext[i]; i++)
			if (ext[i]->inspect && (rc = ext[i]->inspect(s.dir, st, NULL, o)))
				log_warno(rc, "%s: inspect", ext[i]->name);
		json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
	} else {
		printf("name:        %s\nstatus:      %s\n", s.name, state_get_str(o, "status"));
		if (state_get_str(o, "qmp_status"))
			printf("qmp status:  %s\n", state_get_str(o, "qmp_status"));
		if (json_is_array(argvj)) {
			printf("qemu argv:  ");
			for (size_t i = 0; i < json_array_size(argvj); i++) {
				const char *v = json_string_value(json_array_get(argvj, i));

				if (!v)
					continue;
				if (strpbrk(v, " \t'\"\\$") || !*v)
					printf(" '%s'", v);
				else
					printf(" %s", v);
			}
			putchar('\n');
		}
		fflush(stdout);
		for (size_t j = 0; ext[j]; j++)
			if (ext[j]->inspect && (rc = ext[j]->inspect(s.dir, st, stdout, NULL)))
				log_warno(rc, "%s: inspect", ext[j]->name);
	}
	ret = EXIT_OK;
out:
	json_decref(resp);
	json_decref(o);
	json_decref(st);
	vm_sel_free(&s);
	return ret;
}

/* ---- gc ---- */

CMD_DECL(gc)
{
	char dir[PATH_MAX], vmd[PATH_MAX];
	struct dirent *de;
	int n = 0, ret = EXIT_OK, rc;
	DIR *d;

	(void)cli;
	(void)argv;
	if (argc > 1) {
		log_err("gc takes no arguments");
		return EXIT_USAGE;
	}
	if ((rc = vm_root(dir, sizeof(dir))))
		return EXIT_ERR;
	d = opendir(dir);
	while (d && (de = readdir(d))) {
		json_t *st = NULL;
		int lock;

		if (!util_name_valid(de->d_name) || util_path_join(vmd, sizeof(vmd), dir, de->d_name) ||
		    state_load(vmd, &st))
			continue;
		if (vm_is_stale(vmd, st)) {
			/* a VM being started or stopped right now is not garbage */
			if (vm_lock(vmd, &lock) == 0) {
				if (vm_gc(vmd, st))
					ret = EXIT_ERR;
				close(lock);
				fprintf(stderr, "hutch: %s: cleaned up after a dead supervisor\n", de->d_name);
				n++;
			}
		}
		json_decref(st);
	}
	if (d)
		closedir(d);
	if (!n)
		log_info("nothing to clean up");
	return ret;
}

/* ---- the supervisor ---- */

CMD_DECL(supervise)
{
	(void)cli;
	if (argc != 2 || argv[1][0] != '/') {
		log_err("__supervise takes the VM's directory (internal)");
		return EXIT_USAGE;
	}
	return sv_run(argv[1]);
}

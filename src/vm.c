// SPDX-License-Identifier: MIT
#include "src/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "src/cfg.h"
#include "src/cmd.h"
#include "src/ext.h"
#include "src/log.h"
#include "src/proc.h"
#include "src/state.h"
#include "src/trust.h"
#include "src/util.h"

int vm_root_dir(char *buf, size_t n)
{
	char data[PATH_MAX];
	int rc = util_data_dir(data, sizeof(data));

	return rc ? rc : util_path_join(buf, n, data, "vms");
}

/* lock, then state, then liveness: in this order (see vm_target_open()) */
static int vm_target_fill(struct vm_target *t, unsigned flags)
{
	char path[PATH_MAX];
	int rc;

	if (flags & CMD_F_CREATE) {
		char why[TRUST_WHY_MAX];

		/* <data>/hutch/vms: hutch's own, 0700, on a path nobody else can write */
		if ((rc = vm_root_dir(path, sizeof(path))) ||
		    (rc = trust_dir(path, 2, why, sizeof(why)))) {
			if (rc == -EPERM)
				log_err("%s", why);
			else
				log_errno(rc, "data directory");
			return rc == -EPERM ? EXIT_NOPERM : EXIT_ERR;
		}
		if (mkdir(t->dir, 0700) < 0 && errno != EEXIST) {
			log_errno(-errno, "creating %s", t->dir);
			return EXIT_ERR;
		}
	}
	if (flags & CMD_F_LOCK) {
		if ((rc = util_path_join(path, sizeof(path), t->dir, "lock"))) {
			log_errno(rc, "%s", t->dir);
			return EXIT_ERR;
		}
		rc = util_flock(path, false, NULL);
		if (rc == -EBUSY) {
			log_err("another hutch command is working on %s; try again when it is done",
				t->name);
			return EXIT_BUSY;
		}
		/* no directory: the VM was never created (checked below) */
		if (rc < 0 && rc != -ENOENT) {
			log_errno(rc, "%s", path);
			return EXIT_ERR;
		}
		t->lock = rc < 0 ? -1 : rc;
	}
	rc = vm_target_reload(t);
	if (rc && rc != -ENOENT) {
		log_errno(rc, "%s/state.json", t->dir);
		return EXIT_ERR;
	}
	if ((flags & (CMD_F_EXISTS | CMD_F_RUNNING)) && !t->state) {
		log_err("%s does not exist (hutch up creates it)", t->name);
		return EXIT_ERR;
	}
	if ((flags & CMD_F_RUNNING) && !t->alive) {
		log_err("%s is not running (status %s; hutch up starts it)", t->name,
			vm_effective_status(t->dir, t->state));
		return EXIT_ERR;
	}
	return EXIT_OK;
}

static void vm_target_init(struct vm_target *t)
{
	memset(t, 0, sizeof(*t));
	t->lock = -1;
}

int vm_target_open(struct cli *cli, const char *name, unsigned flags, struct vm_target *t)
{
	struct cfg_error e = { { 0 } };
	char path[PATH_MAX];
	struct stat sb;
	int rc;

	vm_target_init(t);
	if (name && !util_name_valid(name)) {
		log_err("'%s' is not a VM name ([a-z0-9][a-z0-9-]{0,30})", name);
		return EXIT_USAGE;
	}
	if ((rc = util_path_join(path, sizeof(path), cli->dir, "hutch.yaml"))) {
		log_errno(rc, "%s", cli->dir);
		return EXIT_USAGE;
	}
	if (lstat(path, &sb) < 0 && errno == ENOENT && name && !(flags & CMD_F_CFG)) {
		/* no project here: the VM by its name alone */
		memcpy(t->name, name, strlen(name) + 1);
	} else {
		rc = cfg_load(path, &t->cfg, &e);
		if (rc) {
			log_err("%s", e.msg[0] ? e.msg : strerror(-rc));
			if (rc == -ENOENT)
				log_err("hint: create hutch.yaml (at least 'name: NAME') in %s, or use -C DIR",
					cli->dir);
			return rc == -EACCES || rc == -EPERM ? EXIT_NOPERM : EXIT_USAGE;
		}
		t->vm = cfg_find_vm(t->cfg, name);
		if (!t->vm) {
			log_err("%s: no VM named '%s'", path, name ? name : "");
			return EXIT_USAGE;
		}
		memcpy(t->name, t->vm->name, strlen(t->vm->name) + 1);
	}
	log_set_vm(t->name);
	if ((rc = util_vm_dir(t->name, t->dir, sizeof(t->dir)))) {
		log_errno(rc, "state directory of %s", t->name);
		return EXIT_ERR;
	}
	rc = vm_target_fill(t, flags);
	if (rc)
		return rc;
	/* VM names are per user, not per project: never act on another project's VM */
	if (t->cfg && t->state && state_get_str(t->state, "project") &&
	    strcmp(state_get_str(t->state, "project"), t->cfg->dir)) {
		log_err("a VM named %s already exists for %s; rename this one, or use -C %s "
			"to act on that one", t->name, state_get_str(t->state, "project"),
			state_get_str(t->state, "project"));
		return EXIT_ERR;
	}
	return EXIT_OK;
}

int vm_target_by_dir(const char *name, unsigned flags, struct vm_target *t)
{
	int rc;

	vm_target_init(t);
	if (!util_name_valid(name))
		return EXIT_USAGE;
	memcpy(t->name, name, strlen(name) + 1);
	if ((rc = util_vm_dir(t->name, t->dir, sizeof(t->dir))))
		return EXIT_ERR;
	if (flags & CMD_F_LOCK) {
		char path[PATH_MAX];

		if (util_path_join(path, sizeof(path), t->dir, "lock"))
			return EXIT_ERR;
		rc = util_flock(path, false, NULL);
		if (rc < 0)
			return rc == -EBUSY ? EXIT_BUSY : EXIT_ERR;
		t->lock = rc;
	}
	rc = vm_target_reload(t);
	return rc ? EXIT_ERR : EXIT_OK;
}

int vm_target_reload(struct vm_target *t)
{
	json_t *st;
	int rc = state_load(t->dir, &st);

	if (rc)
		return rc;
	json_decref(t->state);
	t->state = st;
	t->alive = vm_supervisor_alive(t->dir, st);
	return 0;
}

void vm_target_close(struct vm_target *t)
{
	json_decref(t->state);
	t->state = NULL;
	cfg_free(t->cfg);
	t->cfg = NULL;
	t->vm = NULL;
	if (t->lock >= 0)
		close(t->lock);
	t->lock = -1;
}

/* NUL-separated /proc/<pid>/cmdline, bounded */
static int vm_cmdline(pid_t pid, char *buf, size_t n, size_t *len)
{
	char path[64];
	ssize_t r;
	int fd;

	if (util_snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid))
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = read(fd, buf, n - 1);
	close(fd);
	if (r <= 0)
		return -ESRCH;
	buf[r] = 0;
	*len = (size_t)r;
	return 0;
}

/* whether the NUL-separated @cmd holds the argument @arg */
static bool vm_cmd_has(const char *cmd, size_t len, const char *arg)
{
	for (size_t off = 0; off < len; off += strlen(cmd + off) + 1)
		if (!strcmp(cmd + off, arg))
			return true;
	return false;
}

bool vm_pid_is_supervisor(pid_t pid, const char *vm_dir)
{
	char cmd[8192];
	size_t len;

	if (pid <= 1 || vm_cmdline(pid, cmd, sizeof(cmd), &len))
		return false;
	return vm_cmd_has(cmd, len, "__supervise") && vm_cmd_has(cmd, len, vm_dir);
}

bool vm_supervisor_alive(const char *vm_dir, const json_t *st)
{
	long long pid = state_get_int(st, "supervisor_pid", 0);

	return pid > 1 && pid < INT_MAX && vm_pid_is_supervisor((pid_t)pid, vm_dir);
}

static bool vm_status_active(const char *s)
{
	return s && (!strcmp(s, "starting") || !strcmp(s, "running") || !strcmp(s, "paused"));
}

bool vm_is_stale(const char *vm_dir, const json_t *st)
{
	char p[PATH_MAX];

	if (vm_supervisor_alive(vm_dir, st))
		return false;
	if (vm_status_active(state_get_str(st, "status")))
		return true;
	/* sockets or a pid file left behind by a supervisor killed early */
	return (util_path_join(p, sizeof(p), vm_dir, "supervisor.pid") == 0 && access(p, F_OK) == 0);
}

const char *vm_effective_status(const char *vm_dir, const json_t *st)
{
	const char *s = state_get_str(st, "status");

	if (!s)
		return "unknown";
	if (vm_status_active(s) && !vm_supervisor_alive(vm_dir, st))
		return "crashed";
	return s;
}

int vm_gc(const char *vm_dir, json_t *st)
{
	const struct sv_ext *const *ext = ext_sv_list();
	static const char *const leftovers[] = { "control.sock", "console.sock", "supervisor.pid" };
	long long qpid = state_get_int(st, "qemu_pid", 0);
	const char *name = state_get_str(st, "name");
	char p[PATH_MAX], cmd[8192];
	size_t len;
	int rc = 0, r;

	/* QEMU dies with its supervisor (PDEATHSIG), but check rather than trust */
	if (qpid > 1 && qpid < INT_MAX && name && vm_cmdline((pid_t)qpid, cmd, sizeof(cmd), &len) == 0 &&
	    strstr(cmd, "qemu-system") && vm_cmd_has(cmd, len, name)) {
		log_warn("killing QEMU %lld left by a dead supervisor", qpid);
		kill((pid_t)qpid, SIGKILL);
	}
	for (size_t i = 0; ext[i]; i++) {
		if (!ext[i]->gc)
			continue;
		r = ext[i]->gc(vm_dir, st);
		if (r) {
			log_warno(r, "gc: %s", ext[i]->name);
			if (!rc)
				rc = r;
		}
	}
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(leftovers); i++)
		if (util_path_join(p, sizeof(p), vm_dir, leftovers[i]) == 0)
			unlink(p);
	if (vm_status_active(state_get_str(st, "status"))) {
		json_object_set_new(st, "status", json_string("crashed"));
		json_object_set_new(st, "exit_reason", json_string("crashed"));
		json_object_set_new(st, "stopped_at", json_integer((json_int_t)time(NULL)));
	}
	json_object_del(st, "supervisor_pid");
	json_object_del(st, "qemu_pid");
	r = state_save(vm_dir, st);
	return rc ? rc : r;
}

int vm_ctl_parse(const char *line, size_t n, enum vm_ctl_cmd *cmd, long *timeout_s)
{
	static const struct {
		const char *name;
		enum vm_ctl_cmd cmd;
	} cmds[] = {
		{ "status", VM_CTL_STATUS }, { "halt", VM_CTL_HALT }, { "quit", VM_CTL_QUIT },
		{ "suspend", VM_CTL_SUSPEND }, { "resume", VM_CTL_RESUME },
	};
	json_t *req, *t;
	const char *name;
	int rc = -EPROTO;

	if (n > VM_CTL_LINE_MAX)
		return -E2BIG;
	req = json_loadb(line, n, JSON_REJECT_DUPLICATES, NULL);
	name = json_is_object(req) ? state_get_str(req, "cmd") : NULL;
	for (size_t i = 0; name && i < UTIL_ARRAY_SIZE(cmds); i++) {
		if (strcmp(name, cmds[i].name))
			continue;
		t = json_object_get(req, "timeout");
		if (t && !json_is_integer(t))
			break;
		*timeout_s = t && json_integer_value(t) >= 0 && json_integer_value(t) <= 86400
				     ? (long)json_integer_value(t)
				     : -1;
		*cmd = cmds[i].cmd;
		rc = 0;
		break;
	}
	json_decref(req);
	return rc;
}

int vm_ctl_feed(char *buf, size_t cap, size_t *have, const char *in, size_t n, size_t *len)
{
	size_t take = n < cap - *have ? n : cap - *have;
	char *nl;

	memcpy(buf + *have, in, take);
	*have += take;
	nl = memchr(buf, '\n', *have);
	if (nl) {
		*len = (size_t)(nl - buf);
		return 1;
	}
	return *have >= cap ? -E2BIG : 0;
}

int vm_sock_path(const char *vm_dir, const char *name, char *buf, size_t n)
{
	struct sockaddr_un sa;
	int rc = util_path_join(buf, n, vm_dir, name);

	if (rc)
		return rc;
	return strlen(buf) < sizeof(sa.sun_path) ? 0 : -ENAMETOOLONG;
}

static int vm_poll1(int fd, short ev, uint64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = ev };
	uint64_t now = util_monotonic_ms();
	int r;

	if (now >= deadline)
		return -ETIMEDOUT;
	r = poll(&p, 1, (int)(deadline - now));
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	return r == 0 ? -ETIMEDOUT : 1;
}

int vm_control(const char *vm_dir, json_t *req, json_t **resp, int timeout_ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint64_t deadline = util_monotonic_ms() + (uint64_t)timeout_ms;
	char *line = NULL, *buf = NULL;
	size_t have = 0;
	json_t *j;
	int fd, rc;

	rc = vm_sock_path(vm_dir, "control.sock", sa.sun_path, sizeof(sa.sun_path));
	if (rc)
		return rc;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = -errno;
		goto out;
	}
	line = json_dumps(req, JSON_COMPACT);
	if (!line) {
		rc = -ENOMEM;
		goto out;
	}
	rc = util_write_all(fd, line, strlen(line));
	if (!rc)
		rc = util_write_all(fd, "\n", 1);
	if (rc)
		goto out;
	buf = malloc(VM_CTL_LINE_MAX);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	for (;;) {
		char *nl;
		ssize_t r;

		rc = vm_poll1(fd, POLLIN, deadline);
		if (rc < 0)
			goto out;
		if (rc == 0)
			continue;
		r = read(fd, buf + have, VM_CTL_LINE_MAX - 1 - have);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			goto out;
		}
		if (r == 0) {
			rc = -ECONNRESET;
			goto out;
		}
		have += (size_t)r;
		nl = memchr(buf, '\n', have);
		if (nl) {
			j = json_loadb(buf, (size_t)(nl - buf), 0, NULL);
			if (!json_is_object(j)) {
				json_decref(j);
				rc = -EPROTO;
				goto out;
			}
			*resp = j;
			rc = 0;
			goto out;
		}
		if (have >= VM_CTL_LINE_MAX - 1) {
			rc = -E2BIG;
			goto out;
		}
	}
out:
	free(buf);
	free(line);
	close(fd);
	return rc;
}

int vm_wait_pid_gone(pid_t pid, int timeout_ms)
{
	uint64_t deadline = util_monotonic_ms() + (uint64_t)timeout_ms;
	int fd = proc_pidfd_open(pid), rc;

	if (fd < 0)
		return fd == -ESRCH ? 0 : fd;
	do
		rc = vm_poll1(fd, POLLIN, deadline);
	while (rc == 0);
	close(fd);
	return rc > 0 ? 0 : rc;
}

/*
 * The up_ctx API of src/ext.h lives here rather than in cmd_vm.c so that a
 * test helper linking an extension from libhutch.a does not drag in the
 * verbs and the supervisor.
 */

int up_state_reload(struct up_ctx *u)
{
	json_t *st;
	int rc = state_load(u->vm_dir, &st);

	if (rc)
		return rc;
	json_decref(u->state);
	u->state = st;
	return 0;
}

void up_phase(struct up_ctx *u, const char *phase, const char *key, const char *val)
{
	uint64_t now = util_monotonic_ms();
	json_t *o;

	if (!u->cli || !u->cli->json)
		return;
	o = json_pack("{s:s, s:I, s:I}", "phase", phase, "t_ms", (json_int_t)(now - u->t0),
		      "mono_ms", (json_int_t)now);
	if (o && key && val)
		json_object_set_new(o, key, json_string(val));
	if (o) {
		json_dumpf(o, stdout, JSON_COMPACT);
		putchar('\n');
		fflush(stdout);
	}
	json_decref(o);
}

#define VM_HALT_MARGIN_S 15	/* quit grace and teardown beyond timeouts.shutdown */

int vm_halt_running(const char *vm_dir, json_t *st, unsigned shutdown_s)
{
	long long svpid = state_get_int(st, "supervisor_pid", 0);
	json_t *req = json_pack("{s:s, s:i}", "cmd", "halt", "timeout", (int)shutdown_s), *resp = NULL;
	int rc = vm_control(vm_dir, req, &resp, VM_CTL_TIMEOUT_MS);

	json_decref(req);
	if (rc || !json_is_true(json_object_get(resp, "ok"))) {
		log_warn("the supervisor did not take the halt request (%s); terminating it",
			 rc ? strerror(-rc) : state_get_str(resp, "error") ?: "?");
		kill((pid_t)svpid, SIGTERM);
	}
	json_decref(resp);
	rc = vm_wait_pid_gone((pid_t)svpid, (int)(shutdown_s + VM_HALT_MARGIN_S) * 1000);
	if (rc == -ETIMEDOUT) {
		log_warn("supervisor %lld still there; killing it", svpid);
		kill((pid_t)svpid, SIGKILL);
		rc = vm_wait_pid_gone((pid_t)svpid, 5000);
	}
	return rc;
}

int vm_stop(struct vm_target *t, struct up_ctx *u, const char *trigger)
{
	int rc;

	if (u->state && vm_supervisor_alive(t->dir, u->state)) {
		log_info("halting %s", t->name);
		rc = vm_halt_running(t->dir, u->state, t->vm ? t->vm->timeouts.shutdown : 60);
		if (rc) {
			log_errno(rc, "waiting for the supervisor to exit");
			return rc;
		}
		up_state_reload(u);
	} else if (u->state && vm_is_stale(t->dir, u->state)) {
		log_warn("cleaning up after a supervisor that died");
		vm_gc(t->dir, u->state);
	} else if (strcmp(trigger, "destroy")) {
		log_info("%s is not running", t->name);
	}
	return 0;
}

void vm_print_tails(const char *vm_dir)
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

bool up_vm_alive(struct up_ctx *u)
{
	long long q;

	if (up_state_reload(u) || !vm_supervisor_alive(u->vm_dir, u->state))
		return false;
	q = state_get_int(u->state, "qemu_pid", 0);
	return q > 1 && q < INT_MAX && kill((pid_t)q, 0) == 0;
}

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
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "src/ext.h"
#include "src/log.h"
#include "src/proc.h"
#include "src/state.h"
#include "src/util.h"

int vm_lock(const char *vm_dir, int *fdp)
{
	char path[PATH_MAX];
	int fd, rc;

	rc = util_path_join(path, sizeof(path), vm_dir, "lock");
	if (rc)
		return rc;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		close(fd);
		return rc;
	}
	*fdp = fd;
	return 0;
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
		{ "suspend", VM_CTL_SUSPEND }, { "resume", VM_CTL_RESUME }, { "save", VM_CTL_SAVE },
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

bool up_vm_alive(struct up_ctx *u)
{
	long long q;

	if (up_state_reload(u) || !vm_supervisor_alive(u->vm_dir, u->state))
		return false;
	q = state_get_int(u->state, "qemu_pid", 0);
	return q > 1 && q < INT_MAX && kill((pid_t)q, 0) == 0;
}

// SPDX-License-Identifier: MIT
/* vm.c: per-VM lock, supervisor liveness and crash detection, control client. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "src/state.h"
#include "src/util.h"
#include "src/vm.h"
#include "tests/unit/tap.h"

/* a fake supervisor: accept one client, read its line, send @reply, exit */
static pid_t fake_server(const char *dir, const char *reply, unsigned delay_ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int lfd, fd;
	pid_t pid;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/control.sock", dir);
	unlink(sa.sun_path);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 1) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		char buf[4096];
		ssize_t n = 0, r;

		fd = accept(lfd, NULL, NULL);
		while (n < (ssize_t)sizeof(buf) && (r = read(fd, buf + n, sizeof(buf) - (size_t)n)) > 0) {
			n += r;
			if (memchr(buf, '\n', (size_t)n))
				break;
		}
		usleep(delay_ms * 1000);
		/* echo the request's cmd back so the test sees it arrived whole */
		if (reply)
			(void)!write(fd, reply, strlen(reply));
		usleep(200 * 1000);
		_exit(n > 0 && buf[n - 1] == '\n' ? 0 : 3);
	}
	close(lfd);
	return pid;
}

int main(void)
{
	char dir[] = "/tmp/t_vm.XXXXXX", path[256];
	json_t *st, *req, *resp = NULL;
	int a = -1, b = -1, rc, status;
	pid_t srv;

	signal(SIGPIPE, SIG_IGN);
	if (!mkdtemp(dir))
		return 1;

	/* lock: util_flock() is the one lock helper */
	{
		char lk[sizeof(dir) + 8];

		snprintf(lk, sizeof(lk), "%s/lock", dir);
		ok((a = util_flock(lk, false, NULL)) >= 0, "lock taken");
		is_int(util_flock(lk, false, NULL), -EBUSY, "second lock: -EBUSY (not blocking)");
		close(a);
		ok((b = util_flock(lk, false, NULL)) >= 0, "lock free again once the holder closed it");
		close(b);
		ok((a = util_flock(dir, false, NULL)) >= 0, "a directory can be the lock");
		close(a);
	}

	/* liveness and crash detection */
	st = json_pack("{s:s, s:s, s:i}", "name", "t", "status", "running", "supervisor_pid", (int)getpid());
	ok(!vm_supervisor_alive(dir, st), "a pid that is not a supervisor is not alive (pid reuse)");
	ok(!strcmp(vm_effective_status(dir, st), "crashed"), "running without a supervisor: crashed");
	ok(vm_is_stale(dir, st), "running without a supervisor: stale");
	json_object_set_new(st, "status", json_string("stopped"));
	ok(!strcmp(vm_effective_status(dir, st), "stopped"), "stopped stays stopped");
	ok(!vm_is_stale(dir, st), "stopped: not stale");
	snprintf(path, sizeof(path), "%s/supervisor.pid", dir);
	util_write_atomic(path, "1\n", 2, 0600);
	ok(vm_is_stale(dir, st), "a leftover supervisor.pid: stale");
	json_object_set_new(st, "status", json_string("paused"));
	is_int(vm_gc(dir, st), 0, "gc");
	ok(access(path, F_OK) < 0, "gc removed supervisor.pid");
	ok(!strcmp(state_get_str(st, "status"), "crashed") &&
		   !strcmp(state_get_str(st, "exit_reason"), "crashed"), "gc recorded the crash");
	ok(!json_object_get(st, "supervisor_pid"), "gc dropped the dead pid");
	json_decref(st);
	is_int(state_load(dir, &st), 0, "gc saved state.json");
	ok(st && !strcmp(state_get_str(st, "status"), "crashed"), "saved status: crashed");
	json_decref(st);

	/* control client */
	req = json_pack("{s:s}", "cmd", "status");
	rc = vm_control(dir, req, &resp, 1000);
	ok(rc == -ENOENT || rc == -ECONNREFUSED, "no supervisor: connection error (%d)", rc);

	srv = fake_server(dir, "{\"ok\":true,\"status\":\"running\"}\n", 0);
	rc = vm_control(dir, req, &resp, 5000);
	is_int(rc, 0, "request answered");
	ok(rc == 0 && json_is_true(json_object_get(resp, "ok")) &&
		   !strcmp(state_get_str(resp, "status"), "running"), "reply parsed");
	json_decref(resp);
	resp = NULL;
	waitpid(srv, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "request sent as one line");

	srv = fake_server(dir, "[1,2]\n", 0);
	is_int(vm_control(dir, req, &resp, 5000), -EPROTO, "a reply that is not an object: -EPROTO");
	waitpid(srv, &status, 0);
	srv = fake_server(dir, "", 0);
	is_int(vm_control(dir, req, &resp, 5000), -ECONNRESET, "closed without a reply: -ECONNRESET");
	waitpid(srv, &status, 0);
	srv = fake_server(dir, "{\"ok\":true}\n", 1500);
	is_int(vm_control(dir, req, &resp, 300), -ETIMEDOUT, "slow reply: -ETIMEDOUT");
	waitpid(srv, &status, 0);
	json_decref(req);

	is_int(vm_wait_pid_gone(999999, 100), 0, "wait for a pid that does not exist: done");
	srv = fork();
	if (srv == 0) {
		pause();
		_exit(0);
	}
	is_int(vm_wait_pid_gone(srv, 200), -ETIMEDOUT, "wait for a live process: -ETIMEDOUT");
	kill(srv, SIGKILL);
	waitpid(srv, &status, 0);

	/* control requests */
	{
		enum vm_ctl_cmd cmd = VM_CTL_STATUS;
		long tmo = 0;
		const char *r;

		r = "{\"cmd\":\"halt\",\"timeout\":30}";
		ok(vm_ctl_parse(r, strlen(r), &cmd, &tmo) == 0 && cmd == VM_CTL_HALT && tmo == 30,
		   "halt with a timeout");
		r = "{\"cmd\":\"suspend\"}";
		ok(vm_ctl_parse(r, strlen(r), &cmd, &tmo) == 0 && cmd == VM_CTL_SUSPEND && tmo == -1,
		   "suspend, no timeout: -1");
		r = "{\"cmd\":\"halt\",\"timeout\":999999}";
		ok(vm_ctl_parse(r, strlen(r), &cmd, &tmo) == 0 && tmo == -1, "timeout out of range: default");
		r = "{\"cmd\":\"halt\",\"timeout\":\"5\"}";
		is_int(vm_ctl_parse(r, strlen(r), &cmd, &tmo), -EPROTO, "timeout not a number: refused");
		r = "{\"cmd\":\"reboot\"}";
		is_int(vm_ctl_parse(r, strlen(r), &cmd, &tmo), -EPROTO, "unknown command: refused");
		r = "{\"cmd\":\"quit\",\"cmd\":\"status\"}";
		is_int(vm_ctl_parse(r, strlen(r), &cmd, &tmo), -EPROTO, "duplicate keys: refused");
		r = "[\"halt\"]";
		is_int(vm_ctl_parse(r, strlen(r), &cmd, &tmo), -EPROTO, "not an object: refused");
		is_int(vm_ctl_parse("{}", VM_CTL_LINE_MAX + 1, &cmd, &tmo), -E2BIG, "over the bound: -E2BIG");
	}

	util_rm_rf(dir);
	return tap_done();
}

// SPDX-License-Identifier: MIT
/*
 * The supervisor.  Once QEMU runs nothing here may exit early: every error
 * is logged and the loop goes on until QEMU is gone, because only this
 * process can tear down what the extensions set up (taps, rules, mounts).
 */
#include "src/sv.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "qmp/qmp.h"
#include "src/accel.h"
#include "src/cfg.h"
#include "src/ext.h"
#include "src/log.h"
#include "src/proc.h"
#include "src/qemu.h"
#include "src/state.h"
#include "src/util.h"
#include "src/vm.h"
#include "src/warm.h"
#include "src/vmfd.h"

#define SV_MAX_FDS 32		/* fds extensions and src/vmfd.c pass to QEMU */
#define SV_MAX_WATCH 32
#define SV_MAX_CONSOLE 8
#define SV_MAX_CTL 8
#define SV_CTL_REQ_MAX 4096
#define SV_QMP_TIMEOUT_MS 5000
#define SV_QMP_CONNECT_MS 60000	/* TCG on a loaded host starts slowly */
#define SV_QUIT_GRACE_MS 5000
#define SV_PORT_TRIES 3
/*
 * A power button pressed while the guest is still booting (ACPI not yet
 * listening) is lost; pressing again every few seconds makes `up` followed
 * at once by `halt` a clean shutdown instead of a wait for the timeout.
 */
#define SV_REPRESS_MS 3000

/* child fd numbers in QEMU */
#define SV_FD_QMP 3
#define SV_FD_SERIAL 4
#define SV_FD_EXT0 5

struct sv_watch {
	int fd;
	void (*cb)(struct sv_ctx *c, int fd, void *arg);
	void *arg;
};

/*
 * A control client.  While @pending, its reply waits for QEMU's answer to
 * an asynchronous QMP command and it is not read from; the reply callback
 * writes and closes it.
 */
struct sv_ctl_client {
	int fd;
	bool pending;
	enum vm_ctl_cmd cmd;
	struct sv_ctx *c;
	size_t have;
	char buf[SV_CTL_REQ_MAX];
};

enum sv_halt { SV_HALT_NONE, SV_HALT_POWERDOWN, SV_HALT_QUIT, SV_HALT_KILL };

struct sv_core {
	bool preparing;
	struct proc_user user;	/* QEMU's (src/proc.h) */
	struct vmfd files;	/* disk, seed, kernel by fd (src/vmfd.h) */
	struct qemu_argv extra;
	struct proc_fdmap fds[SV_MAX_FDS];
	size_t n_fds;
	struct sv_watch watch[SV_MAX_WATCH];
	size_t n_watch;

	struct qmp *qmp;
	pid_t qemu_pid;
	int qemu_pidfd;
	int serial_fd;
	int console_lfd;
	int control_lfd;
	int sig_fd;
	int con[SV_MAX_CONSOLE];
	struct sv_ctl_client *ctl[SV_MAX_CTL];

	int log_fd;
	off_t log_size;
	char hist[SV_CONSOLE_HISTORY];
	size_t hist_len;
	/* keystrokes read from a client that QEMU's serial socket has not taken yet */
	char in[1024];
	size_t in_len;

	bool shutdown_seen;
	bool shutdown_guest;
	enum sv_halt halt;
	uint64_t halt_deadline;
	uint64_t halt_repress;
	bool qemu_exited;
	int qemu_status;

	struct warm_plan warm;
};

/* ---- the sv_ctx API for extensions (src/ext.h) ---- */

static int sv_host_qemu_arg(struct sv_ctx *c, const char *arg)
{
	struct sv_core *k = c->core;

	if (!k->preparing)
		return -EPERM;
	return qemu_argv_add(&k->extra, arg);
}

static int sv_host_qemu_fd(struct sv_ctx *c, int fd)
{
	struct sv_core *k = c->core;
	int child;

	if (!k->preparing)
		return -EPERM;
	if (fd < 0)
		return -EBADF;
	if (k->n_fds >= SV_MAX_FDS)
		return -EMFILE;
	child = SV_FD_EXT0 + (int)k->n_fds;
	k->fds[k->n_fds++] = (struct proc_fdmap){ fd, child };
	return child;
}

static int sv_host_watch_fd(struct sv_ctx *c, int fd,
			    void (*cb)(struct sv_ctx *c, int fd, void *arg), void *arg)
{
	struct sv_core *k = c->core;

	if (fd < 0 || !cb)
		return -EINVAL;
	if (k->n_watch >= SV_MAX_WATCH)
		return -EMFILE;
	k->watch[k->n_watch++] = (struct sv_watch){ fd, cb, arg };
	return 0;
}

static void sv_host_unwatch_fd(struct sv_ctx *c, int fd)
{
	struct sv_core *k = c->core;

	for (size_t i = 0; i < k->n_watch; i++) {
		if (k->watch[i].fd == fd) {
			k->watch[i] = k->watch[--k->n_watch];
			return;
		}
	}
}

static bool sv_host_vm_running(struct sv_ctx *c)
{
	struct sv_core *k = c->core;
	struct pollfd p = { .fd = k->qemu_pidfd, .events = POLLIN };

	if (k->qemu_exited || k->halt != SV_HALT_NONE || k->shutdown_seen || k->qemu_pidfd < 0)
		return false;
	/* QEMU may have exited in this very poll round, its pidfd not read yet */
	return poll(&p, 1, 0) == 0;
}

static const struct sv_host sv_host = {
	.qemu_arg = sv_host_qemu_arg,
	.qemu_fd = sv_host_qemu_fd,
	.watch_fd = sv_host_watch_fd,
	.unwatch_fd = sv_host_unwatch_fd,
	.vm_running = sv_host_vm_running,
};

/* ---- state ---- */

static void sv_set_status(struct sv_ctx *c, const char *status)
{
	const char *old = state_get_str(c->state, "status");

	if (old && !strcmp(old, status))
		return;
	json_object_set_new(c->state, "status", json_string(status));
	if (sv_state_save(c))
		log_warn("could not save state.json");
}

/* ---- console ---- */

static int sv_open_console_log(struct sv_ctx *c, struct sv_core *k)
{
	char p[PATH_MAX];
	struct stat sb;
	int rc = util_path_join(p, sizeof(p), c->vm_dir, "console.log");

	if (rc)
		return rc;
	k->log_fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (k->log_fd < 0)
		return -errno;
	k->log_size = fstat(k->log_fd, &sb) == 0 ? sb.st_size : 0;
	return 0;
}

/* console.log stays bounded: past the cap it becomes console.log.1 */
static void sv_console_log(struct sv_ctx *c, struct sv_core *k, const char *buf, size_t n)
{
	if (k->log_fd >= 0 && k->log_size + (off_t)n > SV_CONSOLE_LOG_MAX) {
		char a[PATH_MAX], b[PATH_MAX];

		close(k->log_fd);
		k->log_fd = -1;
		if (util_path_join(a, sizeof(a), c->vm_dir, "console.log") == 0 &&
		    util_path_join(b, sizeof(b), c->vm_dir, "console.log.1") == 0 && rename(a, b) < 0)
			log_warn("rotating console.log: %s", strerror(errno));
		if (sv_open_console_log(c, k))
			log_warn("reopening console.log failed");
		k->log_size = 0;
	}
	if (k->log_fd >= 0 && util_write_all(k->log_fd, buf, n) == 0)
		k->log_size += (off_t)n;
}

static void sv_hist_add(struct sv_core *k, const char *buf, size_t n)
{
	if (n > SV_CONSOLE_HISTORY) {
		buf += n - SV_CONSOLE_HISTORY;
		n = SV_CONSOLE_HISTORY;
	}
	if (k->hist_len + n > SV_CONSOLE_HISTORY) {
		size_t drop = k->hist_len + n - SV_CONSOLE_HISTORY;

		memmove(k->hist, k->hist + drop, k->hist_len - drop);
		k->hist_len -= drop;
	}
	memcpy(k->hist + k->hist_len, buf, n);
	k->hist_len += n;
}

static void sv_con_close(struct sv_core *k, size_t i)
{
	close(k->con[i]);
	k->con[i] = -1;
}

/*
 * A client that does not read loses output rather than stalling the
 * supervisor (and with it the guest's serial port): sends never block.
 */
static void sv_con_send(struct sv_core *k, size_t i, const char *buf, size_t n)
{
	ssize_t w = send(k->con[i], buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);

	if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
		sv_con_close(k, i);
}

/* QEMU's end of the serial port is gone: so are the keystrokes waiting for it */
static void sv_serial_close(struct sv_core *k)
{
	if (k->serial_fd >= 0)
		close(k->serial_fd);
	k->serial_fd = -1;
	k->in_len = 0;
}

static void sv_serial_read(struct sv_ctx *c, struct sv_core *k)
{
	char buf[4096];
	ssize_t r = read(k->serial_fd, buf, sizeof(buf));

	if (r <= 0) {
		if (r == 0 || (errno != EAGAIN && errno != EINTR))
			sv_serial_close(k);	/* QEMU is going away; pidfd tells */
		return;
	}
	sv_console_log(c, k, buf, (size_t)r);
	sv_hist_add(k, buf, (size_t)r);
	for (size_t i = 0; i < SV_MAX_CONSOLE; i++)
		if (k->con[i] >= 0)
			sv_con_send(k, i, buf, (size_t)r);
}

static void sv_console_accept(struct sv_core *k)
{
	int fd = accept4(k->console_lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0)
		return;
	for (size_t i = 0; i < SV_MAX_CONSOLE; i++) {
		if (k->con[i] < 0) {
			k->con[i] = fd;
			if (k->hist_len)
				sv_con_send(k, i, k->hist, k->hist_len);
			return;
		}
	}
	{
		static const char msg[] = "hutch: too many console clients\r\n";

		(void)!write(fd, msg, sizeof(msg) - 1);
	}
	close(fd);
}

/*
 * Keystrokes to the guest's serial port.  QEMU reads the port's socket only
 * as fast as the guest drains its UART, which a TCG guest on a busy host
 * does slowly: a write that would block keeps the rest in k->in, and
 * no client is read until it is gone (the clients wait, as on a real
 * serial line), so no keystroke is ever dropped.
 */
static void sv_console_flush(struct sv_core *k)
{
	size_t off = 0;

	while (off < k->in_len && k->serial_fd >= 0) {
		ssize_t w = write(k->serial_fd, k->in + off, k->in_len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (w <= 0) {
			log_warn("console input dropped: %s", w < 0 ? strerror(errno) : "short write");
			off = k->in_len;
			break;
		}
		off += (size_t)w;
	}
	if (k->serial_fd < 0)
		off = k->in_len;
	memmove(k->in, k->in + off, k->in_len - off);
	k->in_len -= off;
}

/* a client's keystrokes, read only while nothing waits for the port (see above) */
static void sv_console_input(struct sv_core *k, size_t i)
{
	ssize_t r = read(k->con[i], k->in, sizeof(k->in));

	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
		sv_con_close(k, i);
		return;
	}
	if (r > 0) {
		k->in_len = (size_t)r;
		sv_console_flush(k);
	}
}

/* ---- QMP ---- */

static void sv_qmp_event(struct qmp *q, const struct qmp_event *ev, void *opaque)
{
	struct sv_ctx *c = opaque;
	struct sv_core *k = c->core;

	(void)q;
	switch (ev->kind) {
	case QMP_EV_SHUTDOWN: {
		json_t *g = json_object_get(ev->data, "guest");

		k->shutdown_seen = true;
		k->shutdown_guest = json_is_true(g);
		log_info("QEMU shutting down (%s)", k->shutdown_guest ? "guest" : "host");
		break;
	}
	case QMP_EV_STOP:
		if (!k->shutdown_seen)
			sv_set_status(c, "paused");
		break;
	case QMP_EV_RESUME:
		sv_set_status(c, "running");
		break;
	case QMP_EV_POWERDOWN:
		log_info("ACPI power-down delivered to the guest");
		break;
	case QMP_EV_GUEST_PANICKED:
		log_warn("the guest reported a kernel panic");
		break;
	case QMP_EV_OTHER:
	case QMP_EV_RESET:
	case QMP_EV_SUSPEND:
	case QMP_EV_WAKEUP:
	case QMP_EV_WATCHDOG:
	case QMP_EV_BLOCK_IO_ERROR:
	case QMP_EV_DEVICE_DELETED:
		break;
	}
}

/* closing fires the pending callbacks (-ECONNRESET): they must see no QMP */
static void sv_qmp_drop(struct sv_core *k)
{
	struct qmp *q = k->qmp;

	k->qmp = NULL;
	qmp_close(q);
}

/*
 * Every QMP command of the running supervisor is asynchronous: a
 * synchronous one would stall DHCP, DNS and the console for as long as
 * QEMU takes to answer (up to SV_QMP_TIMEOUT_MS).
 */
static int sv_qmp_async(struct sv_core *k, const char *cmd, qmp_reply_cb cb, void *opaque)
{
	if (!k->qmp)
		return -ENOTCONN;
	return qmp_command_async(k->qmp, cmd, NULL, SV_QMP_TIMEOUT_MS, cb, opaque);
}

/* ---- halt: powerdown, then quit, then SIGKILL ---- */

static void sv_halt_step(struct sv_ctx *c, struct sv_core *k, enum sv_halt to, unsigned ms);

/* system_powerdown or quit failed: the next, harder step */
static void sv_halt_failed(struct qmp *q, int rc, json_t *ret, void *opaque)
{
	struct sv_ctx *c = opaque;
	struct sv_core *k = c->core;

	(void)q;
	(void)ret;
	if (!rc || k->qemu_exited)
		return;
	if (k->halt == SV_HALT_POWERDOWN) {
		log_warno(rc, "system_powerdown");
		sv_halt_step(c, k, SV_HALT_QUIT, SV_QUIT_GRACE_MS);
	} else if (k->halt == SV_HALT_QUIT) {
		log_warno(rc, "quit");
		sv_halt_step(c, k, SV_HALT_KILL, 0);
	}
}

static void sv_halt_step(struct sv_ctx *c, struct sv_core *k, enum sv_halt to, unsigned ms)
{
	if (k->qemu_exited || to <= k->halt)
		return;
	k->halt = to;
	k->halt_deadline = util_monotonic_ms() + ms;
	switch (to) {
	case SV_HALT_POWERDOWN:
		/* a paused guest cannot see the power button: continue it first
		 * (QMP runs commands in order; cont on a running guest is harmless) */
		if (!strcmp(state_get_str(c->state, "status") ?: "", "paused"))
			(void)sv_qmp_async(k, "cont", NULL, NULL);
		k->halt_repress = util_monotonic_ms() + SV_REPRESS_MS;
		if (sv_qmp_async(k, "system_powerdown", sv_halt_failed, c) == 0)
			return;
		sv_halt_step(c, k, SV_HALT_QUIT, SV_QUIT_GRACE_MS);
		return;
	case SV_HALT_QUIT:
		if (sv_qmp_async(k, "quit", sv_halt_failed, c) == 0)
			return;
		sv_halt_step(c, k, SV_HALT_KILL, 0);
		return;
	case SV_HALT_KILL:
		log_warn("killing QEMU %d", (int)k->qemu_pid);
		kill(k->qemu_pid, SIGKILL);
		k->halt_deadline = UINT64_MAX;
		return;
	case SV_HALT_NONE:
		return;
	}
}

static void sv_halt_timer(struct sv_ctx *c, struct sv_core *k)
{
	uint64_t now = util_monotonic_ms();

	if (k->halt == SV_HALT_POWERDOWN && !k->qemu_exited && now < k->halt_deadline &&
	    now >= k->halt_repress) {
		k->halt_repress = now + SV_REPRESS_MS;
		if (!k->shutdown_seen)
			(void)sv_qmp_async(k, "system_powerdown", NULL, NULL);
	}
	if (k->halt == SV_HALT_NONE || k->qemu_exited || now < k->halt_deadline)
		return;
	if (k->halt == SV_HALT_POWERDOWN) {
		log_info("guest did not power off in time; quitting QEMU");
		sv_halt_step(c, k, SV_HALT_QUIT, SV_QUIT_GRACE_MS);
	} else if (k->halt == SV_HALT_QUIT) {
		sv_halt_step(c, k, SV_HALT_KILL, 0);
	}
}

/* ---- control socket ---- */

static void sv_ctl_close(struct sv_core *k, size_t i)
{
	close(k->ctl[i]->fd);
	free(k->ctl[i]);
	k->ctl[i] = NULL;
}

/* write @resp (stolen) as one line to @cl and close it */
static void sv_ctl_reply(struct sv_core *k, struct sv_ctl_client *cl, json_t *resp)
{
	char *out = resp ? json_dumps(resp, JSON_COMPACT) : NULL;

	json_decref(resp);
	if (out) {
		/* the reply is small and the socket fresh: a short blocking write is fine */
		util_set_nonblock(cl->fd, false);
		if (util_write_all(cl->fd, out, strlen(out)) == 0)
			(void)util_write_all(cl->fd, "\n", 1);
		free(out);
	}
	for (size_t i = 0; i < SV_MAX_CTL; i++)
		if (k->ctl[i] == cl)
			sv_ctl_close(k, i);
}

static json_t *sv_ctl_error(int rc)
{
	return json_pack("{s:b, s:s}", "ok", 0, "error", strerror(rc < 0 ? -rc : rc));
}

/* QEMU answered the QMP command a control request waited for */
static void sv_ctl_qmp_done(struct qmp *q, int rc, json_t *ret, void *opaque)
{
	struct sv_ctl_client *cl = opaque;
	struct sv_ctx *c = cl->c;
	struct sv_core *k = c->core;
	json_t *r;

	(void)q;
	if (cl->cmd == VM_CTL_STATUS) {
		const char *st = json_string_value(json_object_get(ret, "status"));

		r = json_pack("{s:b, s:s}", "ok", 1, "status",
			      state_get_str(c->state, "status") ?: "unknown");
		if (r && !rc && st)
			json_object_set_new(r, "qmp", json_string(st));
	} else if (rc) {
		r = sv_ctl_error(rc);
	} else {
		/* the STOP/RESUME event may lag: the CLI reads state right after */
		sv_set_status(c, cl->cmd == VM_CTL_SUSPEND ? "paused" : "running");
		r = json_pack("{s:b}", "ok", 1);
	}
	sv_ctl_reply(k, cl, r);
}

/* the reply now, or NULL when it waits for QEMU (sv_ctl_qmp_done()) */
static json_t *sv_ctl_handle(struct sv_ctx *c, struct sv_core *k, struct sv_ctl_client *cl,
			     long tmo)
{
	static const char *const qmp_cmd[] = {
		[VM_CTL_STATUS] = "query-status", [VM_CTL_SUSPEND] = "stop",
		[VM_CTL_RESUME] = "cont",
	};
	int rc;

	switch (cl->cmd) {
	case VM_CTL_HALT:
		if (tmo < 0)
			tmo = (long)c->vm->timeouts.shutdown;
		log_info("halt requested (timeout %lds)", tmo);
		sv_halt_step(c, k, SV_HALT_POWERDOWN, (unsigned)tmo * 1000);
		return json_pack("{s:b}", "ok", 1);
	case VM_CTL_QUIT:
		sv_halt_step(c, k, SV_HALT_QUIT, SV_QUIT_GRACE_MS);
		return json_pack("{s:b}", "ok", 1);
	case VM_CTL_SAVE:	/* sv_ctl_read() hands it to warm_save() */
		break;
	case VM_CTL_STATUS:
	case VM_CTL_SUSPEND:
	case VM_CTL_RESUME:
		rc = sv_qmp_async(k, qmp_cmd[cl->cmd], sv_ctl_qmp_done, cl);
		if (rc == 0) {
			cl->pending = true;
			return NULL;
		}
		if (cl->cmd != VM_CTL_STATUS)
			return sv_ctl_error(rc);
		return json_pack("{s:b, s:s}", "ok", 1, "status",
				 state_get_str(c->state, "status") ?: "unknown");
	}
	return json_pack("{s:b, s:s}", "ok", 0, "error", "unknown cmd");
}

static void sv_ctl_read(struct sv_ctx *c, struct sv_core *k, size_t i)
{
	struct sv_ctl_client *cl = k->ctl[i];
	char in[SV_CTL_REQ_MAX];
	ssize_t r = read(cl->fd, in, sizeof(in));
	json_t *resp;
	size_t len;
	long tmo;
	int rc;

	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		sv_ctl_close(k, i);
		return;
	}
	rc = vm_ctl_feed(cl->buf, sizeof(cl->buf), &cl->have, in, (size_t)r, &len);
	if (rc <= 0) {
		if (rc < 0)
			sv_ctl_close(k, i);	/* over the bound: not a client of ours */
		return;
	}
	cl->c = c;
	/* a save blocks the loop while the guest is paused anyway (src/warm.h) */
	if (vm_ctl_parse(cl->buf, len, &cl->cmd, &tmo) == 0)
		resp = cl->cmd == VM_CTL_SAVE ? warm_save(c, &k->warm, k->qmp, cl->buf, len)
					      : sv_ctl_handle(c, k, cl, tmo);
	else
		resp = json_pack("{s:b, s:s}", "ok", 0, "error", "bad request");
	if (!cl->pending)
		sv_ctl_reply(k, cl, resp);
}

static void sv_ctl_accept(struct sv_core *k)
{
	int fd = accept4(k->control_lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0)
		return;
	for (size_t i = 0; i < SV_MAX_CTL; i++) {
		if (!k->ctl[i]) {
			k->ctl[i] = calloc(1, sizeof(*k->ctl[i]));
			if (!k->ctl[i])
				break;
			k->ctl[i]->fd = fd;
			return;
		}
	}
	close(fd);
}

/* ---- sockets ---- */

static int sv_listen(const char *vm_dir, const char *name, int *fdp)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	mode_t old;
	int fd, rc;

	rc = vm_sock_path(vm_dir, name, sa.sun_path, sizeof(sa.sun_path));
	if (rc)
		return rc;
	unlink(sa.sun_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* 0600 from the start: no window where another user could connect */
	old = umask(0177);
	rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
	umask(old);
	if (!rc && listen(fd, 8) < 0)
		rc = -errno;
	if (rc) {
		close(fd);
		return rc;
	}
	*fdp = fd;
	return 0;
}

static void sv_unlink(const char *vm_dir, const char *name)
{
	char p[PATH_MAX];

	if (util_path_join(p, sizeof(p), vm_dir, name) == 0)
		unlink(p);
}

/* ---- QEMU ---- */

static bool sv_qemu_probe_sandbox(void)
{
	static const char *const argv[] = { "qemu-system-x86_64", "-sandbox", "help", NULL };
	char *out = NULL;
	int st;
	bool ok;

	/* a QEMU built without seccomp rejects -sandbox outright */
	if (proc_run(argv, NULL, &out, 4096, &st))
		return false;
	ok = proc_exit_code(st) == 0 || (out && strstr(out, "sandbox") && !strstr(out, "nvalid option"));
	free(out);
	return ok;
}

/*
 * Whether this QEMU has -sandbox: asking it costs a QEMU start (~40 ms), so
 * the answer is kept in the data directory, keyed by the binary's identity.
 */
static bool sv_qemu_has_sandbox(void)
{
	char exe[PATH_MAX], data[PATH_MAX], path[PATH_MAX], key[PATH_MAX + 64], *cached = NULL;
	struct stat sb;
	bool ok;

	if (proc_find_exe("qemu-system-x86_64", NULL, exe, sizeof(exe)) || stat(exe, &sb) ||
	    util_data_dir(data, sizeof(data)) || util_path_join(path, sizeof(path), data, "qemu-sandbox") ||
	    util_snprintf(key, sizeof(key), "%s %lld %lld %lld ", exe, (long long)sb.st_ino,
			  (long long)sb.st_size, (long long)sb.st_mtime))
		return sv_qemu_probe_sandbox();
	if (util_read_file(path, sizeof(key) + 8, &cached, NULL) == 0 &&
	    !strncmp(cached, key, strlen(key))) {
		ok = cached[strlen(key)] == '1';
		free(cached);
		return ok;
	}
	free(cached);
	ok = sv_qemu_probe_sandbox();
	if (strlen(key) + 2 < sizeof(key)) {
		strcat(key, ok ? "1\n" : "0\n");
		(void)util_write_atomic(path, key, strlen(key), 0600);
	}
	return ok;
}

/*
 * Spawn QEMU and complete the QMP handshake.  On failure QEMU is reaped and
 * *@early_exit says whether it died by itself (worth a retry with another
 * port in user mode).
 */
static int sv_spawn_qemu(struct sv_ctx *c, struct sv_core *k, const struct qemu_argv *argv,
			 bool *early_exit)
{
	struct proc_fdmap fds[3 + 2 + SV_MAX_FDS];
	struct proc_sandbox sb;
	struct proc_opts o = { .argv = (const char *const *)argv->v, .envp = proc_default_env(),
			       .fds = fds, .want_pidfd = true, .pdeathsig = SIGKILL, .sb = &sb };
	int qsp[2] = { -1, -1 }, ssp[2] = { -1, -1 }, rc, st;
	size_t n = 0;

	/* never root: the user's uid, no capabilities, no_new_privs, bounded, read-only view */
	proc_sandbox_guest(&sb, &k->user);

	*early_exit = false;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, qsp) < 0)
		return -errno;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ssp) < 0) {
		rc = -errno;
		goto err_qsp;
	}
	/* QEMU's own messages go to supervisor.log, beside ours */
	fds[n++] = (struct proc_fdmap){ STDOUT_FILENO, STDOUT_FILENO };
	fds[n++] = (struct proc_fdmap){ STDERR_FILENO, STDERR_FILENO };
	fds[n++] = (struct proc_fdmap){ qsp[1], SV_FD_QMP };
	fds[n++] = (struct proc_fdmap){ ssp[1], SV_FD_SERIAL };
	for (size_t i = 0; i < k->n_fds; i++)
		fds[n++] = k->fds[i];
	o.n_fds = n;
	rc = proc_spawn(&o, &k->qemu_pid, &k->qemu_pidfd);
	close(qsp[1]);
	close(ssp[1]);
	qsp[1] = ssp[1] = -1;
	if (rc) {
		log_errno(rc, "starting qemu-system-x86_64");
		goto err_ssp;
	}
	rc = qmp_open_fd(qsp[0], SV_QMP_CONNECT_MS, &k->qmp);
	if (rc) {
		log_errno(rc, "QMP handshake with QEMU");
		*early_exit = waitpid(k->qemu_pid, &st, WNOHANG) == k->qemu_pid;
		if (!*early_exit) {
			kill(k->qemu_pid, SIGKILL);
			proc_wait(k->qemu_pid, &st);
		}
		close(k->qemu_pidfd);
		k->qemu_pidfd = -1;
		goto err_ssp;
	}
	qsp[0] = -1;	/* owned by k->qmp now */
	k->serial_fd = ssp[0];
	util_set_nonblock(k->serial_fd, true);
	qmp_set_event_cb(k->qmp, sv_qmp_event, c);
	return 0;

err_ssp:
	close(ssp[0]);
err_qsp:
	if (qsp[0] >= 0)
		close(qsp[0]);
	return rc;
}

/* every extension that prepared, torn down in reverse order */
static void sv_teardown(struct sv_ctx *c, const struct sv_ext *const *ext, void **priv, size_t n)
{
	while (n-- > 0)
		if (ext[n]->teardown)
			ext[n]->teardown(c, priv[n]);
}

/* ---- the loop ---- */

enum { SV_P_PID, SV_P_SIG, SV_P_QMP, SV_P_SERIAL, SV_P_CONL, SV_P_CTLL, SV_P_FIXED };

static void sv_loop(struct sv_ctx *c, struct sv_core *k)
{
	struct pollfd p[SV_P_FIXED + SV_MAX_CONSOLE + SV_MAX_CTL + SV_MAX_WATCH];

	while (!k->qemu_exited) {
		size_t n = SV_P_FIXED, con0, ctl0, w0, nw;
		uint64_t now = util_monotonic_ms();
		int tmo = -1, r;

		p[SV_P_PID] = (struct pollfd){ .fd = k->qemu_pidfd, .events = POLLIN };
		p[SV_P_SIG] = (struct pollfd){ .fd = k->sig_fd, .events = POLLIN };
		p[SV_P_QMP] = (struct pollfd){ .fd = k->qmp ? qmp_fd(k->qmp) : -1, .events = POLLIN };
		p[SV_P_SERIAL] = (struct pollfd){ .fd = k->serial_fd,
						  .events = POLLIN | (k->in_len ? POLLOUT : 0) };
		p[SV_P_CONL] = (struct pollfd){ .fd = k->console_lfd, .events = POLLIN };
		p[SV_P_CTLL] = (struct pollfd){ .fd = k->control_lfd, .events = POLLIN };
		con0 = n;
		for (size_t i = 0; i < SV_MAX_CONSOLE; i++)
			p[n++] = (struct pollfd){ .fd = k->in_len ? -1 : k->con[i], .events = POLLIN };
		ctl0 = n;
		for (size_t i = 0; i < SV_MAX_CTL; i++)
			p[n++] = (struct pollfd){ .fd = k->ctl[i] && !k->ctl[i]->pending ? k->ctl[i]->fd : -1,
						  .events = POLLIN };
		w0 = n;
		nw = k->n_watch;
		for (size_t i = 0; i < nw; i++)
			p[n++] = (struct pollfd){ .fd = k->watch[i].fd, .events = POLLIN };
		if (k->halt != SV_HALT_NONE && k->halt_deadline != UINT64_MAX) {
			uint64_t next = k->halt_deadline;

			if (k->halt == SV_HALT_POWERDOWN && k->halt_repress < next)
				next = k->halt_repress;
			tmo = next > now ? (int)(next - now) : 0;
		}
		if (k->qmp && qmp_async_next_ms(k->qmp) >= 0 &&
		    (tmo < 0 || qmp_async_next_ms(k->qmp) < tmo))
			tmo = qmp_async_next_ms(k->qmp);
		r = poll(p, n, tmo);
		if (r < 0) {
			if (errno != EINTR)
				log_warn("poll: %s", strerror(errno));
			continue;
		}
		if (p[SV_P_SIG].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(k->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				log_info("signal %u: halting the VM", si.ssi_signo);
				sv_halt_step(c, k, SV_HALT_POWERDOWN, c->vm->timeouts.shutdown * 1000U);
			}
		}
		if (k->qmp && (p[SV_P_QMP].revents & (POLLIN | POLLHUP | POLLERR))) {
			int rc = qmp_process(k->qmp);

			if (rc) {
				if (rc != -ECONNRESET)
					log_warno(rc, "QMP connection broken");
				sv_qmp_drop(k);
			}
		}
		if (k->serial_fd >= 0 && (p[SV_P_SERIAL].revents & (POLLIN | POLLHUP | POLLERR)))
			sv_serial_read(c, k);
		if (k->in_len && (p[SV_P_SERIAL].revents & POLLOUT))
			sv_console_flush(k);
		if (p[SV_P_CONL].revents & POLLIN)
			sv_console_accept(k);
		if (p[SV_P_CTLL].revents & POLLIN)
			sv_ctl_accept(k);
		for (size_t i = 0; i < SV_MAX_CONSOLE; i++)
			if (k->con[i] >= 0 && p[con0 + i].fd == k->con[i] && !k->in_len &&
			    (p[con0 + i].revents & (POLLIN | POLLHUP | POLLERR)))
				sv_console_input(k, i);
		for (size_t i = 0; i < SV_MAX_CTL; i++)
			if (k->ctl[i] && !k->ctl[i]->pending && p[ctl0 + i].fd == k->ctl[i]->fd &&
			    (p[ctl0 + i].revents & (POLLIN | POLLHUP | POLLERR)))
				sv_ctl_read(c, k, i);
		/* callbacks may unwatch: match by fd, not by index */
		for (size_t i = 0; i < nw; i++) {
			if (!(p[w0 + i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			for (size_t j = 0; j < k->n_watch; j++) {
				if (k->watch[j].fd == p[w0 + i].fd) {
					k->watch[j].cb(c, k->watch[j].fd, k->watch[j].arg);
					break;
				}
			}
		}
		if (p[SV_P_PID].revents & POLLIN) {
			int rc = proc_wait(k->qemu_pid, &k->qemu_status);

			/* the pidfd stays readable: without a status, QEMU is
			 * gone all the same, and polling on would only spin */
			if (rc) {
				log_warno(rc, "waiting for QEMU %d", (int)k->qemu_pid);
				k->qemu_status = W_EXITCODE(255, 0);
			}
			k->qemu_exited = true;
		}
		if (k->qmp)
			qmp_async_expire(k->qmp);
		sv_halt_timer(c, k);
	}
	/* events and console bytes QEMU sent before it went away */
	if (k->qmp)
		(void)qmp_process(k->qmp);
	while (k->serial_fd >= 0) {
		struct pollfd sp = { .fd = k->serial_fd, .events = POLLIN };

		if (poll(&sp, 1, 0) <= 0)
			break;
		sv_serial_read(c, k);
	}
}

static void sv_finish_state(struct sv_ctx *c, struct sv_core *k)
{
	const char *status = "stopped", *reason;
	int st = k->qemu_status;

	if (k->shutdown_seen)
		reason = k->shutdown_guest ? "guest-shutdown" : "host-quit";
	else if (k->halt == SV_HALT_KILL)
		reason = "killed";
	else if (k->halt != SV_HALT_NONE && WIFEXITED(st) && WEXITSTATUS(st) == 0)
		reason = "host-quit";
	else {
		status = "crashed";
		reason = WIFSIGNALED(st) ? "killed" : "crashed";
	}
	log_info("QEMU exited (%s%d): %s, %s", WIFSIGNALED(st) ? "signal " : "status ",
		 WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st), status, reason);
	json_object_set_new(c->state, "status", json_string(status));
	json_object_set_new(c->state, "exit_reason", json_string(reason));
	json_object_set_new(c->state, "stopped_at", json_integer((json_int_t)time(NULL)));
}

static int sv_signals(int *fdp)
{
	sigset_t set;
	int fd;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (fd < 0)
		return -errno;
	*fdp = fd;
	return 0;
}

static int sv_write_pidfile(const char *vm_dir)
{
	char p[PATH_MAX], buf[32];
	int rc = util_path_join(p, sizeof(p), vm_dir, "supervisor.pid");

	if (!rc)
		rc = util_snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	return rc ? rc : util_write_atomic(p, buf, strlen(buf), 0600);
}

/* load state.json and the VM's config, as `up` recorded them */
static int sv_load(const char *vm_dir, json_t **stp, struct cfg **cfgp, const struct cfg_vm **vmp)
{
	struct cfg_error e = { { 0 } };
	const char *proj, *name;
	char path[PATH_MAX];
	int rc;

	rc = state_load(vm_dir, stp);
	if (rc) {
		log_errno(rc, "%s/state.json", vm_dir);
		return rc;
	}
	proj = state_get_str(*stp, "project");
	name = state_get_str(*stp, "name");
	if (!proj || !name || !util_name_valid(name)) {
		log_err("%s/state.json: no project or name", vm_dir);
		return -EINVAL;
	}
	log_set_vm(name);
	rc = util_path_join(path, sizeof(path), proj, "hutch.yaml");
	if (!rc)
		rc = cfg_load(path, cfgp, &e);
	if (rc) {
		log_err("%s", e.msg[0] ? e.msg : "cannot load hutch.yaml");
		return rc;
	}
	*vmp = cfg_find_vm(*cfgp, name);
	if (!*vmp) {
		log_err("%s: no VM named %s", path, name);
		return -ENOENT;
	}
	return 0;
}

/* who QEMU and virtiofsd run as (never root); the tap, share images and folders are theirs */
static int sv_resolve_user(struct sv_ctx *c, struct sv_core *k)
{
	int rc = proc_user_resolve(&k->user);

	if (rc) {
		log_errno(rc, "no unprivileged user to run QEMU as");
		return rc;
	}
	c->uid = k->user.uid;
	c->gid = k->user.gid;
	return 0;
}

/*
 * Open disk, seed, kernel and initrd for QEMU (src/vmfd.h); their fds go
 * after the extensions' and their "-add-fd" options into the extra argv.
 */
static int sv_open_files(struct sv_ctx *c, struct sv_core *k)
{
	int rc = vmfd_open(&k->files, c->vm_dir, c->vm, &k->user, SV_FD_EXT0 + (int)k->n_fds,
			   &k->extra);

	if (rc < 0) {
		log_errno(rc, "opening the VM's files for QEMU");
		return rc;
	}
	if (k->n_fds + k->files.n > SV_MAX_FDS) {
		vmfd_close(&k->files);
		return -EMFILE;
	}
	for (size_t i = 0; i < k->files.n; i++) {
		k->fds[k->n_fds] = (struct proc_fdmap){ k->files.fd[i], SV_FD_EXT0 + (int)k->n_fds };
		k->n_fds++;
	}
	return 0;
}

/* argv of QEMU for this start: the core's part, then the extensions' part */
static int sv_build(struct sv_ctx *c, struct sv_core *k, struct qemu_argv *a, uint16_t port,
		    bool sandbox)
{
	struct qemu_params p = { .vm = c->vm, .qmp_fd = SV_FD_QMP, .serial_fd = SV_FD_SERIAL,
				 .ssh_port = port, .sandbox = sandbox,
				 .mac = state_get_str(c->state, "mac") };
	static const char *const ovmf[] = { "/usr/share/OVMF/OVMF_CODE_4M.fd",
					    "/usr/share/OVMF/OVMF_CODE.fd" };
	int rc;

	if (accel_parse(state_get_str(c->state, "accel"), &p.accel))
		p.accel = ACCEL_TCG;
	if (!p.mac)
		return -EINVAL;
	/* by fd (src/vmfd.h): QEMU's user may not walk to the VM directory */
	if (k->files.disk[0]) {
		p.disk = k->files.disk;
		p.disk_opts = k->files.disk_opts;
	}
	if (k->files.seed[0])
		p.seed = k->files.seed;
	if (k->files.kernel[0])
		p.kernel = k->files.kernel;
	if (k->files.initrd[0])
		p.initrd = k->files.initrd;
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(ovmf) && !p.uefi_code; i++)
		if (access(ovmf[i], R_OK) == 0)
			p.uefi_code = ovmf[i];
	rc = qemu_build_argv(&p, a);
	for (size_t i = 0; !rc && i < k->extra.n; i++)
		rc = qemu_argv_add(a, k->extra.v[i]);
	return rc;
}

/* every fd and socket of the supervisor, at its end */
static void sv_close_all(struct sv_core *k, const char *vm_dir)
{
	vmfd_close(&k->files);
	sv_qmp_drop(k);
	if (k->qemu_pidfd >= 0)
		close(k->qemu_pidfd);
	sv_serial_close(k);
	for (size_t i = 0; i < SV_MAX_CONSOLE; i++)
		if (k->con[i] >= 0)
			sv_con_close(k, i);
	for (size_t i = 0; i < SV_MAX_CTL; i++)
		if (k->ctl[i])
			sv_ctl_close(k, i);
	if (k->console_lfd >= 0)
		close(k->console_lfd);
	if (k->control_lfd >= 0)
		close(k->control_lfd);
	if (k->log_fd >= 0)
		close(k->log_fd);
	if (k->sig_fd >= 0)
		close(k->sig_fd);
	sv_unlink(vm_dir, "console.sock");
	sv_unlink(vm_dir, "control.sock");
}

/* the extensions and what they prepared so far (torn down in reverse) */
struct sv_preps {
	const struct sv_ext *const *ext;
	void **priv;
	size_t n_ext;
	size_t prepared;
};

/* QEMU's command line, spawned (user mode: again with another SSH port if QEMU could not bind it) */
static int sv_spawn_loop(struct sv_ctx *c, struct sv_core *k, struct qemu_argv *argv,
			 uint64_t *t_spawn)
{
	bool sandbox = sv_qemu_has_sandbox(), early;
	uint16_t port = 0;
	int rc;

	for (int attempt = 0;; attempt++) {
		if (c->vm->network.mode == CFG_NET_USER) {
			rc = qemu_free_port(&port);
			if (rc) {
				log_errno(rc, "no free port for SSH forwarding");
				return rc;
			}
			json_object_set_new(c->state, "ssh", json_pack("{s:s, s:i}", "host", "127.0.0.1",
									"port", (int)port));
		}
		qemu_argv_free(argv);
		rc = sv_build(c, k, argv, port, sandbox);
		if (!rc)
			rc = warm_argv(c, &k->warm, argv);
		if (rc) {
			log_errno(rc, "building QEMU's command line");
			return rc;
		}
		json_object_set_new(c->state, "qemu_argv", qemu_argv_json(argv));
		*t_spawn = util_monotonic_ms();
		rc = sv_spawn_qemu(c, k, argv, &early);
		/* in user mode another program may have taken the port meanwhile */
		if (rc && early && c->vm->network.mode == CFG_NET_USER && attempt + 1 < SV_PORT_TRIES)
			continue;
		return rc;
	}
}

/*
 * Prepare every extension, open the VM's files, then build QEMU's command
 * line and spawn it.
 * Return: 0, or a negative errno; @pp says what to tear down
 */
static int sv_start(struct sv_ctx *c, struct sv_core *k, struct sv_preps *pp,
		    struct qemu_argv *argv, uint64_t *t_spawn)
{
	const struct sv_ext *const *ext = pp->ext;
	int rc = 0;

	k->preparing = true;
	for (pp->prepared = 0; pp->prepared < pp->n_ext; pp->prepared++) {
		if (!ext[pp->prepared]->prepare)
			continue;
		rc = ext[pp->prepared]->prepare(c, &pp->priv[pp->prepared]);
		if (rc) {
			log_errno(rc, "%s: prepare", ext[pp->prepared]->name);
			k->preparing = false;
			return rc;
		}
	}
	k->preparing = false;
	rc = sv_open_files(c, k);
	if (rc < 0)
		return rc;
	rc = sv_spawn_loop(c, k, argv, t_spawn);
	vmfd_close(&k->files);	/* QEMU holds its own copies */
	return rc;
}

/*
 * A warm start whose state did not load: that QEMU goes (it may have
 * exited already), and so does everything the extensions prepared for it
 * (a virtiofsd that served it exits with it), for a cold start from scratch.
 */
static void sv_discard(struct sv_ctx *c, struct sv_core *k, struct sv_preps *pp)
{
	int st;

	kill(k->qemu_pid, SIGKILL);
	proc_wait(k->qemu_pid, &st);
	sv_qmp_drop(k);
	close(k->qemu_pidfd);
	k->qemu_pidfd = -1;
	sv_serial_close(k);
	sv_teardown(c, pp->ext, pp->priv, pp->prepared);
	memset(pp->priv, 0, pp->n_ext * sizeof(pp->priv[0]));
	pp->prepared = 0;
	qemu_argv_free(&k->extra);
	k->n_fds = 0;
	k->shutdown_seen = false;
}

/* the supervisor's files and sockets, before anything starts */
static int sv_setup(struct sv_ctx *c, struct sv_core *k, const char *vm_dir)
{
	int rc;

	json_object_set_new(c->state, "supervisor_pid", json_integer(getpid()));
	json_object_del(c->state, "qemu_pid");
	json_object_del(c->state, "exit_reason");
	json_object_del(c->state, "error");
	if ((rc = sv_write_pidfile(vm_dir)) || (rc = sv_state_save(c))) {
		log_errno(rc, "writing state");
		return rc;
	}
	if ((rc = sv_signals(&k->sig_fd)) || (rc = sv_open_console_log(c, k)) ||
	    (rc = sv_listen(vm_dir, "console.sock", &k->console_lfd)) ||
	    (rc = sv_listen(vm_dir, "control.sock", &k->control_lfd))) {
		log_errno(rc, "supervisor set-up");
		return rc;
	}
	return 0;
}

/* QEMU runs: state.json says so, and each extension hears it */
static int sv_started(struct sv_ctx *c, struct sv_core *k, const struct sv_preps *pp,
		      uint64_t t_start, uint64_t t_spawn)
{
	int rc = 0;

	warm_record(c, &k->warm);
	json_object_set_new(c->state, "qemu_pid", json_integer(k->qemu_pid));
	/* CLOCK_MONOTONIC ms, for tests/bench/bench-vm.sh: where start-up time goes */
	json_object_set_new(c->state, "timing",
			    json_pack("{s:I, s:I, s:I}", "supervisor_start", (json_int_t)t_start,
				      "qemu_spawn", (json_int_t)t_spawn, "qmp_ready",
				      (json_int_t)util_monotonic_ms()));
	json_object_set_new(c->state, "started_at", json_integer((json_int_t)time(NULL)));
	for (size_t i = 0; i < pp->n_ext; i++) {
		if (!pp->ext[i]->started)
			continue;
		rc = pp->ext[i]->started(c, pp->priv[i]);
		if (rc) {
			log_errno(rc, "%s: started", pp->ext[i]->name);
			sv_halt_step(c, k, SV_HALT_QUIT, SV_QUIT_GRACE_MS);
			break;
		}
	}
	if (!rc)
		json_object_set_new(c->state, "status", json_string("running"));
	if (sv_state_save(c))
		log_warn("could not save state.json");
	log_info("QEMU %d running", (int)k->qemu_pid);
	return rc;
}

int sv_run(const char *vm_dir)
{
	const struct sv_ext *const *ext = ext_sv_list();
	struct sv_core k = { .qemu_pidfd = -1, .serial_fd = -1, .console_lfd = -1,
			     .control_lfd = -1, .sig_fd = -1, .log_fd = -1 };
	struct sv_ctx c = { .vm_dir = vm_dir, .uid = getuid(), .gid = getgid(), .host = &sv_host,
			    .core = &k };
	void *priv[16] = { 0 };
	struct qemu_argv argv = { 0 };
	const struct cfg_vm *vm = NULL;
	struct cfg *cfg = NULL;
	struct sv_preps pp = { .ext = ext, .priv = priv };
	int rc;

	uint64_t t_start = util_monotonic_ms(), t_spawn = 0;

	log_init("hutch-supervisor", LOG_LVL_INFO);
	log_rotate_stderr(vm_dir, "supervisor.log");	/* bounded like console.log (src/log.h) */
	for (size_t i = 0; i < SV_MAX_CONSOLE; i++)
		k.con[i] = -1;
	while (pp.n_ext < UTIL_ARRAY_SIZE(priv) && ext[pp.n_ext])
		pp.n_ext++;
	rc = sv_load(vm_dir, &c.state, &cfg, &vm);
	if (rc)
		goto out_nostate;
	if ((rc = sv_resolve_user(&c, &k)))
		goto out_nostate;
	c.vm = vm;
	c.project_dir = cfg->dir;
	if ((rc = sv_setup(&c, &k, vm_dir)))
		goto out;
	warm_plan(&c, &k.warm);
	rc = sv_start(&c, &k, &pp, &argv, &t_spawn);
	if (!rc && k.warm.tried && warm_incoming(&c, &k.warm, k.qmp)) {
		/* a saved state that does not load: start again, cold, from scratch */
		sv_discard(&c, &k, &pp);
		rc = sv_start(&c, &k, &pp, &argv, &t_spawn);
	}
	if (rc)
		goto out_teardown;
	sv_started(&c, &k, &pp, t_start, t_spawn);
	sv_loop(&c, &k);
	sv_finish_state(&c, &k);
	rc = 0;
	goto out_teardown_ok;

out_teardown:
	json_object_set_new(c.state, "status", json_string("crashed"));
	json_object_set_new(c.state, "exit_reason", json_string("crashed"));
	json_object_set_new(c.state, "error", json_string(strerror(-rc)));
out_teardown_ok:
	k.preparing = false;
	sv_teardown(&c, ext, priv, pp.prepared);
out:
	sv_close_all(&k, vm_dir);
	if (rc) {
		const char *s = state_get_str(c.state, "status");

		if (!s || strcmp(s, "crashed")) {
			json_object_set_new(c.state, "status", json_string("crashed"));
			json_object_set_new(c.state, "exit_reason", json_string("crashed"));
		}
	}
	json_object_del(c.state, "supervisor_pid");
	json_object_del(c.state, "qemu_pid");
	if (sv_state_save(&c))
		log_warn("could not save state.json");
	sv_unlink(vm_dir, "supervisor.pid");
	qemu_argv_free(&argv);
	qemu_argv_free(&k.extra);
	warm_plan_free(&k.warm);
out_nostate:
	json_decref(c.state);
	cfg_free(cfg);
	return rc ? EXIT_ERR : EXIT_OK;
}

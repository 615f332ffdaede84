// SPDX-License-Identifier: MIT
/*
 * Root actions in the guest over the pinned SSH; see guest.h.
 */
#include "src/guest.h"

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

#include "src/ci.h"
#include "src/log.h"
#include "src/proc.h"
#include "src/ssh.h"
#include "src/ssh_ext.h"
#include "src/util.h"

#define GUEST_OUT_MAX 16384
#define GUEST_SCRIPT_MAX 16384
/* how long a hot-plugged virtiofs device may take to show up for mount */
#define GUEST_MOUNT_TRIES 100	/* x 0.1 s */
/* how long a save waits for each of cloud-init and systemd's start-up to finish */
#define GUEST_SETTLE_S 300

int guest_sh_quote(const char *s, char *buf, size_t n)
{
	size_t o = 0;

	if (n < 3)
		return -ENAMETOOLONG;
	buf[o++] = '\'';
	for (; *s; s++) {
		if (*s == '\'') {
			if (o + 5 >= n)
				return -ENAMETOOLONG;
			memcpy(buf + o, "'\\''", 4);
			o += 4;
		} else {
			if (o + 2 >= n)
				return -ENAMETOOLONG;
			buf[o++] = *s;
		}
	}
	buf[o++] = '\'';
	buf[o] = '\0';
	return 0;
}

bool guest_can_ssh(const struct guest_target *t)
{
	struct ci_info *info = NULL;
	char *text = NULL;
	size_t len;
	bool ok;

	if (t->vm->network.mode == CFG_NET_NONE)
		return false;
	if (ssh_ext_ci_load(t->project_dir, &text, &len, &info) < 0)
		return false;
	free(text);
	/* as the ssh extension decides whether `up` waits for SSH */
	ok = info ? info->has_keys : !t->vm->kernel.path;
	free(info);
	return ok;
}

char *guest_root_cmd(const char *script, bool as_root)
{
	char *q = malloc(GUEST_SCRIPT_MAX), *w = NULL;

	if (!q)
		return NULL;
	if (guest_sh_quote(script, q, GUEST_SCRIPT_MAX) == 0 &&
	    asprintf(&w, "exec %ssh -c %s", as_root ? "" : "sudo -n ", q) < 0)
		w = NULL;
	free(q);
	return w;
}

/*
 * Options for hutch's own root sessions, ahead of ssh_argv()'s (ssh takes
 * the first value of each).  OpenSSH 9's default key exchange,
 * sntrup761x25519, costs the guest's sshd about a third of a second more
 * than curve25519 under TCG right after a resume, where every code path is
 * translated afresh, and that session is what a warm `up` waits for.  "^"
 * only moves curve25519 to the front: a server without it still gets the
 * default list.  These sessions carry a time stamp and mount commands, no
 * secrets; `hutch ssh` and Ansible keep the default order.
 */
static const char *const guest_ssh_opts[] = { "-o", "KexAlgorithms=^curve25519-sha256" };

int guest_ssh_tune(const char **argv, size_t max)
{
	size_t n = 0, k = UTIL_ARRAY_SIZE(guest_ssh_opts);

	while (n < max && argv[n])
		n++;
	if (n == 0)
		return -EINVAL;
	if (n + k >= max)
		return -E2BIG;
	memmove(argv + 1 + k, argv + 1, n * sizeof(*argv));	/* argv[1..n], the NULL too */
	for (size_t i = 0; i < k; i++)
		argv[1 + i] = guest_ssh_opts[i];
	return 0;
}

/*
 * Talk to ssh: collect its output into @buf, and when @clock answer the
 * script's "R" line with the time.  @in is our end of its stdin (closed here).
 * Return: 0 at EOF, -ETIMEDOUT
 */
static int guest_io(int in, int outfd, bool clock, uint64_t deadline, char *buf, size_t *len)
{
	bool answered = !clock;
	int rc = 0;

	if (answered) {
		close(in);
		in = -1;
	}
	for (;;) {
		struct pollfd p = { .fd = outfd, .events = POLLIN };
		uint64_t now = util_monotonic_ms();
		ssize_t r;

		if (now >= deadline) {
			rc = -ETIMEDOUT;
			break;
		}
		if (poll(&p, 1, (int)(deadline - now)) < 0 && errno != EINTR) {
			rc = -errno;
			break;
		}
		r = read(outfd, buf + *len, GUEST_OUT_MAX - 1 - *len);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0)
			break;
		*len += (size_t)r;
		buf[*len] = '\0';
		if (!answered && strstr(buf, "R\n")) {
			struct timespec ts;
			char line[64];

			clock_gettime(CLOCK_REALTIME, &ts);
			snprintf(line, sizeof(line), "%lld.%09ld\n", (long long)ts.tv_sec, ts.tv_nsec);
			(void)util_write_all(in, line, strlen(line));
			close(in);
			in = -1;
			answered = true;
		}
		if (*len >= GUEST_OUT_MAX - 1)
			*len = 0;	/* keep the tail only: the error is at the end */
	}
	if (in >= 0)
		close(in);
	return rc;
}

int guest_run_root(const struct guest_target *t, const char *script, bool clock,
		   unsigned timeout_s, char **out)
{
	const char *argv[SSH_ARGV_MAX], *cmd[2];
	struct ssh_conn *c = calloc(1, sizeof(*c));
	char *w = NULL, *buf = malloc(GUEST_OUT_MAX), esc[1024];
	struct proc_fdmap fds[3];
	struct proc_opts o = { .argv = argv, .envp = proc_default_env(), .fds = fds, .n_fds = 3 };
	int pin[2] = { -1, -1 }, pout[2] = { -1, -1 }, rc, st = 0;
	size_t len = 0;
	pid_t pid;

	if (!c || !buf) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = ssh_conn_init(c, t->vm, t->project_dir, t->vm_dir, t->state)) < 0)
		goto out;
	/* the login user is known here: no `id -u` round in the guest to find out */
	w = guest_root_cmd(script, !strcmp(c->user, "root"));
	if (!w) {
		rc = -ENOMEM;
		goto out;
	}
	cmd[0] = w;
	cmd[1] = NULL;
	if ((rc = ssh_argv(c, true, cmd, argv, SSH_ARGV_MAX)) < 0 ||
	    (rc = guest_ssh_tune(argv, SSH_ARGV_MAX)) < 0)
		goto out;
	if (pipe2(pin, O_CLOEXEC) < 0 || pipe2(pout, O_CLOEXEC) < 0) {
		rc = -errno;
		goto out;
	}
	fds[0] = (struct proc_fdmap){ pin[0], STDIN_FILENO };
	fds[1] = (struct proc_fdmap){ pout[1], STDOUT_FILENO };
	fds[2] = (struct proc_fdmap){ pout[1], STDERR_FILENO };
	rc = proc_spawn(&o, &pid, NULL);
	close(pin[0]);
	close(pout[1]);
	pin[0] = pout[1] = -1;
	if (rc)
		goto out;
	buf[0] = '\0';
	rc = guest_io(pin[1], pout[0], clock, util_monotonic_ms() + timeout_s * 1000ULL, buf, &len);
	pin[1] = -1;	/* closed by guest_io */
	if (rc == -ETIMEDOUT)
		kill(pid, SIGKILL);
	if (proc_wait(pid, &st) == 0 && !rc && proc_exit_code(st) == 255) {
		/* ssh's own failure: no connection (yet), or the host key is not the pinned one */
		log_debug("ssh to %s: %s", t->vm->name, log_escape(esc, sizeof(esc), buf, len));
		rc = -ECONNREFUSED;
	} else if (!rc && proc_exit_code(st) != 0) {
		log_err("in %s: %s", t->vm->name, log_escape(esc, sizeof(esc), buf, len));
		rc = -EIO;
	}
	if (!rc && out) {
		*out = buf;
		buf = NULL;
	}
out:
	for (int i = 0; i < 2; i++) {
		if (pin[i] >= 0)
			close(pin[i]);
		if (pout[i] >= 0)
			close(pout[i]);
	}
	free(buf);
	free(w);
	free(c);
	return rc;
}

/* append "CMD 'PATH'" (or with the tag) for each share to @f */
static int guest_share_lines(const struct cfg_vm *vm, FILE *f, bool mount)
{
	char qp[2 * PATH_MAX], qt[128];

	for (size_t i = 0; i < vm->n_shares; i++) {
		const struct cfg_share *s = &vm->shares[i];

		if (guest_sh_quote(s->guest, qp, sizeof(qp)) ||
		    guest_sh_quote(s->tag ? s->tag : "", qt, sizeof(qt)))
			return -ENAMETOOLONG;
		if (!mount) {
			fprintf(f, "if mountpoint -q %s; then umount %s || exit 3; fi\n", qp, qp);
			continue;
		}
		/* the device was plugged a moment ago: its tag appears when the driver binds */
		fprintf(f, "mkdir -p %s; i=0; until mountpoint -q %s || mount -t virtiofs %s %s "
			   "2>/dev/null; do i=$((i+1)); [ $i -ge %d ] && { echo \"mount %s failed\"; "
			   "exit 4; }; sleep 0.1; done\n",
			qp, qp, qt, qp, GUEST_MOUNT_TRIES, qp);
	}
	return 0;
}

/*
 * Before a save: let the guest finish what its boot started.  Right after
 * an `up` (cloud_init_wait: false, or `warm: true` after provisioning)
 * cloud-init's last stage and systemd's start-up jobs may still run; a
 * state saved then resumes into that work, and under TCG it competes with
 * the first SSH session that a warm `up` waits for, on every warm start.
 * Either may be missing (no cloud-init, no systemd), a degraded system
 * still counts as settled, and neither may hold the save for long.
 */
static const char guest_settle_script[] =
	"if command -v cloud-init >/dev/null; then timeout %u cloud-init status --wait >/dev/null "
	"2>&1; fi\n"
	"if command -v systemctl >/dev/null; then timeout %u systemctl is-system-running --wait "
	">/dev/null 2>&1; fi\n";

/* the script of a session around a save: before it (!@mount), or after (@mount, @clock) */
static int guest_script(const struct cfg_vm *vm, bool mount, bool clock, char **out)
{
	char *script = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&script, &len);
	int rc;

	if (!f)
		return -ENOMEM;
	if (clock)
		fputs("echo R; read t; date -u -s \"@$t\" >/dev/null || exit 2\n", f);
	if (!mount) {
		fprintf(f, guest_settle_script, GUEST_SETTLE_S, GUEST_SETTLE_S);
		/* the guest's dirty pages on the disk: less for the host to flush in the pause */
		fputs("sync\n", f);
	}
	rc = guest_share_lines(vm, f, mount);
	if (fclose(f) || rc) {
		free(script);
		return rc ? rc : -ENOMEM;
	}
	*out = script;
	return 0;
}

int guest_save_script(const struct cfg_vm *vm, char **out)
{
	return guest_script(vm, false, false, out);
}

static int guest_shares_script(const struct guest_target *t, bool mount, bool clock)
{
	char *script = NULL;
	int rc = guest_script(t->vm, mount, clock, &script);

	if (rc)
		return rc;
	rc = guest_run_root(t, script, clock, mount ? 120 : 2 * GUEST_SETTLE_S + 120, NULL);
	free(script);
	return rc;
}

int guest_before_save(const struct guest_target *t)
{
	return guest_shares_script(t, false, false);
}

int guest_after_resume(const struct guest_target *t)
{
	return guest_shares_script(t, true, true);
}

int guest_set_timezone(const struct guest_target *t, const char *zone)
{
	char q[256], script[1024];
	int rc = guest_sh_quote(zone, q, sizeof(q));

	/* a guest without systemd (or timedated) still reads /etc/localtime */
	if (!rc)
		rc = util_snprintf(script, sizeof(script),
				   "z=%s\n[ -f \"/usr/share/zoneinfo/$z\" ] || { echo \"no zone $z in the "
				   "guest\"; exit 3; }\n"
				   "timedatectl set-timezone \"$z\" 2>/dev/null || "
				   "{ ln -sf \"/usr/share/zoneinfo/$z\" /etc/localtime && "
				   "echo \"$z\" > /etc/timezone; }\n",
				   q);
	return rc ? rc : guest_run_root(t, script, false, 60, NULL);
}

// SPDX-License-Identifier: MIT
/*
 * proc_spawn()'s confinement (struct proc_sandbox): the child's own
 * /proc/self/status must show the uid we asked for, no capabilities,
 * no_new_privs, and the rlimits; a mount namespace must be read-only.  Run
 * as root this switches to SUDO_UID=65534 (nobody), so the test needs no
 * hutch-vm user; as a normal user it checks what can be checked.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "src/proc.h"
#include "src/util.h"
#include "tests/unit/tap.h"

/* run argv confined by @sb, stdout captured (like proc_run, with a sandbox) */
static int run_sb(const char *const *argv, const struct proc_sandbox *sb, char *out, size_t n,
		  int *code)
{
	struct proc_fdmap fds[2];
	struct proc_opts o = { .argv = argv, .envp = proc_default_env(), .fds = fds, .n_fds = 2,
			       .sb = sb };
	int p[2], rc, st;
	size_t len = 0;
	pid_t pid;

	if (pipe(p) < 0)
		return -errno;
	fds[0] = (struct proc_fdmap){ p[1], 1 };
	fds[1] = (struct proc_fdmap){ p[1], 2 };
	rc = proc_spawn(&o, &pid, NULL);
	close(p[1]);
	if (rc) {
		close(p[0]);
		return rc;
	}
	for (;;) {
		ssize_t r = read(p[0], out + len, n - 1 - len);

		if (r <= 0)
			break;
		len += (size_t)r;
	}
	out[len] = '\0';
	close(p[0]);
	proc_wait(pid, &st);
	*code = proc_exit_code(st);
	return 0;
}

static void t_status_parser(void)
{
	static const char good[] = "Name:\tqemu\nUid:\t1000\t1000\t1000\t1000\n"
				   "CapEff:\t0000000000000000\nCapBnd:\t000001ffffffffff\nNoNewPrivs:\t1\n";
	struct proc_status st;

	is_int(proc_status_parse(good, sizeof(good) - 1, &st), 0, "status parses");
	ok(st.uid == 1000 && st.cap_eff == 0 && st.cap_bnd == 0x1ffffffffffULL && st.no_new_privs,
	   "uid, CapEff, CapBnd, NoNewPrivs read");
	is_int(proc_status_parse("Uid:\t1\nCapEff:\tzz\nCapBnd:\t0\n", 27, &st), -EINVAL,
	       "a non-hex CapEff is refused");
	is_int(proc_status_parse("Uid:\t1\n", 7, &st), -ENOENT, "missing CapEff is refused");
	is_int(proc_status_parse("Uid:\t1\nCapEff:\t11111111111111111111\nCapBnd:\t0\n", 45, &st),
	       -ERANGE, "an overlong CapEff is refused");
}

int main(void)
{
	const char *const cat[] = { "cat", "/proc/self/status", NULL };
	const char *const lim[] = { "sh", "-c", "ulimit -n; ulimit -c", NULL };
	const char *const wr[] = { "sh", "-c", "touch /var/tmp/hutch-t-proc.$$ 2>/dev/null && echo writable || echo ro", NULL };
	struct proc_sandbox sb;
	struct proc_user u;
	struct proc_status st;
	char out[16384];
	int code = -1;
	bool root = geteuid() == 0;

	t_status_parser();
	if (root) {
		setenv("SUDO_UID", "65534", 1);
		setenv("SUDO_GID", "65534", 1);
	}
	is_int(proc_user_resolve(&u), 0, "the user resolves");
	ok(!root || (u.uid == 65534 && u.switch_ids), "as root under sudo: SUDO_UID (%u)",
	   (unsigned)u.uid);
	proc_sandbox_guest(&sb, &u);
	is_int(run_sb(cat, &sb, out, sizeof(out), &code), 0, "confined child runs");
	is_int(proc_status_parse(out, strlen(out), &st), 0, "its status parses");
	ok(st.uid == u.uid && (!root || st.uid != 0), "child's uid is %u", (unsigned)st.uid);
	ok(st.cap_eff == 0, "CapEff 0 (%llx)", st.cap_eff);
	ok(!root || st.cap_bnd == 0, "bounding set empty when we had it to drop (%llx)", st.cap_bnd);
	ok(st.no_new_privs, "NoNewPrivs 1");
	ok(strstr(out, "CapPrm:\t0000000000000000") && strstr(out, "CapInh:\t0000000000000000") &&
		   strstr(out, "CapAmb:\t0000000000000000"),
	   "permitted, inheritable, ambient empty");
	is_int(run_sb(lim, &sb, out, sizeof(out), &code), 0, "rlimit child runs");
	ok(!strcmp(out, "4096\n0\n"), "RLIMIT_NOFILE 4096, RLIMIT_CORE 0: %s", out);
	is_int(run_sb(wr, &sb, out, sizeof(out), &code), 0, "mount namespace child runs");
	ok(!root || !strcmp(out, "ro\n"), "root's children see a read-only filesystem: %s", out);
	unlink("/var/tmp/hutch-t-proc.x");
	if (root) {
		/* a mount of someone else's (another VM's share image) is not in QEMU's view */
		char dir[] = "/tmp/t_proc.XXXXXX", cmd[256];
		const char *const gr[] = { "sh", "-c", cmd, NULL };

		if (mkdtemp(dir) && mount("t_proc", dir, "tmpfs", 0, "size=1m") == 0) {
			snprintf(cmd, sizeof(cmd), "grep -c ' %s ' /proc/self/mountinfo", dir);
			is_int(run_sb(gr, &sb, out, sizeof(out), &code), 0, "mount listing child runs");
			ok(!strcmp(out, "0\n"), "a host mount outside the system dirs is detached: %s", out);
			umount2(dir, MNT_DETACH);
		} else {
			ok(0, "test mount");
		}
		rmdir(dir);
	}

	/* a step that cannot take fails the spawn instead of running unconfined */
	if (root) {
		struct proc_user bad = u;
		struct proc_sandbox sb2;

		bad.uid = 0;
		bad.gid = 0;
		bad.switch_ids = true;
		proc_sandbox_guest(&sb2, &bad);
		sb2.bind_src = "/nonexistent/hutch";
		sb2.bind_dst = "/tmp";
		ok(run_sb(cat, &sb2, out, sizeof(out), &code) < 0, "a failed bind mount fails the spawn");
	}
	{
		/* userns root: the virtiofsd mode */
		struct proc_sandbox sb3 = { .user = &u, .no_new_privs = true, .userns_root = true };
		const char *const id[] = { "sh", "-c", "cat /proc/self/uid_map; id -u", NULL };

		is_int(run_sb(id, &sb3, out, sizeof(out), &code), 0, "user namespace child runs");
		{
			/* uid_map pads with spaces: compare the numbers */
			unsigned a, b, c2, d;

			ok(sscanf(out, "%u %u %u\n%u", &a, &b, &c2, &d) == 4 && a == 0 && b == u.uid &&
				   c2 == 1 && d == 0,
			   "root inside, %u outside: %s", (unsigned)u.uid, out);
		}
	}
	return tap_done();
}

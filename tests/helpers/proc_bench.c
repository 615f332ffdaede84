// SPDX-License-Identifier: MIT
/*
 * proc_bench: what confining a child costs at spawn time (issue 10), for
 * tests/bench/bench-confine.sh.  Spawns /bin/true N times each way and
 * prints the median milliseconds from fork to reaped child:
 *   plain     no confinement (what main did before)
 *   qemu      proc_sandbox_guest(): ids, bounding set, caps read back,
 *             rlimits, no_new_privs, private read-only mount namespace
 *   virtiofsd user-namespace root mapped to the user (+ the folder bound
 *             over /tmp when running as root)
 *   hook      proc_sandbox_user()
 * and the time to copy a kernel and initrd into a sealed memfd (what
 * src/vmfd.c does when QEMU's user may not read them): argv[2], argv[3].
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "src/proc.h"
#include "src/util.h"

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* one spawn+reap of /bin/true: wall ms into *@wall, the child's CPU ms into *@cpu */
static void once(const struct proc_sandbox *sb, double *wall, double *cpu)
{
	const char *const argv[] = { "/bin/true", NULL };
	struct proc_opts o = { .argv = argv, .envp = proc_default_env(), .sb = sb };
	struct rusage r0, r1;
	struct timespec a, b;
	pid_t pid;
	int st;

	getrusage(RUSAGE_CHILDREN, &r0);
	clock_gettime(CLOCK_MONOTONIC, &a);
	if (proc_spawn(&o, &pid, NULL) < 0 || proc_wait(pid, &st) < 0) {
		fprintf(stderr, "proc_bench: spawn failed\n");
		exit(1);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	getrusage(RUSAGE_CHILDREN, &r1);
	*wall = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
	*cpu = (double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec + r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) * 1e3 +
	       (double)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec + r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) / 1e3;
}

static double median(double *t, int n)
{
	qsort(t, (size_t)n, sizeof(*t), cmp_d);
	return t[n / 2];
}

static double copy_ms(const char *a, const char *b)
{
	struct timespec s, e;
	const char *files[] = { a, b };
	char buf[65536];

	clock_gettime(CLOCK_MONOTONIC, &s);
	for (int i = 0; i < 2; i++) {
		int in = open(files[i], O_RDONLY | O_CLOEXEC), m = memfd_create("b", MFD_CLOEXEC);
		ssize_t r;

		if (in < 0 || m < 0)
			return -1;
		while ((r = read(in, buf, sizeof(buf))) > 0)
			if (util_write_all(m, buf, (size_t)r) < 0)
				break;
		close(in);
		close(m);
	}
	clock_gettime(CLOCK_MONOTONIC, &e);
	return (double)(e.tv_sec - s.tv_sec) * 1e3 + (double)(e.tv_nsec - s.tv_nsec) / 1e6;
}

int main(int argc, char **argv)
{
	long nl = 50;
	int n;
	struct proc_user u;
	struct proc_sandbox q, v, h;

	if ((argc > 1 && util_parse_long(argv[1], 1, 10000, &nl) < 0) || proc_user_resolve(&u) < 0)
		return 1;
	n = (int)nl;
	proc_sandbox_guest(&q, &u);
	proc_sandbox_user(&h, &u);
	v = (struct proc_sandbox){ .user = &u, .no_new_privs = true, .userns_root = true,
				   .no_core = true, .nofile = 65536,
				   .bind_src = u.switch_ids ? "/var/tmp" : NULL,
				   .bind_dst = u.switch_ids ? "/tmp" : NULL };
	{
		const struct proc_sandbox *sbs[4] = { NULL, &q, &v, &h };
		static const char *const names[4] = { "plain", "QEMU's confinement", "virtiofsd's (userns)",
						      "hooks' and Ansible's" };
		double *w[4], *c[4], mw[4], mc[4];

		for (int k = 0; k < 4; k++) {
			w[k] = calloc((size_t)n, sizeof(double));
			c[k] = calloc((size_t)n, sizeof(double));
			if (!w[k] || !c[k])
				return 1;
		}
		/* interleaved, so that a load change on the machine hits every kind alike */
		for (int i = 0; i < n; i++)
			for (int k = 0; k < 4; k++)
				once(sbs[k], &w[k][i], &c[k][i]);
		for (int k = 0; k < 4; k++) {
			mw[k] = median(w[k], n);
			mc[k] = median(c[k], n);
		}
		printf("confine: as %s; spawn+exit of /bin/true, medians of %d, wall (child CPU):\n", u.name, n);
		printf("confine:   %-24s %6.2f ms (%5.2f ms)\n", names[0], mw[0], mc[0]);
		for (int k = 1; k < 4; k++)
			printf("confine:   %-24s %+6.2f ms (%+5.2f ms)\n", names[k], mw[k] - mw[0], mc[k] - mc[0]);
		for (int k = 0; k < 4; k++) {
			free(w[k]);
			free(c[k]);
		}
	}
	if (argc > 3)
		printf("confine: kernel+initrd into a memfd (QEMU's user may not read them): %.2f ms\n",
		       copy_ms(argv[2], argv[3]));
	return 0;
}

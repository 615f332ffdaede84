// SPDX-License-Identifier: MIT
/*
 * KVM probe.  The probe image is a multiboot (a.out kludge) flat binary,
 * source in tests/vm/accel-probe.S: from 32-bit protected mode it builds
 * page tables, enters long mode, jumps to the higher half like Linux does,
 * checks a memory write through paging, remaps the PIC and programs the PIT,
 * and only from the timer interrupt handler writes 0x2a to isa-debug-exit,
 * so QEMU exits with (0x2a << 1) | 1 = 85.  Anything less (a triple fault,
 * which -no-reboot turns into exit 0, a hang, an error) means unusable.
 */
#include "src/accel.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "src/log.h"
#include "src/proc.h"
#include "src/util.h"

#define ACCEL_PROBE_EXIT 85
/* a working KVM runs the probe in well under a second, QEMU start included */
#define ACCEL_PROBE_TIMEOUT_MS 5000

static const unsigned char accel_probe_img[] = {
  0x02, 0xb0, 0xad, 0x1b, 0x00, 0x00, 0x01, 0x00, 0xfe, 0x4f, 0x51, 0xe4,
  0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00,
  0x00, 0x00, 0x00, 0x00, 0x20, 0x00, 0x10, 0x00, 0xbf, 0x00, 0x00, 0x20,
  0x00, 0x31, 0xc0, 0xb9, 0x00, 0x0c, 0x00, 0x00, 0xf3, 0xab, 0xc7, 0x05,
  0x00, 0x00, 0x20, 0x00, 0x03, 0x10, 0x20, 0x00, 0xc7, 0x05, 0x00, 0x10,
  0x20, 0x00, 0x03, 0x20, 0x20, 0x00, 0xc7, 0x05, 0xf8, 0x0f, 0x20, 0x00,
  0x03, 0x10, 0x20, 0x00, 0xc7, 0x05, 0xf0, 0x1f, 0x20, 0x00, 0x03, 0x20,
  0x20, 0x00, 0xbf, 0x00, 0x20, 0x20, 0x00, 0xb8, 0x83, 0x00, 0x00, 0x00,
  0xb9, 0x00, 0x02, 0x00, 0x00, 0x89, 0x07, 0xc7, 0x47, 0x04, 0x00, 0x00,
  0x00, 0x00, 0x05, 0x00, 0x00, 0x20, 0x00, 0x83, 0xc7, 0x08, 0xe2, 0xed,
  0xbf, 0x00, 0x00, 0x21, 0x00, 0x31, 0xc0, 0xb9, 0x84, 0x00, 0x00, 0x00,
  0xf3, 0xab, 0xb8, 0x48, 0x01, 0x10, 0x00, 0x66, 0xa3, 0x00, 0x02, 0x21,
  0x00, 0x66, 0xc7, 0x05, 0x02, 0x02, 0x21, 0x00, 0x08, 0x00, 0x66, 0xc7,
  0x05, 0x04, 0x02, 0x21, 0x00, 0x00, 0x8e, 0xc1, 0xe8, 0x10, 0x66, 0xa3,
  0x06, 0x02, 0x21, 0x00, 0xb8, 0x00, 0x00, 0x20, 0x00, 0x0f, 0x22, 0xd8,
  0x0f, 0x20, 0xe0, 0x83, 0xc8, 0x20, 0x0f, 0x22, 0xe0, 0xb9, 0x80, 0x00,
  0x00, 0xc0, 0x0f, 0x32, 0x0d, 0x00, 0x01, 0x00, 0x00, 0x0f, 0x30, 0x0f,
  0x20, 0xc0, 0x0d, 0x01, 0x00, 0x00, 0x80, 0x0f, 0x22, 0xc0, 0x0f, 0x01,
  0x15, 0x7a, 0x01, 0x10, 0x00, 0xea, 0xe4, 0x00, 0x10, 0x00, 0x08, 0x00,
  0x66, 0xb8, 0x10, 0x00, 0x8e, 0xd8, 0x8e, 0xd0, 0xbc, 0x00, 0x00, 0x40,
  0x00, 0x48, 0xb8, 0xfd, 0x00, 0x10, 0x80, 0xff, 0xff, 0xff, 0xff, 0xff,
  0xe0, 0x48, 0xb8, 0xef, 0xbe, 0xad, 0xde, 0x78, 0x56, 0x34, 0x12, 0x48,
  0x89, 0x04, 0x25, 0x00, 0x00, 0x30, 0x00, 0x48, 0x8b, 0x1c, 0x25, 0x00,
  0x00, 0x30, 0x00, 0x48, 0x39, 0xc3, 0x75, 0x29, 0x0f, 0x01, 0x1c, 0x25,
  0x70, 0x01, 0x10, 0x00, 0xb0, 0x11, 0xe6, 0x20, 0xb0, 0x20, 0xe6, 0x21,
  0xb0, 0x04, 0xe6, 0x21, 0xb0, 0x01, 0xe6, 0x21, 0xb0, 0xfe, 0xe6, 0x21,
  0xb0, 0x34, 0xe6, 0x43, 0xb0, 0x00, 0xe6, 0x40, 0xb0, 0x10, 0xe6, 0x40,
  0xfb, 0xf4, 0xeb, 0xfd, 0x66, 0xba, 0xf4, 0x00, 0xb0, 0x2a, 0xee, 0xeb,
  0xf7, 0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
  0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x9a, 0xaf, 0x00,
  0xff, 0xff, 0x00, 0x00, 0x00, 0x92, 0xcf, 0x00, 0x0f, 0x02, 0x00, 0x00,
  0x21, 0x00, 0x00, 0x00, 0x00, 0x00, 0x21, 0x00, 0x58, 0x01, 0x10, 0x00
};


int accel_decide(enum cfg_accel want, bool kvm_ok, enum accel_kind *out)
{
	switch (want) {
	case CFG_ACCEL_TCG:
		*out = ACCEL_TCG;
		return 0;
	case CFG_ACCEL_KVM:
		if (!kvm_ok)
			return -ENODEV;
		*out = ACCEL_KVM;
		return 0;
	case CFG_ACCEL_AUTO:
		*out = kvm_ok ? ACCEL_KVM : ACCEL_TCG;
		return 0;
	}
	return -EINVAL;
}

const char *accel_name(enum accel_kind k)
{
	return k == ACCEL_KVM ? "kvm" : "tcg";
}

int accel_parse(const char *s, enum accel_kind *out)
{
	if (s && !strcmp(s, "kvm"))
		*out = ACCEL_KVM;
	else if (s && !strcmp(s, "tcg"))
		*out = ACCEL_TCG;
	else
		return -EINVAL;
	return 0;
}

const char *accel_qemu_accel(enum accel_kind k)
{
	return k == ACCEL_KVM ? "kvm" : "tcg,thread=multi";
}

const char *accel_qemu_cpu(enum accel_kind k)
{
	return k == ACCEL_KVM ? "host" : "max";
}

/*
 * Run the probe guest under @accel ("kvm" or "tcg"); 0 when it exited with
 * the probe's code, *@ms set to how long QEMU took from spawn to exit.
 */
static int accel_run_probe(const char *accel, char *why, size_t n, uint64_t *ms)
{
	const char *const argv[] = {
		"qemu-system-x86_64", "-accel", accel, "-cpu", strcmp(accel, "kvm") ? "max" : "host",
		"-M", "pc", "-m", "32",
		"-nodefaults", "-no-user-config", "-no-reboot", "-display", "none",
		"-kernel", "/proc/self/fd/3",
		"-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", NULL
	};
	uint64_t t0 = util_monotonic_ms();
	struct proc_fdmap fds[1];
	struct proc_user u;
	struct proc_sandbox sb;
	struct proc_opts o = { .argv = argv, .envp = proc_default_env(), .fds = fds, .n_fds = 1,
			       .want_pidfd = true, .sb = &sb };
	struct pollfd pfd;
	int mfd, pidfd = -1, rc, st;
	pid_t pid;

	/* probe as the VM's QEMU will run: /dev/kvm may be root's only */
	rc = proc_user_resolve(&u);
	if (rc) {
		util_snprintf(why, n, "no unprivileged user for QEMU: %s", strerror(-rc));
		return rc;
	}
	proc_sandbox_guest(&sb, &u);
	mfd = memfd_create("hutch-kvm-probe", MFD_CLOEXEC);
	if (mfd < 0) {
		rc = -errno;
		util_snprintf(why, n, "memfd_create: %s", strerror(-rc));
		return rc;
	}
	rc = util_write_all(mfd, accel_probe_img, sizeof(accel_probe_img));
	if (rc) {
		util_snprintf(why, n, "probe image: %s", strerror(-rc));
		goto out;
	}
	fds[0] = (struct proc_fdmap){ mfd, 3 };
	rc = proc_spawn(&o, &pid, &pidfd);
	if (rc) {
		util_snprintf(why, n, "qemu-system-x86_64: %s", strerror(-rc));
		goto out;
	}
	pfd = (struct pollfd){ .fd = pidfd, .events = POLLIN };
	rc = poll(&pfd, 1, ACCEL_PROBE_TIMEOUT_MS);
	if (rc <= 0) {
		kill(pid, SIGKILL);
		proc_wait(pid, &st);
		util_snprintf(why, n, "probe guest did not finish in %d s",
			      ACCEL_PROBE_TIMEOUT_MS / 1000);
		rc = -ETIMEDOUT;
		goto out;
	}
	proc_wait(pid, &st);
	*ms = util_monotonic_ms() - t0;
	if (proc_exit_code(st) != ACCEL_PROBE_EXIT) {
		util_snprintf(why, n, "probe guest failed under %s (exit %d)", accel,
			      proc_exit_code(st));
		rc = -ENODEV;
		goto out;
	}
	rc = 0;
out:
	if (pidfd >= 0)
		close(pidfd);
	close(mfd);
	return rc;
}

/*
 * A KVM that runs the probe at all is not enough: on the known bad host
 * (nested "kvm-pvm") the probe finishes in ~2 s where TCG needs ~0.1 s, and
 * real kernels then make no progress.  An absolute deadline alone depends on
 * the host's load, so the probe also runs under TCG and KVM must not be
 * slower than TCG (plus QEMU's start-up slack): a working KVM is never
 * slower than emulation.  Both runs see the same load, so the verdict holds
 * on a busy host too.
 */
static bool accel_probe_compare(char *why, size_t n)
{
	uint64_t kvm_ms = 0, tcg_ms = 0;

	if (accel_run_probe("kvm", why, n, &kvm_ms) != 0)
		return false;
	if (accel_run_probe("tcg", why, n, &tcg_ms) != 0)
		return true;	/* TCG itself broken: KVM passed, keep it */
	if (kvm_ms > 2 * tcg_ms + 150) {
		util_snprintf(why, n, "probe guest took %llu ms under KVM, %llu ms under TCG",
			      (unsigned long long)kvm_ms, (unsigned long long)tcg_ms);
		return false;
	}
	return true;
}

/* The probe's verdict is kept for this boot only: a reboot may load kvm. */
static int accel_cache_path(char *buf, size_t n)
{
	char data[PATH_MAX];
	int rc = util_data_dir(data, sizeof(data));

	return rc ? rc : util_path_join(buf, n, data, "kvm-probe");
}

static int accel_boot_id(char *buf, size_t n)
{
	char *s;
	size_t len;
	int rc = util_read_file("/proc/sys/kernel/random/boot_id", 64, &s, &len);

	if (rc)
		return rc;
	while (len && (s[len - 1] == '\n' || s[len - 1] == ' '))
		s[--len] = 0;
	rc = util_snprintf(buf, n, "%s", s);
	free(s);
	return rc;
}

bool accel_probe_kvm(char *why, size_t n)
{
	char path[PATH_MAX], boot[64], line[512], *cached = NULL;
	const char *t = getenv("HUTCH_TEST_KVM");
	bool ok;
	int fd;

	util_snprintf(why, n, "%s", "");
	/* test rigs: "0" pretends KVM is unusable, "1" usable */
	if (t && (!strcmp(t, "0") || !strcmp(t, "1"))) {
		if (t[0] == '0')
			util_snprintf(why, n, "HUTCH_TEST_KVM=0");
		return t[0] == '1';
	}
	fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		util_snprintf(why, n, "/dev/kvm: %s", strerror(errno));
		return false;
	}
	close(fd);
	/*
	 * kvm-pvm (pagetable-based VMs) runs only guest kernels built for it:
	 * our probe passes there, slowly, and a distribution kernel dies with a
	 * KVM internal error or hangs.  When it, and no hardware KVM module, is
	 * what backs /dev/kvm, that is a certain no.
	 */
	if (access("/sys/module/kvm_pvm", F_OK) == 0 && access("/sys/module/kvm_intel", F_OK) < 0 &&
	    access("/sys/module/kvm_amd", F_OK) < 0) {
		util_snprintf(why, n, "/dev/kvm is kvm-pvm, which runs only PVM guest kernels");
		return false;
	}
	path[0] = boot[0] = 0;
	if (accel_cache_path(path, sizeof(path)) == 0 && accel_boot_id(boot, sizeof(boot)) == 0 &&
	    util_read_file(path, 1024, &cached, NULL) == 0) {
		size_t bl = strlen(boot);

		if (!strncmp(cached, boot, bl) && cached[bl] == ' ') {
			ok = !strncmp(cached + bl + 1, "kvm", 3);
			if (!ok) {
				char *r = strchr(cached + bl + 1, ' ');
				char *nl = r ? strchr(r, '\n') : NULL;

				if (nl)
					*nl = 0;
				util_snprintf(why, n, "%s", r ? r + 1 : "cached");
			}
			free(cached);
			return ok;
		}
		free(cached);
	}
	ok = accel_probe_compare(why, n);
	if (path[0] && boot[0] &&
	    util_snprintf(line, sizeof(line), "%s %s %s\n", boot, ok ? "kvm" : "tcg", why) == 0) {
		char dir[PATH_MAX];

		if (util_data_dir(dir, sizeof(dir)) == 0 && util_mkdir_p(dir, 0700) == 0)
			util_write_atomic(path, line, strlen(line), 0600);
	}
	return ok;
}

int accel_select(enum cfg_accel want, enum accel_kind *out)
{
	char why[256] = "";
	bool kvm_ok = false;
	int rc;

	if (want != CFG_ACCEL_TCG)
		kvm_ok = accel_probe_kvm(why, sizeof(why));
	rc = accel_decide(want, kvm_ok, out);
	if (rc) {
		log_err("accel: kvm requested but KVM is unusable here (%s)", why);
		return rc;
	}
	if (want == CFG_ACCEL_AUTO && !kvm_ok)
		fprintf(stderr, "hutch: KVM unusable here (%s); using TCG (slow)\n", why);
	return 0;
}

// SPDX-License-Identifier: MIT
/*
 * share: the host side of shared folders (see DOC in share.h): the image,
 * the loop mount, its verification, virtiofsd processes, the guest's fstab.
 */
#include "share/share.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/loop.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "src/log.h"
#include "src/proc.h"
#include "src/trust.h"
#include "src/util.h"

#ifndef MS_NOSYMFOLLOW
#define MS_NOSYMFOLLOW 256	/* Linux 5.10 */
#endif
#ifndef LOOP_CONFIGURE
#define LOOP_CONFIGURE 0x4C0A	/* Linux 5.8 */
#endif

#define SHARE_MOUNTINFO_MAX (16u << 20)
#define SHARE_MOUNT_FLAGS (MS_NOSYMFOLLOW | MS_NODEV | MS_NOSUID)

static void share_sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

bool share_tag_valid(const char *tag)
{
	size_t n = strlen(tag);

	if (n == 0 || n > SHARE_TAG_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = tag[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-'))
			return false;
	}
	return true;
}

int share_image_path(const struct cfg_share *s, char *buf, size_t n)
{
	if (!s->host || s->host[0] != '/')
		return -EINVAL;
	return util_snprintf(buf, n, "%s.img", s->host);
}

int share_check_paths(const struct cfg_share *s, const char *project_dir)
{
	char why[TRUST_WHY_MAX];
	int rc;

	/* the one containment check, as the config loader makes it (src/trust.h) */
	rc = trust_check(project_dir, s->host, TRUST_DIR, 0, why, sizeof(why));
	if (rc == -EPERM)
		log_err("shared folder %s %s", s->host, why);
	else if (rc)
		log_errno(rc, "shared folder %s", s->host);
	return rc;
}

int share_image_create(const char *img, unsigned size_gib, uid_t uid, gid_t gid, bool *created)
{
	char tmp[PATH_MAX], ro[64], *out = NULL;
	const char *argv[12];
	struct stat st;
	int fd, rc, status;

	if (size_gib == 0 || size_gib > 65536)
		return -EINVAL;
	if (lstat(img, &st) == 0) {
		if (!S_ISREG(st.st_mode)) {
			log_err("%s exists and is not a regular file", img);
			return -EINVAL;
		}
		if (created)
			*created = false;
		return 0;
	}
	if (errno != ENOENT)
		return -errno;
	if ((rc = util_snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", img, (long)getpid())) < 0 ||
	    (rc = util_snprintf(ro, sizeof(ro), "root_owner=%u:%u", (unsigned)uid, (unsigned)gid)) < 0)
		return rc;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	/* sparse: blocks are only allocated as the guest writes */
	if (ftruncate(fd, (off_t)size_gib << 30) < 0) {
		rc = -errno;
		close(fd);
		goto err_unlink;
	}
	if (geteuid() == 0 && fchown(fd, uid, gid) < 0) {
		rc = -errno;
		close(fd);
		goto err_unlink;
	}
	close(fd);

	/*
	 * -m 0: no blocks reserved for root, the cap is the whole size;
	 * nodiscard: discarding a fresh sparse file is pointless work.
	 */
	argv[0] = "mkfs.ext4";
	argv[1] = "-q";
	argv[2] = "-F";
	argv[3] = "-m";
	argv[4] = "0";
	argv[5] = "-L";
	argv[6] = "hutch-share";
	argv[7] = "-E";
	argv[8] = ro;
	argv[9] = tmp;
	argv[10] = NULL;
	rc = proc_run(argv, NULL, &out, 4096, &status);
	if (rc < 0) {
		log_errno(rc, "cannot run mkfs.ext4 (e2fsprogs)");
		goto err_unlink;
	}
	if (proc_exit_code(status) != 0) {
		log_err("mkfs.ext4 failed for %s (exit %d): %s", img, proc_exit_code(status),
			out ? out : "");
		rc = -EIO;
		goto err_unlink;
	}
	free(out);
	out = NULL;
	/* never replace an image that appeared meanwhile: it may hold data */
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, img, RENAME_NOREPLACE) < 0) {
		rc = -errno;
		goto err_unlink;
	}
	if (created)
		*created = true;
	log_info("created %s (%u GiB, sparse ext4)", img, size_gib);
	return 0;

err_unlink:
	free(out);
	unlink(tmp);
	return rc;
}

/*
 * The folder's canonical name: its parent resolved with realpath(3), its
 * last component kept as is (it may not exist yet; when it is a symlink,
 * share_mount() refuses it).  The kernel prints canonical paths in
 * mountinfo, so a folder given through a symlinked parent (/home ->
 * /usr/home) must be compared, mounted and unmounted under that name.
 */
static int share_canon_dir(const char *in, char *out, size_t n)
{
	char tmp[PATH_MAX], parent[PATH_MAX];
	const char *base;
	char *slash;
	size_t l;
	int rc;

	if (in[0] != '/' || (rc = util_snprintf(tmp, sizeof(tmp), "%s", in)) < 0)
		return in[0] != '/' ? -EINVAL : rc;
	l = strlen(tmp);
	while (l > 1 && tmp[l - 1] == '/')
		tmp[--l] = '\0';
	slash = strrchr(tmp, '/');
	base = slash + 1;
	if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
		return -EINVAL;
	*slash = '\0';
	if (!realpath(tmp[0] ? tmp : "/", parent))
		return -errno;
	return util_snprintf(out, n, "%s/%s", strcmp(parent, "/") == 0 ? "" : parent, base);
}

/* read /proc/self/mountinfo and find the topmost mount on @dir */
static int share_find_mount(const char *dir, struct share_mntent *e)
{
	char *buf;
	size_t n;
	int rc;

	rc = util_read_file("/proc/self/mountinfo", SHARE_MOUNTINFO_MAX, &buf, &n);
	if (rc < 0)
		return rc;
	rc = share_mountinfo_find(buf, n, dir, e);
	free(buf);
	return rc;
}

/*
 * Is loop device @nr backed by the file @st?  Asked of the loop driver
 * itself (LOOP_GET_STATUS64: device and inode of the backing file) rather
 * than by name, so a renamed or look-alike path cannot pass.
 */
static bool share_loop_backs(int nr, const struct stat *st, dev_t mounted_dev)
{
	struct loop_info64 li;
	char dev[64];
	struct stat ds;
	bool ok;
	int fd;

	if (util_snprintf(dev, sizeof(dev), "/dev/loop%d", nr) < 0)
		return false;
	fd = open(dev, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ok = fstat(fd, &ds) == 0 && S_ISBLK(ds.st_mode) && ds.st_rdev == mounted_dev &&
	     ioctl(fd, LOOP_GET_STATUS64, &li) == 0 && li.lo_inode == st->st_ino &&
	     major((dev_t)li.lo_device) == major(st->st_dev) &&
	     minor((dev_t)li.lo_device) == minor(st->st_dev);
	close(fd);
	return ok;
}

int share_verify(const char *img, const char *dir_in, int *loopnr)
{
	struct share_mntent *e;
	char dir[PATH_MAX];
	struct stat st;
	long nr;
	int rc;

	if ((rc = share_canon_dir(dir_in, dir, sizeof(dir))) < 0)
		return rc;
	if (stat(img, &st) < 0)
		return -errno;
	e = malloc(sizeof(*e));
	if (!e)
		return -ENOMEM;
	rc = share_find_mount(dir, e);
	if (rc < 0)
		goto out;
	if (strncmp(e->source, "/dev/loop", 9) != 0 ||
	    util_parse_long(e->source + 9, 0, INT_MAX, &nr) < 0 || strcmp(e->fstype, "ext4") != 0 ||
	    !share_loop_backs((int)nr, &st, makedev(e->dev_major, e->dev_minor))) {
		rc = -EBUSY;
		goto out;
	}
	if (!share_mnt_has_opt(e->mnt_opts, "nosymfollow") ||
	    !share_mnt_has_opt(e->mnt_opts, "nodev") || !share_mnt_has_opt(e->mnt_opts, "nosuid")) {
		rc = -EPERM;
		goto out;
	}
	if (loopnr)
		*loopnr = (int)nr;
	rc = 0;
out:
	free(e);
	return rc;
}

/*
 * Attach @imgfd to a free loop device.  LOOP_CTL_GET_FREE and the
 * configure are two steps another process can race between (EBUSY): retry.
 * LO_FLAGS_AUTOCLEAR: the device detaches itself when the mount (its last
 * user) goes, so a crash after unmount leaves no loop device behind.
 */
static int share_loop_attach(int imgfd, const char *img, int *nrp, int *lfdp)
{
	int ctl, rc = -EBUSY;

	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return -errno;
	for (int tries = 0; tries < 16; tries++) {
		struct loop_config lc = { .fd = (unsigned)imgfd };
		char dev[64];
		int nr, lfd;

		nr = ioctl(ctl, LOOP_CTL_GET_FREE);
		if (nr < 0) {
			rc = -errno;
			break;
		}
		if ((rc = util_snprintf(dev, sizeof(dev), "/dev/loop%d", nr)) < 0)
			break;
		lfd = open(dev, O_RDWR | O_CLOEXEC);
		if (lfd < 0) {
			rc = -errno;
			break;
		}
		lc.info.lo_flags = LO_FLAGS_AUTOCLEAR;
		/* informational only (losetup -a); may be cut, nothing relies on it */
		strncpy((char *)lc.info.lo_file_name, img, LO_NAME_SIZE - 1);
		if (ioctl(lfd, LOOP_CONFIGURE, &lc) == 0) {
			*nrp = nr;
			*lfdp = lfd;
			rc = 0;
			break;
		}
		rc = -errno;
		if (rc == -EINVAL || rc == -ENOTTY) {
			/* kernels before 5.8: the two-step way */
			if (ioctl(lfd, LOOP_SET_FD, imgfd) == 0) {
				if (ioctl(lfd, LOOP_SET_STATUS64, &lc.info) == 0) {
					*nrp = nr;
					*lfdp = lfd;
					rc = 0;
					break;
				}
				rc = -errno;
				ioctl(lfd, LOOP_CLR_FD, 0);
			} else {
				rc = -errno;
			}
		}
		close(lfd);
		if (rc != -EBUSY)
			break;
	}
	close(ctl);
	return rc;
}

/*
 * A loop device already backed by @st, or -ENOENT.  Happens when a mount of
 * the image lives on in another mount namespace (one created while it was
 * mounted: `ip netns exec`, unshare, a sandbox) after we unmounted ours:
 * the superblock stays alive there.  Attaching a second loop device and
 * mounting ext4 on it would give two superblocks over the same bytes, which
 * corrupts the file system; mounting the same loop device again instead
 * gets the kernel to hand back the live superblock.
 */
static int share_loop_find(const struct stat *st)
{
	struct dirent *d;
	int found = -ENOENT;
	DIR *dir;

	dir = opendir("/sys/block");
	if (!dir)
		return -errno;
	while ((d = readdir(dir))) {
		struct loop_info64 li;
		char dev[300];
		long nr;
		int fd;

		if (strncmp(d->d_name, "loop", 4) != 0 ||
		    util_parse_long(d->d_name + 4, 0, INT_MAX, &nr) < 0 ||
		    util_snprintf(dev, sizeof(dev), "/dev/loop%ld", nr) < 0)
			continue;
		fd = open(dev, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (ioctl(fd, LOOP_GET_STATUS64, &li) == 0 && li.lo_inode == st->st_ino &&
		    major((dev_t)li.lo_device) == major(st->st_dev) &&
		    minor((dev_t)li.lo_device) == minor(st->st_dev))
			found = (int)nr;
		close(fd);
		if (found >= 0)
			break;
	}
	closedir(dir);
	return found;
}

int share_mount(const char *img, const char *dir_in, uid_t uid, gid_t gid, int *loopnr)
{
	char real[PATH_MAX], dev[64], dir[PATH_MAX];
	struct stat st;
	int imgfd, lfd = -1, nr = -1, rc;
	bool reused = false;

	if ((rc = share_canon_dir(dir_in, dir, sizeof(dir))) < 0) {
		log_errno(rc, "shared folder %s", dir_in);
		return rc;
	}

	rc = share_verify(img, dir, loopnr);
	if (rc == 0)
		return 0;	/* already ours (hutch mount before up): reuse */
	if (rc == -EPERM) {
		log_err("%s is mounted from %s without nosymfollow,nodev,nosuid; "
			"run 'hutch unmount' first", dir, img);
		return rc;
	}
	if (rc == -EBUSY) {
		log_err("%s is already a mount point of something else; refusing to share it", dir);
		return rc;
	}
	if (rc != -ENOENT) {
		log_errno(rc, "cannot check the mounts on %s", dir);
		return rc;
	}

	if (mkdir(dir, 0755) == 0) {
		if (geteuid() == 0 && chown(dir, uid, gid) < 0) {
			rc = -errno;
			log_errno(rc, "chown %s", dir);
			return rc;
		}
	} else if (errno != EEXIST) {
		rc = -errno;
		log_errno(rc, "cannot create %s", dir);
		return rc;
	}
	/* mount(2) follows symlinks: the folder must be a real directory at that path */
	if (!realpath(dir, real) || strcmp(real, dir) != 0 || lstat(dir, &st) < 0 ||
	    !S_ISDIR(st.st_mode)) {
		log_err("%s is not a plain directory (a symlink in the path?)", dir);
		return -ENOTDIR;
	}
	imgfd = open(img, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (imgfd < 0) {
		rc = -errno;
		log_errno(rc, "cannot open %s", img);
		return rc;
	}
	if (fstat(imgfd, &st) < 0 || !S_ISREG(st.st_mode)) {
		log_err("%s is not a regular file", img);
		rc = -EINVAL;
		goto err_img;
	}
	nr = share_loop_find(&st);
	if (nr >= 0) {
		log_warn("%s is still attached to /dev/loop%d (a mount in another mount "
			 "namespace?); mounting that device again", img, nr);
		if ((rc = util_snprintf(dev, sizeof(dev), "/dev/loop%d", nr)) < 0 ||
		    (lfd = open(dev, O_RDONLY | O_CLOEXEC)) < 0) {
			rc = rc < 0 ? rc : -errno;
			goto err_img;
		}
		reused = true;
	} else {
		rc = share_loop_attach(imgfd, img, &nr, &lfd);
		if (rc < 0) {
			log_errno(rc, "cannot attach %s to a loop device", img);
			goto err_img;
		}
	}
	if ((rc = util_snprintf(dev, sizeof(dev), "/dev/loop%d", nr)) < 0)
		goto err_loop;
	if (mount(dev, dir, "ext4", SHARE_MOUNT_FLAGS, NULL) < 0) {
		rc = -errno;
		log_errno(rc, "cannot mount %s on %s", img, dir);
		goto err_loop;
	}
	rc = share_verify(img, dir, loopnr);
	if (rc < 0) {
		log_errno(rc, "%s: the mount on %s is not what was asked for", img, dir);
		umount2(dir, MNT_DETACH | UMOUNT_NOFOLLOW);
		goto err_loop;
	}
	/* the mount holds the loop device now; AUTOCLEAR detaches it with the mount */
	close(lfd);
	close(imgfd);
	return 0;

err_loop:
	if (!reused)
		ioctl(lfd, LOOP_CLR_FD, 0);
	close(lfd);
err_img:
	close(imgfd);
	return rc;
}

int share_unmount(const char *img, const char *dir_in)
{
	char dir[PATH_MAX];
	int rc;

	if ((rc = share_canon_dir(dir_in, dir, sizeof(dir))) < 0)
		return rc == -ENOENT ? 0 : rc;	/* no parent: nothing can be mounted there */

	/* stacked mounts of ours (a second `hutch mount` raced): peel them all */
	for (int i = 0; i < 8; i++) {
		int nr = -1;

		rc = share_verify(img, dir, &nr);
		if (rc == -EPERM)
			rc = 0;	/* ours without the flags: still ours to remove */
		else if (rc == -ENOENT)
			return 0;
		else if (rc == -EBUSY)
			return i ? 0 : -EBUSY;
		else if (rc < 0)
			return rc;
		/*
		 * EBUSY right after virtiofsd stopped is usually its sandboxed
		 * child (which holds the folder as its root) still exiting:
		 * give it two seconds before detaching lazily.
		 */
		for (int t = 0;; t++) {
			rc = umount2(dir, UMOUNT_NOFOLLOW) < 0 ? -errno : 0;
			if (rc != -EBUSY || t == 20)
				break;
			share_sleep_ms(100);
		}
		if (rc < 0) {
			if (rc != -EBUSY) {
				log_errno(rc, "cannot unmount %s", dir);
				return rc;
			}
			/* a host shell is inside: detach now, the kernel finishes later */
			log_warn("%s is busy; detaching it lazily", dir);
			if (umount2(dir, MNT_DETACH | UMOUNT_NOFOLLOW) < 0) {
				rc = -errno;
				log_errno(rc, "cannot unmount %s", dir);
				return rc;
			}
		}
	}
	return -EBUSY;
}

int share_virtiofsd_find(char *buf, size_t n)
{
	static const char *const extra[] = { "/usr/libexec", "/usr/lib/qemu", NULL };

	return proc_find_exe("virtiofsd", extra, buf, n);
}

int share_virtiofsd_start(const char *exe, const char *dir, const char *sock, const char *log,
			  bool die_with_us, pid_t *pidp)
{
	char a_sock[PATH_MAX + 32], a_src[PATH_MAX + 32];
	const char *argv[12];
	struct proc_fdmap fds[1];
	size_t n_fds = 0;
	int logfd = -1, rc, status;
	uint64_t deadline;
	pid_t pid;

	if ((rc = util_snprintf(a_sock, sizeof(a_sock), "--socket-path=%s", sock)) < 0 ||
	    (rc = util_snprintf(a_src, sizeof(a_src), "source=%s", dir)) < 0)
		return rc;
	if (unlink(sock) < 0 && errno != ENOENT)
		return -errno;
	/*
	 * This is the C virtiofsd of QEMU <= 7.2 (Debian 12) or the Rust one;
	 * both take --socket-path and the -o options below.  sandbox=namespace:
	 * it pivot_roots into the shared folder in its own mount, pid and net
	 * namespaces, so a compromised virtiofsd sees nothing else of the host.
	 */
	argv[0] = exe;
	argv[1] = a_sock;
	argv[2] = "-o";
	argv[3] = a_src;
	argv[4] = "-o";
	argv[5] = "cache=auto";
	argv[6] = "-o";
	argv[7] = "sandbox=namespace";
	argv[8] = NULL;
	if (log) {
		logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (logfd < 0)
			return -errno;
		fds[n_fds++] = (struct proc_fdmap){ .parent = logfd, .child = 2 };
	}
	{
		struct proc_opts o = {
			.argv = argv,
			.envp = proc_default_env(),
			.fds = fds,
			.n_fds = n_fds,
			.setsid = true,
			.pdeathsig = die_with_us ? SIGTERM : 0,
		};

		rc = proc_spawn(&o, &pid, NULL);
	}
	if (logfd >= 0)
		close(logfd);
	if (rc < 0)
		return rc;

	/* ready when the vhost-user socket is listening; generous: TCG hosts are slow */
	deadline = util_monotonic_ms() + 30000;
	for (;;) {
		struct stat st;
		pid_t w;

		if (stat(sock, &st) == 0 && S_ISSOCK(st.st_mode))
			break;
		w = waitpid(pid, &status, WNOHANG);
		if (w == pid) {
			log_err("virtiofsd for %s exited (status %d) before its socket appeared%s%s",
				dir, proc_exit_code(status), log ? "; see " : "", log ? log : "");
			return -ECHILD;
		}
		if (util_monotonic_ms() > deadline) {
			share_virtiofsd_stop(pid, 1000, true);
			return -ETIMEDOUT;
		}
		share_sleep_ms(20);
	}
	*pidp = pid;
	return 0;
}

/* gone: no such process, or a zombie waiting for its parent (not us) */
static bool share_pid_gone(pid_t pid)
{
	char path[64], *buf = NULL, *rp;
	bool gone;

	if (kill(pid, 0) < 0 && errno == ESRCH)
		return true;
	if (util_snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid) < 0 ||
	    util_read_file(path, 4096, &buf, NULL) < 0)
		return true;
	rp = strrchr(buf, ')');	/* comm may hold anything; the state follows the last ')' */
	gone = !rp || (rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X'));
	free(buf);
	return gone;
}

int share_virtiofsd_stop(pid_t pid, int grace_ms, bool reap)
{
	uint64_t deadline;
	int status;

	if (pid <= 0)
		return -EINVAL;
	if (kill(pid, SIGTERM) < 0 && errno == ESRCH)
		return 0;
	deadline = util_monotonic_ms() + (uint64_t)grace_ms;
	for (int killed = 0;;) {
		if (reap) {
			pid_t w = waitpid(pid, &status, WNOHANG);

			if (w == pid || (w < 0 && errno == ECHILD))
				return 0;
		} else if (share_pid_gone(pid)) {
			return 0;
		}
		if (!killed && util_monotonic_ms() > deadline) {
			kill(pid, SIGKILL);
			killed = 1;
			deadline = util_monotonic_ms() + 10000;
		} else if (killed && util_monotonic_ms() > deadline) {
			return -ETIMEDOUT;
		}
		share_sleep_ms(20);
	}
}

bool share_pid_is_virtiofsd(pid_t pid, const char *sock)
{
	char path[64], want[PATH_MAX + 32], *buf = NULL;
	bool exe_ok = false, sock_ok = false;
	size_t n, off = 0;

	if (pid <= 1 || util_snprintf(path, sizeof(path), "/proc/%ld/cmdline", (long)pid) < 0 ||
	    util_snprintf(want, sizeof(want), "--socket-path=%s", sock) < 0 ||
	    util_read_file(path, 65536, &buf, &n) < 0)
		return false;
	for (int i = 0; off < n; i++) {
		const char *arg = buf + off;
		size_t l = strnlen(arg, n - off);

		if (i == 0) {
			const char *base = strrchr(arg, '/');

			exe_ok = strcmp(base ? base + 1 : arg, "virtiofsd") == 0;
		} else if (strcmp(arg, want) == 0) {
			sock_ok = true;
		}
		off += l + 1;
	}
	free(buf);
	return exe_ok && sock_ok;
}

int share_fstab_lines(const struct cfg_vm *vm, char **out)
{
	size_t cap = 1, len = 0;
	char *s;

	for (size_t i = 0; i < vm->n_shares; i++) {
		const struct cfg_share *sh = &vm->shares[i];

		if (!sh->tag || !share_tag_valid(sh->tag) || !sh->guest || sh->guest[0] != '/')
			return -EINVAL;
		for (const char *p = sh->guest; *p; p++)
			if ((unsigned char)*p <= ' ' || *p == '\\' || (unsigned char)*p >= 0x7f)
				return -EINVAL;	/* fstab separates fields by blanks */
		cap += strlen(sh->tag) + strlen(sh->guest) + 40;
	}
	s = malloc(cap);
	if (!s)
		return -ENOMEM;
	s[0] = '\0';
	for (size_t i = 0; i < vm->n_shares; i++) {
		int w = snprintf(s + len, cap - len, "%s %s virtiofs defaults,nofail 0 0\n",
				 vm->shares[i].tag, vm->shares[i].guest);

		if (w < 0 || (size_t)w >= cap - len) {
			free(s);
			return -ENAMETOOLONG;
		}
		len += (size_t)w;
	}
	*out = s;
	return 0;
}

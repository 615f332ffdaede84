// SPDX-License-Identifier: MIT
/*
 * share/image.c: the isolated share's image and its loop mount (DOC blocks
 * in share.h): creation, the provenance records that say an image is one
 * of ours, and the mount primitive a privileged helper may run for an
 * unprivileged user.  Paths are resolved once, into fds: the folder's
 * parent is opened without following symlinks, the image and the folder
 * are opened from it with O_NOFOLLOW, and all checks and the mount itself
 * work on those fds, so nothing can be swapped between check and use.
 */
#include "share/share.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <linux/loop.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "src/log.h"
#include "src/proc.h"
#include "src/util.h"

#ifndef MS_NOSYMFOLLOW
#define MS_NOSYMFOLLOW 256	/* Linux 5.10 */
#endif
#ifndef LOOP_CONFIGURE
#define LOOP_CONFIGURE 0x4C0A	/* Linux 5.8 */
#endif
#ifndef SYS_openat2
#define SYS_openat2 437		/* Linux 5.6 */
#endif
#ifndef STATX_ATTR_MOUNT_ROOT
#define STATX_ATTR_MOUNT_ROOT 0x2000	/* Linux 5.8 */
#endif

#define SHARE_MOUNTINFO_MAX (16u << 20)
#define SHARE_MOUNT_FLAGS (MS_NOSYMFOLLOW | MS_NODEV | MS_NOSUID)
#define SHARE_MOUNT_ATTRS (MOUNT_ATTR_NOSYMFOLLOW | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID)
#define SHARE_REC_MAX 4096

/* ext2/3/4 superblock: at byte 1024; s_magic at 0x38, s_uuid at 0x68 (16 bytes) */
#define EXT_SB_OFF 1024
#define EXT_SB_MAGIC_OFF 0x38
#define EXT_SB_UUID_OFF 0x68
#define EXT_SB_MAGIC 0xEF53

/**
 * struct share_at - one share's paths, resolved once
 * @pfd:     O_PATH fd of the folder's parent, opened without following symlinks
 * @dir:     the folder's canonical path (parent canonical, last component as given)
 * @img:     "<dir>.img"
 * @base:    the folder's name in @pfd (points into @dir)
 * @imgbase: the image's name in @pfd (points into @img)
 */
struct share_at {
	int pfd;
	char dir[PATH_MAX];
	char img[PATH_MAX];
	const char *base;
	const char *imgbase;
};

static void share_sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---- provenance records ---- */

int share_record_dir(char *buf, size_t n)
{
	char data[PATH_MAX];
	int rc = util_data_dir(data, sizeof(data));

	return rc ? rc : util_path_join(buf, n, data, "shares");
}

int share_sb_uuid(const uint8_t *sb, size_t n, uint8_t uuid[16])
{
	if (n < EXT_SB_UUID_OFF + 16)
		return -EINVAL;
	if ((unsigned)(sb[EXT_SB_MAGIC_OFF] | sb[EXT_SB_MAGIC_OFF + 1] << 8) != EXT_SB_MAGIC)
		return -EINVAL;
	memcpy(uuid, sb + EXT_SB_UUID_OFF, 16);
	return 0;
}

static void share_uuid_hex(const uint8_t uuid[16], char out[33])
{
	static const char hx[] = "0123456789abcdef";

	for (int i = 0; i < 16; i++) {
		out[2 * i] = hx[uuid[i] >> 4];
		out[2 * i + 1] = hx[uuid[i] & 15];
	}
	out[32] = '\0';
}

/* 32 lowercase hex digits, nothing else */
static int share_uuid_unhex(const char *s, uint8_t uuid[16])
{
	if (strlen(s) != 32)
		return -EINVAL;
	for (int i = 0; i < 32; i++) {
		char ch = s[i];
		int v = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;

		if (v < 0)
			return -EINVAL;
		if (i % 2 == 0)
			uuid[i / 2] = (uint8_t)(v << 4);
		else
			uuid[i / 2] |= (uint8_t)v;
	}
	return 0;
}

int share_rec_parse(const char *buf, size_t n, struct share_img_rec *r)
{
	json_t *o = json_loadb(buf, n, JSON_REJECT_DUPLICATES, NULL);
	json_t *uuid = json_object_get(o, "uuid"), *ino = json_object_get(o, "ino"),
	       *size = json_object_get(o, "size"), *used = json_object_get(o, "used");
	struct share_img_rec t = { .used = json_is_true(used) };
	int rc = -EINVAL;

	if (json_is_object(o) && json_is_string(uuid) && json_is_integer(ino) &&
	    json_is_integer(size) && json_is_boolean(used) && json_integer_value(ino) > 0 &&
	    json_integer_value(size) > 0 && share_uuid_unhex(json_string_value(uuid), t.uuid) == 0) {
		t.ino = (uint64_t)json_integer_value(ino);
		t.size = (uint64_t)json_integer_value(size);
		*r = t;
		rc = 0;
	}
	json_decref(o);
	return rc;
}

static int share_rec_path(const char *recdir, const uint8_t uuid[16], char *buf, size_t n)
{
	char hex[33];

	share_uuid_hex(uuid, hex);
	return util_snprintf(buf, n, "%s/%s.json", recdir, hex);
}

static int share_rec_read(const char *recdir, const uint8_t uuid[16], struct share_img_rec *r)
{
	char path[PATH_MAX], *buf = NULL;
	size_t n;
	int rc;

	if ((rc = share_rec_path(recdir, uuid, path, sizeof(path))) < 0 ||
	    (rc = util_read_file(path, SHARE_REC_MAX, &buf, &n)) < 0)
		return rc;
	rc = share_rec_parse(buf, n, r);
	free(buf);
	/* the file's name is what was looked up: its content must agree */
	if (rc == 0 && memcmp(r->uuid, uuid, 16) != 0)
		rc = -EINVAL;
	return rc;
}

static int share_rec_write(const char *recdir, const struct share_img_rec *r, const char *img)
{
	char path[PATH_MAX], hex[33], *txt;
	json_t *o;
	int rc;

	share_uuid_hex(r->uuid, hex);
	if ((rc = util_mkdir_p(recdir, 0700)) < 0 ||
	    (rc = share_rec_path(recdir, r->uuid, path, sizeof(path))) < 0)
		return rc;
	/* "image" is for people reading the record; only uuid, ino and size are checked */
	o = json_pack("{s:s, s:I, s:I, s:b, s:s}", "uuid", hex, "ino", (json_int_t)r->ino, "size",
		      (json_int_t)r->size, "used", r->used, "image", img);
	txt = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!txt)
		return -ENOMEM;
	rc = util_write_atomic(path, txt, strlen(txt), 0600);
	free(txt);
	return rc;
}

static void share_rec_remove(const char *recdir, const uint8_t uuid[16])
{
	char path[PATH_MAX];

	if (share_rec_path(recdir, uuid, path, sizeof(path)) == 0)
		unlink(path);
}

/* the identity of the open image @fd: inode and size, and its file system's UUID */
static int share_image_identify(int fd, struct share_img_rec *id)
{
	uint8_t sb[EXT_SB_UUID_OFF + 16];
	struct stat st;
	ssize_t r;

	if (fstat(fd, &st) < 0)
		return -errno;
	r = pread(fd, sb, sizeof(sb), EXT_SB_OFF);
	if (r < 0)
		return -errno;
	if (share_sb_uuid(sb, (size_t)r, id->uuid) < 0)
		return -EINVAL;
	id->ino = (uint64_t)st.st_ino;
	id->size = (uint64_t)st.st_size;
	id->used = false;
	return 0;
}

/*
 * Is the open image @fd one of ours?  Its superblock's UUID must name a
 * record whose inode and size are the file's.  @rec gets the record.
 * Return: 0, -EPERM (logged: not ours), or an errno
 */
static int share_image_ours(int fd, const char *img, const char *recdir,
			    struct share_img_rec *rec)
{
	struct share_img_rec id = { 0 }, r = { 0 };
	int rc;

	rc = share_image_identify(fd, &id);
	if (rc == 0) {
		rc = share_rec_read(recdir, id.uuid, &r);
		if (rc == 0 && (r.ino != id.ino || r.size != id.size))
			rc = -ESTALE;
	}
	if (rc == 0) {
		*rec = r;
		return 0;
	}
	log_err("%s was not made by hutch for this user (%s); it is not mounted, because "
		"the kernel parses a file system image as root and a crafted one can attack it. "
		"Move it away: 'hutch mount' or 'hutch up' then makes a new one",
		img, rc == -EINVAL ? "no ext4 file system made by hutch" :
		     rc == -ENOENT ? "no record of it" : "its record is for another file");
	return rc == -ENOENT || rc == -EINVAL || rc == -ESTALE ? -EPERM : rc;
}

/* ---- resolving paths once ---- */

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

/*
 * Open the canonical directory @path without following any symlink: with
 * openat2(RESOLVE_NO_SYMLINKS) a component swapped for a symlink after
 * realpath() fails instead of leading elsewhere.  Kernels before 5.6 get
 * O_NOFOLLOW on the last component only.
 */
static int share_open_dir_nofollow(const char *path)
{
	struct open_how how = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
				.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
	long fd = syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));

	if (fd < 0 && errno == ENOSYS)
		fd = open(path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? -errno : (int)fd;
}

/* resolve @dir into @at: canonical names, and the parent opened once */
static int share_at_open(const char *dir, struct share_at *at)
{
	char parent[PATH_MAX];
	char *slash;
	int rc;

	at->pfd = -1;
	if ((rc = share_canon_dir(dir, at->dir, sizeof(at->dir))) < 0 ||
	    (rc = util_snprintf(at->img, sizeof(at->img), "%s.img", at->dir)) < 0 ||
	    (rc = util_snprintf(parent, sizeof(parent), "%s", at->dir)) < 0)
		return rc;
	slash = strrchr(parent, '/');
	*slash = '\0';
	at->base = at->dir + (slash - parent) + 1;
	at->imgbase = at->img + (slash - parent) + 1;
	rc = share_open_dir_nofollow(parent[0] ? parent : "/");
	if (rc < 0)
		return rc;
	at->pfd = rc;
	return 0;
}

static void share_at_close(struct share_at *at)
{
	if (at->pfd >= 0)
		close(at->pfd);
	at->pfd = -1;
}

/*
 * Open the image @at->imgbase for @flags, after checking what it is through
 * an O_PATH fd: a regular file of @uid (any owner for root) with one link.  Only then is it
 * opened for real, through /proc/self/fd, so a device node or a FIFO put
 * there is never opened (as root, opening a device can have effects).
 * Return: the fd (CLOEXEC), or a negative errno (logged)
 */
static int share_open_image(const struct share_at *at, uid_t uid, int flags, struct stat *st)
{
	char proc[64];
	struct stat st2;
	int opath, fd, rc;

	opath = openat(at->pfd, at->imgbase, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (opath < 0)
		return -errno;
	if (fstat(opath, st) < 0) {
		rc = -errno;
		goto out;
	}
	rc = -EPERM;
	if (!S_ISREG(st->st_mode))
		log_err("%s is not a regular file (a symlink or a device?)", at->img);
	else if (uid != 0 && st->st_uid != uid)
		log_err("%s belongs to uid %u, not to %u", at->img, (unsigned)st->st_uid, (unsigned)uid);
	else if (st->st_nlink != 1)
		log_err("%s has other hard links; refusing it", at->img);
	else
		rc = 0;
	if (rc < 0 || (rc = util_snprintf(proc, sizeof(proc), "/proc/self/fd/%d", opath)) < 0)
		goto out;
	fd = open(proc, flags | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	if (fstat(fd, &st2) < 0 || st2.st_ino != st->st_ino || st2.st_dev != st->st_dev) {
		close(fd);
		rc = -EAGAIN;
		goto out;
	}
	rc = fd;
out:
	close(opath);
	return rc;
}

/* ---- creating an image ---- */

/*
 * mkfs.ext4 on the open file @fd, given to it as /dev/fd/3: a path in the
 * project could be swapped for a symlink to a disk between our check and
 * mkfs's open; the fd cannot.  -m 0: no blocks reserved for root, the cap
 * is the whole size; root_owner: the file system's root directory is the
 * user's.
 */
static int share_mkfs(int fd, uid_t uid, gid_t gid, const char *img)
{
	char ro[64], out[1024];
	const char *argv[] = { "mkfs.ext4", "-q", "-F", "-m", "0", "-L", "hutch-share",
			       "-E", ro, "/dev/fd/3", NULL };
	struct proc_fdmap fds[3];
	struct proc_opts o = { .argv = argv, .envp = proc_default_env(), .fds = fds, .n_fds = 3 };
	size_t got = 0;
	int p[2], rc, status;
	pid_t pid;

	if ((rc = util_snprintf(ro, sizeof(ro), "root_owner=%u:%u", (unsigned)uid, (unsigned)gid)) < 0)
		return rc;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	fds[0] = (struct proc_fdmap){ fd, 3 };
	fds[1] = (struct proc_fdmap){ p[1], 1 };
	fds[2] = (struct proc_fdmap){ p[1], 2 };
	rc = proc_spawn(&o, &pid, NULL);
	close(p[1]);
	if (rc < 0) {
		close(p[0]);
		log_errno(rc, "cannot run mkfs.ext4 (e2fsprogs)");
		return rc;
	}
	for (;;) {
		ssize_t r = read(p[0], out + got, sizeof(out) - 1 - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
		if (got == sizeof(out) - 1) {
			char sink[512];

			while (read(p[0], sink, sizeof(sink)) > 0)	/* drain: never block mkfs */
				;
			break;
		}
	}
	out[got] = '\0';
	close(p[0]);
	if ((rc = proc_wait(pid, &status)) < 0)
		return rc;
	if (proc_exit_code(status) != 0) {
		log_err("mkfs.ext4 failed for %s (exit %d): %s", img, proc_exit_code(status), out);
		return -EIO;
	}
	return 0;
}

/* a new image of @r->size_gib GiB at @at->imgbase; see share_image_create() */
static int share_image_make(const struct share_at *at, const struct share_req *r)
{
	uint64_t need = (uint64_t)r->size_gib << 30, avail;
	struct share_img_rec rec = { 0 };
	struct statvfs sv;
	char tmp[NAME_MAX + 1];
	int fd, rc;

	/*
	 * The image is sparse: what the guest can write is its size, so the
	 * file system holding it must have that much free now.
	 */
	if (fstatvfs(at->pfd, &sv) < 0)
		return -errno;
	avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	if (need > avail) {
		log_err("%s would hold up to %u GiB, but its file system has %llu MiB free: "
			"lower shared_folders.size", at->img, r->size_gib,
			(unsigned long long)(avail >> 20));
		return -ENOSPC;
	}
	if ((rc = util_snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", at->imgbase, (long)getpid())) < 0)
		return rc;
	fd = openat(at->pfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	/* sparse: blocks are only allocated as the guest writes */
	if (ftruncate(fd, (off_t)need) < 0 || (geteuid() == 0 && fchown(fd, r->uid, r->gid) < 0)) {
		rc = -errno;
		goto err_unlink;
	}
	if ((rc = share_mkfs(fd, r->uid, r->gid, at->img)) < 0 ||
	    (rc = share_image_identify(fd, &rec)) < 0)
		goto err_unlink;
	/* never replace an image that appeared meanwhile: it may hold data */
	if (renameat2(at->pfd, tmp, at->pfd, at->imgbase, RENAME_NOREPLACE) < 0) {
		rc = -errno;
		goto err_unlink;
	}
	/* the record last: an image without one is never mounted */
	rc = share_rec_write(r->recdir, &rec, at->img);
	if (rc < 0) {
		log_errno(rc, "cannot record %s in %s", at->img, r->recdir);
		unlinkat(at->pfd, at->imgbase, 0);
		close(fd);
		return rc;
	}
	close(fd);
	log_info("created %s (%u GiB, sparse ext4)", at->img, r->size_gib);
	return 0;

err_unlink:
	unlinkat(at->pfd, tmp, 0);
	close(fd);
	return rc;
}

int share_image_create(const struct share_req *r, bool *created)
{
	struct share_img_rec rec = { 0 };
	struct share_at at;
	struct stat st;
	int fd, rc;

	if (r->size_gib == 0 || r->size_gib > 65536 || !r->recdir)
		return -EINVAL;
	rc = share_at_open(r->dir, &at);
	if (rc < 0) {
		log_errno(rc, "shared folder %s", r->dir);
		return rc;
	}
	if (fstatat(at.pfd, at.imgbase, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		/* existing: fine only when it is one of ours */
		fd = share_open_image(&at, r->uid, O_RDONLY, &st);
		rc = fd < 0 ? fd : share_image_ours(fd, at.img, r->recdir, &rec);
		if (fd >= 0)
			close(fd);
		if (rc == 0 && created)
			*created = false;
	} else if (errno != ENOENT) {
		rc = -errno;
	} else {
		rc = share_image_make(&at, r);
		if (rc == 0 && created)
			*created = true;
	}
	share_at_close(&at);
	return rc;
}

/* ---- finding what is mounted ---- */

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
	if (lstat(img, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
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

/* ---- loop devices ---- */

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
		memcpy(lc.info.lo_file_name, img, strnlen(img, LO_NAME_SIZE - 1));
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
		struct loop_info64 li = { 0 };
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

/* ---- mounting ---- */

/*
 * Open (creating it if missing) the folder @at->base as the mount point:
 * a directory of @uid (any owner for root), not a mount point, and empty, because mounting over
 * files hides them from the user while the VM runs (and a share pointed at
 * a full folder would look like data loss).
 * Return: an O_RDONLY|O_DIRECTORY fd, or a negative errno (logged)
 */
static int share_open_folder(const struct share_at *at, uid_t uid, gid_t gid)
{
	struct statx sx;
	char buf[1024];
	ssize_t n;
	int fd, rc;

	if (mkdirat(at->pfd, at->base, 0755) == 0) {
		if (geteuid() == 0 && fchownat(at->pfd, at->base, uid, gid, AT_SYMLINK_NOFOLLOW) < 0) {
			rc = -errno;
			log_errno(rc, "chown %s", at->dir);
			return rc;
		}
	} else if (errno != EEXIST) {
		rc = -errno;
		log_errno(rc, "cannot create %s", at->dir);
		return rc;
	}
	fd = openat(at->pfd, at->base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		rc = errno == ELOOP || errno == ENOTDIR ? -ENOTDIR : -errno;
		log_errno(rc, "%s is not a plain directory (a symlink?)", at->dir);
		return rc;
	}
	rc = -EPERM;
	if (statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &sx) < 0) {
		rc = -errno;
		log_errno(rc, "%s", at->dir);
	} else if (uid != 0 && sx.stx_uid != uid) {
		log_err("%s belongs to uid %u, not to %u", at->dir, (unsigned)sx.stx_uid, (unsigned)uid);
	} else if ((sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
		   (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT)) {
		log_err("%s is already a mount point of something else; refusing to share it", at->dir);
		rc = -EBUSY;
	} else {
		rc = 0;
	}
	/* empty: nothing but "." and ".." in the first entries read */
	while (rc == 0 && (n = getdents64(fd, buf, sizeof(buf))) > 0) {
		for (size_t off = 0; off < (size_t)n;) {
			const struct dirent64 *d = (const void *)(buf + off);

			if (d->d_reclen == 0 || d->d_reclen > (size_t)n - off)
				break;
			if (strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0) {
				log_err("%s is not empty: the share's image would hide what is in it. "
					"Move its files away (into the share with 'hutch mount')",
					at->dir);
				rc = -ENOTEMPTY;
				break;
			}
			off += d->d_reclen;
		}
	}
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return fd;
}

/* why the file system refused, from the fs context's message queue (fsopen(2)) */
static void share_fs_log(int fsfd, const char *what)
{
	char msg[256];
	ssize_t r;

	while ((r = read(fsfd, msg, sizeof(msg) - 1)) > 0) {
		msg[r] = '\0';
		log_warn("%s: %s", what, msg);
	}
}

/*
 * Mount ext4 from @dev onto the directory @dfd with the fixed flags.  The
 * new mount API attaches it to the fd we checked, not to a path; kernels
 * without it (or seccomp filters that hide it) get mount(2) on the fd's
 * /proc/self/fd link, which names the same directory.
 */
static int share_mount_fd(const char *dev, int dfd, const char *dir)
{
	char proc[64];
	int fsfd, mfd, rc;

	fsfd = fsopen("ext4", FSOPEN_CLOEXEC);
	if (fsfd < 0 && (errno == ENOSYS || errno == EPERM)) {
		if ((rc = util_snprintf(proc, sizeof(proc), "/proc/self/fd/%d", dfd)) < 0)
			return rc;
		return mount(dev, proc, "ext4", SHARE_MOUNT_FLAGS, NULL) < 0 ? -errno : 0;
	}
	if (fsfd < 0)
		return -errno;
	if (fsconfig(fsfd, FSCONFIG_SET_STRING, "source", dev, 0) < 0 ||
	    fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
		rc = -errno;
		share_fs_log(fsfd, dir);
		close(fsfd);
		return rc;
	}
	mfd = fsmount(fsfd, FSMOUNT_CLOEXEC, SHARE_MOUNT_ATTRS);
	rc = mfd < 0 ? -errno : 0;
	close(fsfd);
	if (rc < 0)
		return rc;
	/* a detached mount that never got attached goes away with its fd */
	if (move_mount(mfd, "", dfd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		rc = -errno;
	close(mfd);
	return rc;
}

/* loop-attach the checked image @imgfd and mount it on the checked folder @dfd */
static int share_attach_mount(const struct share_at *at, int imgfd, const struct stat *st,
			      int dfd, int *loopnr)
{
	char dev[64];
	int lfd = -1, nr, rc;
	bool reused = false;

	nr = share_loop_find(st);
	if (nr >= 0) {
		log_warn("%s is still attached to /dev/loop%d (a mount in another mount "
			 "namespace?); mounting that device again", at->img, nr);
		if ((rc = util_snprintf(dev, sizeof(dev), "/dev/loop%d", nr)) < 0)
			return rc;
		lfd = open(dev, O_RDONLY | O_CLOEXEC);
		if (lfd < 0)
			return -errno;
		reused = true;
	} else {
		rc = share_loop_attach(imgfd, at->img, &nr, &lfd);
		if (rc < 0) {
			log_errno(rc, "cannot attach %s to a loop device", at->img);
			return rc;
		}
	}
	if ((rc = util_snprintf(dev, sizeof(dev), "/dev/loop%d", nr)) < 0)
		goto err_loop;
	rc = share_mount_fd(dev, dfd, at->dir);
	if (rc < 0) {
		log_errno(rc, "cannot mount %s on %s", at->img, at->dir);
		goto err_loop;
	}
	rc = share_verify(at->img, at->dir, loopnr);
	if (rc < 0) {
		log_errno(rc, "%s: the mount on %s is not what was asked for", at->img, at->dir);
		umount2(at->dir, MNT_DETACH | UMOUNT_NOFOLLOW);
		goto err_loop;
	}
	/* the mount holds the loop device now; AUTOCLEAR detaches it with the mount */
	close(lfd);
	return 0;

err_loop:
	if (!reused)
		ioctl(lfd, LOOP_CLR_FD, 0);
	close(lfd);
	return rc;
}

/*
 * Remove the image @at->imgbase (and its record): only after a failed first
 * mount, when it holds nothing but mkfs's output, and only if the name
 * still refers to the file we checked.
 */
static void share_image_discard(const struct share_at *at, const struct stat *st,
				const char *recdir, const struct share_img_rec *rec)
{
	struct stat now = { 0 };

	if (fstatat(at->pfd, at->imgbase, &now, AT_SYMLINK_NOFOLLOW) == 0 &&
	    now.st_ino == st->st_ino && now.st_dev == st->st_dev &&
	    unlinkat(at->pfd, at->imgbase, 0) == 0) {
		share_rec_remove(recdir, rec->uuid);
		log_info("removed %s: made for this start and never mounted", at->img);
	}
}

/* share_mount() once the folder holds nothing of ours: check, then mount */
static int share_mount_new(const struct share_at *at, const struct share_req *r, int *loopnr)
{
	struct share_img_rec rec = { 0 };
	struct stat st = { 0 };
	int imgfd, dfd, rc;

	imgfd = share_open_image(at, r->uid, O_RDWR, &st);
	if (imgfd < 0) {
		if (imgfd == -ENOENT)
			log_err("%s is missing (run 'hutch mount' to create it)", at->img);
		else if (imgfd != -EPERM)
			log_errno(imgfd, "cannot open %s", at->img);
		return imgfd;
	}
	rc = share_image_ours(imgfd, at->img, r->recdir, &rec);
	if (rc < 0)
		goto out;
	dfd = share_open_folder(at, r->uid, r->gid);
	rc = dfd < 0 ? dfd : share_attach_mount(at, imgfd, &st, dfd, loopnr);
	if (dfd >= 0)
		close(dfd);
	if (rc < 0) {
		if (!rec.used)
			share_image_discard(at, &st, r->recdir, &rec);
		goto out;
	}
	if (!rec.used) {
		rec.used = true;
		if (share_rec_write(r->recdir, &rec, at->img) < 0)
			log_warn("cannot update the record of %s in %s", at->img, r->recdir);
	}
out:
	close(imgfd);
	return rc;
}

int share_mount(const struct share_req *r, int *loopnr)
{
	struct share_at at;
	int rc;

	if (!r->recdir)
		return -EINVAL;
	rc = share_at_open(r->dir, &at);
	if (rc < 0) {
		log_errno(rc, "shared folder %s", r->dir);
		return rc;
	}
	rc = share_verify(at.img, at.dir, loopnr);
	if (rc == 0) {
		/* already ours (hutch mount before up): reuse */
	} else if (rc == -EPERM) {
		log_err("%s is mounted from %s without nosymfollow,nodev,nosuid; "
			"run 'hutch unmount' first", at.dir, at.img);
	} else if (rc == -EBUSY) {
		log_err("%s is already a mount point of something else; refusing to share it", at.dir);
	} else if (rc == -ENOENT || rc == -EINVAL) {
		rc = share_mount_new(&at, r, loopnr);
	} else {
		log_errno(rc, "cannot check the mounts on %s", at.dir);
	}
	share_at_close(&at);
	return rc;
}

int share_unmount(const char *img, const char *dir_in, uid_t uid)
{
	char dir[PATH_MAX];
	struct stat st;
	int rc;

	if ((rc = share_canon_dir(dir_in, dir, sizeof(dir))) < 0)
		return rc == -ENOENT ? 0 : rc;	/* no parent: nothing can be mounted there */
	if (uid != 0 && lstat(img, &st) == 0 && st.st_uid != uid)
		return -EPERM;

	/* stacked mounts of ours (a second `hutch mount` raced): peel them all */
	for (int i = 0; i < 8; i++) {
		int nr = -1;

		rc = share_verify(img, dir, &nr);
		if (rc == -EPERM)
			;	/* ours without the flags: still ours to remove */
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

/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_SHARE_H
#define HUTCH_SHARE_H
/**
 * DOC: share - shared folders over virtiofs, isolated by a fixed-size image
 *
 * Each `shared_folders` entry is served to the guest by one virtiofsd.  With
 * `isolation: true` (the default) the host folder is not shared as is: a
 * sparse ext4 image `<folder>.img` of `size` GiB is loop-mounted on the
 * folder with nosymfollow, nodev and nosuid before QEMU starts, and that
 * mount is what virtiofsd serves.  The threats this stops:
 *
 *  - a guest that plants a symlink (say to ~/.ssh/id_ed25519) in the share
 *    and waits for a host process (an editor, a build) to follow it: the
 *    kernel refuses to follow any symlink on a nosymfollow mount (ELOOP);
 *  - a guest that fills the share to fill the host's disk: the image is the
 *    cap, the guest gets ENOSPC and the host file never grows past it;
 *  - device nodes or setuid binaries written by a root guest: nodev, nosuid.
 *
 * With `isolation: false` the folder itself is shared (trusting the guest).
 *
 * mkfs.ext4 is the one external program run here (creating a file system is
 * not something to reimplement); everything else is syscalls: loop devices
 * through /dev/loop-control and LOOP_CONFIGURE with LO_FLAGS_AUTOCLEAR (the
 * loop device goes away with the last unmount), mount(2), umount2(2).  What
 * is mounted is always checked back in /proc/self/mountinfo, parsed by a
 * bounded parser (share_mountinfo_*), because a folder may be a mount point
 * of something else (the VM must not start then) and a crash may have left
 * our own mount behind (gc removes it, but only when it is ours).
 *
 * All functions return 0 or a negative errno unless said otherwise.
 */
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "src/cfg.h"

/* virtio-fs limits the tag to 36 bytes (struct virtio_fs_config) */
#define SHARE_TAG_MAX 36

/**
 * struct share_mntent - one line of /proc/<pid>/mountinfo (proc(5))
 *
 * Strings are unescaped (\040 -> ' ' and so on) and NUL-terminated.
 */
struct share_mntent {
	unsigned mnt_id;
	unsigned parent_id;
	unsigned dev_major;
	unsigned dev_minor;
	char root[4096];
	char mountpoint[4096];
	char mnt_opts[512];	/* per-mount options: rw,nosuid,nodev,nosymfollow,... */
	char fstype[64];
	char source[4096];
	char super_opts[512];
};

/**
 * share_mountinfo_parse_line() - parse one mountinfo line (no newline needed)
 * @line: bytes of the line; untrusted, need not be NUL-terminated
 * @n:    their count
 * @e:    filled on success
 * Return: 0, or -EINVAL when the line is malformed or a field does not fit
 */
int share_mountinfo_parse_line(const char *line, size_t n, struct share_mntent *e);

/**
 * share_mountinfo_find() - the topmost mount on @mountpoint in a mountinfo text
 * @buf, @n:    the whole file (lines separated by '\n'); malformed lines are skipped
 * @mountpoint: absolute path, as the kernel prints it (no trailing '/')
 * @e:          set to the last (topmost) matching entry
 * Return: 0, -ENOENT when nothing is mounted there
 */
int share_mountinfo_find(const char *buf, size_t n, const char *mountpoint,
			 struct share_mntent *e);

/** share_mnt_has_opt() - @opt is one of the comma-separated @opts */
bool share_mnt_has_opt(const char *opts, const char *opt);

/**
 * share_tag_valid() - a virtiofs tag hutch accepts: [A-Za-z0-9_.-]{1,36}
 *
 * Narrower than virtio-fs allows, so a tag never needs quoting in QEMU's
 * comma-separated options nor in the guest's fstab.
 */
bool share_tag_valid(const char *tag);

/** share_image_path() - "<host>.img": the image beside the folder */
int share_image_path(const struct cfg_share *s, char *buf, size_t n);

/**
 * share_check_paths() - refuse a share the project may not name
 * @s:           the share
 * @project_dir: the directory of hutch.yaml
 *
 * trust_check() (src/trust.h), the check the config loader makes, at the
 * moment of use: the folder lies inside the project, reached without a
 * symlink, or in a place the user's own config allows; it is not the
 * project directory nor one above it (the guest would get hutch.yaml and
 * hooks/), nor the project's code (hooks/, the playbook's folders).
 * Return: 0 (also when the folder does not exist yet), -EPERM with a
 * message logged (exit 77), or an errno
 */
int share_check_paths(const struct cfg_share *s, const char *project_dir);

/**
 * share_image_create() - create <@img> as a sparse ext4 file system if missing
 * @img:      path of the image
 * @size_gib: its size (1..65536)
 * @uid, @gid: owner of the file and of the file system's root directory
 * @created:  set to true when it was created now (may be NULL)
 *
 * Created under a temporary name and renamed into place, so a crash in
 * mkfs never leaves a half-made image that later mounts fail on.
 * Return: 0 (existing images are fine), or a negative errno
 */
int share_image_create(const char *img, unsigned size_gib, uid_t uid, gid_t gid,
		       bool *created);

/**
 * share_mount() - loop-mount @img on @dir, nosymfollow,nodev,nosuid
 * @img:     the image (must exist)
 * @dir:     the folder; created (owned by @uid:@gid) if missing
 * @uid, @gid: owner for a folder created here
 * @loopnr:  set to the loop device's number
 *
 * Refuses (-EBUSY) when @dir is already a mount point of anything but this
 * image; when it is already this image mounted with our flags, succeeds
 * without mounting twice.  The result is verified with share_verify().
 * Needs CAP_SYS_ADMIN.
 * Return: 0, or a negative errno (a message is logged)
 */
int share_mount(const char *img, const char *dir, uid_t uid, gid_t gid, int *loopnr);

/**
 * share_verify() - @dir's topmost mount is @img on a loop device with our flags
 * @loopnr: set to the loop device's number when it is (may be NULL)
 * Return: 0, -ENOENT (nothing mounted there), -EBUSY (something else is),
 * -EPERM (ours but without nosymfollow/nodev/nosuid), or an errno
 */
int share_verify(const char *img, const char *dir, int *loopnr);

/**
 * share_unmount() - unmount @img from @dir if (and only if) it is ours there
 *
 * umount2(), falling back to MNT_DETACH when busy (a host shell inside the
 * folder must not keep the VM's teardown from finishing); the loop device
 * detaches itself (LO_FLAGS_AUTOCLEAR).
 * Return: 0 (also when nothing of ours was mounted), or a negative errno
 */
int share_unmount(const char *img, const char *dir);

/**
 * share_virtiofsd_find() - virtiofsd in PATH, /usr/libexec, /usr/lib/qemu
 * Return: 0 with @buf set, -ENOENT
 */
int share_virtiofsd_find(char *buf, size_t n);

/**
 * share_virtiofsd_start() - spawn virtiofsd serving @dir on @sock and wait for the socket
 * @exe:  from share_virtiofsd_find()
 * @log:  file for its stderr (created/appended), or NULL
 * @die_with_us: SIGTERM it when the calling thread dies (PR_SET_PDEATHSIG):
 *        the supervisor's case, so a kill -9 of the supervisor leaves no
 *        virtiofsd behind even before `gc` runs
 * @pidp: set to its pid; the caller stops it with share_virtiofsd_stop()
 * Return: 0, or a negative errno (-ETIMEDOUT, -ECHILD when it exited early)
 */
int share_virtiofsd_start(const char *exe, const char *dir, const char *sock, const char *log,
			  bool die_with_us, pid_t *pidp);

/**
 * share_virtiofsd_stop() - SIGTERM, wait up to @grace_ms, then SIGKILL
 * @reap: @pid is our child (waitpid it); else poll /proc for it to go
 */
int share_virtiofsd_stop(pid_t pid, int grace_ms, bool reap);

/**
 * share_pid_is_virtiofsd() - /proc/@pid/cmdline is a virtiofsd serving @sock
 *
 * gc only signals a pid from state.json after this check, because the pid
 * may have been reused by an unrelated process since the crash.
 */
bool share_pid_is_virtiofsd(pid_t pid, const char *sock);

/**
 * share_fstab_lines() - the guest's fstab lines for @vm's shares
 * @out: set to a malloc'd string (empty when there are no shares)
 *
 * One line per share: "TAG GUEST_PATH virtiofs defaults,nofail 0 0\n".
 * For the default cloud-init user-data (e.g. as `mounts:` entries, or a
 * write_files/bootcmd appending to /etc/fstab); users with their own
 * cloud-init.yml add the same line themselves.  `nofail` so a missing share
 * never blocks the guest's boot.
 * Return: 0, -ENOMEM, -EINVAL (a tag or guest path that cannot go in fstab)
 */
int share_fstab_lines(const struct cfg_vm *vm, char **out);

#endif

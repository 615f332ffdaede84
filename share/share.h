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
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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

/**
 * share_path_opt_safe() - @path may stand inside another program's option string
 *
 * virtiofsd gets the folder as `-o source=PATH`: its option parser splits
 * on ',' (so "./w,source=/etc" would serve /etc) and the C virtiofsd reads
 * '\' as an escape while the Rust one does not, so no escaping is right
 * for both: such paths are refused instead, as are control characters.
 * (QEMU's own options are escaped instead, by doubling ',': qemu_opt_escape().)
 */
bool share_path_opt_safe(const char *path);

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
 * DOC: share images - only images hutch made are mounted
 *
 * A file system image is parsed by the kernel's ext4 driver, as root, when
 * it is mounted: a crafted image (shipped in a cloned repository as
 * `workspace.img`) is a kernel attack surface.  So hutch mounts only images
 * it created itself.  When share_image_create() makes one it writes a
 * record to @recdir (the user's data dir, `$XDG_DATA_HOME/hutch/shares`,
 * which the project cannot write), named by the file system's UUID and
 * holding the image's inode number and size.  share_mount() refuses an
 * image unless its superblock's UUID names a record whose inode and size
 * match the file: a planted image has no record (its UUID is unknown to
 * us), and a copy of a real image has another inode.  `e2fsck -fn` first
 * was the other choice, rejected: it runs as root on the same hostile
 * bytes (e2fsprogs has had its own CVEs on crafted images), and an image
 * it calls clean is not one the kernel parses safely.
 *
 * An image that was never mounted holds nothing but mkfs's output: when
 * mounting it fails, share_mount() removes it and its record, so a failed
 * `up` or `hutch mount` leaves no new image behind.
 *
 * What this does not stop: a process running as the user that rewrites the
 * image's bytes in place (it keeps inode, size and UUID).  That process has
 * the user's rights already; under the privileged helper, where the user is
 * not trusted with root's kernel, the helper keeps its own @recdir and must
 * keep the image out of the user's write reach (priv's design).
 */

/** share_record_dir() - where provenance records live: <data dir>/shares */
int share_record_dir(char *buf, size_t n);

/**
 * share_sb_uuid() - the UUID of an ext2/3/4 superblock
 * @sb: the bytes at offset 1024 of the image (untrusted)
 * @n:  their count
 * Return: 0 with @uuid set, -EINVAL when short or without the ext magic
 */
int share_sb_uuid(const uint8_t *sb, size_t n, uint8_t uuid[16]);

/** struct share_img_rec - a provenance record (see DOC: share images) */
struct share_img_rec {
	uint8_t uuid[16];
	uint64_t ino;
	uint64_t size;
	bool used;		/* mounted at least once: may hold data */
};

/**
 * share_rec_parse() - parse a record file's bytes (untrusted: bounded, type-checked)
 * Return: 0, -EINVAL
 */
int share_rec_parse(const char *buf, size_t n, struct share_img_rec *r);

/**
 * struct share_req - one isolated share, as the mount side sees it
 * @dir:      the folder, absolute; its image is "<dir>.img", in the same parent
 * @uid, @gid: the caller.  The image and the folder must belong to @uid; a
 *            folder or image created here is made theirs.  A privileged
 *            caller passes the unprivileged requester's ids (SO_PEERCRED),
 *            never 0: uid 0 is root acting for itself (`sudo hutch up` in
 *            a user's project), for which any owner is accepted (the
 *            provenance record still decides which images are mounted).
 * @size_gib: share_image_create() only: the image's size (1..65536)
 * @recdir:   provenance records (share_record_dir() for the user's own
 *            hutch; the helper's own directory for the helper)
 */
struct share_req {
	const char *dir;
	uid_t uid;
	gid_t gid;
	unsigned size_gib;
	const char *recdir;
};

/**
 * share_image_create() - create "<@r->dir>.img", a sparse ext4 file system, if missing
 * @created: set to true when it was created now (may be NULL)
 *
 * An existing image is fine only when it is one of ours (a regular file of
 * @r->uid with a matching record): else -EPERM, logged.  A new one must fit
 * in the free space of its file system (statvfs; -ENOSPC), is made under a
 * temporary name (mkfs.ext4 gets it as /dev/fd/3, never by a path that could
 * be swapped) and renamed into place without replacing anything; its
 * record is written last.  Nothing is left behind on failure.
 * Return: 0, or a negative errno (a message is logged)
 */
int share_image_create(const struct share_req *r, bool *created);

/**
 * share_mount() - loop-mount "<@r->dir>.img" on @r->dir, nosymfollow,nodev,nosuid
 * @r:      the share; @r->size_gib is not used
 * @loopnr: set to the loop device's number
 *
 * The contract, written for a privileged caller acting for @r->uid:
 *  - paths are resolved once: the folder's parent is canonicalised and
 *    opened with RESOLVE_NO_SYMLINKS; the image and the folder are opened
 *    from that fd with O_NOFOLLOW, and everything after works on the fds;
 *  - the image must be a regular file owned by @r->uid with one link, and
 *    one of ours (DOC: share images); it is opened O_PATH first and reopened
 *    read-write through /proc/self/fd, so no device or FIFO is ever opened;
 *  - the folder must be a directory owned by @r->uid, not a mount point, and
 *    empty (a mount never hides files); a missing one is created (0755, @r->uid);
 *  - the mount is made with the new mount API (fsopen/fsmount with
 *    MOUNT_ATTR_NOSYMFOLLOW|NODEV|NOSUID, then move_mount onto the folder's
 *    fd), falling back to mount(2) on /proc/self/fd/N; the flags are fixed;
 *  - the result is checked in /proc/self/mountinfo (share_verify()).
 * When @r->dir already holds this image mounted with our flags, succeeds
 * without mounting twice; when it is a mount point of anything else, -EBUSY.
 * A failed mount of a never-mounted image removes the image.  Needs
 * CAP_SYS_ADMIN.
 * Return: 0, or a negative errno (a message is logged): -EPERM not ours,
 * -ENOTEMPTY, -EBUSY, -ENOTDIR (a symlink), ...
 */
int share_mount(const struct share_req *r, int *loopnr);

/**
 * share_verify() - @dir's topmost mount is @img on a loop device with our flags
 * @loopnr: set to the loop device's number when it is (may be NULL)
 * Return: 0, -ENOENT (nothing mounted there), -EBUSY (something else is),
 * -EPERM (ours but without nosymfollow/nodev/nosuid), or an errno
 */
int share_verify(const char *img, const char *dir, int *loopnr);

/**
 * share_unmount() - unmount @img from @dir if (and only if) it is ours there
 * @uid: the caller: @img must belong to them (0: any owner, root's own gc)
 *
 * umount2(), falling back to MNT_DETACH when busy (a host shell inside the
 * folder must not keep the VM's teardown from finishing); the loop device
 * detaches itself (LO_FLAGS_AUTOCLEAR).
 * Return: 0 (also when nothing of ours was mounted), -EPERM (someone
 * else's image), or a negative errno
 */
int share_unmount(const char *img, const char *dir, uid_t uid);

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
 * @pidfdp: set to a CLOEXEC pidfd for it, to watch it (may be NULL); the
 *        caller closes it
 *
 * @dir must pass share_path_opt_safe() (-EINVAL otherwise, logged): it is
 * the last check before the path lands in `-o source=`.
 * Return: 0, or a negative errno (-ETIMEDOUT, -ECHILD when it exited early)
 */
int share_virtiofsd_start(const char *exe, const char *dir, const char *sock, const char *log,
			  bool die_with_us, pid_t *pidp, int *pidfdp);

struct proc_user;
/**
 * share_virtiofsd_start_fd() - virtiofsd as @u, serving @dir on a listening socket
 * @listen_fd: a bound, listening AF_UNIX socket (the child gets it as fd 3);
 *             the caller keeps its copy and closes it
 * @id:        the socket's path, recorded in virtiofsd's environment so that
 *             share_pid_is_virtiofsd() recognises it after a crash
 * @log:       file for its stderr, or NULL
 * @u:         from proc_user_resolve(): virtiofsd runs as root of a user
 *             namespace mapped to @u, and drops every capability itself
 * @pidfdp:    set to a pidfd for the supervisor to watch (may be NULL)
 * Dies with the calling thread (SIGTERM).  Return: 0 with *@pidp set, or a
 * negative errno
 */
int share_virtiofsd_start_fd(const char *exe, const char *dir, int listen_fd, const char *id,
			     const char *log, const struct proc_user *u, pid_t *pidp, int *pidfdp);

/**
 * share_virtiofsd_stop() - SIGTERM, wait up to @grace_ms, then SIGKILL
 * @reap: @pid is our child (waitpid it); else poll /proc for it to go
 */
int share_virtiofsd_stop(pid_t pid, int grace_ms, bool reap);

/**
 * share_pid_is_virtiofsd() - /proc/@pid/cmdline is a virtiofsd serving @sock
 * (--socket-path=@sock, or HUTCH_VFS_SOCKET=@sock in its environment)
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

/**
 * share_status() - the shares of state.json, for `hutch status`
 * @state: state.json (untrusted: type-checked)
 *
 * One object per share: {"tag", "folder", "isolation", "broken", and when
 * broken "reason"}.  "broken" is set by the supervisor when a share's
 * virtiofsd died while the VM ran (the VM keeps running; see share_sv.c).
 * Return: a new array, or NULL when the VM has no shares
 */
json_t *share_status(json_t *state);

/** share_status_print() - share_status()'s array as `status` lines ("share  TAG: ok") */
void share_status_print(FILE *out, json_t *shares);

#endif

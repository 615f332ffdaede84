/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_TRUST_H
#define HUTCH_TRUST_H
/**
 * DOC: trust - what a project may name on the host, and hutch's own dirs
 *
 * A project directory may be someone else's (a cloned repository).  Every
 * path it names (hutch.yaml's image, kernel, initrd, ssh.key and shared
 * folders; cloud-init.yml, playbook.yml, ansible.cfg and hooks/) must lie
 * inside it.  trust_check() is the one check for that, used by the config
 * loader and by the share code: lexically (after cfg's normalisation, no
 * ".." is left) the path is inside the project, and on disk it is reached
 * by openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
 * from the project directory, so neither ".." nor a symbolic link leads out
 * and no symlink is followed even inside: a symlink has no business in the
 * paths a project names, and one inside a shared folder is exactly what a
 * guest would plant between a check and a use.
 *
 * A place outside the project is usable only when the user's own config
 * (~/.config/hutch/config.yaml, `allow_paths:`) or $HUTCH_ALLOW_PATHS names
 * a directory that holds it; below such a directory symlinks are followed
 * as long as they stay beneath it (RESOLVE_BENEATH).  Nothing in the project
 * can widen this.
 *
 * Files opened through here must be regular files (a FIFO would hang hutch,
 * a device or /proc file is not the project's to hand to a guest) owned by
 * the user (the effective uid; under sudo also SUDO_UID): a file of someone
 * else's is not the project's either.
 *
 * trust_dir() is the other half: hutch's own directories (the image cache,
 * the data dir).  Every directory on the path must be owned by root or the
 * user and writable by nobody else (a root-owned sticky directory such as
 * /tmp excepted); the ones hutch owns are created 0700 and kept so.
 *
 * A refusal is -EPERM with the reason in @why, so that callers exit 77.
 */
#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#define TRUST_WHY_MAX 512

#define TRUST_MUST_EXIST 1u
#define TRUST_LEXICAL    2u

/** enum trust_kind - what a checked path must be when it exists */
enum trust_kind {
	TRUST_FILE,	/* a regular file */
	TRUST_DIR,	/* a directory (a shared folder): never the project nor its code */
};

/**
 * trust_uid_ok() - @uid is the user hutch acts for (euid; SUDO_UID under sudo)
 */
bool trust_uid_ok(uid_t uid);

/**
 * trust_check() - the one containment check for a path a project names
 * @project_dir: absolute project directory (hutch.yaml's)
 * @path:        absolute, lexically normalised path
 * @kind:        what it must be when it exists
 * @flags:       TRUST_MUST_EXIST: a missing path is -ENOENT rather than fine;
 *               TRUST_LEXICAL: look at the name only, with no user config
 *               (so nothing outside the project passes) and no disk access
 * @why:         set to the reason on -EPERM (TRUST_WHY_MAX is enough)
 *
 * A path that does not exist yet passes when the part of it that exists
 * holds no symlink (a shared folder is created on first use).  For
 * TRUST_DIR the project directory itself, a folder that contains it, and
 * the project's code (hooks/, the Ansible folders) are refused wherever
 * they are: the guest must not write what runs on the host.
 *
 * Return: 0, -EPERM (refused, @why says why), -ENOENT, or another errno
 */
int trust_check(const char *project_dir, const char *path, enum trust_kind kind, unsigned flags,
		char *why, size_t whyn);

/**
 * trust_open() - open a file the project names, as trust_check() allows it
 * @flags: O_RDONLY and the like; O_CLOEXEC and O_NONBLOCK are added (the
 *         latter cleared again once the file is known to be regular)
 * @fdp:   set to the fd on success; the caller closes it
 * @st:    set to its fstat (may be NULL)
 *
 * Return: 0, -EPERM (@why set), -ENOENT, or another errno
 */
int trust_open(const char *project_dir, const char *path, int flags, int *fdp, struct stat *st,
	       char *why, size_t whyn);

/**
 * trust_read() - read a whole file the project names (trust_open + read)
 * @max:  files larger than this are refused with -EFBIG
 * @bufp: set to a malloc'd, NUL-terminated copy; @lenp to its length
 */
int trust_read(const char *project_dir, const char *path, size_t max, char **bufp, size_t *lenp,
	       char *why, size_t whyn);

/**
 * trust_read_fd() - read all of @fd (at most @max bytes) into a malloc'd,
 * NUL-terminated buffer
 */
int trust_read_fd(int fd, size_t max, char **bufp, size_t *lenp);

/**
 * trust_file_ok() - @st is a regular file owned by the user; else -EPERM with @why
 * @what: the file's name for @why
 */
int trust_file_ok(const struct stat *st, const char *what, char *why, size_t whyn);

/**
 * trust_dir() - check (and create) one of hutch's own directories
 * @path: absolute directory, e.g. $XDG_CACHE_HOME/hutch/images
 * @own:  how many trailing components are hutch's: created 0700 when
 *        missing, refused when not owned by the user or when a symlink,
 *        tightened to 0700 when group or others have access.  0 checks
 *        without creating anything (a missing @path is -ENOENT).
 *
 * Directories above the last @own components are created 0700 when
 * missing (as mkdir -p would); existing ones, symlinks resolved, must be
 * owned by root or the user and not writable by group or others, except
 * a root-owned sticky directory (/tmp) and a group-writable one whose group
 * is the user's own primary group (Debian's user private groups).
 *
 * Return: 0, -EPERM (@why says which directory and why), or an errno
 */
int trust_dir(const char *path, unsigned own, char *why, size_t whyn);

#endif

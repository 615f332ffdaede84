/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_UTIL_H
#define HUTCH_UTIL_H
/**
 * DOC: util - small checked helpers shared by every module
 *
 * Checked formatting (no silent truncation), checked number parsing (no
 * atoi), bounded file reads, atomic writes, and hutch's directories.
 * All return 0 or a negative errno unless said otherwise.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* Exit codes of SPEC.md */
#define EXIT_OK       0
#define EXIT_ERR      1
#define EXIT_USAGE    2
#define EXIT_NODEP    69
#define EXIT_BUSY     75
#define EXIT_NOPERM   77	/* not allowed: consent missing, a path outside the project */
#define EXIT_NOSETUP  78

#define UTIL_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/**
 * util_snprintf() - snprintf that refuses to truncate
 * Return: 0, -ENAMETOOLONG if the result did not fit, -EINVAL on a format error
 */
int util_snprintf(char *buf, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/**
 * util_parse_long() - parse a whole string as a base-10 integer in [min, max]
 * Return: 0 with *@out set, -EINVAL (not a number, trailing bytes), -ERANGE
 */
int util_parse_long(const char *s, long min, long max, long *out);

/** util_parse_ulong_base() - like util_parse_long, unsigned, any base */
int util_parse_ulong_base(const char *s, int base, unsigned long max, unsigned long *out);

/**
 * util_read_file() - read a whole file, refusing files over @max bytes
 * @bufp: set to a malloc'd, NUL-terminated copy; the caller frees it
 * @lenp: set to the length without the NUL (may be NULL)
 * Return: 0, -EFBIG when over @max, or the errno of open/read
 */
int util_read_file(const char *path, size_t max, char **bufp, size_t *lenp);

/**
 * util_write_atomic() - write @path through a temporary file and rename(2)
 *
 * Readers see the old or the new content, never a mix; fsync'd before the
 * rename so a crash does not leave an empty file behind.
 */
int util_write_atomic(const char *path, const void *buf, size_t n, mode_t mode);

/** util_write_all() - write(2) until done or an error; EINTR retried */
int util_write_all(int fd, const void *buf, size_t n);

/** util_mkdir_p() - mkdir -p; existing directories are fine */
int util_mkdir_p(const char *path, mode_t mode);

/** util_rm_rf() - remove a tree without following symlinks; missing is fine */
int util_rm_rf(const char *path);

/**
 * util_data_dir() / util_cache_dir() / util_vm_dir() - hutch's directories
 *
 * $XDG_DATA_HOME/hutch (default ~/.local/share/hutch), $XDG_CACHE_HOME/hutch
 * (default ~/.cache/hutch), and <data>/vms/<name>.  Not created here.
 */
int util_data_dir(char *buf, size_t n);
int util_cache_dir(char *buf, size_t n);
int util_vm_dir(const char *name, char *buf, size_t n);

/** util_path_join() - "@a/@b" into @buf, refusing truncation */
int util_path_join(char *buf, size_t n, const char *a, const char *b);

/** util_monotonic_ms() - CLOCK_MONOTONIC in milliseconds */
uint64_t util_monotonic_ms(void);

/** util_set_cloexec() / util_set_nonblock() - fcntl helpers */
int util_set_cloexec(int fd, bool on);
int util_set_nonblock(int fd, bool on);

/**
 * util_print_tail() - print the last @lines lines of a file (console.log,
 * provision.log) to @out, each escaped with log_escape() because the bytes
 * may come from the guest.  Reads at most the last 64 KiB.
 * Return: 0 or a negative errno (missing file: -ENOENT, nothing printed)
 */
int util_print_tail(const char *path, int lines, FILE *out, const char *prefix);

/**
 * util_flock() - the one lock helper: flock(2) @path exclusively
 * @path:    a lock file (created 0600, never followed if a symlink) or a directory
 * @wait:    block until the lock is free; otherwise fail with -EBUSY at once
 * @waitmsg: with @wait, logged (info) once when the lock is taken by someone else
 *
 * The lock belongs to the open file: closing the returned fd (or the
 * process dying) releases it, so a kill -9 never leaves a lock behind.
 * Return: the locked CLOEXEC fd, or a negative errno (-EBUSY: held elsewhere)
 */
int util_flock(const char *path, bool wait, const char *waitmsg);

/** util_name_valid() - a VM name: [a-z0-9][a-z0-9-]{0,30} */
bool util_name_valid(const char *s);

#endif

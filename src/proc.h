/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_PROC_H
#define HUTCH_PROC_H
/**
 * DOC: proc - spawning external programs without a shell
 *
 * Every program hutch runs (qemu-system-x86_64, qemu-img, virtiofsd, ssh,
 * ansible-playbook, hooks) goes through proc_spawn(): an argv array, an
 * explicit environment, and an explicit list of fds the child inherits.
 * Every other fd is closed in the child (close_range), so nothing leaks
 * into QEMU or a hook by accident.  Children are watched through pidfds.
 */
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/**
 * struct proc_fdmap - one fd the child gets
 * @parent: fd in the parent
 * @child:  number it has in the child
 */
struct proc_fdmap {
	int parent;
	int child;
};

/**
 * struct proc_opts - how to start a child
 * @argv:      NULL-terminated; argv[0] is looked up in PATH if it has no '/'
 * @envp:      NULL-terminated environment; NULL means an empty one
 * @fds:       fds to pass (0, 1, 2 included: unmapped stdio goes to /dev/null)
 * @n_fds:     how many
 * @setsid:    start a new session (detached from the terminal)
 * @cwd:       directory to chdir to, or NULL
 * @want_pidfd: also return a pidfd for the child
 * @pdeathsig: signal the child gets when the spawning thread dies (0: none);
 *             QEMU gets SIGKILL so that a supervisor killed with -9 never
 *             leaves a guest running unsupervised
 */
struct proc_opts {
	const char *const *argv;
	const char *const *envp;
	const struct proc_fdmap *fds;
	size_t n_fds;
	bool setsid;
	const char *cwd;
	bool want_pidfd;
	int pdeathsig;
};

/**
 * proc_spawn() - start a child
 * @o:      options
 * @pidp:   set to the child's pid
 * @pidfdp: set to a CLOEXEC pidfd when @o->want_pidfd (else untouched)
 *
 * Return: 0, or a negative errno; exec failures in the child are reported
 * back through a CLOEXEC pipe, so a missing program fails here, not later.
 */
int proc_spawn(const struct proc_opts *o, pid_t *pidp, int *pidfdp);

/**
 * proc_wait() - wait for a child, retrying EINTR
 * Return: 0 with *@status set (as waitpid), or a negative errno
 */
int proc_wait(pid_t pid, int *status);

/**
 * proc_run() - run a program to completion, output captured
 * @argv:  NULL-terminated
 * @envp:  environment, or NULL for the default (proc_default_env())
 * @out:   if not NULL, set to malloc'd stdout+stderr (NUL-terminated), at most @max bytes kept
 * @max:   cap on captured output; the rest is read and dropped
 * @status: set to the wait status
 * Return: 0 (whatever the exit status), or a negative errno if it could not run
 */
int proc_run(const char *const *argv, const char *const *envp, char **out, size_t max,
	     int *status);

/** proc_exit_code() - exit code of a wait status, 128+signal when killed */
int proc_exit_code(int status);

/**
 * proc_default_env() - a minimal environment for tools hutch runs:
 * PATH, HOME, USER, LANG, TERM (when set), TMPDIR (when set).  Static storage.
 */
const char *const *proc_default_env(void);

/** proc_find_exe() - look @name up in PATH (and @extra dirs); 0 with @buf set */
int proc_find_exe(const char *name, const char *const *extra, char *buf, size_t n);

/** proc_pidfd_open() - pidfd_open(2) */
int proc_pidfd_open(pid_t pid);

#endif

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
 *
 * Least privilege (issue 10): whatever the guest can reach (QEMU, virtiofsd)
 * and whatever the project brings (hooks, ansible-playbook) never runs as
 * root.  struct proc_sandbox says, for every spawn site alike, who the
 * child becomes and how it is confined; proc_child() applies it between
 * fork() and execve() and fails the spawn (never runs the program) when a
 * step does not take.  Who "the user" is comes from proc_user_resolve():
 *
 *  - hutch runs as a normal user: that user (nothing to switch);
 *  - hutch runs as root under sudo: SUDO_UID/SUDO_GID and that user's groups;
 *  - hutch runs as plain root (CI, scripts): the system user "hutch-vm",
 *    created on first use.  It is not in group "hutch" (the group that may
 *    run hutch-helper), so a QEMU escape cannot reach the helper either.
 */
#include <stdbool.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

struct sock_fprog;

#define PROC_VM_USER "hutch-vm"
#define PROC_MAX_GROUPS 32

/**
 * struct proc_user - the unprivileged identity children run as
 * @uid, @gid:  ids to switch to
 * @groups:     supplementary groups (kvm, for /dev/kvm, is usually one)
 * @n_groups:   how many
 * @switch_ids: true when that is not who we are (hutch runs as root): the
 *              child then drops its capability bounding set and changes ids
 * @name:       for messages
 */
struct proc_user {
	uid_t uid;
	gid_t gid;
	gid_t groups[PROC_MAX_GROUPS];
	size_t n_groups;
	bool switch_ids;
	char name[40];
};

/**
 * proc_user_resolve() - who runs QEMU, virtiofsd, hooks and Ansible
 *
 * Resolved once per process and cached.  Under root, SUDO_UID must be a
 * positive decimal uid (a SUDO_UID of 0 counts as plain root); the user
 * "hutch-vm" is created with useradd(8) when missing.
 * Return: 0 with *@u set, or a negative errno (-ENOENT: no hutch-vm and it
 * could not be created); never falls back to root.
 */
int proc_user_resolve(struct proc_user *u);

/**
 * struct proc_sandbox - who a child becomes and how it is confined
 * @user:         switch to this user when @user->switch_ids (NULL: stay)
 * @no_new_privs: PR_SET_NO_NEW_PRIVS: no set-uid binary or file capability
 *                can raise the child or anything it runs again
 * @drop_caps:    empty the effective, permitted, inheritable and ambient
 *                sets (and the bounding set when we had the privilege),
 *                then read them back with libcap and refuse to exec if any
 *                bit is left
 * @nofile:       RLIMIT_NOFILE, soft and hard (0: unchanged)
 * @no_core:      RLIMIT_CORE 0: guest memory never lands in a core file
 * @mount_ro:     a private mount namespace in which every mount is read-only
 *                and only the system's are left (/, /usr, /etc, /dev, /proc,
 *                /sys...; other VMs' share images and /home, /tmp go); only
 *                when switching from root: it costs nothing there, a normal
 *                user would need a user namespace for it
 * @bind_src:     in a private mount namespace, bind this directory over
 *                @bind_dst, so that a child that cannot walk the path to it
 *                (root's 0700 dirs) still gets that one directory (root only)
 * @bind_dst:     where (an existing directory, e.g. "/tmp")
 * @userns_root:  start the child as root of a new user namespace whose uid
 *                0 is @user (virtiofsd: its sandbox needs CAP_SYS_ADMIN in
 *                some namespace; it drops every capability itself afterwards,
 *                see share/share.c).  Excludes @drop_caps.
 * @userns_map:   with @userns_root when hutch is not root: the child
 *                unshares its user namespace and waits while the parent
 *                calls @userns_map(child pid, @userns_arg), which has the
 *                maps written for it (share/: priv_userns_map(), the helper
 *                writes them without denying setgroups); the child then
 *                drops its supplementary groups itself before exec.  A
 *                callback's error fails the spawn with it.  NULL: the child
 *                maps itself and must deny setgroups first, which QEMU 7.2's
 *                virtiofsd refuses for a user who has supplementary groups
 * @userns_arg:   passed to @userns_map
 * @filter:       a seccomp filter installed last, just before exec (needs
 *                @no_new_privs); NULL: none
 */
struct proc_sandbox {
	const struct proc_user *user;
	bool no_new_privs;
	bool drop_caps;
	rlim_t nofile;
	bool no_core;
	bool mount_ro;
	const char *bind_src;
	const char *bind_dst;
	bool userns_root;
	int (*userns_map)(pid_t pid, void *arg);
	void *userns_arg;
	const struct sock_fprog *filter;
};

/**
 * proc_sandbox_guest() - the confinement of QEMU: @u, no_new_privs, no
 * capabilities, RLIMIT_NOFILE 4096, no core, read-only mount namespace
 */
void proc_sandbox_guest(struct proc_sandbox *sb, const struct proc_user *u);

/**
 * proc_sandbox_user() - hooks and ansible-playbook: @u, no_new_privs, no
 * capabilities, no core; the project's code runs with the user's rights,
 * never root's
 */
void proc_sandbox_user(struct proc_sandbox *sb, const struct proc_user *u);

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
 *             leaves a guest running unsupervised.  Set last, after every
 *             id change (the kernel clears it on each)
 * @sb:        confinement (NULL: none; the child runs as we do)
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
	const struct proc_sandbox *sb;
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

/**
 * struct proc_status - what /proc/<pid>/status says about a process's rights
 * @uid:     real uid (as seen from our user namespace)
 * @cap_eff: CapEff
 * @cap_bnd: CapBnd
 * @no_new_privs: NoNewPrivs
 * @ppid:    PPid (0 when absent)
 * @uids:    real, effective, saved and fs uid (-1 when absent): hutch-helper
 *           maps a user namespace only for a child whose four are the caller's
 */
struct proc_status {
	uid_t uid;
	unsigned long long cap_eff;
	unsigned long long cap_bnd;
	bool no_new_privs;
	pid_t ppid;
	uid_t uids[4];
};

/**
 * proc_status_read() - parse /proc/@pid/status (bounded; for inspect and tests)
 * Return: 0, or a negative errno (-ESRCH when the process is gone)
 */
int proc_status_read(pid_t pid, struct proc_status *st);

/** proc_status_parse() - the parser behind proc_status_read() (fuzzed) */
int proc_status_parse(const char *buf, size_t n, struct proc_status *st);

#endif

/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_VM_H
#define HUTCH_VM_H
/**
 * DOC: vm - what the lifecycle verbs and the supervisor share
 *
 * The VM a verb acts on (struct vm_target, resolved once by the
 * dispatcher), per-VM lock, supervisor liveness, the control socket protocol (one JSON
 * object per line each way: {"cmd": "status"|"halt"|"suspend"|"resume"|
 * "quit", "timeout": N} -> {"ok": true, ...} or {"ok": false, "error": "..."};
 * {"cmd": "save", "name": NAME} saves the running state, see src/warm.h),
 * and gc of what a dead supervisor left.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <limits.h>
#include <sys/types.h>

#include "src/cfg.h"

struct cli;

/**
 * struct vm_target - the VM a verb acts on, resolved once by cmd_run()
 * @cfg:    hutch.yaml of the project, or NULL when there is none and the
 *          VM was named (halt, destroy, status... of a VM by name)
 * @vm:     its config (NULL without @cfg)
 * @name:   the VM's name
 * @dir:    its state directory, $XDG_DATA_HOME/hutch/vms/<name> (may not exist)
 * @state:  state.json, read after the lock was taken; NULL when the VM
 *          was never created.  The target owns it.
 * @lock:   the VM lock's fd while the verb holds it, else -1
 * @alive:  the supervisor recorded in @state is alive (checked by its
 *          /proc cmdline, never by a bare kill(pid, 0))
 */
struct vm_target {
	struct cfg *cfg;
	const struct cfg_vm *vm;
	char name[CFG_NAME_MAX + 1];
	char dir[PATH_MAX];
	json_t *state;
	int lock;
	bool alive;
};

/**
 * vm_target_open() - resolve the VM @name (NULL: the project's only/first
 * VM) for a verb with needs @flags (CMD_F_* of src/cmd.h)
 * @t: filled; release with vm_target_close() whatever the result
 *
 * Order matters and is the point of having one function: the config is
 * loaded, then the lock taken, then state.json read and the supervisor's
 * liveness checked, so a verb never acts on state someone changed between
 * its read and its lock (gc and mount used to).
 * Return: EXIT_OK, or the exit code to return (the message is logged)
 */
int vm_target_open(struct cli *cli, const char *name, unsigned flags, struct vm_target *t);

/**
 * vm_target_by_dir() - a target for the VM directory <data>/vms/@name,
 * without a project (list, gc); @flags as for vm_target_open()
 * Return: EXIT_OK, or an exit code (EXIT_BUSY quietly when @flags has
 * CMD_F_LOCK and another command holds the lock)
 */
int vm_target_by_dir(const char *name, unsigned flags, struct vm_target *t);

/** vm_target_reload() - read state.json again (and liveness); 0 or a negative errno */
int vm_target_reload(struct vm_target *t);

/** vm_target_close() - free what the target holds and release its lock */
void vm_target_close(struct vm_target *t);

/** vm_root_dir() - <data>/vms, where every VM's directory lives */
int vm_root_dir(char *buf, size_t n);

/* How long the CLI waits for the supervisor to answer a control request */
#define VM_CTL_TIMEOUT_MS 10000

/* Largest control request or reply line */
#define VM_CTL_LINE_MAX 65536

/** vm_pid_is_supervisor() - @pid runs "hutch __supervise @vm_dir" */
bool vm_pid_is_supervisor(pid_t pid, const char *vm_dir);

/** vm_supervisor_alive() - state's supervisor_pid is a live supervisor of @vm_dir */
bool vm_supervisor_alive(const char *vm_dir, const json_t *st);

/**
 * vm_effective_status() - state's status, except that a VM whose
 * supervisor is gone while state says starting/running/paused is "crashed"
 */
const char *vm_effective_status(const char *vm_dir, const json_t *st);

/** vm_is_stale() - the supervisor died without cleaning up */
bool vm_is_stale(const char *vm_dir, const json_t *st);

/**
 * vm_gc() - undo what a dead supervisor left: every sv_ext .gc, stale
 * sockets and pid file, a QEMU that might have survived; state -> crashed
 * Return: 0, or the first error (every step is still tried)
 */
int vm_gc(const char *vm_dir, json_t *st);

/**
 * vm_control() - one request on <@vm_dir>/control.sock
 * @req:   the request (borrowed)
 * @resp:  set to the reply object (new reference)
 * @timeout_ms: for connecting, sending and the reply
 * Return: 0 (check "ok" in *@resp), or a negative errno (-ECONNREFUSED,
 * -ENOENT: no supervisor; -ETIMEDOUT; -EPROTO: a bad reply)
 */
int vm_control(const char *vm_dir, json_t *req, json_t **resp, int timeout_ms);

/**
 * vm_wait_pid_gone() - wait until @pid exits (pidfd), at most @timeout_ms
 * Return: 0 when gone, -ETIMEDOUT
 */
int vm_wait_pid_gone(pid_t pid, int timeout_ms);

/**
 * enum vm_ctl_cmd - what a control request asks for
 *
 * VM_CTL_LAST names the highest value, so that checks of a parsed command
 * (tests/fuzz/fuzz_ctl.c) follow when a verb is added.
 */
enum vm_ctl_cmd { VM_CTL_STATUS, VM_CTL_HALT, VM_CTL_QUIT, VM_CTL_SUSPEND, VM_CTL_RESUME,
		  VM_CTL_SAVE, VM_CTL_LAST = VM_CTL_SAVE };

/**
 * vm_ctl_parse() - one control request line (its '\n' excluded)
 * @line:      the bytes a client sent (untrusted: any user process that can
 *             reach control.sock, which is 0600, but still)
 * @n:         their length, at most VM_CTL_LINE_MAX
 * @cmd:       set to the command
 * @timeout_s: set to "timeout" when present and in 0..86400, else -1
 * Return: 0, -E2BIG over the bound, -EPROTO for anything else
 */
int vm_ctl_parse(const char *line, size_t n, enum vm_ctl_cmd *cmd, long *timeout_s);

/**
 * vm_halt_running() - ask a live supervisor to halt (ACPI, quit, kill) and
 * wait until it is gone; SIGTERM/SIGKILL when it does not answer
 * Return: 0, or a negative errno (-ETIMEDOUT)
 */
int vm_halt_running(const char *vm_dir, json_t *st, unsigned shutdown_s);

struct up_ctx;
/**
 * vm_stop() - halt @t's VM if it runs (or clean up after a dead
 * supervisor); @u->state is the state read under the lock, refreshed
 * @trigger: "halt", "destroy", "snapshot", "reload"... (messages)
 * Return: 0, or a negative errno
 */
int vm_stop(struct vm_target *t, struct up_ctx *u, const char *trigger);

/** vm_print_tails() - the ends of supervisor.log and console.log on stderr (escaped) */
void vm_print_tails(const char *vm_dir);

/**
 * vm_ctl_feed() - a control client's framing: take @n bytes it sent into
 * its line buffer
 * @buf, @cap: the client's buffer (at most VM_CTL_LINE_MAX)
 * @have:      bytes in @buf so far; updated
 * @in, @n:    what was read (untrusted: any split, any bytes)
 * @len:       set to the length of the complete line at @buf's start
 *             (its '\n' excluded) when the return is 1
 * Return: 1 a line is complete (bytes after it are dropped: one request
 * per connection), 0 more is needed, -E2BIG the buffer filled without a
 * newline (the client is not one of ours: close it)
 */
int vm_ctl_feed(char *buf, size_t cap, size_t *have, const char *in, size_t n, size_t *len);

/** vm_sock_path() - <@vm_dir>/@name checked against sun_path's size */
int vm_sock_path(const char *vm_dir, const char *name, char *buf, size_t n);

#endif

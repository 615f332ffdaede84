/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_VM_H
#define HUTCH_VM_H
/**
 * DOC: vm - what the lifecycle verbs and the supervisor share
 *
 * Per-VM lock, supervisor liveness, the control socket protocol (one JSON
 * object per line each way: {"cmd": "status"|"halt"|"suspend"|"resume"|
 * "quit", "timeout": N} -> {"ok": true, ...} or {"ok": false, "error": "..."};
 * {"cmd": "save", "name": NAME} saves the running state, see src/warm.h),
 * and gc of what a dead supervisor left.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Largest control request or reply line */
#define VM_CTL_LINE_MAX 65536

/**
 * vm_lock() - take <@vm_dir>/lock (flock, exclusive, non-blocking)
 * @fdp: set to the lock fd; closing it releases the lock
 * Return: 0, -EBUSY when another command holds it, or an errno
 */
int vm_lock(const char *vm_dir, int *fdp);

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

/** enum vm_ctl_cmd - what a control request asks for */
enum vm_ctl_cmd { VM_CTL_STATUS, VM_CTL_HALT, VM_CTL_QUIT, VM_CTL_SUSPEND, VM_CTL_RESUME,
		  VM_CTL_SAVE };

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

/** vm_sock_path() - <@vm_dir>/@name checked against sun_path's size */
int vm_sock_path(const char *vm_dir, const char *name, char *buf, size_t n);

#endif

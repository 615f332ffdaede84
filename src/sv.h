/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_SV_H
#define HUTCH_SV_H
/**
 * DOC: sv - the per-VM supervisor (`hutch __supervise <vm_dir>`)
 *
 * Started detached by `up` (own session, stdio on <vm_dir>/supervisor.log).
 * It runs the sv_ext .prepare hooks, spawns QEMU (which gets SIGKILL if the
 * supervisor dies, PR_SET_PDEATHSIG), talks QMP over an inherited
 * socketpair, and then polls: QEMU's pidfd, QMP events, the serial console
 * (to a bounded console.log, a history buffer, and the clients of
 * console.sock), control.sock (requests of the CLI, see src/vm.h), and the
 * fds extensions watch.  When QEMU exits, for any reason, the extensions
 * are torn down in reverse order, state.json says why, and it exits.
 * It is the only writer of state.json while it runs.
 */

/* console.log is rotated past this size, keeping one older file */
#define SV_CONSOLE_LOG_MAX (1024 * 1024)
/* bytes of console history sent to a client that attaches */
#define SV_CONSOLE_HISTORY 16384

/**
 * sv_run() - the supervisor's main; returns the process exit code
 * @vm_dir: the VM's directory, with state.json written by `up`
 */
int sv_run(const char *vm_dir);

#endif

/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_WARM_H
#define HUTCH_WARM_H
/**
 * DOC: warm - warm start: save a running VM, resume it instead of booting
 *
 * Saving (`snapshot save --running NAME`, or `warm: true` after the first
 * provisioning): the CLI unmounts the shares in the guest over SSH and asks
 * the supervisor ("save" on control.sock).  The supervisor unplugs the
 * virtiofs devices (vhost-user-fs cannot be migrated in QEMU 7.2), stops
 * the guest, has QEMU take an internal qcow2 snapshot of disk.qcow2
 * (blockdev-snapshot-internal-sync) and then migrate memory and device
 * state into a file it passed over QMP (getfd, `migrate fd:`), all while
 * the guest stays paused: disk and memory are of the same instant.  (A
 * live migration paused before the switch-over would pause the guest for
 * less; with QEMU 7.2's multi-threaded TCG its states did not always
 * resume, see warm_save_stopped().)
 * The devices are plugged back; the CLI mounts the shares again and steps
 * the guest clock.  QEMU runs with `-sandbox spawn=deny`, so an
 * `exec:` migration is not possible; an fd is.  The file is written as
 * NAME.vmstate.part and renamed when complete; the index entry (src/snap.h)
 * is written last, so a save killed at any point leaves the previous state
 * (or none) and an intact disk.
 *
 * Resuming (`up` of a halted VM whose index has a "resume" state): before
 * anything is prepared the supervisor checks that the state fits this
 * start: same QEMU binary, same cpus, memory, accel, firmware, kernel,
 * network mode and shares, the file complete and its checksum right.  Then
 * net/ is asked for the address the guest holds (state "net.addr"), and,
 * once QEMU's command line is built, it must equal the saved one (devices).
 * Only then is the disk reverted to the state's tag (`qemu-img snapshot
 * -a`) and QEMU started with `-S -incoming defer`, minus the virtiofs
 * devices; after the QMP handshake the file is handed over (getfd,
 * migrate-incoming), the virtiofs devices are plugged, and the vCPUs
 * continue.  Any mismatch or failure means a cold boot, with the reason in
 * state.json and on the terminal: before the revert the disk is as the
 * user left it; after it (a file that fails to load) the VM boots cold
 * from the state's disk, which is what it would have resumed.
 *
 * To be hot-pluggable, each virtiofs device sits on its own pcie-root-port
 * (q35's root bus is not hotplug-capable): warm_argv() rewrites the share
 * extension's "-device vhost-user-fs-pci,..." on every start, cold or warm,
 * to add the port and an id ("hutch-fsN" on "hutch-rpN").
 *
 * state.json, written by the supervisor: "start": {"kind": "warm"|"cold",
 * "reason": why a saved state was not used (absent when none applied),
 * "snapshot": the state resumed, "at": unix time, "load_ms": time to load}.
 *
 * Index entries of running states (src/snap.h "items"): "vmstate" (file
 * name), "tag" (internal snapshot in disk.qcow2), "size" and "sum"
 * (adler32) of the file, "qemu" (version) and "qemu_id" (binary path,
 * inode, size, mtime), "config" ({cpus, memory, accel, firmware, kernel,
 * mode, shares}), "argv" (QEMU's command line without the -incoming parts
 * and the user-mode SSH port), "addr" (the guest's address, mode nat),
 * "save_ms" (how long the guest was paused for the save).
 */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "images/disk.h"
#include "src/cmd.h"
#include "src/ext.h"
#include "src/qemu.h"
#include "src/snap.h"

struct qmp;

/**
 * struct warm_plan - the supervisor's warm-start state for one run
 * @active:  this start resumes @name (until a check says otherwise)
 * @tried:   the disk was reverted and QEMU got -incoming: a failure from
 *           here on needs a fresh cold start
 * @name:    the running state to resume
 * @reason:  why a saved state is not used ("" when none was to be used)
 * @item:    its index entry (own reference)
 * @devices: device_add properties of the virtiofs devices held back
 * @fsids:   ids of this start's virtiofs devices (for unplug at save)
 * @argv:    this start's normalized command line (for the saved entry)
 * @load_ms: time from spawn to running, warm
 */
struct warm_plan {
	bool active;
	bool tried;
	char name[SNAP_NAME_MAX + 1];
	char reason[256];
	json_t *item;
	json_t *devices;
	json_t *fsids;
	json_t *argv;
	unsigned long long load_ms;
};

/* ---- supervisor side (src/sv.c calls these) ---- */

/**
 * warm_plan() - decide whether this start resumes a running state; before
 * the extensions prepare.  Seeds state "net.addr" with the guest's address.
 */
void warm_plan(struct sv_ctx *c, struct warm_plan *p);

/**
 * warm_argv() - QEMU's built command line, adapted: virtiofs devices on
 * root ports; for a warm start the last checks, the disk revert, the
 * virtiofs devices held back and "-S -incoming defer" added
 * Return: 0, or a negative errno (-ENOMEM)
 */
int warm_argv(struct sv_ctx *c, struct warm_plan *p, struct qemu_argv *a);

/**
 * warm_incoming() - after the QMP handshake of a warm start: load the
 * state, plug the held-back devices, continue
 * Return: 0; an error means: discard this QEMU, start cold
 */
int warm_incoming(struct sv_ctx *c, struct warm_plan *p, struct qmp *q);

/** warm_fallback() - after a failed warm_incoming(): the next start is cold */
void warm_fallback(struct warm_plan *p, const char *why);

/** warm_record() - state.json "start" for the start that runs now */
void warm_record(struct sv_ctx *c, const struct warm_plan *p);

/**
 * warm_save() - the control request {"cmd": "save", "name": NAME}
 * @line, @n: the request line (untrusted)
 * Return: the reply object
 */
json_t *warm_save(struct sv_ctx *c, struct warm_plan *p, struct qmp *q, const char *line,
		  size_t n);

void warm_plan_free(struct warm_plan *p);

/**
 * warm_ctl_name() - the "name" of a save request line (untrusted bytes,
 * at most VM_CTL_LINE_MAX), checked with snap_name_valid()
 * Return: 0 with @name set, -EINVAL, -ENAMETOOLONG
 */
int warm_ctl_name(const char *line, size_t n, char *name, size_t sz);

/* ---- CLI side ---- */

/**
 * warm_resumed() - state.json says the last start resumed a running state
 * (the guest has booted, cloud-init has run: `up` waits for SSH only)
 */
bool warm_resumed(const json_t *state);

/**
 * warm_guest_ready() - `up` of a resumed guest: wait (timeouts.ssh) until
 * SSH answers, stepping the guest's clock and mounting its shares in that
 * first session; the ssh extension calls it instead of its own wait
 * Return: 0, or a negative errno (-ETIMEDOUT, -ESRCH: the VM stopped)
 */
int warm_guest_ready(struct up_ctx *u);

struct vm_target;
/**
 * warm_cli_save() - save the running VM's state as @name (@t's lock held,
 * t->state read under it)
 * Return: an exit code
 */
int warm_cli_save(const struct vm_target *t, const char *name);

/** the up extension: after a resume, clock and shares; `warm: true` saves after provisioning */
extern const struct up_ext warm_up_ext;
/** the supervisor extension: `inspect` shows the running states */
extern const struct sv_ext warm_sv_ext;

#endif

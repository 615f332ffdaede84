/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_ACCEL_H
#define HUTCH_ACCEL_H
/**
 * DOC: accel - KVM or TCG
 *
 * /dev/kvm being present, or even KVM_CREATE_VM succeeding, does not mean a
 * guest can run: some hosts (nested "kvm-pvm" set-ups) accept a VM that only
 * executes hlt and fail real guests.  So `accel: auto` boots a tiny probe
 * guest under KVM (long mode, higher-half paging, a timer interrupt, then
 * isa-debug-exit with a known code) and falls back to TCG unless that
 * really ran, within a deadline that a working KVM meets easily (on the
 * kvm-pvm host the probe crawls through in ~4 s and real kernels hang).  The result is cached per boot (keyed by boot_id) in the data
 * directory, so `up` pays the probe once.
 */
#include <stdbool.h>
#include <stddef.h>

#include "src/cfg.h"

enum accel_kind { ACCEL_TCG = 0, ACCEL_KVM };

/**
 * accel_decide() - the selection rule, without side effects
 * @want:     the config's accel
 * @kvm_ok:   whether the KVM probe succeeded (ignored for CFG_ACCEL_TCG)
 * @out:      set to the accelerator on success
 * Return: 0, or -ENODEV when KVM is forced but unusable
 */
int accel_decide(enum cfg_accel want, bool kvm_ok, enum accel_kind *out);

/**
 * accel_probe_kvm() - run the probe guest under KVM (cached per boot)
 * @why:  set to the reason when KVM is unusable ("" otherwise)
 * @n:    its size
 * Return: true when KVM runs real guests here
 */
bool accel_probe_kvm(char *why, size_t n);

/**
 * accel_select() - accel_decide() with the probe, printing the one-line
 * notice when `auto` falls back to TCG
 * Return: 0, or -ENODEV (KVM forced but unusable; the reason is logged)
 */
int accel_select(enum cfg_accel want, enum accel_kind *out);

/** accel_name() - "kvm" or "tcg" (what state.json records) */
const char *accel_name(enum accel_kind k);
/** accel_parse() - inverse of accel_name(); -EINVAL otherwise */
int accel_parse(const char *s, enum accel_kind *out);
/** accel_qemu_accel() / accel_qemu_cpu() - the -accel and -cpu values */
const char *accel_qemu_accel(enum accel_kind k);
const char *accel_qemu_cpu(enum accel_kind k);

#endif

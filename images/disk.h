/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_DISK_H
#define HUTCH_DISK_H
/**
 * DOC: disk - a VM's disk files: flattened copies, overlays, internal tags
 *
 * The snapshot verbs and warm start are built from a few qemu-img runs,
 * each chosen so that an interrupted run (kill -9, a full disk, a power
 * cut) never leaves a good file replaced by a half-written one:
 *
 *  - disk_flatten(): `qemu-img convert` into "<dst>.part", fsync, rename
 *    over <dst>, fsync of the directory.  The result has no backing file,
 *    so it survives `images rm` of the base and `snapshot rm` of any other
 *    snapshot.  This is how a snapshot is saved.
 *  - disk_overlay(): a new qcow2 over a backing file, made as "<dst>.part"
 *    and renamed over <dst>.  This is how a disk is rebuilt from a snapshot
 *    (reset, restore): O(1), and the old disk stays whole until the rename.
 *  - disk_commit(): the overlay's clusters written into its backing file,
 *    for `snapshot rm` of the snapshot the disk is based on; the overlay
 *    still reads the same until the caller renames the backing file over it.
 *  - disk_tag_*(): qcow2 internal snapshots ("tags"), the disk half of a
 *    warm state: taken by QEMU at the paused instant the memory is saved,
 *    applied by `qemu-img snapshot -a` before the VM is resumed.
 *
 * qemu-img always runs with PR_SET_PDEATHSIG, so a killed hutch never
 * leaves it writing on; argv arrays only.  All functions return 0 or a
 * negative errno, with the reason logged.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest internal snapshot tag hutch writes ("hutch-warm-NAME-TIME") */
#define DISK_TAG_MAX 128

/**
 * struct disk_info - what `qemu-img info` says about one image
 * @vsize:     virtual size in bytes (what the guest sees)
 * @allocated: bytes the file takes on the host ("actual-size", as du)
 * @backing:   the backing file name, "" when none
 * @format:    "qcow2", "raw", ...
 */
struct disk_info {
	uint64_t vsize;
	uint64_t allocated;
	char backing[4096];
	char format[16];
};

/**
 * disk_info() - `qemu-img info --output=json` of @path (-U: also while in use)
 * Return: 0, -ENOENT, or -EIO when qemu-img failed or said something odd
 */
int disk_info(const char *path, struct disk_info *out);

/**
 * disk_flatten() - standalone qcow2 copy of @src (and its backing chain) at @dst
 * @progress: let qemu-img draw its progress on stderr (a terminal)
 *
 * Written to "<dst>.part" (a leftover one from a killed run is replaced),
 * fsync'd and renamed over @dst only when complete.
 */
int disk_flatten(const char *src, const char *dst, bool progress);

/**
 * disk_overlay() - replace @dst by a new, empty qcow2 overlay on @backing
 * @backing: absolute path of the backing qcow2 (recorded as such)
 * @vsize:   virtual size; 0 or smaller than the backing file's: its size
 */
int disk_overlay(const char *backing, const char *dst, uint64_t vsize);

/** disk_commit() - write @overlay's data into its backing file (the overlay is kept) */
int disk_commit(const char *overlay);

/** disk_resize() - grow @path to @vsize bytes (never shrinks: -EINVAL) */
int disk_resize(const char *path, uint64_t vsize);

/**
 * disk_tag_valid() - a tag hutch would write: [A-Za-z0-9._-]{1,DISK_TAG_MAX-1}
 * (qemu-img takes the tag as one argv word; the bound keeps it in the
 * qcow2 header's limits and in our buffers)
 */
bool disk_tag_valid(const char *tag);

/** disk_tag_apply() - revert @path to its internal snapshot @tag (`qemu-img snapshot -a`) */
int disk_tag_apply(const char *path, const char *tag);

/** disk_tag_delete() - drop the internal snapshot @tag of @path; a missing one is fine */
int disk_tag_delete(const char *path, const char *tag);

/**
 * disk_tag_exists() - whether @path has an internal snapshot named @tag
 * Return: 1, 0, or a negative errno
 */
int disk_tag_exists(const char *path, const char *tag);

/**
 * disk_tags() - the internal snapshot tags of @path (those hutch could have
 * written: disk_tag_valid()), as a new JSON array of strings
 */
struct json_t;
int disk_tags(const char *path, struct json_t **names);

/**
 * disk_fsync_path() - fsync @path (a file or a directory)
 *
 * qemu-img does not fsync what it wrote; before a rename makes a file the
 * good copy its bytes must be on disk.
 */
int disk_fsync_path(const char *path);

/**
 * disk_users() - the VMs whose disk.qcow2 is based on @image, directly or
 * through a chain of backing files (at most 16 deep)
 * @image: absolute path (compared after realpath())
 * @names: array the VM names are appended to
 * Return: how many, or a negative errno
 */
int disk_users(const char *image, struct json_t *names);

#endif

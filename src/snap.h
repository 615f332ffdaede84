/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_SNAP_H
#define HUTCH_SNAP_H
/**
 * DOC: snap - a VM's snapshots: files and their index
 *
 * Files in the VM's directory:
 *   snapshot.qcow2              the anchor (`hutch snapshot`, `hutch reset`)
 *   snapshots/NAME.qcow2        a named disk snapshot (`snapshot save NAME`)
 *   snapshots/NAME.vmstate      a running state's memory and devices
 *                               (`snapshot save --running NAME`); its disk
 *                               half is the internal qcow2 snapshot "tag"
 *                               inside disk.qcow2, taken at the same instant
 *   snapshots/index.json        what is not in the files themselves
 *
 * Disk snapshots are external, flattened, standalone qcow2 files (no
 * backing file), saved through a temporary file and rename(2), so a save
 * is atomic: an interrupted one leaves the previous file as it was.  A
 * restore builds a new overlay on the snapshot under a temporary name and
 * renames it over disk.qcow2: atomic too, and O(1).  Internal qcow2
 * snapshots were the other choice; they were not taken for disk snapshots
 * because `qemu-img snapshot -a` rewrites the active L1 table and
 * refcounts in place (an interrupted apply can leave the image needing
 * repair), they live inside disk.qcow2 (gone with a reset, tied to the base
 * image through its backing file) and their space is never given back.
 * Running states do use one, because QEMU must take the disk half at the
 * paused instant the memory is saved, while the disk is open: that is
 * blockdev-snapshot-internal-sync.
 *
 * index.json (written atomically, read as untrusted input: every field is
 * type-checked and a malformed entry is dropped, see snap_index_parse()):
 *   {"current": NAME|"anchor"|null,  the snapshot the disk was last saved
 *                                    to or restored from (a save's parent)
 *    "resume": NAME|null,            the running state the next `up` resumes
 *    "stack": [NAME, ...],           push/pop, oldest first
 *    "anchor": {"created_at", "parent"},
 *    "items": {NAME: {"kind": "disk"|"running", "created_at": T,
 *                     "parent": NAME|null, and for "running" the fields of
 *                     src/warm.h (vmstate, tag, size, sum, qemu, ...)}}}
 * The index is written by the CLI under the VM's lock, and by the
 * supervisor only while it runs a save the CLI asked for under that lock.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>

/* Largest index.json read */
#define SNAP_INDEX_MAX (1024 * 1024)
/* Longest snapshot name */
#define SNAP_NAME_MAX 64

/** snap_name_valid() - [A-Za-z0-9][A-Za-z0-9._-]{0,63}, and not "anchor" */
bool snap_name_valid(const char *name);

/**
 * snap_index_parse() - index.json from untrusted bytes
 * @buf, @n: the file's bytes
 * @out:     set to a normalized index (every member present, right types)
 *
 * Return: 0, -EINVAL when it is not a JSON object (the caller may then
 * start from an empty index and say so)
 */
int snap_index_parse(const char *buf, size_t n, json_t **out);

/** snap_index_new() - an empty index (new reference) */
json_t *snap_index_new(void);

/** snap_index_load() - <vm_dir>/snapshots/index.json, an empty index when there is none */
int snap_index_load(const char *vm_dir, json_t **out);

/** snap_index_save() - write it atomically (creates snapshots/) */
int snap_index_save(const char *vm_dir, const json_t *idx);

/** snap_item() - the entry of @name in the index, or NULL (borrowed) */
json_t *snap_item(const json_t *idx, const char *name);

/** snap_item_kind() - "disk" or "running" */
const char *snap_item_kind(const json_t *item);

/** snap_set_str() - set member @key of @o to @val, or to null when @val is NULL */
void snap_set_str(json_t *o, const char *key, const char *val);

/**
 * snap_path() - path of a snapshot file
 * @name: a valid name, or "anchor" for snapshot.qcow2
 * @ext:  "qcow2" or "vmstate" (ignored for the anchor)
 */
int snap_path(const char *vm_dir, const char *name, const char *ext, char *buf, size_t n);

/** snap_disk_path() - <vm_dir>/disk.qcow2 */
int snap_disk_path(const char *vm_dir, char *buf, size_t n);

/**
 * snap_drop_running() - forget every running state (their tags were in a
 * disk.qcow2 that was just replaced): remove their .vmstate files and
 * entries, clear "resume".  Does not save the index.
 */
void snap_drop_running(const char *vm_dir, json_t *idx);

/**
 * snap_rebuild() - disk.qcow2 of a halted VM as a new overlay on @backing
 * (a snapshot file), grown to @vsize bytes (0: the snapshot's size); the
 * running states die with the old disk (snap_drop_running(), index not saved)
 * Return: 0, or a negative errno (logged)
 */
int snap_rebuild(const char *vm_dir, json_t *idx, const char *backing, uint64_t vsize);

/**
 * snap_summary() - what `hutch status` shows of snapshots and the last start:
 * "snapshot" (the anchor's time, or "none"), "snapshot_size" (bytes), "start"
 * ("warm" or "cold"), "start_reason" (why a saved state was not resumed)
 * @st: state.json (borrowed); @o: the status object, filled
 */
void snap_summary(const char *vm_dir, const json_t *st, json_t *o);

#endif

// SPDX-License-Identifier: MIT
/*
 * Snapshot files and index.json; see snap.h.
 */
#include "src/snap.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "images/disk.h"
#include "src/log.h"
#include "src/util.h"

bool snap_name_valid(const char *name)
{
	size_t i;

	if (!name || !((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z') ||
		       (name[0] >= '0' && name[0] <= '9')))
		return false;
	for (i = 1; name[i]; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
		      (name[i] >= '0' && name[i] <= '9') || name[i] == '.' || name[i] == '_' ||
		      name[i] == '-'))
			return false;
	return i <= SNAP_NAME_MAX && strcmp(name, "anchor") != 0;
}

json_t *snap_index_new(void)
{
	return json_pack("{s:n, s:n, s:[], s:n, s:{}}", "current", "resume", "stack", "anchor",
			 "items");
}

void snap_set_str(json_t *o, const char *key, const char *val)
{
	json_object_set_new(o, key, val ? json_string(val) : json_null());
}

/* a string member that is a snapshot name (or "anchor" when @anchor_ok), else NULL */
static const char *snap_get_name(const json_t *o, const char *key, bool anchor_ok)
{
	const json_t *v = json_object_get(o, key);
	const char *s = json_is_string(v) ? json_string_value(v) : NULL;

	if (s && (snap_name_valid(s) || (anchor_ok && !strcmp(s, "anchor"))))
		return s;
	return NULL;
}

/* keep an item only when its fields have the types readers rely on */
static json_t *snap_item_clean(const json_t *it)
{
	const json_t *kind = json_object_get(it, "kind"), *t = json_object_get(it, "created_at");
	json_t *o;

	if (!json_is_object(it) || !json_is_string(kind) || !json_is_integer(t))
		return NULL;
	if (strcmp(json_string_value(kind), "disk") && strcmp(json_string_value(kind), "running"))
		return NULL;
	/* warm.c checks the running-state fields itself, when it uses them */
	o = json_deep_copy(it);
	if (o)
		snap_set_str(o, "parent", snap_get_name(it, "parent", true));
	return o;
}

int snap_index_parse(const char *buf, size_t n, json_t **out)
{
	json_t *in = json_loadb(buf, n, JSON_REJECT_DUPLICATES, NULL), *idx, *items, *v;
	const char *k;
	size_t i;

	if (!json_is_object(in)) {
		json_decref(in);
		return -EINVAL;
	}
	idx = snap_index_new();
	if (!idx) {
		json_decref(in);
		return -ENOMEM;
	}
	items = json_object_get(idx, "items");
	json_object_foreach(json_object_get(in, "items"), k, v) {
		json_t *c;

		if (!snap_name_valid(k) || !(c = snap_item_clean(v)))
			continue;
		json_object_set_new(items, k, c);
	}
	snap_set_str(idx, "current", snap_get_name(in, "current", true));
	k = snap_get_name(in, "resume", false);
	snap_set_str(idx, "resume", k && json_object_get(items, k) ? k : NULL);
	json_array_foreach(json_object_get(in, "stack"), i, v)
		if (json_is_string(v) && json_object_get(items, json_string_value(v)))
			json_array_append(json_object_get(idx, "stack"), v);
	v = json_object_get(in, "anchor");
	if (json_is_object(v) && json_is_integer(json_object_get(v, "created_at"))) {
		json_t *a = json_pack("{s:O}", "created_at", json_object_get(v, "created_at"));

		snap_set_str(a, "parent", snap_get_name(v, "parent", false));
		json_object_set_new(idx, "anchor", a);
	}
	json_decref(in);
	*out = idx;
	return 0;
}

static int snap_index_path(const char *vm_dir, char *buf, size_t n)
{
	return util_snprintf(buf, n, "%s/snapshots/index.json", vm_dir);
}

int snap_index_load(const char *vm_dir, json_t **out)
{
	char path[PATH_MAX], *buf = NULL;
	size_t len;
	int rc = snap_index_path(vm_dir, path, sizeof(path));

	if (rc)
		return rc;
	rc = util_read_file(path, SNAP_INDEX_MAX, &buf, &len);
	if (rc == -ENOENT) {
		*out = snap_index_new();
		return *out ? 0 : -ENOMEM;
	}
	if (rc) {
		log_errno(rc, "%s", path);
		return rc;
	}
	rc = snap_index_parse(buf, len, out);
	free(buf);
	if (rc == -EINVAL) {
		log_warn("%s is not a JSON object: starting an empty index", path);
		*out = snap_index_new();
		rc = *out ? 0 : -ENOMEM;
	}
	return rc;
}

int snap_index_save(const char *vm_dir, const json_t *idx)
{
	char path[PATH_MAX], dir[PATH_MAX], *txt;
	int rc;

	if ((rc = snap_index_path(vm_dir, path, sizeof(path))) ||
	    (rc = util_path_join(dir, sizeof(dir), vm_dir, "snapshots")) ||
	    (rc = util_mkdir_p(dir, 0700)))
		return rc;
	txt = json_dumps(idx, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (!txt)
		return -ENOMEM;
	rc = util_write_atomic(path, txt, strlen(txt), 0600);
	free(txt);
	if (rc)
		log_errno(rc, "%s", path);
	return rc;
}

json_t *snap_item(const json_t *idx, const char *name)
{
	json_t *it = json_object_get(json_object_get(idx, "items"), name);

	return json_is_object(it) ? it : NULL;
}

const char *snap_item_kind(const json_t *item)
{
	const char *k = json_string_value(json_object_get(item, "kind"));

	return k && !strcmp(k, "running") ? "running" : "disk";
}

int snap_path(const char *vm_dir, const char *name, const char *ext, char *buf, size_t n)
{
	if (!strcmp(name, "anchor"))
		return util_path_join(buf, n, vm_dir, "snapshot.qcow2");
	if (!snap_name_valid(name))
		return -EINVAL;
	return util_snprintf(buf, n, "%s/snapshots/%s.%s", vm_dir, name, ext);
}

int snap_disk_path(const char *vm_dir, char *buf, size_t n)
{
	return util_path_join(buf, n, vm_dir, "disk.qcow2");
}

void snap_drop_running(const char *vm_dir, json_t *idx)
{
	json_t *items = json_object_get(idx, "items"), *it, *stack;
	const char *k;
	void *tmp;
	char path[PATH_MAX];
	size_t i;

	json_object_foreach_safe(items, tmp, k, it) {
		if (strcmp(snap_item_kind(it), "running"))
			continue;
		if (snap_path(vm_dir, k, "vmstate", path, sizeof(path)) == 0)
			unlink(path);
		json_object_del(items, k);
	}
	stack = json_object_get(idx, "stack");
	for (i = json_array_size(stack); i-- > 0;)
		if (!json_object_get(items, json_string_value(json_array_get(stack, i))))
			json_array_remove(stack, i);
	snap_set_str(idx, "resume", NULL);
}

int snap_rebuild(const char *vm_dir, json_t *idx, const char *backing, uint64_t vsize)
{
	char disk[PATH_MAX];
	int rc = snap_disk_path(vm_dir, disk, sizeof(disk));

	if (!rc)
		rc = disk_overlay(backing, disk, vsize);
	if (rc) {
		log_errno(rc, "rebuilding %s on %s", disk, backing);
		return rc;
	}
	snap_drop_running(vm_dir, idx);
	return 0;
}

void snap_summary(const char *vm_dir, const json_t *st, json_t *o)
{
	const json_t *start = json_object_get(st, "start");
	char path[PATH_MAX], when[32];
	struct stat sb;
	struct tm tm;

	if (snap_path(vm_dir, "anchor", NULL, path, sizeof(path)) == 0 && stat(path, &sb) == 0) {
		gmtime_r(&sb.st_mtime, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		json_object_set_new(o, "snapshot", json_string(when));
		json_object_set_new(o, "snapshot_size", json_integer((json_int_t)sb.st_size));
	} else {
		json_object_set_new(o, "snapshot", json_string("none"));
	}
	if (json_is_string(json_object_get(start, "kind")))
		json_object_set(o, "start", json_object_get(start, "kind"));
	if (json_is_string(json_object_get(start, "reason")))
		json_object_set(o, "start_reason", json_object_get(start, "reason"));
}

// SPDX-License-Identifier: MIT
/*
 * `hutch storage`: where the disk space goes, without a project dir.
 * Sizes are as `qemu-img info` (virtual size) and `du` (allocated bytes:
 * st_blocks * 512) report them, so the two can be compared directly.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "images/disk.h"
#include "images/img.h"
#include "src/cmd.h"
#include "src/log.h"
#include "src/snap.h"
#include "src/state.h"
#include "src/util.h"
#include "src/vm.h"

/* {"path", "size", "allocated"} of one file; NULL when it does not exist */
static json_t *stor_file(const char *path, bool image)
{
	struct disk_info di;
	struct stat sb;
	uint64_t size;

	if (stat(path, &sb) < 0 || !S_ISREG(sb.st_mode))
		return NULL;
	size = (uint64_t)sb.st_size;
	if (image && disk_info(path, &di) == 0)
		size = di.vsize;
	return json_pack("{s:s, s:I, s:I}", "path", path, "size", (json_int_t)size, "allocated",
			 (json_int_t)((uint64_t)sb.st_blocks * 512));
}

static uint64_t stor_alloc(const json_t *f)
{
	return (uint64_t)json_integer_value(json_object_get(f, "allocated"));
}

/* bytes allocated under @dir, symlinks not followed (as du) */
static uint64_t stor_du(const char *dir)
{
	struct dirent *de;
	uint64_t total = 0;
	DIR *d = opendir(dir);
	char p[PATH_MAX];
	struct stat sb;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    util_path_join(p, sizeof(p), dir, de->d_name) || lstat(p, &sb) < 0)
			continue;
		total += (uint64_t)sb.st_blocks * 512;
		if (S_ISDIR(sb.st_mode))
			total += stor_du(p);
	}
	closedir(d);
	return total;
}

/* the snapshots of one VM: anchor, named disks, running states */
static json_t *stor_snapshots(const char *vm_dir, uint64_t *sum)
{
	json_t *arr = json_array(), *idx = NULL, *it, *f;
	char path[PATH_MAX];
	const char *k;

	if (!snap_path(vm_dir, "anchor", NULL, path, sizeof(path)) && (f = stor_file(path, true))) {
		json_object_set_new(f, "name", json_string("anchor"));
		json_object_set_new(f, "kind", json_string("anchor"));
		*sum += stor_alloc(f);
		json_array_append_new(arr, f);
	}
	if (snap_index_load(vm_dir, &idx))
		return arr;
	json_object_foreach(json_object_get(idx, "items"), k, it) {
		bool running = !strcmp(snap_item_kind(it), "running");

		if (snap_path(vm_dir, k, running ? "vmstate" : "qcow2", path, sizeof(path)) ||
		    !(f = stor_file(path, !running)))
			continue;
		json_object_set_new(f, "name", json_string(k));
		json_object_set_new(f, "kind", json_string(snap_item_kind(it)));
		*sum += stor_alloc(f);
		json_array_append_new(arr, f);
	}
	json_decref(idx);
	return arr;
}

/* the share images a VM's last start recorded (state.json "shares") */
static json_t *stor_shares(const json_t *st, uint64_t *sum)
{
	json_t *arr = json_array(), *e, *f;
	size_t i;

	json_array_foreach(json_object_get(st, "shares"), i, e) {
		const char *img = state_get_str(e, "image");

		if (!img || img[0] != '/' || !(f = stor_file(img, false)))
			continue;
		json_object_set_new(f, "tag", json_string(state_get_str(e, "tag") ?: ""));
		*sum += stor_alloc(f);
		json_array_append_new(arr, f);
	}
	return arr;
}

/* one VM's files; @st: its state.json (NULL: none) */
static json_t *stor_vm(const char *vm_dir, const char *name, const json_t *st,
		       uint64_t *shares_total)
{
	json_t *o, *disk;
	char path[PATH_MAX];
	uint64_t snaps = 0, shares = 0, all = stor_du(vm_dir);
	struct stat sb;

	if (lstat(vm_dir, &sb) == 0)
		all += (uint64_t)sb.st_blocks * 512;	/* du counts the directory itself */

	o = json_pack("{s:s, s:s}", "name", name, "dir", vm_dir);
	snap_set_str(o, "project", state_get_str(st, "project"));
	disk = snap_disk_path(vm_dir, path, sizeof(path)) ? NULL : stor_file(path, true);
	if (disk) {
		struct disk_info di;

		if (disk_info(path, &di) == 0)
			snap_set_str(disk, "backing", di.backing[0] ? di.backing : NULL);
		json_object_set_new(o, "disk", disk);
	} else {
		json_object_set_new(o, "disk", json_null());
	}
	json_object_set_new(o, "snapshots", stor_snapshots(vm_dir, &snaps));
	json_object_set_new(o, "shares", stor_shares(st, &shares));
	json_object_set_new(o, "snapshots_allocated", json_integer((json_int_t)snaps));
	json_object_set_new(o, "shares_allocated", json_integer((json_int_t)shares));
	/* the VM dir (disk, snapshots, seed, logs) + its share images, which live elsewhere */
	json_object_set_new(o, "allocated", json_integer((json_int_t)(all + shares)));
	*shares_total += shares;
	return o;
}

static bool stor_side_file(const char *f)
{
	static const char *const ext[] = { ".sha256", ".source", ".verified", ".sums", ".lock" };
	size_t n = strlen(f);

	for (size_t i = 0; i < UTIL_ARRAY_SIZE(ext); i++)
		if (n > strlen(ext[i]) && !strcmp(f + n - strlen(ext[i]), ext[i]))
			return true;
	return f[0] == '.' || !strncmp(f, "build-", 6) || strstr(f, ".tmp.");
}

/* the cache: images (with their users) and partial downloads */
static void stor_images(json_t *out, uint64_t *img_total, uint64_t *part_total)
{
	json_t *imgs = json_array(), *parts = json_array(), *f;
	char dir[PATH_MAX], p[PATH_MAX];
	struct dirent *de;
	DIR *d = img_cache_dir(dir, sizeof(dir)) ? NULL : opendir(dir);

	while (d && (de = readdir(d))) {
		size_t n = strlen(de->d_name);
		bool part = n > 5 && !strcmp(de->d_name + n - 5, ".part");

		if ((!part && stor_side_file(de->d_name)) || util_path_join(p, sizeof(p), dir, de->d_name) ||
		    !(f = stor_file(p, !part)))
			continue;
		if (part) {
			struct stat sb;

			if (stat(p, &sb) == 0)
				json_object_set_new(f, "age_s", json_integer((json_int_t)(time(NULL) - sb.st_mtime)));
			*part_total += stor_alloc(f);
			json_array_append_new(parts, f);
			continue;
		}
		json_object_set_new(f, "name", json_string(de->d_name));
		json_object_set_new(f, "used_by", json_array());
		disk_users(p, json_object_get(f, "used_by"));
		*img_total += stor_alloc(f);
		json_array_append_new(imgs, f);
	}
	if (d)
		closedir(d);
	json_object_set_new(out, "images", imgs);
	json_object_set_new(out, "partial", parts);
}

static void stor_print_row(const char *what, const json_t *f)
{
	char a[32], b[32];

	util_human_size((uint64_t)json_integer_value(json_object_get(f, "size")), a, sizeof(a));
	util_human_size(stor_alloc(f), b, sizeof(b));
	printf("  %-30s %9s %9s  %s\n", what, a, b, state_get_str(f, "path") ?: "");
}

static void stor_print(const json_t *o)
{
	const json_t *v, *f, *tot = json_object_get(o, "total");
	char h[32], name[300];
	size_t i, j;

	printf("%-32s %9s %9s\n", "IMAGES", "SIZE", "ON DISK");
	json_array_foreach(json_object_get(o, "images"), i, f) {
		char *users = json_dumps(json_object_get(f, "used_by"), JSON_COMPACT);

		snprintf(name, sizeof(name), "%s used by %s", state_get_str(f, "name"), users ?: "[]");
		stor_print_row(name, f);
		free(users);
	}
	json_array_foreach(json_object_get(o, "vms"), i, v) {
		util_human_size((uint64_t)json_integer_value(json_object_get(v, "allocated")), h, sizeof(h));
		printf("\nVM %s (%s on disk, %s)\n", state_get_str(v, "name"), h,
		       state_get_str(v, "project") ?: "no project");
		if (json_is_object(json_object_get(v, "disk")))
			stor_print_row("disk", json_object_get(v, "disk"));
		json_array_foreach(json_object_get(v, "snapshots"), j, f) {
			snprintf(name, sizeof(name), "snapshot %s (%s)", state_get_str(f, "name"),
				 state_get_str(f, "kind"));
			stor_print_row(name, f);
		}
		json_array_foreach(json_object_get(v, "shares"), j, f) {
			snprintf(name, sizeof(name), "share %s", state_get_str(f, "tag"));
			stor_print_row(name, f);
		}
	}
	json_array_foreach(json_object_get(o, "partial"), i, f) {
		if (!i)
			printf("\nUNFINISHED DOWNLOADS (hutch images prune)\n");
		stor_print_row("", f);
	}
	util_human_size((uint64_t)state_get_int(tot, "all", 0), h, sizeof(h));
	printf("\ntotal on disk: %s", h);
	util_human_size((uint64_t)state_get_int(tot, "images", 0), h, sizeof(h));
	printf(" (images %s", h);
	util_human_size((uint64_t)state_get_int(tot, "vms", 0), h, sizeof(h));
	printf(", VMs %s", h);
	util_human_size((uint64_t)state_get_int(tot, "shares", 0), h, sizeof(h));
	printf(" of which shares %s)\n", h);
}

/* every VM of this user, as `hutch list` finds them (state read as it reads it) */
static json_t *stor_vms(uint64_t *vm_total, uint64_t *shares)
{
	json_t *arr = json_array();
	struct dirent **ents = NULL;
	char vms[PATH_MAX];
	int n;

	if (!arr || vm_root_dir(vms, sizeof(vms)))
		return arr;
	n = scandir(vms, &ents, NULL, alphasort);
	for (int i = 0; i < n; i++) {
		struct vm_target t;
		json_t *v;

		/* a directory without state.json (a creation that failed) still takes space */
		if (util_name_valid(ents[i]->d_name)) {
			(void)vm_target_by_dir(ents[i]->d_name, 0, &t);
			if (t.dir[0]) {
				v = stor_vm(t.dir, t.name, t.state, shares);
				*vm_total += (uint64_t)json_integer_value(json_object_get(v, "allocated"));
				json_array_append_new(arr, v);
			}
			vm_target_close(&t);
		}
		free(ents[i]);
	}
	free(ents);
	return arr;
}

static int cmd_storage(struct cli *cli, struct vm_target *t, int argc, char **argv)
{
	uint64_t img_total = 0, part_total = 0, vm_total = 0, shares = 0;
	json_t *o;

	(void)t;
	(void)argv;
	if (argc > 1)
		return cmd_usage(&cmd_storage_entry);
	o = json_object();
	if (!o)
		return EXIT_ERR;
	stor_images(o, &img_total, &part_total);
	json_object_set_new(o, "vms", stor_vms(&vm_total, &shares));
	json_object_set_new(o, "total",
			    json_pack("{s:I, s:I, s:I, s:I, s:I}", "images", (json_int_t)img_total,
				      "partial", (json_int_t)part_total, "vms", (json_int_t)vm_total,
				      "shares", (json_int_t)shares, "all",
				      (json_int_t)(img_total + part_total + vm_total)));
	if (cli->json)
		return cmd_print_json(o) ? EXIT_ERR : EXIT_OK;
	stor_print(o);
	json_decref(o);
	return EXIT_OK;
}

static const char storage_help[] =
	"Disk space used by hutch, for all VMs of this user (no project directory\n"
	"needed):\n"
	"  - base images in the cache, and which VMs' disks are based on each;\n"
	"  - per VM: its disk, its snapshots (the anchor, named ones, running states),\n"
	"    its shared-folder images, and everything else in its directory;\n"
	"  - downloads left unfinished (.part), which 'hutch images prune' removes\n"
	"    once they are a day old;\n"
	"  - totals.\n"
	"Each file has its logical size (what the guest sees, as qemu-img info says)\n"
	"and its allocated size (what it takes on the host, as du says).\n"
	"\n"
	"Example:\n"
	"  hutch storage --json | jq '.total'\n";

const struct cmd_entry cmd_storage_entry = {
	.name = "storage",
	.usage = "",
	.summary = "disk space used by VMs, snapshots and images (--json)",
	.help = storage_help,
	.fn = cmd_storage,
};

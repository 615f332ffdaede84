// SPDX-License-Identifier: MIT
/*
 * `hutch snapshot [save|restore|list|rm NAME | push | pop] [--running]`
 * (`hutch reset`: src/cmd_reset.c).  Files and the index: src/snap.h; disk operations:
 * images/disk.h; running states (--running): src/warm.h.
 *
 * Everything here runs under the VM's lock (CMD_F_LOCK), and a running VM is halted
 * through vm_halt_locked() (pre-down hook included) before its disk is
 * read or replaced: a disk that QEMU writes to has no consistent copy.
 * `--running` is the exception: QEMU itself saves memory and disk at one
 * paused instant, and the VM goes on running.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "images/disk.h"
#include "src/cfg.h"
#include "src/cmd.h"
#include "src/log.h"
#include "src/snap.h"
#include "src/state.h"
#include "src/util.h"
#include "src/vm.h"
#include "src/warm.h"

static const char snapshot_help[] =
	"Without a subcommand: run the pre-down hook (its failure stops the snapshot),\n"
	"halt the VM and save a flattened, standalone copy of its disk (no backing\n"
	"file, so it survives 'hutch images rm') as the VM's snapshot. The VM stays\n"
	"down; 'hutch reset' goes back to it. The copy is written to a temporary file\n"
	"and renamed into place: an interrupted snapshot never replaces a good one. A\n"
	"progress bar is shown on a terminal.\n"
	"\n"
	"Named snapshots, as in Vagrant (NAME: 1..64 of A-Z a-z 0-9 . _ -):\n"
	"  save NAME     halt the VM, save its disk as NAME, start it again if it ran\n"
	"  save NAME --running\n"
	"                save memory, devices and disk of the running VM at one paused\n"
	"                instant (a warm state); the VM goes on running, and the next\n"
	"                'hutch up' of the halted VM resumes that state in seconds\n"
	"                instead of booting (what was written after the save is dropped\n"
	"                then, as by reset). Shared folders are unmounted in the guest\n"
	"                for the save and mounted again after it (over SSH).\n"
	"  restore NAME  halt, go back to NAME, and start the VM\n"
	"  list          name, kind (disk|running), size, time and parent (--json)\n"
	"  rm NAME       remove NAME (a disk based on it keeps its data)\n"
	"  push          save under a generated name, on a stack (--running too)\n"
	"  pop           restore the last pushed snapshot and remove it\n"
	"\n"
	"Options:\n"
	"  --running     with save and push: a warm state of the running VM\n"
	"  --no-start    with save, restore and pop: leave the VM halted\n"
	"  --no-delete   with pop: keep the snapshot\n"
	"\n"
	"Positional arguments are subcommands and snapshot names: with several VMs in\n"
	"hutch.yaml, pick one with --vm NAME.\n"
	"\n"
	"Exit codes: 78 when there is nothing to act on (no disk yet, no such snapshot,\n"
	"pop with an empty stack, --running of a halted VM).\n"
	"\n"
	"Examples:\n"
	"  hutch up && hutch ssh        # set things up by hand\n"
	"  hutch snapshot               # keep that state; 'hutch reset' returns to it\n"
	"  hutch snapshot save clean --running && hutch halt && hutch up   # warm up\n"
	"  hutch --vm db snapshot list --json\n";

/**
 * struct snapcmd - one snapshot command; owns @idx
 * @cli:      global options
 * @t:        the VM, locked, state read under the lock (the dispatcher's)
 * @idx:      snapshots/index.json
 * @disk:     <dir>/disk.qcow2
 * @name:     NAME of the subcommand, or NULL
 * @no_start, @no_delete, @warm: the options
 */
struct snapcmd {
	struct cli *cli;
	struct vm_target *t;
	json_t *idx;
	char disk[PATH_MAX];
	const char *name;
	bool no_start, no_delete, warm;
};

/* drop the internal snapshots "hutch-warm-*" of disk.qcow2 that no entry names */
static void sc_gc_tags(struct snapcmd *c)
{
	json_t *tags = NULL, *t, *it;
	const char *k;
	size_t i;

	if (disk_tags(c->disk, &tags))
		return;
	json_array_foreach(tags, i, t) {
		const char *tag = json_string_value(t);
		bool used = false;

		if (strncmp(tag, "hutch-warm-", 11))
			continue;
		json_object_foreach(json_object_get(c->idx, "items"), k, it)
			used |= !strcmp(json_string_value(json_object_get(it, "tag")) ?: "", tag);
		if (!used && disk_tag_delete(c->disk, tag) == 0)
			log_debug("dropped the unused disk tag %s", tag);
	}
	json_decref(tags);
}

/*
 * Refuse (78) a VM that has no disk, read the index, drop unused disk tags
 * of a halted VM.  Return: EXIT_OK, or the exit code
 */
static int sc_open(struct snapcmd *c)
{
	if (snap_disk_path(c->t->dir, c->disk, sizeof(c->disk)))
		return EXIT_ERR;
	if (!c->t->state || access(c->disk, F_OK) < 0) {
		log_err("%s has no disk (not created yet, or booted without an image): "
			"nothing to snapshot", c->t->name);
		return EXIT_NOSETUP;
	}
	if (snap_index_load(c->t->dir, &c->idx))
		return EXIT_ERR;
	/* tags of running states that are gone (rm while running, a killed save) */
	if (!c->t->alive)
		sc_gc_tags(c);
	return EXIT_OK;
}

/* halt the VM if it runs; @trigger for the hooks */
static int sc_halt(struct snapcmd *c, const char *trigger)
{
	return vm_halt_locked(c->cli, c->t, trigger);
}

static int sc_up(struct snapcmd *c)
{
	if (!c->t->cfg) {
		log_info("no hutch.yaml here: start %s from its project with `hutch up`", c->t->name);
		return EXIT_OK;
	}
	return vm_up_locked(c->cli, c->t);
}

/* the disk size hutch.yaml asks for, in bytes (0: the snapshot's) */
static uint64_t sc_vsize(const struct snapcmd *c)
{
	return c->t->vm ? (uint64_t)c->t->vm->disk_gib << 30 : 0;
}

/* bytes a file takes on the host (as du), 0 if missing */
static uint64_t sc_allocated(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? (uint64_t)sb.st_blocks * 512 : 0;
}

/* a flattened copy of the disk at @dst; the VM is halted */
static int sc_flatten(struct snapcmd *c, const char *dst)
{
	uint64_t t0 = util_monotonic_ms();
	char hum[32];
	int rc;

	log_info("saving the disk of %s", c->t->name);
	rc = disk_flatten(c->disk, dst, c->cli->tty && !c->cli->quiet);
	if (rc)
		return rc;
	util_human_size(sc_allocated(dst), hum, sizeof(hum));
	log_info("saved %s (%s) in %.1fs", dst, hum, (double)(util_monotonic_ms() - t0) / 1000.0);
	return 0;
}

static int sc_rebuild(struct snapcmd *c, const char *backing)
{
	return snap_rebuild(c->t->dir, c->idx, backing, sc_vsize(c));
}

/* ---- the anchor: `hutch snapshot` (`hutch reset` goes back to it) ---- */

static int snapshot_anchor(struct snapcmd *c)
{
	char path[PATH_MAX];
	json_t *a;
	int rc;

	if ((rc = sc_halt(c, "snapshot")))
		return rc;
	if (snap_path(c->t->dir, "anchor", NULL, path, sizeof(path)) || sc_flatten(c, path))
		return EXIT_ERR;
	a = json_pack("{s:I}", "created_at", (json_int_t)time(NULL));
	snap_set_str(a, "parent", json_string_value(json_object_get(c->idx, "current")));
	json_object_set_new(c->idx, "anchor", a);
	snap_set_str(c->idx, "current", "anchor");
	if (snap_index_save(c->t->dir, c->idx))
		return EXIT_ERR;
	log_info("%s stays halted; `hutch reset` rebuilds it from this snapshot, `hutch up` starts it",
		 c->t->name);
	return EXIT_OK;
}

/* ---- named snapshots ---- */

/* a fresh entry for @name, parent = the current one; replaces an older @name */
static json_t *sc_new_item(struct snapcmd *c, const char *kind)
{
	json_t *it = json_pack("{s:s, s:I}", "kind", kind, "created_at", (json_int_t)time(NULL));

	if (it)
		snap_set_str(it, "parent", json_string_value(json_object_get(c->idx, "current")));
	return it;
}

/* forget what an older snapshot of this name had: its memory file, its stack place */
static void sc_forget(struct snapcmd *c, const char *name)
{
	json_t *old = snap_item(c->idx, name), *stack = json_object_get(c->idx, "stack");
	char path[PATH_MAX];

	if (old && !strcmp(snap_item_kind(old), "running")) {
		const char *tag = json_string_value(json_object_get(old, "tag"));

		if (snap_path(c->t->dir, name, "vmstate", path, sizeof(path)) == 0)
			unlink(path);
		/* its disk tag can go only while QEMU does not hold the disk */
		if (tag && disk_tag_valid(tag) && !c->t->alive && disk_tag_delete(c->disk, tag))
			log_warn("could not drop the disk tag %s of %s", tag, name);
	}
	if (old && !strcmp(snap_item_kind(old), "disk") &&
	    snap_path(c->t->dir, name, "qcow2", path, sizeof(path)) == 0)
		unlink(path);
	for (size_t i = json_array_size(stack); i-- > 0;)
		if (!strcmp(json_string_value(json_array_get(stack, i)) ?: "", name))
			json_array_remove(stack, i);
	json_object_del(json_object_get(c->idx, "items"), name);
	if (!strcmp(json_string_value(json_object_get(c->idx, "resume")) ?: "", name))
		snap_set_str(c->idx, "resume", NULL);
}

static int snapshot_save_disk(struct snapcmd *c, const char *name)
{
	char path[PATH_MAX], dir[PATH_MAX];
	bool was_running = c->t->alive;
	json_t *it;
	int rc;

	if ((rc = sc_halt(c, "snapshot")))
		return rc;
	if (util_path_join(dir, sizeof(dir), c->t->dir, "snapshots") || util_mkdir_p(dir, 0700) ||
	    snap_path(c->t->dir, name, "qcow2", path, sizeof(path)))
		return EXIT_ERR;
	/* the new file replaces the old by rename: only then is the old entry's rest dropped */
	if (sc_flatten(c, path))
		return EXIT_ERR;
	if (snap_item(c->idx, name) && !strcmp(snap_item_kind(snap_item(c->idx, name)), "running"))
		sc_forget(c, name);
	it = sc_new_item(c, "disk");
	if (!it)
		return EXIT_ERR;
	json_object_set_new(json_object_get(c->idx, "items"), name, it);
	snap_set_str(c->idx, "current", name);
	if (snap_index_save(c->t->dir, c->idx))
		return EXIT_ERR;
	log_info("snapshot %s saved", name);
	return was_running && !c->no_start ? sc_up(c) : EXIT_OK;
}

static int snapshot_save(struct snapcmd *c, const char *name)
{
	int rc;

	if (!c->warm)
		return snapshot_save_disk(c, name);
	if (!c->t->alive) {
		log_err("%s is not running: --running saves a running VM (`hutch up` first, "
			"or drop --running to save its disk)", c->t->name);
		return EXIT_NOSETUP;
	}
	rc = warm_cli_save(c->t, name);
	if (rc)
		return rc;
	/* the supervisor wrote the entry; the stack is the CLI's */
	json_decref(c->idx);
	c->idx = NULL;
	return snap_index_load(c->t->dir, &c->idx) ? EXIT_ERR : EXIT_OK;
}

static int snapshot_restore(struct snapcmd *c, const char *name)
{
	json_t *it = snap_item(c->idx, name);
	char path[PATH_MAX];
	int rc;

	if (!it) {
		log_err("%s has no snapshot named %s (see `hutch snapshot list`)", c->t->name, name);
		return EXIT_NOSETUP;
	}
	if ((rc = sc_halt(c, "restore")))
		return rc;
	if (!strcmp(snap_item_kind(it), "running")) {
		/* the disk goes back to the state's tag when `up` resumes it */
		snap_set_str(c->idx, "resume", name);
	} else if (snap_path(c->t->dir, name, "qcow2", path, sizeof(path)) || sc_rebuild(c, path)) {
		return EXIT_ERR;
	}
	snap_set_str(c->idx, "current", name);
	if (snap_index_save(c->t->dir, c->idx))
		return EXIT_ERR;
	log_info("%s restored to %s", c->t->name, name);
	if (c->no_start)
		return EXIT_OK;
	rc = sc_up(c);
	c->t->alive = rc == EXIT_OK && c->t->cfg;	/* for pop's rm after it */
	return rc;
}

/*
 * rm of a disk snapshot that disk.qcow2 is an overlay of: its data goes
 * into the snapshot file (qemu-img commit; the overlay still reads the
 * same meanwhile), which is then renamed over disk.qcow2.
 */
static int sc_rm_base(struct snapcmd *c, const char *path)
{
	int rc;

	if (c->t->alive) {
		log_err("the disk of the running %s is based on this snapshot: halt it first",
			c->t->name);
		return -EBUSY;
	}
	log_info("merging the disk of %s into the snapshot it is based on", c->t->name);
	rc = disk_commit(c->disk);
	if (!rc && rename(path, c->disk) < 0)
		rc = -errno;
	if (!rc)
		rc = disk_fsync_path(c->t->dir);
	if (rc)
		log_errno(rc, "merging %s into %s", c->disk, path);
	return rc;
}

static int snapshot_rm(struct snapcmd *c, const char *name)
{
	json_t *it = snap_item(c->idx, name);
	struct disk_info di;
	char path[PATH_MAX];
	const char *parent;

	if (!it) {
		log_err("%s has no snapshot named %s", c->t->name, name);
		return EXIT_NOSETUP;
	}
	if (!strcmp(snap_item_kind(it), "disk") &&
	    !snap_path(c->t->dir, name, "qcow2", path, sizeof(path)) &&
	    !disk_info(c->disk, &di) && !strcmp(di.backing, path)) {
		if (sc_rm_base(c, path))
			return EXIT_ERR;
	}
	parent = json_string_value(json_object_get(it, "parent"));
	if (!strcmp(json_string_value(json_object_get(c->idx, "current")) ?: "", name))
		snap_set_str(c->idx, "current", parent);
	sc_forget(c, name);
	if (snap_index_save(c->t->dir, c->idx))
		return EXIT_ERR;
	log_info("snapshot %s removed", name);
	return EXIT_OK;
}

static int snapshot_push(struct snapcmd *c)
{
	char name[SNAP_NAME_MAX + 1];
	time_t now = time(NULL);
	struct tm tm;
	int rc;

	gmtime_r(&now, &tm);
	for (int n = 0;; n++) {
		if (util_snprintf(name, sizeof(name), n ? "push-%04d%02d%02d-%02d%02d%02d-%d"
						     : "push-%04d%02d%02d-%02d%02d%02d",
				  tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
				  tm.tm_sec, n))
			return EXIT_ERR;
		if (!snap_item(c->idx, name))
			break;
	}
	rc = snapshot_save(c, name);
	if (rc)
		return rc;
	json_array_append_new(json_object_get(c->idx, "stack"), json_string(name));
	if (snap_index_save(c->t->dir, c->idx))
		return EXIT_ERR;
	printf("%s\n", name);
	return EXIT_OK;
}

/* pop: restore the top of the stack and remove it (Vagrant's meaning) */
static int snapshot_pop(struct snapcmd *c)
{
	json_t *stack = json_object_get(c->idx, "stack");
	char name[SNAP_NAME_MAX + 1], path[PATH_MAX];
	const char *top;
	json_t *it;
	int rc;

	top = json_string_value(json_array_get(stack, json_array_size(stack) - 1));
	if (!top || util_snprintf(name, sizeof(name), "%s", top)) {
		log_err("%s: no pushed snapshot to pop", c->t->name);
		return EXIT_NOSETUP;
	}
	it = snap_item(c->idx, name);
	if (c->no_delete || !strcmp(snap_item_kind(it), "running")) {
		/* a running state is needed until `up` has resumed it: removed after */
		rc = snapshot_restore(c, name);
		if (rc || c->no_delete)
			return rc;
		return snapshot_rm(c, name);
	}
	if ((rc = sc_halt(c, "restore")))
		return rc;
		/* the standalone snapshot file simply becomes the disk: O(1), atomic */
	if (snap_path(c->t->dir, name, "qcow2", path, sizeof(path)) || rename(path, c->disk) < 0 ||
	    disk_fsync_path(c->t->dir)) {
		log_errno(-errno, "%s", path);
		return EXIT_ERR;
	}
	if (sc_vsize(c) && disk_resize(c->disk, sc_vsize(c)))
		log_warn("could not grow the disk to %u GiB", c->t->vm->disk_gib);
	snap_drop_running(c->t->dir, c->idx);
	snap_set_str(c->idx, "current", json_string_value(json_object_get(it, "parent")));
	sc_forget(c, name);
	if (snap_index_save(c->t->dir, c->idx))
		return EXIT_ERR;
	log_info("%s restored to %s, which is removed", c->t->name, name);
	return c->no_start ? EXIT_OK : sc_up(c);
}

/* ---- list ---- */

static json_t *sc_row(struct snapcmd *c, const char *name, const json_t *it)
{
	char path[PATH_MAX], when[32];
	const char *kind = name ? snap_item_kind(it) : "anchor";
	uint64_t size = 0;
	time_t t = (time_t)json_integer_value(json_object_get(it, "created_at"));
	struct tm tm;
	json_t *o;

	if (!name) {
		name = "anchor";
		if (!snap_path(c->t->dir, "anchor", NULL, path, sizeof(path)))
			size = sc_allocated(path);
	} else if (!snap_path(c->t->dir, name, !strcmp(kind, "running") ? "vmstate" : "qcow2", path,
			      sizeof(path))) {
		size = sc_allocated(path);
	}
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	o = json_pack("{s:s, s:s, s:I, s:s, s:I}", "name", name, "kind", kind, "size",
		      (json_int_t)size, "time", when, "created_at", (json_int_t)t);
	snap_set_str(o, "parent", json_string_value(json_object_get(it, "parent")));
	json_object_set_new(o, "current",
			    json_boolean(!strcmp(json_string_value(json_object_get(c->idx, "current")) ?: "",
						 name)));
	json_object_set_new(o, "resume",
			    json_boolean(!strcmp(json_string_value(json_object_get(c->idx, "resume")) ?: "",
						 name)));
	return o;
}

static int sc_by_time(const void *a, const void *b)
{
	json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "created_at"));
	json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "created_at"));

	return x < y ? -1 : x > y;
}

static int snapshot_list(struct snapcmd *c)
{
	json_t *items = json_object_get(c->idx, "items"), *arr = json_array(), *it, **rows;
	char path[PATH_MAX], hum[32];
	const char *k;
	size_t n = 0;

	rows = calloc(json_object_size(items) + 1, sizeof(*rows));
	if (!rows || !arr) {
		free(rows);
		json_decref(arr);
		return EXIT_ERR;
	}
	if (!snap_path(c->t->dir, "anchor", NULL, path, sizeof(path)) && access(path, F_OK) == 0)
		rows[n++] = sc_row(c, NULL, json_object_get(c->idx, "anchor"));
	json_object_foreach(items, k, it)
		rows[n++] = sc_row(c, k, it);
	qsort(rows, n, sizeof(rows[0]), sc_by_time);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, rows[i]);
	free(rows);
	if (c->cli->json) {
		json_dumpf(arr, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
	} else if (n) {
		printf("  %-24s %-8s %10s  %-20s  %s\n", "NAME", "KIND", "SIZE", "TIME", "PARENT");
		for (size_t i = 0; i < n; i++) {
			json_t *o = json_array_get(arr, i);

			util_human_size((uint64_t)json_integer_value(json_object_get(o, "size")), hum, sizeof(hum));
			printf("%s %-24s %-8s %10s  %-20s  %s%s\n",
			       json_is_true(json_object_get(o, "current")) ? "*" : " ",
			       state_get_str(o, "name"), state_get_str(o, "kind"), hum,
			       state_get_str(o, "time"), state_get_str(o, "parent") ?: "-",
			       json_is_true(json_object_get(o, "resume")) ? "  (up resumes it)" : "");
		}
	} else {
		log_info("%s has no snapshots", c->t->name);
	}
	json_decref(arr);
	return EXIT_OK;
}

/* ---- the verb ---- */

enum sc_sub { SC_ANCHOR, SC_SAVE, SC_RESTORE, SC_LIST, SC_RM, SC_PUSH, SC_POP };

static const struct {
	const char *word;
	enum sc_sub sub;
	bool takes_name;
} sc_subs[] = {
	{ "save", SC_SAVE, true }, { "restore", SC_RESTORE, true }, { "list", SC_LIST, false },
	{ "rm", SC_RM, true },	   { "delete", SC_RM, true },	     { "push", SC_PUSH, false },
	{ "pop", SC_POP, false },
};

/* options and positionals: [SUB [NAME]], options anywhere (the VM: --vm) */
static int sc_parse(struct snapcmd *c, int argc, char **argv, enum sc_sub *sub)
{
	bool have_sub = false, takes_name = false;
	const char *bad = NULL;

	*sub = SC_ANCHOR;
	for (int i = 1; i < argc && !bad; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--running"))
			c->warm = true;
		else if (!strcmp(a, "--no-start"))
			c->no_start = true;
		else if (!strcmp(a, "--no-delete"))
			c->no_delete = true;
		else if (a[0] == '-' || (have_sub && (!takes_name || c->name)))
			bad = a;
		else if (have_sub)
			c->name = a;
		else
			for (size_t k = 0; k < UTIL_ARRAY_SIZE(sc_subs); k++)
				if (!strcmp(a, sc_subs[k].word)) {
					*sub = sc_subs[k].sub;
					takes_name = sc_subs[k].takes_name;
					have_sub = true;
				}
		if (!bad && !have_sub && a[0] != '-')
			bad = a;
	}
	if (bad) {
		log_err("snapshot: unexpected argument '%s' (the VM goes with --vm NAME)", bad);
		return cmd_usage(&cmd_snapshot_entry);
	}
	if (takes_name && !c->name) {
		log_err("snapshot: NAME missing");
		return cmd_usage(&cmd_snapshot_entry);
	}
	if (c->name && !snap_name_valid(c->name)) {
		log_err("'%s' is not a snapshot name: 1..64 of A-Z a-z 0-9 . _ -, not \"anchor\"",
			c->name);
		return EXIT_USAGE;
	}
	if (c->warm && *sub != SC_SAVE && *sub != SC_PUSH) {
		log_err("--running goes with save and push");
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

static int cmd_snapshot(struct cli *cli, struct vm_target *t, int argc, char **argv)
{
	struct snapcmd c = { .cli = cli, .t = t };
	enum sc_sub sub;
	int rc = sc_parse(&c, argc, argv, &sub);

	if (rc)
		return rc;
	rc = sc_open(&c);
	if (rc)
		goto out;
	switch (sub) {
	case SC_ANCHOR:
		rc = snapshot_anchor(&c);
		break;
	case SC_SAVE:
		rc = snapshot_save(&c, c.name);
		break;
	case SC_RESTORE:
		rc = snapshot_restore(&c, c.name);
		break;
	case SC_LIST:
		rc = snapshot_list(&c);
		break;
	case SC_RM:
		rc = snapshot_rm(&c, c.name);
		break;
	case SC_PUSH:
		rc = snapshot_push(&c);
		break;
	case SC_POP:
		rc = snapshot_pop(&c);
		break;
	}
out:
	json_decref(c.idx);
	return rc;
}

const struct cmd_entry cmd_snapshot_entry = {
	.name = "snapshot",
	.usage = "[save NAME [--running] | restore NAME | list | rm NAME | push | pop] [--no-start]",
	.summary = "halt and save the disk; named snapshots, push/pop, --running (warm start)",
	.help = snapshot_help,
	.flags = CMD_F_VM | CMD_F_LOCK | CMD_F_NO_NAME,
	.fn = cmd_snapshot,
};

// SPDX-License-Identifier: MIT
/*
 * `hutch reload`: halt, then up with the current hutch.yaml, saying which
 * changed settings took effect.  The settings the VM last started with are
 * in state.json "config" (recorded by the supervisor, src/warm.c); the new
 * ones come from cfg_vm_json() of hutch.yaml as it is now.  Changes an
 * existing disk cannot take (another image, a smaller disk, a share whose
 * tag changed) are refused before anything is stopped.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "images/disk.h"
#include "src/cfg.h"
#include "src/cmd.h"
#include "src/log.h"
#include "src/snap.h"
#include "src/state.h"
#include "src/util.h"
#include "src/vm.h"

/* keys of cfg_vm_json() and how a change applies */
static const char *const reload_keys[] = {
	"cpus", "memory", "disk", "accel", "firmware", "kernel", "network", "shared_folders",
	"ssh", "autoconnect", "cloud_init_wait", "timeouts", "warm", "image", "image_sha256",
};

static void reload_show(char *buf, size_t n, const json_t *v)
{
	char *s = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;

	snprintf(buf, n, "%.60s%s", s ? s : "(unset)", s && strlen(s) > 60 ? "..." : "");
	free(s);
}

/* the tag of the share whose host folder is @host in @shares, or NULL */
static const char *reload_tag_of(const json_t *shares, const char *host)
{
	const json_t *s;
	size_t i;

	json_array_foreach(shares, i, s)
		if (!strcmp(state_get_str(s, "host") ?: "", host))
			return state_get_str(s, "tag");
	return NULL;
}

/*
 * What cannot change under an existing disk; each one is logged.
 * Return: how many there are
 */
static int reload_refusals(const json_t *old, const json_t *now, uint64_t vsize)
{
	const json_t *os = json_object_get(old, "shared_folders"), *s;
	long long nd = state_get_int(now, "disk", 0);
	const char *oi = state_get_str(old, "image"), *ni = state_get_str(now, "image");
	int n = 0;
	size_t i;

	if ((oi || ni) && (!oi || !ni || strcmp(oi, ni))) {
		log_err("image changed (%s -> %s): the disk was made from the old one", oi ?: "none",
			ni ?: "none");
		n++;
	}
	if (nd && ((uint64_t)nd << 30) < vsize) {
		log_err("disk shrinks (%.1f -> %lld GiB): a disk cannot be made smaller",
			(double)vsize / (double)(1ull << 30), nd);
		n++;
	}
	json_array_foreach(json_object_get(now, "shared_folders"), i, s) {
		const char *host = state_get_str(s, "host") ?: "", *tag = state_get_str(s, "tag") ?: "";
		const char *was = reload_tag_of(os, host);

		if (was && strcmp(was, tag)) {
			log_err("shared folder %s: tag changed (%s -> %s): the guest mounts it by the old tag",
				host, was, tag);
			n++;
		}
	}
	return n;
}

/* "memory 1024 -> 2048, cpus 1 -> 2" of what differs */
static int reload_changes(const json_t *old, const json_t *now, char *buf, size_t n)
{
	int count = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(reload_keys); i++) {
		const json_t *a = json_object_get(old, reload_keys[i]);
		const json_t *b = json_object_get(now, reload_keys[i]);
		char sa[80], sb[80];
		size_t len = strlen(buf);

		if (json_equal(a, b) || (!a && json_is_null(b)))
			continue;
		reload_show(sa, sizeof(sa), a);
		reload_show(sb, sizeof(sb), b);
		snprintf(buf + len, n - len, "%s%s %s -> %s", count ? ", " : "", reload_keys[i], sa, sb);
		count++;
	}
	return count;
}

/* what took effect, once the VM is up again; @n from reload_changes(), -1: no record */
static void reload_report(const char *name, int n, const char *changes)
{
	if (n > 0)
		log_info("took effect: %s", changes);
	else if (n == 0)
		log_info("hutch.yaml has not changed since %s last started", name);
	else
		log_info("%s started with the current hutch.yaml (no record of the previous "
			 "settings to compare)", name);
}

static int cmd_reload(struct cli *cli, struct vm_target *t, int argc, char **argv)
{
	json_t *now = NULL, *old;
	char changes[4096], disk[PATH_MAX];
	struct disk_info di = { 0 };
	int rc, n;

	(void)argv;
	if (argc > 1)
		return cmd_usage(&cmd_reload_entry);
	if (!t->state) {
		log_err("%s was never created: `hutch up` creates it", t->name);
		return EXIT_NOSETUP;
	}
	if (!(now = cfg_vm_json(t->vm)))
		return EXIT_ERR;
	old = json_object_get(t->state, "config");
	if (snap_disk_path(t->dir, disk, sizeof(disk)) || disk_info(disk, &di))
		di.vsize = 0;	/* no disk (direct kernel boot): nothing to shrink */
	if (json_is_object(old) && reload_refusals(old, now, di.vsize)) {
		log_err("these changes cannot apply to %s's existing disk: `hutch destroy` and "
			"`hutch up` make a new VM with them; nothing was changed", t->name);
		rc = EXIT_USAGE;
		goto out;
	}
	n = json_is_object(old) ? reload_changes(old, now, changes, sizeof(changes)) : -1;
	if ((rc = vm_halt_locked(cli, t, "reload")))
		goto out;
	if (t->vm->disk_gib && di.vsize && disk_resize(disk, (uint64_t)t->vm->disk_gib << 30))
		log_warn("could not grow the disk to %u GiB", t->vm->disk_gib);
	rc = vm_up_locked(cli, t);
	if (rc == EXIT_OK)
		reload_report(t->name, n, changes);
out:
	json_decref(now);
	return rc;
}

static const char reload_help[] =
	"Halts the VM (pre-down hook, ACPI power-down) and brings it up again with the\n"
	"current hutch.yaml, then says which changed settings took effect (cpus,\n"
	"memory, network, forwards, shares, timeouts, ...). A larger 'disk:' grows the\n"
	"disk. Changes that cannot apply to an existing disk are refused (exit 2)\n"
	"before the VM is stopped: another image, a smaller disk, a shared folder whose\n"
	"tag changed; destroy the VM and bring it up again for those. The playbook\n"
	"does not run. A VM that was never created is refused with exit 78.\n"
	"\n"
	"Example:\n"
	"  sed -i 's/^memory: .*/memory: 4096/' hutch.yaml && hutch reload\n";

const struct cmd_entry cmd_reload_entry = {
	.name = "reload",
	.usage = "[NAME]",
	.summary = "halt and up again with the current hutch.yaml",
	.help = reload_help,
	.flags = CMD_F_VM | CMD_F_CFG | CMD_F_LOCK,
	.fn = cmd_reload,
};

// SPDX-License-Identifier: MIT
/*
 * Warm start, the supervisor's side: deciding, adapting QEMU's command
 * line, loading a saved state, and saving one.  See warm.h for the model.
 */
#include "src/warm.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "qmp/qmp.h"
#include "src/accel.h"
#include "src/log.h"
#include "src/proc.h"
#include "src/state.h"
#include "src/util.h"

#define WARM_QMP_MS 10000
#define WARM_UNPLUG_MS 30000		/* the guest must let go of the device */
#define WARM_SAVE_MS (30 * 60 * 1000)	/* the whole save */
#define WARM_POLL_NS 20000000L		/* query-migrate every 20 ms */
#define WARM_FD_OUT "hutch-warm-out"
#define WARM_FD_IN "hutch-warm-in"
#define WARM_FS_DRIVER "vhost-user-fs-pci"
#define WARM_MAGIC "QEVM"		/* QEMU_VM_FILE_MAGIC, the stream's first bytes */

/* ---- what a saved state must match ---- */

/* the settings of this VM that decide QEMU's guest-visible machine */
static json_t *warm_config(const struct sv_ctx *c)
{
	const struct cfg_vm *vm = c->vm;
	json_t *shares = json_array();
	char kernel[3 * PATH_MAX + 8];

	for (size_t i = 0; shares && i < vm->n_shares; i++)
		json_array_append_new(shares, json_string(vm->shares[i].tag ?: ""));
	if (util_snprintf(kernel, sizeof(kernel), "%s|%s|%s", vm->kernel.path ?: "",
			  vm->kernel.initrd ?: "", vm->kernel.cmdline ?: ""))
		kernel[0] = '\0';
	return json_pack("{s:i, s:i, s:s, s:s, s:s, s:s, s:o}", "cpus", (int)vm->cpus, "memory",
			 (int)vm->memory_mib, "accel", state_get_str(c->state, "accel") ?: "?",
			 "firmware", vm->firmware == CFG_FW_UEFI ? "uefi" : "bios", "kernel", kernel,
			 "mode", vm->network.mode == CFG_NET_NAT ? "nat"
				 : vm->network.mode == CFG_NET_USER ? "user" : "none",
			 "shares", shares);
}

/* the first setting that differs, as a reason for the user */
static bool warm_config_diff(const json_t *old, const json_t *now, char *why, size_t n)
{
	static const char *const keys[] = { "cpus", "memory", "accel", "firmware", "kernel",
					    "mode", "shares" };

	for (size_t i = 0; i < UTIL_ARRAY_SIZE(keys); i++) {
		json_t *a = json_object_get(old, keys[i]), *b = json_object_get(now, keys[i]);
		char *sa, *sb;

		if (json_equal(a, b))
			continue;
		sa = a ? json_dumps(a, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
		sb = json_dumps(b, JSON_ENCODE_ANY | JSON_COMPACT);
		if (!strcmp(keys[i], "kernel"))
			snprintf(why, n, "the kernel settings changed since the save");
		else
			snprintf(why, n, "%s changed since the save (%.40s -> %.40s)", keys[i],
				 sa ?: "?", sb ?: "?");
		free(sa);
		free(sb);
		return true;
	}
	return false;
}

/* "PATH INODE SIZE MTIME" of the qemu-system-x86_64 that would run */
static int warm_qemu_id(char *buf, size_t n)
{
	char exe[PATH_MAX];
	struct stat sb;
	int rc = proc_find_exe("qemu-system-x86_64", NULL, exe, sizeof(exe));

	if (rc)
		return rc;
	if (stat(exe, &sb) < 0)
		return -errno;
	return util_snprintf(buf, n, "%s %llu %lld %lld", exe, (unsigned long long)sb.st_ino,
			     (long long)sb.st_size, (long long)sb.st_mtime);
}

/* adler32 of a whole file; it is read again by QEMU right after, from the page cache */
static int warm_file_sum(int fd, unsigned long *sum, unsigned long long *size)
{
	static unsigned char buf[1 << 20];
	uLong a = adler32_z(0L, Z_NULL, 0);
	unsigned long long total = 0;

	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		a = adler32_z(a, buf, (size_t)r);
		total += (unsigned long long)r;
	}
	*sum = (unsigned long)a;
	*size = total;
	return 0;
}

/* the .vmstate of @name is whole: its size, QEMU's magic, its checksum */
static int warm_check_file(const char *path, const json_t *item, char *why, size_t n)
{
	unsigned long long size = 0;
	unsigned long sum = 0;
	char magic[4];
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), rc = 0;

	if (fd < 0) {
		snprintf(why, n, "its state file cannot be read (%s)", strerror(errno));
		return -errno;
	}
	if (read(fd, magic, sizeof(magic)) != (ssize_t)sizeof(magic) ||
	    memcmp(magic, WARM_MAGIC, sizeof(magic)) || lseek(fd, 0, SEEK_SET) != 0) {
		snprintf(why, n, "its state file is not a QEMU state (corrupt)");
		rc = -EINVAL;
	} else if ((rc = warm_file_sum(fd, &sum, &size)) < 0) {
		snprintf(why, n, "its state file cannot be read (%s)", strerror(-rc));
	} else if (size != (unsigned long long)json_integer_value(json_object_get(item, "size")) ||
		   sum != (unsigned long)json_integer_value(json_object_get(item, "sum"))) {
		snprintf(why, n, "its state file is corrupt (size or checksum differs)");
		rc = -EINVAL;
	}
	close(fd);
	return rc;
}

/* the running-state fields warm start relies on, type-checked (index.json is untrusted) */
static bool warm_item_ok(const json_t *it)
{
	const char *tag = json_string_value(json_object_get(it, "tag"));

	return it && !strcmp(snap_item_kind(it), "running") && tag && disk_tag_valid(tag) &&
	       json_is_integer(json_object_get(it, "size")) &&
	       json_is_integer(json_object_get(it, "sum")) &&
	       json_is_string(json_object_get(it, "qemu")) &&
	       json_is_string(json_object_get(it, "qemu_id")) &&
	       json_is_object(json_object_get(it, "config")) &&
	       json_is_array(json_object_get(it, "argv"));
}

/* all the checks that need no QEMU; fills @why and returns false on a mismatch */
static bool warm_fits(struct sv_ctx *c, const char *name, const json_t *it, char *why, size_t n)
{
	char id[PATH_MAX + 64], path[PATH_MAX];
	uint64_t t0;
	json_t *cfg;
	bool diff;

	if (!warm_item_ok(it)) {
		snprintf(why, n, "its entry in snapshots/index.json is incomplete");
		return false;
	}
	cfg = warm_config(c);
	diff = warm_config_diff(json_object_get(it, "config"), cfg, why, n);
	json_decref(cfg);
	if (diff)
		return false;
	if (warm_qemu_id(id, sizeof(id)) || strcmp(id, json_string_value(json_object_get(it, "qemu_id")))) {
		snprintf(why, n, "QEMU changed since the save (it was %.60s)",
			 json_string_value(json_object_get(it, "qemu")));
		return false;
	}
	t0 = util_monotonic_ms();
	if (snap_path(c->vm_dir, name, "vmstate", path, sizeof(path)) ||
	    warm_check_file(path, it, why, n))
		return false;
	log_info("state file checked in %llu ms", (unsigned long long)(util_monotonic_ms() - t0));
	return true;
}

void warm_plan(struct sv_ctx *c, struct warm_plan *p)
{
	json_t *idx = NULL, *it;
	const char *name, *addr;

	memset(p, 0, sizeof(*p));
	/* what this start runs with: `hutch reload` says what changed against it */
	json_object_set_new(c->state, "config", cfg_vm_json(c->vm));
	if (snap_index_load(c->vm_dir, &idx))
		return;
	name = json_string_value(json_object_get(idx, "resume"));
	it = name ? snap_item(idx, name) : NULL;
	if (!it)
		goto out;
	snprintf(p->name, sizeof(p->name), "%s", name);
	if (!warm_fits(c, name, it, p->reason, sizeof(p->reason))) {
		log_warn("not resuming %s: %s; booting cold", name, p->reason);
		goto out;
	}
	p->active = true;
	p->item = json_incref(it);
	/* net/ prefers the address it finds here: the one the guest holds */
	addr = json_string_value(json_object_get(it, "addr"));
	if (addr && c->vm->network.mode == CFG_NET_NAT)
		json_object_set_new(c->state, "net", json_pack("{s:s}", "addr", addr));
	log_info("resuming the running state %s", name);
out:
	json_decref(idx);
}

/* ---- QEMU's command line ---- */

/* "user,...,hostfwd=tcp:127.0.0.1:PORT-:22,..." with the per-start port masked */
static json_t *warm_norm_arg(const char *a)
{
	const char *k = "hostfwd=tcp:127.0.0.1:", *p = strncmp(a, "user,", 5) ? NULL : strstr(a, k);
	char *s;
	json_t *j;

	if (!p)
		return json_string(a);
	p += strlen(k);
	while (*p >= '0' && *p <= '9')
		p++;
	if (asprintf(&s, "%.*sPORT%s", (int)(strstr(a, k) + strlen(k) - a), a, p) < 0)
		return NULL;
	j = json_string(s);
	free(s);
	return j;
}

/* the command line as a saved state records it: no -S / -incoming, no SSH port */
static json_t *warm_norm_argv(const struct qemu_argv *a)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < a->n; i++) {
		if (!strcmp(a->v[i], "-S"))
			continue;
		if (!strcmp(a->v[i], "-incoming")) {
			i++;
			continue;
		}
		json_array_append_new(arr, warm_norm_arg(a->v[i]));
	}
	return arr;
}

/* QEMU's "driver,k=v,k=v" (",," is a literal comma) as device_add properties */
static json_t *warm_props(const char *s)
{
	json_t *o = json_object();
	char *buf = malloc(strlen(s) + 1), *key = NULL;
	size_t n = 0;

	if (!o || !buf)
		goto err;
	for (const char *p = s;; p++) {
		if (*p == ',' && p[1] == ',') {
			buf[n++] = ',';
			p++;
			continue;
		}
		if (*p == '=' && !key && json_object_size(o) > 0) {
			buf[n++] = '\0';
			key = buf;
			continue;
		}
		if (*p && *p != ',') {
			buf[n++] = *p;
			continue;
		}
		buf[n] = '\0';
		if (json_object_size(o) == 0 && !key)
			json_object_set_new(o, "driver", json_string(buf));
		else if (key)
			json_object_set_new(o, key, json_string(key + strlen(key) + 1));
		else
			goto err;	/* a bare flag: not what the share extension writes */
		key = NULL;
		n = 0;
		if (!*p)
			break;
	}
	free(buf);
	return o;
err:
	free(buf);
	json_decref(o);
	return NULL;
}

/*
 * Every "-device vhost-user-fs-pci,..." gets its own pcie-root-port and an
 * id, and its properties are kept in @p->devices (device_add after an
 * unplug); with @hold, the devices are left out of @out, to be plugged
 * after the incoming migration.
 */
static int warm_fs_ports(struct warm_plan *p, const struct qemu_argv *a, struct qemu_argv *out,
			 bool hold)
{
	unsigned nfs = 0;
	int rc = 0;

	json_decref(p->fsids);
	json_decref(p->devices);
	p->fsids = json_array();
	p->devices = json_array();
	for (size_t i = 0; !rc && i < a->n; i++) {
		char *dev;
		json_t *props;

		if (strcmp(a->v[i], "-device") || i + 1 >= a->n ||
		    strncmp(a->v[i + 1], WARM_FS_DRIVER ",", strlen(WARM_FS_DRIVER) + 1)) {
			rc = qemu_argv_add(out, a->v[i]);
			continue;
		}
		if (asprintf(&dev, "%s,id=hutch-fs%u,bus=hutch-rp%u", a->v[++i], nfs, nfs) < 0)
			return -ENOMEM;
		/* chassis numbers must be unique per port; 30+ stays clear of QEMU's own */
		rc = qemu_argv_add(out, "-device") ?:
		     qemu_argv_addf(out, "pcie-root-port,id=hutch-rp%u,chassis=%u", nfs, 30 + nfs);
		json_array_append_new(p->fsids, json_sprintf("hutch-fs%u", nfs));
		props = warm_props(dev);
		if (!rc)
			rc = props ? json_array_append_new(p->devices, props) : -EINVAL;
		if (!rc && !hold)
			rc = qemu_argv_add(out, "-device") ?: qemu_argv_add(out, dev);
		free(dev);
		nfs++;
	}
	return rc;
}

/* the checks that need the built command line, then the disk revert */
static bool warm_ready(struct sv_ctx *c, struct warm_plan *p)
{
	const char *want = json_string_value(json_object_get(p->item, "addr"));
	const char *got = state_get_str(json_object_get(c->state, "net"), "addr");
	const char *tag = json_string_value(json_object_get(p->item, "tag"));
	char disk[PATH_MAX];
	int rc;

	if (!json_equal(p->argv, json_object_get(p->item, "argv"))) {
		snprintf(p->reason, sizeof(p->reason), "QEMU's devices or options changed since the save");
		return false;
	}
	if (want && c->vm->network.mode == CFG_NET_NAT && (!got || strcmp(want, got))) {
		snprintf(p->reason, sizeof(p->reason),
			 "the guest's address %s is taken by another VM now", want);
		return false;
	}
	if ((rc = snap_disk_path(c->vm_dir, disk, sizeof(disk))) || (rc = disk_tag_apply(disk, tag))) {
		snprintf(p->reason, sizeof(p->reason),
			 "the disk has no saved state %s (was it replaced since?)", tag);
		return false;
	}
	return true;
}

/*
 * QEMU's image locks off for the VM's disk when it comes as an fd set
 * (src/vmfd.h).  A save inactivates the disk and `cont` activates it
 * again: file-posix then locks a fresh dup of the read-write fd while the
 * read-only description it used meanwhile keeps its locks, because the fd
 * set still holds that description open, so `cont` failed with 'Failed to
 * get "write" lock' and the guest stayed paused.  The VM lock (one
 * supervisor per VM directory) is what keeps a second writer away.
 */
static int warm_drive_nolock(struct qemu_argv *a)
{
	for (size_t i = 1; i < a->n; i++) {
		char *s;

		if (strcmp(a->v[i - 1], "-drive") || strncmp(a->v[i], "file=/dev/fdset/", 16) ||
		    !strstr(a->v[i], ",format=qcow2") || strstr(a->v[i], "file.locking="))
			continue;
		if (asprintf(&s, "%s,file.locking=off", a->v[i]) < 0)
			return -ENOMEM;
		free(a->v[i]);
		a->v[i] = s;
	}
	return 0;
}

int warm_argv(struct sv_ctx *c, struct warm_plan *p, struct qemu_argv *a)
{
	struct qemu_argv out = { 0 }, full = { 0 };
	int rc = warm_drive_nolock(a);

	if (rc)
		return rc;
	/* the recorded form always has the devices in: build it, normalize it */
	rc = warm_fs_ports(p, a, &full, false);
	if (!rc) {
		json_decref(p->argv);
		p->argv = warm_norm_argv(&full);
		rc = p->argv ? 0 : -ENOMEM;
	}
	if (!rc && p->active && !warm_ready(c, p)) {
		log_warn("not resuming %s: %s; booting cold", p->name, p->reason);
		p->active = false;
	}
	p->tried = p->active;
	if (!rc && p->active)
		rc = warm_fs_ports(p, a, &out, true) ?: qemu_argv_add(&out, "-S") ?:
		     qemu_argv_add(&out, "-incoming") ?: qemu_argv_add(&out, "defer");
	if (rc) {
		qemu_argv_free(&full);
		qemu_argv_free(&out);
		return rc;
	}
	qemu_argv_free(a);
	if (p->active) {
		*a = out;
		qemu_argv_free(&full);
	} else {
		*a = full;
	}
	return 0;
}

/* ---- resuming ---- */

static void warm_nap(void)
{
	nanosleep(&(struct timespec){ .tv_nsec = WARM_POLL_NS }, NULL);
}

/* poll query-migrate until the migration ends; 0 when it completed */
static int warm_migration_wait(struct qmp *q, uint64_t deadline, const char *what)
{
	struct qmp_migrate_info mi;
	int rc;

	for (;;) {
		rc = qmp_query_migrate(q, &mi, WARM_QMP_MS);
		if (rc) {
			log_errno(rc, "%s: query-migrate", what);
			return rc;
		}
		if (mi.status == QMP_MIG_COMPLETED)
			return 0;
		if (mi.status == QMP_MIG_FAILED || mi.status == QMP_MIG_CANCELLED) {
			log_err("%s failed: %s", what, mi.error[0] ? mi.error : qmp_migrate_status_name(mi.status));
			return -EIO;
		}
		if (util_monotonic_ms() >= deadline) {
			log_err("%s did not finish in time", what);
			return -ETIMEDOUT;
		}
		warm_nap();
	}
}

static int warm_plug(struct warm_plan *p, struct qmp *q)
{
	json_t *d;
	size_t i;
	int rc;

	json_array_foreach(p->devices, i, d) {
		rc = qmp_device_add(q, d, WARM_QMP_MS);
		if (rc) {
			log_errno(rc, "plugging %s back", json_string_value(json_object_get(d, "id")) ?: "?");
			return rc;
		}
	}
	return 0;
}

static int warm_load(struct sv_ctx *c, struct warm_plan *p, struct qmp *q);

/*
 * The supervisor's event callback would take the RESUME of `cont` for
 * "running" and save state.json before the supervisor is done starting
 * (no qemu_pid yet): events wait in the queue until it has finished.
 */
int warm_incoming(struct sv_ctx *c, struct warm_plan *p, struct qmp *q)
{
	void *opaque;
	qmp_event_cb cb = qmp_get_event_cb(q, &opaque);
	int rc;

	qmp_set_event_cb(q, NULL, NULL);
	rc = warm_load(c, p, q);
	qmp_set_event_cb(q, cb, opaque);
	return rc;
}

static int warm_load(struct sv_ctx *c, struct warm_plan *p, struct qmp *q)
{
	uint64_t t0 = util_monotonic_ms();
	const char *want = json_string_value(json_object_get(p->item, "qemu"));
	const char *addr = json_string_value(json_object_get(p->item, "addr"));
	char path[PATH_MAX], ver[64];
	int ma, mi, mc, fd, rc;

	qmp_version(q, &ma, &mi, &mc);
	snprintf(ver, sizeof(ver), "%d.%d.%d", ma, mi, mc);
	if (strcmp(ver, want)) {
		warm_fallback(p, "QEMU's version differs from the save's");
		return -EPROTO;
	}
	if ((rc = snap_path(c->vm_dir, p->name, "vmstate", path, sizeof(path))))
		return rc;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	rc = qmp_getfd(q, WARM_FD_IN, fd, WARM_QMP_MS);
	close(fd);
	if (!rc)
		rc = qmp_migrate_incoming(q, "fd:" WARM_FD_IN, WARM_QMP_MS);
	if (!rc)
		rc = warm_migration_wait(q, t0 + c->vm->timeouts.boot * 1000ULL, "loading the saved state");
	if (!rc)
		rc = warm_plug(p, q);
	if (!rc)
		rc = qmp_cont(q, WARM_QMP_MS);
	if (rc) {
		warm_fallback(p, "the saved state did not load");
		return rc;
	}
	/* the guest holds its lease already: it will not ask before renewing */
	if (addr && c->vm->network.mode == CFG_NET_NAT) {
		json_t *net = json_object_get(c->state, "net");

		if (json_is_object(net)) {
			json_object_set_new(net, "ip", json_string(addr));
			json_object_set_new(net, "lease_at", json_integer((json_int_t)time(NULL)));
		}
	}
	p->load_ms = util_monotonic_ms() - t0;
	log_info("resumed %s in %llu ms", p->name, p->load_ms);
	return 0;
}

void warm_fallback(struct warm_plan *p, const char *why)
{
	if (p->active)
		snprintf(p->reason, sizeof(p->reason), "%s", why);
	log_warn("not resuming %s: %s; booting cold", p->name, p->reason);
	p->active = false;
	p->tried = false;
}

void warm_record(struct sv_ctx *c, const struct warm_plan *p)
{
	json_t *s = json_pack("{s:s, s:I}", "kind", p->active ? "warm" : "cold", "at",
			      (json_int_t)time(NULL));

	if (!s)
		return;
	if (p->active) {
		json_object_set_new(s, "snapshot", json_string(p->name));
		json_object_set_new(s, "load_ms", json_integer((json_int_t)p->load_ms));
	} else if (p->reason[0]) {
		json_object_set_new(s, "reason", json_string(p->reason));
		json_object_set_new(s, "snapshot", json_string(p->name));
	}
	json_object_set_new(c->state, "start", s);
}

bool warm_resumed(const json_t *state)
{
	const char *k = state_get_str(json_object_get(state, "start"), "kind");

	return k && !strcmp(k, "warm");
}

void warm_plan_free(struct warm_plan *p)
{
	json_decref(p->item);
	json_decref(p->devices);
	json_decref(p->fsids);
	json_decref(p->argv);
	memset(p, 0, sizeof(*p));
}

/* ---- saving ---- */

int warm_ctl_name(const char *line, size_t n, char *name, size_t sz)
{
	json_t *req = json_loadb(line, n, JSON_REJECT_DUPLICATES, NULL);
	const char *v = json_string_value(json_object_get(req, "name"));
	int rc = v && snap_name_valid(v) ? util_snprintf(name, sz, "%s", v) : -EINVAL;

	json_decref(req);
	return rc;
}

static bool warm_match_device(const json_t *data, void *arg)
{
	const json_t *d = json_object_get(data, "device");

	return json_is_string(d) && !strcmp(json_string_value(d), arg);
}

/* unplug the virtiofs devices; *@done says how many went (to plug back) */
static int warm_unplug(struct warm_plan *p, struct qmp *q, size_t *done)
{
	json_t *id;
	size_t i;
	int rc;

	*done = 0;
	json_array_foreach(p->fsids, i, id) {
		qmp_event_arm(q, QMP_EV_DEVICE_DELETED, warm_match_device,
			      (void *)json_string_value(id));
		rc = qmp_device_del(q, json_string_value(id), WARM_QMP_MS);
		if (!rc)
			rc = qmp_event_wait(q, WARM_UNPLUG_MS);
		if (rc) {
			log_errno(rc, "unplugging %s (is the share still mounted in the guest?)",
				  json_string_value(id));
			return rc;
		}
		(*done)++;
	}
	return 0;
}

static void warm_replug(struct warm_plan *p, struct qmp *q, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (qmp_device_add(q, json_array_get(p->devices, i), WARM_QMP_MS))
			log_warn("share device %zu could not be plugged back: restart the VM", i);
}

static int warm_tag_cmd(struct qmp *q, const char *cmd, const char *dev, const char *tag)
{
	json_t *a = json_pack("{s:s, s:s}", "device", dev, "name", tag);
	int rc = a ? qmp_command(q, cmd, a, NULL, WARM_SAVE_MS) : -ENOMEM;
	const char *desc = NULL, *cls = qmp_last_error(q, &desc);

	if (rc)
		log_errno(rc, "%s %s: %s", cmd, tag, cls ? desc : "");
	json_decref(a);
	return rc;
}

/**
 * struct warm_save_ctx - one save in progress; owned by warm_save()
 * @name:  the state's name
 * @dev:   QEMU's device name of disk.qcow2
 * @tag:   the new internal snapshot
 * @part:  NAME.vmstate.part, @fd open on it
 * @dst:   NAME.vmstate
 * @tag_ms, @mem_ms: how long the disk tag and the memory took, of @paused_ms
 *         (the rest: plugging the shares back, cont); logged for make bench
 */
struct warm_save_ctx {
	char name[SNAP_NAME_MAX + 1];
	char dev[64];
	char tag[DISK_TAG_MAX];
	char part[PATH_MAX];
	char dst[PATH_MAX];
	int fd;
	bool tagged;
	unsigned long sum;
	unsigned long long size;
	unsigned long long paused_ms;
	unsigned long long tag_ms;
	unsigned long long mem_ms;
};

/*
 * The guest is stopped first and the whole state written in one pass.  A
 * live migration (RAM copied while the guest runs, paused before the
 * switch-over for the disk tag) pauses the guest for much less, but with
 * QEMU 7.2's multi-threaded TCG it produced states whose guest kernel
 * panicked on list corruption after the resume: not worth a shorter pause.
 */
static int warm_save_stopped(struct warm_save_ctx *w, struct qmp *q, uint64_t *stopped_at)
{
	uint64_t deadline = util_monotonic_ms() + WARM_SAVE_MS;
	/* QEMU throttles migration to 128 MiB/s by default: a file needs no such care */
	json_t *bw = json_pack("{s:I}", "max-bandwidth", (json_int_t)1 << 40);
	int rc = bw ? qmp_stop(q, WARM_QMP_MS) : -ENOMEM;

	if (rc)
		goto out;
	*stopped_at = util_monotonic_ms();
	/* the tag first: a finished migration leaves the disks inactive until `cont` */
	rc = warm_tag_cmd(q, "blockdev-snapshot-internal-sync", w->dev, w->tag);
	if (rc)
		goto out;
	w->tagged = true;
	w->tag_ms = util_monotonic_ms() - *stopped_at;
	if (qmp_command(q, "migrate-set-parameters", bw, NULL, WARM_QMP_MS))
		log_warn("migrate-set-parameters: the save runs throttled");
	rc = qmp_getfd(q, WARM_FD_OUT, w->fd, WARM_QMP_MS);
	if (!rc)
		rc = qmp_migrate(q, "fd:" WARM_FD_OUT, WARM_QMP_MS);
	if (!rc)
		rc = warm_migration_wait(q, deadline, "saving the running state");
	w->mem_ms = util_monotonic_ms() - *stopped_at - w->tag_ms;
	if (rc && rc != -ECONNRESET)
		(void)qmp_command(q, "migrate_cancel", NULL, NULL, WARM_QMP_MS);
out:
	json_decref(bw);
	return rc;
}

/* the file is whole: on disk, and its checksum (the guest runs again meanwhile) */
static int warm_save_seal(struct warm_save_ctx *w)
{
	if (fsync(w->fd) < 0 || lseek(w->fd, 0, SEEK_SET) != 0)
		return -errno;
	return warm_file_sum(w->fd, &w->sum, &w->size);
}

/* continue the guest if it ran before the save and does not now (a failed save may have stopped it) */
static void warm_save_resume(struct qmp *q, bool was_running)
{
	enum qmp_runstate rs;

	if (!was_running ||
	    (qmp_query_status(q, &rs, NULL, 0, WARM_QMP_MS) == 0 && rs == QMP_RS_RUNNING))
		return;
	if (qmp_cont(q, WARM_QMP_MS)) {
		const char *desc = NULL, *cls = qmp_last_error(q, &desc);

		log_warn("the guest could not be continued after the save: %s",
			 cls && desc ? desc : "no answer from QEMU");
	}
}

/* the index entry of the state just saved; replaces an older one of that name */
static int warm_save_index(struct sv_ctx *c, struct warm_plan *p, struct qmp *q,
			   const struct warm_save_ctx *w)
{
	json_t *idx = NULL, *it, *old;
	char id[PATH_MAX + 64], ver[64], path[PATH_MAX];
	const json_t *net = json_object_get(c->state, "net");
	const char *addr = state_get_str(net, "ip") ?: state_get_str(net, "addr");
	int ma, mi, mc, rc;

	qmp_version(q, &ma, &mi, &mc);
	snprintf(ver, sizeof(ver), "%d.%d.%d", ma, mi, mc);
	if ((rc = warm_qemu_id(id, sizeof(id))) || (rc = snap_index_load(c->vm_dir, &idx)))
		return rc;
	old = snap_item(idx, w->name);
	if (old && !strcmp(snap_item_kind(old), "running") &&
	    json_is_string(json_object_get(old, "tag")))
		(void)warm_tag_cmd(q, "blockdev-snapshot-delete-internal-sync", w->dev,
				   json_string_value(json_object_get(old, "tag")));
	else if (old && !snap_path(c->vm_dir, w->name, "qcow2", path, sizeof(path)))
		unlink(path);
	it = json_pack("{s:s, s:I, s:s, s:s, s:I, s:I, s:s, s:s, s:o, s:O, s:I}", "kind", "running",
		       "created_at", (json_int_t)time(NULL), "vmstate", strrchr(w->dst, '/') + 1,
		       "tag", w->tag, "size", (json_int_t)w->size, "sum", (json_int_t)w->sum, "qemu",
		       ver, "qemu_id", id, "config", warm_config(c), "argv", p->argv, "save_ms",
		       (json_int_t)w->paused_ms);
	if (!it) {
		json_decref(idx);
		return -ENOMEM;
	}
	snap_set_str(it, "parent", json_string_value(json_object_get(idx, "current")));
	snap_set_str(it, "addr", c->vm->network.mode == CFG_NET_NAT ? addr : NULL);
	json_object_set_new(json_object_get(idx, "items"), w->name, it);
	snap_set_str(idx, "current", w->name);
	snap_set_str(idx, "resume", w->name);
	rc = snap_index_save(c->vm_dir, idx);
	json_decref(idx);
	return rc;
}

static int warm_save_prepare(struct sv_ctx *c, struct warm_save_ctx *w, struct qmp *q)
{
	char disk[PATH_MAX], dir[PATH_MAX];
	int rc;

	/* by path, or (QEMU got its files as fd sets) as the one writable drive */
	if ((rc = snap_disk_path(c->vm_dir, disk, sizeof(disk))) ||
	    ((rc = qmp_block_device(q, disk, w->dev, sizeof(w->dev), WARM_QMP_MS)) == -ENOENT &&
	     (rc = qmp_block_device(q, NULL, w->dev, sizeof(w->dev), WARM_QMP_MS)))) {
		log_errno(rc, "finding the disk %s in QEMU", disk);
		return rc;
	}
	/*
	 * Written back while the guest still runs: the disk tag's flush, in
	 * the pause, then finds little left to write (right after a boot or
	 * cloud-init, seconds of it on a busy disk).  Not fatal: the flush in
	 * the pause does it anyway.
	 */
	if ((rc = disk_fsync_path(disk)))
		log_debug("fsync %s before the save: %s", disk, strerror(-rc));
	if ((rc = util_snprintf(w->tag, sizeof(w->tag), "hutch-warm-%s-%lld", w->name,
				(long long)time(NULL))) ||
	    (rc = util_path_join(dir, sizeof(dir), c->vm_dir, "snapshots")) ||
	    (rc = util_mkdir_p(dir, 0700)) ||
	    (rc = snap_path(c->vm_dir, w->name, "vmstate", w->dst, sizeof(w->dst))) ||
	    (rc = util_snprintf(w->part, sizeof(w->part), "%s.part", w->dst)))
		return rc;
	unlink(w->part);	/* a killed save's */
	w->fd = open(w->part, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	return w->fd < 0 ? -errno : 0;
}

json_t *warm_save(struct sv_ctx *c, struct warm_plan *p, struct qmp *q, const char *line,
		  size_t n)
{
	struct warm_save_ctx w = { .fd = -1 };
	uint64_t stopped_at = 0;
	size_t unplugged = 0;
	enum qmp_runstate rs = QMP_RS_OTHER;
	int rc;

	if (!q)
		return json_pack("{s:b, s:s}", "ok", 0, "error", "no QMP connection");
	if (warm_ctl_name(line, n, w.name, sizeof(w.name)))
		return json_pack("{s:b, s:s}", "ok", 0, "error", "bad snapshot name");
	log_info("saving the running state %s", w.name);
	/* a guest the user paused (`hutch suspend`) stays paused */
	(void)qmp_query_status(q, &rs, NULL, 0, WARM_QMP_MS);
	rc = warm_save_prepare(c, &w, q);
	if (!rc)
		rc = warm_unplug(p, q, &unplugged);
	if (!rc)
		rc = warm_save_stopped(&w, q, &stopped_at);
	if (rc && w.tagged)
		(void)warm_tag_cmd(q, "blockdev-snapshot-delete-internal-sync", w.dev, w.tag);
	warm_replug(p, q, unplugged);
	warm_save_resume(q, rs == QMP_RS_RUNNING);
	w.paused_ms = stopped_at ? util_monotonic_ms() - stopped_at : 0;
	if (!rc)
		rc = warm_save_seal(&w);
	if (w.fd >= 0)
		close(w.fd);
	if (!rc && rename(w.part, w.dst) < 0)
		rc = -errno;
	if (!rc) {
		char dir[PATH_MAX];

		rc = util_path_join(dir, sizeof(dir), c->vm_dir, "snapshots") ?: disk_fsync_path(dir);
	}
	if (!rc)
		rc = warm_save_index(c, p, q, &w);
	if (rc) {
		unlink(w.part);
		log_errno(rc, "saving the running state %s", w.name);
		return json_pack("{s:b, s:s}", "ok", 0, "error", strerror(-rc));
	}
	log_info("saved %s: %llu bytes, guest paused %llu ms (disk tag %llu, memory %llu, "
		 "devices and cont %llu)", w.name, w.size, w.paused_ms, w.tag_ms, w.mem_ms,
		 w.paused_ms - w.tag_ms - w.mem_ms);
	return json_pack("{s:b, s:s, s:I, s:I}", "ok", 1, "file", w.dst, "size", (json_int_t)w.size,
			 "paused_ms", (json_int_t)w.paused_ms);
}

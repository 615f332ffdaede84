// SPDX-License-Identifier: MIT
/*
 * hutch mount / hutch unmount [NAME] [TAG...]
 *
 * Host access to isolated shared folders while the VM is halted: `mount`
 * creates a missing image (so a project can be pre-populated before the
 * first `up`) and loop-mounts it on the folder, nosymfollow,nodev,nosuid
 * like the supervisor does; `unmount` undoes it.  While the VM runs the
 * supervisor owns the mount, so both refuse.  Without TAGs, every share of
 * the VM; a share with `isolation: false` is the folder itself: nothing to do.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/priv.h"
#include "share/share.h"
#include "src/cfg.h"
#include "src/cmd.h"
#include "src/log.h"
#include "src/state.h"
#include "src/util.h"

/* the config module's; weak so this file links in builds without it */
#pragma weak cfg_load
#pragma weak cfg_free
#pragma weak cfg_find_vm

/*
 * Does a supervisor run for @name?  state.json is read directly (bounded,
 * type-checked) and the pid is checked to be alive, so a stale "running"
 * left by a crash does not block `hutch mount` (gc cleans that up).
 */
static bool share_vm_running(const char *name)
{
	char dir[PATH_MAX], path[PATH_MAX + 16], *buf = NULL;
	const char *status;
	json_int_t pid;
	json_t *st;
	size_t n;
	bool running = false;

	if (util_vm_dir(name, dir, sizeof(dir)) < 0 ||
	    util_path_join(path, sizeof(path), dir, "state.json") < 0 ||
	    util_read_file(path, STATE_MAX_BYTES, &buf, &n) < 0)
		return false;
	st = json_loadb(buf, n, 0, NULL);
	free(buf);
	if (!json_is_object(st)) {
		json_decref(st);
		return false;
	}
	status = json_string_value(json_object_get(st, "status"));
	pid = json_integer_value(json_object_get(st, "supervisor_pid"));
	if (status && (strcmp(status, "starting") == 0 || strcmp(status, "running") == 0 ||
		       strcmp(status, "paused") == 0) &&
	    pid > 1 && pid <= INT_MAX && (kill((pid_t)pid, 0) == 0 || errno == EPERM))
		running = true;
	json_decref(st);
	return running;
}

static int share_cmd(struct cli *cli, int argc, char **argv, bool do_mount)
{
	char path[PATH_MAX + 16], img[PATH_MAX];
	const struct cfg_vm *vm = NULL;
	struct cfg_error ce = { { 0 } };
	struct cfg *c = NULL;
	int i = 1, rc, ret = EXIT_OK;

	if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		printf("usage: hutch %s [NAME] [TAG...]\n", argv[0]);
		return EXIT_OK;
	}
	if (!cfg_load || !cfg_find_vm) {
		log_err("%s: this build of hutch cannot read hutch.yaml", argv[0]);
		return EXIT_ERR;
	}
	if (util_path_join(path, sizeof(path), cli->dir, "hutch.yaml") < 0)
		return EXIT_USAGE;
	rc = cfg_load(path, &c, &ce);
	if (rc < 0) {
		log_err("%s", ce.msg[0] ? ce.msg : "cannot load hutch.yaml");
		return rc == -EINVAL ? EXIT_USAGE : EXIT_ERR;
	}
	if (argc > 1 && argv[1][0] != '-') {
		for (size_t k = 0; k < c->n_vms; k++)
			if (strcmp(c->vms[k].name, argv[1]) == 0)
				vm = &c->vms[k];
		if (vm)
			i = 2;
	}
	if (!vm)
		vm = cfg_find_vm(c, NULL);
	if (!vm) {
		log_err("no VM in %s", path);
		ret = EXIT_USAGE;
		goto out;
	}
	for (int a = i; a < argc; a++) {
		bool known = false;

		for (size_t k = 0; k < vm->n_shares; k++)
			known |= vm->shares[k].tag && strcmp(vm->shares[k].tag, argv[a]) == 0;
		if (!known) {
			log_err("VM %s has no shared folder with tag '%s'", vm->name, argv[a]);
			ret = EXIT_USAGE;
			goto out;
		}
	}
	if (share_vm_running(vm->name)) {
		log_err("VM %s is running: its shared folders belong to it until 'hutch halt'",
			vm->name);
		ret = EXIT_ERR;
		goto out;
	}
	if (vm->n_shares == 0 && !cli->quiet)
		log_info("VM %s has no shared folders", vm->name);

	for (size_t k = 0; k < vm->n_shares; k++) {
		const struct cfg_share *s = &vm->shares[k];
		bool want = i >= argc, created = false;
		int loop;

		for (int a = i; a < argc; a++)
			want |= strcmp(s->tag, argv[a]) == 0;
		if (!want)
			continue;
		if (!s->isolation) {
			log_info("share %s: isolation is off, %s itself is shared; nothing to %s",
				 s->tag, s->host, argv[0]);
			continue;
		}
		if ((rc = share_image_path(s, img, sizeof(img))) < 0) {
			ret = EXIT_ERR;
			continue;
		}
		if (do_mount) {
			if ((rc = share_check_paths(s, c->dir)) < 0) {
				ret = EXIT_USAGE;
				continue;
			}
			rc = share_image_create(img, s->size_gib, getuid(), getgid(), &created);
			if (rc == 0)	/* the seam (net/priv.h); kept after this command exits */
				rc = priv_mount(img, s->host, true, &loop);
			if (rc == -ENOPKG) {
				ret = EXIT_NOSETUP;
				break;
			}
			if (rc < 0) {
				log_errno(rc, "share %s: cannot mount %s on %s", s->tag, img, s->host);
				ret = EXIT_ERR;
				continue;
			}
			if (!cli->quiet)
				log_info("share %s: %s mounted on %s (nosymfollow,nodev,nosuid)", s->tag,
					 img, s->host);
		} else {
			rc = priv_unmount(img, s->host);
			if (rc == -EBUSY) {
				log_err("share %s: %s is mounted from something else; not touching it",
					s->tag, s->host);
				ret = EXIT_ERR;
			} else if (rc < 0 && rc != -ENOENT) {
				log_errno(rc, "share %s: cannot unmount %s", s->tag, s->host);
				ret = EXIT_ERR;
			} else if (!cli->quiet) {
				log_info("share %s: %s unmounted", s->tag, s->host);
			}
		}
	}
out:
	if (cfg_free)
		cfg_free(c);
	return ret;
}

int cmd_mount(struct cli *cli, int argc, char **argv)
{
	return share_cmd(cli, argc, argv, true);
}

int cmd_unmount(struct cli *cli, int argc, char **argv)
{
	return share_cmd(cli, argc, argv, false);
}

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
 * An image hutch did not make, or one of another user, is refused with exit
 * 77 (share.h, DOC: share images); so is a folder outside the project.
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
#include "src/proc.h"
#include "src/state.h"
#include "src/util.h"
#include "src/vm.h"

/*
 * `hutch mount` for one isolated share: through the privileged seam
 * (net/priv.h), which makes the image if missing and mounts it, kept after
 * this command exits
 */
static int share_cmd_mount(const struct cli *cli, const struct cfg_share *s)
{
	int rc, loop;

	if ((rc = share_check_paths(s, cli->dir)) < 0)
		return rc == -EPERM ? EXIT_NOPERM : EXIT_USAGE;
	rc = priv_mount(s->host, s->size_gib, true, &loop);
	if (rc == -ENOPKG)
		return EXIT_NOSETUP;
	if (rc < 0) {
		log_errno(rc, "share %s: cannot mount its image on %s", s->tag, s->host);
		return rc == -EPERM ? EXIT_NOPERM : EXIT_ERR;
	}
	if (!cli->quiet)
		log_info("share %s: %s.img mounted on %s (nosymfollow,nodev,nosuid)", s->tag, s->host,
			 s->host);
	return EXIT_OK;
}

static int share_cmd(struct cli *cli, struct vm_target *t, int argc, char **argv, bool do_mount)
{
	char img[PATH_MAX];
	const struct cfg_vm *vm = t->vm;
	int i = 1, rc, ret = EXIT_OK;

	for (int a = i; a < argc; a++) {
		bool known = false;

		for (size_t k = 0; k < vm->n_shares; k++)
			known |= vm->shares[k].tag && strcmp(vm->shares[k].tag, argv[a]) == 0;
		if (!known) {
			log_err("VM %s has no shared folder with tag '%s'", vm->name, argv[a]);
			return EXIT_USAGE;
		}
	}
	/* checked under the VM lock: no `up` can be starting it meanwhile */
	if (t->alive) {
		log_err("VM %s is running: its shared folders belong to it until 'hutch halt'",
			vm->name);
		return EXIT_ERR;
	}
	if (vm->n_shares == 0 && !cli->quiet)
		log_info("VM %s has no shared folders", vm->name);

	for (size_t k = 0; k < vm->n_shares; k++) {
		const struct cfg_share *s = &vm->shares[k];
		bool want = i >= argc;

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
			rc = share_cmd_mount(cli, s);
			if (rc == EXIT_NOSETUP) {
				ret = rc;
				break;
			}
			if (rc != EXIT_OK)
				ret = rc;
		} else {
			rc = priv_unmount(s->host);
			if (rc == -EPERM) {
				log_err("share %s: %s is not yours; not touching it", s->tag, img);
				ret = EXIT_NOPERM;
			} else if (rc == -EBUSY) {
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
	return ret;
}
static int cmd_mount(struct cli *cli, struct vm_target *t, int argc, char **argv)
{
	return share_cmd(cli, t, argc, argv, true);
}

static int cmd_unmount(struct cli *cli, struct vm_target *t, int argc, char **argv)
{
	return share_cmd(cli, t, argc, argv, false);
}

const struct cmd_entry cmd_mount_entry = {
	.name = "mount",
	.usage = "[NAME] [TAG...]",
	.summary = "mount the shared folders' images on the host",
	.help = "While the VM is halted, mounts the image of each isolated shared folder (or\n"
		"of the folders TAG names) on its folder, nosymfollow,nodev,nosuid, as the\n"
		"supervisor does while the VM runs, so you can fill it before the first up or\n"
		"look into it afterwards. A missing image is created. Folders with\n"
		"'isolation: false' are the folder itself: nothing to do.\n"
		"\n"
		"Example:\n"
		"  hutch mount && cp -r src workspace/ && hutch unmount\n",
	.flags = CMD_F_VM | CMD_F_CFG | CMD_F_CREATE | CMD_F_LOCK | CMD_F_NAME_IF_VM,
	.fn = cmd_mount,
};

const struct cmd_entry cmd_unmount_entry = {
	.name = "unmount",
	.usage = "[NAME] [TAG...]",
	.summary = "unmount them",
	.help = "Unmounts what 'hutch mount' mounted (only mounts of hutch's own images: a\n"
		"folder mounted from anything else is left alone). Refused while the VM runs.\n"
		"\n"
		"Example:\n"
		"  hutch unmount workspace\n",
	.flags = CMD_F_VM | CMD_F_CFG | CMD_F_CREATE | CMD_F_LOCK | CMD_F_NAME_IF_VM,
	.fn = cmd_unmount,
};

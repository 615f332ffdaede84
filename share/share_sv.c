// SPDX-License-Identifier: MIT
/*
 * share_sv: shared folders in a VM's life.
 *
 * CLI side (share_up_ext.before_up): check the shares and create missing
 * images as the user, so the image belongs to them and `up` is what makes
 * it on first use.  Supervisor side (share_sv_ext): .prepare mounts each
 * image (refusing a missing image, a wrong mount, or a folder mounted from
 * elsewhere), starts one virtiofsd per share and adds QEMU's arguments;
 * .teardown stops virtiofsd and unmounts; .gc does the same from state.json
 * after a kill -9, checking every pid before signalling it.
 *
 * state.json "shares": [{"tag", "folder", "image" (null without isolation),
 * "socket", "loop", "virtiofsd_pid", "mounted"}], saved after every step so
 * a crash at any point leaves enough for gc.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/priv.h"
#include "share/share.h"
#include "src/ext.h"
#include "src/log.h"
#include "src/util.h"

/*
 * The core defines these; weak so that share/ links (unit tests, a build
 * before the supervisor exists) and fails cleanly at run time without them.
 */
#pragma weak sv_qemu_arg
#pragma weak sv_state_save

struct share_run {
	pid_t vfs_pid;
	bool mounted;
	int loop;
	char img[PATH_MAX];
	char sock[PATH_MAX];
	json_t *st;		/* this share's entry in state "shares" (borrowed) */
};

struct share_priv {
	size_t n;
	struct share_run r[];
};

/* QEMU's option parser: a ',' inside a value is written ",," */
static int share_qemu_escape(char *dst, size_t n, const char *src)
{
	size_t o = 0;

	for (; *src; src++) {
		if (o + 3 > n)
			return -ENAMETOOLONG;
		if (*src == ',')
			dst[o++] = ',';
		dst[o++] = *src;
	}
	if (o >= n)
		return -ENAMETOOLONG;
	dst[o] = '\0';
	return 0;
}

static int share_save(struct sv_ctx *c)
{
	if (!sv_state_save)
		return -ENOSYS;
	return sv_state_save(c);
}

static int share_arg(struct sv_ctx *c, const char *a)
{
	if (!sv_qemu_arg)
		return -ENOSYS;
	return sv_qemu_arg(c, a);
}

static int share_paths_for(const struct sv_ctx *c, const struct cfg_share *s,
			   struct share_run *r)
{
	int rc;

	if (!s->tag || !share_tag_valid(s->tag)) {
		log_err("shared folder %s: tag '%s' is not [A-Za-z0-9_.-]{1,36}", s->host,
			s->tag ? s->tag : "");
		return -EINVAL;
	}
	rc = util_snprintf(r->sock, sizeof(r->sock), "%s/vfs-%s.sock", c->vm_dir, s->tag);
	if (rc == 0 && s->isolation)
		rc = share_image_path(s, r->img, sizeof(r->img));
	return rc;
}

static void share_teardown(struct sv_ctx *c, void *priv)
{
	struct share_priv *p = priv;

	if (!p)
		return;
	for (size_t i = p->n; i-- > 0;) {
		struct share_run *r = &p->r[i];
		const struct cfg_share *s = &c->vm->shares[i];
		int rc;

		if (r->vfs_pid > 0) {
			rc = share_virtiofsd_stop(r->vfs_pid, 3000, true);
			if (rc < 0)
				log_errno(rc, "share %s: virtiofsd %ld did not stop", s->tag,
					  (long)r->vfs_pid);
			else
				r->vfs_pid = 0;
			unlink(r->sock);
		}
		if (r->mounted) {
			rc = priv_unmount(r->img, s->host);
			if (rc < 0)
				log_errno(rc, "share %s: cannot unmount %s", s->tag, s->host);
			else
				r->mounted = false;
		}
		if (r->st) {
			json_object_set_new(r->st, "virtiofsd_pid", json_integer(r->vfs_pid));
			json_object_set_new(r->st, "mounted", json_boolean(r->mounted));
		}
	}
	share_save(c);
	free(p);
}

static int share_prepare(struct sv_ctx *c, void **privp)
{
	const struct cfg_vm *vm = c->vm;
	char exe[PATH_MAX], arg[PATH_MAX + 128], esc[2 * PATH_MAX];
	struct share_priv *p;
	json_t *arr;
	int rc;

	if (vm->n_shares == 0)
		return 0;
	rc = share_virtiofsd_find(exe, sizeof(exe));
	if (rc < 0) {
		log_err("virtiofsd not found (PATH, /usr/libexec, /usr/lib/qemu): "
			"install it or remove shared_folders");
		return rc;
	}
	p = calloc(1, sizeof(*p) + vm->n_shares * sizeof(p->r[0]));
	arr = json_array();
	if (!p || !arr || json_object_set_new(c->state, "shares", arr) < 0) {
		free(p);
		return -ENOMEM;
	}

	for (size_t i = 0; i < vm->n_shares; i++) {
		const struct cfg_share *s = &vm->shares[i];
		struct share_run *r = &p->r[i];
		char log[PATH_MAX];

		r->loop = -1;
		if ((rc = share_paths_for(c, s, r)) < 0 ||
		    (rc = share_check_paths(s, c->project_dir)) < 0)
			goto err;
		r->st = json_pack("{s:s, s:s, s:o, s:s, s:i, s:i, s:b}", "tag", s->tag, "folder",
				  s->host, "image", s->isolation ? json_string(r->img) : json_null(),
				  "socket", r->sock, "loop", -1, "virtiofsd_pid", 0, "mounted", 0);
		if (!r->st || json_array_append_new(arr, r->st) < 0) {
			rc = -ENOMEM;
			goto err;
		}
		p->n = i + 1;

		if (s->isolation) {
			struct stat st;

			/* created by `up` (before_up) or `hutch mount`; never silently here */
			if (stat(r->img, &st) < 0) {
				rc = -errno;
				log_errno(rc, "share %s: image %s missing (run 'hutch mount' to create it)",
					  s->tag, r->img);
				goto err;
			}
			/* recorded before mounting, so a crash in between is still gc'd */
			json_object_set_new(r->st, "mounted", json_true());
			share_save(c);
			rc = priv_mount(r->img, s->host, false, &r->loop);	/* the seam: net/priv.h */
			if (rc < 0) {
				json_object_set_new(r->st, "mounted", json_false());
				goto err;
			}
			r->mounted = true;
			json_object_set_new(r->st, "loop", json_integer(r->loop));
		} else if (mkdir(s->host, 0755) == 0) {
			if (geteuid() == 0 && chown(s->host, c->uid, c->gid) < 0)
				log_warno(-errno, "chown %s", s->host);
		}

		if ((rc = util_snprintf(log, sizeof(log), "%s/vfs-%s.log", c->vm_dir, s->tag)) < 0)
			goto err;
		rc = share_virtiofsd_start(exe, s->host, r->sock, log, true, &r->vfs_pid);
		if (rc < 0) {
			log_errno(rc, "share %s: cannot start virtiofsd", s->tag);
			goto err;
		}
		json_object_set_new(r->st, "virtiofsd_pid", json_integer(r->vfs_pid));
		share_save(c);
	}

	/* vhost-user needs guest RAM QEMU can share with virtiofsd: one backend for all */
	if ((rc = util_snprintf(arg, sizeof(arg),
				"memory-backend-memfd,id=hutch-mem,size=%uM,share=on",
				vm->memory_mib)) < 0 ||
	    (rc = share_arg(c, "-object")) < 0 || (rc = share_arg(c, arg)) < 0 ||
	    (rc = share_arg(c, "-numa")) < 0 || (rc = share_arg(c, "node,memdev=hutch-mem")) < 0)
		goto err;
	for (size_t i = 0; i < vm->n_shares; i++) {
		if ((rc = share_qemu_escape(esc, sizeof(esc), p->r[i].sock)) < 0 ||
		    (rc = util_snprintf(arg, sizeof(arg), "socket,id=hutch-vfs%zu,path=%s", i, esc)) < 0 ||
		    (rc = share_arg(c, "-chardev")) < 0 || (rc = share_arg(c, arg)) < 0 ||
		    (rc = util_snprintf(arg, sizeof(arg),
					"vhost-user-fs-pci,chardev=hutch-vfs%zu,tag=%s", i,
					vm->shares[i].tag)) < 0 ||
		    (rc = share_arg(c, "-device")) < 0 || (rc = share_arg(c, arg)) < 0)
			goto err;
	}
	if ((rc = share_save(c)) < 0)
		goto err;
	*privp = p;
	return 0;

err:
	share_teardown(c, p);
	return rc;
}

/* an entry of state "shares", type-checked: state.json is untrusted input */
static void share_gc_one(json_t *e)
{
	const char *sock = json_string_value(json_object_get(e, "socket"));
	const char *img = json_string_value(json_object_get(e, "image"));
	const char *dir = json_string_value(json_object_get(e, "folder"));
	json_int_t pid = json_integer_value(json_object_get(e, "virtiofsd_pid"));
	int rc;

	if (sock && pid > 1 && pid <= INT_MAX) {
		/* the pid may belong to someone else by now: only a virtiofsd on our socket */
		if (share_pid_is_virtiofsd((pid_t)pid, sock)) {
			log_info("stopping leftover virtiofsd %lld", (long long)pid);
			rc = share_virtiofsd_stop((pid_t)pid, 3000, false);
			if (rc < 0)
				log_errno(rc, "virtiofsd %lld did not stop", (long long)pid);
		}
		json_object_set_new(e, "virtiofsd_pid", json_integer(0));
	}
	if (sock && sock[0] == '/')
		unlink(sock);
	if (img && dir && img[0] == '/' && dir[0] == '/') {
		/* the privileged side only touches the mount when it is this image's, and ours */
		rc = priv_unmount(img, dir);
		if (rc < 0 && rc != -EBUSY && rc != -ENOENT)
			log_errno(rc, "cannot unmount %s", dir);
		else
			json_object_set_new(e, "mounted", json_false());
	}
}

static int share_gc(const char *vm_dir, json_t *state)
{
	json_t *arr = json_object_get(state, "shares"), *e;
	size_t i;

	(void)vm_dir;
	if (!json_is_array(arr))
		return 0;
	json_array_foreach(arr, i, e)
		if (json_is_object(e))
			share_gc_one(e);
	return 0;
}

static int share_inspect(const char *vm_dir, json_t *state, FILE *out, json_t *json)
{
	json_t *arr = json_object_get(state, "shares"), *e, *copy;
	size_t i;

	(void)vm_dir;
	if (!json_is_array(arr))
		return 0;
	copy = json ? json_array() : NULL;
	json_array_foreach(arr, i, e) {
		const char *tag = json_string_value(json_object_get(e, "tag"));
		const char *dir = json_string_value(json_object_get(e, "folder"));
		const char *img = json_string_value(json_object_get(e, "image"));
		const char *sock = json_string_value(json_object_get(e, "socket"));
		json_int_t pid = json_integer_value(json_object_get(e, "virtiofsd_pid"));
		bool running = sock && pid > 1 && pid <= INT_MAX &&
			       share_pid_is_virtiofsd((pid_t)pid, sock);
		bool mounted = img && dir && share_verify(img, dir, NULL) == 0;
		char t[80], d[256], im[256];

		if (!json_is_object(e))
			continue;
		log_escape(t, sizeof(t), tag ? tag : "?", tag ? strlen(tag) : 1);
		log_escape(d, sizeof(d), dir ? dir : "?", dir ? strlen(dir) : 1);
		log_escape(im, sizeof(im), img ? img : "", img ? strlen(img) : 0);
		if (out)
			fprintf(out, "share %s: %s%s%s%s, virtiofsd %s\n", t, d,
				img ? " on image " : " (no isolation)", im,
				img ? (mounted ? " (mounted nosymfollow,nodev,nosuid)" : " (not mounted)")
				    : "",
				running ? "running" : "not running");
		if (copy) {
			json_t *o = json_deep_copy(e);

			if (o) {
				json_object_set_new(o, "virtiofsd_running", json_boolean(running));
				json_object_set_new(o, "mounted_now", json_boolean(mounted));
				json_array_append_new(copy, o);
			}
		}
	}
	if (copy)
		json_object_set_new(json, "shares", copy);
	return 0;
}

const struct sv_ext share_sv_ext = {
	.name = "share",
	.prepare = share_prepare,
	.teardown = share_teardown,
	.gc = share_gc,
	.inspect = share_inspect,
};

/* before_up: checks and first-use image creation, as the invoking user */
static int share_before_up(struct up_ctx *u)
{
	for (size_t i = 0; i < u->vm->n_shares; i++) {
		const struct cfg_share *s = &u->vm->shares[i];
		char img[PATH_MAX];
		int rc;

		if (!s->tag || !share_tag_valid(s->tag)) {
			log_err("shared folder %s: tag is not [A-Za-z0-9_.-]{1,36}", s->host);
			return -EINVAL;
		}
		if ((rc = share_check_paths(s, u->cli->dir)) < 0)
			return rc;
		if (!s->isolation)
			continue;
		if ((rc = share_image_path(s, img, sizeof(img))) < 0 ||
		    (rc = share_image_create(img, s->size_gib, getuid(), getgid(), NULL)) < 0) {
			log_errno(rc, "share %s: cannot create %s", s->tag, img);
			return rc;
		}
	}
	return 0;
}

const struct up_ext share_up_ext = {
	.name = "share",
	.before_up = share_before_up,
};

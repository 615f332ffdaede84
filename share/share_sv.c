// SPDX-License-Identifier: MIT
/*
 * share_sv: shared folders in a VM's life.
 *
 * CLI side (share_up_ext.before_up): check the shares and create missing
 * images as the user, so the image belongs to them and `up` is what makes
 * it on first use.  Supervisor side (share_sv_ext): .prepare mounts each
 * image (refusing a missing or foreign image, a wrong mount, a folder
 * mounted from elsewhere or not empty), starts one virtiofsd per share,
 * watches it through a pidfd and adds QEMU's arguments; .teardown stops
 * virtiofsd and unmounts; .gc does the same from state.json after a kill
 * -9, checking every pid before signalling it.
 *
 * state.json "shares": [{"tag", "folder", "image" (null without isolation),
 * "socket", "loop", "virtiofsd_pid", "mounted", and once virtiofsd died
 * under a running VM "broken": true, "reason": "virtiofsd exited: ..."}],
 * saved after every step so a crash at any point leaves enough for gc.
 *
 * A virtiofsd that dies while the VM runs marks its share broken; the VM
 * is not stopped.  Nothing the isolation relies on goes with virtiofsd (the
 * image stays mounted nosymfollow, the guest just gets no answers on that
 * tag), whereas stopping the VM would throw away everything the guest holds
 * outside the share (running agents, unsaved state) for the loss of one
 * folder; a guest that kills its own virtiofsd gains nothing by it.  The
 * death is logged, shown by `hutch status`, and `halt` + `up` restore the
 * share (virtiofs cannot reconnect a new daemon to a running QEMU 7.2).
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "net/priv.h"
#include "share/share.h"
#include "src/ext.h"
#include "src/log.h"
#include "src/proc.h"
#include "src/util.h"

struct share_run {
	const struct cfg_share *s;
	pid_t vfs_pid;
	int pidfd;		/* virtiofsd's, watched by the supervisor's loop; -1 */
	int qemu_fd;		/* our end of the vhost-user connection, for QEMU; -1 */
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

/*
 * The checks both sides make: a tag that needs no quoting, a folder path
 * that cannot split virtiofsd's options, a folder that does not expose the
 * project.  Return: 0, or a negative errno (logged)
 */
static int share_check_one(const struct cfg_share *s, const char *project_dir)
{
	if (!s->tag || !share_tag_valid(s->tag)) {
		log_err("shared folder %s: tag '%s' is not [A-Za-z0-9_.-]{1,36}", s->host,
			s->tag ? s->tag : "");
		return -EINVAL;
	}
	if (!share_path_opt_safe(s->host)) {
		log_err("shared folder %s: ',', '\\' or a control character in its path would "
			"split virtiofsd's options; rename the folder", s->host);
		return -EINVAL;
	}
	return share_check_paths(s, project_dir);
}

static int share_paths_for(const struct sv_ctx *c, const struct cfg_share *s,
			   struct share_run *r)
{
	int rc = share_check_one(s, c->project_dir);

	if (rc == 0)
		rc = util_snprintf(r->sock, sizeof(r->sock), "%s/vfs-%s.sock", c->vm_dir, s->tag);
	if (rc == 0 && s->isolation)
		rc = share_image_path(s, r->img, sizeof(r->img));
	return rc;
}

/* "killed by signal 9", "exit status 1" */
static void share_describe_exit(int status, char *buf, size_t n)
{
	if (WIFSIGNALED(status))
		(void)util_snprintf(buf, n, "killed by signal %d", WTERMSIG(status));
	else
		(void)util_snprintf(buf, n, "exit status %d", WEXITSTATUS(status));
}

/*
 * virtiofsd's pidfd is readable: it exited.  While the VM runs that is a
 * fault: the share is marked broken (see the DOC at the top for why the VM
 * is not stopped).  While the VM is going down it is expected: virtiofsd
 * exits by itself when QEMU closes the vhost-user socket.
 */
static void share_vfs_exited(struct sv_ctx *c, int fd, void *arg)
{
	struct share_run *r = arg;
	char how[64] = "already reaped", reason[96];
	int status;

	sv_unwatch_fd(c, fd);
	close(fd);
	r->pidfd = -1;
	if (r->vfs_pid > 0 && waitpid(r->vfs_pid, &status, WNOHANG) == r->vfs_pid)
		share_describe_exit(status, how, sizeof(how));
	r->vfs_pid = 0;
	if (r->st)
		json_object_set_new(r->st, "virtiofsd_pid", json_integer(0));
	if (!sv_vm_running(c)) {
		log_info("share %s: virtiofsd exited (%s) with the VM", r->s->tag, how);
		return;
	}
	(void)util_snprintf(reason, sizeof(reason), "virtiofsd exited: %s", how);
	log_err("share %s: %s while the VM runs; the guest's %s no longer answers. The VM keeps "
		"running; 'hutch halt' and 'hutch up' restore the share", r->s->tag, reason,
		r->s->guest ? r->s->guest : r->s->tag);
	if (r->st) {
		json_object_set_new(r->st, "broken", json_true());
		json_object_set_new(r->st, "reason", json_string(reason));
	}
	if (sv_state_save(c) < 0)
		log_warn("could not save state.json");
}

/*
 * virtiofsd as the unprivileged user (share_virtiofsd_start_fd()): we bind
 * and listen on the socket ourselves (0600, in the VM's directory), connect
 * to it at once (that end goes to QEMU as "-chardev socket,fd="), hand the
 * listening end to virtiofsd, and unlink the path: nobody else can connect,
 * and neither program needs to reach the VM's directory.
 */
static int share_vfs_start(const char *exe, const char *dir,
			   struct share_run *r, const char *log)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct proc_user u;
	int lfd = -1, cfd = -1, rc;
	mode_t old;

	if ((rc = proc_user_resolve(&u)) < 0)
		return rc;
	if ((rc = util_snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", r->sock)) < 0)
		return rc;
	if (unlink(r->sock) < 0 && errno != ENOENT)
		return -errno;
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || cfd < 0) {
		rc = -errno;
		goto out;
	}
	old = umask(0177);
	rc = bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
	umask(old);
	if (rc == 0 && (listen(lfd, 1) < 0 || connect(cfd, (struct sockaddr *)&sa, sizeof(sa)) < 0))
		rc = -errno;
	unlink(r->sock);
	if (rc == 0)
		rc = share_virtiofsd_start_fd(exe, dir, lfd, r->sock, log, &u, &r->vfs_pid,
					      &r->pidfd);
	if (rc == 0) {
		r->qemu_fd = cfd;
		cfd = -1;
	}
out:
	if (lfd >= 0)
		close(lfd);
	if (cfd >= 0)
		close(cfd);
	return rc;
}

static void share_teardown(struct sv_ctx *c, void *priv)
{
	struct share_priv *p = priv;

	if (!p)
		return;
	for (size_t i = p->n; i-- > 0;) {
		struct share_run *r = &p->r[i];
		const struct cfg_share *s = r->s;
		int rc;

		if (r->pidfd >= 0) {
			sv_unwatch_fd(c, r->pidfd);
			close(r->pidfd);
			r->pidfd = -1;
		}
		if (r->qemu_fd >= 0) {
			close(r->qemu_fd);
			r->qemu_fd = -1;
		}
		if (r->vfs_pid > 0) {
			rc = share_virtiofsd_stop(r->vfs_pid, 3000, true);
			if (rc < 0)
				log_errno(rc, "share %s: virtiofsd %ld did not stop", s->tag,
					  (long)r->vfs_pid);
			else
				r->vfs_pid = 0;
		}
		unlink(r->sock);
		if (r->mounted) {
			rc = priv_unmount(s->host);	/* the seam: net/priv.h */
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
	sv_state_save(c);
	free(p);
}

/*
 * Mount one isolated share's image on its folder, recording it first for
 * gc.  Through the privileged seam (net/priv.h): it makes the image on
 * first use and mounts only images it made (their provenance records).
 */
static int share_prepare_mount(struct sv_ctx *c, struct share_run *r)
{
	int rc;

	/* recorded before mounting, so a crash in between is still gc'd */
	json_object_set_new(r->st, "mounted", json_true());
	sv_state_save(c);
	rc = priv_mount(r->s->host, r->s->size_gib, false, &r->loop);
	if (rc < 0) {
		json_object_set_new(r->st, "mounted", json_false());
		log_errno(rc, "share %s: cannot mount %s", r->s->tag, r->img);
		return rc;
	}
	r->mounted = true;
	json_object_set_new(r->st, "loop", json_integer(r->loop));
	return 0;
}

/* one share: its state entry, its mount, its virtiofsd (watched) */
static int share_prepare_one(struct sv_ctx *c, struct share_run *r, json_t *arr,
			     const char *exe)
{
	const struct cfg_share *s = r->s;
	char log[PATH_MAX];
	int rc;

	if ((rc = share_paths_for(c, s, r)) < 0)
		return rc;
	r->st = json_pack("{s:s, s:s, s:o, s:s, s:i, s:i, s:b}", "tag", s->tag, "folder", s->host,
			  "image", s->isolation ? json_string(r->img) : json_null(), "socket",
			  r->sock, "loop", -1, "virtiofsd_pid", 0, "mounted", 0);
	if (!r->st || json_array_append_new(arr, r->st) < 0)
		return -ENOMEM;
	if (s->isolation) {
		if ((rc = share_prepare_mount(c, r)) < 0)
			return rc;
	} else if (mkdir(s->host, 0755) == 0) {
		if (geteuid() == 0 && chown(s->host, c->uid, c->gid) < 0)
			log_warno(-errno, "chown %s", s->host);
	}
	if ((rc = util_snprintf(log, sizeof(log), "%s/vfs-%s.log", c->vm_dir, s->tag)) < 0)
		return rc;
	rc = share_vfs_start(exe, s->host, r, log);
	if (rc < 0) {
		log_errno(rc, "share %s: cannot start virtiofsd", s->tag);
		return rc;
	}
	json_object_set_new(r->st, "virtiofsd_pid", json_integer(r->vfs_pid));
	rc = sv_watch_fd(c, r->pidfd, share_vfs_exited, r);
	if (rc < 0)
		log_errno(rc, "share %s: cannot watch virtiofsd", s->tag);
	sv_state_save(c);
	return rc;
}

/* QEMU's side: one shared memory backend, then a socket chardev and device per share */
static int share_qemu_args(struct sv_ctx *c, const struct share_priv *p)
{
	const struct cfg_vm *vm = c->vm;
	char arg[PATH_MAX * 2 + 128];
	int rc;

	/* vhost-user needs guest RAM QEMU can share with virtiofsd: one backend for all */
	if ((rc = util_snprintf(arg, sizeof(arg),
				"memory-backend-memfd,id=hutch-mem,size=%uM,share=on",
				vm->memory_mib)) < 0 ||
	    (rc = sv_qemu_arg(c, "-object")) < 0 || (rc = sv_qemu_arg(c, arg)) < 0 ||
	    (rc = sv_qemu_arg(c, "-numa")) < 0 || (rc = sv_qemu_arg(c, "node,memdev=hutch-mem")) < 0)
		return rc;
	for (size_t i = 0; i < p->n; i++) {
		/* QEMU gets its end of virtiofsd's socket as an fd: no path to reach */
		int qfd = sv_qemu_fd(c, p->r[i].qemu_fd);

		if ((rc = qfd) < 0 ||
		    (rc = util_snprintf(arg, sizeof(arg), "socket,id=hutch-vfs%zu,fd=%d", i, qfd)) < 0 ||
		    (rc = sv_qemu_arg(c, "-chardev")) < 0 || (rc = sv_qemu_arg(c, arg)) < 0 ||
		    (rc = util_snprintf(arg, sizeof(arg), "vhost-user-fs-pci,chardev=hutch-vfs%zu,tag=%s",
					i, p->r[i].s->tag)) < 0 ||
		    (rc = sv_qemu_arg(c, "-device")) < 0 || (rc = sv_qemu_arg(c, arg)) < 0)
			return rc;
	}
	return 0;
}

static int share_prepare(struct sv_ctx *c, void **privp)
{
	const struct cfg_vm *vm = c->vm;
	char exe[PATH_MAX];
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
		struct share_run *r = &p->r[i];

		*r = (struct share_run){ .s = &vm->shares[i], .pidfd = -1, .qemu_fd = -1, .loop = -1 };
		p->n = i + 1;
		if ((rc = share_prepare_one(c, r, arr, exe)) < 0)
			goto err;
	}
	if ((rc = share_qemu_args(c, p)) < 0 || (rc = sv_state_save(c)) < 0)
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
		rc = priv_unmount(dir);
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
			fprintf(out, "share %s: %s%s%s%s, virtiofsd %s%s\n", t, d,
				img ? " on image " : " (no isolation)", im,
				img ? (mounted ? " (mounted nosymfollow,nodev,nosuid)" : " (not mounted)")
				    : "",
				running ? "running" : "not running",
				json_is_true(json_object_get(e, "broken")) ? " (broken: it died while "
									 "the VM ran)" : "");
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

/*
 * before_up: the checks, before anything starts.  The image itself is made
 * on first use by the privileged side when the supervisor mounts it
 * (priv_mount()), so that its provenance record is out of the user's reach.
 */
static int share_before_up(struct up_ctx *u)
{
	int rc;

	for (size_t i = 0; i < u->vm->n_shares; i++)
		if ((rc = share_check_one(&u->vm->shares[i], u->cli->dir)) < 0)
			return rc;
	return 0;
}

const struct up_ext share_up_ext = {
	.name = "share",
	.before_up = share_before_up,
};

/* ---- hutch status ---- */

json_t *share_status(json_t *state)
{
	json_t *arr = json_object_get(state, "shares"), *out, *e;
	size_t i;

	if (!json_is_array(arr) || json_array_size(arr) == 0)
		return NULL;
	out = json_array();
	json_array_foreach(arr, i, e) {
		const char *tag = json_string_value(json_object_get(e, "tag"));
		const char *dir = json_string_value(json_object_get(e, "folder"));
		const char *why = json_string_value(json_object_get(e, "reason"));
		bool broken = json_is_true(json_object_get(e, "broken"));
		json_t *o;

		if (!json_is_object(e) || !tag || !dir)
			continue;
		o = json_pack("{s:s, s:s, s:b, s:b}", "tag", tag, "folder", dir, "isolation",
			      json_is_string(json_object_get(e, "image")), "broken", broken);
		if (o && broken && why)
			json_object_set_new(o, "reason", json_string(why));
		if (o)
			json_array_append_new(out, o);
	}
	return out;
}

void share_status_print(FILE *out, json_t *shares)
{
	json_t *e;
	size_t i;

	json_array_foreach(shares, i, e) {
		const char *tag = json_string_value(json_object_get(e, "tag"));
		const char *why = json_string_value(json_object_get(e, "reason"));
		char t[80], w[160];

		if (!tag)
			continue;
		log_escape(t, sizeof(t), tag, strlen(tag));
		log_escape(w, sizeof(w), why ? why : "", why ? strlen(why) : 0);
		if (json_is_true(json_object_get(e, "broken")))
			fprintf(out, "%-12s %s: broken (%s)\n", "share", t, w[0] ? w : "unknown");
		else
			fprintf(out, "%-12s %s: ok\n", "share", t);
	}
}

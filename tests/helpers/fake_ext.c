// SPDX-License-Identifier: MIT
/*
 * hutch with a fake extension (added with ext_add() after net, share, ssh),
 * to check the core's side of src/ext.h: hooks called in order, QEMU
 * arguments and fds passed, watched fds polled, state saved, teardown and
 * gc run, inspect output, before_down failures.  Supervisor-side events are
 * appended to <vm_dir>/fake.log, CLI-side ones to $FAKE_LOG.
 *
 * usage: fake_ext -C DIR VERB [ARGS...]   (also runs as its own supervisor)
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/cmd.h"
#include "src/ext.h"
#include "src/log.h"
#include "src/util.h"

struct fake {
	int qfd[2];	/* read end passed to QEMU */
	int wfd[2];	/* read end watched by the supervisor */
};

static void fake_log(const char *path, const char *what)
{
	FILE *f;

	if (!path)
		return;
	f = fopen(path, "ae");
	if (f) {
		fprintf(f, "%s\n", what);
		fclose(f);
	}
}

static void sv_mark(struct sv_ctx *c, const char *what)
{
	char p[PATH_MAX];

	if (util_path_join(p, sizeof(p), c->vm_dir, "fake.log") == 0)
		fake_log(p, what);
}

static json_t *fake_obj(struct sv_ctx *c)
{
	json_t *o = json_object_get(c->state, "fake");

	if (!json_is_object(o)) {
		o = json_object();
		json_object_set_new(c->state, "fake", o);
	}
	return o;
}

static void fake_watch_cb(struct sv_ctx *c, int fd, void *arg)
{
	struct fake *f = arg;
	char b;

	if (read(fd, &b, 1) == 1 && fd == f->wfd[0]) {
		json_object_set_new(fake_obj(c), "watched", json_true());
		sv_state_save(c);
		sv_mark(c, "watched");
	}
}

static int fake_prepare(struct sv_ctx *c, void **priv)
{
	struct fake *f = calloc(1, sizeof(*f));
	char arg[64];
	int n;

	if (!f)
		return -ENOMEM;
	if (!c->vm || !c->vm_dir || !c->project_dir || !json_is_object(c->state) ||
	    pipe2(f->qfd, O_CLOEXEC) < 0 || pipe2(f->wfd, O_CLOEXEC) < 0) {
		free(f);
		return -EINVAL;
	}
	n = sv_qemu_fd(c, f->qfd[0]);
	if (n < 0 || snprintf(arg, sizeof(arg), "fd=%d,set=7,opaque=fake", n) < 0 ||
	    sv_qemu_arg(c, "-add-fd") || sv_qemu_arg(c, arg) ||
	    sv_watch_fd(c, f->wfd[0], fake_watch_cb, f)) {
		free(f);
		return -EIO;
	}
	*priv = f;
	sv_mark(c, "prepare");
	return 0;
}

static int fake_started(struct sv_ctx *c, void *priv)
{
	struct fake *f = priv;

	/* too late for QEMU's argv now */
	json_object_set_new(fake_obj(c), "late_arg_refused", json_boolean(sv_qemu_arg(c, "-S") < 0));
	json_object_set_new(fake_obj(c), "started", json_true());
	sv_state_save(c);
	sv_mark(c, "started");
	return write(f->wfd[1], "x", 1) == 1 ? 0 : -EIO;
}

static void fake_teardown(struct sv_ctx *c, void *priv)
{
	struct fake *f = priv;

	sv_unwatch_fd(c, f->wfd[0]);
	close(f->qfd[0]);
	close(f->qfd[1]);
	close(f->wfd[0]);
	close(f->wfd[1]);
	free(f);
	sv_mark(c, "teardown");
}

static int fake_gc(const char *vm_dir, json_t *state)
{
	char p[PATH_MAX];

	if (util_path_join(p, sizeof(p), vm_dir, "fake.log") == 0)
		fake_log(p, json_is_object(json_object_get(state, "fake")) ? "gc with state" : "gc");
	return 0;
}

static int fake_inspect(const char *vm_dir, json_t *state, FILE *out, json_t *json)
{
	(void)vm_dir;
	(void)state;
	if (out)
		fprintf(out, "fake: inspected\n");
	if (json)
		json_object_set_new(json, "fake", json_pack("{s:b}", "inspected", 1));
	return 0;
}

const struct sv_ext test_sv_ext = {
	.name = "fake", .prepare = fake_prepare, .started = fake_started,
	.teardown = fake_teardown, .gc = fake_gc, .inspect = fake_inspect,
};

static int fake_user_data(struct up_ctx *u, char **data, size_t *len)
{
	(void)u;
	*data = strdup("#cloud-config\n# fake-user-data\n");
	if (!*data)
		return -ENOMEM;
	*len = strlen(*data);
	return 0;
}

static int fake_before_up(struct up_ctx *u)
{
	fake_log(getenv("FAKE_LOG"), u->created ? "before_up created" : "before_up");
	return 0;
}

static int fake_wait(struct up_ctx *u)
{
	fake_log(getenv("FAKE_LOG"), up_vm_alive(u) ? "wait alive" : "wait dead");
	return 0;
}

static int fake_after_up(struct up_ctx *u)
{
	(void)u;
	fake_log(getenv("FAKE_LOG"), "after_up");
	return 0;
}

static int fake_before_down(struct up_ctx *u, const char *trigger)
{
	char b[64];

	(void)u;
	snprintf(b, sizeof(b), "before_down %s", trigger);
	fake_log(getenv("FAKE_LOG"), b);
	return getenv("FAKE_FAIL_DOWN") ? -EPERM : 0;
}

static int fake_after_down(struct up_ctx *u, const char *trigger)
{
	char b[64];

	(void)u;
	snprintf(b, sizeof(b), "after_down %s", trigger);
	fake_log(getenv("FAKE_LOG"), b);
	return 0;
}

const struct up_ext test_up_ext = {
	.name = "fake", .user_data = fake_user_data, .before_up = fake_before_up,
	.wait = fake_wait, .after_up = fake_after_up, .before_down = fake_before_down,
	.after_down = fake_after_down,
};

int main(int argc, char **argv)
{
	struct cli cli = { 0 };
	int i = 1;

	log_init("hutch", LOG_LVL_INFO);
	/* explicitly, after net, share and ssh: the core's side of src/ext.h */
	if (ext_add(&test_sv_ext, &test_up_ext))
		return EXIT_ERR;
	if (argc > 2 && !strcmp(argv[1], "-C")) {
		if (!realpath(argv[2], cli.dir))
			return EXIT_USAGE;
		i = 3;
	} else if (!getcwd(cli.dir, sizeof(cli.dir))) {
		return EXIT_ERR;
	}
	if (i < argc && !strcmp(argv[i], "--json")) {
		cli.json = true;
		i++;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: fake_ext [-C DIR] [--json] VERB [ARGS...]\n");
		return EXIT_USAGE;
	}
	return cmd_run(&cli, argc - i, argv + i);
}

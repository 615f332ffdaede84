/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_EXT_H
#define HUTCH_EXT_H
/**
 * DOC: ext - how net/, share/ and the ssh/provision code plug into a VM's life
 *
 * The core (state, supervisor, lifecycle verbs) knows nothing of bridges,
 * shares or SSH.  Each of those modules exports one `struct sv_ext` (runs
 * inside the per-VM supervisor) and/or one `struct up_ext` (runs in the CLI
 * around `up`, `halt`, `destroy`).  src/ext.c lists them in a fixed order
 * (wg, net, share, ssh) in plain tables.
 *
 * Supervisor order: every sv_ext's .prepare runs before QEMU is spawned (a
 * failure stops the VM from starting; the ones that prepared are torn down),
 * .started after QEMU runs, .teardown in reverse order when QEMU has exited
 * (always, also on errors).  .gc undoes what .prepare did when the
 * supervisor died without tearing down (kill -9), using only state.json.
 *
 * state.json (src/state.h) is one JSON object.  Core keys: "name",
 * "project" (project dir), "status" (starting|running|paused|stopped|crashed),
 * "supervisor_pid", "qemu_pid", "accel" (kvm|tcg), "started_at",
 * "stopped_at", "exit_reason" (guest-shutdown|host-quit|killed|crashed),
 * "mac" (52:54:00:xx:xx:xx, stable per VM), "ssh": {"host", "port"} (set by
 * the core in network mode user: 127.0.0.1 and the forwarded port).
 * Each extension keeps its own data under its own key ("net", "shares"),
 * e.g. net sets "net": {"ip": "10.77.0.23", ...} when the guest got its
 * lease, and calls sv_state_save().  While the supervisor runs it is the
 * only writer of state.json; the CLI writes it only when no supervisor runs.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "src/cfg.h"
#include "src/cmd.h"

struct sv_ctx;

/**
 * struct sv_host - what runs the extensions: the supervisor (src/sv.c), or
 * a test driver that hosts one extension without QEMU (tests/helpers/).
 * sv_qemu_arg() and the other calls below go through it.
 */
struct sv_host {
	int (*qemu_arg)(struct sv_ctx *c, const char *arg);
	int (*qemu_fd)(struct sv_ctx *c, int fd);
	int (*watch_fd)(struct sv_ctx *c, int fd, void (*cb)(struct sv_ctx *c, int fd, void *arg),
			void *arg);
	void (*unwatch_fd)(struct sv_ctx *c, int fd);
	bool (*vm_running)(struct sv_ctx *c);
};

/**
 * struct sv_ctx - one VM as the supervisor sees it; owned by the core
 * @vm:          the VM's config
 * @project_dir: directory of hutch.yaml
 * @vm_dir:      $XDG_DATA_HOME/hutch/vms/<name>
 * @uid, @gid:   the user the VM belongs to (tap owner, files)
 * @state:       state.json object; extensions write under their own key
 * @host:        the functions below
 * @core:        the host's private data
 */
struct sv_ctx {
	const struct cfg_vm *vm;
	const char *project_dir;
	const char *vm_dir;
	uid_t uid;
	gid_t gid;
	json_t *state;
	const struct sv_host *host;
	void *core;
};

/** sv_qemu_arg() - append one argument to QEMU's argv (copied); only during .prepare */
int sv_qemu_arg(struct sv_ctx *c, const char *arg);
/**
 * sv_qemu_fd() - pass @fd to QEMU (only during .prepare)
 * Return: the fd number QEMU will see (use it in "-netdev tap,fd=N"), or a
 * negative errno.  The caller keeps ownership of @fd.
 */
int sv_qemu_fd(struct sv_ctx *c, int fd);
/** sv_state_save() - write @c->state to state.json atomically */
int sv_state_save(struct sv_ctx *c);
/**
 * sv_watch_fd() - call @cb when @fd is readable, from the supervisor's poll
 * loop (DHCP/DNS sockets, nft monitor).  Errors from @cb are logged, never
 * fatal.  sv_unwatch_fd() before closing @fd in .teardown.
 */
int sv_watch_fd(struct sv_ctx *c, int fd, void (*cb)(struct sv_ctx *c, int fd, void *arg),
		void *arg);
void sv_unwatch_fd(struct sv_ctx *c, int fd);
/**
 * sv_vm_running() - QEMU runs and nobody asked it to stop
 *
 * For watchers of helper processes: a helper that dies while this is true
 * failed; one that dies when it is false (halt, guest power-off, QEMU
 * gone) went with the VM, e.g. virtiofsd exits when QEMU closes its socket.
 */
bool sv_vm_running(struct sv_ctx *c);

/** struct sv_ext - a module's part of the supervisor; any member may be NULL */
struct sv_ext {
	const char *name;
	int (*prepare)(struct sv_ctx *c, void **priv);
	int (*started)(struct sv_ctx *c, void *priv);
	void (*teardown)(struct sv_ctx *c, void *priv);
	/* supervisor gone: undo from state alone; @state is state.json; missing objects are fine */
	int (*gc)(const char *vm_dir, json_t *state);
	/* `hutch inspect`: text for humans on @out, or fill @json under the module's key */
	int (*inspect)(const char *vm_dir, json_t *state, FILE *out, json_t *json);
};

/**
 * struct up_ctx - one VM as the CLI sees it during up/halt/destroy; owned by the core
 * @cli:     global options (@cli->dir is the project dir)
 * @cfg:     the loaded hutch.yaml
 * @vm:      this VM's config
 * @vm_dir:  its state directory (exists)
 * @created: this `up` created the VM (first boot: provision)
 * @state:   state.json as last read; up_state_reload() refreshes it
 * @t0:      CLOCK_MONOTONIC ms when the verb started (up --json phases)
 */
struct up_ctx {
	struct cli *cli;
	const struct cfg *cfg;
	const struct cfg_vm *vm;
	const char *vm_dir;
	bool created;
	json_t *state;
	uint64_t t0;
};

/** up_state_reload() - re-read state.json into @u->state */
int up_state_reload(struct up_ctx *u);
/** up_vm_alive() - the supervisor and QEMU still run (waits stop early when not) */
bool up_vm_alive(struct up_ctx *u);
/**
 * up_phase() - `up --json`: one line on stdout for a phase reached
 * ({"phase": @phase, "t_ms": ms since the verb started, "mono_ms":
 * CLOCK_MONOTONIC ms, and @key: @val when @key is not NULL}); nothing
 * without --json.  Phases: created, qemu-started, leased, ssh-ready,
 * cloud-init-done, provisioned, ready.
 */
void up_phase(struct up_ctx *u, const char *phase, const char *key, const char *val);

/**
 * struct up_ext - a module's part of up/halt/destroy; any member may be NULL
 * @user_data:  NoCloud user-data for a new VM (first extension that has it wins;
 *              the core falls back to a minimal "#cloud-config"); malloc'd
 * @before_up:  before the supervisor starts (pre-up hook, key checks); error aborts up
 * @wait:       after QEMU runs, in list order (lease, SSH, cloud-init, playbook);
 *              error fails up (the core prints the console tail)
 * @after_up:   post-up hook (failures warn)
 * @before_down: pre-down hook; @trigger is "halt" or "destroy"; an error aborts halt
 * @after_down:  post-down hook (failures warn)
 */
struct up_ext {
	const char *name;
	int (*user_data)(struct up_ctx *u, char **data, size_t *len);
	int (*before_up)(struct up_ctx *u);
	int (*wait)(struct up_ctx *u);
	int (*after_up)(struct up_ctx *u);
	int (*before_down)(struct up_ctx *u, const char *trigger);
	int (*after_down)(struct up_ctx *u, const char *trigger);
};

/* The modules' extensions, listed by src/ext.c in this order */
extern const struct sv_ext wg_sv_ext, net_sv_ext, share_sv_ext;
extern const struct up_ext wg_up_ext, net_up_ext, share_up_ext, ssh_up_ext;

/** ext_sv_list() / ext_up_list() - the tables, NULL-terminated, in order */
const struct sv_ext *const *ext_sv_list(void);
const struct up_ext *const *ext_up_list(void);
/**
 * ext_add() - one more extension (either may be NULL), after the built-in
 * ones; for programs built on libhutch.a, before anything runs
 * Return: 0, -EEXIST when one was added already
 */
int ext_add(const struct sv_ext *sv, const struct up_ext *up);

#endif

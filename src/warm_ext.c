// SPDX-License-Identifier: MIT
/*
 * Warm start, the CLI's side: asking the supervisor for a save (with the
 * guest's shares unmounted around it), what `up` does after a resume, and
 * what `inspect` shows.  See warm.h.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "src/guest.h"
#include "src/log.h"
#include "src/state.h"
#include "src/util.h"
#include "src/vm.h"
#include "src/warm.h"

/* a save pauses the guest while its RAM is written: minutes for big guests on slow disks */
#define WARM_CTL_MS (30 * 60 * 1000)

/* ask the supervisor, around the guest-side steps; 0 or a negative errno */
static int warm_save_request(const struct guest_target *t, const char *name)
{
	bool ssh = guest_can_ssh(t);
	json_t *req, *resp = NULL;
	uint64_t t0 = util_monotonic_ms();
	char hum[32];
	int rc;

	if (t->vm->n_shares && !ssh) {
		log_err("%s has shared folders, and hutch cannot log in to unmount them before the "
			"save (no SSH key for the guest)", t->vm->name);
		return -EOPNOTSUPP;
	}
	/* a guest hutch cannot log in to is saved as it is (it has no shares) */
	if (ssh) {
		log_info("waiting for the guest to settle (cloud-init, start-up jobs)%s",
			 t->vm->n_shares ? ", unmounting its shared folders for the save" : "");
		rc = guest_before_save(t);
		if (rc && t->vm->n_shares) {
			log_errno(rc, "unmounting the shared folders in %s", t->vm->name);
			return rc;
		}
		/* without shares only the resumes' speed depends on it */
		if (rc)
			log_warno(rc, "%s did not settle before the save; saving it as it is",
				  t->vm->name);
	}
	req = json_pack("{s:s, s:s}", "cmd", "save", "name", name);
	rc = req ? vm_control(t->vm_dir, req, &resp, WARM_CTL_MS) : -ENOMEM;
	json_decref(req);
	if (!rc && !json_is_true(json_object_get(resp, "ok"))) {
		log_err("saving the running state of %s: %s", t->vm->name,
			state_get_str(resp, "error") ?: "failed");
		rc = -EIO;
	} else if (rc) {
		log_errno(rc, "asking the supervisor of %s to save", t->vm->name);
	}
	/* the guest was paused: its clock is behind, and its shares come back */
	if (ssh && guest_after_resume(t))
		log_warn("after the save: the guest's clock or shares could not be set up again");
	if (!rc) {
		snprintf(hum, sizeof(hum), "%.1f MiB",
			 (double)state_get_int(resp, "size", 0) / (double)(1 << 20));
		log_info("saved the running state %s (%s, guest paused %.1fs, %.1fs in all); "
			 "`hutch up` of the halted VM resumes it",
			 name, hum, (double)state_get_int(resp, "paused_ms", 0) / 1000.0,
			 (double)(util_monotonic_ms() - t0) / 1000.0);
	}
	json_decref(resp);
	return rc;
}

int warm_cli_save(const struct vm_target *vt, const char *name)
{
	struct guest_target t = { .vm = vt->vm, .vm_dir = vt->dir, .state = vt->state };

	if (!vt->cfg) {
		log_err("saving a running state needs the VM's hutch.yaml: run it in the project directory");
		return EXIT_USAGE;
	}
	t.project_dir = vt->cfg->dir;
	return warm_save_request(&t, name) ? EXIT_ERR : EXIT_OK;
}

/* ---- the up extension ---- */

/* first in the list: say at once how the VM was started */
static int warm_up_wait(struct up_ctx *u)
{
	const json_t *start;
	const char *why;

	if (up_state_reload(u))
		return 0;
	start = json_object_get(u->state, "start");
	why = state_get_str(start, "reason");
	if (warm_resumed(u->state))
		log_info("resumed the running state %s (%lld ms): no boot", state_get_str(start, "snapshot"),
			 state_get_int(start, "load_ms", 0));
	else if (why)
		log_warn("booted cold instead of resuming %s: %s", state_get_str(start, "snapshot") ?: "?",
			 why);
	return 0;
}

int warm_guest_ready(struct up_ctx *u)
{
	struct guest_target t = { .vm = u->vm, .project_dir = u->cfg->dir, .vm_dir = u->vm_dir };
	uint64_t t0 = util_monotonic_ms(), deadline = t0 + u->vm->timeouts.ssh * 1000ULL;
	int rc;

	for (;;) {
		if (!up_vm_alive(u)) {
			log_err("%s stopped while waiting for SSH", u->vm->name);
			return -ESRCH;
		}
		t.state = u->state;
		rc = guest_after_resume(&t);
		log_debug("resumed guest: SSH session after %llu ms: %d",
			  (unsigned long long)(util_monotonic_ms() - t0), rc);
		/* not answering yet (or no address yet): try again; anything else is final */
		if (rc != -ECONNREFUSED && rc != -ENOENT)
			break;
		if (util_monotonic_ms() >= deadline) {
			log_err("SSH on %s did not answer within %us (timeouts.ssh)", u->vm->name,
				u->vm->timeouts.ssh);
			return -ETIMEDOUT;
		}
		nanosleep(&(struct timespec){ .tv_nsec = 300000000L }, NULL);
	}
	if (rc) {
		log_errno(rc, "setting the clock and mounting the shares in the resumed %s", u->vm->name);
		return rc;
	}
	log_info("SSH ready on %s after %.1fs (clock stepped%s)", u->vm->name,
		 (double)(util_monotonic_ms() - t0) / 1000.0, u->vm->n_shares ? ", shares mounted" : "");
	return 0;
}

/* after the other waits: `warm: true` saves once, after the first provisioning */
static int warm_up_after(struct up_ctx *u)
{
	struct guest_target t = { .vm = u->vm, .project_dir = u->cfg->dir, .vm_dir = u->vm_dir };
	int rc = 0;

	if (up_state_reload(u))
		return 0;
	t.state = u->state;
	if (u->created && u->vm->warm) {
		log_info("warm: true: saving the running state \"warm\"; later `up`s resume it");
		rc = warm_save_request(&t, "warm");
	}
	return rc;
}

const struct up_ext warm_up_ext = {
	.name = "warm",
	.wait = warm_up_wait,
	.after_up = warm_up_after,
};

/* ---- inspect ---- */

static int warm_inspect(const char *vm_dir, json_t *state, FILE *out, json_t *json)
{
	json_t *idx = NULL, *it, *arr;
	const char *k, *resume;
	char path[PATH_MAX];

	if (snap_index_load(vm_dir, &idx))
		return 0;
	resume = json_string_value(json_object_get(idx, "resume"));
	arr = json ? json_array() : NULL;
	json_object_foreach(json_object_get(idx, "items"), k, it) {
		struct stat sb;
		long long size;

		if (strcmp(snap_item_kind(it), "running") ||
		    snap_path(vm_dir, k, "vmstate", path, sizeof(path)))
			continue;
		size = stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
		if (out)
			fprintf(out, "warm state %s: %s (%.1f MiB)%s\n", k, path,
				(double)size / (double)(1 << 20),
				resume && !strcmp(resume, k) ? ", resumed by the next up" : "");
		if (arr)
			json_array_append_new(arr, json_pack("{s:s, s:s, s:I, s:b}", "name", k, "file",
							     path, "size", (json_int_t)size, "resume",
							     resume && !strcmp(resume, k)));
	}
	if (out && json_object_get(state, "start"))
		fprintf(out, "last start: %s\n", warm_resumed(state) ? "warm" : "cold");
	if (json) {
		json_object_set_new(json, "warm_states", arr);
		if (json_object_get(state, "start"))
			json_object_set(json, "start", json_object_get(state, "start"));
	}
	json_decref(idx);
	return 0;
}

const struct sv_ext warm_sv_ext = {
	.name = "warm",
	.inspect = warm_inspect,
};

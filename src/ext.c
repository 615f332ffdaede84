// SPDX-License-Identifier: MIT
/*
 * The extensions of a VM's life, as plain tables in a fixed order (see
 * src/ext.h).  A program built on libhutch.a may add one more extension of
 * its own with ext_add() before anything runs (tests/helpers/fake_ext.c
 * does, to check the core's side of the contract).
 */
#include <errno.h>
#include <stddef.h>

#include "src/ext.h"
#include "src/state.h"
#include "src/util.h"

/*
 * wg before net: net puts the tunnel's kill switch into the VM's rules;
 * wg first among the up extensions: a bad wireguard.conf stops `up` before
 * anything else runs.
 */
static const struct sv_ext *ext_sv[] = { &wg_sv_ext, &net_sv_ext, &share_sv_ext, NULL, NULL };
static const struct up_ext *ext_up[] = { &wg_up_ext, &net_up_ext, &share_up_ext, &ssh_up_ext,
					 NULL, NULL };

int ext_add(const struct sv_ext *sv, const struct up_ext *up)
{
	size_t s = UTIL_ARRAY_SIZE(ext_sv) - 2, u = UTIL_ARRAY_SIZE(ext_up) - 2;

	if (ext_sv[s] || ext_up[u])
		return -EEXIST;
	ext_sv[s] = sv;
	ext_up[u] = up;
	return 0;
}

const struct sv_ext *const *ext_sv_list(void)
{
	return ext_sv;
}

const struct up_ext *const *ext_up_list(void)
{
	return ext_up;
}

int sv_qemu_arg(struct sv_ctx *c, const char *arg)
{
	return c->host->qemu_arg(c, arg);
}

int sv_qemu_fd(struct sv_ctx *c, int fd)
{
	return c->host->qemu_fd(c, fd);
}

int sv_state_save(struct sv_ctx *c)
{
	return state_save(c->vm_dir, c->state);
}

int sv_watch_fd(struct sv_ctx *c, int fd, void (*cb)(struct sv_ctx *c, int fd, void *arg),
		void *arg)
{
	return c->host->watch_fd(c, fd, cb, arg);
}

void sv_unwatch_fd(struct sv_ctx *c, int fd)
{
	c->host->unwatch_fd(c, fd);
}

bool sv_vm_running(struct sv_ctx *c)
{
	/* a host without QEMU (a test driver) has nothing that could stop */
	return c->host->vm_running ? c->host->vm_running(c) : true;
}

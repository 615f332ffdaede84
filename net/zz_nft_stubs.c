// SPDX-License-Identifier: MIT
/*
 * TEMPORARY: weak stand-ins so the net branch builds and runs before
 * net/nft.c (nftables engineer) and the core's supervisor (sv_*, up_*) are
 * merged.  The integrator deletes this file at merge: the strong symbols win.
 */
#include <errno.h>

#include "net/nft.h"
#include "src/ext.h"

__attribute__((weak)) int nft_base_ensure(const char *bridge, struct in_addr net, uint8_t prefix)
{
	(void)bridge;
	(void)net;
	(void)prefix;
	return 0;
}

__attribute__((weak)) int nft_base_remove(void)
{
	return 0;
}

__attribute__((weak)) int nft_vm_add(const struct nft_vm *vm)
{
	(void)vm;
	return 0;
}

__attribute__((weak)) int nft_vm_del(const char *id)
{
	(void)id;
	return 0;
}

__attribute__((weak)) int nft_vm_list(char (*ids)[NFT_ID_MAX], size_t max, size_t *n)
{
	(void)ids;
	(void)max;
	*n = 0;
	return 0;
}

__attribute__((weak)) int nft_dump(const char *id, FILE *out)
{
	(void)id;
	fprintf(out, "  (nftables support not built in)\n");
	return 0;
}

__attribute__((weak)) int sv_qemu_arg(struct sv_ctx *c, const char *arg)
{
	(void)c;
	(void)arg;
	return -ENOSYS;
}

__attribute__((weak)) int sv_qemu_fd(struct sv_ctx *c, int fd)
{
	(void)c;
	(void)fd;
	return -ENOSYS;
}

__attribute__((weak)) int sv_state_save(struct sv_ctx *c)
{
	(void)c;
	return -ENOSYS;
}

__attribute__((weak)) int sv_watch_fd(struct sv_ctx *c, int fd,
				      void (*cb)(struct sv_ctx *c, int fd, void *arg), void *arg)
{
	(void)c;
	(void)fd;
	(void)cb;
	(void)arg;
	return -ENOSYS;
}

__attribute__((weak)) void sv_unwatch_fd(struct sv_ctx *c, int fd)
{
	(void)c;
	(void)fd;
}

__attribute__((weak)) int up_state_reload(struct up_ctx *u)
{
	(void)u;
	return -ENOSYS;
}

__attribute__((weak)) bool up_vm_alive(struct up_ctx *u)
{
	(void)u;
	return false;
}

/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_NFT_H
#define HUTCH_NFT_H
/**
 * DOC: nft - hutch's nftables rules, through libnftnl
 *
 * Contract between net/ (which calls these from the supervisor) and the
 * nftables code.  hutch owns the tables `inet hutch` and `bridge hutch` and
 * touches nothing else.  Base chains drop everything that enters from a
 * hutch tap (ht-*) unless that tap's VM chain is in place: a VM's NIC passes
 * no traffic before its rules exist (fail closed).  Each VM's objects
 * (chains, map elements, sets) carry its id and are added or removed in one
 * batch, so they appear or fail as a whole.
 *
 * How the supervisor uses it (net/):
 * - bridge up: nft_base_ensure(bridge, subnet, prefix) (root or the helper);
 * - before QEMU gets the tap: nft_vm_init() from the cfg_vm, nft_vm_add();
 *   until then the tap passes nothing, so the order is safe either way;
 *   once the VM's DNS forwarder listens, set .dns and nft_vm_add() again
 *   (an atomic replace): udp/53 on the gateway opens only then;
 * - forwards: fwd_start() (net/fwd.h) with the VM's lease, driven through
 *   sv_watch_fd(fwd_epoll_fd()) -> fwd_dispatch();
 * - nft_watch_open() under sv_watch_fd(): when nft_watch_handle() returns
 *   non-zero, nft_repair(vm, bridge, net, prefix): it compares the rules in
 *   force with what hutch installs (content, not chain names: a flushed
 *   table keeps its chains) and re-installs what differs; when it fails,
 *   the caller takes the VM's tap down (nl_link_down()): fail closed.
 *   hutch's own changes trigger it too, which costs a few dumps;
 * - teardown: fwd_stop(), nft_vm_del(id); the last VM: nft_base_remove()
 *   (which keeps the tables while any VM still has rules);
 * - gc: nft_vm_list() -> nft_vm_del() for ids no supervisor owns;
 * - `hutch inspect`: nft_dump(id, out).
 * The base serves one bridge and subnet (recorded in the tables' comment):
 * nft_base_ensure() for another one fails with -EBUSY while VMs of the
 * first have rules, since re-pointing the base rules would leave those VMs
 * with rules that no longer match their packets.
 */
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "src/cfg.h"

#define NFT_ID_MAX 16	/* VM id: [a-z0-9]{1,15} */

/**
 * struct nft_wg - a VM's WireGuard egress (issue 11); @ifname[0] == 0: none
 * @ifname: the VM's wg interface (hw-<id>): the only way out for its traffic
 * @mark:   fwmark set on every IPv4 packet from the VM's tap (policy routing)
 * @dns:    the tunnel's DNS server: queries to the gateway are DNAT'ed to it;
 *          0.0.0.0 when wireguard.conf has none: they are dropped
 *
 * Filled by net/wg_sv.c (wg_nft_vm()); the rules go into the VM's own batch
 * (nft_vm_add()), so they appear, are repaired and vanish with the VM's.
 */
struct nft_wg {
	char ifname[IFNAMSIZ];
	uint32_t mark;
	struct in_addr dns;
};

/** struct nft_vm - everything the rules of one VM depend on */
struct nft_vm {
	char id[NFT_ID_MAX];
	char tap[IFNAMSIZ];
	uint8_t mac[6];
	struct in_addr addr;	/* the VM's static lease */
	struct in_addr gw;	/* the bridge address (DHCP, DNS) */
	uint8_t prefix;		/* bridge subnet prefix length */
	bool isolation;
	bool ipv6;
	bool dns;		/* udp/53 on the gateway open: its DNS forwarder runs */
	const struct cfg_host_access *host_access;
	size_t n_host_access;
	const struct cfg_forward *forward;
	size_t n_forward;
	struct nft_wg wg;	/* WireGuard kill switch; zeroed by nft_vm_init() */
};

/** nft_base_ensure() - create (or repair) the tables and base chains, NAT of @net/@prefix out of anything but @bridge; -EBUSY when they serve another bridge/subnet with VMs */
int nft_base_ensure(const char *bridge, struct in_addr net, uint8_t prefix);
/** nft_base_remove() - delete hutch's tables (the last VM stopped); missing is fine, -EBUSY while any VM has rules */
int nft_base_remove(void);
/** nft_vm_add() - install one VM's rules in one batch; on error nothing of it remains */
int nft_vm_add(const struct nft_vm *vm);
/** nft_vm_del() - remove one VM's rules in one batch; missing is fine */
int nft_vm_del(const char *id);
/** nft_vm_list() - ids of VMs that have rules installed (for gc) */
int nft_vm_list(char (*ids)[NFT_ID_MAX], size_t max, size_t *n);
/** nft_dump() - human-readable rules in force for VM @id (all of hutch's when NULL) */
int nft_dump(const char *id, FILE *out);

/**
 * nft_vm_init() - fill @out for VM @id from its config (isolation, ipv6, host_access)
 * @out:    filled on success; points into @vm's host_access, so @vm must outlive it
 * @id:     [a-z0-9]{1,15}
 * @tap:    "ht-..." shorter than IFNAMSIZ
 * @mac:    the VM's NIC MAC
 * @addr:   its static lease; @gw the bridge address; @prefix the bridge prefix
 *
 * Forwards are not nftables rules (see net/fwd.h): @out->forward is set for
 * completeness and ignored by nft_vm_add().  @out->dns starts false: udp/53
 * opens when the caller sets it, once the VM's DNS forwarder listens.
 *
 * Return: 0, or -EINVAL for a bad id, tap or prefix (@out untouched)
 */
int nft_vm_init(struct nft_vm *out, const char *id, const char *tap, const uint8_t mac[6],
		struct in_addr addr, struct in_addr gw, uint8_t prefix, const struct cfg_vm *vm);
/**
 * nft_wg_drops() - what VM @id's kill switch dropped (its "kill switch" rules' counters)
 * Return: 0 with *@pkts and *@bytes set (0 when the VM has no such rules), or a negative errno
 */
int nft_wg_drops(const char *id, uint64_t *pkts, uint64_t *bytes);
/**
 * nft_base_intact() - 1 when the base is in force exactly as nft_base_ensure()
 * makes it for @bridge/@net/@prefix (tables awake, every base chain with its
 * rules and nothing else), 0 when not, or a negative errno
 */
int nft_base_intact(const char *bridge, struct in_addr net, uint8_t prefix);
/**
 * nft_vm_intact() - 1 when @vm's chains hold exactly the rules nft_vm_add()
 * installs and its map elements point at them, 0 when not, or a negative errno
 */
int nft_vm_intact(const struct nft_vm *vm);
/**
 * nft_repair() - re-install the base and @vm's rules where they differ
 * Return: 0 intact, 1 repaired (and checked), or a negative errno: the
 * caller must then stop the VM's traffic
 */
int nft_repair(const struct nft_vm *vm, const char *bridge, struct in_addr net, uint8_t prefix);
/** nft_base_present() - 1 when both tables and every base chain exist, 0 when not (e.g. after `nft flush ruleset`), or a negative errno; names only: see nft_base_intact() */
int nft_base_present(void);
/** nft_vm_present() - 1 when VM @id's chains are all installed, 0 when not, or a negative errno; names only: see nft_vm_intact() */
int nft_vm_present(const char *id);
/**
 * nft_watch_open() - a netlink socket subscribed to nftables changes
 *
 * Return: a non-blocking CLOEXEC fd the caller polls and owns, or a negative errno
 */
int nft_watch_open(void);
/**
 * nft_watch_handle() - drain @fd after POLLIN
 *
 * Return: 1 when something in hutch's tables changed (the caller then
 * calls nft_repair()), 0 when not,
 * or a negative errno (-ENOBUFS: events were lost; the caller must check).
 */
int nft_watch_handle(int fd);

#endif

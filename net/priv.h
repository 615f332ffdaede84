/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_PRIV_H
#define HUTCH_PRIV_H
/**
 * DOC: priv - the one seam between hutch and privilege
 *
 * Everything hutch does that needs a capability goes through the handful of
 * coarse operations below, and nothing outside net/priv*.c calls netlink,
 * nftables or mount(2) for a VM.  Each operation is a typed request that the
 * privileged side parses and re-validates as if it came from a stranger
 * (net/privd.h), because it may: hutch runs as the user, and the user is not
 * trusted with CAP_NET_ADMIN.
 *
 * Where the privileged side runs:
 *  - hutch runs as root (euid 0): in this process.  The request still goes
 *    through the same encoder, parser and checks (one path, one behaviour);
 *  - otherwise: in `hutch-helper`, a small program with file capabilities
 *    (installed by `sudo hutch setup`), spawned on first use and spoken to
 *    over a SOCK_SEQPACKET socketpair: one JSON request per message, one
 *    reply per request, the tap/DHCP/DNS fds of a new VM network passed by
 *    SCM_RIGHTS.  The helper takes the caller's uid from SO_PEERCRED, never
 *    from the request, and acts only on that uid's own VMs (an id -> owner
 *    registry under /run/hutch) and on hutch's own links, tables and subnet.
 *
 * One connection per process, opened on first use; a helper that died is
 * replaced on the next call (and the supervisor re-attaches its VM, see
 * priv_watch_event()).  The helper path is $HUTCH_HELPER, else
 * HUTCH_LIBEXECDIR/hutch-helper.
 *
 * All functions return 0 or a negative errno; -ENOPKG means "the helper is
 * not installed or not set up" (the message names `sudo hutch setup`), which
 * the CLI turns into exit code 78.
 */
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/net.h"
#include "net/nft.h"
#include "src/cfg.h"

/* largest request and reply; a bigger one is refused whole, never cut */
#define PRIV_REQ_MAX   16384
#define PRIV_REPLY_MAX 65536
#define PRIV_HA_MAX    32	/* host_access entries one VM may ask for */

/**
 * struct priv_net_req - what a supervisor asks for when its VM's network comes up
 * @name:      the VM's name (for messages and `inspect`; not trusted)
 * @nc:        the bridge and subnet (HUTCH_BRIDGE/HUTCH_SUBNET or the defaults);
 *             the helper accepts only the networks its configuration lists
 * @mac:       the MAC the VM had; kept unless another VM on the bridge uses it
 * @prefer:    the address it had, kept when free (0: none)
 * @isolation: network.isolation; @ipv6: network.ipv6
 * @ha, @n_ha: network.host_access (at most PRIV_HA_MAX)
 */
struct priv_net_req {
	const char *name;
	struct net_conf nc;
	uint8_t mac[6];
	struct in_addr prefer;
	bool isolation;
	bool ipv6;
	const struct cfg_host_access *ha;
	size_t n_ha;
	const struct nft_wg *wg;	/* the WireGuard kill switch (net/wg_sv.c), or NULL */
};

/**
 * struct priv_net - a VM network that is up: rules in place, tap up
 * @id:      the VM's rules id (state.json "net" "id")
 * @tap:     its tap, ht-<id>
 * @addr:    the guest's address (static DHCP lease)
 * @mac:     the guest's MAC (may differ from the one asked for)
 * @gw_mac:  the bridge's MAC (DHCP server identity)
 * @ifindex: the tap's ifindex
 * @tap_fd:  the tap (IFF_VNET_HDR), for QEMU
 * @dhcp_fd: a packet socket on the tap with the DHCP filter (net/dhcp.h)
 * @dns_fd:  a UDP socket bound to the gateway's port 53 (net/dns.h)
 *
 * The caller owns the three fds.
 */
struct priv_net {
	char id[NFT_ID_MAX];
	char tap[IFNAMSIZ];
	struct in_addr addr;
	uint8_t mac[6];
	uint8_t gw_mac[6];
	int ifindex;
	int tap_fd;
	int dhcp_fd;
	int dns_fd;
};

/**
 * priv_check() - can this process reach the privileged side?
 *
 * Root: yes.  Otherwise the helper is started and pinged; when it is missing,
 * not executable by us or without its capabilities, the error says which
 * command sets the host up.
 * Return: 0, or -ENOPKG (logged)
 */
int priv_check(void);

/** priv_ping() - one empty round trip (bench, setup --check) */
int priv_ping(void);

/**
 * priv_net_up() - bridge up, base rules, tap, VM rules, tap up; DHCP/DNS sockets
 *
 * In that order and under the network lock: the tap passes no frame before
 * its VM's rules exist.  The VM is recorded in the registry before anything
 * is created, so a crash at any point is cleaned by the next up or gc.
 * @out is written only on success.
 */
int priv_net_up(const struct priv_net_req *req, struct priv_net *out);

/** priv_net_down() - remove VM @id's rules and tap, and the bridge after the last VM */
int priv_net_down(const char *id);

/**
 * priv_gc() - clean up after dead supervisors
 * @id: the VM whose state named it (may be NULL)
 *
 * Every registry entry in this network namespace whose owner is dead loses
 * its rules, tap and mounts, and hutch's rules and taps that no entry owns
 * are removed; @id only makes sure that one is looked at.
 */
int priv_gc(const char *id);

/**
 * priv_inspect() - port isolation and the rules in force for VM @id
 * @text: set to malloc'd text (the caller frees it)
 */
int priv_inspect(const char *id, char **text);

/**
 * priv_mount() - loop-mount the share image "<@dir>.img" on @dir,
 * nosymfollow,nodev,nosuid, creating the image first when it is missing
 * @size_gib: the size of an image made now (1..65536)
 * @keep:     the mount outlives the calling process (`hutch mount`); else it
 *            belongs to it and is removed when it dies (the supervisor's case)
 * @loopnr:   set to the loop device's number
 *
 * The privileged side makes the image itself and mounts only images it
 * made: their provenance records (share/share.h) live where the caller
 * cannot write, so a crafted file system never reaches the kernel as root.
 * Paths must be absolute, free of symlinks, and the caller's.
 */
int priv_mount(const char *dir, unsigned size_gib, bool keep, int *loopnr);

/** priv_unmount() - undo priv_mount(); nothing mounted there is fine */
int priv_unmount(const char *dir);

/**
 * priv_watch_fd() - the fd the supervisor's loop polls for the privileged side
 *
 * In this process: an nftables monitor (rule repair after a host flush).
 * With the helper: its socket, which becomes readable only when the helper
 * died (the helper repairs rules itself).
 * Return: an fd, or a negative errno (nothing to watch)
 */
int priv_watch_fd(void);

/**
 * priv_watch_event() - call when priv_watch_fd() was readable
 * @ids, @n: the VMs this process owns (their networks are re-attached to a
 *           new helper, which then repairs and later cleans them up)
 *
 * The fd may change: poll priv_watch_fd() again afterwards.
 */
void priv_watch_event(const char *const *ids, size_t n);

/** priv_close() - end the connection (the helper exits) */
void priv_close(void);

#endif

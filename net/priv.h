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
#include <sys/types.h>

#include "net/net.h"
#include "net/nft.h"
#include "net/wg.h"
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
 * @dns:       the supervisor runs a DNS forwarder (it found an upstream):
 *             udp/53 to the gateway is opened and a socket bound to it comes
 *             back; without one the port stays closed (issue 15 item 8)
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
	bool dns;
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
 * @dns_fd:  a UDP socket bound to the gateway's port 53 (net/dns.h); -1 unless asked for
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
 * priv_userns_map() - have the user namespace of our child @pid mapped to
 * our uid and primary gid, with setgroups(2) left allowed in it
 *
 * For virtiofsd as a normal user (src/proc.h proc_sandbox.userns_map): the
 * child has unshared CLONE_NEWUSER and waits.  The privileged side checks
 * that @pid is our child, runs as us, in a fresh user namespace we own whose
 * maps are empty, and writes "0 <uid> 1" to both maps (CAP_SETGID for
 * gid_map: an unprivileged writer would have to deny setgroups first).
 * Return: 0, -ENOPKG (no helper), or a negative errno (logged)
 */
int priv_userns_map(pid_t pid);

/**
 * struct priv_wg - a VM's WireGuard tunnel as the privileged side made it
 * @id:      its id (state.json "wg" "id"); the link is hw-<id>
 * @table:   its routing table, also the fwmark of the VM's packets
 * @impl:    kernel or wireguard-go
 * @go_fds:  wireguard-go's tun and UAPI listening socket (the caller runs
 *           the daemon on them, then closes them), or -1
 */
struct priv_wg {
	char id[NFT_ID_MAX];
	char ifname[IFNAMSIZ];
	uint32_t table;
	enum wg_impl impl;
	int ifindex;
	int go_fds[2];
};

/**
 * priv_wg_up() - a tunnel for VM @name from @c (sent as text, keys and all,
 * for this call only) to the resolved endpoint @ep: link, table, rules
 * (net/wg.h wg_up()).  The VM's network then names it in priv_net_req.wg.
 */
int priv_wg_up(const char *name, const struct wg_conf *c, const struct sockaddr_storage *ep,
	       struct priv_wg *out);
/** priv_wg_fix() - wg_fix() @how on our tunnel @id; @c and @ep needed unless WG_FIX_RULES */
int priv_wg_fix(const char *id, enum wg_fix how, const struct wg_conf *c,
		const struct sockaddr_storage *ep, struct priv_wg *out);
/** priv_wg_down() - remove our tunnel @id (gone already is fine) */
int priv_wg_down(const char *id);

/**
 * struct priv_wg_stat - what priv_wg_get() read
 * @has_live: the kernel's counters (kernel tunnels only: wireguard-go's
 *            come over its UAPI socket, the user's own)
 * @has_drops: the kill switch's counters of the VM that uses the tunnel
 */
struct priv_wg_stat {
	bool has_live;
	struct wg_live live;
	bool has_drops;
	uint64_t drop_pkts, drop_bytes;
};
/** priv_wg_get() - counters of our tunnel @id */
int priv_wg_get(const char *id, struct priv_wg_stat *out);

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

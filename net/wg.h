/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_WG_H
#define HUTCH_WG_H
/**
 * DOC: wg - one VM's WireGuard tunnel: coarse operations
 *
 * The privileged side (net/privd_wg.c, behind hutch-helper or in a root
 * process) makes and mends the tunnel; the supervisor, as the user, runs
 * wireguard-go and watches:
 *
 *   wg_up(spec)                 -> the link hw-<id> exists, holds its
 *                                  addresses and MTU, is up (kernel: with the
 *                                  key, the peer, the endpoint and the allowed
 *                                  IPs; wireguard-go: its tun fd comes back);
 *                                  the VM's table has "default dev hw-<id>" and
 *                                  "unreachable default" behind it; rule
 *                                  "fwmark M lookup T"
 *   wg_fix(spec, how)           -> the same made true again after a loss
 *   wg_vm_rules(spec, vm, add)  -> the VM's source rules (and allow-lan-host)
 *   wg_down(ifname, table, vm)  -> all of the above gone; missing is fine
 *   wg_go_run(spec, tun, uapi)  -> (supervisor) wireguard-go on the tun, configured
 *   wg_get(link, ifname)        -> peer, endpoint, latest handshake, bytes
 *
 * Two implementations: the kernel's "wireguard" generic-netlink family
 * (net/wg_genl.c), spoken with libmnl, and when the host has no module,
 * wireguard-go (net/wg_uapi.c) on a tun device hutch creates, configured
 * over the UAPI socket hutch hands it.  The one used is reported in
 * struct wg_link and in state.json.
 */
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include "net/wg_conf.h"
#include "src/cfg.h"

#define WG_IF_PREFIX "hw-"
#define WG_UAPI_DIR  "/var/run/wireguard"

enum wg_impl { WG_IMPL_NONE, WG_IMPL_KERNEL, WG_IMPL_GO };

/** wg_impl_name() - "kernel", "wireguard-go" or "none" */
const char *wg_impl_name(enum wg_impl i);

/**
 * struct wg_spec - everything decided about one VM's tunnel
 * @ifname:   "hw-<id>"
 * @table:    the VM's routing table, also its fwmark (WG_TABLE_MIN..MAX)
 * @conf:     the parsed wireguard.conf (holds the private key)
 * @endpoint: the resolved Endpoint
 */
struct wg_spec {
	char ifname[IFNAMSIZ];
	uint32_t table;
	const struct wg_conf *conf;
	struct sockaddr_storage endpoint;
	socklen_t endpoint_len;
};

/**
 * struct wg_link - the running tunnel, owned by its supervisor
 * @pid, @pidfd: wireguard-go (WG_IMPL_GO), else 0 / -1
 * @uapi:        its UAPI socket, WG_UAPI_DIR/<ifname>.sock (where `wg show`
 *               finds it and wireguard-go insists it is), the caller's
 */
struct wg_link {
	enum wg_impl impl;
	int ifindex;
	pid_t pid;
	int pidfd;
	char uapi[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/** struct wg_live - what the tunnel says about its peer; @handshake 0: never */
struct wg_live {
	bool has_peer;
	uint8_t peer_key[WG_KEY_LEN];
	struct sockaddr_storage endpoint;
	int64_t handshake;	/* seconds since the epoch */
	uint64_t rx, tx;
	uint16_t keepalive;
};

/** wg_ifname() - "hw-<id>" into @buf (IFNAMSIZ); @id [a-z0-9]{1,12} */
int wg_ifname(const char *id, char *buf, size_t n);

/** wg_endpoint_resolve() - the Endpoint of @c as an address (names through getaddrinfo, IPv4 first) */
int wg_endpoint_resolve(const struct wg_conf *c, struct sockaddr_storage *ss, socklen_t *len);
/** wg_sockaddr_str() - "a.b.c.d:port" or "[v6]:port" */
int wg_sockaddr_str(const struct sockaddr_storage *ss, char *buf, size_t n);
/** wg_sockaddr_parse() - the reverse of wg_sockaddr_str() (numeric only); -EINVAL otherwise */
int wg_sockaddr_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len);

/**
 * wg_up() - bring one VM's tunnel up (see DOC); privileged
 * @s:   the tunnel
 * @out: set on success (impl, ifindex)
 * @tun: set to wireguard-go's tun and UAPI listening socket (WG_IMPL_GO;
 *       the caller owns them), else -1
 *
 * On failure what was made is removed again.
 * Return: 0, -ENOENT when neither the kernel module nor /dev/net/tun is
 * there, or a negative errno (logged)
 */
int wg_up(const struct wg_spec *s, struct wg_link *out, int tun[2]);

/**
 * enum wg_fix - what wg_fix() puts right
 * @WG_FIX_RULES:  the unreachable route and the fwmark rule, and the route
 *                 through the link while the link is up (someone flushed
 *                 a table or the rules; @s->conf may be NULL)
 * @WG_FIX_LINK:   the link exists but was set down: addresses, MTU, up,
 *                 routed, and the rules
 * @WG_FIX_RELINK: the link is gone or its daemon died: made anew (a new tun
 *                 fd for wireguard-go), configured, routed, and the rules
 */
enum wg_fix { WG_FIX_RULES, WG_FIX_LINK, WG_FIX_RELINK };

/**
 * wg_fix() - repair a tunnel; privileged.  The unreachable route goes back
 * first, so the VM's table refuses while the rest is mended.
 * @out: impl and ifindex updated for WG_FIX_LINK and WG_FIX_RELINK
 * @tun: as for wg_up() (only WG_FIX_RELINK makes them)
 * On failure of WG_FIX_RELINK nothing is left of the half-made link.
 */
int wg_fix(const struct wg_spec *s, enum wg_fix how, struct wg_link *out, int tun[2]);

/**
 * wg_vm_rules() - the source rules of VM @vm on @bridge to @s->table, and
 * "to L lookup main" for each allow-lan-host L of @vm_cfg
 * @add: add (existing ones are fine) or delete (missing ones are fine)
 */
int wg_vm_rules(const struct wg_spec *s, const char *bridge, struct in_addr vm,
		const struct cfg_vm *vm_cfg, bool add);

/**
 * wg_down() - remove a tunnel (privileged): link and UAPI socket deleted,
 * every rule of @table and route in it removed.  wireguard-go is the
 * supervisor's to stop.
 * @vm: the VM's address (its allow-lan-host rules), or 0.0.0.0
 * Return: 0, or the first negative errno (it goes on after errors)
 */
int wg_down(const char *ifname, uint32_t table, struct in_addr vm);

/** wg_get() - the live state of @ifname through @l's implementation (kernel: privileged) */
int wg_get(const struct wg_link *l, const char *ifname, struct wg_live *out);

/** wg_go_kill() - stop wireguard-go @pid when it is the one serving @ifname (gc) */
int wg_go_kill(pid_t pid, const char *ifname);

/* ---- kernel: net/wg_genl.c ---- */

/** wg_genl_family() - the "wireguard" family id; -ENOENT when the kernel has none */
int wg_genl_family(uint16_t *id);
/**
 * wg_genl_build_set() - WG_CMD_SET_DEVICE for @s into @buf (the key is in
 * it: wipe it after use)
 * Return: the message length, or 0 when it does not fit
 */
size_t wg_genl_build_set(void *buf, size_t n, uint16_t family, const struct wg_spec *s);
/** wg_genl_set() - configure the kernel device @s->ifname */
int wg_genl_set(const struct wg_spec *s);
/** wg_genl_get() - WG_CMD_GET_DEVICE (a dump) for @ifname */
int wg_genl_get(const char *ifname, struct wg_live *out);
/** wg_genl_parse() - one GET_DEVICE reply message (bounded; the first peer is kept) */
int wg_genl_parse(const void *msg, size_t len, struct wg_live *out);

/* ---- wireguard-go: net/wg_uapi.c ---- */

/**
 * wg_uapi_set_text() - the UAPI "set=1" request for @s (holds the key: wipe it)
 * Return: 0 with *@len set, or -ENOSPC
 */
int wg_uapi_set_text(const struct wg_spec *s, char *buf, size_t n, size_t *len);
/** wg_uapi_parse() - a "get=1" answer (untrusted text, bounded); -EPROTO for errno != 0 */
int wg_uapi_parse(const char *buf, size_t len, struct wg_live *out);
/**
 * wg_go_tun() - for wireguard-go (privileged): @fds[0] the tun @ifname, not
 * persistent (it lives exactly as long as an fd to it, the daemon's), and
 * @fds[1] its UAPI socket listening at WG_UAPI_DIR/<ifname>.sock, made
 * with the caller's file system uid, so the caller owns it
 * Return: 0, or a negative errno (-EEXIST: the name is taken; -ENOENT:
 * no WG_UAPI_DIR, which `hutch setup` makes)
 */
int wg_go_tun(const char *ifname, int fds[2]);
/**
 * wg_go_run() - wireguard-go on @fds (from wg_go_tun(); the caller closes
 * them afterwards), as the user with no capability, configured from @s
 * @l: pid, pidfd, uapi and impl set on success
 */
int wg_go_run(const struct wg_spec *s, const int fds[2], struct wg_link *l);
/** wg_go_get() - "get=1" over the UAPI socket @uapi */
int wg_go_get(const char *uapi, struct wg_live *out);
/** wg_uapi_path() - WG_UAPI_DIR/<ifname>.sock */
int wg_uapi_path(const char *ifname, char *buf, size_t n);

#endif

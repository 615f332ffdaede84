/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_WG_H
#define HUTCH_WG_H
/**
 * DOC: wg - one VM's WireGuard tunnel: coarse operations
 *
 * Three entry points, shaped so that each can become one request to the
 * privileged helper (issue 10) without changing its callers:
 *
 *   wg_up(spec)                 -> the link hw-<id> exists, holds the key, the
 *                                  peer, the endpoint and the allowed IPs, has
 *                                  its addresses and MTU, is up; the VM's table
 *                                  has "default dev hw-<id>" and "unreachable
 *                                  default" behind it; rule "fwmark M lookup T"
 *   wg_vm_rules(spec, vm, add)  -> the VM's source rules (and allow-lan-host)
 *   wg_down(ifname, table, vm)  -> all of the above gone; missing is fine
 *   wg_get(ifname, impl)        -> peer, endpoint, latest handshake, bytes
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
 * @uapi:        its UAPI socket path
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

/**
 * wg_up() - bring one VM's tunnel up (see DOC)
 * @s:   the tunnel
 * @out: set on success; the caller owns @out->pidfd
 *
 * On failure what was made is removed again.
 * Return: 0, -ENOENT when neither the kernel module nor wireguard-go is
 * there, or a negative errno (logged)
 */
int wg_up(const struct wg_spec *s, struct wg_link *out);

/**
 * wg_restore() - repair a tunnel whose link was deleted, set down, or whose
 * daemon died: the link made again (or set up), configured, routed.  The
 * rules and the unreachable route are not touched: they held meanwhile.
 * @l: updated (a new daemon's pid and pidfd); on failure nothing is left
 *     of a half-made link and @l says WG_IMPL_NONE
 */
int wg_restore(const struct wg_spec *s, struct wg_link *l);

/**
 * wg_vm_rules() - the source rules of VM @vm on @bridge to @s->table, and
 * "to L lookup main" for each allow-lan-host L of @vm_cfg
 * @add: add (existing ones are fine) or delete (missing ones are fine)
 */
int wg_vm_rules(const struct wg_spec *s, const char *bridge, struct in_addr vm,
		const struct cfg_vm *vm_cfg, bool add);

/**
 * wg_down() - remove a tunnel: wireguard-go stopped (@l may be NULL: from
 * state, gc), link deleted, every rule of @table and route in it removed
 * @vm: the VM's address (its allow-lan-host rules), or 0.0.0.0
 * Return: 0, or the first negative errno (it goes on after errors)
 */
int wg_down(const char *ifname, uint32_t table, struct in_addr vm, struct wg_link *l);

/** wg_get() - the live state of @ifname through @impl */
int wg_get(const char *ifname, enum wg_impl impl, struct wg_live *out);

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
/** wg_go_start() - tun @s->ifname, UAPI socket, wireguard-go on them, configured */
int wg_go_start(const struct wg_spec *s, struct wg_link *l);
/** wg_go_get() - "get=1" over @ifname's UAPI socket */
int wg_go_get(const char *ifname, struct wg_live *out);
/** wg_uapi_path() - WG_UAPI_DIR/<ifname>.sock */
int wg_uapi_path(const char *ifname, char *buf, size_t n);

#endif

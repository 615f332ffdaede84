/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_NET_H
#define HUTCH_NET_H
/**
 * DOC: net - the shared settings of hutch's NAT network (mode nat)
 *
 * One bridge (hutch0, 10.77.0.1/24 unless HUTCH_BRIDGE / HUTCH_SUBNET say
 * otherwise, so tests and parallel set-ups can use their own), one tap per
 * VM named ht-<id>.  The environment overrides exist for test rigs; every
 * supervisor and `hutch gc` of one set-up must see the same values (gc reads
 * the bridge back from state.json, so it does not depend on them).
 */
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#define NET_BRIDGE_DEFAULT "hutch0"
#define NET_SUBNET_DEFAULT "10.77.0.1/24"
#define NET_TAP_PREFIX     "ht-"

/**
 * struct net_conf - the bridge every NAT VM hangs off
 * @bridge: interface name
 * @gw:     the bridge's address: gateway, DHCP server id, DNS forwarder
 * @net:    @gw masked with @prefix
 * @prefix: subnet prefix length (8..30)
 */
struct net_conf {
	char bridge[IFNAMSIZ];
	struct in_addr gw;
	struct in_addr net;
	uint8_t prefix;
};

/**
 * net_conf_get() - the bridge settings from HUTCH_BRIDGE / HUTCH_SUBNET or defaults
 * Return: 0, or -EINVAL for a bad override (logged)
 */
int net_conf_get(struct net_conf *nc);

/** net_subnet_parse() - "A.B.C.D/N" (N in 8..30, host part non-zero) into @nc */
int net_subnet_parse(const char *s, struct net_conf *nc);

/** net_ifname_valid() - a usable interface name: 1..15 chars of [a-zA-Z0-9_.-] */
int net_ifname_valid(const char *s);

/** net_mask() - the netmask of @prefix in network order */
static inline uint32_t net_mask(uint8_t prefix)
{
	return prefix ? htonl(~(uint32_t)0 << (32 - prefix)) : 0;
}

/*
 * The bridge primitives below belong to the privileged side (net/privd*.c):
 * nothing else calls them for a VM, see net/priv.h.
 */
/**
 * net_bridge_ensure() - the bridge of @nc exists, has its address, its
 * sysctls, is up, and IPv4 forwarding is on (its previous value recorded
 * in @recdir, nl_forwarding_on()).  Idempotent.
 */
int net_bridge_ensure(const struct net_conf *nc, bool ipv6, const char *recdir);
/** net_port_attach() - enslave @port to @bridge, isolate it, set its sysctls (not up) */
int net_port_attach(const char *port, const char *bridge, bool ipv6);
/**
 * net_bridge_release() - delete @bridge and hutch's base rules when no ht-*
 * port is left on it; the caller holds the network lock (the registry's).
 * A bridge that does not exist is left alone; the base rules go when no VM
 * (of any bridge) has rules left, as when VMs stop at once and another's
 * release removed the bridge before this VM's rules were gone.
 * Return: 1 when removed, 0 when still in use or absent, or a negative errno
 */
int net_bridge_release(const char *bridge, const char *recdir);
/** net_mac_parse() - "52:54:00:12:34:56" */
int net_mac_parse(const char *s, uint8_t mac[6]);
#endif

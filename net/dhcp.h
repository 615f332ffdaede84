/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_DHCP_H
#define HUTCH_DHCP_H
/**
 * DOC: dhcp - a DHCP server for exactly one VM (RFC 2131, options RFC 2132)
 *
 * Design: each supervisor reads its own VM's frames from an AF_PACKET socket
 * bound to that VM's tap (a BPF filter passes only UDP to port 67) and
 * writes its answers as whole Ethernet/IPv4/UDP frames back out of the same
 * tap, so they reach only that guest.  Nothing listens on the bridge's UDP
 * port 67, so any number of supervisors share one bridge without fighting
 * over a socket, port isolation changes nothing, and a guest can never be
 * answered by another VM's supervisor.  The responder answers only frames
 * whose Ethernet source AND chaddr are the VM's MAC, with a static lease.
 *
 * dhcp_handle() is the whole protocol on bytes (fuzzed by fuzz_dhcp); the
 * socket part is dhcp_open()/dhcp_input().
 */
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#define DHCP_HOSTNAME_MAX 63
#define DHCP_FRAME_MAX    1514

/** struct dhcp_lease - what we answer; all addresses in network order */
struct dhcp_lease {
	uint8_t mac[6];		/* the VM's NIC */
	uint8_t srv_mac[6];	/* Ethernet source of our replies (the bridge's) */
	struct in_addr addr;	/* the VM's address */
	struct in_addr gw;	/* router, DNS, server identifier */
	uint8_t prefix;
	uint32_t lease_s;	/* lease time */
	uint16_t mtu;
	char hostname[DHCP_HOSTNAME_MAX + 1];
};

/** what a handled frame meant, for the caller's bookkeeping */
enum dhcp_event {
	DHCP_EV_NONE = 0,	/* ignored: foreign, malformed, not for us */
	DHCP_EV_OFFER,		/* reply is an OFFER */
	DHCP_EV_ACK,		/* reply is an ACK of the lease: the VM has its address */
	DHCP_EV_INFORM,		/* reply is an ACK to an INFORM */
	DHCP_EV_NAK,		/* reply is a NAK */
	DHCP_EV_RELEASE,	/* the guest gave the address back (no reply) */
	DHCP_EV_DECLINE,	/* the guest says the address is in use (no reply) */
};

/**
 * dhcp_handle() - answer one Ethernet frame from the guest
 * @l:      the lease
 * @in:     the frame as read (untrusted; any length)
 * @out:    reply frame buffer, DHCP_FRAME_MAX bytes
 * @outlen: set to the reply length, 0 when there is nothing to send
 *
 * Return: the event (DHCP_EV_NONE for anything dropped)
 */
enum dhcp_event dhcp_handle(const struct dhcp_lease *l, const uint8_t *in, size_t n,
			    uint8_t *out, size_t *outlen);

/** dhcp_opt_find() - option @code in options @p/@n (bounded), or NULL; *@len set */
const uint8_t *dhcp_opt_find(const uint8_t *p, size_t n, uint8_t code, uint8_t *len);

/**
 * dhcp_open() - the packet socket on @ifindex (the VM's tap) for its DHCP
 * Return: a CLOEXEC non-blocking fd, or a negative errno
 */
int dhcp_open(int ifindex);

/**
 * dhcp_input() - read every pending frame on @fd, answer through it
 * @ev: set to the most significant event seen (ACK over the others)
 * Return: 0 or a negative errno of the socket (guest garbage is not an error)
 */
int dhcp_input(int fd, int ifindex, const struct dhcp_lease *l, enum dhcp_event *ev);

#endif

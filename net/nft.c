// SPDX-License-Identifier: MIT
/**
 * DOC: nft.c - guest isolation in nftables, through libnftnl and libmnl
 *
 * Threat model: the guest is hostile and root inside.  It can send any frame
 * its NIC can carry: any source MAC, any source IP, ARP claiming any address,
 * IPv6, VLAN tags, packets to any host address (a forged route to
 * 127.0.0.1 included), to the LAN, to the cloud metadata address, to other
 * guests.  It must get: DHCP and DNS from the gateway, the internet (NATed),
 * and only the exceptions its hutch.yaml grants (host_access).
 *
 * Where each threat is stopped:
 *
 * - bridge family, table `bridge hutch`, chain `pre` (hook prerouting, before
 *   anything else on the bridge): every frame entering from a tap `ht-*` is
 *   sent by the verdict map `tap_vm` (tap name -> jump vm-<id>) to its VM's
 *   chain; a tap without an element is dropped (fail closed: a NIC passes
 *   nothing before its VM's rules are complete).  vm-<id> drops a source MAC
 *   other than the VM's, IPv4 with a source other than its lease (except the
 *   DHCP DISCOVER/REQUEST 0.0.0.0:68 -> 255.255.255.255:67), ARP whose
 *   sender MAC or IP is not its own (or 0.0.0.0 for RFC 5227 probes), IPv6
 *   unless the VM has ipv6 (then: sources other than its EUI-64 interface id
 *   under any prefix, ICMPv6 from :: aside), and every other ether type
 *   (VLAN tags, ...).
 *   Chain `fwd` (hook forward) drops frames from one tap to another, beside
 *   the bridge's own port isolation (set by net/).  Chain `input` (hook
 *   input) sees what the bridge delivers to the host without prerouting:
 *   frames to a link-local group (01:80:c2:00:00:0X) from a tap are
 *   dropped, the rest meets its VM's chain again.  LLDP (..:0e) skips even
 *   that hook; what stops it is on the ports (net/nl.c): no MAC learning
 *   (static FDB entries instead), no_linklocal_learn on the bridge, and
 *   the inet rule below for what the bridge hands up on the tap itself.
 *
 * - inet family, table `inet hutch`: at L3 a bridged packet's input device
 *   is the bridge, not the tap, so VMs are told apart by their source
 *   address, which the bridge family has already bound to the tap.  A
 *   packet whose input device is a tap itself (a link-local frame the
 *   bridge passed up) is dropped first in `input` and `forward`.  Chain
 *   `input` (from the bridge): established/related, DHCP to broadcast, then
 *   the map `in_vm` (source -> jump vmin-<id>: DHCP renewals and, while its
 *   forwarder runs, DNS (udp only) to the gateway, and the VM's
 *   allow-host-port entries), then drop: no new connection to any host
 *   address on any interface, 127/8 with route_localnet included.  Chain
 *   `forward` (from the bridge): the map `fwd_vm` (source -> jump vm-<id>:
 *   allow-lan-host addresses, then drop 10/8, 172.16/12, 192.168/16,
 *   100.64/10, 169.254/16, 127/8, 224/4, 240/4, 255.255.255.255 and the
 *   bridge subnet, then accept: the internet); IPv6 (ipv6 VMs only) never
 *   back into the bridge nor to fc00::/7, only to 2000::/3; unknown sources
 *   dropped; towards the bridge only established/related.  Chain `postrouting`
 *   masquerades the bridge subnet leaving by any other interface.
 *
 * Port forwards are not DNAT rules: publishing on 127.0.0.1 by DNAT needs
 * route_localnet on the bridge, which would let the guest reach the host's
 * loopback services.  net/fwd.c relays them in userspace instead.
 *
 * Every change is one netlink batch (NFNL_MSG_BATCH_BEGIN ... END), so a
 * VM's chains, rules and map elements appear or fail as a whole; each
 * message asks for an ACK, every ACK is collected, and an error is reported
 * with the object it belongs to (the batch's message table maps seq to a
 * description).  Each rule carries a counter and a comment (shown by `nft
 * list ruleset` and nft_dump()).
 *
 * hutch never flushes or deletes anything but its two tables.  When the host
 * flushes its ruleset (`nft flush ruleset`, a firewall reload), or only
 * hutch's tables (`nft flush table bridge hutch` keeps the chains and drops
 * every rule), the guest is NOT isolated: the bridge passes its frames
 * unfiltered and the host's forward policy decides.  nft_repair() compares
 * what is in force with what the builders below would install (every
 * chain's rules by comment, in order; the map elements; dormant tables)
 * and re-installs what differs; when that fails the caller takes the tap
 * down.  With nft_watch_open()/nft_watch_handle() in the supervisor's poll
 * loop the window is the time from the change's netlink event to the
 * re-install (tests/bench/bench-nft.sh: the event is readable ~0.03 ms
 * after the flush commits, base and VM are back 0.6 ms later).  The tables'
 * comment names the bridge and subnet they serve: one per host.
 * Hosts that reload firewalls should run `hutch up` after the reload or use
 * a firewall that leaves foreign tables alone (firewalld, nft -f with
 * per-table flushes).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <net/ethernet.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>

#include "net/nft.h"
#include "net/nl.h"
#include "src/log.h"
#include "src/util.h"

#define NFT_TABLE "hutch"
#define NFT_COMMENT_MAX 160
/* linux/netfilter_bridge.h pulls linux/if.h, which clashes with net/if.h */
#define HT_BR_PRE_ROUTING 0
#define HT_BR_LOCAL_IN 1
#define HT_BR_FORWARD 2

/* nftables' datatype numbers (nftables src/datatype.h), only for display by `nft list` */
#define NFT_TYPE_IPADDR 7
#define NFT_TYPE_IFNAME 41

/* Set ids tie a lookup to a set created in the same batch */
#define SETID_TAP 1
#define SETID_IN 2
#define SETID_FWD 3

/* ---- batches (sent by net/nl.c) --------------------------------------- */

/**
 * struct nb - one nftables operation: its socket (for the queries that
 * decide what to change, then the batch) and its transaction
 * @quiet: an errno the caller expects (not logged)
 */
struct nb {
	struct nl_sock *s;
	struct nl_batch *b;
	int quiet;
	struct rule_list *rec;	/* when set: rules are recorded here, not sent */
};

/**
 * struct rule_list - rules as (family, chain, comment), in chain order: what
 * the builders would install (recorded) or what the kernel has (dumped), so
 * nft_base_intact() and nft_vm_intact() compare content, not chain names
 */
struct rule_rec {
	uint16_t family;
	char chain[32];
	char comment[NFT_COMMENT_MAX];
};

struct rule_list {
	struct rule_rec *r;
	size_t n, cap;
	int err;
};

static void rule_list_add(struct rule_list *l, uint16_t family, const char *chain, const char *comment)
{
	struct rule_rec *r;

	if (l->err)
		return;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct rule_rec *nr = realloc(l->r, cap * sizeof(*nr));

		if (!nr) {
			l->err = -ENOMEM;
			return;
		}
		l->r = nr;
		l->cap = cap;
	}
	r = &l->r[l->n++];
	r->family = family;
	/* names and comments are ours, bounded; a longer foreign one simply differs */
	snprintf(r->chain, sizeof(r->chain), "%s", chain);
	snprintf(r->comment, sizeof(r->comment), "%s", comment);
}

static int nb_err(const struct nb *nb)
{
	return nl_batch_error(nb->b);
}

static int nb_fail(struct nb *nb, int err)
{
	nl_batch_fail(nb->b, err);
	return nb_err(nb);
}

static void nb_free(struct nb *nb)
{
	if (!nb)
		return;
	nl_batch_free(nb->b);
	nl_close(nb->s);
	free(nb);
}

/* A new operation; NULL with errno set */
static struct nb *nb_new(void)
{
	struct nb *nb = calloc(1, sizeof(*nb));
	uint32_t seq;
	void *buf;
	int e;

	if (!nb)
		return NULL;
	nb->s = nl_open(NETLINK_NETFILTER);
	nb->b = nb->s ? nl_batch_new() : NULL;
	if (!nb->b) {
		e = errno ? errno : ENOMEM;
		nb_free(nb);
		errno = e;
		return NULL;
	}
	buf = nl_batch_reserve(nb->b, &seq, "begin the transaction");
	if (buf) {
		nftnl_batch_begin(buf, seq);
		nl_batch_push(nb->b);
	}
	return nb;
}

/*
 * nb_hdr() - start the next message, remembering what it does for errors.
 * Returns NULL when the batch is full or failed; callers then skip the
 * payload and nb_commit() fails with the error that stuck.
 */
__attribute__((format(printf, 5, 6)))
static struct nlmsghdr *nb_hdr(struct nb *nb, uint16_t type, uint16_t family, uint16_t flags,
			       const char *fmt, ...)
{
	char what[NL_WHAT_MAX];
	uint32_t seq;
	va_list ap;
	void *buf;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);	/* a description; may be cut */
	va_end(ap);
	buf = nl_batch_reserve(nb->b, &seq, "%s", what);
	if (!buf)
		return NULL;
	return nftnl_nlmsg_build_hdr(buf, type, family, flags | NLM_F_ACK, seq);
}

static void nb_done(struct nb *nb)
{
	nl_batch_push(nb->b);
}

static const char *family_name(uint16_t f)
{
	return f == NFPROTO_BRIDGE ? "bridge" : "inet";
}

/*
 * A table; a new one carries @comment (what it serves, read back by
 * table_info()) and flags 0, which also wakes a table someone made dormant.
 */
static int nb_table(struct nb *nb, uint16_t family, uint16_t type, const char *comment)
{
	struct nftnl_table *t = nftnl_table_alloc();
	struct nlmsghdr *nlh;

	if (!t)
		return nb_fail(nb, -ENOMEM);
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, NFT_TABLE);
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, family);
	if (type == NFT_MSG_NEWTABLE) {
		struct nftnl_udata_buf *ud = nftnl_udata_buf_alloc(NFT_COMMENT_MAX + 8);

		nftnl_table_set_u32(t, NFTNL_TABLE_FLAGS, 0);
		if (!ud || !nftnl_udata_put_strz(ud, NFTNL_UDATA_TABLE_COMMENT, comment)) {
			nftnl_udata_buf_free(ud);
			nftnl_table_free(t);
			return nb_fail(nb, -ENOMEM);
		}
		nftnl_table_set_data(t, NFTNL_TABLE_USERDATA, nftnl_udata_buf_data(ud),
				     nftnl_udata_buf_len(ud));
		nftnl_udata_buf_free(ud);
	}
	nlh = nb_hdr(nb, type, family, type == NFT_MSG_NEWTABLE ? NLM_F_CREATE : 0, "%s table %s %s",
		     type == NFT_MSG_NEWTABLE ? "add" : "delete", family_name(family), NFT_TABLE);
	if (nlh) {
		nftnl_table_nlmsg_build_payload(nlh, t);
		nb_done(nb);
	}
	nftnl_table_free(t);
	return nb_err(nb);
}

/* A chain: base chain when @hook >= 0 */
static int nb_chain(struct nb *nb, uint16_t family, uint16_t type, uint16_t flags, const char *name,
		    int hook, int prio, const char *ctype)
{
	struct nftnl_chain *c = nftnl_chain_alloc();
	struct nlmsghdr *nlh;

	if (!c)
		return nb_fail(nb, -ENOMEM);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, NFT_TABLE);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, family);
	if (hook >= 0) {
		nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, (uint32_t)hook);
		nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, prio);
		nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, ctype);
		nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	}
	nlh = nb_hdr(nb, type, family, flags, "%s chain %s %s %s",
		     type == NFT_MSG_NEWCHAIN ? "add" : "delete", family_name(family), NFT_TABLE, name);
	if (nlh) {
		nftnl_chain_nlmsg_build_payload(nlh, c);
		nb_done(nb);
	}
	nftnl_chain_free(c);
	return nb_err(nb);
}

/* Remove every rule of a chain (DELRULE without a handle) */
static int nb_flush_chain(struct nb *nb, uint16_t family, const char *chain)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct nlmsghdr *nlh;

	if (!r)
		return nb_fail(nb, -ENOMEM);
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, NFT_TABLE);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, family);
	nlh = nb_hdr(nb, NFT_MSG_DELRULE, family, 0, "flush chain %s %s %s", family_name(family),
		     NFT_TABLE, chain);
	if (nlh) {
		nftnl_rule_nlmsg_build_payload(nlh, r);
		nb_done(nb);
	}
	nftnl_rule_free(r);
	return nb_err(nb);
}

static int nb_set(struct nb *nb, uint16_t family, const char *name, uint32_t id, uint32_t key_type,
		  uint32_t key_len)
{
	struct nftnl_set *s = nftnl_set_alloc();
	struct nftnl_udata_buf *ud;
	struct nlmsghdr *nlh;

	if (!s)
		return nb_fail(nb, -ENOMEM);
	nftnl_set_set_str(s, NFTNL_SET_TABLE, NFT_TABLE);
	nftnl_set_set_str(s, NFTNL_SET_NAME, name);
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, family);
	nftnl_set_set_u32(s, NFTNL_SET_ID, id);
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_MAP);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, key_type);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, key_len);
	nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, NFT_DATA_VERDICT);
	ud = nftnl_udata_buf_alloc(64);
	if (!ud) {
		nftnl_set_free(s);
		return nb_fail(nb, -ENOMEM);
	}
	/* Only for `nft list`: strings are host order, addresses network order (nftables' enum byteorder) */
	nftnl_udata_put_u32(ud, NFTNL_UDATA_SET_KEYBYTEORDER, key_type == NFT_TYPE_IFNAME ? 1 : 2);
	nftnl_set_set_data(s, NFTNL_SET_USERDATA, nftnl_udata_buf_data(ud), nftnl_udata_buf_len(ud));
	nftnl_udata_buf_free(ud);
	nlh = nb_hdr(nb, NFT_MSG_NEWSET, family, NLM_F_CREATE, "add map %s %s %s", family_name(family),
		     NFT_TABLE, name);
	if (nlh) {
		nftnl_set_nlmsg_build_payload(nlh, s);
		nb_done(nb);
	}
	nftnl_set_free(s);
	return nb_err(nb);
}

/* One map element @key -> jump @chain (NEWSETELEM) or its removal (DELSETELEM) */
static int nb_elem(struct nb *nb, uint16_t family, uint16_t type, const char *set, const void *key,
		   uint32_t key_len, const char *chain, const char *keytxt)
{
	struct nftnl_set *s = nftnl_set_alloc();
	struct nftnl_set_elem *e;
	struct nlmsghdr *nlh;

	if (!s)
		return nb_fail(nb, -ENOMEM);
	e = nftnl_set_elem_alloc();
	if (!e) {
		nftnl_set_free(s);
		return nb_fail(nb, -ENOMEM);
	}
	nftnl_set_set_str(s, NFTNL_SET_TABLE, NFT_TABLE);
	nftnl_set_set_str(s, NFTNL_SET_NAME, set);
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, family);
	nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, key_len);
	if (type == NFT_MSG_NEWSETELEM) {
		nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_VERDICT, (uint32_t)NFT_JUMP);
		nftnl_set_elem_set_str(e, NFTNL_SET_ELEM_CHAIN, chain);
	}
	nftnl_set_elem_add(s, e);	/* @s owns @e now */
	nlh = nb_hdr(nb, type, family, type == NFT_MSG_NEWSETELEM ? NLM_F_CREATE | NLM_F_EXCL : 0,
		     "%s element %s : jump %s in map %s %s %s",
		     type == NFT_MSG_NEWSETELEM ? "add" : "delete", keytxt, chain, family_name(family),
		     NFT_TABLE, set);
	if (nlh) {
		nftnl_set_elems_nlmsg_build_payload(nlh, s);
		nb_done(nb);
	}
	nftnl_set_free(s);
	return nb_err(nb);
}

/**
 * nb_commit() - end the transaction, send it, collect every ACK (net/nl.c)
 * @nb:    the operation (freed by the caller)
 * @what:  what it does, for messages ("VM abc")
 *
 * Return: 0, or the first negative errno the kernel answered (logged with
 * the object of the message it answers)
 */
static int nb_commit(struct nb *nb, const char *what)
{
	uint32_t seq;
	void *buf = nl_batch_reserve(nb->b, &seq, "end the transaction");
	char w[64];

	if (buf) {
		nftnl_batch_end(buf, seq);
		nl_batch_push(nb->b);
	}
	util_snprintf(w, sizeof(w), "nftables: %s", what);
	return nl_batch_talk(nb->s, nb->b, w, nb->quiet);
}

/* ---- rules ------------------------------------------------------------ */

/* A rule under construction; the first allocation failure sticks in @err */
struct rb {
	struct nftnl_rule *r;
	int err;
};

static void rb_expr(struct rb *b, struct nftnl_expr *e)
{
	if (!e) {
		b->err = -ENOMEM;
		return;
	}
	nftnl_rule_add_expr(b->r, e);
}

static void x_meta(struct rb *b, uint32_t key)
{
	struct nftnl_expr *e = nftnl_expr_alloc("meta");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
	}
	rb_expr(b, e);
}

static void x_cmp(struct rb *b, uint32_t op, const void *data, uint32_t len)
{
	struct nftnl_expr *e = nftnl_expr_alloc("cmp");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
		nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
	}
	rb_expr(b, e);
}

static void x_payload(struct rb *b, uint32_t base, uint32_t off, uint32_t len)
{
	struct nftnl_expr *e = nftnl_expr_alloc("payload");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, off);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
	}
	rb_expr(b, e);
}

static void x_and(struct rb *b, const void *mask, uint32_t len)
{
	struct nftnl_expr *e = nftnl_expr_alloc("bitwise");
	static const uint8_t zero[16];

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, len);
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, mask, len);
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, zero, len);
	}
	rb_expr(b, e);
}

static void x_lookup(struct rb *b, const char *set, uint32_t set_id)
{
	struct nftnl_expr *e = nftnl_expr_alloc("lookup");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, NFT_REG_VERDICT);
		nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, set_id);
	}
	rb_expr(b, e);
}

static void x_counter(struct rb *b)
{
	rb_expr(b, nftnl_expr_alloc("counter"));
}

static void x_verdict(struct rb *b, int verdict)
{
	struct nftnl_expr *e = nftnl_expr_alloc("immediate");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)verdict);
	}
	rb_expr(b, e);
}

/* Matches; each leaves nothing in the registers that a later one needs */
static void m_ifname(struct rb *b, uint32_t key, const char *name, bool prefix)
{
	x_meta(b, key);
	/* A prefix ("ht-*") compares without the NUL, a full name with it */
	x_cmp(b, NFT_CMP_EQ, name, (uint32_t)strlen(name) + (prefix ? 0 : 1));
}

static void m_u8(struct rb *b, uint32_t meta_key, uint8_t v)
{
	x_meta(b, meta_key);
	x_cmp(b, NFT_CMP_EQ, &v, 1);
}

static void m_ip4(struct rb *b)
{
	m_u8(b, NFT_META_NFPROTO, NFPROTO_IPV4);
}

/* @off within the IPv4 header (12 saddr, 16 daddr), @prefix bits */
static void m_addr(struct rb *b, uint32_t off, uint32_t op, struct in_addr a, unsigned prefix)
{
	x_payload(b, NFT_PAYLOAD_NETWORK_HEADER, off, 4);
	if (prefix < 32) {
		uint32_t mask = prefix ? htonl(~0u << (32 - prefix)) : 0;

		x_and(b, &mask, 4);
		a.s_addr &= mask;
	}
	x_cmp(b, op, &a.s_addr, 4);
}

static void m_port(struct rb *b, uint8_t proto, uint32_t off, uint16_t port)
{
	uint16_t p = htons(port);

	m_u8(b, NFT_META_L4PROTO, proto);
	x_payload(b, NFT_PAYLOAD_TRANSPORT_HEADER, off, 2);
	x_cmp(b, NFT_CMP_EQ, &p, 2);
}

static void m_ether_type(struct rb *b, uint16_t type)
{
	uint16_t t = htons(type);

	x_payload(b, NFT_PAYLOAD_LL_HEADER, 12, 2);
	x_cmp(b, NFT_CMP_EQ, &t, 2);
}

static void m_ct_state(struct rb *b, uint32_t bits)
{
	struct nftnl_expr *e = nftnl_expr_alloc("ct");
	uint32_t zero = 0;

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_STATE);
		nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
	}
	rb_expr(b, e);
	x_and(b, &bits, 4);
	x_cmp(b, NFT_CMP_NEQ, &zero, 4);
}

static struct rb rb_new(uint16_t family, const char *chain)
{
	struct rb b = { .r = nftnl_rule_alloc() };

	if (!b.r) {
		b.err = -ENOMEM;
		return b;
	}
	nftnl_rule_set_str(b.r, NFTNL_RULE_TABLE, NFT_TABLE);
	nftnl_rule_set_str(b.r, NFTNL_RULE_CHAIN, chain);
	nftnl_rule_set_u32(b.r, NFTNL_RULE_FAMILY, family);
	return b;
}

/*
 * rb_add() - finish a rule with a counter and @verdict (or none when < -10,
 * for rules ending in a lookup or NAT), comment it, append it to the batch.
 * Frees the rule.
 */
static int rb_add(struct nb *nb, struct rb *b, int verdict, const char *comment)
{
	struct nftnl_udata_buf *ud;
	struct nlmsghdr *nlh;
	uint16_t family;
	const char *chain;

	if (b->err)
		goto out;
	if (nb->rec) {
		rule_list_add(nb->rec, (uint16_t)nftnl_rule_get_u32(b->r, NFTNL_RULE_FAMILY),
			      nftnl_rule_get_str(b->r, NFTNL_RULE_CHAIN), comment);
		goto out;
	}
	if (verdict > -10) {
		x_counter(b);
		x_verdict(b, verdict);
	}
	ud = nftnl_udata_buf_alloc(256);
	if (!ud) {
		b->err = -ENOMEM;
		goto out;
	}
	if (!nftnl_udata_put_strz(ud, NFTNL_UDATA_RULE_COMMENT, comment)) {
		nftnl_udata_buf_free(ud);
		b->err = -ENAMETOOLONG;
		goto out;
	}
	nftnl_rule_set_data(b->r, NFTNL_RULE_USERDATA, nftnl_udata_buf_data(ud), nftnl_udata_buf_len(ud));
	nftnl_udata_buf_free(ud);
	family = (uint16_t)nftnl_rule_get_u32(b->r, NFTNL_RULE_FAMILY);
	chain = nftnl_rule_get_str(b->r, NFTNL_RULE_CHAIN);
	nlh = nb_hdr(nb, NFT_MSG_NEWRULE, family, NLM_F_CREATE | NLM_F_APPEND, "add rule %s %s %s \"%s\"",
		     family_name(family), NFT_TABLE, chain, comment);
	if (nlh) {
		nftnl_rule_nlmsg_build_payload(nlh, b->r);
		nb_done(nb);
	}
out:
	if (b->err)
		nb_fail(nb, b->err);
	nftnl_rule_free(b->r);
	b->r = NULL;
	return nb_err(nb);
}

#define NO_VERDICT (-100)

/* ---- names and checks ------------------------------------------------- */

static bool id_valid(const char *id)
{
	size_t n = id ? strlen(id) : 0;

	if (n == 0 || n >= NFT_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9')))
			return false;
	return true;
}

static bool tap_valid(const char *tap)
{
	size_t n = strnlen(tap, IFNAMSIZ);

	if (n >= IFNAMSIZ || n <= 3 || strncmp(tap, "ht-", 3) != 0)
		return false;
	for (size_t i = 3; i < n; i++)
		if (!((tap[i] >= 'a' && tap[i] <= 'z') || (tap[i] >= '0' && tap[i] <= '9') || tap[i] == '-'))
			return false;
	return true;
}

static void chain_names(const char *id, char vm[32], char vmin[32])
{
	/* id_valid() bounds @id to 15 characters: these cannot truncate */
	snprintf(vm, 32, "vm-%s", id);
	snprintf(vmin, 32, "vmin-%s", id);
}

/* ---- queries ---------------------------------------------------------- */

/* the comment in a rule's or table's userdata (both use type 0), NUL-terminated */
static int cb_comment(const struct nftnl_udata *attr, void *data)
{
	const char **c = data;

	if (nftnl_udata_type(attr) == NFTNL_UDATA_RULE_COMMENT && nftnl_udata_len(attr) > 0 &&
	    ((const char *)nftnl_udata_get(attr))[nftnl_udata_len(attr) - 1] == '\0')
		*c = nftnl_udata_get(attr);
	return 0;
}

typedef int (*nft_build_fn)(struct nlmsghdr *nlh, void *arg);

/*
 * query() - one GET request on @s (a dump when @dump), its answers through @cb
 * Return: 0, -ENOENT when the object (or table) does not exist, or a negative errno.
 */
static int query(struct nl_sock *s, uint16_t type, uint16_t family, bool dump, nft_build_fn build,
		 void *barg, nl_msg_cb cb, void *data)
{
	char buf[MNL_SOCKET_BUFFER_SIZE] __attribute__((aligned(8)));
	struct nlmsghdr *nlh;
	int rc;

	nlh = nftnl_nlmsg_build_hdr(buf, type, family, dump ? NLM_F_DUMP : 0, 0);
	rc = build(nlh, barg);
	if (rc)
		return rc;
	return nl_query(s, nlh, "nftables query", cb, data, -ENOENT);
}

/* query() on a socket of its own */
static int query1(uint16_t type, uint16_t family, bool dump, nft_build_fn build, void *barg,
		  nl_msg_cb cb, void *data)
{
	struct nl_sock *s = nl_open(NETLINK_NETFILTER);
	int rc;

	if (!s)
		return -errno;
	rc = query(s, type, family, dump, build, barg, cb, data);
	nl_close(s);
	return rc;
}

struct chain_q {
	const char *name;
};

static int build_chain(struct nlmsghdr *nlh, void *arg)
{
	struct chain_q *q = arg;
	struct nftnl_chain *c = nftnl_chain_alloc();

	if (!c)
		return -ENOMEM;
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, NFT_TABLE);
	if (q && q->name)
		nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, q->name);
	nftnl_chain_nlmsg_build_payload(nlh, c);
	nftnl_chain_free(c);
	return 0;
}

static int cb_none(const struct nlmsghdr *nlh, void *data)
{
	(void)nlh;
	(void)data;
	return 0;
}

/* 1 when chain @name exists in hutch's table of @family, 0 when not */
static int chain_exists(struct nl_sock *s, uint16_t family, const char *name)
{
	struct chain_q q = { .name = name };
	int rc = query(s, NFT_MSG_GETCHAIN, family, false, build_chain, &q, cb_none, NULL);

	if (rc == -ENOENT)
		return 0;
	return rc < 0 ? rc : 1;
}

struct list_q {
	char (*ids)[NFT_ID_MAX];
	size_t max, n;
	int err;
};

static int cb_list(const struct nlmsghdr *nlh, void *data)
{
	struct list_q *q = data;
	struct nftnl_chain *c = nftnl_chain_alloc();
	const char *table, *name;

	if (!c)
		return -ENOMEM;
	if (nftnl_chain_nlmsg_parse(nlh, c) < 0)
		goto out;
	table = nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE);
	name = nftnl_chain_get_str(c, NFTNL_CHAIN_NAME);
	if (!table || !name || strcmp(table, NFT_TABLE) || strncmp(name, "vm-", 3) || !id_valid(name + 3))
		goto out;
	if (!q->ids)
		q->n++;		/* counting only */
	else if (q->n >= q->max)
		q->err = -ENOSPC;
	else
		snprintf(q->ids[q->n++], NFT_ID_MAX, "%s", name + 3);
out:
	nftnl_chain_free(c);
	return 0;
}

/**
 * nft_vm_list() - ids of the VMs whose chain vm-<id> is in `inet hutch`
 * @ids: array of @max ids, filled
 * @n:   set to the number found
 *
 * Return: 0 (also when hutch's table does not exist: none), -ENOSPC when
 * more than @max exist (@ids holds the first @max), or a negative errno
 */
static int vm_list(struct nl_sock *s, char (*ids)[NFT_ID_MAX], size_t max, size_t *n)
{
	struct list_q q = { .ids = ids, .max = max };
	int rc;

	rc = query(s, NFT_MSG_GETCHAIN, NFPROTO_INET, true, build_chain, NULL, cb_list, &q);
	if (rc == -ENOENT)
		rc = 0;
	if (rc)
		return rc;
	*n = q.n;
	return q.err;
}

int nft_vm_list(char (*ids)[NFT_ID_MAX], size_t max, size_t *n)
{
	struct nl_sock *s = nl_open(NETLINK_NETFILTER);
	int rc;

	if (!s)
		return -errno;
	rc = vm_list(s, ids, max, n);
	nl_close(s);
	return rc;
}

/* Elements of a map that jump to one chain, collected for deletion */
struct elem_q {
	const char *chain;
	uint8_t keys[8][IFNAMSIZ];
	uint32_t key_len[8];
	size_t n;
};

static int build_elems(struct nlmsghdr *nlh, void *arg)
{
	struct nftnl_set *s = nftnl_set_alloc();

	if (!s)
		return -ENOMEM;
	nftnl_set_set_str(s, NFTNL_SET_TABLE, NFT_TABLE);
	nftnl_set_set_str(s, NFTNL_SET_NAME, arg);
	nftnl_set_elems_nlmsg_build_payload(nlh, s);
	nftnl_set_free(s);
	return 0;
}

static int cb_elems(const struct nlmsghdr *nlh, void *data)
{
	struct elem_q *q = data;
	struct nftnl_set *s = nftnl_set_alloc();
	struct nftnl_set_elems_iter *it;
	struct nftnl_set_elem *e;

	if (!s)
		return -ENOMEM;
	if (nftnl_set_elems_nlmsg_parse(nlh, s) < 0)
		goto out;
	it = nftnl_set_elems_iter_create(s);
	if (!it)
		goto out;
	for (e = nftnl_set_elems_iter_next(it); e; e = nftnl_set_elems_iter_next(it)) {
		const char *chain = nftnl_set_elem_get_str(e, NFTNL_SET_ELEM_CHAIN);
		uint32_t klen = 0;
		const void *key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &klen);

		if (!chain || strcmp(chain, q->chain) || !key || klen > IFNAMSIZ || q->n >= 8)
			continue;
		memcpy(q->keys[q->n], key, klen);
		q->key_len[q->n++] = klen;
	}
	nftnl_set_elems_iter_destroy(it);
out:
	nftnl_set_free(s);
	return 0;
}

static int elems_to(struct nl_sock *s, uint16_t family, const char *set, const char *chain,
		    struct elem_q *q)
{
	int rc;

	memset(q, 0, sizeof(*q));
	q->chain = chain;
	rc = query(s, NFT_MSG_GETSETELEM, family, true, build_elems, (void *)set, cb_elems, q);
	return rc == -ENOENT ? 0 : rc;
}

/* ---- base ------------------------------------------------------------- */

static const struct {
	uint16_t family;
	const char *name;
	int hook;
	int prio;
	const char *type;
} base_chains[] = {
	/* Before the bridge's other filters, so nothing sees a spoofed frame */
	{ NFPROTO_BRIDGE, "pre", HT_BR_PRE_ROUTING, -300, "filter" },
	/* link-local destinations skip prerouting and come here (or nowhere: LLDP) */
	{ NFPROTO_BRIDGE, "input", HT_BR_LOCAL_IN, -300, "filter" },
	{ NFPROTO_BRIDGE, "fwd", HT_BR_FORWARD, -200, "filter" },
	{ NFPROTO_INET, "input", NF_INET_LOCAL_IN, -10, "filter" },
	{ NFPROTO_INET, "forward", NF_INET_FORWARD, -10, "filter" },
	{ NFPROTO_INET, "postrouting", NF_INET_POST_ROUTING, 100, "nat" },
};

static const struct {
	uint16_t family;
	const char *name;
	uint32_t id, key_type, key_len;
} base_maps[] = {
	{ NFPROTO_BRIDGE, "tap_vm", SETID_TAP, NFT_TYPE_IFNAME, IFNAMSIZ },
	{ NFPROTO_INET, "in_vm", SETID_IN, NFT_TYPE_IPADDR, 4 },
	{ NFPROTO_INET, "fwd_vm", SETID_FWD, NFT_TYPE_IPADDR, 4 },
};

/*
 * The base rules.  Base chains are flushed and refilled in the same batch,
 * so nft_base_ensure() is idempotent and repairs a chain someone edited;
 * VM chains and map elements are not touched.
 */
/* bridge family: each tap to its VM's chain, nothing between taps, no link-local frames */
static void base_bridge_rules(struct nb *nb)
{
	struct rb b;

	/* bridge pre: each tap to its VM's chain; unknown taps pass nothing */
	b = rb_new(NFPROTO_BRIDGE, "pre");
	x_meta(&b, NFT_META_IIFNAME);
	x_lookup(&b, "tap_vm", SETID_TAP);
	rb_add(nb, &b, NO_VERDICT, "tap -> its VM's chain");
	b = rb_new(NFPROTO_BRIDGE, "pre");
	m_ifname(&b, NFT_META_IIFNAME, "ht-", true);
	rb_add(nb, &b, NF_DROP, "drop frames from a tap without rules (fail closed)");

	b = rb_new(NFPROTO_BRIDGE, "fwd");
	m_ifname(&b, NFT_META_IIFNAME, "ht-", true);
	m_ifname(&b, NFT_META_OIFNAME, "ht-", true);
	rb_add(nb, &b, NF_DROP, "drop guest to guest");

	/*
	 * bridge input: frames to a link-local group (01:80:c2:00:00:0X) skip
	 * prerouting; the bridge would learn their source MAC and pass them
	 * to the host as received on the tap.  Guests need none of STP, LACP,
	 * 802.1X, LLDP towards the host: dropped.  Everything else meets its
	 * VM's anti-spoofing chain again before the host sees it.
	 */
	{
		static const uint8_t ll[6] = { 0x01, 0x80, 0xc2, 0, 0, 0 },
				     llmask[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xf0 };

		b = rb_new(NFPROTO_BRIDGE, "input");
		m_ifname(&b, NFT_META_IIFNAME, "ht-", true);
		x_payload(&b, NFT_PAYLOAD_LL_HEADER, 0, 6);
		x_and(&b, llmask, 6);
		x_cmp(&b, NFT_CMP_EQ, ll, 6);
		rb_add(nb, &b, NF_DROP, "drop link-local frames (01:80:c2:00:00:0X) from guests");
	}
	b = rb_new(NFPROTO_BRIDGE, "input");
	x_meta(&b, NFT_META_IIFNAME);
	x_lookup(&b, "tap_vm", SETID_TAP);
	rb_add(nb, &b, NO_VERDICT, "tap -> its VM's chain");
	b = rb_new(NFPROTO_BRIDGE, "input");
	m_ifname(&b, NFT_META_IIFNAME, "ht-", true);
	rb_add(nb, &b, NF_DROP, "drop frames from a tap without rules (fail closed)");
}

/* inet input: from the bridge, nothing new but DHCP and each VM's grants */
static void base_input_rules(struct nb *nb, const char *br)
{
	struct rb b;

	/*
	 * inet: a packet whose input device is a tap itself never came
	 * through the bridge: the bridge handed a link-local frame (LLDP) to
	 * the host's stack on the port.  Every rule below is written for the
	 * bridge; these packets would pass them all.
	 */
	b = rb_new(NFPROTO_INET, "input");
	m_ifname(&b, NFT_META_IIFNAME, "ht-", true);
	rb_add(nb, &b, NF_DROP, "drop packets that skipped the bridge (link-local, from a tap)");

	b = rb_new(NFPROTO_INET, "input");
	m_ifname(&b, NFT_META_IIFNAME, br, false);
	m_ct_state(&b, NF_CT_STATE_BIT(IP_CT_ESTABLISHED) | NF_CT_STATE_BIT(IP_CT_RELATED));
	rb_add(nb, &b, NF_ACCEPT, "guest: established, related");
	{
		/* RFC 2131 4.1: before its lease a client broadcasts; renewals go to the server (VM chain) */
		struct in_addr bcast = { .s_addr = INADDR_BROADCAST };

		b = rb_new(NFPROTO_INET, "input");
		m_ifname(&b, NFT_META_IIFNAME, br, false);
		m_ip4(&b);
		m_addr(&b, 16, NFT_CMP_EQ, bcast, 32);
		m_port(&b, IPPROTO_UDP, 2, 67);
		rb_add(nb, &b, NF_ACCEPT, "guest: DHCP to 255.255.255.255:67");
	}
	/*
	 * Neighbour discovery, for VMs with ipv6 (the bridge family drops
	 * IPv6 of the others): solicitations and advertisements only.  No
	 * router advertisements (134) or redirects (137): a guest must not
	 * steer the host's routes.
	 */
	for (size_t i = 0; i < 3; i++) {
		static const uint8_t nd[3] = { 133, 135, 136 };
		static const char *const nd_name[3] = { "router solicitation", "neighbour solicitation",
							"neighbour advertisement" };
		char c[96];

		b = rb_new(NFPROTO_INET, "input");
		m_ifname(&b, NFT_META_IIFNAME, br, false);
		m_u8(&b, NFT_META_NFPROTO, NFPROTO_IPV6);
		m_u8(&b, NFT_META_L4PROTO, IPPROTO_ICMPV6);
		x_payload(&b, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1);
		x_cmp(&b, NFT_CMP_EQ, &nd[i], 1);
		snprintf(c, sizeof(c), "guest: ICMPv6 %s (ipv6 VMs only reach here)", nd_name[i]);
		rb_add(nb, &b, NF_ACCEPT, c);
	}
	b = rb_new(NFPROTO_INET, "input");
	m_ifname(&b, NFT_META_IIFNAME, br, false);
	m_ip4(&b);
	x_payload(&b, NFT_PAYLOAD_NETWORK_HEADER, 12, 4);
	x_lookup(&b, "in_vm", SETID_IN);
	rb_add(nb, &b, NO_VERDICT, "guest: source -> its VM's input chain");
	b = rb_new(NFPROTO_INET, "input");
	m_ifname(&b, NFT_META_IIFNAME, br, false);
	rb_add(nb, &b, NF_DROP, "guest: drop new connections to the host");
}

/* inet forward: each VM's chain by source, IPv6 global unicast only, nothing new towards guests; NAT */
static void base_forward_rules(struct nb *nb, const char *br, struct in_addr net, uint8_t prefix)
{
	struct rb b;

	/* as in input: from a tap itself means it skipped the bridge */
	b = rb_new(NFPROTO_INET, "forward");
	m_ifname(&b, NFT_META_IIFNAME, "ht-", true);
	rb_add(nb, &b, NF_DROP, "drop packets that skipped the bridge (link-local, from a tap)");
	b = rb_new(NFPROTO_INET, "forward");
	m_ifname(&b, NFT_META_IIFNAME, br, false);
	m_ip4(&b);
	x_payload(&b, NFT_PAYLOAD_NETWORK_HEADER, 12, 4);
	x_lookup(&b, "fwd_vm", SETID_FWD);
	rb_add(nb, &b, NO_VERDICT, "guest: source -> its VM's chain");
	/*
	 * IPv6 (only VMs with ipv6 get it past the bridge family): never back
	 * into the bridge (the other guests), never to unique-local space;
	 * link-local is not routed and the host's own addresses are input.
	 */
	b = rb_new(NFPROTO_INET, "forward");
	m_ifname(&b, NFT_META_IIFNAME, br, false);
	m_u8(&b, NFT_META_NFPROTO, NFPROTO_IPV6);
	m_ifname(&b, NFT_META_OIFNAME, br, false);
	rb_add(nb, &b, NF_DROP, "guest: drop IPv6 to other guests (routed back into the bridge)");
	b = rb_new(NFPROTO_INET, "forward");
	{
		uint8_t mask[16] = { 0xfe }, want[16] = { 0xfc };

		m_ifname(&b, NFT_META_IIFNAME, br, false);
		m_u8(&b, NFT_META_NFPROTO, NFPROTO_IPV6);
		x_payload(&b, NFT_PAYLOAD_NETWORK_HEADER, 24, 16);
		x_and(&b, mask, 16);
		x_cmp(&b, NFT_CMP_EQ, want, 16);
	}
	rb_add(nb, &b, NF_DROP, "guest: drop IPv6 to unique-local fc00::/7");
	b = rb_new(NFPROTO_INET, "forward");
	{
		/* global unicast only */
		uint8_t mask[16] = { 0xe0 }, want[16] = { 0x20 };

		m_ifname(&b, NFT_META_IIFNAME, br, false);
		m_u8(&b, NFT_META_NFPROTO, NFPROTO_IPV6);
		x_payload(&b, NFT_PAYLOAD_NETWORK_HEADER, 24, 16);
		x_and(&b, mask, 16);
		x_cmp(&b, NFT_CMP_EQ, want, 16);
	}
	rb_add(nb, &b, NF_ACCEPT, "guest: IPv6 to 2000::/3 (ipv6 VMs only reach here)");
	b = rb_new(NFPROTO_INET, "forward");
	m_ifname(&b, NFT_META_IIFNAME, br, false);
	rb_add(nb, &b, NF_DROP, "guest: drop unknown source (fail closed)");
	b = rb_new(NFPROTO_INET, "forward");
	m_ifname(&b, NFT_META_OIFNAME, br, false);
	m_ct_state(&b, NF_CT_STATE_BIT(IP_CT_ESTABLISHED) | NF_CT_STATE_BIT(IP_CT_RELATED));
	rb_add(nb, &b, NF_ACCEPT, "to guests: established, related");
	b = rb_new(NFPROTO_INET, "forward");
	m_ifname(&b, NFT_META_OIFNAME, br, false);
	rb_add(nb, &b, NF_DROP, "to guests: drop new connections");

	/* NAT */
	b = rb_new(NFPROTO_INET, "postrouting");
	m_ip4(&b);
	m_addr(&b, 12, NFT_CMP_EQ, net, prefix);
	x_meta(&b, NFT_META_OIFNAME);
	{
		char name[IFNAMSIZ] = "";

		snprintf(name, sizeof(name), "%s", br);
		x_cmp(&b, NFT_CMP_NEQ, name, (uint32_t)strlen(name) + 1);
	}
	x_counter(&b);
	rb_expr(&b, nftnl_expr_alloc("masq"));
	rb_add(nb, &b, NO_VERDICT, "masquerade the guests' subnet");
}

static void base_rules(struct nb *nb, const char *br, struct in_addr net, uint8_t prefix)
{
	base_bridge_rules(nb);
	base_input_rules(nb, br);
	base_forward_rules(nb, br, net, prefix);
}

/* What a table says about itself: whether it exists, its flags, its comment */
struct table_info {
	bool exists;
	uint32_t flags;
	char comment[NFT_COMMENT_MAX];
};

static int cb_table(const struct nlmsghdr *nlh, void *data)
{
	struct table_info *ti = data;
	struct nftnl_table *t = nftnl_table_alloc();
	const char *comment = NULL;
	const void *ud;
	uint32_t udlen = 0;

	if (!t)
		return -ENOMEM;
	if (nftnl_table_nlmsg_parse(nlh, t) == 0) {
		ti->exists = true;
		ti->flags = nftnl_table_get_u32(t, NFTNL_TABLE_FLAGS);
		ud = nftnl_table_get_data(t, NFTNL_TABLE_USERDATA, &udlen);
		if (ud)
			nftnl_udata_parse(ud, udlen, cb_comment, &comment);
		if (comment)
			snprintf(ti->comment, sizeof(ti->comment), "%s", comment);
	}
	nftnl_table_free(t);
	return 0;
}

static int build_table(struct nlmsghdr *nlh, void *arg)
{
	struct nftnl_table *t = nftnl_table_alloc();

	(void)arg;
	if (!t)
		return -ENOMEM;
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, NFT_TABLE);
	nftnl_table_nlmsg_build_payload(nlh, t);
	nftnl_table_free(t);
	return 0;
}

static int table_info(struct nl_sock *s, uint16_t family, struct table_info *ti)
{
	int rc;

	memset(ti, 0, sizeof(*ti));
	rc = query(s, NFT_MSG_GETTABLE, family, false, build_table, NULL, cb_table, ti);
	return rc == -ENOENT ? 0 : rc;
}

/* What the base serves, as the tables' comment says it */
static void base_comment(char *out, size_t n, const char *bridge, struct in_addr net, uint8_t prefix)
{
	char a[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &net, a, sizeof(a));
	snprintf(out, n, "hutch: guests of bridge %s, subnet %s/%u", bridge, a, prefix);
}

/*
 * base_owner_check() - may the base be (re)made for @want?  One base serves
 * one bridge: its rules name the bridge, so re-pointing them would leave
 * the VMs of the first bridge with rules that no longer match their
 * packets.  Another bridge's base with VMs on it: -EBUSY; without VMs it
 * is replaced (*@replace set).  Tables of an older hutch have no comment:
 * kept as they are.
 */
static int base_owner_check(struct nb *nb, const char *want, bool *replace, bool *exists)
{
	struct table_info ti[2];
	size_t n = 0;
	int rc;

	*replace = false;
	for (int i = 0; i < 2; i++) {
		rc = table_info(nb->s, i ? NFPROTO_INET : NFPROTO_BRIDGE, &ti[i]);
		if (rc)
			return rc;
		exists[i] = ti[i].exists;
	}
	if (!ti[1].exists || !ti[1].comment[0] || !strcmp(ti[1].comment, want))
		return 0;
	rc = vm_list(nb->s, NULL, 0, &n);
	if (rc)
		return rc;
	if (n) {
		log_err("nftables: hutch's rules serve \"%s\" with %zu VM(s) running; a VM with "
			"\"%s\" cannot share them (one HUTCH_BRIDGE/HUTCH_SUBNET per host): "
			"stop those VMs first", ti[1].comment, n, want);
		return -EBUSY;
	}
	*replace = true;
	return 0;
}

/**
 * nft_base_ensure() - create or repair hutch's tables, maps and base chains
 * @bridge: the bridge's name (hutch0)
 * @net:    the bridge subnet, masqueraded when leaving by another interface
 * @prefix: its prefix length
 *
 * One batch: tables, chains and maps are created when missing (existing
 * ones are kept, with their VM elements), base chains are flushed and
 * refilled.  After a host flush the VMs must be re-added by the caller
 * (nft_vm_intact() tells which, nft_repair() does both).
 *
 * Return: 0, -EBUSY when the base serves another bridge or subnet that
 * still has VMs (logged), or a negative errno (logged with the failing object)
 */
int nft_base_ensure(const char *bridge, struct in_addr net, uint8_t prefix)
{
	char comment[NFT_COMMENT_MAX];
	bool replace, exists[2];
	struct nb *nb;
	int rc;

	if (!bridge || strnlen(bridge, IFNAMSIZ) >= IFNAMSIZ || !bridge[0] || prefix > 32)
		return -EINVAL;
	base_comment(comment, sizeof(comment), bridge, net, prefix);
	nb = nb_new();
	if (!nb)
		return -errno;
	rc = base_owner_check(nb, comment, &replace, exists);
	if (rc)
		goto out;
	for (int i = 0; replace && i < 2; i++)
		if (exists[i])
			nb_table(nb, i ? NFPROTO_INET : NFPROTO_BRIDGE, NFT_MSG_DELTABLE, NULL);
	nb_table(nb, NFPROTO_BRIDGE, NFT_MSG_NEWTABLE, comment);
	nb_table(nb, NFPROTO_INET, NFT_MSG_NEWTABLE, comment);
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(base_maps); i++)
		nb_set(nb, base_maps[i].family, base_maps[i].name, base_maps[i].id, base_maps[i].key_type,
		       base_maps[i].key_len);
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(base_chains); i++) {
		nb_chain(nb, base_chains[i].family, NFT_MSG_NEWCHAIN, NLM_F_CREATE, base_chains[i].name,
			 base_chains[i].hook, base_chains[i].prio, base_chains[i].type);
		nb_flush_chain(nb, base_chains[i].family, base_chains[i].name);
	}
	base_rules(nb, bridge, net, prefix);
	rc = nb_commit(nb, "base");
out:
	nb_free(nb);
	return rc;
}

/**
 * nft_base_present() - whether the tables, maps' chains and base chains exist
 *
 * Return: 1, 0 when any is missing, or a negative errno
 */
int nft_base_present(void)
{
	struct nl_sock *s = nl_open(NETLINK_NETFILTER);
	int rc = 1;

	if (!s)
		return -errno;
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(base_chains) && rc > 0; i++)
		rc = chain_exists(s, base_chains[i].family, base_chains[i].name);
	nl_close(s);
	return rc;
}

static int table_del(uint16_t family)
{
	struct nb *nb = nb_new();
	int rc;

	if (!nb)
		return -errno;
	nb->quiet = -ENOENT;
	nb_table(nb, family, NFT_MSG_DELTABLE, NULL);
	rc = nb_commit(nb, "remove");
	nb_free(nb);
	return rc;
}

/**
 * nft_base_remove() - delete `inet hutch` and `bridge hutch` with all they hold,
 * once no VM has rules in them: removing them under a running VM would
 * leave its tap unfiltered (the bridge family is where anti-spoofing lives)
 *
 * Return: 0 (also when they did not exist), -EBUSY while VM chains exist,
 * or a negative errno
 */
int nft_base_remove(void)
{
	size_t n = 0;
	int rc = 0, r;

	r = nft_vm_list(NULL, 0, &n);
	if (r == 0 && n) {
		log_debug("nftables: hutch's tables kept: %zu VM(s) still have rules", n);
		return -EBUSY;
	}

	for (int i = 0; i < 2; i++) {
		uint16_t f = i ? NFPROTO_INET : NFPROTO_BRIDGE;

		r = table_del(f);
		if (r == -ENOENT)
			r = 0;
		if (r && !rc)
			rc = r;
	}
	return rc;
}

/* ---- VMs -------------------------------------------------------------- */

/* inet @chain: accept each allow-lan-host address of @vm; comment "<pre>allow-lan-host A<post>" */
static void vm_lan_host_rules(struct nb *nb, const struct nft_vm *vm, const char *chain,
			      const char *pre, const char *post)
{
	char c[160];
	struct rb b;

	for (size_t i = 0; i < vm->n_host_access; i++) {
		const struct cfg_host_access *h = &vm->host_access[i];

		if (h->kind != CFG_HA_LAN_HOST)
			continue;
		b = rb_new(NFPROTO_INET, chain);
		m_ip4(&b);
		m_addr(&b, 16, NFT_CMP_EQ, h->addr, 32);
		snprintf(c, sizeof(c), "%sallow-lan-host %s%s", pre, inet_ntoa(h->addr), post);
		rb_add(nb, &b, NF_ACCEPT, c);
	}
}

/* ---- WireGuard kill switch (issue 11) -------------------------------- */

/*
 * A VM with a wireguard.conf (vm->wg.ifname set) gets, inside its own batch:
 * - bridge vm-<id>: every IPv4 packet from its tap is marked with wg.mark,
 *   which sends it to the VM's routing table (net/wg_rt.c: default via the
 *   wg interface, `unreachable` behind it);
 * - inet vm-<id>, first: allow-lan-host entries (they keep their LAN route),
 *   then "kill switch": anything leaving by another interface than its wg
 *   interface is dropped and counted, whatever the routing says (a deleted
 *   or downed wg link, a flushed policy rule); then DNS to the tunnel's DNS;
 * - inet vmin-<id>, first: DNS to the gateway is dropped: the host's
 *   forwarder would ask the host's resolvers, outside the tunnel;
 * - inet wgdns-<id> (nat prerouting): the VM's queries to the gateway are
 *   DNAT'ed to the tunnel's DNS instead, so they never reach that input
 *   chain and go out through the tunnel.
 * If the nat chain is lost, DNS fails closed (the input drop); if the mark
 * is lost, the VM's source rule still picks its table (net/wg_sv.c).
 */
#define WG_CHAIN_PREFIX "wgdns-"
#define WG_KS_COMMENT "kill switch"

static bool vm_has_wg(const struct nft_vm *vm)
{
	return vm->wg.ifname[0] != 0;
}

static void wg_chain_name(const char *id, char name[32])
{
	/* id_valid() bounds @id to 15 characters: this cannot truncate */
	snprintf(name, 32, WG_CHAIN_PREFIX "%s", id);
}

static void x_imm(struct rb *b, const void *data, uint32_t len)
{
	struct nftnl_expr *e = nftnl_expr_alloc("immediate");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_1);
		nftnl_expr_set(e, NFTNL_EXPR_IMM_DATA, data, len);
	}
	rb_expr(b, e);
}

static void m_mark(struct rb *b, uint32_t mark)
{
	x_meta(b, NFT_META_MARK);
	x_cmp(b, NFT_CMP_EQ, &mark, sizeof(mark));
}

/* bridge vm-<id>: mark the VM's IPv4, before the rule that accepts it */
static void nft_wg_bridge_rules(struct nb *nb, const struct nft_vm *vm, const char *chain)
{
	struct nftnl_expr *e;
	char c[96];
	struct rb b;

	if (!vm_has_wg(vm))
		return;
	b = rb_new(NFPROTO_BRIDGE, chain);
	m_ether_type(&b, ETHERTYPE_IP);
	x_counter(&b);
	x_imm(&b, &vm->wg.mark, sizeof(vm->wg.mark));
	e = nftnl_expr_alloc("meta");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, NFT_META_MARK);
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_SREG, NFT_REG_1);
	}
	rb_expr(&b, e);
	snprintf(c, sizeof(c), "wg: mark 0x%x (routing table of %s)", vm->wg.mark, vm->wg.ifname);
	rb_add(nb, &b, NO_VERDICT, c);
}

/* inet vmin-<id>: no DNS from the host's forwarder for a tunnelled VM */
static void nft_wg_input_rules(struct nb *nb, const struct nft_vm *vm, const char *chain_in)
{
	struct rb b;

	if (!vm_has_wg(vm))
		return;
	for (int p = 0; p < 2; p++) {
		b = rb_new(NFPROTO_INET, chain_in);
		m_ip4(&b);
		m_port(&b, p ? IPPROTO_TCP : IPPROTO_UDP, 2, 53);
		rb_add(nb, &b, NF_DROP, p ? "wg: drop DNS tcp/53 to the host (only through the tunnel)"
					  : "wg: drop DNS udp/53 to the host (only through the tunnel)");
	}
}

/* inet vm-<id>: allow-lan-host, the kill switch, the tunnel's DNS */
static void nft_wg_fwd_rules(struct nb *nb, const struct nft_vm *vm, const char *chain)
{
	char c[160], d[INET_ADDRSTRLEN];
	struct rb b;

	if (!vm_has_wg(vm))
		return;
	vm_lan_host_rules(nb, vm, chain, "wg: ", " outside the tunnel");
	b = rb_new(NFPROTO_INET, chain);
	x_meta(&b, NFT_META_OIFNAME);
	x_cmp(&b, NFT_CMP_NEQ, vm->wg.ifname, (uint32_t)strlen(vm->wg.ifname) + 1);
	snprintf(c, sizeof(c), WG_KS_COMMENT ": drop what would leave by another interface than %s",
		 vm->wg.ifname);
	rb_add(nb, &b, NF_DROP, c);
	if (!vm->wg.dns.s_addr)
		return;
	inet_ntop(AF_INET, &vm->wg.dns, d, sizeof(d));
	for (int p = 0; p < 2; p++) {
		b = rb_new(NFPROTO_INET, chain);
		m_ip4(&b);
		m_addr(&b, 16, NFT_CMP_EQ, vm->wg.dns, 32);
		m_port(&b, p ? IPPROTO_TCP : IPPROTO_UDP, 2, 53);
		snprintf(c, sizeof(c), "wg: the tunnel's DNS %s %s/53", d, p ? "tcp" : "udp");
		rb_add(nb, &b, NF_ACCEPT, c);
	}
}

/* inet wgdns-<id>: the VM's DNS to the gateway goes to the tunnel's DNS */
static void nft_wg_nat_msgs(struct nb *nb, const struct nft_vm *vm)
{
	char name[32], c[128], d[INET_ADDRSTRLEN];
	struct rb b;

	if (!vm_has_wg(vm))
		return;
	wg_chain_name(vm->id, name);
	nb_chain(nb, NFPROTO_INET, NFT_MSG_NEWCHAIN, NLM_F_CREATE | NLM_F_EXCL, name,
		 NF_INET_PRE_ROUTING, -100, "nat");
	if (!vm->wg.dns.s_addr)
		return;
	inet_ntop(AF_INET, &vm->wg.dns, d, sizeof(d));
	for (int p = 0; p < 2; p++) {
		struct nftnl_expr *e;

		b = rb_new(NFPROTO_INET, name);
		m_mark(&b, vm->wg.mark);
		m_ip4(&b);
		m_addr(&b, 16, NFT_CMP_EQ, vm->gw, 32);
		m_port(&b, p ? IPPROTO_TCP : IPPROTO_UDP, 2, 53);
		x_counter(&b);
		x_imm(&b, &vm->wg.dns.s_addr, 4);
		e = nftnl_expr_alloc("nat");
		if (e) {
			nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_TYPE, NFT_NAT_DNAT);
			nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FAMILY, NFPROTO_IPV4);
			nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, NFT_REG_1);
		}
		rb_expr(&b, e);
		snprintf(c, sizeof(c), "wg: DNS %s/53 to the gateway -> the tunnel's DNS %s",
			 p ? "tcp" : "udp", d);
		rb_add(nb, &b, NO_VERDICT, c);
	}
}

/* removal of VM @id's nat chain, if it exists; Return: 1 when found, 0, or a negative errno */
static int nft_wg_del_msgs(struct nb *nb, const char *id)
{
	char name[32];
	int rc;

	wg_chain_name(id, name);
	rc = chain_exists(nb->s, NFPROTO_INET, name);
	if (rc <= 0)
		return rc;
	nb_flush_chain(nb, NFPROTO_INET, name);
	nb_chain(nb, NFPROTO_INET, NFT_MSG_DELCHAIN, 0, name, -1, 0, NULL);
	return nb_err(nb) ? nb_err(nb) : 1;
}

/*
 * vm_del_msgs() - append to @nb the removal of whatever VM @id has: map
 * elements first (they reference the chains), then rules, then chains.
 * Return: number of objects found, or a negative errno.
 */
static int vm_del_msgs(struct nb *nb, const char *id)
{
	char vm[32], vmin[32];
	struct elem_q q;
	int found = 0, rc;
	static const struct {
		uint16_t family;
		const char *set;
		bool in;
	} maps[] = {
		{ NFPROTO_BRIDGE, "tap_vm", false },
		{ NFPROTO_INET, "in_vm", true },
		{ NFPROTO_INET, "fwd_vm", false },
	};
	static const struct {
		uint16_t family;
		bool in;
	} chains[] = { { NFPROTO_BRIDGE, false }, { NFPROTO_INET, true }, { NFPROTO_INET, false } };

	chain_names(id, vm, vmin);
	for (size_t m = 0; m < UTIL_ARRAY_SIZE(maps); m++) {
		rc = elems_to(nb->s, maps[m].family, maps[m].set, maps[m].in ? vmin : vm, &q);
		if (rc)
			return rc;
		for (size_t i = 0; i < q.n; i++) {
			char txt[IFNAMSIZ + 1] = "";

			if (q.key_len[i] == 4)
				inet_ntop(AF_INET, q.keys[i], txt, sizeof(txt));
			else
				snprintf(txt, sizeof(txt), "%.*s", (int)q.key_len[i], (char *)q.keys[i]);
			nb_elem(nb, maps[m].family, NFT_MSG_DELSETELEM, maps[m].set, q.keys[i], q.key_len[i],
				maps[m].in ? vmin : vm, txt);
			found++;
		}
	}
	for (size_t c = 0; c < UTIL_ARRAY_SIZE(chains); c++) {
		const char *name = chains[c].in ? vmin : vm;

		rc = chain_exists(nb->s, chains[c].family, name);
		if (rc < 0)
			return rc;
		if (!rc)
			continue;
		nb_flush_chain(nb, chains[c].family, name);
		nb_chain(nb, chains[c].family, NFT_MSG_DELCHAIN, 0, name, -1, 0, NULL);
		found++;
	}
	rc = nft_wg_del_msgs(nb, id);
	if (rc < 0)
		return rc;
	found += rc;
	return nb_err(nb) ? nb_err(nb) : found;
}

/* Private, special and multicast destinations a guest may not reach */
static const struct {
	const char *net;
	uint8_t prefix;
	const char *why;
} forbidden[] = {
	{ "10.0.0.0", 8, "RFC 1918" },
	{ "172.16.0.0", 12, "RFC 1918" },
	{ "192.168.0.0", 16, "RFC 1918" },
	{ "100.64.0.0", 10, "RFC 6598 shared/CGNAT" },
	{ "169.254.0.0", 16, "link-local, cloud metadata" },
	{ "127.0.0.0", 8, "loopback" },
	{ "224.0.0.0", 4, "multicast" },
	{ "240.0.0.0", 4, "reserved" },
	{ "255.255.255.255", 32, "broadcast" },
	{ "0.0.0.0", 8, "this network" },
};

/*
 * IPv6 sources (ipv6: true).  hutch gives guests no IPv6 address, so it
 * cannot bind one; it binds the interface identifier instead: the source
 * must end in the EUI-64 identifier of the VM's MAC (RFC 4291 2.5.1), the
 * one SLAAC and the link-local address use, under any prefix.  Another
 * VM's addresses, made-up sources and privacy addresses are dropped.  The
 * unspecified address is allowed for ICMPv6 only (RFC 4862 DAD, MLD).
 */
static void vm_bridge_ipv6(struct nb *nb, const struct nft_vm *vm, const char *chain)
{
	static const uint8_t unspec[16];
	uint8_t iid[8] = { (uint8_t)(vm->mac[0] ^ 2), vm->mac[1], vm->mac[2], 0xff, 0xfe, vm->mac[3],
			   vm->mac[4], vm->mac[5] };
	char c[160];
	struct rb b;

	b = rb_new(NFPROTO_BRIDGE, chain);
	m_ether_type(&b, ETHERTYPE_IPV6);
	x_payload(&b, NFT_PAYLOAD_NETWORK_HEADER, 8, 16);
	x_cmp(&b, NFT_CMP_EQ, unspec, 16);
	m_u8(&b, NFT_META_L4PROTO, IPPROTO_ICMPV6);
	rb_add(nb, &b, NF_ACCEPT, "IPv6 ICMPv6 from :: (duplicate address detection, MLD)");
	b = rb_new(NFPROTO_BRIDGE, chain);
	m_ether_type(&b, ETHERTYPE_IPV6);
	x_payload(&b, NFT_PAYLOAD_NETWORK_HEADER, 16, 8);
	x_cmp(&b, NFT_CMP_EQ, iid, 8);
	snprintf(c, sizeof(c), "IPv6 from its EUI-64 interface id ::%02x%02x:%02x%02x:%02x%02x:%02x%02x",
		 iid[0], iid[1], iid[2], iid[3], iid[4], iid[5], iid[6], iid[7]);
	rb_add(nb, &b, NF_ACCEPT, c);
	b = rb_new(NFPROTO_BRIDGE, chain);
	m_ether_type(&b, ETHERTYPE_IPV6);
	rb_add(nb, &b, NF_DROP, "drop IPv6 from any other source");
}

static void vm_bridge_rules(struct nb *nb, const struct nft_vm *vm, const char *chain)
{
	struct in_addr any = { 0 }, bcast = { .s_addr = INADDR_BROADCAST };
	static const uint8_t arp_hdr[6] = { 0, 1, 8, 0, 6, 4 };	/* Ethernet, IPv4, 6, 4 */
	char c[160];
	struct rb b;

	snprintf(c, sizeof(c), "drop source MAC other than %02x:%02x:%02x:%02x:%02x:%02x", vm->mac[0],
		 vm->mac[1], vm->mac[2], vm->mac[3], vm->mac[4], vm->mac[5]);
	b = rb_new(NFPROTO_BRIDGE, chain);
	x_payload(&b, NFT_PAYLOAD_LL_HEADER, 6, 6);
	x_cmp(&b, NFT_CMP_NEQ, vm->mac, 6);
	rb_add(nb, &b, NF_DROP, c);

	/* RFC 2131 4.1: before its lease, a client sends from 0.0.0.0:68 to broadcast:67 */
	b = rb_new(NFPROTO_BRIDGE, chain);
	m_ether_type(&b, ETHERTYPE_IP);
	m_addr(&b, 12, NFT_CMP_EQ, any, 32);
	m_addr(&b, 16, NFT_CMP_EQ, bcast, 32);
	m_port(&b, IPPROTO_UDP, 0, 68);
	m_port(&b, IPPROTO_UDP, 2, 67);
	rb_add(nb, &b, NF_ACCEPT, "DHCP 0.0.0.0:68 -> 255.255.255.255:67");

	b = rb_new(NFPROTO_BRIDGE, chain);
	m_ether_type(&b, ETHERTYPE_IP);
	m_addr(&b, 12, NFT_CMP_NEQ, vm->addr, 32);
	snprintf(c, sizeof(c), "drop IPv4 source other than %s", inet_ntoa(vm->addr));
	rb_add(nb, &b, NF_DROP, c);
	nft_wg_bridge_rules(nb, vm, chain);
	b = rb_new(NFPROTO_BRIDGE, chain);
	m_ether_type(&b, ETHERTYPE_IP);
	rb_add(nb, &b, NF_ACCEPT, "IPv4 from its own address");

	/* ARP: only Ethernet/IPv4 ARP, so the sender fields sit where we look */
	b = rb_new(NFPROTO_BRIDGE, chain);
	m_ether_type(&b, ETHERTYPE_ARP);
	x_payload(&b, NFT_PAYLOAD_NETWORK_HEADER, 0, 6);
	x_cmp(&b, NFT_CMP_NEQ, arp_hdr, 6);
	rb_add(nb, &b, NF_DROP, "drop ARP other than Ethernet/IPv4");
	b = rb_new(NFPROTO_BRIDGE, chain);
	m_ether_type(&b, ETHERTYPE_ARP);
	x_payload(&b, NFT_PAYLOAD_NETWORK_HEADER, 8, 6);
	x_cmp(&b, NFT_CMP_NEQ, vm->mac, 6);
	rb_add(nb, &b, NF_DROP, "drop ARP with another sender MAC");
	b = rb_new(NFPROTO_BRIDGE, chain);
	m_ether_type(&b, ETHERTYPE_ARP);
	m_addr(&b, 14, NFT_CMP_EQ, any, 32);
	rb_add(nb, &b, NF_ACCEPT, "ARP probe from 0.0.0.0 (RFC 5227)");
	b = rb_new(NFPROTO_BRIDGE, chain);
	m_ether_type(&b, ETHERTYPE_ARP);
	m_addr(&b, 14, NFT_CMP_NEQ, vm->addr, 32);
	snprintf(c, sizeof(c), "drop ARP with a sender IP other than %s", inet_ntoa(vm->addr));
	rb_add(nb, &b, NF_DROP, c);
	b = rb_new(NFPROTO_BRIDGE, chain);
	m_ether_type(&b, ETHERTYPE_ARP);
	rb_add(nb, &b, NF_ACCEPT, "ARP of its own address");

	if (vm->ipv6)
		vm_bridge_ipv6(nb, vm, chain);
	b = rb_new(NFPROTO_BRIDGE, chain);
	rb_add(nb, &b, NF_DROP, vm->ipv6 ? "drop other ether types" : "drop IPv6 and other ether types");
}

static void vm_inet_rules(struct nb *nb, const struct nft_vm *vm, const char *chain, const char *chain_in)
{
	char c[160], gw[INET_ADDRSTRLEN];
	struct rb b;

	inet_ntop(AF_INET, &vm->gw, gw, sizeof(gw));
	nft_wg_input_rules(nb, vm, chain_in);
	nft_wg_fwd_rules(nb, vm, chain);
	if (!vm->isolation) {
		b = rb_new(NFPROTO_INET, chain_in);
		rb_add(nb, &b, NF_ACCEPT, "isolation off: host reachable");
		b = rb_new(NFPROTO_INET, chain);
		rb_add(nb, &b, NF_ACCEPT, "isolation off: everything reachable");
		return;
	}
	b = rb_new(NFPROTO_INET, chain_in);
	m_ip4(&b);
	m_addr(&b, 16, NFT_CMP_EQ, vm->gw, 32);
	m_port(&b, IPPROTO_UDP, 2, 67);
	snprintf(c, sizeof(c), "DHCP udp/67 on %s (renewals)", gw);
	rb_add(nb, &b, NF_ACCEPT, c);
	/*
	 * DNS: udp/53 only while the VM's forwarder runs (anything else on the
	 * host's port 53 is not for guests); never tcp/53: the forwarder
	 * speaks UDP only (net/dns.h says why).
	 */
	if (vm->dns) {
		b = rb_new(NFPROTO_INET, chain_in);
		m_ip4(&b);
		m_addr(&b, 16, NFT_CMP_EQ, vm->gw, 32);
		m_port(&b, IPPROTO_UDP, 2, 53);
		snprintf(c, sizeof(c), "DNS udp/53 on %s (the forwarder)", gw);
		rb_add(nb, &b, NF_ACCEPT, c);
	}
	for (size_t i = 0; i < vm->n_host_access; i++) {
		const struct cfg_host_access *h = &vm->host_access[i];

		if (h->kind != CFG_HA_HOST_PORT)
			continue;
		b = rb_new(NFPROTO_INET, chain_in);
		m_ip4(&b);
		m_addr(&b, 16, NFT_CMP_EQ, vm->gw, 32);
		m_port(&b, h->proto == CFG_PROTO_TCP ? IPPROTO_TCP : IPPROTO_UDP, 2, h->port);
		snprintf(c, sizeof(c), "allow-host-port %s/%u on %s", h->proto == CFG_PROTO_TCP ? "tcp" : "udp",
			 h->port, gw);
		rb_add(nb, &b, NF_ACCEPT, c);
	}

	vm_lan_host_rules(nb, vm, chain, "", "");
	{
		struct in_addr net = { .s_addr = vm->addr.s_addr };
		char a[INET_ADDRSTRLEN];

		if (vm->prefix < 32)
			net.s_addr &= vm->prefix ? htonl(~0u << (32 - vm->prefix)) : 0;
		inet_ntop(AF_INET, &net, a, sizeof(a));
		b = rb_new(NFPROTO_INET, chain);
		m_ip4(&b);
		m_addr(&b, 16, NFT_CMP_EQ, net, vm->prefix);
		snprintf(c, sizeof(c), "drop daddr %s/%u (the bridge subnet: other guests)", a, vm->prefix);
		rb_add(nb, &b, NF_DROP, c);
	}
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(forbidden); i++) {
		struct in_addr a;

		inet_pton(AF_INET, forbidden[i].net, &a);
		b = rb_new(NFPROTO_INET, chain);
		m_ip4(&b);
		m_addr(&b, 16, NFT_CMP_EQ, a, forbidden[i].prefix);
		snprintf(c, sizeof(c), "drop daddr %s/%u (%s)", forbidden[i].net, forbidden[i].prefix,
			 forbidden[i].why);
		rb_add(nb, &b, NF_DROP, c);
	}
	b = rb_new(NFPROTO_INET, chain);
	rb_add(nb, &b, NF_ACCEPT, "internet");
}

int nft_vm_init(struct nft_vm *out, const char *id, const char *tap, const uint8_t mac[6],
		struct in_addr addr, struct in_addr gw, uint8_t prefix, const struct cfg_vm *vm)
{
	struct nft_vm v = { .addr = addr, .gw = gw, .prefix = prefix, .isolation = true };

	if (!id || !tap || !mac || !vm || !id_valid(id) || strnlen(tap, IFNAMSIZ) >= IFNAMSIZ ||
	    !tap_valid(tap) || prefix > 32)
		return -EINVAL;
	memcpy(v.id, id, strlen(id) + 1);
	memcpy(v.tap, tap, strlen(tap) + 1);
	memcpy(v.mac, mac, 6);
	v.isolation = vm->network.isolation;
	v.ipv6 = vm->network.ipv6;
	v.host_access = vm->network.host_access;
	v.n_host_access = vm->network.n_host_access;
	v.forward = vm->network.forward;
	v.n_forward = vm->network.n_forward;
	*out = v;
	return 0;
}

/**
 * nft_vm_add() - install (or replace) one VM's chains, rules and map elements
 * @vm: the VM; @vm->tap must be "ht-..." and @vm->id [a-z0-9]{1,15}
 *
 * One batch: whatever the VM had is removed and its objects re-created, so
 * a replace is atomic too; a map key already used by another VM (same tap
 * or address) fails the whole batch with -EEXIST naming the element.
 * @vm->forward is not used: forwards are relayed by net/fwd.c.
 *
 * Return: 0, or a negative errno; on error nothing of the batch applies
 */
int nft_vm_add(const struct nft_vm *vm)
{
	char vm_chain[32], in_chain[32], tap[IFNAMSIZ] = { 0 }, what[64], addr[INET_ADDRSTRLEN];
	struct nb *nb;
	int rc;

	if (!vm || !id_valid(vm->id) || !tap_valid(vm->tap) || vm->prefix > 32 ||
	    (vm->n_host_access && !vm->host_access))
		return -EINVAL;
	chain_names(vm->id, vm_chain, in_chain);
	memcpy(tap, vm->tap, strnlen(vm->tap, IFNAMSIZ - 1));
	inet_ntop(AF_INET, &vm->addr, addr, sizeof(addr));
	snprintf(what, sizeof(what), "VM %s", vm->id);

	nb = nb_new();
	if (!nb)
		return -errno;
	rc = vm_del_msgs(nb, vm->id);
	if (rc < 0)
		goto out;
	nb_chain(nb, NFPROTO_BRIDGE, NFT_MSG_NEWCHAIN, NLM_F_CREATE | NLM_F_EXCL, vm_chain, -1, 0, NULL);
	nb_chain(nb, NFPROTO_INET, NFT_MSG_NEWCHAIN, NLM_F_CREATE | NLM_F_EXCL, vm_chain, -1, 0, NULL);
	nb_chain(nb, NFPROTO_INET, NFT_MSG_NEWCHAIN, NLM_F_CREATE | NLM_F_EXCL, in_chain, -1, 0, NULL);
	vm_bridge_rules(nb, vm, vm_chain);
	vm_inet_rules(nb, vm, vm_chain, in_chain);
	nft_wg_nat_msgs(nb, vm);
	/* Elements last: the tap passes traffic only once all its rules exist */
	nb_elem(nb, NFPROTO_BRIDGE, NFT_MSG_NEWSETELEM, "tap_vm", tap, IFNAMSIZ, vm_chain, tap);
	nb_elem(nb, NFPROTO_INET, NFT_MSG_NEWSETELEM, "in_vm", &vm->addr.s_addr, 4, in_chain, addr);
	nb_elem(nb, NFPROTO_INET, NFT_MSG_NEWSETELEM, "fwd_vm", &vm->addr.s_addr, 4, vm_chain, addr);
	rc = nb_commit(nb, what);
out:
	nb_free(nb);
	return rc;
}

/**
 * nft_vm_del() - remove VM @id's elements, rules and chains in one batch
 *
 * Return: 0 (also when nothing of it exists), or a negative errno
 */
int nft_vm_del(const char *id)
{
	char what[64];
	struct nb *nb;
	int rc;

	if (!id_valid(id))
		return -EINVAL;
	snprintf(what, sizeof(what), "VM %s", id);
	nb = nb_new();
	if (!nb)
		return -errno;
	rc = vm_del_msgs(nb, id);
	if (rc > 0)
		rc = nb_commit(nb, what);
	nb_free(nb);
	return rc < 0 ? rc : 0;
}

/**
 * nft_vm_present() - whether VM @id's three chains exist
 *
 * Return: 1, 0 when any is missing, or a negative errno
 */
int nft_vm_present(const char *id)
{
	char vm[32], vmin[32];
	struct nl_sock *s;
	int rc;

	if (!id_valid(id))
		return -EINVAL;
	chain_names(id, vm, vmin);
	s = nl_open(NETLINK_NETFILTER);
	if (!s)
		return -errno;
	rc = chain_exists(s, NFPROTO_BRIDGE, vm);
	if (rc > 0)
		rc = chain_exists(s, NFPROTO_INET, vm);
	if (rc > 0)
		rc = chain_exists(s, NFPROTO_INET, vmin);
	nl_close(s);
	return rc;
}

/* ---- dump ------------------------------------------------------------- */

struct dump_q {
	FILE *out;
	const char *vm, *vmin;	/* NULL: every chain */
	uint16_t family;
	const char *sum;	/* print nothing: add up the rules whose comment starts so */
	uint64_t pkts, bytes;
};

static int cb_counter(struct nftnl_expr *e, void *data)
{
	uint64_t *pk = data;
	const char *name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);

	if (name && !strcmp(name, "counter")) {
		pk[0] = nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_PACKETS);
		pk[1] = nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_BYTES);
	}
	return 0;
}

static int cb_dump(const struct nlmsghdr *nlh, void *data)
{
	struct dump_q *q = data;
	struct nftnl_rule *r = nftnl_rule_alloc();
	const char *chain, *table, *comment = NULL;
	uint64_t ctr[2] = { 0, 0 };
	const void *ud;
	uint32_t udlen = 0;

	if (!r)
		return -ENOMEM;
	if (nftnl_rule_nlmsg_parse(nlh, r) < 0)
		goto out;
	chain = nftnl_rule_get_str(r, NFTNL_RULE_CHAIN);
	table = nftnl_rule_get_str(r, NFTNL_RULE_TABLE);
	if (!chain || !table || strcmp(table, NFT_TABLE))
		goto out;
	if (q->vm && strcmp(chain, q->vm) && strcmp(chain, q->vmin))
		goto out;
	ud = nftnl_rule_get_data(r, NFTNL_RULE_USERDATA, &udlen);
	if (ud)
		nftnl_udata_parse(ud, udlen, cb_comment, &comment);
	nftnl_expr_foreach(r, cb_counter, ctr);
	if (q->sum) {
		if (comment && !strncmp(comment, q->sum, strlen(q->sum))) {
			q->pkts += ctr[0];
			q->bytes += ctr[1];
		}
		goto out;
	}
	fprintf(q->out, "%-6s %-12s %-60s %8llu pkts %10llu bytes\n", family_name(q->family), chain,
		comment ? comment : "(rule without comment: not hutch's)", (unsigned long long)ctr[0],
		(unsigned long long)ctr[1]);
out:
	nftnl_rule_free(r);
	return 0;
}

static int build_rules(struct nlmsghdr *nlh, void *arg)
{
	struct nftnl_rule *r = nftnl_rule_alloc();

	(void)arg;
	if (!r)
		return -ENOMEM;
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, NFT_TABLE);
	nftnl_rule_nlmsg_build_payload(nlh, r);
	nftnl_rule_free(r);
	return 0;
}

/**
 * nft_dump() - print the rules in force, one line each: family, chain,
 * what the rule does (its comment), and its counters
 * @id:  a VM's chains only, or NULL for all of hutch's
 * @out: where to print
 *
 * Return: 0 (nothing printed when hutch has no tables), or a negative errno
 */
int nft_dump(const char *id, FILE *out)
{
	char vm[32], vmin[32];
	struct dump_q q = { .out = out };
	int rc;

	if (id) {
		if (!id_valid(id))
			return -EINVAL;
		chain_names(id, vm, vmin);
		q.vm = vm;
		q.vmin = vmin;
	}
	for (int i = 0; i < 2; i++) {
		q.family = i ? NFPROTO_INET : NFPROTO_BRIDGE;
		rc = query1(NFT_MSG_GETRULE, q.family, true, build_rules, NULL, cb_dump, &q);
		if (rc && rc != -ENOENT)
			return rc;
	}
	return 0;
}

/**
 * nft_wg_drops() - sum of the counters of VM @id's "kill switch" rules
 * @id:    the VM's rules id
 * @pkts:  set to the packets dropped
 * @bytes: set to their bytes
 *
 * Return: 0 (zeros when the VM or hutch's table does not exist), or a negative errno
 */
int nft_wg_drops(const char *id, uint64_t *pkts, uint64_t *bytes)
{
	char vm[32], vmin[32];
	struct dump_q q = { .vm = vm, .vmin = vm, .family = NFPROTO_INET, .sum = WG_KS_COMMENT };
	int rc;

	if (!id_valid(id))
		return -EINVAL;
	chain_names(id, vm, vmin);
	rc = query1(NFT_MSG_GETRULE, NFPROTO_INET, true, build_rules, NULL, cb_dump, &q);
	if (rc && rc != -ENOENT)
		return rc;
	*pkts = q.pkts;
	*bytes = q.bytes;
	return 0;
}

/* ---- content checks and repair --------------------------------------- */

/* A recording operation: builders append to @l instead of a batch */
static struct nb *nb_rec_new(struct rule_list *l)
{
	struct nb *nb = calloc(1, sizeof(*nb));

	if (!nb)
		return NULL;
	nb->b = nl_batch_new();
	if (!nb->b) {
		free(nb);
		return NULL;
	}
	nb->rec = l;
	return nb;
}

/* a chain's dump: its rules go to @l (a kernel that ignores the chain filter sends others too) */
struct rules_q {
	struct rule_list *l;
	const char *chain;
};

static int cb_rules(const struct nlmsghdr *nlh, void *data)
{
	struct rules_q *q = data;
	struct rule_list *l = q->l;
	struct nftnl_rule *r = nftnl_rule_alloc();
	const char *chain, *table, *comment = NULL;
	const void *ud;
	uint32_t udlen = 0;

	if (!r)
		return -ENOMEM;
	if (nftnl_rule_nlmsg_parse(nlh, r) == 0) {
		chain = nftnl_rule_get_str(r, NFTNL_RULE_CHAIN);
		table = nftnl_rule_get_str(r, NFTNL_RULE_TABLE);
		ud = nftnl_rule_get_data(r, NFTNL_RULE_USERDATA, &udlen);
		if (ud)
			nftnl_udata_parse(ud, udlen, cb_comment, &comment);
		if (chain && table && !strcmp(table, NFT_TABLE) && !strcmp(chain, q->chain))
			rule_list_add(l, (uint16_t)nftnl_rule_get_u32(r, NFTNL_RULE_FAMILY), chain,
				      comment ? comment : "");
	}
	nftnl_rule_free(r);
	return 0;
}

static int build_chain_rules(struct nlmsghdr *nlh, void *arg)
{
	struct nftnl_rule *r = nftnl_rule_alloc();

	if (!r)
		return -ENOMEM;
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, NFT_TABLE);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, arg);
	nftnl_rule_nlmsg_build_payload(nlh, r);
	nftnl_rule_free(r);
	return 0;
}

/* whether a rule before @i in @want is in the same chain as rule @i */
static bool chain_seen(const struct rule_list *want, size_t i)
{
	for (size_t k = 0; k < i; k++)
		if (want->r[k].family == want->r[i].family && !strcmp(want->r[k].chain, want->r[i].chain))
			return true;
	return false;
}

/*
 * The rules of every chain @want has rules for, in order, chain by chain:
 * one dump per chain (the kernel filters by table and chain), so the cost
 * does not grow with the other VMs' rules.  Each chain is dumped once, even
 * when the builders come back to it (a VM with WireGuard: its kill switch
 * rules go first into both of its inet chains): a second dump would list
 * its rules twice, and the chain would never look intact.
 */
static int rules_dump(struct nl_sock *s, const struct rule_list *want, struct rule_list *l)
{
	for (size_t i = 0; i < want->n; i++) {
		const struct rule_rec *w = &want->r[i];
		struct rules_q q = { .l = l, .chain = w->chain };
		int rc;

		if (chain_seen(want, i))
			continue;
		rc = query(s, NFT_MSG_GETRULE, w->family, true, build_chain_rules, (void *)w->chain,
			   cb_rules, &q);
		if (rc && rc != -ENOENT)
			return rc;
	}
	return l->err;
}

/* 1 when chain @chain of @family has the same rules (by comment, in order) in @want and @have */
static int chain_same(const struct rule_list *want, const struct rule_list *have, uint16_t family,
		      const char *chain)
{
	size_t i = 0, j = 0;

	for (;;) {
		while (i < want->n && (want->r[i].family != family || strcmp(want->r[i].chain, chain)))
			i++;
		while (j < have->n && (have->r[j].family != family || strcmp(have->r[j].chain, chain)))
			j++;
		if (i == want->n || j == have->n)
			return i == want->n && j == have->n;
		if (strcmp(want->r[i].comment, have->r[j].comment))
			return 0;
		i++;
		j++;
	}
}

/*
 * rules_intact() - 1 when every chain @want has rules for holds exactly
 * those rules in the kernel (the same rules, in the same order, nothing
 * added, nothing removed), 0 when not, or a negative errno
 */
static int rules_intact(struct nl_sock *s, const struct rule_list *want)
{
	struct rule_list have = { 0 };
	int rc = rules_dump(s, want, &have);

	if (rc == 0 && want->err)
		rc = want->err;
	for (size_t i = 0; rc == 0 && i < want->n; i++) {
		if (!chain_same(want, &have, want->r[i].family, want->r[i].chain)) {
			log_debug("nftables: chain %s %s %s differs from what hutch installed",
				  family_name(want->r[i].family), NFT_TABLE, want->r[i].chain);
			rc = 1;
		}
	}
	free(have.r);
	return rc < 0 ? rc : !rc;
}

static int base_intact_on(struct nl_sock *s, const char *bridge, struct in_addr net, uint8_t prefix)
{
	char comment[NFT_COMMENT_MAX];
	struct rule_list want = { 0 };
	struct table_info ti;
	struct nb *nb;
	int rc;

	base_comment(comment, sizeof(comment), bridge, net, prefix);
	for (int i = 0; i < 2; i++) {
		rc = table_info(s, i ? NFPROTO_INET : NFPROTO_BRIDGE, &ti);
		if (rc)
			return rc;
		/* a dormant table filters nothing; another bridge's is not ours to judge */
		if (!ti.exists || (ti.flags & NFT_TABLE_F_DORMANT) ||
		    (ti.comment[0] && strcmp(ti.comment, comment)))
			return 0;
	}
	nb = nb_rec_new(&want);
	if (!nb)
		return -ENOMEM;
	base_rules(nb, bridge, net, prefix);
	rc = nb_err(nb) ? nb_err(nb) : rules_intact(s, &want);
	nb_free(nb);
	free(want.r);
	return rc;
}

/**
 * nft_base_intact() - whether hutch's base is in force as nft_base_ensure()
 * made it for @bridge/@net/@prefix: both tables, awake (not dormant), and
 * every base chain with exactly its rules
 *
 * Return: 1, 0 when anything differs (a flushed table, a rule deleted or
 * added), or a negative errno
 */
int nft_base_intact(const char *bridge, struct in_addr net, uint8_t prefix)
{
	struct nl_sock *s;
	int rc;

	if (!bridge || strnlen(bridge, IFNAMSIZ) >= IFNAMSIZ || !bridge[0] || prefix > 32)
		return -EINVAL;
	s = nl_open(NETLINK_NETFILTER);
	if (!s)
		return -errno;
	rc = base_intact_on(s, bridge, net, prefix);
	nl_close(s);
	return rc;
}

/* 1 when map @set of @family has exactly one element jumping to @chain, with key @key */
static int elem_intact(struct nl_sock *s, uint16_t family, const char *set, const char *chain,
		       const void *key, uint32_t key_len)
{
	struct elem_q q;
	int rc = elems_to(s, family, set, chain, &q);

	if (rc)
		return rc;
	return q.n == 1 && q.key_len[0] == key_len && !memcmp(q.keys[0], key, key_len);
}

static int vm_intact_on(struct nl_sock *s, const struct nft_vm *vm)
{
	char vm_chain[32], in_chain[32], tap[IFNAMSIZ] = { 0 };
	struct rule_list want = { 0 };
	struct nb *nb;
	int rc;

	chain_names(vm->id, vm_chain, in_chain);
	memcpy(tap, vm->tap, strnlen(vm->tap, IFNAMSIZ - 1));
	nb = nb_rec_new(&want);
	if (!nb)
		return -ENOMEM;
	vm_bridge_rules(nb, vm, vm_chain);
	vm_inet_rules(nb, vm, vm_chain, in_chain);
	rc = nb_err(nb) ? nb_err(nb) : rules_intact(s, &want);
	nb_free(nb);
	free(want.r);
	if (rc == 1)
		rc = elem_intact(s, NFPROTO_BRIDGE, "tap_vm", vm_chain, tap, IFNAMSIZ);
	if (rc == 1)
		rc = elem_intact(s, NFPROTO_INET, "in_vm", in_chain, &vm->addr.s_addr, 4);
	if (rc == 1)
		rc = elem_intact(s, NFPROTO_INET, "fwd_vm", vm_chain, &vm->addr.s_addr, 4);
	return rc;
}

/**
 * nft_vm_intact() - whether VM @vm's rules are in force as nft_vm_add() made
 * them: its three chains with exactly their rules, and its three map
 * elements (tap, input source, forward source) pointing at them
 *
 * Return: 1, 0 when anything differs, or a negative errno
 */
int nft_vm_intact(const struct nft_vm *vm)
{
	struct nl_sock *s;
	int rc;

	if (!vm || !id_valid(vm->id) || !tap_valid(vm->tap) || vm->prefix > 32 ||
	    (vm->n_host_access && !vm->host_access))
		return -EINVAL;
	s = nl_open(NETLINK_NETFILTER);
	if (!s)
		return -errno;
	rc = vm_intact_on(s, vm);
	nl_close(s);
	return rc;
}

/* one check-and-repair round of nft_repair() */
static int repair_once(const struct nft_vm *vm, const char *bridge, struct in_addr net, uint8_t prefix)
{
	int rc, fixed = 0;

	rc = nft_base_intact(bridge, net, prefix);
	if (rc == 0) {
		log_warn("nftables: hutch's base rules were changed or removed; restoring them");
		if ((rc = nft_base_ensure(bridge, net, prefix)))
			return rc;
		fixed = 1;
	}
	if (rc < 0)
		return rc;
	rc = nft_vm_intact(vm);
	if (rc == 0) {
		log_warn("nftables: the rules of VM %s were changed or removed; restoring them", vm->id);
		if ((rc = nft_vm_add(vm)))
			return rc;
		fixed = 1;
	}
	if (rc < 0)
		return rc;
	if (!fixed)
		return 0;
	/* someone else's change may have raced ours: only a checked result counts */
	if (nft_base_intact(bridge, net, prefix) != 1 || nft_vm_intact(vm) != 1)
		return -EAGAIN;
	return 1;
}

/**
 * nft_repair() - put the base and VM @vm's rules back where they differ from
 * what hutch installed (a flushed table, a deleted or added rule, a lost
 * map element, a dormant table), then check again
 * @vm:      the VM, as given to nft_vm_add()
 * @bridge, @net, @prefix: as given to nft_base_ensure()
 *
 * Return: 0 when everything was intact, 1 when something was repaired, or a
 * negative errno when it could not be: the caller must then stop the VM's
 * traffic (take its tap down), since its rules are not what they should be
 */
int nft_repair(const struct nft_vm *vm, const char *bridge, struct in_addr net, uint8_t prefix)
{
	int rc = -EAGAIN;

	/*
	 * -EAGAIN: a dump ran into another supervisor's batch (NLM_F_DUMP_INTR),
	 * or our repair into someone's change.  Transient; try again before
	 * the caller takes the VM's tap down.
	 */
	for (int i = 0; i < 4 && rc == -EAGAIN; i++)
		rc = repair_once(vm, bridge, net, prefix);
	return rc;
}

/* ---- watch ------------------------------------------------------------ */

/**
 * nft_watch_open() - subscribe to NFNLGRP_NFTABLES, so a flush of the
 * host's ruleset is noticed within milliseconds
 *
 * Return: a non-blocking fd (the caller closes it), or a negative errno
 */
int nft_watch_open(void)
{
	/* Lost events are reported as ENOBUFS, which the caller treats as "check now" */
	return nl_event_open(NETLINK_NETFILTER, NFNLGRP_NFTABLES);
}

/* 1 into *@data when @nlh deleted something in a table named hutch */
static int watch_cb(const struct nlmsghdr *nlh, void *data)
{
	uint16_t t = NFNL_MSG_TYPE(nlh->nlmsg_type);
	const struct nlattr *a;

	if (NFNL_SUBSYS_ID(nlh->nlmsg_type) != NFNL_SUBSYS_NFTABLES)
		return 0;
	if (t != NFT_MSG_DELTABLE && t != NFT_MSG_DELCHAIN && t != NFT_MSG_DELRULE &&
	    t != NFT_MSG_DELSET && t != NFT_MSG_DELSETELEM && t != NFT_MSG_NEWRULE &&
	    t != NFT_MSG_NEWTABLE && t != NFT_MSG_NEWCHAIN)
		return 0;
	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(struct nfgenmsg))
		return 0;
	/* Attribute 1 is the table name in all of these messages */
	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg)) {
		if (mnl_attr_get_type(a) == 1 && mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0 &&
		    !strcmp(mnl_attr_get_str(a), NFT_TABLE))
			*(int *)data = 1;
	}
	return 0;
}

/**
 * nft_watch_handle() - read the pending nftables events from @fd
 *
 * Deletions count, and so do additions (a rule inserted into one of hutch's
 * chains by someone else changes what the chain does): the caller then
 * checks the content with nft_base_intact() and nft_vm_intact().
 *
 * Return: 1 when an event changed something in a table named hutch, 0 when
 * none did, -ENOBUFS when events were lost (check anyway), or a negative errno
 */
int nft_watch_handle(int fd)
{
	int hit = 0, rc = nl_event_read(fd, watch_cb, &hit);

	return rc ? rc : hit;
}

// SPDX-License-Identifier: MIT
/*
 * DHCP for one VM: RFC 2131 (protocol, section 4.3 server behaviour), RFC
 * 2132 (options), frames built by hand because they go out of a packet
 * socket (see dhcp.h for why).  Every byte of the guest's frame is read
 * through the bounded helpers below after its length was checked.
 */
#include "net/dhcp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/net.h"
#include "src/log.h"
#include "src/util.h"

#define ETH_HLEN_     14
#define IP_HLEN_MIN   20
#define UDP_HLEN      8
#define BOOTP_FIXED   236	/* up to and without the magic cookie */
#define BOOTP_OPTS    240	/* options start after the cookie */
#define BOOTP_MIN     300	/* RFC 1542 2.1: some clients drop shorter replies */
#define PORT_SERVER   67
#define PORT_CLIENT   68

enum {
	DHCPDISCOVER = 1, DHCPOFFER, DHCPREQUEST, DHCPDECLINE, DHCPACK, DHCPNAK, DHCPRELEASE,
	DHCPINFORM,
};

enum {
	OPT_PAD = 0, OPT_MASK = 1, OPT_ROUTER = 3, OPT_DNS = 6, OPT_HOSTNAME = 12, OPT_MTU = 26,
	OPT_BROADCAST = 28, OPT_REQ_IP = 50, OPT_LEASE = 51, OPT_OVERLOAD = 52, OPT_MSGTYPE = 53,
	OPT_SERVER_ID = 54, OPT_T1 = 58, OPT_T2 = 59, OPT_END = 255,
};

static const uint8_t dhcp_cookie[4] = { 99, 130, 83, 99 };

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* RFC 1071 ones' complement sum, continued over several buffers */
static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += rd16(p + i);
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

const uint8_t *dhcp_opt_find(const uint8_t *p, size_t n, uint8_t code, uint8_t *len)
{
	size_t off = 0;

	while (off < n) {
		if (p[off] == OPT_PAD) {
			off++;
			continue;
		}
		if (p[off] == OPT_END || n - off < 2)	/* end, or no length byte */
			return NULL;
		if (p[off + 1] > n - off - 2)		/* value would overrun */
			return NULL;
		if (p[off] == code) {
			*len = p[off + 1];
			return p + off + 2;
		}
		off += 2 + (size_t)p[off + 1];
	}
	return NULL;
}

/* an option whose value must be exactly @want bytes, or NULL */
static const uint8_t *opt_exact(const uint8_t *p, size_t n, uint8_t code, uint8_t want)
{
	uint8_t len;
	const uint8_t *v = dhcp_opt_find(p, n, code, &len);

	return v && len == want ? v : NULL;
}

struct opt_out {
	uint8_t *p;
	size_t n, max;
};

static void opt_put(struct opt_out *o, uint8_t code, const void *v, uint8_t len)
{
	/* the caller sized the buffer for every option we ever write */
	if (o->n + 2 + len > o->max)
		return;
	o->p[o->n++] = code;
	o->p[o->n++] = len;
	memcpy(o->p + o->n, v, len);
	o->n += len;
}

static void opt_put32(struct opt_out *o, uint8_t code, uint32_t v)
{
	uint8_t b[4];

	wr32(b, v);
	opt_put(o, code, b, 4);
}

/**
 * dhcp_reply() - build the whole reply frame
 * @req:   the request's BOOTP message (at least BOOTP_OPTS bytes, checked)
 * @type:  DHCPOFFER, DHCPACK or DHCPNAK
 * @yiaddr: address given (0 for INFORM and NAK)
 * @inform: ACK to an INFORM: no lease time (RFC 2131 4.3.5), unicast to ciaddr
 *
 * Addressing (RFC 2131 4.1): a NAK, or a request with the broadcast flag, is
 * answered to 255.255.255.255; an INFORM or renewal to ciaddr; otherwise to
 * yiaddr at chaddr (we write the Ethernet header, so no ARP is needed).
 * Either way the frame only leaves through this VM's tap.
 */
static size_t dhcp_reply(const struct dhcp_lease *l, const uint8_t *req, uint8_t type,
			 struct in_addr yiaddr, int inform, uint8_t *out)
{
	uint8_t *ip = out + ETH_HLEN_, *udp = ip + IP_HLEN_MIN, *bp = udp + UDP_HLEN;
	struct opt_out o = { .p = bp + BOOTP_OPTS,
			     .max = DHCP_FRAME_MAX - ETH_HLEN_ - IP_HLEN_MIN - UDP_HLEN - BOOTP_OPTS - 1 };
	uint32_t ciaddr, dst, sum;
	uint16_t flags = rd16(req + 10);
	size_t bplen, iplen;
	int bcast;

	memcpy(&ciaddr, req + 12, 4);
	memset(out, 0, DHCP_FRAME_MAX);

	/* BOOTP header: RFC 2131 table 3 */
	bp[0] = 2;				/* BOOTREPLY */
	bp[1] = 1;
	bp[2] = 6;
	memcpy(bp + 4, req + 4, 4);		/* xid */
	memcpy(bp + 10, req + 10, 2);		/* flags */
	if (type != DHCPNAK && inform)
		memcpy(bp + 12, req + 12, 4);	/* ciaddr */
	memcpy(bp + 16, &yiaddr, 4);
	memcpy(bp + 24, req + 24, 4);		/* giaddr */
	memcpy(bp + 28, req + 28, 16);		/* chaddr */
	memcpy(bp + BOOTP_FIXED, dhcp_cookie, 4);

	opt_put(&o, OPT_MSGTYPE, &type, 1);
	opt_put(&o, OPT_SERVER_ID, &l->gw, 4);
	if (type != DHCPNAK) {
		uint32_t mask = net_mask(l->prefix), brd = l->addr.s_addr | ~mask;
		size_t hl = strnlen(l->hostname, DHCP_HOSTNAME_MAX);

		if (!inform) {
			opt_put32(&o, OPT_LEASE, l->lease_s);
			opt_put32(&o, OPT_T1, l->lease_s / 2);
			opt_put32(&o, OPT_T2, (uint32_t)((uint64_t)l->lease_s * 7 / 8));
		}
		opt_put(&o, OPT_MASK, &mask, 4);
		opt_put(&o, OPT_ROUTER, &l->gw, 4);
		opt_put(&o, OPT_DNS, &l->gw, 4);
		opt_put(&o, OPT_BROADCAST, &brd, 4);
		if (hl)
			opt_put(&o, OPT_HOSTNAME, l->hostname, (uint8_t)hl);
		if (l->mtu) {
			uint8_t m[2];

			wr16(m, l->mtu);
			opt_put(&o, OPT_MTU, m, 2);
		}
	}
	o.p[o.n++] = OPT_END;
	bplen = BOOTP_OPTS + o.n;
	if (bplen < BOOTP_MIN)
		bplen = BOOTP_MIN;

	bcast = type == DHCPNAK || (flags & 0x8000) || (inform && !ciaddr);
	if (bcast)
		dst = 0xffffffffu;
	else if (inform || (ciaddr && type == DHCPACK))
		dst = ciaddr;
	else
		dst = yiaddr.s_addr;

	/* Ethernet */
	if (bcast)
		memset(out, 0xff, 6);
	else
		memcpy(out, l->mac, 6);
	memcpy(out + 6, l->srv_mac, 6);
	wr16(out + 12, ETH_P_IP);

	/* IPv4 */
	iplen = IP_HLEN_MIN + UDP_HLEN + bplen;
	ip[0] = 0x45;
	wr16(ip + 2, (uint16_t)iplen);
	wr16(ip + 6, 0x4000);			/* DF */
	ip[8] = 64;
	ip[9] = IPPROTO_UDP;
	memcpy(ip + 12, &l->gw, 4);
	memcpy(ip + 16, &dst, 4);
	wr16(ip + 10, csum_fold(csum_add(0, ip, IP_HLEN_MIN)));

	/* UDP, checksum over the pseudo-header */
	wr16(udp, PORT_SERVER);
	wr16(udp + 2, PORT_CLIENT);
	wr16(udp + 4, (uint16_t)(UDP_HLEN + bplen));
	sum = csum_add(0, ip + 12, 8);
	sum += IPPROTO_UDP + (uint32_t)(UDP_HLEN + bplen);
	sum = csum_add(sum, udp, UDP_HLEN + bplen);
	{
		uint16_t c = csum_fold(sum);

		wr16(udp + 6, c ? c : 0xffff);
	}
	return ETH_HLEN_ + iplen;
}

enum dhcp_event dhcp_handle(const struct dhcp_lease *l, const uint8_t *in, size_t n,
			    uint8_t *out, size_t *outlen)
{
	const uint8_t *ip, *udp, *bp, *opts, *v;
	size_t ihl, iplen, udplen, bplen, optlen;
	struct in_addr none = { 0 }, req_ip = { 0 }, ciaddr;
	uint8_t type, len;

	*outlen = 0;
	/* Ethernet: from our VM's MAC only, plain IPv4 (no VLAN tags) */
	if (n < ETH_HLEN_ + IP_HLEN_MIN + UDP_HLEN + BOOTP_OPTS)
		return DHCP_EV_NONE;
	if (memcmp(in + 6, l->mac, 6) || rd16(in + 12) != ETH_P_IP)
		return DHCP_EV_NONE;
	ip = in + ETH_HLEN_;
	if ((ip[0] >> 4) != 4)
		return DHCP_EV_NONE;
	ihl = (size_t)(ip[0] & 0xf) * 4;
	iplen = rd16(ip + 2);
	if (ihl < IP_HLEN_MIN || iplen < ihl + UDP_HLEN || iplen > n - ETH_HLEN_)
		return DHCP_EV_NONE;
	if (ip[9] != IPPROTO_UDP || (rd16(ip + 6) & 0x3fff))	/* fragments: never */
		return DHCP_EV_NONE;
	udp = ip + ihl;
	udplen = rd16(udp + 4);
	if (rd16(udp + 2) != PORT_SERVER || rd16(udp) != PORT_CLIENT)
		return DHCP_EV_NONE;
	if (udplen < UDP_HLEN + BOOTP_OPTS || udplen > iplen - ihl)
		return DHCP_EV_NONE;
	/*
	 * Checksums are not verified: a virtio-net guest may hand frames over
	 * with offloaded (partial) checksums; the lengths above are what
	 * protect us, and the content is checked field by field.
	 */
	bp = udp + UDP_HLEN;
	bplen = udplen - UDP_HLEN;

	/* BOOTP: a request, Ethernet hardware addresses, chaddr = our VM */
	if (bp[0] != 1 || bp[1] != 1 || bp[2] != 6 || memcmp(bp + 28, l->mac, 6))
		return DHCP_EV_NONE;
	if (memcmp(bp + BOOTP_FIXED, dhcp_cookie, 4))
		return DHCP_EV_NONE;
	opts = bp + BOOTP_OPTS;
	optlen = bplen - BOOTP_OPTS;
	/* option overload (52) would put options in sname/file: not needed, not read */
	v = opt_exact(opts, optlen, OPT_MSGTYPE, 1);
	if (!v)
		return DHCP_EV_NONE;
	type = *v;
	memcpy(&ciaddr, bp + 12, 4);
	if ((v = opt_exact(opts, optlen, OPT_REQ_IP, 4)))
		memcpy(&req_ip, v, 4);

	switch (type) {
	case DHCPDISCOVER:
		*outlen = dhcp_reply(l, bp, DHCPOFFER, l->addr, 0, out);
		return DHCP_EV_OFFER;
	case DHCPREQUEST:
		v = dhcp_opt_find(opts, optlen, OPT_SERVER_ID, &len);
		if (v) {
			/* SELECTING (4.3.2): for another server, or a bad id: not ours to answer */
			if (len != 4 || memcmp(v, &l->gw, 4))
				return DHCP_EV_NONE;
			if (req_ip.s_addr != l->addr.s_addr)
				goto nak;
		} else if (req_ip.s_addr) {
			/* INIT-REBOOT: the address it remembers must be the one we give */
			if (req_ip.s_addr != l->addr.s_addr)
				goto nak;
		} else if (ciaddr.s_addr) {
			/* RENEWING / REBINDING */
			if (ciaddr.s_addr != l->addr.s_addr)
				goto nak;
		} else {
			return DHCP_EV_NONE;
		}
		*outlen = dhcp_reply(l, bp, DHCPACK, l->addr, 0, out);
		return DHCP_EV_ACK;
	case DHCPINFORM:
		*outlen = dhcp_reply(l, bp, DHCPACK, none, 1, out);
		return DHCP_EV_INFORM;
	case DHCPRELEASE:
		return ciaddr.s_addr == l->addr.s_addr ? DHCP_EV_RELEASE : DHCP_EV_NONE;
	case DHCPDECLINE:
		v = opt_exact(opts, optlen, OPT_SERVER_ID, 4);
		return v && !memcmp(v, &l->gw, 4) && req_ip.s_addr == l->addr.s_addr ?
			       DHCP_EV_DECLINE : DHCP_EV_NONE;
	default:
		return DHCP_EV_NONE;	/* OFFER/ACK/NAK from a guest, unknown types */
	}
nak:
	*outlen = dhcp_reply(l, bp, DHCPNAK, none, 0, out);
	return DHCP_EV_NAK;
}

/*
 * Kernel-side filter: IPv4, UDP, first fragment, destination port 67 (the
 * same test as `tcpdump -dd 'ip and udp dst port 67'`); everything else of
 * the VM's traffic never reaches the supervisor.
 */
static struct sock_filter dhcp_bpf[] = {
	BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IP, 0, 8),
	BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 23),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_UDP, 0, 6),
	BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 20),
	BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x1fff, 4, 0),
	BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 14),
	BPF_STMT(BPF_LD | BPF_H | BPF_IND, 16),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PORT_SERVER, 0, 1),
	BPF_STMT(BPF_RET | BPF_K, 0x40000),
	BPF_STMT(BPF_RET | BPF_K, 0),
};

int dhcp_open(int ifindex)
{
	struct sock_fprog prog = { .len = (unsigned short)UTIL_ARRAY_SIZE(dhcp_bpf), .filter = dhcp_bpf };
	/*
	 * ETH_P_ALL, not ETH_P_IP: the port is enslaved to the bridge, whose
	 * rx handler consumes the frame before protocol-specific packet
	 * sockets would see it; ETH_P_ALL taps run before it.  The BPF filter
	 * keeps the rest of the VM's traffic out.
	 */
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
				   .sll_ifindex = ifindex };
	int fd, one = 1, rc;

	/* protocol 0 first: no frame is queued before the filter is attached */
	fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0) {
		rc = -errno;
		goto err_close;
	}
	/* our own replies (and anything else sent toward the guest) are not requests */
	if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)) < 0) {
		rc = -errno;
		goto err_close;
	}
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		rc = -errno;
		goto err_close;
	}
	return fd;

err_close:
	close(fd);
	return rc;
}

int dhcp_input(int fd, int ifindex, const struct dhcp_lease *l, enum dhcp_event *evp)
{
	uint8_t in[2048], out[DHCP_FRAME_MAX];
	enum dhcp_event best = DHCP_EV_NONE;
	int rc = 0;

	for (int i = 0; i < 64; i++) {	/* bounded: a flooding guest cannot starve the loop */
		struct sockaddr_ll from;
		socklen_t fl = sizeof(from);
		enum dhcp_event ev;
		size_t outlen;
		ssize_t r;

		r = recvfrom(fd, in, sizeof(in), MSG_TRUNC, (struct sockaddr *)&from, &fl);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				rc = -errno;
			break;
		}
		if ((size_t)r > sizeof(in) || from.sll_pkttype == PACKET_OUTGOING)
			continue;
		ev = dhcp_handle(l, in, (size_t)r, out, &outlen);
		if (outlen) {
			struct sockaddr_ll to = { .sll_family = AF_PACKET,
						  .sll_protocol = htons(ETH_P_IP),
						  .sll_ifindex = ifindex, .sll_halen = 6 };

			memcpy(to.sll_addr, out, 6);
			if (sendto(fd, out, outlen, 0, (struct sockaddr *)&to, sizeof(to)) < 0)
				log_ratelimited(LOG_LVL_WARN, "dhcp-send", "dhcp: sending a reply: %s",
						strerror(errno));
		}
		if (ev == DHCP_EV_ACK || best == DHCP_EV_NONE)
			best = ev;
		else if (best != DHCP_EV_ACK && ev != DHCP_EV_NONE)
			best = ev;
	}
	*evp = best;
	return rc;
}

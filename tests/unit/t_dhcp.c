// SPDX-License-Identifier: MIT
/* DHCP responder on crafted frames: options, NAK, foreign MACs and garbage ignored. */
#include <arpa/inet.h>
#include <string.h>

#include "net/dhcp.h"
#include "tests/unit/tap.h"

static const uint8_t vm_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static const uint8_t other_mac[6] = { 0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc };

/* build a client frame: Ethernet/IPv4/UDP 68->67/BOOTP with @opts */
static size_t frame(uint8_t *f, const uint8_t *src, const uint8_t *chaddr, uint32_t ciaddr,
		    const uint8_t *opts, size_t olen)
{
	uint8_t *ip = f + 14, *udp = ip + 20, *bp = udp + 8;
	size_t bplen = 240 + olen, n = 14 + 20 + 8 + bplen;

	memset(f, 0, 1600);
	memset(f, 0xff, 6);
	memcpy(f + 6, src, 6);
	f[12] = 0x08;
	ip[0] = 0x45;
	ip[2] = (uint8_t)((20 + 8 + bplen) >> 8);
	ip[3] = (uint8_t)(20 + 8 + bplen);
	ip[8] = 64;
	ip[9] = 17;
	memset(ip + 16, 0xff, 4);
	udp[1] = 68;
	udp[3] = 67;
	udp[4] = (uint8_t)((8 + bplen) >> 8);
	udp[5] = (uint8_t)(8 + bplen);
	bp[0] = 1;
	bp[1] = 1;
	bp[2] = 6;
	bp[4] = 0xde;
	bp[5] = 0xad;
	bp[6] = 0xbe;
	bp[7] = 0xef;
	memcpy(bp + 12, &ciaddr, 4);
	memcpy(bp + 28, chaddr, 6);
	bp[236] = 99;
	bp[237] = 130;
	bp[238] = 83;
	bp[239] = 99;
	memcpy(bp + 240, opts, olen);
	return n;
}

static const uint8_t *reply_opt(const uint8_t *r, size_t n, uint8_t code, uint8_t *len)
{
	return dhcp_opt_find(r + 14 + 20 + 8 + 240, n - (14 + 20 + 8 + 240), code, len);
}

static int reply_type(const uint8_t *r, size_t n)
{
	uint8_t len;
	const uint8_t *v = reply_opt(r, n, 53, &len);

	return v && len == 1 ? *v : -1;
}

static uint16_t sum16(const uint8_t *p, size_t n, uint32_t s)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

int main(void)
{
	struct dhcp_lease l = { .prefix = 24, .lease_s = 3600, .mtu = 1500, .hostname = "agent" };
	uint8_t in[1600], out[DHCP_FRAME_MAX], len;
	const uint8_t *v;
	size_t n, outlen;
	enum dhcp_event ev;
	uint32_t addr, gw, wrong;

	memcpy(l.mac, vm_mac, 6);
	memcpy(l.srv_mac, other_mac, 6);
	inet_pton(AF_INET, "10.77.0.2", &l.addr);
	inet_pton(AF_INET, "10.77.0.1", &l.gw);
	addr = l.addr.s_addr;
	gw = l.gw.s_addr;
	inet_pton(AF_INET, "10.77.0.9", &wrong);

	/* DISCOVER -> OFFER with every option */
	{
		const uint8_t o[] = { 53, 1, 1, 55, 3, 1, 3, 6, 255 };

		n = frame(in, vm_mac, vm_mac, 0, o, sizeof(o));
		ev = dhcp_handle(&l, in, n, out, &outlen);
		is_int(ev, DHCP_EV_OFFER, "DISCOVER gets an OFFER event");
		ok(outlen >= 14 + 20 + 8 + 300, "reply at least a 300-byte BOOTP message (%zu)", outlen);
		is_int(reply_type(out, outlen), 2, "message type OFFER");
		ok(!memcmp(out, vm_mac, 6), "unicast to the VM's MAC");
		ok(!memcmp(out + 6, other_mac, 6), "from the server MAC");
		ok(!memcmp(out + 14 + 20 + 8 + 16, &addr, 4), "yiaddr is the lease");
		ok(!memcmp(out + 14 + 20 + 8 + 4, "\xde\xad\xbe\xef", 4), "xid echoed");
		ok(!memcmp(out + 14 + 20 + 8 + 28, vm_mac, 6), "chaddr echoed");
		ok(out[14 + 20 + 8] == 2, "op BOOTREPLY");
		is_int(sum16(out + 14, 20, 0), 0xffff, "IPv4 header checksum valid");
		{
			uint8_t *ip = out + 14;
			size_t ul = (size_t)(ip[24] << 8 | ip[25]);
			uint32_t s = 17 + (uint32_t)ul;

			s = sum16(ip + 12, 8, s);
			is_int(sum16(ip + 20, ul, s), 0xffff, "UDP checksum valid");
			ok(ip[20] == 0 && ip[21] == 67 && ip[22] == 0 && ip[23] == 68, "ports 67 -> 68");
			ok(!memcmp(ip + 12, &gw, 4), "IP source is the gateway");
		}
		v = reply_opt(out, outlen, 54, &len);
		ok(v && len == 4 && !memcmp(v, &gw, 4), "server id = gateway");
		v = reply_opt(out, outlen, 3, &len);
		ok(v && len == 4 && !memcmp(v, &gw, 4), "router = gateway");
		v = reply_opt(out, outlen, 6, &len);
		ok(v && len == 4 && !memcmp(v, &gw, 4), "DNS = gateway");
		v = reply_opt(out, outlen, 1, &len);
		ok(v && len == 4 && !memcmp(v, "\xff\xff\xff\x00", 4), "mask 255.255.255.0");
		v = reply_opt(out, outlen, 28, &len);
		ok(v && len == 4 && !memcmp(v, "\x0a\x4d\x00\xff", 4), "broadcast 10.77.0.255");
		v = reply_opt(out, outlen, 51, &len);
		ok(v && len == 4 && !memcmp(v, "\x00\x00\x0e\x10", 4), "lease 3600 s");
		v = reply_opt(out, outlen, 58, &len);
		ok(v && len == 4 && !memcmp(v, "\x00\x00\x07\x08", 4), "T1 1800 s");
		v = reply_opt(out, outlen, 12, &len);
		ok(v && len == 5 && !memcmp(v, "agent", 5), "hostname = VM name");
		v = reply_opt(out, outlen, 26, &len);
		ok(v && len == 2 && v[0] == 0x05 && v[1] == 0xdc, "MTU 1500");
	}
	/* broadcast flag -> broadcast reply */
	{
		const uint8_t o[] = { 53, 1, 1, 255 };

		n = frame(in, vm_mac, vm_mac, 0, o, sizeof(o));
		in[14 + 20 + 8 + 10] = 0x80;
		dhcp_handle(&l, in, n, out, &outlen);
		ok(!memcmp(out, "\xff\xff\xff\xff\xff\xff", 6) &&
			   !memcmp(out + 14 + 16, "\xff\xff\xff\xff", 4),
		   "broadcast flag: reply to 255.255.255.255");
	}
	/* REQUEST selecting us with our address -> ACK */
	{
		uint8_t o[] = { 53, 1, 3, 54, 4, 0, 0, 0, 0, 50, 4, 0, 0, 0, 0, 255 };

		memcpy(o + 5, &gw, 4);
		memcpy(o + 11, &addr, 4);
		n = frame(in, vm_mac, vm_mac, 0, o, sizeof(o));
		ev = dhcp_handle(&l, in, n, out, &outlen);
		is_int(ev, DHCP_EV_ACK, "REQUEST (selecting) -> ACK");
		is_int(reply_type(out, outlen), 5, "message type ACK");
		/* wrong requested address -> NAK */
		memcpy(o + 11, &wrong, 4);
		n = frame(in, vm_mac, vm_mac, 0, o, sizeof(o));
		ev = dhcp_handle(&l, in, n, out, &outlen);
		is_int(ev, DHCP_EV_NAK, "REQUEST for another address -> NAK");
		is_int(reply_type(out, outlen), 6, "message type NAK");
		ok(!memcmp(out, "\xff\xff\xff\xff\xff\xff", 6), "NAK is broadcast");
		ok(!reply_opt(out, outlen, 51, &len), "NAK carries no lease time");
		/* another server selected -> silence */
		memcpy(o + 11, &addr, 4);
		memcpy(o + 5, &wrong, 4);
		n = frame(in, vm_mac, vm_mac, 0, o, sizeof(o));
		ev = dhcp_handle(&l, in, n, out, &outlen);
		ok(ev == DHCP_EV_NONE && outlen == 0, "REQUEST selecting another server ignored");
	}
	/* INIT-REBOOT and RENEWING */
	{
		uint8_t o[] = { 53, 1, 3, 50, 4, 0, 0, 0, 0, 255 };
		const uint8_t r[] = { 53, 1, 3, 255 };

		memcpy(o + 5, &addr, 4);
		n = frame(in, vm_mac, vm_mac, 0, o, sizeof(o));
		is_int(dhcp_handle(&l, in, n, out, &outlen), DHCP_EV_ACK, "INIT-REBOOT same address -> ACK");
		memcpy(o + 5, &wrong, 4);
		n = frame(in, vm_mac, vm_mac, 0, o, sizeof(o));
		is_int(dhcp_handle(&l, in, n, out, &outlen), DHCP_EV_NAK, "INIT-REBOOT other address -> NAK");
		n = frame(in, vm_mac, vm_mac, addr, r, sizeof(r));
		is_int(dhcp_handle(&l, in, n, out, &outlen), DHCP_EV_ACK, "RENEWING ciaddr=lease -> ACK");
		ok(!memcmp(out + 14 + 16, &addr, 4), "renewal ACK unicast to ciaddr");
		n = frame(in, vm_mac, vm_mac, wrong, r, sizeof(r));
		is_int(dhcp_handle(&l, in, n, out, &outlen), DHCP_EV_NAK, "RENEWING other ciaddr -> NAK");
		n = frame(in, vm_mac, vm_mac, 0, r, sizeof(r));
		is_int(dhcp_handle(&l, in, n, out, &outlen), DHCP_EV_NONE, "REQUEST with nothing to check ignored");
	}
	/* INFORM, RELEASE, DECLINE */
	{
		const uint8_t inf[] = { 53, 1, 8, 255 }, rel[] = { 53, 1, 7, 255 };
		uint8_t dec[] = { 53, 1, 4, 54, 4, 0, 0, 0, 0, 50, 4, 0, 0, 0, 0, 255 };

		n = frame(in, vm_mac, vm_mac, addr, inf, sizeof(inf));
		is_int(dhcp_handle(&l, in, n, out, &outlen), DHCP_EV_INFORM, "INFORM -> ACK");
		ok(!reply_opt(out, outlen, 51, &len), "INFORM ACK has no lease time");
		ok(!memcmp(out + 14 + 20 + 8 + 16, "\0\0\0\0", 4), "INFORM ACK has no yiaddr");
		v = reply_opt(out, outlen, 6, &len);
		ok(v && len == 4, "INFORM ACK has DNS");
		n = frame(in, vm_mac, vm_mac, addr, rel, sizeof(rel));
		ok(dhcp_handle(&l, in, n, out, &outlen) == DHCP_EV_RELEASE && outlen == 0, "RELEASE: event, no reply");
		memcpy(dec + 5, &gw, 4);
		memcpy(dec + 11, &addr, 4);
		n = frame(in, vm_mac, vm_mac, 0, dec, sizeof(dec));
		ok(dhcp_handle(&l, in, n, out, &outlen) == DHCP_EV_DECLINE && outlen == 0, "DECLINE: event, no reply");
	}
	/* foreign and malformed */
	{
		uint8_t o[] = { 53, 1, 1, 255 };
		size_t i;
		int all_quiet = 1;

		n = frame(in, other_mac, other_mac, 0, o, sizeof(o));
		ok(dhcp_handle(&l, in, n, out, &outlen) == DHCP_EV_NONE && !outlen, "another VM's MAC ignored");
		n = frame(in, other_mac, vm_mac, 0, o, sizeof(o));
		ok(dhcp_handle(&l, in, n, out, &outlen) == DHCP_EV_NONE && !outlen, "our chaddr from another Ethernet source ignored");
		n = frame(in, vm_mac, other_mac, 0, o, sizeof(o));
		ok(dhcp_handle(&l, in, n, out, &outlen) == DHCP_EV_NONE && !outlen, "other chaddr from our MAC ignored");
		n = frame(in, vm_mac, vm_mac, 0, o, sizeof(o));
		for (i = 0; i < n; i++)
			if (dhcp_handle(&l, in, i, out, &outlen) != DHCP_EV_NONE || outlen)
				all_quiet = 0;
		ok(all_quiet, "every truncation of a valid DISCOVER ignored");
		in[14 + 20 + 8 + 236] = 0;
		ok(dhcp_handle(&l, in, n, out, &outlen) == DHCP_EV_NONE, "bad magic cookie ignored");
		n = frame(in, vm_mac, vm_mac, 0, o, sizeof(o));
		in[14 + 6] = 0x20;	/* MF */
		ok(dhcp_handle(&l, in, n, out, &outlen) == DHCP_EV_NONE, "fragment ignored");
		n = frame(in, vm_mac, vm_mac, 0, o, sizeof(o));
		in[14 + 20 + 8] = 2;
		ok(dhcp_handle(&l, in, n, out, &outlen) == DHCP_EV_NONE, "BOOTREPLY from guest ignored");
		{
			uint8_t bad[] = { 53, 200 };	/* length overruns */

			n = frame(in, vm_mac, vm_mac, 0, bad, sizeof(bad));
			ok(dhcp_handle(&l, in, n, out, &outlen) == DHCP_EV_NONE, "option overrunning the packet ignored");
		}
		{
			uint8_t t[] = { 53, 1, 2, 255 };	/* OFFER from a guest */

			n = frame(in, vm_mac, vm_mac, 0, t, sizeof(t));
			ok(dhcp_handle(&l, in, n, out, &outlen) == DHCP_EV_NONE, "guest acting as server ignored");
		}
		n = frame(in, vm_mac, vm_mac, 0, o, sizeof(o));
		in[14 + 2] = 0x10;	/* IP total length beyond the frame */
		ok(dhcp_handle(&l, in, n, out, &outlen) == DHCP_EV_NONE, "IP length beyond the frame ignored");
	}
	/* option finder bounds */
	{
		const uint8_t p1[] = { 0, 0, 12, 3, 'a', 'b', 'c', 255 }, p2[] = { 12, 5, 'a' };

		v = dhcp_opt_find(p1, sizeof(p1), 12, &len);
		ok(v && len == 3 && v[0] == 'a', "opt_find skips pads");
		ok(!dhcp_opt_find(p2, sizeof(p2), 12, &len), "opt_find refuses an overrun");
		ok(!dhcp_opt_find(p1, 1, 12, &len), "opt_find within n only");
	}
	return tap_done();
}

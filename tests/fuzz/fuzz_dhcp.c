// SPDX-License-Identifier: MIT
/*
 * libFuzzer: arbitrary frames through the DHCP responder (parser and reply
 * builder).  The first byte picks a variant of the source MAC so that the
 * fuzzer can reach both "ours" and "foreign" paths.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

#include "net/dhcp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dhcp_lease l = { .mac = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 },
				       .srv_mac = { 0x02, 0, 0, 0, 0, 1 },
				       .prefix = 24, .lease_s = 3600, .mtu = 1500,
				       .hostname = "fuzz" };
	uint8_t frame[2048], out[DHCP_FRAME_MAX];
	size_t outlen;

	if (size > sizeof(frame))
		return 0;
	l.addr.s_addr = htonl(0x0a4d0002);
	l.gw.s_addr = htonl(0x0a4d0001);
	memcpy(frame, data, size);
	/* make the Ethernet source our VM's most of the time */
	if (size >= 12 && (data[0] & 1))
		memcpy(frame + 6, l.mac, 6);
	dhcp_handle(&l, frame, size, out, &outlen);
	if (outlen > DHCP_FRAME_MAX)
		__builtin_trap();
	return 0;
}

// SPDX-License-Identifier: MIT
/*
 * libFuzzer: arbitrary bytes as the netlink messages the WireGuard code reads:
 * a GET_DEVICE reply of the kernel's "wireguard" family, and the link, route
 * and rule events the supervisor watches.
 */
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "net/wg.h"
#include "net/wg_rt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* netlink messages are 4-byte aligned in the kernel's buffers */
	static uint32_t buf[16384];
	struct wg_live l = { 0 };
	unsigned ev;

	if (size > sizeof(buf))
		return 0;
	memcpy(buf, data, size);
	if (wg_genl_parse(buf, size, &l) == 0 && l.handshake < 0)
		__builtin_trap();
	ev = wg_rt_event(buf, size, "hw-abc123", 0x68770005u);
	if (ev & ~(WG_EV_LINK | WG_EV_TABLE))
		__builtin_trap();
	return 0;
}

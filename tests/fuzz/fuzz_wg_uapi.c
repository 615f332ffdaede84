// SPDX-License-Identifier: MIT
/* libFuzzer: arbitrary bytes as wireguard-go's answer to "get=1" (another process writes it). */
#include <stdint.h>
#include <sys/socket.h>

#include "net/wg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wg_live l = { 0 };

	if (wg_uapi_parse((const char *)data, size, &l) == 0) {
		if (l.handshake < 0)
			__builtin_trap();
		if (l.endpoint.ss_family != 0 && l.endpoint.ss_family != AF_INET &&
		    l.endpoint.ss_family != AF_INET6)
			__builtin_trap();
	}
	return 0;
}

// SPDX-License-Identifier: MIT
/* libFuzzer: arbitrary bytes as a project's wireguard.conf (a cloned repository writes it). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "net/wg_conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wg_conf c;
	struct wg_conf_error e;
	char b[64];

	if (wg_conf_parse((const char *)data, size, "wireguard.conf", &c, &e) == 0) {
		/* what a parsed file promises to the rest of hutch */
		if (!wg_conf_first_v4(&c) || !c.peer.n_allowed || c.peer.n_allowed > WG_ALLOWED_MAX ||
		    c.n_addr > WG_ADDR_MAX || c.n_dns > WG_DNS_MAX || !c.peer.port || !c.peer.host[0] ||
		    strlen(c.peer.host) > WG_HOST_MAX || c.mtu < 576 || c.mtu > 9000)
			__builtin_trap();
		for (size_t i = 0; i < c.peer.n_allowed; i++)
			if (wg_cidr_str(&c.peer.allowed[i], b, sizeof(b)))
				__builtin_trap();
		wg_conf_wipe(&c);
	} else if (!memchr(e.msg, 0, sizeof(e.msg)) || !e.msg[0]) {
		__builtin_trap();	/* every failure says why */
	}
	return 0;
}

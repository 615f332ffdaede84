// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for what hutch-helper reads from others: a request
 * (privd_parse), its configuration file (privd_conf_parse) and the
 * registry (privd_reg_header, privd_reg_parse).  The first byte picks the parser.  A parsed
 * request must keep its promises: NUL-terminated names, ids of
 * [a-z0-9], absolute paths, host_access within bounds, a userns_map pid
 * that is neither init nor out of pid_max's range, a tunnel request with
 * its wireguard.conf and a numeric endpoint.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/privd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct privd_req q;
	static struct privd_conf c;
	struct privd_reg r;
	char err[256];

	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0:
		if (privd_parse((const char *)data + 1, size - 1, &q, err, sizeof(err)) == 0) {
			if (strnlen(q.name, sizeof(q.name)) == sizeof(q.name) ||
			    strnlen(q.id, sizeof(q.id)) == sizeof(q.id) || q.n_ha > PRIV_HA_MAX ||
			    ((q.op == PRIVD_MOUNT || q.op == PRIVD_UNMOUNT) && q.dir[0] != '/') ||
			    (q.op == PRIVD_MOUNT && q.size_gib == 0) ||
			    (q.op == PRIVD_USERNS_MAP && (q.pid < 2 || q.pid > (1 << 22))) ||
			    /* a tunnel request: its conf parsed strictly, a numeric endpoint, a known how */
			    (q.op == PRIVD_WG_UP && (!q.has_wgc || !q.wg_ep.ss_family || !q.wgc.n_addr)) ||
			    (q.op == PRIVD_WG_FIX && (q.wg_how > WG_FIX_RELINK ||
						      (q.wg_how != WG_FIX_RULES && !q.has_wgc))))
				abort();
		} else if (strnlen(err, sizeof(err)) == sizeof(err)) {
			abort();
		}
		break;
	case 1:
		if (privd_conf_parse((const char *)data + 1, size - 1, &c, err, sizeof(err)) == 0 &&
		    (c.rundir[0] != '/' || c.n_nets == 0 || c.n_nets > PRIVD_NETS_MAX))
			abort();
		break;
	default: {
		unsigned slot;
		size_t len;

		if (privd_reg_header((const char *)data + 1, size - 1, &slot, &len) == 0 &&
		    (slot > 1 || len > PRIVD_REG_MAX_BYTES))
			abort();
		if (privd_reg_parse((const char *)data + 1, size - 1, &r) == 0)
			privd_reg_free(&r);
		break;
	}
	}
	return 0;
}

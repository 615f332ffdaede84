// SPDX-License-Identifier: MIT
/*
 * libFuzzer: the control socket's line handling.  The input is split into
 * reads of the sizes its first bytes give (a client may send a request in
 * any pieces), fed through vm_ctl_feed() into a buffer of the supervisor's
 * size, and a complete line goes to vm_ctl_parse(), as src/sv.c does.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "src/vm.h"

#define CTL_CAP 4096	/* SV_CTL_REQ_MAX */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char buf[CTL_CAP];
	size_t have = 0, off, nsplit, len = 0;
	enum vm_ctl_cmd cmd;
	long tmo = -2;
	int rc = 0;

	if (size < 1)
		return 0;
	nsplit = data[0] % 8;
	off = 1 + nsplit;
	if (off > size)
		return 0;
	for (size_t i = 0; i <= nsplit && rc == 0 && off < size; i++) {
		size_t n = i < nsplit ? (size_t)data[1 + i] * 17 + 1 : size - off;

		if (n > size - off)
			n = size - off;
		rc = vm_ctl_feed(buf, sizeof(buf), &have, (const char *)data + off, n, &len);
		off += n;
		if (have > sizeof(buf))
			abort();
	}
	if (rc == 1) {
		if (len >= have || buf[len] != '\n' || memchr(buf, '\n', len))
			abort();
		if (vm_ctl_parse(buf, len, &cmd, &tmo) == 0 &&
		    (tmo < -1 || tmo > 86400 || cmd > VM_CTL_LAST))
			abort();
	}
	return 0;
}

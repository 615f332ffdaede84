// SPDX-License-Identifier: MIT
/* libFuzzer: arbitrary bytes as a control.sock request line (vm_ctl_parse). */
#include <stdint.h>
#include <stdlib.h>

#include "src/vm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum vm_ctl_cmd cmd;
	long tmo = -2;

	if (vm_ctl_parse((const char *)data, size, &cmd, &tmo) == 0) {
		if (tmo < -1 || tmo > 86400)
			abort();
		if (cmd > VM_CTL_RESUME)
			abort();
	}
	return 0;
}

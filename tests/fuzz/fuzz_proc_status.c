// SPDX-License-Identifier: MIT
/*
 * fuzz_proc_status: arbitrary bytes as /proc/<pid>/status, through
 * proc_status_parse() (line splitting, field lookup, bounded hex and decimal
 * tokens).  A parse that succeeds must give a uid that fits 32 bits.
 */
#include <stdint.h>
#include <string.h>

#include "src/proc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proc_status st;

	if (proc_status_parse((const char *)data, size, &st) == 0 && (uint64_t)st.uid > UINT32_MAX)
		__builtin_trap();
	return 0;
}

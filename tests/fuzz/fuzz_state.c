// SPDX-License-Identifier: MIT
/* libFuzzer: arbitrary bytes as state.json, then every reader the core uses. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/state.h"
#include "src/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

static void cleanup(void)
{
	util_rm_rf(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[128];
	json_t *st;

	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/tmp/fuzz_state.%d", (int)getpid());
		util_mkdir_p(dir, 0700);
		atexit(cleanup);
	}
	snprintf(path, sizeof(path), "%s/state.json", dir);
	if (util_write_atomic(path, data, size, 0600))
		return 0;
	if (state_load(dir, &st) == 0) {
		(void)state_get_str(st, "status");
		(void)state_get_str(st, "name");
		(void)state_get_int(st, "qemu_pid", -1);
		(void)state_get_int(st, "supervisor_pid", -1);
		(void)state_get_str(json_object_get(st, "net"), "ip");
		(void)state_get_int(json_object_get(st, "ssh"), "port", 0);
		state_save(dir, st);
		json_decref(st);
	}
	return 0;
}

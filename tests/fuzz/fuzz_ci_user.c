// SPDX-License-Identifier: MIT
/* libFuzzer: arbitrary cloud-init.yml bytes through ci_parse() and ci_render() */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "src/ci.h"
#include "src/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ci_info info;
	static int init;
	struct ci_mount m = { "workspace", "/workspace" };
	struct ci_input in = { .pubkey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKr11111111 hutch",
			       .user = "dev", .host_priv = "-----BEGIN X-----\nAAAA\n-----END X-----\n",
			       .host_pub = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKr2222222 h",
			       .mounts = &m, .n_mounts = 1 };
	char *out = NULL;
	size_t len;

	if (!init) {
		log_init("fuzz", LOG_LVL_ERR);
		log_set_file(fopen("/dev/null", "w"));
		init = 1;
	}
	if (ci_parse((const char *)data, size, &info) == 0) {
		in.user_file = (const char *)data;
		in.user_len = size;
		in.info = &info;
		if (ci_render(&in, &out, &len) == 0) {
			if (strlen(out) > len)
				abort();
			free(out);
		}
	}
	return 0;
}

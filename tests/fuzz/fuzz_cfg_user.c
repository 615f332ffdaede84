// SPDX-License-Identifier: MIT
/*
 * fuzz_cfg_user: arbitrary bytes as ~/.config/hutch/config.yaml.
 *
 * The user's own file, but parsed by the same bounded tree parser as
 * hutch.yaml; checks "no crash, no leak" and that every allowed path that
 * comes out is absolute and normalised (no "." or ".." left).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "src/cfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg_user *u = NULL;
	struct cfg_error e;

	if (cfg_user_load_buffer((const char *)data, size, "config.yaml", &u, &e))
		return 0;
	for (size_t i = 0; i < u->n_allow; i++) {
		const char *p = u->allow[i];

		if (p[0] != '/' || strstr(p, "/./") || strstr(p, "/../") || strstr(p, "//"))
			abort();
	}
	cfg_user_free(u);
	return 0;
}

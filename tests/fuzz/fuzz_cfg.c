// SPDX-License-Identifier: MIT
/*
 * fuzz_cfg: arbitrary bytes as hutch.yaml.
 *
 * Besides "no crash, no leak", checks the round trip a user relies on:
 * whatever cfg_load_buffer() accepts, cfg_print() writes as YAML that
 * loads again to the same config (compared through cfg_to_json()).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "src/cfg.h"
#include "src/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg *c = NULL, *c2 = NULL;
	struct cfg_error e;
	json_t *j1 = NULL, *j2 = NULL;
	char *text = NULL;
	size_t len = 0;
	FILE *m;

	if (cfg_load_buffer((const char *)data, size, "fuzz.yaml", "/project", &c, &e))
		return 0;
	m = open_memstream(&text, &len);
	if (!m)
		abort();
	if (cfg_print(m, c))
		abort();
	fclose(m);
	if (cfg_load_buffer(text, len, "printed.yaml", "/project", &c2, &e)) {
		fprintf(stderr, "printed config does not load: %s\n---\n%s---\n", e.msg, text);
		abort();
	}
	if (cfg_to_json(c, &j1) || cfg_to_json(c2, &j2))
		abort();
	/* the file names differ on purpose; the VMs must not */
	if (!json_equal(json_object_get(j1, "vms"), json_object_get(j2, "vms"))) {
		fprintf(stderr, "round trip changed the config\n---\n%s---\n", text);
		abort();
	}
	json_decref(j1);
	json_decref(j2);
	free(text);
	cfg_free(c);
	cfg_free(c2);
	return 0;
}

// SPDX-License-Identifier: MIT
/*
 * fuzz_img_sums: arbitrary bytes as a distribution's checksum file.  The
 * first byte picks the name looked up; a hit must be a well-formed
 * lower-case digest of the algorithm's length.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "images/img.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = { "a.qcow2", "debian-12-genericcloud-amd64.qcow2",
					     "x", "Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2" };
	char algo[8], hex[129];
	char *copy;
	size_t i, want;

	if (size < 1)
		return 0;
	copy = malloc(size - 1 ? size - 1 : 1);
	if (!copy)
		return 0;
	memcpy(copy, data + 1, size - 1);
	if (img_checksum_find(copy, size - 1, names[data[0] % 4], algo, hex, sizeof(hex)) == 0) {
		want = !strcmp(algo, "sha512") ? 128 : !strcmp(algo, "sha256") ? 64 : 0;
		if (!want || strlen(hex) != want)
			abort();
		for (i = 0; i < want; i++)
			if (!isxdigit((unsigned char)hex[i]) || isupper((unsigned char)hex[i]))
				abort();
	}
	free(copy);
	return 0;
}

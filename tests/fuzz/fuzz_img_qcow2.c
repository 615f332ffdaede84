// SPDX-License-Identifier: MIT
/*
 * fuzz_img_qcow2: arbitrary bytes as the start of a qcow2 file (the header
 * of an image from the network).  The parser must never read past @n, and
 * what it accepts must be self-consistent: a backing name inside the first
 * cluster and at most 1023 bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "images/img.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct img_qcow2_hdr h;
	uint8_t *copy = malloc(size ? size : 1);

	if (!copy)
		return 0;
	/* an exact-size heap copy, so that ASan sees any overread */
	memcpy(copy, data, size);
	if (img_qcow2_parse(copy, size, &h) == 0) {
		if (h.version != 2 && h.version != 3)
			abort();
		if (h.backing_size > 1023)
			abort();
		if (h.backing_offset && h.backing_offset + h.backing_size > (2u << 20))
			abort();
	}
	free(copy);
	return 0;
}

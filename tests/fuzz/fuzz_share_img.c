// SPDX-License-Identifier: MIT
/*
 * fuzz_share_img: the two parsers that decide whether a share image is one
 * of ours (issue 15.5): arbitrary bytes as an ext superblock (what the
 * image file holds at offset 1024) and as a provenance record (a JSON file
 * in the user's data dir).  A parsed record must have a nonzero inode and
 * size; a UUID is only ever read inside the bytes given.
 */
#include <stdint.h>
#include <string.h>

#include "share/share.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct share_img_rec r;
	uint8_t uuid[16];

	if (share_sb_uuid(data, size, uuid) == 0 && size < 0x78)
		__builtin_trap();
	if (share_rec_parse((const char *)data, size, &r) == 0 && (r.ino == 0 || r.size == 0))
		__builtin_trap();
	return 0;
}

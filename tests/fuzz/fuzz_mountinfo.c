// SPDX-License-Identifier: MIT
/*
 * fuzz_mountinfo: arbitrary bytes as /proc/self/mountinfo.  The whole
 * buffer goes through share_mountinfo_find() (line splitting, every field,
 * escapes, the optional-field loop), and each line alone through
 * share_mountinfo_parse_line(); parsed entries must be NUL-terminated and
 * the options searchable.
 */
#include <stdint.h>
#include <string.h>

#include "share/share.h"

static struct share_mntent e;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	size_t off = 0;

	if (share_mountinfo_find(p, size, "/w", &e) == 0) {
		if (strcmp(e.mountpoint, "/w") != 0)
			__builtin_trap();
		(void)share_mnt_has_opt(e.mnt_opts, "nosymfollow");
	}
	while (off < size) {
		const char *nl = memchr(p + off, '\n', size - off);
		size_t len = nl ? (size_t)(nl - (p + off)) : size - off;

		if (share_mountinfo_parse_line(p + off, len, &e) == 0) {
			if (strlen(e.fstype) >= sizeof(e.fstype) || strlen(e.source) >= sizeof(e.source))
				__builtin_trap();
			(void)share_mnt_has_opt(e.super_opts, "rw");
		}
		off += len + 1;
	}
	return 0;
}

/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_ISO_H
#define HUTCH_ISO_H
/**
 * DOC: iso - a small ISO 9660 writer (with Joliet names) for NoCloud seeds
 *
 * Writes a flat image (files in the root directory only), so that
 * cloud-init finds "user-data", "meta-data" and "network-config" on a
 * volume labelled "cidata".  No genisoimage needed.
 */
#include <stddef.h>

/** struct iso_file - one file of the image; @name is [a-z0-9._-]{1,64} */
struct iso_file {
	const char *name;
	const void *data;
	size_t len;
};

/** iso_write() - write the image to @path (via temp file + rename) */
int iso_write(const char *path, const char *volid, const struct iso_file *files, size_t n);

#endif

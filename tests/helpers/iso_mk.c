// SPDX-License-Identifier: MIT
/*
 * iso_mk OUT VOLID NAME=FILE...: write a seed image with iso_write() from
 * files on disk, for the shell tests (tests/images/t-iso.sh).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "images/iso.h"
#include "src/util.h"

int main(int argc, char **argv)
{
	struct iso_file files[64] = { 0 };
	char *bufs[64] = { 0 };
	int i, n = 0, rc;

	if (argc < 3 || argc - 3 > 64) {
		fprintf(stderr, "usage: iso_mk OUT VOLID NAME=FILE...\n");
		return 2;
	}
	for (i = 3; i < argc; i++, n++) {
		char *eq = strchr(argv[i], '=');
		size_t len;

		if (!eq) {
			fprintf(stderr, "iso_mk: %s: want NAME=FILE\n", argv[i]);
			return 2;
		}
		*eq = '\0';
		rc = util_read_file(eq + 1, (size_t)1 << 30, &bufs[n], &len);
		if (rc) {
			fprintf(stderr, "iso_mk: %s: %s\n", eq + 1, strerror(-rc));
			return 1;
		}
		files[n] = (struct iso_file){ .name = argv[i], .data = bufs[n], .len = len };
	}
	rc = iso_write(argv[1], argv[2], files, (size_t)n);
	for (i = 0; i < n; i++)
		free(bufs[i]);
	if (rc) {
		fprintf(stderr, "iso_mk: %s: %s\n", argv[1], strerror(-rc));
		return 1;
	}
	return 0;
}

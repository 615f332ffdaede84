// SPDX-License-Identifier: MIT
/*
 * img_tool: drive images/img.c from the shell tests.
 *   img_tool resolve SPEC [SHA256]          prints "PATH FORMAT VSIZE"
 *   img_tool overlay SPEC OUT GIB           img_overlay_create over SPEC
 * The project directory is the current directory.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "images/img.h"
#include "src/log.h"
#include "src/util.h"

int main(int argc, char **argv)
{
	struct img_ref ref;
	char cwd[4096];
	long gib;
	int rc;

	log_init("img_tool", LOG_LVL_INFO);
	if (!getcwd(cwd, sizeof(cwd)))
		return 1;
	if (argc >= 3 && argc <= 4 && !strcmp(argv[1], "resolve")) {
		rc = img_resolve(argv[2], argc == 4 ? argv[3] : NULL, cwd, false, &ref);
		if (rc)
			return 1;
		printf("%s %s %llu\n", ref.path, ref.format, (unsigned long long)ref.vsize);
		return 0;
	}
	if (argc == 5 && !strcmp(argv[1], "overlay")) {
		if (util_parse_long(argv[4], 0, 65536, &gib))
			return 2;
		rc = img_resolve(argv[2], NULL, cwd, false, &ref);
		if (!rc)
			rc = img_overlay_create(&ref, argv[3], (unsigned)gib);
		return rc ? 1 : 0;
	}
	fprintf(stderr, "usage: img_tool resolve SPEC [SHA256] | overlay SPEC OUT GIB\n");
	return 2;
}

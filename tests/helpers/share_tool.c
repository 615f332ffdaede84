// SPDX-License-Identifier: MIT
/*
 * share_tool: the share module's host-side functions as a small CLI, so the
 * shell tests (tests/share/) exercise exactly the code the supervisor and
 * `hutch mount` run, without a hutch.yaml or a VM:
 *   share_tool create IMG GIB        image (sparse ext4), owned by the caller
 *   share_tool mount IMG DIR         loop mount nosymfollow,nodev,nosuid
 *   share_tool verify IMG DIR        exit 0 when DIR is IMG mounted by us
 *   share_tool unmount IMG DIR
 *   share_tool vfs-start DIR SOCK    start virtiofsd, print its pid
 *   share_tool vfs-stop PID
 *   share_tool is-vfs PID SOCK       exit 0 when PID is a virtiofsd on SOCK
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "share/share.h"
#include "src/log.h"
#include "src/util.h"

int main(int argc, char **argv)
{
	long v;
	int rc = -EINVAL, nr;

	log_init("share_tool", LOG_LVL_INFO);
	if (argc == 4 && strcmp(argv[1], "create") == 0) {
		if (util_parse_long(argv[3], 1, 65536, &v) == 0)
			rc = share_image_create(argv[2], (unsigned)v, getuid(), getgid(), NULL);
	} else if (argc == 4 && strcmp(argv[1], "mount") == 0) {
		rc = share_mount(argv[2], argv[3], getuid(), getgid(), &nr);
		if (rc == 0)
			printf("loop%d\n", nr);
	} else if (argc == 4 && strcmp(argv[1], "verify") == 0) {
		rc = share_verify(argv[2], argv[3], NULL);
	} else if (argc == 4 && strcmp(argv[1], "unmount") == 0) {
		rc = share_unmount(argv[2], argv[3]);
	} else if (argc == 4 && strcmp(argv[1], "vfs-start") == 0) {
		char exe[PATH_MAX];
		pid_t pid;

		rc = share_virtiofsd_find(exe, sizeof(exe));
		if (rc == 0)
			rc = share_virtiofsd_start(exe, argv[2], argv[3], NULL, false, &pid);
		if (rc == 0)
			printf("%ld\n", (long)pid);
	} else if (argc == 3 && strcmp(argv[1], "vfs-stop") == 0) {
		if (util_parse_long(argv[2], 2, INT_MAX, &v) == 0)
			rc = share_virtiofsd_stop((pid_t)v, 3000, false);
	} else if (argc == 4 && strcmp(argv[1], "is-vfs") == 0) {
		if (util_parse_long(argv[2], 2, INT_MAX, &v) == 0)
			rc = share_pid_is_virtiofsd((pid_t)v, argv[3]) ? 0 : -ESRCH;
	} else {
		fprintf(stderr, "usage: see the comment at the top of share_tool.c\n");
		return 2;
	}
	if (rc < 0)
		fprintf(stderr, "share_tool %s: %s\n", argv[1], strerror(-rc));
	return rc < 0 ? 1 : 0;
}

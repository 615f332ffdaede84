// SPDX-License-Identifier: MIT
/*
 * share_tool: the share module's host-side functions as a small CLI, so the
 * shell tests (tests/share/) exercise exactly the code the supervisor and
 * `hutch mount` run, without a hutch.yaml or a VM:
 *   share_tool create IMG GIB        image (sparse ext4), owned by the caller;
 *                                    IMG is DIR.img, its record goes to
 *                                    $XDG_DATA_HOME/hutch/shares
 *   share_tool mount IMG DIR         loop mount nosymfollow,nodev,nosuid
 *                                    (IMG must be DIR.img)
 *   share_tool verify IMG DIR        exit 0 when DIR is IMG mounted by us
 *   share_tool unmount IMG DIR
 *   share_tool vfs-start DIR SOCK    start virtiofsd, print its pid
 *   share_tool sb-uuid FILE          the ext4 UUID as share_sb_uuid() reads it
 * With SHARE_TOOL_UID=N in the environment, mount/unmount/create act for
 * uid (and gid) N, as a privileged helper acting for that user would.
 *   share_tool vfs-stop PID
 *   share_tool is-vfs PID SOCK       exit 0 when PID is a virtiofsd on SOCK
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "share/share.h"
#include "src/log.h"
#include "src/util.h"

/* IMG given with its folder DIR (or alone, then DIR is IMG less ".img") */
static int req_for(const char *img, const char *dir, char *buf, size_t n)
{
	size_t l = strlen(img);

	if (l < 5 || strcmp(img + l - 4, ".img") != 0)
		return -EINVAL;
	if (dir)
		return util_snprintf(buf, n, "%s.img", dir) == 0 && strcmp(buf, img) == 0
			       ? util_snprintf(buf, n, "%s", dir) : -EINVAL;
	return util_snprintf(buf, n, "%.*s", (int)(l - 4), img);
}

int main(int argc, char **argv)
{
	char dir[PATH_MAX], recdir[PATH_MAX];
	struct share_req req = { .dir = dir, .uid = getuid(), .gid = getgid(), .recdir = recdir };
	long v;
	int rc = -EINVAL, nr;

	log_init("share_tool", LOG_LVL_INFO);
	if (share_record_dir(recdir, sizeof(recdir)) < 0)
		return 1;
	if (getenv("SHARE_TOOL_UID")) {
		if (util_parse_long(getenv("SHARE_TOOL_UID"), 0, INT_MAX, &v) < 0)
			return 2;
		req.uid = (uid_t)v;
		req.gid = (gid_t)v;
	}
	if (argc == 4 && strcmp(argv[1], "create") == 0) {
		if (util_parse_long(argv[3], 1, 65536, &v) == 0 &&
		    (rc = req_for(argv[2], NULL, dir, sizeof(dir))) == 0) {
			req.size_gib = (unsigned)v;
			rc = share_image_create(&req, NULL);
		}
	} else if (argc == 4 && strcmp(argv[1], "mount") == 0) {
		rc = req_for(argv[2], argv[3], dir, sizeof(dir));
		if (rc == 0)
			rc = share_mount(&req, &nr);
		if (rc == 0)
			printf("loop%d\n", nr);
	} else if (argc == 4 && strcmp(argv[1], "verify") == 0) {
		rc = share_verify(argv[2], argv[3], NULL);
	} else if (argc == 4 && strcmp(argv[1], "unmount") == 0) {
		rc = share_unmount(argv[2], argv[3], req.uid);
	} else if (argc == 3 && strcmp(argv[1], "sb-uuid") == 0) {
		uint8_t sb[1024], uuid[16];
		FILE *f = fopen(argv[2], "rb");
		size_t got = 0;

		if (f && fseek(f, 1024, SEEK_SET) == 0)
			got = fread(sb, 1, sizeof(sb), f);
		if (f)
			fclose(f);
		rc = share_sb_uuid(sb, got, uuid);
		for (int i = 0; rc == 0 && i < 16; i++)
			printf("%02x%s", uuid[i], i == 15 ? "\n" : "");
	} else if (argc == 4 && strcmp(argv[1], "vfs-start") == 0) {
		char exe[PATH_MAX];
		pid_t pid;

		rc = share_virtiofsd_find(exe, sizeof(exe));
		if (rc == 0)
			rc = share_virtiofsd_start(exe, argv[2], argv[3], NULL, false, &pid, NULL);
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

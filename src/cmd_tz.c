// SPDX-License-Identifier: MIT
/*
 * `hutch tz [ZONE]`: set the guest's time zone, by default to the host's.
 * The zone is checked against the host's zoneinfo before it goes anywhere
 * (a name, not a path: no "..", no leading '/', a TZif file), then set in
 * the guest over SSH (src/guest.h: timedatectl, quoted).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/cmd.h"
#include "src/guest.h"
#include "src/log.h"
#include "src/state.h"
#include "src/util.h"
#include "src/vm.h"

#define TZ_DIR "/usr/share/zoneinfo"
#define TZ_NAME_MAX 128

/* an IANA zone name the host knows: [A-Za-z0-9/_+-], no "..", a TZif file */
static bool tz_valid(const char *z)
{
	char path[PATH_MAX], magic[4];
	struct stat sb;
	bool ok;
	int fd;

	if (!z[0] || z[0] == '/' || strlen(z) >= TZ_NAME_MAX || strstr(z, ".."))
		return false;
	for (const char *p = z; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '/' || *p == '_' || *p == '+' || *p == '-'))
			return false;
	if (util_snprintf(path, sizeof(path), "%s/%s", TZ_DIR, z))
		return false;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ok = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) &&
	     read(fd, magic, sizeof(magic)) == (ssize_t)sizeof(magic) && !memcmp(magic, "TZif", 4);
	close(fd);
	return ok;
}

/* the host's zone name */
static int tz_host(char *buf, size_t n)
{
	const char *env = getenv("TZ"), *p;
	char link[PATH_MAX], *txt = NULL;
	ssize_t l;

	if (env && *env)
		return util_snprintf(buf, n, "%s", env[0] == ':' ? env + 1 : env);
	l = readlink("/etc/localtime", link, sizeof(link) - 1);
	if (l > 0) {
		link[l] = '\0';
		p = strstr(link, "zoneinfo/");
		if (p)
			return util_snprintf(buf, n, "%s", p + strlen("zoneinfo/"));
	}
	if (util_read_file("/etc/timezone", 256, &txt, NULL) == 0) {
		txt[strcspn(txt, " \t\r\n")] = '\0';
		l = util_snprintf(buf, n, "%s", txt);
		free(txt);
		return (int)l;
	}
	return util_snprintf(buf, n, "Etc/UTC");
}

static int cmd_tz(struct cli *cli, struct vm_target *vt, int argc, char **argv)
{
	struct guest_target t = { .vm = vt->vm, .project_dir = vt->cfg->dir, .vm_dir = vt->dir,
				  .state = vt->state };
	char zone[TZ_NAME_MAX + 1];

	if (argc > 2 || (argc == 2 && argv[1][0] == '-'))
		return cmd_usage(&cmd_tz_entry);
	if (argc == 2 ? util_snprintf(zone, sizeof(zone), "%s", argv[1]) : tz_host(zone, sizeof(zone)))
		zone[0] = '\0';
	if (!tz_valid(zone)) {
		log_err("'%s' is not a time zone this host knows (see %s)", zone, TZ_DIR);
		return EXIT_USAGE;
	}
	if (!guest_can_ssh(&t)) {
		log_err("hutch cannot log in to %s (no network or no SSH key for the guest)", vt->name);
		return EXIT_ERR;
	}
	if (guest_set_timezone(&t, zone))
		return EXIT_ERR;
	if (cli->json)
		return cmd_print_json(json_pack("{s:s}", "zone", zone)) ? EXIT_ERR : EXIT_OK;
	printf("%s\n", zone);
	return EXIT_OK;
}

static const char tz_help[] =
	"Sets the time zone of the running VM and prints it. Without ZONE, the host's\n"
	"zone is used (TZ, else /etc/localtime, else /etc/timezone). ZONE is an IANA\n"
	"name such as Europe/Berlin; it must exist in the host's " TZ_DIR " (exit 2\n"
	"otherwise, and for anything that looks like a path). It is applied over SSH\n"
	"with 'timedatectl set-timezone' (as root, through sudo -n).\n"
	"\n"
	"The positional argument is the zone: with several VMs, pick one with --vm NAME.\n"
	"\n"
	"Examples:\n"
	"  hutch tz                 # the host's zone\n"
	"  hutch tz America/New_York\n"
	"  hutch --vm db tz UTC\n";

const struct cmd_entry cmd_tz_entry = {
	.name = "tz",
	.usage = "[ZONE]",
	.summary = "set the guest's time zone (default: the host's)",
	.help = tz_help,
	.flags = CMD_F_VM | CMD_F_CFG | CMD_F_RUNNING | CMD_F_NO_NAME,
	.fn = cmd_tz,
};

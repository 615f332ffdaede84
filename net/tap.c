// SPDX-License-Identifier: MIT
#include "net/tap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <unistd.h>

#include "net/net.h"
#include "src/util.h"

int tap_new_id(char *buf, size_t n)
{
	static const char al[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	uint8_t r[TAP_ID_LEN];

	if (n < TAP_ID_LEN + 1)
		return -ENAMETOOLONG;
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return -EIO;
	/* 36 does not divide 256: a tiny bias, irrelevant for a name */
	for (size_t i = 0; i < TAP_ID_LEN; i++)
		buf[i] = al[r[i] % (sizeof(al) - 1)];
	buf[TAP_ID_LEN] = 0;
	return 0;
}

int tap_name(const char *id, char *buf, size_t n)
{
	size_t len = strlen(id);

	if (len == 0 || len > TAP_ID_LEN)
		return -EINVAL;
	for (size_t i = 0; i < len; i++)
		if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9')))
			return -EINVAL;
	if (n > IFNAMSIZ)
		n = IFNAMSIZ;
	return util_snprintf(buf, n, NET_TAP_PREFIX "%s", id);
}

/**
 * tap_open() - see tap.h
 *
 * IFF_TUN_EXCL makes TUNSETIFF fail with EBUSY instead of attaching to an
 * existing tap of that name (another VM's, or a stale one): two VMs never
 * share a NIC.  TUNSETPERSIST 0 is explicit so that a tap never outlives us.
 */
int tap_open(const char *name, uid_t uid, gid_t gid, int *fdp)
{
	struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_TUN_EXCL };
	int fd, rc;

	if (!net_ifname_valid(name))
		return -EINVAL;
	if ((rc = util_snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name)))
		return rc;
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		rc = errno == EBUSY ? -EEXIST : -errno;
		goto err_close;
	}
	if (strcmp(ifr.ifr_name, name)) {
		rc = -EEXIST;
		goto err_close;
	}
	if (ioctl(fd, TUNSETPERSIST, 0UL) < 0 || ioctl(fd, TUNSETOWNER, (unsigned long)uid) < 0 ||
	    ioctl(fd, TUNSETGROUP, (unsigned long)gid) < 0) {
		rc = -errno;
		goto err_close;
	}
	*fdp = fd;
	return 0;

err_close:
	close(fd);
	return rc;
}

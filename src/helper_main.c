// SPDX-License-Identifier: MIT
/*
 * hutch-helper: the privileged side of hutch's one seam (net/priv.h), as a
 * small program with file capabilities that `sudo hutch setup` installs.
 * hutch starts it with a SOCK_SEQPACKET socket on fd 3 and speaks the
 * request protocol of net/privd.h; everything is in net/privd*.c, which
 * the program links with the few modules they need (netlink, nftables,
 * tap, DHCP socket, share mount).
 */
#include "net/privd.h"

int main(int argc, char **argv)
{
	return privd_helper_main(argc, argv);
}

/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_TAP_H
#define HUTCH_TAP_H
/**
 * DOC: tap - one tap device per VM NIC
 *
 * Named ht-<id> with a short random id (recorded in state, so gc can find
 * it), not persistent: it disappears when its last fd is closed, i.e. when
 * both QEMU and the supervisor are gone, even after kill -9.  IFF_VNET_HDR
 * lets QEMU pass virtio-net offloads through.
 */
#include <net/if.h>
#include <stddef.h>
#include <sys/types.h>

#define TAP_ID_LEN 8	/* "ht-" + 8 = 11 chars, well under IFNAMSIZ */

/** tap_new_id() - a random [a-z0-9]{TAP_ID_LEN} id; @buf at least TAP_ID_LEN+1 */
int tap_new_id(char *buf, size_t n);
/** tap_name() - "ht-<id>" into @buf (IFNAMSIZ); -EINVAL for a bad id */
int tap_name(const char *id, char *buf, size_t n);
/**
 * tap_open() - create the tap @name owned by @uid/@gid
 * @fdp: set to the tap fd (CLOEXEC, blocking) on success; the caller owns it
 * Return: 0, -EEXIST when a link of that name exists, or a negative errno
 */
int tap_open(const char *name, uid_t uid, gid_t gid, int *fdp);

#endif

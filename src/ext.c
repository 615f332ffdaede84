// SPDX-License-Identifier: MIT
/*
 * The fixed list of extensions.  References are weak so that a build (or a
 * unit test linked from libhutch.a) without one of the modules still links;
 * a missing module is simply not in the list.  test_sv_ext/test_up_ext are
 * defined only by tests/helpers/fake_ext.c, which checks the core's side of
 * the contract; the product never defines them.
 */
#include <stddef.h>

#include "src/ext.h"

extern const struct sv_ext net_sv_ext __attribute__((weak));
extern const struct sv_ext share_sv_ext __attribute__((weak));
extern const struct sv_ext wg_sv_ext __attribute__((weak));
extern const struct sv_ext test_sv_ext __attribute__((weak));
extern const struct up_ext net_up_ext __attribute__((weak));
extern const struct up_ext share_up_ext __attribute__((weak));
extern const struct up_ext ssh_up_ext __attribute__((weak));
extern const struct up_ext wg_up_ext __attribute__((weak));
extern const struct up_ext test_up_ext __attribute__((weak));

const struct sv_ext *const *ext_sv_list(void)
{
	static const struct sv_ext *list[5];
	size_t n = 0;

	if (!list[0]) {
		/* wg before net: net puts the tunnel's kill switch into the VM's rules */
		if (&wg_sv_ext)
			list[n++] = &wg_sv_ext;
		if (&net_sv_ext)
			list[n++] = &net_sv_ext;
		if (&share_sv_ext)
			list[n++] = &share_sv_ext;
		if (&test_sv_ext)
			list[n++] = &test_sv_ext;
		list[n] = NULL;
	}
	return list;
}

const struct up_ext *const *ext_up_list(void)
{
	static const struct up_ext *list[6];
	size_t n = 0;

	if (!list[0]) {
		/* wg first: a bad wireguard.conf stops `up` before anything else runs */
		if (&wg_up_ext)
			list[n++] = &wg_up_ext;
		if (&net_up_ext)
			list[n++] = &net_up_ext;
		if (&share_up_ext)
			list[n++] = &share_up_ext;
		if (&ssh_up_ext)
			list[n++] = &ssh_up_ext;
		if (&test_up_ext)
			list[n++] = &test_up_ext;
		list[n] = NULL;
	}
	return list;
}

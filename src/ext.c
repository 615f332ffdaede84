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
extern const struct sv_ext warm_sv_ext;
extern const struct up_ext net_up_ext __attribute__((weak));
extern const struct up_ext share_up_ext __attribute__((weak));
extern const struct up_ext ssh_up_ext __attribute__((weak));
extern const struct up_ext test_up_ext __attribute__((weak));
extern const struct up_ext warm_up_ext;

const struct sv_ext *const *ext_sv_list(void)
{
	static const struct sv_ext *list[6];
	size_t n = 0;

	if (!list[0]) {
		list[n++] = &warm_sv_ext;
		if (&net_sv_ext)
			list[n++] = &net_sv_ext;
		if (&share_sv_ext)
			list[n++] = &share_sv_ext;
		if (&wg_sv_ext)
			list[n++] = &wg_sv_ext;
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
		/* first: its wait only reports how the VM started; its after_up
		 * (clock, shares, warm: true) must run before ssh's autoconnect */
		list[n++] = &warm_up_ext;
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

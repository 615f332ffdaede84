/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_TEST_TAP_H
#define HUTCH_TEST_TAP_H
/*
 * Minimal TAP for unit tests: ok(cond, "what") prints "ok N - what" or
 * "not ok N - what"; tap_done() prints the plan and returns the exit code.
 */
#include <stdio.h>

static int tap_n, tap_failed;

#define ok(cond, ...)                                                       \
	do {                                                                \
		int ok_c_ = !!(cond);                                       \
		tap_n++;                                                    \
		if (!ok_c_)                                                 \
			tap_failed++;                                       \
		printf("%sok %d - ", ok_c_ ? "" : "not ", tap_n);           \
		printf(__VA_ARGS__);                                        \
		printf("\n");                                               \
		if (!ok_c_)                                                 \
			printf("#   failed at %s:%d\n", __FILE__, __LINE__);   \
		fflush(stdout);                                             \
	} while (0)

#define is_int(got, want, ...)                                              \
	do {                                                                \
		long long g_ = (long long)(got), w_ = (long long)(want);    \
		ok(g_ == w_, __VA_ARGS__);                                  \
		if (g_ != w_)                                               \
			printf("#   got %lld, want %lld\n", g_, w_);        \
	} while (0)

static inline int tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif

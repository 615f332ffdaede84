// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "src/log.h"
#include "src/proc.h"
#include "src/util.h"
#include "tests/unit/tap.h"

int main(void)
{
	char buf[8], esc[16];
	long v;
	char *out = NULL;
	int st;
	const char *argv[] = { "sh", "-c", "echo hi; exit 3", NULL };

	is_int(util_snprintf(buf, sizeof(buf), "%s", "1234567"), 0, "snprintf fits");
	is_int(util_snprintf(buf, sizeof(buf), "%s", "12345678"), -ENAMETOOLONG, "snprintf refuses truncation");
	is_int(util_parse_long("42", 0, 100, &v), 0, "parse 42");
	is_int(v, 42, "value 42");
	is_int(util_parse_long("42x", 0, 100, &v), -EINVAL, "trailing junk refused");
	is_int(util_parse_long("101", 0, 100, &v), -ERANGE, "out of range refused");
	is_int(util_parse_long("", 0, 100, &v), -EINVAL, "empty refused");
	ok(util_name_valid("agent-1"), "valid name");
	ok(!util_name_valid("-agent"), "leading dash refused");
	ok(!util_name_valid("Agent"), "upper case refused");
	ok(!util_name_valid("a234567890123456789012345678901x"), "32 chars refused");
	log_escape(esc, sizeof(esc), "a\033[2Jb", 6);
	ok(!strcmp(esc, "a\\x1b[2Jb"), "escape control bytes: %s", esc);
	log_escape(esc, sizeof(esc), "0123456789abcdefghij", 20);
	ok(strlen(esc) < sizeof(esc) && strstr(esc, "..."), "escape marks truncation: %s", esc);
	is_int(proc_run(argv, NULL, &out, 100, &st), 0, "proc_run runs sh");
	is_int(proc_exit_code(st), 3, "exit code passed through");
	ok(out && !strcmp(out, "hi\n"), "output captured");
	{
		const char *bad[] = { "/nonexistent/prog", NULL };

		is_int(proc_run(bad, NULL, NULL, 0, &st), -ENOENT, "missing program fails at spawn");
	}
	{
		/* the one lock helper: a second open file of the same lock */
		char path[] = "/tmp/t_util.lock.XXXXXX";
		int tmp = mkstemp(path), a, b;
		uint64_t t0;

		close(tmp);
		a = util_flock(path, false, NULL);
		ok(a >= 0, "util_flock takes a free lock");
		is_int(util_flock(path, false, NULL), -EBUSY, "and a second one is busy at once");
		b = open(path, O_RDWR | O_CLOEXEC);
		is_int(util_flock_fd(b, 0, NULL), -EBUSY, "util_flock_fd without waiting: busy");
		t0 = util_monotonic_ms();
		is_int(util_flock_fd(b, 100, NULL), -ETIMEDOUT, "a bounded wait gives up");
		ok(util_monotonic_ms() - t0 >= 100, "after its time, not before");
		close(a);
		is_int(util_flock_fd(b, 100, NULL), 0, "free again once the holder closed its fd");
		close(b);
		unlink(path);
	}
	return tap_done();
}

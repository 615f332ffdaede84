// SPDX-License-Identifier: MIT
/* src/log.c: the rate limit for guest-triggered messages, and the bounded log file. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/log.h"
#include "src/util.h"
#include "tests/unit/tap.h"

static size_t count(const char *path, const char *needle)
{
	char *buf = NULL, *p;
	size_t len = 0, n = 0;

	if (util_read_file(path, 64 << 20, &buf, &len))
		return 0;
	for (p = buf; (p = strstr(p, needle)); p++)
		n++;
	free(buf);
	return n;
}

static off_t size_of(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_size : -1;
}

int main(void)
{
	char dir[] = "/tmp/t_log.XXXXXX", path[256], old[256];
	int fd, saved = dup(STDERR_FILENO), saved_out = dup(STDOUT_FILENO);

	if (!mkdtemp(dir) || saved < 0 || saved_out < 0)
		return 1;
	snprintf(path, sizeof(path), "%s/supervisor.log", dir);
	snprintf(old, sizeof(old), "%s/supervisor.log.1", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
		return 1;
	close(fd);
	log_init("t_log", LOG_LVL_INFO);

	for (int i = 0; i < 100000; i++)
		log_ratelimited(LOG_LVL_WARN, "flood", "guest said %d", i);
	for (int i = 0; i < 5; i++)
		log_ratelimited(LOG_LVL_WARN, "other", "another kind %d", i);
	log_ratelimited(LOG_LVL_DEBUG, "flood", "below the level: not counted");

	fflush(stdout);
	if (log_rotate_stderr(dir, "supervisor.log"))	/* rotation points stdout at the log too */
		return 1;
	for (int i = 0; i < 30000; i++)
		log_msg(LOG_LVL_INFO, 0, "a line of about sixty bytes to fill the log, number %06d", i);

	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	dup2(saved_out, STDOUT_FILENO);
	close(saved);
	close(saved_out);
	is_int(count(path, "guest said") + count(old, "guest said"), LOG_RL_BURST,
	       "100000 rate-limited messages: %d printed", LOG_RL_BURST);
	is_int(count(path, "suppressed") + count(old, "suppressed"), 1, "... and one line says the rest are suppressed");
	is_int(count(path, "another kind") + count(old, "another kind"), 5, "another key has its own budget");
	ok(size_of(path) > 0 && size_of(path) <= LOG_FILE_MAX + 256, "supervisor.log stays under 1 MiB (%lld)",
	   (long long)size_of(path));
	ok(size_of(old) > LOG_FILE_MAX / 2, "the older lines are in supervisor.log.1 (%lld)", (long long)size_of(old));
	is_int(count(path, "log continued from"), 1, "the new file says where the log continued from");
	is_int(count(path, "number 029999"), 1, "the last line is in the new file");
	is_int(log_rotate_stderr(dir, "other.log"), 0, "stderr is not other.log: nothing to do");
	util_rm_rf(dir);
	return tap_done();
}

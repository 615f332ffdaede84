// SPDX-License-Identifier: MIT
#include "src/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *log_prog = "hutch";
static enum log_level log_level_cur = LOG_LVL_INFO;
static char log_vm[64];
static FILE *log_file;
static bool log_use_color;

void log_init(const char *prog, enum log_level level)
{
	log_prog = prog;
	log_level_cur = level;
}

void log_set_level(enum log_level level) { log_level_cur = level; }
enum log_level log_get_level(void) { return log_level_cur; }
void log_set_file(FILE *f) { log_file = f; }
void log_set_color(bool on) { log_use_color = on; }
bool log_color(void) { return log_use_color; }

void log_set_vm(const char *vm)
{
	if (!vm) {
		log_vm[0] = '\0';
		return;
	}
	log_escape(log_vm, sizeof(log_vm), vm, strlen(vm));
}

/* the file stderr writes to, when log_rotate_stderr() was asked to bound it */
static char log_rot_path[PATH_MAX];
static dev_t log_rot_dev;
static ino_t log_rot_ino;

static void log_rotate_check(void);

static void log_vmsg(enum log_level lvl, int errnum, const char *fmt, va_list ap)
{
	static const char *const tag[] = { "error", "warning", "", "debug" };
	static const char *const col[] = { "\033[1;31m", "\033[1;33m", "", "\033[2m" };
	FILE *f = log_file ? log_file : stderr;
	bool c = log_use_color && !log_file && lvl != LOG_LVL_INFO;
	int saved = errno;

	if (lvl > log_level_cur)
		return;
	if (log_file) {
		char ts[32];
		struct timespec now;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &now);
		gmtime_r(&now.tv_sec, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(f, "%s.%03ldZ ", ts, now.tv_nsec / 1000000);
	}
	fprintf(f, "%s", log_prog);
	if (log_vm[0])
		fprintf(f, " [%s]", log_vm);
	fputs(": ", f);
	if (tag[lvl][0])
		fprintf(f, "%s%s:%s ", c ? col[lvl] : "", tag[lvl], c ? "\033[0m" : "");
	vfprintf(f, fmt, ap);
	if (errnum)
		fprintf(f, ": %s", strerror(errnum < 0 ? -errnum : errnum));
	fputc('\n', f);
	fflush(f);
	if (log_rot_path[0] && !log_file)
		log_rotate_check();
	errno = saved;
}

int log_rotate_stderr(const char *dir, const char *name)
{
	struct stat fd_st, path_st;
	char path[PATH_MAX];
	int n;

	n = snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof(path) - 2)	/* room for ".1" */
		return -ENAMETOOLONG;
	if (fstat(STDERR_FILENO, &fd_st) < 0)
		return -errno;
	if (lstat(path, &path_st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISREG(fd_st.st_mode) || fd_st.st_dev != path_st.st_dev || fd_st.st_ino != path_st.st_ino)
		return 0;	/* stderr is something else: not ours to rotate */
	memcpy(log_rot_path, path, (size_t)n + 1);
	log_rot_dev = fd_st.st_dev;
	log_rot_ino = fd_st.st_ino;
	log_rotate_check();	/* a file grown by earlier runs */
	return 0;
}

/*
 * After each line: past LOG_FILE_MAX, rename the file to .1 and point
 * stdout and stderr at a new one.  fstat() sees QEMU's writes too (same
 * file, O_APPEND).  A failure is reported once and leaves the file as it is.
 */
static void log_rotate_check(void)
{
	char old[PATH_MAX + 2];
	struct stat st;
	int fd;

	if (fstat(STDERR_FILENO, &st) < 0 || st.st_dev != log_rot_dev || st.st_ino != log_rot_ino ||
	    st.st_size <= LOG_FILE_MAX)
		return;
	snprintf(old, sizeof(old), "%s.1", log_rot_path);	/* sized in log_rotate_stderr() */
	fd = -1;
	if (rename(log_rot_path, old) == 0)
		fd = open(log_rot_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || fstat(fd, &st) < 0) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		log_rot_path[0] = 0;	/* give up: never loop on a failing rotation */
		log_msg(LOG_LVL_WARN, e, "rotating the log file");
		return;
	}
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	close(fd);
	log_rot_dev = st.st_dev;
	log_rot_ino = st.st_ino;
	log_msg(LOG_LVL_INFO, 0, "log continued from %s (over %d bytes)", old, LOG_FILE_MAX);
}

/**
 * struct log_rl - the budget of one key
 * @start:      monotonic seconds when the current window began
 * @sent:       messages printed in it
 * @suppressed: messages dropped since the last summary
 */
struct log_rl {
	char key[32];
	uint64_t start;
	unsigned int sent;
	unsigned long suppressed;
};

static struct log_rl log_rl[LOG_RL_KEYS + 1];	/* the last one: every key that found no room */

static uint64_t log_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec;
}

static struct log_rl *log_rl_get(const char *key)
{
	for (size_t i = 0; i < LOG_RL_KEYS; i++) {
		if (!log_rl[i].key[0]) {
			snprintf(log_rl[i].key, sizeof(log_rl[i].key), "%s", key);
			return &log_rl[i];
		}
		if (!strncmp(log_rl[i].key, key, sizeof(log_rl[i].key) - 1))
			return &log_rl[i];
	}
	return &log_rl[LOG_RL_KEYS];
}

void log_ratelimited(enum log_level lvl, const char *key, const char *fmt, ...)
{
	struct log_rl *r;
	uint64_t now;
	va_list ap;

	if (lvl > log_level_cur)
		return;
	r = log_rl_get(key ? key : "");
	now = log_now_s();
	if (!r->start || now - r->start >= LOG_RL_WINDOW_S) {
		if (r->suppressed)
			log_msg(lvl, 0, "%lu messages (%s) were suppressed in the last %d s or more",
				r->suppressed, key, LOG_RL_WINDOW_S);
		r->start = now;
		r->sent = 0;
		r->suppressed = 0;
	}
	if (r->sent >= LOG_RL_BURST) {
		r->suppressed++;
		return;
	}
	va_start(ap, fmt);
	log_vmsg(lvl, 0, fmt, ap);
	va_end(ap);
	if (++r->sent == LOG_RL_BURST)
		log_msg(lvl, 0, "more messages like this one (%s) suppressed for up to %d s", key,
			LOG_RL_WINDOW_S);
}

void log_msg(enum log_level lvl, int errnum, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(lvl, errnum, fmt, ap);
	va_end(ap);
}

void die(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LVL_ERR, 0, fmt, ap);
	va_end(ap);
	exit(code);
}

char *log_escape(char *dst, size_t dstsz, const char *src, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, i;

	if (!dstsz)
		return dst;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)src[i];
		size_t need = (ch >= 0x20 && ch < 0x7f && ch != '\\') ? 1 : (ch == '\\' ? 2 : 4);

		if (o + need + 4 > dstsz) {	/* keep room for "..." and NUL */
			if (dstsz >= 4) {
				o = o < dstsz - 4 ? o : dstsz - 4;
				memcpy(dst + o, "...", 3);
				o += 3;
			}
			break;
		}
		if (need == 1) {
			dst[o++] = (char)ch;
		} else if (need == 2) {
			dst[o++] = '\\';
			dst[o++] = '\\';
		} else {
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[ch >> 4];
			dst[o++] = hex[ch & 15];
		}
	}
	dst[o < dstsz ? o : dstsz - 1] = '\0';
	return dst;
}

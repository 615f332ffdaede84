// SPDX-License-Identifier: MIT
#include "src/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
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
	errno = saved;
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

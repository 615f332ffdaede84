/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_LOG_H
#define HUTCH_LOG_H
/**
 * DOC: log - the one way hutch prints messages
 *
 * Messages go to stderr (or the supervisor's log file), prefixed with the
 * program and, once set, the VM's name.  Machine-readable results never go
 * through here: they are written to stdout by the verbs.  Guest-controlled
 * strings must pass through log_escape() before they are printed, so a
 * hostile guest cannot inject terminal escapes into the user's terminal.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum log_level { LOG_LVL_ERR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

void log_init(const char *prog, enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
void log_set_vm(const char *vm);
void log_set_file(FILE *f);
void log_set_color(bool on);
bool log_color(void);

void log_msg(enum log_level lvl, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_err(...)   log_msg(LOG_LVL_ERR, 0, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, 0, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, 0, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, 0, __VA_ARGS__)
/* @rc is a negative errno as returned by hutch functions, or a positive errno */
#define log_errno(rc, ...)  log_msg(LOG_LVL_ERR, (rc), __VA_ARGS__)
#define log_warno(rc, ...)  log_msg(LOG_LVL_WARN, (rc), __VA_ARGS__)

/**
 * die() - print an error and exit; only before a supervisor's loop runs
 * @code: exit status (see the EXIT_* values in util.h)
 */
_Noreturn void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/**
 * log_escape() - make untrusted bytes printable
 * @dst:   output buffer, always NUL-terminated when @dstsz > 0
 * @dstsz: its size
 * @src:   bytes to escape (guest console, QMP strings, HTTP headers)
 * @n:     how many
 *
 * Control bytes and non-ASCII become \xNN.  Output that does not fit ends
 * with "..." so truncation is visible, never silent.
 *
 * Return: @dst
 */
char *log_escape(char *dst, size_t dstsz, const char *src, size_t n);

#endif

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

/*
 * Messages a guest can cause (a DHCP frame, a DNS query, a forward's
 * connection) go through log_ratelimited(): a guest sending a million
 * DHCPDECLINEs must not write a million lines.  Each key gets LOG_RL_BURST
 * messages per LOG_RL_WINDOW_S seconds; past that one line says that more
 * are suppressed, and the first message of a later window says how many were.
 */
#define LOG_RL_BURST    10
#define LOG_RL_WINDOW_S 60
#define LOG_RL_KEYS     32

/**
 * log_ratelimited() - log_msg() with a budget per @key
 * @key: names the kind of message ("dhcp-decline"); keys are compared by
 *       content, at most LOG_RL_KEYS distinct ones (the rest share one budget)
 */
void log_ratelimited(enum log_level lvl, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * The supervisor's stderr is its log file (supervisor.log, which QEMU's
 * output joins).  Like console.log it is bounded: past LOG_FILE_MAX bytes
 * it becomes <name>.1 (replacing the previous one) and a new file is opened
 * onto stdout and stderr.  QEMU keeps writing to the file it was given.
 */
#define LOG_FILE_MAX (1024 * 1024)

/**
 * log_rotate_stderr() - keep stderr, which is @dir/@name, under LOG_FILE_MAX
 *
 * Does nothing (returns 0) when stderr is not that file (a terminal, a pipe).
 * Return: 0, or a negative errno
 */
int log_rotate_stderr(const char *dir, const char *name);

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

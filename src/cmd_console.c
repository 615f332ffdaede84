// SPDX-License-Identifier: MIT
/*
 * `hutch console`: attach the terminal to the guest's serial console
 * through the supervisor's console.sock.  Ctrl-] leaves; the VM goes on.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "src/cmd.h"
#include "src/log.h"
#include "src/util.h"
#include "src/vm.h"

static struct termios console_saved;
static bool console_raw;

static void console_restore(void)
{
	if (console_raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &console_saved);
	console_raw = false;
}

static void console_make_raw(void)
{
	struct termios raw;

	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &console_saved))
		return;
	raw = console_saved;
	cfmakeraw(&raw);
	if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0) {
		console_raw = true;
		atexit(console_restore);
	}
}

/* stdin to the guest, its output to stdout, until Ctrl-] or the VM stops */
static void console_loop(int fd)
{
	bool in_open = true;

	for (;;) {
		struct pollfd p[2] = { { .fd = fd, .events = POLLIN },
				       { .fd = in_open ? STDIN_FILENO : -1, .events = POLLIN } };
		char buf[4096], *esc;
		ssize_t r;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		if (p[0].revents) {
			r = read(fd, buf, sizeof(buf));
			if (r <= 0 || util_write_all(STDOUT_FILENO, buf, (size_t)r))
				return;	/* the VM stopped */
		}
		if (!p[1].revents)
			continue;
		r = read(STDIN_FILENO, buf, sizeof(buf));
		if (r <= 0) {
			in_open = false;	/* keep showing output */
			continue;
		}
		esc = memchr(buf, 0x1d, (size_t)r);	/* Ctrl-] */
		if (esc) {
			if (esc > buf)
				util_write_all(fd, buf, (size_t)(esc - buf));
			return;
		}
		if (util_write_all(fd, buf, (size_t)r))
			return;
	}
}

int cmd_console_attach(const char *vm_dir, const char *name)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, rc;

	if ((rc = vm_sock_path(vm_dir, "console.sock", sa.sun_path, sizeof(sa.sun_path)))) {
		log_errno(rc, "console.sock");
		return EXIT_ERR;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		log_err("%s is not running (no console)", name);
		if (fd >= 0)
			close(fd);
		return EXIT_ERR;
	}
	console_make_raw();
	fprintf(stderr, "hutch: connected to %s's console; Ctrl-] leaves%s", name,
		console_raw ? "\r\n" : "\n");
	console_loop(fd);
	console_restore();
	fprintf(stderr, "\nhutch: left the console\n");
	close(fd);
	return EXIT_OK;
}

static int cmd_console(struct cli *cli, struct vm_target *t, int argc, char **argv)
{
	(void)cli;
	(void)argv;
	if (argc > 1)
		return cmd_usage(&cmd_console_entry);
	return cmd_console_attach(t->dir, t->name);
}

const struct cmd_entry cmd_console_entry = {
	.name = "console",
	.usage = "[NAME]",
	.summary = "attach to the serial console (Ctrl-] leaves)",
	.help = "Connects your terminal to the guest's serial console: the last 16 KiB of its\n"
		"output first, then live. What you type goes to the guest. Ctrl-] leaves the\n"
		"console; the VM keeps running. Several consoles may be attached at once.\n"
		"\n"
		"Example:\n"
		"  hutch console\n",
	.flags = CMD_F_VM,
	.fn = cmd_console,
};

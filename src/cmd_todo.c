// SPDX-License-Identifier: MIT
/*
 * Weak stubs for verbs that no module implements yet.  A module defines the
 * strong cmd_<verb>() in its own file and the linker takes that one.
 */
#include "src/cmd.h"
#include "src/log.h"
#include "src/util.h"

int cmd_not_implemented(const char *verb)
{
	log_err("'%s' is not implemented in this version of hutch", verb);
	return EXIT_ERR;
}

__attribute__((weak)) int cmd_up(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argc;
	return cmd_not_implemented(argv[0]);
}

__attribute__((weak)) int cmd_halt(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argc;
	return cmd_not_implemented(argv[0]);
}

__attribute__((weak)) int cmd_destroy(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argc;
	return cmd_not_implemented(argv[0]);
}

__attribute__((weak)) int cmd_status(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argc;
	return cmd_not_implemented(argv[0]);
}

__attribute__((weak)) int cmd_provision(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argc;
	return cmd_not_implemented(argv[0]);
}

__attribute__((weak)) int cmd_suspend(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argc;
	return cmd_not_implemented(argv[0]);
}

__attribute__((weak)) int cmd_resume(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argc;
	return cmd_not_implemented(argv[0]);
}

__attribute__((weak)) int cmd_ssh(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argc;
	return cmd_not_implemented(argv[0]);
}

__attribute__((weak)) int cmd_ssh_config(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argc;
	return cmd_not_implemented(argv[0]);
}

__attribute__((weak)) int cmd_console(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argc;
	return cmd_not_implemented(argv[0]);
}

__attribute__((weak)) int cmd_ip(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argc;
	return cmd_not_implemented(argv[0]);
}

__attribute__((weak)) int cmd_pubkey(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argc;
	return cmd_not_implemented(argv[0]);
}

__attribute__((weak)) int cmd_mount(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argc;
	return cmd_not_implemented(argv[0]);
}

__attribute__((weak)) int cmd_unmount(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argc;
	return cmd_not_implemented(argv[0]);
}

__attribute__((weak)) int cmd_logs(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argc;
	return cmd_not_implemented(argv[0]);
}

__attribute__((weak)) int cmd_setup(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argc;
	return cmd_not_implemented(argv[0]);
}

__attribute__((weak)) int cmd_list(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argc;
	return cmd_not_implemented(argv[0]);
}

__attribute__((weak)) int cmd_images(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argc;
	return cmd_not_implemented(argv[0]);
}

__attribute__((weak)) int cmd_gc(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argc;
	return cmd_not_implemented(argv[0]);
}

__attribute__((weak)) int cmd_wg(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argc;
	return cmd_not_implemented(argv[0]);
}

__attribute__((weak)) int cmd_inspect(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argc;
	return cmd_not_implemented(argv[0]);
}

__attribute__((weak)) int cmd_completion(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argc;
	return cmd_not_implemented(argv[0]);
}

__attribute__((weak)) int cmd_check_config(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argc;
	return cmd_not_implemented(argv[0]);
}

__attribute__((weak)) int cmd_supervise(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argc;
	return cmd_not_implemented(argv[0]);
}

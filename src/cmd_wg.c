// SPDX-License-Identifier: MIT
/*
 * `hutch wg [--json] [NAME]`: the VM's WireGuard tunnel as it is now.
 * state.json "wg" (net/wg_sv.c) says which interface and implementation;
 * the live values (handshake, bytes) come from the tunnel itself and the
 * kill switch's counters from nftables, both read as root while the VM runs.
 */
#include <stdio.h>

#include "net/wg_sv.h"
#include "src/cmd.h"
#include "src/log.h"
#include "src/util.h"
#include "src/vm.h"

static const char wg_help[] =
	"Shows the WireGuard tunnel of the VM (projects with a wireguard.conf): its\n"
	"interface (hw-<id>), the implementation in use (kernel or wireguard-go),\n"
	"its status (up, idle, connecting, down and why), the peer's public key and\n"
	"endpoint, the latest handshake, bytes received and sent, and the packets\n"
	"the kill switch dropped because they would have left outside the tunnel.\n"
	"Exit 78 when the VM has no tunnel (no wireguard.conf, or it never started).\n"
	"\n"
	"Options:\n"
	"  --json   one JSON object on stdout\n"
	"\n"
	"Examples:\n"
	"  hutch wg\n"
	"  hutch wg --json | jq .latest_handshake\n";

static int cmd_wg(struct cli *cli, struct vm_target *t, int argc, char **argv)
{
	json_t *o;

	(void)argv;
	if (argc > 1)
		return cmd_usage(&cmd_wg_entry);
	if (!t->state) {
		log_err("this VM was never created");
		return EXIT_NOSETUP;
	}
	o = wg_status_json(t->state, t->alive);
	if (!o) {
		log_err("this VM has no WireGuard tunnel (the project has no wireguard.conf, or the "
			"VM has not been started with one)");
		return EXIT_NOSETUP;
	}
	if (cli->json)
		return cmd_print_json(o) ? EXIT_ERR : EXIT_OK;
	wg_status_print(stdout, o);
	json_decref(o);
	return fflush(stdout) ? EXIT_ERR : EXIT_OK;
}

const struct cmd_entry cmd_wg_entry = {
	.name = "wg",
	.usage = "[NAME]",
	.summary = "WireGuard tunnel of the VM: peer, handshake, bytes, kill switch",
	.help = wg_help,
	.flags = CMD_F_VM,
	.fn = cmd_wg,
};

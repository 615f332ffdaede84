// SPDX-License-Identifier: MIT
/*
 * `hutch wg [--json] [NAME]`: the VM's WireGuard tunnel as it is now.
 * state.json "wg" (net/wg_sv.c) says which interface and implementation;
 * the live values (handshake, bytes) come from the tunnel itself and the
 * kill switch's counters from nftables, both read as root while the VM runs.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "net/wg_sv.h"
#include "src/cfg.h"
#include "src/cmd.h"
#include "src/log.h"
#include "src/state.h"
#include "src/util.h"
#include "src/vm.h"

static const char wg_help[] =
	"usage: hutch wg [--json] [NAME]\n"
	"\n"
	"Show the WireGuard tunnel of the VM (projects with a wireguard.conf): its\n"
	"interface (hw-<id>), the implementation in use (kernel or wireguard-go),\n"
	"its status (up, idle, connecting, down and why), the peer's public key and\n"
	"endpoint, the latest handshake, bytes received and sent, and the packets\n"
	"the kill switch dropped because they would have left outside the tunnel.\n"
	"\n"
	"Options:\n"
	"  --json   one JSON object on stdout\n"
	"\n"
	"Exit codes: 0 ok; 1 error; 2 usage; 78 the VM has no tunnel (no\n"
	"wireguard.conf, or it never started).\n"
	"\n"
	"Examples:\n"
	"  hutch wg\n"
	"  hutch wg --json | jq .latest_handshake\n";

/* the VM's directory and name: NAME, or the first VM of the project's hutch.yaml */
static int wg_target(struct cli *cli, const char *name, char *dir, size_t n)
{
	struct cfg_error e = { { 0 } };
	char path[PATH_MAX];
	struct cfg *cfg = NULL;
	const struct cfg_vm *vm;
	int rc;

	if (name) {
		if (!util_name_valid(name)) {
			log_err("'%s' is not a VM name", name);
			return EXIT_USAGE;
		}
		return util_vm_dir(name, dir, n) ? EXIT_ERR : EXIT_OK;
	}
	if ((rc = util_path_join(path, sizeof(path), cli->dir, "hutch.yaml")) ||
	    (rc = cfg_load(path, &cfg, &e))) {
		log_err("%s", e.msg[0] ? e.msg : "no hutch.yaml here: give the VM's NAME or use -C DIR");
		return EXIT_USAGE;
	}
	vm = cfg_find_vm(cfg, NULL);
	rc = vm ? util_vm_dir(vm->name, dir, n) : -ENOENT;
	if (vm)
		log_set_vm(vm->name);
	cfg_free(cfg);
	return rc ? EXIT_ERR : EXIT_OK;
}

int cmd_wg(struct cli *cli, int argc, char **argv)
{
	const char *name = NULL;
	char dir[PATH_MAX];
	bool json = cli->json;
	json_t *st = NULL, *o;
	int i, rc;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(wg_help, stdout);
			return EXIT_OK;
		} else if (argv[i][0] == '-' || name) {
			log_err("wg: unexpected argument '%s'; usage: hutch wg [--json] [NAME]", argv[i]);
			return EXIT_USAGE;
		} else {
			name = argv[i];
		}
	}
	if ((rc = wg_target(cli, name, dir, sizeof(dir))))
		return rc;
	rc = state_load(dir, &st);
	if (rc == -ENOENT) {
		log_err("this VM was never created");
		return EXIT_NOSETUP;
	}
	if (rc) {
		log_errno(rc, "%s/state.json", dir);
		return EXIT_ERR;
	}
	o = wg_status_json(st, vm_supervisor_alive(dir, st));
	json_decref(st);
	if (!o) {
		log_err("this VM has no WireGuard tunnel (the project has no wireguard.conf, or the "
			"VM has not been started with one)");
		return EXIT_NOSETUP;
	}
	if (json) {
		json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
	} else {
		wg_status_print(stdout, o);
	}
	json_decref(o);
	return fflush(stdout) ? EXIT_ERR : EXIT_OK;
}

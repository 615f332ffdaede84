// SPDX-License-Identifier: MIT
/*
 * fuzz_snap: the snapshot and warm-start parsers of untrusted bytes.
 *
 * The first byte picks the target: 0 snapshots/index.json
 * (snap_index_parse(), then every reader of an entry), 1 a control.sock
 * "save" line (warm_ctl_name()), 2 and 3 the monitor's replies to
 * query-migrate and query-block (the QMP stream after a valid greeting and
 * capabilities reply; the peer's end is shut after the bytes, so every wait
 * ends with EOF).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qmp/qmp.h"
#include "src/log.h"
#include "src/snap.h"
#include "src/warm.h"

static const char prefix[] =
	"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, "
	"\"package\": \"\"}, \"capabilities\": []}}\r\n{\"return\": {}, \"id\": 1}\r\n";

static void fuzz_index(const char *p, size_t n)
{
	json_t *idx = NULL, *it;
	const char *k;

	if (snap_index_parse(p, n, &idx))
		return;
	json_object_foreach(json_object_get(idx, "items"), k, it) {
		char path[256];

		(void)snap_item_kind(it);
		(void)snap_path("/vm", k, "qcow2", path, sizeof(path));
	}
	(void)snap_item(idx, json_string_value(json_object_get(idx, "resume")) ?: "x");
	json_decref(idx);
}

static void fuzz_qmp_reply(const uint8_t *p, size_t n, bool block)
{
	struct qmp_migrate_info mi;
	struct qmp *q = NULL;
	char dev[64];
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return;
	if (send(sv[1], prefix, sizeof(prefix) - 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 ||
	    (n && send(sv[1], p, n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)) {
		close(sv[0]);
		close(sv[1]);
		return;
	}
	shutdown(sv[1], SHUT_WR);
	if (qmp_open_fd(sv[0], 1000, &q) == 0) {
		if (block)
			(void)qmp_block_device(q, "/vm/disk.qcow2", dev, sizeof(dev), 1000);
		else
			(void)qmp_query_migrate(q, &mi, 1000);
		qmp_close(q);
	} else {
		close(sv[0]);
	}
	close(sv[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	char name[SNAP_NAME_MAX + 1];

	if (!devnull) {
		devnull = fopen("/dev/null", "w");
		log_init("fuzz_snap", LOG_LVL_DEBUG);
		log_set_file(devnull);
	}
	if (size < 1)
		return 0;
	switch (data[0] & 3) {
	case 0:
		fuzz_index((const char *)data + 1, size - 1);
		break;
	case 1:
		(void)warm_ctl_name((const char *)data + 1, size - 1, name, sizeof(name));
		break;
	default:
		fuzz_qmp_reply(data + 1, size - 1, data[0] & 1);
		break;
	}
	return 0;
}

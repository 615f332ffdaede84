// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/state.h"
#include "src/util.h"
#include "tests/unit/tap.h"

int main(void)
{
	char dir[] = "/tmp/t_state.XXXXXX", path[256];
	json_t *st, *back = NULL;
	struct stat sb;
	char *big;

	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/state.json", dir);

	is_int(state_load(dir, &back), -ENOENT, "no state.json: -ENOENT");

	st = json_pack("{s:s, s:s, s:I, s:{s:s}}", "name", "a", "status", "running", "qemu_pid",
		       (json_int_t)1234, "net", "ip", "10.77.0.2");
	is_int(state_save(dir, st), 0, "save");
	ok(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600, "state.json is mode 0600");
	is_int(state_load(dir, &back), 0, "load back");
	ok(back && json_equal(st, back), "round trip keeps every key");
	ok(back && !strcmp(state_get_str(back, "status"), "running"), "get_str");
	ok(back && state_get_int(back, "qemu_pid", -1) == 1234, "get_int");
	ok(back && state_get_int(back, "status", -7) == -7, "get_int on a string: default");
	ok(back && state_get_str(back, "qemu_pid") == NULL, "get_str on a number: NULL");
	ok(back && state_get_str(back, "missing") == NULL, "get_str missing: NULL");
	ok(state_get_str(NULL, "x") == NULL && state_get_int(NULL, "x", 5) == 5, "NULL object is safe");
	json_decref(back);
	back = NULL;

	util_write_atomic(path, "[1,2]", 5, 0600);
	is_int(state_load(dir, &back), -EBADMSG, "an array is refused");
	util_write_atomic(path, "{\"a\":", 5, 0600);
	is_int(state_load(dir, &back), -EBADMSG, "truncated JSON is refused");
	util_write_atomic(path, "{\"a\":1,\"a\":2}", 13, 0600);
	is_int(state_load(dir, &back), -EBADMSG, "duplicate keys are refused");

	big = malloc(STATE_MAX_BYTES + 10);
	memset(big, ' ', STATE_MAX_BYTES + 10);
	big[0] = '{';
	big[STATE_MAX_BYTES + 9] = '}';
	util_write_atomic(path, big, STATE_MAX_BYTES + 10, 0600);
	is_int(state_load(dir, &back), -EFBIG, "over the size cap: -EFBIG");

	memset(big, 'x', STATE_MAX_BYTES);
	big[STATE_MAX_BYTES] = 0;
	json_object_set_new(st, "huge", json_string(big));
	is_int(state_save(dir, st), -EFBIG, "saving more than the cap is refused");
	free(big);
	{
		json_t *arr = json_array();

		is_int(state_save(dir, arr), -EINVAL, "saving a non-object is refused");
		json_decref(arr);
	}
	json_decref(st);

	util_rm_rf(dir);
	return tap_done();
}

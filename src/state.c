// SPDX-License-Identifier: MIT
/*
 * state.json: one JSON object per VM.  The file lives in a directory the
 * guest cannot write, but it is still parsed as untrusted input (size cap,
 * object check) because a corrupted or hand-edited file must not crash the
 * CLI or the supervisor.
 */
#include "src/state.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "src/util.h"

/**
 * state_load() - read <@vm_dir>/state.json
 * @vm_dir: the VM's directory
 * @out:    set to a new reference to the object; the caller json_decref()s it
 *
 * Return: 0; -ENOENT without a file; -EFBIG over STATE_MAX_BYTES; -EBADMSG
 * when it is not a JSON object.
 */
int state_load(const char *vm_dir, json_t **out)
{
	char path[PATH_MAX];
	json_error_t je;
	size_t len;
	char *buf;
	json_t *j;
	int rc;

	rc = util_path_join(path, sizeof(path), vm_dir, "state.json");
	if (rc)
		return rc;
	rc = util_read_file(path, STATE_MAX_BYTES, &buf, &len);
	if (rc)
		return rc;
	j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	free(buf);
	if (!j)
		return -EBADMSG;
	if (!json_is_object(j)) {
		json_decref(j);
		return -EBADMSG;
	}
	*out = j;
	return 0;
}

/**
 * state_save() - write @st atomically as <@vm_dir>/state.json, mode 0600
 * Return: 0, -EFBIG when the serialisation exceeds STATE_MAX_BYTES (a file we
 * would refuse to read back), or an errno from writing
 */
int state_save(const char *vm_dir, const json_t *st)
{
	char path[PATH_MAX];
	char *s;
	size_t n;
	int rc;

	if (!json_is_object(st))
		return -EINVAL;
	rc = util_path_join(path, sizeof(path), vm_dir, "state.json");
	if (rc)
		return rc;
	s = json_dumps(st, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (!s)
		return -ENOMEM;
	n = strlen(s);
	if (n + 1 > STATE_MAX_BYTES) {
		free(s);
		return -EFBIG;
	}
	s[n] = '\n';	/* replaces the NUL: written with its length */
	rc = util_write_atomic(path, s, n + 1, 0600);
	free(s);
	return rc;
}

const char *state_get_str(const json_t *st, const char *key)
{
	json_t *v = json_object_get(st, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

long long state_get_int(const json_t *st, const char *key, long long dflt)
{
	json_t *v = json_object_get(st, key);

	return json_is_integer(v) ? (long long)json_integer_value(v) : dflt;
}

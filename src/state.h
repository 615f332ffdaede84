/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_STATE_H
#define HUTCH_STATE_H
/**
 * DOC: state - state.json of one VM (keys: see src/ext.h)
 *
 * Written atomically (temp file + rename) so a reader never sees half a
 * file.  state.json is untrusted input like any other file: it is size
 * capped and parsed with jansson, and values are type-checked by readers.
 */
#include <jansson.h>
#include <stdbool.h>

#define STATE_MAX_BYTES (256 * 1024)

/** state_load() - read <@vm_dir>/state.json; -ENOENT when there is none */
int state_load(const char *vm_dir, json_t **out);
/** state_save() - write <@vm_dir>/state.json atomically, mode 0600 */
int state_save(const char *vm_dir, const json_t *st);
/** state_get_str() - a string member, or NULL when missing or not a string */
const char *state_get_str(const json_t *st, const char *key);
/** state_get_int() - an integer member, or @dflt */
long long state_get_int(const json_t *st, const char *key, long long dflt);

#endif

/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_CONSENT_H
#define HUTCH_CONSENT_H
/**
 * DOC: consent - a project's code runs on the host only after `hutch allow`
 *
 * hutch.yaml is data, but a project also carries code that runs on the host
 * as the user: everything in hooks/, playbook.yml (a `hosts: localhost` play, a lookup,
 * a filter plugin), the project's ansible.cfg, and the folders Ansible loads
 * beside the playbook (roles/, library/, the plugin folders, group_vars/, ...).  A
 * cloned repository must not get to run any of it just because the user
 * typed `hutch up`.  So, as with `direnv allow`, the user first allows it:
 * `hutch allow` lists those files and records their sha256 in
 * $XDG_DATA_HOME/hutch/consent/<sha256 of the project path>.json.  `up`,
 * `provision` and every hook run check the files against that record; a
 * new or changed file is refused with the list of what would run (exit 77),
 * or asked about on a terminal, or allowed by --yes.  A file removed since
 * is fine: less code runs.
 *
 * Every file is reached as trust.h says (no symlink, inside the project,
 * a regular file owned by the user), and what is hashed is what was
 * opened.  Bounded: at most CONSENT_MAX_FILES files and CONSENT_MAX_BYTES
 * in all; a project with more is refused rather than half-reviewed.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CONSENT_MAX_FILES 4096
#define CONSENT_MAX_BYTES (256ull << 20)
#define CONSENT_MAX_DEPTH 16

/** enum consent_state - a file against the record */
enum consent_state { CONSENT_SAME, CONSENT_NEW, CONSENT_CHANGED };

/** struct consent_item - one file of the project's host-side code */
struct consent_item {
	char *rel;		/* path below the project dir ("hooks/pre-up") */
	char sha256[65];
	enum consent_state state;
};

/** struct consent_set - every such file, sorted by path; free with consent_set_free() */
struct consent_set {
	struct consent_item *items;
	size_t n;
	bool allowed;		/* consent_compare(): nothing new or changed */
};

/**
 * consent_covers() - @rel (a path below @project_dir) is, or lies in, code
 * that consent covers; such a place must never be a shared folder
 */
bool consent_covers(const char *project_dir, const char *rel);

/**
 * consent_scan() - find and hash the project's host-side code
 * @why: the reason on -EPERM (a symlink, a FIFO, a file of someone else's, too much)
 * Return: 0, -EPERM, or an errno
 */
int consent_scan(const char *project_dir, struct consent_set *out, char *why, size_t whyn);

void consent_set_free(struct consent_set *s);

/** consent_compare() - set each item's state and @s->allowed from the record */
int consent_compare(const char *project_dir, struct consent_set *s);

/** consent_record() - record @s as allowed for @project_dir (atomically, 0600) */
int consent_record(const char *project_dir, const struct consent_set *s);

/** consent_revoke() - forget the record; a missing one is fine */
int consent_revoke(const char *project_dir);

/** consent_print() - the list, one "  STATE  PATH" line each, to @f */
void consent_print(FILE *f, const struct consent_set *s);

/**
 * consent_require() - go on only if the project's code is allowed
 * @yes:  --yes was given: record consent without asking
 * @verb: for the messages ("up", "provision")
 *
 * Nothing to run, or all of it recorded: 0.  Otherwise the list is shown;
 * with @yes, or a "y" typed on a terminal, it is recorded and 0 returned;
 * else -EPERM (the caller exits 77) with how to allow it.
 */
int consent_require(const char *project_dir, bool yes, const char *verb);

/**
 * consent_verify() - like consent_require() but never asks: for the moment
 * just before a hook or the playbook runs
 * Return: 0, -EPERM (logged, with the list), or an errno
 */
int consent_verify(const char *project_dir);

#endif

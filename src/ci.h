/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_CI_H
#define HUTCH_CI_H
/**
 * DOC: ci - cloud-init user-data for a new VM
 *
 * The user's cloud-init.yml is passed through as it is, with
 * __HUTCH_PUBKEY__ replaced by the public key hutch connects with.  What
 * hutch itself must give the guest (the pinned SSH host key, the fstab
 * entries of the shared folders) goes into a second part of a MIME
 * multipart document, with a merge_how that appends lists and merges dicts
 * without replacing what the user wrote.  Without a cloud-init.yml hutch
 * writes one sensible #cloud-config: one sudo user with the key.
 *
 * cloud-init.yml is read with libyaml only to learn the SSH user (first
 * entry of users:), whether it carries keys, whether it has its own
 * mounts:, and which key lines have the comment "hutch" (checked against
 * ~/.ssh/hutch.pub before up).  The file is the user's, but it is still
 * bytes from outside: sizes, depth and event counts are capped, and the
 * parser has a fuzz target (tests/fuzz/fuzz_ci_user.c).
 */
#include <stdbool.h>
#include <stddef.h>

#define CI_USER_MAX      (1024 * 1024)	/* cloud-init.yml size cap */
#define CI_USERNAME_MAX  32
#define CI_KEYLINE_MAX   16384		/* one "ssh-ed25519 AAAA... comment" line */
#define CI_HUTCH_KEYS_MAX 8
#define CI_PLACEHOLDER   "__HUTCH_PUBKEY__"

enum ci_kind {
	CI_KIND_CLOUD_CONFIG,	/* "#cloud-config": YAML, parsed */
	CI_KIND_OTHER,		/* "#!", "#cloud-boothook", ...: passed through as its own part */
};

/**
 * struct ci_info - what hutch learns from cloud-init.yml
 * @kind:            cloud-config or another user-data type
 * @user:            first user of users: ("" when none)
 * @has_placeholder: the text contains __HUTCH_PUBKEY__
 * @has_keys:        the guest will get SSH keys (placeholder, a key line,
 *                   or ssh_authorized_keys), so hutch waits for SSH
 * @has_mounts:      top-level mounts: present (hutch then adds none)
 * @n_hutch_keys:    number of key lines with the comment "hutch"
 * @hutch_keys:      those lines ("type base64", comment dropped)
 */
struct ci_info {
	enum ci_kind kind;
	char user[CI_USERNAME_MAX + 1];
	bool has_placeholder;
	bool has_keys;
	bool has_mounts;
	size_t n_hutch_keys;
	char hutch_keys[CI_HUTCH_KEYS_MAX][CI_KEYLINE_MAX];
};

/**
 * ci_parse() - learn what hutch needs from a cloud-init.yml
 * @buf: the file's bytes (need not be NUL-terminated)
 * @len: their number, at most CI_USER_MAX
 * @out: filled on success
 *
 * Return: 0, -EFBIG over the cap, -EINVAL for YAML that libyaml refuses or
 * that exceeds the depth/event caps (the message is logged), -ENOMEM.
 */
int ci_parse(const char *buf, size_t len, struct ci_info *out);

/**
 * ci_key_same() - two OpenSSH public key lines name the same key
 * (type and base64 equal; comments ignored)
 */
bool ci_key_same(const char *a, const char *b);

/** ci_key_valid() - @s is one OpenSSH public key line ("type base64 [comment]") */
bool ci_key_valid(const char *s);

/**
 * ci_header_known() - @s starts with a header cloud-init acts on: #cloud-config,
 * #! (a script), another "#..." type it knows, or a MIME "Content-Type:".
 * Anything else is not user-data: `up` refuses it rather than hand the guest
 * bytes that may not be meant for it.
 */
bool ci_header_known(const char *s, size_t n);

/** ci_username_valid() - [a-z_][a-z0-9_-]{0,31}, as useradd accepts */
bool ci_username_valid(const char *s);

/** ci_default_user() - ssh user when nothing names one: $USER if valid and not root, else "hutch" */
void ci_default_user(char *buf, size_t n);

/** struct ci_mount - one shared folder to mount in the guest */
struct ci_mount {
	const char *tag;
	const char *guest;
};

/**
 * struct ci_input - everything the user-data is made of
 * @user_file:   cloud-init.yml bytes, or NULL for hutch's default
 * @user_len:    their length
 * @info:        ci_parse() of @user_file (ignored when @user_file is NULL)
 * @pubkey:      the public key line hutch logs in with (replaces the placeholder)
 * @user:        the SSH user of the default user-data
 * @host_priv:   the VM's ed25519 host private key (OpenSSH PEM text)
 * @host_pub:    its public key line
 * @mounts:      shared folders; @n_mounts of them
 */
struct ci_input {
	const char *user_file;
	size_t user_len;
	const struct ci_info *info;
	const char *pubkey;
	const char *user;
	const char *host_priv;
	const char *host_pub;
	const struct ci_mount *mounts;
	size_t n_mounts;
};

/**
 * ci_render() - make the user-data
 * @in:   see struct ci_input
 * @out:  set to a malloc'd NUL-terminated document; the caller frees it
 * @lenp: its length
 *
 * Return: 0, -EINVAL for unusable input (a key or path with a newline),
 * -ENOMEM, -E2BIG past the cap.
 */
int ci_render(const struct ci_input *in, char **out, size_t *lenp);

#endif

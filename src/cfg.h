/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_CFG_H
#define HUTCH_CFG_H
/**
 * DOC: cfg - hutch.yaml, loaded with libyaml into a typed config
 *
 * Every key of SPEC.md is parsed and validated here, even those whose
 * feature lives in another module, so a typo fails at load time with
 * "file:line:col: message" (and a "did you mean" for unknown keys) instead
 * of being ignored.  A file either holds one VM at the top level, or a
 * `vms:` list of VMs; top-level keys beside `vms:` are defaults for each.
 * Relative paths are resolved against the directory of hutch.yaml.
 *
 * Resolved values, as the rest of hutch can rely on them: every path is
 * absolute and normalised lexically (a leading ~/ is $HOME); image is an
 * alias, an https:// URL or such a path, and NULL only when kernel: is
 * given without image: (a direct kernel boot needs no disk); there is no
 * shared folder unless shared_folders: lists one; a share's host folder is
 * never the project directory nor one above it; every path lies inside
 * the project directory or in a place the user's own config allows
 * (struct cfg_user), checked by trust_check(); strings hold no control
 * characters and no Jinja markers ("{{", "{%", "{#").
 */
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#define CFG_NAME_MAX 31

enum cfg_accel { CFG_ACCEL_AUTO, CFG_ACCEL_KVM, CFG_ACCEL_TCG };
enum cfg_firmware { CFG_FW_BIOS, CFG_FW_UEFI };
enum cfg_net_mode { CFG_NET_NAT, CFG_NET_USER, CFG_NET_NONE };
enum cfg_autoconnect { CFG_AUTO_NONE, CFG_AUTO_SSH, CFG_AUTO_CONSOLE };
enum cfg_key_kind { CFG_KEY_MANAGED, CFG_KEY_GENERATED, CFG_KEY_PATH };
enum cfg_proto { CFG_PROTO_TCP, CFG_PROTO_UDP };
enum cfg_ha_kind { CFG_HA_HOST_PORT, CFG_HA_LAN_HOST };

/** struct cfg_host_access - one `host_access` exception */
struct cfg_host_access {
	enum cfg_ha_kind kind;
	enum cfg_proto proto;	/* CFG_HA_HOST_PORT */
	uint16_t port;		/* CFG_HA_HOST_PORT */
	struct in_addr addr;	/* CFG_HA_LAN_HOST */
};

/** struct cfg_forward - "tcp/8080:80": host 127.0.0.1:@host_port -> guest :@guest_port */
struct cfg_forward {
	enum cfg_proto proto;
	uint16_t host_port;
	uint16_t guest_port;
};

/** struct cfg_share - one shared folder */
struct cfg_share {
	char *host;		/* absolute path of the host folder */
	char *guest;		/* absolute path in the guest */
	char *tag;		/* virtiofs tag; default: base name of @host */
	unsigned size_gib;	/* image size when @isolation [10] */
	bool isolation;		/* fixed-size image + nosymfollow [true] */
};

/** struct cfg_vm - one VM's settings, defaults applied */
struct cfg_vm {
	char name[CFG_NAME_MAX + 1];
	char *image;		/* alias, https URL, or absolute local path */
	char *image_sha256;	/* 64 lowercase hex, or NULL */
	unsigned cpus;		/* [2], 1..256 */
	unsigned memory_mib;	/* [2048], 128..1048576 */
	unsigned disk_gib;	/* 0 = image size */
	enum cfg_accel accel;
	enum cfg_firmware firmware;
	struct {
		char *path;	/* absolute; NULL = no direct kernel boot */
		char *initrd;	/* absolute or NULL */
		char *cmdline;	/* or NULL */
	} kernel;
	struct {
		enum cfg_net_mode mode;
		bool isolation;
		bool ipv6;
		struct cfg_host_access *host_access;
		size_t n_host_access;
		struct cfg_forward *forward;
		size_t n_forward;
	} network;
	struct cfg_share *shares;
	size_t n_shares;
	struct {
		char *user;	/* NULL = first cloud-init user */
		enum cfg_key_kind key;
		char *key_path;	/* CFG_KEY_PATH: absolute */
	} ssh;
	enum cfg_autoconnect autoconnect;
	bool cloud_init_wait;
	struct {
		unsigned boot, ssh, cloud_init, shutdown;	/* seconds */
	} timeouts;
};

/** struct cfg - a loaded hutch.yaml */
struct cfg {
	char *path;		/* absolute path of hutch.yaml */
	char *dir;		/* its directory: the project directory */
	struct cfg_vm *vms;
	size_t n_vms;
};

/** struct cfg_error - where and why loading failed ("file:line:col: msg") */
struct cfg_error {
	char msg[1024];
};

/**
 * cfg_load() - read and validate hutch.yaml
 * @path: the file
 * @out:  set to the config on success; free with cfg_free()
 * @e:    filled with a file:line:col message on failure
 *
 * hutch.yaml itself must be a regular file owned by the user, opened
 * without following a symlink (through one to /etc/shadow its content
 * would show up in the error messages; a FIFO would hang hutch).  Every
 * path it names is held to trust_check() (src/trust.h), on disk.
 *
 * Return: 0, -EINVAL for a config error (@e says which), -EPERM for a path
 * the project may not name or a hutch.yaml that is not the user's (exit
 * 77), or an errno from reading the file (@e says that too).
 */
int cfg_load(const char *path, struct cfg **out, struct cfg_error *e);

void cfg_free(struct cfg *c);

/** cfg_find_vm() - the VM named @name, or the only/first one when @name is NULL */
const struct cfg_vm *cfg_find_vm(const struct cfg *c, const char *name);

/** cfg_print() - the resolved config, as YAML that cfg_load() accepts again */
int cfg_print(FILE *f, const struct cfg *c);

/**
 * cfg_load_buffer() - like cfg_load(), from bytes already in memory
 * @buf, @len:         the YAML text (need not be NUL-terminated)
 * @path_for_messages: the file name that error messages start with
 * @dir:               the project directory relative paths resolve against
 *                     (made absolute against the current directory if needed)
 *
 * For the fuzz target and unit tests: like cfg_load() but nothing is
 * looked up on disk and no user config is read, so a path outside @dir is
 * always refused (-EPERM).
 * Return: 0, or -EINVAL / -EPERM with @e filled
 */
int cfg_load_buffer(const char *buf, size_t len, const char *path_for_messages, const char *dir,
		    struct cfg **out, struct cfg_error *e);

/**
 * cfg_path_abs() - @p made absolute against @dir and normalised lexically
 * ("." and ".." and repeated slashes removed; nothing is looked up), as
 * every path of hutch.yaml is
 * @out: set to a malloc'd string
 * Return: 0, -ENAMETOOLONG, -ENOMEM
 */
int cfg_path_abs(const char *dir, const char *p, char **out);

/**
 * struct cfg_user - the user's own settings: ~/.config/hutch/config.yaml
 * @path:    the file that was read, or NULL when there is none
 * @allow:   absolute, normalised directories outside any project that a
 *           project may still name (shared folders, images, kernels, keys):
 *           the file's `allow_paths:` and then $HUTCH_ALLOW_PATHS (a
 *           colon-separated list, the user's word for one run or script)
 * @n_allow: how many
 *
 * The file is $XDG_CONFIG_HOME/hutch/config.yaml (default
 * ~/.config/hutch/config.yaml), parsed as strictly as hutch.yaml (same
 * limits, unknown keys refused, file:line:col errors).  It must be the
 * user's own: a regular file owned by the user or root, not writable by
 * group or others, in directories others cannot write.  A project never
 * supplies it.
 */
struct cfg_user {
	char *path;
	char **allow;
	size_t n_allow;
};

/**
 * cfg_user_get() - the user's config, loaded once per process
 * @out: set to it (owned by cfg; never freed)
 * @e:   the reason on failure
 * Return: 0; -EINVAL (syntax, unknown key, a relative path: @e has
 * file:line:col), -EPERM (the file or its folder is not the user's alone),
 * or an errno.  A missing file is an empty config.
 */
int cfg_user_get(const struct cfg_user **out, struct cfg_error *e);

/**
 * cfg_user_load_buffer() - parse a user config from memory (fuzzing, tests)
 * @out: set to a new config; free with cfg_user_free()
 */
int cfg_user_load_buffer(const char *buf, size_t len, const char *path_for_messages,
			 struct cfg_user **out, struct cfg_error *e);

void cfg_user_free(struct cfg_user *u);

/**
 * cfg_to_json() - the resolved config as JSON (for `check-config --json`)
 * @out: set to {"path", "dir", "vms": [{...every key, null when unset...}]};
 *       the caller owns the reference
 */
int cfg_to_json(const struct cfg *c, json_t **out);

#endif

/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_WG_CONF_H
#define HUTCH_WG_CONF_H
/**
 * DOC: wg_conf - a project's wireguard.conf (wg-quick format), parsed and checked
 *
 * The file comes from the project directory, which may be a cloned,
 * untrusted repository, and it holds a private key.  So it is read with
 * O_NOFOLLOW as a regular file of bounded size owned by the user, refused
 * when another user could read it (the key) or write it (the endpoint: a
 * changed endpoint sends the VM's traffic to someone else), and parsed with
 * bounds on every field.  Errors name "file:line: what".
 *
 * Accepted, as wg-quick(8) and wg(8) read them (keys are case-insensitive,
 * '#' starts a comment, lists are comma-separated and may repeat):
 *   [Interface] PrivateKey (required), Address (required, at least one
 *               IPv4 address: the tunnel's source for NAT), DNS (addresses
 *               only), MTU, ListenPort
 *   [Peer]      exactly one: PublicKey, Endpoint (required; host:port,
 *               [v6]:port or name:port), AllowedIPs (required), PresharedKey,
 *               PersistentKeepalive
 * Refused with a reason: PreUp/PostUp/PreDown/PostDown (hutch never runs
 * commands from a project file), Table, FwMark and SaveConfig (hutch owns
 * the routing), DNS search domains, unknown keys and sections.
 */
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#define WG_CONF_NAME      "wireguard.conf"
#define WG_CONF_MAX_BYTES (64 * 1024)
#define WG_KEY_LEN        32
#define WG_KEY_B64_LEN    44
#define WG_ADDR_MAX       8
#define WG_DNS_MAX        4
#define WG_ALLOWED_MAX    64
#define WG_HOST_MAX       253
#define WG_MTU_DEFAULT    1420

/** struct wg_cidr - one address with prefix; @family AF_INET or AF_INET6 */
struct wg_cidr {
	int family;
	uint8_t addr[16];
	uint8_t prefix;
};

/** struct wg_ip - one address; @family AF_INET or AF_INET6 */
struct wg_ip {
	int family;
	uint8_t addr[16];
};

/**
 * struct wg_peer - the one [Peer]
 * @host: Endpoint host as written (IPv6 without brackets); resolved at up
 * @keepalive: PersistentKeepalive seconds, 0 = off
 */
struct wg_peer {
	uint8_t public_key[WG_KEY_LEN];
	uint8_t psk[WG_KEY_LEN];
	bool has_psk;
	char host[WG_HOST_MAX + 1];
	uint16_t port;
	struct wg_cidr allowed[WG_ALLOWED_MAX];
	size_t n_allowed;
	uint16_t keepalive;
};

/** struct wg_conf - a parsed wireguard.conf; holds the private key: wg_conf_wipe() when done */
struct wg_conf {
	uint8_t private_key[WG_KEY_LEN];
	struct wg_cidr addr[WG_ADDR_MAX];
	size_t n_addr;
	struct wg_ip dns[WG_DNS_MAX];
	size_t n_dns;
	unsigned mtu;		/* WG_MTU_DEFAULT unless MTU = */
	uint16_t listen_port;	/* 0: any */
	struct wg_peer peer;
};

/** struct wg_conf_error - "file:line: message" */
struct wg_conf_error {
	char msg[512];
};

/**
 * wg_conf_parse() - parse wireguard.conf text
 * @buf, @len: the file's bytes (untrusted; NULs refused)
 * @name:      file name for messages
 * @out:       filled on success (wiped first)
 * @e:         "name:line: message" on failure
 *
 * Return: 0, or -EINVAL with @e set
 */
int wg_conf_parse(const char *buf, size_t len, const char *name, struct wg_conf *out,
		  struct wg_conf_error *e);

/**
 * wg_conf_load() - read <@project_dir>/wireguard.conf and parse it
 * @out: filled on success
 * @e:   the reason on failure
 *
 * Return: 0; -ENOENT when the project has no wireguard.conf (no tunnel, @e
 * empty); -EACCES when others may read or write it or it is not the user's
 * (@e says which); -EINVAL for a config error; another negative errno when
 * it cannot be read (@e says so).
 */
int wg_conf_load(const char *project_dir, struct wg_conf *out, struct wg_conf_error *e);

/** wg_conf_present() - whether <@project_dir>/wireguard.conf exists (as any file type) */
bool wg_conf_present(const char *project_dir);

/** wg_conf_wipe() - clear the keys (explicit_bzero) */
void wg_conf_wipe(struct wg_conf *c);

/** wg_conf_print() - the resolved file for humans, private and preshared keys redacted */
int wg_conf_print(FILE *out, const struct wg_conf *c);
/** wg_conf_to_json() - the same as an object, keys redacted; NULL on ENOMEM */
json_t *wg_conf_to_json(const struct wg_conf *c);

/** wg_key_from_base64() - a WireGuard key: exactly 44 base64 chars ending in '=' (32 bytes) */
int wg_key_from_base64(const char *s, uint8_t key[WG_KEY_LEN]);
/**
 * wg_conf_text() - @c as wireguard.conf text that wg_conf_parse() reads
 * back to the same struct, keys included (for hutch-helper's requests:
 * wipe @buf after use)
 * Return: 0 with *@len set, or -ENOSPC when it does not fit
 */
int wg_conf_text(const struct wg_conf *c, char *buf, size_t n, size_t *len);
/** wg_key_to_base64() - @out gets 44 chars and a NUL */
void wg_key_to_base64(const uint8_t key[WG_KEY_LEN], char out[WG_KEY_B64_LEN + 1]);
/** wg_cidr_str() - "10.0.0.2/32" or "fd00::2/128" into @buf */
int wg_cidr_str(const struct wg_cidr *c, char *buf, size_t n);
/** wg_ip_str() - the address alone */
int wg_ip_str(const struct wg_ip *a, char *buf, size_t n);
/** wg_conf_first_v4() - the first IPv4 Address (the tunnel's source), or NULL */
const struct wg_cidr *wg_conf_first_v4(const struct wg_conf *c);
/** wg_conf_dns_v4() - the first IPv4 DNS server (the one the guest's queries go to), or NULL */
const struct wg_ip *wg_conf_dns_v4(const struct wg_conf *c);
/** wg_conf_covers_default() - AllowedIPs holds 0.0.0.0/0 */
bool wg_conf_covers_default(const struct wg_conf *c);

#endif

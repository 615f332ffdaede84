/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_PRIVD_H
#define HUTCH_PRIVD_H
/**
 * DOC: privd - the privileged side of the seam (hutch-helper, or root in-process)
 *
 * The model is OpenBSD vmd's priv process and bubblewrap's privileged_op: a
 * small program that holds the capabilities, takes a handful of typed
 * requests, and re-checks every one of them against what the caller may do,
 * whoever the caller is.  The rules it enforces:
 *
 *  - who: the caller's uid and pid come from SO_PEERCRED of the socket
 *    (in-process: getuid()/getpid()), never from the request;
 *  - what: requests are one bounded JSON object each (PRIV_REQ_MAX), with a
 *    fixed set of keys per operation; an unknown key, a wrong type, a
 *    duplicate key, trailing bytes or an oversized message refuse the whole
 *    request.  Names are not taken from the caller: taps are ht-<id> with a
 *    random id, the tables are hutch's (net/nft.h), the bridge and subnet
 *    must be one the helper's configuration lists (root: any);
 *  - whose: an id -> owner registry (privd_reg.c, root-owned, under the run
 *    directory) records every VM network and every mount with its owner uid,
 *    owner process and namespace, written before the objects exist.  A user
 *    may bring down, inspect or unmount only their own entries; an entry
 *    whose owner process died (kill -9) is garbage that any caller's `gc`
 *    or next `up` in that namespace removes, with its rules, tap and mount;
 *  - how much: capabilities sit in the permitted set only and are raised
 *    into the effective set around the one call that needs them
 *    (privd_caps()); the address and MAC of a VM are chosen here, under one
 *    lock (flock on the registry), so two users' VMs never share either.
 *
 * Rule repair: a connection that owns a VM network watches nftables; after a
 * host flush the first helper to take the lock restores the base rules and
 * the rules of every live VM in its network namespace, and the others then
 * find everything in place.
 */
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "net/priv.h"
#include "net/wg.h"

#define PRIVD_NETS_MAX   8	/* networks one helper configuration may allow */
#define PRIVD_OWNED_MAX  16	/* VM networks one connection may hold */
#define PRIVD_USER_VMS   64	/* VM networks, and mounts, one user may hold */
#define PRIVD_RUNDIR     "/run/hutch"
/*
 * Where the helper keeps what must outlive a reboot: the provenance records
 * of the share images it made (share/share.h), root's.  A user's own records
 * ($XDG_DATA_HOME) cannot count here: the helper would then loop-mount, as
 * root, any image a member of the group wrote a record for.
 */
#define PRIVD_STATEDIR   "/var/lib/hutch"
#define PRIVD_REGISTRY   "registry.json"
#define PRIVD_CONF_NAME  "hutch-helper.conf"
#define PRIVD_CONF_MAX   4096

enum privd_op {
	PRIVD_PING,
	PRIVD_NET_UP,
	PRIVD_NET_DOWN,
	PRIVD_ATTACH,
	PRIVD_GC,
	PRIVD_INSPECT,
	PRIVD_MOUNT,
	PRIVD_UNMOUNT,
	PRIVD_USERNS_MAP,
	PRIVD_WG_UP,
	PRIVD_WG_FIX,
	PRIVD_WG_DOWN,
	PRIVD_WG_GET,
};

/**
 * struct privd_req - one parsed and checked request
 *
 * Every field is valid for its @op once privd_parse() returned 0: names
 * match their patterns, addresses are in range, paths are absolute and
 * normal (no "." or ".." component, no "//"), lengths are bounded.
 */
struct privd_req {
	enum privd_op op;
	char name[CFG_NAME_MAX + 1];
	struct net_conf nc;
	uint8_t mac[6];
	struct in_addr prefer;
	bool isolation;
	bool ipv6;
	bool dns;	/* net_up: open udp/53 to the gateway and bind a socket to it */
	bool keep;
	bool has_id;
	struct cfg_host_access ha[PRIV_HA_MAX];
	size_t n_ha;
	char id[NFT_ID_MAX];
	struct nft_wg wg;	/* net_up: the WireGuard kill switch (net/wg_sv.c); none: "" */
	char dir[PATH_MAX];	/* mount/unmount: the share folder; its image is <dir>.img */
	unsigned size_gib;	/* mount: the image's size when it is made now */
	pid_t pid;		/* userns_map: the caller's child whose user namespace to map */
	/* wg_up, wg_fix: the parsed wireguard.conf (holds the key: wiped after) */
	struct wg_conf wgc;
	bool has_wgc;
	struct sockaddr_storage wg_ep;	/* the resolved Endpoint */
	socklen_t wg_ep_len;
	enum wg_fix wg_how;
};

/**
 * privd_parse() - read one request
 * @buf, @n: the message as received (untrusted; need not be NUL-terminated)
 * @req:     filled on success
 * @err:     set to a message for the caller on failure
 * Return: 0, or -EINVAL / -E2BIG / -EPROTO with @err set
 */
int privd_parse(const char *buf, size_t n, struct privd_req *req, char *err, size_t errsz);

/** privd_id_ok() - a VM rules id: [a-z0-9]{1,15} */
bool privd_id_ok(const char *id);

/**
 * privd_wg_json() / privd_wg_parse() - the WireGuard kill switch of a VM
 * (struct nft_wg) in requests and in the registry: {"ifname": "hw-...",
 * "mark": N, "dns": "A.B.C.D"}; NULL / absent: none.  The parse is strict
 * (hutch's names and marks only); a kill switch can only narrow where the
 * VM's packets go, never widen it.
 */
json_t *privd_wg_json(const struct nft_wg *wg);
int privd_wg_parse(json_t *o, struct nft_wg *out);

/** privd_err() - format a message for the caller into @err and return @rc */
int privd_err(char *err, size_t n, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/**
 * struct privd_conf - the helper's configuration (hutch-helper.conf beside it)
 * @rundir:   where registry.json lives
 * @statedir: where the share images' records live (<statedir>/shares)
 * @nets:     the bridges and subnets users may ask for
 */
struct privd_conf {
	char rundir[PATH_MAX];
	char statedir[PATH_MAX];
	struct net_conf nets[PRIVD_NETS_MAX];
	size_t n_nets;
};

/**
 * privd_conf_parse() - "rundir DIR" and "network BRIDGE A.B.C.D/N" lines, '#' comments
 * @c: filled on success; without a network line, hutch0 10.77.0.1/24
 * Return: 0, or -EINVAL with @err naming the line
 */
int privd_conf_parse(const char *buf, size_t n, struct privd_conf *c, char *err, size_t errsz);

/** privd_conf_default() - /run/hutch, hutch0 10.77.0.1/24 */
void privd_conf_default(struct privd_conf *c);

/**
 * struct privd - one caller of the privileged side
 * @uid, @gid, @pid: the caller (SO_PEERCRED, or this process)
 * @start:   the caller's start time (/proc/PID/stat), so a reused pid never
 *           passes for the owner
 * @helper:  running in hutch-helper: raise capabilities around each call
 * @any_net: the caller is root: any bridge and subnet
 * @reg_fd:  the registry, open read-write; flock()ed around each operation
 * @netns, @mntns: this process's namespaces (registry entries are per namespace)
 * @owned:   the VM networks this connection brought up or attached: it
 *           watches their rules and removes them when the caller goes away
 * @watch_fd: nftables monitor while @n_owned > 0, else -1
 * @setup_err: why the helper cannot work (no capabilities, no registry);
 *           every request is answered with it
 */
struct privd {
	uid_t uid;
	gid_t gid;
	pid_t pid;
	unsigned long long start;
	bool helper;
	bool any_net;
	int reg_fd;
	unsigned long long netns;
	unsigned long long mntns;
	struct privd_conf conf;
	char conf_path[PATH_MAX];
	char owned[PRIVD_OWNED_MAX][NFT_ID_MAX];
	size_t n_owned;
	int watch_fd;
	char setup_err[256];
};

/**
 * privd_init_inproc() - the privileged side for a root process
 *
 * Registry in $HUTCH_RUN_DIR (root only) or /run/hutch, created if missing.
 */
int privd_init_inproc(struct privd *d);

/**
 * privd_handle() - answer one request
 * @buf, @n: the request bytes
 * @reply:  set to the reply object ({"ok": true, ...} or {"ok": false,
 *          "errno": N, "error": "..."}); the caller sends and frees it
 * @fds:    set to the fds to pass with the reply (net_up: tap, DHCP, DNS)
 * @nfds:   set to their count; the caller closes them after sending
 */
void privd_handle(struct privd *d, const char *buf, size_t n, json_t **reply, int fds[3],
		  size_t *nfds);

/** privd_watch() - the nftables monitor became readable: repair what was removed */
void privd_watch(struct privd *d);

/** privd_hangup() - the caller went away: remove what it owned and did not remove */
void privd_hangup(struct privd *d);

/*
 * Capabilities, raised into the effective set only around the call that
 * needs them (the bit order is privd.c's privd_caps_all[]).  The file
 * capabilities `hutch setup` gives the helper: PRIVD_FILE_CAPS, permitted
 * only, so nothing is effective until privd_caps() asks.
 */
#define PRIVD_CAP_NET   (1u << 0)	/* CAP_NET_ADMIN: links, addresses, sysctls, nftables */
#define PRIVD_CAP_RAW   (1u << 1)	/* CAP_NET_RAW: the DHCP packet socket */
#define PRIVD_CAP_BIND  (1u << 2)	/* CAP_NET_BIND_SERVICE: the DNS socket on port 53 */
#define PRIVD_CAP_MOUNT (1u << 3)	/* CAP_SYS_ADMIN: mount(2), umount2(2) */
#define PRIVD_CAP_DAC   (1u << 4)	/* CAP_DAC_OVERRIDE: the registry, /dev/net/tun, /dev/loop* */
#define PRIVD_CAP_SETGID (1u << 5)	/* CAP_SETGID: gid_map of a caller's child (userns_map) */
#define PRIVD_FILE_CAPS \
	"cap_dac_override,cap_net_admin,cap_net_raw,cap_net_bind_service,cap_sys_admin,cap_setgid=p"

/** privd_caps() - make exactly @mask effective (no-op in-process) */
int privd_caps(const struct privd *d, unsigned mask);

/** privd_ops_run() - carry out a parsed request (privd_ops.c); reply members go into @out */
int privd_ops_run(struct privd *d, const struct privd_req *q, json_t *out, int fds[3],
		  size_t *nfds, char *err, size_t errsz);

/**
 * privd_userns_map() - the userns_map operation (privd_userns.c): map the
 * user namespace of the caller's child @q->pid to the caller's own uid and
 * primary gid, leaving setgroups(2) allowed in it
 */
int privd_userns_map(const struct privd *d, const struct privd_req *q, char *err, size_t en);

/*
 * ---- privd_wg.c: WireGuard tunnels (issue 11) ----
 *
 * A tunnel is a registry entry of its own (PRIVD_ENT_WG: owner, id, table,
 * implementation), recorded before the link exists.  The helper picks the
 * id, the link name hw-<id> and the table (also the fwmark); the caller
 * names only its wireguard.conf and the resolved endpoint.  A VM network
 * may name a tunnel (net_up's "wg") only when the same process owns it and
 * the mark is its table: nobody routes their VM into another's tunnel.
 */
struct privd_reg;
struct privd_ent;
/** privd_wg_run() - wg_up, wg_fix, wg_down, wg_get */
int privd_wg_run(struct privd *d, const struct privd_req *q, json_t *out, int fds[3], size_t *nfds,
		 char *err, size_t en);
/**
 * privd_wg_net_check() - net_up's "wg" against the registry @r: a tunnel of
 * this caller's process whose table is the mark
 */
int privd_wg_net_check(const struct privd *d, const struct privd_reg *r, const struct nft_wg *wg,
		       char *err, size_t en);
/** privd_wg_vm_rules() - the source rules of net entry @e (which names a tunnel): add or remove */
int privd_wg_vm_rules(const struct privd *d, const struct privd_ent *e, bool add);
/** privd_wg_remove() - tunnel entry @e's link, rules and table gone (sweep, down) */
void privd_wg_remove(const struct privd *d, const struct privd_reg *r, const struct privd_ent *e);
/** privd_wg_orphans() - hw- links that no tunnel entry of this namespace owns: removed */
int privd_wg_orphans(const struct privd *d, const struct privd_reg *r);

/** privd_close() - close the registry and the monitor */
void privd_close(struct privd *d);

/**
 * privd_helper_main() - hutch-helper: serve the socket on fd 3 until EOF
 * Return: the exit code
 */
int privd_helper_main(int argc, char **argv);

/* ---- privd_reg.c: the registry ---- */

enum privd_kind { PRIVD_ENT_NET, PRIVD_ENT_MOUNT, PRIVD_ENT_WG };

/**
 * struct privd_ent - one registry entry
 * @pid, @start: the owner process (0: a mount that outlives its caller)
 * @ns:   netns (nets, tunnels) or mntns (mounts) inode the objects live in
 */
struct privd_ent {
	enum privd_kind kind;
	uid_t uid;
	pid_t pid;
	unsigned long long start;
	unsigned long long ns;
	char name[CFG_NAME_MAX + 1];
	/* PRIVD_ENT_NET */
	char id[NFT_ID_MAX];
	struct net_conf nc;
	struct in_addr addr;
	uint8_t mac[6];
	bool isolation;
	bool ipv6;
	bool dns;	/* udp/53 to the gateway is open (its forwarder runs) */
	struct cfg_host_access ha[PRIV_HA_MAX];
	size_t n_ha;
	struct nft_wg wg;	/* repaired with the VM's rules */
	/* PRIVD_ENT_WG (also @id, @name) */
	uint32_t table;
	enum wg_impl impl;
	/* PRIVD_ENT_MOUNT */
	char *image;
	char *dir;
};

/**
 * struct privd_reg - the registry as loaded; privd_reg_save() writes it back
 * @slot: the file's slot it came from (a save writes the other one)
 */
struct privd_reg {
	struct privd_ent *e;
	size_t n;
	size_t cap;
	unsigned slot;
};

#define PRIVD_REG_MAX_BYTES (1u << 20)	/* one slot of the file */
#define PRIVD_REG_MAX_ENTS  1024
#define PRIVD_REG_FILE_MAX  (4096u + 2 * PRIVD_REG_MAX_BYTES)
#define PRIVD_LOCK_MS       60000

/** privd_reg_header() - the file's header: which slot, how long; -EBADMSG if malformed */
int privd_reg_header(const char *buf, size_t n, unsigned *slot, size_t *len);
/** privd_reg_load() - read the registry file @fd (empty: an empty registry) */
int privd_reg_load(int fd, struct privd_reg *r);

/** privd_reg_lock() - flock the registry (exclusive) and load it */
int privd_reg_lock(struct privd *d, struct privd_reg *r);
/** privd_reg_unlock() - free @r and unlock (does not save) */
void privd_reg_unlock(struct privd *d, struct privd_reg *r);
/** privd_reg_save() - write @r back (under the lock) */
int privd_reg_save(struct privd *d, const struct privd_reg *r);
/** privd_reg_parse() - a slot's JSON into @r (bad entries dropped) */
int privd_reg_parse(const char *buf, size_t n, struct privd_reg *r);
/** privd_reg_free() - free what privd_reg_parse() allocated */
void privd_reg_free(struct privd_reg *r);
/** privd_reg_add() - append a copy of @e (paths duplicated) */
int privd_reg_add(struct privd_reg *r, const struct privd_ent *e);
/** privd_reg_del() - remove entry @i */
void privd_reg_del(struct privd_reg *r, size_t i);
/** privd_reg_find() - index of the net entry @id, or -1 */
ssize_t privd_reg_find(const struct privd_reg *r, const char *id);
/** privd_reg_find_kind() - index of the entry of @kind with @id, or -1 */
ssize_t privd_reg_find_kind(const struct privd_reg *r, enum privd_kind kind, const char *id);
/**
 * privd_ent_quota() - may the caller add one more entry of @kind?  Each
 * user gets a share of the registry (PRIVD_USER_VMS of each kind), not all
 * Return: 0, or -EDQUOT with @err set
 */
int privd_ent_quota(const struct privd *d, const struct privd_reg *r, enum privd_kind kind, char *err,
		    size_t en);
/** privd_ent_owner() - the caller as @e's owner, in its namespace for @e->kind */
void privd_ent_owner(const struct privd *d, struct privd_ent *e);
/**
 * privd_ent_may() - may the caller act on entry @e (a VM network or a
 * tunnel)?  Its owner may (root may too); nobody may touch another
 * process's live entry through net_down, gc, wg_fix or wg_down (@live_ok:
 * attach from the same process after a helper restart, inspect, wg_get).
 * Return: 0, or -EPERM / -EBUSY with @err set
 */
int privd_ent_may(const struct privd *d, const struct privd_ent *e, bool live_ok, char *err,
		  size_t en);
/** privd_ent_mine() - @e belongs to the calling process (pid and start time) */
bool privd_ent_mine(const struct privd *d, const struct privd_ent *e);
/** privd_ent_alive() - its owner process still runs (pid 0: always) */
bool privd_ent_alive(const struct privd_ent *e);
/** privd_proc_start() - start time of @pid (clock ticks since boot), 0 when gone or a zombie */
unsigned long long privd_proc_start(pid_t pid);
/**
 * privd_reg_pick() - an address and MAC for a new VM on @nc in netns @ns
 * @prefer, @mac_in: kept when no other entry has them
 */
int privd_reg_pick(const struct privd_reg *r, unsigned long long ns, const struct net_conf *nc,
		   struct in_addr prefer, const uint8_t mac_in[6], struct in_addr *addr,
		   uint8_t mac[6]);

#endif

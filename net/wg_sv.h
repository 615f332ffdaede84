/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_WG_SV_H
#define HUTCH_WG_SV_H
/**
 * DOC: wg_sv - WireGuard egress inside a VM's life (net/wg_sv.c)
 *
 * A project with a wireguard.conf gets, per VM, one tunnel hw-<id> that all
 * of the guest's traffic leaves by, or none of it does.  The pieces:
 *
 * - CLI, before the supervisor starts (wg_up_ext.before_up): the file is
 *   read and checked, mode nat and no IPv6 required, the endpoint resolved,
 *   an implementation found.  Bad input fails here: nothing was created.
 * - supervisor, wg_sv_ext.prepare, BEFORE the net extension: the tunnel,
 *   its table and the fwmark rule, made by the privileged side (net/priv.h
 *   priv_wg_up(): hutch-helper for a user, in-process for root), and
 *   wireguard-go run as the user on the tun it hands back; state.json "wg"
 *   holds what net needs for the VM's nft batch (wg_nft_vm(): the mark, the
 *   kill switch, the DNS DNAT) and what gc needs.  net_up names the tunnel,
 *   and the privileged side adds the VM's source rule with its rules, which
 *   keeps its packets in its table even with no mark.
 * - supervisor, running: a netlink link watch (deleted, set down, up
 *   again), the wireguard-go pidfd, and a 1 s timer that reads the peer's
 *   handshake and byte counters (peer silent: tx grows, rx does not) and
 *   restores a lost link with back-off (2 s doubling to 60 s).  Every
 *   change of tunnel status is logged and written to state.json "wg"
 *   {"status": up|idle|connecting|down, "reason", "since", "downs"}.
 * - teardown and gc: wireguard-go stopped; link, socket, rules and table
 *   removed by the privileged side (priv_wg_down(), or its sweep of a dead
 *   supervisor's entries).
 *
 * state.json "wg": {"id" (the helper's), "ifname", "table" (also the fwmark), "impl"
 * (kernel|wireguard-go), "pid" (wireguard-go), "endpoint", "peer" (public
 * key), "dns", "status", "reason", "since", "downs", "restores"}.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "net/nft.h"
#include "src/cfg.h"

/**
 * wg_nft_vm() - fill the WireGuard part of a VM's nft rules from state "wg"
 * @project_dir: the project (a wireguard.conf there with no tunnel in state
 *               is an error: the VM must not start without its kill switch)
 * @state:       state.json, as the wg extension left it in .prepare
 * @out:         zeroed when the VM has no tunnel
 *
 * Return: 0, or -ENOLINK (wireguard.conf but no tunnel), -EINVAL (bad state)
 */
int wg_nft_vm(const char *project_dir, json_t *state, struct nft_wg *out);

/**
 * wg_check_config() - `hutch check-config`'s part for wireguard.conf
 * @c:    the loaded hutch.yaml (its project dir and VMs' network modes)
 * @out:  print the file, keys redacted, when not NULL
 * @json: or set "wireguard" in it
 *
 * Return: 0 (also without a wireguard.conf), -EINVAL for a config error
 * (printed as "file:line: message"), -EACCES for a refused file
 */
int wg_check_config(const struct cfg *c, FILE *out, json_t *json);

/**
 * wg_status_json() - the tunnel of a VM as `hutch wg` shows it: interface,
 * implementation, status, peer, endpoint, latest handshake, bytes, the
 * kill switch's drop counters
 * @live: the VM runs: ask the tunnel, and the privileged side for the kill
 *        switch's counters (and a kernel tunnel's), besides state.json
 * Return: a new object, or NULL when the VM has no tunnel in @state
 */
json_t *wg_status_json(json_t *state, bool live);
/** wg_status_print() - @st (from wg_status_json) for humans */
void wg_status_print(FILE *out, json_t *st);

#endif

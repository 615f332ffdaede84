#!/usr/bin/env bash
# The isolation matrix of t-isolation-up.sh with WireGuard on for VM A: its
# traffic goes through a tunnel (wireguard-go peer in the "internet"
# namespace), and every forbidden path stays forbidden.
# test: group wg (makes WireGuard tunnels, which t-wg.sh counts)
ISOUP_WG=1 exec bash "$(dirname "$0")/t-isolation-up.sh"

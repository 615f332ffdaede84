#!/usr/bin/env bash
# The isolation matrix with WireGuard on for VM A (t-wg-isolation.sh), with
# hutch run by an unprivileged user: the tunnel is made by hutch-helper
# (issue 11), wireguard-go runs as that user, and every forbidden path
# stays forbidden.
# test: group wg (makes WireGuard tunnels, which t-wg.sh counts)
ISOUP_WG=1 HUTCH_TEST_AS_USER=1 exec bash "$(dirname "$0")/t-isolation-up.sh"

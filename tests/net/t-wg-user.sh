#!/usr/bin/env bash
# WireGuard egress with its kill switch (t-wg.sh), with hutch run by an
# unprivileged user: hutch-helper makes and mends the tunnel (issue 11).
# test: group wg (counts every hw- wireguard-go on the host, as t-wg.sh does)
HUTCH_TEST_AS_USER=1 exec bash "$(dirname "$0")/t-wg.sh"

#!/usr/bin/env bash
# The isolation matrix of t-isolation-up.sh with hutch run by an unprivileged
# user through a test copy of hutch-helper (issue 10): same probes, same
# expectations, plus QEMU as that user with CapEff 0 and an empty registry.
HUTCH_TEST_AS_USER=1 exec bash "$(dirname "$0")/t-isolation-up.sh"

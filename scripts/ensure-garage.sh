#!/usr/bin/env bash
# Make sure the Garage S3 server (used by `make test-compat` and the
# benchmark: a stricter, MinIO-like server that enforces the region and
# supports virtual-host requests) is installed, and print the path of its
# binary on stdout (about 12 minutes to build on 2 cores the first time).
# Garage is AGPL: it is only run as an external server process, never linked.
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/ensure-cargo-bin.sh" garage garage@2.5.0

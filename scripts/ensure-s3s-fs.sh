#!/usr/bin/env bash
# Make sure the s3s-fs S3 server (the test, demo and benchmark server) is
# installed, and print the path of its binary on stdout (about 3.5 minutes
# to build on 2 cores the first time). The version is pinned: s3s-fs 0.15
# and later need a newer rustc than this project's, and without
# `--features binary` no executable is built.
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/ensure-cargo-bin.sh" s3s-fs s3s-fs@0.14.1 --features binary

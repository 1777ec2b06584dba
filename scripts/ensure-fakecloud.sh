#!/usr/bin/env bash
# Make sure fakecloud (the tests' Glacier emulator for multipart uploads and
# Vault Lock) is installed, and print the path of its binary on stdout.
#
# fakecloud emulates about a hundred AWS services in one binary, so its
# build is long; it is built without optimisation (a test server needs no
# speed, and an optimised build takes well over twice as long on 2 cores).
# It is AGPL-licensed: it runs as a separate test server process only;
# nothing of it is linked into or copied into the plugin.
set -euo pipefail
export CARGO_PROFILE_RELEASE_OPT_LEVEL=0
export CARGO_PROFILE_RELEASE_DEBUG=false
export CARGO_PROFILE_RELEASE_CODEGEN_UNITS=256
exec bash "$(dirname "${BASH_SOURCE[0]}")/ensure-cargo-bin.sh" fakecloud fakecloud@0.51.0

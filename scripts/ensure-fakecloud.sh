#!/usr/bin/env bash
# Make sure fakecloud (the tests' Glacier emulator for multipart uploads and
# Vault Lock) is installed, and print the path of its binary on stdout.
# fakecloud emulates many AWS services in one binary, so the first build is
# long (see README: Tests). It is AGPL-licensed: it runs as a separate test
# server process only; nothing of it is linked into or copied into the
# plugin.
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/ensure-cargo-bin.sh" fakecloud fakecloud@0.51.0

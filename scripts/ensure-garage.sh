#!/usr/bin/env bash
# Make sure the Garage S3 server (used by `make test-compat` and the
# benchmark: a stricter, MinIO-like server that enforces the region and
# supports virtual-host requests) is installed, and print the path of its
# binary on stdout.
#
# Looks on PATH, then in cargo's bin directory ($CARGO_HOME/bin, default
# ~/.cargo/bin). When it is missing, builds it with
#     cargo install garage@2.5.0 --locked
# (about 12 minutes on 2 cores). Garage is AGPL: it is only run as an external
# server process, never linked. Progress goes to stderr; stdout carries only
# the path.
set -euo pipefail

name=garage
crate=garage@2.5.0
cargo_bin=${CARGO_HOME:-$HOME/.cargo}/bin

find_it() {
    local p
    if p=$(command -v "$name" 2>/dev/null) && [ -x "$p" ]; then
        printf '%s\n' "$p"
    elif [ -x "$cargo_bin/$name" ]; then
        printf '%s\n' "$cargo_bin/$name"
    elif [ -x "$HOME/.cargo/bin/$name" ]; then
        printf '%s\n' "$HOME/.cargo/bin/$name"
    else
        return 1
    fi
}

if path=$(find_it); then
    printf '%s\n' "$path"
    exit 0
fi

cargo=$(command -v cargo 2>/dev/null || true)
if [ -z "$cargo" ] && [ -x "$cargo_bin/cargo" ]; then
    cargo=$cargo_bin/cargo
fi
if [ -z "$cargo" ]; then
    echo "ensure-garage: $name is not installed and cargo was not found (install Rust from https://rustup.rs)" >&2
    exit 1
fi

echo "ensure-garage: $name not found; building it: cargo install $crate --locked (about 12 minutes on 2 cores)" >&2
# cargo reports its progress on stderr; keep stdout for the path alone.
"$cargo" install "$crate" --locked >&2

if ! path=$(find_it); then
    echo "ensure-garage: cargo install finished but no $name binary was found on PATH or in $cargo_bin" >&2
    exit 1
fi
echo "ensure-garage: installed $path" >&2
printf '%s\n' "$path"

#!/usr/bin/env bash
# Make sure the s3s-fs S3 server (the test, demo and benchmark server) is
# installed, and print the path of its binary on stdout.
#
# Looks on PATH, then in cargo's bin directory ($CARGO_HOME/bin, default
# ~/.cargo/bin). When it is missing, builds it with
#     cargo install s3s-fs@0.14.1 --features binary --locked
# (about 3.5 minutes on 2 cores). The version is pinned: s3s-fs 0.15 and later
# need a newer rustc than this project's, and without `--features binary` no
# executable is built. Progress goes to stderr; stdout carries only the path.
set -euo pipefail

name=s3s-fs
crate=s3s-fs@0.14.1
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
    echo "ensure-s3s-fs: $name is not installed and cargo was not found (install Rust from https://rustup.rs)" >&2
    exit 1
fi

echo "ensure-s3s-fs: $name not found; building it: cargo install $crate --features binary --locked (about 4 minutes)" >&2
# cargo reports its progress on stderr; keep stdout for the path alone.
"$cargo" install "$crate" --features binary --locked >&2

if ! path=$(find_it); then
    echo "ensure-s3s-fs: cargo install finished but no $name binary was found on PATH or in $cargo_bin" >&2
    exit 1
fi
echo "ensure-s3s-fs: installed $path" >&2
printf '%s\n' "$path"

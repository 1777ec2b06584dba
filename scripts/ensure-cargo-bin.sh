#!/usr/bin/env bash
# ensure-cargo-bin.sh NAME CRATE@VERSION [EXTRA cargo install ARGS...]
#
# Make sure the executable NAME, built from a crates.io crate, is installed,
# and print its path on stdout. Looks on PATH, then in cargo's bin directory
# ($CARGO_HOME/bin, default ~/.cargo/bin); when missing, runs
#     cargo install CRATE@VERSION --locked EXTRA...
# Progress goes to stderr; stdout carries only the path. Shared by
# ensure-s3s-fs.sh and ensure-garage.sh, which pin the versions.
set -euo pipefail

name=$1
crate=$2
shift 2
cargo_bin=${CARGO_HOME:-$HOME/.cargo}/bin
me="ensure-$name"

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
    echo "$me: $name is not installed and cargo was not found (install Rust from https://rustup.rs)" >&2
    exit 1
fi

echo "$me: $name not found; building it: cargo install $crate --locked $*" >&2
# cargo reports its progress on stderr; keep stdout for the path alone.
"$cargo" install "$crate" --locked "$@" >&2

if ! path=$(find_it); then
    echo "$me: cargo install finished but no $name binary was found on PATH or in $cargo_bin" >&2
    exit 1
fi
echo "$me: installed $path" >&2
printf '%s\n' "$path"

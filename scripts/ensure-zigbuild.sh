#!/usr/bin/env bash
# Make sure cargo-zigbuild and the Zig toolchain it links with are installed,
# and print the path of the cargo-zigbuild executable on stdout.
#
# `make dist` links the plugin against glibc 2.17's symbols (the oldest
# glibc of a supported Greenplum host, RHEL/CentOS 7), which the machine's
# own linker cannot do: it links against the glibc it has. Zig carries the
# stubs of every glibc version, and cargo-zigbuild makes it cargo's linker.
#
# Both come from PyPI as wheels carrying their binaries, into their own venv,
# by default
#     ~/.cache/gpbackup-s3-plugin-test/zigbuild-venv    (ZIGBUILD_VENV overrides)
# made on first use with `python3 -m venv` and
#     pip install 'cargo-zigbuild==0.24.1' 'ziglang==0.15.2'
# (16 seconds here; 410 MB on disk). cargo-zigbuild finds Zig as
# `python3 -m ziglang` with the venv's bin first on PATH, which is how
# scripts/dist.sh runs it.
# A lock file makes concurrent callers wait for one install. Progress goes
# to stderr; stdout carries only the path.
set -euo pipefail

venv=${ZIGBUILD_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/gpbackup-s3-plugin-test/zigbuild-venv}
packages=('cargo-zigbuild==0.24.1' 'ziglang==0.15.2')

ready() {
    [ -x "$venv/bin/cargo-zigbuild" ] && "$venv/bin/python" -m ziglang version >/dev/null 2>&1
}

mkdir -p "$(dirname "$venv")"
if command -v flock >/dev/null 2>&1; then
    exec 9>"$venv.lock"
    flock 9
fi

if ready; then
    printf '%s\n' "$venv/bin/cargo-zigbuild"
    exit 0
fi

python=$(command -v python3 2>/dev/null || true)
if [ -z "$python" ]; then
    echo "ensure-zigbuild: python3 is needed to install Zig and cargo-zigbuild (apt-get install python3 python3-venv)" >&2
    exit 1
fi
if [ ! -x "$venv/bin/pip" ]; then
    echo "ensure-zigbuild: creating the venv $venv" >&2
    rm -rf -- "$venv"
    if ! "$python" -m venv "$venv" >&2; then
        echo "ensure-zigbuild: python3 -m venv failed (on Debian: apt-get install python3-venv)" >&2
        exit 1
    fi
fi
echo "ensure-zigbuild: installing ${packages[*]} into $venv (well under a minute)" >&2
"$venv/bin/pip" install --disable-pip-version-check -q "${packages[@]}" >&2

if ! ready; then
    echo "ensure-zigbuild: pip finished but $venv/bin/cargo-zigbuild or Zig cannot run" >&2
    exit 1
fi
echo "ensure-zigbuild: installed $venv/bin/cargo-zigbuild, Zig $("$venv/bin/python" -m ziglang version)" >&2
printf '%s\n' "$venv/bin/cargo-zigbuild"

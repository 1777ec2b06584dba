#!/usr/bin/env bash
# Make sure the moto S3 server (the tests' server for storage classes,
# RestoreObject and InvalidObjectState) is installed, and print the path of
# its moto_server executable on stdout.
#
# moto lives in its own Python venv, by default
#     ~/.cache/gpbackup-s3-plugin-test/moto-venv    (MOTO_VENV overrides)
# made on first use with `python3 -m venv` and
#     pip install 'moto[server]==5.2.5' 'crc32c==2.9.post0' 'awscrt==0.38.1'
# (about a minute). crc32c and awscrt are not optional: without them moto
# answers CRC32 where CRC32C or CRC-64/NVME was asked for, and the SDK's
# response checksums (and the full-object CRC-64/NVME tests) fail.
# A lock file makes concurrent callers wait for one install. Progress goes
# to stderr; stdout carries only the path.
set -euo pipefail

venv=${MOTO_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/gpbackup-s3-plugin-test/moto-venv}
packages=('moto[server]==5.2.5' 'crc32c==2.9.post0' 'awscrt==0.38.1')

ready() {
    [ -x "$venv/bin/moto_server" ] && "$venv/bin/python" -c 'import moto, crc32c, awscrt' 2>/dev/null
}

mkdir -p "$(dirname "$venv")"
if command -v flock >/dev/null 2>&1; then
    exec 9>"$venv.lock"
    flock 9
fi

if ready; then
    printf '%s\n' "$venv/bin/moto_server"
    exit 0
fi

python=$(command -v python3 2>/dev/null || true)
if [ -z "$python" ]; then
    echo "ensure-moto: python3 is needed for the moto test server (apt-get install python3 python3-venv)" >&2
    exit 1
fi
if [ ! -x "$venv/bin/pip" ]; then
    echo "ensure-moto: creating the venv $venv" >&2
    rm -rf -- "$venv"
    if ! "$python" -m venv "$venv" >&2; then
        echo "ensure-moto: python3 -m venv failed (on Debian: apt-get install python3-venv)" >&2
        exit 1
    fi
fi
echo "ensure-moto: installing ${packages[*]} into $venv (about a minute)" >&2
"$venv/bin/pip" install --disable-pip-version-check -q "${packages[@]}" >&2

if ! ready; then
    echo "ensure-moto: pip finished but $venv/bin/moto_server cannot run" >&2
    exit 1
fi
echo "ensure-moto: installed $venv/bin/moto_server" >&2
printf '%s\n' "$venv/bin/moto_server"

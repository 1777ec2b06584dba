#!/usr/bin/env bash
# Make sure what the end-to-end tests and the demo's database step need is
# installed: PostgreSQL's server binaries (initdb, postgres, pg_ctl, psql,
# pg_dump), gzip and zstd. Prints the PostgreSQL binaries' directory on
# stdout.
#
# When something is missing, installs Debian's postgresql, gzip and zstd
# packages with apt-get (as root, or through sudo without a password
# prompt); with --no-install, or when that is not possible, says what is
# missing on stderr and exits 1. Progress goes to stderr; stdout carries
# only the path.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=postgres.sh
source "$here/postgres.sh"

install=1
if [ "${1:-}" = --no-install ]; then
    install=0
fi

missing() {
    local m=()
    pg_find_bindir >/dev/null 2>&1 || m+=(postgresql)
    command -v gzip >/dev/null 2>&1 || m+=(gzip)
    command -v zstd >/dev/null 2>&1 || m+=(zstd)
    printf '%s\n' "${m[*]:-}"
}

need=$(missing)
if [ -n "$need" ]; then
    if [ "$install" = 0 ]; then
        echo "ensure-postgres: missing: $need (Debian: apt-get install postgresql gzip zstd)" >&2
        exit 1
    fi
    echo "ensure-postgres: missing: $need" >&2
    pg_install_postgres || exit 1
    need=$(missing)
    if [ -n "$need" ]; then
        echo "ensure-postgres: still missing after apt-get install: $need" >&2
        exit 1
    fi
fi
pg_find_bindir

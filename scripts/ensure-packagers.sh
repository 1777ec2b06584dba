#!/usr/bin/env bash
# Make sure the package builders `make dist` uses are installed: dpkg-deb
# (part of dpkg, on every Debian and Ubuntu) for the .deb, and rpmbuild
# (Debian's `rpm` package) for the .rpm. Prints rpmbuild's path on stdout.
#
# When rpmbuild is missing, installs Debian's rpm package with apt-get (as
# root, or through sudo without a password prompt; about 20 seconds). On
# RHEL-like build hosts rpmbuild comes from the rpm-build package, and
# dpkg-deb from EPEL's dpkg. Progress goes to stderr; stdout carries only
# the path.
set -euo pipefail

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        return 1
    fi
}

if ! command -v rpmbuild >/dev/null 2>&1; then
    if ! command -v apt-get >/dev/null 2>&1 || ! as_root true; then
        echo "ensure-packagers: rpmbuild is missing (Debian: apt-get install rpm; RHEL: dnf install rpm-build)" >&2
        exit 1
    fi
    echo "ensure-packagers: installing Debian's rpm package with apt-get (about 20 seconds)" >&2
    # apt-get and dpkg talk even with -qq; their words matter only on failure.
    if ! log=$(as_root apt-get update -qq 2>&1 &&
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rpm 2>&1); then
        printf '%s\n' "$log" >&2
        echo "ensure-packagers: apt-get install rpm failed" >&2
        exit 1
    fi
fi
if ! command -v dpkg-deb >/dev/null 2>&1; then
    echo "ensure-packagers: dpkg-deb is missing (Debian: apt-get install dpkg; RHEL: dnf install dpkg from EPEL)" >&2
    exit 1
fi
command -v rpmbuild

#!/usr/bin/env bash
# `make dist`: the release build that runs on every supported Greenplum host
# (Linux x86-64 with glibc 2.17 or newer: RHEL/CentOS 7, 8 and 9, Ubuntu
# 18.04 and later), and its tarball and packages, in dist/:
#
#     dist/gpbackup_s3_plugin                              the executable
#     dist/gpbackup_s3_plugin-<version>-linux-x86_64.tar.gz  it, README.md, LICENSE,
#                                                          plugin-config-examples/, SHA256SUMS
#     dist/gpbackup-s3-plugin_<version>_amd64.deb          /opt/gpbackup_s3_plugin/...
#     dist/gpbackup_s3_plugin-<version>-1.x86_64.rpm       /opt/gpbackup_s3_plugin/...
#     dist/SHA256SUMS                                      of the four above
#
# The executable is linked by Zig against glibc 2.17's symbols
# (`cargo zigbuild --target x86_64-unknown-linux-gnu.2.17`, Zig and
# cargo-zigbuild from scripts/ensure-zigbuild.sh), stripped by the release
# profile, and refused unless scripts/check-portable.sh passes. Both
# packages hold that same file, byte for byte: they are made from it with
# dpkg-deb and rpmbuild (scripts/ensure-packagers.sh), not by another build.
#
# DIST_GLIBC=2.28 (say) links against another glibc; the default is 2.17.
# Progress goes to stderr; the summary to stdout.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo"

glibc=${DIST_GLIBC:-2.17}
triple=x86_64-unknown-linux-gnu
out=$repo/dist
prefix=/opt/gpbackup_s3_plugin

zigbuild=$(bash "$here/ensure-zigbuild.sh")
rpmbuild=$(bash "$here/ensure-packagers.sh")
# cargo finds cargo-zigbuild on PATH, and cargo-zigbuild finds Zig as
# `python3 -m ziglang` with the venv's python first.
venv_bin=$(dirname "$zigbuild")
export PATH="$venv_bin:$PATH"

echo "dist: cargo zigbuild --release --locked --target $triple.$glibc (Zig $(python3 -m ziglang version))" >&2
start=$SECONDS
# build.rs embeds the glibc floor for `version --build` and the log.
GPBACKUP_S3_PLUGIN_GLIBC=$glibc cargo zigbuild --release --locked --target "$triple.$glibc"
echo "dist: built in $((SECONDS - start)) s" >&2

built=$repo/target/$triple/release/gpbackup_s3_plugin
bash "$here/check-portable.sh" "$built" "$glibc" >&2

version=$("$built" --version | awk '{ print $3 }')
name=gpbackup_s3_plugin-$version-linux-x86_64
stage=$(mktemp -d "${TMPDIR:-/tmp}/gpbackup-s3-dist.XXXXXX")
trap 'rm -rf -- "$stage"' EXIT

rm -rf -- "$out"
mkdir -p "$out"
install -m 0755 "$built" "$out/gpbackup_s3_plugin"

# The tarball: one directory, the checksums of everything in it.
tree=$stage/$name
mkdir -p "$tree/plugin-config-examples"
install -m 0755 "$out/gpbackup_s3_plugin" "$tree/"
install -m 0644 README.md LICENSE "$tree/"
install -m 0644 plugin-config-examples/* "$tree/plugin-config-examples/"
(cd "$tree" && sha256sum gpbackup_s3_plugin README.md LICENSE plugin-config-examples/* >"$stage/SHA256SUMS")
mv "$stage/SHA256SUMS" "$tree/"
tar --sort=name --owner=0 --group=0 --numeric-owner -C "$stage" -czf "$out/$name.tar.gz" "$name"

# What both packages install: everything under $prefix, nothing elsewhere.
# GPHOME differs from site to site, so no package can link the plugin into
# $GPHOME/bin; the operator copies or links it (README: Install on a cluster).
root=$stage/root
mkdir -p "$root$prefix/bin" "$root$prefix/plugin-config-examples"
install -m 0755 "$out/gpbackup_s3_plugin" "$root$prefix/bin/"
install -m 0644 README.md LICENSE "$root$prefix/"
install -m 0644 plugin-config-examples/* "$root$prefix/plugin-config-examples/"
summary="Storage plugin for Greenplum gpbackup/gprestore: S3, S3-compatible stores, Glacier"
about="Installs $prefix/bin/gpbackup_s3_plugin, built for glibc $glibc or newer. gpbackup runs the plugin at the same path on every host of a cluster: copy or link it into \$GPHOME/bin on each one (see $prefix/README.md)."

# .deb (package names cannot hold '_'). xz, which dpkg reads since 1.15.6.
# Its dependencies follow what the executable links (Zig's build links its
# unwinder statically, so libgcc_s is needed only if some build asks for it).
depends="libc6 (>= $glibc)"
if readelf -d "$out/gpbackup_s3_plugin" | grep -q 'NEEDED.*\[libgcc_s\.so\.1\]'; then
    depends="$depends, libgcc-s1 | libgcc1"
fi
deb=$stage/deb
mkdir -p "$deb/DEBIAN"
cp -a "$root/." "$deb/"
cat >"$deb/DEBIAN/control" <<EOF
Package: gpbackup-s3-plugin
Version: $version
Architecture: amd64
Maintainer: gpbackup_s3_plugin developers
Installed-Size: $(du -sk "$root" | cut -f1)
Depends: $depends
Section: database
Priority: optional
Description: $summary
$(fold -s -w 72 <<<"$about" | sed 's/ *$//; s/^/ /')
EOF
dpkg-deb --root-owner-group -Zxz --build "$deb" "$out/gpbackup-s3-plugin_${version}_amd64.deb" >&2

# .rpm. Its Requires come from the binary's own symbol versions
# (libc.so.6(GLIBC_2.17)(64bit), ...), so yum/dnf check the floor too.
# gzip payload and no build-id links: rpm 4.11 (RHEL 7) reads it.
mkdir -p "$stage/rpm"
cat >"$stage/rpm/gpbackup_s3_plugin.spec" <<EOF
Name: gpbackup_s3_plugin
Version: $version
Release: 1
Summary: $summary
License: Apache-2.0
%global debug_package %{nil}
%global __os_install_post %{nil}
%global _build_id_links none

%description
$about

%install
cp -a "$root/." "%{buildroot}/"

%files
%defattr(-,root,root,-)
$prefix
EOF
"$rpmbuild" -bb --quiet --target x86_64-linux \
    --define "_topdir $stage/rpm" \
    --define "_rpmdir $out" \
    --define '_build_name_fmt %{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}.rpm' \
    --define '_binary_payload w9.gzdio' \
    "$stage/rpm/gpbackup_s3_plugin.spec" >&2

(cd "$out" && sha256sum gpbackup_s3_plugin "$name.tar.gz" "gpbackup-s3-plugin_${version}_amd64.deb" \
    "gpbackup_s3_plugin-$version-1.x86_64.rpm" >SHA256SUMS)
echo "dist: glibc $glibc or newer; in $out:"
find "$out" -maxdepth 1 -type f -printf '%10s  %f\n' | sort -k2

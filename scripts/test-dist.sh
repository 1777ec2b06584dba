#!/usr/bin/env bash
# `make test-dist` (after `make dist`; CI runs it after `make test`): checks
# what dist/ holds, with the executable that will run on the hosts.
#
# 1. dist/gpbackup_s3_plugin passes scripts/check-portable.sh (glibc 2.17
#    symbols, only libraries every host has, stripped, the version lines).
# 2. The tarball's SHA256SUMS match; the .deb (dpkg-deb -x into a scratch
#    root) and the .rpm (rpm2archive) hold that same executable under
#    /opt/gpbackup_s3_plugin/bin, which runs from there; the packages'
#    dependencies ask for no glibc newer than the floor, and the .rpm for
#    no rpm feature RHEL 7's rpm lacks.
# 3. The protocol tests (tests/it/protocol.rs) run against it
#    (PLUGIN_UNDER_TEST), with s3s-fs as the server.
# 4. The check can fail: it refuses the dist executable against glibc 2.16,
#    the development build (target/release, linked against this machine's
#    glibc when that is newer than 2.17) and git (it links zlib).
# 5. The demo (scripts/demo.sh) runs with it (PLUGIN=...), PostgreSQL's
#    COPY ... PROGRAM step included when PostgreSQL is there.
#
# What cannot be checked here: a run on an actual glibc 2.17 userland.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo"
glibc=${DIST_GLIBC:-2.17}
prefix=/opt/gpbackup_s3_plugin
bin=$repo/dist/gpbackup_s3_plugin

step() { printf '\n--- test-dist: %s\n' "$*"; }
fail() {
    echo "test-dist: FAILED: $*" >&2
    exit 1
}
[ -x "$bin" ] || fail "$bin is missing: run make dist first"
version=$("$bin" --version | awk '{ print $3 }')
scratch=$(mktemp -d "${TMPDIR:-/tmp}/gpbackup-s3-test-dist.XXXXXX")
trap 'rm -rf -- "$scratch"' EXIT

step "portability of dist/gpbackup_s3_plugin"
bash "$here/check-portable.sh" "$bin" "$glibc"
"$bin" version --build

step "checksums"
(cd dist && sha256sum -c SHA256SUMS)
name=gpbackup_s3_plugin-$version-linux-x86_64
tar -xzf "dist/$name.tar.gz" -C "$scratch"
(cd "$scratch/$name" && sha256sum -c --quiet SHA256SUMS) || fail "the tarball's SHA256SUMS do not match"
cmp "$bin" "$scratch/$name/gpbackup_s3_plugin" || fail "the tarball's executable differs from dist/gpbackup_s3_plugin"
for f in README.md LICENSE; do
    [ -f "$scratch/$name/$f" ] || fail "the tarball lacks $f"
done
n=$(find "$scratch/$name/plugin-config-examples" -name '*.yaml' | wc -l)
[ "$n" -gt 0 ] || fail "the tarball lacks the plugin-config-examples"
echo "tarball: $(tar -tzf "dist/$name.tar.gz" | wc -l) entries, executable identical, SHA256SUMS match"

step "the .deb, unpacked into a scratch root"
deb=dist/gpbackup-s3-plugin_${version}_amd64.deb
dpkg-deb --info "$deb" | sed -n 's/^ \(Package\|Version\|Architecture\|Depends\):/&/p'
dpkg-deb --contents "$deb"
depends=$(dpkg-deb --field "$deb" Depends)
[[ $depends == *"libc6 (>= $glibc)"* ]] || fail ".deb Depends '$depends' does not say libc6 (>= $glibc)"
dpkg-deb -x "$deb" "$scratch/deb"
cmp "$bin" "$scratch/deb$prefix/bin/gpbackup_s3_plugin" || fail "the .deb's executable differs"
"$scratch/deb$prefix/bin/gpbackup_s3_plugin" --version

step "the .rpm"
rpm=dist/gpbackup_s3_plugin-$version-1.x86_64.rpm
rpm -K --nosignature "$rpm"
rpm -qip "$rpm" 2>/dev/null | grep -E '^(Name|Version|Release|Architecture|License) '
rpm -qlp "$rpm" 2>/dev/null
requires=$(rpm -qp --requires "$rpm" 2>/dev/null)
while read -r r; do echo "Requires: $r"; done <<<"$requires"
while read -r v; do
    newest=$(printf '%s\n%s\n' "$v" "$glibc" | sort -V | tail -n 1)
    [ "$newest" = "$glibc" ] || fail ".rpm requires GLIBC_$v, newer than $glibc"
done < <(grep -o 'GLIBC_[0-9.]*' <<<"$requires" | sed 's/^GLIBC_//' | sort -uV)
# RHEL 7's rpm 4.11 knows these rpmlib features; a newer rpmbuild could ask
# for others (zstd payloads, say) that it would refuse.
while read -r feature; do
    case $feature in
        'rpmlib(CompressedFileNames)' | 'rpmlib(FileDigests)' | 'rpmlib(PayloadFilesHavePrefix)') ;;
        *) fail ".rpm requires $feature, which RHEL 7's rpm may not have" ;;
    esac
done < <(grep -o 'rpmlib([A-Za-z]*)' <<<"$requires")
mkdir -p "$scratch/rpm"
# rpm2archive (rpm 4.15+) turns the payload into a tar stream: no cpio needed.
rpm2archive - <"$rpm" | tar -xzf - -C "$scratch/rpm"
cmp "$bin" "$scratch/rpm$prefix/bin/gpbackup_s3_plugin" || fail "the .rpm's executable differs"
"$scratch/rpm$prefix/bin/gpbackup_s3_plugin" --version

step "protocol tests against dist/gpbackup_s3_plugin"
bash "$here/ensure-s3s-fs.sh" >/dev/null
PLUGIN_UNDER_TEST=$bin cargo test --release --test it protocol::

step "the portability check refuses what would not run on every host"
# A check that always passes proves nothing: each of these must fail, for
# the reason given.
refuses() {
    local bin=$1 floor=$2 reason=$3 out
    if out=$(bash "$here/check-portable.sh" "$bin" "$floor" 2>&1); then
        fail "check-portable.sh passed $bin against glibc $floor; it must refuse it ($reason)"
    fi
    grep -qE -- "$reason" <<<"$out" || fail "check-portable.sh refused $bin, but not for '$reason':
$out"
    echo "refused $bin (glibc $floor): $(grep -E -m 1 -- "$reason" <<<"$out" | sed 's/^ *- //' | cut -c 1-100)"
}
# The dist executable itself, against a floor below the one it needs.
refuses "$bin" 2.16 "needs GLIBC_2\.17 \(newer than 2\.16\)"
# The development build, linked against this machine's glibc.
host_glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{ print $2 }')
if [ -n "$host_glibc" ] && [ "$(printf '%s\n%s\n' "$host_glibc" "$glibc" | sort -V | tail -n 1)" != "$glibc" ]; then
    [ -x target/release/gpbackup_s3_plugin ] || fail "target/release/gpbackup_s3_plugin is missing"
    refuses target/release/gpbackup_s3_plugin "$glibc" "needs GLIBC_[0-9.]+ \(newer than $glibc\)"
else
    echo "this machine's glibc (${host_glibc:-unknown}) is not newer than $glibc: its own builds may well be portable"
fi
# An executable that links a library some hosts lack (git: zlib, PCRE2).
git_bin=$(command -v git) || fail "git is needed for this check"
refuses "$git_bin" "$glibc" "links [^ ]+, which is not on every host"

step "the demo with dist/gpbackup_s3_plugin"
PLUGIN=$bin bash "$here/demo.sh"

printf '\ntest-dist: dist/ is portable to glibc %s, packaged identically, and passes the protocol tests and the demo\n' "$glibc"

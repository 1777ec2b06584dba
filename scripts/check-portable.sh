#!/usr/bin/env bash
# Fail unless an executable of the plugin runs on every supported Greenplum
# host (RHEL/CentOS 7 with glibc 2.17 being the oldest):
#
#     bash scripts/check-portable.sh BINARY [GLIBC]     (GLIBC: 2.17)
#
# - an x86-64 ELF executable asking for the standard loader
#   /lib64/ld-linux-x86-64.so.2;
# - it links nothing but libc, libm, libgcc_s, libpthread, libdl, librt and
#   the loader, which every glibc system has (no OpenSSL, no libstdc++: their
#   versions differ from host to host);
# - no dynamic symbol needs a glibc newer than GLIBC (GLIBC_PRIVATE neither),
#   and none of libgcc_s needs more than GCC_4.8.0 (RHEL 7's gcc 4.8.5);
# - stripped (no symbol table, no debug sections);
# - `--version` is the three tokens gpbackup parses, and `version --build`
#   says it is a portable build for GLIBC.
#
# The dynamic linker reads the same tables (readelf -d, readelf -V): a
# binary that passes loads on a host whose glibc is GLIBC or newer. Prints
# a summary on success; on failure, every problem with the symbols at fault.
# Needs binutils (readelf, objdump).
set -euo pipefail

bin=${1:?usage: check-portable.sh BINARY [GLIBC]}
floor=${2:-2.17}
gcc_floor=4.8.0
allowed=(libc.so.6 libm.so.6 libgcc_s.so.1 libpthread.so.0 libdl.so.2 librt.so.1 ld-linux-x86-64.so.2)

for tool in readelf objdump sort; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "check-portable: '$tool' is needed (Debian: apt-get install binutils)" >&2
        exit 1
    }
done
[ -x "$bin" ] || {
    echo "check-portable: $bin is not an executable file" >&2
    exit 1
}

problems=()
problem() { problems+=("$*"); }
# True when version $1 is newer than $2.
newer() { [ "$1" != "$2" ] && [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | tail -n 1)" = "$1" ]; }

header=$(readelf -h "$bin")
grep -q 'Class:[[:space:]]*ELF64' <<<"$header" || problem "not a 64-bit ELF file"
grep -q 'Machine:[[:space:]]*Advanced Micro Devices X86-64' <<<"$header" || problem "not an x86-64 executable"

interp=$(readelf -l "$bin" | sed -n 's/.*\[Requesting program interpreter: \(.*\)\]/\1/p')
[ "$interp" = /lib64/ld-linux-x86-64.so.2 ] || problem "program interpreter is '${interp:-none}', not /lib64/ld-linux-x86-64.so.2"

mapfile -t needed < <(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
for lib in "${needed[@]}"; do
    ok=0
    for a in "${allowed[@]}"; do [ "$lib" = "$a" ] && ok=1; done
    [ "$ok" = 1 ] || problem "links $lib, which is not on every host (allowed: ${allowed[*]})"
done

# Every versioned dynamic symbol, as "VERSION SYMBOL".
symbols=$(objdump -T "$bin" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\(?(GLIBC|GCC)_/) { v = $i; gsub(/[()]/, "", v); print v, $NF } }')
# The versions the loader checks (.gnu.version_r), which also covers
# versions no listed symbol carries.
required=$(readelf -V "$bin" | sed -n 's/.*Name: \([A-Z]*_[0-9A-Z_.]*\).*/\1/p' | sort -uV)

max_glibc=
for v in $required; do
    case $v in
        GLIBC_PRIVATE)
            problem "needs GLIBC_PRIVATE: $(awk '$1 == "GLIBC_PRIVATE" { print $2 }' <<<"$symbols" | tr '\n' ' ')"
            ;;
        GLIBC_[0-9]*)
            n=${v#GLIBC_}
            if newer "$n" "$floor"; then
                problem "needs $v (newer than $floor): $(awk -v v="$v" '$1 == v { print $2 }' <<<"$symbols" | sort -u | tr '\n' ' ')"
            fi
            if [ -z "$max_glibc" ] || newer "$n" "$max_glibc"; then max_glibc=$n; fi
            ;;
        GCC_[0-9]*)
            n=${v#GCC_}
            if newer "$n" "$gcc_floor"; then
                problem "needs libgcc_s $v (newer than GCC_$gcc_floor): $(awk -v v="$v" '$1 == v { print $2 }' <<<"$symbols" | sort -u | tr '\n' ' ')"
            fi
            ;;
        *)
            problem "needs symbol version $v of a library that is not allowed"
            ;;
    esac
done

sections=$(readelf -S -W "$bin")
if grep -qE '[[:space:]]\.(symtab|debug_[a-z]+)[[:space:]]' <<<"$sections"; then
    problem "not stripped (has .symtab or .debug_* sections)"
fi

if version=$("$bin" --version 2>&1); then
    read -r -a tokens <<<"$version"
    if [ "${#tokens[@]}" -ne 3 ] || [ "${tokens[0]}" != gpbackup_s3_plugin ] || [ "${tokens[1]}" != version ]; then
        problem "--version prints '$version', not 'gpbackup_s3_plugin version X.Y.Z'"
    fi
else
    problem "--version fails here: $version"
fi
glibc_line=$("$bin" version --build 2>&1 | sed -n 's/^glibc: //p') || true
[ "$glibc_line" = "$floor or newer (portable build)" ] ||
    problem "version --build says 'glibc: ${glibc_line:-?}', not '$floor or newer (portable build)'"

if [ "${#problems[@]}" -gt 0 ]; then
    echo "check-portable: $bin is not portable to glibc $floor:" >&2
    printf '  - %s\n' "${problems[@]}" >&2
    exit 1
fi
echo "check-portable: $bin is portable: glibc $floor or newer"
echo "  libraries:      ${needed[*]}"
echo "  glibc versions: $(grep '^GLIBC_' <<<"$required" | tr '\n' ' ')(newest $max_glibc)"
gcc_versions=$(grep '^GCC_' <<<"$required" | tr '\n' ' ') || true
echo "  libgcc_s:       ${gcc_versions:-not linked}"
echo "  stripped, $(wc -c <"$bin" | tr -d ' ') bytes; $version"

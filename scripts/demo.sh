#!/usr/bin/env bash
# `make demo`: replay, against a throw-away local S3 server (s3s-fs), the
# plugin calls that gpbackup, gpbackup_helper, the segments' COPY ... PROGRAM
# and gprestore make for a tiny cluster: a coordinator (content -1) and two
# segments (contents 0 and 1). Every call is made exactly as the Greenplum
# tools make it (same arguments, quoting, stdin/stdout use and file names),
# and every restored byte is compared with the original.
#
# Needs a release build (target/release/gpbackup_s3_plugin, or PLUGIN=path),
# bash, python3, coreutils, gzip, awk. Installs s3s-fs if it is missing
# (scripts/ensure-s3s-fs.sh, a few minutes the first time).
# Set KEEP=1 to keep the demo's local directory for inspection.
#
# Then, with a real PostgreSQL server (scripts/postgres.sh: a throw-away
# cluster under /tmp on a free port), a database table is backed up with
# `COPY ... TO PROGRAM 'gzip -c -1 | gpbackup_s3_plugin backup_data ...'`,
# dropped, and restored with `COPY ... FROM PROGRAM 'gpbackup_s3_plugin
# restore_data ... | gzip -d -c'`, exactly as Greenplum segments run them.
# When PostgreSQL is missing, the demo installs Debian's postgresql package
# if it can (root, or sudo without a password); DEMO_POSTGRES=0 skips this
# step.
#
# Narration goes to this script's stdout; the plugin's stderr is left
# visible; data never passes through the terminal. Any failed call or check
# stops the demo with a non-zero exit status.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
PLUGIN=${PLUGIN:-$repo/target/release/gpbackup_s3_plugin}

# fd 3 = the terminal/stdout of the script, for narration from inside pipes.
exec 3>&1

step() { printf '\n==> %s\n' "$*" >&3; }
say() { printf '    %s\n' "$*" >&3; }
ok() { printf '    ok: %s\n' "$*" >&3; }
fail() {
    printf '\nDEMO FAILED: %s\n' "$*" >&2
    exit 1
}
# Show plugin output (or any listing) indented, so it stands apart.
show() { sed 's/^/    | /' >&3; }
# Run the plugin, echoing the command line (with the long paths shortened).
plugin() {
    local line="gpbackup_s3_plugin $*"
    line=${line//"$DEMO"/\$DEMO}
    printf '    $ %s\n' "$line" >&3
    "$PLUGIN" "$@"
}
# Size of a file in bytes.
size_of() { wc -c <"$1" | tr -d ' '; }

if [ ! -x "$PLUGIN" ]; then
    fail "$PLUGIN not found: build it first (cargo build --release, or make demo)"
fi
for tool in python3 gzip awk cmp sha256sum seq; do
    command -v "$tool" >/dev/null 2>&1 || fail "this demo needs '$tool'"
done

step "Preparing: a local S3 server (s3s-fs) with an empty bucket"
S3S_FS=$("$here/ensure-s3s-fs.sh")
export S3S_FS
# shellcheck source=s3s-fs-server.sh
source "$here/s3s-fs-server.sh"
# shellcheck source=postgres.sh
source "$here/postgres.sh"

DEMO=$(mktemp -d /tmp/gpbackup-s3-demo.XXXXXX)
cleanup() {
    local rc=$?
    pg_stop || true
    s3_stop || true
    if [ "${KEEP:-0}" = 1 ]; then
        printf '\n(KEEP=1: demo files left in %s)\n' "$DEMO" >&3 || true
    else
        rm -rf -- "$DEMO" || true
    fi
    return "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

s3_start_s3s_fs gpbackup-demo
say "s3s-fs $S3S_FS"
say "listening on $S3_ENDPOINT (pid $S3_PID), bucket '$S3_BUCKET', data in $S3_ROOT"
say "demo directory \$DEMO = $DEMO"

TS=$(date +%Y%m%d%H%M%S)
DATE=${TS:0:8}
FOLDER=demo/cluster1
PREFIX=$FOLDER/backups/$DATE/$TS

# The plugin config as gpbackup hands it to the plugin: the user's options
# plus pgport and backup_plugin_version, keys sorted, strings quoted where
# YAML would otherwise read them as something else.
CFG=$DEMO/${TS}_s3_config.yaml
BACKUP_CFG=$CFG
(
    umask 077
    cat >"$CFG" <<EOF
executablepath: $PLUGIN
options:
  aws_access_key_id: $S3_ACCESS_KEY
  aws_secret_access_key: $S3_SECRET_KEY
  backup_plugin_version: ""
  bucket: $S3_BUCKET
  encryption: "off"
  endpoint: $S3_ENDPOINT
  folder: $FOLDER
  pgport: "5432"
  region: us-east-1
EOF
)
say "plugin config (as gpbackup writes it to /tmp/<ts>_<name> on every host):"
sed -e 's/^\(  aws_secret_access_key:\).*/\1 <random>/' "$CFG" | show

COORD_DIR=$DEMO/coord/gpseg-1/backups/$DATE/$TS
SEG_DIR=("$DEMO/seg0/gpseg0/backups/$DATE/$TS" "$DEMO/seg1/gpseg1/backups/$DATE/$TS")
SEGS=(0 1)
mkdir -p "$COORD_DIR" "${SEG_DIR[@]}" "$DEMO/expected" "$DEMO/restored"
say "backup timestamp $TS; backup directories (gpbackup creates them before calling the plugin):"
say "  coordinator (content -1): \$DEMO/coord/gpseg-1/backups/$DATE/$TS"
for n in "${SEGS[@]}"; do
    say "  segment $n:                \$DEMO/seg$n/gpseg$n/backups/$DATE/$TS"
done

# Run the commands of one hook wave in parallel, as gpbackup does, and
# fail if any of them failed.
wave() {
    local pids=() pid
    while [ $# -gt 0 ]; do
        # Arguments come in groups separated by "--".
        local args=()
        while [ $# -gt 0 ] && [ "$1" != -- ]; do
            args+=("$1")
            shift
        done
        [ $# -gt 0 ] && shift
        plugin "${args[@]}" &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do
        wait "$pid" || fail "a hook call failed"
    done
}

###########################################################################
step "1. Version checks (gpbackup and gprestore start with these on every host)"
api=$(plugin plugin_api_version)
say "-> $api"
[ "$api" = 0.5.0 ] || fail "plugin_api_version printed '$api', expected 0.5.0"
version=$(plugin --version)
say "-> $version"
read -r -a tokens <<<"$version"
if [ "${#tokens[@]}" -ne 3 ] || [ "${tokens[1]}" != version ]; then
    fail "--version must print '<name> version <version>' (3 words); got '$version'"
fi
ok "API 0.5.0, plugin version ${tokens[2]}"

###########################################################################
step "2. setup_plugin_for_backup: coordinator, then once per segment as 'segment_host', then as 'segment'"
say "(content ids are passed with literal double quotes, exactly as gpbackup's 'bash -c' leaves them)"
plugin setup_plugin_for_backup "$CFG" "$COORD_DIR" master '"-1"'
wave setup_plugin_for_backup "$CFG" "${SEG_DIR[0]}" segment_host -- \
    setup_plugin_for_backup "$CFG" "${SEG_DIR[1]}" segment_host
wave setup_plugin_for_backup "$CFG" "${SEG_DIR[0]}" segment '"0"' -- \
    setup_plugin_for_backup "$CFG" "${SEG_DIR[1]}" segment '"1"'
ok "setup hooks succeeded"

###########################################################################
step "3. Table data from the segments"
declare -A SDF_OFF # per segment: "s1 e1 s2 e2 s3 e3" of three tables in the SDF stream
for n in "${SEGS[@]}"; do
    dir=${SEG_DIR[$n]}
    # Table 16384: 200,000 rows of text-format COPY output.
    seq 1 200000 | awk -v seg="$n" '{print $1 "\tname-" $1 "-seg" seg "\t" ($1 * 3.14)}' >"$DEMO/expected/t16384_seg$n"
    # Two more small tables for the single-data-file stream.
    seq 1 3000 | awk -v seg="$n" '{print "row " $1 " of t16390 on segment " seg}' >"$DEMO/expected/t16390_seg$n"
    seq 1 500 | awk '{print $1 "\t" ($1 % 7 == 0 ? "\\N" : "x" $1)}' >"$DEMO/expected/t16402_seg$n"

    say "segment $n, multi-data-file backup (one COPY ... TO PROGRAM per table):"
    say "  COPY public.t16384 TO PROGRAM 'gzip -c -1 | gpbackup_s3_plugin backup_data <cfg> <file>' ON SEGMENT"
    gzip -c -1 <"$DEMO/expected/t16384_seg$n" |
        plugin backup_data "$CFG" "$dir/gpbackup_${n}_${TS}_16384.gz"
    gzip -c -1 <"$DEMO/expected/t16384_seg$n" >"$DEMO/expected/gpbackup_${n}_${TS}_16384.gz"

    say "segment $n, single-data-file backup without compression (gpbackup_helper streams all tables into one plugin process):"
    cat "$DEMO/expected/t16384_seg$n" "$DEMO/expected/t16390_seg$n" "$DEMO/expected/t16402_seg$n" \
        >"$DEMO/expected/gpbackup_${n}_${TS}"
    plugin backup_data "$CFG" "$dir/gpbackup_${n}_${TS}" <"$DEMO/expected/gpbackup_${n}_${TS}"
    a=$(size_of "$DEMO/expected/t16384_seg$n")
    b=$(size_of "$DEMO/expected/t16390_seg$n")
    c=$(size_of "$DEMO/expected/t16402_seg$n")
    SDF_OFF[$n]="0 $a $a $((a + b)) $((a + b)) $((a + b + c))"
    # The helper's segment table of contents: each table's byte range.
    cat >"$dir/gpbackup_${n}_${TS}_toc.yaml" <<EOF
dataentries:
  16384:
    startbyte: 0
    endbyte: $a
  16390:
    startbyte: $a
    endbyte: $((a + b))
  16402:
    startbyte: $((a + b))
    endbyte: $((a + b + c))
EOF
    say "  segment TOC (byte ranges of the tables), pushed by gpbackup over ssh:"
    plugin backup_file "$CFG" "$dir/gpbackup_${n}_${TS}_toc.yaml" | show
    ok "segment $n: $(size_of "$DEMO/expected/gpbackup_${n}_${TS}_16384.gz") bytes gzip'd table, $(size_of "$DEMO/expected/gpbackup_${n}_${TS}") bytes SDF stream"
done

###########################################################################
step "4. Coordinator metadata files (written locally by gpbackup, then pushed with backup_file)"
cat >"$COORD_DIR/gpbackup_${TS}_metadata.sql" <<EOF
SET client_encoding = 'UTF8';

CREATE SCHEMA IF NOT EXISTS public;

CREATE TABLE public.t16384 (
	id integer,
	name text,
	score numeric
) DISTRIBUTED BY (id);

CREATE TABLE public.t16390 (
	line text
) DISTRIBUTED RANDOMLY;

CREATE TABLE public.t16402 (
	id integer,
	val text
) DISTRIBUTED BY (id);
EOF
cat >"$COORD_DIR/gpbackup_${TS}_toc.yaml" <<EOF
globalentries: []
predataentries:
- schema: public
  name: t16384
  objecttype: TABLE
  startbyte: 54
  endbyte: 149
dataentries:
- schema: public
  name: t16384
  oid: 16384
  attributestring: (id, name, score)
  rowsCopiedToSegments: 400000
- schema: public
  name: t16390
  oid: 16390
  attributestring: (line)
  rowsCopiedToSegments: 6000
- schema: public
  name: t16402
  oid: 16402
  attributestring: (id, val)
  rowsCopiedToSegments: 1000
EOF
cat >"$COORD_DIR/gpbackup_${TS}_config.yaml" <<EOF
backupdir: ""
backupversion: 1.30.5
compressed: true
compressiontype: gzip
databasename: demo
databaseversion: 7.1.0
plugin: $PLUGIN
pluginversion: ${tokens[2]}
singledatafile: false
timestamp: "$TS"
EOF
for f in metadata.sql toc.yaml config.yaml; do
    plugin backup_file "$CFG" "$COORD_DIR/gpbackup_${TS}_$f" | show
    [ -f "$COORD_DIR/gpbackup_${TS}_$f" ] || fail "backup_file removed the local file"
done
cat >"$COORD_DIR/gpbackup_${TS}_report" <<EOF
Greenplum Database Backup Report

timestamp key:         $TS
database name:         demo
plugin executable:     $PLUGIN
backup status:         Success
EOF
say "at the end of the backup, the report:"
plugin backup_file "$CFG" "$COORD_DIR/gpbackup_${TS}_report" | show
ok "local copies kept, as gpbackup expects"

###########################################################################
step "5. cleanup_plugin_for_backup at the three scopes"
plugin cleanup_plugin_for_backup "$CFG" "$COORD_DIR" master '"-1"'
wave cleanup_plugin_for_backup "$CFG" "${SEG_DIR[0]}" segment_host -- \
    cleanup_plugin_for_backup "$CFG" "${SEG_DIR[1]}" segment_host
wave cleanup_plugin_for_backup "$CFG" "${SEG_DIR[0]}" segment '"0"' -- \
    cleanup_plugin_for_backup "$CFG" "${SEG_DIR[1]}" segment '"1"'
ok "backup finished"

###########################################################################
step "6. What is stored: list_directory $FOLDER (key and size of every object)"
plugin list_directory "$CFG" "$FOLDER" >"$DEMO/listing"
show <"$DEMO/listing"
say "the same objects as plain files in the server's directory:"
(cd "$S3_ROOT/$S3_BUCKET" && find . -type f -printf '%10s  %P\n' | sort -k2) | show
# Every file gpbackup handed over must be listed, under <folder>/backups/<date>/<ts>/,
# with its exact size.
expect_key() { # LOCAL_PATH FILE_WITH_THE_EXPECTED_SIZE
    local key size listed
    key=$PREFIX/$(basename "$1")
    size=$(size_of "$2")
    listed=$(awk -v k="$key" '$1 == k { print $NF }' "$DEMO/listing")
    [ -n "$listed" ] || fail "list_directory does not show $key"
    [ "$listed" = "$size" ] || fail "list_directory shows $key with $listed bytes, expected $size"
}
count=0
for f in metadata.sql toc.yaml config.yaml report; do
    expect_key "$COORD_DIR/gpbackup_${TS}_$f" "$COORD_DIR/gpbackup_${TS}_$f"
    count=$((count + 1))
done
for n in "${SEGS[@]}"; do
    expect_key "${SEG_DIR[$n]}/gpbackup_${n}_${TS}_16384.gz" "$DEMO/expected/gpbackup_${n}_${TS}_16384.gz"
    expect_key "${SEG_DIR[$n]}/gpbackup_${n}_${TS}" "$DEMO/expected/gpbackup_${n}_${TS}"
    expect_key "${SEG_DIR[$n]}/gpbackup_${n}_${TS}_toc.yaml" "${SEG_DIR[$n]}/gpbackup_${n}_${TS}_toc.yaml"
    count=$((count + 3))
done
ok "all $count files are stored under $PREFIX/ with the right sizes"

###########################################################################
step "7. setup_plugin_for_restore at the three scopes (gprestore)"
# gprestore writes its own copy of the config, named after the restore's
# start time, with backup_plugin_version = the version recorded at backup.
RTS=$(date +%Y%m%d%H%M%S)
mkdir -p "$DEMO/gprestore"
CFG=$DEMO/gprestore/${RTS}_s3_config.yaml
(
    umask 077
    sed -e "s/^  backup_plugin_version: .*/  backup_plugin_version: \"${tokens[2]}\"/" \
        "$BACKUP_CFG" >"$CFG"
)
say "gprestore's config copy: \$DEMO/gprestore/${RTS}_s3_config.yaml, with backup_plugin_version: \"${tokens[2]}\""
plugin setup_plugin_for_restore "$CFG" "$COORD_DIR" master '"-1"'
wave setup_plugin_for_restore "$CFG" "${SEG_DIR[0]}" segment_host -- \
    setup_plugin_for_restore "$CFG" "${SEG_DIR[1]}" segment_host
wave setup_plugin_for_restore "$CFG" "${SEG_DIR[0]}" segment '"0"' -- \
    setup_plugin_for_restore "$CFG" "${SEG_DIR[1]}" segment '"1"'
ok "restore hooks succeeded"

###########################################################################
step "8. restore_file: the coordinator's metadata, fetched back to where gprestore expects it"
cp "$COORD_DIR/gpbackup_${TS}_metadata.sql" "$DEMO/expected/metadata.sql"
rm "$COORD_DIR/gpbackup_${TS}_metadata.sql"
say "local gpbackup_${TS}_metadata.sql deleted"
plugin restore_file "$CFG" "$COORD_DIR/gpbackup_${TS}_metadata.sql" | show
cmp "$DEMO/expected/metadata.sql" "$COORD_DIR/gpbackup_${TS}_metadata.sql" ||
    fail "restored metadata differs from the original"
ok "metadata.sql restored byte for byte"
for n in "${SEGS[@]}"; do
    cp "${SEG_DIR[$n]}/gpbackup_${n}_${TS}_toc.yaml" "$DEMO/expected/toc_seg$n.yaml"
    rm "${SEG_DIR[$n]}/gpbackup_${n}_${TS}_toc.yaml"
    plugin restore_file "$CFG" "${SEG_DIR[$n]}/gpbackup_${n}_${TS}_toc.yaml" | show
    cmp "$DEMO/expected/toc_seg$n.yaml" "${SEG_DIR[$n]}/gpbackup_${n}_${TS}_toc.yaml" ||
        fail "restored segment $n TOC differs from the original"
done
ok "segment TOCs restored byte for byte"
say "a file that was never backed up must fail (an error message from the plugin is expected here):"
if plugin restore_file "$CFG" "$COORD_DIR/there_is_no_file_to_restore"; then
    fail "restore_file of a missing object succeeded"
fi
rm -f "$COORD_DIR/there_is_no_file_to_restore"
ok "restore_file of a missing object failed, as it must"

###########################################################################
step "9. restore_data: whole table files, as the segments' COPY ... FROM PROGRAM reads them"
for n in "${SEGS[@]}"; do
    dir=${SEG_DIR[$n]}
    say "segment $n: COPY public.t16384 FROM PROGRAM 'gpbackup_s3_plugin restore_data <cfg> <file> | gzip -d -c' ON SEGMENT"
    plugin restore_data "$CFG" "$dir/gpbackup_${n}_${TS}_16384.gz" | gzip -d -c >"$DEMO/restored/t16384_seg$n"
    cmp "$DEMO/expected/t16384_seg$n" "$DEMO/restored/t16384_seg$n" ||
        fail "segment $n: restored table data differs"
    ok "segment $n: $(size_of "$DEMO/restored/t16384_seg$n") bytes, sha256 $(sha256sum <"$DEMO/restored/t16384_seg$n" | cut -c1-16)... identical"

    say "segment $n: the whole single-data-file stream (gpbackup_helper, unfiltered restore):"
    plugin restore_data "$CFG" "$dir/gpbackup_${n}_${TS}" >"$DEMO/restored/sdf_seg$n"
    cmp "$DEMO/expected/gpbackup_${n}_${TS}" "$DEMO/restored/sdf_seg$n" ||
        fail "segment $n: restored SDF stream differs"
    ok "segment $n: SDF stream identical"
done

###########################################################################
step "10. restore_data_subset: only some tables' byte ranges (filtered gprestore of an uncompressed SDF backup)"
say "the offsets file is one line without a newline: N start1 end1 ... (start inclusive, end exclusive)"
# extract FILE START END: bytes [START, END) of FILE.
# (No pipefail here: tail may be cut short by head's exit, which is fine.)
extract() { (set +o pipefail && tail -c +"$(($2 + 1))" "$1" | head -c "$(($3 - $2))"); }
n=0
sdf=$DEMO/expected/gpbackup_${n}_${TS}
offsets=$DEMO/gprestore_offsets_demo1
printf '2 0 100 100 250' >"$offsets"
say "segment $n, offsets '$(cat "$offsets")' (two adjacent ranges):"
plugin restore_data_subset "$CFG" "${SEG_DIR[$n]}/gpbackup_${n}_${TS}" "$offsets" >"$DEMO/restored/subset1"
head -c 250 "$sdf" >"$DEMO/expected/subset1"
cmp "$DEMO/expected/subset1" "$DEMO/restored/subset1" || fail "restore_data_subset '2 0 100 100 250' output differs"
ok "250 bytes, identical to head -c 250"

for n in "${SEGS[@]}"; do
    sdf=$DEMO/expected/gpbackup_${n}_${TS}
    read -r s1 e1 _ _ s3 e3 <<<"${SDF_OFF[$n]}"
    offsets=$DEMO/gprestore_offsets_demo2_seg$n
    printf '2 %s %s %s %s' "$s1" "$e1" "$s3" "$e3" >"$offsets"
    say "segment $n, gprestore --include-table public.t16384 --include-table public.t16402: offsets '$(cat "$offsets")'"
    plugin restore_data_subset "$CFG" "${SEG_DIR[$n]}/gpbackup_${n}_${TS}" "$offsets" >"$DEMO/restored/subset2_seg$n"
    { extract "$sdf" "$s1" "$e1"; extract "$sdf" "$s3" "$e3"; } >"$DEMO/expected/subset2_seg$n"
    cat "$DEMO/expected/t16384_seg$n" "$DEMO/expected/t16402_seg$n" | cmp - "$DEMO/expected/subset2_seg$n" ||
        fail "demo bug: the computed table offsets are wrong"
    cmp "$DEMO/expected/subset2_seg$n" "$DEMO/restored/subset2_seg$n" ||
        fail "segment $n: restore_data_subset output differs"
    ok "segment $n: $(size_of "$DEMO/restored/subset2_seg$n") bytes = tables t16384 + t16402 exactly, t16390 skipped"
done

###########################################################################
step "11. cleanup_plugin_for_restore at the three scopes"
plugin cleanup_plugin_for_restore "$CFG" "$COORD_DIR" master '"-1"'
wave cleanup_plugin_for_restore "$CFG" "${SEG_DIR[0]}" segment_host -- \
    cleanup_plugin_for_restore "$CFG" "${SEG_DIR[1]}" segment_host
wave cleanup_plugin_for_restore "$CFG" "${SEG_DIR[0]}" segment '"0"' -- \
    cleanup_plugin_for_restore "$CFG" "${SEG_DIR[1]}" segment '"1"'
ok "restore finished"

###########################################################################
step "12. delete_backup $TS (what gpbackup_manager / gpbackman call to expire a backup)"
CFG=$BACKUP_CFG # they pass the user's config file
plugin delete_backup "$CFG" "$TS" | show
plugin list_directory "$CFG" "$FOLDER" >"$DEMO/listing"
if [ -s "$DEMO/listing" ]; then
    show <"$DEMO/listing"
    fail "objects are left after delete_backup"
fi
say "list_directory $FOLDER now prints nothing"
left=$(cd "$S3_ROOT/$S3_BUCKET" && find . -type f | wc -l)
[ "$left" -eq 0 ] || fail "$left files are left in the bucket directory"
say "no object files are left under the bucket directory (s3s-fs keeps empty directories and its hidden .json sidecars)"
ok "backup $TS deleted"

###########################################################################
step "13. A real database table, through PostgreSQL's COPY ... TO/FROM PROGRAM (what Greenplum segments run)"
pg_wanted=1
if [ "${DEMO_POSTGRES:-1}" = 0 ]; then
    say "skipped (DEMO_POSTGRES=0)"
    pg_wanted=
elif ! pg_find_bindir >/dev/null 2>&1; then
    say "PostgreSQL is not installed: installing Debian's postgresql package (DEMO_POSTGRES=0 skips this step)"
    if ! pg_install_postgres; then
        say "skipped: PostgreSQL could not be installed here (apt-get install postgresql gzip zstd, then run make demo again)"
        pg_wanted=
    fi
fi
if [ -n "$pg_wanted" ]; then
    pg_start || fail "could not start PostgreSQL"
    say "PostgreSQL $(pg_psql postgres -c 'SHOW server_version') on 127.0.0.1:$PG_PORT, running as OS user '$PG_USER', in $PG_TMPDIR"
    TS3=$(date +%Y%m%d%H%M%S)
    if [ "$TS3" = "$TS" ]; then
        sleep 1
        TS3=$(date +%Y%m%d%H%M%S)
    fi
    # COPY ... PROGRAM commands run as the server's OS user: it gets its own
    # copy of the plugin and of the config gpbackup would generate.
    PG_PLUGIN=$(pg_install_plugin "$PLUGIN")
    sed -e "s|^executablepath: .*|executablepath: $PG_PLUGIN|" "$BACKUP_CFG" >"$DEMO/pg_s3_config.yaml"
    PG_CFG=$(pg_private_copy "$DEMO/pg_s3_config.yaml" "${TS3}_s3_config.yaml")
    pg_psql postgres -q -c "CREATE DATABASE demo"
    pg_psql demo -q -c "CREATE TABLE public.orders (id bigint, customer text, amount numeric(12,2), placed timestamptz, paid boolean, tags text[], note text, attrs jsonb)" \
        -c "INSERT INTO public.orders SELECT g, 'customer ' || (g % 977), round(((g * 1.37) % 10000)::numeric, 2),
                timestamptz '2024-01-01 00:00:00+00' + g * interval '37 seconds', g % 3 = 0,
                ARRAY['t' || (g % 7), 'x,y'], CASE g % 4 WHEN 0 THEN NULL WHEN 1 THEN '' WHEN 2 THEN E'two\nlines, \"quoted\"' ELSE 'ünïcødé ' || g END,
                jsonb_build_object('g', g) FROM generate_series(1, 200000) g"
    checksum="SELECT count(*) || ' rows, md5 ' || md5(string_agg(t::text, '|' ORDER BY id)) FROM public.orders t"
    before=$(pg_psql demo -c "$checksum")
    say "database 'demo', table public.orders: $before"
    OID=$(pg_psql demo -c "SELECT 'public.orders'::regclass::oid")
    SEG0_DIR=$DEMO/seg0/gpseg0/backups/${TS3:0:8}/$TS3
    DATAFILE=$SEG0_DIR/gpbackup_0_${TS3}_$OID.gz
    say "backup $TS3: gpbackup's multi-file COPY, one per table and segment (here one segment, content 0):"
    say "  COPY public.orders TO PROGRAM 'gzip -c -1 | gpbackup_s3_plugin backup_data <cfg> \$DEMO/seg0/gpseg0/backups/${TS3:0:8}/$TS3/gpbackup_0_${TS3}_$OID.gz' WITH CSV DELIMITER ','"
    pg_psql demo -c "COPY public.orders TO PROGRAM 'gzip -c -1 | $PG_PLUGIN backup_data $PG_CFG $DATAFILE' WITH CSV DELIMITER ','" | show
    plugin list_directory "$BACKUP_CFG" "$FOLDER/backups/${TS3:0:8}/$TS3" | show
    pg_psql demo -q -c "DROP TABLE public.orders"
    say "table dropped; gprestore recreates it from the backed-up metadata, then loads its data:"
    pg_psql demo -q -c "CREATE TABLE public.orders (id bigint, customer text, amount numeric(12,2), placed timestamptz, paid boolean, tags text[], note text, attrs jsonb)"
    say "  COPY public.orders FROM PROGRAM 'gpbackup_s3_plugin restore_data <cfg> .../gpbackup_0_${TS3}_$OID.gz | gzip -d -c' WITH CSV DELIMITER ','"
    pg_psql demo -c "COPY public.orders FROM PROGRAM '$PG_PLUGIN restore_data $PG_CFG $DATAFILE | gzip -d -c' WITH CSV DELIMITER ','" | show
    after=$(pg_psql demo -c "$checksum")
    [ "$after" = "$before" ] || fail "the restored table differs: $after, expected $before"
    ok "restored table identical: $after"
    say "the plugin's log, written as '$PG_USER' under the server's HOME:"
    tail -n 2 "$PG_HOME/gpAdminLogs/gpbackup_s3_plugin_$(date +%Y%m%d).log" | show

    say "and when the data is gone: delete_backup $TS3, then the same restore again"
    plugin delete_backup "$BACKUP_CFG" "$TS3" | show
    pg_psql demo -q -c "TRUNCATE public.orders"
    say "(the plugin's exit status is masked by '| gzip -d -c', but gzip gets no data, so the COPY fails; error messages expected:)"
    if out=$(pg_psql demo -c "COPY public.orders FROM PROGRAM '$PG_PLUGIN restore_data $PG_CFG $DATAFILE | gzip -d -c' WITH CSV DELIMITER ','" 2>&1); then
        fail "the COPY of a deleted backup succeeded: $out"
    fi
    printf '%s\n' "$out" | show
    say "the plugin's and gzip's own errors went to the server's log:"
    grep -E 'gpbackup_s3_plugin.*\[ERROR\]|^gzip: ' "$PG_LOG" | tail -n 2 | show
    left=$(pg_psql demo -c "SELECT count(*) FROM public.orders")
    [ "$left" = 0 ] || fail "the failed COPY left $left rows"
    ok "the COPY failed and loaded no row"
    pg_stop
fi

###########################################################################
log_file=$HOME/gpAdminLogs/gpbackup_s3_plugin_$(date +%Y%m%d).log
step "Done: every check passed"
if [ -f "$log_file" ]; then
    say "the plugin's log of these calls: $log_file"
else
    say "the plugin logs to \$HOME/gpAdminLogs/gpbackup_s3_plugin_<date>.log ($HOME/gpAdminLogs/)"
fi
say "stopping the S3 server"

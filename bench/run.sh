#!/usr/bin/env bash
# `make bench`: the plugin against curl, aws-cli and rclone on a local S3
# server, written up in BENCHMARKS.md (issue 3).
#
#   make bench                      # build, then this script
#   BENCH_QUICK=1 bash bench/run.sh # reduced sizes, a few minutes: checks the script
#
# Environment:
#   BENCH_QUICK=1        128 MiB instead of 1 GiB, 512 MiB instead of 8 GiB,
#                        20 small-call pairs, 4 x 32 MiB fan-out, 64 MiB subset
#                        object, 64 MiB checksum buffer
#   BENCH_SERVER=garage|s3s-fs
#                        the S3 server (default: Garage when installed, on
#                        PATH or in ~/.cargo/bin, else s3s-fs, installed by
#                        scripts/ensure-s3s-fs.sh if missing)
#   BENCH_REPS=3         repetitions of each throughput measurement (median)
#   BENCH_OUT=FILE       where to write the report (default BENCHMARKS.md at
#                        the repository root; written only when every step
#                        worked)
#   BENCH_TIMEOUT=1200   seconds allowed to any single measured command
#   BENCH_CHECKSUMS=0    skip the checksum bench (it compiles, and may wait for
#                        cargo's lock while other builds run)
#   PLUGIN=PATH          the plugin binary (default target/release/gpbackup_s3_plugin)
#   BENCH_ONLY=encryption
#                        only section 8 (no checksum bench, no other client):
#                        its table is printed on stdout, BENCHMARKS.md is not
#                        written
#   BENCH_ONLY=network   only section 9 (no checksum bench): its tables on
#                        stdout, BENCHMARKS.md not written
#   BENCH_NET_RTTS="0 10 50"  section 9's round-trip times in ms (quick: "0 50")
#   BENCH_NET_CONN_RATE=25MiB BENCH_NET_TOTAL_RATE=64MiB
#                        section 9's caps per connection and in aggregate
#   BENCH_NET_REPS=1     repetitions of each section 9 cell
#   BENCH_NET_SWEEP="2:8 4:8 ..."  section 9's defaults sweep: requests in
#                        flight : part size in MiB, plugin only
#   BENCH_NET_PLOT=FILE  with BENCH_ONLY=network: draw the plot there (the full
#                        run draws bench/throughput-vs-rtt.png)
#   BENCH_KEEP_RESULTS=DIR  with BENCH_ONLY=network: copy the raw results
#                        (TSV) there (report.py --only network DIR redraws)
#   NETMODEL=PATH        the network model (default
#                        target/release/examples/netmodel; built when missing)
#
# What it measures (all on 127.0.0.1):
#   1. throughput: upload (backup_data from stdin, curl PUT, aws s3 cp -,
#      rclone rcat) and download (restore_data, curl GET, aws s3 cp ... -,
#      rclone cat, all to /dev/null) of a 1 GiB random file, each repeated,
#      median reported, tools interleaved and their order rotated per round;
#   2. peak RSS (/usr/bin/time) of backup_data and restore_data for 1 GiB and
#      for 8 GiB (generated on the fly through a pipe);
#   3. small calls: sequential 1 KiB backup_data + restore_data pairs;
#   4. segment fan-out: concurrent backup_data processes fed through pipes;
#   5. restore_data_subset: bytes on the wire (bench/countproxy.py between
#      the plugin and the server) against bytes requested;
#   6. checksum throughput (cargo bench --bench checksums);
#   8. client-side encryption: backup_data and restore_data of the same
#      random file without encryption, with encryption_recipients (age), and
#      signed as well (encryption_signing_key_file), rotated, median MiB/s
#      and CPU seconds (user + system, GNU time) per GiB; then 1 KiB
#      backup_data + restore_data pairs encrypted and signed (signing's cost
#      per object);
#   9. network model: every tool through examples/netmodel.rs (latency, a
#      TCP-like window, bandwidth caps, optionally TLS) at several RTTs, over
#      HTTP and HTTPS, 1 and 8 processes: MiB/s, CPU s/GiB, peak RSS and the
#      connections, TLS handshakes and requests per call; then 1 KiB calls
#      at each RTT (bench/netbench.py runs the cells).
#
# Installs what is missing when it can: rclone and GNU time from Debian
# (apt-get, as root), aws-cli from PyPI (pip --user). A missing comparison
# tool is reported as n/a; the plugin's own measurements always run.
#
# Every temporary file lives in one directory under /tmp; the server, the
# proxy and any background process are stopped and that directory removed on
# exit, also on failure or Ctrl-C.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)

QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
    BIG_MIB=128 HUGE_MIB=512 SMALL_N=20 FAN_N=4 FAN_MIB=32 SUBSET_MIB=64 CHECKSUM_MIB=64
else
    BIG_MIB=1024 HUGE_MIB=8192 SMALL_N=200 FAN_N=8 FAN_MIB=256 SUBSET_MIB=256 CHECKSUM_MIB=256
fi
REPS=${BENCH_REPS:-3}
PLUGIN=${PLUGIN:-$repo/target/release/gpbackup_s3_plugin}
OUT=${BENCH_OUT:-$repo/BENCHMARKS.md}
CMD_TIMEOUT=${BENCH_TIMEOUT:-1200}
SERVER_CHOICE=${BENCH_SERVER:-auto}
ONLY=${BENCH_ONLY:-}
case $ONLY in '' | encryption | network) ;; *) echo "BENCH_ONLY must be encryption or network (or unset), not '$ONLY'" >&2 && exit 2 ;; esac
NETMODEL=${NETMODEL:-$repo/target/release/examples/netmodel}
if [ "$QUICK" = 1 ]; then
    NET_RTTS=${BENCH_NET_RTTS:-0 50} NET_BIG_MIB=32 NET_PART_MIB=8 NET_SMALL_N=5
else
    NET_RTTS=${BENCH_NET_RTTS:-0 10 50} NET_BIG_MIB=256 NET_PART_MIB=64 NET_SMALL_N=10
fi
NET_PROCS=8
NET_REPS=${BENCH_NET_REPS:-1}
# The defaults sweep (plugin only, at the farthest RTT over HTTPS):
# requests in flight : first part size in MiB, for backup and restore alike.
NET_SWEEP=${BENCH_NET_SWEEP:-2:8 4:8 6:8 8:8 12:8 6:5 6:16 6:32 4:16}
NET_CONN_RATE=${BENCH_NET_CONN_RATE:-25MiB}
# 64 MiB/s in all: on the 2-CPU machine, with the server, the proxy and the
# clients sharing it, 8 curl processes (the cheapest client) reached 70-90
# MiB/s through a 100 MiB/s cap over HTTPS and the uncapped TLS proxy
# 70-120 MiB/s for one stream; a cap the machine cannot deliver would
# measure the CPU, not the modelled link.
NET_TOTAL_RATE=${BENCH_NET_TOTAL_RATE:-64MiB}

FOLDER=bench
DATE=20240101
TS_TP=20240101000001    # throughput
TS_RSS=20240101000002   # peak RSS
TS_SMALL=20240101000003 # small calls
TS_FAN=20240101000004   # fan-out
TS_SUB=20240101000005   # subset
TS_ENC=20240101000006   # encryption
TS_NET=20240101000009   # network model

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    log "FAILED: $*"
    exit 1
}

# ---------------------------------------------------------------- tools

apt_install() {
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || return 1
    log "installing Debian package $1"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$1" >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$1" >/dev/null 2>&1; }
}

for tool in curl openssl python3 timeout awk sha256sum cmp dd head od; do
    command -v "$tool" >/dev/null 2>&1 || die "this benchmark needs '$tool'"
done
[ -x "$PLUGIN" ] || die "$PLUGIN not found: run 'cargo build --release' first (make bench does)"
[ -x /usr/bin/time ] || apt_install time || true
[ -x /usr/bin/time ] || die "/usr/bin/time (GNU time) is missing: apt-get install time"

RCLONE=$(command -v rclone 2>/dev/null || true)
if [ -z "$RCLONE" ] && apt_install rclone; then RCLONE=$(command -v rclone 2>/dev/null || true); fi
[ -n "$RCLONE" ] || log "rclone not available: its columns will read n/a"

AWS=$(command -v aws 2>/dev/null || true)
if [ -z "$AWS" ]; then
    log "aws-cli not found; trying: python3 -m pip install --user awscli"
    if python3 -m pip install -q --user awscli >/dev/null 2>&1; then
        AWS=$(command -v aws 2>/dev/null || true)
        [ -n "$AWS" ] || { [ -x "$HOME/.local/bin/aws" ] && AWS=$HOME/.local/bin/aws; } || true
    fi
fi
[ -n "$AWS" ] || log "aws-cli not available: its columns will read n/a"

# ---------------------------------------------------------------- cleanup

WORK=$(mktemp -d /tmp/gpbackup-bench.XXXXXX)
SERVER_KIND=
BG_PIDS=()
NET_PROXY_PID=
cleanup() {
    local rc=$? p
    if [ -n "$NET_PROXY_PID" ]; then
        kill "$NET_PROXY_PID" 2>/dev/null || true
        wait "$NET_PROXY_PID" 2>/dev/null || true
    fi
    for p in "${BG_PIDS[@]}"; do
        # A fan-out job is a subshell running dd | timeout plugin: stop its
        # children first (timeout passes the signal on to the plugin).
        pkill -TERM -P "$p" 2>/dev/null || true
        kill "$p" 2>/dev/null || true
    done
    for p in "${BG_PIDS[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    case $SERVER_KIND in
    garage) garage_stop || true ;;
    s3s-fs) s3_stop || true ;;
    esac
    if [[ $WORK == /tmp/gpbackup-bench.* ]]; then
        rm -rf -- "$WORK" || true
    fi
    if [ "$rc" != 0 ]; then
        log "stopped with status $rc; BENCHMARKS.md left as it was"
    fi
    return "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

RES=$WORK/results
mkdir -p "$RES" "$WORK/home" "$WORK/local"
PLUGIN_HOME=$WORK/home # the plugin logs to $HOME/gpAdminLogs: keep that here
LOCAL=$WORK/local/gpseg0/backups/$DATE # the local paths gpbackup would pass

meta() { printf '%s\t%s\n' "$1" "$2" >>"$RES/meta.tsv"; }

# ---------------------------------------------------------------- machine

mem_total=$(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
cpu_flags=$(awk -F': ' '/^flags/ {print $2; exit}' /proc/cpuinfo | tr ' ' '\n' |
    grep -xE 'sse4_2|pclmulqdq|vpclmulqdq|avx2|avx512f|sha_ni|aes' | tr '\n' ' ' || true)
meta date "$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
meta quick "$QUICK"
meta reps "$REPS"
meta nproc "$(nproc)"
meta cpu "${cpu_model:-unknown}"
meta cpu_flags "${cpu_flags% }"
meta memory "$mem_total"
meta kernel "$(uname -sr)"
# shellcheck disable=SC1091
meta os "$(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-}")"
meta load_start "$(cut -d' ' -f1-3 /proc/loadavg)"
meta plugin_version "$("$PLUGIN" --version 2>&1 | head -1)"
meta git "$(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$repo" && git diff --quiet HEAD -- src Cargo.toml 2>/dev/null || echo ' (with uncommitted changes)')"
meta rustc "$(rustc --version 2>/dev/null || echo unknown)"
meta curl "$(curl --version | head -1 | cut -d' ' -f1-2)"
meta aws "$([ -n "$AWS" ] && "$AWS" --version 2>&1 | head -1 || echo 'not available')"
meta rclone "$([ -n "$RCLONE" ] && "$RCLONE" version 2>/dev/null | head -1 || echo 'not available')"
meta openssl "$(openssl version | cut -d' ' -f1-2)"
meta python "$(python3 --version 2>&1)"
meta sizes "big=${BIG_MIB}MiB huge=${HUGE_MIB}MiB small=${SMALL_N} fan=${FAN_N}x${FAN_MIB}MiB subset=${SUBSET_MIB}MiB checksum=${CHECKSUM_MIB}MiB"
log "machine: $(nproc) CPUs, ${cpu_model:-?}, $mem_total, load $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$QUICK" = 1 ] && log "BENCH_QUICK=1: reduced sizes"

# ---------------------------------------------------------------- checksums
# First, before any server runs: it may have to compile (and wait for
# cargo's lock while others build).

if [ -n "$ONLY" ]; then
    log "checksum throughput: skipped (BENCH_ONLY=$ONLY)"
elif [ "${BENCH_CHECKSUMS:-1}" = 0 ]; then
    log "checksum throughput: skipped (BENCH_CHECKSUMS=0)"
    echo "Skipped in this run (\`BENCH_CHECKSUMS=0\`)." >"$RES/checksums.md"
else
    log "checksum throughput: cargo bench --bench checksums (${CHECKSUM_MIB} MiB buffer)"
    (cd "$repo" && CHECKSUM_BENCH_MIB=$CHECKSUM_MIB CHECKSUM_BENCH_ITERS=5 \
        timeout -k 10 "$CMD_TIMEOUT" cargo bench -q --bench checksums >"$RES/checksums.md" 2>"$WORK/checksums.err") ||
        { cat "$WORK/checksums.err" >&2; die "cargo bench --bench checksums"; }
fi

# ---------------------------------------------------------------- server

GARAGE_BIN=
find_garage() {
    GARAGE_BIN=$(command -v garage 2>/dev/null || true)
    [ -n "$GARAGE_BIN" ] || { [ -x "$HOME/.cargo/bin/garage" ] && GARAGE_BIN=$HOME/.cargo/bin/garage; } || true
    [ -n "$GARAGE_BIN" ]
}
case $SERVER_CHOICE in
auto) if find_garage; then SERVER_KIND=garage; else SERVER_KIND=s3s-fs; fi ;;
garage)
    find_garage || GARAGE_BIN=$("$repo/scripts/ensure-garage.sh")
    SERVER_KIND=garage
    ;;
s3s-fs) SERVER_KIND=s3s-fs ;;
*) die "BENCH_SERVER must be garage or s3s-fs, not '$SERVER_CHOICE'" ;;
esac

if [ "$SERVER_KIND" = garage ]; then
    # shellcheck source=../scripts/garage-server.sh
    source "$repo/scripts/garage-server.sh"
    GARAGE=$GARAGE_BIN garage_start "$WORK/garage" gpbackup-bench || die "could not start Garage"
    SERVER_DATA=$WORK/garage
    meta server "Garage $("$GARAGE_BIN" --version 2>&1 | head -1 | awk '{print $2}' | sed 's/^cargo://') (single node, sqlite metadata, compression off, 1 MiB blocks, data in /tmp)"
else
    S3S_FS=$("$repo/scripts/ensure-s3s-fs.sh")
    export S3S_FS
    # shellcheck source=../scripts/s3s-fs-server.sh
    source "$repo/scripts/s3s-fs-server.sh"
    s3_start_s3s_fs gpbackup-bench || die "could not start s3s-fs"
    SERVER_DATA=$S3_ROOT
    meta server "$("$S3S_FS" --version 2>&1 | head -1) (plain files in /tmp)"
fi
log "server: $SERVER_KIND on $S3_ENDPOINT (pid $S3_PID)"

BUCKET=$S3_BUCKET
EP=$S3_ENDPOINT

write_config() { # FILE ENDPOINT
    cat >"$1" <<EOF
executablepath: $PLUGIN
options:
  endpoint: $2
  region: us-east-1
  aws_access_key_id: $S3_ACCESS_KEY
  aws_secret_access_key: $S3_SECRET_KEY
  bucket: $BUCKET
  folder: $FOLDER
  encryption: "off"
EOF
}
CFG=$WORK/config.yaml
write_config "$CFG" "$EP"

# aws-cli: keys from the environment, path-style, nothing from ~/.aws.
cat >"$WORK/aws-config" <<EOF
[default]
region = us-east-1
s3 =
    addressing_style = path
EOF
AWS_ENV=(env "AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY" "AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY" AWS_DEFAULT_REGION=us-east-1
    "AWS_CONFIG_FILE=$WORK/aws-config" AWS_SHARED_CREDENTIALS_FILE=/dev/null)
# rclone: a remote "bench" from environment variables only.
: >"$WORK/rclone.conf"
export RCLONE_CONFIG=$WORK/rclone.conf
export RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=Other RCLONE_CONFIG_BENCH_ENV_AUTH=false
export RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=$S3_ACCESS_KEY RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=$S3_SECRET_KEY
# rclone's AWS SDK refuses to start when AWS_CA_BUNDLE is set (as on some
# build machines) even for plain http: drop it for rclone.
RCLONE_CMD=(env -u AWS_CA_BUNDLE "$RCLONE")
export RCLONE_CONFIG_BENCH_ENDPOINT=$EP RCLONE_CONFIG_BENCH_REGION=us-east-1 RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE=true

CURL_S3=(curl -sS --fail --aws-sigv4 "aws:amz:us-east-1:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY"
    -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD')

# Size of an object (HEAD), or nothing.
object_size() {
    "${CURL_S3[@]}" -I "$EP/$BUCKET/$1" 2>/dev/null | tr -d '\r' | awk 'tolower($1) == "content-length:" {print $2}'
}

# ---------------------------------------------------------------- timing

# run_timed CMD...: runs CMD (with the caller's redirections) under a
# timeout and GNU time; writes "SECONDS MAXRSS_KB EXIT_STATUS" to
# $WORK/timing (a file, so that it works inside pipelines too).
run_timed() {
    local t0 t1 rc=0 rss
    t0=$EPOCHREALTIME
    timeout -k 10 "$CMD_TIMEOUT" /usr/bin/time -v -o "$WORK/time.out" "$@" || rc=$?
    t1=$EPOCHREALTIME
    rss=$(awk -F': ' '/Maximum resident set size/ {v = $2} END {print v + 0}' "$WORK/time.out" 2>/dev/null || echo 0)
    awk -v a="$t0" -v b="$t1" -v r="$rss" -v c="$rc" 'BEGIN {printf "%.6f %d %d\n", b - a, r, c}' >"$WORK/timing"
    return 0
}
read_timing() { read -r T_SEC T_RSS T_RC <"$WORK/timing"; }
mibps() { awk -v b="$1" -v s="$2" 'BEGIN {printf "%.1f", b / 1048576 / s}'; }

# Free space (KiB) where the server keeps its data and where our files go.
free_kib() { df -Pk "$1" | awk 'NR == 2 {print $4}'; }

# A fresh random file of N MiB (openssl AES-CTR keystream: fast, incompressible).
make_random() { # FILE MIB PASS
    { openssl enc -aes-128-ctr -pass "pass:$3" -nosalt </dev/zero 2>/dev/null || true; } | head -c "$(($2 << 20))" >"$1"
    [ "$(stat -c %s "$1")" = "$(($2 << 20))" ] || die "could not make $1"
}

BIG=$((BIG_MIB << 20))
need_kib=$(((BIG_MIB * (REPS * 4 + 3) + FAN_N * FAN_MIB * 2 + SUBSET_MIB * 2 + 2048) * 1024))
have_kib=$(free_kib "$WORK")
[ "$have_kib" -ge "$need_kib" ] ||
    die "not enough free space in /tmp: $((have_kib >> 20)) GiB free, about $((need_kib >> 20)) GiB needed (without the ${HUGE_MIB} MiB RSS test)"

# ---------------------------------------------------------------- 9. network model
# Defined here, run after section 6 (or alone with BENCH_ONLY=network).
# One proxy per (RTT, scheme): examples/netmodel.rs between the clients and
# the server; bench/netbench.py runs the cells and reads its counters.

net_proxy_start() { # RTT_MS SCHEME CAPPED(0|1)
    rm -f "$WORK/np.port" "$WORK/np.json" "$WORK/np-ca.pem"
    local a=(--upstream "127.0.0.1:${EP##*:}" --delay "$(($1 * 500))us" --port-file "$WORK/np.port" --stats "$WORK/np.json")
    [ "$3" = 1 ] && a+=(--conn-rate "$NET_CONN_RATE" --total-rate "$NET_TOTAL_RATE")
    [ "$2" = https ] && a+=(--tls-ca-out "$WORK/np-ca.pem")
    "$NETMODEL" "${a[@]}" 2>"$WORK/np.err" &
    NET_PROXY_PID=$!
    local i
    for ((i = 0; i < 100; i++)); do
        [ -s "$WORK/np.port" ] && [ -s "$WORK/np.json" ] && break
        sleep 0.1
    done
    [ -s "$WORK/np.port" ] || { cat "$WORK/np.err" >&2; die "the network model did not start"; }
    NP_EP=$2://127.0.0.1:$(cat "$WORK/np.port")
}
net_proxy_stop() {
    kill -TERM "$NET_PROXY_PID" 2>/dev/null || true
    wait "$NET_PROXY_PID" 2>/dev/null || true
    NET_PROXY_PID=
    if [ -s "$WORK/np.err" ]; then log "  network model stderr: $(head -c 300 "$WORK/np.err")"; fi
}

network_section() {
    if [ ! -x "$NETMODEL" ]; then
        log "building the network model: cargo build --release --example netmodel"
        (cd "$repo" && cargo build --release --example netmodel) || die "cargo build --release --example netmodel"
    fi
    local tools=(plugin) rtt scheme
    command -v gnuplot >/dev/null 2>&1 || apt_install gnuplot-nox || log "gnuplot not available: section 9 without its plot"
    [ -n "$AWS" ] && tools+=(aws)
    [ -n "$RCLONE" ] && tools+=(rclone)
    tools+=(curl)
    log "9. network model: RTT ${NET_RTTS// /, } ms, HTTP and HTTPS, 1 and $NET_PROCS processes, ${NET_BIG_MIB} MiB / ${NET_PROCS}x${NET_PART_MIB} MiB, caps $NET_CONN_RATE per connection, $NET_TOTAL_RATE in all; ${tools[*]}"
    meta net "rtts=${NET_RTTS} conn_rate=${NET_CONN_RATE} total_rate=${NET_TOTAL_RATE} window=4MiB big=${NET_BIG_MIB}MiB procs=${NET_PROCS} part=${NET_PART_MIB}MiB small=${NET_SMALL_N} reps=${NET_REPS} sweep=${NET_SWEEP// /,}"
    make_random "$WORK/net-big.bin" "$NET_BIG_MIB" "bench-net-$$"
    make_random "$WORK/net-part.bin" "$NET_PART_MIB" "bench-netp-$$"
    HOME=$PLUGIN_HOME "$PLUGIN" backup_data "$CFG" "$LOCAL/$TS_NET/net_big" <"$WORK/net-big.bin" || die "backup_data net_big"
    HOME=$PLUGIN_HOME "$PLUGIN" backup_data "$CFG" "$LOCAL/$TS_NET/net_part" <"$WORK/net-part.bin" || die "backup_data net_part"
    export PLUGIN PLUGIN_HOME S3_ACCESS_KEY S3_SECRET_KEY BUCKET FOLDER DATE
    export NET_AWS=$AWS NET_RCLONE=$RCLONE NET_AWS_CONFIG=$WORK/aws-config NET_TS=$TS_NET NET_LOCAL=$LOCAL NET_DIRECT=$EP
    export NET_BIG=$WORK/net-big.bin NET_PART=$WORK/net-part.bin NET_BIG_KEY=net_big NET_PART_KEY=net_part
    export NET_PROCS NET_SMALL_N NET_REPS NET_TIMEOUT=$CMD_TIMEOUT NET_TOOLS="${tools[*]}" NET_SWEEP

    log "9. the model's own ceiling: curl PUT/GET of ${NET_BIG_MIB} MiB direct and through the proxy (no delay, no caps)"
    python3 "$here/netbench.py" ceiling direct "$EP" - "$RES" || die "netbench ceiling direct"
    for scheme in http https; do
        net_proxy_start 0 "$scheme" 0
        python3 "$here/netbench.py" ceiling "proxy-$scheme" "$NP_EP" "$WORK/np-ca.pem" "$RES" || die "netbench ceiling $scheme"
        net_proxy_stop
    done
    for rtt in $NET_RTTS; do
        for scheme in http https; do
            net_proxy_start "$rtt" "$scheme" 1
            python3 "$here/netbench.py" run "$rtt" "$scheme" "${NP_EP##*:}" "$WORK/np.json" "$WORK/np-ca.pem" "$RES" ||
                die "netbench: RTT $rtt ms $scheme"
            net_proxy_stop
        done
    done
    local far=${NET_RTTS##* }
    log "9. defaults sweep at RTT $far ms over HTTPS, plugin only: ${NET_SWEEP}"
    net_proxy_start "$far" https 1
    python3 "$here/netbench.py" sweep "$far" https "${NP_EP##*:}" "$WORK/np.json" "$WORK/np-ca.pem" "$RES" ||
        die "netbench: sweep"
    net_proxy_stop
    rm -f "$WORK/net-big.bin" "$WORK/net-part.bin"
    HOME=$PLUGIN_HOME "$PLUGIN" delete_backup "$CFG" "$TS_NET" || die "delete_backup $TS_NET"
}
if [ "$ONLY" = network ]; then
    network_section
    meta load_end "$(cut -d' ' -f1-3 /proc/loadavg)"
    if [ -n "${BENCH_KEEP_RESULTS:-}" ]; then
        mkdir -p "$BENCH_KEEP_RESULTS" && cp -a "$RES/." "$BENCH_KEEP_RESULTS/" && log "results kept in $BENCH_KEEP_RESULTS"
    fi
    python3 "$here/report.py" --only network "$RES" || die "bench/report.py"
    exit 0
fi

# ---------------------------------------------------------------- 8. encryption
# First of the plugin's own measurements (BENCH_ONLY=encryption stops after
# it). The same file, plain, encrypted, and encrypted and signed (writer
# authentication: encryption_signing_key_file, restores with
# encryption_verify_key), rotated per round so that a change of load hits
# all; CPU time is the plugin's own (GNU time). Then SMALL_N small calls
# encrypted and signed: what signing costs per object.

cpu_seconds() { awk -F': ' '/User time|System time/ {s += $2} END {printf "%.3f", s}' "$WORK/time.out"; }
log "8. client-side encryption: backup_data and restore_data of ${BIG_MIB} MiB, plain, encrypted and signed, $REPS rounds"
command -v age-keygen >/dev/null 2>&1 || apt_install age || true
command -v age-keygen >/dev/null 2>&1 || die "age-keygen is missing: apt-get install age"
age-keygen -o "$WORK/age-key.txt" 2>/dev/null || die "age-keygen"
AGE_PUBLIC=$(age-keygen -y "$WORK/age-key.txt") || die "age-keygen -y"
cp "$CFG" "$WORK/config-enc.yaml"
printf '  encryption_recipients: %s\n  encryption_identity_file: %s\n' "$AGE_PUBLIC" "$WORK/age-key.txt" \
    >>"$WORK/config-enc.yaml"
(umask 077 && openssl genpkey -algorithm ed25519 -out "$WORK/signing.pem") || die "openssl genpkey -algorithm ed25519"
VERIFY_KEY=$(openssl pkey -in "$WORK/signing.pem" -pubout | grep -v -- -----) || die "openssl pkey -pubout"
cp "$WORK/config-enc.yaml" "$WORK/config-sig.yaml"
printf '  encryption_signing_key_file: %s\n  encryption_verify_key: %s\n' "$WORK/signing.pem" "$VERIFY_KEY" \
    >>"$WORK/config-sig.yaml"
enc_cfg() { # MODE
    case $1 in plain) echo "$CFG" ;; encrypted) echo "$WORK/config-enc.yaml" ;; signed) echo "$WORK/config-sig.yaml" ;; esac
}
make_random "$WORK/enc.bin" "$BIG_MIB" "bench-enc-$$"
enc_sha=$(sha256sum <"$WORK/enc.bin" | cut -d' ' -f1)
printf 'op\tmode\trep\tseconds\tcpu_seconds\tbytes\tmaxrss_kb\n' >"$RES/encryption.tsv"
enc_run() { # OP MODE REP
    local cfg
    cfg=$(enc_cfg "$2")
    if [ "$1" = backup_data ]; then
        HOME=$PLUGIN_HOME run_timed "$PLUGIN" backup_data "$cfg" "$LOCAL/$TS_ENC/enc_$2" <"$WORK/enc.bin" 2>"$WORK/err"
    else
        HOME=$PLUGIN_HOME run_timed "$PLUGIN" restore_data "$cfg" "$LOCAL/$TS_ENC/enc_$2" >/dev/null 2>"$WORK/err"
    fi
    read_timing
    [ "$T_RC" = 0 ] && [ ! -s "$WORK/err" ] || { sed 's/^/    /' "$WORK/err" >&2; die "$1 ($2) failed"; }
    local cpu
    cpu=$(cpu_seconds)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$T_SEC" "$cpu" "$BIG" "$T_RSS" >>"$RES/encryption.tsv"
    log "  $1 $2 #$3: $(mibps "$BIG" "$T_SEC") MiB/s, ${cpu} s CPU, max RSS $((T_RSS / 1024)) MiB"
}
for ((rep = 1; rep <= REPS; rep++)); do
    case $((rep % 3)) in
    1) modes=(plain encrypted signed) ;;
    2) modes=(encrypted signed plain) ;;
    *) modes=(signed plain encrypted) ;;
    esac
    for mode in "${modes[@]}"; do enc_run backup_data "$mode" "$rep"; done
    for mode in "${modes[@]}"; do enc_run restore_data "$mode" "$rep"; done
done
# Each gives back the bytes backed up; the encrypted objects are not them.
for mode in plain encrypted signed; do
    got=$(HOME=$PLUGIN_HOME "$PLUGIN" restore_data "$(enc_cfg "$mode")" "$LOCAL/$TS_ENC/enc_$mode" | sha256sum | cut -d' ' -f1)
    [ "$got" = "$enc_sha" ] || die "restore_data ($mode) did not give back the bytes backed up"
done
# The signed object restores only where its signature verifies.
HOME=$PLUGIN_HOME "$PLUGIN" restore_data "$WORK/config-sig.yaml" "$LOCAL/$TS_ENC/enc_encrypted" >/dev/null 2>&1 &&
    die "an unsigned object restored with encryption_verify_key set"
enc_stored=$(object_size "$FOLDER/backups/$DATE/$TS_ENC/enc_encrypted")
[ -n "$enc_stored" ] && [ "$enc_stored" -gt "$BIG" ] || die "the encrypted object is not larger than the plaintext"
meta enc_stored "$enc_stored"
log "  (the three restores compared by SHA-256: identical; encrypted object $enc_stored bytes)"
rm -f "$WORK/enc.bin"
# Small calls: one sign per backup_data, one verification per restore_data.
head -c 1024 /dev/urandom >"$WORK/small.bin"
small_run() { # MODE REP: SMALL_N backup_data + restore_data pairs of 1 KiB, one timed loop
    local cfg
    cfg=$(enc_cfg "$1")
    HOME=$PLUGIN_HOME run_timed bash -c '
        for ((i = 0; i < $1; i++)); do
            "$2" backup_data "$3" "$4_$i" <"$5" || exit 1
            "$2" restore_data "$3" "$4_$i" >/dev/null || exit 1
        done' small "$SMALL_N" "$PLUGIN" "$cfg" "$LOCAL/$TS_ENC/small_$1_$2" "$WORK/small.bin" 2>"$WORK/err"
    read_timing
    [ "$T_RC" = 0 ] && [ ! -s "$WORK/err" ] || { sed 's/^/    /' "$WORK/err" >&2; die "small calls ($1) failed"; }
    local cpu
    cpu=$(cpu_seconds)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' small_pair "$1" "$2" "$T_SEC" "$cpu" "$SMALL_N" "$T_RSS" >>"$RES/encryption.tsv"
    log "  $SMALL_N small pairs $1 #$2: $(awk -v s="$T_SEC" -v n="$SMALL_N" 'BEGIN {printf "%.1f", s * 1000 / n}') ms a pair, ${cpu} s CPU"
}
for ((rep = 1; rep <= REPS; rep++)); do
    if ((rep % 2)); then modes=(encrypted signed); else modes=(signed encrypted); fi
    for mode in "${modes[@]}"; do small_run "$mode" "$rep"; done
done
HOME=$PLUGIN_HOME "$PLUGIN" delete_backup "$CFG" "$TS_ENC" || die "delete_backup $TS_ENC"
if [ -n "$ONLY" ]; then
    meta load_end "$(cut -d' ' -f1-3 /proc/loadavg)"
    python3 "$here/report.py" --only encryption "$RES" || die "bench/report.py"
    exit 0
fi

# ---------------------------------------------------------------- 1. throughput

log "making a ${BIG_MIB} MiB random file"
make_random "$WORK/big.bin" "$BIG_MIB" bench
sync "$WORK/big.bin" 2>/dev/null || true

TOOLS=(plugin curl)
[ -n "$AWS" ] && TOOLS+=(aws)
[ -n "$RCLONE" ] && TOOLS+=(rclone)
printf 'op\ttool\trep\tseconds\tbytes\tmaxrss_kb\tstatus\n' >"$RES/throughput.tsv"

upload() { # TOOL KEY_NAME   (stdin/file: big.bin)
    local tool=$1 name=$2 key=$FOLDER/backups/$DATE/$TS_TP/$2
    case $tool in
    plugin) HOME=$PLUGIN_HOME run_timed "$PLUGIN" backup_data "$CFG" "$LOCAL/$TS_TP/$name" <"$WORK/big.bin" ;;
    curl) run_timed "${CURL_S3[@]}" -o /dev/null -T "$WORK/big.bin" "$EP/$BUCKET/$key" ;;
    aws) run_timed "${AWS_ENV[@]}" "$AWS" s3 cp - "s3://$BUCKET/$key" --endpoint-url "$EP" --only-show-errors <"$WORK/big.bin" ;;
    rclone) run_timed "${RCLONE_CMD[@]}" rcat "bench:$BUCKET/$key" <"$WORK/big.bin" ;;
    esac
}
download() { # TOOL KEY_NAME
    local tool=$1 name=$2 key=$FOLDER/backups/$DATE/$TS_TP/$2
    case $tool in
    plugin) HOME=$PLUGIN_HOME run_timed "$PLUGIN" restore_data "$CFG" "$LOCAL/$TS_TP/$name" >/dev/null ;;
    curl) run_timed "${CURL_S3[@]}" -o /dev/null "$EP/$BUCKET/$key" ;;
    aws) run_timed "${AWS_ENV[@]}" "$AWS" s3 cp "s3://$BUCKET/$key" - --endpoint-url "$EP" --only-show-errors >/dev/null ;;
    rclone) run_timed "${RCLONE_CMD[@]}" cat "bench:$BUCKET/$key" >/dev/null ;;
    esac
}
# record OP TOOL REP NAME ERRFILE: after run_timed; checks status, stderr and (uploads) the stored size.
record() {
    local op=$1 tool=$2 rep=$3 name=$4 err=$5 status=ok size
    read_timing
    if [ "$T_RC" != 0 ]; then
        status="exit-$T_RC"
    elif [ "$tool" = plugin ] && [ -s "$err" ]; then
        status=stderr
    elif [ "$op" = upload ]; then
        size=$(object_size "$FOLDER/backups/$DATE/$TS_TP/$name")
        [ "$size" = "$BIG" ] || status="size-${size:-missing}"
    fi
    if [ "$status" != ok ]; then
        log "  $op $tool #$rep: $status"
        sed 's/^/      /' "$err" | head -n 5 >&2
        [ "$tool" = plugin ] && die "the plugin failed ($op)"
    elif [ -s "$err" ]; then
        log "  ($tool wrote to stderr: $(head -c 200 "$err" | tr '\n' ' '))"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$op" "$tool" "$rep" "$T_SEC" "$BIG" "$T_RSS" "$status" >>"$RES/throughput.tsv"
    log "  $op $tool #$rep: $(mibps "$BIG" "$T_SEC") MiB/s (${T_SEC%????} s, max RSS $((T_RSS / 1024)) MiB) $status"
}

n_tools=${#TOOLS[@]}
log "1. upload throughput, ${BIG_MIB} MiB, $REPS rounds of: ${TOOLS[*]} (order rotated per round)"
for ((rep = 1; rep <= REPS; rep++)); do
    for ((j = 0; j < n_tools; j++)); do
        tool=${TOOLS[$(((j + rep - 1) % n_tools))]}
        python3 "$here/util.py" stamp "$WORK/big.bin" "up-$tool-$rep"
        upload "$tool" "up_${tool}_$rep" 2>"$WORK/err"
        record upload "$tool" "$rep" "up_${tool}_$rep" "$WORK/err"
    done
done

# The object every tool downloads: written by the plugin, checked once.
python3 "$here/util.py" stamp "$WORK/big.bin" download
HOME=$PLUGIN_HOME "$PLUGIN" backup_data "$CFG" "$LOCAL/$TS_TP/dl_object" <"$WORK/big.bin" ||
    die "backup_data of the download object"
HOME=$PLUGIN_HOME "$PLUGIN" restore_data "$CFG" "$LOCAL/$TS_TP/dl_object" | cmp -s - "$WORK/big.bin" ||
    die "restore_data did not give back the bytes backed up"
log "  (restore_data of the download object compared byte for byte: identical)"

log "1. download throughput, ${BIG_MIB} MiB object, $REPS rounds of: ${TOOLS[*]}"
for ((rep = 1; rep <= REPS; rep++)); do
    for ((j = 0; j < n_tools; j++)); do
        tool=${TOOLS[$(((j + rep - 1) % n_tools))]}
        download "$tool" dl_object 2>"$WORK/err"
        record download "$tool" "$rep" dl_object "$WORK/err"
    done
done
HOME=$PLUGIN_HOME "$PLUGIN" delete_backup "$CFG" "$TS_TP" || die "delete_backup $TS_TP"

# ---------------------------------------------------------------- 2. peak RSS

printf 'cmd\tmib\tseconds\tmaxrss_kb\tnote\n' >"$RES/rss.tsv"
rss_run() { # CMD MIB NOTE  (after run_timed)
    read_timing
    [ "$T_RC" = 0 ] || { sed 's/^/    /' "$WORK/err" >&2; die "$1 of $2 MiB exited with status $T_RC"; }
    [ -s "$WORK/err" ] && { sed 's/^/    /' "$WORK/err" >&2; die "$1 of $2 MiB wrote to stderr"; }
    printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$T_SEC" "$T_RSS" "$3" >>"$RES/rss.tsv"
    log "  $1 ${2} MiB: max RSS $((T_RSS / 1024)) MiB, $(mibps $(($2 << 20)) "$T_SEC") MiB/s"
}
log "2. peak RSS, ${BIG_MIB} MiB"
python3 "$here/util.py" stamp "$WORK/big.bin" rss
HOME=$PLUGIN_HOME run_timed "$PLUGIN" backup_data "$CFG" "$LOCAL/$TS_RSS/rss_big" <"$WORK/big.bin" 2>"$WORK/err"
rss_run backup_data "$BIG_MIB" "stdin from a file"
[ "$(object_size "$FOLDER/backups/$DATE/$TS_RSS/rss_big")" = "$BIG" ] || die "rss_big has the wrong size"
HOME=$PLUGIN_HOME run_timed "$PLUGIN" restore_data "$CFG" "$LOCAL/$TS_RSS/rss_big" >/dev/null 2>"$WORK/err"
rss_run restore_data "$BIG_MIB" "to /dev/null"

HUGE=$((HUGE_MIB << 20))
if [ "$(free_kib "$SERVER_DATA")" -lt $(((HUGE_MIB + 2048) * 1024)) ]; then
    log "2. skipping the ${HUGE_MIB} MiB RSS test: not enough free disk for the server"
    printf 'skipped\t%s\t0\t0\tnot enough free disk\n' "$HUGE_MIB" >>"$RES/rss.tsv"
else
    log "2. peak RSS, ${HUGE_MIB} MiB (generated through a pipe)"
    { openssl enc -aes-128-ctr -pass "pass:bench-huge-$$" -nosalt </dev/zero 2>/dev/null || true; } | head -c "$HUGE" |
        HOME=$PLUGIN_HOME run_timed "$PLUGIN" backup_data "$CFG" "$LOCAL/$TS_RSS/rss_huge" 2>"$WORK/err"
    rss_run backup_data "$HUGE_MIB" "stdin from openssl | head (the generator shares the CPU)"
    [ "$(object_size "$FOLDER/backups/$DATE/$TS_RSS/rss_huge")" = "$HUGE" ] || die "rss_huge has the wrong size"
    HOME=$PLUGIN_HOME run_timed "$PLUGIN" restore_data "$CFG" "$LOCAL/$TS_RSS/rss_huge" >/dev/null 2>"$WORK/err"
    rss_run restore_data "$HUGE_MIB" "to /dev/null"
fi
HOME=$PLUGIN_HOME "$PLUGIN" delete_backup "$CFG" "$TS_RSS" || die "delete_backup $TS_RSS"

# ---------------------------------------------------------------- 3. small calls

log "3. small calls: $SMALL_N sequential 1 KiB backup_data + restore_data pairs"
HOME=$PLUGIN_HOME python3 "$here/util.py" smallcalls "$PLUGIN" "$CFG" "$LOCAL/$TS_SMALL" "$SMALL_N" "$RES/small.json" ||
    die "small calls"
HOME=$PLUGIN_HOME "$PLUGIN" delete_backup "$CFG" "$TS_SMALL" || die "delete_backup $TS_SMALL"

# ---------------------------------------------------------------- 4. fan-out

log "4. fan-out: $FAN_N concurrent backup_data of $FAN_MIB MiB each"
make_random "$WORK/fan.bin" $((FAN_N * FAN_MIB)) "bench-fan-$$"
sync "$WORK/fan.bin" 2>/dev/null || true
fan_pids=()
t0=$EPOCHREALTIME
for ((i = 0; i < FAN_N; i++)); do
    (
        set -o pipefail
        dd if="$WORK/fan.bin" bs=1M skip=$((i * FAN_MIB)) count="$FAN_MIB" status=none |
            HOME=$PLUGIN_HOME timeout -k 10 "$CMD_TIMEOUT" "$PLUGIN" backup_data "$CFG" "$LOCAL/$TS_FAN/gpbackup_${i}_$TS_FAN"
    ) 2>"$WORK/fan_err_$i" &
    fan_pids+=($!)
    BG_PIDS+=($!)
done
fan_rc=()
for ((i = 0; i < FAN_N; i++)); do
    rc=0
    wait "${fan_pids[$i]}" || rc=$?
    fan_rc+=("$rc")
done
t1=$EPOCHREALTIME
fan_fail=0 fan_stderr=0 fan_errors=0
for ((i = 0; i < FAN_N; i++)); do
    bad=0
    if [ "${fan_rc[$i]}" != 0 ]; then
        fan_fail=$((fan_fail + 1)) bad=1
        log "  process $i exited with status ${fan_rc[$i]}"
    fi
    if [ -s "$WORK/fan_err_$i" ]; then
        fan_stderr=$((fan_stderr + 1)) bad=1
        log "  process $i stderr: $(head -c 300 "$WORK/fan_err_$i")"
    fi
    fan_errors=$((fan_errors + bad))
done
BG_PIDS=()
fan_ok_objects=$(HOME=$PLUGIN_HOME "$PLUGIN" list_directory "$CFG" "$FOLDER/backups/$DATE/$TS_FAN" |
    awk -F'\t' -v s=$((FAN_MIB << 20)) '$1 !~ /gpbackup_manifest$/ && $2 == s' | wc -l)
fan_sec=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.6f", b - a}')
printf 'processes\tmib_each\tseconds\tnonzero_exits\twith_stderr\terrors\tobjects_ok\n%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
    "$FAN_N" "$FAN_MIB" "$fan_sec" "$fan_fail" "$fan_stderr" "$fan_errors" "$fan_ok_objects" >"$RES/fanout.tsv"
log "  $(mibps $((FAN_N * FAN_MIB << 20)) "$fan_sec") MiB/s aggregate, $fan_fail non-zero exits, $fan_stderr with stderr, $fan_ok_objects/$FAN_N objects of the right size"
rm -f "$WORK/fan.bin"
HOME=$PLUGIN_HOME "$PLUGIN" delete_backup "$CFG" "$TS_FAN" || die "delete_backup $TS_FAN"

# ---------------------------------------------------------------- 5. subset

log "5. restore_data_subset through a counting proxy, ${SUBSET_MIB} MiB object"
python3 "$here/util.py" stamp "$WORK/big.bin" subset
head -c $((SUBSET_MIB << 20)) "$WORK/big.bin" >"$WORK/subset.bin"
SUB_PATH=$LOCAL/$TS_SUB/gpbackup_0_${TS_SUB}
HOME=$PLUGIN_HOME "$PLUGIN" backup_data "$CFG" "$SUB_PATH" <"$WORK/subset.bin" || die "backup_data of the subset object"
read -r sub_n sub_requested < <(python3 "$here/util.py" offsets $((SUBSET_MIB << 20)) "$WORK/offsets")
read -r sub_sha _ < <(python3 "$here/util.py" extract "$WORK/subset.bin" "$WORK/offsets")

python3 "$here/countproxy.py" 127.0.0.1 "${EP##*:}" "$WORK/proxy.port" "$WORK/proxy.json" 2>"$WORK/proxy.err" &
BG_PIDS+=($!)
for ((i = 0; i < 100; i++)); do
    [ -s "$WORK/proxy.port" ] && break
    sleep 0.1
done
[ -s "$WORK/proxy.port" ] || { cat "$WORK/proxy.err" >&2; die "the counting proxy did not start"; }
PROXY_EP=http://127.0.0.1:$(cat "$WORK/proxy.port")
write_config "$WORK/config-proxy.yaml" "$PROXY_EP"

proxied() { # NAME CMD... : runs CMD, then stores the proxy's counters for it in $RES/NAME.json
    local name=$1
    shift
    python3 "$here/util.py" wait-idle "$WORK/proxy.json"
    cp "$WORK/proxy.json" "$WORK/before.json"
    run_timed "$@"
    python3 "$here/util.py" wait-idle "$WORK/proxy.json"
    python3 "$here/util.py" diff "$WORK/before.json" "$WORK/proxy.json" >"$RES/$name.json"
    read_timing
    [ "$T_RC" = 0 ] || { sed 's/^/    /' "$WORK/err" >&2; die "$name exited with status $T_RC"; }
    [ -s "$WORK/err" ] && { sed 's/^/    /' "$WORK/err" >&2; die "$name wrote to stderr"; }
    printf '%s\n' "$T_SEC" >"$RES/$name.seconds"
}
HOME=$PLUGIN_HOME proxied subset "$PLUGIN" restore_data_subset "$WORK/config-proxy.yaml" "$SUB_PATH" "$WORK/offsets" \
    >"$WORK/subset.out" 2>"$WORK/err"
[ "$(sha256sum <"$WORK/subset.out" | cut -d' ' -f1)" = "$sub_sha" ] ||
    die "restore_data_subset did not write the requested bytes"
HOME=$PLUGIN_HOME proxied whole "$PLUGIN" restore_data "$WORK/config-proxy.yaml" "$SUB_PATH" >/dev/null 2>"$WORK/err"
printf 'ranges\trequested\tobject\toffsets\n%s\t%s\t%s\t%s\n' "$sub_n" "$sub_requested" $((SUBSET_MIB << 20)) \
    "$(cat "$WORK/offsets")" >"$RES/subset.tsv"
log "  requested $sub_requested bytes in $sub_n ranges; output checked (SHA-256)"
HOME=$PLUGIN_HOME "$PLUGIN" delete_backup "$CFG" "$TS_SUB" || die "delete_backup $TS_SUB"

# ---------------------------------------------------------------- 6. faults
log "6. ${BIG_MIB} MiB round trip through a proxy that resets 10% of requests mid-body"
python3 "$here/util.py" stamp "$WORK/big.bin" faults
big_sha=$(sha256sum <"$WORK/big.bin" | cut -d' ' -f1)
COUNTPROXY_RESET_RATE=0.1 python3 "$here/countproxy.py" 127.0.0.1 "${EP##*:}" "$WORK/fproxy.port" "$WORK/fproxy.json" \
    2>"$WORK/fproxy.err" &
BG_PIDS+=($!)
for ((i = 0; i < 100; i++)); do
    [ -s "$WORK/fproxy.port" ] && break
    sleep 0.1
done
[ -s "$WORK/fproxy.port" ] || { cat "$WORK/fproxy.err" >&2; die "the fault proxy did not start"; }
write_config "$WORK/config-faults.yaml" "http://127.0.0.1:$(cat "$WORK/fproxy.port")"
echo '  retry_max_attempts: 30' >>"$WORK/config-faults.yaml"
FAULT_PATH=$LOCAL/$TS_SUB/faulty_object
HOME=$PLUGIN_HOME run_timed "$PLUGIN" backup_data "$WORK/config-faults.yaml" "$FAULT_PATH" <"$WORK/big.bin" 2>"$WORK/err"
read_timing
[ "$T_RC" = 0 ] && [ ! -s "$WORK/err" ] || { sed 's/^/    /' "$WORK/err" >&2; die "backup_data under faults"; }
fault_up=$T_SEC
HOME=$PLUGIN_HOME run_timed "$PLUGIN" restore_data "$WORK/config-faults.yaml" "$FAULT_PATH" >"$WORK/faults.out" 2>"$WORK/err"
read_timing
[ "$T_RC" = 0 ] && [ ! -s "$WORK/err" ] || { sed 's/^/    /' "$WORK/err" >&2; die "restore_data under faults"; }
fault_down=$T_SEC
[ "$(sha256sum <"$WORK/faults.out" | cut -d' ' -f1)" = "$big_sha" ] || die "restore_data under faults: not byte-identical"
rm -f "$WORK/faults.out" "$WORK/big.bin"
python3 - "$WORK/fproxy.json" "$fault_up" "$fault_down" "$BIG_MIB" >"$RES/faults.json" <<'PY'
import json, sys
stats = json.load(open(sys.argv[1]))
print(json.dumps({"resets": stats["resets"], "requests": stats["requests"], "upload_s": float(sys.argv[2]),
                  "download_s": float(sys.argv[3]), "mib": int(sys.argv[4]), "identical": True}))
PY
log "  $(cat "$RES/faults.json")"
HOME=$PLUGIN_HOME "$PLUGIN" delete_backup "$CFG" "$TS_SUB" || die "delete_backup $TS_SUB"

# ---------------------------------------------------------------- 9. network

network_section

# ---------------------------------------------------------------- report

meta load_end "$(cut -d' ' -f1-3 /proc/loadavg)"
BENCH_NET_PLOT=$(dirname "$OUT")/bench/throughput-vs-rtt.png BENCH_NET_PLOT_REF=bench/throughput-vs-rtt.png \
    python3 "$here/report.py" "$RES" >"$WORK/report.md" || die "bench/report.py"
cp "$WORK/report.md" "$OUT.tmp.$$" && mv -f "$OUT.tmp.$$" "$OUT"
log "wrote $OUT"
sed -n '/^## Targets/,/^## /p' "$OUT" | sed '$d' >&2

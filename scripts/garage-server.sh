# shellcheck shell=bash source-path=SCRIPTDIR
# A throw-away single-node Garage S3 server for the benchmark and
# `make test-compat` (the Rust integration tests against Garage). Source
# this file from bash, then:
#
#     source scripts/garage-server.sh
#     garage_start DIR [BUCKET]     # DIR: an empty directory (under /tmp)
#     ...
#     garage_stop
#
# or run it (see scripts/server-common.sh):
#
#     bash scripts/garage-server.sh start DIR [BUCKET]   # prints S3_...=VALUE lines
#     S3_PID=... bash scripts/garage-server.sh stop
#
# garage_start writes DIR/garage.toml (sqlite metadata, replication factor 1,
# compression off, everything on 127.0.0.1 free ports), starts
#     garage -c DIR/garage.toml server --single-node --default-bucket
# with a random key pair and BUCKET (default gpbackup-bench) as the default
# bucket, waits until the admin API's /health answers, and exports the same
# variables as scripts/s3s-fs-server.sh:
#
#     S3_ENDPOINT S3_ACCESS_KEY S3_SECRET_KEY S3_BUCKET S3_REGION S3_PID
#     S3_SERVER_LOG  and  GARAGE_DIR (= DIR)
#
# garage_stop kills that process by its pid (TERM, then KILL after 5 s). It
# does not remove DIR: the caller owns it. Safe to call twice.
#
# The binary is $GARAGE if set, else garage on PATH, else ~/.cargo/bin/garage
# (scripts/ensure-garage.sh installs it there).

# shellcheck source=server-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/server-common.sh"

garage__find() {
    local p
    if [ -n "${GARAGE:-}" ]; then
        [ -x "$GARAGE" ] && { printf '%s\n' "$GARAGE"; return 0; }
        echo "garage-server: GARAGE=$GARAGE is not an executable file" >&2
        return 1
    fi
    if p=$(command -v garage 2>/dev/null) && [ -x "$p" ]; then
        printf '%s\n' "$p"
    elif [ -x "$HOME/.cargo/bin/garage" ]; then
        printf '%s\n' "$HOME/.cargo/bin/garage"
    else
        return 1
    fi
}

# garage_start DIR [BUCKET]
garage_start() {
    local dir=$1 bucket=${2:-gpbackup-bench}
    local bin rpc s3 admin access secret attempt i up pid
    bin=$(garage__find) || { echo "garage-server: garage not found" >&2; return 1; }
    mkdir -p "$dir" || return 1
    access=GK$(srv_random_hex 12)
    secret=$(srv_random_hex 32)
    up=
    for attempt in 1 2 3; do
        rpc=$(srv_free_port) && s3=$(srv_free_port) && admin=$(srv_free_port) || return 1
        cat >"$dir/garage.toml" <<EOF
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "sqlite"
replication_factor = 1
compression_level = "none"
rpc_bind_addr = "127.0.0.1:$rpc"
rpc_public_addr = "127.0.0.1:$rpc"
rpc_secret = "$(srv_random_hex 32)"

[s3_api]
s3_region = "us-east-1"
api_bind_addr = "127.0.0.1:$s3"
root_domain = ".localhost"

[admin]
api_bind_addr = "127.0.0.1:$admin"
admin_token = "$(srv_random_hex 16)"
EOF
        GARAGE_DEFAULT_ACCESS_KEY=$access GARAGE_DEFAULT_SECRET_KEY=$secret GARAGE_DEFAULT_BUCKET=$bucket \
            RUST_LOG=warn "$bin" -c "$dir/garage.toml" server --single-node --default-bucket \
            </dev/null >"$dir/server.log" 2>&1 &
        pid=$!
        # Healthy within ~30 s, or give up on this attempt.
        for ((i = 0; i < 300; i++)); do
            if curl -sf -o /dev/null "http://127.0.0.1:$admin/health" 2>/dev/null; then
                up=1
                break
            fi
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        [ -n "$up" ] && break
        srv_kill "$pid"
        echo "garage-server: garage did not become healthy (attempt $attempt); its log:" >&2
        tail -n 20 "$dir/server.log" | sed 's/^/    /' >&2
        rm -rf -- "${dir:?}/meta" "${dir:?}/data"
    done
    [ -n "$up" ] || return 1
    export S3_ENDPOINT=http://127.0.0.1:$s3
    export S3_ACCESS_KEY=$access
    export S3_SECRET_KEY=$secret
    export S3_BUCKET=$bucket
    export S3_REGION=us-east-1
    export S3_PID=$pid
    export S3_SERVER_LOG=$dir/server.log
    export GARAGE_DIR=$dir
}

garage_stop() {
    local rc=$?
    if [ -n "${S3_PID:-}" ]; then
        srv_kill "$S3_PID"
    fi
    unset S3_ENDPOINT S3_ACCESS_KEY S3_SECRET_KEY S3_BUCKET S3_REGION S3_PID S3_SERVER_LOG GARAGE_DIR
    return "$rc"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    srv_main "bash $0 start DIR [BUCKET] | S3_PID=... bash $0 stop" garage_start garage_stop \
        S3_ENDPOINT S3_ACCESS_KEY S3_SECRET_KEY S3_BUCKET S3_REGION S3_PID S3_SERVER_LOG GARAGE_DIR -- "$@"
fi

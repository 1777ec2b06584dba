# shellcheck shell=bash source-path=SCRIPTDIR
# A throw-away s3s-fs S3 server for scripts and tests (the demo, benchmarks,
# the Rust integration tests, manual experiments). Source this file from
# bash, then:
#
#     source scripts/s3s-fs-server.sh
#     trap s3_stop EXIT
#     s3_start_s3s_fs [BUCKET]          # BUCKET defaults to gpbackup-demo
#     s3_curl "$S3_BUCKET/some/key" -T file    # signed PUT (optional helper)
#
# or run it (see scripts/server-common.sh):
#
#     bash scripts/s3s-fs-server.sh start [BUCKET]    # prints S3_...=VALUE lines
#     S3_PID=... S3_TMPDIR=... bash scripts/s3s-fs-server.sh stop
#
# s3_start_s3s_fs starts s3s-fs on a free 127.0.0.1 port with random keys,
# in a new temporary directory under /tmp, waits until it accepts
# connections, creates the bucket (a bucket is a directory of the root), and
# exports:
#
#     S3_ENDPOINT    http://127.0.0.1:PORT   (path-style requests only)
#     S3_ACCESS_KEY  random, "demo" + 16 hex digits
#     S3_SECRET_KEY  random, 40 hex digits
#     S3_BUCKET      the bucket name
#     S3_REGION      us-east-1 (s3s-fs does not check it; SigV4 needs one)
#     S3_ROOT        the server's root directory: objects are plain files at
#                    $S3_ROOT/$S3_BUCKET/KEY; s3s-fs keeps hidden JSON
#                    metadata files (.bucket-*.json) directly in $S3_ROOT,
#                    does not remove them on delete, and leaves emptied
#                    directories behind
#     S3_PID         the server's process id
#     S3_TMPDIR      the temporary directory holding S3_ROOT and the log
#     S3_SERVER_LOG  the server's stdout/stderr
#
# s3_stop kills that server by its pid, removes the temporary directory and
# unsets the variables. It is safe to call twice and when nothing was started,
# and keeps the caller's exit status when used as an EXIT trap.
#
# The s3s-fs binary is taken from $S3S_FS if set, else from PATH, else from
# ~/.cargo/bin (scripts/ensure-s3s-fs.sh installs it there).
# Needs: bash, python3 (free-port lookup), od and head (random keys).

# shellcheck source=server-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/server-common.sh"

# Locate the s3s-fs binary; prints its path.
s3__find_s3s_fs() {
    local p
    if [ -n "${S3S_FS:-}" ]; then
        if [ -x "$S3S_FS" ]; then
            printf '%s\n' "$S3S_FS"
            return 0
        fi
        echo "s3s-fs-server: S3S_FS=$S3S_FS is not an executable file" >&2
        return 1
    fi
    if p=$(command -v s3s-fs 2>/dev/null) && [ -x "$p" ]; then
        printf '%s\n' "$p"
    elif [ -x "$HOME/.cargo/bin/s3s-fs" ]; then
        printf '%s\n' "$HOME/.cargo/bin/s3s-fs"
    else
        echo "s3s-fs-server: s3s-fs not found on PATH or in ~/.cargo/bin; run scripts/ensure-s3s-fs.sh" >&2
        return 1
    fi
}

# s3_start_s3s_fs [BUCKET]
s3_start_s3s_fs() {
    local bucket=${1:-gpbackup-demo}
    local bin tmp root log port pid access secret attempt i up

    if [ -n "${S3_PID:-}" ] && kill -0 "$S3_PID" 2>/dev/null; then
        echo "s3s-fs-server: a server is already running (pid $S3_PID, $S3_ENDPOINT); call s3_stop first" >&2
        return 1
    fi
    # s3s-fs maps a bucket to a directory; S3 wants 3-63 of [a-z0-9.-].
    if ! [[ $bucket =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ ]]; then
        echo "s3s-fs-server: invalid bucket name '$bucket' (3-63 characters of a-z, 0-9, '.', '-')" >&2
        return 1
    fi
    bin=$(s3__find_s3s_fs) || return 1
    if ! command -v python3 >/dev/null 2>&1; then
        echo "s3s-fs-server: python3 is needed to find a free port" >&2
        return 1
    fi

    tmp=$(mktemp -d /tmp/s3s-fs.XXXXXXXX) || return 1
    root=$tmp/root
    log=$tmp/server.log
    mkdir "$root" || { rm -rf -- "$tmp"; return 1; }
    access=demo$(srv_random_hex 8)
    secret=$(srv_random_hex 20)

    # A port can be taken between the lookup and the server's bind: retry
    # with a new one if the server exits at once.
    up=
    for attempt in 1 2 3 4 5; do
        port=$(srv_free_port) || { rm -rf -- "$tmp"; return 1; }
        "$bin" --host 127.0.0.1 --port "$port" \
            --access-key "$access" --secret-key "$secret" \
            --domain localhost "$root" </dev/null >"$log" 2>&1 &
        pid=$!
        # Wait at most ~10 s for the port to accept connections.
        for ((i = 0; i < 500; i++)); do
            if srv_port_open "$port"; then
                up=1
                break
            fi
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.02
        done
        if [ -n "$up" ]; then
            break
        fi
        if kill -0 "$pid" 2>/dev/null; then
            # Alive but not listening after 10 s: give up.
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
            echo "s3s-fs-server: s3s-fs (pid $pid) did not accept connections on 127.0.0.1:$port within 10 s; its log:" >&2
            sed 's/^/    /' "$log" >&2
            rm -rf -- "$tmp"
            return 1
        fi
        wait "$pid" 2>/dev/null || true
        echo "s3s-fs-server: s3s-fs exited at start (attempt $attempt, port $port); its log:" >&2
        sed 's/^/    /' "$log" >&2
    done
    if [ -z "$up" ]; then
        echo "s3s-fs-server: could not start s3s-fs ($bin)" >&2
        rm -rf -- "$tmp"
        return 1
    fi

    export S3_ENDPOINT=http://127.0.0.1:$port
    export S3_ACCESS_KEY=$access
    export S3_SECRET_KEY=$secret
    export S3_BUCKET=$bucket
    export S3_REGION=us-east-1
    export S3_ROOT=$root
    export S3_PID=$pid
    export S3_TMPDIR=$tmp
    export S3_SERVER_LOG=$log

    if ! mkdir "$root/$bucket"; then
        s3_stop || true
        return 1
    fi
}

# s3_stop: stop the server started by s3_start_s3s_fs and remove its files.
# Every command is guarded: under `set -e` a failure inside an EXIT trap
# would abort the cleanup and replace the script's exit status.
s3_stop() {
    local rc=$?
    # srv_kill polls rather than only `wait`s: s3_stop may run in a shell
    # that is not the server's parent.
    if [ -n "${S3_PID:-}" ]; then
        srv_kill "$S3_PID"
    fi
    # Only ever remove a directory this library created.
    if [ -n "${S3_TMPDIR:-}" ] && [[ $S3_TMPDIR == /tmp/s3s-fs.* ]] && [ -d "$S3_TMPDIR" ]; then
        rm -rf -- "$S3_TMPDIR" || true
    fi
    unset S3_ENDPOINT S3_ACCESS_KEY S3_SECRET_KEY S3_BUCKET S3_REGION S3_ROOT S3_PID S3_TMPDIR S3_SERVER_LOG
    # Keep the status the caller had (the script's exit status in a trap).
    return "$rc"
}

# s3_curl PATH [CURL_ARGS...]: a SigV4-signed request to $S3_ENDPOINT/PATH
# (PATH = BUCKET[/KEY][?query]); for example
#     s3_curl "$S3_BUCKET/a/b" -T file      # PUT
#     s3_curl "$S3_BUCKET/a/b" -o copy      # GET
#     s3_curl "$S3_BUCKET/a/b" -X DELETE
# Fails (curl exit 22) on HTTP errors, after writing the error body where
# the response body would have gone.
s3_curl() {
    local path=$1
    shift
    curl -sS --fail-with-body \
        --aws-sigv4 "aws:amz:${S3_REGION:-us-east-1}:s3" \
        --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
        -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
        "$@" "$S3_ENDPOINT/$path"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    srv_main "bash $0 start [BUCKET] | S3_PID=... S3_TMPDIR=... bash $0 stop" s3_start_s3s_fs s3_stop \
        S3_ENDPOINT S3_ACCESS_KEY S3_SECRET_KEY S3_BUCKET S3_REGION S3_ROOT S3_PID S3_TMPDIR S3_SERVER_LOG -- "$@"
fi

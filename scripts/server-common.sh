# shellcheck shell=bash
# Helpers shared by the throw-away server scripts (s3s-fs-server.sh,
# garage-server.sh, postgres.sh), which source this file: free ports, random
# keys, process checks, and their command-line mode.
#
# Each server script is meant to be sourced (the demo and the benchmark do),
# but can also be run, for a caller that is not a bash script (the Rust
# integration tests start every s3s-fs, Garage and PostgreSQL server this
# way):
#
#     bash scripts/NAME.sh start ARGS...   # starts a server, prints its
#                                          # variables as NAME=VALUE lines,
#                                          # exits and leaves it running
#     VARS... bash scripts/NAME.sh stop    # stops it: the printed variables
#                                          # in the environment
#
# Needs: bash, python3 (free-port lookup), od and head (random keys).

# N random bytes as 2N lowercase hex digits.
srv_random_hex() {
    head -c "$1" /dev/urandom | od -An -v -tx1 | tr -d ' \n'
}

# A TCP port on 127.0.0.1 that was free a moment ago.
srv_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# True when something accepts TCP connections on 127.0.0.1:PORT.
srv_port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# True while process PID runs. A zombie (exited, but not yet reaped by its
# parent, which need not be this shell: the server of a script run in
# command-line mode outlives the script) counts as gone.
srv_alive() {
    local stat
    kill -0 "$1" 2>/dev/null || return 1
    read -r stat 2>/dev/null <"/proc/$1/stat" || return 0
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
}

# srv_kill PID: TERM, then KILL if it still runs after 5 s; reaps it when
# it is this shell's child. Never fails.
srv_kill() {
    local pid=$1 i
    kill "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 250; i++)); do
        srv_alive "$pid" || break
        sleep 0.02 || true
    done
    if srv_alive "$pid"; then
        kill -9 "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# srv_main USAGE START_FUNCTION STOP_FUNCTION VARIABLES... -- ARGS...: the
# command-line mode (see above) of a server script run rather than sourced.
# ARGS are the script's arguments: `start` calls START_FUNCTION with the
# rest, then prints VARIABLES; `stop` calls STOP_FUNCTION.
srv_main() {
    local usage=$1 start=$2 stop=$3 vars=() v
    shift 3
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        vars+=("$1")
        shift
    done
    shift
    case ${1:-} in
    start)
        shift
        "$start" "$@" || return
        for v in "${vars[@]}"; do
            printf '%s=%s\n' "$v" "${!v:-}"
        done
        ;;
    stop)
        "$stop"
        ;;
    *)
        echo "usage: $usage" >&2
        return 2
        ;;
    esac
}

# shellcheck shell=bash source-path=SCRIPTDIR
# A throw-away PostgreSQL server for scripts and tests (the demo, the Rust
# end-to-end tests, manual experiments): the data path Greenplum segments
# use in multi-data-file mode, `COPY ... TO/FROM PROGRAM`, with a real
# database. Source this file from bash, then:
#
#     source scripts/postgres.sh
#     trap pg_stop EXIT
#     pg_start                       # initdb + start, exports PG_* below
#     pg_psql postgres -c 'select 1'
#     plugin=$(pg_install_plugin target/release/gpbackup_s3_plugin)
#
# or run it (see scripts/server-common.sh):
#
#     bash scripts/postgres.sh start [PLUGIN]   # prints PG_...=VALUE lines;
#                                               # PG_PLUGIN: pg_install_plugin's copy
#     PG_BIN=... PG_TMPDIR=... PG_HOME=... PG_USER=... bash scripts/postgres.sh stop
#
# pg_find_bindir prints the directory of initdb/postgres/psql/pg_dump:
# $PG_BINDIR if set, else the newest /usr/lib/postgresql/<major>/bin
# (Debian's postgresql package), else `pg_config --bindir`, else the
# directory of initdb on PATH. pg_install_postgres installs Debian's
# postgresql, gzip and zstd packages with apt-get (as root, or through
# sudo without a password prompt).
#
# pg_start runs initdb into a new directory /tmp/postgres.XXXXXXXX and starts
# the server on a free 127.0.0.1 port, with its unix socket in that
# directory, trust authentication for the superuser `postgres`, durability
# off (a scratch cluster), and table scans in physical order without
# parallel workers (the same query gives the same bytes every time: the
# tests compare them). It fails with status 2 when PostgreSQL cannot run
# here (its binaries, or the user to run it as, are missing), 1 when it
# fails to start. PostgreSQL refuses to run as root:
# as root, the server runs as the `postgres` OS user (or $PG_RUN_AS).
# `COPY ... PROGRAM` commands run as that user, with the server's
# environment: HOME is $PG_HOME (the plugin logs to $PG_HOME/gpAdminLogs),
# so files they need must be readable by that user (pg_install_plugin and
# pg_private_copy help). Exports:
#
#     PG_BIN      the server binaries' directory
#     PG_PORT     the port on 127.0.0.1
#     PG_TMPDIR   the temporary directory (data/, sock/, home/, bin/, server.log)
#     PG_HOME     HOME of the server process and of its COPY ... PROGRAM commands
#     PG_LOG      the server's log (it also receives COPY ... PROGRAM stderr)
#     PG_USER     the OS user the server runs as
#     PG_PID      the server's (postmaster's) process id
#
# pg_stop stops that server (immediate shutdown), removes the temporary
# directory and unsets the variables. It is safe to call twice, when
# nothing was started, and as an EXIT trap (it keeps the exit status).
# Needs: bash, python3 (free-port lookup), util-linux's runuser when root.

# shellcheck source=server-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/server-common.sh"

# True when DIR holds the binaries the scripts and tests use.
pg__has() {
    [ -x "$1/initdb" ] && [ -x "$1/postgres" ] && [ -x "$1/pg_ctl" ] && [ -x "$1/psql" ] && [ -x "$1/pg_dump" ]
}

# Prints the PostgreSQL server binaries' directory, or fails.
pg_find_bindir() {
    local d best='' major best_major=-1 out
    if [ -n "${PG_BINDIR:-}" ]; then
        pg__has "$PG_BINDIR" && { printf '%s\n' "$PG_BINDIR"; return 0; }
        echo "postgres.sh: PG_BINDIR=$PG_BINDIR does not hold initdb, postgres, psql and pg_dump" >&2
        return 1
    fi
    for d in /usr/lib/postgresql/*/bin; do
        major=${d#/usr/lib/postgresql/}
        major=${major%/bin}
        [[ $major =~ ^[0-9]+$ ]] || continue
        if pg__has "$d" && [ "$major" -gt "$best_major" ]; then
            best=$d
            best_major=$major
        fi
    done
    if [ -n "$best" ]; then
        printf '%s\n' "$best"
        return 0
    fi
    if out=$(pg_config --bindir 2>/dev/null) && pg__has "$out"; then
        printf '%s\n' "$out"
        return 0
    fi
    if out=$(command -v initdb 2>/dev/null) && pg__has "$(dirname "$out")"; then
        dirname "$out"
        return 0
    fi
    return 1
}

# Runs a command as root (directly, or through sudo without a prompt).
pg__as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        return 1
    fi
}

# Installs Debian's postgresql, gzip and zstd packages (non-interactive).
# Progress goes to stderr.
pg_install_postgres() {
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "postgres.sh: apt-get not found: install PostgreSQL's server, gzip and zstd yourself" >&2
        return 1
    fi
    if ! pg__as_root true; then
        echo "postgres.sh: installing packages needs root (or sudo without a password): apt-get install postgresql gzip zstd" >&2
        return 1
    fi
    echo "postgres.sh: installing postgresql, gzip and zstd with apt-get (about a minute)" >&2
    pg__as_root apt-get update -qq >&2 &&
        pg__as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql gzip zstd >&2
}

# Runs a command as the server's OS user with a clean environment, in
# $PG_HOME (the caller's directory may be closed to that user).
pg__as_server_user() {
    local envs=(env -i "PATH=$PATH" "HOME=$PG_HOME" LC_ALL=C "USER=$PG_USER" "LOGNAME=$PG_USER")
    (
        cd "$PG_HOME" || exit
        if [ "$(id -u)" -eq 0 ]; then
            runuser -u "$PG_USER" -- "${envs[@]}" "$@"
        else
            "${envs[@]}" "$@"
        fi
    )
}

pg_start() {
    local bin tmp user attempt port settings
    # A throw-away cluster: durability is not the point. Table scans in
    # physical order, so the same query gives the same bytes every time.
    settings="-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_wal_size=1GB"
    settings+=" -c timezone=UTC -c log_min_messages=warning"
    settings+=" -c synchronize_seqscans=off -c max_parallel_workers_per_gather=0"
    if [ -n "${PG_TMPDIR:-}" ]; then
        echo "postgres.sh: a server is already running (port $PG_PORT); call pg_stop first" >&2
        return 1
    fi
    bin=$(pg_find_bindir) || {
        echo "postgres.sh: install postgresql (Debian: apt-get install postgresql) or set PG_BINDIR: its server binaries were not found" >&2
        return 2
    }
    if [ "$(id -u)" -eq 0 ]; then
        user=${PG_RUN_AS:-postgres}
        if ! id -u "$user" >/dev/null 2>&1 || [ "$(id -u "$user")" -eq 0 ]; then
            echo "postgres.sh: running as root and there is no non-root user '$user' to run PostgreSQL as (install the postgresql package, or set PG_RUN_AS)" >&2
            return 2
        fi
        command -v runuser >/dev/null 2>&1 || {
            echo "postgres.sh: runuser (util-linux) is needed to run PostgreSQL as '$user'" >&2
            return 2
        }
    else
        user=$(id -un)
    fi
    tmp=$(mktemp -d /tmp/postgres.XXXXXXXX) || return 1
    chmod 0755 "$tmp"
    if ! mkdir -m 0700 "$tmp/data" || ! mkdir -m 0755 "$tmp/sock" "$tmp/home" "$tmp/bin"; then
        rm -rf -- "$tmp"
        return 1
    fi
    : >"$tmp/server.log"
    if [ "$(id -u)" -eq 0 ]; then
        chown "$user:" "$tmp/data" "$tmp/sock" "$tmp/home" "$tmp/server.log"
    fi
    export PG_BIN=$bin PG_TMPDIR=$tmp PG_HOME=$tmp/home PG_LOG=$tmp/server.log PG_USER=$user

    if ! pg__as_server_user "$bin/initdb" -U postgres --auth=trust -E UTF8 --locale=C --no-sync \
        -D "$tmp/data" >>"$PG_LOG" 2>&1; then
        echo "postgres.sh: initdb failed; its output:" >&2
        sed 's/^/    /' "$PG_LOG" >&2
        pg_stop || true
        return 1
    fi
    for attempt in 1 2 3 4 5; do
        port=$(srv_free_port) || { pg_stop || true; return 1; }
        if pg__as_server_user "$bin/pg_ctl" -D "$tmp/data" -l "$PG_LOG" -w -t 30 start \
            -o "-p $port -k $tmp/sock -c listen_addresses=127.0.0.1 $settings" >/dev/null 2>&1; then
            export PG_PORT=$port
            PG_PID=$(head -n 1 "$tmp/data/postmaster.pid") || { pg_stop || true; return 1; }
            export PG_PID
            return 0
        fi
        if ! grep -q 'could not bind' "$PG_LOG"; then
            break
        fi
        echo "postgres.sh: port $port was taken (attempt $attempt); retrying" >&2
    done
    echo "postgres.sh: the server did not start; its log:" >&2
    sed 's/^/    /' "$PG_LOG" >&2
    pg_stop || true
    return 1
}

# pg_psql DB [PSQL_ARGS...]: psql as the superuser, unaligned tuples only,
# stopping at the first error.
pg_psql() {
    local db=$1
    shift
    PGTZ=UTC "$PG_BIN/psql" -X -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "$db" "$@"
}

# pg_install_plugin SRC: copies the plugin binary where the server's user can
# run it; prints the copy's path.
pg_install_plugin() {
    install -m 0755 "$1" "$PG_TMPDIR/bin/gpbackup_s3_plugin" && printf '%s\n' "$PG_TMPDIR/bin/gpbackup_s3_plugin"
}

# pg_private_copy SRC NAME: copies a file (such as a plugin config with
# credentials) into the server's temporary directory, readable by the
# server's user only; prints the copy's path.
pg_private_copy() {
    local dest=$PG_TMPDIR/$2
    install -m 0600 "$1" "$dest" || return 1
    if [ "$(id -u)" -eq 0 ]; then
        chown "$PG_USER:" "$dest" || return 1
    fi
    printf '%s\n' "$dest"
}

pg_stop() {
    local rc=$?
    if [ -n "${PG_TMPDIR:-}" ] && [ -f "$PG_TMPDIR/data/postmaster.pid" ]; then
        pg__as_server_user "$PG_BIN/pg_ctl" -D "$PG_TMPDIR/data" -m immediate -w -t 20 stop >/dev/null 2>&1 || true
    fi
    # Only ever remove a directory this library created.
    if [ -n "${PG_TMPDIR:-}" ] && [[ $PG_TMPDIR == /tmp/postgres.* ]] && [ -d "$PG_TMPDIR" ]; then
        rm -rf -- "$PG_TMPDIR" || true
    fi
    unset PG_BIN PG_PORT PG_TMPDIR PG_HOME PG_LOG PG_USER PG_PID
    return "$rc"
}

# The command-line mode's start: pg_start, then pg_install_plugin PLUGIN if
# given, its copy's path in PG_PLUGIN.
pg__start_cli() {
    pg_start || return
    if [ -n "${1:-}" ]; then
        PG_PLUGIN=$(pg_install_plugin "$1") || { pg_stop || true; return 1; }
        export PG_PLUGIN
    fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    srv_main "bash $0 start [PLUGIN] | PG_BIN=... PG_TMPDIR=... PG_HOME=... PG_USER=... bash $0 stop" \
        pg__start_cli pg_stop PG_BIN PG_PORT PG_TMPDIR PG_HOME PG_LOG PG_USER PG_PID PG_PLUGIN -- "$@"
fi

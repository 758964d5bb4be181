#!/usr/bin/env bash
# Makes sure the local services that the tests talk to are up:
#   PostgreSQL on 127.0.0.1:5432, trust auth for TCP from 127.0.0.1, a database `test`
#   Redis on 127.0.0.1:6379 (nothing kept on disk)
#
#   usage: deploy/scripts/services.sh ensure   no-op (and silent) when both answer; else install and start
#          deploy/scripts/services.sh status   print what answers, exit 1 if something does not
#
# The dev machines and CI start both services before a session; a fresh machine may have neither. Then
# `ensure` installs the Debian packages (apt-get update once, then postgresql / redis-server), starts them
# without systemd, sets trust auth on a cluster it created itself and creates the database. It never stops,
# reconfigures or uninstalls a server that is already running: one that answers but refuses trust auth is
# reported with what to do. Needs root (or password-less sudo) only when something must be installed/started.
set -euo pipefail

readonly PG_HOST=127.0.0.1 PG_PORT=5432 PG_DATABASE=test PG_USER=postgres
readonly REDIS_HOST=127.0.0.1 REDIS_PORT=6379
readonly WAIT_SECONDS=30

say() { printf 'services: %s\n' "$*"; }
die() { printf 'services: error: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

# as_root CMD...: runs CMD as root, through password-less sudo when we are not root.
as_root() {
    if ((EUID == 0)); then
        "$@"
    elif have sudo && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        die "'$*' needs root; run this script as root or start the service yourself"
    fi
}

APT_UPDATED=0
apt_install() {
    have apt-get || die "apt-get not found: install $* with this system's package manager"
    if ((APT_UPDATED == 0)); then
        say "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        APT_UPDATED=1
    fi
    say "apt-get install $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# tcp_open HOST PORT: true when something accepts a TCP connection (bash's /dev/tcp, bounded in time).
tcp_open() { timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null; }

pg_answers() {
    if have pg_isready; then
        pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 2
    else
        tcp_open "$PG_HOST" "$PG_PORT"
    fi
}

redis_answers() {
    if have redis-cli; then
        [[ "$(timeout 2 redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]
    else
        tcp_open "$REDIS_HOST" "$REDIS_PORT"
    fi
}

# psql_tcp ARGS...: psql over TCP as the postgres role, never prompting for a password.
psql_tcp() { psql -X -w -q -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" "$@"; }

# wait_until CHECK...: polls CHECK for up to WAIT_SECONDS.
wait_until() {
    local deadline=$((SECONDS + WAIT_SECONDS))
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

# The newest installed PostgreSQL major version with a `main` cluster config, or empty.
pg_cluster_version() {
    local dir
    dir="$(find /etc/postgresql -mindepth 2 -maxdepth 2 -name main -type d 2>/dev/null | sort -V | tail -n 1)"
    [[ -n "$dir" ]] && basename "$(dirname "$dir")"
    return 0
}

# Puts trust rules for TCP from the loopback addresses first in pg_hba.conf (the first matching line wins).
# Only for a cluster this script just created: test databases, loopback only.
pg_trust_loopback() {
    local hba="$1" tmp
    grep -qE '^host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba" && return 0
    say "setting trust auth for 127.0.0.1 and ::1 in $hba"
    tmp="$(mktemp)"
    {
        printf '# Added by deploy/scripts/services.sh: local test cluster, loopback only.\n'
        printf 'host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n'
        cat "$hba"
    } >"$tmp"
    as_root cp "$tmp" "$hba"
    rm -f "$tmp"
}

ensure_postgres() {
    local fresh=0 version
    if ! pg_answers; then
        version="$(pg_cluster_version)"
        if [[ -z "$version" ]]; then
            # Debian's postinst creates and configures the `main` cluster; policy-rc.d may keep it stopped.
            compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || apt_install postgresql
            version="$(pg_cluster_version)"
            if [[ -z "$version" ]]; then
                version="$(compgen -G '/usr/lib/postgresql/*/bin/postgres' | cut -d/ -f5 | sort -V | tail -n 1)"
                [[ -n "$version" ]] || die "postgresql is installed but no server binary was found"
                say "creating PostgreSQL $version cluster main"
                as_root pg_createcluster "$version" main >/dev/null
            fi
            fresh=1
        fi
        local hba="/etc/postgresql/$version/main/pg_hba.conf"
        ((fresh == 0)) || pg_trust_loopback "$hba"
        say "starting PostgreSQL $version cluster main"
        # Exit status 2 means "already running" (e.g. started by the package's postinst): readiness decides.
        as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
        wait_until pg_answers ||
            die "PostgreSQL did not answer on $PG_HOST:$PG_PORT within ${WAIT_SECONDS}s; see /var/log/postgresql/postgresql-$version-main.log"
        # The package's postinst may have started the cluster before pg_hba.conf was edited.
        ((fresh == 0)) || as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload
    fi

    have psql || apt_install postgresql-client
    if psql_tcp -d "$PG_DATABASE" -Atc 'select 1' >/dev/null 2>&1; then
        return 0
    fi
    # Tell a refused login apart from a missing database: the maintenance db `postgres` always exists.
    local error
    if ! error="$(psql_tcp -d postgres -Atc 'select 1' 2>&1 >/dev/null)"; then
        die "PostgreSQL on $PG_HOST:$PG_PORT refuses '$PG_USER' without a password ($error); add
  'host all all 127.0.0.1/32 trust' at the top of its pg_hba.conf and reload it (pg_ctlcluster VERSION main reload)"
    fi
    say "creating database $PG_DATABASE"
    createdb -w -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" "$PG_DATABASE"
    if ((fresh == 1)); then
        # Like the dev machines: a superuser role and database named after this OS user, so tools that
        # default to the OS user name (psql, createdb) work here too.
        local me
        me="$(id -un)"
        if [[ "$me" != "$PG_USER" ]]; then
            say "creating superuser role and database $me"
            createuser -w -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" --superuser "$me"
            createdb -w -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" --owner "$me" "$me"
        fi
    fi
}

ensure_redis() {
    redis_answers && return 0
    have redis-server || apt_install redis-server
    # Same flags as the machines' own start command; the dir and log exist once redis-server is installed.
    local extra=()
    [[ -d /var/lib/redis ]] && extra+=(--dir /var/lib/redis)
    [[ -d /var/log/redis ]] && extra+=(--logfile /var/log/redis/plinth.log)
    say "starting Redis on $REDIS_HOST:$REDIS_PORT"
    as_root redis-server --daemonize yes --bind "$REDIS_HOST" --port "$REDIS_PORT" --save "" --appendonly no \
        "${extra[@]}"
    wait_until redis_answers ||
        die "Redis did not answer on $REDIS_HOST:$REDIS_PORT within ${WAIT_SECONDS}s; see /var/log/redis/plinth.log"
}

status() {
    local failed=0
    if pg_answers && psql_tcp -d "$PG_DATABASE" -Atc 'select 1' >/dev/null 2>&1; then
        say "postgresql: up at postgres://$PG_USER@$PG_HOST:$PG_PORT/$PG_DATABASE (trust)"
    else
        say "postgresql: NOT ready at postgres://$PG_USER@$PG_HOST:$PG_PORT/$PG_DATABASE"
        failed=1
    fi
    if redis_answers; then
        say "redis: up at redis://$REDIS_HOST:$REDIS_PORT"
    else
        say "redis: NOT ready at redis://$REDIS_HOST:$REDIS_PORT"
        failed=1
    fi
    return "$failed"
}

case "${1:-}" in
ensure)
    ensure_postgres
    ensure_redis
    ;;
status) status ;;
*) die "usage: $0 {ensure|status}" ;;
esac

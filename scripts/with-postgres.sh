#!/usr/bin/env bash
# Runs a command against a throwaway PostgreSQL server: a fresh cluster in a
# temporary directory, on a free loopback port, with durability off (it holds
# test data only). The command sees LOYAL_TEST_PG_URL and LOYAL_TEST_PG_PORT;
# the server and its directory are gone afterwards, and the command's exit
# status is this script's.
#
#   scripts/with-postgres.sh psql "$LOYAL_TEST_PG_URL" -c 'select 1'
set -euo pipefail

if [ $# -eq 0 ]; then
    echo "usage: $0 COMMAND [ARGS...]" >&2
    exit 2
fi

bindir=""
for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ]; then bindir=$d; break; fi
done
if [ -z "$bindir" ] && command -v pg_config >/dev/null 2>&1; then
    d=$(pg_config --bindir)
    [ -x "$d/initdb" ] && bindir=$d
fi
if [ -z "$bindir" ]; then
    echo "with-postgres: no initdb found (run scripts/install-deps.sh)" >&2
    exit 1
fi

# As root the server runs as postgres, which must reach the directory: /tmp.
if [ "$(id -u)" -eq 0 ]; then
    dir=$(mktemp -d /tmp/loyal-pg.XXXXXX)
else
    dir=$(mktemp -d "${TMPDIR:-/tmp}/loyal-pg.XXXXXX")
fi
data=$dir/data
log=$dir/server.log

# PostgreSQL refuses to run as root: run it as the postgres user then.
as_server=()
if [ "$(id -u)" -eq 0 ]; then
    if ! id postgres >/dev/null 2>&1; then
        echo "with-postgres: running as root and there is no postgres user" >&2
        rm -rf "$dir"
        exit 1
    fi
    chown postgres: "$dir"
    chmod 700 "$dir"
    as_server=(runuser -u postgres --)
fi

started=0
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ "$started" = 1 ]; then
        "${as_server[@]}" "$bindir/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ! "${as_server[@]}" "$bindir/initdb" -D "$data" -A trust -U postgres --no-sync \
        -E UTF8 --locale=C >"$dir/initdb.log" 2>&1; then
    echo "with-postgres: initdb failed:" >&2
    cat "$dir/initdb.log" >&2
    exit 1
fi

free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
    else
        node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
    fi
}

# Another process may take the port between our asking and the server
# binding it: then try another one.
port=""
for attempt in 1 2 3 4 5; do
    port=$(free_port)
    if "${as_server[@]}" "$bindir/pg_ctl" -D "$data" -l "$log" -w -t 60 -s \
            -o "-p $port -c listen_addresses=127.0.0.1 -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
            start >/dev/null 2>&1; then
        started=1
        break
    fi
    "${as_server[@]}" "$bindir/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
done
if [ "$started" != 1 ]; then
    echo "with-postgres: the server did not start:" >&2
    cat "$log" >&2 2>/dev/null || true
    exit 1
fi

for _ in $(seq 1 100); do
    "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres && break
    sleep 0.1
done
if ! "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres; then
    echo "with-postgres: the server does not answer on port $port:" >&2
    cat "$log" >&2 2>/dev/null || true
    exit 1
fi

export LOYAL_TEST_PG_PORT=$port
export LOYAL_TEST_PG_URL="postgresql://postgres@127.0.0.1:$port/postgres"

# Not exec: the trap must still stop the server when the command ends. The
# command runs in the background so that a TERM sent to this script (a test
# runner's timeout) is passed on at once instead of after the command ends.
"$@" <&0 &
child=$!
trap 'kill -TERM "$child" 2>/dev/null || true' TERM
trap 'kill -INT "$child" 2>/dev/null || true' INT
while :; do
    rc=0
    wait "$child" || rc=$?
    kill -0 "$child" 2>/dev/null || break
done
exit "$rc"

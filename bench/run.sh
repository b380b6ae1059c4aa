#!/usr/bin/env bash
# Measures a release build of Loyal and, in the same run, what the same work
# costs without Loyal, and writes one table of figures, with a description of
# the machine, to bench/BENCHMARKS.md:
#   - reads: GET /v1/members/{id} with wrk, beside a bare libmicrohttpd server
#     configured the same way (bench/bare_mhd.c), taking turns;
#   - durable writes: single purchases, POST /v1/events, with wrk, and
#     purchases in batches of 1000, POST /v1/events/batch (bench/batch.mjs),
#     on a fresh SQLite database (WAL, synchronous=FULL), then a bare SQLite
#     program writing the same rows per purchase (bench/bare_sqlite.c);
#   - rules: a program's 20 earn rules evaluated against 5-item baskets on one
#     thread (bench/rules_bench.c), no server;
#   - PostgreSQL: Loyal serving a throwaway PostgreSQL server (default,
#     durable settings), reads and single purchases with wrk, taking turns with
#     pgbench's TPC-B-like load on the same server.
# See bench/README.md.
#
# Environment: DURATION (each measured run, default 10s), THREADS (server
# threads, both servers, default 2), MEMBERS (members enrolled for the reads,
# default 10000), PURCHASE_MEMBERS (members enrolled for the purchases, on
# SQLite and on PostgreSQL, default 1000), BATCH_CLIENTS (concurrent batch
# requests, default 4), WARMUP (untimed run before each measurement, default
# 2s; 0 skips it), PARTS ("read write rules pg" by default; any of them alone
# runs only that part), RULES_SECONDS (each of the 3 rounds of the rules
# benchmark, default 3), KEEP_TMP=1 keeps the temporary directory (databases,
# logs, wrk output), READ_ROUNDS (alternating rounds of the two read servers,
# each keeping its median; default 3), PG_ROUNDS (alternating rounds of Loyal
# on PostgreSQL and pgbench, default 3), PG_SCALE (pgbench -i scale, default
# 16), PG_CLIENTS (pgbench clients, default 16).
set -euo pipefail

started_at=$(date +%s)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
READ_ROUNDS=${READ_ROUNDS:-3}
MEMBERS=${MEMBERS:-10000}
WARMUP=${WARMUP:-2s}
PURCHASE_MEMBERS=${PURCHASE_MEMBERS:-1000}
BATCH_CLIENTS=${BATCH_CLIENTS:-4}
PARTS=${PARTS:-read write rules pg}
PG_ROUNDS=${PG_ROUNDS:-3}
PG_SCALE=${PG_SCALE:-16}
PG_CLIENTS=${PG_CLIENTS:-16}
PG_JOBS=2
RULES_SECONDS=${RULES_SECONDS:-3}
RULES_ROUNDS=3
RULES_AIM=1000000
BATCH_SIZE=1000
CONNECTIONS=64
WRK_THREADS=2
SEED_CONCURRENCY=32
BUILD=${BENCH_BUILD:-build-release}
OUT=bench/BENCHMARKS.md

die() {
    echo "bench: $*" >&2
    exit 1
}

# --- processes and the temporary directory, all cleaned up on exit ---------

pids=()
tmp=""
pg_bin="" pg_data="" pg_as=()

stop_pid() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    # Loyal drains requests in flight for up to 10 s; give it a little more.
    for ((i = 0; i < 150; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        stop_pid "$pid"
    done
    if [[ -n $pg_data && -f $pg_data/postmaster.pid ]]; then
        "${pg_as[@]}" "$pg_bin/pg_ctl" -D "$pg_data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    if [[ -n $tmp && -d $tmp ]]; then
        if [[ ${KEEP_TMP:-0} == 1 ]]; then
            echo "bench: kept $tmp" >&2
        else
            rm -rf "$tmp"
        fi
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- helpers -----------------------------------------------------------------

# A port nothing listens on (probed with a connect; the race is harmless here).
free_port() {
    local p i
    for ((i = 0; i < 50; i++)); do
        p=$((20000 + RANDOM % 12000)) # below the ephemeral range wrk's sockets use
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    die "no free port found"
}

# wait_http URL PID LOG: up to 10 s for URL to answer 200 while PID lives.
wait_http() {
    local url=$1 pid=$2 log=$3 i
    for ((i = 0; i < 100; i++)); do
        if curl -sf -o /dev/null --max-time 1 "$url"; then
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$log" >&2 || true
            die "the server exited before answering $url"
        fi
        sleep 0.1
    done
    tail -n 20 "$log" >&2 || true
    die "$url did not answer within 10 s"
}

# "10s", "2m", "1h" or a bare number of seconds, in seconds.
seconds() {
    local d=$1
    case $d in
    *s) echo "${d%s}" ;;
    *m) echo $((${d%m} * 60)) ;;
    *h) echo $((${d%h} * 3600)) ;;
    *) echo "$d" ;;
    esac
}

# wrk's latency ("812.00us", "1.52ms", "1.02s", "2.00m") in milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n /= 1000
        else if (v ~ /ms$/) n = n
        else if (v ~ /m$/) n *= 60000
        else if (v ~ /s$/) n *= 1000
        printf "%.2f", n
    }'
}

warmup_on() {
    [[ $WARMUP != 0 && $WARMUP != 0s ]]
}

# run_wrk URL OUTFILE [SCRIPT]: a warm-up, then the measured run into OUTFILE.
# HOOK, when set, is run between the two (to read the server's metrics).
run_wrk() {
    local url=$1 out=$2 script=${3:-bench/member_get.lua} limit
    limit=$(($(seconds "$DURATION") + 60))
    if warmup_on; then
        timeout -k 5 $(($(seconds "$WARMUP") + 60)) \
            wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$WARMUP" -s "$script" "$url" \
            >/dev/null
    fi
    if [[ -n ${HOOK:-} ]]; then
        $HOOK
    fi
    timeout -k 5 "$limit" \
        wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency \
        -s "$script" "$url" >"$out"
}

# scrape URL OUTFILE: GET /metrics into OUTFILE.
scrape() {
    curl -sf --max-time 5 -o "$2" "$1/metrics" || die "GET $1/metrics failed"
}

# metric FILE NAME: the sum of the samples of NAME (any labels), empty when absent.
metric() {
    awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $NF; found = 1 }
        END { if (found) printf "%.0f", s }' "$1"
}

# group_size BEFORE AFTER: the mean number of write requests per commit of
# Loyal's SQLite writer between two scrapes and the two metrics it comes from
# ("34.5 requests_metric commits_metric"), or "" when the server does not
# say. Reads loyal_store_group_requests_total / loyal_store_commit_groups_total,
# or a histogram loyal_store_group_size (_sum / _count), or loyal_writer_*.
group_size() {
    local b=$1 a=$2 pair reqs groups r0 r1 g0 g1
    for pair in "loyal_store_group_requests_total loyal_store_commit_groups_total" \
        "loyal_store_group_size_sum loyal_store_group_size_count" \
        "loyal_writer_requests_total loyal_writer_commits_total" \
        "loyal_writer_group_size_sum loyal_writer_group_size_count"; do
        read -r reqs groups <<<"$pair"
        r0=$(metric "$b" "$reqs") r1=$(metric "$a" "$reqs")
        g0=$(metric "$b" "$groups") g1=$(metric "$a" "$groups")
        if [[ -n $r0 && -n $r1 && -n $g0 && -n $g1 ]] && ((g1 > g0)); then
            awk -v r=$((r1 - r0)) -v g=$((g1 - g0)) 'BEGIN { printf "%.1f", r / g }'
            echo " $reqs $groups"
            return 0
        fi
    done
    echo ""
}

# verify DB WHAT: loyal verify must print ok.
verify() {
    local out
    out=$(timeout -k 5 600 "$LOYAL" verify --db "$1" 2>&1) ||
        die "loyal verify after $2 failed: $(head -n 5 <<<"$out")"
    [[ $out == ok ]] || die "loyal verify after $2 printed: $(head -n 5 <<<"$out")"
    echo "bench: loyal verify after $2: ok" >&2
}

# run_bare DB GROUP [writes]: bench/bare_sqlite for DURATION; sets bare_eps.
# With "writes", the purchase's writes alone (the ceiling, see bare_sqlite.c).
run_bare() {
    local out
    out=$(timeout -k 5 $(($(seconds "$DURATION") + 120)) "$BUILD/bare_sqlite" "$1" \
        src/store/migrations/sqlite "$2" "$(seconds "$DURATION")" "$PURCHASE_MEMBERS" ${3:-}) ||
        die "bare_sqlite $2 ${3:-} failed"
    bare_eps=$(grep -o 'events_per_s=[0-9]*' <<<"$out" | cut -d= -f2)
    sqlite_runtime=$(kv "$out" sqlite)
    [[ -n $bare_eps ]] || die "bare_sqlite printed \"$out\""
}

# kv LINE KEY: the value of KEY=value in LINE.
kv() {
    grep -o "\b$2=[^ ]*" <<<"$1" | cut -d= -f2
}

# parse_wrk OUTFILE: sets rps, p50, p99 (ms), total, non2xx, sockerr.
parse_wrk() {
    local f=$1
    rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$f")
    p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$f")")
    p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$f")")
    total=$(awk '/ requests in / { print $1 }' "$f")
    non2xx=$(awk -F': *' '/Non-2xx or 3xx responses/ { print $2 }' "$f")
    non2xx=${non2xx:-0}
    sockerr=$(awk -F': *' '/Socket errors/ { print $2 }' "$f")
    [[ -n $rps && -n $total ]] || die "cannot read wrk's output in $f"
}

# median_round "RATE ROUND"...: the round whose rate is the median.
median_round() {
    printf '%s\n' "$@" | sort -n | awk '{ r[NR] = $2 } END { print r[int((NR + 1) / 2)] }'
}

# --- build ---------------------------------------------------------------------

for cmd in cmake ninja cc pkg-config curl node wrk timeout; do
    command -v "$cmd" >/dev/null ||
        die "$cmd is not installed (wrk: apt-get install wrk; the rest: make deps)"
done

# What is measured: the tree as it is built now (others may commit meanwhile).
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git status --porcelain -- src include CMakeLists.txt cmake 2>/dev/null) ]]; then
    commit="$commit plus uncommitted changes"
fi

# Configured every time (it is quick when nothing changed), so that the build
# directory is a Release build whatever it was before.
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOYAL_WERROR=OFF >/dev/null
ninja -C "$BUILD" loyal
# shellcheck disable=SC2046 # pkg-config's flags are meant to split
cc -O2 -o "$BUILD/bare_mhd" bench/bare_mhd.c $(pkg-config --cflags --libs libmicrohttpd) -lpthread
# shellcheck disable=SC2046
cc -O2 -o "$BUILD/bare_sqlite" bench/bare_sqlite.c $(pkg-config --cflags --libs sqlite3)
LOYAL=$BUILD/loyal

part() {
    [[ " $PARTS " == *" $1 "* ]]
}
part read || part write || part rules || part pg ||
    die "PARTS must name read, write, rules or pg, not \"$PARTS\""

# PostgreSQL's programs (initdb, pg_ctl, psql, pgbench): the newest installed.
if part pg; then
    # shellcheck disable=SC2012 # the directories are /usr/lib/postgresql/<version>/bin
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [[ -x $d/initdb && -x $d/pgbench ]]; then
            pg_bin=$d
            break
        fi
    done
    if [[ -z $pg_bin ]] && command -v pg_config >/dev/null; then
        d=$(pg_config --bindir)
        [[ -x $d/initdb && -x $d/pgbench ]] && pg_bin=$d
    fi
    [[ -n $pg_bin ]] ||
        die "no initdb and pgbench found (make deps), or leave pg out of PARTS"
    if ((EUID == 0)); then
        id postgres >/dev/null 2>&1 || die "running as root and there is no postgres user"
        command -v runuser >/dev/null || die "running as root and runuser is missing"
        pg_as=(runuser -u postgres --)
    fi
fi

# Other work on the machine skews every figure; the report says how busy it was.
loadavg=$(cut -d' ' -f1-3 /proc/loadavg)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/loyal-bench.XXXXXX")

# start_loyal DB LOG: serves DB on a free port; sets base and loyal_pid.
start_loyal() {
    local port
    port=$(free_port)
    base=http://127.0.0.1:$port
    "$LOYAL" serve --db "$1" --listen "127.0.0.1:$port" --threads "$THREADS" --access-log off \
        >"$2" 2>&1 &
    loyal_pid=$!
    pids+=("$loyal_pid")
    wait_http "$base/healthz" "$loyal_pid" "$2"
}

# seed COUNT KEY: enrols COUNT members; sets first and last.
seed() {
    local seeded
    echo "bench: enrolling $1 members ($SEED_CONCURRENCY in flight)" >&2
    seeded=$(BENCH_ADMIN_KEY=$2 timeout -k 5 600 \
        node bench/seed.mjs "$base" "$1" "$SEED_CONCURRENCY") || die "seeding failed"
    read -r first last <<<"$seeded"
    [[ ${first:-} =~ ^[0-9]+$ && ${last:-} =~ ^[0-9]+$ ]] || die "seed printed \"$seeded\""
}

# ==== reads: GET /v1/members/{id} ===============================================

if part read; then
    # --- Loyal -------------------------------------------------------------------

    db=$tmp/bench.db
    "$LOYAL" migrate --db "$db" >/dev/null
    read_key=$("$LOYAL" keys create --db "$db" --scope read --name bench-read)
    admin_key=$("$LOYAL" keys create --db "$db" --scope admin --name bench-seed)
    [[ $read_key == lk_* && $admin_key == lk_* ]] || die "loyal keys create printed no key"

    start_loyal "$db" "$tmp/loyal.log"
    seed "$MEMBERS" "$admin_key"

    # The ids the wrk script will ask for: mem_<first>..mem_<last>, all readable.
    listed=$(curl -sf --max-time 5 -H "Authorization: Bearer $read_key" "$base/v1/members?limit=1")
    [[ $listed == *"\"id\":\"mem_$first\""* ]] ||
        die "GET /v1/members?limit=1 did not list mem_$first first: $listed"
    for id in "$first" "$last"; do
        curl -sf -o /dev/null --max-time 5 -H "Authorization: Bearer $read_key" \
            "$base/v1/members/mem_$id" || die "GET /v1/members/mem_$id with the read key failed"
    done

    export BENCH_KEY=$read_key BENCH_FIRST=$first BENCH_MEMBERS=$((last - first + 1))
    read_members=$BENCH_MEMBERS

    # --- bare libmicrohttpd, beside it ------------------------------------------

    port=$(free_port)
    "$BUILD/bare_mhd" "$port" "$THREADS" >"$tmp/bare.log" 2>&1 &
    bare_pid=$!
    pids+=("$bare_pid")
    wait_http "http://127.0.0.1:$port/" "$bare_pid" "$tmp/bare.log"

    # Both servers are up (an idle one costs nothing); they take turns for
    # READ_ROUNDS rounds and each keeps its median round, so that a burst of
    # other work on the machine skews one round, not the ratio.
    loyal_runs=() bare_runs=()
    for ((round = 1; round <= READ_ROUNDS; round++)); do
        echo "bench: round $round/$READ_ROUNDS: Loyal, GET /v1/members/{id}, $DURATION" >&2
        run_wrk "$base" "$tmp/wrk-loyal-$round.txt"
        parse_wrk "$tmp/wrk-loyal-$round.txt"
        [[ $non2xx == 0 ]] || die "Loyal answered $non2xx requests with a non-2xx status"
        loyal_runs+=("$rps $round")
        echo "bench: round $round/$READ_ROUNDS: bare libmicrohttpd, same requests, $DURATION" >&2
        run_wrk "http://127.0.0.1:$port" "$tmp/wrk-bare-$round.txt"
        parse_wrk "$tmp/wrk-bare-$round.txt"
        [[ $non2xx == 0 ]] || die "bare_mhd answered $non2xx requests with a non-2xx status"
        bare_runs+=("$rps $round")
    done
    parse_wrk "$tmp/wrk-loyal-$(median_round "${loyal_runs[@]}").txt"
    loyal_rps=$rps loyal_p50=$p50 loyal_p99=$p99 loyal_total=$total loyal_non2xx=$non2xx
    loyal_sockerr=$sockerr
    parse_wrk "$tmp/wrk-bare-$(median_round "${bare_runs[@]}").txt"
    bare_rps=$rps bare_p50=$p50 bare_p99=$p99 bare_total=$total bare_non2xx=$non2xx
    bare_sockerr=$sockerr
    loyal_all=$(printf '%s\n' "${loyal_runs[@]}" | awk '{ printf "%s%s", (NR > 1 ? ", " : ""), $1 }')
    bare_all=$(printf '%s\n' "${bare_runs[@]}" | awk '{ printf "%s%s", (NR > 1 ? ", " : ""), $1 }')
    bare_body=$(grep -o '[0-9]*-byte body' "$tmp/bare.log" | grep -o '^[0-9]*' || echo '~370')
    stop_pid "$loyal_pid"
    stop_pid "$bare_pid"
    pids=()
fi

# ==== durable writes: purchases ==================================================

if part write; then
    # --- Loyal: single purchases over HTTP ----------------------------------------

    wdb=$tmp/purchases.db
    "$LOYAL" migrate --db "$wdb" >/dev/null
    pos_key=$("$LOYAL" keys create --db "$wdb" --scope pos --name bench-pos)
    admin_key=$("$LOYAL" keys create --db "$wdb" --scope admin --name bench-seed)
    [[ $pos_key == lk_* && $admin_key == lk_* ]] || die "loyal keys create printed no key"

    start_loyal "$wdb" "$tmp/loyal-purchases.log"
    seed "$PURCHASE_MEMBERS" "$admin_key"
    export BENCH_KEY=$pos_key BENCH_FIRST=$first BENCH_MEMBERS=$((last - first + 1))
    write_members=$BENCH_MEMBERS

    # One purchase by hand: it must earn points (the default rate, 1 per 100).
    one=$(curl -s --max-time 10 -w '\n%{http_code}' -H "Authorization: Bearer $pos_key" \
        -H 'Content-Type: application/json' \
        -d "{\"type\":\"purchase\",\"member\":\"mem_$first\",\"amount\":1000}" "$base/v1/events")
    [[ $one == *$'\n'201 && $one == *'"points_earned":10'* ]] ||
        die "a purchase of 1000 did not earn 10 points: $one"

    scrape "$base" "$tmp/metrics-0.txt"
    echo "bench: Loyal, POST /v1/events (single purchases), $DURATION" >&2
    HOOK="scrape $base $tmp/metrics-1.txt" run_wrk "$base" "$tmp/wrk-purchase.txt" bench/purchase.lua
    scrape "$base" "$tmp/metrics-2.txt"
    parse_wrk "$tmp/wrk-purchase.txt"
    buy_rps=$rps buy_p50=$p50 buy_p99=$p99 buy_total=$total buy_non2xx=$non2xx
    buy_sockerr=$sockerr
    [[ $buy_non2xx == 0 ]] || die "Loyal answered $buy_non2xx purchases with a non-2xx status"
    # Every purchase wrk counted was a 201 on the server's side too.
    ok201='loyal_http_requests_total{route="/v1/events",method="POST",status="201"}'
    c1=$(metric "$tmp/metrics-1.txt" "$ok201") c2=$(metric "$tmp/metrics-2.txt" "$ok201")
    created=$((${c2:-0} - ${c1:-0}))
    ((created >= buy_total)) ||
        die "wrk counted $buy_total purchases, the server answered $created with 201"
    read -r buy_group group_reqs group_commits <<<"$(group_size "$tmp/metrics-1.txt" "$tmp/metrics-2.txt")"
    verify "$wdb" "the single purchases"

    # --- Loyal: purchases in batches of 1000 -----------------------------------------

    if warmup_on; then
        timeout -k 5 $(($(seconds "$WARMUP") + 120)) \
            node bench/batch.mjs "$base" "$(seconds "$WARMUP")" "$BATCH_CLIENTS" "$BATCH_SIZE" \
            >/dev/null || die "the batch warm-up failed"
    fi
    scrape "$base" "$tmp/metrics-3.txt"
    echo "bench: Loyal, POST /v1/events/batch ($BATCH_SIZE purchases each, $BATCH_CLIENTS clients), $DURATION" >&2
    batch_out=$(timeout -k 5 $(($(seconds "$DURATION") + 120)) \
        node bench/batch.mjs "$base" "$(seconds "$DURATION")" "$BATCH_CLIENTS" "$BATCH_SIZE") ||
        die "the batch run failed"
    scrape "$base" "$tmp/metrics-4.txt"
    batch_eps=$(kv "$batch_out" events_per_s) batch_events=$(kv "$batch_out" events)
    batch_requests=$(kv "$batch_out" requests)
    batch_p50=$(kv "$batch_out" p50_ms) batch_p99=$(kv "$batch_out" p99_ms)
    [[ -n $batch_eps && -n $batch_p99 ]] || die "batch.mjs printed \"$batch_out\""
    read -r batch_group _ _ <<<"$(group_size "$tmp/metrics-3.txt" "$tmp/metrics-4.txt")"
    stop_pid "$loyal_pid"
    pids=()
    verify "$wdb" "the batches"

    # --- bare SQLite: the same rows per purchase ----------------------------------------

    # The limit for single purchases commits as many per transaction as Loyal's
    # writer did (1 when it does not say), then the batches' 1000 on the same
    # file, as Loyal's database went from one to the other.
    lim_group=1
    if [[ -n $buy_group ]]; then
        lim_group=$(awk -v g="$buy_group" 'BEGIN { g = int(g + 0.5); print g < 1 ? 1 : g }')
    fi
    echo "bench: bare SQLite, $lim_group purchase(s) per transaction, $DURATION" >&2
    run_bare "$tmp/bare-a.db" "$lim_group"
    lim_eps=$bare_eps
    echo "bench: bare SQLite, $BATCH_SIZE purchases per transaction, $DURATION" >&2
    run_bare "$tmp/bare-a.db" "$BATCH_SIZE"
    lim_batch_eps=$bare_eps
    # The ceiling over both: the same rows written with nothing read.
    echo "bench: bare SQLite, the writes alone, $lim_group per transaction, $DURATION" >&2
    run_bare "$tmp/bare-a.db" "$lim_group" writes
    ceil_eps=$bare_eps
    echo "bench: bare SQLite, the writes alone, $BATCH_SIZE per transaction, $DURATION" >&2
    run_bare "$tmp/bare-a.db" "$BATCH_SIZE" writes
    ceil_batch_eps=$bare_eps
    if [[ $lim_group == 1 ]]; then
        one_eps=$lim_eps
    else
        echo "bench: bare SQLite, 1 purchase per transaction, $DURATION" >&2
        run_bare "$tmp/bare-b.db" 1
        one_eps=$bare_eps
    fi
fi

# ==== PostgreSQL: Loyal on PostgreSQL beside pgbench ==============================

# pg_sql DB SQL: runs SQL on the throwaway server.
pg_sql() {
    "$pg_bin/psql" "postgresql://postgres@127.0.0.1:$pg_port/$1" -v ON_ERROR_STOP=1 -qAtc "$2"
}

# pgbench_run SECONDS [LOGPREFIX]: pgbench's TPC-B-like load on the pgbench
# database, PG_CLIENTS clients, PG_JOBS threads; with LOGPREFIX, one log line
# per transaction (its latency) into LOGPREFIX.*. Sets pgb_tps (empty when run
# without a log, as a warm-up).
pgbench_run() {
    local secs=$1 prefix=${2:-} out args=()
    [[ -n $prefix ]] && args=(-l --log-prefix="$prefix")
    out=$(timeout -k 5 $((secs + 120)) "$pg_bin/pgbench" -c "$PG_CLIENTS" -j "$PG_JOBS" \
        -T "$secs" "${args[@]}" "postgresql://postgres@127.0.0.1:$pg_port/pgbench" 2>&1) ||
        die "pgbench failed: $(tail -n 5 <<<"$out")"
    pgb_tps=$(awk '/^tps = / { printf "%.0f", $3 }' <<<"$out")
    pgb_total=$(awk -F': *' '/number of transactions actually processed/ { print $2 }' <<<"$out")
    pgb_failed=$(awk -F': *' '/number of failed transactions/ { print $2 + 0 }' <<<"$out")
    [[ -n $pgb_tps ]] || die "cannot read pgbench's output: $(tail -n 5 <<<"$out")"
}

# pgbench_pct PREFIX: p50 and p99 (ms) of the transactions logged under PREFIX.*
# (the third field of each line is the transaction's latency in microseconds).
pgbench_pct() {
    cat "$1".* | awk '{ print $3 }' | sort -n | awk '{ v[NR] = $1 } END {
        if (!NR) { print "— —"; exit }
        i50 = int(0.50 * NR); if (i50 < 1) i50 = 1
        i99 = int(0.99 * NR); if (i99 < 1) i99 = 1
        printf "%.2f %.2f\n", v[i50] / 1000, v[i99] / 1000 }'
}

if part pg; then
    # A throwaway server with PostgreSQL's default settings (fsync,
    # synchronous_commit and full_page_writes on: a commit waits for its WAL to
    # reach the disk), run as an unprivileged user, in the temporary directory.
    pg_dir=$tmp/pg
    pg_data=$pg_dir/data
    mkdir -p "$pg_dir"
    if ((${#pg_as[@]})); then
        chmod 711 "$tmp"
        chown postgres: "$pg_dir"
    fi
    chmod 700 "$pg_dir"
    echo "bench: PostgreSQL: initdb and start ($pg_bin)" >&2
    "${pg_as[@]}" "$pg_bin/initdb" -D "$pg_data" -A trust -U postgres -E UTF8 --locale=C \
        >"$tmp/pg-initdb.log" 2>&1 || die "initdb failed: $(tail -n 5 "$tmp/pg-initdb.log")"
    pg_port=""
    for _ in 1 2 3 4 5; do
        port=$(free_port)
        if "${pg_as[@]}" "$pg_bin/pg_ctl" -D "$pg_data" -l "$pg_dir/server.log" -w -t 60 -s \
            -o "-p $port -c listen_addresses=127.0.0.1 -k $pg_dir" start >/dev/null 2>&1; then
            pg_port=$port
            break
        fi
        "${pg_as[@]}" "$pg_bin/pg_ctl" -D "$pg_data" -m immediate -w stop >/dev/null 2>&1 || true
    done
    [[ -n $pg_port ]] || die "PostgreSQL did not start: $(tail -n 5 "$pg_dir/server.log" 2>/dev/null)"
    pg_version=$(pg_sql postgres 'SHOW server_version')
    pg_settings=$(pg_sql postgres "SELECT string_agg(name || '=' || current_setting(name),
        ', ' ORDER BY name) FROM pg_settings WHERE name IN
        ('fsync', 'synchronous_commit', 'full_page_writes', 'wal_sync_method',
         'shared_buffers', 'max_connections')")
    if ! pg_sql postgres 'CREATE DATABASE loyal' || ! pg_sql postgres 'CREATE DATABASE pgbench'; then
        die "cannot create the databases"
    fi
    pdb=postgresql://postgres@127.0.0.1:$pg_port/loyal

    # --- Loyal on PostgreSQL ----------------------------------------------------------

    "$LOYAL" migrate --db "$pdb" >/dev/null
    pg_pos_key=$("$LOYAL" keys create --db "$pdb" --scope pos --name bench-pos)
    pg_read_key=$("$LOYAL" keys create --db "$pdb" --scope read --name bench-read)
    admin_key=$("$LOYAL" keys create --db "$pdb" --scope admin --name bench-seed)
    [[ $pg_pos_key == lk_* && $pg_read_key == lk_* && $admin_key == lk_* ]] ||
        die "loyal keys create printed no key"
    start_loyal "$pdb" "$tmp/loyal-pg.log"
    pg_loyal_pid=$loyal_pid pg_base=$base
    seed "$PURCHASE_MEMBERS" "$admin_key"
    pg_first=$first pg_members=$((last - first + 1))
    one=$(curl -s --max-time 10 -w '\n%{http_code}' -H "Authorization: Bearer $pg_pos_key" \
        -H 'Content-Type: application/json' \
        -d "{\"type\":\"purchase\",\"member\":\"mem_$first\",\"amount\":1000}" "$pg_base/v1/events")
    [[ $one == *$'\n'201 && $one == *'"points_earned":10'* ]] ||
        die "a purchase of 1000 on PostgreSQL did not earn 10 points: $one"

    # --- pgbench's tables, on the same server -------------------------------------------

    echo "bench: pgbench -i -s $PG_SCALE" >&2
    timeout -k 5 600 "$pg_bin/pgbench" -i -q -s "$PG_SCALE" \
        "postgresql://postgres@127.0.0.1:$pg_port/pgbench" >"$tmp/pgbench-init.log" 2>&1 ||
        die "pgbench -i failed: $(tail -n 5 "$tmp/pgbench-init.log")"

    # The read limit is the bare server of the reads part when it ran; without
    # it, bare_mhd takes its turn here too.
    pg_bare=0
    if [[ -z ${bare_rps:-} ]]; then
        pg_bare=1
        port=$(free_port)
        pg_bare_url=http://127.0.0.1:$port
        "$BUILD/bare_mhd" "$port" "$THREADS" >"$tmp/bare-pg.log" 2>&1 &
        pg_bare_pid=$!
        pids+=("$pg_bare_pid")
        wait_http "$pg_bare_url/" "$pg_bare_pid" "$tmp/bare-pg.log"
    fi

    # Rounds: Loyal's reads, Loyal's purchases, pgbench, each its median round.
    pg_get_runs=() pg_buy_runs=() pgb_runs=() pg_bare_runs=()
    ok201='loyal_http_requests_total{route="/v1/events",method="POST",status="201"}'
    for ((round = 1; round <= PG_ROUNDS; round++)); do
        export BENCH_FIRST=$pg_first BENCH_MEMBERS=$pg_members
        echo "bench: round $round/$PG_ROUNDS: Loyal on PostgreSQL, GET /v1/members/{id}, $DURATION" >&2
        BENCH_KEY=$pg_read_key run_wrk "$pg_base" "$tmp/wrk-pg-get-$round.txt"
        parse_wrk "$tmp/wrk-pg-get-$round.txt"
        [[ $non2xx == 0 ]] || die "Loyal on PostgreSQL answered $non2xx reads with a non-2xx status"
        pg_get_runs+=("$rps $round")
        if ((pg_bare)); then
            echo "bench: round $round/$PG_ROUNDS: bare libmicrohttpd, same requests, $DURATION" >&2
            BENCH_KEY=$pg_read_key run_wrk "$pg_bare_url" "$tmp/wrk-pg-bare-$round.txt"
            parse_wrk "$tmp/wrk-pg-bare-$round.txt"
            pg_bare_runs+=("$rps $round")
        fi
        echo "bench: round $round/$PG_ROUNDS: Loyal on PostgreSQL, POST /v1/events, $DURATION" >&2
        BENCH_KEY=$pg_pos_key HOOK="scrape $pg_base $tmp/metrics-pg-$round-a.txt" \
            run_wrk "$pg_base" "$tmp/wrk-pg-buy-$round.txt" bench/purchase.lua
        scrape "$pg_base" "$tmp/metrics-pg-$round-b.txt"
        parse_wrk "$tmp/wrk-pg-buy-$round.txt"
        [[ $non2xx == 0 ]] ||
            die "Loyal on PostgreSQL answered $non2xx purchases with a non-2xx status"
        c1=$(metric "$tmp/metrics-pg-$round-a.txt" "$ok201")
        c2=$(metric "$tmp/metrics-pg-$round-b.txt" "$ok201")
        ((${c2:-0} - ${c1:-0} >= total)) ||
            die "wrk counted $total purchases, Loyal on PostgreSQL answered $((${c2:-0} - ${c1:-0})) with 201"
        pg_buy_runs+=("$rps $round")
        if warmup_on; then
            pgbench_run "$(seconds "$WARMUP")"
        fi
        echo "bench: round $round/$PG_ROUNDS: pgbench -c $PG_CLIENTS -j $PG_JOBS -T $(seconds "$DURATION")" >&2
        pgbench_run "$(seconds "$DURATION")" "$tmp/pgbench-$round"
        ((pgb_failed == 0)) || die "pgbench: $pgb_failed transactions failed"
        echo "$pgb_tps $pgb_total" >"$tmp/pgbench-$round.txt"
        pgb_runs+=("$pgb_tps $round")
    done
    r=$(median_round "${pg_get_runs[@]}")
    parse_wrk "$tmp/wrk-pg-get-$r.txt"
    pg_get_rps=$rps pg_get_p50=$p50 pg_get_p99=$p99 pg_get_total=$total pg_get_sockerr=$sockerr
    r=$(median_round "${pg_buy_runs[@]}")
    parse_wrk "$tmp/wrk-pg-buy-$r.txt"
    pg_buy_rps=$rps pg_buy_p50=$p50 pg_buy_p99=$p99 pg_buy_total=$total pg_buy_sockerr=$sockerr
    r=$(median_round "${pgb_runs[@]}")
    read -r pgb_tps pgb_total <"$tmp/pgbench-$r.txt"
    read -r pgb_p50 pgb_p99 <<<"$(pgbench_pct "$tmp/pgbench-$r")"
    if ((pg_bare)); then
        parse_wrk "$tmp/wrk-pg-bare-$(median_round "${pg_bare_runs[@]}").txt"
        pg_read_limit=$rps
        stop_pid "$pg_bare_pid"
    else
        pg_read_limit=$bare_rps
    fi
    pg_get_all=$(printf '%s\n' "${pg_get_runs[@]}" | awk '{ printf "%s%s", (NR > 1 ? ", " : ""), $1 }')
    pg_buy_all=$(printf '%s\n' "${pg_buy_runs[@]}" | awk '{ printf "%s%s", (NR > 1 ? ", " : ""), $1 }')
    pgb_all=$(printf '%s\n' "${pgb_runs[@]}" | awk '{ printf "%s%s", (NR > 1 ? ", " : ""), $1 }')
    stop_pid "$pg_loyal_pid"
    pids=()
    verify "$pdb" "the purchases on PostgreSQL"
    "${pg_as[@]}" "$pg_bin/pg_ctl" -D "$pg_data" -m fast -w stop >/dev/null 2>&1 || true
fi

# ==== rules: evaluating a program's earn rules ====================================

if part rules; then
    # One thread, pinned to one CPU when taskset is there; RULES_ROUNDS rounds,
    # the median kept, as for the reads.
    ninja -C "$BUILD" bench_rules
    pin=()
    if command -v taskset >/dev/null && taskset -c "$(($(nproc) - 1))" true 2>/dev/null; then
        pin=(taskset -c "$(($(nproc) - 1))")
    fi
    rules_runs=()
    for ((round = 1; round <= RULES_ROUNDS; round++)); do
        echo "bench: round $round/$RULES_ROUNDS: rule evaluation, ${RULES_SECONDS}s" >&2
        out=$(timeout -k 5 $((RULES_SECONDS + 60)) "${pin[@]}" "$BUILD/bench_rules" \
            "$RULES_SECONDS") || die "bench_rules failed"
        [[ -n $(kv "$out" rule_evals_per_s) ]] || die "bench_rules printed \"$out\""
        rules_runs+=("$(kv "$out" rule_evals_per_s) $(kv "$out" baskets_per_s) $(kv "$out" rules) $(kv "$out" items)")
    done
    read -r rules_eps rules_bps rules_n rules_items <<<"$(printf '%s\n' "${rules_runs[@]}" |
        sort -n | awk '{ r[NR] = $0 } END { print r[int((NR + 1) / 2)] }')"
    rules_all=$(printf '%s\n' "${rules_runs[@]}" | awk '{ printf "%s%s", (NR > 1 ? ", " : ""), $1 }')
fi

# --- report ----------------------------------------------------------------------

pct() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f%%", 100 * a / b; else print "—" }'
}

# spread "A, B, C": how far the rounds of one figure lie apart, (max - min) /
# median, as a whole percentage.
spread() {
    tr ',' '\n' <<<"$1" | awk 'NF { v[++n] = $1 + 0 } END {
        if (n < 2) { print 0; exit }
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
        m = v[int((n + 1) / 2)]
        printf "%.0f\n", (m > 0 ? 100 * (v[n] - v[1]) / m : 0) }'
}

# The table: one row per measured figure, with its limit and the ratio to it.
rows="| benchmark | per second | p50 | p99 | limit | limit per second | ratio |
| --- | ---: | ---: | ---: | --- | ---: | ---: |"
summary=""
rounds=""
max_spread=0
note_rounds() { # NAME "A, B, C"
    local sp
    sp=$(spread "$2")
    rounds+="- $1: $2 (apart by $sp%)
"
    ((sp > max_spread)) && max_spread=$sp
    return 0
}

if part read; then
    ratio=$(pct "$loyal_rps" "$bare_rps")
    verdict=$(awk -v a="$loyal_rps" -v b="$bare_rps" \
        'BEGIN { print (a >= 0.4 * b) ? "meets" : "is below" }')
    rows+="
| \`GET /v1/members/{id}\`, SQLite, $CONNECTIONS connections | $loyal_rps req/s | $loyal_p50 ms | $loyal_p99 ms | bare libmicrohttpd, fixed reply | $bare_rps | $ratio |
| bare libmicrohttpd, fixed reply (the reads' limit) | $bare_rps req/s | $bare_p50 ms | $bare_p99 ms | — | — | — |"
    summary+="- Reads on SQLite: Loyal answers **$ratio** of the bare server's requests per second: it $verdict the 40% aim.
"
    note_rounds "Loyal, GET on SQLite, req/s" "$loyal_all"
    note_rounds "bare libmicrohttpd, req/s" "$bare_all"
fi
if part write; then
    buy_ratio=$(pct "$buy_rps" "$lim_eps")
    buy_ratio_one=$(pct "$buy_rps" "$one_eps")
    batch_ratio=$(pct "$batch_eps" "$lim_batch_eps")
    buy_aim=$(awk -v a="$buy_rps" 'BEGIN { print (a >= 10000) ? "meets" : "does not meet" }')
    batch_aim=$(awk -v a="$batch_eps" 'BEGIN { print (a >= 40000) ? "meets" : "does not meet" }')
    lim_name="bare SQLite, $lim_group per transaction"
    [[ $lim_group == 1 ]] && lim_name="bare SQLite, 1 per transaction"
    rows+="
| \`POST /v1/events\`, purchases, SQLite \`synchronous=FULL\`, $CONNECTIONS connections | $buy_rps req/s | $buy_p50 ms | $buy_p99 ms | $lim_name | $lim_eps | $buy_ratio |
| \`POST /v1/events/batch\`, $BATCH_SIZE purchases per request, $BATCH_CLIENTS clients | $batch_eps events/s | $batch_p50 ms | $batch_p99 ms | bare SQLite, $BATCH_SIZE per transaction | $lim_batch_eps | $batch_ratio |"
    if [[ $lim_group != 1 ]]; then
        rows+="
| bare SQLite, $lim_group purchases per transaction (Loyal's mean group; the purchases' limit) | $lim_eps events/s | — | — | — | — | — |"
    fi
    rows+="
| bare SQLite, $BATCH_SIZE purchases per transaction (the batches' limit) | $lim_batch_eps events/s | — | — | — | — | — |
| bare SQLite, 1 purchase per transaction (one fsync each) | $one_eps events/s | — | — | — | — | — |
| bare SQLite, a purchase's writes alone, nothing read, $lim_group per transaction (the ceiling) | $ceil_eps events/s | — | — | — | — | — |
| bare SQLite, a purchase's writes alone, nothing read, $BATCH_SIZE per transaction (the ceiling) | $ceil_batch_eps events/s | — | — | — | — | — |"
    ceil_aim=$(awk -v a="$ceil_eps" 'BEGIN { print (a >= 10000) ? "reaches" : "falls short of" }')
    ceil_batch_aim=$(awk -v a="$ceil_batch_eps" 'BEGIN { print (a >= 40000) ? "reaches" : "falls short of" }')
    summary+="- Durable purchases on SQLite: **$buy_rps/s** over HTTP, $buy_ratio of bare SQLite committing $lim_group per transaction ($buy_ratio_one of one per transaction): it $buy_aim the 10,000/s aim.
- Batches on SQLite: **$batch_eps purchases/s**, $batch_ratio of bare SQLite committing $BATCH_SIZE per transaction: it $batch_aim the 40,000/s aim.
- The ceiling on this machine: a purchase's rows written alone, with nothing read and every id known, go at $ceil_eps/s committing $lim_group per transaction, which $ceil_aim the 10,000/s aim, and $ceil_batch_eps/s at $BATCH_SIZE per transaction, which $ceil_batch_aim the 40,000/s aim.
"
fi
if part pg; then
    pg_get_ratio=$(pct "$pg_get_rps" "$pg_read_limit")
    pg_buy_ratio=$(pct "$pg_buy_rps" "$pgb_tps")
    rows+="
| \`GET /v1/members/{id}\`, PostgreSQL, $CONNECTIONS connections | $pg_get_rps req/s | $pg_get_p50 ms | $pg_get_p99 ms | bare libmicrohttpd, fixed reply | $pg_read_limit | $pg_get_ratio |
| \`POST /v1/events\`, purchases, PostgreSQL (durable commits), $CONNECTIONS connections | $pg_buy_rps req/s | $pg_buy_p50 ms | $pg_buy_p99 ms | pgbench TPC-B-like, $PG_CLIENTS clients | $pgb_tps | $pg_buy_ratio |
| pgbench TPC-B-like, scale $PG_SCALE, $PG_CLIENTS clients (the PostgreSQL purchases' limit) | $pgb_tps tx/s | $pgb_p50 ms | $pgb_p99 ms | — | — | — |"
    summary+="- Reads on PostgreSQL: Loyal answers **$pg_get_ratio** of the bare server's requests per second.
- Durable purchases on PostgreSQL: **$pg_buy_rps/s** over HTTP, $pg_buy_ratio of the transactions/s pgbench's TPC-B-like load gets from the same server.
"
    note_rounds "Loyal, GET on PostgreSQL, req/s" "$pg_get_all"
    note_rounds "Loyal, POST /v1/events on PostgreSQL, req/s" "$pg_buy_all"
    note_rounds "pgbench, tx/s" "$pgb_all"
fi
if part rules; then
    rules_ratio=$(pct "$rules_eps" "$RULES_AIM")
    rules_verdict=$(awk -v a="$rules_eps" -v b="$RULES_AIM" 'BEGIN { print (a >= b) ? "meets" : "does not meet" }')
    rows+="
| rule evaluation, $rules_n rules × $rules_items-item basket, one core | $rules_eps rule evals/s ($rules_bps baskets/s) | — | — | aim | $RULES_AIM | $rules_ratio |"
    summary+="- Rules: **$rules_eps rule evaluations/s** ($rules_bps baskets of $rules_items items against $rules_n rules each) on one core, $rules_ratio of the aim: it $rules_verdict the 1,000,000/s aim.
"
    note_rounds "rule evaluations/s" "$rules_all"
fi

# --- the machine -------------------------------------------------------------------

elapsed=$(($(date +%s) - started_at))
took="$((elapsed / 60)) min $((elapsed % 60)) s"
loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)
cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
topology=""
hypervisor=""
if command -v lscpu >/dev/null; then
    topology=$(LC_ALL=C lscpu | awk -F': *' '/^Socket\(s\)/ { s = $2 } /^Core\(s\) per socket/ { c = $2 }
        /^Thread\(s\) per core/ { t = $2 } END { if (s && c && t) printf "%s socket%s, %s core%s per socket, %s thread%s per core", s, (s > 1 ? "s" : ""), c, (c > 1 ? "s" : ""), t, (t > 1 ? "s" : "") }')
    hypervisor=$(LC_ALL=C lscpu | awk -F': *' '/^Hypervisor vendor/ { print $2 }')
fi
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
read -r fs_src fs_type fs_opts <<<"$(findmnt -no SOURCE,FSTYPE,OPTIONS -T "$tmp" 2>/dev/null || true)"
[[ -n ${fs_type:-} ]] || fs_type=$(df -T "$tmp" 2>/dev/null | awk 'NR == 2 { print $2 }')
disk=""
if [[ ${fs_src:-} == /dev/* ]]; then
    dev=$(basename "$(readlink -f "$fs_src")")
    # A partition's disk is its parent in /sys/class/block.
    sysdev=/sys/class/block/$dev
    [[ -e $sysdev/partition ]] && sysdev=$(dirname "$(readlink -f "$sysdev")")
    size=$(lsblk -dno SIZE "/dev/$(basename "$sysdev")" 2>/dev/null | tr -d ' ' || true)
    model=""
    [[ -r $sysdev/device/model ]] && model=$(tr -s ' ' <"$sysdev/device/model" | sed 's/ *$//')
    driver=$(basename "$(readlink -f "$sysdev/device/driver" 2>/dev/null)" 2>/dev/null || true)
    [[ $driver == driver || $driver == device ]] && driver=""
    rota=$(cat "$sysdev/queue/rotational" 2>/dev/null || true)
    disk="$fs_src (${model:+$model, }${driver:+$driver, }${size:+$size, }$([[ $rota == 1 ]] && echo "reported rotational" || echo "reported non-rotational"))"
fi
sqlite_ver=${sqlite_runtime:-$(sqlite3 --version 2>/dev/null | awk '{ print $1 }')}
sqlite_ver=${sqlite_ver:-$(pkg-config --modversion sqlite3) (headers)}
pg_line="not measured (pg not in PARTS)"
if part pg; then
    pg_line="PostgreSQL $pg_version, a throwaway server ($pg_settings), $("$pg_bin/pgbench" --version | awk '{ print $1, $3 }'), libpq $(pkg-config --modversion libpq 2>/dev/null || echo '?')"
fi

noise=""
loaded=$(awk -v l="${loadavg%% *}" -v e="${loadavg_end%% *}" -v n="$(nproc)" 'BEGIN { print ((l > n / 2 || e > n) ? 1 : 0) }')
if ((max_spread > 15 || loaded)); then
    noise="**The figures vary.** This machine is shared: the load average was $loadavg when the
run began and $loadavg_end when it ended, on $(nproc) CPUs, and the rounds of one
figure lay up to $max_spread% apart (below). Another run will give other absolute
figures; the ratios, whose two sides take turns or run back to back, move less."
else
    noise="The rounds of one figure lay at most $max_spread% apart (below); the load
average was $loadavg when the run began and $loadavg_end when it ended."
fi

echo
echo "$rows"
echo
printf '%s' "$summary"
echo
echo "bench: took $took" >&2

# --- method ---------------------------------------------------------------------

method=""
if part read; then
    method+="
### Reads

- Loyal on SQLite (\`loyal serve --threads $THREADS --access-log off\`), with
  $read_members members enrolled through \`POST /v1/members\` beforehand.
  Each request reads a random member, \`GET /v1/members/mem_<n>\`, with a
  \`read\` key (so every request also authenticates its key).
- The limit: \`bench/bare_mhd.c\`, libmicrohttpd with the same flags and
  options as Loyal ($THREADS pool threads, epoll, turbo) answering the same
  requests with a fixed member-shaped JSON body of $bare_body bytes, running
  beside Loyal: the two take turns for $READ_ROUNDS rounds and each figure is
  that server's median round.
- \`wrk -t$WRK_THREADS -c$CONNECTIONS -d$DURATION --latency -s bench/member_get.lua\`:
  $CONNECTIONS keep-alive connections, after an untimed $WARMUP warm-up.
- Aim: Loyal at least 40% of the bare server's requests per second.
"
fi
if part write; then
    if [[ -n $buy_group ]]; then
        group_text="Loyal's SQLite writer committed **$buy_group** purchases per
  transaction on average during the measured run (from \`GET /metrics\`:
  \`$group_reqs\` / \`$group_commits\`)${batch_group:+, and $batch_group batch
  requests of $BATCH_SIZE per transaction during the batches}."
    else
        group_text="\`GET /metrics\` shows no group-commit metric, so Loyal's
  group size is unknown and the limit commits each purchase alone."
    fi
    method+="
### Durable purchases on SQLite

- Loyal on a fresh SQLite database (WAL, \`synchronous=FULL\`: an answered
  purchase survives power loss), \`loyal serve --threads $THREADS --access-log off\`,
  with $write_members members enrolled through \`POST /v1/members\` and the
  default earn rate (1 point per 100 minor units), so every purchase earns.
- Single purchases: \`wrk -t$WRK_THREADS -c$CONNECTIONS -d$DURATION --latency -s bench/purchase.lua\`,
  after an untimed $WARMUP warm-up: \`POST /v1/events\` with a \`pos\` key,
  \`{\"type\":\"purchase\",\"member\":\"mem_<n>\",\"amount\":<100..50000>}\` for a
  random member, no \`id\`, so each is a new event. Every answer was a 201.
  $group_text
- Batches: \`node bench/batch.mjs\` with $BATCH_CLIENTS clients, each sending
  \`POST /v1/events/batch\` with $BATCH_SIZE such purchases, one request after
  another for $DURATION (after a $WARMUP warm-up), on the same database
  right after the single purchases. Every result was a 201. p50 and p99 are
  per request of $BATCH_SIZE.
- \`loyal verify\` printed ok after each of the two runs.
- The limit: \`bench/bare_sqlite.c\`, C on libsqlite3 alone, that runs per
  purchase the statements Loyal's purchase path runs (the same SQL, prepared
  once, on the schema of Loyal's migrations, WAL, \`synchronous=FULL\`,
  foreign keys on, the same page cache, $PURCHASE_MEMBERS members), committing
  every GROUP purchases without savepoints, as Loyal does: the program, the
  member's lock, the event's id, the balance before, the earn entry with the
  member account's update and its two postings, the lot, the member's
  purchase totals, the balances of points (with the pending and expired
  sums and next expiry dates of its lots) and credit for the answer, in one
  statement, and the event's row with its answer: 12 statements per
  purchase (see the comment at
  the top of the file). No HTTP, no JSON parsing, no API key check (Loyal
  reads the key in a read transaction of its own per request). It ran for
  $DURATION at Loyal's group size, then for $DURATION at $BATCH_SIZE per
  transaction on the same file (as Loyal's database carried the single
  purchases' rows into the batches), then at 1 per transaction on a fresh
  file, right after Loyal.
- The ceiling: the same program with \`writes\`, on the same file after the
  limits, runs only the 7 statements that write a purchase's rows (the
  event with its answer, the earn entry, the member account's balance, the
  two postings, the lot, the member's totals), with every account id and the
  next event id read before the clock starts and the balance for the answer
  kept in memory. No way of keeping these rows on this SQLite and disk goes
  faster; only fewer rows, or fewer pages written per commit, would.
- Aims: 10,000 single purchases/s over HTTP and 40,000 purchases/s in
  batches on 2 cores; the ratio to bare SQLite says how far the same rows at
  the same durability could go without Loyal.
"
fi
if part pg; then
    method+="
### PostgreSQL

- A throwaway PostgreSQL $pg_version server started by the script in its
  temporary directory (initdb, a free loopback port, run as an unprivileged
  user), with PostgreSQL's default settings: a commit returns once its WAL is
  flushed to the disk ($pg_settings).
- Loyal: \`loyal serve --db postgresql://…/loyal --threads $THREADS --access-log off\`
  (a pool of $((THREADS + 2)) connections), with $pg_members members enrolled
  through \`POST /v1/members\`; reads with \`bench/member_get.lua\` and a
  \`read\` key, purchases with \`bench/purchase.lua\` and a \`pos\` key, each
  with wrk, $CONNECTIONS connections, $DURATION after a $WARMUP warm-up. Every
  answer was a 200 or a 201; \`loyal verify\` printed ok afterwards.
- The purchases' limit: \`pgbench -i -s $PG_SCALE\` in another database of the
  same server, then \`pgbench -c $PG_CLIENTS -j $PG_JOBS -T $(seconds "$DURATION")\`
  (after a $WARMUP warm-up): the built-in TPC-B-like transaction, three
  updates, a select and an insert, committed durably. Its p50 and p99 come
  from pgbench's per-transaction log (\`-l\`). A Loyal purchase is about 16
  statements in one transaction over HTTP; the ratio says how much of what
  this server commits per second with a standard small write transaction
  Loyal turns into answered purchases.
- The reads' limit: the bare libmicrohttpd server's figure$( ((pg_bare)) && echo ", measured here in turns with Loyal" || echo " from the reads on SQLite, in this run").
- Loyal's reads, Loyal's purchases and pgbench take turns for $PG_ROUNDS rounds;
  each figure is its median round.
"
fi
if part rules; then
    method+="
### Rule evaluation

- \`bench/rules_bench.c\` (CMake target \`bench_rules\`): a program's $rules_n earn
  rules, compiled once as \`POST /v1/rules\` compiles them, evaluated with
  \`ly_rules_eval\` against a $rules_items-item basket, one basket after another on
  one thread${pin:+ pinned to one CPU (\`taskset\`)}; no store, no HTTP, no JSON.
  The rules: 1 point per dollar; weekend x2; coffee-morning x3 with an
  \`items\` filter; 2% and 5% cashback for card holders (\`member.attributes\`);
  bakery, produce, wine-club and partner-brand bonuses (\`items\` filters);
  silver, gold and platinum multipliers (\`member.tier\`, last); two
  exclusive app and web promotions and a summer bonus with active windows; a
  big-basket bonus, a first purchase, lapsed members, birthdays; a capped
  review rule for another event type. The baskets take turns among 8
  purchases (days, hours, channels, tiers, cards) read in America/New_York,
  each checked against the points and credit worked out by hand before the
  clock starts.
- $RULES_ROUNDS rounds of ${RULES_SECONDS}s; the median round is shown. A rule
  evaluation is one rule against one basket: baskets/s × $rules_n.
- Aim: 1,000,000 rule evaluations/s on one core (the \"limit\" column says
  \"aim\").
"
fi

counts=""
if part read; then
    counts+="- Reads on SQLite, median rounds: Loyal $loyal_total requests, bare $bare_total; socket
  errors: Loyal ${loyal_sockerr:-none}, bare ${bare_sockerr:-none}; non-2xx answers: none.
"
fi
if part write; then
    counts+="- Purchases on SQLite: $buy_total single (socket errors: ${buy_sockerr:-none}),
  $batch_events in $batch_requests batches; non-2xx answers: none.
"
fi
if part pg; then
    counts+="- On PostgreSQL, median rounds: $pg_get_total reads (socket errors: ${pg_get_sockerr:-none}),
  $pg_buy_total purchases (socket errors: ${pg_buy_sockerr:-none}); non-2xx answers: none;
  pgbench $pgb_total transactions, none failed.
"
fi

cat >"$OUT" <<EOF
# Benchmarks

Written by \`bench/run.sh\` (\`make bench\`) in one run of $took; each run
replaces this file. See [README.md](README.md) for what each row measures and
how to read it.

## The machine

- Date: $(date -u '+%Y-%m-%d %H:%M UTC')
- Loyal: commit $commit, \`$BUILD\` (CMake Release, $(cc --version | head -n 1))
- CPU: ${cpu:-unknown}, $(nproc) logical CPUs${topology:+ ($topology)}${hypervisor:+, virtual machine on $hypervisor}
- Memory: $mem; kernel: $(uname -sr)
- Data directory: \`${TMPDIR:-/tmp}\`, ${fs_type:-unknown} filesystem${fs_opts:+ (\`$fs_opts\`)}${disk:+ on $disk}
- SQLite $sqlite_ver; $pg_line
- libmicrohttpd $(pkg-config --modversion libmicrohttpd); $(wrk -v 2>&1 | awk 'NR == 1 { print $1, $2 }'); Node $(node --version)
- Load average: $loadavg when the run began, $loadavg_end when it ended

## Results

$rows

$summary
$noise

Every round, in the order run:

$rounds
What the median rounds counted:

$counts
## Method

wrk, Node, pgbench and the servers share the machine's $(nproc) CPUs, so every
figure includes the load generator's own CPU use; the ratios are the figures
that carry over to other machines. Each limit is measured beside or right
after what it bounds, in the same run.
$method
EOF

echo "bench: wrote $OUT" >&2

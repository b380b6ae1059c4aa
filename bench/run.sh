#!/usr/bin/env bash
# Measures GET /v1/members/{id} on a release build of Loyal with wrk, then a
# bare libmicrohttpd server configured the same way (bench/bare_mhd.c) in the
# same run, and writes the figures to bench/BENCHMARKS.md. See bench/README.md.
#
# Environment: DURATION (wrk -d, default 10s), THREADS (server threads, both
# servers, default 2), MEMBERS (members enrolled, default 10000), WARMUP
# (untimed wrk run before each measurement, default 2s; 0 skips it),
# KEEP_TMP=1 keeps the temporary directory (database, logs, wrk output).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
MEMBERS=${MEMBERS:-10000}
WARMUP=${WARMUP:-2s}
CONNECTIONS=64
WRK_THREADS=2
SEED_CONCURRENCY=32
BUILD=build-release
OUT=bench/BENCHMARKS.md

die() {
    echo "bench: $*" >&2
    exit 1
}

# --- processes and the temporary directory, all cleaned up on exit ---------

pids=()
tmp=""

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

# run_wrk URL OUTFILE: a warm-up, then the measured run into OUTFILE.
run_wrk() {
    local url=$1 out=$2 limit
    limit=$(($(seconds "$DURATION") + 60))
    if [[ $WARMUP != 0 && $WARMUP != 0s ]]; then
        timeout -k 5 $(($(seconds "$WARMUP") + 60)) \
            wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$WARMUP" -s bench/member_get.lua "$url" \
            >/dev/null
    fi
    timeout -k 5 "$limit" \
        wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency \
        -s bench/member_get.lua "$url" >"$out"
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

# --- build ---------------------------------------------------------------------

for cmd in cmake ninja cc pkg-config curl node wrk timeout; do
    command -v "$cmd" >/dev/null ||
        die "$cmd is not installed (wrk: apt-get install wrk; the rest: make deps)"
done

if [[ ! -f $BUILD/build.ninja ]]; then
    cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOYAL_WERROR=OFF >/dev/null
fi
ninja -C "$BUILD" loyal
# shellcheck disable=SC2046 # pkg-config's flags are meant to split
cc -O2 -o "$BUILD/bare_mhd" bench/bare_mhd.c $(pkg-config --cflags --libs libmicrohttpd) -lpthread
LOYAL=$BUILD/loyal

# Other work on the machine skews both servers; the report says how busy it was.
loadavg=$(cut -d' ' -f1-3 /proc/loadavg)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/loyal-bench.XXXXXX")
db=$tmp/bench.db

# --- Loyal ---------------------------------------------------------------------

"$LOYAL" migrate --db "$db" >/dev/null
read_key=$("$LOYAL" keys create --db "$db" --scope read --name bench-read)
admin_key=$("$LOYAL" keys create --db "$db" --scope admin --name bench-seed)
[[ $read_key == lk_* && $admin_key == lk_* ]] || die "loyal keys create printed no key"

port=$(free_port)
base=http://127.0.0.1:$port
"$LOYAL" serve --db "$db" --listen "127.0.0.1:$port" --threads "$THREADS" --access-log off \
    >"$tmp/loyal.log" 2>&1 &
loyal_pid=$!
pids+=("$loyal_pid")
wait_http "$base/healthz" "$loyal_pid" "$tmp/loyal.log"

echo "bench: enrolling $MEMBERS members ($SEED_CONCURRENCY in flight)" >&2
seeded=$(BENCH_ADMIN_KEY=$admin_key timeout -k 5 600 \
    node bench/seed.mjs "$base" "$MEMBERS" "$SEED_CONCURRENCY") || die "seeding failed"
read -r first last <<<"$seeded"
[[ ${first:-} =~ ^[0-9]+$ && ${last:-} =~ ^[0-9]+$ ]] || die "seed printed \"$seeded\""

# The ids the wrk script will ask for: mem_<first>..mem_<last>, all readable.
listed=$(curl -sf --max-time 5 -H "Authorization: Bearer $read_key" "$base/v1/members?limit=1")
[[ $listed == *"\"id\":\"mem_$first\""* ]] ||
    die "GET /v1/members?limit=1 did not list mem_$first first: $listed"
for id in "$first" "$last"; do
    curl -sf -o /dev/null --max-time 5 -H "Authorization: Bearer $read_key" \
        "$base/v1/members/mem_$id" || die "GET /v1/members/mem_$id with the read key failed"
done

export BENCH_KEY=$read_key BENCH_FIRST=$first BENCH_MEMBERS=$((last - first + 1))

echo "bench: Loyal, GET /v1/members/{id}, $DURATION" >&2
run_wrk "$base" "$tmp/wrk-loyal.txt"
parse_wrk "$tmp/wrk-loyal.txt"
loyal_rps=$rps loyal_p50=$p50 loyal_p99=$p99 loyal_total=$total loyal_non2xx=$non2xx
loyal_sockerr=$sockerr
stop_pid "$loyal_pid"
pids=()

# --- bare libmicrohttpd ----------------------------------------------------------

port=$(free_port)
"$BUILD/bare_mhd" "$port" "$THREADS" >"$tmp/bare.log" 2>&1 &
bare_pid=$!
pids+=("$bare_pid")
wait_http "http://127.0.0.1:$port/" "$bare_pid" "$tmp/bare.log"

echo "bench: bare libmicrohttpd, same requests, $DURATION" >&2
run_wrk "http://127.0.0.1:$port" "$tmp/wrk-bare.txt"
parse_wrk "$tmp/wrk-bare.txt"
bare_rps=$rps bare_p50=$p50 bare_p99=$p99 bare_total=$total bare_non2xx=$non2xx
bare_sockerr=$sockerr
bare_body=$(grep -o '[0-9]*-byte body' "$tmp/bare.log" | grep -o '^[0-9]*' || echo '~370')
stop_pid "$bare_pid"
pids=()

# --- report ----------------------------------------------------------------------

[[ $loyal_non2xx == 0 ]] || die "Loyal answered $loyal_non2xx requests with a non-2xx status"
[[ $bare_non2xx == 0 ]] || die "bare_mhd answered $bare_non2xx requests with a non-2xx status"

ratio=$(awk -v a="$loyal_rps" -v b="$bare_rps" 'BEGIN { printf "%.0f%%", 100 * a / b }')
verdict=$(awk -v a="$loyal_rps" -v b="$bare_rps" \
    'BEGIN { print (a >= 0.4 * b) ? "meets" : "is below" }')

table="| benchmark | req/s | p50 | p99 | limit (bare MHD) req/s | ratio |
| --- | ---: | ---: | ---: | ---: | ---: |
| \`GET /v1/members/{id}\` | $loyal_rps | $loyal_p50 ms | $loyal_p99 ms | $bare_rps | $ratio |
| bare libmicrohttpd, fixed reply (the limit) | $bare_rps | $bare_p50 ms | $bare_p99 ms | — | 100% |"

echo
echo "$table"
echo
echo "Loyal reaches $ratio of the bare server's requests per second: it $verdict the 40% aim."

cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git status --porcelain -- src include CMakeLists.txt cmake 2>/dev/null) ]]; then
    commit="$commit plus uncommitted changes"
fi

cat >"$OUT" <<EOF
# Benchmarks

Written by \`bench/run.sh\` (\`make bench\`); each run replaces this file.
See [README.md](README.md) for what the figures mean.

- Date: $(date -u '+%Y-%m-%d %H:%M UTC')
- Loyal: commit $commit, \`$BUILD\` (CMake Release, $(cc --version | head -n 1))
- Machine: $(nproc) CPUs, ${cpu:-unknown CPU}, $mem memory, $(uname -sr);
  load average when the run began: $loadavg
- Libraries: libmicrohttpd $(pkg-config --modversion libmicrohttpd), SQLite $(pkg-config --modversion sqlite3); $(wrk -v 2>&1 | awk 'NR == 1 { print $1, $2 }')

## Method

- Loyal on SQLite (\`loyal serve --threads $THREADS --access-log off\`), with
  $BENCH_MEMBERS members enrolled through \`POST /v1/members\` beforehand.
  Each request reads a random member, \`GET /v1/members/mem_<n>\`, with a
  \`read\` key (so every request also authenticates its key).
- The limit: \`bench/bare_mhd.c\`, libmicrohttpd with the same flags and
  options as Loyal ($THREADS pool threads, epoll, turbo) answering the same
  requests with a fixed member-shaped JSON body of $bare_body bytes, measured
  right after Loyal in the same run.
- \`wrk -t$WRK_THREADS -c$CONNECTIONS -d$DURATION --latency -s bench/member_get.lua\`:
  $CONNECTIONS keep-alive connections, after an untimed $WARMUP warm-up.
  wrk runs on the same machine as the server and shares its $(nproc) cores,
  so both figures include wrk's own CPU use; the ratio is the figure that
  carries over to other machines.
- Aim: Loyal at least 40% of the bare server's requests per second.

## Results

$table

Loyal reaches **$ratio** of the bare server's requests per second: it $verdict the 40% aim.
Requests measured: Loyal $loyal_total, bare $bare_total; socket errors: Loyal
${loyal_sockerr:-none}, bare ${bare_sockerr:-none}; non-2xx answers: none.
EOF

echo "bench: wrote $OUT" >&2

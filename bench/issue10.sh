#!/usr/bin/env bash
# The side-by-side figures of issue 10, in one run (bench/README.md, "Issue 10: flash sales").
#
#   bench/issue10.sh BEFORE_CHECKOUT [PEER_GIT_DIR] 2>&1 | tee /tmp/issue10.log
#
# BEFORE_CHECKOUT: a checkout of the commit to compare with (e.g. `git worktree add /tmp/before
# 5539a3c`, with a .venv symlink to this checkout's). PEER_GIT_DIR: the peer shop's git
# directory for bench/peer/setup.sh (left out: no peer run). Each side gets its own fresh
# database and Redis db; servers are `gunicorn eventflow.wsgi` sync workers on 127.0.0.1.
# Needs PostgreSQL and Redis as for the test suite, and about 20 minutes on 2 cores.
# SECTIONS (default "cost http rawsql peer workers buckets flash scale queued") picks parts.
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
BEFORE=$(cd "${1:?usage: bench/issue10.sh BEFORE_CHECKOUT [PEER_GIT_DIR]}" && pwd)
PEER_GIT=${2:-}
PY=$HERE/.venv/bin/python
GUNICORN=$HERE/.venv/bin/gunicorn
CELERY=$HERE/.venv/bin/celery
PG=postgres://postgres@127.0.0.1:5432
SECTIONS=${SECTIONS:-"cost http rawsql peer workers buckets flash scale queued"}
BUYERS=${BUYERS:-2000}

export SECRET_KEY=bench-secret-key-bench-secret-key-bench-secret-key-0123456789
export DEBUG=false ALLOWED_HOSTS=127.0.0.1,localhost PAYMENT_PROVIDER=test
export THROTTLE_USER_RATE=1000000/min THROTTLE_ANON_RATE=1000000/min
export CELERY_TASK_ALWAYS_EAGER=true

section() { [[ " $SECTIONS " == *" $1 "* ]]; }
say() { printf '\n=== %s\n' "$*"; }

fresh_db() {  # fresh_db NAME CHECKOUT
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null 2>&1
    (cd "$2" && DATABASE_URL=$PG/$1 "$PY" manage.py migrate -v0)
}

SERVER_PID=
serve() {  # serve CHECKOUT DB WORKERS PORT
    (cd "$1" && DATABASE_URL=$PG/$2 REDIS_URL=$REDIS exec "$GUNICORN" eventflow.wsgi -w "$3" -b "127.0.0.1:$4" \
        --log-level warning) &
    SERVER_PID=$!
    for _ in $(seq 100); do curl -fs "http://127.0.0.1:$4/api/v1/health" >/dev/null 2>&1 && return; sleep 0.2; done
    echo "server on :$4 did not start" >&2
    exit 1
}
stop() { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=; }
trap stop EXIT

sale() {  # sale CHECKOUT DB PORT [flash_sale args...]: each checkout's own script seeds its own schema
    local checkout=$1 db=$2 port=$3
    shift 3
    (cd "$checkout" && DATABASE_URL=$PG/$db REDIS_URL=$REDIS "$PY" "$checkout/bench/flash_sale.py" \
        --url "http://127.0.0.1:$port" --vacuum "$@") | sed -n '/^Flash sale/,$p'
}

if section cost; then
    say "In process: CPU, SQL statements and Redis round trips per full-featured purchase (idempotency key, per-buyer limit)"
    for round in 1 2; do
        for side in before after; do
            checkout=$HERE
            [[ $side == before ]] && checkout=$BEFORE
            echo "--- $side (round $round)"
            DATABASE_URL=$PG/eventflow_i10_cost_$side REDIS_URL=redis://127.0.0.1:6379/11 CACHE_KEY_PREFIX=cost_$side \
                ALLOWED_HOSTS=testserver \
                "$PY" "$HERE/bench/purchase_cost.py" --app "$checkout" --orders 1000 --repeat 1 \
                --idempotency-key --max-per-buyer 10 2>/dev/null | tail -2
        done
    done
fi

REDIS=redis://127.0.0.1:6379/12
if section http; then
    say "POST /orders over HTTP, one hot ticket type: $BUYERS buyers, capacity $BUYERS (every answer a 201), 64 in flight, Idempotency-Key, gunicorn -w 4"
    fresh_db eventflow_i10_before "$BEFORE"
    fresh_db eventflow_i10_after "$HERE"
    for round in 1 2; do
        for side in before after; do
            checkout=$HERE
            [[ $side == before ]] && checkout=$BEFORE
            echo "--- $side (round $round)"
            serve "$checkout" "eventflow_i10_$side" 4 18080
            extra=()
            [[ $side == after ]] && extra=(--buckets 1)  # the single hot row, as before
            sale "$checkout" "eventflow_i10_$side" 18080 --buyers "$BUYERS" --capacity "$BUYERS" --idempotency-key "${extra[@]}"
            stop
        done
    done
fi

if section rawsql; then
    say "Raw SQL, the same purchase transaction on one row, 64 clients (bench/raw_sql.py)"
    fresh_db eventflow_rawsql "$HERE"
    for lock in for-update conditional; do
        echo "--- --lock $lock"
        DATABASE_URL=$PG/eventflow_rawsql "$PY" "$HERE/bench/raw_sql.py" --clients 64 --seconds 10 --lock "$lock" |
            grep -E "purchases/s|latency|PASS|FAIL|CPU|postgres|this" || true
    done
fi

if section peer && [[ -n $PEER_GIT ]]; then
    say "The peer shop (bench/peer), the same sale: $BUYERS buyers, capacity $BUYERS, 64 in flight, gunicorn -w 4"
    "$HERE/bench/peer/setup.sh" "$PEER_GIT" >/dev/null
    "$PY" "$HERE/bench/peer/run.py" --buyers "$BUYERS" --capacity "$BUYERS" | sed -n '/^Peer\|^Flash\|purchases\|latency\|gunicorn\|PASS\|FAIL/p'
    "$HERE/bench/peer/setup.sh" --stop >/dev/null
fi

if section workers; then
    say "The server model: sync workers per node on 2 cores (after, one hot row)"
    for workers in 2 3 6; do
        echo "--- gunicorn -w $workers"
        serve "$HERE" eventflow_i10_after "$workers" 18080
        sale "$HERE" eventflow_i10_after 18080 --buyers "$BUYERS" --capacity "$BUYERS" --idempotency-key --buckets 1
        stop
    done
fi

if section buckets; then
    say "Stock buckets through the API: the same sale over 16 buckets (after, gunicorn -w 4)"
    serve "$HERE" eventflow_i10_after 4 18080
    sale "$HERE" eventflow_i10_after 18080 --buyers "$BUYERS" --capacity "$BUYERS" --idempotency-key --buckets 16
    stop
fi

if section flash; then
    say "Flash sale: 20,000 buyers, 5,000 tickets, one node (gunicorn -w 4): one row, then 16 buckets"
    serve "$HERE" eventflow_i10_after 4 18080
    sale "$HERE" eventflow_i10_after 18080 --buyers 20000 --capacity 5000 --idempotency-key --buckets 1
    sale "$HERE" eventflow_i10_after 18080 --buyers 20000 --capacity 5000 --idempotency-key --buckets 16
    stop
fi

if section scale; then
    say "Flash sale: 20,000 buyers, 5,000 tickets, K nodes behind a local load balancer (bench/scale_out.py)"
    for nodes in 2 3; do
        echo "--- $nodes nodes x 2 workers"
        (cd "$HERE" && DATABASE_URL=$PG/eventflow_i10_after REDIS_URL=$REDIS "$PY" bench/scale_out.py \
            --nodes "$nodes" --workers-per-node 2 -- --buyers 20000 --capacity 5000 --idempotency-key --vacuum) |
            sed -n '/^Flash sale/,$p;/requests per node/,+4p'
    done
fi

if section queued; then
    say "Flash sale, queued on-sale: 20,000 buyers, 5,000 tickets, high-demand event, 2 Celery workers -Q onsale"
    export CELERY_TASK_ALWAYS_EAGER=false
    (cd "$HERE" && DATABASE_URL=$PG/eventflow_i10_after REDIS_URL=$REDIS exec "$CELERY" -A eventflow worker \
        -Q onsale --concurrency 2 --loglevel WARNING) &
    WORKER_PID=$!
    serve "$HERE" eventflow_i10_after 4 18080
    sale "$HERE" eventflow_i10_after 18080 --buyers 20000 --capacity 5000 --idempotency-key --queued
    stop
    kill "$WORKER_PID" 2>/dev/null || true
    wait "$WORKER_PID" 2>/dev/null || true
fi

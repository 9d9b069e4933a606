#!/usr/bin/env bash
# Issue 12's purchase-path check, in one run: a plain POST /orders (with an Idempotency-Key) on the
# checkout before the issue and on this one, where every purchase now also tells the realtime, webhook
# and metrics apps (domain signals after commit), passes the request-id and metrics middleware and logs
# with the request id (bench/README.md, "Issue 12: the purchase path").
#
#   bench/issue12.sh BEFORE_CHECKOUT 2>&1 | tee /tmp/issue12.log
#
# BEFORE_CHECKOUT: e.g. `git worktree add /tmp/before12 e431a66` with a .venv symlink to this checkout's.
# Each measurement gets a fresh database and Redis db. CPU: bench/purchase_cost.py in process (900 timed
# purchases, two rounds); instructions: the same under callgrind (270 timed, PYTHONHASHSEED=0), which
# are exact where CPU time on a shared VM moves by 20 % or more. Needs valgrind, PostgreSQL and Redis.
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
BEFORE=$(cd "${1:?usage: bench/issue12.sh BEFORE_CHECKOUT}" && pwd)
PY=$HERE/.venv/bin/python
PG=postgres://postgres@127.0.0.1:5432
export PYTHONHASHSEED=0

fresh() {  # fresh NAME: an empty database
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null 2>&1
}

measure() {  # measure LABEL CHECKOUT [purchase_cost.py args...]
    local label=$1 checkout=$2
    shift 2
    printf '\n=== %s\n' "$label"
    fresh bench_issue12
    DATABASE_URL=$PG/bench_issue12 REDIS_URL=redis://127.0.0.1:6379/11 \
        "$PY" "$HERE/bench/purchase_cost.py" --app "$checkout" --orders 1000 --repeat 2 --idempotency-key "$@"
    fresh bench_issue12
    DATABASE_URL=$PG/bench_issue12 REDIS_URL=redis://127.0.0.1:6379/11 \
        valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/issue12.cg \
        "$PY" "$HERE/bench/purchase_cost.py" --app "$checkout" --orders 300 --repeat 1 --idempotency-key \
        --callgrind "$@" 2>/dev/null | grep '^run'
    total=$(callgrind_annotate /tmp/issue12.cg 2>/dev/null | grep 'PROGRAM TOTALS' | awk '{gsub(",", "", $1); print $1}')
    echo "instructions per purchase: $((total / 270))"
}

measure "plain, before (${BEFORE})" "$BEFORE"
measure "plain, after" "$HERE"
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS bench_issue12" >/dev/null 2>&1

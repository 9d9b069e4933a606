# Shared by the issue scripts (bench/issue11.sh, bench/issue12.sh): measure one kind of purchase on one
# checkout, CPU in process and instructions under callgrind. Source it after setting HERE (this checkout)
# and RUN (a name for the run's database and callgrind file).
#
# Each measurement gets a fresh database and Redis db. CPU: bench/purchase_cost.py in process (900 timed
# purchases, two rounds); instructions: the same under callgrind (270 timed, PYTHONHASHSEED=0), which
# are exact where CPU time on a shared VM moves by 20 % or more. Needs valgrind, PostgreSQL and Redis.
# Environment variables given before `measure` reach the measured process (REALTIME_ENABLED=false measure ...).

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
    fresh "bench_$RUN"
    DATABASE_URL=$PG/bench_$RUN REDIS_URL=redis://127.0.0.1:6379/11 \
        "$PY" "$HERE/bench/purchase_cost.py" --app "$checkout" --orders 1000 --repeat 2 --idempotency-key "$@"
    fresh "bench_$RUN"
    DATABASE_URL=$PG/bench_$RUN REDIS_URL=redis://127.0.0.1:6379/11 \
        valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="/tmp/$RUN.cg" \
        "$PY" "$HERE/bench/purchase_cost.py" --app "$checkout" --orders 300 --repeat 1 --idempotency-key \
        --callgrind "$@" 2>/dev/null | grep '^run'
    total=$(callgrind_annotate "/tmp/$RUN.cg" 2>/dev/null | grep 'PROGRAM TOTALS' | awk '{gsub(",", "", $1); print $1}')
    echo "instructions per purchase: $((total / 270))"
}

cleanup_measure() {
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS bench_$RUN" >/dev/null 2>&1
}

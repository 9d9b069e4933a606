#!/bin/sh
# Alternate the single-row and the bucket script ROUNDS times (the machine is shared: alternating
# spreads any background load over both) and print the tps of each run.
#   bench/pgbench/run.sh "-D event=1 -D buyer=2 -D single=1 -D bucketed=2 -D buckets=16"
# Environment: PGDATABASE (default eventflow_pgbench), CLIENTS (64), SECONDS_PER_RUN (20), ROUNDS (3),
# SCRIPTS ("single_row buckets"; add buckets_select for the two-statement claim), and the usual
# PGHOST / PGUSER.
set -eu
here=$(dirname "$0")
ids=$1
db=${PGDATABASE:-eventflow_pgbench}
clients=${CLIENTS:-64}
seconds=${SECONDS_PER_RUN:-20}
rounds=${ROUNDS:-3}
scripts=${SCRIPTS:-single_row buckets}
i=1
while [ "$i" -le "$rounds" ]; do
    for script in $scripts; do
        # shellcheck disable=SC2086  # $ids is a list of -D arguments
        tps=$(pgbench -n -c "$clients" -j 2 -T "$seconds" $ids -f "$here/$script.sql" "$db" 2>&1 |
            sed -n 's/^tps = \([0-9.]*\).*/\1/p')
        echo "round $i $script tps=$tps"
    done
    i=$((i + 1))
done

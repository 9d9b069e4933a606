#!/usr/bin/env bash
# Issue 12's purchase-path check, in one run: a plain POST /orders (with an Idempotency-Key) on the
# checkout before the issue and on this one, where every purchase now also tells the realtime, webhook
# and metrics apps (domain signals after commit), passes the request-id and metrics middleware and logs
# with the request id (bench/README.md, "Issue 12: the purchase path").
#
#   bench/issue12.sh BEFORE_CHECKOUT 2>&1 | tee /tmp/issue12.log
#
# BEFORE_CHECKOUT: e.g. `git worktree add /tmp/before12 e431a66` with a .venv symlink to this checkout's.
# Each measurement: bench/purchase_measure.sh.
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
BEFORE=$(cd "${1:?usage: bench/issue12.sh BEFORE_CHECKOUT}" && pwd)
RUN=issue12
# shellcheck source=bench/purchase_measure.sh
source "$HERE/bench/purchase_measure.sh"

measure "plain, before (${BEFORE})" "$BEFORE"
measure "plain, after" "$HERE"
REALTIME_ENABLED=false measure "plain, after, without realtime" "$HERE"
cleanup_measure

#!/usr/bin/env bash
# Issue 11's purchase-path check, in one run: POST /orders with seats (by id, best available) and with
# a discount code vs a plain purchase, on this checkout, and a plain purchase on the checkout before the
# issue (bench/README.md, "Issue 11: seats and discount codes vs a plain purchase, one run").
#
#   bench/issue11.sh BEFORE_CHECKOUT 2>&1 | tee /tmp/issue11.log
#
# BEFORE_CHECKOUT: e.g. `git worktree add /tmp/before11 db7c2a0` with a .venv symlink to this checkout's.
# Each measurement: bench/purchase_measure.sh.
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
BEFORE=$(cd "${1:?usage: bench/issue11.sh BEFORE_CHECKOUT}" && pwd)
RUN=issue11
# shellcheck source=bench/purchase_measure.sh
source "$HERE/bench/purchase_measure.sh"

measure "plain, before (${BEFORE})" "$BEFORE"
measure "plain, after" "$HERE"
measure "with a discount code, after" "$HERE" --discount-code
measure "one seat by id, after" "$HERE" --seats id
measure "one seat, best available, after" "$HERE" --seats best
cleanup_measure

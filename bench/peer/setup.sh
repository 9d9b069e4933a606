#!/usr/bin/env bash
# Set up and serve the peer Django ticket shop of issue 10's side-by-side flash sale.
#
# The peer is kkig/event-booking-api (https://github.com/kkig/event-booking-api): Django +
# DRF + simplejwt, PostgreSQL, POST /api/bookings/ under JWT for attendees, stock locked with
# select_for_update. None of its code is in this repository: this script extracts it from a
# git directory you fetched, installs the versions its uv.lock pins from PyPI into its own
# venv, points it at a scratch PostgreSQL database and serves it with gunicorn sync workers.
#
#   bench/peer/setup.sh GIT_DIR                 # install (first time), migrate, serve on :18090
#   bench/peer/setup.sh --stop                  # stop the gunicorn it started
#
# GIT_DIR: a clone or bare git directory of the peer (e.g. /work/.mirror/kkig+event-booking-api/repo).
# Environment (all optional):
#   PEER_COMMIT   commit to extract (default: the one measured, below)
#   PEER_DIR      where it goes (default /tmp/peer; holds backend/, venv/, env, gunicorn.pid, gunicorn.log)
#   PEER_PYTHON   interpreter for the venv (default: python3.13 from pyenv or PATH; the commit needs 3.13+)
#   PEER_DB       database name (default peer_bench), PGHOST/PGPORT/PGUSER/PGPASSWORD as for psql
#                 (default 127.0.0.1:5432, postgres)
#   PEER_PORT     port (default 18090), PEER_WORKERS (default 4)
# Then: .venv/bin/python bench/peer/run.py --url http://127.0.0.1:18090 --buyers 1000 --capacity 1000
set -euo pipefail

# 1044cc2 (2026-06-08) is the newest commit that runs on Python 3.13: the next one (73db82e) moves to
# Python 3.14 syntax (PEP 758 "except A, B:"), and no 3.14 is installable here. Its apps/ are the same as
# the newest commit's (7edb4a4) but for that one line in accounts/serializers.py.
PEER_COMMIT=${PEER_COMMIT:-1044cc258d100aad1d1700c5e449303d112bb420}
PEER_DIR=${PEER_DIR:-/tmp/peer}
PEER_DB=${PEER_DB:-peer_bench}
PEER_PORT=${PEER_PORT:-18090}
PEER_WORKERS=${PEER_WORKERS:-4}
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}

stop() {
    if [[ -f $PEER_DIR/gunicorn.pid ]]; then
        pid=$(cat "$PEER_DIR/gunicorn.pid")
        kill "$pid" 2>/dev/null && echo "stopped the peer's gunicorn (pid $pid)"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        rm -f "$PEER_DIR/gunicorn.pid"
    fi
}
if [[ ${1:-} == --stop ]]; then stop; exit 0; fi

GIT_DIR=${1:?usage: bench/peer/setup.sh GIT_DIR | --stop}
[[ -d $GIT_DIR/.git ]] && GIT_DIR=$GIT_DIR/.git

# 1. The code, exactly as committed (git archive: nothing is written into GIT_DIR).
if [[ ! -f $PEER_DIR/backend/manage.py || $(cat "$PEER_DIR/COMMIT" 2>/dev/null) != "$PEER_COMMIT" ]]; then
    rm -rf "$PEER_DIR/backend"
    mkdir -p "$PEER_DIR"
    git --git-dir="$GIT_DIR" archive "$PEER_COMMIT" backend | tar -x -C "$PEER_DIR"
    echo "$PEER_COMMIT" > "$PEER_DIR/COMMIT"
    echo "extracted $PEER_COMMIT into $PEER_DIR/backend"
fi

# 2. A venv with the versions that commit's backend/uv.lock pins (psycopg's binary wheel instead of the C build).
if [[ ! -x $PEER_DIR/venv/bin/gunicorn ]]; then
    if [[ -z ${PEER_PYTHON:-} ]]; then
        for candidate in "$(pyenv root 2>/dev/null)"/versions/3.13*/bin/python3 \
            "$(command -v python3.13 || true)"; do
            [[ -x $candidate ]] && PEER_PYTHON=$candidate && break
        done
    fi
    [[ -n ${PEER_PYTHON:-} ]] || { echo "no Python 3.13 found; set PEER_PYTHON" >&2; exit 1; }
    "$PEER_PYTHON" -m venv "$PEER_DIR/venv"
    "$PEER_DIR/venv/bin/pip" install -q --disable-pip-version-check \
        django==6.0.6 djangorestframework==3.17.1 djangorestframework-simplejwt==5.5.1 \
        drf-nested-routers==0.95.0 drf-spectacular==0.29.0 django-filter==25.2 \
        gunicorn==26.0.0 "psycopg[binary]==3.3.4" python-decouple==3.8
    echo "venv: $("$PEER_DIR/venv/bin/python" -V), $("$PEER_DIR/venv/bin/python" -m django --version) in $PEER_DIR/venv"
fi

# 3. Settings through the environment its settings read (python-decouple). Its production module
#    (DEBUG off) passes ALLOWED_HOSTS as a string, which Django 6 refuses; bench.py is that module
#    with the host list as a list, nothing else changed.
cat > "$PEER_DIR/backend/config/settings/bench.py" <<'PY'
# Written by EventFlow's bench/peer/setup.sh: config.settings.production with ALLOWED_HOSTS as a list.
from .base import *  # noqa: F403

DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
PY
cat > "$PEER_DIR/env" <<ENV
export DJANGO_SETTINGS_MODULE=config.settings.bench
export SECRET_KEY=peer-bench-secret-key-peer-bench-secret-key-0123456789
export POSTGRES_DB=$PEER_DB POSTGRES_USER=$PGUSER POSTGRES_PASSWORD=${PGPASSWORD:-} POSTGRES_HOST=$PGHOST POSTGRES_PORT=$PGPORT
ENV
# shellcheck disable=SC1091
source "$PEER_DIR/env"
psql -d postgres -Atqc "select 1 from pg_database where datname = '$PEER_DB'" | grep -q 1 \
    || psql -d postgres -qc "create database $PEER_DB"
(cd "$PEER_DIR/backend" && "$PEER_DIR/venv/bin/python" manage.py migrate -v0)
echo "migrated database $PEER_DB"

# 4. Serve: gunicorn, sync workers, as its compose.prod.yml runs it (worker count here is ours).
stop
# Gunicorn 27 opens a control socket shared by every gunicorn of the user; turn it off where it exists.
extra=()
"$PEER_DIR/venv/bin/gunicorn" --help | grep -q -- --no-control-socket && extra+=(--no-control-socket)
(cd "$PEER_DIR/backend" && "$PEER_DIR/venv/bin/gunicorn" config.wsgi:application \
    --workers "$PEER_WORKERS" --worker-class sync --bind "127.0.0.1:$PEER_PORT" \
    --pid "$PEER_DIR/gunicorn.pid" --daemon --log-file "$PEER_DIR/gunicorn.log" "${extra[@]}")
for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$PEER_PORT/api/events/" && break
    sleep 0.1
done
echo "serving on http://127.0.0.1:$PEER_PORT ($PEER_WORKERS sync workers, pid $(cat "$PEER_DIR/gunicorn.pid"), log $PEER_DIR/gunicorn.log)"

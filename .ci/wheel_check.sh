#!/usr/bin/env bash
# Packaging check: build the wheel, install it into a fresh venv with only what it declares
# (its dependencies and the `postgres` extra), and run a real `celery -A wheelapp worker` from
# that venv against Redis and PostgreSQL. A task created through the producer API must reach
# `success`. This proves the declared dependencies are enough (a worker on Redis needs what
# celery[redis] brings) and that the migrations ship inside the wheel (the producer and the
# worker migrate a new, empty database from them).
#
# The app module is written to a temp dir outside the repository, and nothing of the
# checkout is on sys.path, so every import comes from the installed wheel. It uses a
# PostgreSQL database and a queue of its own, and removes both (and the temp dir) at exit.
#
# Environment: PY (the interpreter for the venv, default python3), WHEEL_CHECK_PG (an admin
# URL, default postgresql://postgres@127.0.0.1:5432/postgres), WHEEL_CHECK_REDIS (default
# redis://127.0.0.1:6379/0), WHEEL_CHECK_TIMEOUT (seconds to wait for the task, default 90).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-python3}
PG_ADMIN=${WHEEL_CHECK_PG:-postgresql://postgres@127.0.0.1:5432/postgres}
REDIS_URL=${WHEEL_CHECK_REDIS:-redis://127.0.0.1:6379/0}
TIMEOUT=${WHEEL_CHECK_TIMEOUT:-90}

tag="bgtask_wheelcheck_$$_$(date +%s)"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bgtask-wheel.XXXXXX")
venv=$tmp/venv
app_dir=$tmp/app
worker_pid=
db_created=

say() { echo "wheel check: $*"; }
fail() { echo "wheel check: FAILED: $*" >&2; exit 1; }

# Runs the venv's python in the app dir, with nothing but the app dir and the venv on sys.path.
in_app() { (cd "$app_dir" && env -u PYTHONPATH -u PYTHONHOME "$venv/bin/python" "$@"); }

db_url=${PG_ADMIN%/*}/$tag
export WHEEL_CHECK_BROKER=$REDIS_URL WHEEL_CHECK_QUEUE=$tag WHEEL_CHECK_DB=postgresql+psycopg://${db_url#*://}

cleanup() {
  local rc=$?
  if [[ -n $worker_pid ]] && kill -0 "$worker_pid" 2>/dev/null; then
    kill -TERM "$worker_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$worker_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$worker_pid" 2>/dev/null || true
    wait "$worker_pid" 2>/dev/null || true
  fi
  if [[ -n $db_created ]]; then
    in_app - "$PG_ADMIN" "$tag" <<'EOF' || echo "wheel check: could not drop database $tag" >&2
import sys
import psycopg
with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    conn.execute(f'DROP DATABASE IF EXISTS "{sys.argv[2]}" WITH (FORCE)')
EOF
    # The queue's list and kombu's binding sets for it (its exchange has the queue's name).
    in_app - <<'EOF' || echo "wheel check: could not delete queue $tag" >&2
import os
import redis
queue = os.environ["WHEEL_CHECK_QUEUE"]
redis.Redis.from_url(os.environ["WHEEL_CHECK_BROKER"]).delete(
    queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
EOF
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT

say "fresh venv in $venv"
"$PY" -m venv "$venv"
mkdir -p "$app_dir" "$tmp/dist"

say "building the wheel of $repo"
"$venv/bin/pip" wheel -q --no-deps -w "$tmp/dist" "$repo"
wheels=("$tmp"/dist/celery_bgtask-*.whl)
[[ ${#wheels[@]} -eq 1 && -f ${wheels[0]} ]] || fail "expected one celery_bgtask wheel, found: ${wheels[*]}"
wheel=${wheels[0]}
"$venv/bin/python" - "$wheel" <<'EOF' || fail "the wheel lacks the migrations"
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
need = ["celery_bgtask/store/migrations/env.py", "celery_bgtask/store/migrations/script.py.mako",
        "celery_bgtask/store/migrations/versions/0001_initial.py", "celery_bgtask/py.typed"]
missing = [n for n in need if n not in names]
print("wheel check: the wheel has", len(names), "files" + (f"; missing {missing}" if missing else ""))
sys.exit(1 if missing else 0)
EOF

say "installing $(basename "$wheel")[postgres] (its declared dependencies only)"
"$venv/bin/pip" install -q "${wheel}[postgres]"

cat > "$app_dir/wheelapp.py" <<'EOF'
"""The app the wheel check runs, as a producer and as ``celery -A wheelapp worker``."""

import os

from celery import Celery

from celery_bgtask import BackgroundTaskComponent

app = Celery("wheelapp", broker=os.environ["WHEEL_CHECK_BROKER"])
app.conf.task_default_queue = os.environ["WHEEL_CHECK_QUEUE"]
bg = BackgroundTaskComponent(app, database_url=os.environ["WHEEL_CHECK_DB"], default_retain_for=-1)


def double(payload: dict) -> dict:
    return {"doubled": payload["n"] * 2}


bg.register_handler("wheel-check", double)
EOF

in_app - "$venv" <<'EOF' || fail "celery_bgtask is not imported from the installed wheel"
import sys
import celery_bgtask
where = celery_bgtask.__file__
print("wheel check: celery_bgtask imported from", where)
sys.exit(0 if where.startswith(sys.argv[1] + "/") else 1)
EOF

say "creating database $tag"
in_app - "$PG_ADMIN" "$tag" <<'EOF'
import sys
import psycopg
with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    conn.execute(f'CREATE DATABASE "{sys.argv[2]}"')
EOF
db_created=1

urn=$(in_app -c 'import wheelapp; print(wheelapp.bg.create("wheel-check", {"n": 21}))')
say "created $urn (its schema migrated from the wheel); starting a worker on queue $tag"
(cd "$app_dir" && exec env -u PYTHONPATH -u PYTHONHOME "$venv/bin/celery" -A wheelapp worker -l info -c 2 \
  -n "$tag@%h" --without-gossip --without-mingle --without-heartbeat) >"$tmp/worker.log" 2>&1 &
worker_pid=$!

if ! in_app - "$urn" "$worker_pid" "$TIMEOUT" <<'EOF'; then
import os, sys, time
import wheelapp
urn, pid, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + timeout
task = None
while time.monotonic() < deadline:
    task = wheelapp.bg.get(urn)
    if task is not None and task.status.value in ("success", "failed", "cancelled"):
        break
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit("wheel check: the worker exited before the task finished")
    time.sleep(0.2)
if task is None or task.status.value != "success" or task.result != {"doubled": 42}:
    sys.exit(f"wheel check: the task did not succeed within {timeout:.0f}s: "
             f"{task.model_dump(mode='json') if task else 'no record'}")
print(f"wheel check: {urn} -> success, result {task.result}")
EOF
  echo "---- worker log ----" >&2
  cat "$tmp/worker.log" >&2
  fail "the task created from the installed wheel did not succeed on its worker"
fi
say "passed"

"""``python -m tests.integration.migrate_racer URL READY GO``: migrate ``URL`` the moment ``GO`` exists.

Everything is imported first (alembic too), then ``READY`` is created, so that the racers'
migrations start together rather than one import time apart.
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

from celery_bgtask.store.engine import make_engine
from celery_bgtask.store.migrate import migrate

for name in ("alembic.command", "alembic.config", "alembic.script", "alembic.runtime.migration"):
    importlib.import_module(name)
url, ready, go = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
ready.touch()
while not go.exists():
    time.sleep(0.001)
migrate(make_engine(url))

"""The app ``celery -A tests.integration.resultapp result <id>`` reads results through:
``result_backend = "bgtask://"`` over the database named in ``BGTASK_DATABASE_URL``."""

from __future__ import annotations

import os

from celery import Celery

from celery_bgtask import BackgroundTaskComponent

app = Celery("resultapp", broker="memory://", backend="bgtask://")
bg = BackgroundTaskComponent(app, os.environ["BGTASK_DATABASE_URL"])

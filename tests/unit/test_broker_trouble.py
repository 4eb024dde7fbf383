"""Which publish errors count as broker trouble (logged, left to the sweeper) and which are raised."""

from __future__ import annotations

import pytest
import redis
from celery import Celery
from kombu.exceptions import OperationalError

from celery_bgtask.celery.publish import broker_trouble


def _app(**conf: str) -> Celery:
    app = Celery("trouble", broker="redis://127.0.0.1:6379/0", set_as_current=False)
    app.conf.update(conf)
    return app


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(111, "refused"),
        TimeoutError("timed out"),
        OSError("network unreachable"),
        OperationalError("Error 111 connecting to 127.0.0.1:6379"),
        redis.exceptions.ConnectionError("lost"),  # the Redis transport's connection error
        redis.exceptions.ResponseError("LOADING"),  # and one of its channel errors
    ],
)
def test_broker_errors_are_trouble(exc: BaseException) -> None:
    assert broker_trouble(_app(), exc)


@pytest.mark.parametrize("exc", [ModuleNotFoundError("No module named 'packaging'"), TypeError("bug"), ValueError()])
def test_other_errors_are_not(exc: BaseException) -> None:
    assert not broker_trouble(_app(), exc)


def test_nothing_is_trouble_when_the_transport_cannot_be_loaded() -> None:
    app = _app(broker_transport="tests.integration.broken_transport:Transport")
    assert not broker_trouble(app, KeyError("x"))
    assert broker_trouble(app, OSError("refused"))

"""A database URL that cannot work is refused when the component is built, naming the problem."""

from __future__ import annotations

import pytest
from celery import Celery

from celery_bgtask import BackgroundTaskComponent, TaskValidationError
from celery_bgtask.errors import StoreUnavailableError


def _component(url: str) -> BackgroundTaskComponent:
    return BackgroundTaskComponent(Celery("t", broker="memory://", set_as_current=False), database_url=url)


@pytest.mark.parametrize("url", ["nonsense", "://", "postgresql+psycopg://u:pw@h:notaport/db"])
def test_a_malformed_url_is_a_validation_error_that_does_not_echo_it(url: str) -> None:
    with pytest.raises(TaskValidationError) as caught:
        _component(url)
    assert caught.value.field == "database_url"
    assert "pw" not in str(caught.value)


def test_an_unknown_dialect_is_named() -> None:
    with pytest.raises(TaskValidationError, match="unknown dialect or driver 'postgres'"):
        _component("postgres://u:secret@h/db")


def test_a_driver_that_is_not_installed_says_what_to_install() -> None:
    with pytest.raises(StoreUnavailableError) as caught:
        _component("mysql+mysqldb://u:secret@h/db")  # the project's extra installs PyMySQL, not mysqlclient
    message = str(caught.value)
    assert "secret" not in message and "mysql+mysqldb://u:***@h/db" in message
    assert "pip install 'celery-bgtask[mysql]'" in message
    assert isinstance(caught.value.__cause__, ImportError)

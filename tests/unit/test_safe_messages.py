"""Messages never raise on a caller's value nor show a database password."""

from __future__ import annotations

from celery import Celery

from celery_bgtask.config import Settings
from celery_bgtask.reprs import MAX_REPR, safe_repr

URL = "postgresql+psycopg://app:s3cr3t-pw@db.example:5432/app"


class BrokenRepr:
    def __repr__(self) -> str:
        raise RuntimeError("repr is broken")


def test_safe_repr_survives_a_raising_repr_and_caps_the_length() -> None:
    assert safe_repr("abc") == "'abc'"
    assert safe_repr(3) == "3"
    broken = safe_repr(BrokenRepr())
    assert broken.startswith("<tests.unit.test_safe_messages.BrokenRepr object at 0x") and "repr raised" in broken
    long = safe_repr("x" * 10_000)
    assert len(long) == MAX_REPR and long.startswith("'xxx") and long.endswith("...")


def test_the_settings_repr_hides_the_database_password_but_keeps_the_url() -> None:
    settings = Settings.resolve(Celery(set_as_current=False), database_url=URL)
    for text in (repr(settings), str(settings), f"{settings}"):
        assert "s3cr3t-pw" not in text
        assert "database_url='postgresql+psycopg://app:***@db.example:5432/app'" in text
        assert "default_retry_interval=5000" in text  # the rest is shown as before
    assert settings.database_url == URL  # what the engine connects with


def test_a_url_that_does_not_parse_is_not_shown_at_all() -> None:
    settings = Settings.resolve(Celery(set_as_current=False), database_url="postgresql://app:s3cr3t-pw@host:port/db")
    assert "s3cr3t-pw" not in repr(settings)
    assert "database_url='<not an SQLAlchemy URL>'" in repr(settings)

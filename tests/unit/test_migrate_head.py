"""The alembic-free up-to-date check reads the same head revision as alembic does."""

from __future__ import annotations

from celery_bgtask.store.migrate import head_from_files, head_revision


def test_head_from_files_agrees_with_alembic() -> None:
    assert head_from_files() == head_revision()

"""Alembic environment for celery_bgtask's own tables.

It runs on the connection :func:`celery_bgtask.store.migrate.migrate` passes in, and keeps
its version in ``bgtask_alembic_version`` so it never touches an application's own
alembic history.
"""

from __future__ import annotations

from alembic import context

from celery_bgtask.store.schema import metadata

VERSION_TABLE = "bgtask_alembic_version"

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only when run through the alembic CLI
    from sqlalchemy import create_engine

    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url, or use celery_bgtask.store.migrate.migrate(engine)")
    with create_engine(url).connect() as conn:
        context.configure(connection=conn, target_metadata=metadata, version_table=VERSION_TABLE)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE)
    with context.begin_transaction():
        context.run_migrations()

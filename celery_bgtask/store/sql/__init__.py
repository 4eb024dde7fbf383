"""The SQL store: SQLAlchemy Core over SQLite, PostgreSQL and MySQL/MariaDB."""

from .tasks import SqlTaskStore

__all__ = ["SqlTaskStore"]

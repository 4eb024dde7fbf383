"""The domain, with neither SQLAlchemy nor Celery: the task record, its state machine, the
handler registry and the event bus that callbacks, definition hooks and metrics subscribe to."""

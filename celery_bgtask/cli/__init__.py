"""``celery -A proj bgtask ...``: the operator's command line (a ``celery.commands`` entry point).

It sits above the record API and nothing in the package imports it (a layer contract).
"""

from .commands import bgtask

__all__ = ["bgtask"]

"""``python -m celery_bgtask migrate URL``: migrate a database from a deploy script, no Celery app needed."""

from __future__ import annotations

import sys

from .errors import BgTaskError
from .store.engine import open_engine
from .store.migrate import migrate

USAGE = "usage: python -m celery_bgtask migrate DATABASE_URL"


def main(argv: list[str]) -> int:
    """Exit 0 when migrated, 2 (one line on stderr) for bad arguments or a database we cannot use."""
    if len(argv) != 2 or argv[0] != "migrate":
        print(USAGE, file=sys.stderr)
        return 2
    try:
        engine = open_engine(argv[1])
        try:
            migrate(engine)
        finally:
            engine.dispose()
    except BgTaskError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 2
    print("schema is at the newest revision")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

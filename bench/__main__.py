"""``python -m bench`` (``make bench``): the throughput bench against plain Celery.

The query-page bench runs on its own: ``python -m bench.query_pages``.
"""

from bench.throughput import main

main()

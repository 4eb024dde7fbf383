"""``python -m bench`` (``make bench``): the throughput bench against plain Celery, then the beat tick.

Each runs on its own too: ``python -m bench.throughput``, ``python -m bench.beat_tick``;
the query-page bench only on its own: ``python -m bench.query_pages``.
"""

from bench import beat_tick, throughput

throughput.main()
beat_tick.main()

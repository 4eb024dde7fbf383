"""``python -m bench`` (``make bench``): the throughput bench against plain Celery, then the beat tick.

Each runs on its own too: ``python -m bench.throughput``, ``python -m bench.beat_tick``;
the query-page and sweeper-poll benches only on their own: ``python -m bench.query_pages``,
``python -m bench.sweeper_poll``.
"""

from bench import beat_tick, throughput

throughput.main()
beat_tick.main()

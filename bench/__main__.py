"""``python -m bench`` (``make bench``): the throughput bench against plain Celery, then the beat tick;
with ``BENCH_SOAK=1`` also the retention soak (several minutes).

Each runs on its own too: ``python -m bench.throughput``, ``python -m bench.beat_tick``,
``python -m bench.soak``; the query-page and sweeper-poll benches only on their own:
``python -m bench.query_pages``, ``python -m bench.sweeper_poll``.
"""

import os

from bench import beat_tick, throughput

throughput.main()
beat_tick.main()
if os.environ.get("BENCH_SOAK", "").lower() in ("1", "true", "yes"):
    from bench import soak

    soak.main()

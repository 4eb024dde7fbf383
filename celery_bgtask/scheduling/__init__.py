"""The scheduling domain below the record API: trigger times (``times``), callbacks named by
reference and resolved safely (``callbacks``), and the task type whose runs call them on a
worker (``firing``), which every component installs. ``TaskSchedulerComponent`` and the beat
build on it from above (``scheduler``, ``beat``)."""

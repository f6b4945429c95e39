"""Redis: key names (keys), the layout of a run's data (layout), connections that ride out an
outage (connection), the Lua scripts (scripts, lua/), and the run's operations by caller
(queue: leases, seeding, appends, reading and admin, each on one handle). The only layer that
talks to Redis."""

import sys


def _import_redis_py() -> None:
    """redis-py 8 imports OpenTelemetry's API as it loads, whenever it is installed (the image
    has it: the object-store sources' Google client needs it), for metrics of its own that
    wq never turns on. That import reads every installed package's metadata: milliseconds of
    every command's start. It is hidden while redis-py loads, which then leaves its metrics
    off as if it were absent; any later import of OpenTelemetry (a handler's) works as ever.
    No module outside this layer imports redis-py (tests/unit/test_layers.py), so it always
    loads here first."""
    if "redis" in sys.modules or "opentelemetry" in sys.modules:
        return
    sys.modules["opentelemetry"] = None  # type: ignore[assignment]
    try:
        import redis  # noqa: F401
    finally:
        del sys.modules["opentelemetry"]


_import_redis_py()

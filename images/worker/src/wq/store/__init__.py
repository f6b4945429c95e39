"""Redis: key names (keys), the layout of a run's data (layout), connections that ride out an
outage (connection), the Lua scripts (scripts, lua/), and the run's operations by caller
(queue: leases, seeding, appends, reading and admin, each on one handle). The only layer that
talks to Redis."""

import sys
import threading
import types
from importlib.machinery import ModuleSpec, PathFinder
from typing import Any

# What `import redis` (8.x) loads that no wq command uses, as a share of every command's start:
# its asyncio client, with the asyncio event loop under it, and importlib.metadata, which
# reads every installed package's metadata to learn redis-py's own version for CLIENT SETINFO
# (wq names that version itself: connection.DRIVER). Each is deferred: see _Deferred.
DEFERRED = ("redis.asyncio", "importlib.metadata")
_LOADING = threading.RLock()


class _Deferred(types.ModuleType):
    """A module whose code runs the first time one of its names is asked for, in this very
    object, which then is that module for good (as importlib.util.LazyLoader's, which loads
    on any attribute, __path__ too: redis-py imports a submodule of redis.asyncio as it loads,
    and that alone must not load the package)."""

    __cached__: str | None

    def __getattr__(self, name: str) -> Any:
        with _LOADING:
            if type(self) is _Deferred:
                spec = self.__spec__
                assert spec is not None
                assert spec.loader is not None
                self.__class__ = types.ModuleType  # type: ignore[assignment]  # deferred no more
                spec.loader.exec_module(self)
        return getattr(self, name)


def _defer(name: str) -> None:
    """Puts a _Deferred `name` where the import system looks first, and on its package if that
    is loaded (redis-py's own `from redis import asyncio` binds it on redis)."""
    parent, _, child = name.rpartition(".")
    if parent in sys.modules:
        search = getattr(sys.modules[parent], "__path__", None)
    else:
        search = getattr(PathFinder.find_spec(parent), "submodule_search_locations", None)
    # Found only where its package is, and only as a file: otherwise loaded as usual.
    spec: ModuleSpec | None = PathFinder.find_spec(name, search) if search else None
    if spec is None or spec.loader is None or spec.origin is None:
        return
    module = _Deferred(name)
    module.__spec__, module.__loader__, module.__file__ = spec, spec.loader, spec.origin
    module.__cached__ = spec.cached  # as the import system sets it, for tools that read it
    if spec.submodule_search_locations is not None:
        module.__path__ = list(spec.submodule_search_locations)
        module.__package__ = name
    else:
        module.__package__ = parent
    sys.modules[name] = module
    if parent in sys.modules:
        setattr(sys.modules[parent], child, module)


def _import_redis_py() -> None:
    """Loads redis-py with what wq never uses deferred (DEFERRED), and OpenTelemetry hidden:
    redis-py 8 imports its API as it loads, whenever it is installed (the image has it: the
    object-store sources' Google client needs it), for metrics that wq never turns on; it then
    leaves them off as if it were absent, and any later import of OpenTelemetry (a handler's)
    works as ever. No module outside this layer imports redis-py (tests/unit/test_layers.py),
    so it always loads here first."""
    if "redis" in sys.modules:
        return
    for name in DEFERRED:
        if name not in sys.modules:
            _defer(name)
    hide = "opentelemetry" not in sys.modules
    if hide:
        sys.modules["opentelemetry"] = None  # type: ignore[assignment]
    try:
        import redis  # noqa: F401
    finally:
        if hide:
            del sys.modules["opentelemetry"]


_import_redis_py()

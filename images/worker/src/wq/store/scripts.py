"""The Lua scripts in wq/store/lua, registered once per client (EVALSHA, reloaded after a
restart).

Every lua/*.lua is a script, registered under its file name: adding one is adding its file and
its annotation in Scripts (a test holds the two to the same set)."""

from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable

import redis
from redis.cluster import RedisCluster
from redis.commands.core import Script

LUA_SUFFIX = ".lua"


def _lua_dir() -> Traversable:
    return resources.files("wq.store") / "lua"


@cache
def script_names() -> tuple[str, ...]:
    """The scripts in lua/, by file name without .lua, sorted."""
    return tuple(
        sorted(
            entry.name.removesuffix(LUA_SUFFIX)
            for entry in _lua_dir().iterdir()
            if entry.is_file() and entry.name.endswith(LUA_SUFFIX)
        )
    )


def script_source(name: str) -> str:
    """The text of lua/NAME.lua."""
    return (_lua_dir() / f"{name}{LUA_SUFFIX}").read_text(encoding="utf-8")


def script_text(name: str) -> str:
    """The text registered for script NAME: what Redis runs, and whose SHA1 it knows it by."""
    return script_source(name)


class Scripts:
    """The scripts registered on one client, an attribute per lua/*.lua (annotated here, for
    the type checker; the constructor fills them from the files)."""

    append: Script
    complete: Script
    expire: Script
    fail: Script
    lease: Script
    reap: Script
    release: Script
    renew: Script
    retry_dead: Script
    scaling: Script
    seal: Script
    seed: Script
    status: Script
    window: Script

    def __init__(self, client: "redis.Redis | RedisCluster") -> None:
        for name in script_names():
            setattr(self, name, client.register_script(script_text(name)))

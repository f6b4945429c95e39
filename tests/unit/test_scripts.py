"""The Lua scripts as wq.store.scripts loads them: each lua/*.lua registered, typed."""

from typing import get_type_hints

import redis
from redis.commands.core import Script

from wq.store.scripts import Scripts, script_names


def test_every_script_file_has_its_annotation_and_every_annotation_its_file() -> None:
    """Scripts are found by glob; their attributes are declared for the type checker. A file
    without its annotation is untyped for callers, an annotation without its file is an
    attribute that is never set."""
    annotated = {n for n, t in get_type_hints(Scripts).items() if t is Script}
    assert annotated == set(script_names())


def test_each_script_is_registered_as_its_attribute_and_compiles(client: "redis.Redis") -> None:
    scripts = Scripts(client)
    for name in script_names():
        script = getattr(scripts, name)
        assert isinstance(script, Script)
        assert f"-- {name}.lua: " in script.script
        # SCRIPT LOAD compiles the text: a syntax error, or too many locals, fails here.
        assert client.script_load(script.script) == script.sha

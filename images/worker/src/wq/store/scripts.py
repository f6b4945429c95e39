"""The Lua scripts in wq/store/lua, registered once per client (EVALSHA, reloaded after a
restart).

Every lua/*.lua is a script, registered under its file name: adding one is adding its file and
its annotation in Scripts (a test holds the two to the same set). Each opens with a header that
lists its KEYS and ARGV (ScriptHeader); the unit tests hold every call they make to it
(Scripts.check_all_calls), and the scripts' bodies to it."""

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import ClassVar

import redis
from redis.cluster import RedisCluster
from redis.commands.core import Script

from wq.store import layout

LUA_SUFFIX = ".lua"
LIB = "lib"  # lua/lib/*.lua: definitions for preludes, not scripts


def _lua_dir() -> Path:
    # Beside this file, as pip installs it (importlib.resources would load zipfile and its
    # compressors for what is a directory: milliseconds of every command's start).
    return Path(__file__).parent / "lua"


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


@cache
def script_text(name: str, check_calls: bool = False) -> str:
    """The text registered for script NAME: its prelude, then lua/NAME.lua; what Redis runs,
    and whose SHA1 it knows it by. `check_calls`: the script first refuses KEYS and ARGV that
    do not fit its header."""
    source = script_source(name)
    guard = _call_guard(name, ScriptHeader.parse(source)) if check_calls else ""
    return guard + prelude(lua_names(source)) + source


class Scripts:
    """The scripts registered on one client, an attribute per lua/*.lua (annotated here, for
    the type checker; the constructor fills them from the files)."""

    # The unit tests set this for their whole run: every script checks, inside Redis, that
    # each call's KEYS and ARGV fit its header, so that all the calls the tests make are
    # checked, whatever path they take (redis-py's Script, a raw EVALSHA, a cluster client).
    check_all_calls: ClassVar[bool] = False

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
    seed_shards: Script
    status: Script
    window: Script

    def __init__(self, client: "redis.Redis | RedisCluster", check_calls: bool = False) -> None:
        check = check_calls or self.check_all_calls
        for name in script_names():
            setattr(self, name, client.register_script(script_text(name, check)))


# Script headers: the comment a script opens with lists its inputs, one entry a line.
_ENTRY = re.compile(r"-- (KEYS|ARGV)\[([^\]]+)\] +(\S+)(.*)")
_TAIL = re.compile(r"(\d*)[^.]*\.\.")
OPTIONAL = "(optional"


@dataclass(frozen=True)
class Inputs:
    """A script's KEYS or ARGV, as its header lists them."""

    names: tuple[str, ...]  # of entries 1, 2, ... in order, the optional ones included
    required: int  # how many of them every call gives (the rest are optional)
    tail: tuple[str, ...] = ()  # entries after those, any number of them (e.g. ARGV[4..])

    def fits(self, given: int) -> bool:
        return self.required <= given and (bool(self.tail) or given <= len(self.names))

    def __str__(self) -> str:
        if self.tail:
            return f"at least {self.required}"
        if self.required < len(self.names):
            return f"{self.required} to {len(self.names)}"
        return str(self.required)


@dataclass(frozen=True)
class ScriptHeader:
    """The inputs a script's header lists. An entry is a line `-- KEYS[n] name  what it is`
    (or ARGV), continued on lines that do not start an entry. Entries are numbered from 1; an
    entry whose description opens with "(optional" may be left out, with the ones after it; a
    range (`ARGV[4..]`, `ARGV[6..5+N]`, `ARGV[6+N..]`) starts a variadic tail."""

    keys: Inputs
    argv: Inputs

    @classmethod
    def parse(cls, source: str) -> "ScriptHeader":
        entries: dict[str, list[tuple[str, str, str]]] = {"KEYS": [], "ARGV": []}
        for line in source.splitlines():
            if not line.startswith("--"):
                break  # the header is the comment the script opens with
            if entry := _ENTRY.fullmatch(line):
                kind, index, name, rest = entry.groups()
                entries[kind].append((index, name, rest.strip()))
        return cls(keys=_inputs("KEYS", entries["KEYS"]), argv=_inputs("ARGV", entries["ARGV"]))


def _inputs(kind: str, entries: list[tuple[str, str, str]]) -> Inputs:
    names: list[str] = []
    tail: list[str] = []
    required: int | None = None
    for index, name, description in entries:
        if ".." in index:
            start = _TAIL.match(index)
            if not tail and (start is None or start.group(1) != str(len(names) + 1)):
                raise ValueError(f"{kind}[{index}] does not follow {kind}[{len(names)}]")
            tail.append(name)
            continue
        if tail or index != str(len(names) + 1):
            raise ValueError(f"{kind}[{index}] is out of order")
        if description.startswith(OPTIONAL):
            required = len(names) if required is None else required
        elif required is not None:
            raise ValueError(f"{kind}[{index}] is required after an optional entry")
        names.append(name)
    return Inputs(
        names=tuple(names),
        required=len(names) if required is None else required,
        tail=tuple(tail),
    )


def _call_guard(name: str, header: ScriptHeader) -> str:
    """Lua that refuses a call whose KEYS or ARGV do not fit the header."""
    checks = []
    for array, inputs in (("KEYS", header.keys), ("ARGV", header.argv)):
        if inputs.required:
            checks.append(f"#{array} < {inputs.required}")
        if not inputs.tail:
            checks.append(f"#{array} > {len(inputs.names)}")
    if not checks:
        return ""
    wanted = f"its header takes {header.keys} KEYS and {header.argv} ARGV"
    return (
        f"if {' or '.join(checks)} then\n"
        f"  return redis.error_reply(string.format('{name}.lua was given %d KEYS and %d ARGV; "
        f"{wanted}', #KEYS, #ARGV))\n"
        "end\n"
    )


# The prelude: what Python and Lua share, written once, and put in front of each script when it
# is loaded (so that the scripts in lua/ stay plain Lua, never built at call time). Only the
# definitions a script names go into its prelude, with those they name in turn: a Lua function
# holds at most 200 locals, and each call runs the whole prelude.


@dataclass(frozen=True)
class Definition:
    """One `local` a prelude can hold: a constant of layout.py or a definition of lua/lib."""

    name: str
    text: str  # Lua, whole lines
    uses: frozenset[str]  # the other definitions it names


_COMMENT_OR_STRING = re.compile(r"--[^\n]*|'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\"")
_NAME = re.compile(r"(?<![\w.:])[A-Za-z_]\w*")
_DEFINES = re.compile(r"local (?:function )?(\w+)")
PRELUDE_START = "-- Prelude, generated by wq.store.scripts from wq/store/layout.py and lua/lib:\n"
PRELUDE_END = "-- End of the prelude.\n"


def lua_code(source: str, strings: bool = False) -> str:
    """Lua source with its comments removed and its string literals emptied, or kept as they
    are (`strings`). No long brackets: the scripts use none."""

    def blank(token: re.Match[str]) -> str:
        if token.group().startswith("--"):
            return ""
        return token.group() if strings else "''"

    return _COMMENT_OR_STRING.sub(blank, source)


def lua_names(source: str) -> frozenset[str]:
    """The names Lua source mentions, fields (`t.name`) and methods left out."""
    return frozenset(_NAME.findall(lua_code(source)))


def lua_literal(value: object) -> str | None:
    """A Python value as a Lua literal: an int, text, or a tuple of them (a Lua table); None
    for anything else (floats, and ints a Lua number would round, are Python's only)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value) if abs(value) < 2**53 else None
    if isinstance(value, str):
        escaped = "".join(
            chr(b) if 32 <= b < 127 and chr(b) not in "'\\" else f"\\{b:03d}"
            for b in value.encode()
        )
        return f"'{escaped}'"
    if isinstance(value, tuple) and all(isinstance(v, int | str) for v in value):
        items = [item for item in map(lua_literal, value) if item is not None]
        if len(items) == len(value):
            return "{" + ", ".join(items) + "}"
    return None


@cache
def layout_constants() -> dict[str, str]:
    """layout.py's constants (upper-case names) that Lua can hold, as Lua literals."""
    literals = {
        name: lua_literal(value)
        for name, value in vars(layout).items()
        if re.fullmatch(r"[A-Z][A-Z0-9_]*", name)
    }
    return {name: literal for name, literal in literals.items() if literal is not None}


def lib_definitions(source: str) -> list[Definition]:
    """The definitions of a lua/lib file: each starts at a `local` at the start of a line,
    with the comment lines right above it, and runs to the next one. What comes before the
    first one (the file's own comment) is left out."""
    blocks: list[tuple[str, list[str]]] = []  # (name, lines)
    comment: list[str] = []
    for line in source.splitlines():
        if defines := _DEFINES.match(line):
            blocks.append((defines.group(1), [*comment, line]))
            comment = []
        elif line.startswith("--"):
            comment.append(line)
        else:
            if not line.strip():
                comment = []  # a comment set apart is not the next definition's
            if blocks:
                blocks[-1][1].append(line)
    texts = [(name, "\n".join(lines).strip("\n") + "\n") for name, lines in blocks]
    return [Definition(name, text, lua_names(text)) for name, text in texts]


@cache
def definitions() -> tuple[Definition, ...]:
    """Everything a prelude can hold, in the order a prelude writes it: layout.py's constants,
    then lua/lib's definitions, file by file (a definition may name only those before it)."""
    found = [
        Definition(name, f"local {name} = {literal}\n", frozenset())
        for name, literal in layout_constants().items()
    ]
    lib = sorted(
        (e for e in (_lua_dir() / LIB).iterdir() if e.name.endswith(LUA_SUFFIX)),
        key=lambda e: e.name,
    )
    for entry in lib:
        found += lib_definitions(entry.read_text(encoding="utf-8"))
    names = {d.name for d in found}
    return tuple(replace(d, uses=(d.uses & names) - {d.name}) for d in found)


def prelude(names: Iterable[str]) -> str:
    """The prelude of Lua that names `names`: the definitions among them, and those these
    name in turn; '' if it names none."""
    by_name = {d.name: d for d in definitions()}
    wanted: set[str] = set()
    todo = [n for n in names if n in by_name]
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo += by_name[name].uses
    if not wanted:
        return ""
    chosen = "".join(d.text for d in definitions() if d.name in wanted)
    return PRELUDE_START + chosen + PRELUDE_END

"""The Lua scripts as wq.store.scripts loads them: each lua/*.lua registered, typed."""

import re
from typing import get_type_hints

import pytest
import redis
from redis.commands.core import Script

from wq.store.queue import RunQueue
from wq.store.scripts import Inputs, ScriptHeader, Scripts, script_names, script_source


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


# A little Lua lexing, enough for these scripts: comments and strings blanked out (no long
# brackets: a test below makes sure none is used), top-level `local` statements, whose
# continuation lines are indented.
_COMMENT_OR_STRING = re.compile(r"--[^\n]*|'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\"")
_LOCAL = re.compile(r"^local ([\w, ]+?) *=(.*(?:\n .*)*)", re.MULTILINE)
_INPUT = re.compile(r"\b(KEYS|ARGV)\[(\d+)\]")
# The forms a script binds an input in: ARGV[n], tonumber(ARGV[n]), ARGV[n] == '1'.
_BOUND = re.compile(r"(?:tonumber\()?(KEYS|ARGV)\[(\d+)\]\)?(?: == .*)?")


def code(source: str) -> str:
    """The source with comments removed and every string literal emptied."""
    return _COMMENT_OR_STRING.sub(lambda m: "" if m.group().startswith("--") else "''", source)


def split_top_level(expressions: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(expressions):
        depth += (ch in "([{") - (ch in ")]}")
        if ch == "," and depth == 0:
            parts.append(expressions[start:i].strip())
            start = i + 1
    return [*parts, expressions[start:].strip()]


def bindings(source: str) -> dict[tuple[str, int], str]:
    """(KEYS or ARGV, n) -> the local a script binds that input to at its top."""
    bound = {}
    for statement in _LOCAL.finditer(code(source)):
        names = [n.strip() for n in statement.group(1).split(",")]
        for name, expression in zip(names, split_top_level(statement.group(2)), strict=False):
            if found := _BOUND.fullmatch(expression):
                bound[found.group(1), int(found.group(2))] = name
    return bound


def header_names(header: ScriptHeader, array: str) -> tuple[str, ...]:
    return (header.keys if array == "KEYS" else header.argv).names


@pytest.mark.parametrize("name", script_names())
def test_each_script_has_a_header_that_parses(name: str) -> None:
    header = ScriptHeader.parse(script_source(name))
    assert header.keys.names, f"{name}.lua lists no KEYS"  # every script works on a run's keys


@pytest.mark.parametrize("name", script_names())
def test_the_locals_a_script_binds_its_inputs_to_are_named_as_in_its_header(name: str) -> None:
    """`local meta_key = KEYS[1]` for the header's `KEYS[1] meta`; `local token = ARGV[1]` for
    its `ARGV[1] token`."""
    source = script_source(name)
    header = ScriptHeader.parse(source)
    for (array, n), local in bindings(source).items():
        names = header_names(header, array)
        assert n <= len(names), f"{name}.lua binds {array}[{n}]; its header lists {len(names)}"
        wanted = f"{names[n - 1]}_key" if array == "KEYS" else names[n - 1]
        assert local == wanted, f"{name}.lua binds {array}[{n}] to {local}, not {wanted}"


@pytest.mark.parametrize("name", script_names())
def test_a_script_reads_its_inputs_at_its_top_and_only_those_its_header_lists(name: str) -> None:
    """Named inputs: KEYS[n] and ARGV[n] appear only in the `local` statements that open the
    script (never raw in its body), each entry of the header is read, and none past it."""
    source = script_source(name)
    header = ScriptHeader.parse(source)
    body = code(source)
    read = set()
    for statement in _LOCAL.finditer(body):
        read |= {(a, int(n)) for a, n in _INPUT.findall(statement.group(0))}
    raw = _INPUT.findall(_LOCAL.sub("", body))
    assert not raw, f"{name}.lua reads {raw} in its body, not as named locals"
    listed = {(a, n) for a in ("KEYS", "ARGV") for n in range(1, len(header_names(header, a)) + 1)}
    assert read == listed, f"{name}.lua reads {sorted(read)}; its header lists {sorted(listed)}"


@pytest.mark.parametrize(
    "name", [n for n in script_names() if ScriptHeader.parse(script_source(n)).argv.tail]
)
def test_a_variadic_tail_starts_where_the_header_says(name: str) -> None:
    """A script reads its ARGV tail from a named index (`local FIRST_POSITION = 6`): right
    after the header's named entries."""
    header = ScriptHeader.parse(script_source(name))
    starts = re.findall(r"^local FIRST_\w+ = (\d+)$", code(script_source(name)), re.MULTILINE)
    assert [int(s) for s in starts] == [len(header.argv.names) + 1]


@pytest.mark.parametrize("name", script_names())
def test_no_script_uses_long_brackets(name: str) -> None:
    """The lexing above does not know Lua's [[long strings]] and --[[block comments]]."""
    assert "[[" not in script_source(name)
    assert "[=" not in script_source(name)


def test_a_header_lists_named_optional_and_variadic_inputs() -> None:
    header = ScriptHeader.parse(
        "-- x.lua: a script.\n"
        "--\n"
        "-- KEYS[1] meta   hash: total\n"
        "--                continued\n"
        "-- KEYS[2] source (optional: adoptions only) a list\n"
        "-- ARGV[1] token  the lease's\n"
        "-- ARGV[2] N      how many positions follow\n"
        "-- ARGV[3..2+N]   positions\n"
        "-- ARGV[3+N..]    position, output pairs\n"
        "--\n"
        "-- Returns ARGV[9] and KEYS[9] (not entries: not at a line's start)\n"
        "\n"
        "-- KEYS[3] after  (not the header: past its end)\n"
    )
    assert header == ScriptHeader(
        keys=Inputs(names=("meta", "source"), required=1),
        argv=Inputs(names=("token", "N"), required=2, tail=("positions", "position,")),
    )
    assert [header.keys.fits(n) for n in range(4)] == [False, True, True, False]
    assert [header.argv.fits(n) for n in (1, 2, 9)] == [False, True, True]
    assert (str(header.keys), str(header.argv)) == ("1 to 2", "at least 2")


@pytest.mark.parametrize(
    "entries",
    [
        "-- KEYS[2] b",  # KEYS[1] left out
        "-- KEYS[1] a\n-- KEYS[3] c",
        "-- ARGV[1] a\n-- ARGV[3..] rest",  # a tail not right after the named entries
        "-- ARGV[1..] rest\n-- ARGV[1] a",  # a named entry after the tail
        "-- ARGV[1] a  (optional) x\n-- ARGV[2] b  required again",
    ],
)
def test_a_header_out_of_order_is_refused(entries: str) -> None:
    with pytest.raises(ValueError, match=r"(KEYS|ARGV)\["):
        ScriptHeader.parse(entries)


def test_a_checked_script_refuses_inputs_that_do_not_fit_its_header(client: "redis.Redis") -> None:
    scripts = Scripts(client, check_calls=True)
    token = "t"
    with pytest.raises(
        redis.ResponseError,
        match=r"^renew.lua was given 0 KEYS and 2 ARGV; its header takes 1 KEYS and at least "
        r"2 ARGV$",
    ):
        scripts.renew(keys=[], args=[token, 1000])
    too_many = ["job", 1, 2, "why", "one too many"]
    with pytest.raises(redis.ResponseError, match=r"scaling.lua was given 2 KEYS and 5 ARGV"):
        scripts.scaling(keys=["{r}:meta", "{r}:scaling"], args=too_many)
    # Fitting calls run: a position not held, nothing seeded to record a decision for.
    assert scripts.renew(keys=["{r}:leases"], args=[token, 1000, 7]) == ["7"]
    assert scripts.scaling(keys=["{r}:meta", "{r}:scaling"], args=too_many[:4]) == 0


def test_the_unit_tests_check_every_call_of_every_script(queue: RunQueue) -> None:
    """conftest switches the check on for the whole suite: each script a RunQueue registers
    opens with it."""
    for name in script_names():
        assert getattr(queue.scripts, name).script.startswith("if #KEYS "), name

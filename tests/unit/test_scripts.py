"""The Lua scripts as wq.store.scripts loads them: each lua/*.lua registered, typed."""

import re
import struct
import tomllib
from pathlib import Path
from typing import get_type_hints

import pytest
import redis
from redis.commands.core import Script

import wq.store
from wq.store import layout
from wq.store.queue import RunQueue
from wq.store.scripts import (
    Inputs,
    ScriptHeader,
    Scripts,
    definitions,
    layout_constants,
    lib_definitions,
    lua_code,
    lua_literal,
    lua_names,
    prelude,
    script_names,
    script_source,
    script_text,
)


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


# A little more Lua lexing than scripts.lua_code's, enough for these scripts: top-level `local`
# statements, whose continuation lines are indented.
_LOCAL = re.compile(r"^local ([\w, ]+?) *=(.*(?:\n .*)*)", re.MULTILINE)
_INPUT = re.compile(r"\b(KEYS|ARGV)\[(\d+)\]")
# The forms a script binds an input in: ARGV[n], tonumber(ARGV[n]), ARGV[n] == '1'.
_BOUND = re.compile(r"(?:tonumber\()?(KEYS|ARGV)\[(\d+)\]\)?(?: == .*)?")


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
    for statement in _LOCAL.finditer(lua_code(source)):
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
    body = lua_code(source)
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
    starts = re.findall(r"^local FIRST_\w+ = (\d+)$", lua_code(script_source(name)), re.MULTILINE)
    assert [int(s) for s in starts] == [len(header.argv.names) + 1]


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
        match=r"^renew.lua was given 0 KEYS and 1 ARGV; its header takes 1 KEYS and at least "
        r"1 ARGV$",
    ):
        scripts.renew(keys=[], args=[1000])
    too_many = ["job", 1, 2, "why", "one too many"]
    with pytest.raises(redis.ResponseError, match=r"scaling.lua was given 2 KEYS and 5 ARGV"):
        scripts.scaling(keys=["{r}:meta", "{r}:scaling"], args=too_many)
    # Fitting calls run: a token holding no lease, nothing seeded to record a decision for.
    assert scripts.renew(keys=["{r}:leases"], args=[1000, token]) == [token]
    assert scripts.scaling(keys=["{r}:meta", "{r}:scaling"], args=too_many[:4]) == 0


def test_the_unit_tests_check_every_call_of_every_script(queue: RunQueue) -> None:
    """conftest switches the check on for the whole suite: each script a RunQueue registers
    opens with it."""
    for name in script_names():
        assert getattr(queue.scripts, name).script.startswith("if #KEYS "), name


# The prelude.

STORE = Path(wq.store.__file__).parent
CONSTANT = re.compile(r"[A-Z][A-Z0-9_]*")
_DEFINED = re.compile(r"\blocal (?:function )?([\w, ]+)")


def lib_sources() -> dict[str, str]:
    return {f"lib/{p.name}": p.read_text() for p in sorted((STORE / "lua" / "lib").glob("*.lua"))}


def all_lua() -> dict[str, str]:
    """Every Lua file by its path under lua/: the scripts and lua/lib."""
    return {**{f"{n}.lua": script_source(n) for n in script_names()}, **lib_sources()}


def defined_in(source: str) -> set[str]:
    """The names Lua source defines with `local` (not loop variables or parameters)."""
    found = _DEFINED.findall(lua_code(source))
    return {name.strip() for names in found for name in names.split(",")}


def prelude_names() -> set[str]:
    return {d.name for d in definitions()}


def test_the_preludes_constants_are_the_layouts_values(client: "redis.Redis") -> None:
    """Evaluated by Redis's Lua: each constant of layout.py as a script gets it."""
    names = list(layout_constants())
    assert {"RECORD_FORMAT", "UNKNOWN_MS", "DURATION_BUCKETS_MS", "SEPARATOR"} <= set(names)
    got = client.eval(prelude(names) + f"return {{{', '.join(names)}}}", 0)
    values = [getattr(layout, n) for n in names]
    wanted = [list(v) if isinstance(v, tuple) else v for v in values]
    assert dict(zip(names, got, strict=True)) == dict(zip(names, wanted, strict=True))


def test_only_values_lua_holds_exactly_become_constants() -> None:
    assert lua_literal(True) is None
    assert lua_literal(0.5) is None
    assert lua_literal(2**53) is None
    assert lua_literal((1, 0.5)) is None
    assert lua_literal((5, "a'\\\n")) == r"{5, 'a\039\092\010'}"
    assert "DURATION_BUCKETS_S" not in layout_constants()  # floats
    assert "SCALING_FIELDS" in layout_constants()


def test_a_record_packed_in_lua_is_one_python_reads(redis_url: str) -> None:
    """RECORD_FORMAT is Lua's struct notation: packed whole (fail.lua, reap.lua) or in parts
    (complete.lua: state, the bytes a worker sent, the call's tail), a record is the same
    RECORD_WIDTH bytes, and layout.split_records reads it back."""
    raw = redis.Redis.from_url(redis_url)  # replies as bytes
    lua = """return {
      struct.pack(RECORD_FORMAT, DEAD + HAS_OUTPUT, 3, 1234, 70000, 1700000000123),
      string.char(DEAD + HAS_OUTPUT) .. struct.pack(ATTEMPT_FORMAT, 3, 1234)
        .. struct.pack(RECORD_TAIL_FORMAT, 70000, 1700000000123),
      #struct.pack(ATTEMPT_FORMAT, 0, 0)}"""
    whole, in_parts, attempt_width = raw.eval(prelude(lua_names(lua)) + lua, 0)
    raw.close()
    assert whole == in_parts
    assert len(whole) == layout.RECORD_WIDTH
    assert attempt_width == layout.ATTEMPT_WIDTH
    assert whole[1 : 1 + attempt_width] == struct.pack(layout.ATTEMPT_FORMAT, 3, 1234)
    assert layout.split_records(whole) == [
        layout.Record(
            state=layout.DEAD,
            has_output=True,
            attempts=3,
            worker=70000,
            duration_ms=1234,
            finished_ms=1700000000123,
        )
    ]


def test_put_record_rewrites_one_record_of_its_field(redis_url: str, run_id: str) -> None:
    raw = redis.Redis.from_url(redis_url)
    key = f"{run_id}:ledger"
    lua = "put_record(KEYS[1], ARGV[1], ARGV[2] == '' and NO_RECORD or ARGV[2])"
    script = raw.register_script(prelude(lua_names(lua)) + lua)
    record, width = bytes(range(1, 17)), layout.RECORD_WIDTH
    script(keys=[key], args=[33, b""])
    assert not raw.exists(key)  # clearing a record of a field never written writes nothing
    script(keys=[key], args=[33, record])
    script(keys=[key], args=["63", record])
    assert raw.hget(key, "1") == bytes(width) + record + bytes(29 * width) + record
    script(keys=[key], args=[33, b""])
    assert raw.hgetall(key) == {b"1": bytes(31 * width) + record}
    raw.close()


def test_now_ms_is_redis_time_in_milliseconds(client: "redis.Redis") -> None:
    lua = "return now_ms()"
    got = client.eval(prelude(lua_names(lua)) + lua, 0)
    seconds, micros = client.time()
    assert 0 <= seconds * 1000 + micros // 1000 - got < 1000


def test_a_prelude_holds_what_it_is_named_for_and_what_that_names() -> None:
    names = {n for n in re.findall(r"^local (?:function )?(\w+)", prelude({"put_record"}), re.M)}
    assert names == {"put_record", "NO_RECORD", "RECORDS_PER_FIELD", "RECORD_WIDTH", "FIELD_WIDTH"}
    assert prelude({"meta_key", "tonumber", "lease_ms"}) == ""
    seal = script_text("seal")
    assert "local OPEN = 'open'\n" in seal
    assert "RECORD_WIDTH" not in seal  # no ledger definition: seal.lua names none


def test_prelude_definitions_come_once_each_and_after_those_they_name() -> None:
    seen: set[str] = set()
    for definition in definitions():
        assert definition.name not in seen, f"{definition.name} is defined twice"
        assert definition.uses <= seen, f"{definition.name} names {definition.uses - seen} first"
        seen.add(definition.name)
    assert {"put_record", "worker_number", "duration_bucket", "now_ms"} <= seen


@pytest.mark.parametrize("path", all_lua())
def test_a_script_defines_nothing_its_prelude_holds(path: str) -> None:
    """Each fact once: a constant or function of the prelude is not written again."""
    source = all_lua()[path]
    again = defined_in(source) & prelude_names()
    if path.startswith("lib/"):  # a definition of the lib is the one
        again -= {d.name for d in lib_definitions(source)}
    assert not again, f"{path} defines {sorted(again)} again"


@pytest.mark.parametrize("path", all_lua())
def test_every_constant_lua_names_is_defined(path: str) -> None:
    """An upper-case name is a constant: the file's own, or its prelude's (so a layout.py
    constant that Lua cannot hold, or a misspelt one, is caught here, not at a call)."""
    source = all_lua()[path]
    constants = {n for n in lua_names(source) if CONSTANT.fullmatch(n)}
    missing = constants - defined_in(source) - prelude_names() - {"KEYS", "ARGV"}
    assert not missing, f"{path} names {sorted(missing)}, defined nowhere"


def test_the_package_ships_every_lua_file() -> None:
    """A wheel holds the files its package-data globs match: lua/lib/ needs its own."""
    pyproject = tomllib.loads((STORE.parents[2] / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["wq.store"]
    shipped = {p for g in globs for p in STORE.glob(g)}
    assert shipped == set((STORE / "lua").rglob("*.lua"))


@pytest.mark.parametrize("path", all_lua())
def test_no_lua_uses_long_brackets(path: str) -> None:
    """lua_code does not know Lua's [[long strings]] and --[[block comments]]."""
    assert "[[" not in all_lua()[path]
    assert "[=" not in all_lua()[path]


# Text that layout.py names, such as field names: Lua names it too rather than quote it.
_WORDS = {
    value: name
    for name, value in vars(layout).items()
    if CONSTANT.fullmatch(name) and isinstance(value, str) and re.fullmatch(r"[a-z_]+|\n", value)
}
_QUOTED = re.compile(r"(return )?'((?:[^'\\\n]|\\.)*)'")


@pytest.mark.parametrize("path", all_lua())
def test_lua_names_the_fields_layout_names_rather_than_quote_them(path: str) -> None:
    """`HMGET meta SEEDED TOTAL`, not `'seeded', 'total'`: one spelling, layout.py's. A reply
    (fail.lua's 'stale') is not a field."""
    code = lua_code(all_lua()[path], strings=True)
    quoted = {text.replace("\\n", "\n") for reply, text in _QUOTED.findall(code) if not reply}
    named = {_WORDS[text] for text in quoted & set(_WORDS)}
    assert not named, f"{path} quotes what layout.py names {sorted(named)}"

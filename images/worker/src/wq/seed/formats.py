"""Items parsed from a byte stream as it is read, in the same memory for any number of items:
plain lines, JSON Lines, a JSON list or a YAML list (or the `items` list of a chart values
file). Every source of items (a file, a URL, standard input) is read through here, so that the
same bytes give the same items, and the same digest, wherever they come from.

Items come out in batches of JSON text (wq.base.item.encode), in source order. Every problem is a
ConfigError that names the source (`what`) and, where the format has them, the line.

How each format streams:
  lines   blocks of 1 MiB, split at newlines and decoded a block at a time (the fast path:
          millions of items per second); a line may not be blank, "\\r\\n" counts as "\\n".
  jsonl   one JSON value per line; blank lines are skipped (no item can be blank).
  json    a list read value by value with ijson (its C parser), never held whole.
  yaml    a list read node by node with PyYAML's parser, never held whole; the parser is pure
          Python here (a few thousand items a second): prefer JSON Lines for big inputs.
Sources are untrusted: values are built within the bounds of wq.seed.bounded (nesting depth,
YAML alias expansion), each crossed bound a one-line error.
"""

import io
import json
import re
from collections.abc import Iterator
from typing import IO, Any

import ijson  # type: ignore[import-untyped]
import yaml

from wq.base.command_options import ITEMS_FORMATS
from wq.base.errors import ConfigError
from wq.base.item import encode
from wq.seed.bounded import (
    MAX_DEPTH,
    YamlComposer,
    check_depth,
    json_value,
    skip_json_value,
    too_deep,
)

FORMATS = ITEMS_FORMATS
SUFFIXES = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".yaml": "yaml",
    ".yml": "yaml",
}
BLOCK = 1 << 20  # bytes read at a time
BATCH = 4096  # items per batch of the formats parsed value by value
# A longer line is a wrong file (or a wrong --format), not an item: stop before memory runs out.
MAX_LINE = 64 << 20

Batches = Iterator[list[str]]

# A line with nothing but whitespace (str.isspace, as str.strip() sees it), in a block of lines.
_BLANK_LINE = re.compile(r"^[^\S\n]*$", re.MULTILINE)


def format_for(name: str, given: str | None) -> str:
    """The format given, else the one of the name's extension (after a compression one, such
    as .gz, that the reader undoes): .json, .jsonl/.ndjson, .yaml/.yml; anything else: lines."""
    if given:
        if given not in FORMATS:
            raise ConfigError(f"unknown items format {given!r}; use one of {', '.join(FORMATS)}")
        return given
    parts = name.rsplit("/", 1)[-1].lower().split(".")
    if len(parts) > 2 and parts[-1] in COMPRESSIONS:
        parts.pop()
    return SUFFIXES.get("." + parts[-1], "lines") if len(parts) > 1 else "lines"


# Compression suffixes undone on the way in (fsspec's names for them).
COMPRESSIONS = ("gz", "bz2", "xz", "lzma", "zst")


def iter_items(stream: IO[bytes], fmt: str, what: str) -> Batches:
    """The items of a binary stream in format `fmt`, batch by batch; `what` names the source
    in errors (e.g. "items file 'a.txt'")."""
    if fmt == "lines":
        return _lines(stream, what)
    if fmt == "jsonl":
        return _json_lines(stream, what)
    if fmt == "json":
        return _json(stream, what)
    if fmt == "yaml":
        return _yaml(stream, what)
    raise ConfigError(f"unknown items format {fmt!r}; use one of {', '.join(FORMATS)}")


def _line_blocks(stream: IO[bytes], what: str) -> Iterator[tuple[int, str]]:
    """(number of the block's first line, the block's complete lines as text without the last
    newline); the text after the last newline comes as a last block of its own."""
    rest = b""
    offset = 0  # of `rest` in the stream, for the byte named in a decoding error
    number = 1
    while block := stream.read(BLOCK):
        data = rest + block if rest else block
        cut = data.rfind(b"\n")
        if cut < 0:
            if len(data) > MAX_LINE:
                raise ConfigError(
                    f"{what} line {number} is longer than {MAX_LINE >> 20} MiB: is it the "
                    "right file and --format?"
                )
            rest = data
            continue
        text = _decode(data[:cut], what, offset)
        yield number, text
        number += text.count("\n") + 1
        rest = data[cut + 1 :]
        offset += cut + 1
    if rest:
        yield number, _decode(rest, what, offset)


def _decode(data: bytes, what: str, offset: int) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} is not UTF-8 text (byte {offset + exc.start})") from None


def _lines(stream: IO[bytes], what: str) -> Batches:
    for first, text in _line_blocks(stream, what):
        blank = _BLANK_LINE.search(text)
        if blank:
            number = first + text.count("\n", 0, blank.start())
            raise ConfigError(
                f"{what} line {number} is blank; every line is one item, so remove blank "
                "lines (use a JSON or YAML list for items with odd whitespace)"
            )
        lines = text.split("\n")
        if "\r" in text:
            lines = [line.removesuffix("\r") for line in lines]
        yield list(map(encode, lines))


def _json_lines(stream: IO[bytes], what: str) -> Batches:
    decode = json.JSONDecoder().decode
    for first, text in _line_blocks(stream, what):
        batch: list[str] = []
        for number, line in enumerate(text.split("\n"), start=first):
            if line.isspace() or not line:
                continue
            try:
                value = decode(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(
                    f"{what} line {number} is not valid JSON: {exc.msg} (column {exc.colno})"
                ) from None
            except RecursionError:
                raise too_deep(what, f"line {number}") from None
            # Walked only when the line holds enough brackets to be too deep: two counts in C.
            if line.count("[") + line.count("{") > MAX_DEPTH:
                check_depth(value, what, f"line {number}")
            batch.append(_encoded(value, what, f"line {number}"))
        yield batch


def _encoded(value: Any, what: str, where: str) -> str:
    try:
        return encode(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{what} {where}: a {type(value).__name__} is not a JSON value; quote it to make "
            "it a string"
        ) from None


def _not_a_list(what: str, kind: str) -> ConfigError:
    return ConfigError(
        f"{what} must hold a list of items (or a mapping whose `items` is that list, as a "
        f"chart values file), not a {kind}"
    )


class _Replay:
    """A stream with bytes already read put back in front (read(n) is all ijson needs; it
    calls read(0) first, to see whether the stream gives bytes or text)."""

    def __init__(self, head: bytes, stream: IO[bytes]) -> None:
        self.head = head
        self.stream = stream

    def read(self, size: int = -1) -> bytes:
        if self.head and size != 0:
            out, self.head = self.head, b""
            return out
        return self.stream.read(size)


def _json(stream: IO[bytes], what: str) -> Batches:
    """A JSON list, or the `items` list of a mapping (a chart values file), value by value
    from ijson's events (its C parser; the events carry no path, so depth costs nothing)."""
    head = stream.read(BLOCK)
    events = iter(ijson.basic_parse(_Replay(head, stream), use_float=True))
    try:
        event, value = next(events, ("", None))
        if event == "start_array":
            yield from _json_list(events, what)
        elif event == "start_map":
            yield from _json_mapping(events, what)
        else:
            raise _not_a_list(what, type(value).__name__ if event else "nothing")
        for _ in events:  # the parser refuses what follows the value, if anything does
            pass
    except ijson.JSONError as exc:
        raise _not_json(exc, what) from None


def _not_json(exc: Exception, what: str) -> ConfigError:
    """One line for what ijson refused. Its C parser's message is bytes, several lines long,
    with the text around the error (which may be any bytes) and a pointer under it."""
    detail = exc.args[0] if exc.args else ""
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", "replace")
    message = str(detail).strip().splitlines()[0] if str(detail).strip() else "parse error"
    if "invalid bytes in UTF8" in message:
        return ConfigError(f"{what} is not UTF-8 text")
    return ConfigError(f"{what} is not valid JSON: {message}")


def _json_list(events: Iterator[tuple[str, Any]], what: str) -> Batches:
    """The items of a list whose start_array was read, up to and with its end_array."""
    batch: list[str] = []
    for n, (event, value) in enumerate(events):
        if event == "end_array":
            break
        where = f"item {n}"
        batch.append(_encoded(json_value(events, event, value, what, where), what, where))
        if len(batch) >= BATCH:
            yield batch
            batch = []
    yield batch


def _json_mapping(events: Iterator[tuple[str, Any]], what: str) -> Batches:
    """The first `items` list among a mapping's keys, whose start_map was read."""
    found = False
    for event, value in events:
        if event == "end_map":
            break
        # event is a map_key: its value follows
        after, _ = next(events)
        if value == "items" and after == "start_array" and not found:
            yield from _json_list(events, what)
            found = True
        else:
            skip_json_value(events, after)
    if not found:
        raise _not_a_list(what, "dict")


def _yaml(stream: IO[bytes], what: str) -> Batches:
    """A YAML list node by node: the parser's events, each item composed and constructed on
    its own (PyYAML's pure-Python loader: libyaml's does not compose one node at a time)."""
    text = io.TextIOWrapper(stream, encoding="utf-8")
    loader: Any = None  # typed Any: its stubs leave most methods untyped
    try:
        # In the try: the loader reads the first block as it starts, which may not be UTF-8.
        loader = yaml.SafeLoader(text)
        composer = YamlComposer(loader, what)
        loader.get_event()  # stream start
        if loader.check_event(yaml.StreamEndEvent):
            return  # an empty document: no items
        loader.get_event()  # document start
        if loader.check_event(yaml.SequenceStartEvent):
            loader.get_event()
            yield from _yaml_sequence(composer)
        elif loader.check_event(yaml.MappingStartEvent):
            loader.get_event()
            found = False
            while not loader.check_event(yaml.MappingEndEvent):
                key = composer.value("a key")
                if key == "items" and not found and loader.check_event(yaml.SequenceStartEvent):
                    loader.get_event()
                    yield from _yaml_sequence(composer)
                    found = True
                else:
                    composer.node(f"the value of {str(key)[:40]!r}")
            loader.get_event()
            if not found:
                raise _not_a_list(what, "dict")
        else:
            value = composer.value("the document")
            if value is not None:
                raise _not_a_list(what, type(value).__name__)
        loader.get_event()  # document end
        if not loader.check_event(yaml.StreamEndEvent):
            raise ConfigError(f"{what} holds more than one YAML document; give one list")
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        problem = getattr(exc, "problem", None) or "parse error"
        raise ConfigError(f"{what} is not valid YAML: {problem}{at}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} is not UTF-8 text (byte {exc.start} of a block)") from None
    finally:
        if loader is not None:
            loader.dispose()
        text.detach()  # the caller closes the stream


def _yaml_sequence(composer: YamlComposer) -> Batches:
    loader, what = composer.loader, composer.what
    batch: list[str] = []
    n = 0
    while not loader.check_event(yaml.SequenceEndEvent):
        batch.append(_encoded(composer.value(f"item {n}"), what, f"item {n}"))
        n += 1
        if len(batch) >= BATCH:
            yield batch
            batch = []
    loader.get_event()  # sequence end
    yield batch

"""`wq report`: every item's record (wq.read.ledger) with its value and output, in seed order, as
JSON Lines or CSV, written as it is read: memory stays the same whatever the run's size.

JSON Lines keep every value as it is: the item and its output as the JSON values they are
(their stored text, which wq's own encoder wrote, goes into the line unchanged). CSV has one
column per field; an item or output that is a string is written as it is, any other value as
compact JSON (as `{{ item }}` renders it in a command). Items are untrusted data, and a
spreadsheet runs a cell that starts with = + - @ (or a tab or carriage return) as a formula:
such a text cell gets a leading ' (OWASP's advice for CSV injection), which spreadsheets show
as text and do not display. JSON Lines are the exact record.
"""

import contextlib
import csv
import functools
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from wq.base.errors import ConfigError
from wq.read.ledger import DEAD, STATES, ItemRecord, iter_records
from wq.store.queue import RunQueue

FORMATS = ("jsonl", "csv")
COLUMNS = (
    "position",
    "state",
    "attempts",
    "duration_s",
    "worker",
    "finished_at",
    "error",
    "item",
    "output",
)


# One encoder and decoder for every line: a report has millions.
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_decode = json.JSONDecoder().decode


def as_dict(r: ItemRecord) -> dict[str, Any]:
    """A record as JSON Lines carry it, keys in COLUMNS order."""
    return {
        "position": r.position,
        "state": r.state,
        "attempts": r.attempts,
        "duration_s": r.duration_ms / 1000 if r.duration_ms is not None else None,
        "worker": r.worker,
        "finished_at": timestamp(r.finished_ms),
        "error": r.error,
        "item": _decode(r.item),
        "output": _decode(r.output) if r.output is not None else None,
    }


@functools.lru_cache(maxsize=64)  # the items of one completion share their time
def timestamp(ms: int | None) -> str | None:
    """ISO 8601 in UTC with milliseconds: 2026-11-26T14:01:02.123Z."""
    if ms is None:
        return None
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def as_text(json_text: str | None) -> str:
    """A JSON value as a CSV cell: a string as text (inert_cell), anything else as compact
    JSON, nothing as an empty cell. JSON other than a string cannot start a formula: a number
    that starts with '-' is only a number."""
    if json_text is None:
        return ""
    if json_text.startswith('"'):
        return inert_cell(str(_decode(json_text)))
    return json_text


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def inert_cell(text: str) -> str:
    """Text as a CSV cell that no spreadsheet runs as a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_row(r: ItemRecord) -> list[Any]:
    """A record as a CSV row, in COLUMNS order; an absent value is an empty cell."""
    return [
        r.position,
        r.state,
        r.attempts,
        "" if r.duration_ms is None else r.duration_ms / 1000,
        inert_cell(r.worker or ""),
        timestamp(r.finished_ms) or "",
        inert_cell(r.error or ""),
        as_text(r.item),
        as_text(r.output),
    ]


def write(records: Iterable[ItemRecord], fmt: str, out: IO[str]) -> int:
    """Write records in a format (FORMATS); returns how many."""
    n = 0
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for r in records:
            writer.writerow(csv_row(r))
            n += 1
        return n
    for r in records:
        out.write(json_line(r))
        n += 1
    return n


def json_line(r: ItemRecord) -> str:
    """as_dict(r) as one line of JSON, made directly: a report has millions."""
    return _LINE % (
        r.position,
        r.state,
        r.attempts,
        "null" if r.duration_ms is None else repr(r.duration_ms / 1000),
        "null" if r.worker is None else _encode(r.worker),
        "null" if r.finished_ms is None else f'"{timestamp(r.finished_ms)}"',
        "null" if r.error is None else _encode(r.error),
        r.item,
        "null" if r.output is None else r.output,
    )


_LINE = "".join(
    [
        '{"position":%d,"state":"%s","attempts":%d,"duration_s":%s,"worker":%s,',
        '"finished_at":%s,"error":%s,"item":%s,"output":%s}\n',
    ]
)


@contextlib.contextmanager
def replaced_when_complete(path: Path) -> Iterator[IO[str]]:
    """A file written beside `path` that takes its place only once it is complete, so that an
    interrupted report never looks like a whole one."""
    directory = path.parent if str(path.parent) else Path(".")
    if not path.name:
        raise ConfigError(f"report file {str(path)!r} names a directory, not a file")
    try:
        fd, part = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=directory)
    except OSError as exc:
        # Found before a record is read: a missing directory, no permission, a read-only volume.
        raise ConfigError(
            f"report file {str(path)!r} cannot be written in {str(directory)!r}: {exc.strerror}"
        ) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            yield f
        try:
            os.replace(part, path)
        except OSError as exc:  # e.g. a directory of that name, made meanwhile
            raise ConfigError(
                f"report file {str(path)!r} cannot be written: {exc.strerror}"
            ) from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(part)
        raise


def write_run_report(
    queue: RunQueue, fmt: str, states: Iterable[str], output: Path | None, out: IO[str]
) -> str | None:
    """`wq report`: the run's records in `states` (default: all) to `output`, which appears
    once complete, or to `out`; returns what to tell the user when it wrote a file."""
    records = iter_records(queue, states=tuple(states) or STATES)
    if output is None:
        write(records, fmt, out)
        return None
    with replaced_when_complete(output) as f:
        n = write(records, fmt, f)
    return f"wrote {n} record(s) of run {queue.run} to {output}"


def write_dead(queue: RunQueue, as_json: bool, out: IO[str]) -> str | None:
    """`wq dead`: the dead part of the report, as JSON Lines (position, item, error) or as
    tab-separated text; returns the count line that goes with the text."""
    n = 0
    for d in iter_records(queue, states=(DEAD,)):
        n += 1
        if as_json:
            record = {"position": d.position, "item": json.loads(d.item), "error": d.error}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            out.write(f"{d.position}\t{d.item}\t{d.error}\n")
    return None if as_json else f"{n} dead item(s) in run {queue.run}"

"""Where a run's items come from: a file (lines, JSON or YAML), the command line, or a range.

Every problem is a ConfigError that names the file and the place, never a traceback.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from wq.errors import ConfigError
from wq.item import encode

FORMATS = ("lines", "json", "yaml")


@dataclass(frozen=True)
class ItemRange:
    start: int
    end: int  # exclusive, as in Python's range()
    step: int

    @classmethod
    def parse(cls, text: str) -> "ItemRange":
        parts = text.split(":")
        if len(parts) not in (2, 3):
            raise ConfigError(f"item range {text!r} is not START:END or START:END:STEP")
        try:
            numbers = [int(p) for p in parts]
        except ValueError:
            raise ConfigError(
                f"item range {text!r}: START, END and STEP must be integers"
            ) from None
        step = numbers[2] if len(numbers) == 3 else 1
        if step == 0:
            raise ConfigError(f"item range {text!r}: STEP must not be 0")
        return cls(numbers[0], numbers[1], step)

    def __len__(self) -> int:
        return len(range(self.start, self.end, self.step))


def format_for(path: Path, given: str | None) -> str:
    if given:
        if given not in FORMATS:
            raise ConfigError(f"unknown items format {given!r}; use one of {', '.join(FORMATS)}")
        return given
    suffix = path.suffix.lower()
    if suffix == ".json":
        return "json"
    if suffix in (".yaml", ".yml"):
        return "yaml"
    return "lines"


def read_items_file(path: Path, fmt: str | None = None) -> list[str]:
    """The items of a file, each encoded as JSON text, in file order."""
    fmt = format_for(path, fmt)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"items file {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"items file {str(path)!r} is a directory") from None
    except PermissionError:
        raise ConfigError(f"items file {str(path)!r} is not readable (permission denied)") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"items file {str(path)!r} is not UTF-8 text (byte {exc.start})"
        ) from None
    if fmt == "lines":
        return list(_lines(text, str(path)))
    return [encode(v) for v in _document(text, str(path), fmt)]


def _lines(text: str, name: str) -> Iterator[str]:
    if text == "":
        return
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    for number, raw in enumerate(lines, start=1):
        line = raw.removesuffix("\r")
        if line.strip() == "":
            raise ConfigError(
                f"items file {name!r} line {number} is blank; every line is one item, "
                "so remove blank lines (use a JSON or YAML list for items with odd whitespace)"
            )
        yield encode(line)


def _document(text: str, name: str, fmt: str) -> list[Any]:
    try:
        data = json.loads(text) if fmt == "json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"items file {name!r} is not valid JSON: {exc.msg} at line {exc.lineno}"
        ) from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        problem = getattr(exc, "problem", None) or "parse error"
        raise ConfigError(f"items file {name!r} is not valid YAML: {problem}{at}") from None
    if data is None and fmt == "yaml":
        return []
    if not isinstance(data, list):
        raise ConfigError(
            f"items file {name!r} must hold a list of items, not a {type(data).__name__}"
        )
    return data

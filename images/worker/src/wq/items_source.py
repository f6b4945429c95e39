"""Where a run's items come from: a file (lines, JSON or YAML), the command line, or a range.

Every problem is a ConfigError that names the file and the place, never a traceback.
"""

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from wq.errors import ConfigError
from wq.item import encode

FORMATS = ("lines", "json", "yaml")


# Range items are signed 64-bit integers, exactly: START, END and STEP lie within
# -INT64_MAX..INT64_MAX, so every item (between START and END) does too. (The chart's
# values.schema.json has the same bounds.)
INT64_MAX = 2**63 - 1
_INTEGER = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True)
class ItemRange:
    start: int
    end: int  # exclusive, as in Python's range()
    step: int

    @classmethod
    def parse(cls, text: str) -> "ItemRange":
        shown = text if len(text) <= 60 else text[:57] + "..."
        parts = text.split(":")
        if len(parts) not in (2, 3):
            raise ConfigError(f"item range {shown!r} is not START:END or START:END:STEP")
        numbers = []
        for name, part in zip(("START", "END", "STEP"), parts, strict=False):
            digits = part.strip()
            if not _INTEGER.fullmatch(digits):
                raise ConfigError(f"item range {shown!r}: START, END and STEP must be integers")
            # INT64_MAX has 19 digits; int() would refuse 4300 of them.
            significant = digits.lstrip("+-").lstrip("0") or "0"
            number = int(digits[0] + significant[:20] if digits[0] == "-" else significant[:20])
            if len(significant) > 19 or not -INT64_MAX <= number <= INT64_MAX:
                value = digits if len(digits) <= 20 else digits[:20] + "..."
                raise ConfigError(
                    f"item range {shown!r}: {name} {value} is outside the signed 64-bit range "
                    f"(-{INT64_MAX} to {INT64_MAX})"
                )
            numbers.append(number)
        step = numbers[2] if len(numbers) == 3 else 1
        if step == 0:
            raise ConfigError(f"item range {shown!r}: STEP must not be 0")
        parsed = cls(numbers[0], numbers[1], step)
        if parsed.count == 0:
            direction = "above" if step > 0 else "below (STEP is negative)"
            raise ConfigError(
                f"item range {shown!r} holds no items: END is excluded, as in Python's range(), "
                f"so it must be {direction} START"
            )
        return parsed

    @property
    def count(self) -> int:
        """How many items: len(range(start, end, step)), which Python only takes up to
        2**63 - 1 items."""
        if self.step > 0:
            return max(0, (self.end - self.start + self.step - 1) // self.step)
        return max(0, (self.start - self.end - self.step - 1) // -self.step)


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
    listed = data.get("items") if isinstance(data, dict) else None
    if isinstance(listed, list):
        # A chart values file: its `items` are the run's, so `wq digest --items-file
        # values.yaml` gives the digest of the run the chart seeded from it.
        return listed
    if not isinstance(data, list):
        raise ConfigError(
            f"items file {name!r} must hold a list of items (or a mapping whose `items` is "
            f"that list, as a chart values file), not a {type(data).__name__}"
        )
    return data

"""Where a run's items come from: a file (lines, JSON Lines, JSON or YAML), the command line,
or a range. (URLs and standard input: wq.seed.sources.)

Every problem is a ConfigError that names the file and the place, never a traceback.
"""

import re
from dataclasses import dataclass
from pathlib import Path

from wq.base.errors import ConfigError
from wq.seed.formats import FORMATS, format_for, iter_items

__all__ = ["FORMATS", "INT64_MAX", "ItemRange", "read_items_file"]


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


def read_items_file(path: Path, fmt: str | None = None) -> list[str]:
    """The items of a file, each encoded as JSON text, in file order (wq.seed.formats: the
    same parser as for every other source, so the same bytes give the same items)."""
    what = f"items file {str(path)!r}"
    try:
        with path.open("rb") as f:
            return [
                item for batch in iter_items(f, format_for(path.name, fmt), what) for item in batch
            ]
    except FileNotFoundError:
        raise ConfigError(f"{what} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} is a directory") from None
    except PermissionError:
        raise ConfigError(f"{what} is not readable (permission denied)") from None

"""Where a run's items come from: exactly one of the command line, a file (lines, JSON Lines,
JSON or YAML), a URL or standard input (read by wq.seed.sources), a listing, a range or an
adopted Redis list.

Every problem is a ConfigError that names the file and the place, never a traceback.
"""

import re
from dataclasses import dataclass
from pathlib import Path

from wq.base.command_options import ItemsOptions
from wq.base.errors import ConfigError
from wq.base.item import encode
from wq.seed.formats import FORMATS, Batches, format_for, iter_items
from wq.seed.sources import describe, list_objects, read_items

__all__ = ["FORMATS", "INT64_MAX", "ItemRange", "ItemsSource", "read_items_file"]


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
    except OSError as exc:  # a name too long, a loop of links, a device that is no file
        raise ConfigError(f"{what} cannot be read: {exc.strerror or exc}") from None


def _not_empty(batches: Batches, what: str) -> Batches:
    """The batches, and at their end a ConfigError if they held no item: a run of no items
    is done at once, and whoever seeds one from an empty file or a listing that matched
    nothing has most likely made a mistake (as with an empty --range, refused too)."""
    seen = False
    for batch in batches:
        seen = seen or bool(batch)
        yield batch
    if not seen:
        raise ConfigError(
            f"{what}; if an empty run is what you mean, pass --allow-empty "
            "(WQ_ALLOW_EMPTY=true; chart: seed.allowEmpty)"
        )


@dataclass(frozen=True)
class ItemsSource(ItemsOptions):
    """Where `wq seed` and `wq run` take a run's items from: exactly one of the options is
    given (wq.base.command_options declares them)."""

    def given(self) -> list[str]:
        return [
            name
            for name, value in (
                ("ITEMS", self.items),
                ("--items-file", self.items_file),
                ("--items-url", self.items_url),
                ("--items-from", self.items_from),
                ("--list", self.list_glob),
                ("--range", self.item_range),
                ("--adopt-list", self.adopt_list),
            )
            if value
        ]

    def check(self, none_ok: bool = False) -> None:
        """Exactly one source (or none, when `none_ok`: an open run may start empty)."""
        given = self.given()
        if len(given) > 1 or (not given and not none_ok):
            raise ConfigError(
                "give items in exactly one way: ITEMS, --items-file, --items-url, --items-from, "
                "--list, --range or --adopt-list"
                + (f" (got {' and '.join(given)})" if given else " (got none)")
            )
        if self.item_range:
            ItemRange.parse(self.item_range)  # before `wq run` starts anything

    @property
    def streamed(self) -> bool:
        """Items read as they come (a URL, standard input, a listing), never held whole."""
        return bool(self.items_url or self.items_from or self.list_glob)

    def batches(self) -> Batches:
        """The items of a source that is not a range or an adopted list, batch by batch; a
        source that turns out to hold none is a ConfigError at its end, unless allow_empty."""
        if self.items_url or self.items_from:
            url = str(self.items_url or self.items_from)
            batches, what = read_items(url, self.items_format), f"there are no {describe(url)}"
        elif self.list_glob:
            batches = iter([[encode(url) for url in list_objects(self.list_glob)]])
            what = f"listing {self.list_glob[:200]!r} matched no objects"
        elif self.items_file:
            batches = iter([read_items_file(self.items_file, self.items_format)])
            what = f"items file {str(self.items_file)!r} holds no items"
        else:
            batches = iter([[encode(i) for i in self.items]])
            what = "no items were given"
        return batches if self.allow_empty else _not_empty(batches, what)

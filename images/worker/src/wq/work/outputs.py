"""What a handler produced for an item (its output), as the JSON text stored with the item's
done record, within the size limit (`--max-output-bytes`).

An output over the limit fails the attempt with that reason; it is never cut short, so a
stored output is always the whole of what the handler produced.
"""

import json
from typing import IO, Any

# Compact, non-ASCII kept as is, and no NaN or Infinity (they are not JSON).
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


class OutputRefused(Exception):
    """The output cannot be stored; the message says why and becomes the attempt's error."""


def too_big(size: int, limit: int, what: str = "output") -> OutputRefused:
    # Imported here: the handler process imports this module, and starts faster without the
    # option tables (and click), which only this message needs.
    from wq.base.options import WorkerConfig
    from wq.base.settings import setting_of

    flag = setting_of(WorkerConfig, "max_output_bytes").flag
    return OutputRefused(
        f"{what} is {size} bytes, over the limit of {limit} bytes ({flag}); "
        "it was not stored: raise the limit, or store big results elsewhere and output "
        "where they are"
    )


def json_output(value: Any, limit: int) -> str | None:
    """A python handler's return value as JSON text; None returns no output."""
    if value is None:
        return None
    try:
        text = _encode(value)
    except (TypeError, ValueError) as exc:
        raise OutputRefused(f"the return value cannot be stored as JSON: {exc}") from None
    size = len(text.encode())
    if size > limit:
        raise too_big(size, limit, "the return value, as JSON,")
    return text


def text_output(data: bytes, limit: int, what: str) -> str:
    """A command's output (its $WQ_OUTPUT file or its stdout), which must be UTF-8 text, as a
    JSON string."""
    if len(data) > limit:
        raise too_big(len(data), limit, what)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise OutputRefused(
            f"{what} is not UTF-8 text (byte {exc.start}); outputs are text: write binary "
            "results elsewhere and output where they are"
        ) from None
    return _encode(text)


def read_limited(stream: IO[bytes], limit: int) -> tuple[bytes, int]:
    """Everything a stream gives until its end, keeping at most limit + 1 bytes (enough to tell
    that it was over); returns (what was kept, how many bytes there were in all). Reading on
    past the limit lets the writer finish instead of blocking on a full pipe."""
    kept = bytearray()
    size = 0
    while block := stream.read(65536):
        size += len(block)
        if len(kept) <= limit:
            kept += block[: limit + 1 - len(kept)]
    return bytes(kept), size

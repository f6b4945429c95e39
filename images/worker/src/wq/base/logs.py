"""Structured logs: one line per event on stderr, logfmt (default) or JSON."""

import json
import sys
import threading
import time
from typing import Any, TextIO

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


class EventLog:
    def __init__(
        self,
        level: str = "info",
        fmt: str = "text",
        stream: TextIO | None = None,
        **context: Any,
    ) -> None:
        self.threshold = LEVELS[level]
        self.fmt = fmt
        self.stream = stream or sys.stderr
        self.context = context
        self._lock = threading.Lock()

    def bind(self, **context: Any) -> "EventLog":
        child = EventLog(stream=self.stream, fmt=self.fmt, **{**self.context, **context})
        child.threshold = self.threshold
        return child

    def enabled(self, level: str) -> bool:
        return LEVELS[level] >= self.threshold

    def debug(self, event: str, **fields: Any) -> None:
        self.emit("debug", event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self.emit("info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self.emit("warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self.emit("error", event, fields)

    def emit(self, level: str, event: str, fields: dict[str, Any]) -> None:
        if LEVELS[level] < self.threshold:
            return
        now = time.time()
        stamp = (
            time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
        )
        record = {"ts": stamp, "level": level, "event": event, **self.context, **fields}
        if self.fmt == "json":
            line = json.dumps(record, ensure_ascii=False, default=str)
        else:
            line = " ".join(f"{k}={_logfmt(v)}" for k, v in record.items())
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()


def _logfmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".")
    text = str(value)
    if text and all(c.isprintable() and c not in ' ="' for c in text):
        return text
    return json.dumps(text, ensure_ascii=False)

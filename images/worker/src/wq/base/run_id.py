"""Run ids: what a run may be called (every key of a run carries its id, wq.store.keys)."""

import re
from typing import Any

import click

from wq.base.errors import ConfigError

RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


def check_run_id(run: str) -> str:
    """The run id, if it is one (the whole string: a trailing newline is not allowed)."""
    if not RUN_ID_PATTERN.fullmatch(run):
        raise ConfigError(
            f"run id {run!r} is not valid: use 1-63 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return run


class RunIds(click.ParamType):  # type: ignore[type-arg]  # generic only in click >= 8.2
    """Run ids: repeated on the command line, separated by commas in the variable."""

    name = "run"

    def split_envvar_value(self, rv: str) -> list[str]:
        return [part.strip() for part in rv.split(",") if part.strip()]

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return check_run_id(str(value).strip())
        except ConfigError as exc:
            self.fail(str(exc), param, ctx)

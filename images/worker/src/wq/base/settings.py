"""How a setting becomes a command-line flag, a WQ_* variable, a field of a config object and
a row of the README's table. The settings themselves are declared in wq.base.options.

Each setting is a dataclass field made by `setting()`, whose metadata says its flag, its
environment variable, its help text and the chart value that sets it; `click_options` turns a
config class into a command's options, `pop_config` the parsed values back into the config.
"""

import json
import math
import os
from collections.abc import Callable
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C")


class Number(click.ParamType):  # type: ignore[type-arg]  # generic only in click >= 8.2
    """A finite float or int within bounds: nan, inf and overflowing values are one-line errors,
    not tracebacks or endless waits."""

    def __init__(self, integer: bool, low: float, high: float) -> None:
        self.integer = integer
        self.low = low
        self.high = high
        self.name = "integer" if integer else "float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number: float
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = value
        else:
            try:
                number = int(str(value).strip()) if self.integer else float(str(value).strip())
            except (ValueError, OverflowError):
                self.fail(f"{value!r} is not a valid {self.name}", param, ctx)
        if not self.integer and not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        if not self.low <= number <= self.high:
            self.fail(f"{value} is not in the range {self.low:g} to {self.high:g}", param, ctx)
        return number


class Text(click.ParamType):  # type: ignore[type-arg]  # generic only in click >= 8.2
    """Text that is UTF-8, for a value that goes to Redis or into a name: an argument whose
    bytes are not UTF-8 reaches Python as a string with surrogates (PEP 383), which would fail
    as a traceback where it is first encoded. Paths are not Text: a file name may be any bytes."""

    name = "text"

    def __init__(self, secret: bool = False) -> None:
        self.secret = secret  # may hold a password: the error does not show it

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = str(value)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            shown = text if len(text) <= 60 else text[:57] + "..."
            self.fail(
                "it is not UTF-8 text" if self.secret else f"{shown!r} is not UTF-8 text",
                param,
                ctx,
            )
        return text


def seconds(low: float = 0.0, high: float = 7 * 24 * 3600.0) -> Number:
    """Seconds: at most a week, which keeps every derived millisecond value exact."""
    return Number(False, low, high)


def count(low: int, high: int) -> Number:
    return Number(True, low, high)


@dataclass(frozen=True)
class Setting:
    flag: str | None  # "--lease"; booleans "--shell/--no-shell"; None: not a flag
    env: str
    help: str
    type: "click.ParamType[Any, Any] | None" = None
    value: str | None = None  # the chart value (under `worker.`) that sets it; None: none
    required: bool = False
    # An empty variable sets the empty string (which turns something off) rather than leaving
    # the default, as click does with empty variables.
    empty_env_is_value: bool = False
    # Repeatable flag; its variable holds the values as the type splits them.
    multiple: bool = False
    # A flag that takes no value (--progressive); its variable is true or false.
    is_flag: bool = False


def setting(default: Any, flag: str | None, env: str, help: str, **kw: Any) -> Any:
    return field(default=default, metadata={"setting": Setting(flag, env, help, **kw)})


def settings(cls: type) -> list[tuple[Field[Any], Setting]]:
    """The fields of a config class that are settings, in table order."""
    return [(f, f.metadata["setting"]) for f in fields(cls) if "setting" in f.metadata]


def setting_of(cls: type, name: str) -> Setting:
    return dict((f.name, s) for f, s in settings(cls))[name]


def click_option(cls: type, name: str, **overrides: Any) -> Callable[[F], F]:
    """The click option of one setting."""
    for f, s in settings(cls):
        if f.name == name:
            assert s.flag is not None, f"{name} has no flag"
            kwargs: dict[str, Any] = {
                "envvar": s.env,
                "show_envvar": True,
                "help": s.help,
                "required": s.required,
            }
            if not s.required:
                kwargs.update(default=f.default, show_default=f.default not in ("", None))
            if s.type is not None:
                kwargs["type"] = s.type
            if s.empty_env_is_value:
                kwargs["callback"] = _empty_env_is_value
            if s.multiple:
                kwargs["multiple"] = True
            if s.is_flag:
                kwargs["is_flag"] = True
            kwargs.update(overrides)
            return click.option(s.flag, name, **kwargs)
    raise KeyError(name)


def _empty_env_is_value(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    source = ctx.get_parameter_source(param.name or "")
    envvar = param.envvar if isinstance(param.envvar, str) else None
    if source is click.ParameterSource.DEFAULT and envvar and os.environ.get(envvar) == "":
        return ""
    return value


def click_options(cls: type, *, skip: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Every flag of a config class as click options, in table order."""
    names = [f.name for f, s in settings(cls) if s.flag is not None and f.name not in skip]

    def decorate(func: F) -> F:
        for name in reversed(names):
            func = click_option(cls, name)(func)
        return func

    return decorate


def pop_config(cls: type[C], kwargs: dict[str, Any]) -> C:
    """Take a config class's settings out of a click command's keyword arguments."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: kwargs.pop(k) for k in list(kwargs) if k in names})


def to_env(config: Any) -> dict[str, str]:
    """The WQ_* variables that give another process the same settings (for `wq run`)."""
    env: dict[str, str] = {}
    for f, s in settings(type(config)):
        value = getattr(config, f.name)
        if value is None or (value in ("", ()) and not s.empty_env_is_value):
            continue
        if isinstance(value, bool):
            env[s.env] = "true" if value else "false"
        elif isinstance(value, tuple):
            env[s.env] = json.dumps(list(value))
        else:
            env[s.env] = str(value)
    return env


def shown(default: Any) -> str:
    """A default as the README's tables show it."""
    if default is MISSING or default in ("", None, ()):
        return "-"
    if isinstance(default, bool):
        return "`true`" if default else "`false`"
    return f"`{default:g}`" if isinstance(default, float) else f"`{default}`"

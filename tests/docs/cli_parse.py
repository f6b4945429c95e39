"""Parsing documented `wq` command lines with the real CLI's own parser, without running them.

The click group is found from the `wq` console script's entry point, as the installed `wq`
finds it, so that no module path of the package is written here.
"""

import importlib
import importlib.metadata
import re
from collections.abc import Sequence
from functools import cache

import click


@cache
def wq_cli() -> click.Group:
    """The click group behind the `wq` console script."""
    [entry] = importlib.metadata.entry_points(group="console_scripts", name="wq")
    module = importlib.import_module(entry.module)
    [group] = [v for v in vars(module).values() if isinstance(v, click.Group)]
    return group


def parse_error(args: Sequence[str]) -> str | None:
    """Why `wq ARGS` would be refused before it runs (an unknown command or option, a
    missing or bad value, a missing required option), or None. Settings come from WQ_*
    variables too, as in the shell: the caller sets those the documented shell would."""
    if not args:
        return "no command"
    name, *rest = args
    command = wq_cli().get_command(click.Context(wq_cli()), name)
    if command is None:
        return f"no command {name!r}"
    try:
        command.make_context(f"wq {name}", list(rest)).close()
    except click.ClickException as exc:
        return exc.format_message()
    return None


def option_names(command: click.Command) -> set[str]:
    names = {"--help", "-h"}
    for param in command.params:
        if isinstance(param, click.Option):
            names.update(param.opts, param.secondary_opts)
    return names


def flag_errors(args: Sequence[str]) -> list[str]:
    """For commands written with placeholders (`wq digest --items-url URL`): the command and
    every flag exist. Arguments and values are not checked."""
    group = wq_cli()
    if not args or args[0].startswith("-"):
        unknown = [a for a in args if a.startswith("-") and a not in option_names(group)]
        return [f"no wq option {a!r}" for a in unknown]
    name, *rest = args
    command = group.get_command(click.Context(group), name)
    if command is None:
        return [f"no command {name!r}"]
    errors = []
    for arg in rest:
        if arg == "--":
            break
        flag = arg.split("=", 1)[0]
        if re.match(r"^--?[A-Za-z]", flag) and flag not in option_names(command):
            errors.append(f"no option {flag!r} of wq {name}")
    return errors

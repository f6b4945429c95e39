"""The command handler's templates: what an item puts into a command is data, never code.

Each argument of the command is a sandboxed Jinja2 template, rendered per item. What a
`{{ ... }}` inserts is text: a string as itself, any other value as compact JSON (`null`,
`true`, `1.5`, `{"src":"a.png"}`, the form of $WQ_ITEM), never a Python repr. Item text is
never read as a template.

Shell mode joins the arguments into one `/bin/sh -c` line and quotes every inserted value as
one shell word (shlex.quote). There is no filter to opt out: one would let item text run as
code; shell code that wants the raw item reads "$WQ_ITEM". Quoting only holds where the shell
reads a plain word (see shell_words), so each value is rendered as a slot first, the finished
line is checked while the values are still out of it, and only then are they put in: neither
a template's control flow nor a `{% filter %}` block can move a value into quotes or strip
its quoting (in shell mode a `{% filter %}` block leaves the values in it as they are:
filter the value itself, `{{ item|upper }}`). The same check runs on the command text at
start, so that `'{{ item }}'` is a ConfigError (exit 2) before any item runs, not a failure
of every item.
"""

import json
import re
import secrets
import shlex
from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath
from typing import Any

from jinja2 import StrictUndefined, TemplateError, pass_context
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

from wq.base.errors import ConfigError
from wq.work.shell_words import SLOT, misplaced, slot

# Programs whose `-c SCRIPT` argument is shell code.
SHELLS = frozenset({"sh", "bash", "dash", "ash", "ksh", "mksh", "zsh"})
# The render's slot state in the template context: a name no template can spell.
_SLOTS = "wq slots"
_SHELL_HINT = (
    "shell mode quotes each value as one word already, so write the tag bare "
    "(echo {{ item }}, not echo '{{ item }}'), or use \"$WQ_ITEM\" in shell code"
)


class RenderFailed(Exception):
    """This item cannot be put into the command; the message says why."""


def value_text(value: Any) -> str:
    """What `{{ ... }}` inserts: a string as itself, any other value as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_not_json)


def _not_json(value: Any) -> Any:
    """A value a template made that JSON has no type for: a list if it is a sequence or a set
    (`item.tags|map("upper")`, `item.keys()`), else its text."""
    if isinstance(value, Iterable) and not isinstance(value, bytes):
        return list(value)
    return str(value)


@pass_context  # also keeps Jinja from calling it at compile time for constant tags
def _insert(context: Context, value: Any) -> str:
    """Jinja's finalize: every `{{ ... }}` goes through here. In shell mode the value is kept
    aside and a slot stands in for it."""
    text = value_text(value)
    slots: tuple[str, list[str]] | None = context.get(_SLOTS)
    if slots is None:
        return text
    nonce, values = slots
    # A macro's or a block's output may hold slots already: this value holds their text,
    # and is quoted as a whole.
    text = SLOT.sub(lambda m: _own_or_as_is(m, slots), text)
    values.append(text)
    return slot(f"{nonce}:{len(values) - 1}")


def _own_or_as_is(match: "re.Match[str]", slots: tuple[str, list[str]]) -> str:
    own = _own(match.group(1), slots)
    return match.group(0) if own is None else own


def _own(ident: str, slots: tuple[str, list[str]]) -> str | None:
    """The value of a slot of this render, or None for anything else between NULs."""
    nonce, values = slots
    prefix, _, index = ident.partition(":")
    if prefix != nonce or not index.isdigit() or int(index) >= len(values):
        return None
    return values[int(index)]


class CommandTemplate:
    """The command of the command handler: `render(value)` gives the argv for one item."""

    def __init__(self, args: Sequence[str], shell: bool) -> None:
        self.shell = shell
        env = SandboxedEnvironment(undefined=StrictUndefined, finalize=_insert, autoescape=False)
        try:
            self.templates = [env.from_string(a) for a in args]
            texts, tags = _skeletons(env, args)
        except TemplateError as exc:
            raise ConfigError(f"command template is invalid: {exc}") from None
        if any("\x00" in a for a in args):
            raise ConfigError("command holds a NUL character, which no argument can carry")
        if shell:
            _check_shell_line(texts, tags)
        else:
            _check_no_inline_script(args, texts, tags)

    def render(self, value: Any) -> list[str]:
        # The nonce makes the slots of this render ones that no item text can forge; digits,
        # so that a `{% filter upper %}` block leaves them as they are.
        nonce = str(secrets.randbits(64))
        slots: tuple[str, list[str]] | None = (nonce, []) if self.shell else None
        try:
            args = [t.render({"item": value, _SLOTS: slots}) for t in self.templates]
        except TemplateError as exc:
            raise RenderFailed(f"command template failed for this item: {exc}") from None
        if slots is not None:
            args = ["/bin/sh", "-c", _fill_shell_line(" ".join(args), slots)]
        if any("\x00" in a for a in args):
            raise RenderFailed("a value holds a NUL character, which no argument can carry")
        return args


def _fill_shell_line(line: str, slots: tuple[str, list[str]]) -> str:
    problems = misplaced(line)
    if problems:
        where = next(iter(problems.values()))
        raise RenderFailed(f"shell command: a value would be {where}; {_SHELL_HINT}")

    def quoted(match: "re.Match[str]") -> str:
        text = _own(match.group(1), slots)
        if text is None:
            raise RenderFailed("shell command: a template block changed a value's slot")
        return shlex.quote(text)

    return SLOT.sub(quoted, line)


def _skeletons(env: SandboxedEnvironment, args: Sequence[str]) -> tuple[list[str], list[str]]:
    """Each argument's literal text with a slot for each `{{ ... }}` (the slot id: the tag's
    number in the command), and the tags' text; `{% ... %}` and `{# ... #}` emit nothing."""
    texts: list[str] = []
    tags: list[str] = []
    for source in args:
        parts: list[str] = []
        tag: list[str] | None = None
        for _, kind, text in env.lex(source):
            if kind == "variable_begin":
                tag = [text]
            elif tag is not None:
                tag.append(text)
                if kind == "variable_end":
                    parts.append(slot(str(len(tags))))
                    tags.append("".join(tag))
                    tag = None
            elif kind == "data":
                parts.append(text)
        texts.append("".join(parts))
    return texts, tags


def _check_shell_line(texts: list[str], tags: list[str]) -> None:
    problems = misplaced(" ".join(texts))
    if problems:
        ident, where = next(iter(problems.items()))
        raise ConfigError(f"shell command: {tags[int(ident)]} is {where}; {_SHELL_HINT}")


def _check_no_inline_script(args: Sequence[str], texts: list[str], tags: list[str]) -> None:
    """Without the shell, a value is one argument, as is. But `sh -c SCRIPT` runs its script
    argument as shell code, and a value pasted into it would run too."""
    index = _inline_script(args)
    found = SLOT.search(texts[index]) if index is not None else None
    if found is None:
        return
    raise ConfigError(
        f"command: {args[0]} -c runs its script as shell code, and {tags[int(found.group(1))]} "
        "in it would run as code too: pass the value as an argument of its own "
        '(["sh", "-c", "convert \\"$1\\" out.png", "sh", "{{ item }}"]), or use shell mode, '
        "which quotes every value"
    )


def _inline_script(args: Sequence[str]) -> int | None:
    """The index of the script argument when `args` run a shell with -c, else None."""
    if not args or PurePosixPath(args[0]).name not in SHELLS:
        return None
    has_c = False
    i = 1
    while i < len(args):
        arg = args[i]
        if arg in ("-o", "+o"):
            i += 2
            continue
        if arg == "--":
            i += 1
            break
        if len(arg) > 1 and arg[0] in "-+":
            has_c = has_c or (arg[0] == "-" and "c" in arg[1:])
            i += 1
            continue
        break
    return i if has_c and i < len(args) else None

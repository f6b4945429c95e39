"""The README's fenced code blocks, their markers, and the `wq` commands in them.

Every shell or YAML block of README.md says, in an HTML comment on the line before it (which
GitHub does not show), whether a test runs it:

    <!-- tested by tests/docs/test_readme_commands.py -->
    <!-- illustrative: it needs a cluster -->

`illustrative` blocks run nowhere (a cluster, a registry, a bucket); the `wq` commands in
every block are still parsed by the real CLI (test_readme_commands.py).
"""

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SHELL_LANGS = ("console", "bash", "sh", "shell")
# Blocks that must say whether a test runs them; `text` blocks show output.
MARKED_LANGS = (*SHELL_LANGS, "yaml", "")
MARKER = re.compile(
    r"^<!-- (?:tested by (?P<test>\S+)|(?P<illustrative>illustrative))(?:: .*)? -->$"
)
FENCE = re.compile(r"^```(\S*)\s*$")


@dataclass(frozen=True)
class Block:
    line: int  # of the opening fence, 1-based
    lang: str
    body: str
    marker: str | None  # the HTML comment before it, if it is a marker

    @property
    def tested_by(self) -> str | None:
        match = MARKER.match(self.marker or "")
        return match.group("test") if match else None

    @property
    def illustrative(self) -> bool:
        match = MARKER.match(self.marker or "")
        return bool(match and match.group("illustrative"))

    def __str__(self) -> str:
        first = self.body.splitlines()[0] if self.body else ""
        return f"README.md:{self.line} ```{self.lang} {first[:60]!r}"


@dataclass(frozen=True)
class Command:
    """One `wq` command of a shell block: its arguments after `wq`."""

    line: int
    args: tuple[str, ...]
    text: str  # the logical line it is in

    def __str__(self) -> str:
        return f"README.md:{self.line}: {self.text}"


def blocks(text: str) -> list[Block]:
    lines = text.splitlines()
    found: list[Block] = []
    start: int | None = None
    lang = ""
    for number, line in enumerate(lines, 1):
        match = FENCE.match(line)
        if not match:
            continue
        if start is None:
            start, lang = number, match.group(1)
            continue
        before = next((s.strip() for s in reversed(lines[: start - 1]) if s.strip()), "")
        marker = before if before.startswith("<!--") else None
        found.append(Block(start, lang, "\n".join(lines[start : number - 1]) + "\n", marker))
        start = None
    return found


def readme_blocks() -> list[Block]:
    return blocks(README.read_text(encoding="utf-8"))


def logical_lines(block: Block) -> list[tuple[int, str]]:
    """(line, text) of each command line: backslash continuations joined; in a console
    block with `$ ` prompts only those lines (the rest is output)."""
    out: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    prompts = block.lang == "console" and any(
        raw.startswith("$ ") for raw in block.body.splitlines()
    )
    for offset, raw in enumerate(block.body.splitlines(), 1):
        number = block.line + offset
        if pending is not None:
            line = pending[1] + " " + raw.strip()
            number = pending[0]
        elif prompts:
            if not raw.startswith("$ "):
                continue
            line = raw[2:].strip()
        else:
            line = raw.strip()
        if line.endswith("\\"):
            pending = (number, line[:-1].rstrip())
            continue
        pending = None
        out.append((number, line))
    return out


def commands_in(block: Block) -> list[Command]:
    """The `wq` commands of a shell block: each simple command (split at pipes, `;`, `&&`,
    `&`, parentheses and redirections) whose first word, after variable assignments, is wq."""
    found: list[Command] = []
    for number, line in logical_lines(block):
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        segment: list[str] = []
        for token in [*lexer, ";"]:
            if token and all(c in "();<>|&" for c in token):
                words = [w for w in segment if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", w)]
                if words and words[0] == "wq":
                    found.append(Command(number, tuple(words[1:]), line))
                segment = []
            else:
                segment.append(token)
    return found


def assignments_in(block: Block) -> dict[str, str]:
    """The WQ_* variables a block sets (`export WQ_RUN="$RUN"`): the shell sets them for the
    commands that follow. Their values are not expanded: only that they are set matters."""
    return dict(re.findall(r"\b(WQ_[A-Z_]+)=(\S*)", block.body))

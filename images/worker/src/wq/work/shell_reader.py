"""How the shell guard (wq.work.shell_words) reads a command line: character by character as
dash does, past line continuations, stepping over each slot (a stand-in for an inserted value)
and noting where it is when it is not in a plain word."""

import re

# A slot: the stand-in for one inserted value. Values themselves are never scanned.
SLOT = re.compile("\x00([^\x00]*)\x00")

BLANK = " \t"
OPERATOR = ";&|<>()\n"
HEREDOC = "in a here-document"
DIFFER = "which shells read differently"


def slot(ident: str) -> str:
    return f"\x00{ident}\x00"


class ShellReader:
    """The read position in a line and what was found so far; the grammar is the subclass's."""

    def __init__(self, line: str) -> None:
        self.s = line
        self.i = 0
        self.found: dict[str, str] = {}
        # Here-documents opened at the current command level whose bodies are still to come:
        # (delimiter, strip leading tabs, delimiter quoted).
        self.heredocs: list[tuple[str, bool, bool]] = []
        self.joining = True  # whether backslash-newline is a line continuation here: not in
        # single quotes or comments (nor in a here-document's body: body_line handles those)
        self.lost: str | None = None  # why every later slot is refused
        self.body = False  # in a here-document body: every slot is refused

    def skip_continuations(self, j: int) -> int:
        """Position `j`, or past the line continuations there where the shell removes them."""
        while self.joining and self.s.startswith("\\\n", j):
            j += 2
        return j

    def char(self) -> str:
        """The character at the read position (past line continuations); "" at the end."""
        self.i = self.skip_continuations(self.i)
        return self.s[self.i] if self.i < len(self.s) else ""

    def peek(self, offset: int) -> str:
        """The character `offset` places on from the read position, as the shell reads it."""
        j = self.skip_continuations(self.i)
        for _ in range(offset):
            j = self.skip_continuations(j + 1)
        return self.s[j] if j < len(self.s) else ""

    def advance(self, count: int) -> None:
        for _ in range(count):
            self.i = self.skip_continuations(self.i) + 1

    def word_ahead(self, word: str) -> bool:
        """Whether the unquoted word `word` starts at the read position."""
        # peek() gives "" at the end, and "" is in any string: the end also ends the word.
        ends = self.peek(len(word)) in BLANK + OPERATOR
        return ends and all(self.peek(n) == c for n, c in enumerate(word))

    def lose(self, what: str, why: str = DIFFER) -> None:
        """From here on, refuse every slot: after `what`, the scanner may be wrong."""
        if self.lost is None:
            self.lost = f"after {what}, {why}"

    def take_slot(self, where: str | None) -> None:
        """At a NUL: step over the slot, noting it if it is misplaced."""
        match = SLOT.match(self.s, self.i)
        if match is None:  # a lone NUL: the caller refuses those in the command text
            self.i += 1
            return
        where = HEREDOC if self.body else where or self.lost
        if where is not None:
            self.found.setdefault(match.group(1), where)
        self.i = match.end()

    def skip_escaped(self, where: str) -> None:
        """At a backslash: step over it and the character it escapes."""
        self.i += 1
        if self.i < len(self.s) and self.s[self.i] == "\x00":
            self.take_slot(where)
        elif self.i < len(self.s):
            self.i += 1

    def single(self, where: str, escapes: bool = False) -> None:
        self.joining = False
        while (c := self.char()) and c != "'":
            if c == "\x00":
                self.take_slot(where)
            elif c == "\\" and escapes:
                self.skip_escaped(where)
            else:
                self.i += 1
        self.i += 1 if c else 0
        self.joining = True

    def comment(self) -> None:
        # A comment ends at the first newline, even one inside a quoted value, or one after
        # a backslash.
        self.joining = False
        while (c := self.char()) and c != "\n":
            if c == "\x00":
                self.take_slot("in a comment")
            else:
                self.i += 1
        self.joining = True

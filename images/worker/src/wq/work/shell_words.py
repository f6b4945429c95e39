"""Where a value may go in a /bin/sh command line: only where the shell reads a plain word.

Shell mode quotes every value a command template inserts (shlex.quote): that makes the value
one literal word, but only where the shell reads a word. Inside quotes in the command text,
`'{{ item }}'` or `"{{ item }}"`, the value's own quotes would close the surrounding ones and
its text would run as code; in backquotes, `${...}`, `$((...))`, a comment or a here-document
the shell reads it again; after a backslash or a `$` its first quote changes meaning.

`misplaced` scans a command line in which every inserted value is a slot (NUL, an id, NUL) and
names each slot that is not in a plain word, with the reason. It is a scanner, not a parser:
it follows quotes, backslashes, `$(...)`, `${...}`, `$((...))`, backquotes, comments and
here-documents as POSIX sh reads them. Where it may lose track (a case pattern's `)` inside
`$(...)` ends the substitution early for it), it still tracks quotes, so it errs towards
refusing a slot, never towards passing one that is inside quotes.
"""

import re

# A slot: the stand-in for one inserted value. Values themselves are never scanned.
SLOT = re.compile("\x00([^\x00]*)\x00")

_BLANK = " \t"
_OPERATOR = ";&|<>()\n"


def slot(ident: str) -> str:
    return f"\x00{ident}\x00"


def misplaced(line: str) -> dict[str, str]:
    """The slots of `line` that are not in a plain shell word: {slot id: where they are}."""
    scanner = _Scanner(line)
    scanner.command(closer=None)
    return scanner.found


class _Scanner:
    def __init__(self, line: str) -> None:
        self.s = line
        self.i = 0
        self.found: dict[str, str] = {}
        self.heredocs: list[tuple[str, bool]] = []  # (delimiter, strip leading tabs)

    def peek(self, offset: int = 0) -> str:
        j = self.i + offset
        return self.s[j] if j < len(self.s) else ""

    def take_slot(self, where: str | None) -> None:
        """At a NUL: step over the slot, noting it if it is misplaced."""
        match = SLOT.match(self.s, self.i)
        if match is None:  # a lone NUL: the caller refuses those in the command text
            self.i += 1
            return
        if where is not None:
            self.found.setdefault(match.group(1), where)
        self.i = match.end()

    def skip_escaped(self, where: str) -> None:
        """At a backslash: step over it and the character it escapes."""
        self.i += 1
        if self.peek() == "\x00":
            self.take_slot(where)
        elif self.i < len(self.s):
            self.i += 1

    def dollar(self) -> bool:
        """At a `$` outside single quotes: enter what it opens; False if it opens nothing."""
        after = self.peek(1)
        if after == "(" and self.peek(2) == "(":
            self.i += 3
            self.arithmetic()
        elif after == "(":
            self.i += 2
            self.command(closer=")")
        elif after == "{":
            self.i += 2
            self.parameter()
        elif after == "'":
            self.i += 2
            self.single("inside $'...'", escapes=True)
        elif after == "\x00":
            self.i += 1
            self.take_slot("right after a $")
        else:
            return False
        return True

    # Contexts. Each starts after its opening and returns after its closing (or at the end).

    def command(self, closer: str | None) -> None:
        """A command list: the top level, or the inside of $(...)."""
        depth = 0  # open subshell parentheses inside $(...)
        word_start = True
        while self.i < len(self.s):
            c = self.s[self.i]
            if c == "\x00":
                self.take_slot(None)  # a plain word: the one place a quoted value is safe
                word_start = False
            elif c == "\\":
                self.skip_escaped("right after a backslash")
                word_start = False
            elif c == "'":
                self.i += 1
                self.single("inside single quotes")
                word_start = False
            elif c == '"':
                self.i += 1
                self.double()
                word_start = False
            elif c == "`":
                self.i += 1
                self.backquotes()
                word_start = False
            elif c == "$":
                if not self.dollar():
                    self.i += 1
                word_start = False
            elif c == "#" and word_start:
                self.comment()
            elif c == "\n":
                self.i += 1
                self.heredoc_bodies()
                word_start = True
            elif c == "<" and self.peek(1) == "<" and self.peek(2) != "<":
                self.i += 2
                self.heredoc_start()
                word_start = True
            elif c == "(":
                self.i += 1
                depth += 1
                word_start = True
            elif c == ")":
                self.i += 1
                if closer == ")" and depth == 0:
                    return
                depth = max(0, depth - 1)
                word_start = True
            else:
                self.i += 1
                word_start = c in _BLANK or c in _OPERATOR

    def single(self, where: str, escapes: bool = False) -> None:
        while self.i < len(self.s):
            c = self.s[self.i]
            if c == "\x00":
                self.take_slot(where)
            elif c == "\\" and escapes:
                self.skip_escaped(where)
            elif c == "'":
                self.i += 1
                return
            else:
                self.i += 1

    def double(self) -> None:
        where = "inside double quotes"
        while self.i < len(self.s):
            c = self.s[self.i]
            if c == "\x00":
                self.take_slot(where)
            elif c == "\\":
                self.skip_escaped(where)
            elif c == '"':
                self.i += 1
                return
            elif c == "`":
                self.i += 1
                self.backquotes()
            elif c == "$":
                if not self.dollar():
                    self.i += 1
            else:
                self.i += 1

    def backquotes(self) -> None:
        # The shell parses a backquoted command a second time after removing backslashes,
        # so no quoting put into it holds.
        where = "inside backquotes (use $(...))"
        while self.i < len(self.s):
            c = self.s[self.i]
            if c == "\x00":
                self.take_slot(where)
            elif c == "\\":
                self.skip_escaped(where)
            elif c == "`":
                self.i += 1
                return
            else:
                self.i += 1

    def parameter(self) -> None:
        where = "inside ${...}"
        while self.i < len(self.s):
            c = self.s[self.i]
            if c == "\x00":
                self.take_slot(where)
            elif c == "\\":
                self.skip_escaped(where)
            elif c == "}":
                self.i += 1
                return
            elif c == "'":
                self.i += 1
                self.single(where)
            elif c == '"':
                self.i += 1
                self.double()
            elif c == "`":
                self.i += 1
                self.backquotes()
            elif c == "$":
                if not self.dollar():
                    self.i += 1
            else:
                self.i += 1

    def arithmetic(self) -> None:
        # An arithmetic expression is expanded like a double-quoted string, then evaluated.
        where = "inside $((...))"
        depth = 0
        while self.i < len(self.s):
            c = self.s[self.i]
            if c == "\x00":
                self.take_slot(where)
            elif c == "\\":
                self.skip_escaped(where)
            elif c == "(":
                self.i += 1
                depth += 1
            elif c == ")":
                self.i += 1
                if depth > 0:
                    depth -= 1
                elif self.peek() == ")":
                    self.i += 1
                    return
                else:
                    return
            elif c == "'":
                self.i += 1
                self.single(where)
            elif c == '"':
                self.i += 1
                self.double()
            elif c == "`":
                self.i += 1
                self.backquotes()
            elif c == "$":
                if not self.dollar():
                    self.i += 1
            else:
                self.i += 1

    def comment(self) -> None:
        # A comment ends at the first newline, even one inside a quoted value.
        while self.i < len(self.s) and self.s[self.i] != "\n":
            if self.s[self.i] == "\x00":
                self.take_slot("in a comment")
            else:
                self.i += 1

    def heredoc_start(self) -> None:
        """After `<<`: read the delimiter word; the body starts after the next newline."""
        strip = self.peek() == "-"
        if strip:
            self.i += 1
        while self.peek() and self.peek() in _BLANK:
            self.i += 1
        delimiter = []
        quote = ""
        while self.i < len(self.s):
            c = self.s[self.i]
            if c == "\x00":
                self.take_slot("in a here-document's delimiter")
            elif quote:
                if c == quote:
                    quote = ""
                else:
                    delimiter.append(c)
                self.i += 1
            elif c in "'\"":
                quote = c
                self.i += 1
            elif c == "\\":
                self.i += 1
                delimiter.append(self.peek())
                self.i += 1
            elif c in _BLANK or c in _OPERATOR:
                break
            else:
                delimiter.append(c)
                self.i += 1
        self.heredocs.append(("".join(delimiter), strip))

    def heredoc_bodies(self) -> None:
        """After a newline: the bodies of the here-documents opened on the line before.
        A value in a body is read again by the shell (expanded, or ending the body early)."""
        pending, self.heredocs = self.heredocs, []
        for delimiter, strip in pending:
            while self.i < len(self.s):
                end = self.s.find("\n", self.i)
                end = len(self.s) if end < 0 else end
                line = self.s[self.i : end]
                self.i = min(end + 1, len(self.s))
                if (line.lstrip("\t") if strip else line) == delimiter:
                    break
                for match in SLOT.finditer(line):
                    self.found.setdefault(match.group(1), "in a here-document")

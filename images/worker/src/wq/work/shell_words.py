"""Where a value may go in a /bin/sh command line: only where the shell reads a plain word.

Shell mode quotes every value a command template inserts (shlex.quote): that makes the value
one literal word, but only where the shell reads a word. Inside quotes in the command text,
`'{{ item }}'` or `"{{ item }}"`, the value's own quotes would close the surrounding ones and
its text would run as code; in backquotes, `${...}`, `$((...))`, a comment or a here-document
the shell reads it again; after a backslash or a `$` its first quote changes meaning.

`misplaced` scans a command line in which every inserted value is a slot (NUL, an id, NUL) and
names each slot that is not in a plain word, with the reason. It is a scanner, not a parser:
it follows quotes, backslashes, line continuations, `$(...)`, `${...}`, `$((...))`,
backquotes, comments and here-documents as dash (/bin/sh on Debian and Ubuntu) reads them.
Where it may lose track of the shell, or where shells (dash, bash, busybox) read the text
differently, it refuses every slot from there on: after a `case` inside `$(...)` (a pattern's
`)` may end it), an `alias` command, `$'`, `$[`, `((`, a quote, a backquote or a lone `)`
inside `$((...))`, a `'` inside `${...}` within double quotes, a here-document left without
its body at the end of `$(...)`, a line continuation or a substitution spanning lines in a
here-document's body, or a `$` or backquote in its delimiter. So it errs towards refusing a
slot, never towards passing one. A plain word is all it vouches for: a command that runs its
arguments as code (`eval`, `sh -c`) runs a value in a plain word as code too.
"""

from wq.work.shell_reader import BLANK, HEREDOC, OPERATOR, SLOT, ShellReader, slot

__all__ = ["SLOT", "misplaced", "slot"]

_UNFOLLOWED = "which this check cannot follow"


def misplaced(line: str) -> dict[str, str]:
    """The slots of `line` that are not in a plain shell word: {slot id: where they are}."""
    scanner = _Scanner(line)
    scanner.command(closer=None)
    return scanner.found


class _Scanner(ShellReader):
    """Follows the shell's grammar over what ShellReader reads: commands, quotes, expansions
    and here-documents."""

    def dollar(self, quoted: bool) -> None:
        """At a `$` outside single quotes: step over it and enter what it opens, if anything.
        `quoted`: inside double quotes (or a here-document), where `$'` is a `$` and a `'`."""
        after = self.peek(1)
        if after == "(" and self.peek(2) == "(":
            self.advance(3)
            self.arithmetic()
        elif after == "(":
            self.advance(2)
            self.command(closer=")")
        elif after == "{":
            self.advance(2)
            self.parameter(quoted)
        elif after == "'":
            self.lose("a $'")  # dash has no $'...'; bash and busybox have
            self.advance(1 if quoted else 2)
            if not quoted:
                self.single("inside $'...'", escapes=True)
        elif after == "\x00":
            self.advance(1)
            self.take_slot("right after a $")
        elif after == "[":
            self.lose("a $[", "which bash reads as arithmetic")
            self.advance(1)
        else:  # $$ is one parameter: its second $ opens nothing
            self.advance(2 if after == "$" else 1)

    # Contexts. Each starts after its opening and returns after its closing (or at the end).

    def command(self, closer: str | None) -> None:
        """A command list: the top level, or the inside of $(...)."""
        # Here-documents opened in $(...) take their bodies from its own lines.
        outer, self.heredocs = self.heredocs, []
        depth = 0  # open subshell parentheses inside $(...)
        word_start = True
        while c := self.char():
            if word_start and c in "ac":
                if self.word_ahead("alias"):
                    self.lose("an alias command", "which changes how sh reads what follows")
                elif closer and self.word_ahead("case"):
                    self.lose("a case inside $(...)", _UNFOLLOWED)  # a pattern's ) may end it
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
                self.dollar(quoted=False)
                word_start = False
            elif c == "#" and word_start:
                self.comment()
            elif c == "\n":
                self.i += 1
                self.heredoc_bodies()
                word_start = True
            elif c == "<" and self.peek(1) == "<" and self.peek(2) != "<":
                self.advance(2)
                self.heredoc_start()
                word_start = True
            elif c == "(":
                if self.peek(1) == "(":
                    self.lose("((", "which bash reads as arithmetic (write ( ( for subshells)")
                self.i += 1
                depth += 1
                word_start = True
            elif c == ")":
                self.i += 1
                if closer == ")" and depth == 0:
                    break
                depth = max(0, depth - 1)
                word_start = True
            else:
                self.i += 1
                word_start = c in BLANK or c in OPERATOR
        if self.heredocs and closer:
            self.lose("a here-document without its body in $(...)")
        self.heredocs = outer

    def expansion(self, c: str, where: str, quoted: bool) -> bool:
        """At a slot, backslash, backquote or `$` inside quotes or an expansion: handle it;
        False if `c` is none of these."""
        if c == "\x00":
            self.take_slot(where)
        elif c == "\\":
            self.skip_escaped(where)
        elif c == "`":
            self.i += 1
            self.backquotes()
        elif c == "$":
            self.dollar(quoted)
        else:
            return False
        return True

    def double(self) -> None:
        while (c := self.char()) and c != '"':
            if not self.expansion(c, "inside double quotes", quoted=True):
                self.i += 1
        self.i += 1 if c else 0

    def backquotes(self) -> None:
        # The shell parses a backquoted command a second time after removing backslashes,
        # so no quoting put into it holds.
        where = "inside backquotes (use $(...))"
        while (c := self.char()) and c != "`":
            if c == "\x00":
                self.take_slot(where)
            elif c == "\\":
                self.skip_escaped(where)
            else:
                self.i += 1
        self.i += 1 if c else 0

    def parameter(self, quoted: bool) -> None:
        """Inside ${...}; `quoted`: within double quotes (or a here-document)."""
        where = "inside ${...}"
        while (c := self.char()) and c != "}":
            if c == "'" and quoted:
                # Literal in "${x-'...'}", a quote in "${x#'...'}"; dash and bash differ.
                self.lose("a ' inside ${...} within double quotes")
                self.i += 1
            elif c == "'":
                self.i += 1
                self.single(where)
            elif c == '"':
                self.i += 1
                self.double()
            elif not self.expansion(c, where, quoted):
                self.i += 1
        self.i += 1 if c else 0

    def arithmetic(self) -> None:
        # An arithmetic expression is expanded like a double-quoted string, then evaluated.
        # Quotes and backquotes in it, and an unbalanced `)` (bash may read `$((...)...)` as
        # `$( (...)...)`), are read differently by dash and bash: the scanner follows dash.
        depth = 0
        while c := self.char():
            if c in "'\"`":
                self.lose("a quote or backquote inside $((...))")
            if c == ")" and depth == 0:
                self.i += 1
                if self.char() == ")":
                    self.i += 1
                    return
                self.lose("an unbalanced ) inside $((...))")  # dash reads it as text
            elif not self.expansion(c, "inside $((...))", quoted=True):
                if c in "()":
                    depth += 1 if c == "(" else -1
                self.i += 1

    def heredoc_start(self) -> None:
        """After `<<`: read the delimiter word; the body starts after the next newline."""
        where = "in a here-document's delimiter"
        strip = self.char() == "-"
        if strip:
            self.i += 1
        while self.char() and self.char() in BLANK:
            self.i += 1
        text: list[str] = []
        quote = ""
        quoted = False
        while True:
            self.joining = quote != "'"
            c = self.char()
            if not c or (not quote and (c in BLANK or c in OPERATOR)):
                break
            if c == "\x00":
                self.take_slot(where)
                continue
            self.i += 1
            if c == quote:
                quote = ""
            elif quote == "'":
                text.append(c)
            elif c == "\\":
                quoted = True
                after = self.s[self.i : self.i + 1]
                if after == "\x00":
                    self.take_slot(where)
                elif quote and after not in '"\\$`':  # in double quotes it escapes only these
                    text.append(c)
                else:
                    text.append(after)
                    self.i += len(after)
            elif not quote and c in "'\"":
                quote = c
                quoted = True
            else:
                if c in "$`":
                    self.lose("a $ or backquote in a here-document's delimiter", _UNFOLLOWED)
                text.append(c)
        self.joining = True
        self.heredocs.append(("".join(text), strip, quoted))

    def heredoc_bodies(self) -> None:
        """After a newline: the bodies of the here-documents opened on the line before.
        A value in a body is read again by the shell (expanded, or ending the body early)."""
        pending, self.heredocs = self.heredocs, []
        for delimiter, strip, quoted in pending:
            while self.i < len(self.s):
                end = self.s.find("\n", self.i)
                end = len(self.s) if end < 0 else end
                line = self.s[self.i : end]
                if (line.lstrip("\t") if strip else line) == delimiter:
                    self.i = min(end + 1, len(self.s))
                    break
                if quoted:  # the body is literal text
                    for match in SLOT.finditer(line):
                        self.found.setdefault(match.group(1), HEREDOC)
                    self.i = min(end + 1, len(self.s))
                else:
                    self.body_line()

    def body_line(self) -> None:
        """A line of a body with an unquoted delimiter, expanded as in double quotes. dash
        looks for the delimiter only at the start of a line of the body itself: not after a
        line continuation (bash does), nor inside a $(...) or backquotes that go on."""
        outer, self.body = self.body, True
        while True:
            if self.s.startswith("\\\n", self.i):
                self.lose("a line continuation in a here-document")
            c = self.char()
            if not c or c == "\n":
                break
            start = self.i
            if not self.expansion(c, HEREDOC, quoted=True):
                self.i += 1
            if c in "$`" and "\n" in self.s[start : self.i]:
                self.lose("a substitution spanning lines in a here-document", _UNFOLLOWED)
        self.i += 1 if c else 0
        self.body = outer

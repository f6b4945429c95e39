#!/usr/bin/env python3
"""Checks that every path and anchor the given files refer to exists, so that the docs
cannot send a reader to a file that moved or a section that was renamed. `make lint` runs it
on README.md, chart/README.md, chart/values.yaml and chart/templates/NOTES.txt.

    scripts/check_links.py [--root DIR] FILE...

Two kinds of reference:
  - markdown links `[text](path#anchor)` (and `![image](path)`), outside fenced code blocks
    of markdown files (in a YAML file's comments too: helm-docs makes them markdown):
    the path relative to the file (empty: the file itself), the anchor against the GitHub
    slugs of the target's headings (headings in code blocks are not headings). Links with a
    scheme (https:, mailto:) are not followed.
  - repository paths named in prose, comments or code (`bench/chaos.py`, `docs/x.md`): a
    word that starts with one of the repository's top-level directories, `docs/`, or (from a
    file in a subdirectory) one of that directory's entries. It must exist relative to the
    file, the root, or the worker package's project and source directories (`src/wq/store/lua/`,
    `wq/base/options.py`). Paths that git ignores are outputs (`bench/results/`) and are skipped.

Prints one line per broken reference, FILE:LINE: ..., and exits 1 if there is any.
"""

import argparse
import re
import subprocess
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path

# Where module paths of the package and its project are written from (`wq/base/options.py`).
PACKAGE_BASES = ("images/worker", "images/worker/src")
# A directory docs are commonly moved to or from: a mention of it is checked even while the
# repository has none (the reason this script exists: docs/autoscale.md had gone).
ALWAYS_ROOTS = ("docs", "wq", "src")
FENCE = re.compile(r"^\s*(```|~~~)")
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
# A relative path: words of letters, digits, '.', '_' or '-' joined by '/', not part of a URL,
# a host name (`k8s.io/x`), an absolute path or a longer word.
PATH_WORD = re.compile(r"(?<![\w.:/~@$-])(\.?[\w-][\w.-]*(?:/[\w.-]+)*/?)")


@dataclass(frozen=True)
class Problem:
    file: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its rendered text, lower case, without punctuation
    other than '-' and '_', spaces made '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = re.sub(r"<[^>]+>", "", text).lower()
    kept = "".join(c for c in text if c in "-_ " or unicodedata.category(c)[0] in ("L", "N", "M"))
    return kept.replace(" ", "-")


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of the lines outside fenced code blocks."""
    out, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            out.append((number, line))
    return out


def anchors(path: Path) -> set[str]:
    """The anchors of a markdown file: its headings' slugs (repeated ones numbered, as
    GitHub does) and explicit <a name/id> anchors."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        found.update(HTML_ANCHOR.findall(line))
        match = HEADING.match(line)
        if not match:
            continue
        slug = github_slug(match.group(2))
        found.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return found


def check_link(file: Path, line: int, target: str) -> Problem | None:
    if SCHEME.match(target):
        return None
    path_part, _, anchor = target.partition("#")
    dest = (file.parent / path_part).resolve() if path_part else file
    if not dest.exists():
        return Problem(file, line, f"link {target!r}: no such file or directory")
    if anchor and dest.suffix == ".md" and anchor not in anchors(dest):
        return Problem(file, line, f"link {target!r}: {dest.name} has no heading #{anchor}")
    return None


class Paths:
    """Resolves repository paths mentioned in text."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.top = {p.name for p in root.iterdir()} | set(ALWAYS_ROOTS)
        self.top.discard(".git")

    def roots_for(self, file: Path) -> set[str]:
        """First words that make a path: the root's entries, and the file's own directory's."""
        roots = set(self.top)
        if file.parent != self.root:
            roots |= {p.name for p in file.parent.iterdir()}
        return roots

    def exists(self, file: Path, mention: str) -> bool:
        bases = [file.parent, self.root, *(self.root / b for b in PACKAGE_BASES)]
        return any((base / mention).exists() for base in bases) or self.ignored(mention)

    def ignored(self, mention: str) -> bool:
        """Git ignores it: an output of the build (bench/results/, dist/, .cache/)."""
        result = subprocess.run(
            ["git", "-C", str(self.root), "check-ignore", "-q", "--no-index", mention],
            capture_output=True,
            check=False,
        )
        return result.returncode == 0


def check_file(file: Path, paths: Paths) -> list[Problem]:
    text = file.read_text(encoding="utf-8")
    problems: list[Problem] = []
    # Comments of values.yaml become chart/README.md's table: links there are markdown too.
    lines = prose_lines(text) if file.suffix == ".md" else enumerate(text.splitlines(), 1)
    for number, line in lines:
        # Inline code shows syntax, not links: `[x](y)` in backquotes is not followed.
        for target in LINK.findall(re.sub(r"`[^`]*`", "", line)):
            problem = check_link(file, number, target)
            if problem:
                problems.append(problem)
    roots = paths.roots_for(file)
    for number, line in enumerate(text.splitlines(), 1):
        line_without_links = LINK.sub(" ", line)
        for word in PATH_WORD.findall(line_without_links):
            first, _, rest = word.partition("/")
            if not rest or first not in roots:
                continue
            mention = word.rstrip(".")  # the end of a sentence
            if not paths.exists(file, mention):
                message = f"path {mention!r}: no such file or directory"
                problems.append(Problem(file, number, message))
    return sorted(problems, key=lambda p: p.line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument(
        "--root", type=Path, default=Path(__file__).resolve().parent.parent, help="the repository"
    )
    args = parser.parse_args()
    root = args.root.resolve()
    paths = Paths(root)
    problems: list[Problem] = []
    for name in args.files:
        file = (root / name).resolve()
        if not file.is_file():
            problems.append(Problem(name, 0, "no such file to check"))
            continue
        problems.extend(check_file(file, paths))
    for problem in problems:
        print(str(problem).replace(f"{root}/", ""), file=sys.stderr)
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()

"""The README's commands work as written.

- Every shell and YAML block says whether a test runs it (tests/docs/readme.py has the
  markers); a test named there reads the README.
- Every `wq` command in every shell block parses with the real CLI: the command, each
  option, the option values and the required options (the block's own WQ_* variables
  count, as in the shell). Every `wq ...` in backquotes, in the README and the chart's docs,
  names a real command and real options.
- The blocks marked as tested here run, line by line, through bash and the real `wq`, and
  print what the README shows (values that change from run to run aside).
"""

import json
import re
from pathlib import Path

import pytest

from tests.docs.cli_parse import flag_errors, parse_error
from tests.docs.conftest import sh
from tests.docs.readme import (
    MARKED_LANGS,
    ROOT,
    SHELL_LANGS,
    Block,
    assignments_in,
    blocks,
    commands_in,
    readme_blocks,
)

THIS = Path(__file__).resolve().relative_to(ROOT).as_posix()
# The blocks this module runs, by their first command.
FIRST_TASTE = "$ wq run --workers 3 apple banana cherry"
WORDS = "$ wq run --run words --max-attempts 2 \\"
# What `make venv` has done already: the package installed (editable) beside pytest.
INSTALLED = "pip install ./images/worker"
# Documents whose `wq ...` in backquotes must name real commands and options.
PROSE = ("README.md", "chart/README.md", "chart/values.yaml", "chart/templates/NOTES.txt")
# Fields of a report record that differ from run to run.
VOLATILE = ("duration_s", "worker", "finished_at")


def block_with(first_line: str) -> Block:
    [block] = [b for b in readme_blocks() if first_line in b.body.splitlines()]
    return block


def test_every_block_says_whether_a_test_runs_it() -> None:
    unmarked = [
        str(b)
        for b in readme_blocks()
        if b.lang in MARKED_LANGS and not (b.tested_by or b.illustrative)
    ]
    assert not unmarked, (
        "blocks without '<!-- tested by PATH -->' or '<!-- illustrative: why -->' on the line "
        "before them:\n" + "\n".join(unmarked)
    )


def test_the_tests_named_by_blocks_read_the_readme() -> None:
    for block in readme_blocks():
        if block.tested_by:
            path = ROOT / block.tested_by
            assert path.is_file(), f"{block}: {block.tested_by} does not exist"
            assert "README" in path.read_text(encoding="utf-8"), (
                f"{block}: {block.tested_by} does not read the README"
            )


def test_the_blocks_marked_as_run_here_are_run_here() -> None:
    marked = {b.line for b in readme_blocks() if b.tested_by == THIS}
    assert marked == {block_with(FIRST_TASTE).line, block_with(WORDS).line}


def test_every_wq_command_of_a_block_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    checked, refused = 0, []
    for block in readme_blocks():
        if block.lang not in SHELL_LANGS:
            continue
        with monkeypatch.context() as m:
            for name, value in assignments_in(block).items():
                m.setenv(name, value or "set-by-the-block")
            for command in commands_in(block):
                checked += 1
                error = parse_error(command.args)
                if error:
                    refused.append(f"{command}\n    {error}")
    assert not refused, "commands the real wq refuses:\n" + "\n".join(refused)
    assert checked >= 10, f"only {checked} wq commands found: is the README parsed right?"


def backquoted_wq_commands(text: str) -> list[tuple[int, list[str]]]:
    """(line, arguments after `wq`) of each `wq ...` in backquotes, also in a pipe."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for span in re.findall(r"`([^`]+)`", line):
            for piece in re.split(r"\\?\|", span):
                words = piece.split()
                if words[:1] == ["wq"] and len(words) > 1 and not words[1].isupper():
                    found.append((number, words[1:]))
    return found


def test_every_wq_command_in_backquotes_names_real_options() -> None:
    checked, wrong = 0, []
    for name in PROSE:
        for number, args in backquoted_wq_commands((ROOT / name).read_text(encoding="utf-8")):
            checked += 1
            wrong += [f"{name}:{number}: wq {' '.join(args)}: {e}" for e in flag_errors(args)]
    assert not wrong, "\n".join(wrong)
    assert checked >= 50, f"only {checked} commands in backquotes found"


BROKEN = """\
Seed it:

<!-- illustrative: a bucket -->
```console
$ wq seed --run r1 --items-uri s3://bucket/items.jsonl
$ wq sed --run r1 --range 0:10
$ wq status --run r1 --check --watch
```

```bash
wq report --format xml
```
"""


def test_a_renamed_option_an_unknown_command_and_an_unmarked_block_are_caught() -> None:
    """What the checks above see in a README whose commands have drifted."""
    [first, second] = blocks(BROKEN)
    assert (first.illustrative, second.illustrative, second.tested_by) == (True, False, None)
    errors = [parse_error(c.args) for c in commands_in(first) + commands_in(second)]
    assert errors[0] is not None
    assert "No such option" in errors[0]
    assert "--items-uri" in errors[0]
    assert errors[1] == "no command 'sed'"
    assert errors[2] is None
    assert errors[3] is not None
    assert "'xml' is not one of" in errors[3]
    assert flag_errors(["seed", "--items-uri", "URL"]) == ["no option '--items-uri' of wq seed"]
    assert backquoted_wq_commands("`wq seed --items-uri URL` or `make | wq digest --range R`") == [
        (1, ["seed", "--items-uri", "URL"]),
        (1, ["digest", "--range", "R"]),
    ]


def normalized(line: str) -> str:
    """A line of output without what changes from run to run: a report record's timings and
    worker, a local run's time stamp."""
    if line.startswith("{"):
        record = json.loads(line)
        return json.dumps({k: v for k, v in record.items() if k not in VOLATILE})
    return re.sub(r"local-\d{8}-\d{6}", "local-TIMESTAMP", line.rstrip())


def console_session(block: Block) -> list[tuple[int, str, list[str]]]:
    """(line, command, the output shown after it) of each `$` command of a console block."""
    session: list[tuple[int, str, list[str]]] = []
    continued = False
    for offset, raw in enumerate(block.body.splitlines(), 1):
        if continued:
            number, command, shown = session[-1]
            session[-1] = (number, command[:-1].rstrip() + " " + raw.strip(), shown)
        elif raw.startswith("$ "):
            session.append((block.line + offset, raw[2:].strip(), []))
        elif session:
            session[-1][2].append(raw)
        continued = bool(session) and session[-1][1].endswith("\\")
    return session


def run_console_block(block: Block, cwd: Path, env: dict[str, str] | None = None) -> None:
    """Runs each `$` line of the block, in order, as typed; each line of output the README
    shows (but `...`) must be among the lines the command printed."""
    for number, command, shown in console_session(block):
        if command == INSTALLED:
            continue
        result = sh(command, cwd, env)
        # Exit 2 is a refused command line or setting; a run with dead items may exit 3,
        # and its `status --check` 1.
        assert result.returncode != 2, f"README.md:{number}: {command}\n{result.stderr}"
        printed = {normalized(line) for line in result.stdout.splitlines()}
        missing = [s for s in shown if s != "..." and normalized(s) not in printed]
        assert not missing, (
            f"README.md:{number}: {command}\nshown in the README, not printed:\n"
            + "\n".join(missing)
            + f"\nprinted:\n{result.stdout}"
        )


def test_a_first_taste(tmp_path: Path) -> None:
    """`wq run` with its own redis-server, as the README's first taste shows."""
    run_console_block(block_with(FIRST_TASTE), tmp_path)


def test_what_happened_to_every_item(tmp_path: Path, redis_url: str) -> None:
    """The report, check and digest example, on a Redis that outlives `wq run`."""
    (tmp_path / "a.txt").write_text("three words here\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("two words\n", encoding="utf-8")
    run_console_block(block_with(WORDS), tmp_path, {"WQ_REDIS_URL": redis_url})

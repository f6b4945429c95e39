"""Hostile item sources are refused with one line naming the limit, at once and in little
memory: deep nesting in every structured format, and YAML aliases that expand to too much.
Values within the limits come through exactly as before (shared anchors, mappings, nesting)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.cli_runner import wq_argv, wq_env
from wq.base.errors import ConfigError
from wq.seed.bounded import MAX_DEPTH, MAX_EXPANDED
from wq.seed.items_source import read_items_file

# The "billion laughs" of YAML: ten levels of ten aliases each, 533 bytes.
ALIAS_BOMB = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(f"{chr(98 + i)}: &{chr(98 + i)} [{','.join([f'*{chr(97 + i)}'] * 9)}]" for i in range(8)),
        f"items: [*{chr(97 + 8)}]",
    ]
)


def nested_json(depth: int) -> str:
    return "[" * depth + '"x"' + "]" * depth


def nested_yaml(depth: int) -> str:
    return "- " + "[" * depth + "x" + "]" * depth + "\n"


def decoded(path: Path, fmt: str | None = None) -> list[object]:
    return [json.loads(i) for i in read_items_file(path, fmt)]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("deep.json", "[" + nested_json(MAX_DEPTH + 1) + "]"),
        ("deep.jsonl", nested_json(MAX_DEPTH + 1) + "\n"),
        ("deep.yaml", nested_yaml(MAX_DEPTH + 1)),
        ("values.json", '{"items": [' + nested_json(MAX_DEPTH + 1) + "]}"),
        ("values.yaml", "items:\n  " + nested_yaml(MAX_DEPTH + 1)),
    ],
)
def test_one_level_past_the_depth_limit_is_refused(name: str, text: str, tmp_path: Path) -> None:
    f = tmp_path / name
    f.write_text(text)
    with pytest.raises(ConfigError, match=rf"nested more than {MAX_DEPTH} levels"):
        read_items_file(f)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("deep.json", "[" + nested_json(MAX_DEPTH) + "]"),
        ("deep.jsonl", nested_json(MAX_DEPTH) + "\n"),
        ("deep.yaml", nested_yaml(MAX_DEPTH)),
    ],
)
def test_values_at_the_depth_limit_come_through(name: str, text: str, tmp_path: Path) -> None:
    f = tmp_path / name
    f.write_text(text)
    (item,) = decoded(f)
    depth = 0
    while isinstance(item, list):
        (item,) = item
        depth += 1
    assert (depth, item) == (MAX_DEPTH, "x")


def test_yaml_anchors_within_the_limits_are_values_as_before(tmp_path: Path) -> None:
    f = tmp_path / "items.yaml"
    f.write_text(
        "- &base {src: a.png, opts: [1, 2]}\n- *base\n- {<<: *base, src: b.png}\n- &s text\n- *s\n"
    )
    base = {"src": "a.png", "opts": [1, 2]}
    assert decoded(f) == [base, base, {"src": "b.png", "opts": [1, 2]}, "text", "text"]


def test_yaml_aliases_may_expand_up_to_the_limit(tmp_path: Path) -> None:
    # 4 levels of 10 aliases: 10,000 strings and 1,111 lists, under MAX_EXPANDED.
    lines = ["- &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"- &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 4)]
    f = tmp_path / "items.yaml"
    f.write_text("\n".join(lines) + "\n")
    assert len(json.dumps(decoded(f)[-1])) > 10_000


def test_an_alias_bomb_is_refused_naming_the_limit(tmp_path: Path) -> None:
    f = tmp_path / "bomb.yaml"
    f.write_text(ALIAS_BOMB)
    assert len(ALIAS_BOMB) < 600
    with pytest.raises(ConfigError, match=rf"expands to more than {MAX_EXPANDED} values"):
        read_items_file(f)


@pytest.mark.parametrize(
    ("text", "message"),
    [("- *nowhere\n", "names no anchor"), ("- &a [1, *a]\n", "inside its anchor")],
)
def test_bad_aliases_are_one_line(text: str, message: str, tmp_path: Path) -> None:
    f = tmp_path / "items.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=message):
        read_items_file(f)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("bomb.yaml", ALIAS_BOMB),
        ("deep.json", nested_json(10_000)),
        ("deep.jsonl", nested_json(10_000)),
        ("deep.yaml", nested_yaml(10_000)),
        ("deeper.json", "[" + nested_json(1_000_000) + "]"),
    ],
)
def test_wq_digest_refuses_hostile_sources_in_one_line(
    name: str, text: str, tmp_path: Path
) -> None:
    """The real command, as the seeder runs it: exit 2, one line, no traceback; the child's
    peak memory stays that of an ordinary run (the refusal is bounded, not a lucky timeout)."""
    f = tmp_path / name
    f.write_text(text)
    probe = (
        "import resource, subprocess, sys\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "sys.stdout.write(p.stderr)\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "sys.stdout.write(f'\\n{p.returncode} {peak}\\n')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *wq_argv("digest", "--items-file", str(f))],
        env=wq_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    message, last = done.stdout.rstrip("\n").rsplit("\n", 1)
    code, peak_kib = (int(x) for x in last.split())
    assert code == 2, done.stdout
    assert message.strip().count("\n") == 0, message
    assert message.startswith("wq: error: "), message
    assert "Traceback" not in message
    assert "nested more than" in message or "expands to more than" in message
    assert peak_kib < 200 * 1024, f"peak RSS {peak_kib} KiB"

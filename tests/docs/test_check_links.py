"""scripts/check_links.py, which `make lint` runs on the docs, finds what it is for: links to
files that are gone, anchors of sections that are not there, and repository paths named in
prose that do not exist; and it lets correct references and outputs of the build pass."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECKER = ROOT / "scripts" / "check_links.py"

README = """\
# Project

See [the guide](guide.md#getting-started), [the second setup](guide.md#setup-1) and
[how it works](#how-the-queue-works), or [a section that went](#autoscaling).
The old [autoscale page](docs/autoscale.md) and [a lost heading](guide.md#upgrades).
Links in code are syntax, not links: `[x](nowhere.md)`. So is a URL: [site](https://example.com/x).
Run `bench/tool.py`, then read bench/results/out.md (an output: git ignores it); not
docs/removed.md, nor `scripts/gone.sh`.

## How the queue works

```bash
# Upgrades   (a comment in a code block, not a heading)
[y](missing-in-code.md)
```
"""

GUIDE = """\
# Guide

## Getting started

## Setup

## Setup
"""

VALUES = """\
# -- Size the Job. See docs/autoscale.md.
autoscale: {}
# -- Its dashboard, dashboards/wq.json here, as [the README](../README.md#dashboard) says.
dashboard: {}
"""


def check(root: Path, *files: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECKER), "--root", str(root), *files],
        capture_output=True,
        text=True,
        check=False,
    )


def make_repo(root: Path) -> None:
    (root / "README.md").write_text(README, encoding="utf-8")
    (root / "guide.md").write_text(GUIDE, encoding="utf-8")
    (root / "bench").mkdir()
    (root / "bench" / "tool.py").write_text("", encoding="utf-8")
    (root / "scripts").mkdir()
    chart = root / "chart"
    (chart / "dashboards").mkdir(parents=True)
    (chart / "dashboards" / "wq.json").write_text("{}", encoding="utf-8")
    (chart / "values.yaml").write_text(VALUES, encoding="utf-8")
    (root / ".gitignore").write_text("/bench/results/\n", encoding="utf-8")
    subprocess.run(["git", "init", "-q", str(root)], check=True)


def test_reports_each_broken_link_anchor_and_path(tmp_path: Path) -> None:
    make_repo(tmp_path)
    result = check(tmp_path, "README.md", "chart/values.yaml")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "README.md:4: link '#autoscaling': README.md has no heading #autoscaling",
        "README.md:5: link 'docs/autoscale.md': no such file or directory",
        "README.md:5: link 'guide.md#upgrades': guide.md has no heading #upgrades",
        "README.md:8: path 'docs/removed.md': no such file or directory",
        "README.md:8: path 'scripts/gone.sh': no such file or directory",
        "chart/values.yaml:1: path 'docs/autoscale.md': no such file or directory",
        "chart/values.yaml:3: link '../README.md#dashboard': README.md has no heading #dashboard",
    ]


def test_passes_once_they_are_fixed(tmp_path: Path) -> None:
    make_repo(tmp_path)
    readme = tmp_path / "README.md"
    fixed = (
        readme.read_text(encoding="utf-8")
        .replace("(#autoscaling)", "(#project)")
        .replace("(docs/autoscale.md)", "(guide.md)")
        .replace("guide.md#upgrades", "guide.md#setup")
        .replace("docs/removed.md, nor `scripts/gone.sh`", "bench/")
    )
    readme.write_text(fixed, encoding="utf-8")
    values = tmp_path / "chart" / "values.yaml"
    values.write_text(
        VALUES.replace("docs/autoscale.md", "[it](../README.md#how-the-queue-works)").replace(
            "#dashboard", "#project"
        ),
        encoding="utf-8",
    )
    result = check(tmp_path, "README.md", "chart/values.yaml")
    assert (result.returncode, result.stderr) == (0, "")


def test_a_file_to_check_that_is_missing_is_an_error(tmp_path: Path) -> None:
    make_repo(tmp_path)
    result = check(tmp_path, "README.md", "docs/index.md")
    assert result.returncode == 1
    assert "docs/index.md:0: no such file to check" in result.stderr

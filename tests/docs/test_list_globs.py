"""Every listing glob the docs show (`wq seed --list`, the chart's `itemsList`) works as they
say: the exact pattern, with its bucket made a local directory (`s3://bucket/x/*.jpg` ->
`file:///tmp/.../bucket/x/*.jpg`), is given to the real `wq seed --list`, and the run's
items are exactly the files the pattern names by the README's rules: `*` within one level,
`**` as a whole level for any number of levels, none included. `wq report` reads them back.
"""

import itertools
import json
import re
from pathlib import Path

import pytest

from tests.docs.conftest import sh

ROOT = Path(__file__).resolve().parents[2]

DOCS = ("README.md", "chart/values.yaml", "chart/README.md", "chart/templates/NOTES.txt")
GLOB_URL = re.compile(r"\b(?:s3|gs|gcs|file)://[^\s`'\")]*\*[^\s`'\")]*")


def documented_globs() -> list[str]:
    """Each documented pattern once: `s3://b/x/*.jpg` and `gs://b/x/*.jpg` are one here."""
    found = {
        url.split("://", 1)[1]: url
        for name in DOCS
        for url in GLOB_URL.findall((ROOT / name).read_text(encoding="utf-8"))
    }
    return sorted(found.values())


def expand(pattern: str) -> list[str]:
    """Paths the pattern must match: each `*` in a name made `a` or `b`, each `**` no level,
    one or two."""
    choices = []
    for part in pattern.split("/"):
        if part == "**":
            choices.append(["", "d1", "d1/d2"])
        elif "*" in part:
            choices.append([part.replace("*", "a"), part.replace("*", "b")])
        else:
            choices.append([part])
    return sorted({"/".join(p for p in combo if p) for combo in itertools.product(*choices)})


def decoys(pattern: str) -> list[str]:
    """Paths near the pattern that it must not match: another extension, a sibling of the
    bucket's first level, and (without `**`) one level deeper than a `*` reaches."""
    parts = pattern.split("/")
    first = expand(pattern)[0].split("/")
    out = ["/".join([first[0], "elsewhere", *first[2:]])]
    if re.fullmatch(r"\*\.\w+", parts[-1]):
        out.append("/".join([*first[:-1], "a.decoy"]))
    if "**" not in parts:
        out.append("/".join([*first[:-1], "deeper", first[-1]]))
    return out


def test_the_docs_show_listing_globs() -> None:
    globs = documented_globs()
    assert len(globs) >= 4, globs
    assert any("/**/" in g for g in globs), "no glob across levels is documented"


@pytest.mark.parametrize("url", documented_globs())
def test_a_documented_glob_lists_what_it_says(url: str, tmp_path: Path, redis_url: str) -> None:
    pattern = url.split("://", 1)[1]
    matching, not_matching = expand(pattern), decoys(pattern)
    assert not set(matching) & set(not_matching)
    for path in matching + not_matching:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("x", encoding="utf-8")
    env = {"WQ_REDIS_URL": redis_url, "WQ_RUN": f"list-{tmp_path.name}"}
    listing = f"file://{tmp_path}/{pattern}"
    seeded = sh(f"wq seed --list '{listing}'", tmp_path, env)
    assert seeded.returncode == 0, seeded.stderr
    report = sh("wq report", tmp_path, env)
    assert report.returncode == 0, report.stderr
    items = [json.loads(line)["item"] for line in report.stdout.splitlines()]
    assert items == [f"file://{tmp_path}/{path}" for path in matching]


def test_a_double_star_inside_a_name_is_refused(tmp_path: Path, redis_url: str) -> None:
    """What the README says of `**.json`: fsspec refuses it, and so does `wq seed`."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.json").write_text("x", encoding="utf-8")
    env = {"WQ_REDIS_URL": redis_url, "WQ_RUN": f"list-{tmp_path.name}"}
    result = sh(f"wq seed --list 'file://{tmp_path}/in/**.json'", tmp_path, env)
    assert result.returncode != 0
    assert "'**' can only be an entire path component" in result.stderr

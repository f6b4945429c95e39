"""Every value in values.yaml is documented with a helm-docs `# --` comment.

`make chart-docs-check` then checks that chart/README.md is the table generated from them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml

from tests.chart.helmlib import CHART

KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z][A-Za-z0-9_]*):")


@dataclass
class Node:
    path: str
    documented: bool
    children: list[Node] = field(default_factory=list)


def parse(text: str) -> list[Node]:
    """Key tree of a values file, each key marked documented if a `# --` comment opens above it."""
    roots: list[Node] = []
    stack: list[tuple[int, Node]] = []
    pending_doc = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            pending_doc = True
            continue
        if stripped.startswith("#"):
            continue  # continuation of a comment
        if not stripped:
            pending_doc = False
            continue
        match = KEY.match(line)
        if not match:
            continue  # list items and values of documented objects
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1] if stack else None
        path = f"{parent.path}.{match['key']}" if parent else match["key"]
        node = Node(path, pending_doc)
        (parent.children if parent else roots).append(node)
        stack.append((indent, node))
        pending_doc = False
    return roots


def undocumented(nodes: list[Node]) -> list[str]:
    missing = []
    for node in nodes:
        if node.documented:
            continue  # its children are part of its documented default
        if node.children:
            missing += undocumented(node.children)
        else:
            missing.append(node.path)
    return missing


def test_parser_sees_undocumented_values() -> None:
    text = "a: 1\n# -- doc\nb:\n  c: 1\nd:\n  # -- doc\n  e: 1\n  f: 2\n"
    assert undocumented(parse(text)) == ["a", "d.f"]


def test_every_value_is_documented() -> None:
    text = (CHART / "values.yaml").read_text(encoding="utf-8")
    tree = parse(text)
    top = {n.path for n in tree}
    assert top == set(yaml.safe_load(text)), "the parser missed a top-level key"
    assert undocumented(tree) == []


def test_readme_has_the_generated_values_table() -> None:
    readme = (CHART / "README.md").read_text(encoding="utf-8")
    assert "| Key | Type | Default | Description |" in readme
    for key in ("worker.parallelism", "itemRange", "externalRedis.url", "auth.existingSecret"):
        assert f"| {key} |" in readme

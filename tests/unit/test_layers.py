"""The package's folders are its layers, and imports only go down them.

    base            imports nothing else of wq
    store           base
    seed work read scale    base, store and themselves; never each other
    reach           base (the Kubernetes API: `kubectl wq` finds and forwards to a release)
    the entry points (wq.cli, wq.localrun, wq.__main__)   anything below them

A module that needs a sibling layer's code is a sign that the code belongs lower down (in
store or base) or higher up (in an entry point). The rules are read from the source with `ast`,
so an import inside a function counts as much as one at the top.
"""

import ast
from pathlib import Path

import pytest

import wq

PACKAGE = Path(wq.__file__).parent
# What each layer may import, besides itself.
BELOW: dict[str, frozenset[str]] = {
    "base": frozenset(),
    "store": frozenset({"base"}),
    "seed": frozenset({"base", "store"}),
    "work": frozenset({"base", "store"}),
    "read": frozenset({"base", "store"}),
    "scale": frozenset({"base", "store"}),
    "reach": frozenset({"base"}),
}
LAYERS = frozenset(BELOW)
# Entry points, from the top: each may import those after it and every layer.
ENTRY_POINTS = ("__main__", "cli", "localrun")


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, root: Path) -> set[str]:
    """Every wq module that the file at `path` imports (`from wq.x import y` names wq.x.y when
    y is a module, else wq.x), wherever the import statement stands."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    package = module_name(path, root)
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == root.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            if base.split(".")[0] != root.name:
                continue
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                as_path = root.parent.joinpath(*candidate.split("."))
                is_module = as_path.with_suffix(".py").is_file() or as_path.is_dir()
                found.add(candidate if is_module else base)
    return found


def place(module: str) -> str:
    """The layer or entry point a module belongs to: its second name part."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def violations(root: Path) -> list[str]:
    """Every import in the package at `root` that breaks the rules above, as one line each."""
    found = []
    for path in sorted(root.rglob("*.py")):
        here = place(module_name(path, root))
        if here not in LAYERS and here not in ENTRY_POINTS and here not in ("", "__init__"):
            found.append(f"{path.relative_to(root.parent)}: in no layer ({here!r})")
            continue
        for target in sorted(imported(path, root)):
            there = place(target)
            if there in ("", "__init__") or there == here:
                continue  # the package's own __init__ (its version), or the same layer
            if here in LAYERS:
                allowed = there in BELOW[here]
            else:
                allowed = there in LAYERS or (
                    there in ENTRY_POINTS and ENTRY_POINTS.index(there) > ENTRY_POINTS.index(here)
                )
            if not allowed:
                found.append(
                    f"{path.relative_to(root.parent)} imports {target} ({here} -> {there})"
                )
    return found


def test_imports_only_go_down_the_layers() -> None:
    assert violations(PACKAGE) == []


def test_every_folder_is_a_layer_or_the_command_line() -> None:
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders == LAYERS | {"cli"}


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for folder in [root, *(p for p in root.rglob("*") if p.is_dir())]:
        (folder / "__init__.py").touch()
    return root


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"base/a.py": "from wq.store import keys\n", "store/keys.py": ""}, "base -> store"),
        ({"store/a.py": "import wq.seed.b\n", "seed/b.py": ""}, "store -> seed"),
        ({"seed/a.py": "from wq.work.b import f\n", "work/b.py": ""}, "seed -> work"),
        (
            {"read/a.py": "def f():\n    from wq.scale import b\n", "scale/b.py": ""},
            "read -> scale",
        ),
        ({"work/a.py": "from wq import cli\n", "cli.py": ""}, "work -> cli"),
        ({"localrun.py": "from wq.cli import main\n", "cli.py": ""}, "localrun -> cli"),
        ({"store/a.py": "from ..seed import b\n", "seed/b.py": ""}, "store -> seed"),
        ({"extra.py": "", "base/a.py": ""}, "in no layer"),
    ],
)
def test_a_broken_rule_is_named(files: dict[str, str], expected: str, tmp_path: Path) -> None:
    root = write(tmp_path / "wq", files)
    found = violations(root)
    assert len(found) == 1
    assert expected in found[0]


def test_imports_down_and_within_a_layer_pass(tmp_path: Path) -> None:
    root = write(
        tmp_path / "wq",
        {
            "base/errors.py": "",
            "store/keys.py": "from wq.base import errors\n",
            "store/queue.py": "from wq.store.keys import RunKeys\nfrom . import keys\n",
            "seed/seeder.py": "from wq.store import queue\nfrom wq.base.errors import E\n",
            "cli.py": "from wq import __version__\nfrom wq.seed import seeder\nimport wq.localrun",
            "localrun.py": "from wq.seed.seeder import seed\n",
        },
    )
    assert violations(root) == []


# Bigger than this, a module or class has more than one job: split it along its callers.
MAX_MODULE_LINES = 400
MAX_CLASS_LINES = 250


def oversized(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        where = path.relative_to(root.parent)
        lines = text.count("\n")
        if lines > MAX_MODULE_LINES:
            found.append(f"{where}: {lines} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                size = node.end_lineno - node.lineno + 1
                if size > MAX_CLASS_LINES:
                    found.append(f"{where}: class {node.name} has {size} lines")
    return found


def test_modules_and_classes_stay_small() -> None:
    assert oversized(PACKAGE) == []


def test_an_oversized_module_or_class_is_named(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_CLASS_LINES))
    root = write(tmp_path / "wq", {"base/a.py": f"class Big:\n{body}\n", "base/b.py": "x = 1\n"})
    assert oversized(root) == ["wq/base/a.py: class Big has 251 lines"]
    (root / "base" / "b.py").write_text("x = 1\n" * (MAX_MODULE_LINES + 1))
    assert oversized(root)[-1] == "wq/base/b.py: 401 lines"


def redis_py_importers(root: Path) -> list[str]:
    """Modules outside wq.store that import redis-py: the store is the only layer that talks
    to Redis, and the one place that hides OpenTelemetry from redis-py as it loads."""
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.relative_to(root).parts[0] == "store":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            if any(name.split(".")[0] == "redis" for name in names):
                found.append(f"{path.relative_to(root.parent)}:{node.lineno}")
    return found


def test_only_the_store_imports_redis_py() -> None:
    assert redis_py_importers(PACKAGE) == []


def test_redis_py_imported_outside_the_store_is_named(tmp_path: Path) -> None:
    root = write(
        tmp_path / "wq",
        {
            "store/connection.py": "import redis\n",
            "read/web.py": "import json\n\ndef f():\n    from redis.exceptions import E\n",
            "cli.py": "import redis.cluster\n",
        },
    )
    assert redis_py_importers(root) == ["wq/cli.py:1", "wq/read/web.py:4"]

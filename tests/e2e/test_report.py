"""Issue 11 on a real cluster: every item's fate, fetched the two ways the docs give (NOTES'
command and the README's port-forward route), with outputs, the dead item's error, and a
digest that ties the run to the values file it was installed from."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.checks import command_run, worker_pods
from tests.e2e.kube import Kube, marked, marked_processes, run
from tests.e2e.release import Releases
from tests.polling import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

README = Path(__file__).resolve().parents[2] / "README.md"
ITEMS: list[Any] = ["alpha", "beta", "oops", "gamma", {"src": "d.png", "n": 4}]
POISON = 2
# No template tags: the item reaches the script in $WQ_ITEM only (structured items as JSON).
# The poison item writes an output too, then fails: a failed attempt must store none.
SCRIPT = (
    'echo "seen $WQ_ITEM" > "$WQ_OUTPUT"; '
    '[ "$WQ_ITEM" != oops ] || { echo "refusing $WQ_ITEM" >&2; exit 5; }'
)


def readme_port_forward_block() -> str:
    """The README's port-forward route, as a user would paste it."""
    text = README.read_text(encoding="utf-8")
    match = re.search(r"```bash\n(NS=default RELEASE=wq RUN=wq-1\n\(\n.*?)```", text, re.DOTALL)
    assert match, "README lost its port-forward block"
    return match.group(1)


def test_report_from_the_cluster(release: Releases, namespace: Kube, tmp_path: Path) -> None:
    rel = release("wq-report")  # contains "wq": its Service is wq-report-redis, as in the README
    values = command_run(ITEMS, SCRIPT, max_attempts=2)
    rel.install(values)
    rel.wait(timeout=240)

    # NOTES step 5, run as printed from a script, writes report.jsonl in the current directory.
    notes = rel.helm("get", "notes", rel.name).stdout
    start = f"kubectl wq report {rel.name} -n {namespace.namespace} "
    block = notes[notes.index(start) : notes.index("\n", notes.index(start))]
    here = tmp_path / "notes"
    here.mkdir()
    run(["bash", "-c", f"cd {here} && {block}"], timeout=300)
    text = (here / "report.jsonl").read_text(encoding="utf-8")
    records = [json.loads(line) for line in text.splitlines()]

    assert [r["position"] for r in records] == list(range(len(ITEMS))), "one line per item"
    assert [r["item"] for r in records] == ITEMS
    pods = set(worker_pods(rel))
    for r in records:
        if r["position"] == POISON:
            continue
        assert r["state"] == "done", r
        assert r["attempts"] == 1, r
        assert r["worker"] in pods, r
        assert r["duration_s"] is not None, r
        assert r["finished_at"] is not None, r
        assert r["output"].startswith("seen "), r
    assert [r["output"] for r in records[:2]] == ["seen alpha\n", "seen beta\n"]
    assert json.loads(records[4]["output"].removeprefix("seen ")) == ITEMS[4]
    dead = records[POISON]
    assert (dead["state"], dead["attempts"], dead["output"]) == ("dead", 2, None), dead
    assert "exited with code 5" in dead["error"], dead
    assert "refusing oops" in dead["error"], dead

    # The digest: the run's (wq status) equals `wq digest` of the values file, computed here.
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values), encoding="utf-8")
    local = run(["wq", "digest", "--items-file", str(values_file)]).stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", local), local
    assert rel.status()["digest"] == local
    check = rel.wq("status", "--check", check=False)  # exits 1: the run has a dead item
    assert re.search(r"^digest\s+" + local + "$", check, re.MULTILINE), check
    assert "every position accounted for once: 4 done + 1 dead = 5 total" in check, check

    # The README's route: a local wq through a port-forward gives the same report.
    route = readme_port_forward_block().replace(
        "NS=default RELEASE=wq RUN=wq-1",
        f"NS={namespace.namespace} RELEASE={rel.name} RUN={rel.run_id()}",
    )
    there = tmp_path / "port-forward"
    there.mkdir()
    # Only what the block sets: none of this machine's WQ_* settings.
    env = {k: v for k, v in os.environ.items() if not k.startswith("WQ_")}
    env |= marked(namespace.namespace)
    proc = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", route],
        cwd=there,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # so that nothing it started can outlive the test
    )
    try:
        output, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, output
        # The block's trap ends its port-forward (looked for before the kill below).
        mine = namespace.namespace
        wait_until("the README block's port-forward ended", lambda: not marked_processes(mine), 30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert (there / "report.jsonl").read_text(encoding="utf-8") == text

"""Runs a user would make: the docs flow, many small items, the command handler, a second
run by `helm upgrade`, and `helm test` (issue 5, scenarios 1, 2, 6, 7 and 9)."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable

import pytest

from tests.e2e.checks import assert_clean, assert_counts, worked_on, worker_pods
from tests.e2e.kube import Kube, run
from tests.e2e.release import Releases
from tests.polling import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

# The items of the Kubernetes docs' "Fine Parallel Processing Using a Work Queue".
FRUITS = ["apple", "banana", "cherry", "date", "fig", "grape", "lemon", "melon", "orange"]


def test_docs_flow(release: Releases) -> None:
    """Scenario 1: nine fruits, parallelism 2, demo handler: each item done exactly once."""
    rel = release("docs")
    rel.install({"items": FRUITS, "worker": {"parallelism": 2, "demoSleep": 1}})
    job = rel.wait(timeout=240)

    assert job["spec"]["parallelism"] == 2
    assert "completions" not in job["spec"], "work-queue mode leaves completions unset"
    status = rel.status()
    assert_clean(status, total=9)
    assert status["executions"] == 9, "no item ran twice"
    done_by = rel.done_by()
    assert sorted(done_by) == list(range(9))
    pods = worker_pods(rel)
    # The chart sets each worker's id to its pod's name.
    assert set(done_by.values()) <= set(pods), done_by
    assert worked_on(rel.worker_logs()) == Counter(FRUITS)


@pytest.mark.parametrize(
    "source",
    [
        pytest.param({"itemRange": {"start": 0, "end": 5000}}, id="itemRange"),
        pytest.param({"itemsFile": "".join(f"item-{i}\n" for i in range(5000))}, id="itemsFile"),
    ],
)
def test_fine_grained(
    release: Releases,
    source: dict[str, object],
    request: pytest.FixtureRequest,
    record_timing: Callable[[str, float], None],
) -> None:
    """Scenario 2: 5,000 millisecond items on 4 pods; the time from install to Complete."""
    rel = release("fine")
    started = time.monotonic()
    rel.install({**source, "worker": {"parallelism": 4, "demoSleep": 0.001}})
    rel.wait(timeout=300)
    elapsed = time.monotonic() - started
    record_timing(
        f"scenario 2, 5,000 items via {request.node.callspec.id}: install to Complete", elapsed
    )

    assert_clean(rel.status(), total=5000)
    assert sorted(rel.done_by()) == list(range(5000))


def test_command_handler(release: Releases) -> None:
    """Scenario 6: a shell command per item; its output shows per item, its exit code counts.
    Issue 9 (13): in shell mode each value is one quoted word, so an item holding shell code
    reaches the command as text and never runs."""
    hostile = "$(touch /tmp/pwned)"
    # Tags bare, never inside quotes (wq refuses that at start). Had the hostile item run, the
    # file would be in this pod's /tmp right after the echo: the item would then fail.
    script = (
        'echo out:{{ item }} env:"$WQ_ITEM"; '
        "[ ! -e /tmp/pwned ] || { echo PWNED; exit 7; }; "
        "[ {{ item }} != oops ] || { echo refusing {{ item }}; exit 5; }"
    )
    items = ["alpha", "beta", "gamma", "oops", hostile]
    rel = release("cmd")
    rel.install(
        {
            "items": items,
            "worker": {
                "parallelism": 2,
                "handler": "command",
                "shell": True,
                "command": [script],
                "maxAttempts": 2,
            },
        }
    )
    rel.wait(timeout=240)

    logs = rel.worker_logs()
    assert "PWNED" not in logs, logs
    assert_counts(rel.status(), total=5, done=4, dead=1)
    for position in (0, 1, 2, 4):
        item = items[position]
        assert logs.count(f"[item {position}] out:{item} env:{item}") == 1, logs
    assert logs.count("[item 3] refusing oops") == 2, "maxAttempts=2: two attempts, then dead"
    (dead,) = rel.dead()
    assert (dead["position"], dead["item"]) == (3, "oops")
    assert "exited with code 5" in dead["error"]
    assert "refusing oops" in dead["error"]


def test_second_run(release: Releases, namespace: Kube) -> None:
    """Scenario 7: `helm upgrade` with new items starts a new, isolated run."""
    rel = release("again")
    rel.install({"items": ["a1", "a2", "a3"], "worker": {"parallelism": 2, "demoSleep": 0.2}})
    rel.wait()
    redis_pods = namespace.pod_names(rel.selector("redis"))
    first_run = rel.run_id()

    rel.upgrade(
        {"items": ["b1", "b2", "b3", "b4", "b5"], "worker": {"parallelism": 2, "demoSleep": 0.2}}
    )
    rel.wait()

    assert rel.run_id() != first_run
    assert_clean(rel.status(), total=5)
    assert_clean(rel.status(run_id=first_run), total=3)
    assert sorted(rel.done_by()) == list(range(5))
    assert sorted(rel.done_by(first_run)) == list(range(3))
    logs = namespace.logs(f"job-name={rel.worker_job()}")
    assert worked_on(logs) == Counter(["b1", "b2", "b3", "b4", "b5"])
    assert namespace.pod_names(rel.selector("redis")) == redis_pods, "Redis kept across upgrade"
    assert not namespace("get", "job", rel.worker_job(revision=1), "--ignore-not-found")


def test_helm_test(release: Releases) -> None:
    """Scenario 9: `helm test` passes on a completed run, and its passing pod is gone (hook
    deleted on success); NOTES.txt's `kubectl wq` lines show the dead items and the status."""
    rel = release("checked")
    rel.install({"items": ["x", "y", "z"], "worker": {"parallelism": 1, "demoSleep": 0}})
    rel.wait()

    result = rel.helm("test", rel.name, "--timeout", "3m")
    assert re.search(r"^Phase:\s+Succeeded$", result.stdout, re.MULTILINE), result.stdout
    test_pod = f"{rel.run_id()}-test"
    wait_until(f"test pod {test_pod} deleted", lambda: not rel.kube.find("pod", test_pod), 60, 1.0)

    # NOTES.txt's commands for the dead items and the status work as printed, from a script.
    notes = rel.helm("get", "notes", rel.name).stdout

    def printed(start: str) -> str:
        first = notes.index(start)
        return notes[first : notes.index("\n", first)]

    dead = run(["bash", "-c", printed("kubectl wq dead ")], timeout=180)
    assert f"0 dead item(s) in run {rel.run_id()}" in dead.stdout + dead.stderr, dead
    status = run(["bash", "-c", printed("kubectl wq status ")], timeout=180).stdout
    assert re.search(r"^state\s+drained$", status, re.MULTILINE), status
    assert re.search(r"^done\s+3$", status, re.MULTILINE), status

"""Fixtures for the chart tests: the pinned `bin/helm` and a renderer that parses its output."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.chart.crds import CrdValidator, crd_validator
from tests.chart.helmlib import CHART, HELM, PROMTOOL, REPO, Helm


def pinned(tool: Path, needed_by: str) -> Path:
    """A pinned binary in bin/, or a clear failure saying how to build it."""
    if not (tool.is_file() and os.access(tool, os.X_OK)):
        pytest.fail(
            f"{tool.relative_to(REPO)} is missing: {needed_by} need the pinned {tool.name}. "
            "`make test-chart` builds it (versions in the Makefile).",
            pytrace=False,
        )
    return tool


@pytest.fixture(scope="session")
def helm_bin() -> Path:
    return pinned(HELM, "the chart tests")


@pytest.fixture(scope="session")
def promtool() -> Path:
    return pinned(PROMTOOL, "the alert tests")


@pytest.fixture(scope="session")
def crds() -> CrdValidator:
    return crd_validator()


@pytest.fixture(scope="session")
def helm(helm_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(helm_bin, tmp_path_factory.mktemp("helm"))


@pytest.fixture(scope="session")
def notes_chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the chart whose NOTES.txt also renders into a ConfigMap.

    `helm template` never prints NOTES.txt and `helm install --dry-run` needs a cluster, so the
    copy wraps the unchanged NOTES.txt in a named template and includes it in a ConfigMap.
    """
    copy = tmp_path_factory.mktemp("notes") / "wq"
    shutil.copytree(CHART, copy)
    notes = (CHART / "templates" / "NOTES.txt").read_text(encoding="utf-8")
    (copy / "templates" / "_notes_under_test.tpl").write_text(
        '{{- define "wq.test.notes" -}}\n' + notes + "\n{{- end }}\n", encoding="utf-8"
    )
    (copy / "templates" / "notes-under-test.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes-under-test\n"
        'data:\n  notes: {{ include "wq.test.notes" . | toJson }}\n',
        encoding="utf-8",
    )
    return copy

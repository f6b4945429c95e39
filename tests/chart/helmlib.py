"""Helpers of the chart tests: run the pinned `bin/helm` and parse what it renders."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "chart"
HELM = REPO / "bin" / "helm"
PROMTOOL = REPO / "bin" / "promtool"
# The Prometheus Operator's kinds, as a cluster with its CRDs announces them to Helm.
MONITORING_APIS = (
    "monitoring.coreos.com/v1/ServiceMonitor",
    "monitoring.coreos.com/v1/PrometheusRule",
)

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Rendered:
    """The objects of one `helm template` run."""

    manifests: list[Manifest]

    def all(self, kind: str) -> list[Manifest]:
        return [m for m in self.manifests if m["kind"] == kind]

    def one(self, kind: str, component: str | None = None) -> Manifest:
        found = [
            m
            for m in self.all(kind)
            if component is None
            or m["metadata"]["labels"].get("app.kubernetes.io/component") == component
        ]
        assert len(found) == 1, f"expected one {kind} ({component}), got {len(found)}"
        return found[0]

    def kinds(self) -> list[str]:
        return sorted(m["kind"] for m in self.manifests)


class Helm:
    """Runs the real helm binary on the chart."""

    def __init__(self, binary: Path, tmp: Path) -> None:
        self.binary = binary
        self.tmp = tmp
        self._files = 0

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "HELM_CACHE_HOME": str(self.tmp / "cache")}
        env["HELM_CONFIG_HOME"] = str(self.tmp / "config")
        env["HELM_DATA_HOME"] = str(self.tmp / "data")
        result = subprocess.run(
            [str(self.binary), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        if check and result.returncode != 0:
            pytest.fail(f"helm {' '.join(args)} failed:\n{result.stderr}")
        return result

    def values_file(self, values: Manifest) -> Path:
        self._files += 1
        # JSON is YAML without YAML 1.1 surprises (PyYAML writes `y` bare; helm reads it as true).
        path = self.tmp / f"values-{self._files}.json"
        path.write_text(json.dumps(values), encoding="utf-8")
        return path

    def template_args(
        self,
        values: Manifest | None,
        sets: Sequence[str],
        extra: Sequence[str],
        chart: Path,
        release: str,
        api_versions: Sequence[str] = (),
    ) -> list[str]:
        args = ["template", release, str(chart)]
        if values is not None:
            args += ["-f", str(self.values_file(values))]
        for item in sets:
            args += ["--set", item]
        # What `.Capabilities.APIVersions.Has` sees, e.g. "monitoring.coreos.com/v1/ServiceMonitor".
        for api in api_versions:
            args += ["--api-versions", api]
        return [*args, *extra]

    def render(
        self,
        values: Manifest | None = None,
        sets: Sequence[str] = (),
        extra: Sequence[str] = (),
        chart: Path = CHART,
        release: str = "wq",
        api_versions: Sequence[str] = (),
    ) -> Rendered:
        result = self.run(*self.template_args(values, sets, extra, chart, release, api_versions))
        docs = [d for d in yaml.safe_load_all(result.stdout) if d]
        return Rendered(docs)

    def render_error(
        self,
        values: Manifest | None = None,
        sets: Sequence[str] = (),
        extra: Sequence[str] = (),
        release: str = "wq",
    ) -> str:
        """Renders values that must be rejected; returns helm's error message."""
        result = self.run(*self.template_args(values, sets, extra, CHART, release), check=False)
        assert result.returncode != 0, f"helm accepted values it must reject: {values} {sets}"
        assert result.stdout == "", "a rejected render must print no manifests"
        return result.stderr

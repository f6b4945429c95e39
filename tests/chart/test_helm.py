"""The pinned bin/helm is built as Helm's own release build is, version flags included.

Plain `go install` leaves helm without its version and with Kubernetes 1.20 as the version
`helm template` and `helm lint` assume, which the chart's kubeVersion (>= 1.31) refuses: every
user of the README's `helm template` would need --kube-version. The Makefile sets what Helm's
Makefile sets (-ldflags from the k8s.io/client-go that helm is built with).
"""

from __future__ import annotations

import re

import yaml

from tests.chart.helmlib import CHART, REPO, Helm


def test_helm_is_the_pinned_version(helm: Helm) -> None:
    """A stale bin/helm (the Makefile never rebuilds one) would test another Helm, or one built
    without the version flags."""
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    [pinned] = re.findall(r"^HELM_VERSION \?= (v3\.\d+\.\d+)$", makefile, re.M)
    version = helm.run("version", "--template", "{{.Version}}").stdout
    assert version == pinned, f"remove bin/helm and rebuild it: it says {version!r}"


def test_helm_template_renders_without_kube_version(helm: Helm) -> None:
    result = helm.run("template", "t", str(CHART), check=False)
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    jobs = {d["metadata"]["name"] for d in docs if d["kind"] == "Job"}
    assert jobs == {"t-wq-1-seed", "t-wq-1-worker"}

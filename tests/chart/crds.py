"""Validation of custom resources against the Prometheus Operator's own CRDs.

kubernetes-validate knows only built-in kinds. For ServiceMonitor and PrometheusRule the
schemas are the CRDs' `openAPIV3Schema`, which `make test-chart` fetches at
PROMETHEUS_OPERATOR_VERSION from the operator's Go module. Made strict as kubeconform's
openapi2jsonschema does (and as the API server prunes): an object that lists its properties
takes no other, so a mistyped field fails here instead of vanishing in the cluster.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.chart.helmlib import REPO, Manifest

CRDS = REPO / ".cache" / "crds" / "prometheus-operator"
KEDA_CRDS = REPO / ".cache" / "crds" / "keda"


def strict(schema: Any) -> Any:
    """A structural OpenAPI v3 schema as a JSON Schema that refuses unknown fields."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
    preserve = out.pop("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    return out


def load_schemas(directory: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> strict JSON Schema, for every served version of every CRD."""
    schemas = {}
    for path in sorted(directory.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text(encoding="utf-8"))
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version["served"]:
                schema = strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
                schemas[f"{group}/{version['name']}", kind] = schema
    return schemas


class CrdValidator:
    def __init__(self, schemas: dict[tuple[str, str], dict[str, Any]]) -> None:
        self.schemas = schemas

    def knows(self, doc: Manifest) -> bool:
        return (doc["apiVersion"], doc["kind"]) in self.schemas

    def validate(self, doc: Manifest) -> None:
        """Raises jsonschema.ValidationError for a resource the CRD refuses."""
        schema = self.schemas[doc["apiVersion"], doc["kind"]]
        jsonschema.Draft7Validator(schema).validate(doc)


def crd_validator() -> CrdValidator:
    schemas = {}
    for directory, wanted in (
        (CRDS, {"ServiceMonitor", "PrometheusRule"}),
        (KEDA_CRDS, {"ScaledJob"}),
    ):
        found = load_schemas(directory) if directory.is_dir() else {}
        if not wanted <= {kind for _, kind in found}:
            pytest.fail(
                f"CRDs of {', '.join(sorted(wanted))} are missing from "
                f"{directory.relative_to(REPO)}: `make test-chart` fetches them.",
                pytrace=False,
            )
        schemas |= found
    return CrdValidator(schemas)

"""The worker Job through the Kubernetes API: the JobControl that `wq autoscale` uses for real.

The only module that imports the kubernetes client, and only `wq autoscale` imports it (its
entry point, `autoscale`, is here for that reason). Three
calls, each needing one RBAC verb: get the Job, patch its parallelism (both on jobs in group
batch, for this Job's name only) and create an Event on it (core/v1 events: its timestamps
have a plain RFC 3339 form, which every version of the client writes in a form the API
server reads). The kind e2e tests cover them; the unit tests cover the loop with a JobControl
of their own.
"""

import os
import secrets
import socket
from datetime import UTC, datetime
from pathlib import Path

from kubernetes import client, config  # type: ignore[import-untyped]
from kubernetes.client.exceptions import ApiException  # type: ignore[import-untyped]
from kubernetes.config.config_exception import ConfigException  # type: ignore[import-untyped]
from urllib3.exceptions import HTTPError

from wq.base.errors import ConfigError, KubernetesUnavailable
from wq.base.logs import EventLog
from wq.scale.autoscale import AutoscaleConfig, Autoscaler, JobState
from wq.store.queue import RunQueue

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
COMPONENT = "wq-autoscale"
# (connect, read) seconds: a step must not hang on a half-open connection.
TIMEOUT = (5.0, 15.0)
MAX_MESSAGE = 1024  # an Event's message is cut to this many characters


def load_config() -> None:
    """The pod's service account in a cluster, else the kubeconfig (KUBECONFIG, ~/.kube)."""
    try:
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config()
        else:
            config.load_kube_config()
    except (ConfigException, OSError) as exc:
        raise ConfigError(
            f"no Kubernetes API to talk to: not in a pod with a service account token, and "
            f"no usable kubeconfig ({exc})"
        ) from None


def default_namespace() -> str:
    """The pod's own namespace, as its service account says."""
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text(encoding="utf-8").strip()
    except OSError:
        raise ConfigError(
            f"--namespace not given, and no {SERVICE_ACCOUNT_NAMESPACE} (not in a pod)"
        ) from None


class KubeJob:
    """A Job in a namespace, read and sized through the API (wq.scale.autoscale.JobControl)."""

    def __init__(self, name: str, namespace: str, instance: str) -> None:
        self.name = name
        self.namespace = namespace
        self.instance = instance  # who reports Events: the controller's pod
        self.batch = client.BatchV1Api()
        self.core = client.CoreV1Api()
        self.uid: str | None = None

    def read(self) -> JobState | None:
        try:
            job = self.batch.read_namespaced_job(
                self.name, self.namespace, _request_timeout=TIMEOUT
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise self._failed("read", exc) from None
        except (HTTPError, OSError) as exc:
            raise self._failed("read", exc) from None
        self.uid = job.metadata.uid if job.metadata else None
        spec, status = job.spec, job.status
        active = (status.active if status else None) or 0
        ready = status.ready if status and status.ready is not None else active
        finished = None
        for c in (status.conditions if status else None) or []:
            if c.type in ("Complete", "Failed") and c.status == "True":
                finished = c.type
        parallelism = spec.parallelism if spec and spec.parallelism is not None else 1
        return JobState(parallelism, active, ready, finished)

    def scale(self, parallelism: int) -> None:
        # A JSON Patch (a list): every version of the client sends a list as one, while a
        # dict goes as a strategic merge patch or as a JSON Patch, depending on the version.
        patch = [{"op": "replace", "path": "/spec/parallelism", "value": parallelism}]
        try:
            self.batch.patch_namespaced_job(
                self.name, self.namespace, patch, _request_timeout=TIMEOUT
            )
        except (ApiException, HTTPError, OSError) as exc:
            raise self._failed("patch", exc) from None

    def record(self, reason: str, message: str) -> None:
        now = datetime.now(UTC)
        event = client.CoreV1Event(
            metadata=client.V1ObjectMeta(
                name=f"{self.name}.{secrets.token_hex(8)}", namespace=self.namespace
            ),
            involved_object=client.V1ObjectReference(
                api_version="batch/v1",
                kind="Job",
                name=self.name,
                namespace=self.namespace,
                uid=self.uid,
            ),
            reason=reason,
            message=message[:MAX_MESSAGE],
            type="Normal",
            count=1,
            first_timestamp=now,
            last_timestamp=now,
            source=client.V1EventSource(component=COMPONENT),
            reporting_component=COMPONENT,
            reporting_instance=self.instance,
        )
        try:
            self.core.create_namespaced_event(self.namespace, event, _request_timeout=TIMEOUT)
        except (ApiException, HTTPError, OSError) as exc:
            raise self._failed("record an event on", exc) from None

    def _failed(self, what: str, exc: Exception) -> KubernetesUnavailable:
        if isinstance(exc, ApiException):
            detail = f"{exc.status} {exc.reason}"
        else:
            detail = str(exc) or type(exc).__name__
        return KubernetesUnavailable(f"could not {what} job {self.namespace}/{self.name}: {detail}")


def autoscale(queue: RunQueue, config: AutoscaleConfig, concurrency: int, log: EventLog) -> int:
    """`wq autoscale`: size the configured Job of this cluster until the run is drained, the
    Job is gone, or SIGTERM; returns the exit code."""
    policy = config.policy(concurrency)
    namespace = config.namespace or default_namespace()
    load_config()
    job = KubeJob(config.job, namespace, instance=socket.gethostname())
    scaler = Autoscaler(queue, job, config, policy, log)
    scaler.install_signal_handlers()
    return scaler.run()

"""A release of the wq chart, found by its labels: its Redis (a Ready pod behind the Service,
the password from the pod's own Secret reference, the current run from the Service's
annotation) and its exporter."""

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes.client.exceptions import ApiException  # type: ignore[import-untyped]

from wq.base.errors import ConfigError, KubernetesUnavailable, NotReady
from wq.reach.kubeapi import Api

# Set by the chart on the Redis Service (chart/templates/redis/service.yaml): the run id of
# the release's newest revision, which every pod of that revision has as WQ_RUN.
RUN_ANNOTATION = "wq/run"
INSTANCE = "app.kubernetes.io/instance"
COMPONENT = "app.kubernetes.io/component"
# The variable of the chart's Redis container that holds the password (from a Secret).
PASSWORD_ENV = "REDIS_PASSWORD"
WAIT_STEP_S = 1.0  # between two looks at a Redis that is not ready yet
DISPLAY = {"redis": "Redis", "exporter": "exporter"}


@dataclass(frozen=True)
class Endpoint:
    """A Ready pod behind one of the release's Services, and the container port to reach."""

    pod: str
    port: int
    service: Any  # V1Service
    spec: Any  # V1PodSpec


class Release:
    def __init__(self, api: Api, name: str) -> None:
        self.api = api
        self.name = name

    @property
    def where(self) -> str:
        return f"release {self.name!r} in namespace {self.api.namespace!r}"

    def redis(self, wait_s: float = 0, waiting: Callable[[str], None] | None = None) -> Endpoint:
        """The release's Redis, waiting up to `wait_s` for it to be ready (a fresh install's);
        `waiting` is told why, each time that changes."""
        return _when_ready(self._redis, wait_s, waiting)

    def exporter(self, wait_s: float = 0, waiting: Callable[[str], None] | None = None) -> Endpoint:
        """The release's exporter, as `redis` waits for the Redis."""
        return _when_ready(self._exporter, wait_s, waiting)

    def _redis(self) -> Endpoint:
        endpoint = self._endpoint("redis")
        if endpoint is None:
            if self._exists():
                raise ConfigError(
                    f"{self.where} has no Redis of its own (redis.enabled=false): kubectl wq "
                    "reaches only the chart's Redis; run `wq` from a pod that reaches yours "
                    "(the install's NOTES print a CLI pod that does)"
                )
            raise ConfigError(
                f"no {self.where}: no Service labelled {INSTANCE}={self.name} "
                f"(`helm list -n {self.api.namespace}` lists the releases there)"
            )
        return endpoint

    def _exporter(self) -> Endpoint:
        endpoint = self._endpoint("exporter")
        if endpoint is None:
            self._redis()  # no release at all says so first
            raise ConfigError(f"{self.where} has no exporter: set metrics.enabled=true")
        return endpoint

    def current_run(self, redis: Endpoint) -> str:
        run: str | None = (redis.service.metadata.annotations or {}).get(RUN_ANNOTATION)
        if not run:
            raise ConfigError(
                f"{self.where} does not say its current run (a chart older than the plugin): "
                "give --run"
            )
        return run

    def password(self, redis: Endpoint) -> str | None:
        """The Redis password, from the Secret the Redis container reads it from (None: no
        password)."""
        ref = None
        for container in redis.spec.containers:
            for var in container.env or ():
                if var.name == PASSWORD_ENV and var.value_from and var.value_from.secret_key_ref:
                    ref = var.value_from.secret_key_ref
        if ref is None:
            return None
        what = f"read Secret {ref.name!r} (the Redis password of {self.where})"
        try:
            secret = self.api.call(
                what, self.api.core.read_namespaced_secret, ref.name, self.api.namespace
            )
        except ApiException:
            raise ConfigError(f"cannot {what}: there is no such Secret") from None
        encoded = (secret.data or {}).get(ref.key)
        if encoded is None:
            raise ConfigError(f"cannot {what}: it has no key {ref.key!r}")
        return base64.b64decode(encoded).decode()

    def _endpoint(self, component: str) -> Endpoint | None:
        selector = f"{INSTANCE}={self.name},{COMPONENT}={component}"
        namespace = self.api.namespace
        services = self.api.call(
            f"list the Services of {self.where}",
            self.api.core.list_namespaced_service,
            namespace,
            label_selector=selector,
        ).items
        if not services:
            return None
        service = services[0]
        pods = self.api.call(
            f"list the pods of Service {service.metadata.name!r}",
            self.api.core.list_namespaced_pod,
            namespace,
            label_selector=",".join(f"{k}={v}" for k, v in service.spec.selector.items()),
        ).items
        ready = [p for p in pods if _ready(p) and not p.metadata.deletion_timestamp]
        if not ready:
            raise NotReady(
                f"the {DISPLAY[component]} of {self.where} is not ready: {_why_not_ready(pods)}"
            )
        pod = ready[0]
        return Endpoint(pod.metadata.name, _container_port(service, pod), service, pod.spec)

    def _exists(self) -> bool:
        """Whether anything is labelled as the release's (then its Redis is external)."""
        try:
            jobs = self.api.call(
                f"list the Jobs of {self.where}",
                self.api.batch.list_namespaced_job,
                self.api.namespace,
                label_selector=f"{INSTANCE}={self.name}",
            )
        except (ApiException, KubernetesUnavailable):
            return False
        return bool(jobs.items)


def _when_ready(
    lookup: Callable[[], Endpoint], wait_s: float, waiting: Callable[[str], None] | None
) -> Endpoint:
    deadline = time.monotonic() + wait_s
    said = ""
    while True:
        try:
            return lookup()
        except NotReady as exc:
            if time.monotonic() + WAIT_STEP_S > deadline:
                raise
            if waiting and str(exc) != said:
                said = str(exc)
                waiting(f"waiting up to {wait_s:g}s: {said}")
            time.sleep(WAIT_STEP_S)


def _ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or ())


def _why_not_ready(pods: list[Any]) -> str:
    if not pods:
        return "no pod runs (`kubectl get deploy` shows why)"
    pod = pods[0]
    waiting = [
        s.state.waiting.reason
        for s in pod.status.container_statuses or ()
        if s.state and s.state.waiting and s.state.waiting.reason
    ]
    return f"pod {pod.metadata.name} is {pod.status.phase}" + (
        f" ({', '.join(waiting)})" if waiting else ""
    )


def _container_port(service: Any, pod: Any) -> int:
    """The pod port behind the Service's first port (its targetPort, a number or a name)."""
    target = service.spec.ports[0].target_port
    if isinstance(target, int) or str(target).isdigit():
        return int(target)
    for container in pod.spec.containers:
        for port in container.ports or ():
            if port.name == target:
                return int(port.container_port)
    raise ConfigError(f"pod {pod.metadata.name} has no port named {target!r}")

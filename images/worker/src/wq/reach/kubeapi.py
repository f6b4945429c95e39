"""The Kubernetes API as the user's kubeconfig reaches it, and its refusals as one-line errors."""

import contextlib
import os
import re
from collections.abc import Callable
from typing import Any, TypeVar

from kubernetes import client, config  # type: ignore[import-untyped]
from kubernetes.client.exceptions import ApiException  # type: ignore[import-untyped]
from kubernetes.config.config_exception import ConfigException  # type: ignore[import-untyped]
from kubernetes.stream import portforward  # type: ignore[import-untyped]
from urllib3.exceptions import HTTPError

from wq.base.errors import ConfigError, KubernetesUnavailable
from wq.reach.forward import Dial

# (connect, read) seconds: a lookup must not hang on a half-open connection.
TIMEOUT = (5.0, 15.0)
T = TypeVar("T")


class Api:
    """The API client of a kubeconfig context (else the pod's service account), and the
    namespace that kubectl would use."""

    def __init__(self, kubeconfig: str | None, context: str | None, namespace: str | None):
        try:
            self.client = config.new_client_from_config(config_file=kubeconfig, context=context)
            current = self._context_namespace(kubeconfig, context)
        except (ConfigException, OSError) as exc:
            if kubeconfig or context or not os.environ.get("KUBERNETES_SERVICE_HOST"):
                raise ConfigError(f"no usable kubeconfig: {exc}") from None
            config.load_incluster_config()
            self.client = client.ApiClient()
            current = None
        self.namespace = namespace or current or "default"
        self.core = client.CoreV1Api(self.client)
        self.batch = client.BatchV1Api(self.client)

    @staticmethod
    def _context_namespace(kubeconfig: str | None, context: str | None) -> str | None:
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
        chosen = next((c for c in contexts if c["name"] == context), active) if context else active
        namespace: str | None = (chosen or {}).get("context", {}).get("namespace")
        return namespace

    def call(self, what: str, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`method(*args, **kwargs)`; a refusal or an unreachable API server raised as one
        line that says `what` was being done. A 404 comes back as an ApiException."""
        try:
            return method(*args, _request_timeout=TIMEOUT, **kwargs)
        except ApiException as exc:
            if exc.status == 404:
                raise
            raise KubernetesUnavailable(f"cannot {what}: {refusal(exc)}") from None
        except (HTTPError, OSError) as exc:
            host = self.client.configuration.host
            raise KubernetesUnavailable(
                f"cannot {what}: the Kubernetes API at {host} is out of reach ({exc})"
            ) from None

    def dialer(self, pod: str, port: int) -> Dial:
        """Opens port-forward streams to `pod`:`port`, each a socket; one is opened and closed
        here, so that a refusal (RBAC: get on pods/portforward) is an error now, not a
        connection that a client retries."""

        def dial() -> Any:
            forward = portforward(
                self.core.connect_get_namespaced_pod_portforward,
                pod,
                self.namespace,
                ports=str(port),
            )
            stream = forward.socket(port)
            stream.setblocking(True)
            return stream

        try:
            first = dial()
        except ApiException as exc:
            raise KubernetesUnavailable(
                f"cannot port-forward to pod {pod!r} in namespace {self.namespace!r}: "
                f"{refusal(exc)}"
                + ("; it takes get on pods/portforward" if exc.status == 403 else "")
            ) from None
        except (HTTPError, OSError) as exc:
            raise KubernetesUnavailable(f"cannot port-forward to pod {pod!r}: {exc}") from None
        with contextlib.suppress(OSError):
            first.close()
        return dial


def refusal(exc: ApiException) -> str:
    """What the API server said, in a few words."""
    if exc.status == 0:  # a refused websocket upgrade (port-forward) says its status in words
        found = re.search(r"Handshake status (\d+) ([\w ]+)", str(exc.reason))
        if found:
            exc.status, exc.reason = int(found[1]), found[2]
    if exc.status == 401:
        return "the Kubernetes API does not accept your credentials (401: log in again)"
    if exc.status == 403:
        return "your Kubernetes user has no permission for it (403 Forbidden, RBAC)"
    return f"the Kubernetes API answered {exc.status} {exc.reason}"

"""A local TCP port relayed to whatever `dial` connects to: for `kubectl wq`, a pod's port
through the Kubernetes API (wq.reach.kubeapi.Api.dialer), as `kubectl port-forward` does.

Each local connection gets a port-forward stream of its own, and two threads copy bytes
between them; everything is closed when the forward is. Nothing is left running afterwards.
"""

import contextlib
import socket
import threading
from collections.abc import Callable
from typing import Any

CHUNK = 65536
BACKLOG = 16

# Opens one stream to the pod's port; returns a connected socket (tests may give their own).
Dial = Callable[[], Any]


class LocalForward:
    """Listens on 127.0.0.1:`local_port` (0: any free port) and relays each connection."""

    def __init__(self, dial: Dial, local_port: int = 0) -> None:
        self._dial = dial
        self._listener = socket.create_server(("127.0.0.1", local_port), backlog=BACKLOG)
        self.port: int = self._listener.getsockname()[1]
        self._open: set[Any] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._accept, name="wq-forward", daemon=True)
        self._thread.start()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            sockets, self._open = list(self._open), set()
        # shutdown() wakes the accept() of the listening thread, which close() alone does not.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for sock in sockets:
            _close(sock)
        self._thread.join(timeout=5)

    def __enter__(self) -> "LocalForward":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while True:
            try:
                local, _ = self._listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._connect, args=(local,), daemon=True).start()

    def _connect(self, local: socket.socket) -> None:
        try:
            remote = self._dial()
        except Exception:
            # The client sees its connection closed, as with kubectl port-forward; the caller
            # found the pod Ready a moment ago, and its own retries report what they see.
            _close(local)
            return
        with self._lock:
            if self._closed:
                _close(local)
                _close(remote)
                return
            self._open.update((local, remote))
        threading.Thread(target=_copy, args=(remote, local), daemon=True).start()
        _copy(local, remote)
        with self._lock:
            self._open.difference_update((local, remote))


def _copy(source: Any, sink: Any) -> None:
    """Bytes from `source` to `sink` until either ends; then both are shut for writing."""
    try:
        while data := source.recv(CHUNK):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        _close(sink)
        _close(source)


def _close(sock: Any) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()

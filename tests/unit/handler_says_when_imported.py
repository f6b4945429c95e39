"""A python handler whose module, as a process imports it, makes the file
$WQ_TEST_LOG_DIR/imported-PID: a test sees which handler processes have loaded it, and when."""

import os
from pathlib import Path

Path(os.environ["WQ_TEST_LOG_DIR"], f"imported-{os.getpid()}").touch()


def handle(item: object) -> None:
    pass

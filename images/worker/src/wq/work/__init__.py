"""Working a run: the worker loop, its handlers, and what it says as it exits."""

"""wq: a fine-grained, at-least-once work queue on Redis for Kubernetes Jobs."""

__version__ = "0.1.0"

"""Sizing the worker Job to its work: the policy, the controller loop and the Kubernetes API."""

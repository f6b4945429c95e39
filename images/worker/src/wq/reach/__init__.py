"""Reaching a release's Redis and exporter from outside the cluster, through the Kubernetes API
(`kubectl wq`): find them by the chart's labels, then port-forward under the user's own RBAC."""

"""Reading a run: the per-item ledger, the report, the live view and the Prometheus exporter."""

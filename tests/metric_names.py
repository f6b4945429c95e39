"""The exporter's metric contract: every metric family `wq exporter` serves, with its type.

The one list both sides are checked against: the exporter's exposition of a real run
(tests/unit/test_exporter.py) and the chart's dashboard and alert expressions
(tests/chart/test_metrics.py, test_alerts.py).
"""

METRICS: dict[str, str] = {
    "wq_run_items": "gauge",
    "wq_items": "gauge",  # label state: pending, in_flight, done, dead
    "wq_items_completed_total": "counter",
    "wq_executions_total": "counter",
    "wq_retries_total": "counter",
    "wq_stale_results_total": "counter",
    "wq_run_seeded": "gauge",
    "wq_run_drained": "gauge",
    "wq_run_lost": "gauge",
    "wq_run_items_per_second": "gauge",
    "wq_item_duration_seconds": "histogram",
    "wq_redis_up": "gauge",  # the only one without a `run` label
}
ITEM_STATES = ("pending", "in_flight", "done", "dead")

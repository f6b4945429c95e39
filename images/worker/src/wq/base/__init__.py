"""The base every layer stands on: errors and exit codes, logs, the option table, items, and a
run's counts. It imports nothing else of wq."""

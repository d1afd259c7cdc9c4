"""What Kassa's processes tell their operator besides the API: log lines and worker metrics.

`logs`: the log format (text or one JSON object a line) and the context every line carries
(the API request's id, the payout, deposit or account the line is about). `metrics`: the
process-wide Prometheus registry of the worker, watcher and payout-worker processes and the
small HTTP listener that serves it. Both import only the standard library and
``prometheus_client``, so every layer may use them.
"""

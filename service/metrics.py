"""The service's Prometheus metrics (webhook delivery metrics live in ``service.webhooks.metrics``).

Module-level prometheus-client objects, registered once on the default registry when this module is
first imported. With several uvicorn workers, ``goto-classifier serve`` sets ``PROMETHEUS_MULTIPROC_DIR``
before any worker starts, so every worker writes its values to files there and ``GET /metrics`` (answered
by any one worker) adds them up: counts are the whole server's, whichever worker handled a request.
Gauges therefore say how workers' values combine (``multiprocess_mode``).

Updates are cheap (one locked add to a memory-mapped file in multiprocess mode, about a microsecond),
so they are made on the request path; nothing here runs at import time except the definitions.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "CLASSIFICATIONS",
    "COMMIT_CONFLICTS",
    "DETECTIONS",
    "DETECTION_OUTCOMES",
    "FORWARDED",
    "HTTP_DURATION",
    "HTTP_REQUESTS",
    "INFERENCE_BATCH_SIZE",
    "INFERENCE_DURATION",
    "INFERENCE_ERRORS",
    "MODEL_INFO",
    "REDIS_ERRORS",
    "STATE_LOOKUPS",
]

HTTP_REQUESTS = Counter(
    "goto_http_requests", "HTTP requests by method, route template and status", ["method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "goto_http_request_duration_seconds",
    "Time from request start to the end of the response, by method and route template",
    ["method", "route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

#: Outcome of each detection posted to /classify or /classify/batch (as answered to the client), or
#: read from the ingest stream by ``goto-classifier consume`` (rejected: sent to the dead-letter stream).
DETECTION_OUTCOMES = ("classified", "duplicate", "stored", "rejected", "unavailable")
DETECTIONS = Counter(
    "goto_detections",
    "Detections received by /classify, /classify/batch and the ingest stream, by outcome: classified, "
    "duplicate, stored (beyond the model's input), rejected (4xx or dead letter: invalid, nothing "
    "stored), unavailable (503, or left pending in the stream)",
    ["outcome"],
)
CLASSIFICATIONS = Counter(
    "goto_classifications",
    "Classification updates committed, by how they were computed (incremental: one RNN step; "
    "recompute: a pass over the first n_steps detections) and predicted class",
    ["mode", "predicted_class"],
)
COMMIT_CONFLICTS = Counter(
    "goto_commit_conflicts", "Commits lost to a concurrent writer of the same object (then recomputed)"
)
FORWARDED = Counter(
    "goto_forwarded_detections",
    "Detections this worker forwarded to the worker that owns their object (service.affinity), by "
    "outcome: owner (classified there) or fallback (owner unreachable or failed: classified here)",
    ["outcome"],
)
STATE_LOOKUPS = Counter(
    "goto_state_lookups",
    "Where a detection's base state came from: this worker's cache, or a prepare call to Redis",
    ["source"],
)
INFERENCE_BATCH_SIZE = Histogram(
    "goto_inference_batch_size",
    "Jobs (steps and recomputes) per batched engine call",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
)
INFERENCE_DURATION = Histogram(
    "goto_inference_duration_seconds",
    "Engine time of one batched call (inference thread)",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
INFERENCE_ERRORS = Counter("goto_inference_errors", "Batched engine calls that raised")
REDIS_ERRORS = Counter(
    "goto_redis_errors", "Failed Redis calls of the state store, by exception type", ["error"]
)
# prometheus-client's Info cannot be used in multiprocess mode: a gauge set to 1 per model version.
MODEL_INFO = Gauge(
    "goto_model_info", "The served model (value 1)", ["model_version"], multiprocess_mode="max"
)

"""The service's Prometheus metrics, defined once (prometheus-client's default registry).

Counters and histograms are moved where things happen (HTTP middleware, NLU, knowledge base,
dispatch intake, outbox); the gauges of what is stored in the database (dispatch queue, open
lights, scheduler lag) are read at scrape time by services/api/metrics.py. Each service
process has its own figures: Prometheus scrapes every process (docs/operations.md).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

# Buckets for what a person waits on: 5 ms .. 10 s.
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)
# The NLU and the knowledge base run in milliseconds (docs/figures.md): finer low buckets.
_FAST = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0)

HTTP_REQUESTS = Counter(
    "hotline_http_requests",
    "HTTP requests answered, by route (its canonical path), method and status",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "hotline_http_request_duration_seconds",
    "time to answer an HTTP request, by route and method (WebSockets not included)",
    ["route", "method"],
    buckets=_LATENCY,
)
WEBSOCKETS = Gauge(
    "hotline_websocket_connections", "WebSocket connections open now, by route", ["route"]
)
NLU_PARSE = Histogram(
    "hotline_nlu_parse_seconds", "time of one NLU parse, by engine", ["engine"], buckets=_FAST
)
KB_ANSWER = Histogram(
    "hotline_kb_answer_seconds", "time for the knowledge base to answer a question", buckets=_FAST
)
KB_OUTCOMES = Counter(
    "hotline_kb_questions",
    "questions put to the knowledge base in a conversation, by outcome: answered (on the "
    "spot), choices (the top candidates offered), closest (on the phone: the closest entry's "
    "answer, named), abstained (filed or asked on)",
    ["outcome"],
)
ORDERS_FILED = Counter("hotline_orders_filed", "work orders filed, by channel", ["channel"])
ORDERS_DISPATCHED = Counter(
    "hotline_orders_intake",
    "work orders on arrival, by what dispatch did: nlu (dispatched to the confident "
    "suggestion: the NLU's, or the unit an agent or an Open311 category named), precedent "
    "(to the unit an arbitration precedent names) or queue (left for the dispatch desk)",
    ["decision"],
)
DISPATCH_QUEUE = Gauge(
    "hotline_dispatch_queue_orders",
    "orders waiting for the centre: dispatch (awaiting dispatch or returned), arbitration",
    ["queue"],
)
OPEN_LIGHTS = Gauge(
    "hotline_supervision_lights_open",
    "supervision lights of orders not closed, by point and colour",
    ["point", "color"],
)
SCHEDULER_LAG = Gauge(
    "hotline_scheduler_lag_seconds",
    "age of the oldest scheduler job that is due and not done (0 when none is due)",
)
SCHEDULER_DUE = Gauge("hotline_scheduler_due_jobs", "scheduler jobs due and not done")
OUTBOUND_FAILURES = Counter(
    "hotline_outbound_failures",
    "messages to citizens and units that failed, by channel and kind: passing (sent again "
    "later) or final",
    ["channel", "kind"],
)
OUTBOUND_RETRIES = Counter(
    "hotline_outbound_retries",
    "tries of a message that failed for a passing reason, by channel and outcome: sent, "
    "again (another try later) or gave_up",
    ["channel", "outcome"],
)
METRICS_READ_ERRORS = Counter(
    "hotline_metrics_read_errors",
    "scrapes whose database gauges could not be read (the gauges keep their last values)",
)


@contextmanager
def timed(histogram: Histogram, **labels: str) -> Iterator[None]:
    """Observe the block's duration on `histogram` (with its labels, if it has any)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        target: Any = histogram.labels(**labels) if labels else histogram
        target.observe(time.perf_counter() - start)


class TimedEngine:
    """An NLU engine whose every parse is timed; anything else is the engine's own."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine

    def parse(self, text: str) -> Any:
        with timed(NLU_PARSE, engine=getattr(self._engine, "name", "unknown")):
            return self._engine.parse(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

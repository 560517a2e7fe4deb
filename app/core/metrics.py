"""Prometheus metrics, one registry per app (no module-level globals).

Counters and the latency histogram count what a process does. Under gunicorn each worker process
counts apart; in prometheus_client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR, which
gunicorn.conf.py sets) they write to files in that folder and a scrape of any of them sums them
all. The `worker` process, which has no web server, serves its own counts (`serve`).

Queue depth and the per-account gauges (the oldest pending and the oldest retrying event's age,
dead letters, events waiting for a product) are read from the database at scrape time, once per
scrape and never summed across processes, so every process reports the same, true numbers,
whichever one a scrape reaches.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, start_wsgi_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from app.core.status import AccountGauges

__all__ = ["Metrics"]


class Metrics:
    def __init__(
        self,
        queue_depth: Callable[[], Mapping[str, int]] | None = None,
        accounts: Callable[[], Sequence[AccountGauges]] | None = None,
        *,
        multiprocess_dir: str | None = None,
    ):
        #: What the processes count: this one's counters, or in multiprocess mode every process's files.
        self.counted = CollectorRegistry()
        # In multiprocess mode the counters write to files (prometheus_client chose that when it was
        # first imported, from the same variable) and are read back from there, so they are
        # registered nowhere: registered as well, this process's share would be counted twice.
        own = None if multiprocess_dir else self.counted
        self.webhooks = Counter(
            "reviewbridge_webhooks_received",
            "Webhook deliveries by source and outcome",
            ["source", "outcome"],
            registry=own,
        )
        self.processing_seconds = Histogram(
            "reviewbridge_event_processing_seconds",
            "Time to process one event, by source and resulting status",
            ["source", "status"],
            registry=own,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.target_calls = Counter(
            "reviewbridge_target_calls",
            "Calls to review targets by target, operation and outcome",
            ["target", "operation", "outcome"],
            registry=own,
        )
        if multiprocess_dir:
            MultiProcessCollector(self.counted, path=multiprocess_dir)
        #: What /metrics shows: the counts and, read from the database, the gauges.
        self.registry = CollectorRegistry()
        self.registry.register(self.counted)
        if queue_depth is not None:
            self.registry.register(_QueueDepth(queue_depth))
        if accounts is not None:
            self.registry.register(_Accounts(accounts))

    def serve(self, host: str, port: int) -> Callable[[], None]:
        """Serve the counts over HTTP in a background thread (prometheus_client's own server, any
        path); return what stops it. For the `worker` process: it has no web server of its own, and
        the database's gauges are the web process's to show, once."""
        server, thread = start_wsgi_server(port, addr=host, registry=self.counted)

        def stop() -> None:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)

        return stop


class _QueueDepth(Collector):
    def __init__(self, read: Callable[[], Mapping[str, int]]):
        self._read = read

    def collect(self):
        family = GaugeMetricFamily("reviewbridge_queue_depth", "Inbox events by status", labels=["status"])
        for status, count in sorted(self._read().items()):
            family.add_metric([status], count)
        yield family


class _Accounts(Collector):
    def __init__(self, read: Callable[[], Sequence[AccountGauges]]):
        self._read = read

    def collect(self):
        labels = ["source", "account"]
        oldest = GaugeMetricFamily(
            "reviewbridge_oldest_pending_age_seconds", "Age of the oldest pending event (0: none)", labels=labels
        )
        retrying = GaugeMetricFamily(
            "reviewbridge_oldest_retry_age_seconds",
            "Age of the oldest event waiting for a retry (0: none)",
            labels=labels,
        )
        dead = GaugeMetricFamily("reviewbridge_dead_letters", "Events given up on, waiting for a person", labels=labels)
        waiting = GaugeMetricFamily(
            "reviewbridge_waiting_for_product", "Events waiting for a product mapping", labels=labels
        )
        for gauges in self._read():
            names = [gauges.source, gauges.account]
            oldest.add_metric(names, gauges.oldest_pending_age_s or 0.0)
            retrying.add_metric(names, gauges.oldest_retry_age_s or 0.0)
            dead.add_metric(names, gauges.dead_letters)
            waiting.add_metric(names, gauges.waiting_for_product)
        yield from (oldest, retrying, dead, waiting)

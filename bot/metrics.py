"""Prometheus metrics, in one registry built per process (no module-level globals).

Counts that are global across replicas (jobs by kind and state, pending approvals, the
outbox) are read from Redis at scrape time; call and latency figures are this process's own.
When `amibot run` keeps its background work in a second process, both write their counters
to PROMETHEUS_MULTIPROC_DIR and `/metrics` adds them up (prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from bot.errors import StoreUnavailable
from bot.worker import MULTIPROC_ENV

log = logging.getLogger(__name__)

ACK_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 3.0, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._gauges: list[_Gauge] = []
        self.aws_calls = Counter(
            "amibot_aws_calls", "AWS API calls", ["service", "operation", "outcome"], registry=self.registry
        )
        self.slack_calls = Counter(
            "amibot_slack_calls", "Slack API calls", ["method", "outcome"], registry=self.registry
        )
        self.ack_seconds = Histogram(
            "amibot_ack_seconds",
            "Time to answer a Slack request",
            ["kind"],
            buckets=ACK_BUCKETS,
            registry=self.registry,
        )
        self.notice_delay = Histogram(
            "amibot_notice_delay_seconds",
            "From a notice being recorded to Slack accepting it",
            buckets=(0.1, 0.5, 1, 2, 5, 15, 30, 60, 300, 900),
            registry=self.registry,
        )
        self.polls = Counter("amibot_tracker_polls", "Tracker polls", registry=self.registry)

    def aws_call(self, service: str, operation: str, outcome: str) -> None:
        self.aws_calls.labels(service, operation, outcome).inc()

    def slack_call(self, method: str, outcome: str) -> None:
        self.slack_calls.labels(method, outcome).inc()

    def watch(
        self, name: str, doc: str, labels: list[str], read: Callable[[], Mapping[tuple[str, ...], float]]
    ) -> None:
        """A gauge read at scrape time (from Redis)."""
        gauge = _Gauge(name, doc, labels, read)
        self._gauges.append(gauge)
        self.registry.register(gauge)

    def render(self) -> bytes:
        if not os.environ.get(MULTIPROC_ENV):
            return generate_latest(self.registry)
        every_process = CollectorRegistry()
        MultiProcessCollector(every_process)
        for gauge in self._gauges:
            every_process.register(gauge)
        return generate_latest(every_process)


class _Gauge(Collector):
    def __init__(
        self, name: str, doc: str, labels: list[str], read: Callable[[], Mapping[tuple[str, ...], float]]
    ) -> None:
        self._name, self._doc, self._labels, self._read = name, doc, labels, read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(self._name, self._doc, labels=self._labels)
        try:
            values = self._read()
        except StoreUnavailable:
            values = {}
        for label_values, value in sorted(values.items()):
            family.add_metric(list(label_values), value)
        yield family

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(self._name, self._doc, labels=self._labels)

"""``/metrics``: what a fleet's Prometheus scrapes from each kiosk.

Everything is counted where it happens once: calls through the call registry's observers, requests
upstream through the upstream client's, tool calls through the tool runner's; the certificates'
days left and the process's own figures are read at scrape time. Each app has a registry of its
own (not ``prometheus_client``'s global one), so two apps in one process never mix their counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from voicekiosk import __version__
from voicekiosk.errors import UpstreamError
from voicekiosk.ledger.store import TOKEN_COLUMNS
from voicekiosk.settings import Settings
from voicekiosk.tools.runner import Outcome
from voicekiosk.upstream.record import ENDINGS, CallRecord, EndReason

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
CALL_SECONDS = (10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)
UPSTREAM_SECONDS = (0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30)
UNKNOWN_TOOL = "(unknown)"  # a name the model made up: one label value, however many it makes up
# Each of ``Tokens``' counts as the metrics label it: (direction, kind); a bounded set.
TOKEN_LABELS = {
    name: ("output" if name.endswith("_out") else "input", "cached" if name.endswith("_cached") else name.split("_")[0])
    for name in TOKEN_COLUMNS
}

disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series: a counter's reset shows in its value already

Cost = Callable[[CallRecord], float | None]


def endpoint(path: str, what: str) -> str:
    """A request's endpoint as the metrics label it (ids left out): ``mint``, ``call``, ``hang-up``,
    ``live session``, ``live hang-up``."""
    if path.startswith("live/"):
        return "live session" if what == "call" else f"live {what}"
    return what


class Metrics:
    """The app's metrics: a ``CallObserver``, an ``UpstreamObserver`` and a ``ToolObserver``.

    Args:
      settings: the configuration (the build info names the engine and model).
      expiry: the certificates' expiry dates, read at each scrape (``certs.Certificates.expiry``).
      cost: what an ended call cost (``spend.call_cost``), None when unknown.
    """

    def __init__(self, settings: Settings, *, expiry: Callable[[], Mapping[str, datetime | None]], cost: Cost) -> None:
        self.registry = registry = CollectorRegistry()
        self._cost = cost
        self.started = Counter("voicekiosk_calls_started", "Calls started here.", registry=registry)
        self.ended = Counter("voicekiosk_calls_ended", "Calls ended, by why.", ["reason"], registry=registry)
        for reason in ENDINGS:
            self.ended.labels(reason)  # every series from 0: rate() needs it before the first
        self.active = Gauge("voicekiosk_calls_active", "Calls running now.", registry=registry)
        # A kiosk whose page is not connected is a dark screen: read from the page sockets (``watch_pages``).
        self.pages = Gauge(
            "voicekiosk_pages_connected", "Pages connected to their events socket now.", registry=registry
        )
        self.duration = Histogram(
            "voicekiosk_call_duration_seconds", "How long ended calls lasted.", buckets=CALL_SECONDS, registry=registry
        )
        self.upstream_seconds = Histogram(
            "voicekiosk_upstream_request_duration_seconds",
            "Time for OpenAI's REST answers, by endpoint (failures included).",
            ["endpoint"],
            buckets=UPSTREAM_SECONDS,
            registry=registry,
        )
        self.upstream_errors = Counter(
            "voicekiosk_upstream_errors", "Failed requests to OpenAI, by endpoint and code.", ["endpoint", "code"],
            registry=registry,
        )  # fmt: skip
        self.tokens = Counter(
            "voicekiosk_tokens",
            "Tokens of ended calls: model (voice, or the transcription of what visitors said), direction"
            " (input, output), kind (text, audio, image, cached: input read from the cache, other: not"
            " split by OpenAI), source (server: OpenAI's count on the call's sideband, or page).",
            ["model", "direction", "kind", "source"],
            registry=registry,
        )
        for labels in TOKEN_LABELS.values():
            for source in ("server", "page"):
                self.tokens.labels("voice", *labels, source)
            self.tokens.labels("transcription", *labels, "server")
        self.billed = Counter(
            "voicekiosk_billed_seconds", "Seconds billed by per-minute engines (ended calls).", registry=registry
        )
        self.cost = Counter(
            "voicekiosk_estimated_cost_usd", "Estimated cost of ended calls whose cost is known.", registry=registry
        )
        self.cost_unknown = Counter(
            "voicekiosk_calls_cost_unknown", "Ended calls whose cost is unknown (not in the cost).", registry=registry
        )
        self.tool_calls = Counter(
            "voicekiosk_tool_calls", "Tool calls, by tool and outcome (ok, failed).", ["tool", "outcome"],
            registry=registry,
        )  # fmt: skip
        Info("voicekiosk_build", "This server.", registry=registry).info(
            {"version": __version__, "engine": settings.engine, "model": settings.model}
        )
        registry.register(_CertificateDays(expiry))
        ProcessCollector(registry=registry)  # memory, file descriptors, CPU, start time

    def watch_pages(self, connected: Callable[[], int]) -> None:
        """Read the pages connected now from ``connected`` at each scrape."""
        self.pages.set_function(connected)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric, now."""
        return generate_latest(self.registry)

    # -- CallObserver --------------------------------------------------------------------------

    def call_started(self, record: CallRecord) -> None:
        self.started.inc()
        self.active.inc()

    def call_ended(self, record: CallRecord, reason: EndReason) -> None:
        self.active.dec()
        self.ended.labels(reason).inc()
        self.duration.observe(record.seconds)
        for name, labels in TOKEN_LABELS.items():
            page = getattr(record.page_tokens, name)
            self.tokens.labels("voice", *labels, "server").inc(getattr(record.tokens, name) - page)
            self.tokens.labels("voice", *labels, "page").inc(page)
            self.tokens.labels("transcription", *labels, "server").inc(getattr(record.heard, name))
        if record.billed_seconds is not None:
            self.billed.inc(record.billed_seconds)
        cost = self._cost(record)
        if cost is None:
            self.cost_unknown.inc()
        else:
            self.cost.inc(max(0.0, cost))

    # -- UpstreamObserver ----------------------------------------------------------------------

    def upstream_answered(self, path: str, what: str, seconds: float, error: UpstreamError | None) -> None:
        name = endpoint(path, what)
        self.upstream_seconds.labels(name).observe(seconds)
        if error is not None:
            self.upstream_errors.labels(name, error.code).inc()

    # -- ToolObserver --------------------------------------------------------------------------

    def tool_ran(self, name: str | None, outcome: Outcome) -> None:
        self.tool_calls.labels(name or UNKNOWN_TOOL, "ok" if outcome.ok else "failed").inc()

    @staticmethod
    def counts(counter: Counter) -> dict[tuple[str, ...], float]:
        """A counter's values now, by its label values (``()`` for one without labels)."""
        return {
            tuple(sample.labels.values()): sample.value
            for metric in counter.collect()
            for sample in metric.samples
            if sample.name.endswith("_total")
        }


class _CertificateDays(Collector):
    """``voicekiosk_certificate_days_left{certificate="ca"|"server"}``, read at each scrape."""

    def __init__(self, expiry: Callable[[], Mapping[str, datetime | None]]) -> None:
        self.expiry = expiry

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "voicekiosk_certificate_days_left", "Days until the certificate expires.", labels=["certificate"]
        )
        now = datetime.now(UTC)
        for name, not_after in self.expiry().items():
            if not_after is not None:
                family.add_metric([name], round((not_after - now).total_seconds() / 86400, 2))
        yield family

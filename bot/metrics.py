"""Prometheus metrics: counters the bot bumps, gauges read from the database at scrape time.

Each `Metrics` has its own CollectorRegistry (not prometheus_client's global one), so tests and
several applications in one process never clash. Label values must come from small fixed sets
(update kinds, error classes), never from user input: every label value is a new time series.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from bot.clock import Clock, SystemClock
from storage import outbox as outbox_store
from storage.db import Database

logger = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """How many outbox messages wait and how old the oldest one is."""

    depth: int
    oldest_age_seconds: float


def outbox_stats_from(db: Database, clock: Clock | None = None) -> Callable[[], OutboxStats]:
    """A callable that reads the outbox backlog from the database (for scrape time)."""
    clock = clock or SystemClock()

    def read() -> OutboxStats:
        with db.session() as session:
            depth, oldest = outbox_store.backlog(session)
        return OutboxStats(depth, _age(clock.now(), oldest))

    return read


def _age(now: datetime, oldest: datetime | None) -> float:
    if oldest is None:
        return 0.0
    if oldest.tzinfo is None:  # a raw SQLite value that skipped the UTC type decorator
        oldest = oldest.replace(tzinfo=UTC)
    return max(0.0, (now - oldest).total_seconds())


class _ScrapeTimeCollector(Collector):
    """Gauges computed when Prometheus scrapes: outbox backlog and leadership."""

    def __init__(
        self,
        outbox: Callable[[], OutboxStats] | None,
        leader: Callable[[], bool] | None,
    ) -> None:
        self._outbox = outbox
        self._leader = leader

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self._outbox is not None:
            try:
                stats = self._outbox()
            except Exception as exc:  # the database is down: leave the gauges out, say so
                logger.warning("outbox metrics unavailable (%s)", type(exc).__name__)
                yield GaugeMetricFamily(
                    "buurtstem_outbox_stats_up", "1 when the outbox backlog could be read.", 0
                )
            else:
                yield GaugeMetricFamily(
                    "buurtstem_outbox_stats_up", "1 when the outbox backlog could be read.", 1
                )
                yield GaugeMetricFamily(
                    "buurtstem_outbox_depth",
                    "Outbox messages waiting to be sent (pending or sending).",
                    stats.depth,
                )
                yield GaugeMetricFamily(
                    "buurtstem_outbox_oldest_age_seconds",
                    "Age of the oldest waiting outbox message (0 when none waits).",
                    stats.oldest_age_seconds,
                )
        if self._leader is not None:
            yield GaugeMetricFamily(
                "buurtstem_leader",
                "1 when this instance runs the scheduled work.",
                1 if self._leader() else 0,
            )


class Metrics:
    """The metric objects of one bot application, with small methods to bump them."""

    def __init__(
        self,
        *,
        outbox: Callable[[], OutboxStats] | None = None,
        leader: Callable[[], bool] | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.updates_handled = Counter(
            "buurtstem_updates_handled",
            "Telegram updates handled, by kind (message, callback_query, my_chat_member, ...).",
            ["kind"],
            registry=self.registry,
        )
        self.answers_stored = Counter(
            "buurtstem_answers_stored", "Survey answers committed.", registry=self.registry
        )
        self.digests_sent = Counter(
            "buurtstem_digests_sent", "Digests decided for alliances.", registry=self.registry
        )
        self.messages_sent = Counter(
            "buurtstem_messages_sent",
            "Outbox messages delivered to the Bot API, by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.errors = Counter(
            "buurtstem_errors",
            "Errors, by kind (handler, outbox, job, bot_api, database, ...).",
            ["kind"],
            registry=self.registry,
        )
        self.updates_repeated = Counter(
            "buurtstem_updates_repeated",
            "Updates Telegram delivered again after they were handled: ignored.",
            registry=self.registry,
        )
        self.updates_skipped = Counter(
            "buurtstem_updates_skipped",
            "Updates the library could not read: skipped (never logged with their content).",
            registry=self.registry,
        )
        self.bot_api_retries = Counter(
            "buurtstem_bot_api_retries",
            "Bot API calls made again after a refusal or network failure, by reason "
            "(429, 502, 503, 504, network).",
            ["reason"],
            registry=self.registry,
        )
        self.replies_lost = Counter(
            "buurtstem_replies_lost",
            "Replies to residents and groups that Telegram finally refused or that could not be "
            "sent, by reason (blocked, refused, flood, network).",
            ["reason"],
            registry=self.registry,
        )
        self.registry.register(_ScrapeTimeCollector(outbox, leader))

    def update_handled(self, kind: str) -> None:
        """Count one handled update of `kind`."""
        self.updates_handled.labels(kind=kind).inc()

    def answer_stored(self) -> None:
        """Count one committed answer."""
        self.answers_stored.inc()

    def digest_sent(self) -> None:
        """Count one digest."""
        self.digests_sent.inc()

    def message_sent(self, kind: str) -> None:
        """Count one outbox message delivered."""
        self.messages_sent.labels(kind=kind).inc()

    def error(self, kind: str) -> None:
        """Count one error of `kind`."""
        self.errors.labels(kind=kind).inc()

    def update_repeated(self) -> None:
        """Count one update ignored because it was handled before."""
        self.updates_repeated.inc()

    def update_skipped(self) -> None:
        """Count one unreadable update skipped."""
        self.updates_skipped.inc()

    def bot_api_retry(self, method: str, reason: str) -> None:
        """Count one Bot API call made again (the method is not a label: kept few)."""
        self.bot_api_retries.labels(reason=reason).inc()

    def reply_lost(self, reason: str) -> None:
        """Count one reply that did not reach its chat."""
        self.replies_lost.labels(reason=reason).inc()

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric (may query the database)."""
        return generate_latest(self.registry)

"""``GET /metrics`` in Prometheus's text format, and the HTTP request series.

Not public by accident: with ``METRICS_TOKEN`` set, a scrape must send ``Authorization: Bearer <token>``;
without it, only peers in ``METRICS_ALLOW_FROM`` (loopback by default) get an answer, and never a request that
came through a proxy (``X-Forwarded-For`` / ``Forwarded``: behind a proxy on the same machine every client
looks like loopback). Everyone else gets a 404, as if there were no such route.

The queue depths, unacknowledged messages and the age of the oldest queued upload are read at scrape time (a
collector below), so they are right however many processes serve the scrapes.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Iterator
from time import perf_counter

import redis
from flask import Flask, Response, abort, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from config import ALL_QUEUES
from domain import operations
from models import metrics

log = logging.getLogger(__name__)

#: The queues the workers consume (config: task_routes and task_default_queue).
QUEUES = ALL_QUEUES


def broker_client(app: Flask) -> redis.Redis:
    """A short-timeout client on the broker, for /metrics and /readyz (never blocks a probe for long)."""
    client = app.extensions.get("metrics.broker")
    if client is None:
        client = redis.Redis.from_url(app.config["CELERY_BROKER_URL"], socket_connect_timeout=1, socket_timeout=2)
        app.extensions["metrics.broker"] = client
    return client


class BacklogCollector(Collector):
    """Queue depths and the oldest queued upload, read when scraped."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily("strava_celery_queue_length", "Messages waiting in a Celery queue.",
                                  labels=["queue"])
        unacked = GaugeMetricFamily(
            "strava_celery_unacked_messages",
            "Messages handed to a worker and not yet acknowledged (running, or orphaned by a killed worker).")
        up = GaugeMetricFamily("strava_broker_up", "1 when the broker answered this scrape.")
        try:
            depths = operations.queue_depths(broker_client(self.app), QUEUES)
            for queue in QUEUES:
                depth.add_metric([queue], depths[queue])
            unacked.add_metric([], depths[operations.UNACKED_KEY])
            up.add_metric([], 1)
        except redis.RedisError:
            up.add_metric([], 0)
        yield from (depth, unacked, up)
        oldest = GaugeMetricFamily("strava_upload_oldest_queued_age_seconds",
                                   "Age of the oldest upload waiting in `queued` (0 when none waits).")
        try:
            oldest.add_metric([], operations.oldest_queued_upload_age_s())
        except Exception:  # a database outage: the series is absent from this scrape rather than wrong
            log.warning("could not read the upload backlog", exc_info=True)
            return
        yield oldest


def _allowed() -> bool:
    token: str = current_app.config["METRICS_TOKEN"]
    if token:
        return hmac.compare_digest(request.headers.get("Authorization", ""), f"Bearer {token}")
    if request.headers.get("X-Forwarded-For") or request.headers.get("Forwarded"):
        return False
    try:
        peer = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    return any(peer in ipaddress.ip_network(net.strip(), strict=False)
               for net in current_app.config["METRICS_ALLOW_FROM"].split(",") if net.strip())


def _route() -> str:
    # The rule's template, never the path: /api/v1/activities/<int:activity_id>, not one series per activity.
    return request.url_rule.rule if request.url_rule is not None else "unmatched"


def register_metrics(app: Flask) -> None:
    collector = BacklogCollector(app)

    @app.before_request
    def _start_timer() -> None:
        g.metrics_started = perf_counter()

    @app.after_request
    def _record(response: Response) -> Response:
        started = g.pop("metrics_started", None)
        if started is not None:
            route = _route()
            metrics.HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
            if route != "/api/v1/ws":  # a socket's "request" lasts as long as the socket
                metrics.HTTP_LATENCY.labels(request.method, route).observe(perf_counter() - started)
        return response

    @app.get("/metrics")
    def metrics_view() -> Response:
        if not _allowed():
            abort(404)
        # The scrape-time collector lives in a registry of its own per scrape, never the global one: tests
        # build many apps in one process.
        backlog = CollectorRegistry(auto_describe=False)
        backlog.register(collector)
        body = generate_latest(metrics.registry()) + generate_latest(backlog)
        return Response(body, content_type=CONTENT_TYPE_LATEST)


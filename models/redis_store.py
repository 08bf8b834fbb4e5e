"""The Redis connection shared by web and workers (leaderboards, feeds, locks, pub/sub).

Everything kept here is a cache of PostgreSQL truth and can be rebuilt from it.
"""

from __future__ import annotations

import redis


class RedisStore:
    def __init__(self) -> None:
        self._client: redis.Redis | None = None
        self.url: str | None = None

    def configure(self, url: str) -> None:
        if self.url == url and self._client is not None:
            return
        self.url = url
        # Short timeouts: a Redis outage must turn into a fast error (readyz 503, a retried task),
        # never a request thread hanging for the OS TCP timeout.
        self._client = redis.Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30, decode_responses=False,
        )

    @property
    def client(self) -> redis.Redis:
        if self._client is None:
            raise RuntimeError("Redis is not configured; create the app first")
        return self._client

    def reset_after_fork(self) -> None:
        if self._client is not None:
            self._client.connection_pool.reset()


redis_store = RedisStore()

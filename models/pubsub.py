"""Real-time fan-out through Redis pub/sub (the publishing side) and socket presence.

Web processes and Celery workers publish typed JSON frames to per-user and per-live-session channels; every web
process subscribes (see ``webapp.realtime``) to the channels of the sockets it holds and writes the frames out.
Pub/sub is fire-and-forget on purpose: every frame that matters (a chat message, a notification) is committed to
PostgreSQL first, and a client that was away catches up from there with the last id it saw.

Channel names carry a prefix plus the Redis database index: pub/sub channels are global to a Redis server while
keys are per database, so two deployments (or two parallel test workers) sharing one server never hear each other.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

import redis
from sqlalchemy.orm import Session, scoped_session

from models.db import on_commit, staged

Frame = dict[str, Any]
log = logging.getLogger(__name__)

#: Control frames travel on a user's channel but are consumed by the hubs, never written to a socket. ``encode``
#: keeps key order, so the hub recognises them by their first bytes without parsing every frame.
REVOKE_TYPE = "hub.revoke"
CONTROL_PREFIX = b'{"type":"hub.'

#: Presence entries expire unless the holding process refreshes them; a crashed process ages out on its own.
PRESENCE_TTL_S = 75


def encode(frame: Frame) -> bytes:
    return json.dumps(frame, separators=(",", ":"), default=str).encode()


class PubSub:
    def __init__(self) -> None:
        self._client: redis.Redis | None = None
        self.url: str | None = None
        self.prefix = "sp1:0:"

    def configure(self, url: str, prefix: str = "sp1") -> None:
        if self.url == url and self._client is not None:
            return
        self.url = url
        self._client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5,
                                            health_check_interval=30)
        db_index = self._client.connection_pool.connection_kwargs.get("db", 0)
        self.prefix = f"{prefix}:{db_index}:"

    @property
    def client(self) -> redis.Redis:
        if self._client is None:
            raise RuntimeError("pub/sub Redis is not configured; create the app first")
        return self._client

    def reset_after_fork(self) -> None:
        if self._client is not None:
            self._client.connection_pool.reset()

    # -- channels ---------------------------------------------------------------------------------------------
    def user_channel(self, user_id: int) -> str:
        return f"{self.prefix}u:{user_id}"

    def live_channel(self, session_id: int) -> str:
        return f"{self.prefix}live:{session_id}"

    # -- publishing -------------------------------------------------------------------------------------------
    def publish(self, channel: str, frame: Frame) -> int:
        """Returns how many subscribers (web processes, not sockets) received it."""
        return int(self.client.publish(channel, encode(frame)))

    def publish_users(self, user_ids: Iterable[int], frame: Frame) -> None:
        data = encode(frame)
        pipe = self.client.pipeline(transaction=False)
        for user_id in set(user_ids):
            pipe.publish(self.user_channel(user_id), data)
        pipe.execute()

    def revoke(self, user_id: int, channels: Mapping[str, Frame | None]) -> None:
        """Take ``channels`` away from every socket of ``user_id`` (all processes); each socket that was
        subscribed gets the channel's notice frame. Sent on the user's own channel, read by the hubs only."""
        if channels:
            self.publish(self.user_channel(user_id), {
                "type": REVOKE_TYPE, "channels": [{"channel": c, "notice": n} for c, n in channels.items()]})

    # -- presence ---------------------------------------------------------------------------------------------
    def _presence_key(self, user_id: int) -> str:
        return f"{self.prefix}online:{user_id}"

    def mark_online(self, user_id: int, connection_id: str, ttl_s: int = PRESENCE_TTL_S) -> None:
        key = self._presence_key(user_id)
        now = time.time()
        pipe = self.client.pipeline(transaction=False)
        pipe.zadd(key, {connection_id: now + ttl_s})
        pipe.zremrangebyscore(key, "-inf", now)
        pipe.expire(key, ttl_s * 2)
        pipe.execute()

    def mark_offline(self, user_id: int, connection_id: str) -> None:
        self.client.zrem(self._presence_key(user_id), connection_id)

    def online(self, user_ids: Iterable[int]) -> set[int]:
        """The users among ``user_ids`` holding at least one live socket anywhere."""
        ids = list(dict.fromkeys(user_ids))
        if not ids:
            return set()
        now = time.time()
        pipe = self.client.pipeline(transaction=False)
        for user_id in ids:
            pipe.zcount(self._presence_key(user_id), f"({now}", "+inf")
        return {user_id for user_id, count in zip(ids, pipe.execute(), strict=True) if count}

    def is_online(self, user_id: int) -> bool:
        return user_id in self.online([user_id])


pubsub = PubSub()


# -- publish after commit ---------------------------------------------------------------------------------------
# A frame about a row must never reach a socket before the row is committed (the client would fetch it and get a
# 404) nor at all when the transaction rolls back. Callers stage frames on the session; they go out on commit.

def publish_on_commit(session: Session | scoped_session[Session], user_ids: Iterable[int], frame: Frame) -> None:
    pending: list[tuple[tuple[int, ...], Frame]] = staged(session, "pubsub", list)
    pending.append((tuple(user_ids), frame))


def _publish_staged(pending: list[tuple[tuple[int, ...], Frame]]) -> None:
    try:
        for user_ids, frame in pending:
            pubsub.publish_users(user_ids, frame)
    except (redis.RedisError, RuntimeError):
        # Live delivery is best effort; the rows are committed and clients catch up from PostgreSQL.
        log.warning("pub/sub publish failed; clients will catch up", exc_info=True)


on_commit("pubsub", _publish_staged)

"""The per-process socket hub: one Redis pub/sub listener fanning published frames out to the local sockets.

Every web process holds one ``Hub``. It SUBSCRIBEs (once, refcounted) to the channel of each user with a local
socket and to the channels handlers attach a connection to, and UNSUBSCRIBEs when the last local socket for a
channel goes. A published frame is decoded once and queued on each local connection.

Each ``Connection`` has a bounded outbound queue drained by its own writer thread, so a slow or dead client only
ever fills its own queue: when that overflows (or one write stays stuck), the socket is closed with 4008 and the
client resyncs from PostgreSQL. Only ``threading``/``queue`` primitives are used, so the same code runs on real
threads (werkzeug, gunicorn gthread) and on greenlets once gevent has monkey-patched them.

Lost pub/sub connections are re-established with capped exponential backoff; every channel is subscribed again
and local sockets get a ``resync`` frame, because whatever was published during the gap is gone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import redis
from simple_websocket import ConnectionClosed

from models import metrics
from models.pubsub import CONTROL_PREFIX, REVOKE_TYPE, Frame, encode, pubsub
from webapp.realtime.frames import FrameError

log = logging.getLogger(__name__)

# Close codes (documented in docs/realtime.md). 4xxx are ours; the rest are RFC 6455.
CLOSE_NORMAL = 1000
CLOSE_TOO_BIG = 1009  # sent by simple-websocket itself above WS_HARD_MAX_FRAME_BYTES
CLOSE_INTERNAL = 1011
CLOSE_TRY_AGAIN = 1013
CLOSE_UNAUTHENTICATED = 4401
CLOSE_TOO_SLOW = 4008
TOO_SLOW_REASON = "too slow; reconnect and resync"
#: The listener times a message through Redis to itself this often (the pub/sub lag series of /metrics).
PROBE_EVERY_S = 15.0
PROBE_PREFIX = b"probe:"


@dataclass(frozen=True)
class Settings:
    """Socket limits, read from the app config per connection (so tests and deployments can tune them)."""

    send_queue: int = 256
    max_frame_bytes: int = 32 * 1024
    hard_max_frame_bytes: int = 256 * 1024
    rate_per_s: float = 10.0
    rate_burst: int = 40
    heartbeat_s: float = 25.0
    presence_s: float = 25.0
    write_timeout_s: float = 10.0
    max_subscriptions: int = 100
    ticket_ttl_s: int = 30

    @classmethod
    def from_config(cls, config: Any) -> Settings:
        d = cls()
        return cls(
            send_queue=int(config.get("WS_SEND_QUEUE", d.send_queue)),
            max_frame_bytes=int(config.get("WS_MAX_FRAME_BYTES", d.max_frame_bytes)),
            hard_max_frame_bytes=int(config.get("WS_HARD_MAX_FRAME_BYTES", d.hard_max_frame_bytes)),
            rate_per_s=float(config.get("WS_RATE_PER_S", d.rate_per_s)),
            rate_burst=int(config.get("WS_RATE_BURST", d.rate_burst)),
            heartbeat_s=float(config.get("WS_HEARTBEAT_S", d.heartbeat_s)),
            presence_s=float(config.get("WS_PRESENCE_S", d.presence_s)),
            write_timeout_s=float(config.get("WS_WRITE_TIMEOUT_S", d.write_timeout_s)),
            max_subscriptions=int(config.get("WS_MAX_SUBSCRIPTIONS", d.max_subscriptions)),
            ticket_ttl_s=int(config.get("WS_TICKET_TTL_S", d.ticket_ttl_s)),
        )

    @property
    def tick_s(self) -> float:
        """How often an idle connection's own loop wakes to refresh presence and check for a stuck writer."""
        return max(0.05, min(5.0, self.presence_s, self.write_timeout_s / 2))


class TokenBucket:
    """Inbound frame budget: ``burst`` frames at once, refilled at ``rate`` per second (pure; caller owns time)."""

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.stamp = now

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class HubUnavailable(RuntimeError):
    """Redis pub/sub could not confirm a subscription in time."""


_STOP = object()  # writer sentinel


class Connection:
    """One authenticated socket (implements ``webapp.realtime.frames.Connection``)."""

    def __init__(self, hub: Hub, ws: Any, user_id: int, settings: Settings) -> None:
        self.id = secrets.token_hex(8)
        self.user_id = user_id
        self.hub = hub
        self.ws = ws
        self.settings = settings
        self.channels: set[str] = set()
        self.bucket = TokenBucket(settings.rate_per_s, settings.rate_burst, time.monotonic())
        self.closing: tuple[int, str] | None = None
        #: When the ID token that opened (or last refreshed) the socket expires; the socket closes then.
        self.auth_expires_at: float | None = None
        self.expiry_warned = False
        self._send_close_frame = False
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=settings.send_queue)
        self._lock = threading.Lock()
        self._write_started: float | None = None
        self.writer_done = threading.Event()
        self._writer = threading.Thread(target=self._write_loop, name=f"ws-writer-{self.id}", daemon=True)

    def __repr__(self) -> str:
        return f"<Connection {self.id} user={self.user_id}>"

    # -- the handler-facing protocol --------------------------------------------------------------------------
    def send(self, frame: Frame) -> bool:
        return self.send_text(encode(frame).decode())

    def subscribe(self, channel: str) -> None:
        if channel in self.channels:
            return
        if len(self.channels) >= self.settings.max_subscriptions:
            raise FrameError("too_many_subscriptions",
                             f"At most {self.settings.max_subscriptions} subscriptions per socket.", status=429)
        self.channels.add(channel)
        try:
            self.hub.attach(self, channel)
        except HubUnavailable:
            self.channels.discard(channel)
            self.hub.detach(self, channel)
            raise FrameError("unavailable", "Live updates are temporarily unavailable; retry shortly.",
                             status=503) from None

    def unsubscribe(self, channel: str) -> None:
        if channel in self.channels:
            self.channels.discard(channel)
            self.hub.detach(self, channel)

    # -- outbound ---------------------------------------------------------------------------------------------
    def send_text(self, text: str) -> bool:
        """Queue an encoded frame without ever blocking; overflowing the queue closes the socket (4008)."""
        if self.closing is not None:
            return False
        try:
            self._queue.put_nowait(text)
            return True
        except queue.Full:
            log.info("socket %s of user %s is too slow; closing it", self.id, self.user_id)
            self.close(CLOSE_TOO_SLOW, TOO_SLOW_REASON)
            return False

    def start(self) -> None:
        self._writer.start()

    def close(self, code: int | None = None, reason: str = "") -> None:
        """Stop writing; with a ``code`` the writer sends that close frame first. Idempotent, never blocks."""
        with self._lock:
            if self.closing is not None:
                return
            self.closing = (code or CLOSE_NORMAL, reason)
            self._send_close_frame = code is not None
        # What is still queued is dropped: the client catches up from PostgreSQL after it reconnects.
        while True:
            try:
                self._queue.put_nowait(_STOP)
                return
            except queue.Full:
                try:
                    while True:
                        self._queue.get_nowait()
                except queue.Empty:
                    pass

    def _write_loop(self) -> None:
        sent_close = False
        try:
            while True:
                item = self._queue.get()
                if item is _STOP or self.closing is not None:
                    break
                self._write_started = time.monotonic()
                self.ws.send(item)
                self._write_started = None
            if self._send_close_frame and self.closing is not None:
                self._write_started = time.monotonic()
                self.ws.close(reason=self.closing[0], message=self.closing[1])
                sent_close = True
        except (ConnectionClosed, OSError):
            pass
        except Exception:
            log.exception("socket writer failed")
        finally:
            self._write_started = None
            if self.closing is None:  # the write failed: the socket is gone
                self.close()
            reader = getattr(self.ws, "thread", None)
            if sent_close and reader is not None:
                # Let the client answer our close frame before the TCP connection goes (it then reads the code).
                reader.join(timeout=2.0)
            self.kill_socket()
            self.writer_done.set()

    def writer_stuck(self, now: float) -> bool:
        started = self._write_started
        return started is not None and now - started > self.settings.write_timeout_s

    def kill_socket(self) -> None:
        """Shut the TCP socket down: wakes simple-websocket's reader (and a writer stuck in send())."""
        sock = getattr(self.ws, "sock", None)
        if sock is None:
            return
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class Hub:
    """One Redis pub/sub listener per process, shared by all the sockets this process serves."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.pid = os.getpid()
        token = secrets.token_hex(8)
        self.control_channel = f"{pubsub.prefix}hub:{token}"
        self.client_name = f"ws-hub-{self.pid}-{token}"  # visible in CLIENT LIST
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._channels: dict[str, set[Connection]] = {}
        self._subscribed: set[str] = set()  # as sent to Redis (listener thread only writes it)
        self._confirmed: set[str] = set()  # Redis acknowledged the SUBSCRIBE
        self._dirty = False
        self.connections: dict[str, Connection] = {}
        self.reconnects = 0
        self._resync_pending = False
        self.delivered = 0
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="ws-hub", daemon=True)

    # -- lifecycle --------------------------------------------------------------------------------------------
    def start(self, timeout: float = 5.0) -> None:
        self._thread.start()
        with self._cond:
            if not self._cond.wait_for(lambda: self.control_channel in self._confirmed, timeout):
                raise HubUnavailable("pub/sub listener did not start")

    def stop(self) -> None:
        self._stopping = True
        self._wake()

    # -- connections ------------------------------------------------------------------------------------------
    def add(self, conn: Connection) -> None:
        with self._lock:
            self.connections[conn.id] = conn
        metrics.OPEN_SOCKETS.inc()
        conn.channels.add(pubsub.user_channel(conn.user_id))
        self.attach(conn, pubsub.user_channel(conn.user_id))

    def remove(self, conn: Connection) -> None:
        with self._lock:
            gone = self.connections.pop(conn.id, None)
        if gone is not None:
            metrics.OPEN_SOCKETS.dec()
        for channel in list(conn.channels):
            self.detach(conn, channel)
        conn.channels.clear()

    def attach(self, conn: Connection, channel: str, timeout: float = 5.0) -> None:
        """Deliver ``channel`` to ``conn``; returns once Redis confirmed the subscription (so nothing published
        after this returns is missed)."""
        with self._cond:
            subscribers = self._channels.setdefault(channel, set())
            subscribers.add(conn)
            if channel in self._confirmed:
                return
            self._dirty = True
        self._wake()
        with self._cond:
            if not self._cond.wait_for(lambda: channel in self._confirmed, timeout):
                raise HubUnavailable(f"no subscription to {channel} within {timeout} s")

    def detach(self, conn: Connection, channel: str) -> None:
        with self._lock:
            subscribers = self._channels.get(channel)
            if subscribers is None:
                return
            subscribers.discard(conn)
            if subscribers:
                return
            del self._channels[channel]
            self._dirty = True
        self._wake()

    def local_channels(self) -> set[str]:
        with self._lock:
            return set(self._channels)

    def _probe(self) -> None:
        """Publish a timestamp to our own control channel: the time it takes to come back through Redis and
        this listener's queue is the pub/sub lag every socket of this process sees (strava_pubsub_lag_seconds)."""
        # An outage is reported by the listener's own reconnect loop.
        with contextlib.suppress(redis.RedisError):
            pubsub.client.publish(self.control_channel, PROBE_PREFIX + repr(time.time()).encode())

    def _wake(self) -> None:
        """Interrupt the listener's wait so it (un)subscribes now: a message on its private control channel."""
        try:
            pubsub.client.publish(self.control_channel, b"")
        except redis.RedisError:
            log.warning("could not wake the pub/sub listener", exc_info=True)

    # -- the listener thread ----------------------------------------------------------------------------------
    def _run(self) -> None:
        backoff = 0.1
        first = True
        while not self._stopping:
            client = redis.Redis.from_url(self.url, socket_connect_timeout=2, socket_timeout=10,
                                          socket_keepalive=True, health_check_interval=15,
                                          client_name=self.client_name)
            ps = client.pubsub(ignore_subscribe_messages=False)
            try:
                ps.subscribe(self.control_channel)
                with self._lock:
                    self._subscribed = {self.control_channel}
                    self._confirmed = set()
                    self._dirty = True
                # After a reconnect the sockets are told to resync only once every channel is subscribed again:
                # a client that refetches on "resync" must not miss what is published while that is under way.
                self._resync_pending = not first
                first = False
                backoff = 0.1
                self._listen(ps)
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                log.warning("pub/sub connection lost (%s); reconnecting in %.1f s", exc, backoff)
            except Exception:
                log.exception("pub/sub listener failed; restarting it in %.1f s", backoff)
            finally:
                try:
                    ps.close()
                    client.close()
                except Exception:
                    pass
            if not self._stopping:
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _listen(self, ps: redis.client.PubSub) -> None:
        next_probe = 0.0
        while not self._stopping:
            if self._dirty:
                self._reconcile(ps)
            if time.monotonic() >= next_probe:
                next_probe = time.monotonic() + PROBE_EVERY_S
                self._probe()
            message = ps.get_message(timeout=1.0)
            if message is None:
                continue
            kind = message["type"]
            channel = message["channel"].decode()
            if kind == "message":
                if channel != self.control_channel:
                    self._deliver(channel, message["data"])
                elif message["data"].startswith(PROBE_PREFIX):
                    sent = float(message["data"][len(PROBE_PREFIX):])
                    metrics.PUBSUB_LAG.observe(max(0.0, time.time() - sent))
            elif kind == "subscribe":
                with self._cond:
                    if channel in self._subscribed:
                        self._confirmed.add(channel)
                    self._cond.notify_all()
                    resubscribed = self._resync_pending and not self._dirty and self._subscribed <= self._confirmed
                if resubscribed:
                    self._resync_pending = False
                    self.reconnects += 1
                    log.warning("pub/sub reconnected; %d local sockets told to resync", len(self.connections))
                    self._broadcast_local({"type": "resync", "reason": "pubsub_reconnected"})

    def _reconcile(self, ps: redis.client.PubSub) -> None:
        """Bring Redis's subscriptions in line with what local sockets want (one SUBSCRIBE/UNSUBSCRIBE each)."""
        with self._lock:
            self._dirty = False
            wanted = set(self._channels) | {self.control_channel}
            to_add = wanted - self._subscribed
            to_drop = self._subscribed - wanted
            self._subscribed = wanted
            self._confirmed -= to_drop
        if to_add:
            ps.subscribe(*to_add)
        if to_drop:
            ps.unsubscribe(*to_drop)

    def _deliver(self, channel: str, data: bytes) -> None:
        with self._lock:
            targets = list(self._channels.get(channel, ()))
        if not targets:
            return
        if data.startswith(CONTROL_PREFIX):
            self._control(targets, json.loads(data))
            return
        text = data.decode()
        for conn in targets:
            conn.send_text(text)
        self.delivered += len(targets)

    def _control(self, targets: list[Connection], frame: Frame) -> None:
        """A revocation (``pubsub.revoke``): drop the listed subscriptions of these sockets and tell each
        socket that held one, e.g. a follower who was just blocked stops receiving a live session at once."""
        if frame.get("type") != REVOKE_TYPE:
            log.warning("unknown hub control frame %r", frame.get("type"))
            return
        for conn in targets:
            for item in frame.get("channels", ()):
                channel = item.get("channel")
                if channel in conn.channels:
                    conn.unsubscribe(channel)
                    if item.get("notice"):
                        conn.send(item["notice"])

    def _broadcast_local(self, frame: Frame) -> None:
        with self._lock:
            targets = list(self.connections.values())
        for conn in targets:
            conn.send(frame)


_hub: Hub | None = None
_hub_lock = threading.Lock()


def get_hub() -> Hub:
    """This process's hub, started on first use (after any fork: a child never inherits its parent's)."""
    global _hub
    hub = _hub
    if hub is not None and hub.pid == os.getpid() and hub._thread.is_alive():
        return hub
    with _hub_lock:
        if _hub is None or _hub.pid != os.getpid() or not _hub._thread.is_alive():
            if pubsub.url is None:
                raise HubUnavailable("pub/sub is not configured")
            hub = Hub(pubsub.url)
            try:
                hub.start()
            except HubUnavailable:
                hub.stop()
                raise
            _hub = hub
        return _hub

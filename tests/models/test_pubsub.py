"""Pub/sub publishing side: frames go out only after a commit, channels are namespaced, presence ages out."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from flask import Flask

from models import db
from models.pubsub import encode, publish_on_commit, pubsub


@pytest.fixture
def listener(app: Flask) -> Any:
    sub = pubsub.client.pubsub(ignore_subscribe_messages=True)
    sub.subscribe(pubsub.user_channel(7), pubsub.user_channel(8))
    deadline = time.monotonic() + 2
    while sub.get_message(timeout=0.05) is None and time.monotonic() < deadline:
        pass  # drain the (ignored) subscribe confirmations
    yield sub
    sub.close()


def received(sub: Any, wait_s: float = 0.3) -> list[tuple[str, dict[str, Any]]]:
    out = []
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        message = sub.get_message(timeout=0.05)
        if message is not None:
            out.append((message["channel"].decode(), json.loads(message["data"])))
    return out


def test_channels_carry_prefix_and_db_index(app: Flask) -> None:
    index = pubsub.client.connection_pool.connection_kwargs.get("db", 0)
    assert pubsub.user_channel(5) == f"{app.config['PUBSUB_PREFIX']}:{index}:u:5"
    assert pubsub.live_channel(5).endswith(":live:5")


def test_frame_goes_out_only_after_commit(app: Flask, committed: None, listener: Any) -> None:
    session = db.session()
    publish_on_commit(session, [7, 8, 7], {"type": "probe", "n": 1})
    assert received(listener, 0.2) == []  # staged, not sent
    session.commit()
    got = received(listener)
    assert sorted(channel for channel, _ in got) == [pubsub.user_channel(7), pubsub.user_channel(8)]
    assert all(frame == {"type": "probe", "n": 1} for _, frame in got)


def test_rollback_drops_staged_frames(app: Flask, committed: None, listener: Any) -> None:
    publish_on_commit(db.session, [7], {"type": "probe", "n": 2})  # the scoped_session proxy works too
    db.session.rollback()
    db.session.commit()  # a later commit of the same session must not resurrect them
    assert received(listener) == []


def test_presence_expires_and_clears(app: Flask, redis_clean: Any) -> None:
    pubsub.mark_online(1, "conn-a", ttl_s=60)
    pubsub.mark_online(2, "conn-b", ttl_s=1)
    assert pubsub.online([1, 2, 3]) == {1, 2}
    time.sleep(1.1)
    assert pubsub.online([1, 2, 3]) == {1}
    pubsub.mark_offline(1, "conn-a")
    assert not pubsub.is_online(1)


def test_encode_is_compact_json() -> None:
    assert encode({"a": 1, "b": [1, 2]}) == b'{"a":1,"b":[1,2]}'

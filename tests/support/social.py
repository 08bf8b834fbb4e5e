"""Shared helpers of the social API tests."""

from __future__ import annotations

from typing import Any

import pytest

FEED_HOOKS = ("fan_out_activity", "enqueue_follow", "enqueue_unfollow", "enqueue_item_changed",
              "enqueue_item_removed")


def record_feed_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Replace the feed hooks with a recorder: these tests check what the services ask of the feed, and the
    feed's own behaviour is tested in test_feed.py."""
    from domain.feed import fanout as feed

    calls: list[tuple[Any, ...]] = []
    for name in FEED_HOOKS:
        monkeypatch.setattr(feed, name, lambda *args, _name=name: calls.append((_name, *args)))
    return calls


def make_activity(client: Any, headers: dict[str, str], **fields: Any) -> int:
    body = {"sport_type": "running", "start_date": "2026-03-01T07:00:00+00:00", "elapsed_time_s": 1800,
            "distance_m": 5000, **fields}
    resp = client.post("/api/v1/activities", json=body, headers=headers)
    assert resp.status_code == 201, resp.json
    return resp.json["id"]


def make_post(client: Any, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    resp = client.post("/api/v1/posts", json={"text": "Hello", **fields}, headers=headers)
    assert resp.status_code == 201, resp.json
    return resp.json

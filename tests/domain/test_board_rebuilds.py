"""Leaderboard rebuilds can't be lost: the change marks its segments in the same commit, the rebuild clears the
mark, and the sweeper sends again what a lost message left marked."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, update

from domain import board_rebuilds, jobs
from domain.segments import rematch
from models import Segment, db
from tests.domain.test_side_channels import _activity, _effort, _segment

API = "/api/v1"


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """The rebuild jobs sent, recorded instead of published (the broker is not what is tested here)."""
    calls: list[list[int]] = []
    monkeypatch.setitem(jobs._senders, jobs.SEGMENT_REBUILD_BOARDS,
                        lambda ids, countdown=None: calls.append(list(ids)))
    return calls


def _stale_since(segment_id: int) -> Any:
    db.session.expire_all()
    segment = db.session.get(Segment, segment_id)
    assert segment is not None
    return segment.boards_stale_since


def test_a_visibility_change_marks_its_segments_with_the_commit_and_the_rebuild_clears_them(client, login, sent):
    ann, ann_id = login("ann")
    activity_id = _activity(client, ann)
    segment = _segment(ann_id)
    _effort(segment, activity_id, ann_id, 100.0)
    db.session.commit()
    assert _stale_since(segment.id) is None

    assert client.patch(f"{API}/activities/{activity_id}", headers=ann,
                        json={"visibility": "only_me"}).status_code == 200
    assert _stale_since(segment.id) is not None, "marked in the change's own commit"
    assert sent == [[segment.id]], "and the rebuild sent after it"

    assert rematch.rebuild_boards([segment.id]) == 1
    assert _stale_since(segment.id) is None


def test_the_sweeper_sends_again_what_a_lost_message_left_marked(client, login, sent):
    ann, ann_id = login("ann")
    activity_id = _activity(client, ann)
    lost, fresh = _segment(ann_id, "Lost"), _segment(ann_id, "Fresh")
    for segment in (lost, fresh):
        _effort(segment, activity_id, ann_id, 100.0)
    db.session.execute(update(Segment).where(Segment.id == lost.id)
                       .values(boards_stale_since=func.now() - timedelta(minutes=10)))
    db.session.execute(update(Segment).where(Segment.id == fresh.id).values(boards_stale_since=func.now()))
    db.session.commit()

    assert board_rebuilds.sweep_stale() == 1
    assert sent == [[lost.id]], "a mark younger than the sweep delay is still in flight: left alone"
    rematch.rebuild_boards([lost.id])
    assert board_rebuilds.sweep_stale() == 0


def test_a_rolled_back_change_sends_nothing(client, login, sent):
    _, ann_id = login("ann")
    segment = _segment(ann_id)
    db.session.commit()
    board_rebuilds.rebuild_later([segment.id])
    db.session.rollback()
    assert sent == [] and _stale_since(segment.id) is None

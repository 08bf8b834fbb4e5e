"""Leaderboard rebuilds that can't be lost: marked in PostgreSQL with the change, sent after its commit, swept.

A change that affects a segment's boards (an activity's visibility or deletion, an athlete's privacy or
leaderboard preferences, efforts newly hidden by a privacy zone) calls :func:`rebuild_later` inside its
transaction: the segments get ``boards_stale_since`` in the same commit, and the rebuild job is sent after it.
The rebuild (``domain.segments.rematch.rebuild_boards``) clears the mark; a message lost on the way (broker down
at send time) leaves it, and the beat job sends the rebuild again (:func:`sweep_stale`). Board pages are
filtered against the visibility rule when read, so a late rebuild shows nothing it should not meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import func, select, update

from domain import jobs
from models import Segment, db
from models.db import on_commit, staged

#: Segments per rebuild message sent by the sweeper.
REBUILD_BATCH = 50
#: A mark older than this has lost its message (a rebuild takes well under a second per segment).
STALE_AFTER_S = 120.0


def rebuild_later(segment_ids: Iterable[int]) -> None:
    """Mark these segments' boards stale in the caller's transaction and send their rebuild after its commit."""
    ids = sorted(set(segment_ids))
    if not ids:
        return
    db.session.execute(update(Segment).where(Segment.id.in_(ids), Segment.boards_stale_since.is_(None))
                       .values(boards_stale_since=func.now()))
    pending: set[int] = staged(db.session, "boards", set)
    pending.update(ids)


def _send(ids: set[int]) -> None:
    jobs.send(jobs.SEGMENT_REBUILD_BOARDS, sorted(ids))


on_commit("boards", _send)


def sweep_stale(older_than_s: float = STALE_AFTER_S, batch: int = 500) -> int:
    """Send the rebuild of boards marked stale for longer than ``older_than_s`` (their message was lost, or its
    worker died); returns how many segments were sent."""
    ids = list(db.session.scalars(
        select(Segment.id).where(Segment.boards_stale_since < func.now() - timedelta(seconds=older_than_s))
        .order_by(Segment.boards_stale_since).limit(batch)))
    db.session.commit()
    for start in range(0, len(ids), REBUILD_BATCH):
        jobs.send(jobs.SEGMENT_REBUILD_BOARDS, ids[start:start + REBUILD_BATCH])
    return len(ids)

"""What operators ask of the running system: queue backlogs, uploads stuck in the pipeline, and whether the
Redis caches (feeds, leaderboards) still agree with PostgreSQL. Read by /metrics, /readyz and
``flask doctor``; the repairs are the ordinary rebuild paths (feed and board rebuilds, the upload sweeper).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import cast

import redis
from sqlalchemy import and_, func, or_, select

from domain.feed.fanout import followees, recent_items
from domain.segments.efforts import board_effort_rows, leaderboards
from models import Segment, Upload, db
from models.feed import FEED_SIZE, built_key, feed_key
from models.redis_store import redis_store

#: Celery's Redis transport keeps a queue's messages of priority p in "<queue>\x06\x16<p>" (p = 0 in "<queue>").
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")
#: Messages delivered to a worker and not yet acknowledged (acks_late: still being worked on, or orphaned by a
#: killed worker until the visibility timeout hands them out again).
UNACKED_KEY = "unacked"


def queue_depths(broker: redis.Redis, queues: Iterable[str]) -> dict[str, int]:
    """Messages waiting in each queue (every priority level)."""
    names = list(queues)
    pipe = broker.pipeline(transaction=False)
    for name in names:
        for suffix in _PRIORITY_SUFFIXES:
            pipe.llen(name + suffix)
    pipe.hlen(UNACKED_KEY)
    counts = pipe.execute()
    depths = {name: sum(counts[i * len(_PRIORITY_SUFFIXES):(i + 1) * len(_PRIORITY_SUFFIXES)])
              for i, name in enumerate(names)}
    depths[UNACKED_KEY] = counts[-1]
    return depths


def oldest_queued_upload_age_s() -> float:
    """Seconds since the oldest upload still waiting in ``queued`` was last touched (0 when none waits)."""
    oldest = db.session.scalar(select(func.min(Upload.updated_at)).where(Upload.status == "queued"))
    return 0.0 if oldest is None else max(0.0, (datetime.now(UTC) - oldest).total_seconds())


def stuck_uploads(queued_after_s: float, processing_after_s: float, limit: int = 100) -> list[tuple[int, str]]:
    """Uploads the sweeper would re-send: ``queued`` or ``processing`` without progress for too long."""
    now = datetime.now(UTC)
    stuck = or_(and_(Upload.status == "queued", Upload.updated_at < now - timedelta(seconds=queued_after_s)),
                and_(Upload.status == "processing",
                     Upload.updated_at < now - timedelta(seconds=processing_after_s)))
    rows = db.session.execute(select(Upload.id, Upload.status).where(stuck).order_by(Upload.id).limit(limit))
    return [(int(i), str(s)) for i, s in rows]


def feed_problems(user_id: int) -> list[str]:
    """How a built home feed differs from a rebuild from PostgreSQL (nothing when it is not built: the next
    read builds it). Compares the newest entries both sides hold, members and scores."""
    client = redis_store.client
    if not client.exists(built_key(user_id)):
        return []
    stored = cast(list[tuple[bytes, float]], client.zrevrange(feed_key(user_id), 0, FEED_SIZE - 1, withscores=True))
    have = {m.decode(): float(s) for m, s in stored}
    want = dict(recent_items(followees(user_id, merged=False), own_id=user_id))
    if len(have) >= FEED_SIZE or len(want) >= FEED_SIZE:
        # Both sides are cut at FEED_SIZE; compare only what is newer than the older of the two cut-offs.
        floor = max(min(have.values(), default=0.0), min(want.values(), default=0.0))
        have = {m: s for m, s in have.items() if s > floor}
        want = {m: s for m, s in want.items() if s > floor}
    missing = sorted(set(want) - set(have))
    extra = sorted(set(have) - set(want))
    moved = sorted(m for m in set(want) & set(have) if abs(want[m] - have[m]) > 1e-3)
    if not (missing or extra or moved):
        return []
    return [f"feed of user {user_id}: {len(missing)} missing {missing[:5]}, {len(extra)} extra {extra[:5]}, "
            f"{len(moved)} with another time"]


def built_feed_users(sample: int) -> list[int]:
    """Up to ``sample`` athletes whose feeds are built, picked at random."""
    users = [int(k.rsplit(b":", 1)[1]) for k in redis_store.client.scan_iter(match="feed:built:*", count=1000)]
    return random.sample(users, min(sample, len(users)))


def board_problems(segment_id: int) -> list[str]:
    return leaderboards().diff_segment_rows(segment_id, board_effort_rows(segment_id))


def sampled_segments(sample: int) -> list[int]:
    ids = list(db.session.scalars(select(Segment.id).order_by(func.random()).limit(sample)))
    return [int(i) for i in ids]


@dataclass
class Findings:
    """What ``flask doctor`` found, and the repair each finding calls for."""

    problems: list[str] = field(default_factory=list)
    feeds_to_rebuild: list[int] = field(default_factory=list)
    boards_to_rebuild: list[int] = field(default_factory=list)
    stuck: list[tuple[int, str]] = field(default_factory=list)


def check_caches(feed_sample: int, board_sample: int, findings: Findings) -> None:
    for user_id in built_feed_users(feed_sample):
        problems = feed_problems(user_id)
        if problems:
            findings.problems += problems
            findings.feeds_to_rebuild.append(user_id)
    for segment_id in sampled_segments(board_sample):
        problems = board_problems(segment_id)
        if problems:
            findings.problems += problems
            findings.boards_to_rebuild.append(segment_id)

"""Writing in-app notifications: the one writer of the outbox table that push delivery reads.

``notify`` (one recipient) and ``notify_many`` (one event for many recipients, one INSERT … SELECT: a chat
message to a group) are the only writers: they honour the recipient's notification preferences (a category
switched off writes nothing), never notify someone about their own action or across a block, and deduplicate
with a per-recipient key, so a stage that runs twice notifies once.

Every row written also, once the caller's transaction commits (never before, nothing on rollback):
- goes out live as a ``notification`` socket frame to the recipient (except push-only kinds: chat messages
  reach the socket as ``chat.message`` frames already);
- schedules a push delivery for the recipient: one ``push.deliver_user`` run per recipient per collapse
  window (a Redis ``SET NX`` window key), sent a little after the window so a burst becomes one run. The
  window keys of all the recipients a commit touched are set in one Redis round trip, and the commit sends
  one task whatever their number (``push.deliver_users`` fans out to ``push.deliver_user`` in the worker):
  publishing a Celery task costs ~1 ms of CPU, which a web process should not pay per group member. A
  task lost on the way (broker down) is made up for by the ``push.sweep`` beat job.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import BigInteger, Row, literal_column, text
from sqlalchemy.orm import Session

from domain import jobs
from domain.algorithms.push_plan import CATEGORY, PUSH_ONLY_KINDS
from domain.visibility import as_sql_text, not_blocked_with
from models import User, db
from models.db import on_commit, staged
from models.notification import REFS
from models.pubsub import publish_on_commit
from models.redis_store import redis_store

log = logging.getLogger(__name__)

DEFAULT_PUSH_WINDOW_S = 2.0
#: The task runs this long after its window key expired, so any row that saw the key (and therefore sent
#: no task of its own) was committed before the task reads.
PUSH_WINDOW_MARGIN_S = 0.25


def notify(user_id: int, kind: str, dedupe_key: str, *, actor_id: int | None = None,
           payload: dict[str, Any] | None = None, **refs: int | None) -> int | None:
    """Record a notification (in the caller's transaction); returns its id, or None when not written."""
    return notify_many([user_id], kind, dedupe_key, actor_id=actor_id, payload=payload, **refs).get(user_id)


# The rules of a notification, in one statement: not the actor, no block either way, the category not switched off
# (``category_on``: a missing settings row or key means on, and a stored value counts as Python truthiness would
# count it), deduplicated by (user, key). Built once: a text statement costs next to nothing to execute again.
_NOTIFY_MANY = text(f"""
INSERT INTO notifications (user_id, kind, actor_id, dedupe_key, payload, {", ".join(REFS)})
SELECT r.user_id, :kind, :actor_id, :dedupe_key, CAST(:payload AS jsonb), {", ".join(f":{ref}" for ref in REFS)}
FROM (SELECT DISTINCT unnest(CAST(:user_ids AS bigint[])) AS user_id) AS r
LEFT JOIN user_preferences p ON p.user_id = r.user_id
WHERE (CAST(:actor_id AS bigint) IS NULL OR (
        r.user_id <> :actor_id
        AND {as_sql_text(not_blocked_with(literal_column(":actor_id", BigInteger), literal_column("r.user_id")))}))
  AND (CAST(:category AS text) IS NULL
       OR COALESCE(p.notifications -> CAST(:category AS text), 'true'::jsonb)
          NOT IN ('false'::jsonb, 'null'::jsonb, '0'::jsonb, '""'::jsonb, '[]'::jsonb, '{{}}'::jsonb))
ORDER BY r.user_id
ON CONFLICT DO NOTHING
RETURNING id, user_id, created_at
""")


def notify_many(user_ids: Iterable[int], kind: str, dedupe_key: str, *, actor_id: int | None = None,
                payload: dict[str, Any] | None = None, **refs: int | None) -> dict[int, int]:
    """Record one event for many recipients, in one INSERT … SELECT (the caller's transaction), and stage its
    after-commit effects: a ``notification`` frame to each recipient's sockets and their push delivery. Returns
    {recipient id: notification id} for the rows written (recipients filtered out or already notified under
    ``dedupe_key`` are absent)."""
    unknown = set(refs) - set(REFS)
    if unknown:
        raise TypeError(f"unknown notification refs: {sorted(unknown)}")
    ids = sorted({int(u) for u in user_ids})
    if not ids:
        return {}
    rows = db.session.execute(_NOTIFY_MANY, {
        "user_ids": ids, "kind": kind, "actor_id": actor_id, "dedupe_key": dedupe_key,
        "payload": json.dumps(payload or {}), "category": CATEGORY.get(kind),
        **{ref: refs.get(ref) for ref in REFS}}).all()
    if not rows:
        return {}
    session = db.session()
    if kind not in PUSH_ONLY_KINDS:
        actor = db.session.get(User, actor_id) if actor_id is not None else None
        ref_values = {ref: refs.get(ref) for ref in REFS}
        for row in rows:
            item = serialize(row.id, kind, actor, ref_values, payload or {}, read=False, created_at=row.created_at)
            publish_on_commit(session, [row.user_id], {"type": "notification", "notification": as_json(item)})
    schedule_push_on_commit(session, [row.user_id for row in rows])
    return {int(row.user_id): int(row.id) for row in rows}


#: Notifications without an actor (system events: a weekly summary, an achievement), each with its own recipient,
#: key, payload and refs: one statement for a batch (a weekly-summary chunk notifies hundreds of athletes at once,
#: an activity's achievements are several rows for its athlete).
_NOTIFY_EACH = text(f"""
INSERT INTO notifications (user_id, kind, dedupe_key, payload, {", ".join(REFS)})
SELECT r.user_id, :kind, r.dedupe_key, r.payload, {", ".join(f"r.{ref}" for ref in REFS)}
FROM unnest(CAST(:user_ids AS bigint[]), CAST(:keys AS text[]), CAST(:payloads AS jsonb[]),
            {", ".join(f"CAST(:{ref} AS bigint[])" for ref in REFS)})
     AS r(user_id, dedupe_key, payload, {", ".join(REFS)})
LEFT JOIN user_preferences p ON p.user_id = r.user_id
WHERE CAST(:category AS text) IS NULL
   OR COALESCE(p.notifications -> CAST(:category AS text), 'true'::jsonb)
      NOT IN ('false'::jsonb, 'null'::jsonb, '0'::jsonb, '""'::jsonb, '[]'::jsonb, '{{}}'::jsonb)
ORDER BY r.user_id, r.dedupe_key
ON CONFLICT DO NOTHING
RETURNING id, user_id, created_at, payload, {", ".join(REFS)}
""")


def notify_each(kind: str, items: Sequence[tuple[int, str, dict[str, Any]]],
                refs: Sequence[dict[str, int | None]] | None = None) -> list[tuple[int, int]]:
    """Notifications of one kind without an actor, each ``(recipient, dedupe key, payload)`` with its ``refs``
    (one dict per item, names of :data:`REFS`), in one statement (the caller's transaction), with the
    after-commit frames and push of :func:`notify_many`. Returns (recipient, notification id) of the rows
    written (switched-off categories and repeated keys write none)."""
    if not items:
        return []
    refs = refs or [{} for _ in items]
    unknown = {name for item_refs in refs for name in item_refs} - set(REFS)
    if unknown or len(refs) != len(items):
        raise TypeError(f"notify_each: one refs dict per item, of {REFS} (unknown: {sorted(unknown)})")
    rows = _insert_each(kind, items, refs)
    if not rows:
        return []
    session = db.session()
    for row in rows:
        row_refs: dict[str, int | None] = {ref: getattr(row, ref) for ref in REFS}
        item = serialize(row.id, kind, None, row_refs, row.payload, read=False, created_at=row.created_at)
        publish_on_commit(session, [row.user_id], {"type": "notification", "notification": as_json(item)})
    schedule_push_on_commit(session, [row.user_id for row in rows])
    return [(int(row.user_id), int(row.id)) for row in rows]


def _insert_each(kind: str, items: Sequence[tuple[int, str, dict[str, Any]]],
                 refs: Sequence[dict[str, int | None]]) -> Sequence[Row[Any]]:
    return db.session.execute(_NOTIFY_EACH, {
        "kind": kind, "category": CATEGORY.get(kind), "user_ids": [int(u) for u, _, _ in items],
        "keys": [k for _, k, _ in items], "payloads": [json.dumps(p) for _, _, p in items],
        **{ref: [item_refs.get(ref) for item_refs in refs] for ref in REFS}}).all()


def warm_up_each() -> None:
    """Run :func:`notify_each`'s statement on no items, in the caller's transaction: it writes nothing, and a fresh
    process has then compiled it, and its database connection has planned it and loaded the tables' caches (the
    first run of it on a new connection measured 1.1-3.2 ms against 0.65 ms for later ones)."""
    _insert_each("warm-up", [], [])


# -- the JSON of one notification (GET /api/v1/notifications items and socket frames) -------------------------

def serialize(notification_id: int, kind: str, actor: User | None, refs: dict[str, int | None],
              payload: dict[str, Any], *, read: bool, created_at: datetime) -> dict[str, Any]:
    return {
        "id": notification_id, "kind": kind,
        "actor": ({"id": actor.id, "display_name": actor.display_name, "avatar_url": actor.avatar_url}
                  if actor is not None else None),
        "refs": refs, "payload": payload, "read": read, "created_at": created_at,
    }


def as_json(item: dict[str, Any]) -> dict[str, Any]:
    """The item as the REST schema dumps it (an ISO 8601 timestamp), for frames that bypass marshmallow."""
    return {**item, "created_at": item["created_at"].isoformat()}


# -- push scheduling after commit ------------------------------------------------------------------------------

def schedule_push_on_commit(session: Session, user_ids: Iterable[int]) -> None:
    pending: set[int] = staged(session, "push", set)
    pending.update(user_ids)


def push_window_s() -> float:
    if has_app_context():
        return float(current_app.config.get("PUSH_COLLAPSE_WINDOW_S", DEFAULT_PUSH_WINDOW_S))
    return DEFAULT_PUSH_WINDOW_S


def window_key(user_id: int) -> str:
    return f"push:window:{user_id}"


def enqueue_push(user_ids: set[int] | list[int], window_s: float | None = None) -> int:
    """One delivery run per user per window; returns how many users were scheduled. The window keys are set in
    one pipelined round trip and at most one task is sent (``push.deliver_users`` for several users). Never
    raises: the rows are committed and the sweeper re-sends users whose rows stay undelivered."""
    ids = sorted(set(user_ids))
    if not ids:
        return 0
    window = push_window_s() if window_s is None else window_s
    try:
        pipe = redis_store.client.pipeline(transaction=False)
        for user_id in ids:
            # The key lives a little less than the countdown: a row committed while it exists is visible to
            # the task that the key stands for.
            pipe.set(window_key(user_id), 1, nx=True, px=max(1, int(window * 1000)))
        opened = [user_id for user_id, was_set in zip(ids, pipe.execute(), strict=True) if was_set]
        if len(opened) == 1:
            jobs.send(jobs.PUSH_DELIVER_USER, opened[0], countdown=window + PUSH_WINDOW_MARGIN_S)
        elif opened:
            jobs.send(jobs.PUSH_DELIVER_USERS, opened, countdown=window + PUSH_WINDOW_MARGIN_S)
    except Exception:
        log.warning("could not schedule push delivery for users %s; the sweeper will", ids, exc_info=True)
        return 0
    return len(opened)


on_commit("push", enqueue_push)

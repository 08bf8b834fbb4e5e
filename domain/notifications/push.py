"""Push delivery from the notification outbox, through firebase-admin messaging (FCM, which reaches APNs).

One run of ``push.deliver_user`` (queue ``notify``) does two steps, each its own transaction:

1. **Plan.** Lock the user's undelivered notifications (``FOR UPDATE SKIP LOCKED``: a concurrent run skips
   them), decide what to push (pure :func:`plan`: category switches, quiet hours in the user's time zone, chat
   messages skipped for users who are online, stale rows skipped, bursts collapsed), write one delivery row per
   push and device under the unique (notification, device) key (chat messages the user read meanwhile, and
   chat messages older than a device's registration, are not pushed), and mark every locked notification delivered —
   all in one commit. No later run can push those notifications again.
2. **Send.** Claim the user's ``pending`` deliveries (``pending`` → ``sending``, committed before any network
   call), send them with ``messaging.send_each`` in batches of at most 500, and record the outcome: ``sent``;
   tokens FCM reports unregistered or invalid are deleted (with their deliveries); transient errors go back to
   ``pending`` and the task retries with exponential back-off, sending only those again. A run that died while
   ``sending`` is never resent (at most once: the sweeper marks such rows failed) — a duplicate push is worse
   than a lost nudge, and the in-app list still has the notification.

A commit that notified several users (a group chat message) sends one ``push.deliver_users`` task instead,
which starts a ``push.deliver_user`` run per user from the worker (see ``models.notification.enqueue_push``).

Without FCM credentials or an ``FCM_ENDPOINT`` (development) deliveries are logged and marked ``skipped``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import firebase_admin
import redis
from firebase_admin import exceptions, messaging
from flask import current_app
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert

from domain.algorithms.push_plan import PUSH_ONLY_KINDS, Item, Recipient, plan
from domain.notifications.fcm import REMOVE, RETRY, build_message, classify, error_code
from models import ConversationMember, Device, Notification, Preferences, PushDelivery, User, db, metrics, utcnow
from models.db import rowcount
from models.pubsub import pubsub

log = logging.getLogger(__name__)

# The series exist from the start (at 0): a rate() or an alert over them needs a first sample to compare with.
for _outcome in ("sent", "retry", "failed", "removed", "skipped"):
    metrics.PUSH_DELIVERIES.labels(_outcome)
for _code in ("UnregisteredError", "SenderIdMismatchError", "InvalidArgumentError", "UnavailableError",
              "InternalError", "QuotaExceededError", "DeadlineExceededError", "UnknownError"):
    metrics.FCM_ERRORS.labels(_code)

SEND_BATCH = 500  # FCM's limit for send_each
PLAN_BATCH = 500
MAX_RETRIES = 6
RETRY_MAX_S = 600.0
#: A run that claimed deliveries and died (killed worker) leaves them ``sending``; after this they are failed.
STALE_SENDING = timedelta(minutes=20)
#: Finished delivery rows are kept this long (operators' trail), then the sweeper deletes them.
KEEP_DELIVERIES = timedelta(days=30)
SWEEP_BATCH = 500


def backoff_s(retries: int, base_s: float) -> float:
    """Exponential back-off with full jitter: ~base, 2·base, 4·base… capped."""
    ceiling = min(RETRY_MAX_S, base_s * (2 ** retries))
    return max(base_s / 2, random.uniform(0, ceiling))


# --- step 1: plan ---------------------------------------------------------------------------------------------

def _recipient(user_id: int, items: Sequence[Item]) -> Recipient:
    prefs = db.session.scalar(select(Preferences).where(Preferences.user_id == user_id))
    online = False
    if any(i.kind in PUSH_ONLY_KINDS for i in items):
        try:
            online = pubsub.is_online(user_id)
        except (redis.RedisError, RuntimeError):
            log.warning("presence unavailable; pushing chat messages to user %s", user_id, exc_info=True)
    badge = db.session.scalar(select(func.count()).select_from(Notification).where(
        Notification.user_id == user_id, Notification.read_at.is_(None),
        Notification.kind.not_in(PUSH_ONLY_KINDS))) or 0
    return Recipient(
        now=datetime.now(UTC), settings=(prefs.notifications if prefs else None) or {},
        timezone=prefs.timezone if prefs else "UTC", quiet_start=prefs.quiet_hours_start if prefs else None,
        quiet_end=prefs.quiet_hours_end if prefs else None, online=online, badge=int(badge),
        max_age_s=float(current_app.config.get("PUSH_MAX_AGE_S", 6 * 3600)))


def _drop_read_messages(user_id: int, items: Sequence[Item]) -> list[Item]:
    """Chat messages the user has read meanwhile (on the socket, say, before the app went away inside the
    grouping window) are not pushed: the phone has shown them already."""
    conversations = {int(i.payload["conversation_id"]) for i in items
                     if i.kind == "message" and isinstance(i.payload.get("conversation_id"), int)}
    if not conversations:
        return list(items)
    read_up_to = dict(db.session.execute(
        select(ConversationMember.conversation_id, ConversationMember.last_read_message_id).where(
            ConversationMember.user_id == user_id, ConversationMember.conversation_id.in_(conversations))).all())
    return [i for i in items if i.kind != "message" or not isinstance(i.payload.get("message_id"), int)
            or i.payload["message_id"] > read_up_to.get(int(i.payload.get("conversation_id") or 0), 0)]


def plan_user(user_id: int) -> tuple[int, int]:
    """Step 1 for one batch; returns (notifications handled, delivery rows written)."""
    rows = db.session.execute(
        select(Notification, User.display_name).outerjoin(User, User.id == Notification.actor_id)
        .where(Notification.user_id == user_id, Notification.delivered_at.is_(None))
        .order_by(Notification.id).limit(PLAN_BATCH)
        .with_for_update(of=Notification, skip_locked=True)).all()
    if not rows:
        db.session.commit()
        return 0, 0
    items = [Item(n.id, n.kind, n.created_at, n.actor_id, name,
                  {ref: getattr(n, ref) for ref in ("activity_id", "post_id", "comment_id", "group_id",
                                                     "achievement_id")}, n.payload or {}) for n, name in rows]
    devices = db.session.execute(select(Device.id, Device.created_at).where(Device.user_id == user_id)).all()
    unread = _drop_read_messages(user_id, items)
    pushes = plan(unread, _recipient(user_id, unread)) if devices and unread else []
    # A device registered after a chat message was sent never gets it: a phone signing in loads the
    # conversation anyway, and a backlog of old messages buzzing on it would be noise.
    messages = {item.id: item.created_at for item in items if item.kind == "message"}
    values = [{"notification_id": p.lead_id, "device_id": d, "user_id": user_id, "content": p.content}
              for p in pushes for d, registered in devices
              if p.lead_id not in messages or messages[p.lead_id] >= registered]
    written = 0
    if values:
        result = db.session.execute(insert(PushDelivery).values(values).on_conflict_do_nothing())
        written = rowcount(result)
    db.session.execute(update(Notification).where(Notification.id.in_([i.id for i in items]))
                       .values(delivered_at=utcnow()))
    db.session.commit()
    return len(items), written


# --- step 2: send ---------------------------------------------------------------------------------------------

@dataclass
class Outcome:
    sent: int = 0
    removed: int = 0
    failed: int = 0
    skipped: int = 0
    retry: int = 0


def _claim(user_id: int) -> Sequence[Any]:
    """pending → sending, committed before any network call: a second run finds nothing to send."""
    rows = db.session.execute(
        update(PushDelivery)
        .where(PushDelivery.user_id == user_id, PushDelivery.status == "pending", PushDelivery.device_id == Device.id,
               Device.user_id == user_id)
        .values(status="sending", attempts=PushDelivery.attempts + 1, updated_at=func.now())
        .returning(PushDelivery.id, PushDelivery.device_id, PushDelivery.content, Device.token, Device.platform)
    ).all()
    db.session.commit()
    return rows


def _record(results: Iterable[dict[str, Any]]) -> None:
    rows = list(results)
    if rows:
        db.session.execute(update(PushDelivery), rows)


def send_pending(user_id: int, app: firebase_admin.App | None) -> Outcome:
    outcome = Outcome()
    claimed = _claim(user_id)
    if not claimed:
        return outcome
    now = utcnow()
    if app is None:
        log.info("push not configured (no FCM credentials or FCM_ENDPOINT): skipped %d deliveries to user %s: %s",
                 len(claimed), user_id, [row.content.get("title") for row in claimed])
        _record({"id": row.id, "status": "skipped", "error": "push not configured", "fcm_message_id": None,
                 "updated_at": now} for row in claimed)
        db.session.commit()
        outcome.skipped = len(claimed)
        metrics.PUSH_DELIVERIES.labels("skipped").inc(len(claimed))
        return outcome
    gone: set[int] = set()
    for start in range(0, len(claimed), SEND_BATCH):
        batch = claimed[start:start + SEND_BATCH]
        responses = _send_batch(batch, app)
        results = []
        for row, (message_id, exc) in zip(batch, responses, strict=True):
            if exc is not None:
                metrics.FCM_ERRORS.labels(type(exc).__name__).inc()
            if exc is None:
                status, error = "sent", None
                outcome.sent += 1
                metrics.PUSH_DELIVERIES.labels("sent").inc()
            elif (action := classify(exc)) == RETRY:
                status, error = "pending", error_code(exc)
                outcome.retry += 1
                metrics.PUSH_DELIVERIES.labels("retry").inc()
            else:
                status, error = "failed", error_code(exc)
                if action == REMOVE:
                    gone.add(row.device_id)
                    outcome.removed += 1
                else:
                    outcome.failed += 1
                metrics.PUSH_DELIVERIES.labels("removed" if action == REMOVE else "failed").inc()
                log.info("push %s to device %s failed: %s", row.id, row.device_id, error)
            results.append({"id": row.id, "status": status, "error": error, "fcm_message_id": message_id,
                            "updated_at": now})
        _record(results)
        db.session.commit()
    if gone:
        # Deleting the device takes its delivery rows with it; a token moved to another account meanwhile
        # has a new row and is left alone.
        db.session.execute(delete(Device).where(Device.id.in_(gone)))
        db.session.commit()
    return outcome


def _send_batch(batch: Sequence[Any], app: firebase_admin.App) -> list[tuple[str | None, BaseException | None]]:
    messages = []
    invalid: dict[int, BaseException] = {}
    for index, row in enumerate(batch):
        try:
            messages.append(build_message(row.content, row.token, row.platform))
        except (ValueError, TypeError) as exc:  # a message FCM would reject anyway: never send it
            invalid[index] = exc
    try:
        responses = iter(messaging.send_each(messages, app=app).responses) if messages else iter(())
    except exceptions.FirebaseError as exc:  # the whole batch failed before any answer (e.g. auth)
        return [(None, invalid.get(i, exc)) for i in range(len(batch))]
    out: list[tuple[str | None, BaseException | None]] = []
    for index in range(len(batch)):
        if index in invalid:
            out.append((None, invalid[index]))
            continue
        response = next(responses)
        out.append((response.message_id, None) if response.success else (None, response.exception))
    return out


def give_up(user_id: int) -> int:
    result = db.session.execute(update(PushDelivery).where(
        PushDelivery.user_id == user_id, PushDelivery.status == "pending")
        .values(status="failed", error="retries exhausted", updated_at=func.now()))
    db.session.commit()
    return rowcount(result)


def sweep(after_s: float) -> list[int]:
    """Fail deliveries a dead run left ``sending``, delete finished delivery rows past KEEP_DELIVERIES, and
    return the users to run again: notifications undelivered or deliveries pending for over ``after_s``
    seconds (broker down when they were committed, a lost retry)."""
    now = datetime.now(UTC)
    cutoff = now - timedelta(seconds=after_s)
    db.session.execute(update(PushDelivery).where(
        PushDelivery.status == "sending", PushDelivery.updated_at < now - STALE_SENDING)
        .values(status="failed", error="outcome unknown (the sending run died)", updated_at=func.now()))
    old = select(PushDelivery.id).where(PushDelivery.created_at < now - KEEP_DELIVERIES,
                                        PushDelivery.status.not_in(("pending", "sending"))).limit(10 * SWEEP_BATCH)
    db.session.execute(delete(PushDelivery).where(PushDelivery.id.in_(old.scalar_subquery())))
    users = set(db.session.scalars(select(Notification.user_id).where(
        Notification.delivered_at.is_(None), Notification.created_at < cutoff).limit(SWEEP_BATCH)))
    users |= set(db.session.scalars(select(PushDelivery.user_id).where(
        PushDelivery.status == "pending", PushDelivery.updated_at < cutoff).limit(SWEEP_BATCH)))
    db.session.commit()
    if users:
        log.info("push sweeper re-sends %d users", len(users))
    return sorted(users)

"""Push delivery from the notification outbox, through firebase-admin messaging (FCM, which reaches APNs).

One run of ``push.deliver_user`` (queue ``notify``) does two steps, each its own transaction:

1. **Plan.** Lock the user's undelivered notifications (``FOR UPDATE SKIP LOCKED``: a concurrent run skips
   them), decide what to push (pure :func:`plan`: category switches, quiet hours in the user's time zone, chat
   messages skipped for users who are online, stale rows skipped, bursts collapsed), write one delivery row per
   push and device under the unique (notification, device) key, and mark every locked notification delivered —
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
import os
import random
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import firebase_admin
import google.auth.credentials
import google.oauth2.credentials
import redis
import requests
from celery import Task, shared_task
from firebase_admin import credentials, exceptions, messaging
from flask import current_app
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import OperationalError

from models import Device, Notification, Preferences, PushDelivery, User, db, utcnow
from models.notification import PUSH_ONLY_KINDS, category_on
from models.pubsub import pubsub
from tasks.app import AppTask
from tasks.locks import single_run

log = logging.getLogger(__name__)

SEND_BATCH = 500  # FCM's limit for send_each
PLAN_BATCH = 500
MAX_RETRIES = 6
RETRY_MAX_S = 600.0
#: Kinds whose bursts collapse into one push ("5 new kudos on Morning Run"); every other kind (comments, chat
#: messages, requests) is pushed one by one.
COLLAPSIBLE = ("kudos", "follow", "achievement")
#: A run that claimed deliveries and died (killed worker) leaves them ``sending``; after this they are failed.
STALE_SENDING = timedelta(minutes=20)
#: Finished delivery rows are kept this long (operators' trail), then the sweeper deletes them.
KEEP_DELIVERIES = timedelta(days=30)
SWEEP_BATCH = 500
TRANSIENT_INFRA: tuple[type[BaseException], ...] = (
    OperationalError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
)


# --- pure: quiet hours ---------------------------------------------------------------------------------------

def parse_hhmm(value: str | None) -> time | None:
    if not value:
        return None
    try:
        hours, minutes = value.split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        return None


def in_quiet_hours(local: time, start: str | None, end: str | None) -> bool:
    """Whether a local wall-clock time falls in [start, end); the range may wrap midnight (22:00–07:00).
    Equal or missing bounds mean no quiet hours."""
    s, e = parse_hhmm(start), parse_hhmm(end)
    if s is None or e is None or s == e:
        return False
    t = local.replace(second=0, microsecond=0, tzinfo=None)
    return s <= t < e if s < e else (t >= s or t < e)


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


# --- pure: planning ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Item:
    """A notification as the planner sees it."""

    id: int
    kind: str
    created_at: datetime
    actor_id: int | None = None
    actor_name: str | None = None
    refs: Mapping[str, int | None] = field(default_factory=dict)
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Recipient:
    """What the planner needs to know about the user at the time of the run."""

    now: datetime
    settings: Mapping[str, Any] = field(default_factory=dict)
    timezone: str = "UTC"
    quiet_start: str | None = None
    quiet_end: str | None = None
    online: bool = False
    badge: int = 0
    max_age_s: float = 6 * 3600


@dataclass(frozen=True)
class Push:
    lead_id: int  # the newest notification covered: the delivery rows' key
    ids: tuple[int, ...]
    content: dict[str, Any]


def skip_reason(item: Item, who: Recipient) -> str | None:
    """Why this notification gets no push (None: it gets one). Any reason is final: the row is handled."""
    if not category_on(item.kind, who.settings):
        return "category off"
    if (who.now - item.created_at).total_seconds() > who.max_age_s:
        return "stale"
    tz = zone(who.timezone)
    # Quiet when it arrived (never pushed later, ever) and quiet now (a late run never wakes anyone).
    for moment in (item.created_at, who.now):
        if in_quiet_hours(moment.astimezone(tz).time(), who.quiet_start, who.quiet_end):
            return "quiet hours"
    if item.kind in PUSH_ONLY_KINDS and who.online:
        return "online"  # the socket delivered the chat message already
    return None


def group_key(item: Item) -> tuple[Any, ...]:
    if item.kind == "kudos":
        return ("kudos", item.refs.get("activity_id"), item.refs.get("post_id"))
    if item.kind == "follow":
        return ("follow",)
    if item.kind == "achievement" and item.refs.get("activity_id") is not None:
        return ("achievement", item.refs.get("activity_id"))
    return ("one", item.id)


def plan(items: Sequence[Item], who: Recipient) -> list[Push]:
    """The pushes for one run: skipped items dropped, collapsible bursts merged, oldest group first."""
    groups: dict[tuple[Any, ...], list[Item]] = {}
    for item in sorted(items, key=lambda i: i.id):
        if skip_reason(item, who) is None:
            groups.setdefault(group_key(item), []).append(item)
    return [render(group, who.badge) for group in groups.values()]


def _others(n: int) -> str:
    return "1 other" if n == 1 else f"{n} others"


def _title_of(item: Item) -> str:
    return str(item.payload.get("title") or item.payload.get("activity_name") or "your activity")


def _text(item: Item, count: int) -> tuple[str, str]:
    """(title, body) of a push for ``item``, the newest of ``count`` collapsed notifications."""
    name = item.actor_name or str(item.payload.get("display_name") or "") or "Someone"
    p = item.payload
    match item.kind:
        case "kudos":
            what = _title_of(item)
            if count == 1:
                return "New kudos", f"{name} gave kudos to {what}"
            return f"{count} new kudos on {what}", f"{name} and {_others(count - 1)} gave kudos"
        case "follow":
            if count == 1:
                return "New follower", f"{name} started following you"
            return f"{count} new followers", f"{name} and {_others(count - 1)} started following you"
        case "achievement":
            where = str(p.get("activity_name") or "your activity")
            if count > 1:
                return f"{count} new achievements", f"On {where}"
            label = str(p.get("kind") or "achievement").replace("_", " ")
            rank = f" #{p['rank']}" if p.get("rank") else ""
            return "New achievement", f"{label.capitalize()}{rank} on {where}"
        case "comment":
            return f"{name} commented on {_title_of(item)}", str(p.get("text") or "")
        case "follow_request":
            return "Follow request", f"{name} wants to follow you"
        case "follow_accepted":
            return "Request accepted", f"{name} accepted your follow request"
        case "group_join_request":
            return str(p.get("group_name") or "Your group"), f"{name} asked to join"
        case "group_joined":
            return str(p.get("group_name") or "Your group"), "You're in: welcome to the group"
        case "message":
            return name, str(p.get("preview") or "New message")
    return "Strava+1", "You have a new notification"


def render(group: Sequence[Item], badge: int) -> Push:
    lead = group[-1]
    count = len(group)
    title, body = _text(lead, count)
    data = {"notification_id": str(lead.id), "kind": lead.kind, "count": str(count)}
    data.update({ref: str(value) for ref, value in lead.refs.items() if value is not None})
    thread_id: str | None = None
    collapse_id: str | None = None
    if lead.kind == "message":
        for ref in ("conversation_id", "message_id"):
            if lead.payload.get(ref) is not None:
                data[ref] = str(lead.payload[ref])
        # One push per message, grouped on the device by conversation (never collapsed into each other).
        thread_id = f"conversation-{lead.payload.get('conversation_id', 'unknown')}"
    elif lead.kind in COLLAPSIBLE:
        # A later burst about the same thing replaces the earlier one on the device.
        collapse_id = "-".join(str(part) for part in group_key(lead) if part is not None)
    content = {"kind": lead.kind, "title": title[:200], "body": body[:500], "data": data, "badge": badge,
               "collapse_id": collapse_id, "thread_id": thread_id, "count": count}
    return Push(lead.id, tuple(i.id for i in group), content)


# --- pure: FCM messages and errors ---------------------------------------------------------------------------

def build_message(content: Mapping[str, Any], token: str, platform: str) -> messaging.Message:
    """The FCM message for one device: notification, deep-link data, and the platform's delivery options."""
    collapse_id, thread_id = content.get("collapse_id"), content.get("thread_id")
    chat = content.get("kind") == "message"
    android = apns = webpush = None
    if platform == "web":
        webpush = messaging.WebpushConfig(headers={"Urgency": "high"},
                                          notification=messaging.WebpushNotification(tag=collapse_id or thread_id))
    else:
        android = messaging.AndroidConfig(
            priority="high", collapse_key=collapse_id,
            notification=messaging.AndroidNotification(sound="default", tag=collapse_id,
                                                       channel_id="chat" if chat else "activity",
                                                       notification_count=content.get("badge")))
        headers = {"apns-priority": "10", "apns-push-type": "alert"}
        if collapse_id:
            headers["apns-collapse-id"] = collapse_id[:64]
        apns = messaging.APNSConfig(headers=headers, payload=messaging.APNSPayload(aps=messaging.Aps(
            badge=content.get("badge"), sound="default", thread_id=thread_id)))
    # ``token``: clients register FCM registration tokens (what the FCM SDKs hand out and HTTP v1 addresses);
    # firebase-admin 7.7 marks it deprecated in favour of installation ids, which would change the device API.
    return messaging.Message(
        token=token, data=dict(content.get("data") or {}),
        notification=messaging.Notification(title=content.get("title"), body=content.get("body")),
        android=android, apns=apns, webpush=webpush)


#: What to do about a failed send: drop the device, try again later, or give up on this push.
REMOVE, RETRY, FAIL = "remove", "retry", "fail"


def _token_rejected(exc: exceptions.InvalidArgumentError) -> bool:
    """FCM answers INVALID_ARGUMENT both for a malformed token and for a malformed message; only the first
    (a ``message.token`` field violation) means the device is gone."""
    response = getattr(exc, "http_response", None)
    try:
        details = response.json()["error"].get("details", []) if response is not None else []
    except (ValueError, KeyError, AttributeError):
        details = []
    for detail in details:
        for violation in detail.get("fieldViolations", []) or []:
            if violation.get("field") == "message.token":
                return True
    return "registration token" in str(exc).lower()


def classify(exc: BaseException) -> str:
    if isinstance(exc, messaging.UnregisteredError | messaging.SenderIdMismatchError):
        return REMOVE
    if isinstance(exc, exceptions.InvalidArgumentError):
        return REMOVE if _token_rejected(exc) else FAIL
    if isinstance(exc, exceptions.UnavailableError | exceptions.InternalError | messaging.QuotaExceededError
                  | exceptions.DeadlineExceededError | exceptions.UnknownError):
        return RETRY
    return FAIL


def error_code(exc: BaseException) -> str:
    code = getattr(exc, "code", None) or type(exc).__name__
    return f"{type(exc).__name__}: {code}"[:200]


def backoff_s(retries: int, base_s: float) -> float:
    """Exponential back-off with full jitter: ~base, 2·base, 4·base… capped."""
    ceiling = min(RETRY_MAX_S, base_s * (2 ** retries))
    return max(base_s / 2, random.uniform(0, ceiling))


# --- the firebase-admin app ----------------------------------------------------------------------------------

class StaticTokenCredential(credentials.Base):
    """For a local FCM stand-in: a fixed bearer token instead of a service account's OAuth flow."""

    def __init__(self, token: str = "local-fcm-access-token") -> None:
        self._credential = google.oauth2.credentials.Credentials(token=token)

    def get_credential(self) -> google.auth.credentials.Credentials:
        return self._credential


_apps: dict[tuple[Any, ...], firebase_admin.App] = {}
_apps_lock = threading.Lock()


def fcm_app(config: Mapping[str, Any]) -> firebase_admin.App | None:
    """The firebase-admin app pushes go through (one per process and settings), or None when pushes are not
    configured (development without credentials): deliveries are then logged and skipped."""
    endpoint = str(config.get("FCM_ENDPOINT") or "")
    creds_path = str(config.get("GOOGLE_APPLICATION_CREDENTIALS") or "")
    if not endpoint and not creds_path and config.get("APP_ENV") != "production":
        return None
    project = config["FIREBASE_PROJECT_ID"]
    key = (os.getpid(), project, endpoint, creds_path)  # a forked worker builds its own HTTP session
    with _apps_lock:
        app = _apps.get(key)
        if app is None:
            cred: credentials.Base
            if endpoint:
                cred = StaticTokenCredential()
            elif creds_path:
                cred = credentials.Certificate(creds_path)
            else:
                cred = credentials.ApplicationDefault()  # production on Google Cloud: the metadata server
            app = firebase_admin.initialize_app(cred, {"projectId": project, "httpTimeout": 10},
                                                name=f"push-{len(_apps)}-{os.getpid()}")
            if endpoint:
                _use_endpoint(app, endpoint, project)
            _apps[key] = app
    return app


def _use_endpoint(app: firebase_admin.App, endpoint: str, project: str) -> None:
    """Point the real client at another FCM HTTP v1 endpoint (tests and development only: production refuses
    FCM_ENDPOINT). firebase-admin has no public option for it; the send URL and the session it posts with
    are the two attributes involved, so fail loudly if a new release renames them."""
    from firebase_admin import _http_client

    service = messaging._get_messaging_service(app)
    session = getattr(getattr(service, "_client", None), "session", None)
    if not hasattr(service, "_fcm_url") or session is None:
        raise RuntimeError("this firebase-admin release can't be pointed at FCM_ENDPOINT")
    base = endpoint.rstrip("/")
    service._fcm_url = f"{base}/v1/projects/{project}/messages:send"
    # The same pool and low-level retry settings the library mounts for fcm.googleapis.com.
    session.mount(base, requests.adapters.HTTPAdapter(pool_connections=100, pool_maxsize=100,
                                                      max_retries=_http_client.DEFAULT_RETRY_CONFIG))


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
    devices = list(db.session.scalars(select(Device.id).where(Device.user_id == user_id)))
    pushes = plan(items, _recipient(user_id, items)) if devices else []
    values = [{"notification_id": p.lead_id, "device_id": d, "user_id": user_id, "content": p.content}
              for p in pushes for d in devices]
    written = 0
    if values:
        result = db.session.execute(insert(PushDelivery).values(values).on_conflict_do_nothing())
        written = int(getattr(result, "rowcount", 0))
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
        return outcome
    gone: set[int] = set()
    for start in range(0, len(claimed), SEND_BATCH):
        batch = claimed[start:start + SEND_BATCH]
        responses = _send_batch(batch, app)
        results = []
        for row, (message_id, exc) in zip(batch, responses, strict=True):
            if exc is None:
                status, error = "sent", None
                outcome.sent += 1
            elif (action := classify(exc)) == RETRY:
                status, error = "pending", error_code(exc)
                outcome.retry += 1
            else:
                status, error = "failed", error_code(exc)
                if action == REMOVE:
                    gone.add(row.device_id)
                    outcome.removed += 1
                else:
                    outcome.failed += 1
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
    return int(getattr(result, "rowcount", 0))


# --- tasks ----------------------------------------------------------------------------------------------------

@shared_task(name="push.deliver_user", bind=True, base=AppTask, acks_late=True, ignore_result=True,
             max_retries=MAX_RETRIES)
def deliver_user(self: Task, user_id: int) -> dict[str, int]:
    """Plan and send the user's pushes; retries (only the undelivered devices) on transient errors."""
    base_s = float(current_app.config.get("PUSH_RETRY_BASE_S", 5))
    try:
        while plan_user(user_id)[0] == PLAN_BATCH:
            pass
        outcome = send_pending(user_id, fcm_app(current_app.config))
    except TRANSIENT_INFRA as exc:
        db.session.rollback()
        raise self.retry(exc=exc, countdown=backoff_s(self.request.retries, base_s)) from exc
    if outcome.retry:
        if self.request.retries < MAX_RETRIES:
            raise self.retry(countdown=backoff_s(self.request.retries, base_s))
        give_up(user_id)
    return vars(outcome)


@shared_task(name="push.deliver_users", base=AppTask, acks_late=True, ignore_result=True)
def deliver_users(user_ids: list[int]) -> int:
    """Fan-out of one commit's push scheduling (e.g. a group chat message): a ``push.deliver_user`` run per
    user, each with its own retries. The web process sends this one task instead of one per recipient."""
    for user_id in user_ids:
        deliver_user.apply_async(args=[int(user_id)])
    return len(user_ids)


@shared_task(name="push.sweep", base=AppTask, ignore_result=True)
@single_run("sweep-push", ttl_s=300)
def sweep() -> int:
    """Beat job: re-send users whose notifications stayed undelivered or whose deliveries stayed pending
    (broker down when they were committed, a lost retry), fail deliveries a dead run left ``sending``, and
    delete finished delivery rows past KEEP_DELIVERIES. Returns how many users were re-sent."""
    now = datetime.now(UTC)
    cutoff = now - timedelta(seconds=int(current_app.config.get("PUSH_SWEEP_AFTER_S", 60)))
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
    for user_id in sorted(users):
        deliver_user.apply_async(args=[user_id])
    if users:
        log.info("push sweeper re-sent %d users", len(users))
    return len(users)

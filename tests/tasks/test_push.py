"""Push delivery: the pure planner, and the task driving the real firebase-admin client against a local FCM
stand-in (tests.support.fcm), called directly or through the real Celery worker where the pipeline matters
(scheduling after commit, the collapse window, retries with back-off, the sweeper)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from domain.algorithms import push_plan
from domain.algorithms.push_plan import Item, Recipient
from domain.notifications import fcm as fcm_messages
from domain.notifications import push as delivery
from tasks import push
from tests.support.fcm import FcmServer

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


# --- the pure planner -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("local", "start", "end", "quiet"), [
    ("23:30", "22:00", "07:00", True), ("06:59", "22:00", "07:00", True), ("07:00", "22:00", "07:00", False),
    ("12:00", "22:00", "07:00", False), ("13:00", "12:30", "14:00", True), ("14:00", "12:30", "14:00", False),
    ("03:00", None, "07:00", False), ("03:00", "07:00", "07:00", False), ("03:00", "bogus", "07:00", False),
])
def test_quiet_hours_wrap_midnight(local, start, end, quiet):
    assert push_plan.in_quiet_hours(datetime.strptime(local, "%H:%M").time(), start, end) is quiet


def kudos(i: int, activity: int = 5, name: str = "Ann", **kw: Any) -> Item:
    return Item(i, "kudos", kw.pop("at", NOW), actor_id=100 + i, actor_name=name, refs={"activity_id": activity},
                payload={"title": "Morning Run"}, **kw)


def message(i: int, conversation: int = 7, at: datetime = NOW) -> Item:
    return Item(i, "message", at, actor_id=9, actor_name="Bob",
                payload={"conversation_id": conversation, "message_id": 1000 + i, "preview": f"msg {i}"})


def test_bursts_of_kudos_collapse_and_messages_do_not():
    items = [kudos(1, name="Ann"), kudos(2, name="Cat"), kudos(3, name="Eve"), kudos(4, activity=6, name="Dan"),
             message(5), message(6), message(7, conversation=8),
             Item(8, "comment", NOW, 3, "Cat", {"activity_id": 5}, {"title": "Morning Run", "text": "Strong!"})]
    pushes = push_plan.plan(items, Recipient(now=NOW, badge=4))
    assert [p.ids for p in pushes] == [(1, 2, 3), (4,), (5,), (6,), (7,), (8,)]
    burst = pushes[0].content
    assert burst["title"] == "3 new kudos on Morning Run" and burst["body"] == "Eve and 2 others gave kudos"
    assert burst["collapse_id"] == "kudos-5" and burst["badge"] == 4 and pushes[0].lead_id == 3
    assert burst["data"] == {"notification_id": "3", "kind": "kudos", "count": "3", "activity_id": "5"}
    assert pushes[1].content["title"] == "New kudos" and pushes[1].content["body"] == "Dan gave kudos to Morning Run"
    chat = pushes[2].content
    assert chat["title"] == "Bob" and chat["body"] == "msg 5" and chat["collapse_id"] is None
    assert chat["thread_id"] == "conversation-7" and pushes[4].content["thread_id"] == "conversation-8"
    assert chat["data"]["conversation_id"] == "7" and chat["data"]["message_id"] == "1005"
    assert pushes[5].content["title"] == "Cat commented on Morning Run" and pushes[5].content["body"] == "Strong!"


def test_what_gets_no_push():
    tokyo = ZoneInfo("Asia/Tokyo")
    local_noon = NOW.astimezone(tokyo)  # 21:00 in Tokyo
    quiet = Recipient(now=NOW, timezone="Asia/Tokyo", quiet_start="20:30", quiet_end="06:00")
    assert local_noon.hour == 21 and push_plan.skip_reason(kudos(1), quiet) == "quiet hours"
    # Arrived in quiet hours: never pushed, even by a run after they ended.
    later = Recipient(now=NOW + timedelta(hours=10), timezone="Asia/Tokyo", quiet_start="20:30", quiet_end="06:00",
                      max_age_s=86400)
    assert push_plan.skip_reason(kudos(1), later) == "quiet hours"
    assert push_plan.skip_reason(kudos(1, at=NOW + timedelta(hours=9, minutes=30)), later) is None
    assert push_plan.skip_reason(kudos(1), Recipient(now=NOW, settings={"kudos": False})) == "category off"
    assert push_plan.skip_reason(message(1), Recipient(now=NOW, settings={"chat": False})) == "category off"
    assert push_plan.skip_reason(message(1), Recipient(now=NOW, online=True)) == "online"
    assert push_plan.skip_reason(kudos(1), Recipient(now=NOW, online=True)) is None, "only chat is on the socket"
    assert push_plan.skip_reason(kudos(1), Recipient(now=NOW + timedelta(hours=7), max_age_s=6 * 3600)) == "stale"
    assert push_plan.plan([kudos(1), message(2)], Recipient(now=NOW, online=True))[0].ids == (1,)


def test_messages_carry_platform_options():
    content = push_plan.plan([kudos(1), kudos(2)], Recipient(now=NOW, badge=2))[0].content
    ios = fcm_messages.build_message(content, "tok", "ios")
    assert ios.apns.headers["apns-collapse-id"] == "kudos-5" and ios.apns.payload.aps.badge == 2
    assert ios.android.priority == "high" and ios.android.collapse_key == "kudos-5"
    web = fcm_messages.build_message(content, "tok", "web")
    assert web.webpush.notification.tag == "kudos-5" and web.apns is None


# --- fixtures ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def fcm_server() -> Iterator[FcmServer]:
    server = FcmServer()
    yield server
    server.stop()


def _configure(app: Any, server: FcmServer, **settings: Any) -> Iterator[FcmServer]:
    keys = ("FCM_ENDPOINT", "PUSH_COLLAPSE_WINDOW_S", "PUSH_RETRY_BASE_S", "PUSH_SWEEP_AFTER_S")
    saved = {k: app.config.get(k) for k in keys}
    server.reset()
    app.config.update({"FCM_ENDPOINT": server.url, "PUSH_RETRY_BASE_S": 0.1, **settings})
    yield server
    app.config.update(saved)


@pytest.fixture
def fcm(app, committed, fcm_server) -> Iterator[FcmServer]:
    """Tests that call the task themselves: the task scheduled on commit is set an hour off."""
    yield from _configure(app, fcm_server, PUSH_COLLAPSE_WINDOW_S=3600)


@pytest.fixture
def fcm_live(app, committed, celery_worker, fcm_server) -> Iterator[FcmServer]:
    """Tests where the commit schedules the real worker's delivery run after a short window."""
    yield from _configure(app, fcm_server, PUSH_COLLAPSE_WINDOW_S=0.3)


def in_app(app: Any, fn: Callable[[], Any]) -> Any:
    from models import db

    with app.app_context():
        try:
            return fn()
        finally:
            db.session.remove()


def make_user(app: Any, name: str, *, tz: str = "UTC", quiet: tuple[str, str] | None = None,
              settings: dict[str, bool] | None = None) -> int:
    from sqlalchemy.dialects.postgresql import insert

    from models import Preferences, User, db
    from models.user import default_notification_settings

    def do() -> int:
        user_id = db.session.scalar(insert(User).values(firebase_uid=f"uid-{name}", display_name=name)
                                    .returning(User.id))
        db.session.execute(insert(Preferences).values(
            user_id=user_id, timezone=tz, quiet_hours_start=quiet[0] if quiet else None,
            quiet_hours_end=quiet[1] if quiet else None,
            notifications={**default_notification_settings(), **(settings or {})}))
        db.session.commit()
        return int(user_id)

    return in_app(app, do)


def add_device(app: Any, user_id: int, token: str, platform: str = "ios") -> None:
    from models import Device, db

    def do() -> None:
        db.session.add(Device(user_id=user_id, token=token, platform=platform))
        db.session.commit()

    in_app(app, do)


def notify(app: Any, user_id: int, kind: str, key: str, **kw: Any) -> int | None:
    from domain.notifications.outbox import notify as write
    from models import db

    def do() -> int | None:
        note_id = write(user_id, kind, key, **kw)
        db.session.commit()
        return note_id

    return in_app(app, do)


def send_message(app: Any, to: int, sender: int, message_id: int, conversation: int = 7) -> int | None:
    return notify(app, to, "message", f"message:{message_id}", actor_id=sender,
                  payload={"conversation_id": conversation, "message_id": message_id, "preview": f"hello {message_id}"})


def deliver(app: Any, user_id: int) -> dict[str, int]:
    return push.deliver_user(user_id)  # called directly: runs here, in the app context AppTask provides


def deliveries(app: Any, user_id: int) -> list[tuple[str, str, int]]:
    from models import Device, PushDelivery, db

    return in_app(app, lambda: [tuple(r) for r in db.session.execute(
        select(PushDelivery.status, Device.token, PushDelivery.attempts).join(Device)
        .where(PushDelivery.user_id == user_id).order_by(PushDelivery.id))])


def undelivered(app: Any, user_id: int) -> int:
    from models import Notification, db

    return in_app(app, lambda: len(db.session.scalars(select(Notification.id).where(
        Notification.user_id == user_id, Notification.delivered_at.is_(None))).all()))


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def settle(seconds: float = 1.5) -> None:
    """Long enough for a second (wrong) run to show up: several collapse windows."""
    time.sleep(seconds)


# --- through the real worker ----------------------------------------------------------------------------------

def test_an_offline_member_gets_exactly_one_push_per_message(app, fcm_live):
    ann, bob = make_user(app, "ann"), make_user(app, "bob")
    add_device(app, ann, "ann-phone", "ios")
    add_device(app, ann, "ann-tablet", "android")
    for message_id in (1, 2, 3):
        send_message(app, ann, bob, message_id)
    wait_for(lambda: len(fcm_live.sent()) >= 6)
    settle()
    for token in ("ann-phone", "ann-tablet"):
        sent = fcm_live.sent(token)
        assert sorted(m["data"]["message_id"] for m in sent) == ["1", "2", "3"]
        assert all(m["data"]["kind"] == "message" and m["data"]["conversation_id"] == "7" for m in sent)
        assert all(m["notification"]["title"] == "bob" for m in sent)
    phone = fcm_live.sent("ann-phone")[0]
    assert phone["apns"]["payload"]["aps"]["thread-id"] == "conversation-7"
    assert "apns-collapse-id" not in phone["apns"]["headers"], "messages never replace each other"
    assert fcm_live.requests[0].authorization == "Bearer local-fcm-access-token"
    assert [s for s, _, _ in deliveries(app, ann)] == ["sent"] * 6 and undelivered(app, ann) == 0
    assert fcm_live.sent("bob") == []


def test_an_online_member_gets_no_chat_push_but_other_pushes(app, fcm_live):
    from models.pubsub import pubsub

    ann, bob = make_user(app, "ann"), make_user(app, "bob")
    add_device(app, ann, "ann-phone")
    pubsub.mark_online(ann, "conn-1")
    send_message(app, ann, bob, 1)
    notify(app, ann, "achievement", "achievement:1", payload={"kind": "pr", "activity_name": "Morning Run"})
    wait_for(lambda: undelivered(app, ann) == 0 and len(fcm_live.requests) >= 1)
    settle()
    (sent,) = fcm_live.sent("ann-phone")
    assert sent["data"]["kind"] == "achievement" and sent["notification"]["body"] == "Pr on Morning Run"

    pubsub.mark_offline(ann, "conn-1")
    send_message(app, ann, bob, 2)
    wait_for(lambda: len(fcm_live.sent("ann-phone")) == 2)
    assert fcm_live.sent("ann-phone")[1]["data"]["message_id"] == "2"


def test_no_push_in_quiet_hours_in_the_users_time_zone(app, fcm_live):
    local = datetime.now(ZoneInfo("Pacific/Auckland"))

    def hours_from_now(start: int, end: int) -> tuple[str, str]:
        return (local + timedelta(hours=start)).strftime("%H:%M"), (local + timedelta(hours=end)).strftime("%H:%M")

    # Ann's quiet hours are around her current local time; Cat's come later today.
    ann, bob = make_user(app, "ann", tz="Pacific/Auckland", quiet=hours_from_now(-1, 1)), make_user(app, "bob")
    cat = make_user(app, "cat", tz="Pacific/Auckland", quiet=hours_from_now(2, 4))
    add_device(app, ann, "ann-phone")
    add_device(app, cat, "cat-phone")
    send_message(app, ann, bob, 1)
    send_message(app, cat, bob, 2)
    wait_for(lambda: undelivered(app, ann) == 0 and len(fcm_live.sent("cat-phone")) == 1)
    settle()
    assert fcm_live.sent("ann-phone") == [] and deliveries(app, ann) == []


def test_a_transient_error_is_retried_with_backoff_and_sent_once(app, fcm_live):
    ann, bob = make_user(app, "ann"), make_user(app, "bob")
    add_device(app, ann, "flaky-phone")
    add_device(app, ann, "good-phone")
    fcm_live.fail("flaky-phone", "QUOTA_EXCEEDED", times=2)
    send_message(app, ann, bob, 1)
    wait_for(lambda: len(fcm_live.sent("flaky-phone")) == 1)
    settle()
    assert fcm_live.attempts("flaky-phone") == ["QUOTA_EXCEEDED", "QUOTA_EXCEEDED", "ok"]
    assert fcm_live.attempts("good-phone") == ["ok"], "a retry resends only the undelivered devices"
    assert sorted(deliveries(app, ann)) == [("sent", "flaky-phone", 3), ("sent", "good-phone", 1)]


def test_the_sweeper_delivers_rows_whose_task_was_lost(app, fcm_live):
    from models import Notification, PushDelivery, db

    ann = make_user(app, "ann")
    add_device(app, ann, "ann-phone")

    def lost_row() -> None:
        # Written without notify(): as if the broker had been down at commit time.
        db.session.add(Notification(user_id=ann, kind="achievement", dedupe_key="achievement:lost",
                                    payload={"kind": "kom", "activity_name": "Hill"},
                                    created_at=datetime.now(UTC) - timedelta(minutes=5)))
        db.session.commit()

    in_app(app, lost_row)
    settle(0.5)
    assert fcm_live.requests == []
    assert in_app(app, push.sweep) == 1
    wait_for(lambda: len(fcm_live.sent("ann-phone")) == 1)
    assert in_app(app, push.sweep) == 0, "nothing left to sweep"

    def stale_sending() -> str:
        db.session.execute(update(PushDelivery).values(status="sending",
                                                       updated_at=datetime.now(UTC) - timedelta(hours=1)))
        db.session.commit()
        push.sweep()
        return db.session.scalar(select(PushDelivery.status))

    assert in_app(app, stale_sending) == "failed", "a dead run's push is never sent twice"


# --- the task called directly ---------------------------------------------------------------------------------

def test_a_burst_collapses_into_one_push(app, fcm):
    ann = make_user(app, "ann")
    add_device(app, ann, "ann-phone")
    fans = [make_user(app, name) for name in ("bob", "cat", "dan", "eve", "fay")]
    from models import Activity, db

    def activity() -> int:
        row = Activity(user_id=ann, name="Morning Run", sport_type="running", start_time=NOW, visibility="everyone",
                       elapsed_time_s=1800, moving_time_s=1800, distance_m=5000)
        db.session.add(row)
        db.session.commit()
        return row.id

    activity_id = in_app(app, activity)
    for fan in fans:
        notify(app, ann, "kudos", f"kudos:{fan}", actor_id=fan, activity_id=activity_id,
               payload={"title": "Morning Run"})
    notify(app, ann, "follow", "follow:bob", actor_id=fans[0])
    assert deliver(app, ann)["sent"] == 2
    follow, burst = sorted(fcm.sent("ann-phone"), key=lambda m: m["data"]["kind"])
    assert burst["notification"] == {"title": "5 new kudos on Morning Run", "body": "fay and 4 others gave kudos"}
    assert burst["apns"]["headers"]["apns-collapse-id"] == f"kudos-{activity_id}"
    assert burst["apns"]["payload"]["aps"]["badge"] == 6 and burst["android"]["collapse_key"] == f"kudos-{activity_id}"
    assert burst["data"]["activity_id"] == str(activity_id) and burst["data"]["count"] == "5"
    assert follow["notification"]["body"] == "bob started following you"


def test_running_twice_sends_once_per_device(app, fcm):
    ann, bob = make_user(app, "ann"), make_user(app, "bob")
    add_device(app, ann, "ann-phone")
    add_device(app, ann, "ann-web", "web")
    send_message(app, ann, bob, 1)
    # A run that recorded its deliveries and died before sending: the next runs send them, once.
    assert in_app(app, lambda: delivery.plan_user(ann)) == (1, 2)
    results: list[dict[str, int]] = []
    threads = [threading.Thread(target=lambda: results.append(deliver(app, ann))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    deliver(app, ann)
    assert sorted(r["sent"] for r in results) == [0, 2]
    assert len(fcm.sent("ann-phone")) == 1 and len(fcm.sent("ann-web")) == 1
    assert fcm.sent("ann-web")[0]["webpush"]["headers"] == {"Urgency": "high"}
    send_message(app, ann, bob, 2)
    deliver(app, ann)
    deliver(app, ann)
    assert len(fcm.sent("ann-phone")) == 2 and len(fcm.requests) == 4


def test_unregistered_and_invalid_tokens_are_removed(app, fcm):
    from models import Device, db

    ann, bob = make_user(app, "ann"), make_user(app, "bob")
    for token in ("gone", "garbled", "mismatched", "fine"):
        add_device(app, ann, token)
    fcm.fail("gone", "UNREGISTERED", times=None)
    fcm.fail("garbled", "INVALID_ARGUMENT", times=None)
    fcm.fail("mismatched", "SENDER_ID_MISMATCH", times=None)
    send_message(app, ann, bob, 1)
    outcome = deliver(app, ann)
    assert outcome["sent"] == 1 and outcome["removed"] == 3 and outcome["retry"] == 0
    assert in_app(app, lambda: list(db.session.scalars(select(Device.token)))) == ["fine"]
    send_message(app, ann, bob, 2)
    deliver(app, ann)
    assert [r.token for r in fcm.requests].count("gone") == 1 and len(fcm.sent("fine")) == 2


def test_a_category_switched_off_pushes_nothing(app, fcm):
    from models import Preferences, db

    ann, bob = make_user(app, "ann", settings={"chat": False}), make_user(app, "bob")
    add_device(app, ann, "ann-phone")
    assert send_message(app, ann, bob, 1) is None, "switched off before: nothing is written"
    assert notify(app, ann, "follow", "follow:bob", actor_id=bob) is not None

    def follows_off() -> None:
        prefs = db.session.get(Preferences, ann)
        prefs.notifications = {**prefs.notifications, "follows": False}
        db.session.commit()

    in_app(app, follows_off)  # switched off after the row was written, before the push
    deliver(app, ann)
    assert fcm.requests == [] and undelivered(app, ann) == 0 and deliveries(app, ann) == []


def test_without_credentials_pushes_are_logged_and_skipped(app, fcm, caplog):
    ann, bob = make_user(app, "ann"), make_user(app, "bob")
    add_device(app, ann, "ann-phone")
    app.config["FCM_ENDPOINT"] = ""
    send_message(app, ann, bob, 1)
    with caplog.at_level("INFO", logger="domain.notifications.push"):
        assert deliver(app, ann)["skipped"] == 1
    assert fcm.requests == [] and deliveries(app, ann) == [("skipped", "ann-phone", 1)]
    assert "push not configured" in caplog.text


def test_commit_schedules_one_task_per_window(app, fcm, redis_clean):
    from domain.notifications.outbox import window_key

    ann, bob = make_user(app, "ann"), make_user(app, "bob")
    queue_len = lambda: redis_clean.llen("notify")  # noqa: E731
    before = queue_len()
    send_message(app, ann, bob, 1)
    send_message(app, ann, bob, 2)
    assert redis_clean.exists(window_key(ann)) and not redis_clean.exists(window_key(bob))
    # One task for the burst (it waits in the worker's schedule or the queue, an hour off in these tests).
    assert queue_len() - before <= 1
    assert redis_clean.pttl(window_key(ann)) > 3_000_000


def test_a_message_read_before_the_push_run_is_not_pushed(app, fcm):
    """Read on the socket (the read receipt moved last_read_message_id) inside the grouping window: the phone
    showed it already, so the run that follows pushes only what is still unread."""
    from models import Conversation, ConversationMember, db

    ann, bob = make_user(app, "ann"), make_user(app, "bob")
    add_device(app, ann, "ann-phone")

    def conversation() -> int:
        row = Conversation(kind="group", name="Crew", created_by_id=bob)
        db.session.add(row)
        db.session.flush()
        db.session.add_all([ConversationMember(conversation_id=row.id, user_id=ann, last_read_message_id=11),
                            ConversationMember(conversation_id=row.id, user_id=bob)])
        db.session.commit()
        return row.id

    convo = in_app(app, conversation)
    for message_id in (10, 11, 12):
        send_message(app, ann, bob, message_id, conversation=convo)
    assert deliver(app, ann)["sent"] == 1
    assert [m["data"]["message_id"] for m in fcm.sent("ann-phone")] == ["12"]
    assert undelivered(app, ann) == 0  # the read ones are settled too, never pushed later


def test_a_device_gets_no_chat_message_older_than_its_registration(app, fcm):
    ann, bob = make_user(app, "ann"), make_user(app, "bob")
    add_device(app, ann, "ann-phone")
    send_message(app, ann, bob, 19)
    notify(app, ann, "follow", "follow:bob", actor_id=bob)
    time.sleep(0.05)
    add_device(app, ann, "ann-new-tablet")
    assert deliver(app, ann)["sent"] == 3  # the message to the phone; the follow to both
    assert sorted(m["data"]["kind"] for m in fcm.sent("ann-phone")) == ["follow", "message"]
    assert [m["data"]["kind"] for m in fcm.sent("ann-new-tablet")] == ["follow"]
    send_message(app, ann, bob, 20)
    assert deliver(app, ann)["sent"] == 2
    assert [m["data"].get("message_id") for m in fcm.sent("ann-new-tablet")] == [None, "20"]

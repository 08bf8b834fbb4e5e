"""What to push for a batch of notifications: category switches, quiet hours in the recipient's time zone,
stale rows, chat for recipients already online, and bursts collapsed into one push ("5 new kudos on Morning
Run"). Pure: the delivery run in ``domain.notifications.push`` loads the rows and stores the result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: Notification kind → the preference category that switches it on or off.
CATEGORY = {
    "kudos": "kudos",
    "comment": "comments",
    "follow": "follows",
    "follow_request": "follows",
    "follow_accepted": "follows",
    "group_join_request": "follows",
    "group_joined": "follows",
    "achievement": "achievements",
    "message": "chat",
    "workout_reminder": "reminders",
    "weekly_summary": "weekly_summary",
    "hydration_reminder": "reminders",
}

#: Kinds that are delivered by push only: left out of the in-app list, the unread count and socket frames.
PUSH_ONLY_KINDS = ("message",)

#: Kinds whose bursts collapse into one push; every other kind (comments, chat messages, requests) is pushed one
#: by one.
COLLAPSIBLE = ("kudos", "follow", "achievement")


def category_on(kind: str, settings: Mapping[str, Any] | None) -> bool:
    """Whether the recipient's notification settings let ``kind`` through (a missing key means on)."""
    category = CATEGORY.get(kind)
    return category is None or bool((settings or {}).get(category, True))


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
        case "workout_reminder" | "weekly_summary":
            # Written by the job that knows the athlete's units and time zone.
            return str(p.get("title") or "Strava+1"), str(p.get("body") or "")
        case "account_export":
            return "Your data export is ready", "Download it from the app within the hour"
        case "hydration_reminder":
            return str(p.get("title") or "Time to drink"), str(p.get("text") or "")
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

"""Media shown inside the things it is attached to: an activity, a post, the items of the home feed.

Kept apart from the activity, post and feed serializers so those packages need not know about media (the
media package depends on them for its visibility rule, not the other way round). The parent's own visibility
was checked by whoever loaded it; each item is then serialized for the viewer (signed URLs, location rule).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.activities import service as activities
from domain.chat import service as chat
from domain.feed import reading as feed
from domain.media.service import media_for
from domain.social import posts
from models import Activity, Post, User, social


def activity_json(viewer: User, activity: Activity, owner: User) -> dict[str, Any]:
    out = activities.serialize(viewer, activity, owner)
    out["media"] = media_for(viewer, "activity", [activity.id]).get(activity.id, [])
    return out


def activity_page(viewer: User, page: dict[str, Any]) -> dict[str, Any]:
    """A page of activities (``items``) with each one's media, in one query for the page."""
    media = media_for(viewer, "activity", [item["id"] for item in page["items"]])
    for item in page["items"]:
        item["media"] = media.get(item["id"], [])
    return page


def post_json(viewer: User, post: Post, author: User) -> dict[str, Any]:
    out = posts.serialize_post(viewer, post, author)
    out["media"] = media_for(viewer, "post", [post.id]).get(post.id, [])
    if out.get("activity"):
        out["activity"]["media"] = media_for(viewer, "activity", [out["activity"]["id"]]).get(
            out["activity"]["id"], [])
    return out


def message_history(viewer: User, conversation_id: int, before: int | None, after: int | None,
                    limit: int) -> dict[str, Any]:
    """A page of chat history (membership checked there) with each message's ready media (the key only where
    there is some); media of a sender in a block with the viewer is left out, as ``GET /media/{id}`` refuses it."""
    page = chat.history(viewer.id, conversation_id, before, after, limit)
    media = media_for(viewer, "message", [m["id"] for m in page["items"]])
    for message in page["items"]:
        sender = message["sender"]["id"]
        shown = media.get(message["id"], [])
        if shown and sender != viewer.id and social.is_blocked_either_way(viewer.id, sender):
            shown = []
        if shown:  # absent when none: a message reads the same here as in its chat.message frame
            message["media"] = shown
    return page


def _dumped(item: dict[str, Any]) -> dict[str, Any]:
    """The feed page is returned already dumped (ISO 8601 times), so its media must be too."""
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in item.items()}


def feed_page(viewer: User, cursor: str | None, limit: int) -> dict[str, Any]:
    page = feed.feed_page(viewer, cursor, limit)
    bodies = {"activity": [], "post": []}  # type: dict[str, list[dict[str, Any]]]
    for entry in page.get("items", []):
        body = entry.get(entry.get("type"))
        if body is not None:
            bodies[entry["type"]].append(body)
            if entry["type"] == "post" and body.get("activity"):
                bodies["activity"].append(body["activity"])
    for kind, found in bodies.items():
        media = media_for(viewer, kind, sorted({b["id"] for b in found}))
        for body in found:
            body["media"] = [_dumped(m) for m in media.get(body["id"], [])]
    return page

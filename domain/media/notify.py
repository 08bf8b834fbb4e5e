"""Telling people a media item changed: the owner's sockets when it is ready or failed (and an in-app
notification when it failed), and the conversation's members when a chat message's media became ready.

Frames carry ids, not URLs: signed URLs are made per viewer by ``GET /api/v1/media/{id}`` (and the message or
feed item that lists it), so a frame can never hand someone a URL they may not have.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from domain.notifications.outbox import notify
from models import db
from models.chat import ConversationMember, Message
from models.media import MediaItem
from models.pubsub import publish_on_commit


def _frame(kind: str, item: MediaItem) -> dict[str, Any]:
    parent = item.activity_id or item.post_id or item.message_id
    return {"type": kind, "media_id": item.id, "kind": item.kind, "state": item.state, "error": item.error,
            "attach_to": {"type": item.attach_type, "id": parent} if item.attach_type else None}


def ready(item: MediaItem) -> None:
    """In the transaction that made it ready; the frames go out on commit."""
    publish_on_commit(db.session, [item.user_id], _frame("media.ready", item))
    if item.message_id is not None:
        message = db.session.get(Message, item.message_id)
        if message is not None:
            members = list(db.session.scalars(select(ConversationMember.user_id).where(
                ConversationMember.conversation_id == message.conversation_id,
                ConversationMember.user_id != item.user_id)))
            frame = {**_frame("chat.media_ready", item), "conversation_id": message.conversation_id,
                     "message_id": message.id}
            publish_on_commit(db.session, members, frame)


def failed(item: MediaItem) -> None:
    publish_on_commit(db.session, [item.user_id], _frame("media.failed", item))
    notify(item.user_id, "media_failed", f"media-failed:{item.id}", activity_id=item.activity_id,
           post_id=item.post_id, payload={"media_id": item.id, "kind": item.kind, "error": item.error})

"""Socket frame handlers for live tracking (registered with webapp.realtime.frames.handler).

* ``live.point`` {session_id, points: [...]} — the owner appends a batch, exactly as the REST route does;
  the reply is ``live.ack`` {session_id, accepted, duplicates, point_count, distance_m}.
* ``live.subscribe`` {session_id} — authorized with the one visibility rule (blocks, private accounts,
  ``only_me``); the socket joins the session's channel first and is then sent ``live.snapshot`` {session: ...}
  with the newest points it may see, so nothing published in between is missed (a point may arrive twice;
  clients key points by time). The channel then carries ``live.update`` and ``live.ended``. Updates on the
  channel are the public view for everyone (the owner too); the owner's full track is the REST GET.
* ``live.unsubscribe`` {session_id} — leaves the channel; reply ``live.unsubscribed``.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import validate

from domain.live import service
from models.pubsub import pubsub
from webapp.live.schemas import SocketPointBatchSchema
from webapp.realtime.frames import Connection, Frame, FrameError, handler


class SessionFrameSchema(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE  # "type" and "ref" ride along on every frame

    session_id = ma.fields.Integer(required=True, strict=True, validate=validate.Range(min=1))


def _session_id(frame: Frame) -> int:
    try:
        return int(SessionFrameSchema().load(frame)["session_id"])
    except ma.ValidationError:
        raise FrameError("invalid", "session_id must be a positive integer.", status=422) from None


def _frame_error(exc: service.LiveError) -> FrameError:
    return FrameError(exc.code, exc.message, status=exc.status, **exc.extra)


@handler("live.point", schema=SocketPointBatchSchema, reply="live.ack")
def live_point(conn: Connection, frame: Frame) -> Frame:
    try:
        data: dict[str, Any] = SocketPointBatchSchema().load(frame)
    except ma.ValidationError as exc:
        raise FrameError("invalid", "The points are not valid.", status=422, errors=exc.messages) from None
    try:
        result = service.add_points(conn.user_id, data["session_id"], data["points"])
    except service.LiveError as exc:
        raise _frame_error(exc) from None
    return {"type": "live.ack", **result}


@handler("live.subscribe", schema=SessionFrameSchema, reply="live.snapshot")
def live_subscribe(conn: Connection, frame: Frame) -> Frame:
    session_id = _session_id(frame)
    try:
        session, owner = service.get_visible(conn.user_id, session_id)
    except service.LiveError as exc:
        raise _frame_error(exc) from None
    if session.status == "live":
        conn.subscribe(pubsub.live_channel(session.id))
    return {"type": "live.snapshot", "session": _json(service.serialize(conn.user_id, session, owner))}


@handler("live.unsubscribe", schema=SessionFrameSchema, reply="live.unsubscribed")
def live_unsubscribe(conn: Connection, frame: Frame) -> Frame:
    session_id = _session_id(frame)
    conn.unsubscribe(pubsub.live_channel(session_id))
    return {"type": "live.unsubscribed", "session_id": session_id}


def _json(value: Any) -> Any:
    """Datetimes as ISO strings, like the REST body."""
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value

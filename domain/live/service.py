"""Live workout tracking: start, append points, watch, finish (into the upload pipeline) or discard.

One service for the REST routes, the socket frames and the sweeper. Rules it keeps:

* Visibility is the one rule of ``domain.visibility`` (``can_see``; ``visible_sql`` for the list): the session's
  own visibility, blocks both ways, private accounts. Anything a viewer may not see is "not found".
* Privacy zones and the hidden start apply to every point a non-owner gets (update frames, snapshots, REST, the
  list). Whether a point is hidden is decided by ``live_hidden_mask`` — the vectorised form of
  ``domain.algorithms.privacy.live_point_hidden``, built from the same ``hidden_mask`` discs every activity read
  path uses — with the session's own seed, and stored on the point; when the owner changes zones or start/end hiding
  (``privacy_version``) the flags are recomputed before the next read or append.
* A batch is committed before anything is published, and published only to the session's channel, with only the
  visible points (pub/sub is best effort; the REST GET is the recovery path).
* A resent batch never duplicates: points are appended in strictly increasing client time under a row lock on the
  session, so points at or before the newest stored time are skipped as already received.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import numpy as np
import redis
from flask import current_app
from sqlalchemy import and_, delete, select, update
from sqlalchemy.dialects.postgresql import insert

from domain import visibility
from domain.algorithms.geo import haversine_m
from domain.algorithms.gpx_writer import to_gpx
from domain.algorithms.privacy import Zone, hidden_mask, start_end_lengths
from domain.algorithms.track import Track
from domain.errors import Refusal
from domain.live.sessions import elapsed_s, end, publish, publish_ended
from domain.privacy.settings import privacy_seed, privacy_settings
from domain.uploads.service import accept_file
from models import Follow, Upload, User, db, social
from models.live import LivePoint, LiveSession
from models.pubsub import pubsub
from models.ratelimit import over_budget

log = logging.getLogger(__name__)

#: How many of the newest points a GET or a subscribe snapshot carries.
SNAPSHOT_POINTS = 500
#: Client clocks: a point may be this far ahead of the server, or this far before the session started.
FUTURE_SKEW_S = 120
PAST_SKEW_S = 600


class LiveError(Refusal):
    """A client error of the live service; the web layer answers it as JSON, the socket as an error frame."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        retry = extra.get("retry_after")
        super().__init__(status, message, code=code,
                         headers={"Retry-After": str(retry)} if retry is not None else None)
        self.extra = extra


def _not_found() -> LiveError:
    return LiveError(404, "not_found", "Live session not found.")


# -- pure parts ---------------------------------------------------------------------------------------------------

def live_hidden_mask(lat: np.ndarray, lng: np.ndarray, along_m: np.ndarray, zones: Sequence[Zone], *,
                     hide_start_m: float, seed: int) -> np.ndarray:
    """True where a live point must be withheld from non-owners (``live_point_hidden`` over many points).

    Zones use ``hidden_mask``'s randomized discs for ``seed``; the start stretch is hidden until the athlete is
    ``start_end_lengths``'s randomized distance along; the end can't be known live, so only zones protect it;
    a point without a position is always withheld.
    """
    lat = np.asarray(lat, dtype=np.float64)
    lng = np.asarray(lng, dtype=np.float64)
    along_m = np.asarray(along_m, dtype=np.float64)
    hidden = ~(np.isfinite(lat) & np.isfinite(lng))
    if zones:
        hidden |= hidden_mask(lat, lng, zones, hide_start_end_m=0.0, seed=seed)
    start_m, _ = start_end_lengths(hide_start_m, seed)
    if start_m > 0.0:
        with np.errstate(invalid="ignore"):
            hidden |= ~(along_m > start_m)
    return hidden


def along_track(lat: np.ndarray, lng: np.ndarray, prev: tuple[float, float] | None,
                start_m: float) -> tuple[np.ndarray, np.ndarray]:
    """(cumulative distance along the positions, step from the previous positioned point) for a batch that
    continues a track whose last position was ``prev`` at ``start_m``. Points without a position carry the
    distance of the last position and a zero step."""
    n = lat.shape[0]
    steps = np.zeros(n)
    positioned = np.flatnonzero(np.isfinite(lat) & np.isfinite(lng))
    if positioned.size:
        plat, plng = lat[positioned], lng[positioned]
        prev_lat = np.concatenate(([prev[0] if prev else plat[0]], plat[:-1]))
        prev_lng = np.concatenate(([prev[1] if prev else plng[0]], plng[:-1]))
        steps[positioned] = haversine_m(prev_lat, prev_lng, plat, plng)
    return start_m + np.cumsum(steps), steps


def build_gpx(points: Sequence[Any], name: str, sport: str) -> bytes:
    """The session as a GPX 1.1 file the upload pipeline parses like any watch's (the one GPX writer).
    Points without a position can't be GPX track points and are left out. Deterministic for the same points,
    so a retried finish stores the same file."""
    placed = [p for p in points if p.lat is not None and p.lng is not None]

    def column(attr: str) -> list[float]:
        return [math.nan if getattr(p, attr) is None else float(getattr(p, attr)) for p in placed]

    track = Track.from_columns(
        time=[p.time.timestamp() for p in placed], lat=column("lat"), lon=column("lng"), ele=column("ele"),
        hr=column("hr"), cadence=column("cadence"), power=column("power"),
        name=name or None, sport=sport, device="Strava+1 live")
    return to_gpx(track)


# -- reads ----------------------------------------------------------------------------------------------------------

def _owner(session: LiveSession) -> User:
    owner = db.session.get(User, session.user_id)
    if owner is None:
        raise _not_found()
    return owner


def may_see(viewer_id: int, session: LiveSession, owner: User) -> bool:
    return visibility.can_see(viewer_id, owner.id, owner.is_private, session.visibility)


def get_visible(viewer_id: int, session_id: int) -> tuple[LiveSession, User]:
    session = db.session.get(LiveSession, session_id)
    if session is None:
        raise _not_found()
    owner = _owner(session)
    if not may_see(viewer_id, session, owner):
        raise _not_found()
    return session, owner


def _get_own(user_id: int, session_id: int, *, lock: bool = True) -> LiveSession:
    query = select(LiveSession).where(LiveSession.id == session_id)
    if lock:
        query = query.with_for_update()
    session = db.session.scalar(query)
    if session is None or session.user_id != user_id:
        raise _not_found()
    return session


def session_seed(session: LiveSession) -> int:
    return privacy_seed(session.user_id, f"live-session-{session.id}")


def ensure_current_privacy(session: LiveSession, owner: User) -> None:
    """Read paths: recompute the points' ``hidden`` flags first if the owner's zones or start/end hiding changed
    since they were computed (a read must never use stale rules)."""
    if session.privacy_version == owner.privacy_version:
        return
    db.session.execute(select(LiveSession.id).where(LiveSession.id == session.id).with_for_update())
    db.session.refresh(session)
    _refresh_privacy(session, owner)
    db.session.commit()


def _refresh_privacy(session: LiveSession, owner: User) -> None:
    """Recompute every point's ``hidden`` flag and the public distance under the owner's current settings.
    The caller holds the session row lock and commits."""
    if session.privacy_version == owner.privacy_version:
        return
    rows = db.session.execute(select(LivePoint.seq, LivePoint.lat, LivePoint.lng, LivePoint.along_m)
                              .where(LivePoint.session_id == session.id).order_by(LivePoint.seq)).all()
    zones, hide_m = privacy_settings(owner)
    if rows:
        seq = np.array([r.seq for r in rows])
        lat = np.array([np.nan if r.lat is None else r.lat for r in rows], dtype=np.float64)
        lng = np.array([np.nan if r.lng is None else r.lng for r in rows], dtype=np.float64)
        along = np.array([r.along_m for r in rows], dtype=np.float64)
        hidden = live_hidden_mask(lat, lng, along, zones, hide_start_m=hide_m, seed=session_seed(session))
        db.session.execute(update(LivePoint).where(LivePoint.session_id == session.id)
                           .values(hidden=False))
        hidden_seqs = [int(s) for s in seq[hidden]]
        if hidden_seqs:
            db.session.execute(update(LivePoint).where(LivePoint.session_id == session.id,
                                                       LivePoint.seq.in_(hidden_seqs)).values(hidden=True))
        steps = np.diff(along, prepend=along[0])
        both = ~hidden & np.concatenate(([False], ~hidden[:-1]))
        session.public_distance_m = float(steps[both].sum())
        session.last_visible = not bool(hidden[-1])
    session.privacy_version = owner.privacy_version


def _public_point(p: Any) -> dict[str, Any]:
    return {"time": p.time.isoformat(), "lat": p.lat, "lng": p.lng, "ele": p.ele, "hr": p.hr,
            "cadence": p.cadence, "power": p.power}


def _owner_point(p: Any) -> dict[str, Any]:
    return {**_public_point(p), "seq": p.seq, "distance_m": p.distance_m, "hidden": p.hidden}


def recent_points(session: LiveSession, *, is_owner: bool, limit: int = SNAPSHOT_POINTS) -> list[dict[str, Any]]:
    """The newest ``limit`` points the viewer may see, oldest first (non-owners: only unhidden ones)."""
    query = select(LivePoint).where(LivePoint.session_id == session.id)
    if not is_owner:
        query = query.where(LivePoint.hidden.is_(False))
    rows = list(db.session.scalars(query.order_by(LivePoint.seq.desc()).limit(limit)))
    rows.reverse()
    return [(_owner_point if is_owner else _public_point)(p) for p in rows]


def _activity_id(session: LiveSession) -> int | None:
    if session.activity_id is None and session.upload_id is not None:
        session.activity_id = db.session.scalar(select(Upload.activity_id).where(Upload.id == session.upload_id))
    return session.activity_id


def serialize(viewer_id: int, session: LiveSession, owner: User, *, points: bool = True,
              point_limit: int = SNAPSHOT_POINTS) -> dict[str, Any]:
    """The session as ``viewer_id`` may see it. Non-owners get the public distance and visible points only."""
    is_owner = viewer_id == owner.id
    if not is_owner:
        ensure_current_privacy(session, owner)
    track = recent_points(session, is_owner=is_owner, limit=point_limit if points else 1)
    last = track[-1] if track else None
    out: dict[str, Any] = {
        "id": session.id,
        "athlete": {"id": owner.id, "display_name": owner.display_name, "avatar_url": owner.avatar_url},
        "sport_type": session.sport_type, "title": session.title, "visibility": session.visibility,
        "status": session.status, "end_reason": session.end_reason, "started_at": session.started_at,
        "ended_at": session.ended_at, "elapsed_s": elapsed_s(session),
        "distance_m": session.distance_m if is_owner else session.public_distance_m,
        "hr": session.last_hr if is_owner else (last or {}).get("hr"),
        "last_point": last,
    }
    if points:
        out["points"] = track
    if is_owner:
        out.update(point_count=session.point_count, last_point_at=session.last_point_at,
                   upload_id=session.upload_id, activity_id=_activity_id(session))
    return out


def list_sessions(viewer: User, scope: str, limit: int) -> list[dict[str, Any]]:
    """``following``: live sessions of athletes the viewer follows (accepted) and may see; ``mine``: the
    viewer's own, newest first."""
    if scope == "mine":
        rows = list(db.session.scalars(select(LiveSession).where(LiveSession.user_id == viewer.id)
                                       .order_by(LiveSession.started_at.desc(), LiveSession.id.desc())
                                       .limit(limit)))
        return [serialize(viewer.id, s, viewer, points=False) for s in rows]
    query = (select(LiveSession, User)
             .join(Follow, and_(Follow.followee_id == LiveSession.user_id, Follow.follower_id == viewer.id,
                                Follow.status == social.ACCEPTED))
             .join(User, User.id == LiveSession.user_id)
             .where(LiveSession.status == "live",
                    visibility.visible_sql(viewer.id, LiveSession.user_id, LiveSession.visibility, User.is_private))
             .order_by(LiveSession.started_at.desc(), LiveSession.id.desc()).limit(limit))
    return [serialize(viewer.id, session, owner, points=False) for session, owner in db.session.execute(query)]


# -- writes ---------------------------------------------------------------------------------------------------------

def start(user: User, data: dict[str, Any]) -> LiveSession:
    visibility = data.get("visibility") or user.preferences.default_visibility
    values = {"user_id": user.id, "sport_type": data.get("sport_type") or "running",
              "title": (data.get("title") or "")[:255], "visibility": visibility,
              "privacy_version": user.privacy_version}
    # The partial unique index decides "one live session per athlete", also for two concurrent starts.
    stmt = insert(LiveSession).values(**values).on_conflict_do_nothing(
        index_elements=["user_id"], index_where=LiveSession.status == "live").returning(LiveSession.id)
    session_id = db.session.scalar(stmt)
    if session_id is None:
        db.session.rollback()
        existing = db.session.scalar(select(LiveSession.id).where(LiveSession.user_id == user.id,
                                                                  LiveSession.status == "live"))
        raise LiveError(409, "already_live", "You already have a live session; finish it first.",
                        session_id=existing)
    db.session.commit()
    session = db.session.get(LiveSession, session_id)
    assert session is not None
    return session


def _check_rate(session_id: int) -> None:
    limit = current_app.config["LIVE_BATCHES_PER_MIN"]
    if limit <= 0:
        return
    retry_after = over_budget(f"live:rate:{session_id}", limit)
    if retry_after is not None:
        raise LiveError(429, "rate_limited", f"Too many batches: at most {limit} per minute. "
                        f"Send points less often (batch them).", retry_after=retry_after)


@dataclass
class Appended:
    accepted: int
    duplicates: int
    public_points: list[dict[str, Any]]
    public_hr: int | None


def add_points(user_id: int, session_id: int, points: list[dict[str, Any]]) -> dict[str, Any]:
    """Append a batch (validated by ``PointBatchSchema``), commit, then publish the visible part."""
    times = [p["time"] for p in points]
    if any(b <= a for a, b in pairwise(times)):
        raise LiveError(422, "time_order", "Point times must be strictly increasing within a batch.")
    session = _get_own(user_id, session_id)
    if session.status != "live":
        raise LiveError(409, "ended", "This live session has ended.")
    _check_rate(session.id)
    owner = _owner(session)
    _refresh_privacy(session, owner)
    result = _append(session, owner, points)
    db.session.commit()
    if result.accepted:
        publish(session.id, {
            "type": "live.update", "session_id": session.id, "points": result.public_points,
            "distance_m": session.public_distance_m, "elapsed_s": elapsed_s(session), "hr": result.public_hr,
        })
    return {"session_id": session.id, "accepted": result.accepted, "duplicates": result.duplicates,
            "point_count": session.point_count, "distance_m": session.distance_m}


def _append(session: LiveSession, owner: User, points: list[dict[str, Any]]) -> Appended:
    cfg = current_app.config
    if session.last_point_time is not None:
        fresh = [p for p in points if p["time"] > session.last_point_time]
    else:
        fresh = list(points)
    duplicates = len(points) - len(fresh)
    if not fresh:
        return Appended(0, duplicates, [], None)
    now = datetime.now(UTC)
    if fresh[-1]["time"] > now + timedelta(seconds=FUTURE_SKEW_S):
        raise LiveError(422, "time_future", "A point's time is in the future; check the device clock.")
    if fresh[0]["time"] < session.started_at - timedelta(seconds=PAST_SKEW_S):
        raise LiveError(422, "time_past", "A point's time is before the session started.")
    if fresh[-1]["time"] > session.started_at + timedelta(seconds=cfg["LIVE_MAX_DURATION_S"]):
        raise LiveError(422, "too_long", "The live session is longer than the maximum; finish it and start "
                                         "another.")
    if session.point_count + len(fresh) > cfg["LIVE_MAX_POINTS"]:
        raise LiveError(422, "too_many_points", f"A live session holds at most {cfg['LIVE_MAX_POINTS']} points.")

    n = len(fresh)
    lat = np.array([np.nan if p.get("lat") is None else p["lat"] for p in fresh], dtype=np.float64)
    lng = np.array([np.nan if p.get("lng") is None else p["lng"] for p in fresh], dtype=np.float64)
    prev = ((session.last_lat, session.last_lng)
            if session.last_lat is not None and session.last_lng is not None else None)
    along, steps = along_track(lat, lng, prev, session.along_m)
    zones, hide_m = privacy_settings(owner)
    hidden = live_hidden_mask(lat, lng, along, zones, hide_start_m=hide_m, seed=session_seed(session))
    # Public distance joins only consecutive visible points: a hidden stretch is never measured for others.
    prev_visible = np.concatenate(([session.last_visible], ~hidden[:-1]))
    public_add = float(steps[~hidden & prev_visible].sum())

    rows = []
    for i, p in enumerate(fresh):
        rows.append({"session_id": session.id, "seq": session.point_count + i + 1, "time": p["time"],
                     "lat": p.get("lat"), "lng": p.get("lng"), "ele": p.get("ele"), "hr": p.get("hr"),
                     "cadence": p.get("cadence"), "power": p.get("power"), "distance_m": p.get("distance_m"),
                     "along_m": float(along[i]), "hidden": bool(hidden[i])})
    db.session.execute(insert(LivePoint), rows)

    device = [p["distance_m"] for p in fresh if p.get("distance_m") is not None]
    session.along_m = float(along[-1])
    session.distance_m = max(session.distance_m, session.along_m, max(device, default=0.0))
    session.public_distance_m += public_add
    session.point_count += n
    session.first_point_time = session.first_point_time or fresh[0]["time"]
    session.last_point_time = fresh[-1]["time"]
    session.last_point_at = now
    session.last_visible = not bool(hidden[-1])
    positioned = np.flatnonzero(np.isfinite(lat) & np.isfinite(lng))
    if positioned.size:
        session.last_lat, session.last_lng = float(lat[positioned[-1]]), float(lng[positioned[-1]])
    hrs = [p["hr"] for p in fresh if p.get("hr") is not None]
    if hrs:
        session.last_hr = hrs[-1]
    visible_rows = [r for r in rows if not r["hidden"]]
    public = [{"time": r["time"].isoformat(), "lat": r["lat"], "lng": r["lng"], "ele": r["ele"], "hr": r["hr"],
               "cadence": r["cadence"], "power": r["power"]} for r in visible_rows]
    public_hr = next((r["hr"] for r in reversed(visible_rows) if r["hr"] is not None), None)
    return Appended(n, duplicates, public, public_hr)


def finish(user: User, session_id: int, save: bool) -> dict[str, Any]:
    """End the session; with ``save``, turn it into an activity through the normal upload pipeline.

    Repeatable: finishing an ended session (also one the sweeper ended) with ``save`` creates its upload if
    there is none yet, and the upload's idempotency key makes a retried save return the same upload.
    """
    session = _get_own(user.id, session_id)
    if save and session.upload_id is None:
        positioned = db.session.scalar(
            select(LivePoint.seq).where(LivePoint.session_id == session.id, LivePoint.lat.isnot(None))
            .offset(1).limit(1))
        if positioned is None:
            raise LiveError(422, "nothing_to_save", "The session has fewer than two GPS points, so it can't be "
                                                    "saved as an activity; finish it without saving.")
    ended = end(session, "finished")
    db.session.commit()
    if ended:
        publish_ended(session)
    if save and session.upload_id is None:
        points = list(db.session.scalars(select(LivePoint).where(LivePoint.session_id == session.id)
                                         .order_by(LivePoint.seq)))
        data = build_gpx(points, session.title, session.sport_type)
        form = {"name": session.title or None, "sport_type": session.sport_type, "visibility": session.visibility}
        # Stored and committed, then the chain enqueued — by the upload service itself.
        upload = accept_file(user, data, f"live-{session.id}.gpx", form,
                             idempotency_key=f"live-session-{session.id}", data_type="gpx")
        db.session.execute(update(LiveSession).where(LiveSession.id == session.id).values(upload_id=upload.id))
        db.session.commit()
        db.session.refresh(session)
    return serialize(user.id, session, user, points=False)


def discard(user: User, session_id: int) -> None:
    session = _get_own(user.id, session_id)
    was_live = session.status == "live"
    db.session.execute(delete(LiveSession).where(LiveSession.id == session.id))
    db.session.commit()
    if was_live:
        publish(session_id, {"type": "live.ended", "session_id": session_id, "reason": "discarded"})


def revoke_watchers(owner_id: int, watcher_id: int) -> None:
    """After a follow ends or a block: the watcher's sockets stop receiving the owner's live sessions at once
    (a subscription was authorized when it was made; the hub does not re-check every frame). Call after commit."""
    sessions = db.session.scalars(
        select(LiveSession).where(LiveSession.user_id == owner_id, LiveSession.status == "live")).all()
    owner = db.session.get(User, owner_id)
    lost = {pubsub.live_channel(s.id): {"type": "live.ended", "session_id": s.id, "reason": "revoked"}
            for s in sessions if owner is None or not may_see(watcher_id, s, owner)}
    try:
        pubsub.revoke(watcher_id, lost)
    except redis.RedisError:
        log.warning("could not revoke live subscriptions of user %s", watcher_id, exc_info=True)

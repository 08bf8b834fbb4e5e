"""Keeping the non-owner view of activities in step with the owner's privacy settings.

When an athlete changes a zone or the hidden start/end distance, their ``privacy_version`` goes up; every
activity stored under an older version is recomputed (in the background, and by any read that meets one).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, Float, and_, case, select

from domain import board_rebuilds, jobs, offload
from domain.algorithms.privacy import Zone
from domain.algorithms.streams import decode_track
from domain.algorithms.summary import PUBLIC_VIEW_VERSION, TOTALS, public_summary_and_mask
from domain.privacy.settings import activity_privacy_seed, privacy_settings
from models import Activity, ActivityStream, SegmentEffort, User, db

REFRESH_BATCH = 200


def refresh_public_view(activity: Activity, owner: User) -> None:
    """Recompute what non-owners see after the owner changed zones or start/end hiding: the stored map,
    and which segment efforts touch a hidden part (those leave the public leaderboards)."""
    if not activity.has_gps:
        activity.privacy_version = owner.privacy_version
        return
    stream = db.session.get(ActivityStream, activity.id)
    if stream is None:
        return
    zones, hide_m = privacy_settings(owner)
    efforts = list(db.session.scalars(select(SegmentEffort).where(SegmentEffort.activity_id == activity.id)))
    # Decoding the stream and redrawing the map is CPU work; a read (current_public) does it off the event loop.
    activity.public, hidden = offload.cpu(_recompute, stream.data, zones, hide_m, activity_privacy_seed(activity),
                                          bool(efforts), activity.sport_type)
    activity.privacy_version = owner.privacy_version
    changed = _mark_hidden(efforts, hidden) if hidden is not None else []
    if changed:
        db.session.flush()
        board_rebuilds.rebuild_later(changed)


def _recompute(blob: bytes, zones: list[Zone], hide_m: float, seed: int, with_hidden: bool,
               sport: str | None) -> tuple[dict[str, Any] | None, np.ndarray | None]:
    """The public summary of a stored stream and (when asked) which of its points are hidden: pure, no session."""
    public, hidden = public_summary_and_mask(decode_track(blob), zones, hide_start_end_m=hide_m, seed=seed,
                                             sport=sport)
    return public, hidden if with_hidden else None


def is_outdated(activity: Activity) -> bool:
    """The stored view has an older shape than the one written now (e.g. no ``totals`` yet)."""
    return bool(activity.has_gps) and (activity.public or {}).get("v") != PUBLIC_VIEW_VERSION


def shown_totals(public: dict[str, Any] | None) -> dict[str, Any]:
    """The figures that replace the whole track's for a non-owner: those of the visible stretch when part of the
    track is hidden (nothing to replace otherwise). Missing figures of a filtered view are withheld, not leaked."""
    if not public or not public.get("filtered"):
        return {}
    totals = public.get("totals") or {}
    return {name: totals.get(name) for name in TOTALS}


def shown_figure_sql(name: str, viewer_id: int) -> ColumnElement[Any]:
    """SQL: activity figure ``name`` (one of ``TOTALS``) as ``viewer_id`` is shown it — the visible stretch's
    when part of someone else's track is hidden (NULL, i.e. withheld, if a stored view predates ``totals``)."""
    assert name in TOTALS, name
    return case(
        (and_(Activity.user_id != viewer_id, Activity.public["filtered"].astext == "true"),
         Activity.public["totals"][name].astext.cast(Float)),
        else_=getattr(Activity, name))


def current_public(activity: Activity, owner: User) -> dict[str, Any] | None:
    """The non-owner geometry, recomputed first if the owner's privacy settings changed since it was stored
    (the background refresh may not have reached this activity yet; a read must never use stale rules)."""
    if activity.privacy_version != owner.privacy_version or is_outdated(activity):
        refresh_public_view(activity, owner)
        db.session.commit()
    return activity.public


def _mark_hidden(efforts: list[SegmentEffort], hidden: np.ndarray) -> list[int]:
    changed = []
    for e in efforts:
        flag = bool(hidden[e.start_index] or hidden[e.end_index])
        if flag != e.hidden_by_privacy:
            e.hidden_by_privacy = flag
            changed.append(e.segment_id)
    return changed


def refresh_stale(user_id: int) -> int:
    """Recompute the public view of every activity of ``user_id`` stored under older privacy settings, in
    committed batches until none is left (idempotent; returns how many were recomputed)."""
    done, after = 0, 0
    while True:  # keyset over ids: an activity that can't be recomputed (no stream) is not met twice
        owner = db.session.get(User, user_id)
        if owner is None:
            return done
        stale = list(db.session.scalars(
            select(Activity).where(Activity.user_id == user_id, Activity.privacy_version != owner.privacy_version,
                                   Activity.id > after)
            .order_by(Activity.id).limit(REFRESH_BATCH)))
        if not stale:
            return done
        for activity in stale:
            refresh_public_view(activity, owner)
        done, after = done + len(stale), stale[-1].id
        db.session.commit()


def enqueue_refresh(user_id: int) -> None:
    """After a change of the athlete's privacy settings has been committed (reads recompute stale views
    themselves; the background refresh makes the first reads fast again)."""
    jobs.send(jobs.PRIVACY_REFRESH, user_id)


#: Athletes handed to the background refresh per sweep (each refresh loops over all of its athlete's activities).
SWEEP_LIMIT = 500


def sweep_stale(limit: int = SWEEP_LIMIT) -> int:
    """Send the background refresh for athletes who still have activities stored under older privacy settings:
    a refresh whose message was lost, or every athlete whose zones a migration redrew (reads recompute a stale
    view themselves, but which segment efforts are hidden is only recomputed by the refresh)."""
    owners = list(db.session.scalars(
        select(Activity.user_id).join(User, User.id == Activity.user_id)
        .where(Activity.privacy_version != User.privacy_version).distinct().limit(limit)))
    for user_id in owners:
        enqueue_refresh(user_id)
    return len(owners)

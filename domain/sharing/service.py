"""Public share links: an unguessable, revocable link to one activity that anyone may open without an account.

Only an activity visible to everyone can be shared, and the page shows exactly what a stranger signed in would
see (the non-owner view: privacy zones and the hidden start/end removed, and the figures of the visible stretch).
Every request re-checks the link, the activity and its visibility, so revoking the link, making the activity
private (or the account private) or deleting it closes the page at once; nothing is cached.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert

from domain import offload
from domain.activities.service import public_track
from domain.algorithms import polylines
from domain.algorithms.streams import decode_track
from domain.algorithms.summary import TOTALS
from domain.algorithms.track import Track
from domain.algorithms.writer_common import distance_along
from domain.errors import refuse
from domain.privacy.public_view import current_public, shown_totals
from domain.visibility import allows, get_own
from models import Activity, ActivityShare, ActivityStream, User, db, utcnow

#: secrets.token_urlsafe(32): 43 characters, 256 bits.
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")
#: Points of the elevation profile (the chart is a few hundred pixels wide).
PROFILE_POINTS = 300


def shareable(activity: Activity, owner: User) -> bool:
    """Anyone without an account may see it: the visibility rule with a stranger as the viewer."""
    return allows(activity.visibility, is_owner=False, blocked=False, follower=False, owner_private=owner.is_private)


def share(viewer: User, activity_id: int) -> ActivityShare:
    """The activity's live share link, created on first use (sharing twice gives the same link)."""
    activity = get_own(viewer, activity_id)
    if not shareable(activity, viewer):
        refuse(409, "Only activities visible to everyone (on a public account) can be shared publicly.")
    db.session.execute(insert(ActivityShare).values(activity_id=activity.id, share_token=secrets.token_urlsafe(32))
                       .on_conflict_do_nothing(index_elements=["activity_id"],
                                               index_where=ActivityShare.revoked_at.is_(None)))
    db.session.commit()
    return live_share(viewer, activity_id)


def live_share(viewer: User, activity_id: int) -> ActivityShare:
    activity = get_own(viewer, activity_id)
    found = db.session.scalar(select(ActivityShare).where(ActivityShare.activity_id == activity.id,
                                                          ActivityShare.revoked_at.is_(None)))
    if found is None:
        refuse(404, "This activity is not shared.")
    return found


def revoke(viewer: User, activity_id: int) -> None:
    """Close the activity's public link for good (a new share makes a new token)."""
    activity = get_own(viewer, activity_id)
    db.session.execute(update(ActivityShare).where(ActivityShare.activity_id == activity.id,
                                                   ActivityShare.revoked_at.is_(None)).values(revoked_at=utcnow()))
    db.session.commit()


@dataclass
class SharedActivity:
    """Everything the public page shows, all of it from the non-owner view."""

    token: str
    name: str
    athlete: str
    sport_type: str
    start_date_local: datetime | None
    timezone: str | None
    figures: dict[str, float | None]
    #: The visible stretches as (lat, lng) arrays: the only geometry the page may draw.
    lines: list[tuple[np.ndarray, np.ndarray]]
    #: Elevation profile of the visible part: distance from its first point (m) and altitude (m).
    profile: tuple[np.ndarray, np.ndarray]


def shared_activity(token: str) -> SharedActivity:
    """The page of a live link, or 404 (a token never issued, revoked, its activity deleted or not public)."""
    if not TOKEN_RE.match(token):
        refuse(404, "This link does not exist.")
    row = db.session.execute(select(ActivityShare, Activity, User)
                             .join(Activity, Activity.id == ActivityShare.activity_id)
                             .join(User, User.id == Activity.user_id)
                             .where(ActivityShare.share_token == token, ActivityShare.revoked_at.is_(None))).first()
    if row is None or not shareable(row.Activity, row.User):
        refuse(404, "This link does not exist.")
    activity, owner = row.Activity, row.User
    public = current_public(activity, owner) or {}
    figures: dict[str, float | None] = {name: getattr(activity, name) for name in TOTALS}
    figures.update(shown_totals(public))
    lines = [polylines.decode(p) for p in ((public.get("map") or {}).get("polylines") or []) if p]
    return SharedActivity(token=token, name=activity.name, athlete=owner.display_name,
                          sport_type=activity.sport_type, start_date_local=activity.start_date_local,
                          timezone=activity.timezone, figures=figures, lines=lines,
                          profile=_profile(activity, owner))


def _profile(activity: Activity, owner: User) -> tuple[np.ndarray, np.ndarray]:
    stream = db.session.get(ActivityStream, activity.id)
    if stream is None:
        return np.zeros(0), np.zeros(0)
    track = public_track(activity, owner, offload.cpu(decode_track, stream.data))
    return offload.cpu(_elevation_profile, track)


def _elevation_profile(track: Track) -> tuple[np.ndarray, np.ndarray]:
    ok = np.isfinite(track.ele)
    if not ok.any():
        return np.zeros(0), np.zeros(0)
    dist, ele = distance_along(track)[ok], track.ele[ok]
    idx = np.unique(np.linspace(0, dist.size - 1, min(PROFILE_POINTS, dist.size)).round().astype(int))
    return dist[idx] - dist[0], ele[idx]


def share_json(s: ActivityShare, url: str) -> dict[str, Any]:
    return {"token": s.share_token, "url": url, "activity_id": s.activity_id, "created_at": s.created_at}

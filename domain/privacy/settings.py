"""An athlete's privacy settings as the rest of the domain uses them: their zones and hidden start/end distance,
the secret per-activity randomness, and which points of a track nobody but the owner may see.

The geometry itself (randomized discs, the start/end rule) is pure and lives in ``domain.algorithms.privacy``.
"""

from __future__ import annotations

import numpy as np
from flask import current_app
from sqlalchemy import bindparam, select, update

from domain.algorithms.privacy import Zone, activity_seed, hidden_mask
from domain.algorithms.track import Track
from models import Activity, PrivacyZone, User, db

#: Read for every upload: prepared once.
_ZONES = select(PrivacyZone.hidden_lat, PrivacyZone.hidden_lng, PrivacyZone.hidden_radius_m).where(
    PrivacyZone.user_id == bindparam("user_id"))


def privacy_settings(user: User) -> tuple[list[Zone], float]:
    zones = db.session.execute(_ZONES, {"user_id": user.id})
    return ([Zone(z.hidden_lat, z.hidden_lng, z.hidden_radius_m) for z in zones],
            float(user.preferences.hide_start_end_m))


def bump_privacy_version(user: User) -> None:
    """Mark every stored non-owner view of the athlete's activities and live sessions stale.

    Incremented in SQL, not written back from the value this session read: two zone changes committed at the
    same time then give +2. A read-modify-write would give +1, and views recomputed between the two changes
    would pass for current under the second one. The row lock the UPDATE takes orders concurrent changes.
    """
    db.session.execute(update(User).where(User.id == user.id).values(privacy_version=User.privacy_version + 1)
                       .execution_options(synchronize_session="fetch"))


def privacy_seed(user_id: int, activity_key: str) -> int:
    return activity_seed(current_app.config["PRIVACY_SECRET"].encode(), f"{user_id}:{activity_key}")


def activity_privacy_seed(activity: Activity) -> int:
    """The activity's own randomness: keyed by its file's hash (stable across re-processing), or its id."""
    return privacy_seed(activity.user_id, activity.source_sha256 or f"activity-{activity.id}")


def hidden_points(activity: Activity, owner: User, track: Track,
                  settings: tuple[list[Zone], float] | None = None) -> np.ndarray:
    """Which of the activity's points nobody but the owner may see (zones and the hidden start/end)."""
    zones, hide_m = settings if settings is not None else privacy_settings(owner)
    if not zones and hide_m <= 0:
        return np.zeros(len(track), dtype=bool)
    return hidden_mask(track.lat, track.lon, zones, hide_start_end_m=hide_m, seed=activity_privacy_seed(activity))

"""privacy zones: redraw every stored zone under the wider persistent displacement

Zones created before this revision were displaced by at most a quarter of their radius, so the centroid or a
circle fit of the points where tracks become visible found the home within ~0.25 r (docs/privacy.md). Each
one is redrawn from the athlete's requested centre and radius (both stored) with fresh secret randomness, and
its owner's ``privacy_version`` is bumped in SQL so every stored non-owner view is recomputed before it is
read again (activities, feed items, live points); the privacy sweeper then recomputes the rest.

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-04 11:00:00
"""

from __future__ import annotations

import math
import secrets

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None

# A frozen copy of domain.algorithms.privacy.persistent_zone's rule at this revision: a migration must do the
# same thing whenever it runs, whatever the live code becomes later.
OFFSET_MIN, OFFSET_MAX = 1.5, 1.9
SAFETY_MARGIN_M = 1.0
EARTH_RADIUS_M = 6_371_008.8


def _haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (math.sin((p2 - p1) / 2.0) ** 2
         + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2.0) ** 2)
    return 2.0 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, max(0.0, a))))


def _destination(lat: float, lon: float, bearing: float, distance_m: float) -> tuple[float, float]:
    phi1, lmb1 = math.radians(lat), math.radians(lon)
    delta = distance_m / EARTH_RADIUS_M
    sin_phi2 = math.sin(phi1) * math.cos(delta) + math.cos(phi1) * math.sin(delta) * math.cos(bearing)
    phi2 = math.asin(max(-1.0, min(1.0, sin_phi2)))
    lmb2 = lmb1 + math.atan2(math.sin(bearing) * math.sin(delta) * math.cos(phi1),
                             math.cos(delta) - math.sin(phi1) * sin_phi2)
    return math.degrees(phi2), (math.degrees(lmb2) + 180.0) % 360.0 - 180.0


def redraw(lat: float, lng: float, radius_m: float, rng: secrets.SystemRandom) -> tuple[float, float, float]:
    """The stored (hidden) centre and radius for an athlete's zone: displaced by U(OFFSET_MIN, OFFSET_MAX) × r
    at a random bearing, grown by the realised displacement so it contains the athlete's disc."""
    offset = rng.uniform(OFFSET_MIN, OFFSET_MAX) * radius_m
    hlat, hlng = _destination(lat, lng, rng.uniform(0.0, 2.0 * math.pi), offset)
    return hlat, hlng, radius_m + _haversine_m(lat, lng, hlat, hlng) + SAFETY_MARGIN_M


def upgrade() -> None:
    conn = op.get_bind()
    rng = secrets.SystemRandom()
    owners: set[int] = set()
    zones = conn.execute(sa.text(
        "SELECT id, user_id, lat, lng, radius_m, hidden_lat, hidden_lng FROM privacy_zones ORDER BY id")).all()
    for z in zones:
        if _haversine_m(z.lat, z.lng, z.hidden_lat, z.hidden_lng) >= OFFSET_MIN * z.radius_m - 1.0:
            continue  # already drawn under this rule (a zone created by the new code before this ran)
        hlat, hlng, hradius = redraw(z.lat, z.lng, z.radius_m, rng)
        conn.execute(sa.text("UPDATE privacy_zones SET hidden_lat = :a, hidden_lng = :b, hidden_radius_m = :r "
                             "WHERE id = :id"), {"a": hlat, "b": hlng, "r": hradius, "id": z.id})
        owners.add(z.user_id)
    if owners:
        conn.execute(sa.text("UPDATE users SET privacy_version = privacy_version + 1 WHERE id = ANY(:ids)"),
                     {"ids": sorted(owners)})


def downgrade() -> None:
    # Nothing to undo: the redrawn zones still contain every athlete's disc, and the old displacement is gone.
    pass

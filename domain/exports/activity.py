"""One activity as a GPX, TCX or FIT file, for its owner (the whole recorded track) and for anyone else who may
see it (only the visible part: privacy zones and the hidden start/end removed, as on the map and the streams).

A non-owner's file also starts at the activity's start time: the first visible point's real timestamp minus the
start would say how long the hidden start lasted. The files are written by the pure writers in
``domain.algorithms`` (off the event loop: a long ride is tens of thousands of points).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from domain import offload
from domain.activities.service import visible_track
from domain.algorithms.fit_writer import to_fit
from domain.algorithms.gpx_writer import to_gpx
from domain.algorithms.streams import decode_track
from domain.algorithms.tcx_writer import to_tcx
from domain.algorithms.track import Track
from domain.errors import refuse
from domain.visibility import get_visible
from models import Activity, ActivityStream, User, db

FORMATS = ("gpx", "tcx", "fit")
MEDIA_TYPES = {"gpx": "application/gpx+xml", "tcx": "application/vnd.garmin.tcx+xml", "fit": "application/vnd.ant.fit"}


def _gpx(track: Track, sport: str) -> bytes:
    return to_gpx(track)


WRITERS: dict[str, Callable[[Track, str], bytes]] = {"gpx": _gpx, "tcx": to_tcx, "fit": to_fit}


def exported_track(viewer: User, activity: Activity, owner: User) -> Track | None:
    """The track ``viewer`` may download (None when nothing was recorded: a manual entry)."""
    stream = db.session.get(ActivityStream, activity.id)
    if stream is None:
        return None
    whole = offload.cpu(decode_track, stream.data)
    track = visible_track(viewer, activity, owner, whole)
    if track is not whole and len(track):
        track.time = track.time - track.time[0] + float(whole.time[0])
    track.name, track.sport = activity.name, activity.sport_type
    return track


def write(track: Track, fmt: str, sport: str) -> bytes:
    return offload.cpu(WRITERS[fmt], track, sport)


def file_name(activity: Activity, fmt: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", activity.name).strip("-")[:60] or "activity"
    return f"{slug}-{activity.id}.{fmt}"


def export_activity(viewer: User, activity_id: int, fmt: str) -> tuple[bytes, str, str]:
    """(file, file name, media type) of the activity in ``fmt`` as ``viewer`` may see it; 404 when they may not
    see the activity at all (someone else's only-me activity included)."""
    if fmt not in WRITERS:
        refuse(422, f"Unknown export format {fmt!r}: use gpx, tcx or fit.",
               errors={"query": {"format": ["Must be one of: gpx, tcx, fit."]}})
    activity, owner = get_visible(viewer, activity_id)
    track = exported_track(viewer, activity, owner)
    if track is None:
        refuse(404, "This activity has no recorded track to export (it was entered manually).")
    if len(track) == 0:
        refuse(404, "No part of this activity's track is visible to you.")
    return write(track, fmt, activity.sport_type), file_name(activity, fmt), MEDIA_TYPES[fmt]

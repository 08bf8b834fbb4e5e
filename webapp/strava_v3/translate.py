"""Our domain's dicts in Strava's v3 shapes: field names, units (metres, seconds, m/s), sport names, time formats.

Representation only: what the viewer may see was decided by the domain operation that made the dict (the same one
``/api/v1`` serializes), so a translation can neither add nor reveal anything.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from domain.algorithms.timezones import strava_timezone, utc_offset_s

SPORT_TO_STRAVA = {"running": "Run", "cycling": "Ride", "swimming": "Swim", "walking": "Walk", "hiking": "Hike",
                   "strength": "WeightTraining", "other": "Workout"}
#: Strava's sport and activity types (lower case) → ours; anything else is "other".
STRAVA_TO_SPORT = {
    **{k: "running" for k in ("run", "trailrun", "virtualrun")},
    **{k: "cycling" for k in ("ride", "virtualride", "ebikeride", "mountainbikeride", "gravelride",
                              "emountainbikeride", "velomobile", "handcycle")},
    "swim": "swimming", "walk": "walking", "hike": "hiking", "weighttraining": "strength", "crossfit": "strength",
}
VISIBILITY_TO_STRAVA = {"everyone": "everyone", "followers": "followers_only", "only_me": "only_me"}
VISIBILITY_FROM_STRAVA = {v: k for k, v in VISIBILITY_TO_STRAVA.items()}
UPLOAD_STATUS = {
    "queued": "Your activity is still being processed.",
    "processing": "Your activity is still being processed.",
    "ready": "Your activity is ready.",
    "failed": "There was an error processing your activity.",
    "duplicate": "There was an error processing your activity.",
}
DELETED = "The created activity has been deleted."


def sport_from_strava(name: str) -> str:
    return STRAVA_TO_SPORT.get(name.strip().lower(), "other")


def iso(value: datetime | str | None) -> str | None:
    """Strava's timestamps: ISO 8601 to the second with a ``Z`` (also on local times, as Strava writes them)."""
    if value is None:
        return None
    if isinstance(value, str):  # already a local wall-clock time (start_date_local)
        return value[:19] + "Z"
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None, microsecond=0).isoformat() + "Z"


def _int(value: float | None) -> int:
    return round(value or 0)


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def athlete_ref(athlete_id: int) -> dict[str, Any]:
    return {"id": athlete_id, "resource_state": 1}


def athlete(profile: dict[str, Any]) -> dict[str, Any]:
    """DetailedAthlete from ``domain.social.profiles.own_profile``."""
    prefs = profile.get("preferences") or {}
    return {
        "id": profile["id"], "resource_state": 3, "username": None, "firstname": profile.get("display_name") or "",
        "lastname": "", "bio": profile.get("bio") or "", "city": None, "state": None, "country": None,
        "sex": profile.get("sex") if profile.get("sex") in ("M", "F") else None,
        "premium": False, "summit": False, "badge_type_id": 0, "weight": profile.get("weight_kg"),
        "profile": profile.get("avatar_url"), "profile_medium": profile.get("avatar_url"),
        "follower_count": profile.get("follower_count"), "friend_count": profile.get("following_count"),
        "measurement_preference": "feet" if prefs.get("units") == "imperial" else "meters",
        "created_at": iso(profile.get("created_at")), "updated_at": iso(profile.get("created_at")),
    }


def _split(s: dict[str, Any], index_key: str) -> dict[str, Any]:
    return {index_key: s.get(index_key), "distance": _round(s.get("distance_m")),
            "elapsed_time": _int(s.get("elapsed_time_s")), "moving_time": _int(s.get("moving_time_s")),
            "elevation_difference": _round(s.get("elevation_difference_m")),
            "average_speed": _round(s.get("avg_speed_mps"), 2), "average_heartrate": _round(s.get("avg_hr")),
            "pace_zone": 0}


def activity(a: dict[str, Any], *, detailed: bool, efforts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """SummaryActivity (lists) or DetailedActivity from ``domain.activities.service.serialize``."""
    sport = SPORT_TO_STRAVA.get(a["sport_type"], "Workout")
    start: datetime = a["start_date"]
    tz = a.get("timezone") or "UTC"
    m = a.get("map") or {}
    power = a.get("avg_power")
    out: dict[str, Any] = {
        "resource_state": 3 if detailed else 2, "id": a["id"], "external_id": a.get("external_id"),
        "upload_id": a.get("upload_id"), "upload_id_str": str(a["upload_id"]) if a.get("upload_id") else None,
        "athlete": athlete_ref(a["athlete"]["id"]), "name": a["name"],
        "distance": round(a.get("distance_m") or 0.0, 1), "moving_time": _int(a.get("moving_time_s")),
        "elapsed_time": _int(a.get("elapsed_time_s")),
        "total_elevation_gain": round(a.get("elevation_gain_m") or 0.0, 1),
        "type": sport, "sport_type": sport, "start_date": iso(start),
        "start_date_local": iso(a.get("start_date_local")), "timezone": strava_timezone(start, tz),
        "utc_offset": utc_offset_s(start, tz),
        "start_latlng": a.get("start_latlng") or [], "end_latlng": a.get("end_latlng") or [],
        "achievement_count": len(a.get("achievements") or []), "kudos_count": a.get("kudos_count", 0),
        "comment_count": a.get("comment_count", 0), "athlete_count": 1, "photo_count": 0, "total_photo_count": 0,
        "map": {"id": f"a{a['id']}", "summary_polyline": m.get("summary_polyline") or "",
                "resource_state": 3 if detailed else 2},
        "trainer": bool(a.get("trainer")), "commute": bool(a.get("commute")), "manual": bool(a.get("manual")),
        "private": a["visibility"] == "only_me", "visibility": VISIBILITY_TO_STRAVA.get(a["visibility"], "everyone"),
        "flagged": False, "gear_id": None,
        "average_speed": round(a.get("avg_speed_mps") or 0.0, 3), "max_speed": round(a.get("max_speed_mps") or 0.0, 3),
        "average_cadence": _round(a.get("avg_cadence")), "average_heartrate": _round(a.get("avg_hr")),
        "max_heartrate": _round(a.get("max_hr")), "has_heartrate": a.get("avg_hr") is not None,
        "heartrate_opt_out": False, "average_watts": _round(power), "max_watts": _round(a.get("max_power")),
        "device_watts": power is not None,
        "kilojoules": round(power * (a.get("moving_time_s") or 0.0) / 1000.0, 1) if power is not None else None,
        "average_temp": _round(a.get("avg_temp"), 0), "has_kudoed": bool(a.get("has_kudoed")),
        "display_hide_heartrate_option": False, "from_accepted_tag": False,
    }
    if detailed:
        out["description"] = a.get("description") or ""
        out["device_name"] = a.get("device")
        out["map"]["polyline"] = m.get("polyline") or ""
        out["splits_metric"] = [_split(s, "split") for s in a.get("splits_metric") or []]
        out["splits_standard"] = [_split(s, "split") for s in a.get("splits_standard") or []]
        out["laps"] = [{**_split(lap, "lap"), "name": f"Lap {lap.get('lap')}", "lap_index": lap.get("lap"),
                        "resource_state": 2, "activity": {"id": a["id"], "resource_state": 1},
                        "athlete": athlete_ref(a["athlete"]["id"]),
                        "start_date": iso(datetime.fromtimestamp(lap["start_time"], UTC))
                        if lap.get("start_time") is not None else None}
                       for lap in a.get("laps") or []]
        out["best_efforts"] = [{"name": b.get("name"), "distance": _round(b.get("distance_m")),
                                "elapsed_time": _int(b.get("elapsed_time_s")),
                                "moving_time": _int(b.get("elapsed_time_s")), "start_index": b.get("start_index"),
                                "end_index": b.get("end_index"), "resource_state": 2,
                                "activity": {"id": a["id"], "resource_state": 1},
                                "athlete": athlete_ref(a["athlete"]["id"])} for b in a.get("best_efforts") or []]
        out["segment_efforts"] = [segment_effort(e) for e in efforts or []]
    return out


def segment_effort(e: dict[str, Any]) -> dict[str, Any]:
    """DetailedSegmentEffort from ``domain.segments.service`` effort dicts."""
    seg = e["segment"]
    return {
        "id": e["id"], "resource_state": 2, "name": seg["name"],
        "activity": {"id": e["activity_id"], "resource_state": 1}, "athlete": athlete_ref(e["athlete_id"]),
        "elapsed_time": _int(e.get("elapsed_time_s")), "moving_time": _int(e.get("moving_time_s")),
        "start_date": iso(e.get("start_date")), "distance": round(seg.get("distance_m") or 0.0, 1),
        "start_index": e.get("start_index"), "end_index": e.get("end_index"),
        "pr_rank": e.get("pr_rank"), "kom_rank": e.get("kom_rank"), "achievements": [], "hidden": False,
        "segment": {"id": seg["id"], "resource_state": 2, "name": seg["name"],
                    "distance": round(seg.get("distance_m") or 0.0, 1), "climb_category": seg.get("climb_category")},
    }


def segment(s: dict[str, Any]) -> dict[str, Any]:
    """DetailedSegment from ``domain.segments.service.serialize``."""
    pr = s.get("athlete_pr")
    return {
        "id": s["id"], "resource_state": 3, "name": s["name"],
        "activity_type": SPORT_TO_STRAVA.get(s.get("sport_type") or "", "Ride"),
        "distance": round(s.get("distance_m") or 0.0, 1), "average_grade": _round(s.get("avg_grade_pct")),
        "maximum_grade": _round(s.get("max_grade_pct")), "total_elevation_gain": _round(s.get("elevation_gain_m")),
        "start_latlng": s.get("start_latlng") or [], "end_latlng": s.get("end_latlng") or [],
        "climb_category": s.get("climb_category") or 0, "city": None, "state": None, "country": None,
        "private": False, "hazardous": False, "starred": bool(s.get("starred")),
        "created_at": iso(s.get("created_at")), "updated_at": iso(s.get("created_at")),
        "effort_count": s.get("effort_count"), "athlete_count": s.get("athlete_count"),
        "star_count": s.get("star_count"),
        "map": {"id": f"s{s['id']}", "polyline": s.get("polyline") or "", "resource_state": 3},
        "athlete_segment_stats": ({"pr_elapsed_time": _int(pr["elapsed_time_s"]), "pr_date": pr["start_date"][:10],
                                   "pr_activity_id": pr["activity_id"], "effort_count": None} if pr else None),
    }


def upload(u: Any) -> dict[str, Any]:
    """The Upload object (status strings as Strava words them; the activity only once it is ready)."""
    error, activity_id = None, None
    if u.status == "ready":
        activity_id = u.activity_id
    elif u.status == "duplicate":
        error = f"{u.filename or 'This file'} duplicate of activity {u.activity_id}"
    elif u.status == "failed":
        error = u.error or "The file could not be processed."
    status = UPLOAD_STATUS[u.status]
    if u.status == "ready" and u.activity_id is None:
        status = DELETED
    return {"id": u.id, "id_str": str(u.id), "external_id": u.external_id, "error": error, "status": status,
            "activity_id": activity_id}


def _totals(t: dict[str, Any] | None) -> dict[str, Any]:
    t = t or {}
    return {"count": t.get("count", 0), "distance": t.get("distance_m", 0.0),
            "moving_time": _int(t.get("moving_time_s")), "elapsed_time": _int(t.get("elapsed_time_s")),
            "elevation_gain": t.get("elevation_gain_m", 0.0)}


def stats(s: dict[str, Any]) -> dict[str, Any]:
    """ActivityStats from ``domain.athletes.stats.athlete_stats``."""
    out: dict[str, Any] = {"biggest_ride_distance": s["biggest_ride_distance_m"],
                           "biggest_climb_elevation_gain": s["biggest_climb_elevation_gain_m"]}
    for window in ("recent", "ytd", "all"):
        for name, sport in (("ride", "cycling"), ("run", "running"), ("swim", "swimming")):
            out[f"{window}_{name}_totals"] = _totals(s[window].get(sport))
    return out


def zones(hr: dict[str, Any]) -> dict[str, Any]:
    return {"heart_rate": {"custom_zones": False, "zones": hr["zones"]}}


def streams(data: dict[str, Any], key_by_type: bool) -> Any:
    typed = {k: {"type": k, **v} for k, v in data.items()}
    return typed if key_by_type else list(typed.values())

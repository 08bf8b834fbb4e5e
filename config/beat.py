"""The one beat schedule. Every job here runs through tasks.locks.single_run: at most once per period."""

from __future__ import annotations

import os
from typing import Any

# How often the catch-up sweeps run (uploads, pushes). A minute in production; a test stack that injects faults
# shortens it to see recovery sooner.
_SWEEP_S = float(os.environ.get("SWEEP_EVERY_S", "60"))

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "heartbeat": {
        "task": "maintenance.heartbeat",
        "schedule": 60.0,
        "options": {"queue": "default", "expires": 55},
    },
    # Uploads committed but never picked up (broker down at enqueue time, a lost message) are re-enqueued.
    "sweep-stuck-uploads": {
        "task": "maintenance.sweep_uploads",
        "schedule": _SWEEP_S,
        "options": {"queue": "default", "expires": _SWEEP_S * 0.9},
    },
    # Notifications committed while the broker was down (or whose retry was lost) still get their push.
    "sweep-push": {
        "task": "push.sweep",
        "schedule": _SWEEP_S,
        "options": {"queue": "notify", "expires": _SWEEP_S * 0.9},
    },
    # Athletes whose non-owner views are stale after a lost refresh message or a migration that redrew zones.
    "sweep-privacy": {
        "task": "maintenance.sweep_privacy",
        "schedule": 600.0,
        "options": {"queue": "default", "expires": 550},
    },
    # Leaderboard rebuilds whose message was lost (the segments stay marked in PostgreSQL until rebuilt).
    "sweep-boards": {
        "task": "maintenance.sweep_boards",
        "schedule": 300.0,
        "options": {"queue": "default", "expires": 290},
    },
    # Live sessions whose phone went quiet are ended (and their watchers told).
    "sweep-live-sessions": {
        "task": "maintenance.sweep_live_sessions",
        "schedule": 60.0,
        "options": {"queue": "default", "expires": 55},
    },
    # Weekly summaries: athletes whose local slot (default Monday 08:00) has come, found by an indexed scan.
    "weekly-summaries": {
        "task": "analytics.weekly_summaries_tick",
        "schedule": 60.0,
        "options": {"queue": "analytics", "expires": 55},
    },
    # Planned-workout reminders whose time has come (a scan, never long ETAs).
    "planned-reminders": {
        "task": "analytics.planned_reminders_tick",
        "schedule": 30.0,
        "options": {"queue": "analytics", "expires": 28},
    },
    # Athletes whose fitness series stayed marked stale (a lost refresh message).
    "sweep-analytics": {
        "task": "analytics.sweep_stale",
        "schedule": 300.0,
        "options": {"queue": "analytics", "expires": 290},
    },
    # Media: items never uploaded (and their multipart uploads), items stuck in `uploaded`, deleted items' objects.
    "sweep-media": {
        "task": "media.sweep",
        "schedule": 60.0,
        "options": {"queue": "media", "expires": 55},
    },
    # Hydration reminders: each athlete's slot is claimed in PostgreSQL, so an overlapping run sends nothing twice.
    "hydration-reminders": {
        "task": "health.hydration_reminders",
        "schedule": 60.0,
        "options": {"queue": "default", "expires": 55},
    },
}

"""The one beat schedule. Every job here takes a Redis lock (tasks.locks) so two beats never double-run it."""

from __future__ import annotations

from typing import Any

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "heartbeat": {
        "task": "maintenance.heartbeat",
        "schedule": 60.0,
        "options": {"queue": "default", "expires": 55},
    },
    # Uploads committed but never picked up (broker down at enqueue time, a lost message) are re-enqueued.
    "sweep-stuck-uploads": {
        "task": "maintenance.sweep_uploads",
        "schedule": 60.0,
        "options": {"queue": "default", "expires": 55},
    },
}

"""Loads every task module, so that each task is registered with Celery and each domain job has its sender.

``webapp.create_app`` imports this before it makes the Celery app; the worker gets the same through it.
"""

from __future__ import annotations

from tasks import analytics, exports, feed, health, live, maintenance, media, pipeline, push, segments, stages

__all__ = ["analytics", "exports", "feed", "health", "live", "maintenance", "media", "pipeline", "push",
           "segments", "stages"]

"""Loads every task module, so that each task is registered with Celery and each domain job has its sender.

``webapp.create_app`` imports this before it makes the Celery app; the worker gets the same through it.
"""

from __future__ import annotations

from tasks import feed, health, live, maintenance, pipeline, push, segments, stages

__all__ = ["feed", "health", "live", "maintenance", "pipeline", "push", "segments", "stages"]

"""Background work the domain asks for, by name; the tasks layer says how it is sent.

The domain must not import ``tasks`` (``tasks`` imports the domain), yet an operation such as "follow" has to
start work in the background after its commit. So the domain names the job here, and the tasks layer, which
defines a Celery task (or, for an upload, the chain) under that name, registers how to send it when the Celery
app is made (``tasks.app.celery_init_app``). A job is always sent after the commit of the rows it reads.

``send`` never raises: the request that wanted the job has committed, and every job has a catch-up path (a
sweeper, a rebuild on read), so a broker outage leaves work late, not lost. It reports False instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

# The upload chain (parse → privacy → segments → boards → feed → push), started for one upload id.
INGEST_UPLOAD = "pipeline.ingest_upload"
# The rest of the chain (segments → feed) for an upload whose activity another run stored: the other workouts
# of an Apple Health export, all stored by the one ingest run that read the file.
UPLOAD_AFTER_INGEST = "pipeline.after_ingest"
# Feeds: a follow accepted (backfill), an unfollow or block (remove), an item's visibility changed, an item deleted.
FEED_BACKFILL = "feed.backfill"
FEED_REMOVE_AUTHOR = "feed.remove_author"
FEED_ITEM_CHANGED = "feed.item_changed"
FEED_ITEM_REMOVED = "feed.item_removed"
FEED_REBUILD = "feed.rebuild"
# Segments: a new segment is matched against the activities in its bounds; boards rebuilt after changes.
SEGMENT_REMATCH = "segments.rematch"
SEGMENT_REMATCH_BATCH = "segments.rematch_batch"
SEGMENT_REBUILD_BOARDS = "segments.rebuild_boards"
# Privacy: an athlete's zones or hidden distances changed; their activities' public views are recomputed.
PRIVACY_REFRESH = "maintenance.refresh_privacy"
# Push: one delivery run per user (or one task fanning out to several users).
PUSH_DELIVER_USER = "push.deliver_user"
PUSH_DELIVER_USERS = "push.deliver_users"
# Exports: build one whole-account export (a zip) and notify its athlete.
ACCOUNT_EXPORT = "exports.account"

# Analytics: an athlete's activities changed; their loads and daily series are recomputed (analytics queue).
ANALYTICS_REFRESH = "analytics.refresh"
ANALYTICS_REBUILD = "analytics.rebuild"

# Media: the chain of one uploaded item (photo renditions or a video transcode), a finished MediaConvert job,
# and deleting the objects of removed items (docs/media.md).
MEDIA_PROCESS = "media.process"
MEDIA_FINISH_TRANSCODE = "media.finish_transcode"
MEDIA_PURGE = "media.purge"

# Health records of an Apple Health export, imported from the stored file (user id, storage key).
HEALTH_IMPORT_EXPORT = "health.import_export"

Sender = Callable[..., Any]
_senders: dict[str, Sender] = {}


def provide(name: str, sender: Sender) -> None:
    """Register how job ``name`` is sent: ``sender(*args, countdown=None)``."""
    _senders[name] = sender


def send(name: str, *args: Any, countdown: float | None = None) -> bool:
    """Send job ``name`` with ``args`` (ids and plain values, never ORM objects); False, logged, if it could not
    be handed to the broker."""
    sender = _senders.get(name)
    if sender is None:
        # A programming error (the tasks layer was not loaded), not an outage: fail loudly.
        raise LookupError(f"no sender registered for job {name!r}; was the Celery app initialised?")
    try:
        sender(*args, countdown=countdown)
        return True
    except Exception:
        log.warning("could not send job %s%r; its catch-up path will", name, args, exc_info=True)
        return False
